/* src/interp/plan.c: a plan composes captures, patches, attention edits and observers into
 * one avl_hooks (contract in include/avlens/interp.h; ARCHITECTURE.md "plan").
 *
 * Bookkeeping is per position of the token map, so each hook call costs O(rows it sees):
 * captures and patches keep a slot table (position -> row of the capture), edits keep their key
 * lists and a query mask, observers a group per position and int64 fixed-point sums that are
 * added atomically (integer addition is associative, so the sums do not depend on which thread
 * ran which block of queries, nor in which order).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "model/model_internal.h"
#include "avlens/interp.h"
#include "interp/interp_internal.h"

#define FIX_SCALE 0x1p40 /* observer sums: units of 2^-40 */
enum { KEY_TILE = 256 }; /* keys per stack tile of an observer's partial sums */

typedef struct {
    avl_capture pub;
    int64_t *pos;   /* (n) owned copy of the positions */
    int32_t *slot;  /* (L) row of each position in the capture, -1 if not captured */
} cap_t;

typedef struct {
    avl_site site;
    int l0, l1;
    const avl_capture *src;
    int32_t *src_row; /* (L) row of src to copy into each position, -1 if not patched */
} patch_t;

typedef struct {
    avl_edit_kind kind;
    float c;
    int l0, l1;
    uint8_t *head_on;  /* (nh) */
    uint8_t *q_on;     /* (L) or NULL: every prefill query */
    int64_t q_from;    /* -1: none */
    int64_t *keys;     /* (n_keys) ascending */
    int64_t n_keys;
} edit_t;

typedef struct {
    avl_site site;
    int l0, l1;
    avl_site_fn fn;
    void *user;
} sitefn_t;

struct avl_received {
    int l0, l1;
    int64_t L, nh;
    _Atomic int64_t *sum; /* (l1 - l0, AVL_QG_COUNT, L) fixed-point sums over heads and queries */
    int64_t *count;       /* (AVL_QG_COUNT, L) prefill queries of each group after each key */
};

struct avl_plan {
    const avl_model *m;
    const avl_token_map *map;
    int64_t L, H, nh;
    int n_layers;
    int8_t *group;        /* (L) avl_qgroup of each position */
    cap_t **caps;
    int n_caps;
    patch_t *patches;
    int n_patches;
    edit_t *edits;
    int n_edits;
    avl_received **obs;
    int n_obs;
    sitefn_t *fns;
    int n_fns;
    avl_hooks hooks;
};

/* ---- token sets ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

avl_status avl_tokset_from_list(const int64_t *pos, int64_t n, avl_tokset *out)
{
    out->n = 0;
    out->pos = NULL;
    if (n < 0) return avl__err(AVL_E_ARG, "token set: negative size %lld", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (pos[i] < 0) return avl__err(AVL_E_ARG, "token set: negative position %lld", (long long)pos[i]);
    int64_t *p = avl__malloc((size_t)(n ? n : 1) * sizeof *p);
    if (!p) return avl__err(AVL_E_NOMEM, "token set: cannot allocate %lld positions", (long long)n);
    if (n) memcpy(p, pos, (size_t)n * sizeof *p);
    qsort(p, (size_t)n, sizeof *p, cmp_i64);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (k == 0 || p[k - 1] != p[i]) p[k++] = p[i];
    out->n = k;
    out->pos = p;
    return AVL_OK;
}

avl_status avl_tokset_of_kind(const avl_token_map *map, avl_tok_kind kind, avl_tokset *out)
{
    out->n = 0;
    out->pos = avl__malloc((size_t)(map->n ? map->n : 1) * sizeof *out->pos);
    if (!out->pos) return avl__err(AVL_E_NOMEM, "token set: cannot allocate %lld positions", (long long)map->n);
    for (int64_t i = 0; i < map->n; i++)
        if (map->tok[i].kind == (int8_t)kind) out->pos[out->n++] = i;
    return AVL_OK;
}

bool avl_tokset_contains(const avl_tokset *s, int64_t pos)
{
    int64_t lo = 0, hi = s->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s->pos[mid] < pos) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n && s->pos[lo] == pos;
}

void avl_tokset_free(avl_tokset *s)
{
    if (!s) return;
    avl__free(s->pos);
    s->pos = NULL;
    s->n = 0;
}

/* ---- hooks ---- */

static bool in_range(int l, int l0, int l1) { return l >= l0 && l < l1; }

static bool hk_wants(void *u, int layer, avl_site site)
{
    const avl_plan *p = u;
    for (int i = 0; i < p->n_patches; i++)
        if (p->patches[i].site == site && in_range(layer, p->patches[i].l0, p->patches[i].l1)) return true;
    for (int i = 0; i < p->n_caps; i++)
        if (p->caps[i]->pub.site == site && in_range(layer, p->caps[i]->pub.layer0, p->caps[i]->pub.layer1))
            return true;
    for (int i = 0; i < p->n_fns; i++)
        if (p->fns[i].site == site && in_range(layer, p->fns[i].l0, p->fns[i].l1)) return true;
    return false;
}

static void hk_at_site(void *u, int layer, avl_site site, int64_t p0, int64_t n, int64_t dim, float *x)
{
    const avl_plan *p = u;
    int64_t hi = p0 + n < p->L ? p0 + n : p->L; /* generated positions are not the map's */
    for (int i = 0; i < p->n_patches; i++) {
        const patch_t *pt = &p->patches[i];
        if (pt->site != site || !in_range(layer, pt->l0, pt->l1)) continue;
        const float *src = avl_capture_layer(pt->src, layer);
        for (int64_t q = p0; q < hi; q++)
            if (pt->src_row[q] >= 0)
                memcpy(x + (q - p0) * dim, src + (int64_t)pt->src_row[q] * dim, (size_t)dim * sizeof(float));
    }
    for (int i = 0; i < p->n_caps; i++) {
        const cap_t *c = p->caps[i];
        if (c->pub.site != site || !in_range(layer, c->pub.layer0, c->pub.layer1)) continue;
        float *dst = c->pub.data + (int64_t)(layer - c->pub.layer0) * c->pub.n * dim;
        for (int64_t q = p0; q < hi; q++)
            if (c->slot[q] >= 0) memcpy(dst + (int64_t)c->slot[q] * dim, x + (q - p0) * dim, (size_t)dim * sizeof(float));
    }
    for (int i = 0; i < p->n_fns; i++) {
        const sitefn_t *f = &p->fns[i];
        if (f->site == site && in_range(layer, f->l0, f->l1) && hi > p0) f->fn(f->user, layer, p0, hi - p0, dim, x);
    }
}

static bool hk_wants_attn(void *u, int layer)
{
    const avl_plan *p = u;
    for (int i = 0; i < p->n_edits; i++)
        if (in_range(layer, p->edits[i].l0, p->edits[i].l1)) return true;
    for (int i = 0; i < p->n_obs; i++)
        if (in_range(layer, p->obs[i]->l0, p->obs[i]->l1)) return true;
    return false;
}

static bool edit_applies(const avl_plan *p, const edit_t *e, int layer, int64_t head, int64_t q)
{
    if (!in_range(layer, e->l0, e->l1) || !e->head_on[head]) return false;
    if (e->q_from >= 0 && q >= e->q_from) return true;
    if (q >= p->L) return false;
    return e->q_on ? e->q_on[q] != 0 : true;
}

/* The attention kernel's row softmax (src/kernels/attention.c, run_task), in place over s. */
static void softmax_like_kernel(float *s, int64_t nk)
{
    float mx = -INFINITY;
    for (int64_t j = 0; j < nk; j++)
        if (s[j] != -INFINITY) mx = s[j] > mx ? s[j] : mx;
    if (mx == -INFINITY) {
        memset(s, 0, sizeof(float) * (size_t)nk);
        return;
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < nk; j++) {
        s[j] = s[j] == -INFINITY ? 0.0f : expf(s[j] - mx);
        sum += s[j];
    }
    float inv = 1.0f / sum;
    for (int64_t j = 0; j < nk; j++) s[j] *= inv;
}

static void observe(avl_plan *p, avl_received *o, int layer, int64_t q0, int64_t nq, int64_t nk, const float *probs)
{
    _Atomic int64_t *sum = o->sum + (int64_t)(layer - o->l0) * AVL_QG_COUNT * o->L;
    int64_t kmax = nk < p->L ? nk : p->L;
    int64_t part[AVL_QG_COUNT][KEY_TILE]; /* this block's sums over a tile of keys */
    for (int64_t k0 = 0; k0 < kmax; k0 += KEY_TILE) {
        int64_t k1 = k0 + KEY_TILE < kmax ? k0 + KEY_TILE : kmax;
        bool any[AVL_QG_COUNT] = {false};
        memset(part, 0, sizeof part);
        for (int64_t r = 0; r < nq; r++) {
            int64_t q = q0 + r;
            if (q >= p->L || q <= k0) continue; /* generated queries, or no key of the tile before q */
            int g = p->group[q];
            const float *pr = probs + r * nk;
            int64_t end = q < k1 ? q : k1; /* keys k < q only */
            for (int64_t k = k0; k < end; k++) part[g][k - k0] += (int64_t)llrint((double)pr[k] * FIX_SCALE);
            any[g] = true;
        }
        for (int g = 0; g < AVL_QG_COUNT; g++) {
            if (!any[g]) continue;
            for (int64_t k = k0; k < k1; k++)
                if (part[g][k - k0]) atomic_fetch_add_explicit(&sum[g * o->L + k], part[g][k - k0], memory_order_relaxed);
        }
    }
}

static void hk_attn(void *u, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                    const float *scores)
{
    avl_plan *p = u;
    for (int64_t r = 0; r < nq; r++) {
        int64_t q = q0 + r;
        float *pr = probs + r * nk;
        const float *sc = scores + r * nk;
        bool pre = false;
        for (int i = 0; i < p->n_edits; i++) {
            const edit_t *e = &p->edits[i];
            if (e->kind != AVL_EDIT_PRE_ABS || !edit_applies(p, e, layer, head, q)) continue;
            if (!pre) memcpy(pr, sc, sizeof(float) * (size_t)nk);
            pre = true;
            for (int64_t j = 0; j < e->n_keys && e->keys[j] < nk; j++) {
                float *a = &pr[e->keys[j]];
                if (*a != -INFINITY) *a = *a + e->c * fabsf(*a);
            }
        }
        if (pre) softmax_like_kernel(pr, nk);
        for (int i = 0; i < p->n_edits; i++) {
            const edit_t *e = &p->edits[i];
            if (e->kind == AVL_EDIT_PRE_ABS || !edit_applies(p, e, layer, head, q)) continue;
            float before = 0.0f;
            if (e->kind == AVL_EDIT_POST_RENORM)
                for (int64_t j = 0; j < nk; j++) before += pr[j];
            for (int64_t j = 0; j < e->n_keys && e->keys[j] < nk; j++) pr[e->keys[j]] *= e->c;
            if (e->kind == AVL_EDIT_POST_RENORM) {
                float after = 0.0f;
                for (int64_t j = 0; j < nk; j++) after += pr[j];
                if (after != 0.0f) {
                    float f = before / after;
                    for (int64_t j = 0; j < nk; j++) pr[j] *= f;
                }
            }
        }
    }
    for (int i = 0; i < p->n_obs; i++)
        if (in_range(layer, p->obs[i]->l0, p->obs[i]->l1)) observe(p, p->obs[i], layer, q0, nq, nk, probs);
}

/* ---- the plan ---- */

avl_status avl_plan_new(const avl_model *m, const avl_token_map *map, avl_plan **out)
{
    *out = NULL;
    avl_plan *p = avl__calloc(1, sizeof *p);
    if (!p) return avl__err(AVL_E_NOMEM, "plan: cannot allocate");
    p->m = m;
    p->map = map;
    p->L = map->n;
    p->H = m->H;
    p->nh = m->nh;
    p->n_layers = (int)m->n_layers;
    p->group = avl__malloc((size_t)(p->L ? p->L : 1));
    if (!p->group) {
        avl__free(p);
        return avl__err(AVL_E_NOMEM, "plan: cannot allocate the group table of %lld positions", (long long)map->n);
    }
    for (int64_t i = 0; i < p->L; i++) {
        int k = map->tok[i].kind;
        p->group[i] = (int8_t)(k == AVL_TOK_VIDEO ? AVL_QG_VIDEO : k == AVL_TOK_AUDIO ? AVL_QG_AUDIO : AVL_QG_TEXT);
    }
    p->hooks.user = p;
    *out = p;
    return AVL_OK;
}

void avl_plan_free(avl_plan *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_caps; i++) {
        avl__free(p->caps[i]->pos);
        avl__free(p->caps[i]->slot);
        avl__free(p->caps[i]->pub.data);
        avl__free(p->caps[i]);
    }
    avl__free(p->caps);
    for (int i = 0; i < p->n_patches; i++) avl__free(p->patches[i].src_row);
    avl__free(p->patches);
    for (int i = 0; i < p->n_edits; i++) {
        avl__free(p->edits[i].head_on);
        avl__free(p->edits[i].q_on);
        avl__free(p->edits[i].keys);
    }
    avl__free(p->edits);
    for (int i = 0; i < p->n_obs; i++) {
        avl__free((void *)p->obs[i]->sum);
        avl__free(p->obs[i]->count);
        avl__free(p->obs[i]);
    }
    avl__free(p->obs);
    avl__free(p->fns);
    avl__free(p->group);
    avl__free(p);
}

const avl_hooks *avl_plan_hooks(avl_plan *p)
{
    bool sites = p->n_caps || p->n_patches || p->n_fns, attn = p->n_edits || p->n_obs;
    if (!sites && !attn) return NULL;
    p->hooks.wants = sites ? hk_wants : NULL;
    p->hooks.at_site = sites ? hk_at_site : NULL;
    p->hooks.wants_attn = attn ? hk_wants_attn : NULL;
    p->hooks.attn = attn ? hk_attn : NULL;
    return &p->hooks;
}

static avl_status check_layers(const avl_plan *p, const char *what, avl_site site, int l0, int l1)
{
    if (site < 0 || site >= AVL_SITE_COUNT) return avl__err(AVL_E_ARG, "plan: %s: unknown site %d", what, (int)site);
    if (site == AVL_SITE_FINAL) {
        if (l0 != p->n_layers || l1 != p->n_layers + 1)
            return avl__err(AVL_E_ARG, "plan: %s: the FINAL site is layer %d only (layers [%d, %d))", what, p->n_layers,
                            p->n_layers, p->n_layers + 1);
        return AVL_OK;
    }
    if (l0 < 0 || l1 <= l0 || l1 > p->n_layers)
        return avl__err(AVL_E_ARG, "plan: %s: layers [%d, %d) outside 0..%d", what, l0, l1, p->n_layers);
    return AVL_OK;
}

static avl_status check_set(const avl_plan *p, const char *what, const avl_tokset *s)
{
    for (int64_t i = 0; i < s->n; i++)
        if (s->pos[i] < 0 || s->pos[i] >= p->L)
            return avl__err(AVL_E_ARG, "plan: %s: position %lld outside the sequence of %lld", what,
                            (long long)s->pos[i], (long long)p->L);
    return AVL_OK;
}

static avl_status grow(void **arr, int n, size_t size)
{
    void *q = avl__realloc(*arr, (size_t)(n + 1) * size);
    if (!q) return avl__err(AVL_E_NOMEM, "plan: cannot grow");
    *arr = q;
    return AVL_OK;
}

const float *avl_capture_layer(const avl_capture *c, int layer)
{
    if (!c || layer < c->layer0 || layer >= c->layer1) return NULL;
    return c->data + (int64_t)(layer - c->layer0) * c->n * c->dim;
}

avl_status avl_plan_capture(avl_plan *p, avl_site site, int layer0, int layer1, const avl_tokset *tokens,
                            avl_capture **out)
{
    *out = NULL;
    avl_status rc = check_layers(p, "capture", site, layer0, layer1);
    if (rc || (tokens && (rc = check_set(p, "capture", tokens)))) return rc;
    if ((rc = grow((void **)&p->caps, p->n_caps, sizeof *p->caps))) return rc;
    int64_t n = tokens ? tokens->n : p->L;
    cap_t *c = avl__calloc(1, sizeof *c);
    if (c) {
        c->pos = avl__malloc((size_t)(n ? n : 1) * sizeof *c->pos);
        c->slot = avl__malloc((size_t)(p->L ? p->L : 1) * sizeof *c->slot);
        c->pub.data = avl__calloc((size_t)((layer1 - layer0) * n * p->H + 1), sizeof(float));
    }
    if (!c || !c->pos || !c->slot || !c->pub.data) {
        if (c) {
            avl__free(c->pos);
            avl__free(c->slot);
            avl__free(c->pub.data);
        }
        avl__free(c);
        return avl__err(AVL_E_NOMEM, "plan: cannot allocate a capture of %d layers x %lld positions", layer1 - layer0,
                        (long long)n);
    }
    for (int64_t i = 0; i < p->L; i++) c->slot[i] = -1;
    for (int64_t i = 0; i < n; i++) {
        c->pos[i] = tokens ? tokens->pos[i] : i;
        c->slot[c->pos[i]] = (int32_t)i;
    }
    c->pub.site = site;
    c->pub.layer0 = layer0;
    c->pub.layer1 = layer1;
    c->pub.n = n;
    c->pub.pos = c->pos;
    c->pub.dim = p->H;
    p->caps[p->n_caps++] = c;
    *out = &c->pub;
    return AVL_OK;
}

avl_status avl_plan_patch(avl_plan *p, avl_site site, int layer0, int layer1, const avl_tokset *tokens,
                          const avl_capture *src)
{
    avl_status rc = check_layers(p, "patch", site, layer0, layer1);
    if (rc || (rc = check_set(p, "patch", tokens))) return rc;
    if (!src || src->site != site || src->dim != p->H)
        return avl__err(AVL_E_ARG, "plan: patch: the source capture is not of the same site and width");
    if (layer0 < src->layer0 || layer1 > src->layer1)
        return avl__err(AVL_E_ARG, "plan: patch: layers [%d, %d) but the source holds [%d, %d)", layer0, layer1,
                        src->layer0, src->layer1);
    int32_t *row = avl__malloc((size_t)(p->L ? p->L : 1) * sizeof *row);
    if (!row) return avl__err(AVL_E_NOMEM, "plan: cannot allocate a patch");
    for (int64_t i = 0; i < p->L; i++) row[i] = -1;
    int64_t j = 0;
    for (int64_t i = 0; i < tokens->n; i++) {
        while (j < src->n && src->pos[j] < tokens->pos[i]) j++;
        if (j == src->n || src->pos[j] != tokens->pos[i]) {
            avl__free(row);
            return avl__err(AVL_E_ARG, "plan: patch: position %lld is not in the source capture",
                            (long long)tokens->pos[i]);
        }
        row[tokens->pos[i]] = (int32_t)j;
    }
    if ((rc = grow((void **)&p->patches, p->n_patches, sizeof *p->patches))) {
        avl__free(row);
        return rc;
    }
    p->patches[p->n_patches++] = (patch_t){.site = site, .l0 = layer0, .l1 = layer1, .src = src, .src_row = row};
    return AVL_OK;
}

avl_status avl_plan_on_site(avl_plan *p, avl_site site, int layer0, int layer1, avl_site_fn fn, void *user)
{
    avl_status rc = check_layers(p, "site observer", site, layer0, layer1);
    if (rc) return rc;
    if (!fn) return avl__err(AVL_E_ARG, "plan: site observer without a function");
    if ((rc = grow((void **)&p->fns, p->n_fns, sizeof *p->fns))) return rc;
    p->fns[p->n_fns++] = (sitefn_t){.site = site, .l0 = layer0, .l1 = layer1, .fn = fn, .user = user};
    return AVL_OK;
}

avl_status avl_plan_edit_attn(avl_plan *p, const avl_attn_edit *e)
{
    if (e->kind < AVL_EDIT_PRE_ABS || e->kind > AVL_EDIT_POST_RENORM)
        return avl__err(AVL_E_ARG, "plan: attention edit: unknown kind %d", (int)e->kind);
    avl_status rc = check_layers(p, "attention edit", AVL_SITE_RESID, e->layer0, e->layer1);
    if (rc) return rc;
    if (!e->keys) return avl__err(AVL_E_ARG, "plan: attention edit: no key set");
    for (int i = 0; i < (e->heads ? e->n_heads : 0); i++)
        if (e->heads[i] < 0 || e->heads[i] >= p->nh)
            return avl__err(AVL_E_ARG, "plan: attention edit: head %lld outside 0..%lld", (long long)e->heads[i],
                            (long long)p->nh - 1);
    if (e->queries && (rc = check_set(p, "attention edit queries", e->queries))) return rc;
    for (int64_t i = 0; i < e->keys->n; i++)
        if (e->keys->pos[i] < 0) return avl__err(AVL_E_ARG, "plan: attention edit: negative key position");
    edit_t t = {.kind = e->kind, .c = (float)e->c, .l0 = e->layer0, .l1 = e->layer1, .q_from = e->queries_from,
                .n_keys = e->keys->n};
    t.head_on = avl__calloc((size_t)p->nh, 1);
    t.keys = avl__malloc((size_t)(e->keys->n ? e->keys->n : 1) * sizeof *t.keys);
    if (e->queries) t.q_on = avl__calloc((size_t)(p->L ? p->L : 1), 1);
    if (!t.head_on || !t.keys || (e->queries && !t.q_on) ||
        grow((void **)&p->edits, p->n_edits, sizeof *p->edits)) {
        avl__free(t.head_on);
        avl__free(t.keys);
        avl__free(t.q_on);
        return avl__err(AVL_E_NOMEM, "plan: cannot allocate an attention edit");
    }
    for (int64_t h = 0; h < p->nh; h++) t.head_on[h] = e->heads ? 0 : 1;
    for (int i = 0; i < (e->heads ? e->n_heads : 0); i++) t.head_on[e->heads[i]] = 1;
    if (e->queries)
        for (int64_t i = 0; i < e->queries->n; i++) t.q_on[e->queries->pos[i]] = 1;
    if (e->keys->n) memcpy(t.keys, e->keys->pos, (size_t)e->keys->n * sizeof *t.keys);
    qsort(t.keys, (size_t)t.n_keys, sizeof *t.keys, cmp_i64);
    p->edits[p->n_edits++] = t;
    return AVL_OK;
}

avl_status avl_plan_observe_received(avl_plan *p, int layer0, int layer1, avl_received **out)
{
    *out = NULL;
    avl_status rc = check_layers(p, "observer", AVL_SITE_RESID, layer0, layer1);
    if (rc) return rc;
    avl_received *o = avl__calloc(1, sizeof *o);
    if (o) {
        o->sum = avl__calloc((size_t)((layer1 - layer0) * AVL_QG_COUNT * p->L + 1), sizeof *o->sum);
        o->count = avl__calloc((size_t)(AVL_QG_COUNT * p->L + 1), sizeof *o->count);
    }
    if (!o || !o->sum || !o->count || grow((void **)&p->obs, p->n_obs, sizeof *p->obs)) {
        if (o) {
            avl__free((void *)o->sum);
            avl__free(o->count);
        }
        avl__free(o);
        return avl__err(AVL_E_NOMEM, "plan: cannot allocate an observer of %d layers x %lld keys", layer1 - layer0,
                        (long long)p->L);
    }
    o->l0 = layer0;
    o->l1 = layer1;
    o->L = p->L;
    o->nh = p->nh;
    /* count[g][k] = queries of group g at positions > k: suffix sums */
    int64_t run[AVL_QG_COUNT] = {0};
    for (int64_t k = p->L - 1; k >= 0; k--) {
        for (int g = 0; g < AVL_QG_COUNT; g++) o->count[g * p->L + k] = run[g];
        run[p->group[k]]++;
    }
    p->obs[p->n_obs++] = o;
    *out = o;
    return AVL_OK;
}

double avl_received_mean(const avl_received *r, int layer, avl_qgroup g, int64_t key)
{
    if (!r || layer < r->l0 || layer >= r->l1 || g < 0 || g >= AVL_QG_COUNT || key < 0 || key >= r->L) return NAN;
    int64_t cnt = r->count[g * r->L + key];
    if (cnt == 0) return 0.0;
    int64_t s = atomic_load(&r->sum[((int64_t)(layer - r->l0) * AVL_QG_COUNT + g) * r->L + key]);
    return (double)s / FIX_SCALE / ((double)cnt * (double)r->nh);
}

int64_t avl_received_count(const avl_received *r, avl_qgroup g, int64_t key)
{
    if (!r || g < 0 || g >= AVL_QG_COUNT || key < 0 || key >= r->L) return 0;
    return r->count[g * r->L + key];
}

void avl__plan_geometry(const avl_plan *p, int *n_layers, int64_t *L, int64_t *H)
{
    *n_layers = p->n_layers;
    *L = p->L;
    *H = p->H;
}

void avl_received_layers(const avl_received *r, int *layer0, int *layer1)
{
    *layer0 = r->l0;
    *layer1 = r->l1;
}
