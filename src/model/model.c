/* src/model/model.c: loading a Qwen2.5-Omni thinker: config, tensors by their Hugging Face
 * names (modeling_qwen2_5_omni.py: Qwen2_5OmniThinkerForConditionalGeneration), backend. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "avlens/checkpoint.h"
#include "base/internal.h"
#include "model/model_internal.h"

avl_model_params avl_model_default_params(void)
{
    avl_model_params p = {.backend = "auto", .threads = 0, .prefill_chunk = 512};
    return p;
}

static avl_status to_kernel_dtype(avl_dtype t, avl__dtype *out)
{
    switch (t) {
    case AVL_DTYPE_F32: *out = AVL__DT_F32; return AVL_OK;
    case AVL_DTYPE_BF16: *out = AVL__DT_BF16; return AVL_OK;
    case AVL_DTYPE_F16: *out = AVL__DT_F16; return AVL_OK;
    default: return AVL_E_SHAPE;
    }
}

static avl_status lookup(const avl_model *m, const char *name, avl_tensor_view *tv)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", m->cfg.tensor_prefix, name);
    return avl_st_get(m->st, full, tv);
}

avl_status avl__model_weight(const avl_model *m, const char *name, int64_t rows, int64_t cols, avl__weight *out)
{
    avl_tensor_view tv;
    avl_status rc = lookup(m, name, &tv);
    if (rc) return rc;
    if (tv.ndim != 2 || tv.shape[0] != rows || tv.shape[1] != cols)
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' has %d dims, config needs [%lld,%lld]", tv.file, tv.name,
                        tv.ndim, (long long)rows, (long long)cols);
    if (to_kernel_dtype(tv.dtype, &out->dtype))
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' is %s, not a float type", tv.file, tv.name,
                        avl_dtype_name(tv.dtype));
    out->data = tv.data;
    out->n = rows;
    out->k = cols;
    out->ld = cols;
    return AVL_OK;
}

avl_status avl__model_vec(const avl_model *m, const char *name, int64_t n, avl__vec *out)
{
    avl_tensor_view tv;
    avl_status rc = lookup(m, name, &tv);
    if (rc) return rc;
    if (tv.numel != n || tv.ndim != 1)
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' has %lld elements, config needs %lld", tv.file, tv.name,
                        (long long)tv.numel, (long long)n);
    if (to_kernel_dtype(tv.dtype, &out->dtype))
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' is %s, not a float type", tv.file, tv.name,
                        avl_dtype_name(tv.dtype));
    out->data = tv.data;
    return AVL_OK;
}

avl_status avl__model_vec_f32(const avl_model *m, const char *name, int64_t n, float **out)
{
    *out = NULL;
    avl_tensor_view tv;
    avl_status rc = lookup(m, name, &tv);
    if (rc) return rc;
    if (tv.numel != n || tv.ndim != 1)
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' has %lld elements, config needs %lld", tv.file, tv.name,
                        (long long)tv.numel, (long long)n);
    float *v = avl__malloc((size_t)n * sizeof *v);
    if (!v) return avl__err(AVL_E_NOMEM, "model: cannot allocate %lld floats for '%s'", (long long)n, name);
    rc = avl_convert_to_f32(tv.dtype, tv.data, v, n);
    if (rc) {
        avl__free(v);
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' is %s, not a float type", tv.file, tv.name,
                        avl_dtype_name(tv.dtype));
    }
    *out = v;
    return AVL_OK;
}

/* Rotary tables that do not depend on the position. inv_freq follows the "default" rope init
 * of transformers (modeling_rope_utils: 1 / base^(arange(0, d, 2) / d), in fp32). The axis of
 * pair i: the doubled mrope_section [s0 s1 s2 s0 s1 s2] cut into chunks, chunk c taking axis c % 3
 * (apply_multimodal_rotary_pos_emb); pairs i and i + d/2 land in matching chunks, so one axis
 * per pair suffices. */
static avl_status init_rope(avl_model *m)
{
    int64_t half = m->hd / 2;
    m->inv_freq = avl__malloc((size_t)half * sizeof *m->inv_freq);
    m->rope_axis = avl__malloc((size_t)half);
    if (!m->inv_freq || !m->rope_axis) return avl__err(AVL_E_NOMEM, "model: cannot allocate rotary tables");
    for (int64_t i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)m->hd;             /* arange(...).float() / dim in fp32 */
        m->inv_freq[i] = 1.0f / powf((float)m->cfg.text.rope_theta, e);
    }
    const int64_t *sec = m->cfg.text.mrope_section;
    bool mrope = strcmp(m->cfg.text.rope_type, "default") != 0 || sec[0] + sec[1] + sec[2] == half;
    for (int64_t i = 0, c = 0, acc = 0; i < half; i++) {
        while (mrope && c < 3 && i >= acc + sec[c]) acc += sec[c++];
        m->rope_axis[i] = (int8_t)(mrope ? (c < 3 ? c : 2) : 0);
    }
    return AVL_OK;
}

static avl_status load_decoder(avl_model *m)
{
    const avl_text_config *t = &m->cfg.text;
    m->H = t->hidden_size;
    m->nh = t->num_attention_heads;
    m->nkv = t->num_key_value_heads;
    m->hd = t->head_dim;
    m->F = t->intermediate_size;
    m->V = t->vocab_size;
    m->n_layers = t->num_hidden_layers;
    avl_status rc;
    if ((rc = avl__model_weight(m, "model.embed_tokens.weight", m->V, m->H, &m->embed))) return rc;
    char lm[64];
    snprintf(lm, sizeof lm, "%slm_head.weight", m->cfg.tensor_prefix);
    if (t->tie_word_embeddings && !avl_st_has(m->st, lm)) m->lm_head = m->embed;
    else if ((rc = avl__model_weight(m, "lm_head.weight", m->V, m->H, &m->lm_head))) return rc;
    if ((rc = avl__model_vec_f32(m, "model.norm.weight", m->H, &m->final_norm))) return rc;
    m->layers = avl__calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers) return avl__err(AVL_E_NOMEM, "model: cannot allocate layer table");
    int64_t qd = m->nh * m->hd, kd = m->nkv * m->hd;
    for (int64_t l = 0; l < m->n_layers; l++) {
        avl__dec_layer *L = &m->layers[l];
        char n[128];
#define W(field, suffix, r, c)                                                                                \
    do {                                                                                                      \
        snprintf(n, sizeof n, "model.layers.%lld.%s", (long long)l, suffix);                                  \
        if ((rc = avl__model_weight(m, n, r, c, &L->field))) return rc;                                        \
    } while (0)
#define B(field, suffix, len)                                                                                 \
    do {                                                                                                      \
        snprintf(n, sizeof n, "model.layers.%lld.%s", (long long)l, suffix);                                  \
        if ((rc = avl__model_vec(m, n, len, &L->field))) return rc;                                            \
    } while (0)
#define N(field, suffix)                                                                                      \
    do {                                                                                                      \
        snprintf(n, sizeof n, "model.layers.%lld.%s", (long long)l, suffix);                                  \
        if ((rc = avl__model_vec_f32(m, n, m->H, &L->field))) return rc;                                       \
    } while (0)
        W(q, "self_attn.q_proj.weight", qd, m->H);
        W(k, "self_attn.k_proj.weight", kd, m->H);
        W(v, "self_attn.v_proj.weight", kd, m->H);
        W(o, "self_attn.o_proj.weight", m->H, qd);
        B(qb, "self_attn.q_proj.bias", qd);
        B(kb, "self_attn.k_proj.bias", kd);
        B(vb, "self_attn.v_proj.bias", kd);
        W(gate, "mlp.gate_proj.weight", m->F, m->H);
        W(up, "mlp.up_proj.weight", m->F, m->H);
        W(down, "mlp.down_proj.weight", m->H, m->F);
        N(in_norm, "input_layernorm.weight");
        N(post_norm, "post_attention_layernorm.weight");
#undef W
#undef B
#undef N
    }
    return init_rope(m);
}

avl_status avl_model_load(const char *dir, const avl_model_params *p, avl_model **out)
{
    *out = NULL;
    avl_model_params dp = avl_model_default_params();
    if (!p) p = &dp;
    avl_model *m = avl__calloc(1, sizeof *m);
    if (!m) return avl__err(AVL_E_NOMEM, "model: cannot allocate");
    avl_status rc = avl_config_load(dir, &m->cfg);
    if (!rc) rc = avl_st_open_dir(dir, &m->st);
    /* every tensor the config implies, checked before any is used (names the first bad one) */
    if (!rc) rc = avl_checkpoint_verify(&m->cfg, m->st, dir);
    if (!rc) rc = avl__gemm_backend_select(p->backend ? p->backend : "auto", &m->be);
    if (!rc) {
        if (p->threads > 0) avl__set_threads(p->threads);
        m->threads = avl__get_threads();
        m->prefill_chunk = p->prefill_chunk > 0 ? p->prefill_chunk : 512;
        snprintf(m->backend_desc, sizeof m->backend_desc, "%s (%s), %d thread(s)", m->be->name,
                 avl__gemm_backend_isa(m->be), m->threads);
        rc = load_decoder(m);
    }
    if (!rc) {
        /* Each tower is loaded when the checkpoint has one (a text-only test checkpoint may
         * not); once its first tensor is there, every other one must be too. */
        char conv1[96], pe[96];
        snprintf(conv1, sizeof conv1, "%saudio_tower.conv1.weight", m->cfg.tensor_prefix);
        if (!rc && avl_st_has(m->st, conv1)) rc = avl__audio_encoder_load(m, &m->audio);
        snprintf(pe, sizeof pe, "%svisual.patch_embed.proj.weight", m->cfg.tensor_prefix);
        if (!rc && avl_st_has(m->st, pe)) rc = avl__vision_encoder_load(m, &m->vision);
    }
    if (rc) {
        avl_model_free(m);
        return rc;
    }
    *out = m;
    return AVL_OK;
}

void avl_model_free(avl_model *m)
{
    if (!m) return;
    if (m->layers) {
        for (int64_t l = 0; l < m->n_layers; l++) {
            avl__free(m->layers[l].in_norm);
            avl__free(m->layers[l].post_norm);
        }
    }
    avl__free(m->layers);
    avl__free(m->final_norm);
    avl__free(m->inv_freq);
    avl__free(m->rope_axis);
    avl__audio_encoder_free(m->audio);
    avl__vision_encoder_free(m->vision);
    avl_st_close(m->st);
    avl__free(m);
}

const avl_config *avl_model_config(const avl_model *m) { return &m->cfg; }
const char *avl_model_backend(const avl_model *m) { return m->backend_desc; }
