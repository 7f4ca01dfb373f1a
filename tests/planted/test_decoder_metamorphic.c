/* tests/planted/test_decoder_metamorphic.c: two ways to ask the decoder, one answer
 * (STYLE.md, tests 4; issue 3). No reference numbers are needed: each check runs the same model
 * twice in ways that must agree.
 *
 * The model is mkmodel's tiny default (hidden 64, 2 layers, 4 heads over 2 KV heads, BF16),
 * written once per run into the test's scratch folder. The prompt is text around one video
 * placeholder block (grid 2x4x4, 2 s per grid: temporal ids 0 and 50), so the positions are
 * truly 3-D and rope_delta is not 0 (43: 28 tokens, last position 70): a decode step placed at the wrong
 * position shows. The decoder is fed token embeddings (the video rows need no encoder here).
 *
 *   kv_cache        prefill n then k single-token steps (positions as avl_generate makes them:
 *                   all three axes = cached length + rope_delta) == rows of one prefill of n+k
 *   prefill_chunk   prefill_chunk 1, 3, 7 == 512 (every row's logits)
 *   threads         1 thread == 2 threads
 *   observers       NULL hooks == an empty avl_hooks == hooks that only read (every site, every
 *                   layer's attention)
 *   self_patch      writing a run's own AVL_SITE_ATTN_IN activations back at that site ==
 *                   no patch (and, as a control, a patch of 1e-3 on one position does change
 *                   the logits); run with prefill_chunk 7 too, so chunk offsets are exercised
 *   generate        avl_generate greedy == a hand loop of argmax + one-token forwards
 *                   (ids and every step's logits); a stop id ends it after that id; ties
 *                   go to the lowest id
 *   two_threads     two runs on one shared model in two threads == the same runs in sequence
 *   batch_two       two prompts prefilled as one batch (avl_run_forward_batch), then K_STEPS
 *                   decode steps of one row each as a batch of two == each prompt alone; with
 *                   prefill_chunk 7 too, so chunks cut across the two items
 *   slots           a run that copies the keys/values of some positions from a finished run
 *                   and computes only the others (slotted rows, gaps in between) == the full
 *                   prefill; and the batch's argument errors (shared run, slots not ascending)
 *
 * Each runs with backend "ref" and "auto". With "ref" every check is bit-exact: the reference
 * GEMM computes each output alone in a fixed order, and attention, the norms and RoPE are
 * per-row and thread-count independent (docs/kernels.md, "Threads and determinism"). With
 * "auto" (OpenBLAS here) a prefill and a decode step go through different GEMM kernels (sgemm
 * vs the skinny M <= 16 kernel), so kv_cache and prefill_chunk allow 1e-5 of the largest
 * logit; observers, self_patch, generate and two_threads make identical calls, so they stay
 * bit-exact on every backend, batch_two and slots (products over other row counts) within 1e-5,
 * and threads is checked within 1e-5 (OpenBLAS splits its work by
 * thread count; measured 3e-7 on this machine, docs/model.md lists the figures).
 */
#include "avl_test.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

#define TOL 1e-5
enum { K_STEPS = 6 };

static char g_dir[4200];
static avl_config g_cfg;

/* The prompt: ids, embeds (n, H) and positions, plus K_STEPS extra ids to decode. */
typedef struct {
    int64_t n, H, V;
    int32_t *ids;
    float *embeds;
    avl_token_map *map;
    int32_t extra[K_STEPS];
} prompt;

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/m", avl_test_dir("planted_metamorphic"));
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.seed = 3;
    if (avl_mkmodel_write(&p, g_dir) || avl_mkmodel_config(&p, &g_cfg)) {
        fprintf(stderr, "mkmodel: %s\n", avl_last_error());
        return -1;
    }
    return 0;
}

static avl_model *load(const char *backend, int64_t chunk, int threads)
{
    avl_model_params mp = avl_model_default_params();
    mp.backend = backend;
    mp.prefill_chunk = chunk;
    mp.threads = threads;
    avl_model *m;
    if (avl_model_load(g_dir, &mp, &m)) fail_msg("load %s: %s", backend, avl_last_error());
    return m;
}

/* text (8) <|vision_bos|> 8 video tokens <|vision_eos|> text (10); variant shifts the text ids. */
static prompt make_prompt(const avl_model *m, int variant)
{
    prompt p = {.H = g_cfg.text.hidden_size, .V = g_cfg.text.vocab_size};
    avl_seq_params sp = avl_model_seq_params(m);
    avl_media_shape ms = {.n_videos = 1, .video_grid_thw = {{2, 4, 4}}, .video_second_per_grid = {2.0}};
    int32_t ids[64];
    int64_t n = 0;
    for (int i = 0; i < 8; i++) ids[n++] = 40 + 7 * i + variant;
    ids[n++] = sp.vision_start_token_id;
    for (int i = 0; i < 8; i++) ids[n++] = sp.video_token_id;
    ids[n++] = sp.vision_end_token_id;
    for (int i = 0; i < 10; i++) ids[n++] = 100 + 13 * i + 3 * variant;
    for (int i = 0; i < K_STEPS; i++) p.extra[i] = (int32_t)(200 + 11 * i + variant);
    p.n = n;
    p.ids = malloc(sizeof(int32_t) * (size_t)n);
    memcpy(p.ids, ids, sizeof(int32_t) * (size_t)n);
    if (avl_seq_positions(&sp, p.ids, n, &ms, false, &p.map)) fail_msg("positions: %s", avl_last_error());
    p.embeds = malloc(sizeof(float) * (size_t)(n * p.H));
    if (avl_run_embed_tokens(m, p.ids, n, p.embeds)) fail_msg("embed: %s", avl_last_error());
    return p;
}

static void prompt_free(prompt *p)
{
    free(p->ids);
    free(p->embeds);
    avl_token_map_free(p->map);
}

/* Logits of every row of one prefill: (n, V). */
static float *prefill_all(const avl_model *m, const float *embeds, const int64_t *pos, int64_t ld, int64_t n,
                          const avl_hooks *hk)
{
    avl_run *r;
    float *lg = malloc(sizeof(float) * (size_t)(n * g_cfg.text.vocab_size));
    if (avl_run_new(m, n, &r) || avl_run_forward(r, embeds, pos, ld, n, hk, lg, n))
        fail_msg("forward: %s", avl_last_error());
    avl_run_free(r);
    return lg;
}

/* max |a - b| / max |b| over n values; *bits tells whether they are bit-identical. */
static double nerr(const float *a, const float *b, int64_t n, bool *bits)
{
    double e = 0, mx = 0;
    if (bits) *bits = memcmp(a, b, sizeof(float) * (size_t)n) == 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d;
        mx = fmax(mx, fabs((double)b[i]));
    }
    return e / (mx > 0 ? mx : 1);
}

static bool is_ref(void **state) { return strcmp(*state, "ref") == 0; }

/* Bit-equal with the ref backend; within tol otherwise (and says which). */
static void expect_same(void **state, const char *what, const float *got, const float *want, int64_t n, double tol)
{
    bool bits;
    double e = nerr(got, want, n, &bits);
    if (getenv("AVL_TEST_VERBOSE"))
        print_message("  %-5s %-40s normalised error %.2e%s\n", (const char *)*state, what, e, bits ? " (bit-equal)" : "");
    if (is_ref(state) || tol == 0) {
        if (!bits) fail_msg("%s (%s): not bit-identical, normalised error %.3g", what, (const char *)*state, e);
    } else if (!(e <= tol)) {
        fail_msg("%s (%s): normalised error %.3g > %.0e", what, (const char *)*state, e, tol);
    }
}

/* ---- (a) KV cache == recompute ---- */
static void test_kv_cache(void **state)
{
    avl_model *m = load(*state, 0, 0);
    prompt p = make_prompt(m, 0);
    const int64_t n = p.n, N = n + K_STEPS, H = p.H, V = p.V;
    /* the whole sequence: prompt then the extra tokens at length + rope_delta on every axis */
    float *emb = malloc(sizeof(float) * (size_t)(N * H));
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)(3 * N));
    memcpy(emb, p.embeds, sizeof(float) * (size_t)(n * H));
    if (avl_run_embed_tokens(m, p.extra, K_STEPS, emb + n * H)) fail_msg("%s", avl_last_error());
    for (int a = 0; a < 3; a++) {
        memcpy(pos + a * N, p.map->pos + a * n, sizeof(int64_t) * (size_t)n);
        for (int64_t j = 0; j < K_STEPS; j++) pos[a * N + n + j] = n + j + p.map->rope_delta;
    }
    assert_int_equal(p.map->rope_delta, 43); /* max position 70 + 1 - 28 tokens */
    float *full = prefill_all(m, emb, pos, N, N, NULL);

    avl_run *r;
    float *lg = malloc(sizeof(float) * (size_t)V);
    assert_int_equal(avl_run_new(m, N, &r), AVL_OK);
    assert_int_equal(avl_run_forward(r, p.embeds, p.map->pos, n, n, NULL, lg, 1), AVL_OK);
    expect_same(state, "prefill n, last row", lg, full + (n - 1) * V, V, TOL);
    for (int64_t j = 0; j < K_STEPS; j++) {
        int64_t q = avl_run_length(r) + p.map->rope_delta, step_pos[3] = {q, q, q};
        assert_int_equal(avl_run_forward(r, emb + (n + j) * H, step_pos, 1, 1, NULL, lg, 1), AVL_OK);
        char what[64];
        snprintf(what, sizeof what, "decode step %lld", (long long)j);
        expect_same(state, what, lg, full + (n + j) * V, V, TOL);
    }
    avl_run_free(r);
    free(lg), free(full), free(pos), free(emb);
    prompt_free(&p);
    avl_model_free(m);
}

/* ---- (b) prefill chunk sizes ---- */
static void test_prefill_chunk(void **state)
{
    avl_model *m0 = load(*state, 512, 0);
    prompt p = make_prompt(m0, 1);
    float *want = prefill_all(m0, p.embeds, p.map->pos, p.n, p.n, NULL);
    const int64_t chunks[] = {1, 3, 7};
    for (int c = 0; c < 3; c++) {
        avl_model *m = load(*state, chunks[c], 0);
        float *got = prefill_all(m, p.embeds, p.map->pos, p.n, p.n, NULL);
        char what[64];
        snprintf(what, sizeof what, "prefill_chunk %lld vs 512", (long long)chunks[c]);
        expect_same(state, what, got, want, p.n * p.V, TOL);
        free(got);
        avl_model_free(m);
    }
    free(want);
    prompt_free(&p);
    avl_model_free(m0);
}

/* ---- (c) thread count ---- */
static void test_threads(void **state)
{
    avl_model *m1 = load(*state, 0, 1);
    assert_int_equal(avl_get_threads(), 1);
    prompt p = make_prompt(m1, 2);
    float *one = prefill_all(m1, p.embeds, p.map->pos, p.n, p.n, NULL);
    avl_model *m2 = load(*state, 0, 2);
    assert_int_equal(avl_get_threads(), 2);
    float *two = prefill_all(m2, p.embeds, p.map->pos, p.n, p.n, NULL);
    expect_same(state, "2 threads vs 1", two, one, p.n * p.V, TOL);
    avl_set_threads(0);
    free(one), free(two);
    prompt_free(&p);
    avl_model_free(m1);
    avl_model_free(m2);
}

/* ---- (d) observers ---- */
typedef struct {
    double sum;              /* reads every activation it is shown (sites run on the caller's thread) */
    int64_t calls;
    _Atomic int64_t attn_calls; /* attention blocks run on several threads at once */
    _Atomic int64_t empty_blocks;
} observer;

static bool obs_wants(void *u, int layer, avl_site s) { return (void)u, (void)layer, (void)s, true; }
static void obs_site(void *u, int layer, avl_site s, int64_t p0, int64_t n, int64_t dim, float *x)
{
    observer *o = u;
    (void)layer, (void)s, (void)p0;
    for (int64_t i = 0; i < n * dim; i++) o->sum += x[i];
    o->calls++;
}
static bool obs_wants_attn(void *u, int layer) { return (void)u, (void)layer, true; }
static void obs_attn(void *u, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                     const float *scores)
{
    observer *o = u;
    (void)layer, (void)head, (void)q0;
    (void)scores;
    double s = 0;
    for (int64_t i = 0; i < nq * nk; i++) s += probs[i];
    atomic_fetch_add(&o->attn_calls, 1);
    if (!(s > 0)) atomic_fetch_add(&o->empty_blocks, 1); /* every causal row has mass 1 */
}

static void test_observers(void **state)
{
    avl_model *m = load(*state, 0, 0);
    prompt p = make_prompt(m, 3);
    float *plain = prefill_all(m, p.embeds, p.map->pos, p.n, p.n, NULL);
    avl_hooks empty = {0};
    float *e = prefill_all(m, p.embeds, p.map->pos, p.n, p.n, &empty);
    expect_same(state, "empty hooks vs none", e, plain, p.n * p.V, 0);
    observer o = {0};
    avl_hooks obs = {.wants = obs_wants, .at_site = obs_site, .wants_attn = obs_wants_attn, .attn = obs_attn,
                     .user = &o};
    float *w = prefill_all(m, p.embeds, p.map->pos, p.n, p.n, &obs);
    expect_same(state, "observing hooks vs none", w, plain, p.n * p.V, 0);
    assert_int_equal(o.calls, 4 * g_cfg.text.num_hidden_layers + 1); /* 4 sites per layer + final */
    assert_true(atomic_load(&o.attn_calls) >= g_cfg.text.num_hidden_layers * g_cfg.text.num_attention_heads);
    assert_int_equal(atomic_load(&o.empty_blocks), 0);
    free(plain), free(e), free(w);
    prompt_free(&p);
    avl_model_free(m);
}

/* ---- (e) patching a run with its own activations ---- */
typedef struct {
    int64_t n, H;
    int n_layers;
    float *acts;       /* (n_layers, n, H) AVL_SITE_ATTN_IN */
    bool write;        /* false: capture; true: write acts back */
    int64_t bump_pos;  /* >= 0: add 1e-3 at this position of layer 1 when writing (control) */
} patcher;

static bool pat_wants(void *u, int layer, avl_site s) { return (void)u, (void)layer, s == AVL_SITE_ATTN_IN; }
static void pat_site(void *u, int layer, avl_site s, int64_t p0, int64_t n, int64_t dim, float *x)
{
    patcher *pt = u;
    (void)s;
    float *a = pt->acts + ((int64_t)layer * pt->n + p0) * dim;
    if (!pt->write) {
        memcpy(a, x, sizeof(float) * (size_t)(n * dim));
        return;
    }
    memcpy(x, a, sizeof(float) * (size_t)(n * dim));
    if (layer == 1 && pt->bump_pos >= p0 && pt->bump_pos < p0 + n)
        for (int64_t j = 0; j < dim; j++) x[(pt->bump_pos - p0) * dim + j] += 1e-3f;
}

static void test_self_patch(void **state)
{
    const int64_t chunks[2] = {512, 7};
    for (int c = 0; c < 2; c++) {
        avl_model *m = load(*state, chunks[c], 0);
        prompt p = make_prompt(m, 4);
        patcher pt = {.n = p.n, .H = p.H, .n_layers = (int)g_cfg.text.num_hidden_layers, .bump_pos = -1};
        pt.acts = calloc((size_t)(pt.n_layers * p.n * p.H), sizeof(float));
        avl_hooks hk = {.wants = pat_wants, .at_site = pat_site, .user = &pt};
        float *plain = prefill_all(m, p.embeds, p.map->pos, p.n, p.n, &hk);
        pt.write = true;
        float *patched = prefill_all(m, p.embeds, p.map->pos, p.n, p.n, &hk);
        char what[64];
        snprintf(what, sizeof what, "self-patch ATTN_IN, chunk %lld", (long long)chunks[c]);
        expect_same(state, what, patched, plain, p.n * p.V, 0);
        /* control: the patch is applied, at the position it names */
        pt.bump_pos = 20;
        float *bumped = prefill_all(m, p.embeds, p.map->pos, p.n, p.n, &hk);
        assert_memory_equal(bumped, plain, sizeof(float) * (size_t)(20 * p.V)); /* causal: rows before stay */
        if (nerr(bumped + 20 * p.V, plain + 20 * p.V, p.V, NULL) == 0.0)
            fail_msg("a 1e-3 patch at position 20 did not change its logits: the patch was not applied");
        free(plain), free(patched), free(bumped), free(pt.acts);
        prompt_free(&p);
        avl_model_free(m);
    }
}

/* ---- (f) avl_generate vs a hand loop ---- */
typedef struct {
    float *logits; /* (steps, V) */
    int64_t V, steps;
} recorder;

static void rec_logits(void *u, int64_t step, float *logits, int64_t V)
{
    recorder *r = u;
    assert_true(step == r->steps && V == r->V);
    memcpy(r->logits + step * V, logits, sizeof(float) * (size_t)V);
    r->steps++;
}

static void flatten(void *u, int64_t step, float *logits, int64_t V)
{
    (void)u, (void)step;
    for (int64_t i = 0; i < V; i++) logits[i] = 0.5f;
}

static void test_generate(void **state)
{
    enum { STEPS = 8 };
    avl_model *m = load(*state, 0, 0);
    prompt p = make_prompt(m, 5);
    const int64_t V = p.V, H = p.H;
    recorder rec = {.logits = malloc(sizeof(float) * (size_t)(STEPS * V)), .V = V};
    avl_gen_params gp = avl_gen_default_params();
    gp.max_new_tokens = STEPS;
    gp.on_logits = rec_logits;
    gp.user = &rec;
    avl_run *r;
    int32_t *ids;
    int64_t n_ids;
    assert_int_equal(avl_run_new(m, p.n + STEPS, &r), AVL_OK);
    assert_int_equal(avl_generate(r, p.embeds, p.map, &gp, NULL, &ids, &n_ids), AVL_OK);
    assert_int_equal(n_ids, STEPS);
    assert_int_equal(rec.steps, STEPS);
    avl_run_free(r);

    /* by hand: prefill, then argmax (lowest id on ties) and one-token steps */
    float *lg = malloc(sizeof(float) * (size_t)V), *e = malloc(sizeof(float) * (size_t)H);
    assert_int_equal(avl_run_new(m, p.n + STEPS, &r), AVL_OK);
    assert_int_equal(avl_run_forward(r, p.embeds, p.map->pos, p.n, p.n, NULL, lg, 1), AVL_OK);
    for (int64_t k = 0; k < STEPS; k++) {
        char what[64];
        snprintf(what, sizeof what, "generate step %lld logits", (long long)k);
        expect_same(state, what, rec.logits + k * V, lg, V, 0);
        int32_t best = 0;
        for (int32_t i = 1; i < V; i++)
            if (lg[i] > lg[best]) best = i;
        if (ids[k] != best) fail_msg("step %lld: avl_generate chose %d, argmax is %d", (long long)k, ids[k], best);
        if (k + 1 == STEPS) break;
        int64_t q = avl_run_length(r) + p.map->rope_delta, pos[3] = {q, q, q};
        assert_int_equal(avl_run_embed_tokens(m, &best, 1, e), AVL_OK);
        assert_int_equal(avl_run_forward(r, e, pos, 1, 1, NULL, lg, 1), AVL_OK);
    }
    avl_run_free(r);

    /* a stop id ends generation right after its first occurrence, and is kept */
    int32_t stop = ids[3];
    int64_t first = 0;
    while (ids[first] != stop) first++;
    gp.stop_ids = &stop;
    gp.n_stop = 1;
    gp.on_logits = NULL;
    int32_t *ids2;
    int64_t n2;
    assert_int_equal(avl_run_new(m, p.n + STEPS, &r), AVL_OK);
    assert_int_equal(avl_generate(r, p.embeds, p.map, &gp, NULL, &ids2, &n2), AVL_OK);
    assert_int_equal(n2, first + 1);
    assert_memory_equal(ids2, ids, sizeof(int32_t) * (size_t)n2);
    avl_run_free(r);
    avl_free(ids2);

    /* greedy breaks ties towards the lowest id: with every logit equal, id 0 each step */
    gp.stop_ids = NULL;
    gp.n_stop = 0;
    gp.on_logits = flatten;
    assert_int_equal(avl_run_new(m, p.n + STEPS, &r), AVL_OK);
    assert_int_equal(avl_generate(r, p.embeds, p.map, &gp, NULL, &ids2, &n2), AVL_OK);
    assert_int_equal(n2, STEPS);
    for (int64_t k = 0; k < n2; k++) assert_int_equal(ids2[k], 0);
    avl_run_free(r);
    avl_free(ids2);
    avl_free(ids);
    free(lg), free(e), free(rec.logits);
    prompt_free(&p);
    avl_model_free(m);
}

/* ---- (g) two runs, one model, two threads ---- */
typedef struct {
    const avl_model *m;
    const prompt *p;
    int threads;
    float *logits;  /* (n, V) */
    avl_status rc;
} job;

static void *run_job(void *u)
{
    job *j = u;
    avl_set_threads(j->threads); /* the setting is per calling thread */
    avl_run *r = NULL;
    j->rc = avl_run_new(j->m, j->p->n, &r);
    if (!j->rc) j->rc = avl_run_forward(r, j->p->embeds, j->p->map->pos, j->p->n, j->p->n, NULL, j->logits, j->p->n);
    avl_run_free(r);
    return NULL;
}

static void test_two_threads(void **state)
{
    avl_model *m = load(*state, 0, 0);
    prompt pa = make_prompt(m, 6), pb = make_prompt(m, 7);
    const int64_t V = pa.V;
    for (int threads = 1; threads <= 2; threads++) {
        job seq[2] = {{m, &pa, threads, NULL, 0}, {m, &pb, threads, NULL, 0}};
        job par[2] = {{m, &pa, threads, NULL, 0}, {m, &pb, threads, NULL, 0}};
        for (int i = 0; i < 2; i++) {
            seq[i].logits = malloc(sizeof(float) * (size_t)(seq[i].p->n * V));
            par[i].logits = malloc(sizeof(float) * (size_t)(par[i].p->n * V));
        }
        /* sequentially, each on its own thread too (thread settings are per thread) */
        for (int i = 0; i < 2; i++) {
            pthread_t t;
            assert_int_equal(pthread_create(&t, NULL, run_job, &seq[i]), 0);
            pthread_join(t, NULL);
            if (seq[i].rc) fail_msg("sequential run %d: %s", i, avl_last_error());
        }
        for (int round = 0; round < 3; round++) {
            pthread_t t[2];
            for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, run_job, &par[i]), 0);
            for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
            for (int i = 0; i < 2; i++) {
                if (par[i].rc) fail_msg("concurrent run %d: status %d", i, par[i].rc);
                char what[80];
                snprintf(what, sizeof what, "concurrent run %c, %d kernel thread(s), round %d", 'A' + i, threads, round);
                expect_same(state, what, par[i].logits, seq[i].logits, seq[i].p->n * V, 0);
            }
        }
        for (int i = 0; i < 2; i++) free(seq[i].logits), free(par[i].logits);
    }
    prompt_free(&pa);
    prompt_free(&pb);
    avl_model_free(m);
}

#define BOTH(f) {#f "/ref", f, NULL, NULL, "ref"}, {#f "/auto", f, NULL, NULL, "auto"}

/* ---- (h) a batch of two == two singles ---- */
static void test_batch_two(void **state)
{
    const int64_t chunks[2] = {0, 7};
    for (int c = 0; c < 2; c++) {
        avl_model *m = load(*state, chunks[c], 0);
        prompt a = make_prompt(m, 6), b = make_prompt(m, 7);
        const int64_t H = a.H, V = a.V;
        prompt *ps[2] = {&a, &b};
        /* singles: prefill (every row's logits), then K_STEPS steps of the extra ids */
        float *want[2], *got[2], *wstep[2], *gstep[2];
        avl_run *rs[2], *rb[2];
        float *e = malloc(sizeof(float) * (size_t)(2 * H));
        for (int k = 0; k < 2; k++) {
            prompt *p = ps[k];
            want[k] = malloc(sizeof(float) * (size_t)(p->n * V));
            got[k] = malloc(sizeof(float) * (size_t)(p->n * V));
            wstep[k] = malloc(sizeof(float) * (size_t)(K_STEPS * V));
            gstep[k] = malloc(sizeof(float) * (size_t)(K_STEPS * V));
            assert_int_equal(avl_run_new(m, p->n + K_STEPS, &rs[k]), AVL_OK);
            assert_int_equal(avl_run_new(m, p->n + K_STEPS, &rb[k]), AVL_OK);
            assert_int_equal(avl_run_forward(rs[k], p->embeds, p->map->pos, p->n, p->n, NULL, want[k], p->n), AVL_OK);
            for (int64_t j = 0; j < K_STEPS; j++) {
                int64_t q = avl_run_length(rs[k]) + p->map->rope_delta, pos[3] = {q, q, q};
                assert_int_equal(avl_run_embed_tokens(m, &p->extra[j], 1, e), AVL_OK);
                assert_int_equal(avl_run_forward(rs[k], e, pos, 1, 1, NULL, wstep[k] + j * V, 1), AVL_OK);
            }
        }
        /* the batch: both prefills in one call, then both steps in one call */
        avl_batch_item it[2];
        for (int k = 0; k < 2; k++)
            it[k] = (avl_batch_item){.run = rb[k], .embeds = ps[k]->embeds, .pos = ps[k]->map->pos,
                                     .ld_pos = ps[k]->n, .n = ps[k]->n, .logits = got[k], .n_logits = ps[k]->n};
        assert_int_equal(avl_run_forward_batch(it, 2), AVL_OK);
        char what[96];
        for (int k = 0; k < 2; k++) {
            snprintf(what, sizeof what, "batch prefill item %d, chunk %lld", k, (long long)chunks[c]);
            expect_same(state, what, got[k], want[k], ps[k]->n * V, TOL);
            assert_int_equal(avl_run_length(rb[k]), ps[k]->n);
        }
        for (int64_t j = 0; j < K_STEPS; j++) {
            int64_t pos[2][3];
            for (int k = 0; k < 2; k++) {
                int64_t q = avl_run_length(rb[k]) + ps[k]->map->rope_delta;
                pos[k][0] = pos[k][1] = pos[k][2] = q;
                assert_int_equal(avl_run_embed_tokens(m, &ps[k]->extra[j], 1, e + k * H), AVL_OK);
                it[k] = (avl_batch_item){.run = rb[k], .embeds = e + k * H, .pos = pos[k], .ld_pos = 1, .n = 1,
                                         .logits = gstep[k] + j * V, .n_logits = 1};
            }
            assert_int_equal(avl_run_forward_batch(it, 2), AVL_OK);
        }
        for (int k = 0; k < 2; k++) {
            snprintf(what, sizeof what, "batch decode steps item %d, chunk %lld", k, (long long)chunks[c]);
            expect_same(state, what, gstep[k], wstep[k], K_STEPS * V, TOL);
            avl_run_free(rs[k]), avl_run_free(rb[k]);
            free(want[k]), free(got[k]), free(wstep[k]), free(gstep[k]);
        }
        free(e);
        prompt_free(&a), prompt_free(&b);
        avl_model_free(m);
    }
}

/* ---- (i) slotted rows: copy some positions' keys/values, compute the rest ---- */
static void test_slots(void **state)
{
    avl_model *m = load(*state, 7, 0);
    prompt p = make_prompt(m, 8);
    const int64_t n = p.n, H = p.H, V = p.V;
    float *want = prefill_all(m, p.embeds, p.map->pos, p.n, p.n, NULL);
    avl_run *full, *part;
    assert_int_equal(avl_run_new(m, n, &full), AVL_OK);
    assert_int_equal(avl_run_forward(full, p.embeds, p.map->pos, n, n, NULL, NULL, 0), AVL_OK);
    /* copy positions 9..11 and 15 (inside the video block) and 20; compute every other one */
    const int64_t copied[] = {9, 10, 11, 15, 20};
    int64_t slots[64], ns = 0;
    for (int64_t j = 0, c = 0; j < n; j++) {
        if (c < 5 && copied[c] == j) { c++; continue; }
        slots[ns++] = j;
    }
    float *emb = malloc(sizeof(float) * (size_t)(ns * H));
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)(3 * ns));
    for (int64_t i = 0; i < ns; i++) {
        memcpy(emb + i * H, p.embeds + slots[i] * H, sizeof(float) * (size_t)H);
        for (int a = 0; a < 3; a++) pos[a * ns + i] = p.map->pos[a * n + slots[i]];
    }
    float *lg = malloc(sizeof(float) * (size_t)(3 * V));
    assert_int_equal(avl_run_new(m, n, &part), AVL_OK);
    assert_int_equal(avl_run_copy_positions(part, full, copied, 5), AVL_OK);
    assert_int_equal(avl_run_length(part), 21);
    avl_batch_item it = {.run = part, .embeds = emb, .pos = pos, .ld_pos = ns, .n = ns, .slots = slots,
                         .logits = lg, .n_logits = 3};
    assert_int_equal(avl_run_forward_batch(&it, 1), AVL_OK);
    assert_int_equal(avl_run_length(part), n);
    expect_same(state, "slotted rows, last 3 logits", lg, want + (n - 3) * V, 3 * V, TOL);
    /* control: with the copied keys/values taken from another prompt's run, the answer changes */
    prompt o = make_prompt(m, 9);
    avl_run *other, *bad;
    assert_int_equal(avl_run_new(m, n, &other), AVL_OK);
    assert_int_equal(avl_run_forward(other, o.embeds, o.map->pos, n, n, NULL, NULL, 0), AVL_OK);
    assert_int_equal(avl_run_new(m, n, &bad), AVL_OK);
    assert_int_equal(avl_run_copy_positions(bad, other, copied, 5), AVL_OK);
    float *lb = malloc(sizeof(float) * (size_t)(3 * V));
    it.run = bad, it.logits = lb;
    assert_int_equal(avl_run_forward_batch(&it, 1), AVL_OK);
    if (nerr(lb, want + (n - 3) * V, 3 * V, NULL) < 1e-6)
        fail_msg("keys/values of 5 positions from another prompt did not change the logits: the copy was not used");
    avl_run_free(other);
    prompt_free(&o);
    /* errors */
    avl_batch_item two[2] = {it, it};
    AVL_EXPECT_ERROR(avl_run_forward_batch(two, 2), AVL_E_ARG, "share a run");
    int64_t desc[2] = {5, 3};
    avl_batch_item d = {.run = bad, .embeds = emb, .pos = pos, .ld_pos = ns, .n = 2, .slots = desc};
    AVL_EXPECT_ERROR(avl_run_forward_batch(&d, 1), AVL_E_ARG, "not strictly ascending");
    int64_t beyond[1] = {40};
    AVL_EXPECT_ERROR(avl_run_copy_positions(bad, full, beyond, 1), AVL_E_ARG, "cannot copy slot 40");
    avl_run_free(full), avl_run_free(part), avl_run_free(bad);
    free(want), free(emb), free(pos), free(lg), free(lb);
    prompt_free(&p);
    avl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_kv_cache),   BOTH(test_prefill_chunk), BOTH(test_threads),     BOTH(test_observers),
        BOTH(test_self_patch), BOTH(test_generate),      BOTH(test_two_threads), BOTH(test_batch_two), BOTH(test_slots),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
