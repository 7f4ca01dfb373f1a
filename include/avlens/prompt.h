/* avlens/prompt.h: a conversation about one clip -> the thinker's inputs, as the Hugging Face
 * Qwen2.5-Omni processor builds them (apply_chat_template, then __call__ with the features).
 *
 *   avl_features *f;                                   // from avlens/media.h
 *   avl_features_from_video("clip.mp4", NULL, &fp, &f);
 *   avl_prompt_params pp = avl_prompt_default_params();
 *   pp.text = "Describe what you see and hear in a single sentence.";
 *   pp.use_audio_in_video = true;
 *   avl_seq_params sp = avl_model_seq_params(model);   // the checkpoint's token ids
 *   avl_prompt *pr;
 *   if (avl_prompt_build(tok, &sp, f, &pp, &pr)) { fprintf(stderr, "%s\n", avl_last_error()); ... }
 *   float *embeds; avl_token_map *map;
 *   avl_thinker_embed(model, &pr->inputs, &embeds, &map, NULL);
 *   avl_generate(run, embeds, map, &gp, NULL, &ids, &n);
 *   avl_prompt_free(pr);                               // before avl_features_free(f)
 *
 * The conversation is [system, user]: the system text (default "You are a helpful
 * assistant.", the paper's manifests), then a user turn holding the video (if any), the audio
 * (if any, and not carried by the video) and the text, in that order. It is rendered with
 * Qwen2.5-Omni's chat template (avl_chat_render, with the generation prompt), encoded with the
 * checkpoint's tokenizer, and each placeholder is expanded by avl_seq_expand with the shapes of
 * the features: the video grid and seconds per grid, and the valid mel frames of the audio
 * (the sum of feature_attention_mask). With use_audio_in_video the audio is interleaved with the
 * video in 2-second chunks (the paper's layout) and no separate audio item is written, as
 * qwen-omni-utils and the processor do. docs/run.md gives the layout token by token.
 */
#ifndef AVLENS_PROMPT_H
#define AVLENS_PROMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/media.h"
#include "avlens/model.h"
#include "avlens/sequence.h"
#include "avlens/status.h"
#include "avlens/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AVL_DEFAULT_SYSTEM_PROMPT "You are a helpful assistant."

typedef struct {
    const char *system;          /* system text; NULL: AVL_DEFAULT_SYSTEM_PROMPT */
    const char *text;            /* the user's text after the media; NULL: none */
    bool use_audio_in_video;     /* the audio of the features belongs to the video */
    bool add_generation_prompt;  /* end with "<|im_start|>assistant\n" (true) */
} avl_prompt_params;

avl_prompt_params avl_prompt_default_params(void);

/* A built prompt. inputs points into ids and into the features it was built from, so the
 * features must outlive it. */
typedef struct {
    char *chat;                  /* the rendered conversation (NUL-terminated) */
    int64_t n_chat_ids;          /* tokens before expansion */
    int32_t *ids;                /* (n) placeholders expanded */
    int64_t n;
    int64_t n_video_tokens, n_audio_tokens; /* placeholder tokens of each kind in ids */
    avl_thinker_inputs inputs;   /* ready for avl_thinker_embed */
} avl_prompt;

/* Builds the prompt for features f (NULL: a text-only prompt) with tokenizer tok and the
 * sequence parameters sp of the checkpoint. Errors: AVL_E_ARG when use_audio_in_video is set but
 * f has no video or no audio, or when the chat template does not yield exactly one placeholder
 * per media item (a tokenizer whose added tokens do not match sp's ids: the detail names the
 * token); AVL_E_NOMEM. */
avl_status avl_prompt_build(const avl_tokenizer *tok, const avl_seq_params *sp, const avl_features *f,
                            const avl_prompt_params *p, avl_prompt **out);

/* NULL-safe. */
void avl_prompt_free(avl_prompt *pr);

/* The conversation as the messages JSON that avl_chat_render reads (allocated; avl_free). */
avl_status avl_prompt_messages_json(const avl_features *f, const avl_prompt_params *p, char **out);

#ifdef __cplusplus
}
#endif
#endif
