/* tools/avlens/cmd_sinkdims.c: `avlens sinkdims`: a backbone's massive-activation dimensions
 * (the sink dimensions D of App. A.1.2) from the first token's hidden states.
 *
 * Rule (docs/analyses.md): run a short text (default: the system turn of the authors' chat,
 * whose first token <|im_start|> stands where a BOS would); at every layer input l >= 1 take
 * the first position's hidden state and keep the dimensions with |x_d| >= ratio x median |x|
 * and |x_d| >= floor (avl_sink_find_dims); D = the dimensions kept at at least half of those
 * layers, ordered by how many layers keep them, then by their largest |x_d|. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *USAGE =
    "usage: avlens sinkdims --model DIR [--text TEXT] [--ratio R] [--floor F] [--max N]\n"
    "                       [--backend NAME] [--threads N]\n\n"
    "Finds the massive-activation dimensions of the backbone from the first token's layer-input\n"
    "hidden states and prints them as JSON (per layer and the consensus D).\n\n"
    "  --model DIR     a Qwen2.5-Omni checkpoint folder (its tokenizer too)\n"
    "  --text TEXT     the text to run (default: \"<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n\")\n"
    "  --ratio R       |x_d| must reach R x the median |x| of the token (default 100)\n"
    "  --floor F       and at least F (default 20)\n"
    "  --max N         at most N dimensions per layer (default 8)\n"
    "  --backend NAME  auto (default), ref, onednn, openblas\n"
    "  --threads N     worker threads (default: all cores)\n";

typedef struct {
    float *first; /* (n_layers, H): the first position's layer inputs */
} grab;

static void grab_fn(void *user, int layer, int64_t p0, int64_t n, int64_t dim, const float *x)
{
    grab *g = user;
    if (p0 == 0 && n > 0) memcpy(g->first + (int64_t)layer * dim, x, (size_t)dim * sizeof(float));
}

static bool parse_pos_double(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return end != s && !*end && *out >= 0;
}

int avl_cmd_sinkdims(int argc, char **argv)
{
    const char *model = NULL, *backend = "auto";
    const char *text = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
    double ratio = 100, floor_abs = 20;
    long long max = 8, threads = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"text", required_argument, 0, 'x'},
        {"ratio", required_argument, 0, 'r'}, {"floor", required_argument, 0, 'f'},
        {"max", required_argument, 0, 'n'},   {"backend", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'x': text = optarg; break;
        case 'b': backend = optarg; break;
        case 'r':
            if (!parse_pos_double(optarg, &ratio)) return cli_usage_error("sinkdims", "--ratio wants a number >= 0");
            break;
        case 'f':
            if (!parse_pos_double(optarg, &floor_abs)) return cli_usage_error("sinkdims", "--floor wants a number >= 0");
            break;
        case 'n': if (!cli_parse_int("sinkdims", "--max", optarg, &max)) return 2; break;
        case 't': if (!cli_parse_int("sinkdims", "--threads", optarg, &threads)) return 2; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: return cli_usage_error("sinkdims", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("sinkdims", "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_usage_error("sinkdims", "--model is required");
    if (max < 1 || max > 64) return cli_usage_error("sinkdims", "--max must be 1..64");

    avl_model_params mp = avl_model_default_params();
    mp.backend = backend;
    mp.threads = (int)threads;
    avl_model *m = NULL;
    avl_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    avl_token_map *map = NULL;
    float *embeds = NULL;
    avl_plan *plan = NULL;
    avl_run *run = NULL;
    grab g = {0};
    int *votes = NULL;
    float *peak = NULL;
    int exit_code = 1;
    avl_status rc;
    if ((rc = avl_model_load(model, &mp, &m))) goto fail;
    if ((rc = avl_tokenizer_load(model, &tok))) goto fail;
    if ((rc = avl_tokenizer_encode(tok, text, strlen(text), &ids, &n))) goto fail;
    if (n == 0) {
        fprintf(stderr, "avlens sinkdims: the text has no tokens\n");
        goto done;
    }
    const avl_config *cfg = avl_model_config(m);
    int64_t H = cfg->text.hidden_size;
    int nl = (int)cfg->text.num_hidden_layers;
    avl_seq_params sp = avl_model_seq_params(m);
    avl_media_shape ms = {0};
    if ((rc = avl_seq_positions(&sp, ids, n, &ms, false, &map))) goto fail;
    if (!(embeds = malloc((size_t)(n * H) * sizeof *embeds)) || !(g.first = calloc((size_t)(nl * H), sizeof(float))) ||
        !(votes = calloc((size_t)H, sizeof *votes)) || !(peak = calloc((size_t)H, sizeof *peak))) {
        rc = AVL_E_NOMEM;
        goto fail;
    }
    if ((rc = avl_run_embed_tokens(m, ids, n, embeds))) goto fail;
    if ((rc = avl_plan_new(m, map, &plan))) goto fail;
    if ((rc = avl_plan_on_site(plan, AVL_SITE_RESID, 0, nl, grab_fn, &g))) goto fail;
    if ((rc = avl_run_new(m, n, &run))) goto fail;
    if ((rc = avl_run_forward(run, embeds, map->pos, n, n, avl_plan_hooks(plan), NULL, 0))) goto fail;

    json_t *o = json_object(), *layers = json_array();
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "first_token", json_integer(ids[0]));
    json_object_set_new(o, "ratio", json_real(ratio));
    json_object_set_new(o, "floor", json_real(floor_abs));
    int counted = 0;
    for (int l = 1; l < nl; l++) {
        int64_t d[64];
        int nd = 0;
        const float *x = g.first + (int64_t)l * H;
        if ((rc = avl_sink_find_dims(x, H, ratio, floor_abs, d, (int)max, &nd))) {
            json_decref(o);
            json_decref(layers);
            goto fail;
        }
        counted++;
        json_t *e = json_object(), *dl = json_array(), *vl = json_array();
        for (int i = 0; i < nd; i++) {
            json_array_append_new(dl, json_integer(d[i]));
            json_array_append_new(vl, json_real(x[d[i]]));
            votes[d[i]]++;
            if (fabsf(x[d[i]]) > peak[d[i]]) peak[d[i]] = fabsf(x[d[i]]);
        }
        json_object_set_new(e, "layer", json_integer(l));
        json_object_set_new(e, "dims", dl);
        json_object_set_new(e, "values", vl);
        json_array_append_new(layers, e);
    }
    json_object_set_new(o, "layers", layers);
    /* consensus: kept at >= half of the layers; most votes first, then the larger peak */
    json_t *dims = json_array();
    for (;;) {
        int64_t best = -1;
        for (int64_t d = 0; d < H; d++) {
            if (votes[d] * 2 < counted || votes[d] == 0) continue;
            if (best < 0 || votes[d] > votes[best] || (votes[d] == votes[best] && peak[d] > peak[best])) best = d;
        }
        if (best < 0) break;
        json_array_append_new(dims, json_integer(best));
        votes[best] = 0;
    }
    json_object_set_new(o, "dims", dims);
    if ((rc = cli_print_json(o, JSON_INDENT(1) | JSON_REAL_PRECISION(7)))) goto fail;
    exit_code = 0;
    goto done;
fail:
    exit_code = cli_fail("sinkdims", rc);
done:
    avl_run_free(run);
    avl_plan_free(plan);
    avl_token_map_free(map);
    free(embeds);
    free(g.first);
    free(votes);
    free(peak);
    avl_tokenizer_free_mem(ids);
    avl_tokenizer_free(tok);
    avl_model_free(m);
    return exit_code;
}
