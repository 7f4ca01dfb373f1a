/* tests/kernels/test_attention.c: fast attention against the reference (one query at a time,
 * sums in double), on odd shapes with GQA, a KV-cache offset, causal and segment masks, row
 * strides; the hook (what it sees, edits taking effect); thread-count independence. */
#include "avl_test.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcheck.h"
#include "base/internal.h"
#include "kernels/attention.h"
#include "kernels/gemm.h"

#define U32 0x1p-24

typedef struct {
    int64_t H, KV, d, nq, nk, pos0;
    bool causal;
    int segs; /* 0: none; else that many equal-ish segments over the positions */
} acase;

typedef struct {
    avl__attn_params p;
    float *q, *k, *v, *o;
    int64_t bounds[16];
} aset;

static void make(aset *s, const acase *c, uint64_t seed)
{
    krng r = {seed};
    memset(s, 0, sizeof *s);
    int64_t qw = c->H * c->d + 3, kw = c->KV * c->d + 5; /* row strides beyond the width */
    s->q = malloc(sizeof(float) * (size_t)(c->nq * qw));
    s->k = malloc(sizeof(float) * (size_t)(c->nk * kw + 1));
    s->v = malloc(sizeof(float) * (size_t)(c->nk * kw + 1));
    s->o = malloc(sizeof(float) * (size_t)(c->nq * qw));
    krng_fill(&r, s->q, c->nq * qw, 2.0f);
    krng_fill(&r, s->k, c->nk * kw, 2.0f);
    krng_fill(&r, s->v, c->nk * kw, 1.0f);
    for (int64_t i = 0; i < c->nq * qw; i++) s->o[i] = 7.0f;
    s->p = (avl__attn_params){c->H, c->KV, c->d, c->nq, c->nk, c->pos0, s->q, qw, s->k, kw,
                              s->v, kw, s->o, qw, 0.0f, c->causal, NULL, 0, NULL, NULL, 3};
    if (c->segs) {
        int64_t npos = c->nk > c->pos0 + c->nq ? c->nk : c->pos0 + c->nq;
        for (int i = 0; i <= c->segs; i++) s->bounds[i] = npos * i / c->segs;
        s->p.seg_bounds = s->bounds;
        s->p.n_seg = c->segs;
    }
}

static void unmake(aset *s)
{
    free(s->q), free(s->k), free(s->v), free(s->o);
}

static const acase cases[] = {
    /* H  KV  d    nq  nk  pos0 causal segs */
    {1, 1, 1, 1, 1, 0, false, 0},
    {2, 1, 8, 5, 5, 0, true, 0},
    {4, 2, 64, 33, 33, 0, true, 0},
    {4, 2, 64, 1, 70, 69, true, 0},     /* decode step with a cache of 69 */
    {7, 1, 17, 40, 57, 17, true, 0},    /* chunk of 40 after 17 cached */
    {3, 3, 128, 70, 70, 0, false, 3},   /* vision windows: block diagonal */
    {2, 2, 16, 64, 64, 0, true, 4},     /* causal within segments */
    {4, 4, 32, 17, 129, 0, false, 0},   /* cross attention shape */
    {2, 1, 8, 3, 6, 6, false, 3},       /* queries in segment 2 have no keys: rows are 0 */
};

/* Tolerance: the scores carry (d + 2) u sum_c |q_c k_c| scale of error in either
 * implementation (fp32 dot, scale); an error e in the scores moves the probabilities by at most
 * 2e relative (softmax is 1-Lipschitz in log space, doubled for the normaliser); exp and the
 * sum add (|s - max| + L + 4) u relative; the output sum adds (L + 2) u sum_j p_j |v_j|. With
 * |v| <= 1 the bound on |o - o_ref| is, per (query, head):
 *   (2 (d + 2) u S_max + (s_range + 2 L + 8) u) max|v|, S_max = max_j sum_c |q_c k_c| scale,
 *   s_range = max_j |s_j - max s|. */
static void compare(const aset *s, const acase *c, const float *o, const float *oref, const char *what)
{
    const avl__attn_params *p = &s->p;
    double scale = 1.0 / sqrt((double)c->d);
    for (int64_t i = 0; i < c->nq; i++)
        for (int64_t h = 0; h < c->H; h++) {
            int64_t kvh = h / (c->H / c->KV);
            double smax = 0, hi = -1e300, lo = 1e300;
            for (int64_t j = 0; j < c->nk; j++) {
                double a = 0, sd = 0;
                for (int64_t e = 0; e < c->d; e++) {
                    a += fabs((double)p->q[i * p->ldq + h * c->d + e] * p->k[j * p->ldk + kvh * c->d + e]);
                    sd += (double)p->q[i * p->ldq + h * c->d + e] * p->k[j * p->ldk + kvh * c->d + e];
                }
                smax = fmax(smax, a * scale);
                hi = fmax(hi, sd * scale);
                lo = fmin(lo, sd * scale);
            }
            double tol = 2 * (c->d + 2) * U32 * smax + ((hi - lo) + 2 * c->nk + 8) * U32;
            for (int64_t e = 0; e < c->d; e++) {
                int64_t at = i * p->ldo + h * c->d + e;
                double err = fabs((double)o[at] - oref[at]);
                if (!(err <= tol))
                    fail_msg("%s: H=%lld KV=%lld d=%lld nq=%lld nk=%lld: out[%lld, head %lld, %lld] = %.9g, "
                             "ref %.9g, |err| %.3g > %.3g", what, (long long)c->H, (long long)c->KV,
                             (long long)c->d, (long long)c->nq, (long long)c->nk, (long long)i,
                             (long long)h, (long long)e, o[at], oref[at], err, tol);
            }
            for (int64_t e = c->H * c->d; e < p->ldo; e++) /* padding untouched */
                assert_true(o[i * p->ldo + e] == 7.0f);
        }
}

static void test_attention_by_hand(void **state)
{
    (void)state;
    /* one head, d = 2, keys (1,0), (0,1), values (1,2), (3,4), query (1,0):
     * scores (1/sqrt2, 0), p0 = e^(1/sqrt2) / (e^(1/sqrt2) + 1) */
    float q[2] = {1, 0}, k[4] = {1, 0, 0, 1}, v[4] = {1, 2, 3, 4}, o[2];
    avl__attn_params p = {1, 1, 2, 1, 2, 1, q, 2, k, 2, v, 2, o, 2, 0.0f, false, NULL, 0, NULL, NULL, 0};
    assert_int_equal(avl__ref_attention(&p), AVL_OK);
    double e = exp(1 / sqrt(2.0)), p0 = e / (e + 1), p1 = 1 / (e + 1);
    assert_float_equal(o[0], p0 * 1 + p1 * 3, 1e-6);
    assert_float_equal(o[1], p0 * 2 + p1 * 4, 1e-6);
    /* causal, query at position 0: sees key 0 only, so out = v0 exactly */
    p.causal = true;
    p.q_pos0 = 0;
    assert_int_equal(avl__ref_attention(&p), AVL_OK);
    assert_true(o[0] == 1.0f && o[1] == 2.0f);
    assert_int_equal(avl__attention(&p), AVL_OK);
    assert_true(o[0] == 1.0f && o[1] == 2.0f);
}

static void test_attention_against_ref(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const acase *c = &cases[ci];
        aset s;
        make(&s, c, 100 + ci);
        size_t bytes = sizeof(float) * (size_t)(c->nq * s.p.ldo);
        float *oref = malloc(bytes);
        assert_int_equal(avl__ref_attention(&s.p), AVL_OK);
        memcpy(oref, s.o, bytes);
        for (int64_t i = 0; i < c->nq * s.p.ldo; i++) s.o[i] = 7.0f;
        assert_int_equal(avl__attention(&s.p), AVL_OK);
        compare(&s, c, s.o, oref, "attention");
        if (ci == sizeof cases / sizeof cases[0] - 1) /* the keyless segment gives zeros */
            for (int64_t h = 0; h < c->H * c->d; h++) assert_true(s.o[2 * s.p.ldo + h] == 0.0f);
        free(oref);
        unmake(&s);
    }
}

/* ---- the hook ---- */

typedef struct {
    pthread_mutex_t lock;
    int64_t rows_seen;   /* sum of q_count over calls */
    int bad;             /* a probability row that is not a distribution, or a mask mismatch */
    bool edit;           /* zero the probability of key 0 */
    int layer;
} hook_state;

static void hook(void *user, int layer, int64_t head, int64_t q_start, int64_t q_count,
                 int64_t n_keys, float *probs, const float *scores)
{
    hook_state *hs = user;
    int bad = layer != hs->layer || head < 0 || q_start < 0;
    for (int64_t r = 0; r < q_count; r++) {
        double sum = 0;
        for (int64_t j = 0; j < n_keys; j++) {
            float pr = probs[r * n_keys + j], sc = scores[r * n_keys + j];
            if (sc == -INFINITY && pr != 0.0f) bad = 1; /* masked keys get 0 */
            sum += pr;
        }
        if (fabs(sum - 1) > 1e-5) bad = 1;
        if (hs->edit) probs[r * n_keys] = 0.0f;
    }
    pthread_mutex_lock(&hs->lock);
    hs->rows_seen += q_count;
    hs->bad |= bad;
    pthread_mutex_unlock(&hs->lock);
}

static void test_attention_hook(void **state)
{
    (void)state;
    acase c = {4, 2, 32, 45, 60, 15, true, 0};
    aset s;
    make(&s, &c, 5);
    size_t bytes = sizeof(float) * (size_t)(c.nq * s.p.ldo);
    float *plain = malloc(bytes), *oref = malloc(bytes);
    assert_int_equal(avl__attention(&s.p), AVL_OK);
    memcpy(plain, s.o, bytes);
    for (int edit = 0; edit < 2; edit++) {
        hook_state hs = {PTHREAD_MUTEX_INITIALIZER, 0, 0, edit, 3};
        s.p.hook = hook;
        s.p.hook_user = &hs;
        assert_int_equal(avl__ref_attention(&s.p), AVL_OK);
        memcpy(oref, s.o, bytes);
        assert_int_equal(hs.rows_seen, c.H * c.nq); /* every (head, query) once */
        hs.rows_seen = 0;
        assert_int_equal(avl__attention(&s.p), AVL_OK);
        assert_int_equal(hs.rows_seen, c.H * c.nq);
        assert_int_equal(hs.bad, 0);
        compare(&s, &c, s.o, oref, edit ? "attention with editing hook" : "attention with hook");
        /* an observing hook changes nothing; an editing one does */
        if (!edit) assert_memory_equal(s.o, plain, bytes);
        else assert_memory_not_equal(s.o, plain, bytes);
    }
    free(plain);
    free(oref);
    unmake(&s);
}

static void test_attention_threads_and_args(void **state)
{
    (void)state;
    acase c = {6, 2, 64, 50, 80, 30, true, 0};
    aset s;
    make(&s, &c, 9);
    size_t bytes = sizeof(float) * (size_t)(c.nq * s.p.ldo);
    float *o1 = malloc(bytes);
    avl__set_threads(1);
    assert_int_equal(avl__attention(&s.p), AVL_OK);
    memcpy(o1, s.o, bytes);
    avl__set_threads(2);
    assert_int_equal(avl__attention(&s.p), AVL_OK);
    avl__set_threads(0);
    assert_memory_equal(o1, s.o, bytes); /* each (head, block) is one thread's fixed order */
    free(o1);

    avl__attn_params p = s.p;
    p.n_kv_heads = 4;
    AVL_EXPECT_ERROR(avl__attention(&p), AVL_E_ARG, "multiple of n_kv_heads 4");
    p = s.p;
    p.ldk = 10;
    AVL_EXPECT_ERROR(avl__attention(&p), AVL_E_ARG, "ldk=10");
    int64_t b[3] = {0, 40, 60};
    p = s.p;
    p.seg_bounds = b;
    p.n_seg = 2;
    AVL_EXPECT_ERROR(avl__attention(&p), AVL_E_ARG, "segments end at 60");
    b[1] = 0;
    AVL_EXPECT_ERROR(avl__ref_attention(&p), AVL_E_ARG, "not increasing");
    /* scratch allocation failure is a status, not a crash */
    avl__alloc_fail_after(1);
    avl_status rc = avl__attention(&s.p);
    avl__alloc_fail_after(0);
    AVL_EXPECT_ERROR(rc, AVL_E_NOMEM, "scratch");
    unmake(&s);
}

/* Decoding with a cache equals full recompute, bit for bit: the last query of a causal prefill
 * (in some block of 32, in some group of 4) gives the same row as that query alone with
 * q_pos0 = its position. */
static void test_attention_decode_equals_prefill(void **state)
{
    (void)state;
    acase c = {4, 2, 40, 37, 37, 0, true, 0};
    aset s;
    make(&s, &c, 21);
    assert_int_equal(avl__attention(&s.p), AVL_OK);
    for (int64_t last = 30; last < 37; last++) {
        float *row = malloc(sizeof(float) * (size_t)s.p.ldo);
        avl__attn_params one = s.p;
        one.n_q = 1;
        one.q_pos0 = last;
        one.n_k = last + 1;
        one.q = s.q + last * s.p.ldq;
        one.out = row;
        assert_int_equal(avl__attention(&one), AVL_OK);
        assert_memory_equal(row, s.o + last * s.p.ldo, sizeof(float) * (size_t)(c.H * c.d));
        free(row);
    }
    unmake(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_by_hand),
        cmocka_unit_test(test_attention_against_ref),
        cmocka_unit_test(test_attention_hook),
        cmocka_unit_test(test_attention_threads_and_args),
        cmocka_unit_test(test_attention_decode_equals_prefill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
