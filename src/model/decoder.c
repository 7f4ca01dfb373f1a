/* src/model/decoder.c: the Qwen2.5 decoder of the thinker, with a KV cache and hooks.
 *
 * Mirrors transformers' modeling_qwen2_5_omni.py (Qwen2_5OmniDecoderLayer, the thinker's text
 * model, Qwen2_5OmniRotaryEmbedding, apply_multimodal_rotary_pos_emb) as formulas:
 *   h = RMSNorm(x) · w_in;  q,k,v = h Wq^T + bq, ...;  q,k rotated by TMRoPE;
 *   x += softmax(q k^T / sqrt(d) + causal) v · Wo^T
 *   x += down(silu(gate(RMSNorm(x) · w_post)) * up(...))
 *   logits = lm_head(RMSNorm(x) · w_final)
 * Prefill runs in chunks of prefill_chunk positions so scratch memory stays bounded; each chunk
 * attends to everything cached before it, which is the same arithmetic as one long pass.
 * avl_run_forward_batch generalises this: the rows of a chunk may belong to several runs (a batch:
 * every product reads the weights once for all of them) and may sit at any ascending cache slots
 * (a run can compute only some positions when the others' keys and values were copied in).
 * Products are over all rows of a chunk; attention, RoPE and the hooks go per segment (a
 * run's consecutive slots). avl_run_forward is the one-item, append-only case.
 */
#include <math.h>
#include <string.h>

#include "base/internal.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "model/model_internal.h"


avl_status avl_run_new(const avl_model *m, int64_t max_positions, avl_run **out)
{
    *out = NULL;
    if (max_positions <= 0) return avl__err(AVL_E_ARG, "run: max_positions must be positive, got %lld",
                                            (long long)max_positions);
    avl_run *r = avl__calloc(1, sizeof *r);
    if (!r) return avl__err(AVL_E_NOMEM, "run: cannot allocate");
    r->m = m;
    r->max_pos = max_positions;
    r->chunk = m->prefill_chunk < max_positions ? m->prefill_chunk : max_positions;
    int64_t kd = m->nkv * m->hd, qd = m->nh * m->hd, c = r->chunk;
    r->k = avl__calloc((size_t)m->n_layers, sizeof *r->k);
    r->v = avl__calloc((size_t)m->n_layers, sizeof *r->v);
    bool ok = r->k && r->v;
    for (int64_t l = 0; ok && l < m->n_layers; l++) {
        r->k[l] = avl__malloc((size_t)(max_positions * kd) * sizeof(float));
        r->v[l] = avl__malloc((size_t)(max_positions * kd) * sizeof(float));
        ok = r->k[l] && r->v[l];
    }
    if (ok) {
        r->x = avl__malloc((size_t)(c * m->H) * sizeof(float));
        r->h = avl__malloc((size_t)(c * m->H) * sizeof(float));
        r->t = avl__malloc((size_t)(c * m->H) * sizeof(float));
        r->q = avl__malloc((size_t)(c * qd) * sizeof(float));
        r->kt = avl__malloc((size_t)(c * kd) * sizeof(float));
        r->vt = avl__malloc((size_t)(c * kd) * sizeof(float));
        r->ao = avl__malloc((size_t)(c * qd) * sizeof(float));
        r->g = avl__malloc((size_t)(c * m->F) * sizeof(float));
        r->u = avl__malloc((size_t)(c * m->F) * sizeof(float));
        r->cos = avl__malloc((size_t)(c * m->hd) * sizeof(float));
        r->sin = avl__malloc((size_t)(c * m->hd) * sizeof(float));
        ok = r->x && r->h && r->t && r->q && r->kt && r->vt && r->ao && r->g && r->u && r->cos && r->sin;
    }
    if (!ok) {
        avl_run_free(r);
        return avl__err(AVL_E_NOMEM, "run: cannot allocate a KV cache of %lld positions", (long long)max_positions);
    }
    *out = r;
    return AVL_OK;
}

void avl_run_free(avl_run *r)
{
    if (!r) return;
    for (int64_t l = 0; l < r->m->n_layers; l++) {
        if (r->k) avl__free(r->k[l]);
        if (r->v) avl__free(r->v[l]);
    }
    avl__free(r->k);
    avl__free(r->v);
    avl__free(r->x);
    avl__free(r->h);
    avl__free(r->t);
    avl__free(r->q);
    avl__free(r->kt);
    avl__free(r->vt);
    avl__free(r->ao);
    avl__free(r->g);
    avl__free(r->u);
    avl__free(r->cos);
    avl__free(r->sin);
    avl__free(r);
}

int64_t avl_run_length(const avl_run *r) { return r->len; }

avl_status avl_run_truncate(avl_run *r, int64_t keep)
{
    if (keep < 0 || keep > r->len)
        return avl__err(AVL_E_ARG, "run: cannot keep %lld of %lld cached positions", (long long)keep,
                        (long long)r->len);
    r->len = keep;
    return AVL_OK;
}

avl_status avl_run_copy_prefix(avl_run *dst, const avl_run *src, int64_t n)
{
    if (dst->m != src->m) return avl__err(AVL_E_ARG, "run: cannot copy a cache between runs of different models");
    if (n < 0 || n > src->len || n > dst->max_pos)
        return avl__err(AVL_E_ARG, "run: cannot copy %lld positions (source holds %lld, destination room %lld)",
                        (long long)n, (long long)src->len, (long long)dst->max_pos);
    const avl_model *m = src->m;
    size_t bytes = (size_t)(n * m->nkv * m->hd) * sizeof(float);
    if (dst != src)
        for (int64_t l = 0; l < m->n_layers; l++) {
            memcpy(dst->k[l], src->k[l], bytes);
            memcpy(dst->v[l], src->v[l], bytes);
        }
    dst->len = n;
    return AVL_OK;
}

avl_status avl_run_embed_tokens(const avl_model *m, const int32_t *ids, int64_t n, float *embeds)
{
    size_t es = avl__dtype_size(m->embed.dtype);
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->V)
            return avl__err(AVL_E_ARG, "embed: token id %d at position %lld is outside the vocabulary (%lld)", ids[i],
                            (long long)i, (long long)m->V);
        const uint8_t *row = (const uint8_t *)m->embed.data + (size_t)ids[i] * (size_t)m->embed.ld * es;
        float *dst = embeds + i * m->H;
        for (int64_t j = 0; j < m->H; j++) {
            uint16_t h16;
            switch (m->embed.dtype) {
            case AVL__DT_F32: memcpy(&dst[j], row + 4 * j, 4); break;
            case AVL__DT_BF16: memcpy(&h16, row + 2 * j, 2); dst[j] = avl__bf16_to_f32(h16); break;
            case AVL__DT_F16: memcpy(&h16, row + 2 * j, 2); dst[j] = avl__f16_to_f32(h16); break;
            }
        }
    }
    return AVL_OK;
}

/* cos/sin (n, hd) for positions pos (3, ld) columns 0..n-1: angle = float(p_axis) * inv_freq[i]
 * in fp32, the same for pair halves i and i + hd/2. */
static void rope_tables(const avl_model *m, const int64_t *pos, int64_t ld, int64_t n, float *cs, float *sn)
{
    int64_t half = m->hd / 2;
    for (int64_t r = 0; r < n; r++) {
        for (int64_t i = 0; i < half; i++) {
            float a = (float)pos[m->rope_axis[i] * ld + r] * m->inv_freq[i];
            float c = cosf(a), s = sinf(a);
            cs[r * m->hd + i] = cs[r * m->hd + i + half] = c;
            sn[r * m->hd + i] = sn[r * m->hd + i + half] = s;
        }
    }
}

typedef struct {
    const avl_hooks *hooks;
    int64_t p0;
} attn_tramp;

static void attn_trampoline(void *user, int layer, int64_t head, int64_t q_start, int64_t q_count, int64_t n_keys,
                            float *probs, const float *scores)
{
    const attn_tramp *t = user;
    t->hooks->attn(t->hooks->user, layer, head, t->p0 + q_start, q_count, n_keys, probs, scores);
}

static void site(const avl_hooks *hk, int layer, avl_site s, int64_t p0, int64_t n, int64_t dim, float *x)
{
    if (hk && hk->at_site && (!hk->wants || hk->wants(hk->user, layer, s))) hk->at_site(hk->user, layer, s, p0, n, dim, x);
}

/* A segment: rows [off, off+n) of the scratch, which belong to one item and sit in its run's
 * consecutive cache slots [slot0, slot0+n) (input rows [row0, row0+n) of the item). */
typedef struct {
    avl_batch_item *it;
    int64_t row0, off, slot0, n;
} segment;

/* Runs the rows of a chunk (segments sg[0..ns), n rows in all) through every layer, with the
 * scratch of run s; final_out (n, H) gets the final-norm output. Each segment's keys and values
 * go to its own run's cache before any attention of that layer, so rows of one run in one chunk
 * see each other causally exactly as in one long pass. */
static avl_status forward_rows(avl_run *s, const segment *sg, int64_t ns, int64_t n, float *final_out)
{
    const avl_model *m = s->m;
    const int64_t H = m->H, qd = m->nh * m->hd, kd = m->nkv * m->hd;
    const float eps = (float)m->cfg.text.rms_norm_eps;
    avl_status rc;
    for (int64_t i = 0; i < ns; i++) {
        const avl_batch_item *it = sg[i].it;
        memcpy(s->x + sg[i].off * H, it->embeds + sg[i].row0 * H, (size_t)(sg[i].n * H) * sizeof(float));
        rope_tables(m, it->pos + sg[i].row0, it->ld_pos, sg[i].n, s->cos + sg[i].off * m->hd,
                    s->sin + sg[i].off * m->hd);
    }
#define SITES(layer, which, buf)                                                                                   \
    for (int64_t i = 0; i < ns; i++)                                                                                \
        site(sg[i].it->hooks, layer, which, sg[i].slot0, sg[i].n, H, (buf) + sg[i].off * H)
    for (int l = 0; l < (int)m->n_layers; l++) {
        const avl__dec_layer *L = &m->layers[l];
        SITES(l, AVL_SITE_RESID, s->x);
        avl__rmsnorm(s->h, s->x, L->in_norm, n, H, eps);
        SITES(l, AVL_SITE_ATTN_IN, s->h);
        if ((rc = avl__gemm(m->be, n, s->h, H, &L->q, &L->qb, s->q, qd, false))) return rc;
        if ((rc = avl__gemm(m->be, n, s->h, H, &L->k, &L->kb, s->kt, kd, false))) return rc;
        if ((rc = avl__gemm(m->be, n, s->h, H, &L->v, &L->vb, s->vt, kd, false))) return rc;
        avl__rope(s->q, qd, n, m->nh, m->hd, s->cos, s->sin, m->hd);
        avl__rope(s->kt, kd, n, m->nkv, m->hd, s->cos, s->sin, m->hd);
        for (int64_t i = 0; i < ns; i++) {
            avl_run *r = sg[i].it->run;
            size_t bytes = (size_t)(sg[i].n * kd) * sizeof(float);
            memcpy(r->k[l] + sg[i].slot0 * kd, s->kt + sg[i].off * kd, bytes);
            memcpy(r->v[l] + sg[i].slot0 * kd, s->vt + sg[i].off * kd, bytes);
        }
        for (int64_t i = 0; i < ns; i++) {
            const avl_hooks *hk = sg[i].it->hooks;
            avl_run *r = sg[i].it->run;
            attn_tramp tr = {hk, sg[i].slot0};
            bool want_attn = hk && hk->attn && (!hk->wants_attn || hk->wants_attn(hk->user, l));
            avl__attn_params ap = {
                .n_heads = m->nh, .n_kv_heads = m->nkv, .head_dim = m->hd, .n_q = sg[i].n,
                .n_k = sg[i].slot0 + sg[i].n, .q_pos0 = sg[i].slot0, .q = s->q + sg[i].off * qd, .ldq = qd,
                .k = r->k[l], .ldk = kd, .v = r->v[l], .ldv = kd, .out = s->ao + sg[i].off * qd, .ldo = qd,
                .scale = 0.0f, .causal = true, .hook = want_attn ? attn_trampoline : NULL, .hook_user = &tr,
                .layer = l,
            };
            if ((rc = avl__attention(&ap))) return rc;
        }
        if ((rc = avl__gemm(m->be, n, s->ao, qd, &L->o, NULL, s->t, H, false))) return rc;
        SITES(l, AVL_SITE_ATTN_OUT, s->t);
        for (int64_t i = 0; i < n * H; i++) s->x[i] += s->t[i];
        avl__rmsnorm(s->h, s->x, L->post_norm, n, H, eps);
        if ((rc = avl__gemm(m->be, n, s->h, H, &L->gate, NULL, s->g, m->F, false))) return rc;
        if ((rc = avl__gemm(m->be, n, s->h, H, &L->up, NULL, s->u, m->F, false))) return rc;
        avl__silu_mul(s->g, s->g, s->u, n * m->F);
        if ((rc = avl__gemm(m->be, n, s->g, m->F, &L->down, NULL, s->t, H, false))) return rc;
        SITES(l, AVL_SITE_MLP_OUT, s->t);
        for (int64_t i = 0; i < n * H; i++) s->x[i] += s->t[i];
    }
    avl__rmsnorm(final_out, s->x, m->final_norm, n, H, eps);
    SITES((int)m->n_layers, AVL_SITE_FINAL, final_out);
#undef SITES
    for (int64_t i = 0; i < ns; i++) {
        avl_run *r = sg[i].it->run;
        if (sg[i].slot0 + sg[i].n > r->len) r->len = sg[i].slot0 + sg[i].n;
    }
    return AVL_OK;
}

/* The cache slot of row j of an item whose run held base positions when the call began. */
static int64_t slot_of(const avl_batch_item *it, int64_t base, int64_t j) { return it->slots ? it->slots[j] : base + j; }

static avl_status check_item(const avl_batch_item *it, int64_t k, const avl_model *m)
{
    if (!it->run) return avl__err(AVL_E_ARG, "run: batch item %lld has no run", (long long)k);
    if (it->run->m != m) return avl__err(AVL_E_ARG, "run: batch item %lld belongs to another model", (long long)k);
    if (it->n < 0 || it->n_logits < 0 || it->n_logits > it->n)
        return avl__err(AVL_E_ARG, "run: batch item %lld: bad sizes n=%lld n_logits=%lld", (long long)k,
                        (long long)it->n, (long long)it->n_logits);
    if (it->n > 0 && (!it->embeds || !it->pos || it->ld_pos < it->n))
        return avl__err(AVL_E_ARG, "run: batch item %lld: embeds and positions (3, ld_pos >= n) are required",
                        (long long)k);
    const avl_run *r = it->run;
    if (!it->slots) {
        if (r->len + it->n > r->max_pos)
            return avl__err(AVL_E_ARG, "run: %lld cached + %lld new positions exceed the cache of %lld",
                            (long long)r->len, (long long)it->n, (long long)r->max_pos);
        return AVL_OK;
    }
    for (int64_t j = 0; j < it->n; j++) {
        if (it->slots[j] < 0 || it->slots[j] >= r->max_pos || (j > 0 && it->slots[j] <= it->slots[j - 1]))
            return avl__err(AVL_E_ARG,
                            "run: batch item %lld: slot %lld of row %lld is not strictly ascending within the "
                            "cache of %lld",
                            (long long)k, (long long)it->slots[j], (long long)j, (long long)r->max_pos);
    }
    return AVL_OK;
}

/* The rows of segment g that want logits: input rows [*lo, *hi) of its item (empty: lo >= hi). */
static void wanted_rows(const segment *g, int64_t *lo, int64_t *hi)
{
    const avl_batch_item *it = g->it;
    int64_t first = it->n - it->n_logits;
    *lo = it->logits && it->n_logits > 0 ? (first > g->row0 ? first : g->row0) : 0;
    *hi = it->logits && it->n_logits > 0 ? g->row0 + g->n : 0;
}

/* Logits of the rows of this chunk that want them. out_h (n, H) is the final-norm output; rows
 * of one item are contiguous, so each segment's wanted rows are one block. Blocks of several
 * items that are small go through one product (the weights of lm_head are read once for a
 * decode step of a whole batch). */
static avl_status chunk_logits(avl_run *s, const segment *sg, int64_t ns, float *out_h, float **tmp,
                               int64_t *tmp_rows)
{
    const avl_model *m = s->m;
    const int64_t H = m->H, V = m->V;
    int64_t nb = 0, rows = 0, lo, hi;
    for (int64_t i = 0; i < ns; i++) {
        wanted_rows(&sg[i], &lo, &hi);
        if (lo < hi) nb++, rows += hi - lo;
    }
    if (nb == 0) return AVL_OK;
    if (nb == 1 || rows > 16) { /* one product per block, straight into each item's logits */
        for (int64_t i = 0; i < ns; i++) {
            wanted_rows(&sg[i], &lo, &hi);
            if (lo >= hi) continue;
            const avl_batch_item *it = sg[i].it;
            avl_status rc = avl__gemm(m->be, hi - lo, out_h + (sg[i].off + lo - sg[i].row0) * H, H, &m->lm_head,
                                      NULL, it->logits + (lo - (it->n - it->n_logits)) * V, V, false);
            if (rc) return rc;
        }
        return AVL_OK;
    }
    /* few rows of several items: gather them (ascending offsets, so in place), one product */
    if (*tmp_rows < rows) {
        float *t = avl__realloc(*tmp, (size_t)(rows * V) * sizeof(float));
        if (!t) return avl__err(AVL_E_NOMEM, "run: cannot allocate logits of %lld rows", (long long)rows);
        *tmp = t;
        *tmp_rows = rows;
    }
    int64_t at = 0;
    for (int64_t i = 0; i < ns; i++) {
        wanted_rows(&sg[i], &lo, &hi);
        if (lo >= hi) continue;
        int64_t off = sg[i].off + lo - sg[i].row0;
        if (off != at) memmove(out_h + at * H, out_h + off * H, (size_t)((hi - lo) * H) * sizeof(float));
        at += hi - lo;
    }
    avl_status rc = avl__gemm(m->be, rows, out_h, H, &m->lm_head, NULL, *tmp, V, false);
    if (rc) return rc;
    at = 0;
    for (int64_t i = 0; i < ns; i++) {
        wanted_rows(&sg[i], &lo, &hi);
        if (lo >= hi) continue;
        const avl_batch_item *it = sg[i].it;
        memcpy(it->logits + (lo - (it->n - it->n_logits)) * V, *tmp + at * V, (size_t)((hi - lo) * V) * sizeof(float));
        at += hi - lo;
    }
    return AVL_OK;
}

avl_status avl_run_forward_batch(avl_batch_item *items, int64_t n_items)
{
    if (n_items <= 0 || !items) return avl__err(AVL_E_ARG, "run: a batch needs at least one item");
    const avl_model *m = items[0].run ? items[0].run->m : NULL;
    if (!m) return avl__err(AVL_E_ARG, "run: batch item 0 has no run");
    avl_status rc;
    for (int64_t k = 0; k < n_items; k++) {
        if ((rc = check_item(&items[k], k, m))) return rc;
        for (int64_t j = 0; j < k; j++)
            if (items[j].run == items[k].run)
                return avl__err(AVL_E_ARG, "run: batch items %lld and %lld share a run", (long long)j, (long long)k);
    }
    avl_run *s = items[0].run; /* whose scratch the rows go through */
    const int64_t chunk = s->chunk;
    int64_t *base = avl__malloc((size_t)n_items * sizeof *base);
    segment *sg = avl__malloc((size_t)chunk * sizeof *sg);
    if (!base || !sg) {
        avl__free(base), avl__free(sg);
        return avl__err(AVL_E_NOMEM, "run: cannot allocate a batch of %lld items", (long long)n_items);
    }
    for (int64_t k = 0; k < n_items; k++) base[k] = items[k].run->len;
    float *tmp = NULL;
    int64_t tmp_rows = 0;
    rc = AVL_OK;
    /* walk the rows of all items in order, cutting chunks of at most `chunk` rows into segments */
    int64_t k = 0, j = 0;
    while (!rc && k < n_items) {
        int64_t ns = 0, n = 0;
        while (n < chunk && k < n_items) {
            avl_batch_item *it = &items[k];
            if (j >= it->n) { k++, j = 0; continue; }
            int64_t s0 = slot_of(it, base[k], j), cnt = 1;
            while (n + cnt < chunk && j + cnt < it->n && slot_of(it, base[k], j + cnt) == s0 + cnt) cnt++;
            sg[ns++] = (segment){it, j, n, s0, cnt};
            n += cnt, j += cnt;
        }
        if (n == 0) break;
        /* the final-norm output reuses h; logits are taken from it */
        rc = forward_rows(s, sg, ns, n, s->h);
        if (!rc) rc = chunk_logits(s, sg, ns, s->h, &tmp, &tmp_rows);
    }
    avl__free(tmp);
    avl__free(sg);
    avl__free(base);
    return rc;
}

avl_status avl_run_copy_positions(avl_run *dst, const avl_run *src, const int64_t *slots, int64_t n)
{
    if (dst->m != src->m) return avl__err(AVL_E_ARG, "run: cannot copy a cache between runs of different models");
    for (int64_t j = 0; j < n; j++)
        if (slots[j] < 0 || slots[j] >= src->len || slots[j] >= dst->max_pos)
            return avl__err(AVL_E_ARG, "run: cannot copy slot %lld (source holds %lld, destination room %lld)",
                            (long long)slots[j], (long long)src->len, (long long)dst->max_pos);
    const avl_model *m = src->m;
    const int64_t kd = m->nkv * m->hd;
    for (int64_t l = 0; l < m->n_layers; l++)
        for (int64_t j = 0; j < n; j++) {
            memcpy(dst->k[l] + slots[j] * kd, src->k[l] + slots[j] * kd, (size_t)kd * sizeof(float));
            memcpy(dst->v[l] + slots[j] * kd, src->v[l] + slots[j] * kd, (size_t)kd * sizeof(float));
        }
    for (int64_t j = 0; j < n; j++)
        if (slots[j] + 1 > dst->len) dst->len = slots[j] + 1;
    return AVL_OK;
}

avl_status avl_run_forward(avl_run *r, const float *embeds, const int64_t *pos, int64_t ld_pos, int64_t n,
                           const avl_hooks *hooks, float *logits, int64_t n_logits)
{
    if (n < 0 || n_logits < 0 || n_logits > n)
        return avl__err(AVL_E_ARG, "run: bad sizes n=%lld n_logits=%lld", (long long)n, (long long)n_logits);
    if (n == 0) return AVL_OK;
    avl_batch_item it = {.run = r, .embeds = embeds, .pos = pos, .ld_pos = ld_pos, .n = n, .hooks = hooks,
                         .logits = logits, .n_logits = logits ? n_logits : 0};
    return avl_run_forward_batch(&it, 1);
}
