/* src/analysis/sinks.c: massive-activation sinks (paper App. A.1; the authors' logic/sink.py:
 * rmsnorm, run_logic, get_global_sink_token).
 *
 *   phi(x)   = max over d in D of |x_d| / sqrt(mean(x^2) + 1e-6)    (RMSNorm without its weight)
 *   S_l      = { t : phi(x_{l,t}) > tau },  x_{l,t} the input hidden state of layer l
 *   f(t)     = #{ l : t in S_l }
 *   global   = Counter(concatenation of S_0, S_1, ... in position order).most_common(K),
 *              K = floor(L / N): by count descending, ties in first-appearance order (Counter
 *              keeps insertion order and most_common's sort is stable).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "avlens/analysis.h"
#include "interp/interp_internal.h"

avl_status avl_sink_default_params(const avl_config *cfg, avl_sink_params *out)
{
    memset(out, 0, sizeof *out);
    out->tau = 25.0;
    if (cfg->text.hidden_size == 3584 && cfg->text.num_hidden_layers == 28) {
        out->n_dims = 2;
        out->dims[0] = 458;
        out->dims[1] = 2570;
    } else if (cfg->text.hidden_size == 2048 && cfg->text.num_hidden_layers == 36) {
        out->tau = 20.0;
    }
    return AVL_OK;
}

float avl_sink_phi(const float *x, int64_t H, const avl_sink_params *p)
{
    double ss = 0.0;
    for (int64_t i = 0; i < H; i++) ss += (double)x[i] * x[i];
    float var = (float)(ss / (double)H);
    float inv = 1.0f / sqrtf(var + 1e-6f);
    float best = 0.0f;
    for (int i = 0; i < p->n_dims; i++) {
        float v = fabsf(x[p->dims[i]] * inv);
        if (v > best) best = v;
    }
    return best;
}

static void phi_fn(void *user, int layer, int64_t p0, int64_t n, int64_t dim, const float *x)
{
    avl_phi_table *t = user;
    for (int64_t i = 0; i < n; i++) t->phi[(int64_t)layer * t->L + p0 + i] = avl_sink_phi(x + i * dim, dim, &t->params);
}

avl_status avl_sinks_observe(avl_plan *plan, const avl_sink_params *p, avl_phi_table **out)
{
    *out = NULL;
    if (p->n_dims <= 0 || p->n_dims > AVL_SINK_MAX_DIMS)
        return avl__err(AVL_E_ARG, "sinks: no sink dimensions (give them, or find them with avlens sinkdims)");
    int n_layers;
    int64_t L, H;
    avl__plan_geometry(plan, &n_layers, &L, &H);
    for (int i = 0; i < p->n_dims; i++)
        if (p->dims[i] < 0 || p->dims[i] >= H)
            return avl__err(AVL_E_ARG, "sinks: dimension %lld outside the hidden size %lld", (long long)p->dims[i],
                            (long long)H);
    avl_phi_table *t = avl__calloc(1, sizeof *t);
    if (t) t->phi = avl__calloc((size_t)((int64_t)n_layers * L + 1), sizeof *t->phi);
    if (!t || !t->phi) {
        avl_phi_free(t);
        return avl__err(AVL_E_NOMEM, "sinks: cannot allocate phi for %d layers x %lld positions", n_layers,
                        (long long)L);
    }
    t->params = *p;
    t->n_layers = n_layers;
    t->L = L;
    avl_status rc = avl_plan_on_site(plan, AVL_SITE_RESID, 0, n_layers, phi_fn, t);
    if (rc) {
        avl_phi_free(t);
        return rc;
    }
    *out = t;
    return AVL_OK;
}

void avl_phi_free(avl_phi_table *t)
{
    if (!t) return;
    avl__free(t->phi);
    avl__free(t);
}

typedef struct {
    int64_t pos;
    int32_t freq;
    int32_t first_layer;
} cand;

/* count descending, then first appearance: lower layer, then lower position */
static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->freq != y->freq) return x->freq > y->freq ? -1 : 1;
    if (x->first_layer != y->first_layer) return x->first_layer < y->first_layer ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

void avl_sinks_free(avl_sinks *s)
{
    if (!s) return;
    avl__free(s->member);
    avl__free(s->layer_count);
    avl__free(s->freq);
    avl__free(s->global);
    avl__free(s->video);
    avl__free(s->audio);
    avl__free(s);
}

avl_status avl_sinks_find(const avl_phi_table *phi, double tau, const avl_token_map *map, int64_t N, avl_sinks **out)
{
    *out = NULL;
    if (N <= 0) return avl__err(AVL_E_ARG, "sinks: N (k_divide) must be positive, got %lld", (long long)N);
    if (phi->L != map->n)
        return avl__err(AVL_E_ARG, "sinks: phi covers %lld positions, the sequence has %lld", (long long)phi->L,
                        (long long)map->n);
    int64_t L = phi->L;
    int nl = phi->n_layers;
    avl_sinks *s = avl__calloc(1, sizeof *s);
    cand *c = NULL;
    int32_t *first = NULL;
    if (!s) return avl__err(AVL_E_NOMEM, "sinks: cannot allocate");
    s->n_layers = nl;
    s->L = L;
    s->member = avl__calloc((size_t)((int64_t)nl * L + 1), 1);
    s->layer_count = avl__calloc((size_t)nl + 1, sizeof *s->layer_count);
    s->freq = avl__calloc((size_t)L + 1, sizeof *s->freq);
    first = avl__malloc(((size_t)L + 1) * sizeof *first);
    c = avl__malloc(((size_t)L + 1) * sizeof *c);
    if (!s->member || !s->layer_count || !s->freq || !first || !c) goto nomem;
    for (int64_t t = 0; t < L; t++) first[t] = -1;
    for (int l = 0; l < nl; l++)
        for (int64_t t = 0; t < L; t++) {
            if (!(phi->phi[(int64_t)l * L + t] > tau)) continue;
            s->member[(int64_t)l * L + t] = 1;
            s->layer_count[l]++;
            s->freq[t]++;
            if (first[t] < 0) first[t] = l;
        }
    int64_t nc = 0;
    for (int64_t t = 0; t < L; t++)
        if (s->freq[t] > 0) c[nc++] = (cand){.pos = t, .freq = s->freq[t], .first_layer = first[t]};
    qsort(c, (size_t)nc, sizeof *c, cand_cmp);
    s->K = L / N;
    s->n_global = nc < s->K ? nc : s->K;
    s->global = avl__malloc(((size_t)s->n_global + 1) * sizeof *s->global);
    s->video = avl__malloc(((size_t)s->n_global + 1) * sizeof *s->video);
    s->audio = avl__malloc(((size_t)s->n_global + 1) * sizeof *s->audio);
    if (!s->global || !s->video || !s->audio) goto nomem;
    for (int64_t i = 0; i < s->n_global; i++) {
        int64_t t = c[i].pos;
        s->global[i] = t;
        if (map->tok[t].kind == AVL_TOK_VIDEO) s->video[s->n_video++] = t;
        else if (map->tok[t].kind == AVL_TOK_AUDIO) s->audio[s->n_audio++] = t;
    }
    avl__free(first);
    avl__free(c);
    *out = s;
    return AVL_OK;
nomem:
    avl__free(first);
    avl__free(c);
    avl_sinks_free(s);
    return avl__err(AVL_E_NOMEM, "sinks: cannot allocate for %lld positions", (long long)L);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double v;
    int64_t d;
} dimval;

static int dimval_cmp(const void *a, const void *b)
{
    const dimval *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->d > y->d) - (x->d < y->d);
}

avl_status avl_sink_find_dims(const float *x, int64_t H, double ratio, double floor_abs, int64_t *dims, int max,
                              int *n_dims)
{
    *n_dims = 0;
    if (H <= 0 || max < 0) return avl__err(AVL_E_ARG, "sinkdims: bad sizes");
    double *a = avl__malloc((size_t)H * sizeof *a);
    dimval *dv = avl__malloc((size_t)H * sizeof *dv);
    if (!a || !dv) {
        avl__free(a);
        avl__free(dv);
        return avl__err(AVL_E_NOMEM, "sinkdims: cannot allocate %lld values", (long long)H);
    }
    for (int64_t i = 0; i < H; i++) {
        a[i] = fabs((double)x[i]);
        dv[i] = (dimval){a[i], i};
    }
    qsort(a, (size_t)H, sizeof *a, cmp_double);
    double med = H % 2 ? a[H / 2] : 0.5 * (a[H / 2 - 1] + a[H / 2]);
    qsort(dv, (size_t)H, sizeof *dv, dimval_cmp);
    for (int64_t i = 0; i < H && *n_dims < max; i++) {
        if (dv[i].v < floor_abs || dv[i].v < ratio * med) break;
        dims[(*n_dims)++] = dv[i].d;
    }
    avl__free(a);
    avl__free(dv);
    return AVL_OK;
}
