/* tests/planted/test_decode_avcd.c: AVCD and Fork-Merge Decoding (include/avlens/decode.h) on
 * the planted-sinks model (tests/support/planted_sinks.h).
 *
 * Checks: AVCD's masked passes zero exactly the keys avl_avcd_analyse picks, in the edit layers,
 * for every query, and renormalise the rows (an observer wrapped around the plan's hook against a
 * softmax by hand); the analysis of the decode's step 0 is the test's own observation of the
 * original pass; the entropy gate passes the original logits through (gate above log V: vanilla
 * token for token; default gate: every low-entropy step is the original's argmax); the
 * combination (2 + 2a) z_o - 2a z_1 + z_2 + z_3 with the log(beta) cut, by hand on the recorded
 * logits of the four passes, and the first step's masked logits against a prefill of their own;
 * FMD with no fork layer is vanilla; FMD on a clip without audio takes w = 1 and is vanilla for
 * any fork depth (token for token, scores to 1e-6: the shared prefix cuts the prefill in two); shared-prefix AVCD and FMD equal the full recompute
 * token for token; allocation failures; argument errors.
 */
#include "avl_test.h"
#include "base/internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLANTED_SINKS_DIR "planted_avcd"
#include "planted_sinks.h"
#include "decode_checks.h"

enum { T_NEW = 5 };

static avl_decode_params params(avl_decode_method method)
{
    avl_decode_params p;
    assert_int_equal(avl_decode_default_params(F.m, method, &p), AVL_OK);
    p.max_new_tokens = T_NEW;
    p.keep_logits = true;
    return p;
}

static avl_decode_input input(void)
{
    avl_decode_input in = {.embeds = F.embeds, .map = F.map};
    return in;
}

static void run(const avl_decode_params *p, const avl_decode_input *in, avl_decode_result *r)
{
    if (avl_decode(F.m, in, p, r) != AVL_OK) fail_msg("decode: %s", avl_last_error());
}

/* ---- the test's own observation of the last prompt query (layers [0, NL - 1), head mean) ---- */

typedef struct {
    double row[NL][NH][512];
} last_rows;

static bool lr_wants_attn(void *u, int layer)
{
    (void)u;
    return layer < NL - 1;
}

static void lr_attn(void *u, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                    const float *scores)
{
    (void)scores;
    last_rows *o = u;
    int64_t q = F.L - 1;
    if (q < q0 || q >= q0 + nq) return;
    for (int64_t k = 0; k < nk && k <= q; k++) o->row[layer][head][k] = probs[(q - q0) * nk + k];
}

static void observed_attn(double *attn)
{
    static last_rows o;
    memset(&o, 0, sizeof o);
    assert_true(F.L <= 512);
    avl_hooks hk = {.wants_attn = lr_wants_attn, .attn = lr_attn, .user = &o};
    free(forward(&hk));
    for (int64_t k = 0; k < F.L; k++) {
        double s = 0;
        for (int l = 0; l < NL - 1; l++)
            for (int h = 0; h < NH; h++) s += o.row[l][h][k];
        attn[k] = s / ((NL - 1) * NH);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- (a) the masked passes zero exactly the chosen keys ---- */

typedef struct {
    const avl_hooks *inner;
    const avl_tokset *keys;
    int l1; /* edited layers [0, l1) */
    _Atomic int64_t rows, rows_masked, bad, nonzero;
} wrap;

static bool w_wants_attn(void *u, int layer)
{
    (void)u;
    (void)layer;
    return true;
}

static void w_attn(void *u, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                   const float *scores)
{
    wrap *w = u;
    if (w->inner && w->inner->attn && (!w->inner->wants_attn || w->inner->wants_attn(w->inner->user, layer)))
        w->inner->attn(w->inner->user, layer, head, q0, nq, nk, probs, scores);
    for (int64_t i = 0; i < nq; i++) {
        int64_t q = q0 + i;
        const float *a = scores + i * nk;
        const float *got = probs + i * nk;
        bool edited = layer < w->l1;
        double mx = -INFINITY, z = 0, e[512];
        assert_true(q < 512);
        for (int64_t k = 0; k <= q; k++) mx = fmax(mx, a[k]);
        for (int64_t k = 0; k <= q; k++) z += e[k] = exp(a[k] - mx);
        double kept = 0;
        bool any = false;
        for (int64_t k = 0; k <= q; k++) {
            e[k] /= z;
            if (edited && avl_tokset_contains(w->keys, k)) {
                any = true;
                if (got[k] != 0.0f) atomic_fetch_add(&w->nonzero, 1);
                e[k] = 0;
            }
            kept += e[k];
        }
        for (int64_t k = 0; k <= q; k++)
            if (fabs(e[k] / kept - got[k]) > 1e-6) atomic_fetch_add(&w->bad, 1);
        atomic_fetch_add(&w->rows, 1);
        if (any) atomic_fetch_add(&w->rows_masked, 1);
    }
}

static void test_avcd_masks_observed(void **state)
{
    (void)state;
    double attn[512], sorted[512];
    observed_attn(attn);
    avl_avcd_step st;
    assert_int_equal(avl_avcd_analyse(F.map, F.L, attn, &st), AVL_OK);
    /* the threshold and the sets by hand */
    memcpy(sorted, attn, (size_t)F.L * sizeof *sorted);
    qsort(sorted, (size_t)F.L, sizeof *sorted, cmp_d);
    double thr = F.L % 2 ? sorted[F.L / 2] : 0.5 * (sorted[F.L / 2 - 1] + sorted[F.L / 2]);
    assert_true(st.threshold == thr);
    int64_t first = 0;
    while (F.map->tok[first].kind != AVL_TOK_AUDIO && F.map->tok[first].kind != AVL_TOK_VIDEO) first++;
    int64_t above[3] = {0};
    for (int64_t k = 0; k < F.L; k++) {
        int kind = F.map->tok[k].kind;
        int g = kind == AVL_TOK_VIDEO ? AVL_QG_VIDEO : kind == AVL_TOK_AUDIO ? AVL_QG_AUDIO
                : kind == AVL_TOK_TEXT && k >= first ? AVL_QG_TEXT : -1;
        if (g >= 0 && attn[k] > thr) above[g]++;
        bool in1 = avl_tokset_contains(&st.masked[0], k);
        /* pass 1 masks the two modalities that do not dominate */
        assert_true(in1 == (g >= 0 && g != st.dominant && attn[k] > thr));
    }
    fprintf(stderr, "dominant %d, threshold %.4g, masked %lld %lld %lld\n", st.dominant, thr, (long long)st.masked[0].n,
            (long long)st.masked[1].n, (long long)st.masked[2].n);
    assert_true(st.masked[0].n > 0);
    assert_int_equal(st.masked[0].n, st.masked[1].n + st.masked[2].n);

    avl_decode_params p = params(AVL_DECODE_AVCD);
    assert_int_equal(p.edit_layer0, 0);
    assert_int_equal(p.edit_layer1, NL - 1);
    for (int j = 0; j < 3; j++) {
        if (st.masked[j].n == 0) continue;
        avl_plan *plan;
        assert_int_equal(avl_plan_new(F.m, F.map, &plan), AVL_OK);
        assert_int_equal(avl_decode_add_avcd_mask(plan, &p, F.map, &st.masked[j]), AVL_OK);
        wrap w = {.inner = avl_plan_hooks(plan), .keys = &st.masked[j], .l1 = p.edit_layer1};
        avl_hooks hk = {.wants_attn = w_wants_attn, .attn = w_attn, .user = &w};
        free(forward(&hk));
        if (w.nonzero) fail_msg("pass %d: %lld masked probabilities are not zero", j + 1, (long long)w.nonzero);
        if (w.bad) fail_msg("pass %d: %lld probabilities differ from the renormalised softmax", j + 1, (long long)w.bad);
        assert_int_equal(w.rows, NL * NH * F.L);
        /* every query after the first masked key has one in the edited layers */
        assert_int_equal(w.rows_masked, (NL - 1) * NH * (F.L - st.masked[j].pos[0]));
        avl_plan_free(plan);
    }

    /* the decode's own first step: the same dominant modality, and pass 1's logits are those of a
     * prefill with pass 1's mask */
    p.entropy_gate = 0;
    avl_decode_input in = input();
    avl_decode_result r;
    run(&p, &in, &r);
    assert_int_equal(r.dominant[0], st.dominant);
    int64_t V = r.V;
    avl_plan *plan;
    assert_int_equal(avl_plan_new(F.m, F.map, &plan), AVL_OK);
    assert_int_equal(avl_decode_add_avcd_mask(plan, &p, F.map, &st.masked[0]), AVL_OK);
    float *lg = forward(avl_plan_hooks(plan));
    expect_close(r.pass_logits + V, lg + (F.L - 1) * V, V, 1e-6, "pass 1 at step 0");
    float *plain = forward(NULL);
    expect_close(r.pass_logits, plain + (F.L - 1) * V, V, 1e-6, "original at step 0");
    free(lg);
    free(plain);
    avl_plan_free(plan);
    avl_decode_result_clear(&r);
    avl_avcd_step_clear(&st);
}

/* ---- (b) the entropy gate ---- */

static double entropy(const float *z, int64_t V)
{
    double mx = -INFINITY, s = 0, e = 0;
    for (int64_t i = 0; i < V; i++) mx = fmax(mx, z[i]);
    for (int64_t i = 0; i < V; i++) s += exp((double)z[i] - mx);
    for (int64_t i = 0; i < V; i++) {
        double lp = z[i] - mx - log(s);
        e -= exp(lp) * lp;
    }
    return e;
}

static void test_avcd_entropy_gate(void **state)
{
    (void)state;
    avl_decode_input in = input();
    avl_decode_params pv = params(AVL_DECODE_VANILLA);
    avl_decode_result rv, r;
    run(&pv, &in, &rv);
    /* a gate above log V: every step's entropy is below it, so the original pass decides */
    avl_decode_params p = params(AVL_DECODE_AVCD);
    p.entropy_gate = 1e6;
    run(&p, &in, &r);
    expect_ids(&r, rv.ids, rv.n, "avcd, gate 1e6");
    for (int64_t i = 0; i < r.n; i++) assert_int_equal(r.dominant[i], -1);
    avl_decode_result_clear(&r);
    /* gate 0: no step passes */
    p.entropy_gate = 0;
    run(&p, &in, &r);
    for (int64_t i = 0; i < r.n; i++) assert_true(r.dominant[i] >= 0);
    avl_decode_result_clear(&r);
    /* a gate just above the first step's entropy: the steps below it are the original's argmax,
     * the others are not passed through */
    p = params(AVL_DECODE_AVCD);
    p.entropy_gate = 0;
    run(&p, &in, &r);
    double h0 = entropy(r.pass_logits, r.V);
    fprintf(stderr, "first step entropy %.6g\n", h0);
    avl_decode_result_clear(&r);
    p.entropy_gate = h0 + 1e-6; /* the first step (the same prompt) is gated now */
    run(&p, &in, &r);
    int gated = 0;
    for (int64_t i = 0; i < r.n; i++) {
        const float *zo = r.pass_logits + i * 4 * r.V;
        double hi_ = entropy(zo, r.V);
        if (hi_ < p.entropy_gate) {
            gated++;
            assert_int_equal(r.dominant[i], -1);
            int64_t best = 0;
            for (int64_t v = 1; v < r.V; v++)
                if (zo[v] > zo[best]) best = v;
            assert_int_equal(r.ids[i], best);
            assert_memory_equal(r.scores + i * r.V, zo, (size_t)r.V * sizeof *zo);
        } else {
            assert_true(r.dominant[i] >= 0);
        }
    }
    assert_true(gated > 0);
    avl_decode_result_clear(&r);
    avl_decode_result_clear(&rv);
}

/* ---- (c) the combination by hand ---- */

static void test_avcd_combination(void **state)
{
    (void)state;
    avl_decode_input in = input();
    avl_decode_params p = params(AVL_DECODE_AVCD);
    p.entropy_gate = 0;
    for (int trial = 0; trial < 2; trial++) {
        if (trial == 1) p.alpha = 1.7, p.beta = 0.9; /* the tiny model's logits are close: a cut that bites */
        avl_decode_result r;
        run(&p, &in, &r);
        int64_t V = r.V, cut = 0, differs = 0;
        for (int64_t i = 0; i < r.n; i++) {
            const float *zo = r.pass_logits + i * 4 * V, *z1 = zo + V, *z2 = zo + 2 * V, *z3 = zo + 3 * V;
            double mx = -INFINITY, best = -INFINITY;
            int64_t arg = 0;
            for (int64_t v = 0; v < V; v++) mx = fmax(mx, zo[v]);
            for (int64_t v = 0; v < V; v++) {
                double want = zo[v] < log(p.beta) + mx
                                  ? -INFINITY
                                  : (2 + 2 * p.alpha) * zo[v] - 2 * p.alpha * z1[v] + z2[v] + z3[v];
                float got = r.scores[i * V + v];
                if (isinf(want)) {
                    cut++;
                    if (!(isinf(got) && got < 0)) fail_msg("step %lld, token %lld: %g, want -inf", (long long)i, (long long)v, got);
                } else if (fabs(got - want) > 1e-5 * fmax(1.0, fabs(want))) {
                    fail_msg("step %lld, token %lld: %.9g, want %.9g", (long long)i, (long long)v, got, want);
                }
                if (want > best) best = want, arg = v;
                differs += z1[v] != zo[v];
            }
            assert_int_equal(r.ids[i], arg);
        }
        if (trial == 1) assert_true(cut > 0);
        assert_true(differs > 0); /* the masks change the logits */
        avl_decode_result_clear(&r);
    }
}

/* ---- (d) FMD identities ---- */

static void test_fmd_identities(void **state)
{
    (void)state;
    avl_decode_input in = input();
    avl_decode_params pv = params(AVL_DECODE_VANILLA);
    avl_decode_result rv, r;
    run(&pv, &in, &rv);
    /* no fork layer: the merge of the two masked inputs is the input itself */
    avl_decode_params p = params(AVL_DECODE_FMD);
    p.fork_layers = 0;
    run(&p, &in, &r);
    expect_ids(&r, rv.ids, rv.n, "fmd, 0 fork layers");
    /* the shared prefix cuts the prefill in two, so GEMM rounding may differ: 1e-6 of the scale */
    expect_close(r.scores, rv.scores, r.n * r.V, 1e-6, "fmd, 0 fork layers");
    avl_decode_result_clear(&r);
    /* the default on the audio-visual clip: a weight strictly inside (0, 1), and a fork changes
     * the logits */
    p = params(AVL_DECODE_FMD);
    assert_int_equal(p.fork_layers, NL - 1);
    run(&p, &in, &r);
    fprintf(stderr, "fmd weight %.6g\n", r.merge_weight);
    assert_true(r.merge_weight > 0 && r.merge_weight < 1);
    assert_true(memcmp(r.scores, rv.scores, (size_t)r.V * sizeof *r.scores) != 0);
    avl_decode_result_clear(&r);
    avl_decode_result_clear(&rv);

    /* a clip without audio: the audio-masked branch is the input, no audio key takes attention, so
     * w = 1 and every merged row is that branch's: vanilla at any fork depth */
    avl_seq_params sp = avl_model_seq_params(F.m);
    int32_t chat[9] = {40, 41, 42, sp.vision_start_token_id, sp.video_token_id, sp.vision_end_token_id, 43, 44, 45};
    avl_media_shape ms = {0};
    ms.n_videos = 1;
    ms.video_grid_thw[0][0] = 2;
    ms.video_grid_thw[0][1] = 4;
    ms.video_grid_thw[0][2] = 4;
    ms.video_second_per_grid[0] = 1.0;
    int32_t *ids;
    int64_t L;
    avl_token_map *map;
    assert_int_equal(avl_seq_expand(&sp, chat, 9, &ms, false, &ids, &L), AVL_OK);
    assert_int_equal(avl_seq_positions(&sp, ids, L, &ms, false, &map), AVL_OK);
    float *emb = malloc((size_t)(L * HID) * sizeof *emb);
    assert_int_equal(avl_run_embed_tokens(F.m, ids, L, emb), AVL_OK);
    for (int64_t i = 0; i < L * HID; i++) emb[i] *= 50.0f;
    avl_decode_input vin = {.embeds = emb, .map = map};
    run(&pv, &vin, &rv);
    for (int lf = 0; lf < NL; lf++) {
        p = params(AVL_DECODE_FMD);
        p.fork_layers = lf;
        run(&p, &vin, &r);
        if (lf > 0) assert_true(r.merge_weight == 1.0);
        expect_ids(&r, rv.ids, rv.n, "fmd without audio");
        expect_close(r.scores, rv.scores, r.n * r.V, 1e-6, "fmd without audio");
        avl_decode_result_clear(&r);
    }
    avl_decode_result_clear(&rv);
    avl_token_map_free(map);
    avl_free(ids);
    free(emb);
}

/* ---- (e) shared prefix against full recompute ---- */

static void test_shared_vs_recompute(void **state)
{
    (void)state;
    avl_decode_input in = input();
    struct {
        avl_decode_method m;
        double gate;
        int fork;
        const char *what;
    } cases[] = {{AVL_DECODE_AVCD, 0.6, 0, "avcd"},  {AVL_DECODE_AVCD, 0.0, 0, "avcd, gate 0"},
                 {AVL_DECODE_FMD, 0, NL - 1, "fmd"}, {AVL_DECODE_FMD, 0, 1, "fmd, 1 fork layer"},
                 {AVL_DECODE_FMD, 0, 0, "fmd, 0 fork layers"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        avl_decode_params p = params(cases[c].m);
        if (cases[c].m == AVL_DECODE_AVCD) p.entropy_gate = cases[c].gate;
        else p.fork_layers = cases[c].fork;
        avl_decode_result a, b;
        run(&p, &in, &a);
        p.shared_prefix = false;
        run(&p, &in, &b);
        expect_ids(&a, b.ids, b.n, cases[c].what);
        if (a.dominant) assert_memory_equal(a.dominant, b.dominant, (size_t)a.n);
        assert_true(fabs(a.merge_weight - b.merge_weight) <= 1e-6);
        /* not bit-equal: GEMM rounding depends on the rows per call */
        expect_close(a.scores, b.scores, a.n * a.V, 1e-5, cases[c].what);
        avl_decode_result_clear(&a);
        avl_decode_result_clear(&b);
    }
}

/* ---- faults and errors ---- */

static void test_alloc_failures(void **state)
{
    (void)state;
    avl_decode_input in = input();
    const avl_decode_method ms_[2] = {AVL_DECODE_AVCD, AVL_DECODE_FMD};
    for (int i = 0; i < 2; i++) {
        avl_decode_params p = params(ms_[i]);
        p.max_new_tokens = 2;
        p.entropy_gate = 0;
        expect_decode_faults(F.m, &in, &p, 17);
    }
}

static void test_errors(void **state)
{
    (void)state;
    avl_decode_input in = input();
    avl_decode_result r;
    avl_decode_params p = params(AVL_DECODE_FMD);
    p.fork_layers = NL;
    AVL_EXPECT_ERROR(avl_decode(F.m, &in, &p, &r), AVL_E_ARG, "fork layers");
    p = params(AVL_DECODE_FMD);
    p.merge_weight = 1.5;
    AVL_EXPECT_ERROR(avl_decode(F.m, &in, &p, &r), AVL_E_ARG, "merge weight");
    p = params(AVL_DECODE_AVCD);
    p.target_layer1 = NL + 1;
    AVL_EXPECT_ERROR(avl_decode(F.m, &in, &p, &r), AVL_E_ARG, "target layers");
    p = params(AVL_DECODE_AVCD);
    p.beta = 0;
    AVL_EXPECT_ERROR(avl_decode(F.m, &in, &p, &r), AVL_E_ARG, "beta");
    avl_decode_method dm;
    assert_int_equal(avl_decode_method_parse("avcd", &dm), AVL_OK);
    assert_int_equal(dm, AVL_DECODE_AVCD);
    assert_int_equal(avl_decode_method_parse("fmd", &dm), AVL_OK);
    assert_int_equal(dm, AVL_DECODE_FMD);
    avl_avcd_step st;
    double a[4] = {0};
    AVL_EXPECT_ERROR(avl_avcd_analyse(F.map, F.L - 1, a, &st), AVL_E_ARG, "positions");
}

/* The planted model's last prompt token is text, which no planted head reads: its attention is
 * flat and nothing stands above the median. Giving it the audio queries' planted direction makes
 * it attend to the sinks the audio queries attend to (one video, one audio sink), as a query
 * that looks at the media would. */
static int setup_avcd(void **state)
{
    int rc = setup(state);
    if (rc == 0) F.embeds[(F.L - 1) * HID + QA] = 20.0f;
    return rc;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avcd_masks_observed), cmocka_unit_test(test_avcd_entropy_gate),
        cmocka_unit_test(test_avcd_combination),    cmocka_unit_test(test_fmd_identities),
        cmocka_unit_test(test_shared_vs_recompute), cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup_avcd, teardown);
}
