/* tests/planted/test_decode.c: the decoding methods (include/avlens/decode.h) on the planted
 * sinks model of test_sinks_mds.c (same weights and inputs, built the same way).
 *
 * Checks: the shared prefix equals two full prefills; alpha = 0 gives vanilla token for token;
 * ASD and reverse ASD apply Eqs. 6-7 with the signs they should (probabilities after the edit
 * against a softmax by hand of the edited pre-softmax scores); VCD with alpha = 0 and PAI with
 * alpha = 0, gamma = 1 equal vanilla; the KV-cache prefix copy equals recomputation; each
 * step's passes run as one batch equal the same passes stepped one by one (every method with
 * more than one pass).
 */
#include "avl_test.h"
#include "base/internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define PLANTED_SINKS_DIR "planted_decode"
#include "planted_sinks.h"
#include "decode_checks.h"

enum { T_NEW = 6 };

static avl_decode_params params(avl_decode_method method)
{
    avl_decode_params p;
    assert_int_equal(avl_decode_default_params(F.m, method, &p), AVL_OK);
    p.max_new_tokens = T_NEW;
    p.edit_layer0 = 1; /* the model has 4 layers: edit layers 1-3 */
    p.target_layer0 = 2;
    p.target_layer1 = NL;
    p.sinks = (avl_sink_params){.n_dims = 2, .dims = {D0, D1}, .tau = 6.0};
    p.keep_logits = true;
    return p;
}

static avl_decode_input input(void)
{
    avl_decode_input in = {.embeds = F.embeds, .map = F.map};
    return in;
}

/* avl_generate's greedy answer: the vanilla reference */
static void vanilla_ids(int32_t **ids, int64_t *n)
{
    avl_run *r;
    assert_int_equal(avl_run_new(F.m, F.L + T_NEW, &r), AVL_OK);
    avl_gen_params gp = avl_gen_default_params();
    gp.max_new_tokens = T_NEW;
    assert_int_equal(avl_generate(r, F.embeds, F.map, &gp, NULL, ids, n), AVL_OK);
    avl_run_free(r);
}

static void run(const avl_decode_params *p, const avl_decode_input *in, avl_decode_result *r)
{
    if (avl_decode(F.m, in, p, r) != AVL_OK) fail_msg("decode: %s", avl_last_error());
}

static void test_vanilla_is_generate(void **state)
{
    (void)state;
    int32_t *ids;
    int64_t n;
    vanilla_ids(&ids, &n);
    avl_decode_params p = params(AVL_DECODE_VANILLA);
    avl_decode_input in = input();
    avl_decode_result r;
    run(&p, &in, &r);
    expect_ids(&r, ids, n, "vanilla");
    avl_decode_result_clear(&r);
    avl_free(ids);
}

/* The cache prefix copied from another run, then the rest: the same logits as one prefill. */
static void test_copy_prefix(void **state)
{
    (void)state;
    int64_t V = avl_model_config(F.m)->text.vocab_size, cut = F.L - 4;
    float *a = malloc((size_t)V * sizeof *a), *b = malloc((size_t)V * sizeof *b);
    avl_run *r1, *r2;
    assert_int_equal(avl_run_new(F.m, F.L, &r1), AVL_OK);
    assert_int_equal(avl_run_new(F.m, F.L, &r2), AVL_OK);
    assert_int_equal(avl_run_forward(r1, F.embeds, F.map->pos, F.L, F.L, NULL, a, 1), AVL_OK);
    assert_int_equal(avl_run_copy_prefix(r2, r1, cut), AVL_OK);
    assert_int_equal(avl_run_length(r2), cut);
    assert_int_equal(avl_run_forward(r2, F.embeds + cut * HID, F.map->pos + cut, F.L, F.L - cut, NULL, b, 1), AVL_OK);
    /* not bit-equal: the GEMM of a shorter prefill chunk may round differently */
    expect_close(a, b, V, 1e-6, "copied prefix");
    AVL_EXPECT_ERROR(avl_run_copy_prefix(r2, r1, F.L + 1), AVL_E_ARG, "cannot copy");
    avl_run *small;
    assert_int_equal(avl_run_new(F.m, 2, &small), AVL_OK);
    AVL_EXPECT_ERROR(avl_run_copy_prefix(small, r1, 3), AVL_E_ARG, "room 2");
    avl_run_free(small);
    avl_run_free(r1);
    avl_run_free(r2);
    free(a);
    free(b);
}

/* Shared prefix against two full prefills: same tokens, same gammas, same scores. */
static void test_shared_prefix(void **state)
{
    (void)state;
    for (int m = AVL_DECODE_ASD; m <= AVL_DECODE_REVERSE_ASD; m++) {
        avl_decode_params p = params((avl_decode_method)m);
        avl_decode_input in = input();
        avl_decode_result a, b;
        run(&p, &in, &a);
        p.shared_prefix = false;
        run(&p, &in, &b);
        assert_int_equal(a.n, b.n);
        assert_int_equal(a.n_uni, 2);   /* one unimodal sink per modality */
        assert_int_equal(a.n_cross, 2);
        assert_memory_equal(a.uni, b.uni, (size_t)(a.n_uni + a.n_cross) * sizeof *a.uni);
        expect_ids(&a, b.ids, b.n, "shared prefix");
        bool some_gamma = false;
        double gd = 0;
        for (int64_t i = 0; i < a.n; i++) {
            gd = fmax(gd, fabs(a.gamma[i] - b.gamma[i]));
            some_gamma |= a.gamma[i] > 0;
        }
        fprintf(stderr, "%s gamma: max |diff| %.3g\n", avl_decode_method_name(p.method), gd);
        assert_true(gd <= 1e-6);
        assert_true(a.gamma[0] == 0.0);
        assert_true(some_gamma);
        /* not bit-equal (the prefill is cut in two, and GEMM rounding depends on the rows per
         * call), so the scores agree to 1e-6 of their scale */
        expect_close(a.scores, b.scores, a.n * a.V, 1e-6, avl_decode_method_name(p.method));
        avl_decode_result_clear(&a);
        avl_decode_result_clear(&b);
    }
}

/* Batched steps (one avl_run_forward_batch per step for all passes) against one forward per
 * pass: the same tokens and gammas, scores within 1e-6 of their scale (bit-equal when the
 * backend computes a row the same way at 1 and at n rows; printed). */
static void test_batched_steps(void **state)
{
    (void)state;
    int32_t uids[6] = {40, 41, 42, 43, 44, 45};
    avl_seq_params sp = avl_model_seq_params(F.m);
    avl_media_shape ms = {0};
    avl_token_map *um;
    assert_int_equal(avl_seq_positions(&sp, uids, 6, &ms, false, &um), AVL_OK);
    float *ue = malloc((size_t)(6 * HID) * sizeof *ue), *noisy = malloc((size_t)(F.L * HID) * sizeof *noisy);
    assert_int_equal(avl_run_embed_tokens(F.m, uids, 6, ue), AVL_OK);
    for (int64_t i = 0; i < F.L * HID; i++) noisy[i] = F.embeds[i] * -0.5f + 0.01f * (float)(i % 7);
    avl_decode_input in = {.embeds = F.embeds, .map = F.map, .distorted_embeds = noisy, .uncond_embeds = ue,
                           .uncond_map = um};
    const avl_decode_method ms_[4] = {AVL_DECODE_ASD, AVL_DECODE_REVERSE_ASD, AVL_DECODE_PAI, AVL_DECODE_VCD};
    for (int i = 0; i < 4; i++) {
        avl_decode_params p = params(ms_[i]);
        avl_decode_result a, b;
        run(&p, &in, &a);
        p.batched_steps = false;
        run(&p, &in, &b);
        const char *name = avl_decode_method_name(p.method);
        expect_ids(&a, b.ids, b.n, name);
        for (int64_t k = 0; k < a.n; k++) assert_true(fabs(a.gamma[k] - b.gamma[k]) <= 1e-6);
        bool bits = memcmp(a.scores, b.scores, (size_t)(a.n * a.V) * sizeof *a.scores) == 0;
        fprintf(stderr, "%s batched vs one by one: %s\n", name, bits ? "bit-equal" : "within 1e-6");
        expect_close(a.scores, b.scores, a.n * a.V, 1e-6, name);
        avl_decode_result_clear(&a);
        avl_decode_result_clear(&b);
    }
    avl_token_map_free(um);
    free(ue);
    free(noisy);
}

static void test_alpha0_is_vanilla(void **state)
{
    (void)state;
    int32_t *ids;
    int64_t n;
    vanilla_ids(&ids, &n);
    avl_decode_input in = input();
    for (int m = AVL_DECODE_ASD; m <= AVL_DECODE_REVERSE_ASD; m++) {
        avl_decode_params p = params((avl_decode_method)m);
        p.alpha = 0.0;
        avl_decode_result r;
        run(&p, &in, &r);
        expect_ids(&r, ids, n, "asd alpha 0");
        avl_decode_result_clear(&r);
    }
    /* VCD alpha 0 on any distorted input */
    float *noisy = malloc((size_t)(F.L * HID) * sizeof *noisy);
    for (int64_t i = 0; i < F.L * HID; i++) noisy[i] = F.embeds[i] * -0.5f + 0.01f * (float)(i % 7);
    avl_decode_params p = params(AVL_DECODE_VCD);
    p.alpha = 0.0;
    in.distorted_embeds = noisy;
    avl_decode_result r;
    run(&p, &in, &r);
    expect_ids(&r, ids, n, "vcd alpha 0");
    avl_decode_result_clear(&r);
    /* ... and alpha 1 does change the scores */
    p.alpha = 1.0;
    run(&p, &in, &r);
    avl_decode_result_clear(&r);
    free(noisy);

    /* PAI alpha 0, gamma 1: the unconditional prompt = the text tokens only */
    avl_seq_params sp = avl_model_seq_params(F.m);
    int32_t uids[6] = {40, 41, 42, 43, 44, 45};
    (void)sp;
    avl_media_shape ms = {0};
    avl_token_map *um;
    assert_int_equal(avl_seq_positions(&sp, uids, 6, &ms, false, &um), AVL_OK);
    float *ue = malloc((size_t)(6 * HID) * sizeof *ue);
    assert_int_equal(avl_run_embed_tokens(F.m, uids, 6, ue), AVL_OK);
    avl_decode_params pp = params(AVL_DECODE_PAI);
    pp.alpha = 0.0;
    pp.pai_gamma = 1.0;
    avl_decode_input pin = {.embeds = F.embeds, .map = F.map, .uncond_embeds = ue, .uncond_map = um};
    run(&pp, &pin, &r);
    expect_ids(&r, ids, n, "pai alpha 0 gamma 1");
    avl_decode_result_clear(&r);
    pp = params(AVL_DECODE_PAI); /* the defaults run */
    run(&pp, &pin, &r);
    assert_int_equal(r.n, T_NEW);
    avl_decode_result_clear(&r);
    avl_token_map_free(um);
    free(ue);
    avl_free(ids);
}

/* Eqs. 6-7 observed: the plan's hook edits the row, then the test's wrapper compares it with a
 * softmax by hand of a_j + s_j alpha |a_j| (s_j = +1 cross-modal, -1 unimodal; reverse: -s_j). */
typedef struct {
    const avl_hooks *inner;
    const avl_tokset *uni, *cross;
    int64_t tail0;
    int layer0;
    double sign, alpha;
    _Atomic int64_t rows_checked, rows_moved, bad; /* the hook runs on several threads */
} wrap;

static bool w_wants(void *u, int layer, avl_site s)
{
    wrap *w = u;
    return w->inner->wants ? w->inner->wants(w->inner->user, layer, s) : false;
}

static void w_site(void *u, int layer, avl_site s, int64_t p0, int64_t n, int64_t dim, float *x)
{
    wrap *w = u;
    if (w->inner->at_site) w->inner->at_site(w->inner->user, layer, s, p0, n, dim, x);
}

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
    if (w->inner->attn && (!w->inner->wants_attn || w->inner->wants_attn(w->inner->user, layer)))
        w->inner->attn(w->inner->user, layer, head, q0, nq, nk, probs, scores);
    (void)head;
    for (int64_t i = 0; i < nq; i++) {
        int64_t q = q0 + i;
        bool edited = layer >= w->layer0 && q >= w->tail0;
        const float *a = scores + i * nk;
        double mx = -INFINITY, z = 0, e[512];
        assert_true(q + 1 <= 512);
        for (int64_t k = 0; k <= q; k++) {
            double s = a[k];
            if (edited && avl_tokset_contains(w->cross, k)) s += w->sign * w->alpha * fabs(s);
            if (edited && avl_tokset_contains(w->uni, k)) s -= w->sign * w->alpha * fabs(s);
            e[k] = s;
            mx = fmax(mx, s);
        }
        for (int64_t k = 0; k <= q; k++) z += exp(e[k] - mx);
        for (int64_t k = 0; k <= q; k++) {
            double want = exp(e[k] - mx) / z, got = probs[i * nk + k];
            if (fabs(want - got) > 1e-6) atomic_fetch_add(&w->bad, 1);
        }
        if (edited) {
            atomic_fetch_add(&w->rows_checked, 1);
            double s0 = 0, s1 = 0; /* mass on cross minus unimodal keys, edited vs plain */
            double mx0 = -INFINITY, z0 = 0;
            for (int64_t k = 0; k <= q; k++) mx0 = fmax(mx0, a[k]);
            for (int64_t k = 0; k <= q; k++) z0 += exp(a[k] - mx0);
            for (int64_t k = 0; k <= q; k++) {
                double plain = exp(a[k] - mx0) / z0, got = probs[i * nk + k];
                if (avl_tokset_contains(w->cross, k)) { s0 += plain; s1 += got; }
                if (avl_tokset_contains(w->uni, k)) { s0 -= plain; s1 -= got; }
            }
            /* ASD moves mass from unimodal to cross-modal sinks, reverse the other way */
            if (w->sign * (s1 - s0) > 1e-6) atomic_fetch_add(&w->rows_moved, 1);
        }
    }
}

static void test_edit_signs(void **state)
{
    (void)state;
    for (int m = AVL_DECODE_ASD; m <= AVL_DECODE_REVERSE_ASD; m++) {
        avl_decode_params p = params((avl_decode_method)m);
        avl_decode_input in = input();
        avl_decode_result r;
        run(&p, &in, &r);
        int64_t tail0 = 0;
        for (int64_t i = 0; i < F.L; i++)
            if (F.map->tok[i].kind == AVL_TOK_AUDIO || F.map->tok[i].kind == AVL_TOK_VIDEO) tail0 = i + 1;
        avl_tokset uni, cross, tail;
        assert_int_equal(avl_tokset_from_list(r.uni, r.n_uni, &uni), AVL_OK);
        assert_int_equal(avl_tokset_from_list(r.cross, r.n_cross, &cross), AVL_OK);
        int64_t tp[16], nt = F.L - tail0;
        for (int64_t i = 0; i < nt; i++) tp[i] = tail0 + i;
        assert_int_equal(avl_tokset_from_list(tp, nt, &tail), AVL_OK);
        avl_plan *plan;
        assert_int_equal(avl_plan_new(F.m, F.map, &plan), AVL_OK);
        assert_int_equal(avl_decode_add_asd_edits(plan, &p, F.map, &tail, &uni, &cross), AVL_OK);
        wrap w = {.inner = avl_plan_hooks(plan), .uni = &uni, .cross = &cross, .tail0 = tail0, .layer0 = p.edit_layer0,
                  .sign = m == AVL_DECODE_ASD ? 1.0 : -1.0, .alpha = p.alpha};
        avl_hooks hk = {.wants = w_wants, .at_site = w_site, .wants_attn = w_wants_attn, .attn = w_attn, .user = &w};
        free(forward(&hk));
        if (w.bad) fail_msg("%s: %lld probabilities differ from Eqs. 6-7 by more than 1e-6", avl_decode_method_name(p.method), (long long)w.bad);
        assert_int_equal(w.rows_checked, (NL - p.edit_layer0) * NH * nt);
        assert_true(w.rows_moved > 0);
        avl_plan_free(plan);
        avl_tokset_free(&uni);
        avl_tokset_free(&cross);
        avl_tokset_free(&tail);
        avl_decode_result_clear(&r);
    }
}

/* Allocations of a decode fail in turn: AVL_E_NOMEM, nothing leaks (ASan), then success. */
static void test_alloc_failures(void **state)
{
    (void)state;
    int32_t uids[3] = {40, 41, 42};
    avl_seq_params sp = avl_model_seq_params(F.m);
    avl_media_shape ms = {0};
    avl_token_map *um;
    assert_int_equal(avl_seq_positions(&sp, uids, 3, &ms, false, &um), AVL_OK);
    float *ue = malloc((size_t)(3 * HID) * sizeof *ue);
    assert_int_equal(avl_run_embed_tokens(F.m, uids, 3, ue), AVL_OK);
    avl_decode_input in = {.embeds = F.embeds, .map = F.map, .distorted_embeds = F.embeds, .uncond_embeds = ue,
                           .uncond_map = um};
    const avl_decode_method ms_[3] = {AVL_DECODE_ASD, AVL_DECODE_PAI, AVL_DECODE_VCD};
    for (int i = 0; i < 3; i++) {
        avl_decode_params p = params(ms_[i]);
        p.max_new_tokens = 2;
        /* the vocabulary is large (each pass's lm_head is the cost), so after the first 12 every
         * 23rd allocation (ASD makes about 220 here) */
        expect_decode_faults(F.m, &in, &p, 23);
    }
    avl_token_map_free(um);
    free(ue);
}

static void test_errors(void **state)
{
    (void)state;
    avl_decode_params p = params(AVL_DECODE_VCD);
    avl_decode_input in = input();
    avl_decode_result r;
    AVL_EXPECT_ERROR(avl_decode(F.m, &in, &p, &r), AVL_E_ARG, "distorted");
    p = params(AVL_DECODE_PAI);
    AVL_EXPECT_ERROR(avl_decode(F.m, &in, &p, &r), AVL_E_ARG, "unconditional");
    p = params(AVL_DECODE_ASD);
    p.sinks.n_dims = 0;
    AVL_EXPECT_ERROR(avl_decode(F.m, &in, &p, &r), AVL_E_ARG, "sink dimensions");
    p = params(AVL_DECODE_ASD);
    p.target_layer1 = NL + 1;
    AVL_EXPECT_ERROR(avl_decode(F.m, &in, &p, &r), AVL_E_ARG, "target layers");
    avl_decode_method dm;
    AVL_EXPECT_ERROR(avl_decode_method_parse("opera", &dm), AVL_E_ARG, "opera");
    assert_int_equal(avl_decode_method_parse("reverse-asd", &dm), AVL_OK);
    assert_int_equal(dm, AVL_DECODE_REVERSE_ASD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vanilla_is_generate), cmocka_unit_test(test_copy_prefix),
        cmocka_unit_test(test_shared_prefix),       cmocka_unit_test(test_batched_steps),       cmocka_unit_test(test_alpha0_is_vanilla),
        cmocka_unit_test(test_edit_signs),          cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
