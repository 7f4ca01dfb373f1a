/* avlens/checkpoint.h: which tensors a Qwen2.5-Omni thinker has, and a checkpoint folder
 * checked against them.
 *
 *   avl_checkpoint *ck;
 *   if (avl_checkpoint_open("Qwen2.5-Omni-7B", &ck)) {   // config.json + safetensors + verify
 *       fprintf(stderr, "%s\n", avl_last_error());
 *       // "ck/model-00002-of-00005.safetensors: tensor 'thinker.model.layers.3.self_attn.q_proj.weight'
 *       //  has shape [64,96], config needs [64,64]"
 *       return 1;
 *   }
 *   const avl_config *cfg = avl_checkpoint_config(ck);
 *   avl_tensor_view w;
 *   avl_checkpoint_get(ck, "thinker.model.norm.weight", &w);
 *   avl_checkpoint_close(ck);
 *
 * The tensor list mirrors transformers' modeling_qwen2_5_omni.py (Qwen2_5OmniAudioEncoder,
 * Qwen2_5OmniVisionEncoder, Qwen2_5OmniThinkerTextModel, the thinker's lm_head); names, shapes and
 * biases are written down with their sources in docs/checkpoint.md. Tensors outside the thinker
 * (talker.*, token2wav.*) are ignored: never looked at, never read.
 */
#ifndef AVLENS_CHECKPOINT_H
#define AVLENS_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "avlens/config.h"
#include "avlens/safetensors.h"
#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The thinker's components, for parameter counts and reports. */
typedef enum {
    AVL_PART_AUDIO = 0, /* audio_tower.* */
    AVL_PART_VISION,    /* visual.* */
    AVL_PART_LLM,       /* model.* (embeddings, decoder layers, final norm) */
    AVL_PART_LM_HEAD,   /* lm_head.weight */
    AVL_PART_COUNT
} avl_part;

/* "audio", "vision", "llm", "lm_head". */
const char *avl_part_name(avl_part p);

#define AVL_TENSOR_NAME_MAX 128

typedef struct {
    char name[AVL_TENSOR_NAME_MAX]; /* full Hugging Face name, e.g. "thinker.model.norm.weight" */
    avl_part part;
    int ndim;
    int64_t shape[AVL_MAX_DIMS];
    int64_t numel;
    /* An optional tensor may be absent (lm_head.weight when embeddings are tied; the audio
     * tower's audio_bos_eos_token.weight, which the thinker's forward pass never reads);
     * when present, its shape is still checked. */
    bool optional;
} avl_tensor_spec;

/* Every thinker tensor the config implies, in model order (audio, vision, LLM, lm_head).
 * *out is a new array of *n entries; free it with avl_tensor_specs_free. */
avl_status avl_thinker_tensor_specs(const avl_config *c, avl_tensor_spec **out, int64_t *n);
void avl_tensor_specs_free(avl_tensor_spec *specs);

/* Parameters per part implied by the config (optional tensors included, lm_head excluded when
 * tied). counts has AVL_PART_COUNT entries; returns the total. */
int64_t avl_config_param_counts(const avl_config *c, int64_t counts[AVL_PART_COUNT]);

/* Checks set against the config: every required thinker tensor exists, every present spec'd
 * tensor has the spec's shape and a float dtype (BF16, F16, F32). The first failure is returned
 * (AVL_E_NOTFOUND for a missing tensor: "<where>: no tensor 'X' (config needs [V,H])";
 * AVL_E_SHAPE for a wrong shape or dtype, naming the shard file). where names the checkpoint
 * in the missing-tensor message. */
avl_status avl_checkpoint_verify(const avl_config *c, const avl_st_set *set, const char *where);

/* ---- a checkpoint folder ---- */
typedef struct avl_checkpoint avl_checkpoint;

/* Reads dir/config.json, opens the safetensors (single file or index + shards) and verifies
 * them. The tokenizer is not loaded here (see avlens/tokenizer.h when it exists). */
avl_status avl_checkpoint_open(const char *dir, avl_checkpoint **out);
void avl_checkpoint_close(avl_checkpoint *ck);
const avl_config *avl_checkpoint_config(const avl_checkpoint *ck);
const avl_st_set *avl_checkpoint_tensors(const avl_checkpoint *ck);
const char *avl_checkpoint_dir(const avl_checkpoint *ck);
/* A thinker tensor by its full name (views stay valid until close). */
avl_status avl_checkpoint_get(const avl_checkpoint *ck, const char *name, avl_tensor_view *out);

#ifdef __cplusplus
}
#endif
#endif
