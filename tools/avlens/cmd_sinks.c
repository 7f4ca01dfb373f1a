/* tools/avlens/cmd_sinks.c: `avlens sinks`: one prefill of a clip, its sinks (App. A.1) and
 * the MDS of each sink (Sec. 5.1), as JSON: per layer sink counts, the global sinks with their
 * modality, time and grid from the token map, frequency, MDS per layer and layer mean, and the
 * unimodal / cross-modal split of the video and audio sinks. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_dataset.h"
#include "cli_inputs.h"

static const char *USAGE =
    "usage: avlens sinks --model DIR (--inputs IN.safetensors | --video CLIP) [--prompt TEXT]\n"
    "                    [--k-divide N] [--tau T] [--dims D1,D2,...] [--use-audio-in-video]\n"
    "                    [--fast-processor] [--backend NAME] [--threads N]\n\n"
    "Runs the prompt once, finds the sink tokens from the layer-input hidden states\n"
    "(phi = max over the sink dimensions of |RMSNorm(x)_d| > tau, global top floor(L/N) by\n"
    "layer frequency) and their modality dominance score from the prefill attention, and prints\n"
    "them as JSON.\n\n"
    "  --model DIR            a Qwen2.5-Omni checkpoint folder\n"
    "  --inputs FILE          processor tensors (as avlens forward reads them)\n"
    "  --video CLIP           a video file with its audio track (use_audio_in_video)\n"
    "  --prompt TEXT          the user's text after the video (default: the paper's captioning\n"
    "                         prompt \"Describe what you see and hear in a single sentence.\")\n"
    "  --k-divide N           K = floor(L / N) global sinks (default 2)\n"
    "  --tau T                threshold (default: the paper's for this model, else 25)\n"
    "  --dims LIST            sink dimensions (default: the paper's for this model; see avlens sinkdims)\n"
    "  --use-audio-in-video   with --inputs: the audio belongs to the video\n"
    "  --fast-processor       with --video: the fast image processor's normalisation\n"
    "  --backend NAME         auto (default), ref, onednn, openblas\n"
    "  --threads N            worker threads (default: all cores)\n\n"
    "Over a data set (--manifest): see avlens sinks --manifest x --help.\n";

static const char USAGE_DS[] =
    "usage: avlens sinks --manifest FILE --model DIR --out DIR [--media-root DIR] [--shard i/n]\n"
    "                    [--k-divide N1,N2,...] [--mds-divide N] [--tau T] [--dims D1,D2,...] [options]\n\n"
    "For each sample of the manifest (its own prompt) runs one prefill and writes two records:\n"
    "OUT/sinks/ (per-layer sink counts, the layer frequency of each position, the global sinks for\n"
    "each N) and OUT/mds/ (MDS per layer of each global sink of N = --mds-divide, their attention\n"
    "from video and audio queries, and the unimodal / cross-modal split), as docs/records.md says.\n"
    "Resumable and shardable as avlens dominance.\n\n"
    "  --k-divide LIST        the N of the global sinks, K = floor(L / N) (default 2,3: tracing, ASD)\n"
    "  --mds-divide N         the N whose sinks get MDS records (default: the first of --k-divide)\n"
    "  --tau T, --dims LIST   as without --manifest\n" CLI_DS_OPTIONS_HELP;

static const char *KIND[] = {"text", "special", "audio", "video", "image"};

static json_t *num_or_null(double x) { return isnan(x) ? json_null() : json_real(x); }

static json_t *id_list(const int64_t *v, int64_t n)
{
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}


/* The split of one modality's sinks as {"unimodal": [...], "<cross>": [...]}. */
static json_t *split_json_key(const avl_mds *md, const int64_t *list, int64_t n, bool video, const char *cross)
{
    json_t *o = json_object();
    int64_t *idx = malloc((size_t)(n + 1) * sizeof *idx), *order = malloc((size_t)(n + 1) * sizeof *order);
    double *mean = malloc((size_t)(n + 1) * sizeof *mean);
    int64_t n_uni = 0;
    if (idx && order && mean) {
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < md->n; j++)
                if (md->sinks[j] == list[i]) mean[i] = md->mean[j];
        avl_mds sub = {.n = n, .sinks = (int64_t *)list, .mean = mean};
        if (avl_mds_split(&sub, video, order, &n_uni) == AVL_OK) {
            json_object_set_new(o, "unimodal", id_list(order, n_uni));
            json_object_set_new(o, cross, id_list(order + n_uni, n - n_uni));
        }
    }
    free(idx);
    free(order);
    free(mean);
    return o;
}

static json_t *split_json(const avl_mds *md, const int64_t *list, int64_t n, bool video)
{
    return split_json_key(md, list, n, video, "cross_modal");
}

/* The one prefill both routes make: the phi observer (sinks) and the received-attention
 * observer (MDS) on the whole prompt. No logits are needed (the sinks read hidden states and
 * attention only), so lm_head is not run. *plan owns *rx; the caller frees plan and phi. */
static avl_status sinks_prefill(const avl_model *m, const avl_token_map *map, const float *embeds,
                                const avl_sink_params *sp, avl_plan **plan, avl_phi_table **phi, avl_received **rx)
{
    int nl = (int)avl_model_config(m)->text.num_hidden_layers;
    avl_run *run = NULL;
    avl_status rc = avl_plan_new(m, map, plan);
    if (!rc) rc = avl_sinks_observe(*plan, sp, phi);
    if (!rc) rc = avl_plan_observe_received(*plan, 0, nl, rx);
    if (!rc) rc = avl_run_new(m, map->n > 0 ? map->n : 1, &run);
    if (!rc) rc = avl_run_forward(run, embeds, map->pos, map->n, map->n, avl_plan_hooks(*plan), NULL, 0);
    avl_run_free(run);
    return rc;
}

static int sinks_dataset(int argc, char **argv);

int avl_cmd_sinks(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--manifest") || !strncmp(argv[i], "--manifest=", 11)) return sinks_dataset(argc, argv);
    const char *model = NULL, *inputs = NULL, *video = NULL, *dims = NULL, *backend = "auto";
    const char *prompt = "Describe what you see and hear in a single sentence.";
    bool aiv = false, fast = false;
    long long kdiv = 2, threads = 0;
    double tau = -1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},  {"inputs", required_argument, 0, 'i'},
        {"video", required_argument, 0, 'v'},  {"prompt", required_argument, 0, 'p'},
        {"k-divide", required_argument, 0, 'k'}, {"tau", required_argument, 0, 'T'},
        {"dims", required_argument, 0, 'd'},   {"use-audio-in-video", no_argument, 0, 'u'},
        {"fast-processor", no_argument, 0, 'f'}, {"backend", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'i': inputs = optarg; break;
        case 'v': video = optarg; break;
        case 'p': prompt = optarg; break;
        case 'd': dims = optarg; break;
        case 'u': aiv = true; break;
        case 'f': fast = true; break;
        case 'b': backend = optarg; break;
        case 'k': if (!cli_parse_int("sinks", "--k-divide", optarg, &kdiv)) return 2; break;
        case 't': if (!cli_parse_int("sinks", "--threads", optarg, &threads)) return 2; break;
        case 'T': {
            char *end;
            tau = strtod(optarg, &end);
            if (end == optarg || *end || !(tau >= 0)) return cli_usage_error("sinks", "--tau wants a number >= 0");
            break;
        }
        case 'h': fputs(USAGE, stdout); return 0;
        default: return cli_usage_error("sinks", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("sinks", "unexpected argument '%s'", argv[optind]);
    if (!model || (!inputs == !video))
        return cli_usage_error("sinks", "--model and one of --inputs or --video are required");
    if (kdiv < 1) return cli_usage_error("sinks", "--k-divide must be at least 1");

    avl_model_params mp = avl_model_default_params();
    mp.backend = backend;
    mp.threads = (int)threads;
    avl_model *m = NULL;
    cli_inputs in = {0};
    float *embeds = NULL;
    avl_token_map *map = NULL;
    avl_plan *plan = NULL;
    avl_phi_table *phi = NULL;
    avl_received *rx = NULL;
    avl_sinks *s = NULL;
    avl_mds *md = NULL;
    int exit_code = 1;
    avl_status rc;
    if ((rc = avl_model_load(model, &mp, &m))) goto fail;
    const avl_config *cfg = avl_model_config(m);
    avl_sink_params sp;
    avl_sink_default_params(cfg, &sp);
    if (tau >= 0) sp.tau = tau;
    if (dims && !cli_parse_dims(dims, &sp)) {
        exit_code = cli_usage_error("sinks", "--dims wants a comma-separated list of dimensions, got '%s'", dims);
        goto done;
    }
    if (sp.n_dims == 0) {
        fprintf(stderr,
                "avlens sinks: %s: no known sink dimensions for this model: give --dims (avlens sinkdims finds them)\n",
                model);
        goto done;
    }
    if (inputs ? !cli_inputs_from_file("sinks", inputs, cfg, aiv, &in)
               : !cli_inputs_from_video("sinks", model, m, video, prompt, fast, &in))
        goto done;
    if ((rc = avl_thinker_embed(m, &in.ti, &embeds, &map, NULL))) goto fail;
    int nl = (int)cfg->text.num_hidden_layers;
    if ((rc = sinks_prefill(m, map, embeds, &sp, &plan, &phi, &rx))) goto fail;
    if ((rc = avl_sinks_find(phi, sp.tau, map, kdiv, &s))) goto fail;
    if ((rc = avl_mds_compute(rx, s->global, s->n_global, &md))) goto fail;

    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "L", json_integer(map->n));
    json_object_set_new(o, "n_layers", json_integer(nl));
    json_object_set_new(o, "n_video", json_integer(map->n_video));
    json_object_set_new(o, "n_audio", json_integer(map->n_audio));
    json_object_set_new(o, "dims", id_list(sp.dims, sp.n_dims));
    json_object_set_new(o, "tau", json_real(sp.tau));
    json_object_set_new(o, "k_divide", json_integer(kdiv));
    json_object_set_new(o, "K", json_integer(s->K));
    json_object_set_new(o, "layer_counts", id_list(s->layer_count, nl));
    json_t *arr = json_array();
    for (int64_t i = 0; i < s->n_global; i++) {
        int64_t p = s->global[i];
        const avl_token_info *t = &map->tok[p];
        json_t *e = json_object();
        json_object_set_new(e, "rank", json_integer(i));
        json_object_set_new(e, "pos", json_integer(p));
        json_object_set_new(e, "freq", json_integer(s->freq[p]));
        json_object_set_new(e, "kind", json_string(t->kind >= 0 && t->kind <= 4 ? KIND[(int)t->kind] : "?"));
        if (t->kind == AVL_TOK_VIDEO || t->kind == AVL_TOK_AUDIO || t->kind == AVL_TOK_IMAGE) {
            json_object_set_new(e, "item", json_integer(t->item));
            json_object_set_new(e, "index", json_integer(t->index));
            json_object_set_new(e, "chunk", json_integer(t->chunk));
            json_object_set_new(e, "t0", json_real(t->t0));
            json_object_set_new(e, "t1", json_real(t->t1));
            if (t->kind != AVL_TOK_AUDIO) {
                json_object_set_new(e, "t", json_integer(t->t));
                json_object_set_new(e, "row", json_integer(t->row));
                json_object_set_new(e, "col", json_integer(t->col));
            }
        }
        json_object_set_new(e, "mds_mean", num_or_null(md->mean[i]));
        json_t *per = json_array();
        for (int l = 0; l < md->n_layers; l++) json_array_append_new(per, num_or_null(md->mds[i * md->n_layers + l]));
        json_object_set_new(e, "mds", per);
        json_array_append_new(arr, e);
    }
    json_object_set_new(o, "sinks", arr);
    json_object_set_new(o, "video_split", split_json(md, s->video, s->n_video, true));
    json_object_set_new(o, "audio_split", split_json(md, s->audio, s->n_audio, false));
    if ((rc = cli_print_json(o, JSON_INDENT(1) | JSON_REAL_PRECISION(9)))) goto fail;
    exit_code = 0;
    goto done;
fail:
    exit_code = cli_fail("sinks", rc);
done:
    avl_mds_free(md);
    avl_sinks_free(s);
    avl_plan_free(plan);
    avl_phi_free(phi);
    avl_token_map_free(map);
    avl_free(embeds);
    cli_inputs_free(&in);
    avl_model_free(m);
    return exit_code;
}

/* ---- over a data set: sinks and mds records ---- */

#define MAX_DIVIDES 8

typedef struct {
    avl_sink_params sp;
    int64_t divides[MAX_DIVIDES];
    int n_divides;
    int64_t mds_divide;
} sinks_ds_ctx;

static bool parse_divides(const char *s, sinks_ds_ctx *c)
{
    c->n_divides = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 1 || c->n_divides == MAX_DIVIDES) return false;
        c->divides[c->n_divides++] = v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return false;
    }
    return c->n_divides > 0;
}

static const char *kind_name(avl_tok_kind k) { return k >= 0 && k <= 4 ? KIND[(int)k] : "?"; }

static avl_status sinks_one(void *user, const cli_ds *d, const avl_sample *smp, char **json)
{
    const sinks_ds_ctx *c = user;
    const avl_config *cfg = avl_model_config(d->m);
    int nl = (int)cfg->text.num_hidden_layers;
    cli_inputs in;
    float *embeds = NULL;
    avl_token_map *map = NULL;
    avl_plan *plan = NULL;
    avl_phi_table *phi = NULL;
    avl_received *rx = NULL;
    avl_sinks *s = NULL;
    avl_mds *md = NULL;
    avl_status rc = cli_ds_sample_inputs(d, smp, &in);
    if (rc) return rc;
    if ((rc = avl_thinker_embed(d->m, &in.ti, &embeds, &map, NULL))) goto done;
    if ((rc = sinks_prefill(d->m, map, embeds, &c->sp, &plan, &phi, &rx))) goto done;

    /* the sinks record */
    json_t *o = cli_ds_record_new(d, smp);
    json_object_set_new(o, "n_tokens", json_integer(map->n));
    json_object_set_new(o, "n_layers", json_integer(nl));
    json_object_set_new(o, "tau", json_real(c->sp.tau));
    json_object_set_new(o, "dims", id_list(c->sp.dims, c->sp.n_dims));
    json_t *seg = json_array();
    for (int64_t i = 0; i < map->n;) {
        int64_t j = i;
        while (j < map->n && map->tok[j].kind == map->tok[i].kind) j++;
        json_t *e = json_object();
        json_object_set_new(e, "modality", json_string(kind_name(map->tok[i].kind)));
        json_object_set_new(e, "start", json_integer(i));
        json_object_set_new(e, "end", json_integer(j));
        json_array_append_new(seg, e);
        i = j;
    }
    json_object_set_new(o, "segments", seg);
    json_t *glob = json_object();
    for (int k = 0; k < c->n_divides && !rc; k++) {
        avl_sinks *sk = NULL;
        if ((rc = avl_sinks_find(phi, c->sp.tau, map, c->divides[k], &sk))) break;
        if (k == 0) {
            json_object_set_new(o, "layer_counts", id_list(sk->layer_count, nl));
            json_t *freq = json_array();
            for (int64_t p = 0; p < map->n; p++)
                if (sk->freq[p] > 0) {
                    json_t *pair = json_array();
                    json_array_append_new(pair, json_integer(p));
                    json_array_append_new(pair, json_integer(sk->freq[p]));
                    json_array_append_new(freq, pair);
                }
            json_object_set_new(o, "freq", freq);
        }
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)c->divides[k]);
        json_object_set_new(glob, key, id_list(sk->global, sk->n_global));
        avl_sinks_free(sk);
    }
    json_object_set_new(o, "global", glob);
    if (rc) {
        json_decref(o);
        goto done;
    }
    if (!(json[0] = cli_ds_record_dump(o))) {
        rc = AVL_E_NOMEM;
        goto done;
    }

    /* the mds record */
    if ((rc = avl_sinks_find(phi, c->sp.tau, map, c->mds_divide, &s))) goto done;
    if ((rc = avl_mds_compute(rx, s->global, s->n_global, &md))) goto done;
    o = cli_ds_record_new(d, smp);
    json_object_set_new(o, "n_divide", json_integer(c->mds_divide));
    json_object_set_new(o, "n_layers", json_integer(nl));
    json_t *arr = json_array();
    for (int64_t i = 0; i < md->n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "pos", json_integer(md->sinks[i]));
        json_object_set_new(e, "modality", json_string(kind_name(map->tok[md->sinks[i]].kind)));
        json_t *v[3] = {json_array(), json_array(), json_array()};
        for (int l = 0; l < md->n_layers; l++) {
            json_array_append_new(v[0], num_or_null(md->mds[i * md->n_layers + l]));
            json_array_append_new(v[1], num_or_null(md->a_v[i * md->n_layers + l]));
            json_array_append_new(v[2], num_or_null(md->a_a[i * md->n_layers + l]));
        }
        json_object_set_new(e, "mds", v[0]);
        json_object_set_new(e, "a_v", v[1]);
        json_object_set_new(e, "a_a", v[2]);
        json_array_append_new(arr, e);
    }
    json_object_set_new(o, "sinks", arr);
    json_t *split = json_object();
    json_object_set_new(split, "video", split_json_key(md, s->video, s->n_video, true, "crossmodal"));
    json_object_set_new(split, "audio", split_json_key(md, s->audio, s->n_audio, false, "crossmodal"));
    json_object_set_new(o, "split", split);
    if (!(json[1] = cli_ds_record_dump(o))) rc = AVL_E_NOMEM;
done:
    avl_mds_free(md);
    avl_sinks_free(s);
    avl_plan_free(plan);
    avl_phi_free(phi);
    avl_token_map_free(map);
    avl_free(embeds);
    cli_inputs_free(&in);
    return rc;
}

static int sinks_dataset(int argc, char **argv)
{
    cli_ds d;
    cli_ds_init(&d, "sinks");
    sinks_ds_ctx c = {.n_divides = 2, .divides = {2, 3}, .mds_divide = 0};
    const char *dims = NULL;
    double tau = -1;
    enum { O_KDIV = 1, O_MDSDIV, O_TAU, O_DIMS };
    static const struct option opts[] = {CLI_DS_LONG_OPTIONS,
                                         {"k-divide", required_argument, 0, O_KDIV},
                                         {"mds-divide", required_argument, 0, O_MDSDIV},
                                         {"tau", required_argument, 0, O_TAU},
                                         {"dims", required_argument, 0, O_DIMS},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    optind = 1;
    for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        long long v;
        switch (o) {
        case 'h': fputs(USAGE_DS, stdout); return 0;
        case O_KDIV:
            if (!parse_divides(optarg, &c))
                return cli_usage_error("sinks", "--k-divide wants a comma-separated list of N >= 1, got '%s'", optarg);
            break;
        case O_MDSDIV:
            if (!cli_parse_int("sinks", "--mds-divide", optarg, &v)) return 2;
            if (v < 1) return cli_usage_error("sinks", "--mds-divide must be at least 1");
            c.mds_divide = v;
            break;
        case O_TAU: {
            char *end;
            tau = strtod(optarg, &end);
            if (end == optarg || *end || !(tau >= 0)) return cli_usage_error("sinks", "--tau wants a number >= 0");
            break;
        }
        case O_DIMS: dims = optarg; break;
        default: {
            int t = cli_ds_option(&d, o, optarg);
            if (t == 1) return cli_usage_error("sinks", "unknown option");
            if (t) return t;
        }
        }
    }
    if (optind < argc) return cli_usage_error("sinks", "unexpected argument '%s'", argv[optind]);
    if (c.mds_divide == 0) c.mds_divide = c.divides[0];
    int code = cli_ds_open(&d);
    if (!code) {
        avl_sink_default_params(avl_model_config(d.m), &c.sp);
        if (tau >= 0) c.sp.tau = tau;
        if (dims && !cli_parse_dims(dims, &c.sp))
            code = cli_usage_error("sinks", "--dims wants a comma-separated list of dimensions, got '%s'", dims);
        else if (c.sp.n_dims == 0) {
            fprintf(stderr, "avlens sinks: %s: no known sink dimensions for this model: give --dims (avlens sinkdims finds them)\n",
                    d.model_dir);
            code = 1;
        } else {
            static const char *const names[] = {"sinks", "mds"};
            code = cli_ds_run(&d, names, 2, sinks_one, &c);
        }
    }
    cli_ds_close(&d);
    return code;
}

/* `avlens mds`: the name the paper's readers look for. MDS needs the sinks and the attention of
 * the same prefill, so it is the sinks run: one clip prints both as JSON, a manifest writes
 * OUT/sinks/ and OUT/mds/ records. */
int avl_cmd_mds(int argc, char **argv)
{
    bool help = false;
    for (int i = 1; i < argc; i++) help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    if (help)
        fputs("avlens mds is avlens sinks (the modality dominance score of each sink is computed from the\n"
              "same prefill as the sinks): with --manifest it writes OUT/sinks/ and OUT/mds/ records,\n"
              "otherwise it prints the sinks of one clip with their MDS as JSON. Its options:\n\n",
              stdout);
    return avl_cmd_sinks(argc, argv);
}
