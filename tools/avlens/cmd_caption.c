/* tools/avlens/cmd_caption.c: `avlens caption`: captions with a decoding method (vanilla, ASD,
 * reverse ASD, PAI, VCD; include/avlens/decode.h, docs/decoding.md), for one clip (printed) or
 * for a manifest (one JSONL record per clip, {"id", "caption", "method", "dataset"}, the input
 * of `avlens chair --captions`; resumable and shardable as every data-set command). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *USAGE =
    "usage: avlens caption --model DIR (--video CLIP [--use-audio-in-video] | --frames F1,F2,... [--audio A]\n"
    "                      | --manifest M --out DIR [--shard i/n] [--media-root R] [--dataset NAME])\n"
    "                      [--decode METHOD] [--max-new-tokens N] [--prompt TEXT] [method options]\n\n"
    "Captions a clip with a decoding method (greedy). With --manifest, writes one record per clip\n"
    "to DIR/caption.<method>/shard-<i>-of-<n>.jsonl ({\"id\", \"caption\", \"method\", \"dataset\"}),\n"
    "skipping clips already on file, as avlens chair --captions reads them.\n\n"
    "  --decode METHOD        vanilla (default), asd, reverse-asd, pai, vcd\n"
    "  --prompt TEXT          default \"Describe what you see and hear in a single sentence.\"\n"
    "  --max-new-tokens N     default 64\n"
    "  --alpha A              edit / contrast strength (asd 0.6, pai 0.2, vcd 1.0)\n"
    "  --edit-layers A-B      layers whose attention is edited (default 6-last: \"after layer 5\")\n"
    "  --sink-n N             asd: K = floor(L / N) global sinks (3)\n"
    "  --tau T --dims D1,D2   asd: sink threshold and dimensions (default: the paper's for the model)\n"
    "  --gamma-base G         asd: 0.5          --gamma-max G   asd: 0.6\n"
    "  --text-mass M          asd: 0.4          --gate W        asd: 0.2 (cosine gate width)\n"
    "  --w-floor F            asd: 0.6          --momentum M    asd: 0.5\n"
    "  --target-layers A-B    asd: layers of the gamma statistics (18-25, clamped to the depth)\n"
    "  --cross-share          asd: w_t = the cross-modal share (the released code) instead of the unimodal\n"
    "  --no-shared-prefix     asd: two full prefills instead of one shared audio-visual prefix\n"
    "  --no-batch             step the passes one by one instead of as one batch (same tokens)\n"
    "  --pai-gamma G          pai: 1.1          --beta B        pai, vcd: plausibility cut-off (0.1)\n"
    "  --noise-step T         vcd: 500          --seed S        vcd: noise seed (0)\n"
    "  --backend NAME         auto (default), ref, onednn, openblas\n"
    "  --threads N            worker threads (default: all cores)\n";

enum {
    O_MODEL = 256, O_VIDEO, O_AIV, O_FRAMES, O_AUDIO, O_MANIFEST, O_OUT, O_SHARD, O_ROOT, O_DATASET, O_DECODE, O_PROMPT,
    O_MAXNEW, O_ALPHA, O_EDIT, O_SINKN, O_TAU, O_DIMS, O_GBASE, O_GMAX, O_TEXTMASS, O_GATE, O_WFLOOR, O_MOM,
    O_TARGET, O_CROSS, O_NOSHARE, O_NOBATCH, O_PAIG, O_BETA, O_NOISE, O_SEED, O_BACKEND, O_THREADS
};

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

/* "A-B" inclusive -> [A, B + 1) */
static bool parse_range(const char *s, int *a, int *b)
{
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || *end != '-' || x < 0) return false;
    const char *t = end + 1;
    long y = strtol(t, &end, 10);
    if (end == t || *end || y < x || y > 100000) return false;
    *a = (int)x;
    *b = (int)y + 1;
    return true;
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

static long split_list(char *s, char ***items)
{
    long n = 1;
    for (char *p = s; *p; p++) n += *p == ',';
    char **v = malloc(sizeof(char *) * (size_t)n);
    if (!v) return -1;
    long k = 0;
    for (char *tok = s;; k++) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = '\0';
        if (!*tok) {
            free(v);
            return -1;
        }
        v[k] = tok;
        if (!comma) break;
        tok = comma + 1;
    }
    *items = v;
    return k + 1;
}

typedef struct {
    avl_model *m;
    avl_tokenizer *tok;
    avl_decode_params dp;
    const char *prompt;
    int32_t stops[2];
} ctx;

/* One clip -> its caption (malloc'd). On failure the library's last error says why. */
static avl_status caption_one(ctx *c, const char *video, const char *const *frames, int64_t n_frames, const char *audio,
                              bool aiv, const char *system, char **out)
{
    *out = NULL;
    avl_features_params fp = avl_features_default_params();
    fp.use_audio_in_video = aiv;
    avl_features *f = NULL;
    avl_prompt *pr = NULL;
    avl_decode_input di = {0};
    avl_decode_result res = {0};
    avl_status rc = video ? avl_features_from_video(video, audio, &fp, &f)
                          : avl_features_from_frames(frames, n_frames, audio, &fp, &f);
    if (rc) goto done;
    avl_prompt_params pp = avl_prompt_default_params();
    pp.text = c->prompt;
    pp.system = system;
    pp.use_audio_in_video = aiv;
    avl_seq_params sp = avl_model_seq_params(c->m);
    if ((rc = avl_prompt_build(c->tok, &sp, f, &pp, &pr))) goto done;
    if ((rc = avl_decode_prepare(c->m, &pr->inputs, &c->dp, &di))) goto done;
    if ((rc = avl_decode(c->m, &di, &c->dp, &res))) goto done;
    int64_t n = res.n;
    for (int s = 0; s < c->dp.n_stop && n > 0; s++)
        if (res.ids[n - 1] == c->dp.stop_ids[s]) {
            n--;
            break;
        }
    char *text = NULL;
    size_t len;
    if ((rc = avl_tokenizer_decode(c->tok, res.ids, n, true, &text, &len))) goto done;
    *out = strdup(text);
    avl_tokenizer_free_mem(text);
    if (!*out) rc = AVL_E_NOMEM;
done:
    avl_decode_result_clear(&res);
    avl_decode_input_clear(&di);
    avl_prompt_free(pr);
    avl_features_free(f);
    return rc;
}

static int run_manifest(ctx *c, const char *manifest, const char *out_dir, const char *shard, const char *root,
                        const char *dataset, bool aiv)
{
    const char *cmd = "caption";
    int si = 0, sn = 1;
    if (shard && avl_shard_parse(shard, &si, &sn)) return cli_usage_error(cmd, "--shard wants i/n, got '%s'", shard);
    avl_dataset_params dsp = avl_dataset_default_params();
    dsp.media_root = root;
    avl_dataset *ds = NULL;
    avl_records *rec = NULL;
    avl_progress *pg = NULL;
    avl_status rc;
    int exit_code = 1;
    char analysis[64], *dsname = NULL;
    snprintf(analysis, sizeof analysis, "caption.%s", avl_decode_method_name(c->dp.method));
    if (!dataset) { /* the manifest's file name without folder and extension */
        const char *b = strrchr(manifest, '/');
        dsname = strdup(b ? b + 1 : manifest);
        if (dsname && strchr(dsname, '.')) *strchr(dsname, '.') = '\0';
        dataset = dsname;
    }
    if ((rc = avl_dataset_load(manifest, &dsp, &ds))) goto fail;
    cli_report_dataset_errors(cmd, ds);
    avl_records_params rp = avl_records_default_params();
    rp.dir = out_dir;
    rp.analysis = analysis;
    rp.shard_index = si;
    rp.shard_count = sn;
    if ((rc = avl_records_open(&rp, &rec))) goto fail;
    avl_progress_params pgp = avl_progress_default_params();
    pgp.label = analysis;
    pgp.fn = cli_progress_show;
    pgp.tty = isatty(2);
    int64_t total = 0;
    for (int64_t i = 0; i < avl_dataset_count(ds); i++) total += avl_shard_selects(avl_dataset_at(ds, i)->id, si, sn);
    pgp.total = total;
    if ((rc = avl_progress_new(&pgp, &pg))) goto fail;
    int64_t failed = 0;
    for (int64_t i = 0; i < avl_dataset_count(ds); i++) {
        const avl_sample *s = avl_dataset_at(ds, i);
        if (!avl_shard_selects(s->id, si, sn)) continue;
        if (avl_records_done(rec, s->id)) {
            avl_progress_skip(pg, 1);
            continue;
        }
        char *cap = NULL;
        rc = caption_one(c, s->video_path, s->frames, s->n_frames, s->audio_path, aiv, s->system_prompt, &cap);
        bool ok = rc == AVL_OK;
        if (rc == AVL_OK) {
            json_t *o = json_object();
            json_object_set_new(o, "id", json_string(s->id));
            json_object_set_new(o, "caption", json_string(cap));
            json_object_set_new(o, "method", json_string(avl_decode_method_name(c->dp.method)));
            json_object_set_new(o, "dataset", json_string(dataset));
            char *line = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            rc = line ? avl_records_append(rec, line) : AVL_E_NOMEM;
            free(line);
            if (rc) {
                free(cap);
                goto fail;
            }
        } else {
            failed++;
            if ((rc = avl_records_append_error(rec, s->id, rc, avl_last_error()))) {
                free(cap);
                goto fail;
            }
        }
        free(cap);
        avl_progress_step(pg, !ok);
    }
    avl_progress_finish(pg);
    fprintf(stderr, "avlens caption: %s\n", avl_records_path(rec));
    exit_code = failed ? 1 : 0;
    goto done;
fail:
    exit_code = cli_fail(cmd, rc);
done:
    avl_progress_free(pg);
    avl_records_close(rec);
    avl_dataset_free(ds);
    free(dsname);
    return exit_code;
}

int avl_cmd_caption(int argc, char **argv)
{
    const char *cmd = "caption";
    const char *model = NULL, *video = NULL, *audio = NULL, *manifest = NULL, *out_dir = NULL, *shard = NULL;
    const char *root = NULL, *dataset = NULL, *method = "vanilla", *backend = "auto", *dims = NULL;
    const char *prompt = "Describe what you see and hear in a single sentence.";
    char *frames_arg = NULL;
    bool aiv = false, cross = false, noshare = false, nobatch = false;
    long long max_new = 64, threads = 0, sink_n = -1, noise = -1, seed = 0;
    double alpha = -1, tau = -1, gbase = -1, gmax = -1, tmass = -1, gate = -1, wfloor = -1, mom = -1, paig = -1,
           beta = -1;
    const char *edit = NULL, *target = NULL;
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},       {"video", required_argument, 0, O_VIDEO},
        {"use-audio-in-video", no_argument, 0, O_AIV},  {"frames", required_argument, 0, O_FRAMES},
        {"audio", required_argument, 0, O_AUDIO},       {"manifest", required_argument, 0, O_MANIFEST},
        {"out", required_argument, 0, O_OUT},           {"shard", required_argument, 0, O_SHARD},
        {"media-root", required_argument, 0, O_ROOT},   {"dataset", required_argument, 0, O_DATASET},
        {"decode", required_argument, 0, O_DECODE},     {"prompt", required_argument, 0, O_PROMPT},
        {"max-new-tokens", required_argument, 0, O_MAXNEW}, {"alpha", required_argument, 0, O_ALPHA},
        {"edit-layers", required_argument, 0, O_EDIT},  {"sink-n", required_argument, 0, O_SINKN},
        {"tau", required_argument, 0, O_TAU},           {"dims", required_argument, 0, O_DIMS},
        {"gamma-base", required_argument, 0, O_GBASE},  {"gamma-max", required_argument, 0, O_GMAX},
        {"text-mass", required_argument, 0, O_TEXTMASS}, {"gate", required_argument, 0, O_GATE},
        {"w-floor", required_argument, 0, O_WFLOOR},    {"momentum", required_argument, 0, O_MOM},
        {"target-layers", required_argument, 0, O_TARGET}, {"cross-share", no_argument, 0, O_CROSS},
        {"no-shared-prefix", no_argument, 0, O_NOSHARE}, {"no-batch", no_argument, 0, O_NOBATCH}, {"pai-gamma", required_argument, 0, O_PAIG},
        {"beta", required_argument, 0, O_BETA},         {"noise-step", required_argument, 0, O_NOISE},
        {"seed", required_argument, 0, O_SEED},         {"backend", required_argument, 0, O_BACKEND},
        {"threads", required_argument, 0, O_THREADS},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    for (int o; (o = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        bool ok = true;
        switch (o) {
        case O_MODEL: model = optarg; break;
        case O_VIDEO: video = optarg; break;
        case O_AIV: aiv = true; break;
        case O_FRAMES: frames_arg = optarg; break;
        case O_AUDIO: audio = optarg; break;
        case O_MANIFEST: manifest = optarg; break;
        case O_OUT: out_dir = optarg; break;
        case O_SHARD: shard = optarg; break;
        case O_ROOT: root = optarg; break;
        case O_DATASET: dataset = optarg; break;
        case O_DECODE: method = optarg; break;
        case O_PROMPT: prompt = optarg; break;
        case O_MAXNEW: ok = cli_parse_int(cmd, "--max-new-tokens", optarg, &max_new); if (!ok) return 2; break;
        case O_SINKN: ok = cli_parse_int(cmd, "--sink-n", optarg, &sink_n); if (!ok) return 2; break;
        case O_NOISE: ok = cli_parse_int(cmd, "--noise-step", optarg, &noise); if (!ok) return 2; break;
        case O_SEED: ok = cli_parse_int(cmd, "--seed", optarg, &seed); if (!ok) return 2; break;
        case O_THREADS: ok = cli_parse_int(cmd, "--threads", optarg, &threads); if (!ok) return 2; break;
        case O_ALPHA: ok = parse_num(optarg, 0, 100, &alpha); break;
        case O_TAU: ok = parse_num(optarg, 0, 1e9, &tau); break;
        case O_GBASE: ok = parse_num(optarg, 0, 100, &gbase); break;
        case O_GMAX: ok = parse_num(optarg, 0, 100, &gmax); break;
        case O_TEXTMASS: ok = parse_num(optarg, 0, 1, &tmass); break;
        case O_GATE: ok = parse_num(optarg, 1e-9, 1, &gate); break;
        case O_WFLOOR: ok = parse_num(optarg, 1e-9, 1, &wfloor); break;
        case O_MOM: ok = parse_num(optarg, 0, 1, &mom); break;
        case O_PAIG: ok = parse_num(optarg, 0, 100, &paig); break;
        case O_BETA: ok = parse_num(optarg, 1e-12, 1, &beta); break;
        case O_EDIT: edit = optarg; break;
        case O_TARGET: target = optarg; break;
        case O_DIMS: dims = optarg; break;
        case O_CROSS: cross = true; break;
        case O_NOSHARE: noshare = true; break;
        case O_NOBATCH: nobatch = true; break;
        case O_BACKEND: backend = optarg; break;
        case 'h': fputs(USAGE, stdout); return 0;
        case ':': return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
        if (!ok) {
            const char *name = "?";
            for (int i = 0; opts[i].name; i++)
                if (opts[i].val == o) name = opts[i].name;
            return cli_usage_error(cmd, "--%s wants a number in range, got '%s'", name, optarg);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_usage_error(cmd, "--model is required");
    int inputs = (video != NULL) + (frames_arg != NULL) + (manifest != NULL);
    if (inputs != 1) return cli_usage_error(cmd, "give one of --video, --frames or --manifest");
    if (manifest && !out_dir) return cli_usage_error(cmd, "--manifest needs --out");
    if (!manifest && (out_dir || shard)) return cli_usage_error(cmd, "--out and --shard go with --manifest");
    if (max_new < 1) return cli_usage_error(cmd, "--max-new-tokens must be at least 1");
    if (sink_n == 0) return cli_usage_error(cmd, "--sink-n must be at least 1");
    if (noise > 999) return cli_usage_error(cmd, "--noise-step must be in 0-999");
    avl_decode_method dm;
    if (avl_decode_method_parse(method, &dm))
        return cli_usage_error(cmd, "--decode wants vanilla, asd, reverse-asd, pai or vcd, got '%s'", method);
    int e0 = 0, e1 = 0, t0 = 0, t1 = 0;
    if (edit && !parse_range(edit, &e0, &e1)) return cli_usage_error(cmd, "--edit-layers wants A-B, got '%s'", edit);
    if (target && !parse_range(target, &t0, &t1)) return cli_usage_error(cmd, "--target-layers wants A-B, got '%s'", target);

    ctx c = {0};
    int exit_code = 1;
    avl_status rc;
    char **frames = NULL;
    char *cap = NULL;
    avl_model_params mp = avl_model_default_params();
    mp.backend = backend;
    mp.threads = (int)threads;
    if ((rc = avl_tokenizer_load(model, &c.tok))) goto fail;
    if ((rc = avl_model_load(model, &mp, &c.m))) goto fail;
    int nl = (int)avl_model_config(c.m)->text.num_hidden_layers;
    avl_decode_default_params(c.m, dm, &c.dp);
    c.dp.max_new_tokens = max_new;
    int ns = 0;
    if (!avl_tokenizer_token_id(c.tok, "<|im_end|>", &c.stops[ns])) ns++;
    if (!avl_tokenizer_token_id(c.tok, "<|endoftext|>", &c.stops[ns])) ns++;
    c.dp.stop_ids = c.stops;
    c.dp.n_stop = ns;
    if (alpha >= 0) c.dp.alpha = alpha;
    if (edit) {
        if (e1 > nl) {
            exit_code = cli_usage_error(cmd, "--edit-layers %s: the model has %d layers", edit, nl);
            goto done;
        }
        c.dp.edit_layer0 = e0, c.dp.edit_layer1 = e1;
    }
    if (target) {
        if (t1 > nl) {
            exit_code = cli_usage_error(cmd, "--target-layers %s: the model has %d layers", target, nl);
            goto done;
        }
        c.dp.target_layer0 = t0, c.dp.target_layer1 = t1;
    }
    if (sink_n > 0) c.dp.sink_n = sink_n;
    if (tau >= 0) c.dp.sinks.tau = tau;
    if (dims && !parse_dims(dims, &c.dp.sinks)) {
        exit_code = cli_usage_error(cmd, "--dims wants a comma-separated list of dimensions, got '%s'", dims);
        goto done;
    }
    if (gbase >= 0) c.dp.gamma.gamma_base = gbase;
    if (gmax >= 0) c.dp.gamma.gamma_max = gmax;
    if (tmass >= 0) c.dp.gamma.text_mass = tmass;
    if (gate >= 0) c.dp.gamma.gate = gate;
    if (wfloor >= 0) c.dp.gamma.w_floor = wfloor;
    if (mom >= 0) c.dp.gamma.momentum = mom;
    if (cross) c.dp.gamma.cross_share = true;
    if (noshare) c.dp.shared_prefix = false;
    if (nobatch) c.dp.batched_steps = false;
    if (paig >= 0) c.dp.pai_gamma = paig;
    if (beta >= 0) c.dp.beta = beta;
    if (noise >= 0) c.dp.noise_step = (int)noise;
    c.dp.seed = (uint64_t)seed;
    c.prompt = prompt;
    if ((dm == AVL_DECODE_ASD || dm == AVL_DECODE_REVERSE_ASD) && c.dp.sinks.n_dims == 0) {
        fprintf(stderr, "avlens caption: %s: no known sink dimensions for this model: give --dims (avlens sinkdims finds them)\n",
                model);
        goto done;
    }

    if (manifest) {
        exit_code = run_manifest(&c, manifest, out_dir, shard, root, dataset, aiv);
        goto done;
    }
    long nf = 0;
    if (frames_arg && (nf = split_list(frames_arg, &frames)) < 0) {
        exit_code = cli_usage_error(cmd, "--frames wants comma-separated file names, got an empty one");
        goto done;
    }
    if ((rc = caption_one(&c, video, (const char *const *)frames, nf, audio, aiv, NULL, &cap))) goto fail;
    printf("%s\n", cap);
    exit_code = 0;
    goto done;
fail:
    exit_code = cli_fail(cmd, rc);
done:
    free(cap);
    free(frames);
    avl_model_free(c.m);
    avl_tokenizer_free(c.tok);
    return exit_code;
}
