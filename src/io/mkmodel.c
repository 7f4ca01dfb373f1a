/* src/io/mkmodel.c: tiny Qwen2.5-Omni checkpoints in the Hugging Face layout (avlens/mkmodel.h).
 *
 * The tensor list is avl_thinker_tensor_specs() of the config, so a written checkpoint always
 * verifies; each tensor's values come from its own RNG stream seeded by (seed, tensor name),
 * so changing one component's size leaves the other components' weights unchanged. Weights are
 * written through the streaming safetensors writer, one tensor in memory at a time, so a
 * full-size (7B, ~17 GB) checkpoint can be written on a machine with less memory than that.
 * preprocessor_config.json carries the WhisperFeatureExtractor and Qwen2VLImageProcessor fields
 * of Qwen2.5-Omni's published file (docs/checkpoint.md).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "avlens/checkpoint.h"
#include "avlens/mkmodel.h"
#include "base/internal.h"
#include "base/rng.h"
#include "io/mkmodel_internal.h"

avl_mkmodel_params avl_mkmodel_default_params(void)
{
    avl_mkmodel_params p;
    memset(&p, 0, sizeof p);
    p.seed = 0;
    p.hidden = 64;
    p.layers = 2;
    p.heads = 4;
    p.kv_heads = 2; /* GQA: 2 query heads per KV head */
    p.ffn = 128;
    p.vocab = 0;
    p.merges = 300;
    p.audio_layers = 2;
    p.audio_d = 32;
    p.audio_heads = 2;
    p.audio_ffn = 64;
    p.mel_bins = 128; /* the real front end's 128 bins, so real features fit */
    p.n_window = 100;
    p.vision_depth = 4;
    p.vision_hidden = 32;
    p.vision_heads = 2;
    p.vision_ffn = 64;
    p.patch = 14;
    p.temporal_patch = 2;
    p.merge = 2;
    p.window = 112; /* 112 px = 4x4 merged tokens per window: window attention is exercised */
    p.n_fullatt = -1;
    p.dtype = AVL_DTYPE_BF16;
    p.shards = 0;
    p.planted = false;
    p.planted_audio_gain = 1.0;
    return p;
}

static const char *torch_dtype_name(avl_dtype d)
{
    return d == AVL_DTYPE_F32 ? "float32" : d == AVL_DTYPE_F16 ? "float16" : "bfloat16";
}

/* Builds the config for p given the tokenizer (which assigns the token ids). */
static avl_status config_for(const avl_mkmodel_params *p, const avl__tiny_tok *tok, avl_config *c)
{
    avl_config_defaults(c);
    if (p->thinker_only) {
        snprintf(c->model_type, sizeof c->model_type, "qwen2_5_omni_thinker");
        c->full_model = false;
        c->tensor_prefix[0] = '\0';
    } else {
        c->has_talker = c->has_token2wav = true;
    }
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", torch_dtype_name(p->dtype));
    avl_text_config *t = &c->text;
    t->hidden_size = p->hidden;
    t->num_hidden_layers = p->layers;
    t->num_attention_heads = p->heads;
    t->num_key_value_heads = p->kv_heads;
    t->intermediate_size = p->ffn;
    t->head_dim = p->heads > 0 ? p->hidden / p->heads : 0;
    t->max_window_layers = p->layers;
    t->tie_word_embeddings = p->tie_word_embeddings;
    /* mrope_section in the published proportions 16:24:24 of head_dim/2. */
    int64_t half = t->head_dim / 2;
    t->mrope_section[0] = half / 4;
    t->mrope_section[1] = (half - half / 4) / 2;
    t->mrope_section[2] = half - t->mrope_section[0] - t->mrope_section[1];
    int64_t ntok = tok->n_tokens;
    t->vocab_size = p->vocab ? p->vocab : (ntok + 63) / 64 * 64;
    if (t->vocab_size < ntok)
        return avl__err(AVL_E_CONFIG, "mkmodel: vocab %lld is smaller than the tokenizer's %lld tokens",
                        (long long)t->vocab_size, (long long)ntok);
    avl_audio_config *a = &c->audio;
    a->num_mel_bins = p->mel_bins;
    a->d_model = p->audio_d;
    a->encoder_layers = p->audio_layers;
    a->encoder_attention_heads = p->audio_heads;
    a->encoder_ffn_dim = p->audio_ffn;
    a->n_window = p->n_window;
    a->output_dim = p->hidden;
    avl_vision_config *v = &c->vision;
    v->depth = p->vision_depth;
    v->hidden_size = p->vision_hidden;
    v->num_heads = p->vision_heads;
    v->intermediate_size = p->vision_ffn;
    v->patch_size = p->patch;
    v->temporal_patch_size = p->temporal_patch;
    v->spatial_merge_size = p->merge;
    v->window_size = p->window;
    v->out_hidden_size = p->hidden;
    if (p->n_fullatt < 0) {
        v->n_fullatt = 0;
        for (int64_t i = 1; i < p->vision_depth && v->n_fullatt < AVL_CONFIG_MAX_FULLATT; i += 2)
            v->fullatt_block_indexes[v->n_fullatt++] = i;
    } else {
        if (p->n_fullatt > AVL_CONFIG_MAX_FULLATT)
            return avl__err(AVL_E_ARG, "mkmodel: %d full-attention blocks (at most %d)", p->n_fullatt,
                            AVL_CONFIG_MAX_FULLATT);
        v->n_fullatt = p->n_fullatt;
        memcpy(v->fullatt_block_indexes, p->fullatt, (size_t)p->n_fullatt * sizeof p->fullatt[0]);
    }
    c->audio_token_id = avl__tiny_tok_id(tok, "<|AUDIO|>");
    c->image_token_id = avl__tiny_tok_id(tok, "<|IMAGE|>");
    c->video_token_id = avl__tiny_tok_id(tok, "<|VIDEO|>");
    c->vision_start_token_id = avl__tiny_tok_id(tok, "<|vision_bos|>");
    c->vision_end_token_id = avl__tiny_tok_id(tok, "<|vision_eos|>");
    c->audio_start_token_id = avl__tiny_tok_id(tok, "<|audio_bos|>");
    c->audio_end_token_id = avl__tiny_tok_id(tok, "<|audio_eos|>");
    c->user_token_id = avl__tiny_tok_id(tok, "user");
    if (c->user_token_id < 0) c->user_token_id = avl__tiny_tok_id(tok, "u"); /* with very few merges */
    c->bos_token_id = avl__tiny_tok_id(tok, "<|im_start|>");
    c->eos_token_id = avl__tiny_tok_id(tok, "<|im_end|>");
    c->pad_token_id = avl__tiny_tok_id(tok, "<|endoftext|>");
    return avl_config_validate(c, "mkmodel config");
}

avl_status avl_mkmodel_config(const avl_mkmodel_params *p, avl_config *out)
{
    if (!p || !out) return avl__err(AVL_E_ARG, "avl_mkmodel_config: NULL argument");
    avl__tiny_tok tok;
    avl_status rc = avl__tiny_tok_build(p->merges, &tok);
    if (rc) return rc;
    rc = config_for(p, &tok, out);
    avl__tiny_tok_free(&tok);
    return rc;
}

static avl_status write_text(const char *dir, const char *name, const char *text)
{
    char *path = avl__path_join(dir, name);
    if (!path) return avl__err(AVL_E_NOMEM, "mkmodel: out of memory");
    avl_status rc = AVL_OK;
    FILE *f = fopen(path, "wb");
    if (!f) rc = avl__err(AVL_E_IO, "%s: cannot create: %s", path, strerror(errno));
    else {
        bool ok = fputs(text, f) >= 0;
        if (fclose(f) || !ok) rc = avl__err(AVL_E_IO, "%s: write failed", path);
    }
    avl__free(path);
    return rc;
}

/* preprocessor_config.json as Qwen2.5-Omni publishes it (keys sorted, as transformers saves). */
static avl_status write_preprocessor(const avl_config *c, const char *dir)
{
    json_t *o = json_object(), *mean = json_array(), *std = json_array();
    const double m[3] = {0.48145466, 0.4578275, 0.40821073}, s[3] = {0.26862954, 0.26130258, 0.27577711};
    int bad = !o || !mean || !std;
    for (int i = 0; !bad && i < 3; i++)
        bad |= json_array_append_new(mean, json_real(m[i])) | json_array_append_new(std, json_real(s[i]));
    if (!bad) {
        bad |= json_object_set_new(o, "chunk_length", json_integer(300));
        bad |= json_object_set_new(o, "dither", json_real(0.0));
        bad |= json_object_set_new(o, "feature_extractor_type", json_string("WhisperFeatureExtractor"));
        bad |= json_object_set_new(o, "feature_size", json_integer(c->audio.num_mel_bins));
        bad |= json_object_set_new(o, "hop_length", json_integer(160));
        bad |= json_object_set(o, "image_mean", mean);
        bad |= json_object_set_new(o, "image_processor_type", json_string("Qwen2VLImageProcessor"));
        bad |= json_object_set(o, "image_std", std);
        bad |= json_object_set_new(o, "max_pixels", json_integer(12845056));
        bad |= json_object_set_new(o, "merge_size", json_integer(c->vision.spatial_merge_size));
        bad |= json_object_set_new(o, "min_pixels", json_integer(3136));
        bad |= json_object_set_new(o, "n_fft", json_integer(400));
        bad |= json_object_set_new(o, "n_samples", json_integer(4800000));
        bad |= json_object_set_new(o, "nb_max_frames", json_integer(30000));
        bad |= json_object_set_new(o, "padding_side", json_string("right"));
        bad |= json_object_set_new(o, "padding_value", json_real(0.0));
        bad |= json_object_set_new(o, "patch_size", json_integer(c->vision.patch_size));
        bad |= json_object_set_new(o, "processor_class", json_string("Qwen2_5OmniProcessor"));
        bad |= json_object_set_new(o, "return_attention_mask", json_true());
        bad |= json_object_set_new(o, "sampling_rate", json_integer(16000));
        bad |= json_object_set_new(o, "temporal_patch_size", json_integer(c->vision.temporal_patch_size));
    }
    char *txt = bad ? NULL : json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    json_decref(mean);
    json_decref(std);
    json_decref(o);
    if (!txt) return avl__err(AVL_E_NOMEM, "mkmodel: out of memory");
    size_t n = strlen(txt);
    char *withnl = avl__malloc(n + 2);
    avl_status rc;
    if (!withnl) rc = avl__err(AVL_E_NOMEM, "mkmodel: out of memory");
    else {
        memcpy(withnl, txt, n);
        memcpy(withnl + n, "\n", 2);
        rc = write_text(dir, "preprocessor_config.json", withnl);
    }
    free(txt);
    avl__free(withnl);
    return rc;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Norm weights 1, norm biases 0 (RMSNorm and LayerNorm), everything else N(0, 0.02). */
static void fill(const avl_tensor_spec *s, uint64_t seed, float *x)
{
    bool norm = strstr(s->name, "norm") || strstr(s->name, ".ln_");
    if (norm && has_suffix(s->name, ".weight")) {
        for (int64_t i = 0; i < s->numel; i++) x[i] = 1.0f;
        return;
    }
    if (norm && has_suffix(s->name, ".bias")) {
        memset(x, 0, (size_t)s->numel * sizeof *x);
        return;
    }
    avl__rng r;
    avl__rng_seed_str(&r, seed, s->name);
    for (int64_t i = 0; i < s->numel; i++) x[i] = (float)(0.02 * avl__rng_normal(&r));
}

/* Shards the writer makes with limit max, mirroring huggingface_hub's
 * split_torch_state_dict_into_shards as avl_st_writer_save_sharded does: tensors in insertion
 * order; a tensor that would tip the open shard over max closes it; a tensor larger than max
 * gets a shard of its own. */
static int64_t count_shards(const size_t *bytes, int64_t n, size_t max)
{
    int64_t shards = 0;
    size_t cur = 0;
    bool open = false;
    for (int64_t i = 0; i < n; i++) {
        if (bytes[i] > max) {
            shards++;
            continue;
        }
        if (open && cur + bytes[i] > max) {
            shards++;
            open = false;
        }
        if (!open) {
            open = true;
            cur = 0;
        }
        cur += bytes[i];
    }
    return shards + (open ? 1 : 0);
}

/* The smallest per-shard limit that gives at most p->shards shards, so that --shards N yields
 * N balanced shards (fewer only when there are fewer tensors). */
static size_t shard_limit(const avl_tensor_spec *specs, int64_t n, const avl_mkmodel_params *p, size_t total)
{
    size_t *bytes = avl__malloc((size_t)(n ? n : 1) * sizeof *bytes);
    size_t lo = (total + (size_t)p->shards - 1) / (size_t)p->shards, hi = total;
    if (lo < 1) lo = 1;
    if (!bytes) return lo; /* still a valid (if less balanced) answer */
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) /* the order write_weights declares them */
        if (!(specs[i].part == AVL_PART_LM_HEAD && specs[i].optional))
            bytes[m++] = (size_t)specs[i].numel * avl_dtype_size(p->dtype);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (count_shards(bytes, m, mid) <= p->shards) hi = mid;
        else lo = mid + 1;
    }
    avl__free(bytes);
    return lo;
}

/* Declares every stored tensor to a streaming writer, then makes, converts, writes and frees
 * them one at a time in the order the files need them: peak memory is one tensor (its fp32
 * values and its stored bytes), whatever the checkpoint's size. */
static avl_status write_weights(const avl_mkmodel_params *p, const avl_config *c, const avl__tiny_tok *tok,
                                const char *dir)
{
    avl_tensor_spec *specs = NULL;
    int64_t n = 0;
    avl_st_stream *w = NULL;
    int64_t *spec_of = NULL; /* (n,) declaration index -> spec index */
    float *x = NULL;
    void *y = NULL;
    char *path = NULL;
    avl_status rc = avl_thinker_tensor_specs(c, &specs, &n);
    if (rc) return rc;
    if ((rc = avl_st_stream_new(&w))) goto done;
    if ((rc = avl_st_stream_set_metadata(w, "format", "pt"))) goto done;
    if (!(spec_of = avl__malloc((size_t)(n ? n : 1) * sizeof *spec_of))) {
        rc = avl__err(AVL_E_NOMEM, "mkmodel: out of memory");
        goto done;
    }
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        const avl_tensor_spec *s = &specs[i];
        if (s->part == AVL_PART_LM_HEAD && s->optional) continue; /* tied: not stored */
        spec_of[avl_st_stream_count(w)] = i;
        if ((rc = avl_st_stream_declare(w, s->name, p->dtype, s->ndim, s->shape))) goto done;
        total += (size_t)s->numel * avl_dtype_size(p->dtype);
    }
    if (p->shards <= 0) {
        if (!(path = avl__path_join(dir, "model.safetensors"))) {
            rc = avl__err(AVL_E_NOMEM, "mkmodel: out of memory");
            goto done;
        }
        rc = avl_st_stream_begin(w, path);
    } else {
        rc = avl_st_stream_begin_sharded(w, dir, shard_limit(specs, n, p, total));
    }
    for (int64_t k; !rc && (k = avl_st_stream_next(w)) >= 0;) {
        const avl_tensor_spec *s = &specs[spec_of[k]];
        const size_t nbytes = (size_t)s->numel * avl_dtype_size(p->dtype);
        x = avl__malloc((size_t)s->numel * sizeof *x);
        y = avl__malloc(nbytes);
        if (!x || !y) {
            rc = avl__err(AVL_E_NOMEM, "mkmodel: out of memory for '%s'", s->name);
            goto done;
        }
        fill(s, p->seed, x);
        if (p->planted) avl__mkmodel_plant(p, c, tok, s, x);
        if (p->dtype == AVL_DTYPE_F32) memcpy(y, x, (size_t)s->numel * 4);
        else {
            uint8_t *b = y;
            for (int64_t j = 0; j < s->numel; j++) {
                uint16_t h = p->dtype == AVL_DTYPE_BF16 ? avl_f32_to_bf16(x[j]) : avl_f32_to_f16(x[j]);
                b[2 * j] = (uint8_t)h; /* little-endian, whatever the host */
                b[2 * j + 1] = (uint8_t)(h >> 8);
            }
        }
        rc = avl_st_stream_write(w, s->name, y, nbytes);
        avl__free(x);
        avl__free(y);
        x = NULL;
        y = NULL;
    }
    if (!rc) rc = avl_st_stream_finish(w);
done:
    avl__free(path);
    avl__free(x);
    avl__free(y);
    avl__free(spec_of);
    avl_st_stream_free(w);
    avl_tensor_specs_free(specs);
    return rc;
}

avl_status avl_mkmodel_write(const avl_mkmodel_params *p, const char *dir)
{
    if (!p || !dir) return avl__err(AVL_E_ARG, "avl_mkmodel_write: NULL argument");
    if (p->dtype != AVL_DTYPE_BF16 && p->dtype != AVL_DTYPE_F16 && p->dtype != AVL_DTYPE_F32)
        return avl__err(AVL_E_ARG, "mkmodel: dtype %s is not bf16, f16 or f32", avl_dtype_name(p->dtype));
    if (p->shards < 0 || p->shards > 99999) return avl__err(AVL_E_ARG, "mkmodel: %d shards", p->shards);
    if (p->planted) {
        avl_status prc = avl__mkmodel_planted_check(p);
        if (prc) return prc;
    }
    if (mkdir(dir, 0777) && errno != EEXIST) return avl__err(AVL_E_IO, "%s: cannot create: %s", dir, strerror(errno));
    avl__tiny_tok tok;
    avl_status rc = avl__tiny_tok_build(p->merges, &tok);
    if (rc) return rc;
    avl_config c;
    char *json = NULL;
    if ((rc = config_for(p, &tok, &c))) goto done;
    if ((rc = avl_config_to_json(&c, &json))) goto done;
    if ((rc = write_text(dir, "config.json", json))) goto done;
    if ((rc = avl__tiny_tok_write(&tok, dir, c.text.max_position_embeddings))) goto done;
    if ((rc = write_preprocessor(&c, dir))) goto done;
    rc = write_weights(p, &c, &tok, dir);
done:
    avl_config_string_free(json);
    avl__tiny_tok_free(&tok);
    return rc;
}
