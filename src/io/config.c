/* src/io/config.c: config.json of a Qwen2.5-Omni checkpoint -> avl_config, and back.
 *
 * Key names and class defaults follow Hugging Face transformers'
 * models/qwen2_5_omni/configuration_qwen2_5_omni.py (Qwen2_5OmniTextConfig,
 * Qwen2_5OmniAudioEncoderConfig, Qwen2_5OmniVisionEncoderConfig, Qwen2_5OmniThinkerConfig,
 * Qwen2_5OmniConfig, the 4.5x releases); docs/checkpoint.md lists each default and where the
 * published 7B/3B values come from. JSON is read with jansson.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "avlens/config.h"
#include "base/internal.h"
#include "io/st_internal.h"

/* Where we are while reading: the file label and the key path of the current object. */
typedef struct {
    const char *label;
    char path[128]; /* "thinker_config.text_config." (with the trailing dot) or "" */
} ctx;

static void copy_name(char *dst, const char *src)
{
    snprintf(dst, AVL_CONFIG_NAME, "%s", src);
}

/* An integer key: absent or null keeps *v (the default). JSON reals that are whole numbers
 * are accepted (some writers emit 1280.0). */
static avl_status get_int(const ctx *c, json_t *obj, const char *key, int64_t *v)
{
    json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x)) return AVL_OK;
    if (json_is_integer(x)) {
        *v = (int64_t)json_integer_value(x);
        return AVL_OK;
    }
    if (json_is_real(x)) {
        double d = json_real_value(x);
        if (d == floor(d) && fabs(d) < 9.0e15) {
            *v = (int64_t)d;
            return AVL_OK;
        }
    }
    return avl__err(AVL_E_CONFIG, "%s: %s%s must be an integer", c->label, c->path, key);
}

/* Like get_int, but a null value means "absent" and gives -1. */
static avl_status get_id(const ctx *c, json_t *obj, const char *key, int64_t *v)
{
    json_t *x = json_object_get(obj, key);
    if (x && json_is_null(x)) {
        *v = -1;
        return AVL_OK;
    }
    if (x && json_is_array(x)) { /* eos_token_id may be a list: the first is the one we keep */
        x = json_array_get(x, 0);
        if (!x) return AVL_OK;
        if (!json_is_integer(x))
            return avl__err(AVL_E_CONFIG, "%s: %s%s must be an integer or a list of integers",
                            c->label, c->path, key);
        *v = (int64_t)json_integer_value(x);
        return AVL_OK;
    }
    return get_int(c, obj, key, v);
}

static avl_status get_num(const ctx *c, json_t *obj, const char *key, double *v)
{
    json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x)) return AVL_OK;
    if (!json_is_number(x))
        return avl__err(AVL_E_CONFIG, "%s: %s%s must be a number", c->label, c->path, key);
    *v = json_number_value(x);
    return AVL_OK;
}

static avl_status get_bool(const ctx *c, json_t *obj, const char *key, bool *v)
{
    json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x)) return AVL_OK;
    if (!json_is_boolean(x))
        return avl__err(AVL_E_CONFIG, "%s: %s%s must be true or false", c->label, c->path, key);
    *v = json_is_true(x);
    return AVL_OK;
}

static avl_status get_str(const ctx *c, json_t *obj, const char *key, char *v)
{
    json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x)) return AVL_OK;
    if (!json_is_string(x))
        return avl__err(AVL_E_CONFIG, "%s: %s%s must be a string", c->label, c->path, key);
    if (strlen(json_string_value(x)) >= AVL_CONFIG_NAME)
        return avl__err(AVL_E_CONFIG, "%s: %s%s is too long (%zu bytes)", c->label, c->path, key,
                        strlen(json_string_value(x)));
    copy_name(v, json_string_value(x));
    return AVL_OK;
}

/* A required sub-object: "path.key" becomes the new path. */
static avl_status get_obj(const ctx *c, json_t *obj, const char *key, bool required, json_t **out,
                          ctx *sub)
{
    json_t *x = json_object_get(obj, key);
    *out = NULL;
    if (!x || json_is_null(x)) {
        if (!required) return AVL_OK;
        return avl__err(AVL_E_CONFIG, "%s: missing key %s%s", c->label, c->path, key);
    }
    if (!json_is_object(x))
        return avl__err(AVL_E_CONFIG, "%s: %s%s must be an object", c->label, c->path, key);
    *out = x;
    if (sub) {
        sub->label = c->label;
        /* path + key + "." (keys here are short constants; truncation is impossible in practice
         * and would only shorten a message) */
        size_t a = strlen(c->path), b = strlen(key);
        if (a + b + 2 > sizeof sub->path) b = a + 2 < sizeof sub->path ? sizeof sub->path - a - 2 : 0;
        if (a + b + 2 > sizeof sub->path) a = sizeof sub->path - 2 - b;
        memcpy(sub->path, c->path, a);
        memcpy(sub->path + a, key, b);
        sub->path[a + b] = '.';
        sub->path[a + b + 1] = '\0';
    }
    return AVL_OK;
}

#define TRY(e)                                                                                     \
    do {                                                                                           \
        avl_status rc_ = (e);                                                                      \
        if (rc_) return rc_;                                                                       \
    } while (0)

/* rope_scaling (4.5x) or rope_parameters (5.x): type, mrope_section and, in the latter, theta. */
static avl_status read_rope(const ctx *c, json_t *t, avl_text_config *x)
{
    const char *keys[2] = {"rope_scaling", "rope_parameters"};
    for (int k = 0; k < 2; k++) {
        json_t *r;
        ctx rc;
        TRY(get_obj(c, t, keys[k], false, &r, &rc));
        if (!r) continue;
        char type[AVL_CONFIG_NAME] = "";
        TRY(get_str(&rc, r, "type", type));
        TRY(get_str(&rc, r, "rope_type", type)); /* rope_type wins, as transformers copies type into it */
        if (type[0]) {
            if (strcmp(type, "default") && strcmp(type, "mrope"))
                return avl__err(AVL_E_CONFIG, "%s: %srope_type '%s' is not supported (default or mrope)",
                                c->label, rc.path, type);
            copy_name(x->rope_type, type);
        }
        TRY(get_num(&rc, r, "rope_theta", &x->rope_theta));
        json_t *ms = json_object_get(r, "mrope_section");
        if (ms && !json_is_null(ms)) {
            if (!json_is_array(ms) || json_array_size(ms) != 3)
                return avl__err(AVL_E_CONFIG, "%s: %smrope_section must be a list of 3 integers",
                                c->label, rc.path);
            for (size_t i = 0; i < 3; i++) {
                json_t *e = json_array_get(ms, i);
                if (!json_is_integer(e))
                    return avl__err(AVL_E_CONFIG, "%s: %smrope_section must be a list of 3 integers",
                                    c->label, rc.path);
                x->mrope_section[i] = (int64_t)json_integer_value(e);
            }
        }
    }
    return AVL_OK;
}

static avl_status read_text(const ctx *c, json_t *t, avl_text_config *x)
{
    TRY(get_int(c, t, "hidden_size", &x->hidden_size));
    TRY(get_int(c, t, "intermediate_size", &x->intermediate_size));
    TRY(get_int(c, t, "num_hidden_layers", &x->num_hidden_layers));
    TRY(get_int(c, t, "num_attention_heads", &x->num_attention_heads));
    /* transformers: num_key_value_heads None -> num_attention_heads */
    json_t *kv = json_object_get(t, "num_key_value_heads");
    if (kv && json_is_null(kv)) x->num_key_value_heads = x->num_attention_heads;
    else TRY(get_int(c, t, "num_key_value_heads", &x->num_key_value_heads));
    x->head_dim = 0;
    TRY(get_int(c, t, "head_dim", &x->head_dim));
    TRY(get_int(c, t, "vocab_size", &x->vocab_size));
    TRY(get_int(c, t, "max_position_embeddings", &x->max_position_embeddings));
    TRY(get_num(c, t, "rms_norm_eps", &x->rms_norm_eps));
    TRY(get_num(c, t, "rope_theta", &x->rope_theta));
    TRY(read_rope(c, t, x));
    TRY(get_bool(c, t, "tie_word_embeddings", &x->tie_word_embeddings));
    TRY(get_bool(c, t, "use_sliding_window", &x->use_sliding_window));
    TRY(get_int(c, t, "sliding_window", &x->sliding_window));
    TRY(get_int(c, t, "max_window_layers", &x->max_window_layers));
    TRY(get_str(c, t, "hidden_act", x->hidden_act));
    if (x->head_dim == 0 && x->num_attention_heads > 0)
        x->head_dim = x->hidden_size / x->num_attention_heads; /* exactness is checked later */
    return AVL_OK;
}

static avl_status read_audio(const ctx *c, json_t *a, avl_audio_config *x)
{
    TRY(get_int(c, a, "num_mel_bins", &x->num_mel_bins));
    TRY(get_int(c, a, "d_model", &x->d_model));
    TRY(get_int(c, a, "encoder_layers", &x->encoder_layers));
    TRY(get_int(c, a, "encoder_attention_heads", &x->encoder_attention_heads));
    TRY(get_int(c, a, "encoder_ffn_dim", &x->encoder_ffn_dim));
    TRY(get_int(c, a, "max_source_positions", &x->max_source_positions));
    TRY(get_int(c, a, "n_window", &x->n_window));
    TRY(get_int(c, a, "output_dim", &x->output_dim));
    TRY(get_str(c, a, "activation_function", x->activation_function));
    TRY(get_bool(c, a, "scale_embedding", &x->scale_embedding));
    return AVL_OK;
}

static avl_status read_vision(const ctx *c, json_t *v, avl_vision_config *x)
{
    TRY(get_int(c, v, "depth", &x->depth));
    /* Older dumps carry "embed_dim" beside "hidden_size"; hidden_size is what the model reads. */
    if (!json_object_get(v, "hidden_size")) TRY(get_int(c, v, "embed_dim", &x->hidden_size));
    TRY(get_int(c, v, "hidden_size", &x->hidden_size));
    TRY(get_int(c, v, "num_heads", &x->num_heads));
    TRY(get_int(c, v, "intermediate_size", &x->intermediate_size));
    TRY(get_int(c, v, "patch_size", &x->patch_size));
    TRY(get_int(c, v, "temporal_patch_size", &x->temporal_patch_size));
    TRY(get_int(c, v, "spatial_merge_size", &x->spatial_merge_size));
    TRY(get_int(c, v, "window_size", &x->window_size));
    if (json_object_get(v, "in_channels")) TRY(get_int(c, v, "in_channels", &x->in_channels));
    else TRY(get_int(c, v, "in_chans", &x->in_channels));
    TRY(get_int(c, v, "out_hidden_size", &x->out_hidden_size));
    TRY(get_str(c, v, "hidden_act", x->hidden_act));
    json_t *fa = json_object_get(v, "fullatt_block_indexes");
    if (fa && !json_is_null(fa)) {
        if (!json_is_array(fa))
            return avl__err(AVL_E_CONFIG, "%s: %sfullatt_block_indexes must be a list of integers",
                            c->label, c->path);
        if (json_array_size(fa) > AVL_CONFIG_MAX_FULLATT)
            return avl__err(AVL_E_CONFIG, "%s: %sfullatt_block_indexes has %zu entries (at most %d)",
                            c->label, c->path, json_array_size(fa), AVL_CONFIG_MAX_FULLATT);
        x->n_fullatt = (int)json_array_size(fa);
        for (int i = 0; i < x->n_fullatt; i++) {
            json_t *e = json_array_get(fa, (size_t)i);
            if (!json_is_integer(e))
                return avl__err(AVL_E_CONFIG, "%s: %sfullatt_block_indexes must be a list of integers",
                                c->label, c->path);
            x->fullatt_block_indexes[i] = (int64_t)json_integer_value(e);
        }
    }
    return AVL_OK;
}

/* The thinker's own keys and its three sub-configs; c->path is "" or "thinker_config.". */
static avl_status read_thinker(const ctx *c, json_t *t, avl_config *out)
{
    json_t *sub;
    ctx sc;
    TRY(get_obj(c, t, "text_config", true, &sub, &sc));
    TRY(read_text(&sc, sub, &out->text));
    TRY(get_obj(c, t, "audio_config", true, &sub, &sc));
    TRY(read_audio(&sc, sub, &out->audio));
    TRY(get_obj(c, t, "vision_config", true, &sub, &sc));
    TRY(read_vision(&sc, sub, &out->vision));

    /* "*_token_index" is the stored name; the attribute_map aliases "*_token_id" are read too. */
    TRY(get_int(c, t, "audio_token_index", &out->audio_token_id));
    TRY(get_int(c, t, "audio_token_id", &out->audio_token_id));
    TRY(get_int(c, t, "image_token_index", &out->image_token_id));
    TRY(get_int(c, t, "image_token_id", &out->image_token_id));
    TRY(get_int(c, t, "video_token_index", &out->video_token_id));
    TRY(get_int(c, t, "video_token_id", &out->video_token_id));
    TRY(get_int(c, t, "vision_start_token_id", &out->vision_start_token_id));
    TRY(get_int(c, t, "vision_end_token_id", &out->vision_end_token_id));
    TRY(get_int(c, t, "audio_start_token_id", &out->audio_start_token_id));
    TRY(get_int(c, t, "audio_end_token_id", &out->audio_end_token_id));
    TRY(get_int(c, t, "user_token_id", &out->user_token_id));
    TRY(get_id(c, t, "bos_token_id", &out->bos_token_id));
    TRY(get_id(c, t, "eos_token_id", &out->eos_token_id));
    TRY(get_id(c, t, "pad_token_id", &out->pad_token_id));
    TRY(get_int(c, t, "position_id_per_seconds", &out->position_id_per_seconds));
    TRY(get_num(c, t, "seconds_per_chunk", &out->seconds_per_chunk));
    return AVL_OK;
}

void avl_config_defaults(avl_config *c)
{
    memset(c, 0, sizeof *c);
    copy_name(c->model_type, "qwen2_5_omni");
    c->full_model = true;
    snprintf(c->tensor_prefix, sizeof c->tensor_prefix, "thinker.");
    avl_text_config *t = &c->text; /* Qwen2_5OmniTextConfig */
    t->vocab_size = 152064;
    t->hidden_size = 3584;
    t->intermediate_size = 18944;
    t->num_hidden_layers = 28;
    t->num_attention_heads = 28;
    t->num_key_value_heads = 4;
    t->head_dim = 0;
    t->max_position_embeddings = 32768;
    t->rms_norm_eps = 1e-6;
    t->rope_theta = 1000000.0;
    copy_name(t->rope_type, "default");
    t->mrope_section[0] = 16;
    t->mrope_section[1] = 24;
    t->mrope_section[2] = 24;
    t->tie_word_embeddings = false;
    t->use_sliding_window = false;
    t->sliding_window = 32768;
    t->max_window_layers = 28;
    copy_name(t->hidden_act, "silu");
    avl_audio_config *a = &c->audio; /* Qwen2_5OmniAudioEncoderConfig */
    a->num_mel_bins = 128;
    a->encoder_layers = 32;
    a->encoder_attention_heads = 20;
    a->encoder_ffn_dim = 5120;
    a->d_model = 1280;
    copy_name(a->activation_function, "gelu");
    a->scale_embedding = false;
    a->max_source_positions = 1500;
    a->n_window = 100;
    a->output_dim = 3584;
    avl_vision_config *v = &c->vision; /* Qwen2_5OmniVisionEncoderConfig */
    v->depth = 32;
    v->hidden_size = 3584;
    copy_name(v->hidden_act, "silu");
    v->intermediate_size = 3420;
    v->num_heads = 16;
    v->in_channels = 3;
    v->patch_size = 14;
    v->spatial_merge_size = 2;
    v->temporal_patch_size = 2;
    v->window_size = 112;
    v->out_hidden_size = 3584;
    v->n_fullatt = 4;
    v->fullatt_block_indexes[0] = 7;
    v->fullatt_block_indexes[1] = 15;
    v->fullatt_block_indexes[2] = 23;
    v->fullatt_block_indexes[3] = 31;
    /* Qwen2_5OmniThinkerConfig; the vision start/end ids are not thinker arguments in the
     * class, so their defaults come from Qwen2_5OmniTalkerConfig (the same tokenizer). */
    c->audio_token_id = 151646;
    c->image_token_id = 151655;
    c->video_token_id = 151656;
    c->vision_start_token_id = 151652;
    c->vision_end_token_id = 151653;
    c->audio_start_token_id = 151647;
    c->audio_end_token_id = 151648;
    c->user_token_id = 872;
    c->bos_token_id = -1;
    c->eos_token_id = -1;
    c->pad_token_id = -1;
    c->position_id_per_seconds = 25;
    c->seconds_per_chunk = 2.0;
}

avl_status avl_config_parse(const char *json, size_t len, const char *label, avl_config *out)
{
    if (!json || !out) return avl__err(AVL_E_ARG, "avl_config_parse: NULL argument");
    if (!label) label = "config.json";
    json_error_t jerr;
    avl__st_json_begin(); /* jansson allocates through avl__malloc once any JSON is read */
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && avl__st_json_oom()) return avl__err(AVL_E_NOMEM, "%s: out of memory parsing the JSON", label);
    if (!root)
        return avl__err(AVL_E_FORMAT, "%s: not valid JSON (line %d, column %d: %s)", label, jerr.line,
                        jerr.column, jerr.text);
    avl_status rc = AVL_OK;
    avl_config_defaults(out);
    ctx c = {.label = label, .path = ""};
    json_t *mt;
    if (!json_is_object(root)) {
        rc = avl__err(AVL_E_CONFIG, "%s: the top level must be a JSON object", label);
        goto done;
    }
    mt = json_object_get(root, "model_type");
    if (!mt) {
        rc = avl__err(AVL_E_CONFIG, "%s: missing key model_type", label);
        goto done;
    }
    if (!json_is_string(mt)) {
        rc = avl__err(AVL_E_CONFIG, "%s: model_type must be a string", label);
        goto done;
    }
    if (!strcmp(json_string_value(mt), "qwen2_5_omni")) {
        json_t *th;
        ctx tc;
        if ((rc = get_obj(&c, root, "thinker_config", true, &th, &tc))) goto done;
        json_t *sub;
        if ((rc = get_obj(&c, root, "talker_config", false, &sub, NULL))) goto done;
        out->has_talker = sub != NULL;
        if ((rc = get_obj(&c, root, "token2wav_config", false, &sub, NULL))) goto done;
        out->has_token2wav = sub != NULL;
        if ((rc = read_thinker(&tc, th, out))) goto done;
        /* transformers >= 4.56 writes "dtype" where older versions wrote "torch_dtype" */
        if ((rc = get_str(&c, root, "torch_dtype", out->torch_dtype))) goto done;
        if (!out->torch_dtype[0] && (rc = get_str(&c, root, "dtype", out->torch_dtype))) goto done;
        if (!out->torch_dtype[0] && (rc = get_str(&tc, th, "torch_dtype", out->torch_dtype))) goto done;
    } else if (!strcmp(json_string_value(mt), "qwen2_5_omni_thinker")) {
        copy_name(out->model_type, "qwen2_5_omni_thinker");
        out->full_model = false;
        out->tensor_prefix[0] = '\0';
        if ((rc = read_thinker(&c, root, out))) goto done;
        if ((rc = get_str(&c, root, "torch_dtype", out->torch_dtype))) goto done;
        if (!out->torch_dtype[0] && (rc = get_str(&c, root, "dtype", out->torch_dtype))) goto done;
    } else {
        rc = avl__err(AVL_E_CONFIG, "%s: model_type '%.64s' is not qwen2_5_omni or qwen2_5_omni_thinker",
                      label, json_string_value(mt));
        goto done;
    }
    rc = avl_config_validate(out, label);
done:
    json_decref(root);
    return rc;
}

avl_status avl_config_load(const char *path, avl_config *out)
{
    if (!path || !out) return avl__err(AVL_E_ARG, "avl_config_load: NULL argument");
    struct stat st;
    char *file = NULL;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        file = avl__path_join(path, "config.json");
        if (!file) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    }
    const char *f = file ? file : path;
    char *buf = NULL;
    size_t len = 0;
    avl_status rc = avl__read_file(f, &buf, &len);
    if (rc == AVL_OK) rc = avl_config_parse(buf, len, f, out);
    avl__free(buf);
    avl__free(file);
    return rc;
}

/* ---- validation ---- */

/* Key paths in messages: "thinker_config.text_config.hidden_size" or "text_config.hidden_size". */
static void key(const avl_config *c, char *buf, size_t n, const char *sub, const char *k)
{
    snprintf(buf, n, "%s%s%s%s", c->full_model ? "thinker_config." : "", sub ? sub : "", sub ? "." : "", k);
}

#define POS(sub, field, val)                                                                       \
    do {                                                                                           \
        if ((val) <= 0) {                                                                          \
            key(c, k, sizeof k, sub, field);                                                       \
            return avl__err(AVL_E_CONFIG, "%s: %s = %lld must be positive", label, k, (long long)(val)); \
        }                                                                                          \
    } while (0)

/* Upper bounds keep every tensor's element count and every parameter total inside int64
 * (products of at most a few bounded factors); real checkpoints are far below them. */
#define BIG(sub, field, val, lim)                                                                  \
    do {                                                                                           \
        if ((val) > (lim)) {                                                                       \
            key(c, k, sizeof k, sub, field);                                                       \
            return avl__err(AVL_E_CONFIG, "%s: %s = %lld is implausibly large (limit %lld)", label, k, \
                            (long long)(val), (long long)(lim));                                   \
        }                                                                                          \
    } while (0)
#define W20 (INT64_C(1) << 20) /* widths */
#define L16 (INT64_C(1) << 16) /* layer counts */
#define P30 (INT64_C(1) << 30) /* positions and windows */

static avl_status check_id(const avl_config *c, const char *label, const char *name, int64_t id,
                           bool optional)
{
    char k[160];
    key(c, k, sizeof k, NULL, name);
    if (optional && id == -1) return AVL_OK;
    if (id < 0 || id >= c->text.vocab_size)
        return avl__err(AVL_E_CONFIG, "%s: %s = %lld is outside the vocabulary (text_config.vocab_size %lld)",
                        label, k, (long long)id, (long long)c->text.vocab_size);
    return AVL_OK;
}

avl_status avl_config_validate(const avl_config *c, const char *label)
{
    if (!c) return avl__err(AVL_E_ARG, "avl_config_validate: NULL config");
    if (!label) label = "config.json";
    char k[160];
    const avl_text_config *t = &c->text;
    POS("text_config", "hidden_size", t->hidden_size);
    POS("text_config", "intermediate_size", t->intermediate_size);
    POS("text_config", "num_hidden_layers", t->num_hidden_layers);
    POS("text_config", "num_attention_heads", t->num_attention_heads);
    POS("text_config", "num_key_value_heads", t->num_key_value_heads);
    POS("text_config", "vocab_size", t->vocab_size);
    POS("text_config", "max_position_embeddings", t->max_position_embeddings);
    POS("text_config", "head_dim", t->head_dim);
    BIG("text_config", "hidden_size", t->hidden_size, W20);
    BIG("text_config", "intermediate_size", t->intermediate_size, W20);
    BIG("text_config", "num_hidden_layers", t->num_hidden_layers, L16);
    BIG("text_config", "num_attention_heads", t->num_attention_heads, W20);
    BIG("text_config", "head_dim", t->head_dim, W20);
    BIG("text_config", "num_attention_heads * head_dim", t->num_attention_heads * t->head_dim, W20);
    BIG("text_config", "vocab_size", t->vocab_size, INT64_C(1) << 24);
    BIG("text_config", "max_position_embeddings", t->max_position_embeddings, P30);
    key(c, k, sizeof k, "text_config", "num_attention_heads");
    /* Only a derived head_dim needs heads to divide hidden_size; an explicit one may differ. */
    if (t->hidden_size % t->num_attention_heads && t->head_dim == t->hidden_size / t->num_attention_heads)
        return avl__err(AVL_E_CONFIG, "%s: %s = %lld does not divide hidden_size %lld", label, k,
                        (long long)t->num_attention_heads, (long long)t->hidden_size);
    if (t->num_attention_heads % t->num_key_value_heads) {
        key(c, k, sizeof k, "text_config", "num_key_value_heads");
        return avl__err(AVL_E_CONFIG, "%s: %s = %lld does not divide num_attention_heads %lld", label, k,
                        (long long)t->num_key_value_heads, (long long)t->num_attention_heads);
    }
    if (t->head_dim % 2) {
        key(c, k, sizeof k, "text_config", "head_dim");
        return avl__err(AVL_E_CONFIG, "%s: %s = %lld must be even for rotary embeddings", label, k,
                        (long long)t->head_dim);
    }
    int64_t msum = 0;
    for (int i = 0; i < 3; i++) {
        if (t->mrope_section[i] < 0 || t->mrope_section[i] > W20) {
            key(c, k, sizeof k, "text_config", "rope_scaling.mrope_section");
            return avl__err(AVL_E_CONFIG, "%s: %s has an impossible entry %lld", label, k,
                            (long long)t->mrope_section[i]);
        }
        msum += t->mrope_section[i];
    }
    if (msum * 2 != t->head_dim) {
        key(c, k, sizeof k, "text_config", "rope_scaling.mrope_section");
        return avl__err(AVL_E_CONFIG, "%s: %s = [%lld,%lld,%lld] sums to %lld, head_dim/2 is %lld", label, k,
                        (long long)t->mrope_section[0], (long long)t->mrope_section[1],
                        (long long)t->mrope_section[2], (long long)msum, (long long)(t->head_dim / 2));
    }
    if (!(t->rms_norm_eps > 0) || !isfinite(t->rms_norm_eps)) {
        key(c, k, sizeof k, "text_config", "rms_norm_eps");
        return avl__err(AVL_E_CONFIG, "%s: %s = %g must be a positive number", label, k, t->rms_norm_eps);
    }
    if (!(t->rope_theta > 0) || !isfinite(t->rope_theta)) {
        key(c, k, sizeof k, "text_config", "rope_theta");
        return avl__err(AVL_E_CONFIG, "%s: %s = %g must be a positive number", label, k, t->rope_theta);
    }
    if (t->use_sliding_window) POS("text_config", "sliding_window", t->sliding_window);
    BIG("text_config", "sliding_window", t->sliding_window, P30);

    const avl_audio_config *a = &c->audio;
    POS("audio_config", "num_mel_bins", a->num_mel_bins);
    POS("audio_config", "d_model", a->d_model);
    POS("audio_config", "encoder_layers", a->encoder_layers);
    POS("audio_config", "encoder_attention_heads", a->encoder_attention_heads);
    POS("audio_config", "encoder_ffn_dim", a->encoder_ffn_dim);
    POS("audio_config", "max_source_positions", a->max_source_positions);
    POS("audio_config", "n_window", a->n_window);
    POS("audio_config", "output_dim", a->output_dim);
    BIG("audio_config", "num_mel_bins", a->num_mel_bins, L16);
    BIG("audio_config", "d_model", a->d_model, W20);
    BIG("audio_config", "encoder_layers", a->encoder_layers, L16);
    BIG("audio_config", "encoder_ffn_dim", a->encoder_ffn_dim, W20);
    BIG("audio_config", "max_source_positions", a->max_source_positions, P30);
    BIG("audio_config", "n_window", a->n_window, P30);
    if (a->d_model % a->encoder_attention_heads) {
        key(c, k, sizeof k, "audio_config", "encoder_attention_heads");
        return avl__err(AVL_E_CONFIG, "%s: %s = %lld does not divide d_model %lld", label, k,
                        (long long)a->encoder_attention_heads, (long long)a->d_model);
    }
    if (a->d_model % 2 || a->d_model < 4) { /* sinusoidal positions: d/2 - 1 > 0 timescales */
        key(c, k, sizeof k, "audio_config", "d_model");
        return avl__err(AVL_E_CONFIG, "%s: %s = %lld must be even and at least 4 (sinusoidal positions)",
                        label, k, (long long)a->d_model);
    }
    if (a->output_dim != t->hidden_size) {
        key(c, k, sizeof k, "audio_config", "output_dim");
        return avl__err(AVL_E_CONFIG, "%s: %s = %lld differs from text_config.hidden_size %lld", label, k,
                        (long long)a->output_dim, (long long)t->hidden_size);
    }

    const avl_vision_config *v = &c->vision;
    POS("vision_config", "depth", v->depth);
    POS("vision_config", "hidden_size", v->hidden_size);
    POS("vision_config", "num_heads", v->num_heads);
    POS("vision_config", "intermediate_size", v->intermediate_size);
    POS("vision_config", "patch_size", v->patch_size);
    POS("vision_config", "temporal_patch_size", v->temporal_patch_size);
    POS("vision_config", "spatial_merge_size", v->spatial_merge_size);
    POS("vision_config", "window_size", v->window_size);
    POS("vision_config", "in_channels", v->in_channels);
    POS("vision_config", "out_hidden_size", v->out_hidden_size);
    BIG("vision_config", "depth", v->depth, L16);
    BIG("vision_config", "hidden_size", v->hidden_size, W20);
    BIG("vision_config", "intermediate_size", v->intermediate_size, W20);
    BIG("vision_config", "patch_size", v->patch_size, INT64_C(1) << 10);
    BIG("vision_config", "temporal_patch_size", v->temporal_patch_size, INT64_C(64));
    BIG("vision_config", "in_channels", v->in_channels, INT64_C(64));
    BIG("vision_config", "spatial_merge_size", v->spatial_merge_size, INT64_C(16));
    BIG("vision_config", "window_size", v->window_size, P30);
    if (v->hidden_size % v->num_heads) {
        key(c, k, sizeof k, "vision_config", "num_heads");
        return avl__err(AVL_E_CONFIG, "%s: %s = %lld does not divide hidden_size %lld", label, k,
                        (long long)v->num_heads, (long long)v->hidden_size);
    }
    if ((v->hidden_size / v->num_heads) % 4) { /* 2-D rotary: head_dim/4 frequencies per axis */
        key(c, k, sizeof k, "vision_config", "hidden_size");
        return avl__err(AVL_E_CONFIG, "%s: %s / num_heads = %lld must be a multiple of 4 (2-D rotary)",
                        label, k, (long long)(v->hidden_size / v->num_heads));
    }
    if (v->window_size < v->patch_size * v->spatial_merge_size) {
        key(c, k, sizeof k, "vision_config", "window_size");
        return avl__err(AVL_E_CONFIG, "%s: %s = %lld is smaller than patch_size * spatial_merge_size %lld",
                        label, k, (long long)v->window_size, (long long)(v->patch_size * v->spatial_merge_size));
    }
    for (int i = 0; i < v->n_fullatt; i++) {
        if (v->fullatt_block_indexes[i] < 0 || v->fullatt_block_indexes[i] >= v->depth) {
            key(c, k, sizeof k, "vision_config", "fullatt_block_indexes");
            return avl__err(AVL_E_CONFIG, "%s: %s[%d] = %lld is not a block (depth %lld)", label, k, i,
                            (long long)v->fullatt_block_indexes[i], (long long)v->depth);
        }
    }
    if (v->out_hidden_size != t->hidden_size) {
        key(c, k, sizeof k, "vision_config", "out_hidden_size");
        return avl__err(AVL_E_CONFIG, "%s: %s = %lld differs from text_config.hidden_size %lld", label, k,
                        (long long)v->out_hidden_size, (long long)t->hidden_size);
    }

    avl_status rc;
    if ((rc = check_id(c, label, "audio_token_index", c->audio_token_id, false))) return rc;
    if ((rc = check_id(c, label, "image_token_index", c->image_token_id, false))) return rc;
    if ((rc = check_id(c, label, "video_token_index", c->video_token_id, false))) return rc;
    if ((rc = check_id(c, label, "vision_start_token_id", c->vision_start_token_id, false))) return rc;
    if ((rc = check_id(c, label, "vision_end_token_id", c->vision_end_token_id, false))) return rc;
    if ((rc = check_id(c, label, "audio_start_token_id", c->audio_start_token_id, false))) return rc;
    if ((rc = check_id(c, label, "audio_end_token_id", c->audio_end_token_id, false))) return rc;
    if ((rc = check_id(c, label, "user_token_id", c->user_token_id, false))) return rc;
    if ((rc = check_id(c, label, "bos_token_id", c->bos_token_id, true))) return rc;
    if ((rc = check_id(c, label, "eos_token_id", c->eos_token_id, true))) return rc;
    if ((rc = check_id(c, label, "pad_token_id", c->pad_token_id, true))) return rc;
    POS(NULL, "position_id_per_seconds", c->position_id_per_seconds);
    BIG(NULL, "position_id_per_seconds", c->position_id_per_seconds, P30);
    if (!(c->seconds_per_chunk > 0) || !isfinite(c->seconds_per_chunk)) {
        key(c, k, sizeof k, NULL, "seconds_per_chunk");
        return avl__err(AVL_E_CONFIG, "%s: %s = %g must be a positive number", label, k, c->seconds_per_chunk);
    }
    return AVL_OK;
}

/* ---- writing ---- */

static int set_new(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *int_list(const int64_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer((json_int_t)v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* Builds the thinker object; returns NULL when jansson runs out of memory. */
static json_t *thinker_json(const avl_config *c)
{
    int bad = 0;
    json_t *th = json_object(), *tx = json_object(), *au = json_object(), *vi = json_object(),
           *rs = json_object();
    if (!th || !tx || !au || !vi || !rs) goto fail;
    const avl_text_config *t = &c->text;
    bad |= set_new(tx, "model_type", json_string("qwen2_5_omni_text"));
    bad |= set_new(tx, "hidden_act", json_string(t->hidden_act));
    bad |= set_new(tx, "hidden_size", json_integer(t->hidden_size));
    bad |= set_new(tx, "intermediate_size", json_integer(t->intermediate_size));
    bad |= set_new(tx, "num_hidden_layers", json_integer(t->num_hidden_layers));
    bad |= set_new(tx, "num_attention_heads", json_integer(t->num_attention_heads));
    bad |= set_new(tx, "num_key_value_heads", json_integer(t->num_key_value_heads));
    if (t->head_dim * t->num_attention_heads != t->hidden_size)
        bad |= set_new(tx, "head_dim", json_integer(t->head_dim));
    bad |= set_new(tx, "vocab_size", json_integer(t->vocab_size));
    bad |= set_new(tx, "max_position_embeddings", json_integer(t->max_position_embeddings));
    bad |= set_new(tx, "max_window_layers", json_integer(t->max_window_layers));
    bad |= set_new(tx, "rms_norm_eps", json_real(t->rms_norm_eps));
    bad |= set_new(tx, "rope_theta", json_real(t->rope_theta));
    bad |= set_new(rs, "mrope_section", int_list(t->mrope_section, 3));
    bad |= set_new(rs, "rope_type", json_string(t->rope_type));
    bad |= set_new(rs, "type", json_string(t->rope_type));
    bad |= json_object_set(tx, "rope_scaling", rs);
    bad |= set_new(tx, "sliding_window", json_integer(t->sliding_window));
    bad |= set_new(tx, "use_sliding_window", json_boolean(t->use_sliding_window));
    bad |= set_new(tx, "tie_word_embeddings", json_boolean(t->tie_word_embeddings));
    bad |= set_new(tx, "use_cache", json_true());
    bad |= set_new(tx, "init_std", json_real(0.02));

    const avl_audio_config *a = &c->audio;
    bad |= set_new(au, "model_type", json_string("qwen2_5_omni_audio_encoder"));
    bad |= set_new(au, "activation_function", json_string(a->activation_function));
    bad |= set_new(au, "activation_dropout", json_real(0.0));
    bad |= set_new(au, "attention_dropout", json_real(0.0));
    bad |= set_new(au, "dropout", json_real(0.0));
    bad |= set_new(au, "d_model", json_integer(a->d_model));
    bad |= set_new(au, "encoder_attention_heads", json_integer(a->encoder_attention_heads));
    bad |= set_new(au, "encoder_ffn_dim", json_integer(a->encoder_ffn_dim));
    bad |= set_new(au, "encoder_layers", json_integer(a->encoder_layers));
    bad |= set_new(au, "num_hidden_layers", json_integer(a->encoder_layers));
    bad |= set_new(au, "max_source_positions", json_integer(a->max_source_positions));
    bad |= set_new(au, "n_window", json_integer(a->n_window));
    bad |= set_new(au, "num_mel_bins", json_integer(a->num_mel_bins));
    bad |= set_new(au, "output_dim", json_integer(a->output_dim));
    bad |= set_new(au, "scale_embedding", json_boolean(a->scale_embedding));
    bad |= set_new(au, "init_std", json_real(0.02));

    const avl_vision_config *v = &c->vision;
    bad |= set_new(vi, "model_type", json_string("qwen2_5_omni_vision_encoder"));
    bad |= set_new(vi, "depth", json_integer(v->depth));
    bad |= set_new(vi, "embed_dim", json_integer(v->hidden_size));
    bad |= set_new(vi, "hidden_size", json_integer(v->hidden_size));
    bad |= set_new(vi, "hidden_act", json_string(v->hidden_act));
    bad |= set_new(vi, "intermediate_size", json_integer(v->intermediate_size));
    bad |= set_new(vi, "num_heads", json_integer(v->num_heads));
    bad |= set_new(vi, "in_channels", json_integer(v->in_channels));
    bad |= set_new(vi, "in_chans", json_integer(v->in_channels));
    bad |= set_new(vi, "patch_size", json_integer(v->patch_size));
    bad |= set_new(vi, "spatial_patch_size", json_integer(v->patch_size));
    bad |= set_new(vi, "spatial_merge_size", json_integer(v->spatial_merge_size));
    bad |= set_new(vi, "temporal_patch_size", json_integer(v->temporal_patch_size));
    bad |= set_new(vi, "window_size", json_integer(v->window_size));
    bad |= set_new(vi, "out_hidden_size", json_integer(v->out_hidden_size));
    bad |= set_new(vi, "fullatt_block_indexes", int_list(v->fullatt_block_indexes, v->n_fullatt));
    bad |= set_new(vi, "tokens_per_second", json_integer(c->position_id_per_seconds));

    bad |= set_new(th, "model_type", json_string("qwen2_5_omni_thinker"));
    json_t *arch = json_array();
    if (!arch || json_array_append_new(arch, json_string("Qwen2OmniNaViTThinkerForConditionalGeneration")))
        bad = 1;
    bad |= set_new(th, "architectures", arch);
    bad |= json_object_set(th, "text_config", tx);
    bad |= json_object_set(th, "audio_config", au);
    bad |= json_object_set(th, "vision_config", vi);
    bad |= set_new(th, "audio_token_index", json_integer(c->audio_token_id));
    bad |= set_new(th, "image_token_index", json_integer(c->image_token_id));
    bad |= set_new(th, "video_token_index", json_integer(c->video_token_id));
    bad |= set_new(th, "vision_start_token_id", json_integer(c->vision_start_token_id));
    bad |= set_new(th, "vision_end_token_id", json_integer(c->vision_end_token_id));
    bad |= set_new(th, "audio_start_token_id", json_integer(c->audio_start_token_id));
    bad |= set_new(th, "audio_end_token_id", json_integer(c->audio_end_token_id));
    bad |= set_new(th, "user_token_id", json_integer(c->user_token_id));
    if (c->bos_token_id >= 0) bad |= set_new(th, "bos_token_id", json_integer(c->bos_token_id));
    if (c->eos_token_id >= 0) bad |= set_new(th, "eos_token_id", json_integer(c->eos_token_id));
    if (c->pad_token_id >= 0) bad |= set_new(th, "pad_token_id", json_integer(c->pad_token_id));
    bad |= set_new(th, "position_id_per_seconds", json_integer(c->position_id_per_seconds));
    if (c->seconds_per_chunk == floor(c->seconds_per_chunk))
        bad |= set_new(th, "seconds_per_chunk", json_integer((json_int_t)c->seconds_per_chunk));
    else
        bad |= set_new(th, "seconds_per_chunk", json_real(c->seconds_per_chunk));
    bad |= set_new(th, "init_std", json_real(0.02));
    bad |= set_new(th, "torch_dtype", json_string(c->torch_dtype[0] ? c->torch_dtype : "bfloat16"));
    json_decref(tx);
    json_decref(au);
    json_decref(vi);
    json_decref(rs);
    if (bad) {
        json_decref(th);
        return NULL;
    }
    return th;
fail:
    json_decref(th);
    json_decref(tx);
    json_decref(au);
    json_decref(vi);
    json_decref(rs);
    return NULL;
}

/* The talker and token2wav parts a real checkpoint carries, reduced to their identifying keys
 * (avlens never builds them); enough for a loader that checks their presence. */
static json_t *talker_json(const avl_config *c)
{
    json_t *o = json_object();
    int bad = !o;
    if (o) {
        bad |= set_new(o, "model_type", json_string("qwen2_5_omni_talker"));
        bad |= set_new(o, "embedding_size", json_integer(c->text.hidden_size));
        bad |= set_new(o, "hidden_size", json_integer(64));
        bad |= set_new(o, "intermediate_size", json_integer(128));
        bad |= set_new(o, "num_hidden_layers", json_integer(1));
        bad |= set_new(o, "num_attention_heads", json_integer(2));
        bad |= set_new(o, "num_key_value_heads", json_integer(1));
        bad |= set_new(o, "head_dim", json_integer(32));
        bad |= set_new(o, "vocab_size", json_integer(8448));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *token2wav_json(void)
{
    json_t *o = json_object(), *d = json_object(), *b = json_object();
    int bad = !o || !d || !b;
    if (!bad) {
        bad |= set_new(o, "model_type", json_string("qwen2_5_omni_token2wav"));
        bad |= set_new(d, "model_type", json_string("qwen2_5_omni_dit"));
        bad |= set_new(b, "model_type", json_string("qwen2_5_omni_bigvgan"));
        bad |= json_object_set(o, "dit_config", d);
        bad |= json_object_set(o, "bigvgan_config", b);
    }
    json_decref(d);
    json_decref(b);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

avl_status avl_config_to_json(const avl_config *c, char **out)
{
    if (!c || !out) return avl__err(AVL_E_ARG, "avl_config_to_json: NULL argument");
    *out = NULL;
    json_t *th = thinker_json(c), *root = NULL;
    if (!th) return avl__err(AVL_E_NOMEM, "config.json: out of memory while serialising");
    if (c->full_model) {
        root = json_object();
        int bad = !root;
        json_t *arch = json_array();
        bad |= !arch || json_array_append_new(arch, json_string("Qwen2_5OmniModel"));
        if (!bad) {
            bad |= set_new(root, "architectures", arch);
            arch = NULL;
            bad |= set_new(root, "model_type", json_string("qwen2_5_omni"));
            bad |= set_new(root, "enable_audio_output", json_true());
            bad |= set_new(root, "enable_talker", json_true());
            bad |= json_object_set(root, "thinker_config", th);
            bad |= set_new(root, "talker_config", talker_json(c));
            bad |= set_new(root, "token2wav_config", token2wav_json());
            bad |= set_new(root, "torch_dtype", json_string(c->torch_dtype[0] ? c->torch_dtype : "bfloat16"));
            bad |= set_new(root, "transformers_version", json_string("4.52.3"));
        }
        json_decref(arch);
        json_decref(th);
        if (bad) {
            json_decref(root);
            return avl__err(AVL_E_NOMEM, "config.json: out of memory while serialising");
        }
    } else {
        root = th;
    }
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    json_decref(root);
    if (!s) return avl__err(AVL_E_NOMEM, "config.json: out of memory while serialising");
    /* jansson's string is malloc'ed; hand back one from our allocator so the caller frees one way. */
    size_t n = strlen(s);
    *out = avl__malloc(n + 2);
    if (!*out) {
        free(s);
        return avl__err(AVL_E_NOMEM, "config.json: out of memory while serialising");
    }
    memcpy(*out, s, n);
    (*out)[n] = '\n';
    (*out)[n + 1] = '\0';
    free(s);
    return AVL_OK;
}

void avl_config_string_free(char *s) { avl__free(s); }
