/* avlens/mkmodel.h: write tiny Qwen2.5-Omni checkpoints in the exact Hugging Face layout.
 *
 *   avl_mkmodel_params p = avl_mkmodel_default_params();   // tiny, but GQA, window + full
 *   p.seed = 7;                                             // attention, >1 audio layer, ...
 *   if (avl_mkmodel_write(&p, "tiny-omni")) { fprintf(stderr, "%s\n", avl_last_error()); ... }
 *
 * The folder gets config.json (real key structure; full-model form with minimal talker and
 * token2wav configs unless thinker_only), model.safetensors or shards + index with every thinker
 * tensor the config implies (seeded random weights: matrices and biases N(0, 0.02), norm weights
 * 1, LayerNorm biases 0), preprocessor_config.json, and a tokenizer in Qwen's formats
 * (tokenizer.json, vocab.json, merges.txt, tokenizer_config.json with the chat template,
 * chat_template.json, added_tokens.json, special_tokens_map.json): the 256 byte symbols, merges
 * learned deterministically from an embedded English text, then Qwen2.5-Omni's special tokens;
 * the config's token ids point at them. Same parameters -> byte-identical files.
 * Weights are made and written one tensor at a time (the streaming safetensors writer), so the
 * memory needed is one tensor, not the checkpoint: real-size (7B) checkpoints can be written.
 */
#ifndef AVLENS_MKMODEL_H
#define AVLENS_MKMODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "avlens/config.h"
#include "avlens/safetensors.h"
#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t seed;
    /* LLM */
    int64_t hidden, layers, heads, kv_heads, ffn;
    int64_t vocab;            /* 0: the tokenizer's size rounded up to a multiple of 64 */
    int64_t merges;           /* BPE merges to learn (the vocabulary is 256 + merges + specials) */
    /* audio encoder */
    int64_t audio_layers, audio_d, audio_heads, audio_ffn, mel_bins, n_window;
    /* vision encoder */
    int64_t vision_depth, vision_hidden, vision_heads, vision_ffn;
    int64_t patch, temporal_patch, merge, window;
    int64_t fullatt[AVL_CONFIG_MAX_FULLATT];
    int n_fullatt;            /* -1: every other block from the second (1, 3, 5, ...) */
    avl_dtype dtype;          /* BF16 (default), F16 or F32 */
    int shards;               /* 0: model.safetensors; n >= 1: n shards + index */
    bool thinker_only;        /* bare thinker config and unprefixed tensor names */
    bool tie_word_embeddings; /* then lm_head.weight is not written */
    /* The planted-mechanism model (src/io/mkmodel_planted.c, docs/demo.md): the random weights
     * are overwritten so that the answer to a classification prompt on a synthetic clip is "A"
     * when its loudness evidence wins and "B" when its brightness evidence wins, through planted
     * sinks (the object's and the loud tokens, sink dimensions avl_mkmodel_planted_sink_dim)
     * that carry the other modality's evidence. Needs >= 3 layers and >= 2 KV heads. */
    bool planted;
    double planted_audio_gain;  /* weight of the loudness evidence against brightness (1) */
} avl_mkmodel_params;

avl_mkmodel_params avl_mkmodel_default_params(void);

/* The config the parameters describe (token ids as the tokenizer assigns them). */
avl_status avl_mkmodel_config(const avl_mkmodel_params *p, avl_config *out);

/* The residual dimension where the planted model puts the massive activation of its video
 * (video = true) or audio sinks; give both to the sink detector (`--dims`) with tau about 5
 * (phi cannot exceed sqrt(hidden) in a model this narrow). */
int64_t avl_mkmodel_planted_sink_dim(bool video);

/* Writes the checkpoint into dir (created if missing; existing files are overwritten). */
avl_status avl_mkmodel_write(const avl_mkmodel_params *p, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
