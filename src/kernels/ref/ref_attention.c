/* src/kernels/ref/ref_attention.c: reference attention, one query row at a time, sums in
 * double, no threads (contract in kernels/attention.h). */
#include <math.h>

#include "base/internal.h"
#include "kernels/attention.h"

avl_status avl__attention_check(const avl__attn_params *p)
{
    if (!p) return avl__err(AVL_E_ARG, "attention: params are NULL");
    if (p->n_heads <= 0 || p->n_kv_heads <= 0 || p->n_heads % p->n_kv_heads)
        return avl__err(AVL_E_ARG, "attention: n_heads %lld is not a multiple of n_kv_heads %lld",
                        (long long)p->n_heads, (long long)p->n_kv_heads);
    if (p->head_dim <= 0 || p->n_q < 0 || p->n_k < 0 || p->q_pos0 < 0)
        return avl__err(AVL_E_ARG, "attention: bad sizes head_dim=%lld n_q=%lld n_k=%lld q_pos0=%lld",
                        (long long)p->head_dim, (long long)p->n_q, (long long)p->n_k,
                        (long long)p->q_pos0);
    int64_t qw = p->n_heads * p->head_dim, kw = p->n_kv_heads * p->head_dim;
    if (p->ldq < qw || p->ldo < qw || p->ldk < kw || p->ldv < kw)
        return avl__err(AVL_E_ARG, "attention: a leading dimension is below the row width "
                        "(ldq=%lld ldo=%lld need %lld; ldk=%lld ldv=%lld need %lld)",
                        (long long)p->ldq, (long long)p->ldo, (long long)qw, (long long)p->ldk,
                        (long long)p->ldv, (long long)kw);
    if (p->n_q > 0 && (!p->q || !p->out || (p->n_k > 0 && (!p->k || !p->v))))
        return avl__err(AVL_E_ARG, "attention: q, k, v or out is NULL");
    if (p->seg_bounds) {
        if (p->n_seg <= 0 || p->seg_bounds[0] != 0)
            return avl__err(AVL_E_ARG, "attention: segment bounds must start at 0 (n_seg=%lld)",
                            (long long)p->n_seg);
        for (int64_t s = 0; s < p->n_seg; s++)
            if (p->seg_bounds[s + 1] <= p->seg_bounds[s])
                return avl__err(AVL_E_ARG, "attention: segment bound %lld is not increasing",
                                (long long)(s + 1));
        int64_t end = p->seg_bounds[p->n_seg];
        if (end < p->n_k || end < p->q_pos0 + p->n_q)
            return avl__err(AVL_E_ARG, "attention: segments end at %lld, before the last position",
                            (long long)end);
    }
    return AVL_OK;
}

/* The segment holding position pos (bounds are checked to cover it). */
static int64_t segment_of(const avl__attn_params *p, int64_t pos)
{
    int64_t lo = 0, hi = p->n_seg; /* invariant: bounds[lo] <= pos < bounds[hi] */
    while (hi - lo > 1) {
        int64_t mid = (lo + hi) / 2;
        if (p->seg_bounds[mid] <= pos) lo = mid;
        else hi = mid;
    }
    return lo;
}

avl_status avl__ref_attention(const avl__attn_params *p)
{
    avl_status rc = avl__attention_check(p);
    if (rc != AVL_OK) return rc;
    int64_t d = p->head_dim, L = p->n_k, group = p->n_heads / p->n_kv_heads;
    double scale = p->scale != 0.0f ? p->scale : 1.0 / sqrt((double)d);
    float *s = avl__malloc(sizeof(float) * (size_t)(L ? L : 1));   /* (L_k) scores */
    float *pr = avl__malloc(sizeof(float) * (size_t)(L ? L : 1));  /* (L_k) probabilities */
    if (!s || !pr) {
        avl__free(s);
        avl__free(pr);
        return avl__err(AVL_E_NOMEM, "attention: scratch of %lld keys", (long long)L);
    }
    for (int64_t h = 0; h < p->n_heads; h++) {
        int64_t kvh = h / group;
        for (int64_t i = 0; i < p->n_q; i++) {
            const float *q = p->q + i * p->ldq + h * d;
            int64_t pos = p->q_pos0 + i;
            int64_t qseg = p->seg_bounds ? segment_of(p, pos) : 0;
            float mx = -INFINITY;
            for (int64_t j = 0; j < L; j++) {
                bool ok = (!p->causal || j <= pos) &&
                          (!p->seg_bounds || segment_of(p, j) == qseg);
                if (!ok) {
                    s[j] = -INFINITY;
                    continue;
                }
                const float *k = p->k + j * p->ldk + kvh * d;
                double dot = 0.0;
                for (int64_t c = 0; c < d; c++) dot += (double)q[c] * k[c];
                s[j] = (float)(dot * scale);
                if (s[j] > mx) mx = s[j];
            }
            double sum = 0.0;
            for (int64_t j = 0; j < L; j++) sum += mx == -INFINITY ? 0.0 : exp((double)s[j] - mx);
            for (int64_t j = 0; j < L; j++)
                pr[j] = sum > 0.0 ? (float)(exp((double)s[j] - mx) / sum) : 0.0f;
            if (p->hook) p->hook(p->hook_user, p->layer, h, i, 1, L, pr, s);
            float *o = p->out + i * p->ldo + h * d;
            for (int64_t c = 0; c < d; c++) {
                double acc = 0.0;
                for (int64_t j = 0; j < L; j++) acc += (double)pr[j] * p->v[j * p->ldv + kvh * d + c];
                o[c] = (float)acc;
            }
        }
    }
    avl__free(s);
    avl__free(pr);
    return AVL_OK;
}
