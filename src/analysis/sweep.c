/* src/analysis/sweep.c: the bottom-up per-token causal sweep of the paper's App. B.1.1
 * (Tab. 6-7): every token of the non-dominant modality restored alone against one tracer's
 * clean and corrupted runs (avl_tracer_sweep lives in trace.c, next to the tracer's state), and
 * the ranking of the tokens by their effect. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "avlens/analysis.h"

/* qsort has no user pointer: the values sit next to the index */
typedef struct {
    double a, b;
    int64_t i;
} rank_item;

static int cmp_item(const void *x, const void *y)
{
    const rank_item *p = x, *q = y;
    bool pn = isnan(p->a), qn = isnan(q->a);
    if (pn != qn) return pn ? 1 : -1;
    if (!pn && p->a != q->a) return p->a > q->a ? -1 : 1;
    bool pb = isnan(p->b), qb = isnan(q->b);
    if (pb != qb) return pb ? 1 : -1;
    if (!pb && p->b != q->b) return p->b > q->b ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i;
}

avl_status avl_sweep_rank(const double *ie, const double *tie, int64_t n, int64_t *order)
{
    if (n <= 0) return AVL_OK;
    rank_item *it = avl__malloc((size_t)n * sizeof *it);
    if (!it) return avl__err(AVL_E_NOMEM, "sweep: cannot rank %lld tokens", (long long)n);
    for (int64_t i = 0; i < n; i++) it[i] = (rank_item){ie[i], tie ? tie[i] : 0.0, i};
    qsort(it, (size_t)n, sizeof *it, cmp_item);
    for (int64_t i = 0; i < n; i++) order[i] = it[i].i;
    avl__free(it);
    return AVL_OK;
}
