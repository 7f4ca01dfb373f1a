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
        r->ao = avl__malloc((size_t)(c * qd) * sizeof(float));
        r->g = avl__malloc((size_t)(c * m->F) * sizeof(float));
        r->u = avl__malloc((size_t)(c * m->F) * sizeof(float));
        r->cos = avl__malloc((size_t)(c * m->hd) * sizeof(float));
        r->sin = avl__malloc((size_t)(c * m->hd) * sizeof(float));
        ok = r->x && r->h && r->t && r->q && r->ao && r->g && r->u && r->cos && r->sin;
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

static avl_status forward_chunk(avl_run *r, const float *embeds, const int64_t *pos, int64_t ld_pos, int64_t n,
                                const avl_hooks *hk, float *final_out)
{
    const avl_model *m = r->m;
    const int64_t H = m->H, qd = m->nh * m->hd, kd = m->nkv * m->hd, p0 = r->len;
    avl_status rc;
    memcpy(r->x, embeds, (size_t)(n * H) * sizeof(float));
    rope_tables(m, pos, ld_pos, n, r->cos, r->sin);
    for (int l = 0; l < (int)m->n_layers; l++) {
        const avl__dec_layer *L = &m->layers[l];
        float *kc = r->k[l] + p0 * kd, *vc = r->v[l] + p0 * kd; /* this chunk's rows of the cache */
        site(hk, l, AVL_SITE_RESID, p0, n, H, r->x);
        avl__rmsnorm(r->h, r->x, L->in_norm, n, H, (float)m->cfg.text.rms_norm_eps);
        site(hk, l, AVL_SITE_ATTN_IN, p0, n, H, r->h);
        if ((rc = avl__gemm(m->be, n, r->h, H, &L->q, &L->qb, r->q, qd, false))) return rc;
        if ((rc = avl__gemm(m->be, n, r->h, H, &L->k, &L->kb, kc, kd, false))) return rc;
        if ((rc = avl__gemm(m->be, n, r->h, H, &L->v, &L->vb, vc, kd, false))) return rc;
        avl__rope(r->q, qd, n, m->nh, m->hd, r->cos, r->sin, m->hd);
        avl__rope(kc, kd, n, m->nkv, m->hd, r->cos, r->sin, m->hd);
        attn_tramp tr = {hk, p0};
        bool want_attn = hk && hk->attn && (!hk->wants_attn || hk->wants_attn(hk->user, l));
        avl__attn_params ap = {
            .n_heads = m->nh, .n_kv_heads = m->nkv, .head_dim = m->hd, .n_q = n, .n_k = p0 + n, .q_pos0 = p0,
            .q = r->q, .ldq = qd, .k = r->k[l], .ldk = kd, .v = r->v[l], .ldv = kd, .out = r->ao, .ldo = qd,
            .scale = 0.0f, .causal = true, .hook = want_attn ? attn_trampoline : NULL, .hook_user = &tr, .layer = l,
        };
        if ((rc = avl__attention(&ap))) return rc;
        if ((rc = avl__gemm(m->be, n, r->ao, qd, &L->o, NULL, r->t, H, false))) return rc;
        site(hk, l, AVL_SITE_ATTN_OUT, p0, n, H, r->t);
        for (int64_t i = 0; i < n * H; i++) r->x[i] += r->t[i];
        avl__rmsnorm(r->h, r->x, L->post_norm, n, H, (float)m->cfg.text.rms_norm_eps);
        if ((rc = avl__gemm(m->be, n, r->h, H, &L->gate, NULL, r->g, m->F, false))) return rc;
        if ((rc = avl__gemm(m->be, n, r->h, H, &L->up, NULL, r->u, m->F, false))) return rc;
        avl__silu_mul(r->g, r->g, r->u, n * m->F);
        if ((rc = avl__gemm(m->be, n, r->g, m->F, &L->down, NULL, r->t, H, false))) return rc;
        site(hk, l, AVL_SITE_MLP_OUT, p0, n, H, r->t);
        for (int64_t i = 0; i < n * H; i++) r->x[i] += r->t[i];
    }
    avl__rmsnorm(final_out, r->x, m->final_norm, n, H, (float)m->cfg.text.rms_norm_eps);
    site(hk, (int)m->n_layers, AVL_SITE_FINAL, p0, n, H, final_out);
    r->len += n;
    return AVL_OK;
}

avl_status avl_run_forward(avl_run *r, const float *embeds, const int64_t *pos, int64_t ld_pos, int64_t n,
                           const avl_hooks *hooks, float *logits, int64_t n_logits)
{
    const avl_model *m = r->m;
    if (n < 0 || n_logits < 0 || n_logits > n)
        return avl__err(AVL_E_ARG, "run: bad sizes n=%lld n_logits=%lld", (long long)n, (long long)n_logits);
    if (r->len + n > r->max_pos)
        return avl__err(AVL_E_ARG, "run: %lld cached + %lld new positions exceed the cache of %lld", (long long)r->len,
                        (long long)n, (long long)r->max_pos);
    for (int64_t c0 = 0; c0 < n; c0 += r->chunk) {
        int64_t nc = n - c0 < r->chunk ? n - c0 : r->chunk;
        /* the final-norm output reuses h; logits are taken from it for rows in the tail */
        avl_status rc = forward_chunk(r, embeds + c0 * m->H, pos + c0, ld_pos, nc, hooks, r->h);
        if (rc) return rc;
        int64_t first = n - n_logits; /* first row whose logits are wanted */
        int64_t lo = first > c0 ? first : c0, hi = c0 + nc;
        if (logits && lo < hi) {
            rc = avl__gemm(m->be, hi - lo, r->h + (lo - c0) * m->H, m->H, &m->lm_head, NULL,
                           logits + (lo - first) * m->V, m->V, false);
            if (rc) return rc;
        }
    }
    return AVL_OK;
}
