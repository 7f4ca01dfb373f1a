/* tests/planted/test_trace_shortcuts.c: the tracer's exact shortcuts (a restored run starts from
 * the corrupted KV cache before its first patched position; before-attention patches in every
 * layer copy the patched tokens' keys and values from the clean cache) give the same restored
 * answers, logits and IE_clean / IE_corr as naive full recomputation, bit for bit on the ref
 * backend, for the standard suite of token sets (tests/support/trace_suite.h) at every patch
 * site and over layer windows (where only the prefix shortcut may apply), with audio corrupted
 * (video restored) and video corrupted (audio restored). On the planted-sinks model
 * (tests/support/planted_sinks.h), so the sink sets are the real ones. The planted tracing model
 * gets the same check in test_trace.c. */
#include "avl_test.h"

#define PLANTED_SINKS_DIR "planted_sinks_trace"
#include "planted_sinks.h"
#include "trace_suite.h"

static avl_tokenizer *TOK;
static float *CORR_A, *CORR_V; /* (L, HID): audio rows corrupted; video rows corrupted */

/* The corrupted rows: sign-flipped and halved (the planted sink dimensions kept, so the
 * corrupted run still has sinks, as a zeroed input usually does). */
static float *corrupt(avl_tok_kind kind)
{
    float *c = malloc((size_t)(F.L * HID) * sizeof(float));
    memcpy(c, F.embeds, (size_t)(F.L * HID) * sizeof(float));
    for (int64_t i = 0; i < F.L; i++)
        if (F.map->tok[i].kind == (int)kind)
            for (int j = 0; j < HID; j++)
                if (j != D0 && j != D1) c[i * HID + j] *= -0.5f;
    return c;
}

static int setup_ref(void **state)
{
    if (setup(state)) return -1;
    (void)forward; /* the shared fixture's helper, not needed here */
    /* the same checkpoint on the reference backend: every GEMM row computed on its own */
    avl_model_free(F.m);
    avl_model_params mp = avl_model_default_params();
    mp.backend = "ref";
    mp.threads = 1; /* results do not depend on it; spinning OpenMP threads cost a loaded machine */
    if (avl_model_load(F.dir, &mp, &F.m) || avl_tokenizer_load(F.dir, &TOK)) return -1;
    CORR_A = corrupt(AVL_TOK_AUDIO);
    CORR_V = corrupt(AVL_TOK_VIDEO);
    return 0;
}

static int teardown_ref(void **state)
{
    avl_tokenizer_free(TOK);
    free(CORR_A);
    free(CORR_V);
    return teardown(state);
}

static trace_suite suite(avl_tok_kind corrupted)
{
    trace_suite s = {.m = F.m, .tok = TOK, .map = F.map, .clean = F.embeds, .max_new_tokens = 3};
    s.corr = corrupted == AVL_TOK_AUDIO ? CORR_A : CORR_V;
    s.patched = corrupted == AVL_TOK_AUDIO ? AVL_TOK_VIDEO : AVL_TOK_AUDIO;
    s.sp = (avl_sink_params){.n_dims = 2, .dims = {D0, D1}, .tau = 6.0};
    return s;
}

/* The standard suite before attention (ATTN_IN, the default site) in every layer: both
 * shortcuts apply; with audio corrupted (video restored) and with video corrupted. */
static void test_standard_suite(void **state)
{
    (void)state;
    for (int c = 0; c < 2; c++) {
        trace_suite s = suite(c ? AVL_TOK_VIDEO : AVL_TOK_AUDIO);
        trace_suite_check(&s, AVL_SITE_ATTN_IN, 0);
        assert_int_equal(s.n_restored, 14);
        assert_true(s.computed_short < s.computed_naive);
    }
}

/* The layer input (RESID) in every layer: both shortcuts; ATTN_IN over windows of 2 of the 4
 * layers: the prefix shortcut only (the window's first layer still reads corrupted keys). */
static void test_resid_and_windows(void **state)
{
    (void)state;
    trace_suite s = suite(AVL_TOK_AUDIO);
    s.few = true;
    trace_suite_check(&s, AVL_SITE_RESID, 0);
    s.corr = CORR_V, s.patched = AVL_TOK_AUDIO;
    trace_suite_check(&s, AVL_SITE_ATTN_IN, 2);
    assert_int_equal(s.n_restored, 4 + 4 * (1 + 3));
}

/* After attention and after the MLP the patched tokens' keys and values are not the clean
 * ones (their layer input is still corrupted): the prefix shortcut only. */
static void test_after_attention_and_mlp(void **state)
{
    (void)state;
    trace_suite s = suite(AVL_TOK_AUDIO);
    s.few = true;
    trace_suite_check(&s, AVL_SITE_ATTN_OUT, 3);
    s.corr = CORR_V, s.patched = AVL_TOK_AUDIO;
    trace_suite_check(&s, AVL_SITE_MLP_OUT, 3);
    assert_int_equal(s.n_restored, 2 * 4 * (1 + 2));
}

/* avl_trace_run (one restored run with its own clean and corrupted runs) equals a tracer's. */
static void test_trace_run_is_a_tracer(void **state)
{
    (void)state;
    trace_suite s = suite(AVL_TOK_AUDIO);
    /* three video tokens of the second chunk (after the first corrupted audio token) */
    avl_tokset video, set;
    assert_int_equal(avl_tokset_of_kind(F.map, AVL_TOK_VIDEO, &video), AVL_OK);
    int64_t pos[3] = {video.pos[video.n - 5], video.pos[video.n - 2], video.pos[video.n - 1]};
    assert_true(pos[0] > F.sa1);
    avl_tokset_free(&video);
    assert_int_equal(avl_tokset_from_list(pos, 3, &set), AVL_OK);
    avl_trace_params tp = avl_trace_default_params(F.m);
    tp.gen.max_new_tokens = 2;
    int64_t n_ids = avl_tokenizer_vocab_size(TOK);
    tp.gen.on_logits = ts_real_ids_only;
    tp.gen.user = &n_ids;
    avl_trace_result a, b;
    assert_int_equal(avl_trace_run(F.m, TOK, F.map, s.clean, s.corr, &set, &tp, &a), AVL_OK);
    tp.reuse_prefix = tp.reuse_clean_kv = false;
    assert_int_equal(avl_trace_run(F.m, TOK, F.map, s.clean, s.corr, &set, &tp, &b), AVL_OK);
    assert_true(a.clean.n > 0 && a.corr.n > 0);
    assert_int_equal(a.n_computed, F.L - pos[0] - 3);
    assert_int_equal(b.n_computed, F.L);
    assert_memory_equal(&a.ie_clean, &b.ie_clean, sizeof(double));
    assert_memory_equal(&a.ie_corr, &b.ie_corr, sizeof(double));
    /* the clean keys and values alone (no prefix reuse): every position but the three */
    avl_trace_result c;
    tp.reuse_clean_kv = true;
    assert_int_equal(avl_trace_run(F.m, TOK, F.map, s.clean, s.corr, &set, &tp, &c), AVL_OK);
    assert_int_equal(c.n_computed, F.L - 3);
    assert_memory_equal(&c.ie_clean, &b.ie_clean, sizeof(double));
    assert_memory_equal(&c.ie_corr, &b.ie_corr, sizeof(double));
    assert_memory_equal(c.rest.logits, b.rest.logits, (size_t)(c.rest.n * c.rest.V) * sizeof(float));
    avl_trace_result_clear(&c);
    /* the naive tracer's clean run is plain generation (the capture changes nothing) */
    avl_gen_answer g;
    assert_int_equal(avl_gen_answer_run(F.m, TOK, s.clean, F.map, &tp.gen, NULL, &g), AVL_OK);
    assert_int_equal(g.n, b.clean.n);
    assert_memory_equal(g.logits, b.clean.logits, (size_t)(g.n * g.V) * sizeof(float));
    avl_gen_answer_clear(&g);
    avl_trace_result_clear(&a);
    avl_trace_result_clear(&b);
    avl_tokset_free(&set);
}

/* OpenBLAS: a restored run's rows go through products of another height than in the naive run
 * (few rows: the skinny kernel; many: sgemm), which sum in other orders, so the shortcuts agree
 * with naive recomputation to rounding only: IE within 1e-6. */
static void test_openblas_close(void **state)
{
    (void)state;
    avl_model *blas;
    avl_model_params mp = avl_model_default_params();
    mp.backend = "openblas";
    mp.threads = 1;
    if (avl_model_load(F.dir, &mp, &blas)) skip();
    trace_suite s = suite(AVL_TOK_AUDIO);
    s.m = blas;
    s.few = true;
    s.tol = 1e-6;
    trace_suite_check(&s, AVL_SITE_ATTN_IN, 0);
    s.corr = CORR_V, s.patched = AVL_TOK_AUDIO;
    trace_suite_check(&s, AVL_SITE_ATTN_IN, 0);
    assert_int_equal(s.n_restored, 8);
    print_message("openblas: largest |IE shortcut - IE naive| = %.3g\n", s.max_ie_diff);
    avl_model_free(blas);
}

/* The N-th allocation fails: a status, never a crash, for tracer and restore (every 7th after
 * the first 20, to keep it short). */
static void test_alloc_failures(void **state)
{
    (void)state;
    trace_suite s = suite(AVL_TOK_AUDIO);
    avl_tokset video;
    assert_int_equal(avl_tokset_of_kind(F.map, AVL_TOK_VIDEO, &video), AVL_OK);
    avl_trace_params tp = avl_trace_default_params(F.m);
    tp.gen.max_new_tokens = 1;
    int64_t n_ids = avl_tokenizer_vocab_size(TOK);
    tp.gen.on_logits = ts_real_ids_only;
    tp.gen.user = &n_ids;
    for (int64_t k = 1;; k += k < 20 ? 1 : 7) {
        avl_tracer *t = NULL;
        avl_trace_result r;
        memset(&r, 0, sizeof r);
        avl__alloc_fail_after(k);
        avl_status rc = avl_tracer_new(F.m, TOK, F.map, s.clean, s.corr, &video, &tp, NULL, &t);
        if (!rc) rc = avl_tracer_restore(t, &video, 0, NL, &r);
        avl__alloc_fail_after(0);
        avl_tracer_free(t);
        if (rc == AVL_OK) {
            avl_trace_result_clear(&r);
            break;
        }
        if (rc != AVL_E_NOMEM) fail_msg("allocation %lld: %s", (long long)k, avl_last_error());
        assert_null(r.rest.ids);
        if (k > 100000) fail_msg("never succeeded");
    }
    avl_tokset_free(&video);
}

static void test_errors(void **state)
{
    (void)state;
    trace_suite s = suite(AVL_TOK_AUDIO);
    avl_tokset video, text;
    assert_int_equal(avl_tokset_of_kind(F.map, AVL_TOK_VIDEO, &video), AVL_OK);
    assert_int_equal(avl_tokset_of_kind(F.map, AVL_TOK_TEXT, &text), AVL_OK);
    avl_trace_params tp = avl_trace_default_params(F.m);
    tp.gen.max_new_tokens = 1;
    int64_t n_ids = avl_tokenizer_vocab_size(TOK);
    tp.gen.on_logits = ts_real_ids_only;
    tp.gen.user = &n_ids;
    avl_tracer *t;
    tp.site = AVL_SITE_FINAL;
    AVL_EXPECT_ERROR(avl_tracer_new(F.m, TOK, F.map, s.clean, s.corr, &video, &tp, NULL, &t), AVL_E_ARG, "site");
    assert_null(t);
    tp.site = AVL_SITE_ATTN_IN;
    assert_int_equal(avl_tracer_new(F.m, TOK, F.map, s.clean, s.corr, &video, &tp, NULL, &t), AVL_OK);
    avl_trace_result r;
    /* a set outside what the clean run captured; bad layers */
    assert_true(avl_tracer_restore(t, &text, 0, NL, &r) == AVL_E_ARG);
    assert_true(avl_tracer_restore(t, &video, 2, NL + 1, &r) == AVL_E_ARG);
    /* the tracer is still usable */
    assert_int_equal(avl_tracer_restore(t, &video, 0, NL, &r), AVL_OK);
    avl_trace_result_clear(&r);
    avl_tracer_free(t);
    avl_tracer_free(NULL);
    avl_tokset_free(&video);
    avl_tokset_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_suite),
        cmocka_unit_test(test_resid_and_windows),
        cmocka_unit_test(test_after_attention_and_mlp),
        cmocka_unit_test(test_trace_run_is_a_tracer),
        cmocka_unit_test(test_openblas_close),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup_ref, teardown_ref);
}
