/* tests/support/decode_checks.h: the comparisons the decoding tests make (header-only; include
 * after avl_test.h). expect_ids: a result's tokens are exactly these; expect_close: two score
 * arrays agree to tol of their scale, with -inf (cut-off tokens) matching exactly. */
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

#endif
