/* src/kernels/gemm_skinny.c: the small-M kernel (decode: M = 1..16 rows of activations).
 *
 * With few rows of X the product is a stream over W: every weight is read once and used M
 * times, so the time is the weight bytes over the memory bandwidth. The kernel reads each row
 * of W once, widens it to fp32 in registers (bf16: interleaved with zeros; f16: vcvtph2ps;
 * exact) and multiplies it into M fp32 accumulators per lane with FMA. X stays fp32 (no bf16
 * rounding of activations): AVX512-BF16's dot product would need X in bf16 and buys nothing
 * here, as the kernel is bound by memory, not arithmetic.
 *
 * OpenMP splits N into blocks of rows with a static schedule; each output is computed by one
 * thread in one fixed order (vector lanes, then lane sum, then the K tail, then bias, then old
 * Y), so results depend neither on the thread count nor on M (row m of a batch has the bits
 * it would have alone) nor on how rows of W are grouped.
 *
 * Variants, chosen once at run time with __builtin_cpu_supports: AVX-512F (16 lanes), AVX2 +
 * FMA + F16C (eight partial sums per output in 128-bit vectors, several rows of W per pass;
 * docs/kernels.md says why), portable C. Each is compiled with a target attribute, so the
 * library needs no -mavx512f and runs on any x86-64.
 */
#include <stdatomic.h>
#include <string.h>

#include "kernels/gemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define AVL_SKINNY_X86 1
#endif

enum { V_PORTABLE = 0, V_AVX2 = 1, V_AVX512 = 2 };
static _Atomic int g_variant = -1;
static _Atomic int g_forced = -1; /* a variant forced by avl__gemm_skinny_force, or -1 */

static int detect_variant(void)
{
#ifdef AVL_SKINNY_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return V_AVX512;
    /* clang 14 does not know "f16c" in __builtin_cpu_supports: ask cpuid (leaf 1, ecx) */
    unsigned a, b, c, d;
    bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) return V_AVX2;
#endif
    return V_PORTABLE;
}

static int variant(void)
{
    int v = atomic_load(&g_forced);
    if (v >= 0) return v;
    v = atomic_load(&g_variant);
    if (v < 0) {
        v = detect_variant();
        atomic_store(&g_variant, v);
    }
    return v;
}

const char *avl__gemm_skinny_isa(void)
{
    static const char *names[] = {"portable", "avx2", "avx512"};
    return names[variant()];
}

bool avl__gemm_skinny_force(const char *isa)
{
    if (!isa) {
        atomic_store(&g_forced, -1);
        return true;
    }
    int want = !strcmp(isa, "portable") ? V_PORTABLE
             : !strcmp(isa, "avx2")     ? V_AVX2
             : !strcmp(isa, "avx512")   ? V_AVX512
                                        : -1;
    if (want < 0) return false;
    int best = detect_variant();
    /* AVX-512F machines have AVX2 + FMA + F16C too */
    if (want > best) return false;
    atomic_store(&g_forced, want);
    return true;
}

/* The shared tail of every variant: y = acc (+ bias) (+ old y). */
static inline void store_out(const avl__gemm_args *a, int64_t m, int64_t n, float acc)
{
    if (a->bias) acc = acc + avl__load_elem(a->bias->dtype, a->bias->data, n);
    float *yp = a->y + m * a->ldy + n;
    *yp = a->accumulate ? acc + *yp : acc;
}

static inline const char *wrow(const avl__weight *w, int64_t n)
{
    return (const char *)w->data + (size_t)(n * w->ld) * avl__dtype_size(w->dtype);
}

/* ---- portable ---- */

/* Eight partial sums per output (lane j takes k = j mod 8), like the vector variants. The row
 * of W is widened CH values at a time into a stack buffer, once for all M rows of X; up to MG
 * rows of X share one pass over the row. */
static void rows_portable(const avl__gemm_args *a, int64_t n0, int64_t n1)
{
    enum { CH = 256, MG = 16 };
    const avl__weight *w = a->w;
    const size_t es = avl__dtype_size(w->dtype);
    int64_t K = w->k, K8 = K / 8 * 8;
    float wbuf[CH];      /* (CH) widened weights */
    float part[MG][8];   /* (rows of X in the group, lanes) */
    for (int64_t n = n0; n < n1; n++) {
        const char *wr = wrow(w, n);
        for (int64_t m0 = 0; m0 < a->m; m0 += MG) {
            int64_t mg = a->m - m0 < MG ? a->m - m0 : MG;
            memset(part, 0, sizeof part);
            for (int64_t k0 = 0; k0 < K8; k0 += CH) {
                int64_t kc = K8 - k0 < CH ? K8 - k0 : CH;
                avl__convert_to_f32(w->dtype, wr + (size_t)k0 * es, wbuf, kc);
                for (int64_t i = 0; i < mg; i++) {
                    const float *x = a->x + (m0 + i) * a->ldx + k0;
                    for (int64_t k = 0; k < kc; k += 8)
                        for (int j = 0; j < 8; j++) {
                            float p = x[k + j] * wbuf[k + j];
                            part[i][j] = part[i][j] + p;
                        }
                }
            }
            for (int64_t i = 0; i < mg; i++) {
                const float *x = a->x + (m0 + i) * a->ldx;
                float *pt = part[i];
                float acc = ((pt[0] + pt[4]) + (pt[1] + pt[5])) + ((pt[2] + pt[6]) + (pt[3] + pt[7]));
                for (int64_t k = K8; k < K; k++) {
                    float p = x[k] * avl__load_elem(w->dtype, wr, k);
                    acc = acc + p;
                }
                store_out(a, m0 + i, n, acc);
            }
        }
    }
}

#ifdef AVL_SKINNY_X86

/* The loops over rows of X and accumulators must be unrolled completely, or the accumulator
 * array lives in memory instead of registers (gcc -O2 does not unroll them by itself). */
#define AVL_UNROLL _Pragma("GCC unroll 4")

/* ---- AVX2 + FMA + F16C: 8 lanes ---- */

#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

/* Eight weights k..k+7 of a row as two vectors of four fp32 (exact): lo = k..k+3, hi =
 * k+4..k+7. bf16 is widened by interleaving with zeros (16-bit unpack: one shuffle per four
 * weights, no shift). On Zen 1 a 256-bit shift runs on one pipe only and took half the
 * kernel's cycles; 128-bit vectors cost the same per element there, as 256-bit ops are split
 * in two anyway. */
static inline __attribute__((always_inline)) AVX2_TARGET void
load8x2(avl__dtype t, const char *p, __m128 *lo, __m128 *hi)
{
    if (t == AVL__DT_BF16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p), z = _mm_setzero_si128();
        /* keep v in a register: gcc would fold the load into both unpacks and read L1 twice,
         * and loads (2 per cycle on Zen 1) are what bounds the kernel at M = 1..2 */
        __asm__("" : "+x"(v));
        *lo = _mm_castsi128_ps(_mm_unpacklo_epi16(z, v));
        *hi = _mm_castsi128_ps(_mm_unpackhi_epi16(z, v));
    } else if (t == AVL__DT_F16) {
        *lo = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(const void *)p));
        *hi = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(const void *)(p + 8)));
    } else {
        *lo = _mm_loadu_ps((const float *)(const void *)p);
        *hi = _mm_loadu_ps((const float *)(const void *)(p + 16));
    }
}

/* RB rows of W against MB rows of X (constants after inlining). Each output has eight
 * partial sums, lane j of its two accumulators taking k = j mod 8 (as the portable variant),
 * combined as ((p0+p4) + (p1+p5)) + ((p2+p6) + (p3+p7)), then the K % 8 tail, bias, old Y:
 * the order does not depend on MB, RB or the output's place in a block, so a batch gives the
 * bits its rows give one by one, and any thread count gives the same bits.
 * Several rows of W per pass give the FMA units independent chains (one row has only two, and
 * an FMA's 5-cycle latency then caps a core at ~6 bytes of W per cycle) and reuse each load of
 * X RB times. Software prefetch (64 to 4096 bytes ahead) was tried and gained nothing
 * measurable here. */
static inline __attribute__((always_inline)) AVX2_TARGET void
blk_avx2(const avl__gemm_args *a, int64_t n, int64_t m0, const int MB, const int RB, const avl__dtype t)
{
    const avl__weight *w = a->w;
    const size_t es = avl__dtype_size(t);
    const int64_t K = w->k, K8 = K / 8 * 8, line = 64 / (int64_t)es, Kl = K / line * line;
    const char *wr[4];
    AVL_UNROLL
    for (int r = 0; r < RB; r++) wr[r] = wrow(w, n + r);
    const float *x[4];
    AVL_UNROLL
    for (int i = 0; i < MB; i++) x[i] = a->x + (m0 + i) * a->ldx;
    __m128 acc[4][4][2];
    AVL_UNROLL
    for (int i = 0; i < MB; i++)
        AVL_UNROLL
        for (int r = 0; r < RB; r++) acc[i][r][0] = acc[i][r][1] = _mm_setzero_ps();
    /* With one row of W, X is read straight into the FMAs (no reuse to gain, and four rows
     * of X in registers would spill). */
#define AVL_STEP8(kk)                                                                         \
    do {                                                                                      \
        __m128 xl[4], xh[4];                                                                  \
        if (RB > 1)                                                                           \
            AVL_UNROLL                                                                        \
            for (int i = 0; i < MB; i++) {                                                    \
                xl[i] = _mm_loadu_ps(x[i] + (kk));                                            \
                xh[i] = _mm_loadu_ps(x[i] + (kk) + 4);                                        \
            }                                                                                 \
        AVL_UNROLL                                                                            \
        for (int r = 0; r < RB; r++) {                                                        \
            __m128 lo, hi;                                                                    \
            load8x2(t, wr[r] + (size_t)(kk) * es, &lo, &hi);                                  \
            AVL_UNROLL                                                                        \
            for (int i = 0; i < MB; i++) {                                                    \
                __m128 a0 = RB > 1 ? xl[i] : _mm_loadu_ps(x[i] + (kk));                       \
                __m128 a1 = RB > 1 ? xh[i] : _mm_loadu_ps(x[i] + (kk) + 4);                   \
                acc[i][r][0] = _mm_fmadd_ps(a0, lo, acc[i][r][0]);                            \
                acc[i][r][1] = _mm_fmadd_ps(a1, hi, acc[i][r][1]);                            \
            }                                                                                 \
        }                                                                                     \
    } while (0)
    int64_t k = 0;
    for (; k < Kl; k += line) /* one 64-byte line of each row of W per pass */
        AVL_UNROLL
        for (int64_t q = 0; q < line; q += 8) AVL_STEP8(k + q);
    for (; k < K8; k += 8) AVL_STEP8(k);
#undef AVL_STEP8
    AVL_UNROLL
    for (int r = 0; r < RB; r++)
        AVL_UNROLL
        for (int i = 0; i < MB; i++) {
            __m128 s = _mm_add_ps(acc[i][r][0], acc[i][r][1]); /* p_j + p_(j+4) */
            s = _mm_hadd_ps(s, s);                              /* (p0+p4)+(p1+p5), (p2+p6)+(p3+p7) */
            s = _mm_hadd_ps(s, s);
            float v = _mm_cvtss_f32(s);
            for (int64_t kt = K8; kt < K; kt++) {
                float p = x[i][kt] * avl__load_elem(t, wr[r], kt);
                v = v + p;
            }
            store_out(a, m0 + i, n + r, v);
        }
}

/* The rows n0..n1 of W for one dtype (a constant after inlining, so that the loops carry no
 * dtype test): blocks of four rows of W for M = 1, two for M = 2, M = 3 as 2 + 1 over four rows, one row for M >= 4. */
static inline __attribute__((always_inline)) AVX2_TARGET void
rows_avx2_t(const avl__gemm_args *a, int64_t n0, int64_t n1, const avl__dtype t)
{
    int64_t n = n0;
    if (a->m == 1)
        for (; n + 4 <= n1; n += 4) blk_avx2(a, n, 0, 1, 4, t);
    if (a->m == 2)
        for (; n + 2 <= n1; n += 2) blk_avx2(a, n, 0, 2, 2, t);
    if (a->m == 3) /* rows 0-1 of X two rows of W at a time, then row 2 over the same four rows
                    * of W, now in L1/L2: one row of W with three rows of X has only six FMA
                    * chains and four rows of X in registers would spill */
        for (; n + 4 <= n1; n += 4) {
            blk_avx2(a, n, 0, 2, 2, t);
            blk_avx2(a, n + 2, 0, 2, 2, t);
            blk_avx2(a, n, 2, 1, 4, t);
        }
    for (; n < n1; n++)
        for (int64_t m0 = 0; m0 < a->m; m0 += 4) {
            switch (a->m - m0) {
            case 1: blk_avx2(a, n, m0, 1, 1, t); break;
            case 2: blk_avx2(a, n, m0, 2, 1, t); break;
            case 3: blk_avx2(a, n, m0, 3, 1, t); break;
            default: blk_avx2(a, n, m0, 4, 1, t); break;
            }
        }
}

static AVX2_TARGET void rows_avx2(const avl__gemm_args *a, int64_t n0, int64_t n1)
{
    switch (a->w->dtype) {
    case AVL__DT_BF16: rows_avx2_t(a, n0, n1, AVL__DT_BF16); break;
    case AVL__DT_F16: rows_avx2_t(a, n0, n1, AVL__DT_F16); break;
    default: rows_avx2_t(a, n0, n1, AVL__DT_F32); break;
    }
}

/* ---- AVX-512F: 16 lanes (same structure) ---- */

#define AVX512_TARGET __attribute__((target("avx512f")))

static inline AVX512_TARGET __m512 load16(avl__dtype t, const char *p)
{
    if (t == AVL__DT_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
    if (t == AVL__DT_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_loadu_ps((const void *)p);
}

static inline __attribute__((always_inline)) AVX512_TARGET void
row_avx512(const avl__gemm_args *a, int64_t n, int64_t m0, const int MB)
{
    const avl__weight *w = a->w;
    const avl__dtype t = w->dtype;
    const size_t es = avl__dtype_size(t);
    const int U = 2;
    const int64_t K = w->k, step = 16 * U, Kv = K / step * step;
    const char *wr = wrow(w, n);
    const float *x[4];
    AVL_UNROLL
    for (int i = 0; i < MB; i++) x[i] = a->x + (m0 + i) * a->ldx;
    __m512 acc[4][4];
    AVL_UNROLL
    for (int i = 0; i < MB; i++)
        AVL_UNROLL
        for (int u = 0; u < U; u++) acc[i][u] = _mm512_setzero_ps();
    for (int64_t k = 0; k < Kv; k += step)
        AVL_UNROLL
        for (int u = 0; u < U; u++) {
            __m512 wv = load16(t, wr + (size_t)(k + 16 * u) * es);
            AVL_UNROLL
    for (int i = 0; i < MB; i++)
                acc[i][u] = _mm512_fmadd_ps(_mm512_loadu_ps(x[i] + k + 16 * u), wv, acc[i][u]);
        }
    AVL_UNROLL
    for (int i = 0; i < MB; i++) {
        __m512 s = acc[i][0];
        AVL_UNROLL
        for (int u = 1; u < U; u++) s = _mm512_add_ps(s, acc[i][u]);
        float r = _mm512_reduce_add_ps(s);
        for (int64_t k = Kv; k < K; k++) {
            float p = x[i][k] * avl__load_elem(t, wr, k);
            r = r + p;
        }
        store_out(a, m0 + i, n, r);
    }
}

static AVX512_TARGET void rows_avx512(const avl__gemm_args *a, int64_t n0, int64_t n1)
{
    for (int64_t n = n0; n < n1; n++)
        for (int64_t m0 = 0; m0 < a->m; m0 += 4) {
            switch (a->m - m0) {
            case 1: row_avx512(a, n, m0, 1); break;
            case 2: row_avx512(a, n, m0, 2); break;
            case 3: row_avx512(a, n, m0, 3); break;
            default: row_avx512(a, n, m0, 4); break;
            }
        }
}

#endif /* AVL_SKINNY_X86 */

void avl__gemm_skinny(const avl__gemm_args *a)
{
    enum { ROWS = 16 }; /* rows of W per scheduling unit */
    int v = variant();
    int64_t N = a->w->n, nblk = (N + ROWS - 1) / ROWS;
    /* Tiny products are not worth waking the threads. */
    int par = N * a->w->k * a->m >= (1 << 16);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t n0 = b * ROWS, n1 = n0 + ROWS < N ? n0 + ROWS : N;
#ifdef AVL_SKINNY_X86
        if (v == V_AVX512) rows_avx512(a, n0, n1);
        else if (v == V_AVX2) rows_avx2(a, n0, n1);
        else
#endif
            rows_portable(a, n0, n1);
    }
}
