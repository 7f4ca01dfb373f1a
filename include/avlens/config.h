/* avlens/config.h: a Qwen2.5-Omni checkpoint's config.json, as typed structs.
 *
 *   avl_config cfg;
 *   if (avl_config_load("Qwen2.5-Omni-7B", &cfg)) {          // a folder or a config.json path
 *       fprintf(stderr, "%s\n", avl_last_error());
 *       return 1;   // e.g. "ckpt/config.json: thinker_config.text_config.num_attention_heads = 28
 *   }               //       does not divide hidden_size 3000"
 *   printf("%lld layers\n", (long long)cfg.text.num_hidden_layers);
 *
 * Two forms are read: the full model (model_type "qwen2_5_omni", the thinker under
 * "thinker_config"; "talker_config" and "token2wav_config" are noted and otherwise ignored) and a
 * bare thinker (model_type "qwen2_5_omni_thinker", the thinker's keys at the top level).
 * Absent keys take the defaults of Hugging Face transformers' configuration classes
 * (configuration_qwen2_5_omni.py, the 4.5x releases; docs/checkpoint.md lists them); unknown
 * keys are ignored; the sub-configs text_config, audio_config and vision_config must be present.
 * Every value is then checked (positive sizes, heads that divide, GQA groups, mrope_section that
 * sums to head_dim/2, full-attention blocks inside the depth, token ids inside the vocabulary,
 * encoder outputs equal to the LLM width); a failure is AVL_E_CONFIG naming the file and the key
 * path. The structs own no memory: copy them freely.
 */
#ifndef AVLENS_CONFIG_H
#define AVLENS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AVL_CONFIG_MAX_FULLATT 64 /* entries of vision_config.fullatt_block_indexes */
#define AVL_CONFIG_NAME 48        /* bytes of the short strings (activation names, types) */

/* thinker_config.text_config: the Qwen2.5 decoder. */
typedef struct {
    int64_t hidden_size;             /* H */
    int64_t intermediate_size;       /* F, the SwiGLU width */
    int64_t num_hidden_layers;
    int64_t num_attention_heads;
    int64_t num_key_value_heads;     /* GQA: num_attention_heads is a multiple of it */
    int64_t head_dim;                /* "head_dim" if given, else hidden_size / num_attention_heads */
    int64_t vocab_size;              /* V: rows of embed_tokens and lm_head */
    int64_t max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    char rope_type[AVL_CONFIG_NAME]; /* rope_scaling.rope_type/type: "default" or "mrope" */
    int64_t mrope_section[3];        /* rotary pairs given to (time, height, width) */
    bool tie_word_embeddings;        /* lm_head shares embed_tokens (then lm_head may be absent) */
    bool use_sliding_window;
    int64_t sliding_window;          /* meaningful only when use_sliding_window */
    int64_t max_window_layers;
    char hidden_act[AVL_CONFIG_NAME];
} avl_text_config;

/* thinker_config.audio_config: the Whisper-style audio encoder. */
typedef struct {
    int64_t num_mel_bins;
    int64_t d_model;
    int64_t encoder_layers;
    int64_t encoder_attention_heads;
    int64_t encoder_ffn_dim;
    int64_t max_source_positions;
    int64_t n_window;                /* the encoder attends inside chunks of 2*n_window mel frames */
    int64_t output_dim;              /* = text hidden_size */
    char activation_function[AVL_CONFIG_NAME];
    bool scale_embedding;
} avl_audio_config;

/* thinker_config.vision_config: the Qwen2.5-VL vision transformer. */
typedef struct {
    int64_t depth;
    int64_t hidden_size;             /* 1280 in the checkpoints (the class default 3584 is not) */
    int64_t num_heads;
    int64_t intermediate_size;
    int64_t patch_size;
    int64_t temporal_patch_size;
    int64_t spatial_merge_size;
    int64_t window_size;             /* pixels */
    int64_t in_channels;             /* "in_channels", else "in_chans" */
    int64_t out_hidden_size;         /* = text hidden_size */
    int64_t fullatt_block_indexes[AVL_CONFIG_MAX_FULLATT];
    int n_fullatt;
    char hidden_act[AVL_CONFIG_NAME];
} avl_vision_config;

typedef struct {
    char model_type[AVL_CONFIG_NAME]; /* "qwen2_5_omni" or "qwen2_5_omni_thinker" */
    bool full_model;                  /* thinker nested under thinker_config */
    bool has_talker;                  /* talker_config present (its weights are never read) */
    bool has_token2wav;
    /* Prefix of the thinker's tensor names: "thinker." for the full model, "" for a bare thinker. */
    char tensor_prefix[16];
    avl_text_config text;
    avl_audio_config audio;
    avl_vision_config vision;
    /* Thinker-level token ids ("*_token_index" and the "*_token_id" aliases are both read). */
    int64_t audio_token_id;           /* <|AUDIO|> */
    int64_t image_token_id;           /* <|IMAGE|> */
    int64_t video_token_id;           /* <|VIDEO|> */
    int64_t vision_start_token_id;    /* <|vision_bos|> */
    int64_t vision_end_token_id;      /* <|vision_eos|> */
    int64_t audio_start_token_id;     /* <|audio_bos|> */
    int64_t audio_end_token_id;       /* <|audio_eos|> */
    int64_t user_token_id;
    int64_t bos_token_id;             /* -1 when absent or null */
    int64_t eos_token_id;             /* -1 when absent or null */
    int64_t pad_token_id;             /* -1 when absent or null */
    int64_t position_id_per_seconds;  /* TMRoPE: temporal ids per second */
    double seconds_per_chunk;         /* TMRoPE: audio/video interleaving chunk */
    char torch_dtype[AVL_CONFIG_NAME]; /* as written ("bfloat16"), "" when absent */
} avl_config;

/* Fills c with the class defaults of transformers (the 7B sizes, vision hidden_size 3584, no
 * bos/eos/pad) and model_type "qwen2_5_omni". */
void avl_config_defaults(avl_config *c);

/* Reads path (a checkpoint folder, whose config.json is read, or a .json file), parses and
 * validates it. On failure *out is unspecified and the detail names the file and key. */
avl_status avl_config_load(const char *path, avl_config *out);

/* Parses and validates len bytes of JSON; label names them in messages (e.g. the file path). */
avl_status avl_config_parse(const char *json, size_t len, const char *label, avl_config *out);

/* Checks the invariants listed at the top; label as above. */
avl_status avl_config_validate(const avl_config *c, const char *label);

/* Serialises the thinker part as the key structure of a real checkpoint's config.json and
 * returns a new NUL-terminated string (free with avl_config_string_free). With full_model the
 * result is the full-model form including minimal "talker_config" and "token2wav_config"
 * objects; else the bare-thinker form. Keys are sorted, indent 2, like transformers writes. */
avl_status avl_config_to_json(const avl_config *c, char **out);
void avl_config_string_free(char *s);

#ifdef __cplusplus
}
#endif
#endif
