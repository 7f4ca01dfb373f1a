/* tools/avlens/cli_dataset.h: what the data-set commands (dominance, sinks --manifest, ...)
 * share: their common options, loading the manifest, model and tokenizer, the thinker inputs of
 * one sample, and the resumable loop over the samples (shard selection, records, progress,
 * error records, the summary line).
 *
 *   cli_ds d; cli_ds_init(&d, "dominance");
 *   for each option c: switch (cli_ds_option(&d, c, optarg)) { 0: taken, 1: not common, 2: usage error }
 *   if (!cli_ds_open(&d)) return 1;                 // manifest, model, tokenizer (prints why)
 *   const char *names[] = {"dominance"};
 *   int rc = cli_ds_run(&d, names, 1, one_sample, ctx);   // the exit code
 *   cli_ds_close(&d);
 */
#ifndef AVL_CLI_DATASET_H
#define AVL_CLI_DATASET_H

#include <getopt.h>
#include <stdbool.h>

#include "avlens/avlens.h"
#include "cli_inputs.h"

/* getopt_long codes of the common options (beyond any single character) */
enum {
    CLI_DS_MANIFEST = 1000, CLI_DS_MODEL, CLI_DS_OUT, CLI_DS_MEDIA_ROOT, CLI_DS_SHARD, CLI_DS_RETRY,
    CLI_DS_BACKEND, CLI_DS_THREADS, CLI_DS_MODEL_NAME, CLI_DS_FAST, CLI_DS_MAX_NEW, CLI_DS_LIMIT
};

/* the struct option entries of the common options, for a command's table */
#define CLI_DS_LONG_OPTIONS                                                                             \
    {"manifest", required_argument, 0, CLI_DS_MANIFEST}, {"model", required_argument, 0, CLI_DS_MODEL},  \
    {"out", required_argument, 0, CLI_DS_OUT}, {"media-root", required_argument, 0, CLI_DS_MEDIA_ROOT}, \
    {"shard", required_argument, 0, CLI_DS_SHARD}, {"retry-errors", no_argument, 0, CLI_DS_RETRY},      \
    {"backend", required_argument, 0, CLI_DS_BACKEND}, {"threads", required_argument, 0, CLI_DS_THREADS}, \
    {"model-name", required_argument, 0, CLI_DS_MODEL_NAME},                                            \
    {"fast-processor", no_argument, 0, CLI_DS_FAST},                                                    \
    {"max-new-tokens", required_argument, 0, CLI_DS_MAX_NEW}, {"limit", required_argument, 0, CLI_DS_LIMIT}

/* usage text of the common options */
#define CLI_DS_OPTIONS_HELP                                                                           \
    "  --manifest FILE       the data set (authors' JSON, JSONL items or VGGSound CSV; docs/data.md)\n" \
    "  --model DIR           a Qwen2.5-Omni checkpoint folder\n"                                         \
    "  --out DIR             results folder: DIR/<analysis>/shard-<i>-of-<n>.jsonl (docs/records.md)\n"  \
    "  --media-root DIR      relative media paths of the manifest resolve here\n"                       \
    "  --shard i/n           only the samples of shard i of n (by a hash of the id)\n"                    \
    "  --retry-errors        redo samples whose record is an error (done samples are always skipped)\n" \
    "  --model-name NAME     the records' \"model\" field (default: the model folder's name)\n"           \
    "  --max-new-tokens N    answer length (default 8)\n"                                                 \
    "  --limit N             stop after N samples of this shard have been worked on (0: all)\n"          \
    "  --fast-processor      the fast image processor's normalisation\n"                                  \
    "  --backend NAME        auto (default), ref, onednn, openblas\n"                                     \
    "  --threads N           worker threads (default: all cores)\n"

typedef struct {
    const char *cmd;
    const char *manifest, *model_dir, *out, *media_root, *model_name, *backend;
    int shard_index, shard_count;
    bool retry_errors, fast_processor;
    long long threads, max_new_tokens, limit;
    /* optional: samples for which select returns false are left out of the run (not counted) */
    bool (*select)(void *user, const avl_sample *s);
    void *select_user;
    /* after cli_ds_open */
    avl_dataset *ds;
    avl_model *m;
    avl_tokenizer *tok;
    int32_t stop_ids[2];
    int n_stop;
    char *name_buf;   /* the default model name */
} cli_ds;

void cli_ds_init(cli_ds *d, const char *cmd);
/* 0: the option was a common one and is taken; 1: not a common option; 2: usage error (printed) */
int cli_ds_option(cli_ds *d, int c, const char *arg);
/* Checks the required options (2 and a message when one is missing), then loads manifest (its bad
 * records are warned about), model and tokenizer (1 and a message on failure). 0 when ready. */
int cli_ds_open(cli_ds *d);
void cli_ds_close(cli_ds *d);

/* Greedy generation parameters: --max-new-tokens, stopping at <|im_end|> / <|endoftext|>. */
avl_gen_params cli_ds_gen_params(const cli_ds *d);

/* The thinker inputs of sample s: its frames or video file (with the video's own audio track or
 * the sample's audio file, interleaved as use_audio_in_video), its system prompt and its question
 * as the user's text. Never prints; the status and avl_last_error() say what failed. */
avl_status cli_ds_sample_inputs(const cli_ds *d, const avl_sample *s, cli_inputs *out);

/* One sample's work: fills json[0..n_analyses) with one record each (allocated with malloc; the
 * loop frees them), or returns an error status (all records of the sample become error records). */
typedef avl_status (*cli_ds_sample_fn)(void *user, const cli_ds *d, const avl_sample *s, char **json);

/* Runs fn over the selected samples that are not done in every analysis folder; records
 * flushed as written; progress on stderr; ends with "avlens <cmd>: N done, M skipped, F failed".
 * Returns the exit code: 0 (failed samples are not a failure of the run), 1 when the records
 * cannot be opened or written. */
int cli_ds_run(cli_ds *d, const char *const *analyses, int n_analyses, cli_ds_sample_fn fn, void *user);

/* The common fields of a record: {"id", "model"} as a new jansson object (json_t *). */
void *cli_ds_record_new(const cli_ds *d, const avl_sample *s);
/* Dumps a jansson object compactly (malloc'd string) and releases it; NULL on allocation failure. */
char *cli_ds_record_dump(void *obj);

/* "D1,D2,..." into p's sink dimensions; false when it is not such a list. */
bool cli_parse_dims(const char *s, avl_sink_params *p);

#endif
