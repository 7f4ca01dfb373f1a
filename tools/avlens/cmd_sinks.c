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
    "  --threads N            worker threads (default: all cores)\n";

static const char *KIND[] = {"text", "special", "audio", "video", "image"};

static json_t *num_or_null(double x) { return isnan(x) ? json_null() : json_real(x); }

static json_t *id_list(const int64_t *v, int64_t n)
{
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

static bool parse_dims(const char *s, avl_sink_params *p)
{
    p->n_dims = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || p->n_dims == AVL_SINK_MAX_DIMS) return false;
        p->dims[p->n_dims++] = v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return false;
    }
    return p->n_dims > 0;
}

/* The split of one modality's sinks as {"unimodal": [...], "cross_modal": [...]}. */
static json_t *split_json(const avl_mds *md, const int64_t *list, int64_t n, bool video)
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
            json_object_set_new(o, "cross_modal", id_list(order + n_uni, n - n_uni));
        }
    }
    free(idx);
    free(order);
    free(mean);
    return o;
}

int avl_cmd_sinks(int argc, char **argv)
{
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
    if (!model || (!inputs == !video)) return cli_usage_error("sinks", "--model and one of --inputs or --video are required");
    if (kdiv < 1) return cli_usage_error("sinks", "--k-divide must be at least 1");

    avl_model_params mp = avl_model_default_params();
    mp.backend = backend;
    mp.threads = (int)threads;
    avl_model *m = NULL;
    cli_inputs in = {0};
    float *embeds = NULL, *logits = NULL;
    avl_token_map *map = NULL;
    avl_plan *plan = NULL;
    avl_phi_table *phi = NULL;
    avl_received *rx = NULL;
    avl_sinks *s = NULL;
    avl_mds *md = NULL;
    avl_run *run = NULL;
    int exit_code = 1;
    avl_status rc;
    if ((rc = avl_model_load(model, &mp, &m))) goto fail;
    const avl_config *cfg = avl_model_config(m);
    avl_sink_params sp;
    avl_sink_default_params(cfg, &sp);
    if (tau >= 0) sp.tau = tau;
    if (dims && !parse_dims(dims, &sp)) {
        exit_code = cli_usage_error("sinks", "--dims wants a comma-separated list of dimensions, got '%s'", dims);
        goto done;
    }
    if (sp.n_dims == 0) {
        fprintf(stderr, "avlens sinks: %s: no known sink dimensions for this model: give --dims (avlens sinkdims finds them)\n",
                model);
        goto done;
    }
    if (inputs ? !cli_inputs_from_file("sinks", inputs, cfg, aiv, &in)
               : !cli_inputs_from_video("sinks", model, m, video, prompt, fast, &in))
        goto done;
    if ((rc = avl_thinker_embed(m, &in.ti, &embeds, &map, NULL))) goto fail;
    int nl = (int)cfg->text.num_hidden_layers;
    if ((rc = avl_plan_new(m, map, &plan))) goto fail;
    if ((rc = avl_sinks_observe(plan, &sp, &phi))) goto fail;
    if ((rc = avl_plan_observe_received(plan, 0, nl, &rx))) goto fail;
    if (!(logits = malloc((size_t)cfg->text.vocab_size * sizeof *logits))) {
        rc = AVL_E_NOMEM;
        goto fail;
    }
    if ((rc = avl_run_new(m, map->n > 0 ? map->n : 1, &run))) goto fail;
    if ((rc = avl_run_forward(run, embeds, map->pos, map->n, map->n, avl_plan_hooks(plan), logits, map->n > 0))) goto fail;
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
    char *text = json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!text) {
        rc = AVL_E_NOMEM;
        goto fail;
    }
    puts(text);
    free(text);
    exit_code = 0;
    goto done;
fail:
    exit_code = cli_fail("sinks", rc);
done:
    avl_mds_free(md);
    avl_sinks_free(s);
    avl_run_free(run);
    avl_plan_free(plan);
    avl_phi_free(phi);
    avl_token_map_free(map);
    avl_free(embeds);
    free(logits);
    cli_inputs_free(&in);
    avl_model_free(m);
    return exit_code;
}
