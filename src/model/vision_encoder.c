/* src/model/vision_encoder.c: the Qwen2.5-Omni vision encoder (the Qwen2.5-VL ViT with window
 * attention), one video or image at a time.
 *
 * Mirrors, as formulas, transformers' modeling_qwen2_5_omni.py: Qwen2_5OmniVisionEncoder (forward,
 * rot_pos_emb, get_window_index), Qwen2_5_VisionPatchEmbed, Qwen2_5_VisionRotaryEmbedding,
 * Qwen2_5OmniVisionBlock, Qwen2_5OmniVisionAttention with apply_rotary_pos_emb_vision,
 * Qwen2_5OmniMLP and Qwen2_5OmniPatchMerger. docs/vision-encoder.md lists the facts settled and
 * where each comes from.
 *
 * One item of grid (t, h, w) patches: N = t*h*w rows, U = N / m^2 merged units (m = spatial merge,
 * 2). The processor delivers patches unit by unit (frame, unit row, unit col, row in unit, col in
 * unit), each patch laid out (channel, frame, row, col) like the Conv3d kernel.
 *   x = patches · Wpe^T               the Conv3d with kernel = stride = (tp, p, p) and no bias
 *   x reordered by whole units into window order; the rotary angles follow the same order
 *   per block:  x += proj(attention(rope(q), rope(k), v))   inside each window of w x w units,
 *                                                            or each whole frame in the full blocks
 *               x += down(silu(gate(n2)) * up(n2)),  n2 = RMSNorm(x) · norm2
 *   out = mlp.2(gelu(mlp.0(RMSNorm(x) · ln_q viewed (U, m^2 D))))  rows back in unit order
 * Attention never crosses a frame (a temporal grid): the windows lie inside one frame and the
 * "full" attention of the full blocks is per frame (cu_seqlens repeats h*w t times). So frames are
 * independent and the window permutation keeps every frame's rows together.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "model/model_internal.h"

#define VIS_EPS 1e-6f   /* Qwen2_5OmniVisionBlock and the merger fix eps, the config does not */
#define VIS_THETA 10000.0f /* Qwen2_5_VisionRotaryEmbedding's default theta, never overridden */
#define MLP_ROWS 1024   /* rows per MLP step: bounds the (rows, F) scratch */

typedef struct {
    float *norm1, *norm2;        /* (D) each */
    avl__weight q, k, v, proj;   /* (D, D) each */
    avl__vec qb, kb, vb, projb;  /* (D) each */
    avl__weight gate, up, down;  /* gate/up: (F, D), down: (D, F) */
    avl__vec gateb, upb, downb;  /* (F), (F), (D) */
    bool full;                   /* listed in fullatt_block_indexes: attention over the whole frame */
} vis_block;

struct avl__vision_enc {
    int64_t D, nh, hd, F, depth;
    int64_t patch, tp, merge, unit, in_ch;
    int64_t win;                 /* window side in merged units: window_size / merge / patch */
    int64_t kp;                  /* values per patch: in_ch * tp * patch * patch */
    int64_t out_dim;             /* out_hidden_size (= the LLM width) */
    avl__weight patch_w;         /* (D, kp): the Conv3d kernel (D, C, tp, p, p), flattened */
    vis_block *blocks;           /* (depth) */
    float *ln_q;                 /* (D) */
    avl__weight mlp0, mlp2;      /* (unit*D, unit*D), (out_dim, unit*D) */
    avl__vec mlp0b, mlp2b;       /* (unit*D), (out_dim) */
    float *inv_freq;             /* (hd/4): 1 / theta^(2i / (hd/2)), fp32 as torch computes it */
};

void avl__vision_encoder_free(avl__vision_enc *e)
{
    if (!e) return;
    if (e->blocks) {
        for (int64_t l = 0; l < e->depth; l++) {
            avl__free(e->blocks[l].norm1);
            avl__free(e->blocks[l].norm2);
        }
    }
    avl__free(e->blocks);
    avl__free(e->ln_q);
    avl__free(e->inv_freq);
    avl__free(e);
}

/* The patch embedding is a 5-D tensor: looked up directly, checked against (D, C, tp, p, p). */
static avl_status load_patch_embed(const avl_model *m, avl__vision_enc *e)
{
    char name[256];
    snprintf(name, sizeof name, "%svisual.patch_embed.proj.weight", m->cfg.tensor_prefix);
    avl_tensor_view tv;
    avl_status rc = avl_st_get(m->st, name, &tv);
    if (rc) return rc;
    const int64_t want[5] = {e->D, e->in_ch, e->tp, e->patch, e->patch};
    bool ok = tv.ndim == 5;
    for (int i = 0; ok && i < 5; i++) ok = tv.shape[i] == want[i];
    if (!ok)
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' has %d dims, config needs [%lld,%lld,%lld,%lld,%lld]", tv.file,
                        tv.name, tv.ndim, (long long)want[0], (long long)want[1], (long long)want[2],
                        (long long)want[3], (long long)want[4]);
    switch (tv.dtype) {
    case AVL_DTYPE_F32: e->patch_w.dtype = AVL__DT_F32; break;
    case AVL_DTYPE_BF16: e->patch_w.dtype = AVL__DT_BF16; break;
    case AVL_DTYPE_F16: e->patch_w.dtype = AVL__DT_F16; break;
    default:
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' is %s, not a float type", tv.file, tv.name,
                        avl_dtype_name(tv.dtype));
    }
    e->patch_w.data = tv.data;
    e->patch_w.n = e->D;
    e->patch_w.k = e->kp;
    e->patch_w.ld = e->kp;
    return AVL_OK;
}

/* Rows [r0, r0 + n) of a weight, and elements [i0, ...) of a vector: views into a fused tensor. */
static avl__weight weight_rows(avl__weight w, int64_t r0, int64_t n)
{
    w.data = (const uint8_t *)w.data + (size_t)(r0 * w.ld) * avl__dtype_size(w.dtype);
    w.n = n;
    return w;
}

static avl__vec vec_from(avl__vec v, int64_t i0)
{
    v.data = (const uint8_t *)v.data + (size_t)i0 * avl__dtype_size(v.dtype);
    return v;
}

/* Qwen2.5-Omni checkpoints store attn.q, attn.k, attn.v separately (the modeling file's
 * Qwen2_5OmniVisionAttention); Qwen2.5-VL checkpoints fuse them into attn.qkv, rows q|k|v.
 * Both are read. */
static avl_status load_block(const avl_model *m, avl__vision_enc *e, int64_t l, bool fused, vis_block *B)
{
    const int64_t D = e->D, F = e->F;
    char n[160];
    avl_status rc;
#define NAME(suffix) snprintf(n, sizeof n, "visual.blocks.%lld.%s", (long long)l, suffix)
#define W(field, suffix, r, c)                                                                               \
    do {                                                                                                     \
        NAME(suffix);                                                                                        \
        if ((rc = avl__model_weight(m, n, r, c, &B->field))) return rc;                                       \
    } while (0)
#define V(field, suffix, len)                                                                                \
    do {                                                                                                     \
        NAME(suffix);                                                                                        \
        if ((rc = avl__model_vec(m, n, len, &B->field))) return rc;                                           \
    } while (0)
    NAME("norm1.weight");
    if ((rc = avl__model_vec_f32(m, n, D, &B->norm1))) return rc;
    NAME("norm2.weight");
    if ((rc = avl__model_vec_f32(m, n, D, &B->norm2))) return rc;
    if (fused) {
        avl__weight w;
        avl__vec b;
        NAME("attn.qkv.weight");
        if ((rc = avl__model_weight(m, n, 3 * D, D, &w))) return rc;
        NAME("attn.qkv.bias");
        if ((rc = avl__model_vec(m, n, 3 * D, &b))) return rc;
        B->q = weight_rows(w, 0, D);
        B->k = weight_rows(w, D, D);
        B->v = weight_rows(w, 2 * D, D);
        B->qb = b;
        B->kb = vec_from(b, D);
        B->vb = vec_from(b, 2 * D);
    } else {
        W(q, "attn.q.weight", D, D);
        W(k, "attn.k.weight", D, D);
        W(v, "attn.v.weight", D, D);
        V(qb, "attn.q.bias", D);
        V(kb, "attn.k.bias", D);
        V(vb, "attn.v.bias", D);
    }
    W(proj, "attn.proj.weight", D, D);
    V(projb, "attn.proj.bias", D);
    W(gate, "mlp.gate_proj.weight", F, D);
    W(up, "mlp.up_proj.weight", F, D);
    W(down, "mlp.down_proj.weight", D, F);
    V(gateb, "mlp.gate_proj.bias", F);
    V(upb, "mlp.up_proj.bias", F);
    V(downb, "mlp.down_proj.bias", D);
#undef NAME
#undef W
#undef V
    B->full = false;
    for (int i = 0; i < m->cfg.vision.n_fullatt; i++)
        if (m->cfg.vision.fullatt_block_indexes[i] == l) B->full = true;
    return AVL_OK;
}

static avl_status load_all(const avl_model *m, avl__vision_enc *e)
{
    const avl_vision_config *c = &m->cfg.vision;
    if (c->hidden_size <= 0 || c->num_heads <= 0 || c->hidden_size % c->num_heads != 0 ||
        (c->hidden_size / c->num_heads) % 4 != 0)
        return avl__err(AVL_E_CONFIG,
                        "config.json: vision_config head dim (hidden_size %lld / num_heads %lld) must be a whole "
                        "multiple of 4 for the 2-D rotary embedding",
                        (long long)c->hidden_size, (long long)c->num_heads);
    if (strcmp(c->hidden_act, "silu") != 0 && strcmp(c->hidden_act, "swish") != 0)
        return avl__err(AVL_E_UNSUPPORTED, "config.json: vision_config.hidden_act '%s' is not supported (only silu)",
                        c->hidden_act);
    if (c->patch_size <= 0 || c->spatial_merge_size <= 0 || c->temporal_patch_size <= 0 || c->in_channels <= 0 ||
        c->depth <= 0 || c->intermediate_size <= 0 || c->out_hidden_size <= 0 ||
        c->window_size / c->spatial_merge_size / c->patch_size < 1)
        return avl__err(AVL_E_CONFIG, "config.json: vision_config has a non-positive size or a window_size %lld "
                        "smaller than spatial_merge_size * patch_size",
                        (long long)c->window_size);
    e->D = c->hidden_size;
    e->nh = c->num_heads;
    e->hd = e->D / e->nh;
    e->F = c->intermediate_size;
    e->patch = c->patch_size;
    e->tp = c->temporal_patch_size;
    e->merge = c->spatial_merge_size;
    e->unit = e->merge * e->merge;
    e->in_ch = c->in_channels;
    e->win = c->window_size / c->spatial_merge_size / c->patch_size; /* floor divisions, as HF */
    e->kp = e->in_ch * e->tp * e->patch * e->patch;
    e->out_dim = c->out_hidden_size;

    avl_status rc = load_patch_embed(m, e);
    if (rc) return rc;

    char q0[160], qkv0[160];
    snprintf(q0, sizeof q0, "%svisual.blocks.0.attn.q.weight", m->cfg.tensor_prefix);
    snprintf(qkv0, sizeof qkv0, "%svisual.blocks.0.attn.qkv.weight", m->cfg.tensor_prefix);
    bool fused = !avl_st_has(m->st, q0) && avl_st_has(m->st, qkv0);
    e->blocks = avl__calloc((size_t)c->depth, sizeof *e->blocks);
    if (!e->blocks) return avl__err(AVL_E_NOMEM, "vision encoder: cannot allocate %lld blocks", (long long)c->depth);
    e->depth = c->depth;
    for (int64_t l = 0; l < e->depth; l++)
        if ((rc = load_block(m, e, l, fused, &e->blocks[l]))) return rc;

    const int64_t md = e->unit * e->D;
    if ((rc = avl__model_vec_f32(m, "visual.merger.ln_q.weight", e->D, &e->ln_q))) return rc;
    if ((rc = avl__model_weight(m, "visual.merger.mlp.0.weight", md, md, &e->mlp0))) return rc;
    if ((rc = avl__model_vec(m, "visual.merger.mlp.0.bias", md, &e->mlp0b))) return rc;
    if ((rc = avl__model_weight(m, "visual.merger.mlp.2.weight", e->out_dim, md, &e->mlp2))) return rc;
    if ((rc = avl__model_vec(m, "visual.merger.mlp.2.bias", e->out_dim, &e->mlp2b))) return rc;

    /* inv_freq = 1 / theta^(arange(0, dim, 2) / dim) with dim = hd/2, each step in fp32 */
    const int64_t rdim = e->hd / 2, q4 = e->hd / 4;
    e->inv_freq = avl__malloc((size_t)q4 * sizeof *e->inv_freq);
    if (!e->inv_freq) return avl__err(AVL_E_NOMEM, "vision encoder: cannot allocate the rotary table");
    for (int64_t i = 0; i < q4; i++) e->inv_freq[i] = 1.0f / powf(VIS_THETA, (float)(2 * i) / (float)rdim);
    return AVL_OK;
}

avl_status avl__vision_encoder_load(const avl_model *m, avl__vision_enc **out)
{
    *out = NULL;
    avl__vision_enc *e = avl__calloc(1, sizeof *e);
    if (!e) return avl__err(AVL_E_NOMEM, "vision encoder: cannot allocate");
    avl_status rc = load_all(m, e);
    if (rc) {
        avl__vision_encoder_free(e);
        return rc;
    }
    *out = e;
    return AVL_OK;
}

/* The window order of get_window_index for one item of t frames of uh x uw merged units.
 * Windows are w x w units, laid from the top-left corner; the last row and column of windows
 * are cut short (HF pads the unit grid with a marker and drops the marked entries; when uh is a
 * multiple of w it even pads a whole empty row of windows, whose zero length unique_consecutive
 * then removes). Units are taken frame by frame, window by window (row-major), and row-major
 * inside a window.
 * perm: (t*uh*uw) original unit index of the j-th unit in window order.
 * bounds: (n_windows + 1) patch offsets in the window order, bounds[0] = 0.
 * Returns n_windows. */
static int64_t window_order(int64_t t, int64_t uh, int64_t uw, int64_t w, int64_t unit, int64_t *perm,
                            int64_t *bounds)
{
    int64_t j = 0, nwin = 0;
    bounds[0] = 0;
    for (int64_t f = 0; f < t; f++)
        for (int64_t y0 = 0; y0 < uh; y0 += w)
            for (int64_t x0 = 0; x0 < uw; x0 += w) {
                for (int64_t y = y0; y < y0 + w && y < uh; y++)
                    for (int64_t x = x0; x < x0 + w && x < uw; x++) perm[j++] = (f * uh + y) * uw + x;
                bounds[++nwin] = j * unit;
            }
    return nwin;
}

/* cos, sin (N, hd) in the window order. Patch s of unit u sits at row (u's unit row)*m + s/m and
 * column (u's unit col)*m + s%m of its frame (rot_pos_emb). Rotary pair i < hd/4 turns with the
 * row, pair hd/4 + i with the column, both at inv_freq[i]; the angle pos * inv_freq is one fp32
 * product (torch.outer in fp32), and dims i and i + hd/2 share it (freqs repeated twice). */
static void rotary_tables(const avl__vision_enc *e, const int64_t *perm, int64_t U, int64_t uh, int64_t uw,
                          float *cs, float *sn)
{
    const int64_t hd = e->hd, half = hd / 2, q4 = hd / 4;
    for (int64_t j = 0; j < U; j++) {
        int64_t uf = perm[j] % (uh * uw);
        int64_t by = uf / uw, bx = uf % uw;
        for (int64_t s = 0; s < e->unit; s++) {
            int64_t row = by * e->merge + s / e->merge, col = bx * e->merge + s % e->merge;
            float *c = cs + (j * e->unit + s) * hd, *sv = sn + (j * e->unit + s) * hd;
            for (int64_t i = 0; i < half; i++) {
                float a = i < q4 ? (float)row * e->inv_freq[i] : (float)col * e->inv_freq[i - q4];
                c[i] = c[i + half] = cosf(a);
                sv[i] = sv[i + half] = sinf(a);
            }
        }
    }
}

/* Non-causal attention inside each segment [b[s], b[s+1]) of rows: q, k, v, o (N, D). One call
 * per segment, so the cost is the sum of squared segment lengths, not N^2. */
static avl_status segment_attention(const avl__vision_enc *e, const float *q, const float *k, const float *v,
                                    float *o, const int64_t *b, int64_t n_seg)
{
    const int64_t D = e->D;
    for (int64_t s = 0; s < n_seg; s++) {
        int64_t r0 = b[s], n = b[s + 1] - b[s];
        avl__attn_params ap = {
            .n_heads = e->nh, .n_kv_heads = e->nh, .head_dim = e->hd, .n_q = n, .n_k = n, .q_pos0 = 0,
            .q = q + r0 * D, .ldq = D, .k = k + r0 * D, .ldk = D, .v = v + r0 * D, .ldv = D,
            .out = o + r0 * D, .ldo = D, .scale = 0.0f, .causal = false,
        };
        avl_status rc = avl__attention(&ap);
        if (rc) return rc;
    }
    return AVL_OK;
}

typedef struct {
    int64_t *perm;           /* (U) */
    int64_t *wb, *fb;        /* (n_windows + 1), (t + 1) segment bounds in patches */
    float *x, *h, *q, *k, *v; /* (N, D) each: residual, normed input / attention output, q, k, v */
    float *cs, *sn;          /* (N, hd) */
    float *g, *u;            /* (MLP_ROWS, F) */
} vis_scratch;

static void scratch_free(vis_scratch *s)
{
    avl__free(s->perm);
    avl__free(s->wb);
    avl__free(s->fb);
    avl__free(s->x);
    avl__free(s->h);
    avl__free(s->q);
    avl__free(s->k);
    avl__free(s->v);
    avl__free(s->cs);
    avl__free(s->sn);
    avl__free(s->g);
    avl__free(s->u);
}

static avl_status run(const avl_model *m, const avl__vision_enc *e, const float *patches, int64_t t, int64_t gh,
                      int64_t gw, float *out, vis_scratch *s)
{
    const avl__gemm_backend *be = m->be;
    const int64_t D = e->D, F = e->F, unit = e->unit, N = t * gh * gw, U = N / unit;
    const int64_t uh = gh / e->merge, uw = gw / e->merge;
    const int64_t max_win = t * ((uh + e->win - 1) / e->win) * ((uw + e->win - 1) / e->win);
    const int64_t R = N < MLP_ROWS ? N : MLP_ROWS;
    const size_t nd = (size_t)(N * D) * sizeof(float), nh = (size_t)(N * e->hd) * sizeof(float);
    s->perm = avl__malloc((size_t)U * sizeof *s->perm);
    s->wb = avl__malloc((size_t)(max_win + 1) * sizeof *s->wb);
    s->fb = avl__malloc((size_t)(t + 1) * sizeof *s->fb);
    s->x = avl__malloc(nd);
    s->h = avl__malloc(nd);
    s->q = avl__malloc(nd);
    s->k = avl__malloc(nd);
    s->v = avl__malloc(nd);
    s->cs = avl__malloc(nh);
    s->sn = avl__malloc(nh);
    s->g = avl__malloc((size_t)(R * F) * sizeof(float));
    s->u = avl__malloc((size_t)(R * F) * sizeof(float));
    if (!s->perm || !s->wb || !s->fb || !s->x || !s->h || !s->q || !s->k || !s->v || !s->cs || !s->sn || !s->g ||
        !s->u)
        return avl__err(AVL_E_NOMEM, "vision encoder: cannot allocate scratch for %lld patches", (long long)N);

    int64_t n_win = window_order(t, uh, uw, e->win, unit, s->perm, s->wb);
    for (int64_t f = 0; f <= t; f++) s->fb[f] = f * gh * gw;
    rotary_tables(e, s->perm, U, uh, uw, s->cs, s->sn);

    avl_status rc;
    /* patch embedding in the input order, then whole units moved into the window order */
    if ((rc = avl__gemm(be, N, patches, e->kp, &e->patch_w, NULL, s->h, D, false))) return rc;
    for (int64_t j = 0; j < U; j++)
        memcpy(s->x + j * unit * D, s->h + s->perm[j] * unit * D, (size_t)(unit * D) * sizeof(float));

    for (int64_t l = 0; l < e->depth; l++) {
        const vis_block *B = &e->blocks[l];
        avl__rmsnorm(s->h, s->x, B->norm1, N, D, VIS_EPS);
        if ((rc = avl__gemm(be, N, s->h, D, &B->q, &B->qb, s->q, D, false))) return rc;
        if ((rc = avl__gemm(be, N, s->h, D, &B->k, &B->kb, s->k, D, false))) return rc;
        if ((rc = avl__gemm(be, N, s->h, D, &B->v, &B->vb, s->v, D, false))) return rc;
        avl__rope(s->q, D, N, e->nh, e->hd, s->cs, s->sn, e->hd);
        avl__rope(s->k, D, N, e->nh, e->hd, s->cs, s->sn, e->hd);
        if (B->full) rc = segment_attention(e, s->q, s->k, s->v, s->h, s->fb, t);
        else rc = segment_attention(e, s->q, s->k, s->v, s->h, s->wb, n_win);
        if (rc) return rc;
        if ((rc = avl__gemm(be, N, s->h, D, &B->proj, &B->projb, s->x, D, true))) return rc; /* x += */
        avl__rmsnorm(s->h, s->x, B->norm2, N, D, VIS_EPS);
        for (int64_t r0 = 0; r0 < N; r0 += R) {
            int64_t rn = N - r0 < R ? N - r0 : R;
            if ((rc = avl__gemm(be, rn, s->h + r0 * D, D, &B->gate, &B->gateb, s->g, F, false))) return rc;
            if ((rc = avl__gemm(be, rn, s->h + r0 * D, D, &B->up, &B->upb, s->u, F, false))) return rc;
            avl__silu_mul(s->g, s->g, s->u, rn * F);
            if ((rc = avl__gemm(be, rn, s->g, F, &B->down, &B->downb, s->x + r0 * D, D, true))) return rc;
        }
    }

    /* merger: RMSNorm per patch, the unit's m^2 rows side by side (a unit is m^2 consecutive
     * rows in both orders), units put back in the input order (argsort of the permutation) */
    const int64_t md = unit * D;
    avl__rmsnorm(s->h, s->x, e->ln_q, N, D, VIS_EPS);
    for (int64_t j = 0; j < U; j++) memcpy(s->q + s->perm[j] * md, s->h + j * md, (size_t)md * sizeof(float));
    if ((rc = avl__gemm(be, U, s->q, md, &e->mlp0, &e->mlp0b, s->k, md, false))) return rc;
    avl__gelu(s->k, s->k, U * md, false);
    return avl__gemm(be, U, s->k, md, &e->mlp2, &e->mlp2b, out, e->out_dim, false);
}

avl_status avl__vision_encoder_forward(const avl_model *m, const avl__vision_enc *e, const float *patches,
                                       const int64_t grid_thw[3], float *out)
{
    if (!e) return avl__err(AVL_E_ARG, "vision encoder: the checkpoint has no vision tower");
    if (!patches || !out || !grid_thw) return avl__err(AVL_E_ARG, "vision encoder: null patches, grid or output");
    const int64_t t = grid_thw[0], gh = grid_thw[1], gw = grid_thw[2];
    const int64_t lim = (int64_t)1 << 20;
    if (t <= 0 || gh <= 0 || gw <= 0 || t > lim || gh > lim || gw > lim || gh % e->merge || gw % e->merge ||
        t * gh > lim || t * gh * gw > lim * 64)
        return avl__err(AVL_E_ARG,
                        "vision encoder: grid (%lld, %lld, %lld) is not positive, not a multiple of the merge size "
                        "%lld in height and width, or too large",
                        (long long)t, (long long)gh, (long long)gw, (long long)e->merge);
    vis_scratch s = {0};
    avl_status rc = run(m, e, patches, t, gh, gw, out, &s);
    scratch_free(&s);
    return rc;
}
