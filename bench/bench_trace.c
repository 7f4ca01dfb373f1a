/* bench/bench_trace.c: what the standard causal-tracing suite of one sample costs with the
 * tracer's exact shortcuts against naive recomputation (src/analysis/trace.c, docs/analyses.md).
 *
 * Suite: clean, corrupted, then restored runs for All, Object, Sink-2/3/4, Random-2/3/4 and the
 * Unimodal / Cross-modal halves of Sink-2/3/4 (16 runs), patched before attention (ATTN_IN) in
 * every layer. Naive: clean and corrupted once, every restored run from scratch (what
 * `avlens trace --naive` does; the first `avlens trace` ran clean and corrupted again for every
 * set as well, 3 runs per set). Shortcuts: avl_tracer with reuse_prefix and reuse_clean_kv.
 *
 * Layout: a made checkpoint (hidden 512, 4 layers, 8 heads, 4 KV heads, FFN 1536, bf16) and
 * the sequence of one audio-in-video clip of S seconds (default 20): 30 text tokens, then
 * interleaved 2-second chunks of video (2 temporal grids of 8 x 8 merged tokens = 128) and audio
 * (50 tokens), then 20 text tokens: 1830 positions at 20 s. Both dominance cases are timed: audio
 * corrupted / video restored, and video corrupted / audio restored.
 * Sets: All = the restored modality; Object = video tokens of the central 4 x 4 of every frame
 * (25%) or audio tokens of seconds [S/3, S/3 + 4); Sink N = 8, 6, 4 tokens for N = 2, 3, 4,
 * placed uniformly at random (seeded) among the restored tokens ("spread") or inside the first
 * 2-second chunk ("early"; real sinks often sit early, but that is an assumption); Random N the
 * same size, uniform (avl_tokset_random); Unimodal / Cross-modal = the two halves of Sink N.
 *   bench_trace [seconds [early]]   (OMP_WAIT_POLICY=passive recommended on shared machines) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avlens/avlens.h"

enum { N_SETS = 14 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void real_ids_only(void *user, int64_t step, float *logits, int64_t V)
{
    (void)step;
    for (int64_t i = *(const int64_t *)user; i < V; i++) logits[i] = -INFINITY;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* k distinct positions drawn from from[0..n) */
static void draw(const int64_t *from, int64_t n, int64_t k, avl_tokset *out)
{
    int64_t *pick = malloc((size_t)k * sizeof *pick);
    for (int64_t i = 0; i < k; i++) {
        int64_t p;
        bool dup;
        do {
            p = from[next() % (uint64_t)n];
            dup = false;
            for (int64_t j = 0; j < i; j++) dup |= pick[j] == p;
        } while (dup);
        pick[i] = p;
    }
    avl_tokset_from_list(pick, k, out);
    free(pick);
}

typedef struct {
    double t_clean_corr, t_sets[N_SETS], t_total;
    int64_t computed[N_SETS], computed_total;
} costs;

static const char *const NAMES[N_SETS] = {"all",     "object",  "sink2",   "random2", "unimodal2", "crossmodal2",
                                          "sink3",   "random3", "unimodal3", "crossmodal3", "sink4", "random4",
                                          "unimodal4", "crossmodal4"};

/* Both suites, interleaved (shortcut then naive for each step) so that a load that changes
 * over time on a shared machine biases neither. */
static int run_suites(const avl_model *m, const avl_tokenizer *tok, const avl_token_map *map, const float *clean,
                      const float *corr, const avl_tokset *base, const avl_tokset *sets, costs *cs, costs *cn)
{
    int64_t n_ids = avl_tokenizer_vocab_size(tok);
    int nl = (int)avl_model_config(m)->text.num_hidden_layers;
    avl_trace_params tp = avl_trace_default_params(m);
    tp.gen.max_new_tokens = 2;
    tp.gen.on_logits = real_ids_only;
    tp.gen.user = &n_ids;
    avl_trace_params tn = tp;
    tn.reuse_prefix = tn.reuse_clean_kv = false;
    memset(cs, 0, sizeof *cs);
    memset(cn, 0, sizeof *cn);
    avl_tracer *ts, *tv;
    double t0 = now();
    if (avl_tracer_new(m, tok, map, clean, corr, base, &tp, NULL, &ts)) return -1;
    double t1 = now();
    if (avl_tracer_new(m, tok, map, clean, corr, base, &tn, NULL, &tv)) return -1;
    cs->t_clean_corr = t1 - t0;
    cn->t_clean_corr = now() - t1;
    cs->t_total = cs->t_clean_corr;
    cn->t_total = cn->t_clean_corr;
    cn->computed_total = cs->computed_total = 2 * map->n; /* the caller takes d off the shortcut's */
    for (int k = 0; k < N_SETS; k++)
        for (int naive = 0; naive < 2; naive++) {
            costs *c = naive ? cn : cs;
            double t2 = now();
            avl_trace_result r;
            if (avl_tracer_restore(naive ? tv : ts, &sets[k], 0, nl, &r)) return -1;
            c->t_sets[k] = now() - t2;
            c->t_total += c->t_sets[k];
            c->computed[k] = r.n_computed;
            c->computed_total += r.n_computed;
            avl_trace_result_clear(&r);
        }
    avl_tracer_free(ts);
    avl_tracer_free(tv);
    return 0;
}

/* One dominance case: restored = the kind whose tokens are patched back; the other is corrupted. */
static int bench_case(const avl_model *m, const avl_tokenizer *tok, const avl_token_map *map, const float *clean,
                      avl_tok_kind restored, double seconds, bool early)
{
    int64_t n = map->n, H = avl_model_config(m)->text.hidden_size;
    avl_tok_kind corrupted = restored == AVL_TOK_VIDEO ? AVL_TOK_AUDIO : AVL_TOK_VIDEO;
    float *corr = malloc((size_t)(n * H) * sizeof *corr);
    memcpy(corr, clean, (size_t)(n * H) * sizeof *corr);
    avl_corrupt_mean_embeds(corr, H, map, corrupted);
    int64_t d = 0;
    while (d < n && !memcmp(clean + d * H, corr + d * H, (size_t)H * sizeof(float))) d++;

    avl_tokset base, sets[N_SETS];
    avl_tokset_of_kind(map, restored, &base);
    int64_t *buf = malloc((size_t)base.n * sizeof *buf), nb = 0, n_first = 0;
    for (int64_t i = 0; i < base.n; i++)
        if (map->tok[base.pos[i]].chunk == 0) n_first++;
    int k = 0;
    avl_tokset_from_list(base.pos, base.n, &sets[k++]);
    for (int64_t i = 0; i < base.n; i++) {
        const avl_token_info *ti = &map->tok[base.pos[i]];
        bool in = restored == AVL_TOK_VIDEO ? ti->row >= 2 && ti->row < 6 && ti->col >= 2 && ti->col < 6
                                            : ti->t0 >= seconds / 3 && ti->t0 < seconds / 3 + 4;
        if (in) buf[nb++] = base.pos[i];
    }
    avl_tokset_from_list(buf, nb, &sets[k++]);
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int N = 2; N <= 4; N++) {
        int64_t size = 12 - 2 * N; /* 8, 6, 4 */
        avl_tokset sink;
        draw(base.pos, early ? n_first : base.n, size, &sink);
        avl_tokset_from_list(sink.pos, sink.n, &sets[k++]);
        avl_tokset_random(&base, size, (uint64_t)N, &sets[k++]);
        /* halves by an arbitrary rank (the MDS order in real use): every other sink */
        int64_t h0[8], h1[8], n0 = 0, n1 = 0;
        for (int64_t i = 0; i < sink.n; i++) {
            if (i % 2) h1[n1++] = sink.pos[i];
            else h0[n0++] = sink.pos[i];
        }
        avl_tokset_from_list(h0, n0, &sets[k++]);
        avl_tokset_from_list(h1, n1, &sets[k++]);
        avl_tokset_free(&sink);
    }
    costs cs, cn;
    if (run_suites(m, tok, map, clean, corr, &base, sets, &cs, &cn)) {
        fprintf(stderr, "%s\n", avl_last_error());
        return -1;
    }
    cs.computed_total -= d; /* the corrupted run started at d */
    printf("\n%s restored (%s corrupted, first corrupted position d = %lld), sinks %s:\n",
           restored == AVL_TOK_VIDEO ? "video" : "audio", corrupted == AVL_TOK_VIDEO ? "video" : "audio", (long long)d,
           early ? "in the first chunk" : "spread");
    printf("  %-14s %6s %9s %9s %9s %7s\n", "set", "tokens", "computed", "short ms", "naive ms", "ratio");
    printf("  %-14s %6s %9lld %9.0f %9.0f %7.3f\n", "clean+corr", "", (long long)(2 * n - d), 1e3 * cs.t_clean_corr,
           1e3 * cn.t_clean_corr, cs.t_clean_corr / cn.t_clean_corr);
    for (k = 0; k < N_SETS; k++)
        printf("  %-14s %6lld %9lld %9.0f %9.0f %7.3f\n", NAMES[k], (long long)sets[k].n, (long long)cs.computed[k],
               1e3 * cs.t_sets[k], 1e3 * cn.t_sets[k], cs.t_sets[k] / cn.t_sets[k]);
    printf("  %-14s %6s %9lld %9.0f %9.0f %7.3f   (positions: %lld / %lld = %.3f)\n", "suite", "",
           (long long)cs.computed_total, 1e3 * cs.t_total, 1e3 * cn.t_total, cs.t_total / cn.t_total,
           (long long)cs.computed_total, (long long)cn.computed_total,
           (double)cs.computed_total / (double)cn.computed_total);
    /* the first avlens trace ran clean and corrupted again for every set: 3 full runs per set */
    double former = cn.t_total + (N_SETS - 1) * cn.t_clean_corr;
    printf("  vs the former avlens trace (clean + corrupted again per set, %d runs): %.0f ms, ratio %.3f\n",
           3 * N_SETS, 1e3 * former, cs.t_total / former);
    for (k = 0; k < N_SETS; k++) avl_tokset_free(&sets[k]);
    avl_tokset_free(&base);
    free(buf);
    free(corr);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    double seconds = argc > 1 ? atof(argv[1]) : 20.0;
    int64_t grids = (int64_t)(seconds + 0.5); /* 1 s per temporal grid */
    if (grids < 2) grids = 2;
    const char *dir = "bench_trace_model";
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.hidden = 512;
    p.layers = 4;
    p.heads = 8;
    p.kv_heads = 4;
    p.ffn = 1536;
    p.thinker_only = true;
    avl_model *m;
    avl_tokenizer *tok;
    avl_model_params mp = avl_model_default_params();
    if (avl_mkmodel_write(&p, dir) || avl_model_load(dir, &mp, &m) || avl_tokenizer_load(dir, &tok)) {
        fprintf(stderr, "%s\n", avl_last_error());
        return 1;
    }
    avl_seq_params sp = avl_model_seq_params(m);
    int32_t chat[53];
    int nc = 0;
    for (int i = 0; i < 30; i++) chat[nc++] = 40 + i;
    chat[nc++] = sp.vision_start_token_id;
    chat[nc++] = sp.video_token_id;
    chat[nc++] = sp.vision_end_token_id;
    for (int i = 0; i < 20; i++) chat[nc++] = 80 + i;
    avl_media_shape ms = {0};
    ms.n_videos = 1;
    ms.video_grid_thw[0][0] = grids;
    ms.video_grid_thw[0][1] = 16;
    ms.video_grid_thw[0][2] = 16;
    ms.video_second_per_grid[0] = 1.0;
    ms.n_audios = 1;
    ms.audio_feature_len[0] = (int64_t)(100 * seconds);
    int32_t *ids;
    int64_t L;
    avl_token_map *map;
    if (avl_seq_expand(&sp, chat, nc, &ms, true, &ids, &L) || avl_seq_positions(&sp, ids, L, &ms, true, &map)) {
        fprintf(stderr, "%s\n", avl_last_error());
        return 1;
    }
    float *clean = malloc((size_t)(L * p.hidden) * sizeof *clean);
    avl_run_embed_tokens(m, ids, L, clean);
    for (int64_t i = 0; i < L * p.hidden; i++) clean[i] *= 50.0f; /* N(0, 0.02) rows -> unit size */
    /* the encoders' rows: distinct per token (the embedding of a placeholder id is one row) */
    rng_state = 12345;
    for (int64_t i = 0; i < L; i++)
        if (map->tok[i].kind != AVL_TOK_TEXT)
            for (int64_t j = 0; j < p.hidden; j++) clean[i * p.hidden + j] = (float)((double)(next() >> 11) / 9007199254740992.0 * 2 - 1);
    printf("bench_trace: %.0f s clip, L = %lld (%lld video, %lld audio), hidden %lld, %lld layers, %s\n", seconds,
           (long long)L, (long long)map->n_video, (long long)map->n_audio, (long long)p.hidden, (long long)p.layers,
           avl_model_backend(m));
    bool early = argc > 2 && !strcmp(argv[2], "early");
    int rc = bench_case(m, tok, map, clean, AVL_TOK_VIDEO, seconds, early);
    if (!rc) rc = bench_case(m, tok, map, clean, AVL_TOK_AUDIO, seconds, early);
    avl_token_map_free(map);
    avl_free(ids);
    free(clean);
    avl_tokenizer_free(tok);
    avl_model_free(m);
    return rc ? 1 : 0;
}
