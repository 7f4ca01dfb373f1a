/* src/io/checkpoint.c: the thinker's tensor list from a config, verification of a safetensors
 * set against it, and the checkpoint folder object.
 *
 * Names and shapes mirror transformers' modeling_qwen2_5_omni.py:
 *   Qwen2_5OmniAudioEncoder: conv1/conv2 (Conv1d, bias), audio_bos_eos_token (Embedding(2, out)),
 *     layers.N (Qwen2_5OmniAudioAttention: q/v/out_proj with bias, k_proj without;
 *     self_attn_layer_norm and final_layer_norm are LayerNorms with bias; fc1, fc2 with bias),
 *     ln_post (LayerNorm), proj (Linear with bias). positional_embedding is a non-persistent
 *     buffer and avg_pooler has no parameters, so neither is stored.
 *   Qwen2_5OmniVisionEncoder: patch_embed.proj (Conv3d, no bias), blocks.N (norm1/norm2 RMSNorm,
 *     attn.q/k/v/proj with bias, mlp gate/up/down_proj with bias), merger (ln_q RMSNorm,
 *     mlp.0 and mlp.2 Linear with bias). rotary_pos_emb.inv_freq is a non-persistent buffer.
 *   Qwen2_5OmniThinkerTextModel: embed_tokens, layers.N (input_layernorm, self_attn q/k/v_proj
 *     with bias, o_proj without, post_attention_layernorm, mlp gate/up/down_proj without bias),
 *     norm; the thinker's lm_head (no bias).
 * Linear weights are [out_features, in_features], as torch stores them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "avlens/checkpoint.h"
#include "base/internal.h"

const char *avl_part_name(avl_part p)
{
    switch (p) {
    case AVL_PART_AUDIO: return "audio";
    case AVL_PART_VISION: return "vision";
    case AVL_PART_LLM: return "llm";
    case AVL_PART_LM_HEAD: return "lm_head";
    default: return "?";
    }
}

typedef struct {
    avl_tensor_spec *v;
    int64_t n, cap;
    const char *prefix;
    bool oom;
} spec_list;

/* Appends "<prefix><fmt...>" with the given dims (ndim of them, a 0 ends the list early). */
static void add(spec_list *l, avl_part part, bool optional, int ndim, const int64_t *dims, const char *fmt, ...)
    AVL__PRINTF(6, 7);

static void add(spec_list *l, avl_part part, bool optional, int ndim, const int64_t *dims, const char *fmt, ...)
{
    if (l->oom) return;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 256;
        avl_tensor_spec *v = avl__realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    avl_tensor_spec *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    char tail[AVL_TENSOR_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    snprintf(s->name, sizeof s->name, "%s%s", l->prefix, tail);
    s->part = part;
    s->optional = optional;
    s->ndim = ndim;
    s->numel = 1;
    for (int i = 0; i < ndim; i++) {
        s->shape[i] = dims[i];
        s->numel *= dims[i];
    }
}

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define N1(a) 1, D(a)
#define N2(a, b) 2, D(a, b)

static void audio_specs(spec_list *l, const avl_audio_config *a)
{
    const avl_part P = AVL_PART_AUDIO;
    int64_t d = a->d_model, f = a->encoder_ffn_dim, o = a->output_dim;
    add(l, P, false, 3, D(d, a->num_mel_bins, 3), "audio_tower.conv1.weight");
    add(l, P, false, N1(d), "audio_tower.conv1.bias");
    add(l, P, false, 3, D(d, d, 3), "audio_tower.conv2.weight");
    add(l, P, false, N1(d), "audio_tower.conv2.bias");
    add(l, P, true, N2(2, o), "audio_tower.audio_bos_eos_token.weight");
    for (int64_t i = 0; i < a->encoder_layers; i++) {
        const char *L = "audio_tower.layers";
        long long n = (long long)i;
        add(l, P, false, N2(d, d), "%s.%lld.self_attn.q_proj.weight", L, n);
        add(l, P, false, N1(d), "%s.%lld.self_attn.q_proj.bias", L, n);
        add(l, P, false, N2(d, d), "%s.%lld.self_attn.k_proj.weight", L, n); /* no bias (Whisper) */
        add(l, P, false, N2(d, d), "%s.%lld.self_attn.v_proj.weight", L, n);
        add(l, P, false, N1(d), "%s.%lld.self_attn.v_proj.bias", L, n);
        add(l, P, false, N2(d, d), "%s.%lld.self_attn.out_proj.weight", L, n);
        add(l, P, false, N1(d), "%s.%lld.self_attn.out_proj.bias", L, n);
        add(l, P, false, N1(d), "%s.%lld.self_attn_layer_norm.weight", L, n);
        add(l, P, false, N1(d), "%s.%lld.self_attn_layer_norm.bias", L, n);
        add(l, P, false, N2(f, d), "%s.%lld.fc1.weight", L, n);
        add(l, P, false, N1(f), "%s.%lld.fc1.bias", L, n);
        add(l, P, false, N2(d, f), "%s.%lld.fc2.weight", L, n);
        add(l, P, false, N1(d), "%s.%lld.fc2.bias", L, n);
        add(l, P, false, N1(d), "%s.%lld.final_layer_norm.weight", L, n);
        add(l, P, false, N1(d), "%s.%lld.final_layer_norm.bias", L, n);
    }
    add(l, P, false, N1(d), "audio_tower.ln_post.weight");
    add(l, P, false, N1(d), "audio_tower.ln_post.bias");
    add(l, P, false, N2(o, d), "audio_tower.proj.weight");
    add(l, P, false, N1(o), "audio_tower.proj.bias");
}

static void vision_specs(spec_list *l, const avl_vision_config *v)
{
    const avl_part P = AVL_PART_VISION;
    int64_t h = v->hidden_size, f = v->intermediate_size;
    int64_t m = h * v->spatial_merge_size * v->spatial_merge_size; /* merged patch width */
    add(l, P, false, 5, D(h, v->in_channels, v->temporal_patch_size, v->patch_size, v->patch_size),
        "visual.patch_embed.proj.weight");
    for (int64_t i = 0; i < v->depth; i++) {
        long long n = (long long)i;
        add(l, P, false, N1(h), "visual.blocks.%lld.norm1.weight", n);
        add(l, P, false, N1(h), "visual.blocks.%lld.norm2.weight", n);
        static const char *qkvp[4] = {"q", "k", "v", "proj"};
        for (int j = 0; j < 4; j++) {
            add(l, P, false, N2(h, h), "visual.blocks.%lld.attn.%s.weight", n, qkvp[j]);
            add(l, P, false, N1(h), "visual.blocks.%lld.attn.%s.bias", n, qkvp[j]);
        }
        add(l, P, false, N2(f, h), "visual.blocks.%lld.mlp.gate_proj.weight", n);
        add(l, P, false, N1(f), "visual.blocks.%lld.mlp.gate_proj.bias", n);
        add(l, P, false, N2(f, h), "visual.blocks.%lld.mlp.up_proj.weight", n);
        add(l, P, false, N1(f), "visual.blocks.%lld.mlp.up_proj.bias", n);
        add(l, P, false, N2(h, f), "visual.blocks.%lld.mlp.down_proj.weight", n);
        add(l, P, false, N1(h), "visual.blocks.%lld.mlp.down_proj.bias", n);
    }
    add(l, P, false, N1(h), "visual.merger.ln_q.weight");
    add(l, P, false, N2(m, m), "visual.merger.mlp.0.weight");
    add(l, P, false, N1(m), "visual.merger.mlp.0.bias");
    add(l, P, false, N2(v->out_hidden_size, m), "visual.merger.mlp.2.weight");
    add(l, P, false, N1(v->out_hidden_size), "visual.merger.mlp.2.bias");
}

static void text_specs(spec_list *l, const avl_text_config *t)
{
    const avl_part P = AVL_PART_LLM;
    int64_t H = t->hidden_size, F = t->intermediate_size, V = t->vocab_size;
    int64_t q = t->num_attention_heads * t->head_dim, kv = t->num_key_value_heads * t->head_dim;
    add(l, P, false, N2(V, H), "model.embed_tokens.weight");
    for (int64_t i = 0; i < t->num_hidden_layers; i++) {
        long long n = (long long)i;
        add(l, P, false, N1(H), "model.layers.%lld.input_layernorm.weight", n);
        add(l, P, false, N2(q, H), "model.layers.%lld.self_attn.q_proj.weight", n);
        add(l, P, false, N1(q), "model.layers.%lld.self_attn.q_proj.bias", n);
        add(l, P, false, N2(kv, H), "model.layers.%lld.self_attn.k_proj.weight", n);
        add(l, P, false, N1(kv), "model.layers.%lld.self_attn.k_proj.bias", n);
        add(l, P, false, N2(kv, H), "model.layers.%lld.self_attn.v_proj.weight", n);
        add(l, P, false, N1(kv), "model.layers.%lld.self_attn.v_proj.bias", n);
        add(l, P, false, N2(H, q), "model.layers.%lld.self_attn.o_proj.weight", n);
        add(l, P, false, N1(H), "model.layers.%lld.post_attention_layernorm.weight", n);
        add(l, P, false, N2(F, H), "model.layers.%lld.mlp.gate_proj.weight", n);
        add(l, P, false, N2(F, H), "model.layers.%lld.mlp.up_proj.weight", n);
        add(l, P, false, N2(H, F), "model.layers.%lld.mlp.down_proj.weight", n);
    }
    add(l, P, false, N1(H), "model.norm.weight");
    add(l, AVL_PART_LM_HEAD, t->tie_word_embeddings, N2(V, H), "lm_head.weight");
}

avl_status avl_thinker_tensor_specs(const avl_config *c, avl_tensor_spec **out, int64_t *n)
{
    if (!c || !out || !n) return avl__err(AVL_E_ARG, "avl_thinker_tensor_specs: NULL argument");
    *out = NULL;
    *n = 0;
    spec_list l = {.prefix = c->tensor_prefix};
    audio_specs(&l, &c->audio);
    vision_specs(&l, &c->vision);
    text_specs(&l, &c->text);
    if (l.oom) {
        avl__free(l.v);
        return avl__err(AVL_E_NOMEM, "tensor list: out of memory (%lld entries)", (long long)l.n);
    }
    *out = l.v;
    *n = l.n;
    return AVL_OK;
}

void avl_tensor_specs_free(avl_tensor_spec *specs) { avl__free(specs); }

int64_t avl_config_param_counts(const avl_config *c, int64_t counts[AVL_PART_COUNT])
{
    for (int p = 0; p < AVL_PART_COUNT; p++) counts[p] = 0;
    avl_tensor_spec *s;
    int64_t n;
    if (avl_thinker_tensor_specs(c, &s, &n)) return -1;
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (s[i].part == AVL_PART_LM_HEAD && s[i].optional) continue; /* tied: shares embed_tokens */
        counts[s[i].part] += s[i].numel;
        total += s[i].numel;
    }
    avl_tensor_specs_free(s);
    return total;
}

/* "[3584,1280]" */
static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

avl_status avl_checkpoint_verify(const avl_config *c, const avl_st_set *set, const char *where)
{
    if (!c || !set) return avl__err(AVL_E_ARG, "avl_checkpoint_verify: NULL argument");
    if (!where) where = "checkpoint";
    avl_tensor_spec *specs;
    int64_t n;
    avl_status rc = avl_thinker_tensor_specs(c, &specs, &n);
    if (rc) return rc;
    for (int64_t i = 0; i < n && rc == AVL_OK; i++) {
        const avl_tensor_spec *s = &specs[i];
        char want[160], got[160];
        shape_str(want, sizeof want, s->ndim, s->shape);
        if (!avl_st_has(set, s->name)) {
            if (s->optional) continue;
            rc = avl__err(AVL_E_NOTFOUND, "checkpoint %s: no tensor '%s' (config needs %s)", where, s->name, want);
            break;
        }
        avl_tensor_view v;
        rc = avl_st_get(set, s->name, &v);
        if (rc) break;
        bool same = v.ndim == s->ndim;
        for (int d = 0; same && d < s->ndim; d++) same = v.shape[d] == s->shape[d];
        if (!same) {
            shape_str(got, sizeof got, v.ndim, v.shape);
            rc = avl__err(AVL_E_SHAPE, "%s: tensor '%s' has shape %s, config needs %s", v.file, s->name, got, want);
            break;
        }
        if (v.dtype != AVL_DTYPE_BF16 && v.dtype != AVL_DTYPE_F16 && v.dtype != AVL_DTYPE_F32) {
            rc = avl__err(AVL_E_SHAPE, "%s: tensor '%s' has dtype %s, a float type (BF16, F16, F32) is needed",
                          v.file, s->name, avl_dtype_name(v.dtype));
            break;
        }
    }
    avl_tensor_specs_free(specs);
    return rc;
}

/* ---- the folder ---- */

struct avl_checkpoint {
    char *dir;
    avl_config config;
    avl_st_set *tensors;
    /* The tokenizer joins here once src/io/tokenizer.c exists (loaded from dir by
     * avl_checkpoint_open, released by avl_checkpoint_close). */
};

avl_status avl_checkpoint_open(const char *dir, avl_checkpoint **out)
{
    if (!dir || !out) return avl__err(AVL_E_ARG, "avl_checkpoint_open: NULL argument");
    *out = NULL;
    avl_checkpoint *ck = avl__calloc(1, sizeof *ck);
    if (!ck) return avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
    avl_status rc = AVL_OK;
    ck->dir = avl__strdup(dir);
    if (!ck->dir) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    if ((rc = avl_config_load(dir, &ck->config))) goto fail;
    if ((rc = avl_st_open_dir(dir, &ck->tensors))) goto fail;
    if ((rc = avl_checkpoint_verify(&ck->config, ck->tensors, dir))) goto fail;
    *out = ck;
    return AVL_OK;
fail:
    avl_checkpoint_close(ck);
    return rc;
}

void avl_checkpoint_close(avl_checkpoint *ck)
{
    if (!ck) return;
    avl_st_close(ck->tensors);
    avl__free(ck->dir);
    avl__free(ck);
}

const avl_config *avl_checkpoint_config(const avl_checkpoint *ck) { return ck ? &ck->config : NULL; }
const avl_st_set *avl_checkpoint_tensors(const avl_checkpoint *ck) { return ck ? ck->tensors : NULL; }
const char *avl_checkpoint_dir(const avl_checkpoint *ck) { return ck ? ck->dir : NULL; }

avl_status avl_checkpoint_get(const avl_checkpoint *ck, const char *name, avl_tensor_view *out)
{
    if (!ck || !name || !out) return avl__err(AVL_E_ARG, "avl_checkpoint_get: NULL argument");
    return avl_st_get(ck->tensors, name, out);
}
