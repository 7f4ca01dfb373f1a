/* tests/kernels/test_gemm.c: every GEMM path against the reference.
 *
 * Paths checked: the skinny kernel (native vector variant and portable), the OpenBLAS
 * backend, the oneDNN backend (called directly so that small M reaches the library too), and
 * avl__gemm's dispatch for each selectable backend.
 *
 * Tolerances (docs/kernels.md derives them). u = 2^-24 (fp32 unit roundoff). For each output,
 * A[m,n] = sum_k |x[m,k] w[n,k]| + |bias[n]| + |old y[m,n]| (in double). Any order of fp32
 * summation of K+2 terms is within gamma = (K+2)u * A of the exact value (Higham, Accuracy and
 * Stability, (3.5)); the reference and the fast path each are, so
 *   fp32 paths (skinny, OpenBLAS, oneDNN on f32 weights or on bf16-exact X):
 *       |y - y_ref| <= 2 (K+2) u A
 *   oneDNN with bf16 weights and general X: X is rounded to bf16 first (relative error at most
 *   2^-8 per element, products then exact in fp32), so add 2^-8 sum_k |x w| <= 2^-8 A:
 *       |y - y_ref| <= (2^-8 + 2 (K+2) u) A
 * These are worst-case bounds, checked per element. For random data A ~ sqrt(K) |y|, so in the
 * normalised measure |y - y_ref| / max|y| the bf16 bound is the familiar ~2^-8 sqrt(K); the
 * typical error is far smaller (errors of random sign: ~2^-8/sqrt(3) relative to |y|).
 * Because the bf16 bound is loose for large K, oneDNN is also run on X that is already
 * bf16-exact, where only fp32 summation order remains and the tight fp32 bound applies: a
 * dropped term or a wrong stride cannot hide there.
 */
#include "avl_test.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "kcheck.h"
#include "kernels/gemm.h"
#include "kernels/ref/ref.h"

#define U32 0x1p-24

/* ---- the reference on a case small enough to do by hand ---- */

static void test_ref_by_hand(void **state)
{
    (void)state;
    /* X (2,3), ldx 4 (column 3 is padding and must be ignored) */
    float x[8] = {1, 2, 3, 99, -1, 0.5f, 2, 99};
    /* W (2,3) bf16, ld 3: rows (1, 0, -2) and (0.25, 4, 1) */
    uint16_t w[6] = {0x3f80, 0x0000, 0xc000, 0x3e80, 0x4080, 0x3f80};
    uint16_t b[2] = {0x3f00, 0xbf80}; /* bias (0.5, -1) in bf16 */
    avl__weight W = {AVL__DT_BF16, w, 2, 3, 3};
    avl__vec B = {AVL__DT_BF16, b};
    float y[4] = {10, 20, 30, 40}; /* Y (2,2), ldy 2 */
    avl__gemm_args a = {2, x, 4, &W, &B, y, 2, false};
    avl__ref_gemm(&a);
    /* row 0: 1*1 + 2*0 + 3*-2 = -5, +0.5 = -4.5;  1*0.25 + 2*4 + 3*1 = 11.25, -1 = 10.25
     * row 1: -1 + 0 - 4 = -5, +0.5 = -4.5;      -0.25 + 2 + 2 = 3.75, -1 = 2.75 */
    assert_true(y[0] == -4.5f && y[1] == 10.25f && y[2] == -4.5f && y[3] == 2.75f);
    a.accumulate = true; /* adds the old Y: doubles it */
    avl__ref_gemm(&a);
    assert_true(y[0] == -9.0f && y[1] == 20.5f && y[2] == -9.0f && y[3] == 5.5f);
    /* f16 weights: 1.5 is 0x3e00, -0.125 is 0xb000; one row, K = 2, no bias */
    uint16_t wh[2] = {0x3e00, 0xb000};
    avl__weight WH = {AVL__DT_F16, wh, 1, 2, 2};
    float xh[2] = {2, 8}, yh = 0;
    avl__gemm_args ah = {1, xh, 2, &WH, NULL, &yh, 1, false};
    avl__ref_gemm(&ah);
    assert_true(yh == 2.0f);
}

static void test_dtype_conversions(void **state)
{
    (void)state;
    /* bf16 rounding: 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even (1) wins;
     * 1 + 3*2^-8 is a tie between 1+2^-7 and 1+2^-6: even (1+2^-6) wins */
    assert_int_equal(avl__f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    assert_int_equal(avl__f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    assert_int_equal(avl__f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    assert_int_equal(avl__f32_to_bf16(-2.0f), 0xc000);
    assert_true(isnan(avl__bf16_to_f32(avl__f32_to_bf16(NAN))));
    assert_int_equal(avl__f32_to_bf16(INFINITY), 0x7f80);
    assert_true(avl__bf16_to_f32(0x3f81) == 1.0f + 0x1p-7f);
    /* f16: smallest subnormal, largest normal, -0, inf, one normal */
    assert_true(avl__f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(avl__f16_to_f32(0x7bff) == 65504.0f);
    assert_true(avl__f16_to_f32(0x8000) == 0.0f && signbit(avl__f16_to_f32(0x8000)));
    assert_true(isinf(avl__f16_to_f32(0x7c00)));
    assert_true(isnan(avl__f16_to_f32(0x7e00)));
    assert_true(avl__f16_to_f32(0x3555) == 0x1.554p-2f);
}

/* ---- random cases ---- */

typedef struct {
    int64_t m, n, k, ld;
    avl__dtype wt;
    int offset;          /* bytes added to the weight pointer: 2 = only 2-byte aligned */
    int bias;            /* -1 none, else its dtype */
    bool accumulate;
    bool x_bf16_exact;   /* X rounded to bf16 values beforehand */
} gcase;

typedef struct {
    gcase c;
    char *wbuf;          /* owns the weight bytes */
    avl__weight w;       /* (N, K), row stride ld, at wbuf + offset */
    char *bbuf;
    avl__vec bias;
    float *x;            /* (M, K), ldx = K + 1 */
    int64_t ldx, ldy;
    float *y0;           /* (M, N), ldy = N + 2: initial Y (for accumulate) */
    float *yref;
    double *amag;        /* (M, N): A[m,n] of the tolerance */
} gsetup;

static void store_elem(avl__dtype t, void *p, int64_t i, float v)
{
    if (t == AVL__DT_F32) memcpy((char *)p + 4 * i, &v, 4);
    else if (t == AVL__DT_BF16) ((uint16_t *)p)[i] = avl__f32_to_bf16(v);
    else {
        /* f16 by search over the exact decoder: round v to a value of the form j/1024 in
         * [-1, 1], exactly representable in f16, then encode */
        float q = roundf(v * 1024.0f) / 1024.0f;
        uint16_t h = 0;
        if (q != 0.0f) {
            int e;
            float fr = frexpf(fabsf(q), &e); /* q = fr * 2^e, fr in [0.5, 1) */
            int exp16 = e - 1 + 15;          /* normal: 1.m * 2^(e-1) */
            if (exp16 >= 1) {
                uint16_t man = (uint16_t)((fr * 2.0f - 1.0f) * 1024.0f);
                h = (uint16_t)((exp16 << 10) | man);
            } else {
                h = (uint16_t)(fabsf(q) * 0x1p24f);
            }
            if (q < 0) h |= 0x8000;
        }
        ((uint16_t *)p)[i] = h;
    }
}

static void setup_case(gsetup *s, const gcase *c, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->c = *c;
    krng r = {seed};
    size_t es = avl__dtype_size(c->wt);
    s->wbuf = malloc((size_t)(c->n * c->ld) * es + 16);
    char *wd = s->wbuf + c->offset;
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t k = 0; k < c->ld; k++)
            store_elem(c->wt, wd, n * c->ld + k, k < c->k ? krng_unit(&r) : 1e30f);
    s->w = (avl__weight){c->wt, wd, c->n, c->k, c->ld};
    if (c->bias >= 0) {
        s->bbuf = malloc((size_t)c->n * 4 + 8);
        for (int64_t n = 0; n < c->n; n++) store_elem((avl__dtype)c->bias, s->bbuf, n, krng_unit(&r));
        s->bias = (avl__vec){(avl__dtype)c->bias, s->bbuf};
    }
    s->ldx = c->k + 1;
    s->ldy = c->n + 2;
    s->x = malloc(sizeof(float) * (size_t)(c->m * s->ldx));
    for (int64_t i = 0; i < c->m * s->ldx; i++) {
        float v = (i % s->ldx) < c->k ? krng_unit(&r) : NAN; /* padding must be ignored */
        s->x[i] = c->x_bf16_exact && !isnan(v) ? avl__bf16_to_f32(avl__f32_to_bf16(v)) : v;
    }
    s->y0 = malloc(sizeof(float) * (size_t)(c->m * s->ldy));
    s->yref = malloc(sizeof(float) * (size_t)(c->m * s->ldy));
    krng_fill(&r, s->y0, c->m * s->ldy, 2.0f);
    memcpy(s->yref, s->y0, sizeof(float) * (size_t)(c->m * s->ldy));
    avl__gemm_args a = {c->m, s->x, s->ldx, &s->w, c->bias >= 0 ? &s->bias : NULL, s->yref,
                        s->ldy, c->accumulate};
    avl__ref_gemm(&a);
    s->amag = malloc(sizeof(double) * (size_t)(c->m * c->n));
    for (int64_t m = 0; m < c->m; m++)
        for (int64_t n = 0; n < c->n; n++) {
            double A = 0;
            for (int64_t k = 0; k < c->k; k++)
                A += fabs((double)s->x[m * s->ldx + k] *
                          avl__load_elem(c->wt, wd, n * c->ld + k));
            if (c->bias >= 0) A += fabs(avl__load_elem(s->bias.dtype, s->bias.data, n));
            if (c->accumulate) A += fabs(s->y0[m * s->ldy + n]);
            s->amag[m * c->n + n] = A;
        }
}

static void free_case(gsetup *s)
{
    free(s->wbuf);
    free(s->bbuf);
    free(s->x);
    free(s->y0);
    free(s->yref);
    free(s->amag);
}

/* Checks y against the reference element by element with |y - yref| <= c * A; also checks
 * that the padding columns of Y were left alone. Returns the normalised max error. */
static double check_against_ref(const gsetup *s, const float *y, double c, const char *what)
{
    const gcase *g = &s->c;
    double maxerr = 0, maxy = 0;
    for (int64_t m = 0; m < g->m; m++) {
        for (int64_t n = 0; n < g->n; n++) {
            double yr = s->yref[m * s->ldy + n], e = fabs(y[m * s->ldy + n] - yr);
            double tol = c * s->amag[m * g->n + n];
            if (!(e <= tol))
                fail_msg("%s: M=%lld N=%lld K=%lld ld=%lld %s off=%d bias=%d acc=%d: y[%lld,%lld] = %.9g, "
                         "ref %.9g, |err| %.3g > tol %.3g",
                         what, (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->ld,
                         avl__dtype_name(g->wt), g->offset, g->bias, g->accumulate, (long long)m,
                         (long long)n, y[m * s->ldy + n], yr, e, tol);
            maxerr = e > maxerr ? e : maxerr;
            maxy = fabs(yr) > maxy ? fabs(yr) : maxy;
        }
        for (int64_t n = g->n; n < s->ldy; n++)
            if (memcmp(&y[m * s->ldy + n], &s->y0[m * s->ldy + n], 4))
                fail_msg("%s: wrote past N in row %lld", what, (long long)m);
    }
    return maxy > 0 ? maxerr / maxy : maxerr;
}

typedef enum { P_SKINNY, P_SKINNY_AVX2, P_SKINNY_PORTABLE, P_OPENBLAS, P_ONEDNN, P_DISPATCH_AUTO } gpath;
#define N_PATHS 6
static const char *path_names[] = {"skinny", "skinny-avx2", "skinny-portable", "openblas", "onednn", "auto"};

static avl_status run_path(gpath p, const gsetup *s, float *y)
{
    const gcase *g = &s->c;
    memcpy(y, s->y0, sizeof(float) * (size_t)(g->m * s->ldy));
    avl__gemm_args a = {g->m, s->x, s->ldx, &s->w, g->bias >= 0 ? &s->bias : NULL, y, s->ldy,
                        g->accumulate};
    const avl__gemm_backend *be = NULL;
    switch (p) {
    case P_SKINNY:
        avl__gemm_skinny(&a);
        return AVL_OK;
    case P_SKINNY_AVX2:
    case P_SKINNY_PORTABLE:
        /* the AVX2 variant separately only where the native one is AVX-512 */
        if (p == P_SKINNY_AVX2 && strcmp(avl__gemm_skinny_isa(), "avx512")) return AVL_E_UNSUPPORTED;
        if (!avl__gemm_skinny_force(p == P_SKINNY_AVX2 ? "avx2" : "portable")) return AVL_E_UNSUPPORTED;
        avl__gemm_skinny(&a);
        avl__gemm_skinny_force(NULL);
        return AVL_OK;
    case P_OPENBLAS: return avl__gemm_openblas.gemm(&a);
    case P_ONEDNN: return avl__gemm_onednn.gemm(&a);
    case P_DISPATCH_AUTO:
        assert_int_equal(avl__gemm_backend_select("auto", &be), AVL_OK);
        return avl__gemm(be, g->m, s->x, s->ldx, &s->w, a.bias, y, s->ldy, g->accumulate);
    }
    return AVL_E_INTERNAL;
}

/* The tolerance factor c of the header comment for a path on a case. */
static double tol_factor(gpath p, const gcase *g, const avl__gemm_backend *autobe)
{
    double fp32 = 2.0 * (double)(g->k + 2) * U32;
    bool bf16_rounds = g->wt == AVL__DT_BF16 && !g->x_bf16_exact && avl__gemm_onednn_has_bf16() &&
                       (p == P_ONEDNN || (p == P_DISPATCH_AUTO && autobe == &avl__gemm_onednn &&
                                          g->m > autobe->skinny_max_m));
    return bf16_rounds ? 0x1p-8 + fp32 : fp32;
}

static const int64_t shapes[][3] = {
    /* M, N, K */
    {1, 1, 1},     {1, 3, 17},    {2, 17, 64},   {3, 64, 129},  {4, 129, 1000}, {1, 1000, 129},
    {5, 33, 7},    {17, 64, 129}, {64, 129, 17}, {129, 17, 64}, {3, 1000, 3},   {17, 3, 1000},
    {64, 64, 64},  {33, 200, 300}, {1, 7, 4099}, {2, 1, 1000},
    /* the skinny kernel's blocks of rows of W (4 for M = 1, 2 for M = 2) and its k loop (one
     * 64-byte line, then steps of 8, then the K % 8 tail): N around the block sizes, K below
     * and around 8 and a line */
    {1, 5, 7},     {1, 6, 8},     {1, 37, 40},   {2, 3, 33},    {2, 37, 65},   {3, 5, 9},
    {4, 7, 31},    {1, 4, 96},
};

static void test_gemm_paths_against_ref(void **state)
{
    (void)state;
    const avl__gemm_backend *autobe;
    assert_int_equal(avl__gemm_backend_select("auto", &autobe), AVL_OK);
    const avl__dtype types[] = {AVL__DT_BF16, AVL__DT_F16, AVL__DT_F32};
    int ncase = 0;
    double worst[N_PATHS] = {0};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        for (int ti = 0; ti < 3; ti++) {
            for (int var = 0; var < 2; var++) {
                int idx = (int)si * 6 + ti * 2 + var;
                gcase c = {shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][2] + (var ? 3 : 0),
                           types[ti], (idx % 3 == 1) ? 2 : 0,
                           /* bias cycles none, f32, bf16, f16 */
                           (idx % 4 == 0) ? -1 : (int)(idx % 4 == 1 ? AVL__DT_F32 : idx % 4 == 2 ? AVL__DT_BF16 : AVL__DT_F16),
                           idx % 5 == 2, var == 1 && ti == 0};
                gsetup s;
                setup_case(&s, &c, 1000 + (uint64_t)idx);
                float *y = malloc(sizeof(float) * (size_t)(c.m * s.ldy));
                for (gpath p = P_SKINNY; p <= P_DISPATCH_AUTO; p++) {
                    if (p == P_ONEDNN && c.m * c.n * c.k > 4000000) continue; /* ref impl on non-bf16 CPUs is slow */
                    avl_status rc = run_path(p, &s, y);
                    if (rc == AVL_E_UNSUPPORTED) continue; /* variant not on this CPU */
                    if (rc != AVL_OK) fail_msg("%s: %s", path_names[p], avl_last_error());
                    double e = check_against_ref(&s, y, tol_factor(p, &c, autobe), path_names[p]);
                    worst[p] = e > worst[p] ? e : worst[p];
                }
                free(y);
                free_case(&s);
                ncase++;
            }
        }
    }
    printf("%d cases; worst normalised error |y-ref|/max|ref|:", ncase);
    for (int p = 0; p < N_PATHS; p++) printf(" %s %.2g", path_names[p], worst[p]);
    printf("\n");
}

/* oneDNN's bf16 rounding of X, on its own: a tight check that the error stays near the
 * statistical size 2^-8/sqrt(3) |y| and well under the worst-case bound. */
static void test_onednn_bf16_rounding_size(void **state)
{
    (void)state;
    if (!avl__gemm_onednn_has_bf16()) {
        printf("skipped: oneDNN has no bf16 matmul on this CPU\n");
        return;
    }
    gcase c = {16, 64, 512, 512, AVL__DT_BF16, 0, -1, false, false};
    gsetup s;
    setup_case(&s, &c, 77);
    float *y = malloc(sizeof(float) * (size_t)(c.m * s.ldy));
    assert_int_equal(run_path(P_ONEDNN, &s, y), AVL_OK);
    double e = check_against_ref(&s, y, 0x1p-8 + 2.0 * (c.k + 2) * U32, "onednn");
    /* normalised: typical error 2^-8/sqrt(3) * rms|y| ~ 2e-3 rms|y|, max|y| ~ 3 rms|y|;
     * the max of 1024 such errors stays below 4 sigma: 4 * 2.3e-3 / 3 ~ 3e-3. Use 1e-2. */
    assert_true(e < 1e-2);
    printf("onednn bf16 normalised error %.3g (K=%lld)\n", e, (long long)c.k);
    free(y);
    free_case(&s);
}

/* ---- a big product checked by random projection (BLIS style) ---- */

/* Y·r against X·(W^T·r) in double, for r of random signs. Per row m, two bounds:
 *  - worst case: |sum_n (y - exact)[m,n] r_n| <= c * sum_n A[m,n] = c * sum_k |x[m,k]| sum_n |w[n,k]|
 *    (c from the header comment), which is rigorous but ~sqrt(N K) loose for random data;
 *  - statistical: rounding errors of random sign add like a random walk. One output's error is
 *    about u K sigma (fp32 sums, sigma^2 = mean of (x w)^2), the projection adds N of them with
 *    random signs: u K sqrt(N) sigma = u sqrt(K) sqrt(S2), S2 = sum_k x[m,k]^2 sum_n w[n,k]^2.
 *    bf16 rounding of X adds 2^-8/sqrt(3) sqrt(S2). The check allows 8 times that, so a single
 *    wrong product term (size ~ sigma) would be caught, which the worst-case bound could not. */
static void projection_check(const avl__gemm_backend *be, int64_t M, int64_t N, int64_t K,
                             double c, double bf16_term, uint64_t seed)
{
    krng r = {seed};
    uint16_t *w = malloc(sizeof(uint16_t) * (size_t)(N * K));
    for (int64_t i = 0; i < N * K; i++) w[i] = avl__f32_to_bf16(krng_unit(&r));
    float *x = malloc(sizeof(float) * (size_t)(M * K)), *y = malloc(sizeof(float) * (size_t)(M * N));
    krng_fill(&r, x, M * K, 1.0f);
    avl__weight W = {AVL__DT_BF16, w, N, K, K};
    assert_int_equal(avl__gemm(be, M, x, K, &W, NULL, y, N, false), AVL_OK);
    double *rv = malloc(sizeof(double) * (size_t)N), *wtr = calloc((size_t)K, sizeof(double)),
           *wabs = calloc((size_t)K, sizeof(double)), *wsq = calloc((size_t)K, sizeof(double));
    for (int64_t n = 0; n < N; n++) rv[n] = (krng_next(&r) & 1) ? 1.0 : -1.0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            double v = avl__bf16_to_f32(w[n * K + k]);
            wtr[k] += v * rv[n];
            wabs[k] += fabs(v);
            wsq[k] += v * v;
        }
    double worst = 0, worst_stat = 0;
    for (int64_t m = 0; m < M; m++) {
        double lhs = 0, rhs = 0, bound = 0, s2 = 0;
        for (int64_t n = 0; n < N; n++) lhs += y[m * N + n] * rv[n];
        for (int64_t k = 0; k < K; k++) {
            double xv = x[m * K + k];
            rhs += xv * wtr[k];
            bound += fabs(xv) * wabs[k];
            s2 += xv * xv * wsq[k];
        }
        double stat = 8.0 * (U32 * sqrt((double)K) + bf16_term / sqrt(3.0)) * sqrt(s2);
        double diff = fabs(lhs - rhs);
        if (!(diff <= c * bound) || !(diff <= stat))
            fail_msg("%s: projection of row %lld: %.9g vs %.9g, diff %.3g > %.3g or %.3g", be->name,
                     (long long)m, lhs, rhs, diff, c * bound, stat);
        worst = diff / (c * bound) > worst ? diff / (c * bound) : worst;
        worst_stat = diff / stat > worst_stat ? diff / stat : worst_stat;
    }
    printf("%s: %lldx%lldx%lld projection check, worst error %.3g of the rigorous bound, %.3g of "
           "the statistical one\n", be->name, (long long)M, (long long)N, (long long)K, worst,
           worst_stat);
    free(w);
    free(x);
    free(y);
    free(rv);
    free(wtr);
    free(wabs);
    free(wsq);
}

static void test_big_gemm_projection(void **state)
{
    (void)state;
    const avl__gemm_backend *be;
    assert_int_equal(avl__gemm_backend_select("openblas", &be), AVL_OK);
    projection_check(be, 96, 1024, 3584, 2.0 * 3586 * U32, 0.0, 5);
    assert_int_equal(avl__gemm_backend_select("auto", &be), AVL_OK);
    if (be == &avl__gemm_onednn) projection_check(be, 96, 1024, 3584, 0x1p-8 + 2.0 * 3586 * U32, 0x1p-8, 6);
}

/* ---- thread count ---- */

static void test_thread_count(void **state)
{
    (void)state;
    const gcase cs[] = {
        {3, 1000, 999, 1003, AVL__DT_BF16, 2, AVL__DT_BF16, true, false},
        {70, 300, 515, 515, AVL__DT_BF16, 0, AVL__DT_F32, false, false},
    };
    for (size_t ci = 0; ci < 2; ci++) {
        gsetup s;
        setup_case(&s, &cs[ci], 900 + ci);
        size_t bytes = sizeof(float) * (size_t)(cs[ci].m * s.ldy);
        float *y1 = malloc(bytes), *y2 = malloc(bytes);
        for (gpath p = P_SKINNY; p <= P_ONEDNN; p++) {
            avl__set_threads(1);
            avl_status rc1 = run_path(p, &s, y1);
            if (rc1 == AVL_E_UNSUPPORTED) continue;
            assert_int_equal(rc1, AVL_OK);
            avl__set_threads(2);
            assert_int_equal(run_path(p, &s, y2), AVL_OK);
            avl__set_threads(0);
            if (p == P_SKINNY || p == P_SKINNY_AVX2 || p == P_SKINNY_PORTABLE) {
                /* each output is one thread's fixed-order sum: bitwise equal */
                assert_memory_equal(y1, y2, bytes);
            } else {
                check_against_ref(&s, y1, tol_factor(p, &cs[ci], NULL), path_names[p]);
                check_against_ref(&s, y2, tol_factor(p, &cs[ci], NULL), path_names[p]);
            }
        }
        free(y1);
        free(y2);
        free_case(&s);
    }
}

/* The skinny kernel: each output has one summation order whatever M is, wherever its row of X
 * sits in the batch and wherever its row of W sits in a block of rows: row m of a batch has
 * exactly the bits it has alone (decode with a batch of one equals the same token inside a
 * batch), and a product over rows n0.. of W has the bits of the same rows in the full product.
 * For every variant, every dtype, M = 1..4 and 7, N and K around the block and vector sizes. */
static void test_skinny_batch_equals_single(void **state)
{
    (void)state;
    static const char *variants[] = {"avx512", "avx2", "portable"};
    const avl__dtype types[] = {AVL__DT_BF16, AVL__DT_F16, AVL__DT_F32};
    const int64_t nk[][2] = {{300, 1001}, {37, 7}, {9, 64}, {6, 3584 + 9}};
    int checked = 0;
    for (int vi = 0; vi < 3; vi++) {
        if (!avl__gemm_skinny_force(variants[vi])) continue;
        for (int ti = 0; ti < 3; ti++)
            for (size_t si = 0; si < sizeof nk / sizeof nk[0]; si++) {
                gcase c = {7, nk[si][0], nk[si][1], nk[si][1] + (int64_t)si, types[ti], (int)(si % 2) * 2,
                           si % 2 ? -1 : (int)AVL__DT_BF16, si == 2, false};
                gsetup s;
                setup_case(&s, &c, 31 + si);
                const avl__vec *bias = c.bias >= 0 ? &s.bias : NULL;
                size_t rowb = sizeof(float) * (size_t)s.ldy;
                float *yb = malloc(rowb * (size_t)c.m), *y1 = malloc(rowb);
                for (int64_t mb = 1; mb <= c.m; mb = mb == 4 ? c.m : mb + 1) {
                    memcpy(yb, s.y0, rowb * (size_t)mb);
                    avl__gemm_args a = {mb, s.x, s.ldx, &s.w, bias, yb, s.ldy, c.accumulate};
                    avl__gemm_skinny(&a);
                    /* rows past the batch: the reference's, so that only the batch is judged */
                    memcpy(yb + mb * s.ldy, s.yref + mb * s.ldy, rowb * (size_t)(c.m - mb));
                    check_against_ref(&s, yb, 2.0 * (double)(c.k + 2) * U32, variants[vi]);
                    for (int64_t m = 0; m < mb; m++) {
                        memcpy(y1, s.y0 + m * s.ldy, rowb);
                        avl__gemm_args a1 = {1, s.x + m * s.ldx, s.ldx, &s.w, bias, y1, s.ldy, c.accumulate};
                        avl__gemm_skinny(&a1);
                        if (memcmp(y1, yb + m * s.ldy, sizeof(float) * (size_t)c.n))
                            fail_msg("%s %s N=%lld K=%lld: row %lld of a batch of %lld differs from it alone",
                                     variants[vi], avl__dtype_name(c.wt), (long long)c.n, (long long)c.k,
                                     (long long)m, (long long)mb);
                    }
                    /* rows n0.. of W as a matrix of their own (shifts every row's place in
                     * the blocks of rows) */
                    for (int64_t n0 = 1; n0 < 4 && n0 < c.n; n0++) {
                        avl__weight wsub = s.w;
                        wsub.data = (const char *)s.w.data + (size_t)(n0 * s.w.ld) * avl__dtype_size(c.wt);
                        wsub.n = c.n - n0;
                        avl__vec bsub = s.bias;
                        if (bias) bsub.data = (const char *)s.bias.data + (size_t)n0 * avl__dtype_size(s.bias.dtype);
                        float *ys = malloc(rowb * (size_t)mb);
                        for (int64_t m = 0; m < mb; m++) memcpy(ys + m * s.ldy, s.y0 + m * s.ldy + n0, rowb - 4 * (size_t)n0);
                        avl__gemm_args as = {mb, s.x, s.ldx, &wsub, bias ? &bsub : NULL, ys, s.ldy, c.accumulate};
                        avl__gemm_skinny(&as);
                        for (int64_t m = 0; m < mb; m++)
                            if (memcmp(ys + m * s.ldy, yb + m * s.ldy + n0, sizeof(float) * (size_t)(c.n - n0)))
                                fail_msg("%s %s N=%lld K=%lld M=%lld: rows from %lld of W differ from the full product",
                                         variants[vi], avl__dtype_name(c.wt), (long long)c.n, (long long)c.k,
                                         (long long)mb, (long long)n0);
                        free(ys);
                    }
                    checked++;
                }
                free(yb);
                free(y1);
                free_case(&s);
            }
    }
    avl__gemm_skinny_force(NULL);
    printf("%d batch/single/offset cases bitwise equal\n", checked);
}

/* ---- concurrent callers share oneDNN's primitive cache ---- */

typedef struct {
    const gsetup *s;
    float *y;
    avl_status rc;
} conc_job;

static void *conc_run(void *arg)
{
    conc_job *j = arg;
    for (int r = 0; r < 20 && j->rc == AVL_OK; r++) j->rc = run_path(P_ONEDNN, j->s, j->y);
    return NULL;
}

static void test_onednn_concurrent_callers(void **state)
{
    (void)state;
    /* F32 weights: the oneDNN path runs on every CPU (bf16 only where it has bf16) */
    gcase c = {9, 40, 33, 35, AVL__DT_F32, 0, AVL__DT_F32, true, false};
    gsetup s;
    setup_case(&s, &c, 4242);
    pthread_t th[3];
    conc_job jobs[3];
    avl__set_threads(1);
    for (int i = 0; i < 3; i++) {
        jobs[i] = (conc_job){&s, malloc(sizeof(float) * (size_t)(c.m * s.ldy)), AVL_OK};
        assert_int_equal(pthread_create(&th[i], NULL, conc_run, &jobs[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].rc != AVL_OK) fail_msg("thread %d: %s", i, avl_last_error());
        check_against_ref(&s, jobs[i].y, tol_factor(P_ONEDNN, &c, NULL), "onednn concurrent");
        free(jobs[i].y);
    }
    avl__set_threads(0);
    free_case(&s);
}

/* ---- allocation failures: a status, never a crash, nothing leaked (ASan checks leaks) ---- */

static void test_gemm_alloc_failures(void **state)
{
    (void)state;
    /* bf16 weights through openblas (panel), f32 with bias and ldx > K through onednn (X copy,
     * bias, scratchpad), bf16 through onednn (bf16 copy of X where it has bf16) */
    const gcase cs[] = {
        {20, 50, 70, 70, AVL__DT_BF16, 0, AVL__DT_BF16, false, false},
        {20, 50, 70, 70, AVL__DT_F32, 0, AVL__DT_BF16, true, false},
        {20, 50, 70, 70, AVL__DT_BF16, 0, AVL__DT_F32, false, false},
    };
    const gpath paths[] = {P_OPENBLAS, P_ONEDNN, P_ONEDNN};
    for (int ci = 0; ci < 3; ci++) {
        gsetup s;
        setup_case(&s, &cs[ci], 600 + (uint64_t)ci);
        float *y = malloc(sizeof(float) * (size_t)(cs[ci].m * s.ldy));
        for (int64_t n = 1;; n++) {
            avl__alloc_fail_after(n);
            avl_status rc = run_path(paths[ci], &s, y);
            avl__alloc_fail_after(0);
            if (rc == AVL_OK) {
                check_against_ref(&s, y, tol_factor(paths[ci], &cs[ci], NULL), path_names[paths[ci]]);
                break;
            }
            AVL_EXPECT_ERROR(rc, AVL_E_NOMEM, "gemm");
            assert_true(n < 10);
        }
        free(y);
        free_case(&s);
    }
}

/* ---- arguments and selection ---- */

static void test_args_and_select(void **state)
{
    (void)state;
    const avl__gemm_backend *be;
    AVL_EXPECT_ERROR(avl__gemm_backend_select("cuda", &be), AVL_E_ARG, "cuda", "unknown");
    assert_null(be);
    assert_int_equal(avl__gemm_backend_select("ref", &be), AVL_OK);
    assert_string_equal(be->name, "ref");
    assert_int_equal(avl__gemm_backend_select(NULL, &be), AVL_OK);
    printf("auto = %s (isa %s), skinny kernel %s\n", be->name, avl__gemm_backend_isa(be),
           avl__gemm_skinny_isa());
    uint16_t w[12] = {0};
    float x[8] = {0}, y[8] = {0};
    avl__weight W = {AVL__DT_BF16, w, 3, 4, 4};
    AVL_EXPECT_ERROR(avl__gemm(be, 2, x, 3, &W, NULL, y, 3, false), AVL_E_ARG, "ldx=3");
    AVL_EXPECT_ERROR(avl__gemm(be, 2, x, 4, &W, NULL, y, 2, false), AVL_E_ARG, "ldy=2");
    AVL_EXPECT_ERROR(avl__gemm(be, -1, x, 4, &W, NULL, y, 3, false), AVL_E_ARG, "M=-1");
    avl__weight Wodd = {AVL__DT_BF16, (char *)w + 1, 3, 4, 4};
    AVL_EXPECT_ERROR(avl__gemm(be, 2, x, 4, &Wodd, NULL, y, 3, false), AVL_E_ARG, "2-byte");
    avl__weight Wbad = {(avl__dtype)7, w, 3, 4, 4};
    AVL_EXPECT_ERROR(avl__gemm(be, 2, x, 4, &Wbad, NULL, y, 3, false), AVL_E_ARG, "dtype 7");
    /* K = 0: Y = bias (+ Y) */
    float b[3] = {1, 2, 3};
    avl__vec B = {AVL__DT_F32, b};
    avl__weight W0 = {AVL__DT_BF16, w, 3, 0, 0};
    float y0[3] = {5, 5, 5};
    assert_int_equal(avl__gemm(be, 1, x, 0, &W0, &B, y0, 3, true), AVL_OK);
    assert_true(y0[0] == 6 && y0[1] == 7 && y0[2] == 8);
    /* M = 0 touches nothing */
    assert_int_equal(avl__gemm(be, 0, NULL, 4, &W, NULL, NULL, 3, false), AVL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_by_hand),
        cmocka_unit_test(test_dtype_conversions),
        cmocka_unit_test(test_args_and_select),
        cmocka_unit_test(test_gemm_paths_against_ref),
        cmocka_unit_test(test_onednn_bf16_rounding_size),
        cmocka_unit_test(test_big_gemm_projection),
        cmocka_unit_test(test_thread_count),
        cmocka_unit_test(test_onednn_concurrent_callers),
        cmocka_unit_test(test_skinny_batch_equals_single),
        cmocka_unit_test(test_gemm_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
