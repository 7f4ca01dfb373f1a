/* tests/unit/test_decode.c: the decoding arithmetic that needs no model: the adaptive gamma of
 * ASD (Eqs. 14-16) step by step on a recorded trace of (A_text, A_uni, A_cross) with numbers
 * computed by hand, the share options, VCD's diffusion schedule and the method names. */
#include "avl_test.h"

#include <math.h>
#include <stdlib.h>

static void near(double got, double want, double tol, const char *what)
{
    if (fabs(got - want) > tol) fail_msg("%s: %.17g, want %.17g", what, got, want);
}

/* The trace, defaults (gamma_base 0.5, cap 0.6, text mass 0.4, gate width 0.2, w floor 0.6,
 * momentum 0.5, gamma_0 = 0). With e = 1e-8, w = A_uni / (A_uni + A_cross + e) = A_uni (1 - e)
 * to first order when A_uni + A_cross = 1 (second-order terms are below 1e-15):
 *  t1: A = (0.3, 0.8, 0.2): w = 0.8(1-e); target = 0.4(1-e), no gate (A_text <= 0.4), w >= 0.6;
 *      gamma = 0.5 * 0 + 0.5 * 0.4(1-e) = 0.2 - 2e-9
 *  t2: A = (0.5, 0.9, 0.1): target = 0.45(1-e), gate 1/2 (1 + cos(pi * 0.5)) = 0.5 -> 0.225(1-e);
 *      gamma = 0.1 - 1e-9 + 0.1125 - 1.125e-9 = 0.2125 - 2.125e-9
 *  t3: A = (0.7, 0.9, 0.1): (0.7 - 0.4) / 0.2 = 1.5, capped at 1: cos(pi) = -1, target 0;
 *      gamma = 0.10625 - 1.0625e-9
 *  t4: A = (0.2, 0.3, 0.7): w = 0.3(1-e) < 0.6: target = 0.15(1-e) * (0.5(1-e))^2 = 0.0375(1-3e);
 *      gamma = 0.053125 - 5.3125e-10 + 0.01875 - 5.625e-10 = 0.071875 - 1.09375e-9 */
static void test_gamma_trace(void **state)
{
    (void)state;
    avl_gamma_params p = avl_gamma_default_params();
    const double a[4][3] = {{0.3, 0.8, 0.2}, {0.5, 0.9, 0.1}, {0.7, 0.9, 0.1}, {0.2, 0.3, 0.7}};
    const double want[4] = {0.2 - 2e-9, 0.2125 - 2.125e-9, 0.10625 - 1.0625e-9, 0.071875 - 1.09375e-9};
    const double target[4] = {0.4 - 4e-9, 0.225 - 2.25e-9, 0.0, 0.0375 - 1.125e-9};
    double g = 0.0;
    for (int t = 0; t < 4; t++) {
        near(avl_gamma_target(&p, a[t][0], a[t][1], a[t][2]), target[t], 1e-15, "target");
        g = avl_gamma_step(&p, g, a[t][0], a[t][1], a[t][2]);
        near(g, want[t], 1e-15, "gamma");
    }
}

static void test_gamma_pieces(void **state)
{
    (void)state;
    avl_gamma_params p = avl_gamma_default_params();
    /* the cap: 2 * 0.8 > 0.6 */
    p.gamma_base = 2.0;
    near(avl_gamma_target(&p, 0.0, 0.8, 0.2), 0.6, 0, "cap");
    p = avl_gamma_default_params();
    /* A_text = 0.4 exactly: no gate (strict >); 0.45: 1/2 (1 + cos(pi / 4)) */
    near(avl_gamma_target(&p, 0.4, 1.0, 0.0), 0.5 * (1 - 1e-8), 1e-15, "at the threshold");
    near(avl_gamma_target(&p, 0.45, 1.0, 0.0), 0.5 * (1 - 1e-8) * 0.85355339059327376, 1e-15, "gate");
    /* no sink attention at all: w = 0, gamma_target = 0 */
    near(avl_gamma_target(&p, 0.1, 0.0, 0.0), 0.0, 0, "no sinks");
    /* the released code's share: A_cross / (...) = 0.7(1-e), no floor penalty, 0.35(1-e) */
    p.cross_share = true;
    near(avl_gamma_share(&p, 0.3, 0.7), 0.7 / (1.0 + 1e-8), 1e-15, "cross share");
    near(avl_gamma_target(&p, 0.2, 0.3, 0.7), 0.35 - 3.5e-9, 1e-15, "cross share target");
    /* momentum 0: gamma is the target */
    p = avl_gamma_default_params();
    p.momentum = 0.0;
    near(avl_gamma_step(&p, 0.3, 0.3, 0.8, 0.2), 0.4 - 4e-9, 1e-15, "momentum 0");
}

/* x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps with the same eps for the same seed, so the
 * difference of two inputs scales by sqrt(abar_t): 0.8630171064602814 at t = 500 (numpy on
 * VCD's schedule, float64; torch's float32 cumprod gives 0.7447987 for abar, 2e-7 away). */
static void test_diffuse(void **state)
{
    (void)state;
    enum { N = 4096 };
    float *x0 = calloc(N, sizeof *x0), *x1 = calloc(N, sizeof *x1);
    for (int i = 0; i < N; i++) x1[i] = 1.0f;
    assert_int_equal(avl_decode_diffuse(x0, N, 500, 7), AVL_OK);
    assert_int_equal(avl_decode_diffuse(x1, N, 500, 7), AVL_OK);
    double var = 0;
    for (int i = 0; i < N; i++) {
        near(x1[i] - x0[i], 0.8630171064602814, 2e-6, "sqrt(abar_500)");
        var += (double)x0[i] * x0[i];
    }
    var /= N; /* 1 - abar_500 = 0.2552, sample of 4096 */
    assert_true(fabs(var - (1 - 0.7447985260430766)) < 0.02);
    /* t = 0: sqrt(abar_0) = 0.9999888307428481 */
    for (int i = 0; i < N; i++) x0[i] = 0.0f, x1[i] = 1.0f;
    assert_int_equal(avl_decode_diffuse(x0, N, 0, 3), AVL_OK);
    assert_int_equal(avl_decode_diffuse(x1, N, 0, 3), AVL_OK);
    near(x1[5] - x0[5], 0.9999888307428481, 2e-6, "sqrt(abar_0)");
    AVL_EXPECT_ERROR(avl_decode_diffuse(x1, N, 1000, 7), AVL_E_ARG, "noise step 1000");
    AVL_EXPECT_ERROR(avl_decode_diffuse(x1, N, -1, 7), AVL_E_ARG, "noise step -1");
    free(x0);
    free(x1);
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < AVL_DECODE_COUNT; i++) {
        avl_decode_method m;
        assert_int_equal(avl_decode_method_parse(avl_decode_method_name((avl_decode_method)i), &m), AVL_OK);
        assert_int_equal(m, i);
    }
    assert_null(avl_decode_method_name(AVL_DECODE_COUNT));
    avl_decode_method m;
    AVL_EXPECT_ERROR(avl_decode_method_parse("ASD", &m), AVL_E_ARG, "unknown method 'ASD'");
    AVL_EXPECT_ERROR(avl_decode_method_parse(NULL, &m), AVL_E_ARG, "unknown method");
}

/* AVCD's step analysis on a hand-made map and attention row. Positions: 0-1 system text,
 * 2 delimiter, 3-5 video, 6-7 audio, 8 delimiter, 9-10 text (the prompt, n = 11), 11 generated.
 *  a) attn = .40 .05 .01 .10 .02 .06 .03 .09 .01 .08 .04 .11 (N = 12): sorted, the middle pair is
 *     .05, .06: threshold .055; means video .18/3 = .06, audio .12/2 = .06, text .23/3 = .0767:
 *     text dominates; masks {video + audio, audio, video} above .055: {3, 5, 7}, {7}, {3, 5}
 *     (position 0 holds .40 but is the system prompt: never masked).
 *  b) attn[0] = .50, attn[11] = .01: text .13/3; video and audio tie at .06: video (the released
 *     code's order is text, video, audio); median of .01 .01 .01 .02 .03 .04 .05 .06 .08 .09 .10
 *     .50 is .045; masks {text + audio, audio, text}: {7, 9}, {7}, {9}.
 *  c) as b) with attn[6] = .20: audio .145 dominates; middle pair .05, .06: .055; masks
 *     {text + video, video, text}: {3, 5, 9}, {3, 5}, {9}. */
static void expect_set(const avl_tokset *s, const int64_t *want, int64_t n, const char *what)
{
    if (s->n != n) fail_msg("%s: %lld keys, want %lld", what, (long long)s->n, (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (s->pos[i] != want[i]) fail_msg("%s: key %lld is %lld, want %lld", what, (long long)i, (long long)s->pos[i], (long long)want[i]);
}

static void test_avcd_analyse(void **state)
{
    (void)state;
    const int8_t kinds[11] = {AVL_TOK_TEXT,  AVL_TOK_TEXT,  AVL_TOK_SPECIAL, AVL_TOK_VIDEO, AVL_TOK_VIDEO, AVL_TOK_VIDEO,
                              AVL_TOK_AUDIO, AVL_TOK_AUDIO, AVL_TOK_SPECIAL, AVL_TOK_TEXT,  AVL_TOK_TEXT};
    avl_token_info tok[11] = {{0}};
    for (int i = 0; i < 11; i++) tok[i].kind = kinds[i];
    avl_token_map map = {.n = 11, .tok = tok, .n_audio = 2, .n_video = 3};
    double a[12] = {.40, .05, .01, .10, .02, .06, .03, .09, .01, .08, .04, .11};
    avl_avcd_step st;
    assert_int_equal(avl_avcd_analyse(&map, 12, a, &st), AVL_OK);
    assert_int_equal(st.dominant, AVL_QG_TEXT);
    near(st.threshold, 0.055, 1e-15, "threshold a");
    near(st.mean[AVL_QG_VIDEO], 0.06, 1e-15, "video mean");
    near(st.mean[AVL_QG_AUDIO], 0.06, 1e-15, "audio mean");
    near(st.mean[AVL_QG_TEXT], 0.23 / 3, 1e-15, "text mean");
    expect_set(&st.masked[0], (int64_t[]){3, 5, 7}, 3, "a1");
    expect_set(&st.masked[1], (int64_t[]){7}, 1, "a2");
    expect_set(&st.masked[2], (int64_t[]){3, 5}, 2, "a3");
    avl_avcd_step_clear(&st);
    a[0] = .50, a[11] = .01;
    assert_int_equal(avl_avcd_analyse(&map, 12, a, &st), AVL_OK);
    assert_int_equal(st.dominant, AVL_QG_VIDEO);
    near(st.threshold, 0.045, 1e-15, "threshold b");
    expect_set(&st.masked[0], (int64_t[]){7, 9}, 2, "b1");
    expect_set(&st.masked[1], (int64_t[]){7}, 1, "b2");
    expect_set(&st.masked[2], (int64_t[]){9}, 1, "b3");
    avl_avcd_step_clear(&st);
    a[6] = .20;
    assert_int_equal(avl_avcd_analyse(&map, 12, a, &st), AVL_OK);
    assert_int_equal(st.dominant, AVL_QG_AUDIO);
    near(st.threshold, 0.055, 1e-15, "threshold c");
    expect_set(&st.masked[0], (int64_t[]){3, 5, 9}, 3, "c1");
    expect_set(&st.masked[1], (int64_t[]){3, 5}, 2, "c2");
    expect_set(&st.masked[2], (int64_t[]){9}, 1, "c3");
    avl_avcd_step_clear(&st);
    /* odd N (the prompt alone): the middle of .01 .01 .02 .04 .05 .06 .08 .09 .10 .20 .50 */
    assert_int_equal(avl_avcd_analyse(&map, 11, a, &st), AVL_OK);
    near(st.threshold, 0.06, 0, "threshold, odd N");
    avl_avcd_step_clear(&st);
    AVL_EXPECT_ERROR(avl_avcd_analyse(&map, 10, a, &st), AVL_E_ARG, "positions");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gamma_trace),
        cmocka_unit_test(test_gamma_pieces),
        cmocka_unit_test(test_diffuse),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_avcd_analyse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
