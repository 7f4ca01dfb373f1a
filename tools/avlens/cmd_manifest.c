/* tools/avlens/cmd_manifest.c: `avlens manifest`: load a manifest the way the data-set
 * commands do and show what they would run: counts, bad records, and optionally the samples. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "usage: avlens manifest FILE [--media-root DIR] [--classes FILE] [--max-options N]\n"
    "                      [--option-seed N] [--check-media] [--shard i/n] [--list]\n\n"
    "Loads a manifest (the authors' JSON conversations, JSON lines / result files, or a\n"
    "VGGSound-style CSV) as `avlens dominance|trace|sinks|mds` would, prints each bad record\n"
    "as a warning, and a summary line. With --list, prints the selected samples as JSON lines\n"
    "(id, index, shard, media, question, options, label, extra).\n"
    "  --media-root DIR   relative media paths are joined to DIR\n"
    "  --classes FILE     CSV only: build a classification prompt from this class list\n"
    "  --max-options N    CSV only: at most N options (default 20, A-T)\n"
    "  --option-seed N    CSV only: seed of the per-sample option order (default 0)\n"
    "  --check-media      a sample whose media files are missing is a bad record\n"
    "  --shard i/n        keep only the samples of shard i of n (hash of the id)\n"
    "Exit status: 0 when every record loaded, 1 when some were bad (or the file failed).\n"
    "Formats: docs/data.md.\n";

static void list_sample(const avl_sample *s, int shard_n)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(s->id));
    json_object_set_new(o, "index", json_integer(s->index));
    json_object_set_new(o, "shard", json_integer(avl_shard_of(s->id, shard_n)));
    if (s->video_path) json_object_set_new(o, "video", json_string(s->video_path));
    if (s->n_frames) {
        json_t *f = json_array();
        for (int64_t i = 0; i < s->n_frames; i++) json_array_append_new(f, json_string(s->frames[i]));
        json_object_set_new(o, "frames", f);
    }
    if (s->audio_path) json_object_set_new(o, "audio", json_string(s->audio_path));
    if (s->question) json_object_set_new(o, "question", json_string(s->question));
    if (s->n_options) {
        json_t *a = json_array();
        for (int i = 0; i < s->n_options; i++) json_array_append_new(a, json_string(s->options[i]));
        json_object_set_new(o, "options", a);
    }
    if (s->label) {
        char l[2] = {s->label, 0};
        json_object_set_new(o, "label", json_string(l));
    }
    if (s->label_name) json_object_set_new(o, "label_name", json_string(s->label_name));
    if (s->original_label) json_object_set_new(o, "original_label", json_string(s->original_label));
    if (s->objects) json_object_set_new(o, "objects", json_string(s->objects));
    json_t *extra = json_loads(s->extra_json, 0, NULL);
    if (extra && json_object_size(extra)) json_object_set_new(o, "extra", extra);
    else json_decref(extra);
    char *t = json_dumps(o, JSON_COMPACT);
    if (t) printf("%s\n", t);
    free(t);
    json_decref(o);
}

int avl_cmd_manifest(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("%s", USAGE);
        return 0;
    }
    avl_dataset_params p = avl_dataset_default_params();
    const char *file = NULL;
    int shard_i = 0, shard_n = 1;
    bool list = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        long long v;
        if (!strcmp(a, "--media-root") && has) p.media_root = argv[++i];
        else if (!strcmp(a, "--classes") && has) p.class_list = argv[++i];
        else if (!strcmp(a, "--max-options") && has) {
            if (!cli_parse_int("manifest", a, argv[++i], &v)) return 2;
            if (v < 1 || v > 26) return cli_usage_error("manifest", "--max-options wants 1..26, got %lld", v);
            p.max_options = (int)v;
        } else if (!strcmp(a, "--option-seed") && has) {
            if (!cli_parse_int("manifest", a, argv[++i], &v)) return 2;
            p.option_seed = (uint64_t)v;
        } else if (!strcmp(a, "--check-media")) p.check_media = true;
        else if (!strcmp(a, "--shard") && has) {
            if (avl_shard_parse(argv[++i], &shard_i, &shard_n) != AVL_OK) return cli_usage_error("manifest", "%s", avl_last_error());
        } else if (!strcmp(a, "--list")) list = true;
        else if (a[0] == '-' && a[1]) return cli_usage_error("manifest", "unknown option '%s'", a);
        else if (!file) file = a;
        else return cli_usage_error("manifest", "one manifest at a time ('%s' is extra)", a);
    }
    if (!file) return cli_usage_error("manifest", "which manifest?");
    avl_dataset *ds;
    avl_status rc = avl_dataset_load(file, &p, &ds);
    if (rc != AVL_OK) return cli_fail("manifest", rc);
    long long bad = cli_report_dataset_errors("manifest", ds);
    long long selected = 0;
    for (int64_t i = 0; i < avl_dataset_count(ds); i++) {
        const avl_sample *s = avl_dataset_at(ds, i);
        if (!avl_shard_selects(s->id, shard_i, shard_n)) continue;
        selected++;
        if (list) list_sample(s, shard_n);
    }
    static const char *const fmt[] = {"auto", "conversations", "items", "csv"};
    fprintf(list ? stderr : stdout, "%s: %s, %lld samples (%lld in shard %d/%d), %lld bad records, %lld rows outside the class list\n",
            file, fmt[avl_dataset_format(ds)], (long long)avl_dataset_count(ds), selected, shard_i, shard_n, bad,
            (long long)avl_dataset_filtered_count(ds));
    avl_dataset_free(ds);
    return bad ? 1 : 0;
}
