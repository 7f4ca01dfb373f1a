/* avlens/dataset.h: from a data set to resumable, shardable per-sample work, and from the
 * per-sample records to tables and figures.
 *
 * The pieces a data-set command (dominance, trace, sinks, mds, ...) puts together:
 *
 *   avl_dataset_params dp = avl_dataset_default_params();
 *   dp.media_root = "/data/vggsound";                      // relative media paths resolve here
 *   avl_dataset *ds;
 *   if (avl_dataset_load("people_case_2.json", &dp, &ds) != AVL_OK) fail();   // file-level error
 *   for (int64_t e = 0; e < avl_dataset_error_count(ds); e++)                // bad records:
 *       warn("%s", avl_dataset_error_at(ds, e)->message);                   // listed, skipped
 *
 *   avl_records_params rp = avl_records_default_params();
 *   rp.dir = "out"; rp.analysis = "trace"; rp.shard_index = 3; rp.shard_count = 16;
 *   avl_records *rec;
 *   avl_records_open(&rp, &rec);            // reads what exists, cuts a torn last line
 *   for (int64_t i = 0; i < avl_dataset_count(ds); i++) {
 *       const avl_sample *s = avl_dataset_at(ds, i);
 *       if (!avl_shard_selects(s->id, 3, 16) || avl_records_done(rec, s->id)) continue;
 *       char *json; avl_status rc = analyse(s, &json);   // one JSON object, with "id"
 *       if (rc == AVL_OK) avl_records_append(rec, json);
 *       else avl_records_append_error(rec, s->id, rc, avl_last_error());
 *   }
 *   avl_records_close(rec); avl_dataset_free(ds);
 *
 * Later `avl_records_merge` folds the shard files of each analysis into one and
 * `avl_report_write` turns the records into CSV/Markdown tables, SVG figures and report.html.
 * The record schemas (what the analyses write) are in docs/records.md; manifests in
 * docs/data.md.
 *
 * Progress: the library never prints. avl_progress formats a progress line and decides when
 * it is due; it hands the text to a callback that the application (the CLI) owns, which writes
 * it to the terminal (redrawing one line with \r) or to a log (one line each time).
 */
#ifndef AVLENS_DATASET_H
#define AVLENS_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* Samples and manifests                                                                    */
/* ---------------------------------------------------------------------------------------- */

typedef enum {
    AVL_MANIFEST_AUTO = 0,       /* by content: '[' '[' conversations, '[' '{' items, '{' lines, else CSV */
    AVL_MANIFEST_CONVERSATIONS,  /* the authors' JSON: a list of chats (system + user message) */
    AVL_MANIFEST_ITEMS,          /* JSON list or JSONL of flat objects (authors' result lines,
                                    object_important_seconds_*.json): media + label fields */
    AVL_MANIFEST_CSV             /* VGGSound style: "<ytid>_<start:06d>.mp4,<label>" per line */
} avl_manifest_format;

/* One sample. Every string is owned by the dataset and lives until avl_dataset_free.
 * Absent things are NULL (counts 0). */
typedef struct {
    const char *id;              /* "--U7joUcTCo_000000": the "id" string field if any, else the
                                    media file's stem, else the frame folder's name */
    int64_t index;               /* 0-based record index in the manifest (data line for CSV) */
    const char *system_prompt;   /* the system message's text, NULL when the chat has none */
    const char *video_path;      /* a video file (relative paths joined to media_root) */
    const char *const *frames;   /* or a list of frame images (2 fps), n_frames of them */
    int64_t n_frames;
    const char *audio_path;      /* separate audio file; NULL: the video's own track */
    const char *question;        /* the whole user text (options included, as in the prompt) */
    const char *const *options;  /* option texts; the letter of options[i] is 'A' + i */
    int n_options;               /* 0 for open questions (captioning) */
    char label;                  /* the answer letter 'A'.., or 0 when there is none */
    const char *label_name;      /* options[label] (or the manifest's "label_name"/CSV label) */
    const char *original_label;  /* "original_label" when present (e.g. VGGSound class) */
    const char *objects;         /* "objects" when present ("alligator/crocodile") */
    const char *extra_json;      /* every other field of the record, as one JSON object text
                                    ("{}" when none): answers, probabilities, blocks, ... */
} avl_sample;

/* A record the loader could not use: which one, and why (one line, names the file). */
typedef struct {
    int64_t index;               /* record index in the manifest */
    const char *id;              /* its id when one could be derived, else NULL */
    avl_status status;
    const char *message;         /* "m.json: record 3 (--U7joUcTCo_000000): label 'K' is not among the 10 options" */
} avl_dataset_error;

typedef struct {
    avl_manifest_format format;  /* AVL_MANIFEST_AUTO */
    const char *media_root;      /* NULL or "": relative media paths stay as written */
    bool check_media;            /* a sample whose media files do not exist becomes an error (false) */
    /* CSV only: how to build a classification prompt. With a class list, options are the
     * classes (at most max_options of them: the label plus distractors), ordered by a
     * permutation seeded by (option_seed, id), so a sample always gets the same letters; rows
     * whose label is not in the class list are left out (counted, not errors). Without a class
     * list the samples carry the label as label_name and no options. */
    const char *class_list;      /* file: one class per line, or vggsounder-classes.csv */
    int max_options;             /* 20 (A-T) */
    uint64_t option_seed;        /* 0 */
    const char *system_prompt;   /* CSV samples' system prompt: "You are a helpful assistant." */
} avl_dataset_params;

typedef struct avl_dataset avl_dataset;

avl_dataset_params avl_dataset_default_params(void);

/* Loads a manifest. Fails (AVL_E_IO / AVL_E_FORMAT / AVL_E_NOMEM, *out NULL) only when the file
 * as a whole is unusable; records that are bad are left out and listed as errors, so a run
 * goes on with the good ones. Duplicate ids: the first record is kept, later ones are errors. */
avl_status avl_dataset_load(const char *path, const avl_dataset_params *params, avl_dataset **out);

/* The same from bytes in memory; name is used in messages (fuzzing, tests). */
avl_status avl_dataset_load_memory(const void *data, size_t size, const char *name,
                                   const avl_dataset_params *params, avl_dataset **out);

void avl_dataset_free(avl_dataset *ds);

int64_t avl_dataset_count(const avl_dataset *ds);             /* good samples */
const avl_sample *avl_dataset_at(const avl_dataset *ds, int64_t i);  /* NULL when out of range */
int64_t avl_dataset_find(const avl_dataset *ds, const char *id);     /* index, or -1 */
int64_t avl_dataset_error_count(const avl_dataset *ds);
const avl_dataset_error *avl_dataset_error_at(const avl_dataset *ds, int64_t i);
int64_t avl_dataset_filtered_count(const avl_dataset *ds);    /* CSV rows outside the class list */
avl_manifest_format avl_dataset_format(const avl_dataset *ds);   /* as detected */

/* The authors' classification prompt for options[0..n) (spec §1):
 * "Classify the sounding object into one of the categories below:\n\nA. x\nB. y\n\n
 *  Respond ONLY with a single label letter (A–T)." (the last letter follows n). Returns a new
 * string for avl_free_string, NULL on allocation failure or n outside 1..26. */
char *avl_classification_prompt(const char *const *options, int n);
void avl_free_string(char *s);

/* ---------------------------------------------------------------------------------------- */
/* Shards                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* The shard of a sample: a 64-bit hash of its id (FNV-1a, then the splitmix64 finaliser)
 * modulo count. It depends on the id only, so a sample keeps its shard when the manifest is
 * reordered or grows, and the shards' sizes are balanced up to binomial noise. */
int avl_shard_of(const char *id, int count);
bool avl_shard_selects(const char *id, int index, int count);

/* Parses "i/n" (0 <= i < n <= 65536) as given to --shard. */
avl_status avl_shard_parse(const char *text, int *index, int *count);

/* ---------------------------------------------------------------------------------------- */
/* Records: DIR/<analysis>/shard-<i>-of-<n>.jsonl, one JSON object per line                 */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    const char *dir;             /* the results folder (made if missing) */
    const char *analysis;        /* subfolder name: [A-Za-z0-9._-]+, e.g. "trace" or "trace.after_attn" */
    int shard_index, shard_count;  /* 0, 1: unsharded */
    bool retry_errors;           /* samples whose last record is an error are not "done" (false) */
    bool fsync;                  /* fsync after each record, not only fflush (false) */
    bool timestamp;              /* add "written_at" (UTC, microseconds) to each record (true) */
} avl_records_params;

typedef struct avl_records avl_records;

avl_records_params avl_records_default_params(void);

/* Opens (creating) this shard's file for appending and reads the records already there.
 * A torn last line (a run killed while writing) is cut off the file and logged at WARN; a
 * malformed line elsewhere is an AVL_E_FORMAT error naming the file and line. */
avl_status avl_records_open(const avl_records_params *params, avl_records **out);
void avl_records_close(avl_records *r);

/* True when this shard file already holds an ok record for id (or an error record, unless
 * retry_errors). */
bool avl_records_done(const avl_records *r, const char *id);
int64_t avl_records_count(const avl_records *r);        /* distinct ids on file */
int64_t avl_records_torn_bytes(const avl_records *r);   /* bytes cut at open (0: clean) */
const char *avl_records_path(const avl_records *r);

/* Appends one record: json is one JSON object with a string "id" (and usually "status":"ok";
 * added when missing; "analysis" is added too). Written as one line, then flushed. */
avl_status avl_records_append(avl_records *r, const char *json);

/* Appends {"id":id,"analysis":..,"status":"error","code":"<status text>","message":message}. */
avl_status avl_records_append_error(avl_records *r, const char *id, avl_status code, const char *message);

/* What merging found. */
typedef struct {
    int64_t analyses;      /* subfolders merged */
    int64_t files;         /* shard files read */
    int64_t records;       /* lines read */
    int64_t samples;       /* distinct (analysis, id) written */
    int64_t duplicates;    /* ids seen more than once with the same content */
    int64_t conflicts;     /* ids seen more than once with different content */
    int64_t torn;          /* torn last lines skipped */
} avl_merge_summary;

/* For each DIR/<analysis>/ with shard-*.jsonl files, writes OUT/<analysis>/shard-0-of-1.jsonl:
 * one record per id (an ok record beats an error record; otherwise the later one wins: larger
 * "written_at", else later in file order of the shard files sorted by name), sorted by id
 * byte-wise, so an unsharded run and a sharded one merge to the same bytes. Conflicts are
 * logged at WARN ("trace: id X: shard-1-of-4.jsonl line 3 differs from shard-0-of-1.jsonl line
 * 9; keeping the latter"). out may equal in: the shard files are then replaced by the merged
 * one. */
avl_status avl_records_merge(const char *in, const char *out, avl_merge_summary *summary);

/* ---------------------------------------------------------------------------------------- */
/* Report                                                                                   */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    const char *title;          /* "avlens report" */
    int max_strips;             /* samples shown in the sink heat strip (8) */
    const char *intro_html;     /* HTML put under the title of report.html as it is (NULL: none) */
    const char *chair_csv;      /* a chair.csv of `avlens chair --out` to show in the Tab. 3 layout,
                                   with a bar chart (NULL: none) */
} avl_report_params;

avl_report_params avl_report_default_params(void);

/* Reads every *.jsonl file in each analysis folder under in (records of any shard, deduplicated as merge
 * does) and writes to out: tables (CSV and Markdown: dominance.*, trace.*, mds.*), figures
 * (layer_window.svg, mds_per_sink.svg, sink_strip.svg, chair.svg; those with no data are left
 * out) and report.html, which holds the tables and the figures inline (SVG). Caption records
 * (caption.<method>/) give a table of the captions per clip and method. Returns AVL_E_NOTFOUND when in holds no records. */
avl_status avl_report_write(const char *in, const char *out, const avl_report_params *params);

/* ---------------------------------------------------------------------------------------- */
/* Progress                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* Receives each progress line (no newline). redraw: the line replaces the previous one (a
 * terminal: write "\r" + line + "\033[K"); otherwise it is a new log line. final: last call. */
typedef void (*avl_progress_fn)(const char *line, bool redraw, bool final, void *user);

typedef struct {
    const char *label;       /* "trace" */
    int64_t total;           /* samples to go through (skipped ones included) */
    bool tty;                /* redraw a bar (at most every 0.1 s) vs. plain log lines */
    int bar_width;           /* 24 characters */
    double every_percent;    /* log mode: a line each time this much more is done (10) */
    double every_seconds;    /* log mode: ... or this long after the previous line (60) */
    avl_progress_fn fn;      /* required */
    void *user;
    double (*clock)(void *user);  /* seconds, monotonic; NULL: CLOCK_MONOTONIC (tests inject) */
} avl_progress_params;

typedef struct avl_progress avl_progress;

avl_progress_params avl_progress_default_params(void);
avl_status avl_progress_new(const avl_progress_params *params, avl_progress **out);
void avl_progress_free(avl_progress *p);

/* n samples were skipped as already done: they count as done but not toward the rate. */
void avl_progress_skip(avl_progress *p, int64_t n);
/* One sample finished (ok or failed); may emit a line. */
void avl_progress_step(avl_progress *p, bool failed);
/* Emits the final line ("trace: 1000/1000 done in 1h02m (3 failed, 120 skipped)"). */
void avl_progress_finish(avl_progress *p);
/* The current line, as it would be emitted (valid until the next call on p). */
const char *avl_progress_line(avl_progress *p);

#ifdef __cplusplus
}
#endif
#endif
