/* src/kernels/attention.c: fast attention (contract in attention.h).
 *
 * Work is split into tasks (head, block of QB queries), spread over OpenMP threads with a
 * static schedule; each task runs in one thread in a fixed order, so the result does not
 * depend on the thread count. Per task:
 *   S (qc, L_k)  = Q_blk · K_h^T * scale, -inf where masked      (keys outermost, four
 *                  queries per key row; for a causal block only keys up to its last visible
 *                  one are computed; each score in the same order whatever its row's group)
 *   P (qc, L_k)  = softmax over each row (fp32, expf)
 *   hook(P, S)   if set
 *   O (qc, d)    = sum_j P[:, j] V_h[j, :]   (axpy over keys in increasing j, zeros skipped)
 * Scratch per thread: S and P (QB * L_k floats each) and O (QB * d).
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "base/internal.h"
#include "kernels/attention.h"

enum { QB = 32 }; /* queries per task: K_h and V_h rows are reused QB times from cache */

static float dot_portable(const float *a, const float *b, int64_t n)
{
    float p[8] = {0};
    int64_t n8 = n / 8 * 8;
    for (int64_t i = 0; i < n8; i += 8)
        for (int j = 0; j < 8; j++) p[j] += a[i + j] * b[i + j];
    float s = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
    for (int64_t i = n8; i < n; i++) s += a[i] * b[i];
    return s;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b,
                                                          int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline __attribute__((always_inline, target("avx2,fma"))) float hsum_avx2(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* Four dot products of one key row with four query rows, each in exactly dot_avx2's order
 * (so a query's scores do not depend on which group of four it falls in). */
__attribute__((target("avx2,fma"))) static void dot4_avx2(const float *k, const float *const q[4],
                                                          int64_t n, float out[4])
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(),
           b1 = _mm256_setzero_ps(), c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(),
           d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 k0 = _mm256_loadu_ps(k + i), k1 = _mm256_loadu_ps(k + i + 8);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q[0] + i), k0, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q[0] + i + 8), k1, a1);
        b0 = _mm256_fmadd_ps(_mm256_loadu_ps(q[1] + i), k0, b0);
        b1 = _mm256_fmadd_ps(_mm256_loadu_ps(q[1] + i + 8), k1, b1);
        c0 = _mm256_fmadd_ps(_mm256_loadu_ps(q[2] + i), k0, c0);
        c1 = _mm256_fmadd_ps(_mm256_loadu_ps(q[2] + i + 8), k1, c1);
        d0 = _mm256_fmadd_ps(_mm256_loadu_ps(q[3] + i), k0, d0);
        d1 = _mm256_fmadd_ps(_mm256_loadu_ps(q[3] + i + 8), k1, d1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 k0 = _mm256_loadu_ps(k + i);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q[0] + i), k0, a0);
        b0 = _mm256_fmadd_ps(_mm256_loadu_ps(q[1] + i), k0, b0);
        c0 = _mm256_fmadd_ps(_mm256_loadu_ps(q[2] + i), k0, c0);
        d0 = _mm256_fmadd_ps(_mm256_loadu_ps(q[3] + i), k0, d0);
    }
    out[0] = hsum_avx2(_mm256_add_ps(a0, a1));
    out[1] = hsum_avx2(_mm256_add_ps(b0, b1));
    out[2] = hsum_avx2(_mm256_add_ps(c0, c1));
    out[3] = hsum_avx2(_mm256_add_ps(d0, d1));
    for (int r = 0; r < 4; r++)
        for (int64_t t = i; t < n; t++) out[r] += q[r][t] * k[t];
}

__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float a, const float *x,
                                                          int64_t n)
{
    __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}
#define HAVE_AVX2_PATH 1
#endif

static void axpy_portable(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void dot4_portable(const float *k, const float *const q[4], int64_t n, float out[4])
{
    for (int r = 0; r < 4; r++) out[r] = dot_portable(q[r], k, n);
}

typedef float (*dot_fn)(const float *, const float *, int64_t);
typedef void (*dot4_fn)(const float *, const float *const[4], int64_t, float[4]);
typedef void (*axpy_fn)(float *, float, const float *, int64_t);

typedef struct {
    dot_fn dot;   /* q · k */
    dot4_fn dot4; /* one k against four q, each in dot's order */
    axpy_fn axpy; /* y += a x */
} vec_fns;

static vec_fns pick(void)
{
    vec_fns f = {dot_portable, dot4_portable, axpy_portable};
#ifdef HAVE_AVX2_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        f = (vec_fns){dot_avx2, dot4_avx2, axpy_avx2};
#endif
    return f;
}

/* seg_of_pos: (positions) segment of each absolute position, or NULL without segments.
 * S, P: (QB, L_k) scratch; O: (QB, d) scratch. */
static void run_task(const avl__attn_params *p, int64_t h, int64_t i0, int64_t qc,
                     const int32_t *seg_of_pos, float *S, float *P, float *O, const vec_fns *f)
{
    int64_t d = p->head_dim, L = p->n_k, kvh = h / (p->n_heads / p->n_kv_heads);
    float scale = p->scale != 0.0f ? p->scale : 1.0f / sqrtf((float)d);
    /* keys past the block's last visible position are masked for every row */
    int64_t jend = L;
    if (p->causal && p->q_pos0 + i0 + qc < jend) jend = p->q_pos0 + i0 + qc;
    /* raw scores, keys outermost: each key row is read once per block, not once per query */
    const float *q[QB];
    for (int64_t r = 0; r < qc; r++) q[r] = p->q + (i0 + r) * p->ldq + h * d;
    int64_t qc4 = qc / 4 * 4;
    for (int64_t j = 0; j < jend; j++) {
        const float *k = p->k + j * p->ldk + kvh * d;
        for (int64_t r = 0; r < qc4; r += 4) {
            float o4[4];
            f->dot4(k, q + r, d, o4);
            for (int t = 0; t < 4; t++) S[(r + t) * L + j] = o4[t];
        }
        for (int64_t r = qc4; r < qc; r++) S[r * L + j] = f->dot(q[r], k, d);
    }
    for (int64_t r = 0; r < qc; r++) {
        int64_t pos = p->q_pos0 + i0 + r;
        float *s = S + r * L, *pr = P + r * L;
        int32_t qseg = seg_of_pos ? seg_of_pos[pos] : 0;
        float mx = -INFINITY;
        for (int64_t j = 0; j < jend; j++) {
            if ((p->causal && j > pos) || (seg_of_pos && seg_of_pos[j] != qseg)) {
                s[j] = -INFINITY;
                continue;
            }
            s[j] *= scale;
            mx = s[j] > mx ? s[j] : mx;
        }
        for (int64_t j = jend; j < L; j++) s[j] = -INFINITY;
        if (mx == -INFINITY) {
            memset(pr, 0, sizeof(float) * (size_t)L);
            continue;
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < jend; j++) {
            pr[j] = s[j] == -INFINITY ? 0.0f : expf(s[j] - mx);
            sum += pr[j];
        }
        float inv = 1.0f / sum;
        for (int64_t j = 0; j < jend; j++) pr[j] *= inv;
        for (int64_t j = jend; j < L; j++) pr[j] = 0.0f;
    }
    if (p->hook) {
        p->hook(p->hook_user, p->layer, h, i0, qc, L, P, S);
        jend = L; /* the hook may have put weight anywhere */
    }
    memset(O, 0, sizeof(float) * (size_t)(qc * d));
    for (int64_t j = 0; j < jend; j++) {
        const float *v = p->v + j * p->ldv + kvh * d;
        for (int64_t r = 0; r < qc; r++) {
            float pj = P[r * L + j];
            if (pj != 0.0f) f->axpy(O + r * d, pj, v, d);
        }
    }
    for (int64_t r = 0; r < qc; r++)
        memcpy(p->out + (i0 + r) * p->ldo + h * d, O + r * d, sizeof(float) * (size_t)d);
}

avl_status avl__attention(const avl__attn_params *p)
{
    avl_status rc = avl__attention_check(p);
    if (rc != AVL_OK) return rc;
    if (p->n_q == 0) return AVL_OK;
    int64_t L = p->n_k, d = p->head_dim;
    int32_t *seg_of_pos = NULL; /* (n_positions) segment index of each absolute position */
    if (p->seg_bounds) {
        int64_t npos = p->seg_bounds[p->n_seg];
        seg_of_pos = avl__malloc(sizeof(int32_t) * (size_t)npos);
        if (!seg_of_pos)
            return avl__err(AVL_E_NOMEM, "attention: segment map of %lld positions", (long long)npos);
        for (int64_t s = 0; s < p->n_seg; s++)
            for (int64_t i = p->seg_bounds[s]; i < p->seg_bounds[s + 1]; i++) seg_of_pos[i] = (int32_t)s;
    }
    vec_fns f = pick();
    int64_t nblk = (p->n_q + QB - 1) / QB, ntask = p->n_heads * nblk;
    int64_t qmax = p->n_q < QB ? p->n_q : QB;
    _Atomic int failed = 0;
#pragma omp parallel
    {
        /* per thread: S, P (qmax, L_k); O (qmax, d) */
        float *S = avl__malloc(sizeof(float) * (size_t)(qmax * (L ? L : 1)));
        float *P = avl__malloc(sizeof(float) * (size_t)(qmax * (L ? L : 1)));
        float *O = avl__malloc(sizeof(float) * (size_t)(qmax * d));
        if (!S || !P || !O) atomic_store(&failed, 1);
#pragma omp barrier
        if (!atomic_load(&failed)) {
#pragma omp for schedule(static)
            for (int64_t t = 0; t < ntask; t++) {
                int64_t h = t / nblk, i0 = (t % nblk) * QB;
                int64_t qc = p->n_q - i0 < QB ? p->n_q - i0 : QB;
                run_task(p, h, i0, qc, seg_of_pos, S, P, O, &f);
            }
        }
        avl__free(S);
        avl__free(P);
        avl__free(O);
    }
    avl__free(seg_of_pos);
    if (atomic_load(&failed))
        return avl__err(AVL_E_NOMEM, "attention: scratch of %d x %lld floats per thread", (int)QB,
                        (long long)L);
    return AVL_OK;
}
