/* src/analysis/mds.c: the modality dominance score of sinks (paper Sec. 5.1, Eq. 5; the
 * authors' logic/sink.py analyze_sink_modality_causal_fast with direction "future_looks_sink",
 * and the split of causal_tracing_modality_sink.py build_layerlist).
 *
 *   a_v(s, l) = mean over heads h and video queries q > s of attn_l[h, q, s]   (0 if none)
 *   a_a(s, l) = the same over audio queries
 *   MDS(s, l) = (a_v - a_a) / (a_v + a_a + 1e-9)
 * a_v and a_a come from a plan's received-attention observer, so no L x L map is stored.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "avlens/analysis.h"

void avl_mds_free(avl_mds *m)
{
    if (!m) return;
    avl__free(m->sinks);
    avl__free(m->a_v);
    avl__free(m->a_a);
    avl__free(m->mds);
    avl__free(m->mean);
    avl__free(m);
}

avl_status avl_mds_compute(const avl_received *rx, const int64_t *sinks, int64_t n, avl_mds **out)
{
    *out = NULL;
    if (n < 0) return avl__err(AVL_E_ARG, "mds: negative sink count");
    avl_mds *m = avl__calloc(1, sizeof *m);
    if (!m) return avl__err(AVL_E_NOMEM, "mds: cannot allocate");
    int l1;
    avl_received_layers(rx, &m->layer0, &l1);
    m->n_layers = l1 - m->layer0;
    int nl = m->n_layers;
    size_t cells = (size_t)(n * nl + 1);
    m->n = n;
    m->sinks = avl__malloc(((size_t)n + 1) * sizeof *m->sinks);
    m->a_v = avl__malloc(cells * sizeof(double));
    m->a_a = avl__malloc(cells * sizeof(double));
    m->mds = avl__malloc(cells * sizeof(double));
    m->mean = avl__malloc(((size_t)n + 1) * sizeof(double));
    if (!m->sinks || !m->a_v || !m->a_a || !m->mds || !m->mean) {
        avl_mds_free(m);
        return avl__err(AVL_E_NOMEM, "mds: cannot allocate for %lld sinks", (long long)n);
    }
    if (n) memcpy(m->sinks, sinks, (size_t)n * sizeof *sinks);
    for (int64_t i = 0; i < n; i++) {
        double acc = 0.0;
        int64_t cnt = 0;
        for (int l = 0; l < nl; l++) {
            double av = avl_received_mean(rx, m->layer0 + l, AVL_QG_VIDEO, sinks[i]);
            double aa = avl_received_mean(rx, m->layer0 + l, AVL_QG_AUDIO, sinks[i]);
            double d = (av - aa) / (av + aa + 1e-9);
            m->a_v[i * nl + l] = av;
            m->a_a[i * nl + l] = aa;
            m->mds[i * nl + l] = d;
            if (!isnan(d)) {
                acc += d;
                cnt++;
            }
        }
        m->mean[i] = cnt ? acc / (double)cnt : NAN;
    }
    *out = m;
    return AVL_OK;
}

typedef struct {
    double key;
    int64_t idx;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    bool xn = isnan(x->key), yn = isnan(y->key);
    if (xn != yn) return xn ? 1 : -1;
    if (!xn && x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx); /* stable */
}

avl_status avl_mds_split(const avl_mds *m, bool video, int64_t *order, int64_t *n_uni)
{
    keyed *k = avl__malloc(((size_t)m->n + 1) * sizeof *k);
    if (!k) return avl__err(AVL_E_NOMEM, "mds: cannot allocate the split");
    /* descending = ascending on the negated key, still stable on the index */
    for (int64_t i = 0; i < m->n; i++) k[i] = (keyed){video ? -m->mean[i] : m->mean[i], i};
    qsort(k, (size_t)m->n, sizeof *k, keyed_cmp);
    for (int64_t i = 0; i < m->n; i++) order[i] = m->sinks[k[i].idx];
    *n_uni = m->n / 2;
    avl__free(k);
    return AVL_OK;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile with linear interpolation on sorted v (n >= 1) */
static double pct(const double *v, int64_t n, double q)
{
    double pos = q / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(pos);
    int64_t hi = lo + 1 < n ? lo + 1 : lo;
    double f = pos - (double)lo;
    return v[lo] + (v[hi] - v[lo]) * f;
}

void avl_summarize(const double *x, int64_t n, avl_summary *out)
{
    memset(out, 0, sizeof *out);
    double *v = avl__malloc(((size_t)n + 1) * sizeof *v);
    int64_t k = 0;
    if (!v) {
        out->median = out->q25 = out->q75 = out->iqr = out->mean = out->std = NAN;
        return;
    }
    for (int64_t i = 0; i < n; i++)
        if (!isnan(x[i])) v[k++] = x[i];
    out->count = k;
    if (k == 0) {
        out->median = out->q25 = out->q75 = out->iqr = out->mean = out->std = NAN;
        avl__free(v);
        return;
    }
    qsort(v, (size_t)k, sizeof *v, dbl_cmp);
    out->median = pct(v, k, 50.0);
    out->q25 = pct(v, k, 25.0);
    out->q75 = pct(v, k, 75.0);
    out->iqr = out->q75 - out->q25;
    double s = 0.0;
    for (int64_t i = 0; i < k; i++) s += v[i];
    out->mean = s / (double)k;
    double ss = 0.0;
    for (int64_t i = 0; i < k; i++) ss += (v[i] - out->mean) * (v[i] - out->mean);
    out->std = sqrt(ss / (double)k);
    avl__free(v);
}
