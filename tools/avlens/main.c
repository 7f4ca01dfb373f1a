/* tools/avlens/main.c: the avlens command: dispatches to one subcommand per file. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"backend", avl_cmd_backend, "the matrix-product backend and instruction set used here"},
    {"caption", avl_cmd_caption, "captions with a decoding method: vanilla, ASD, reverse ASD, PAI, VCD"},
    {"chair", avl_cmd_chair, "object hallucination of captions: CHAIR_s, CHAIR_i, precision, recall, F1"},
    {"demo", avl_cmd_demo, "make a tiny model and show what avlens does with it"},
    {"dominance", avl_cmd_dominance, "unimodal dominance over a data set (records)"},
    {"features", avl_cmd_features, "a clip (video, frames, audio) -> the model inputs, as safetensors"},
    {"forward", avl_cmd_forward, "one forward pass on HF processor tensors; write logits, hidden states"},
    {"inspect", avl_cmd_inspect, "summarise a checkpoint and check its tensors against its config"},
    {"manifest", avl_cmd_manifest, "check a data-set manifest and list its samples"},
    {"mds", avl_cmd_mds, "modality dominance score of the sinks (the sinks run: sinks + MDS records)"},
    {"merge", avl_cmd_merge, "fold the shard files of each analysis into one"},
    {"mkclip", avl_cmd_mkclip, "write a synthetic clip: a coloured shape moving, a tone or noise"},
    {"mkmodel", avl_cmd_mkmodel, "write a tiny Qwen2.5-Omni checkpoint (HF layout, seeded weights)"},
    {"report", avl_cmd_report, "tables, figures and report.html from records"},
    {"run", avl_cmd_run, "a clip and a prompt -> the model's answer (and option probabilities)"},
    {"sinkdims", avl_cmd_sinkdims, "find a backbone's massive-activation (sink) dimensions"},
    {"sinks", avl_cmd_sinks, "sink tokens of a clip with their modality dominance score (JSON)"},
    {"tokenize", avl_cmd_tokenize, "encode text, decode ids, render the chat template"},
    {"trace", avl_cmd_trace, "naive causal tracing per token set over a data set (records)"},
    {"version", avl_cmd_version, "print the version and the libraries built in"},
    /* AVL_COMMAND_TABLE: one line per subcommand, alphabetical */
};

static void log_to_stderr(avl_log_level level, const char *msg, void *user)
{
    int max = *(int *)user;
    if ((int)level > max) return;
    static const char *names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "avlens: %s: %s\n", names[level], msg);
}

static void usage(FILE *out)
{
    fprintf(out, "avlens %s: look inside audio-visual LLMs\n\n"
                 "usage: avlens COMMAND [OPTIONS]   (avlens COMMAND --help for its options)\n\n"
                 "commands:\n", AVLENS_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nEnvironment: AVL_LOG=error|warn|info|debug (default warn).\n");
}

int main(int argc, char **argv)
{
    static int level = AVL_LOG_WARN;
    const char *env = getenv("AVL_LOG");
    if (env) {
        if (!strcmp(env, "error")) level = AVL_LOG_ERROR;
        else if (!strcmp(env, "info")) level = AVL_LOG_INFO;
        else if (!strcmp(env, "debug")) level = AVL_LOG_DEBUG;
    }
    avl_set_log(log_to_stderr, &level);

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("avlens %s\n", AVLENS_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "avlens: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
