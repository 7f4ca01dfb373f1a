/* src/analysis/sweep.c: the bottom-up per-token causal sweep of the paper's App. B.1.1
 * (Tab. 6-7): every token of the non-dominant modality restored alone against one tracer's
 * clean and corrupted runs, and the ranking of the tokens by their effect. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "avlens/analysis.h"

avl_status avl_tracer_sweep(avl_tracer *t, const avl_tokset *tokens, int layer0, int layer1, avl_sweep_progress progress,
                            void *user, avl_sweep_token *out)
{
    if (!t || !tokens || (tokens->n && !out)) return avl__err(AVL_E_ARG, "sweep: tracer, tokens and output are required");
    for (int64_t i = 0; i < tokens->n; i++) {
        int64_t p = tokens->pos[i];
        avl_tokset one = {.pos = &p, .n = 1};
        avl_trace_result r;
        avl_status rc = avl_tracer_restore(t, &one, layer0, layer1, &r);
        if (rc) return avl__err_wrap(rc, "sweep: token at position %lld", (long long)p);
        out[i] = (avl_sweep_token){.pos = p, .ie_clean = r.ie_clean, .ie_corr = r.ie_corr, .p_rest_c = r.p_rest_c,
                                   .p_rest_r = r.p_rest_r, .n_computed = r.n_computed};
        avl_trace_result_clear(&r);
        if (progress) progress(user, i + 1, tokens->n);
    }
    return AVL_OK;
}

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
