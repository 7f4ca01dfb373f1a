/* tests/kernels/test_ops.c: fast norms, activations, softmax and rotary embedding against the
 * reference (kernels/ref/ref_ops.c, which sums in double). u = 2^-24. Each tolerance is stated
 * beside its case, per element, with the reason. */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcheck.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/ref/ref.h"

#define U32 0x1p-24

static const int64_t dims[] = {1, 3, 17, 64, 129, 1000, 3584};
static const int64_t nrows[] = {1, 3, 17};

static float *fresh(krng *r, int64_t n, float scale, float offset)
{
    float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = offset + scale * krng_unit(r);
    return x;
}

static void expect_close(const float *y, const float *yref, int64_t i, double tol, const char *what,
                         int64_t a, int64_t b)
{
    double e = fabs((double)y[i] - yref[i]);
    if (!(e <= tol))
        fail_msg("%s (%lld, %lld): element %lld = %.9g, ref %.9g, |err| %.3g > %.3g", what,
                 (long long)a, (long long)b, (long long)i, y[i], yref[i], e, tol);
}

static void test_rmsnorm(void **state)
{
    (void)state;
    krng r = {11};
    for (size_t ri = 0; ri < 3; ri++)
        for (size_t di = 0; di < 7; di++) {
            int64_t R = nrows[ri], D = dims[di];
            float *x = fresh(&r, R * D, 3.0f, 0.0f), *w = fresh(&r, D, 1.0f, 1.0f);
            float *y = malloc(sizeof(float) * R * D), *yr = malloc(sizeof(float) * R * D);
            avl__ref_rmsnorm(yr, x, w, R, D, 1e-6f);
            avl__rmsnorm(y, x, w, R, D, 1e-6f);
            /* sum of squares of D positive terms: relative error <= D u; the root halves it;
             * then three roundings (sqrt, divide, two products): (D/2 + 6) u relative */
            for (int64_t i = 0; i < R * D; i++)
                expect_close(y, yr, i, (D / 2.0 + 6) * U32 * fabs(yr[i]) + 1e-37, "rmsnorm", R, D);
            avl__rmsnorm(x, x, w, R, D, 1e-6f); /* in place gives the same */
            assert_memory_equal(x, y, sizeof(float) * R * D);
            free(x), free(w), free(y), free(yr);
        }
    /* hand case: x = (3, 4), mean square 12.5, eps 0: y = x / sqrt(12.5) * w */
    float x[2] = {3, 4}, w[2] = {1, 2}, y[2];
    avl__ref_rmsnorm(y, x, w, 1, 2, 0.0f);
    assert_float_equal(y[0], 3 / sqrt(12.5), 1e-6);
    assert_float_equal(y[1], 8 / sqrt(12.5), 1e-6);
}

static void test_layernorm(void **state)
{
    (void)state;
    krng r = {12};
    for (size_t ri = 0; ri < 3; ri++)
        for (size_t di = 0; di < 7; di++) {
            int64_t R = nrows[ri], D = dims[di];
            /* mean 3 and spread 1: the two-pass variance must not cancel */
            float *x = fresh(&r, R * D, 1.0f, 3.0f), *w = fresh(&r, D, 1.0f, 1.0f),
                  *b = fresh(&r, D, 1.0f, 0.0f);
            float *y = malloc(sizeof(float) * R * D), *yr = malloc(sizeof(float) * R * D);
            const float *bias = di % 2 ? b : NULL;
            avl__ref_layernorm(yr, x, w, bias, R, D, 1e-5f);
            avl__layernorm(y, x, w, bias, R, D, 1e-5f);
            for (int64_t row = 0; row < R; row++) {
                /* the mean carries D u |x| of error (|x| <= 4), which enters every x - mean;
                 * scaled by 1/std (<= 1/sqrt(eps) for D = 1, where x - mean = 0 exactly); the
                 * variance's D u relative error halves in the root; a few roundings more */
                double mx = 0, var = 0, mean = 0;
                for (int64_t i = 0; i < D; i++) mean += x[row * D + i];
                mean /= D;
                for (int64_t i = 0; i < D; i++) {
                    double dv = x[row * D + i] - mean;
                    var += dv * dv;
                }
                double inv = 1 / sqrt(var / D + 1e-5);
                for (int64_t i = 0; i < D; i++) mx = fmax(mx, fabs(w[i]));
                for (int64_t i = 0; i < D; i++) {
                    int64_t j = row * D + i;
                    double tol = (D + 4) * U32 * 4.0 * inv * mx + (D / 2.0 + 8) * U32 * fabs(yr[j]) +
                                 4 * U32 * (bias ? fabs(bias[i]) : 0);
                    expect_close(y, yr, j, tol, "layernorm", R, D);
                }
            }
            free(x), free(w), free(b), free(y), free(yr);
        }
}

static void test_silu_gelu(void **state)
{
    (void)state;
    krng r = {13};
    for (size_t di = 0; di < 7; di++) {
        int64_t n = dims[di] * 5 + 1;
        float *g = fresh(&r, n, 12.0f, 0.0f), *u = fresh(&r, n, 2.0f, 0.0f);
        float *y = malloc(sizeof(float) * n), *yr = malloc(sizeof(float) * n);
        /* silu(g) u: expf within 1 ulp, then add, divide, multiply: 6 u relative */
        avl__ref_silu_mul(yr, g, u, n);
        avl__silu_mul(y, g, u, n);
        for (int64_t i = 0; i < n; i++) expect_close(y, yr, i, 6 * U32 * fabs(yr[i]) + 1e-37, "silu", n, 0);
        for (int t = 0; t < 2; t++) {
            /* gelu: 1 + erf(x/sqrt2) (or 1 + tanh(..)) cancels for x << 0, so the bound is
             * absolute in the inner term: 0.5 |x| * (4 u) from erff/tanhf and the sum, plus
             * 4 u |y| for the final products */
            avl__ref_gelu(yr, g, n, t);
            avl__gelu(y, g, n, t);
            for (int64_t i = 0; i < n; i++)
                expect_close(y, yr, i, 2 * U32 * fabs(g[i]) + 4 * U32 * fabs(yr[i]) + 1e-37,
                             t ? "gelu-tanh" : "gelu-erf", n, 0);
        }
        free(g), free(u), free(y), free(yr);
    }
    /* hand values: gelu(0) = 0, gelu_erf(1) = 0.5 (1 + erf(1/sqrt 2)) = 0.8413447460685429 */
    float x[2] = {0, 1}, y[2];
    avl__ref_gelu(y, x, 2, false);
    assert_true(y[0] == 0.0f);
    assert_float_equal(y[1], 0.8413447460685429, 1e-7);
    avl__ref_silu_mul(y, x, x, 2); /* silu(1) * 1 = 1 / (1 + e^-1) = 0.7310585786300049 */
    assert_float_equal(y[1], 0.7310585786300049, 1e-7);
}

static void test_softmax(void **state)
{
    (void)state;
    krng r = {14};
    for (size_t ri = 0; ri < 3; ri++)
        for (size_t di = 0; di < 7; di++) {
            int64_t R = nrows[ri], C = dims[di], ld = C + 5;
            float *x = fresh(&r, R * ld, 20.0f, 0.0f);
            for (int64_t i = 0; i < R * ld; i++)
                if ((i * 7) % 11 == 3) x[i] = -INFINITY; /* scattered masked entries */
            if (R > 1)
                for (int64_t j = 0; j < C; j++) x[ld + j] = -INFINITY; /* row 1 fully masked */
            float *y = malloc(sizeof(float) * R * ld), *yr = malloc(sizeof(float) * R * ld);
            memcpy(y, x, sizeof(float) * R * ld);
            memcpy(yr, x, sizeof(float) * R * ld);
            avl__ref_softmax_rows(yr, R, C, ld);
            avl__softmax_rows(y, R, C, ld);
            for (int64_t row = 0; row < R; row++) {
                float mx = -INFINITY;
                for (int64_t j = 0; j < C; j++) mx = fmaxf(mx, x[row * ld + j]);
                for (int64_t j = 0; j < C; j++) {
                    int64_t i = row * ld + j;
                    if (isinf(x[i])) {
                        assert_true(y[i] == 0.0f); /* masked: exactly 0, never NaN */
                        continue;
                    }
                    /* x - max rounds with absolute error u |x - max|, which exp turns into that
                     * relative error; expf 1 ulp; the sum of C terms (C u relative); the
                     * scaling: (|x - max| + C + 4) u relative */
                    double tol = (fabs(x[i] - mx) + C + 4) * U32 * fabs(yr[i]) + 1e-37;
                    expect_close(y, yr, i, tol, "softmax", R, C);
                }
            }
            for (int64_t row = 0; row < R; row++) /* the padding between rows is untouched */
                for (int64_t j = C; j < ld && row * ld + j < R * ld; j++)
                    assert_memory_equal(&y[row * ld + j], &x[row * ld + j], 4);
            free(x), free(y), free(yr);
        }
}

static void test_rope(void **state)
{
    (void)state;
    krng r = {15};
    const int64_t hds[] = {2, 8, 128};
    for (int hi = 0; hi < 3; hi++)
        for (size_t ri = 0; ri < 3; ri++) {
            int64_t R = nrows[ri] * 3, H = 3, hd = hds[hi], ldx = H * hd + 7, ldcs = hd + 1;
            float *x = fresh(&r, R * ldx, 4.0f, 0.0f);
            float *cs = malloc(sizeof(float) * R * ldcs), *sn = malloc(sizeof(float) * R * ldcs);
            for (int64_t p = 0; p < R; p++)
                for (int64_t i = 0; i < ldcs; i++) {
                    /* HF tables: cos/sin of pos * inv_freq, the half repeated */
                    double f = pow(1e6, -2.0 * (i % (hd / 2)) / hd);
                    cs[p * ldcs + i] = (float)cos(p * 37 * f);
                    sn[p * ldcs + i] = (float)sin(p * 37 * f);
                }
            float *y = malloc(sizeof(float) * R * ldx), *yr = malloc(sizeof(float) * R * ldx);
            memcpy(y, x, sizeof(float) * R * ldx);
            memcpy(yr, x, sizeof(float) * R * ldx);
            avl__ref_rope(yr, ldx, R, H, hd, cs, sn, ldcs);
            avl__rope(y, ldx, R, H, hd, cs, sn, ldcs);
            for (int64_t p = 0; p < R; p++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t i = 0; i < hd; i++) {
                        int64_t j = p * ldx + h * hd + i, half = hd / 2;
                        int64_t partner = i < half ? j + half : j - half;
                        /* two products and a sum: 3 u (|a c| + |b s|) */
                        double tol = 3 * U32 * (fabs(x[j] * cs[p * ldcs + i]) +
                                                fabs(x[partner] * sn[p * ldcs + i]));
                        expect_close(y, yr, j, tol + 1e-37, "rope", R, hd);
                    }
            for (int64_t p = 0; p < R; p++) /* padding columns untouched */
                assert_memory_equal(&y[p * ldx + H * hd], &x[p * ldx + H * hd], 7 * 4);
            free(x), free(cs), free(sn), free(y), free(yr);
        }
    /* hand case: hd 4, v = (1, 2, 3, 4), angle 90 degrees on every pair: cos 0, sin 1:
     * rotate_half(v) = (-3, -4, 1, 2) */
    float v[4] = {1, 2, 3, 4}, c[4] = {0, 0, 0, 0}, s[4] = {1, 1, 1, 1};
    avl__ref_rope(v, 4, 1, 1, 4, c, s, 4);
    assert_true(v[0] == -3 && v[1] == -4 && v[2] == 1 && v[3] == 2);
}

/* Each row is handled by one thread: 1 and 2 threads give the same bits. */
static void test_ops_thread_count(void **state)
{
    (void)state;
    krng r = {16};
    int64_t R = 40, D = 3584;
    float *x = fresh(&r, R * D, 3.0f, 0.0f), *w = fresh(&r, D, 1.0f, 1.0f);
    float *y1 = malloc(sizeof(float) * R * D), *y2 = malloc(sizeof(float) * R * D);
    for (int op = 0; op < 3; op++) {
        for (int t = 1; t <= 2; t++) {
            float *y = t == 1 ? y1 : y2;
            avl__set_threads(t);
            if (op == 0) avl__rmsnorm(y, x, w, R, D, 1e-6f);
            else if (op == 1) avl__layernorm(y, x, w, w, R, D, 1e-6f);
            else {
                memcpy(y, x, sizeof(float) * R * D);
                avl__softmax_rows(y, R, D, D);
            }
        }
        assert_memory_equal(y1, y2, sizeof(float) * R * D);
    }
    avl__set_threads(0);
    free(x), free(w), free(y1), free(y2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm),  cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_silu_gelu), cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_rope),     cmocka_unit_test(test_ops_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
