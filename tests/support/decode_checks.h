/* tests/support/decode_checks.h: the comparisons the decoding tests make (header-only; include
 * after avl_test.h). expect_ids: a result's tokens are exactly these; expect_close: two score
 * arrays agree to tol of their scale, with -inf (cut-off tokens) matching exactly;
 * expect_decode_faults: allocation failures in a decode. Needs base/internal.h for the fault hook. */
#ifndef AVL_TEST_DECODE_CHECKS_H
#define AVL_TEST_DECODE_CHECKS_H

#include <math.h>
#include <stdio.h>

static inline void expect_ids(const avl_decode_result *r, const int32_t *ids, int64_t n, const char *what)
{
    if (r->n != n) fail_msg("%s: %lld tokens, want %lld", what, (long long)r->n, (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (r->ids[i] != ids[i]) fail_msg("%s: token %lld is %d, want %d", what, (long long)i, r->ids[i], ids[i]);
}

/* max |a - b| <= tol * max(1, max |b|) over the finite entries; infinite ones must be equal */
static inline void expect_close(const float *a, const float *b, int64_t n, double tol, const char *what)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isinf(a[i]) || isinf(b[i])) {
            if (a[i] != b[i]) fail_msg("%s: element %lld is %g vs %g", what, (long long)i, a[i], b[i]);
            continue;
        }
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    fprintf(stderr, "%s: max |diff| %.3g, max |x| %.3g\n", what, d, s);
    if (d > tol * (s > 1 ? s : 1)) fail_msg("%s: differ by %g (scale %g)", what, d, s);
}

/* Allocation k of a decode fails, for k = 1..12 and then every stride-th: each must give
 * AVL_E_NOMEM and an empty result (ASan checks nothing leaks), until the decode succeeds. */
static inline void expect_decode_faults(const avl_model *m, const avl_decode_input *in, const avl_decode_params *p,
                                        int64_t stride)
{
    for (int64_t k = 1;; k += k < 12 ? 1 : stride) {
        avl_decode_result r;
        avl__alloc_fail_after(k);
        avl_status rc = avl_decode(m, in, p, &r);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            avl_decode_result_clear(&r);
            return;
        }
        if (rc != AVL_E_NOMEM)
            fail_msg("%s, allocation %lld: %s", avl_decode_method_name(p->method), (long long)k, avl_last_error());
        assert_null(r.ids);
        if (k > 100000) fail_msg("never succeeded");
    }
}

#endif
