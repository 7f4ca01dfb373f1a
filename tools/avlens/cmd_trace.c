/* tools/avlens/cmd_trace.c: `avlens trace`: causal tracing (Sec. 3.2, Eqs. 3-4; token sets of
 * Sec. 4.2 and 5.1) over the audio- or video-dominant samples of a data set, one "trace" record
 * per sample holding every token set and layer window (docs/records.md), resumable and
 * shardable (cli_dataset.c). The dominance of each sample comes from the dominance records in
 * --out (run `avlens dominance` first) or from --force-dominance.
 * Per sample: the encoders run once for the clean inputs and once for the corrupted ones; one
 * tracer (src/analysis/trace.c) runs the clean prefill (which also feeds the sink and MDS
 * observers) and the corrupted one once, and every token set and layer window is a restored
 * run against them, with the exact shortcuts unless --naive.
 * --sweep: the bottom-up per-token analysis of App. B.1.1 (Tab. 6-7) instead of the sets: every
 * token of the restored modality alone, then S u O (sinks of N = 2 and 3 with the Object tokens),
 * Neither and All; one "sweep" record per sample in OUT/sweep/. */
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/internal.h"
#include "cli.h"
#include "cli_dataset.h"

static const char USAGE[] =
    "usage: avlens trace --manifest FILE --model DIR --out DIR [--sets LIST] [--site SITE]\n"
    "                    [--layer-window W] [--corrupt zero|noise|mean] [--seed S] [options]\n\n"
    "For each audio- or video-dominant sample (OUT/dominance/ records, written by avlens dominance)\n"
    "corrupts the dominant modality and restores tokens of the other one with the clean run's\n"
    "activations, per token set, and writes one record per sample to OUT/trace/ (another site or\n"
    "corruption: OUT/trace.<site>_<corruption>/) with the indirect effects IE_clean and IE_corr.\n\n"
    "  --sets LIST            token sets, comma-separated (default all,sink2,random2):\n"
    "                         all, object, sinkN, randomN (as many random tokens as sinkN has),\n"
    "                         unimodalN, crossmodalN (the MDS split of the sinks); N = K's divisor\n"
    "  --site SITE            attn_in (before attention, default), attn_out, mlp_out\n"
    "  --layer-window W       also patch every window of W consecutive layers (default 0: only all layers)\n"
    "  --corrupt KIND         zero (default), noise (N(0, std^2) on the processor tensor), mean\n"
    "  --noise-std X          std of --corrupt noise (default 1)\n"
    "  --seed S               seed of the random sets and the noise (default 0)\n"
    "  --events FILE          sound events for the audio Object set: the authors'\n"
    "                         object_important_seconds_*.json (\"important_blocks\": 2 s blocks)\n"
    "                         The video Object set reads the sample's \"masks\" field: one mask image\n"
    "                         per temporal grid index (null: none), paths as the media's\n"
    "  --force-dominance M    audio or video: trace every sample as M-dominant (no dominance records)\n"
    "  --analysis NAME        records folder under OUT (default trace, or trace.<site>_<corruption>)\n"
    "  --tau T, --dims LIST   sink threshold and dimensions (default: the paper's for this model)\n"
    "  --naive                recompute every restored run in full (default: exact shortcuts that\n"
    "                         reuse the corrupted run's prefix and the clean run's keys and values;\n"
    "                         same results, see docs/analyses.md)\n"
    "  --sweep                the bottom-up per-token sweep (App. B.1.1, Tab. 6-7) instead of --sets:\n"
    "                         each token of the restored modality alone, then the groups S u O\n"
    "                         (Sink N=2 resp. N=3 with Object), Neither and All; records in OUT/sweep/\n"
    "  --top-k LIST           the k of Tab. 6 that the report uses (default 5,10,20)\n"
    "  --sweep-limit N        sweep only N tokens evenly spaced over the modality (default 0: all)\n"
    "  --sweep-batch B        single-token runs that go through the model together (default 4, at most 16;\n"
    "                         each holds its own KV cache)\n" CLI_DS_OPTIONS_HELP;

typedef enum { SET_ALL, SET_OBJECT, SET_SINK, SET_RANDOM, SET_UNI, SET_CROSS } set_kind;
static const char *const SET_NAME[] = {"all", "object", "sink", "random", "unimodal_sink", "crossmodal_sink"};
static const char *const SET_PREFIX[] = {"all", "object", "sink", "random", "unimodal", "crossmodal"};

#define MAX_SETS 32

typedef struct {
    set_kind kind[MAX_SETS];
    int64_t n[MAX_SETS];
    int n_sets;
    avl_site site;
    const char *site_name;
    avl_corrupt_kind corrupt;
    const char *corrupt_name;
    double noise_std;
    uint64_t seed;
    long long window;
    avl_sink_params sp;
    char force;       /* 'a', 'v' or 0 */
    bool naive;       /* --naive: no tracing shortcuts */
    char *dom;        /* (dataset count) 'a', 'v', 'n' or 0 (no record) */
    const avl_dataset *ds;
    avl_dataset *events;  /* --events: object_important_seconds items, by id */
    const char *media_root;
    bool sweep;           /* --sweep */
    int64_t topk[16];
    int n_topk;
    long long sweep_limit;
    long long sweep_batch;
    bool tty;
} trace_ctx;

/* the two sink groups of Tab. 6-7 */
static const int SWEEP_N[2] = {2, 3};

static bool parse_topk(const char *s, trace_ctx *c)
{
    c->n_topk = 0;
    while (*s) {
        char *end;
        long long k = strtoll(s, &end, 10);
        if (end == s || k < 1 || k > 1000000 || c->n_topk == 16 || (*end && *end != ',')) return false;
        c->topk[c->n_topk++] = k;
        s = *end ? end + 1 : end;
    }
    return c->n_topk > 0;
}

static bool parse_sets(const char *s, trace_ctx *c)
{
    c->n_sets = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        int k;
        for (k = 0; k < 6; k++) {
            size_t pl = strlen(SET_PREFIX[k]);
            if (len >= pl && !strncmp(s, SET_PREFIX[k], pl)) break;
        }
        if (k == 6 || c->n_sets == MAX_SETS) return false;
        size_t pl = strlen(SET_PREFIX[k]);
        int64_t n = 0;
        if (k <= SET_OBJECT) {
            if (len != pl) return false;
        } else {
            if (len == pl) return false;
            for (size_t i = pl; i < len; i++) {
                if (s[i] < '0' || s[i] > '9' || n > 100000) return false;
                n = n * 10 + (s[i] - '0');
            }
            if (n < 1) return false;
        }
        c->kind[c->n_sets] = (set_kind)k;
        c->n[c->n_sets++] = n;
        s += len;
        if (*s == ',') s++;
    }
    return c->n_sets > 0;
}

/* Reads every record in OUT/dominance/: the latest ok record of each sample gives its case. */
static bool read_dominance(const cli_ds *d, trace_ctx *c)
{
    int64_t n = avl_dataset_count(d->ds);
    if (!(c->dom = calloc((size_t)n + 1, 1))) return false;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/dominance", d->out);
    DIR *dh = opendir(dir);
    if (!dh) return true; /* no records: nothing is dominant */
    struct dirent *e;
    while ((e = readdir(dh))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 6, ".jsonl")) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
            json_t *o = json_loads(line, 0, NULL);
            const char *id = json_string_value(json_object_get(o, "id"));
            const char *st = json_string_value(json_object_get(o, "status"));
            const char *cs = json_string_value(json_object_get(o, "case"));
            int64_t i = id ? avl_dataset_find(d->ds, id) : -1;
            if (i >= 0 && st && !strcmp(st, "ok") && cs)
                c->dom[i] = !strcmp(cs, "audio") ? 'a' : !strcmp(cs, "video") ? 'v' : 'n';
            json_decref(o);
        }
        free(line);
        fclose(f);
    }
    closedir(dh);
    return true;
}

static bool select_dominant(void *user, const avl_sample *s)
{
    const trace_ctx *c = user;
    if (c->force) return true;
    int64_t i = avl_dataset_find(c->ds, s->id);
    return i >= 0 && c->dom && (c->dom[i] == 'a' || c->dom[i] == 'v');
}

static json_t *num(double x) { return isnan(x) ? json_null() : json_real(x); }

static void first_word(const char *text, char *out, size_t cap)
{
    if (!text) text = "";
    while (*text == ' ' || *text == '\n' || *text == '\t' || *text == '\r') text++;
    size_t n = 0;
    while (text[n] && text[n] != ' ' && text[n] != '\n' && text[n] != '\t' && text[n] != '\r' && n + 1 < cap) n++;
    memcpy(out, text, n);
    out[n] = 0;
}

/* The token set of one request; *skip gets a reason when it cannot be made for this sample. */
/* The Object set: video tokens under the sample's masks, or audio tokens in its sound-event
 * blocks (2 s each, the authors' important_blocks); *skip when the sample has neither. */
static avl_status object_set(const trace_ctx *c, const avl_sample *smp, const avl_features *f,
                             const avl_token_map *map, bool patch_video, avl_tokset *out, const char **skip)
{
    avl_status rc = AVL_OK;
    if (patch_video) {
        json_t *x = json_loads(smp->extra_json ? smp->extra_json : "{}", 0, NULL);
        json_t *arr = json_object_get(x, "masks");
        size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
        if (!n) {
            json_decref(x);
            *skip = "no object masks for this sample (no \"masks\" field)";
            return AVL_OK;
        }
        char **paths = calloc(n, sizeof *paths);
        if (!paths) rc = AVL_E_NOMEM;
        for (size_t i = 0; i < n && !rc; i++) {
            const char *p = json_string_value(json_array_get(arr, i));
            if (!p) continue;
            size_t need = strlen(p) + (c->media_root ? strlen(c->media_root) : 0) + 2;
            if (!(paths[i] = malloc(need))) rc = AVL_E_NOMEM;
            else if (p[0] != '/' && c->media_root && c->media_root[0]) snprintf(paths[i], need, "%s/%s", c->media_root, p);
            else snprintf(paths[i], need, "%s", p);
        }
        avl_masks *m = NULL;
        /* masks are drawn on the decoded frames */
        if (!rc) rc = avl_masks_read((const char *const *)paths, (int64_t)n, f->src_h, f->src_w, &m);
        if (!rc) rc = avl_tokset_object_masks(map, 0, m, 30, out);
        avl_masks_free(m);
        for (size_t i = 0; paths && i < n; i++) free(paths[i]);
        free(paths);
        json_decref(x);
        return rc;
    }
    int64_t e = c->events ? avl_dataset_find(c->events, smp->id) : -1;
    json_t *x = e >= 0 ? json_loads(avl_dataset_at(c->events, e)->extra_json, 0, NULL) : NULL;
    json_t *blocks = json_object_get(x, "important_blocks");
    size_t n = json_is_array(blocks) ? json_array_size(blocks) : 0;
    if (!n) {
        json_decref(x);
        *skip = c->events ? "no sound-event blocks for this sample in --events" : "no sound-event seconds (give --events)";
        return AVL_OK;
    }
    double *seg = malloc(2 * n * sizeof *seg);
    if (!seg) rc = AVL_E_NOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        double b = json_number_value(json_array_get(blocks, i));
        seg[2 * i] = 2.0 * b; /* the 2-second chunks of audio-in-video */
        seg[2 * i + 1] = 2.0 * b + 2.0;
    }
    if (!rc) rc = avl_tokset_object_audio(map, 0, seg, (int64_t)n, out);
    free(seg);
    json_decref(x);
    return rc;
}

static avl_status make_set(const trace_ctx *c, int k, const avl_sample *smp, const avl_features *f,
                           const avl_token_map *map, const avl_tokset *base, const avl_phi_table *phi,
                           const avl_received *rx, bool patch_video, avl_tokset *out, const char **skip)
{
    memset(out, 0, sizeof *out);
    *skip = NULL;
    if (c->kind[k] == SET_ALL) return avl_tokset_from_list(base->pos, base->n, out);
    if (c->kind[k] == SET_OBJECT) return object_set(c, smp, f, map, patch_video, out, skip);
    avl_sinks *s = NULL;
    avl_status rc = avl_sinks_find(phi, c->sp.tau, map, c->n[k], &s);
    if (rc) return rc;
    const int64_t *list = patch_video ? s->video : s->audio;
    int64_t n = patch_video ? s->n_video : s->n_audio;
    if (c->kind[k] == SET_SINK) rc = avl_tokset_from_list(list, n, out);
    else if (c->kind[k] == SET_RANDOM) rc = avl_tokset_random(base, n, c->seed, out);
    else {
        avl_mds *md = NULL;
        int64_t *order = malloc((size_t)(n + 1) * sizeof *order), n_uni = 0;
        if (!order) rc = AVL_E_NOMEM;
        if (!rc) rc = avl_mds_compute(rx, list, n, &md);
        if (!rc) rc = avl_mds_split(md, patch_video, order, &n_uni);
        if (!rc) {
            /* order holds the sink positions, unimodal half first */
            int64_t from = c->kind[k] == SET_UNI ? 0 : n_uni, to = c->kind[k] == SET_UNI ? n_uni : n;
            rc = avl_tokset_from_list(order + from, to - from, out);
        }
        avl_mds_free(md);
        free(order);
    }
    avl_sinks_free(s);
    return rc;
}

typedef struct {
    const char *id;
    bool tty;
} sweep_progress_ctx;

static void sweep_progress(void *user, int64_t done, int64_t total)
{
    const sweep_progress_ctx *p = user;
    if (!p->tty) return;
    fprintf(stderr, "\r  sweep %s: token %lld/%lld", p->id, (long long)done, (long long)total);
    if (done == total) fputs("\r\033[K", stderr);
    fflush(stderr);
}

static json_t *group_entry(const char *group, int n, const avl_trace_result *r, int64_t n_tokens)
{
    json_t *e = json_object();
    json_object_set_new(e, "group", json_string(group));
    json_object_set_new(e, "n", n ? json_integer(n) : json_null());
    json_object_set_new(e, "n_tokens", json_integer(n_tokens));
    json_object_set_new(e, "ie_clean", r ? num(r->ie_clean) : json_real(0));
    json_object_set_new(e, "ie_corr", r ? num(r->ie_corr) : json_real(0));
    return e;
}

/* One restored group run (an empty group restores nothing: IE 0 by definition). */
static avl_status sweep_group(avl_tracer *t, int nl, const char *group, int n, const int64_t *pos, int64_t cnt,
                              json_t *groups)
{
    if (cnt == 0) {
        json_array_append_new(groups, group_entry(group, n, NULL, 0));
        return AVL_OK;
    }
    avl_tokset set;
    avl_trace_result r;
    avl_status rc = avl_tokset_from_list(pos, cnt, &set);
    if (!rc) rc = avl_tracer_restore(t, &set, 0, nl, &r);
    if (!rc) {
        json_array_append_new(groups, group_entry(group, n, &r, set.n));
        avl_trace_result_clear(&r);
    }
    avl_tokset_free(&set);
    return rc;
}

/* The sweep of one sample into record o (App. B.1.1): the swept tokens with their IE and their
 * membership of Sink 2, Sink 3 and Object, and the group runs S u O, Neither (per N) and All. */
static avl_status sweep_sample(const trace_ctx *c, const cli_ds *d, const avl_sample *smp, const avl_features *f,
                               const avl_token_map *map, const avl_tokset *base, const avl_phi_table *phi,
                               bool patch_video, avl_tracer *t, json_t *o)
{
    int nl = (int)avl_model_config(d->m)->text.num_hidden_layers;
    int64_t nb = base->n;
    /* membership flags per base token: bit 0 sink2, bit 1 sink3, bit 2 object */
    uint8_t *flag = calloc((size_t)nb + 1, 1);
    int64_t *list = malloc(((size_t)nb + 1) * sizeof *list);
    avl_sweep_token *sw = NULL;
    avl_tokset obj = {0}, swept = {0};
    const char *why = NULL;
    avl_status rc = flag && list ? AVL_OK : avl__err(AVL_E_NOMEM, "%s: sweep: out of memory", smp->id);
    for (int g = 0; g < 2 && !rc; g++) {
        avl_sinks *s = NULL;
        if ((rc = avl_sinks_find(phi, c->sp.tau, map, SWEEP_N[g], &s))) break;
        const int64_t *sl = patch_video ? s->video : s->audio;
        int64_t ns = patch_video ? s->n_video : s->n_audio;
        for (int64_t i = 0; i < nb; i++)
            for (int64_t j = 0; j < ns; j++)
                if (sl[j] == base->pos[i]) flag[i] |= (uint8_t)(1u << g);
        avl_sinks_free(s);
    }
    if (!rc) rc = object_set(c, smp, f, map, patch_video, &obj, &why);
    for (int64_t i = 0; i < nb && !rc && !why; i++)
        if (avl_tokset_contains(&obj, base->pos[i])) flag[i] |= 4;
    /* the swept tokens: all of them, or --sweep-limit evenly spaced */
    int64_t ns = c->sweep_limit > 0 && c->sweep_limit < nb ? c->sweep_limit : nb;
    int64_t *idx = list; /* indices into base */
    for (int64_t i = 0; i < ns && !rc; i++) idx[i] = ns == nb ? i : i * nb / ns;
    if (!rc && (!(sw = calloc((size_t)ns + 1, sizeof *sw)) || !(swept.pos = malloc(((size_t)ns + 1) * sizeof *swept.pos))))
        rc = avl__err(AVL_E_NOMEM, "%s: sweep: out of memory", smp->id);
    if (!rc) {
        swept.n = ns;
        for (int64_t i = 0; i < ns; i++) swept.pos[i] = base->pos[idx[i]];
        sweep_progress_ctx pc = {smp->id, c->tty};
        rc = avl_tracer_sweep(t, &swept, 0, nl, (int)c->sweep_batch, sweep_progress, &pc, sw);
    }
    if (!rc) {
        json_t *topk = json_array(), *toks = json_array();
        for (int i = 0; i < c->n_topk; i++) json_array_append_new(topk, json_integer(c->topk[i]));
        json_object_set_new(o, "modality", json_string(patch_video ? "video" : "audio"));
        json_object_set_new(o, "top_k", topk);
        json_object_set_new(o, "n_modality", json_integer(nb));
        json_object_set_new(o, "n_swept", json_integer(ns));
        json_object_set_new(o, "object", json_boolean(!why));
        if (why) json_object_set_new(o, "object_skipped", json_string(why));
        for (int64_t i = 0; i < ns; i++) {
            const avl_token_info *ti = &map->tok[sw[i].pos];
            uint8_t fl = flag[idx[i]];
            json_t *e = json_object();
            json_object_set_new(e, "pos", json_integer(sw[i].pos));
            json_object_set_new(e, "chunk", json_integer(ti->chunk));
            json_object_set_new(e, "t0", json_real(ti->t0));
            json_object_set_new(e, "ie_clean", num(sw[i].ie_clean));
            json_object_set_new(e, "ie_corr", num(sw[i].ie_corr));
            json_object_set_new(e, "sink2", json_boolean(fl & 1));
            json_object_set_new(e, "sink3", json_boolean(fl & 2));
            json_object_set_new(e, "object", json_boolean(fl & 4));
            json_array_append_new(toks, e);
        }
        json_object_set_new(o, "tokens", toks);
    }
    /* the group runs: All, then S u O and Neither per N (over every token of the modality) */
    json_t *groups = json_array();
    if (!rc) rc = sweep_group(t, nl, "all", 0, base->pos, nb, groups);
    for (int g = 0; g < 2 && !rc; g++) {
        int64_t n_in = 0, n_out = 0;
        for (int64_t i = 0; i < nb; i++)
            if (flag[i] & ((1u << g) | 4u)) list[n_in++] = base->pos[i];
        rc = sweep_group(t, nl, "sink_object", SWEEP_N[g], list, n_in, groups);
        for (int64_t i = 0; i < nb && !rc; i++)
            if (!(flag[i] & ((1u << g) | 4u))) list[n_out++] = base->pos[i];
        if (!rc) rc = sweep_group(t, nl, "neither", SWEEP_N[g], list, n_out, groups);
    }
    if (!rc) json_object_set_new(o, "groups", groups);
    else json_decref(groups);
    free(flag);
    free(list);
    free(sw);
    free(swept.pos);
    avl_tokset_free(&obj);
    return rc;
}

static avl_status trace_one(void *user, const cli_ds *d, const avl_sample *smp, char **json)
{
    const trace_ctx *c = user;
    char dom = c->force;
    if (!dom) dom = c->dom[avl_dataset_find(d->ds, smp->id)];
    bool patch_video = dom == 'a'; /* audio-dominant: audio corrupted, video tokens restored */
    const avl_config *cfg = avl_model_config(d->m);
    int nl = (int)cfg->text.num_hidden_layers;
    int64_t H = cfg->text.hidden_size;
    cli_inputs in;
    float *clean = NULL, *corr = NULL, *copy = NULL;
    avl_token_map *map = NULL, *map2 = NULL;
    avl_plan *plan = NULL;
    avl_phi_table *phi = NULL;
    avl_received *rx = NULL;
    avl_tracer *tracer = NULL;
    avl_tokset base = {0};
    json_t *o = NULL, *results = NULL, *skipped = NULL;
    avl_status rc = cli_ds_sample_inputs(d, smp, &in);
    if (rc) return rc;
    if ((rc = avl_thinker_embed(d->m, &in.ti, &clean, &map, NULL))) goto done;

    /* the corrupted run's embeddings: the dominant modality's processor tensor zeroed or noised
     * in a copy, or its encoder outputs replaced by their mean */
    avl_thinker_inputs ti = in.ti;
    const avl_features *f = in.f;
    if (c->corrupt != AVL_CORRUPT_MEAN) {
        avl_corruption cor = {.kind = c->corrupt, .std = c->noise_std, .seed = c->seed,
                              .norm = d->fast_processor ? AVL_NORM_FAST : AVL_NORM_SLOW};
        if (patch_video) { /* corrupt audio */
            int64_t cnt = f->n_mels * f->n_mel_frames;
            if (!f->input_features || !(copy = malloc((size_t)cnt * sizeof *copy))) {
                rc = f->input_features ? AVL_E_NOMEM : AVL_E_ARG;
                goto done;
            }
            memcpy(copy, f->input_features, (size_t)cnt * sizeof *copy);
            rc = avl_corrupt_audio_features(copy, cnt, &cor);
            ti.input_features = copy;
        } else {
            int64_t cnt = f->n_patches * 1176;
            if (!f->pixel_values_videos || !(copy = malloc((size_t)cnt * sizeof *copy))) {
                rc = f->pixel_values_videos ? AVL_E_NOMEM : AVL_E_ARG;
                goto done;
            }
            memcpy(copy, f->pixel_values_videos, (size_t)cnt * sizeof *copy);
            rc = avl_corrupt_video_pixels(copy, f->n_patches, 1176, &cor);
            ti.pixel_values_videos = copy;
        }
        if (!rc) rc = avl_thinker_embed(d->m, &ti, &corr, &map2, NULL);
    } else {
        if (!(corr = malloc((size_t)(map->n * H) * sizeof *corr))) rc = AVL_E_NOMEM;
        else {
            memcpy(corr, clean, (size_t)(map->n * H) * sizeof *corr);
            rc = avl_corrupt_mean_embeds(corr, H, map, patch_video ? AVL_TOK_AUDIO : AVL_TOK_VIDEO);
        }
    }
    if (rc) goto done;
    if ((rc = avl_tokset_of_kind(map, patch_video ? AVL_TOK_VIDEO : AVL_TOK_AUDIO, &base))) goto done;

    /* the clean run, once: it captures the site at every token of the restored modality and,
     * when a set needs them, feeds the sinks' phi and the received-attention observers */
    bool need_sinks = false;
    for (int k = 0; k < c->n_sets; k++) need_sinks = need_sinks || c->kind[k] >= SET_SINK;
    need_sinks = need_sinks || c->sweep;
    if ((rc = avl_plan_new(d->m, map, &plan))) goto done;
    if (need_sinks) {
        if ((rc = avl_sinks_observe(plan, &c->sp, &phi))) goto done;
        if (!c->sweep && (rc = avl_plan_observe_received(plan, 0, nl, &rx))) goto done; /* the sweep needs phi only */
    }
    avl_trace_params tp = avl_trace_default_params(d->m);
    tp.site = c->site;
    tp.gen = cli_ds_gen_params(d);
    tp.reuse_prefix = tp.reuse_clean_kv = !c->naive;
    if ((rc = avl_tracer_new(d->m, d->tok, map, clean, corr, &base, &tp, plan, &tracer))) goto done;
    const avl_gen_answer *a_clean = avl_tracer_clean(tracer), *a_corr = avl_tracer_corrupted(tracer);

    o = cli_ds_record_new(d, smp);
    results = json_array();
    skipped = json_array();
    bool top = false;
    if (c->sweep) {
        char wc[64], wr[64];
        first_word(a_clean->text, wc, sizeof wc);
        first_word(a_corr->text, wr, sizeof wr);
        json_object_set_new(o, "dominance", json_string(patch_video ? "audio" : "video"));
        json_object_set_new(o, "site", json_string(c->site_name));
        json_object_set_new(o, "corruption", json_string(c->corrupt_name));
        json_object_set_new(o, "n_layers", json_integer(nl));
        json_object_set_new(o, "clean", json_string(wc));
        json_object_set_new(o, "corrupt", json_string(wr));
        if (!(rc = sweep_sample(c, d, smp, in.f, map, &base, phi, patch_video, tracer, o))) {
            json[0] = cli_ds_record_dump(o);
            o = NULL;
            if (!json[0]) rc = AVL_E_NOMEM;
        }
        goto done;
    }
    for (int k = 0; k < c->n_sets && !rc; k++) {
        avl_tokset set;
        const char *why;
        if ((rc = make_set(c, k, smp, in.f, map, &base, phi, rx, patch_video, &set, &why))) break;
        if (why) {
            json_t *e = json_object();
            json_object_set_new(e, "set", json_string(SET_NAME[c->kind[k]]));
            json_object_set_new(e, "reason", json_string(why));
            json_array_append_new(skipped, e);
            continue;
        }
        /* every layer first, then the windows */
        int n_win = c->window > 0 && c->window <= nl ? nl - (int)c->window + 1 : 0;
        for (int w = -1; w < n_win && !rc; w++) {
            int l0 = w < 0 ? 0 : w, l1 = w < 0 ? nl : w + (int)c->window;
            avl_trace_result r;
            if ((rc = avl_tracer_restore(tracer, &set, l0, l1, &r))) break;
            char wc[64], wr[64], wrest[64];
            first_word(a_clean->text, wc, sizeof wc);
            first_word(a_corr->text, wr, sizeof wr);
            first_word(r.rest.text, wrest, sizeof wrest);
            if (!top) {
                /* the clean and corrupted runs are the same for every set */
                int32_t ids[2];
                double p_clean_r = 0;
                if (wr[0] && avl_word_ids(d->tok, wr, ids) == AVL_OK)
                    p_clean_r = avl_word_prob(a_clean->logits, a_clean->n, a_clean->V, ids, tp.first_step_only);
                json_object_set_new(o, "dominance", json_string(patch_video ? "audio" : "video"));
                json_object_set_new(o, "site", json_string(c->site_name));
                json_object_set_new(o, "corruption", json_string(c->corrupt_name));
                json_object_set_new(o, "n_layers", json_integer(nl));
                json_object_set_new(o, "seed", json_integer((json_int_t)c->seed));
                json_object_set_new(o, "clean", json_string(wc));
                json_object_set_new(o, "corrupt", json_string(wr));
                json_object_set_new(o, "p_clean_clean", num(r.p_clean_c));
                json_object_set_new(o, "p_clean_corr", num(p_clean_r));
                json_object_set_new(o, "p_corr_clean", num(r.p_corr_c));
                json_object_set_new(o, "p_corr_corr", num(r.p_corr_r));
                top = true;
            }
            json_t *e = json_object();
            json_object_set_new(e, "set", json_string(SET_NAME[c->kind[k]]));
            json_object_set_new(e, "n", c->kind[k] >= SET_SINK ? json_integer(c->n[k]) : json_null());
            json_object_set_new(e, "layer_start", json_integer(l0));
            json_object_set_new(e, "layer_end", json_integer(l1));
            json_object_set_new(e, "n_tokens", json_integer(r.n_patched));
            json_object_set_new(e, "restored", json_string(wrest));
            json_object_set_new(e, "p_rest_clean", num(r.p_rest_c));
            json_object_set_new(e, "p_rest_corr", num(r.p_rest_r));
            json_object_set_new(e, "ie_clean", num(r.ie_clean));
            json_object_set_new(e, "ie_corr", num(r.ie_corr));
            json_array_append_new(results, e);
            avl_trace_result_clear(&r);
        }
        avl_tokset_free(&set);
    }
    if (!rc && !top) { /* every set skipped: say why in the error record */
        json_t *first = json_array_get(skipped, 0);
        rc = avl__err(AVL_E_ARG, "%s: no token set could be built (%s: %s)", smp->id,
                      json_string_value(json_object_get(first, "set")), json_string_value(json_object_get(first, "reason")));
    }
    if (!rc) {
        json_object_set_new(o, "results", results);
        results = NULL;
        if (json_array_size(skipped)) {
            json_object_set_new(o, "skipped", skipped);
            skipped = NULL;
        }
        json[0] = cli_ds_record_dump(o);
        o = NULL;
        if (!json[0]) rc = AVL_E_NOMEM;
    }
done:
    json_decref(o);
    json_decref(results);
    json_decref(skipped);
    avl_tokset_free(&base);
    avl_tracer_free(tracer);
    avl_plan_free(plan);
    avl_phi_free(phi);
    avl_token_map_free(map);
    avl_token_map_free(map2);
    avl_free(clean);
    if (c->corrupt == AVL_CORRUPT_MEAN) free(corr);
    else avl_free(corr);
    free(copy);
    cli_inputs_free(&in);
    return rc;
}

int avl_cmd_trace(int argc, char **argv)
{
    cli_ds d;
    cli_ds_init(&d, "trace");
    trace_ctx c = {.site = AVL_SITE_ATTN_IN, .site_name = "before_attn", .corrupt = AVL_CORRUPT_ZERO,
                   .corrupt_name = "zero", .noise_std = 1.0};
    parse_sets("all,sink2,random2", &c);
    parse_topk("5,10,20", &c);
    c.sweep_batch = 4;
    c.tty = isatty(2);
    const char *dims = NULL, *events = NULL, *analysis = NULL;
    double tau = -1;
    long long seed = 0;
    enum { O_SETS = 1, O_SITE, O_WIN, O_CORR, O_STD, O_SEED, O_FORCE, O_TAU, O_DIMS, O_EVENTS, O_ANALYSIS, O_NAIVE,
           O_SWEEP, O_TOPK, O_SWEEP_LIMIT, O_SWEEP_BATCH };
    static const struct option opts[] = {CLI_DS_LONG_OPTIONS,
                                         {"sets", required_argument, 0, O_SETS},
                                         {"site", required_argument, 0, O_SITE},
                                         {"layer-window", required_argument, 0, O_WIN},
                                         {"corrupt", required_argument, 0, O_CORR},
                                         {"noise-std", required_argument, 0, O_STD},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"force-dominance", required_argument, 0, O_FORCE},
                                         {"events", required_argument, 0, O_EVENTS},
                                         {"analysis", required_argument, 0, O_ANALYSIS},
                                         {"tau", required_argument, 0, O_TAU},
                                         {"dims", required_argument, 0, O_DIMS},
                                         {"naive", no_argument, 0, O_NAIVE},
                                         {"sweep", no_argument, 0, O_SWEEP},
                                         {"top-k", required_argument, 0, O_TOPK},
                                         {"sweep-limit", required_argument, 0, O_SWEEP_LIMIT},
                                         {"sweep-batch", required_argument, 0, O_SWEEP_BATCH},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    optind = 1;
    for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        char *end;
        switch (o) {
        case 'h': fputs(USAGE, stdout); return 0;
        case O_SETS:
            if (!parse_sets(optarg, &c)) return cli_usage_error("trace", "--sets: cannot read '%s'", optarg);
            break;
        case O_SITE:
            if (!strcmp(optarg, "attn_in")) c.site = AVL_SITE_ATTN_IN, c.site_name = "before_attn";
            else if (!strcmp(optarg, "attn_out")) c.site = AVL_SITE_ATTN_OUT, c.site_name = "after_attn";
            else if (!strcmp(optarg, "mlp_out")) c.site = AVL_SITE_MLP_OUT, c.site_name = "after_mlp";
            else return cli_usage_error("trace", "--site wants attn_in, attn_out or mlp_out, got '%s'", optarg);
            break;
        case O_WIN: if (!cli_parse_int("trace", "--layer-window", optarg, &c.window)) return 2; break;
        case O_CORR:
            if (!strcmp(optarg, "zero")) c.corrupt = AVL_CORRUPT_ZERO;
            else if (!strcmp(optarg, "noise")) c.corrupt = AVL_CORRUPT_NOISE;
            else if (!strcmp(optarg, "mean")) c.corrupt = AVL_CORRUPT_MEAN;
            else return cli_usage_error("trace", "--corrupt wants zero, noise or mean, got '%s'", optarg);
            c.corrupt_name = optarg;
            break;
        case O_STD:
            c.noise_std = strtod(optarg, &end);
            if (end == optarg || *end || !(c.noise_std >= 0)) return cli_usage_error("trace", "--noise-std wants a number >= 0");
            break;
        case O_SEED: if (!cli_parse_int("trace", "--seed", optarg, &seed)) return 2; break;
        case O_EVENTS: events = optarg; break;
        case O_ANALYSIS: analysis = optarg; break;
        case O_FORCE:
            if (!strcmp(optarg, "audio")) c.force = 'a';
            else if (!strcmp(optarg, "video")) c.force = 'v';
            else return cli_usage_error("trace", "--force-dominance wants audio or video, got '%s'", optarg);
            break;
        case O_TAU:
            tau = strtod(optarg, &end);
            if (end == optarg || *end || !(tau >= 0)) return cli_usage_error("trace", "--tau wants a number >= 0");
            break;
        case O_DIMS: dims = optarg; break;
        case O_NAIVE: c.naive = true; break;
        case O_SWEEP: c.sweep = true; break;
        case O_TOPK:
            if (!parse_topk(optarg, &c)) return cli_usage_error("trace", "--top-k wants a list of positive integers, got '%s'", optarg);
            break;
        case O_SWEEP_LIMIT:
            if (!cli_parse_int("trace", "--sweep-limit", optarg, &c.sweep_limit)) return 2;
            if (c.sweep_limit < 0) return cli_usage_error("trace", "--sweep-limit wants N >= 0");
            break;
        case O_SWEEP_BATCH:
            if (!cli_parse_int("trace", "--sweep-batch", optarg, &c.sweep_batch)) return 2;
            if (c.sweep_batch < 1 || c.sweep_batch > AVL_SWEEP_MAX_BATCH)
                return cli_usage_error("trace", "--sweep-batch wants 1 to %d", AVL_SWEEP_MAX_BATCH);
            break;
        default: {
            int t = cli_ds_option(&d, o, optarg);
            if (t == 1) return cli_usage_error("trace", "unknown option");
            if (t) return t;
        }
        }
    }
    if (optind < argc) return cli_usage_error("trace", "unexpected argument '%s'", argv[optind]);
    c.seed = (uint64_t)seed;
    c.media_root = d.media_root;
    avl_dataset_params evp = avl_dataset_default_params();
    evp.media_root = d.media_root;
    avl_status rc;
    int code = cli_ds_open(&d);
    if (!code) {
        avl_sink_default_params(avl_model_config(d.m), &c.sp);
        if (tau >= 0) c.sp.tau = tau;
        bool need_sinks = false;
        for (int k = 0; k < c.n_sets; k++) need_sinks = need_sinks || c.kind[k] >= SET_SINK;
        need_sinks = need_sinks || c.sweep;
        if (dims && !cli_parse_dims(dims, &c.sp))
            code = cli_usage_error("trace", "--dims wants a comma-separated list of dimensions, got '%s'", dims);
        else if (need_sinks && c.sp.n_dims == 0) {
            fprintf(stderr, "avlens trace: %s: no known sink dimensions for this model: give --dims (avlens sinkdims finds them)\n",
                    d.model_dir);
            code = 1;
        } else if (events && (rc = avl_dataset_load(events, &evp, &c.events))) {
            code = cli_fail("trace", rc);
        } else if (!c.force && !read_dominance(&d, &c)) {
            code = cli_fail("trace", AVL_E_NOMEM);
        }
    }
    if (!code) {
        c.ds = d.ds;
        d.select = select_dominant;
        d.select_user = &c;
        /* one folder per setting: the default one is plain "trace" */
        char folder[64];
        const char *stem = c.sweep ? "sweep" : "trace";
        if (analysis) snprintf(folder, sizeof folder, "%s", analysis);
        else if (c.site == AVL_SITE_ATTN_IN && c.corrupt == AVL_CORRUPT_ZERO) snprintf(folder, sizeof folder, "%s", stem);
        else snprintf(folder, sizeof folder, "%s.%s_%s", stem, c.site_name, c.corrupt_name);
        const char *names[] = {folder};
        code = cli_ds_run(&d, names, 1, trace_one, &c);
    }
    free(c.dom);
    avl_dataset_free(c.events);
    cli_ds_close(&d);
    return code;
}
