/* src/model/audio_encoder.c: the Qwen2.5-Omni audio encoder (a Whisper-style transformer over
 * log-mel frames), one audio item at a time.
 *
 * Mirrors, as formulas, transformers' modeling_qwen2_5_omni.py: Qwen2_5OmniAudioEncoder.forward
 * (with padded_and_mask_function and _get_feat_extract_output_lengths),
 * Qwen2_5OmniAudioEncoderLayer, Qwen2_5OmniAudioAttention and SinusoidsPositionEmbedding, as the
 * thinker's get_audio_features calls them (only the feature_attention_mask's valid frames are
 * given to the encoder). docs/audio-encoder.md lists every fact with its source. In short, for
 * n valid frames and the window w = n_window:
 *
 *   the frames are cut into chunks of 2w frames, the last one holding the rest (n mod 2w, or a
 *   full chunk when that is 0); each chunk is convolved on its own with zero padding:
 *     c1 = gelu(conv1(x))            k=3, pad 1:            (len, D)
 *     c2 = gelu(conv2(c1))           k=3, stride 2, pad 1:  ((len-1)/2+1, D)
 *     h  = c2 + sinusoid[0 .. rows-1]                       positions restart in every chunk
 *   the chunks' rows are concatenated (T = (n-1)/2+1 rows) and run through the layers, where
 *   attention is block-diagonal: a row sees the rows of its own chunk only (cu_seqlens);
 *     x += out_proj(attn(LN1(x)))    q, v, out_proj with bias, k_proj without
 *     x += fc2(act(fc1(LN2(x))))     act: activation_function ("gelu": the erf form)
 *   then over the whole item: avg_pool(2, stride 2) (an odd last row is dropped), ln_post, proj:
 *   floor(T/2) = avl_audio_tokens_for_frames(n) rows of the LLM width.
 *
 * Memory: the layers run on groups of whole chunks (about prefill_chunk rows), which is the same
 * arithmetic as one pass since nothing crosses a chunk but the pooling; groups hold an even number
 * of rows (but the last), so no pooled pair straddles two groups.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "avlens/sequence.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "model/audio_encoder.h"
#include "model/model_internal.h"

#define LN_EPS 1e-5f /* torch.nn.LayerNorm's default, used by every norm of the encoder */

typedef struct {
    float *ln1_w, *ln1_b;        /* (D) self_attn_layer_norm */
    avl__weight q, k, v, o;      /* (D, D) each */
    avl__vec qb, vb, ob;         /* (D) each; k_proj has no bias */
    float *ln2_w, *ln2_b;        /* (D) final_layer_norm */
    avl__weight fc1, fc2;        /* (F, D), (D, F) */
    avl__vec fc1b, fc2b;         /* (F), (D) */
} aenc_layer;

struct avl__audio_enc {
    int64_t n_mels, D, n_heads, hd, F, n_layers, n_window, out_dim;
    bool tanh_gelu;              /* activation_function of the layers' MLP */
    avl__weight conv1;           /* (D, n_mels*3): Conv1d weight (D, n_mels, 3) read as rows */
    avl__weight conv2;           /* (D, D*3) */
    avl__vec conv1_b, conv2_b;   /* (D) */
    aenc_layer *layers;          /* (n_layers) */
    float *ln_post_w, *ln_post_b; /* (D) */
    avl__weight proj;            /* (out_dim, D) */
    avl__vec proj_b;             /* (out_dim) */
    float *pos;                  /* (n_window, D): a chunk has at most n_window rows after conv2 */
};

/* ---- loading ---- */

static avl_status kernel_dtype(const avl_tensor_view *tv, avl__dtype *out)
{
    switch (tv->dtype) {
    case AVL_DTYPE_F32: *out = AVL__DT_F32; return AVL_OK;
    case AVL_DTYPE_BF16: *out = AVL__DT_BF16; return AVL_OK;
    case AVL_DTYPE_F16: *out = AVL__DT_F16; return AVL_OK;
    default:
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' is %s, not a float type", tv->file, tv->name,
                        avl_dtype_name(tv->dtype));
    }
}

/* A Conv1d weight (out, in, 3) as the matrix (out, in*3): element (o, i, k) sits at row o,
 * column i*3 + k, which is how the im2col buffers below lay out their columns. */
static avl_status conv_weight(const avl_model *m, const char *name, int64_t n_out, int64_t n_in, avl__weight *w)
{
    char full[256];
    snprintf(full, sizeof full, "%saudio_tower.%s", m->cfg.tensor_prefix, name);
    avl_tensor_view tv;
    avl_status rc = avl_st_get(m->st, full, &tv);
    if (rc) return rc;
    if (tv.ndim != 3 || tv.shape[0] != n_out || tv.shape[1] != n_in || tv.shape[2] != 3)
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' has %d dims, config needs [%lld,%lld,3]", tv.file, tv.name,
                        tv.ndim, (long long)n_out, (long long)n_in);
    if ((rc = kernel_dtype(&tv, &w->dtype))) return rc;
    w->data = tv.data;
    w->n = n_out;
    w->k = n_in * 3;
    w->ld = n_in * 3;
    return AVL_OK;
}

/* Whisper's table (SinusoidsPositionEmbedding): row t = [sin(t*inv_0..), cos(t*inv_0..)] with
 * inv_i = exp(-i * ln(10000) / (D/2 - 1)). The increment is a float64 scalar, the rest is fp32
 * torch arithmetic: inv_i = exp_f32(f32(-inc) * i), angle = f32(t) * inv_i. */
static void sinusoids(float *pos, int64_t rows, int64_t D)
{
    int64_t half = D / 2;
    float neg_inc = (float)(-log(10000.0) / (double)(half - 1));
    for (int64_t i = 0; i < half; i++) {
        float inv = expf(neg_inc * (float)i);
        for (int64_t t = 0; t < rows; t++) {
            float a = (float)t * inv;
            pos[t * D + i] = sinf(a);
            pos[t * D + half + i] = cosf(a);
        }
    }
}

void avl__audio_encoder_free(avl__audio_enc *e)
{
    if (!e) return;
    if (e->layers) {
        for (int64_t l = 0; l < e->n_layers; l++) {
            aenc_layer *L = &e->layers[l];
            avl__free(L->ln1_w);
            avl__free(L->ln1_b);
            avl__free(L->ln2_w);
            avl__free(L->ln2_b);
        }
    }
    avl__free(e->layers);
    avl__free(e->ln_post_w);
    avl__free(e->ln_post_b);
    avl__free(e->pos);
    avl__free(e);
}

static avl_status load_tensors(const avl_model *m, avl__audio_enc *e)
{
    const int64_t D = e->D, F = e->F;
    char n[160];
    avl_status rc;
    if ((rc = conv_weight(m, "conv1.weight", D, e->n_mels, &e->conv1))) return rc;
    if ((rc = conv_weight(m, "conv2.weight", D, D, &e->conv2))) return rc;
    if ((rc = avl__model_vec(m, "audio_tower.conv1.bias", D, &e->conv1_b))) return rc;
    if ((rc = avl__model_vec(m, "audio_tower.conv2.bias", D, &e->conv2_b))) return rc;
    for (int64_t l = 0; l < e->n_layers; l++) {
        aenc_layer *L = &e->layers[l];
#define NAME(suffix) (snprintf(n, sizeof n, "audio_tower.layers.%lld.%s", (long long)l, suffix), n)
        if ((rc = avl__model_vec_f32(m, NAME("self_attn_layer_norm.weight"), D, &L->ln1_w))) return rc;
        if ((rc = avl__model_vec_f32(m, NAME("self_attn_layer_norm.bias"), D, &L->ln1_b))) return rc;
        if ((rc = avl__model_weight(m, NAME("self_attn.q_proj.weight"), D, D, &L->q))) return rc;
        if ((rc = avl__model_weight(m, NAME("self_attn.k_proj.weight"), D, D, &L->k))) return rc;
        if ((rc = avl__model_weight(m, NAME("self_attn.v_proj.weight"), D, D, &L->v))) return rc;
        if ((rc = avl__model_weight(m, NAME("self_attn.out_proj.weight"), D, D, &L->o))) return rc;
        if ((rc = avl__model_vec(m, NAME("self_attn.q_proj.bias"), D, &L->qb))) return rc;
        if ((rc = avl__model_vec(m, NAME("self_attn.v_proj.bias"), D, &L->vb))) return rc;
        if ((rc = avl__model_vec(m, NAME("self_attn.out_proj.bias"), D, &L->ob))) return rc;
        if ((rc = avl__model_vec_f32(m, NAME("final_layer_norm.weight"), D, &L->ln2_w))) return rc;
        if ((rc = avl__model_vec_f32(m, NAME("final_layer_norm.bias"), D, &L->ln2_b))) return rc;
        if ((rc = avl__model_weight(m, NAME("fc1.weight"), F, D, &L->fc1))) return rc;
        if ((rc = avl__model_vec(m, NAME("fc1.bias"), F, &L->fc1b))) return rc;
        if ((rc = avl__model_weight(m, NAME("fc2.weight"), D, F, &L->fc2))) return rc;
        if ((rc = avl__model_vec(m, NAME("fc2.bias"), D, &L->fc2b))) return rc;
#undef NAME
    }
    if ((rc = avl__model_vec_f32(m, "audio_tower.ln_post.weight", D, &e->ln_post_w))) return rc;
    if ((rc = avl__model_vec_f32(m, "audio_tower.ln_post.bias", D, &e->ln_post_b))) return rc;
    if ((rc = avl__model_weight(m, "audio_tower.proj.weight", e->out_dim, D, &e->proj))) return rc;
    if ((rc = avl__model_vec(m, "audio_tower.proj.bias", e->out_dim, &e->proj_b))) return rc;
    return AVL_OK;
}

avl_status avl__audio_encoder_load(const avl_model *m, avl__audio_enc **out)
{
    *out = NULL;
    const avl_audio_config *a = &m->cfg.audio;
    /* Checked here too (the config loader checks most of it) because the arithmetic below relies
     * on each: an odd width has no sinusoid table, a window wider than the table has no rows. */
    if (a->num_mel_bins <= 0 || a->d_model <= 0 || a->encoder_layers < 0 || a->encoder_attention_heads <= 0 ||
        a->encoder_ffn_dim <= 0 || a->n_window <= 0 || a->output_dim <= 0)
        return avl__err(AVL_E_CONFIG, "audio_config: sizes must be positive (num_mel_bins %lld, d_model %lld, "
                        "encoder_attention_heads %lld, encoder_ffn_dim %lld, n_window %lld, output_dim %lld)",
                        (long long)a->num_mel_bins, (long long)a->d_model, (long long)a->encoder_attention_heads,
                        (long long)a->encoder_ffn_dim, (long long)a->n_window, (long long)a->output_dim);
    if (a->d_model % a->encoder_attention_heads != 0)
        return avl__err(AVL_E_CONFIG, "audio_config: encoder_attention_heads %lld does not divide d_model %lld",
                        (long long)a->encoder_attention_heads, (long long)a->d_model);
    if (a->d_model % 2 != 0 || a->d_model < 4)
        return avl__err(AVL_E_CONFIG, "audio_config: d_model %lld must be even and at least 4 (sinusoid table)",
                        (long long)a->d_model);
    if (a->n_window > a->max_source_positions)
        return avl__err(AVL_E_CONFIG, "audio_config: n_window %lld exceeds max_source_positions %lld",
                        (long long)a->n_window, (long long)a->max_source_positions);
    if (a->output_dim != m->cfg.text.hidden_size)
        return avl__err(AVL_E_CONFIG, "audio_config: output_dim %lld differs from text hidden_size %lld",
                        (long long)a->output_dim, (long long)m->cfg.text.hidden_size);
    bool tanh_gelu;
    if (!strcmp(a->activation_function, "gelu")) tanh_gelu = false;
    else if (!strcmp(a->activation_function, "gelu_new") || !strcmp(a->activation_function, "gelu_pytorch_tanh"))
        tanh_gelu = true;
    else
        return avl__err(AVL_E_UNSUPPORTED, "audio_config: activation_function '%s' is not supported (gelu, gelu_new, "
                        "gelu_pytorch_tanh)", a->activation_function);

    avl__audio_enc *e = avl__calloc(1, sizeof *e);
    if (!e) return avl__err(AVL_E_NOMEM, "audio encoder: cannot allocate");
    e->n_mels = a->num_mel_bins;
    e->D = a->d_model;
    e->n_heads = a->encoder_attention_heads;
    e->hd = e->D / e->n_heads;
    e->F = a->encoder_ffn_dim;
    e->n_layers = a->encoder_layers;
    e->n_window = a->n_window;
    e->out_dim = a->output_dim;
    e->tanh_gelu = tanh_gelu;
    avl_status rc = AVL_OK;
    e->layers = avl__calloc(e->n_layers > 0 ? (size_t)e->n_layers : 1, sizeof *e->layers);
    e->pos = avl__malloc((size_t)(e->n_window * e->D) * sizeof *e->pos);
    if (!e->layers || !e->pos) rc = avl__err(AVL_E_NOMEM, "audio encoder: cannot allocate tables");
    if (!rc) rc = load_tensors(m, e);
    if (rc) {
        avl__audio_encoder_free(e);
        return rc;
    }
    sinusoids(e->pos, e->n_window, e->D);
    *out = e;
    return AVL_OK;
}

/* ---- forward ---- */

typedef struct {
    int64_t rows;       /* R: rows of the largest group (chunks per group x w) */
    float *x;           /* (R, D) residual stream */
    float *h;           /* (R, D) normed input of a sub-block; pooled rows at the end */
    float *q, *k, *v;   /* (R, D) each */
    float *a;           /* (R, D) attention output before out_proj */
    float *f;           /* (R, F) MLP hidden */
    float *col1;        /* (2R, n_mels*3) conv1's im2col over the group's frames */
    float *c1;          /* (2R, D) conv1 output */
    float *col2;        /* (R, D*3) conv2's im2col */
    int64_t *seg;       /* (chunks per group + 1) chunk bounds inside the group, in rows */
} scratch;

static void scratch_free(scratch *s)
{
    avl__free(s->x);
    avl__free(s->h);
    avl__free(s->q);
    avl__free(s->k);
    avl__free(s->v);
    avl__free(s->a);
    avl__free(s->f);
    avl__free(s->col1);
    avl__free(s->c1);
    avl__free(s->col2);
    avl__free(s->seg);
}

static avl_status scratch_new(const avl__audio_enc *e, int64_t chunks, scratch *s)
{
    memset(s, 0, sizeof *s);
    const int64_t rows = chunks * e->n_window;
    s->rows = rows;
    size_t rd = (size_t)(rows * e->D) * sizeof(float);
    s->x = avl__malloc(rd);
    s->h = avl__malloc(rd);
    s->q = avl__malloc(rd);
    s->k = avl__malloc(rd);
    s->v = avl__malloc(rd);
    s->a = avl__malloc(rd);
    s->f = avl__malloc((size_t)(rows * e->F) * sizeof(float));
    s->col1 = avl__malloc((size_t)(2 * rows * e->n_mels * 3) * sizeof(float));
    s->c1 = avl__malloc(2 * rd);
    s->col2 = avl__malloc(3 * rd);
    s->seg = avl__malloc((size_t)(chunks + 1) * sizeof(int64_t));
    if (!s->x || !s->h || !s->q || !s->k || !s->v || !s->a || !s->f || !s->col1 || !s->c1 || !s->col2 || !s->seg) {
        scratch_free(s);
        return avl__err(AVL_E_NOMEM, "audio encoder: cannot allocate scratch for %lld rows", (long long)rows);
    }
    return AVL_OK;
}

/* The conv stem of chunks [c0, c1): frames [c0*2w, min(c1*2w, n_frames)) of features
 * (n_mels, ld) -> s->x (n, D) with the positional embedding added, n = the chunks' rows; fills
 * s->seg. Each chunk is convolved on its own: frames outside it count as zeros, which is what HF's
 * right-padded batch amounts to (the padding frames of conv1's input are zeros and conv1's output
 * past a chunk's length is multiplied by the mask before conv2). The chunks share one GEMM per
 * conv: their im2col rows are stacked. Returns the row count in *n_rows. */
static avl_status conv_stem(const avl_model *m, const avl__audio_enc *e, scratch *s, const float *features,
                            int64_t ld, int64_t n_frames, int64_t c0, int64_t c1, int64_t *n_rows)
{
    const int64_t M = e->n_mels, D = e->D, fr = 2 * e->n_window, f_base = c0 * fr;
    const int64_t f_end = c1 * fr < n_frames ? c1 * fr : n_frames, n_fr = f_end - f_base;
    avl_status rc;
    /* conv1 im2col: row t (frame f_base + t), column c*3 + k = frame t + k - 1 of mel bin c, if
     * that frame lies in t's chunk */
    for (int64_t t = 0; t < n_fr; t++) {
        int64_t lo = t / fr * fr, hi = lo + fr < n_fr ? lo + fr : n_fr; /* t's chunk, group-relative */
        float *col = s->col1 + t * M * 3;
        for (int64_t c = 0; c < M; c++) {
            const float *src = features + c * ld + f_base;
            for (int64_t k = 0; k < 3; k++) {
                int64_t j = t + k - 1;
                col[c * 3 + k] = (j >= lo && j < hi) ? src[j] : 0.0f;
            }
        }
    }
    if ((rc = avl__gemm(m->be, n_fr, s->col1, M * 3, &e->conv1, &e->conv1_b, s->c1, D, false))) return rc;
    avl__gelu(s->c1, s->c1, n_fr * D, false); /* nn.functional.gelu: the erf form */
    /* conv2 im2col, chunk by chunk: row u of a chunk of len frames at lo reads frames 2u-1..2u+1 */
    int64_t n = 0;
    for (int64_t c = c0; c < c1; c++) {
        int64_t lo = (c - c0) * fr, len = n_fr - lo < fr ? n_fr - lo : fr, rows = (len - 1) / 2 + 1;
        s->seg[c - c0] = n;
        for (int64_t u = 0; u < rows; u++) {
            float *col = s->col2 + (n + u) * D * 3;
            for (int64_t k = 0; k < 3; k++) {
                int64_t j = 2 * u + k - 1;
                bool in = j >= 0 && j < len;
                const float *src = s->c1 + (lo + j) * D;
                for (int64_t d = 0; d < D; d++) col[d * 3 + k] = in ? src[d] : 0.0f;
            }
        }
        n += rows;
    }
    s->seg[c1 - c0] = n;
    if ((rc = avl__gemm(m->be, n, s->col2, D * 3, &e->conv2, &e->conv2_b, s->x, D, false))) return rc;
    avl__gelu(s->x, s->x, n * D, false);
    for (int64_t c = 0; c < c1 - c0; c++) { /* positions restart at 0 in every chunk */
        float *y = s->x + s->seg[c] * D;
        for (int64_t i = 0; i < (s->seg[c + 1] - s->seg[c]) * D; i++) y[i] += e->pos[i];
    }
    *n_rows = n;
    return AVL_OK;
}

/* The layers over n rows of x that form n_seg chunks (bounds s->seg). */
static avl_status layers(const avl_model *m, const avl__audio_enc *e, scratch *s, int64_t n, int64_t n_seg,
                         int64_t row0, avl__audio_stage_fn fn, void *user)
{
    const int64_t D = e->D, F = e->F;
    avl_status rc;
    for (int64_t l = 0; l < e->n_layers; l++) {
        const aenc_layer *L = &e->layers[l];
        avl__layernorm(s->h, s->x, L->ln1_w, L->ln1_b, n, D, LN_EPS);
        if ((rc = avl__gemm(m->be, n, s->h, D, &L->q, &L->qb, s->q, D, false))) return rc;
        if ((rc = avl__gemm(m->be, n, s->h, D, &L->k, NULL, s->k, D, false))) return rc;
        if ((rc = avl__gemm(m->be, n, s->h, D, &L->v, &L->vb, s->v, D, false))) return rc;
        avl__attn_params ap = {
            .n_heads = e->n_heads, .n_kv_heads = e->n_heads, .head_dim = e->hd, .n_q = n, .n_k = n, .q_pos0 = 0,
            .q = s->q, .ldq = D, .k = s->k, .ldk = D, .v = s->v, .ldv = D, .out = s->a, .ldo = D,
            .scale = 0.0f, .causal = false, .seg_bounds = s->seg, .n_seg = n_seg, .layer = (int)l,
        };
        if ((rc = avl__attention(&ap))) return rc;
        /* x = x + out_proj(a): the product accumulates onto the residual */
        if ((rc = avl__gemm(m->be, n, s->a, D, &L->o, &L->ob, s->x, D, true))) return rc;
        avl__layernorm(s->h, s->x, L->ln2_w, L->ln2_b, n, D, LN_EPS);
        if ((rc = avl__gemm(m->be, n, s->h, D, &L->fc1, &L->fc1b, s->f, F, false))) return rc;
        avl__gelu(s->f, s->f, n * F, e->tanh_gelu);
        if ((rc = avl__gemm(m->be, n, s->f, F, &L->fc2, &L->fc2b, s->x, D, true))) return rc;
        if (fn) fn(user, (int)l + 1, row0, n, D, s->x);
    }
    return AVL_OK;
}

avl_status avl__audio_encoder_forward_observed(const avl_model *m, const avl__audio_enc *e, const float *features,
                                               int64_t ld, int64_t n_frames, float *out, avl__audio_stage_fn fn,
                                               void *user)
{
    if (!e) return avl__err(AVL_E_ARG, "audio encoder: the model has no audio tower loaded");
    if (!features || !out) return avl__err(AVL_E_ARG, "audio encoder: features and out must not be NULL");
    if (n_frames < 1 || n_frames > ld)
        return avl__err(AVL_E_ARG, "audio encoder: %lld valid frames with a row stride of %lld (need 1..stride)",
                        (long long)n_frames, (long long)ld);
    const int64_t w = e->n_window, D = e->D, frames = 2 * w;
    const int64_t n_chunks = (n_frames + frames - 1) / frames;
    const int64_t n_tok = avl_audio_tokens_for_frames(n_frames);
    /* Chunks per group: about prefill_chunk rows; an even count when w is odd so that every group
     * but the last has an even number of rows. */
    int64_t budget = m->prefill_chunk > 0 ? m->prefill_chunk : 512;
    int64_t per = budget / w > 0 ? budget / w : 1;
    if (w % 2 && per % 2) per++;
    if (per > n_chunks) per = n_chunks;
    scratch s;
    avl_status rc = scratch_new(e, per, &s);
    if (rc) return rc;

    int64_t row0 = 0, tok0 = 0;
    for (int64_t c0 = 0; c0 < n_chunks; c0 += per) {
        int64_t c1 = c0 + per < n_chunks ? c0 + per : n_chunks, n;
        if ((rc = conv_stem(m, e, &s, features, ld, n_frames, c0, c1, &n))) break;
        if (fn) fn(user, 0, row0, n, D, s.x);
        if ((rc = layers(m, e, &s, n, c1 - c0, row0, fn, user))) break;
        /* AvgPool1d(2, stride 2): (x[2i] + x[2i+1]) / 2; n is even except in the last group */
        int64_t np = n / 2;
        for (int64_t i = 0; i < np; i++) {
            const float *a = s.x + 2 * i * D, *b = a + D;
            float *p = s.h + i * D;
            for (int64_t j = 0; j < D; j++) p[j] = (a[j] + b[j]) / 2.0f;
        }
        avl__layernorm(s.h, s.h, e->ln_post_w, e->ln_post_b, np, D, LN_EPS);
        if ((rc = avl__gemm(m->be, np, s.h, D, &e->proj, &e->proj_b, out + tok0 * e->out_dim, e->out_dim, false)))
            break;
        row0 += n;
        tok0 += np;
    }
    scratch_free(&s);
    if (!rc && tok0 != n_tok)
        rc = avl__err(AVL_E_INTERNAL, "audio encoder: %lld tokens made from %lld frames, expected %lld", (long long)tok0,
                      (long long)n_frames, (long long)n_tok);
    return rc;
}

avl_status avl__audio_encoder_forward(const avl_model *m, const avl__audio_enc *e, const float *features, int64_t ld,
                                      int64_t n_frames, float *out)
{
    return avl__audio_encoder_forward_observed(m, e, features, ld, n_frames, out, NULL, NULL);
}
