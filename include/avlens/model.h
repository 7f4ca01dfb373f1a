/* avlens/model.h: a loaded Qwen2.5-Omni thinker and the runs made with it.
 *
 *   avl_model_params mp = avl_model_default_params();   // backend "auto", all cores
 *   avl_model *m;
 *   if (avl_model_load("Qwen2.5-Omni-7B", &mp, &m)) { fprintf(stderr, "%s\n", avl_last_error()); return 1; }
 *   avl_inputs *in;                                      // the processor's tensors from a file
 *   avl_inputs_load("inputs.safetensors", avl_model_config(m), false, &in);
 *   float *embeds; avl_token_map *map;
 *   avl_thinker_embed(m, avl_inputs_get(in), &embeds, &map, NULL);   // (n, H) fp32 + positions
 *   avl_run *r;
 *   avl_run_new(m, 4096, &r);                             // KV cache for up to 4096 positions
 *   avl_run_forward(r, embeds, map->pos, map->n, map->n, NULL, logits, 1);   // last row's logits
 *   ...
 *   avl_run_free(r); avl_free(embeds); avl_token_map_free(map); avl_inputs_free(in); avl_model_free(m);
 *
 * The model is read-only after loading and may be shared by runs on several threads; weights
 * stay in the checkpoint's dtype (bf16 for the real checkpoints), memory-mapped. A run owns a
 * KV cache and scratch memory for one sequence.
 */
#ifndef AVLENS_MODEL_H
#define AVLENS_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "avlens/config.h"
#include "avlens/sequence.h"
#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avl_model avl_model;
typedef struct avl_run avl_run;

typedef struct {
    const char *backend; /* "auto", "ref", "onednn", "openblas" */
    int threads;         /* <= 0: OMP_NUM_THREADS or all cores */
    int64_t prefill_chunk; /* positions per prefill step (bounds scratch memory); <= 0: 512 */
} avl_model_params;

avl_model_params avl_model_default_params(void);

/* Loads config.json and the thinker's tensors (talker and token2wav tensors are never read),
 * verifies every tensor the config implies, and picks the GEMM backend. */
avl_status avl_model_load(const char *dir, const avl_model_params *p, avl_model **out);
void avl_model_free(avl_model *m);
const avl_config *avl_model_config(const avl_model *m);
/* "onednn (avx512_core_amx)", ... */
const char *avl_model_backend(const avl_model *m);

/* Where in a decoder layer an activation is seen (paper-spec.md section 3). */
typedef enum {
    AVL_SITE_RESID = 0,   /* the layer's input hidden state (residual stream) */
    AVL_SITE_ATTN_IN,     /* output of input_layernorm: what q/k/v read ("before attention") */
    AVL_SITE_ATTN_OUT,    /* output of self-attention after o_proj, before the residual add */
    AVL_SITE_MLP_OUT,     /* output of the MLP, before the residual add */
    AVL_SITE_FINAL,       /* output of the final norm (layer = n_layers) */
    AVL_SITE_COUNT
} avl_site;

/* What a forward pass does besides computing (the ARCHITECTURE's plan, at the lowest level).
 * Every callback is optional; views are valid during the call only.
 *  wants(layer, site)      asked once per layer, site and prefill chunk; false skips at_site
 *  at_site(layer, site, p0, n, dim, x)   x: (n, dim) activations of absolute positions
 *                          [p0, p0+n); may be edited in place (that is how patches apply)
 *  wants_attn(layer)       whether attn is called for this layer (false: no cost)
 *  attn(layer, head, q0, nq, nk, probs, scores)  per head and block of queries at absolute
 *                          positions q0..q0+nq-1 over keys 0..nk-1: probs (nq, nk) post-softmax,
 *                          editable (no renormalisation afterwards); scores (nq, nk) the scaled
 *                          pre-softmax scores, read-only. Called from several threads at once. */
typedef struct {
    bool (*wants)(void *user, int layer, avl_site site);
    void (*at_site)(void *user, int layer, avl_site site, int64_t p0, int64_t n, int64_t dim, float *x);
    bool (*wants_attn)(void *user, int layer);
    void (*attn)(void *user, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                 const float *scores);
    void *user;
} avl_hooks;

/* A run: KV cache for up to max_positions positions. */
avl_status avl_run_new(const avl_model *m, int64_t max_positions, avl_run **out);
void avl_run_free(avl_run *r);
/* Positions already in the cache. */
int64_t avl_run_length(const avl_run *r);
/* Drops cached positions from keep on (keep <= length): a shared prefix stays. */
avl_status avl_run_truncate(avl_run *r, int64_t keep);

/* Makes dst's cache the first n cached positions of src (same model; n <= src's length and
 * dst's capacity): what dst held is dropped. Two runs that share a prefix compute it once. */
avl_status avl_run_copy_prefix(avl_run *dst, const avl_run *src, int64_t n);

/* embeds (n, H) = rows of embed_tokens for ids, in fp32. */
avl_status avl_run_embed_tokens(const avl_model *m, const int32_t *ids, int64_t n, float *embeds);

/* Runs n new positions through the decoder, appending to the cache. embeds: (n, H); pos: the
 * 3-D position ids of these positions, (3, ld_pos) with columns 0..n-1 used (row a at
 * pos + a * ld_pos). logits: (n_logits, V) for the last n_logits positions (0: none).
 * hooks may be NULL. */
avl_status avl_run_forward(avl_run *r, const float *embeds, const int64_t *pos, int64_t ld_pos, int64_t n,
                           const avl_hooks *hooks, float *logits, int64_t n_logits);

/* One item of a batched forward: rows that go through the decoder together with the rows of the
 * other items (each product reads the weights once for all rows), each item with its own run
 * (KV cache), hooks and logits.
 *   slots   NULL: the rows go to cache slots len..len+n-1 (as avl_run_forward). Otherwise n
 *           strictly ascending slots; a row attends to every slot up to its own, so each
 *           unlisted slot below a listed one must already hold keys and values (copied with
 *           avl_run_copy_positions or computed before). The run's length becomes
 *           max(length, last slot + 1).
 *   hooks   called as in avl_run_forward, once per contiguous segment of slots: p0 is a slot.
 *   logits  NULL or (n_logits, V): logits of the last n_logits rows. */
typedef struct {
    avl_run *run;
    const float *embeds;      /* (n, H) */
    const int64_t *pos;       /* (3, ld_pos), columns 0..n-1 */
    int64_t ld_pos, n;
    const int64_t *slots;
    const avl_hooks *hooks;
    float *logits;
    int64_t n_logits;
} avl_batch_item;

/* Runs the rows of n_items items (distinct runs of one model) in one pass, in chunks of the
 * first run's prefill chunk. Each item's result equals its own avl_run_forward (bit for bit
 * with the ref backend: its products compute every row alone). */
avl_status avl_run_forward_batch(avl_batch_item *items, int64_t n_items);

/* Copies the keys and values of the listed cache slots (every layer) from src to dst (same
 * model, slots < src's length and dst's capacity); dst's length becomes at least last + 1. */
avl_status avl_run_copy_positions(avl_run *dst, const avl_run *src, const int64_t *slots, int64_t n);

/* ---- the thinker's inputs, as the Hugging Face processor hands them over ---- */
typedef struct {
    const int32_t *input_ids;        /* (n): placeholders already expanded */
    int64_t n;
    bool use_audio_in_video;
    avl_media_shape media;           /* grids, seconds per grid, valid mel frames per audio */
    const float *input_features;     /* (n_audios, n_mels, n_feature_frames) or NULL */
    int64_t n_feature_frames;        /* padded frame count of input_features (3000 for 30 s) */
    const float *pixel_values_videos; /* (sum of t*h*w over videos, patch_dim) or NULL */
    const float *pixel_values;       /* (sum of t*h*w over images, patch_dim) or NULL */
} avl_thinker_inputs;

/* The processor's tensors read from a .safetensors file (what `avlens forward --inputs` takes
 * and tools/ref/make_tiny.py writes), owning every array its avl_thinker_inputs points at:
 *
 *   avl_inputs *in;
 *   if (avl_inputs_load("inputs.safetensors", avl_model_config(m), false, &in)) { ...avl_last_error()... }
 *   avl_thinker_embed(m, avl_inputs_get(in), &embeds, &map, NULL);
 *   avl_inputs_free(in);
 *
 * Tensors, by their Hugging Face names (any other tensor is ignored):
 *   input_ids (1, L) or (L), integer, required, ids inside the config's vocabulary;
 *   attention_mask, the shape of input_ids, all ones (padding is not supported);
 *   input_features (n_audios, num_mel_bins, T) float, with feature_attention_mask (n_audios, T)
 *     of ones then zeros (absent: all T frames valid);
 *   pixel_values_videos (sum of t*h*w, C*tp*p*p) float with video_grid_thw (n_videos, 3) integer
 *     and video_second_per_grid (n_videos) float (absent: 1.0 s);
 *   pixel_values (sum of t*h*w, C*tp*p*p) float with image_grid_thw (n_images, 3) integer.
 * Float tensors may be F32, F16 or BF16 (widened to fp32), integers I64, I32 or U8; at most
 * AVL_MAX_MEDIA items of each kind. Errors name the file and the tensor: AVL_E_NOTFOUND (a
 * required tensor is missing), AVL_E_SHAPE (wrong dtype or shape, counts that disagree with each
 * other or with the config), AVL_E_ARG (a value: padding, an id outside the vocabulary, a bad
 * grid or mask), AVL_E_UNSUPPORTED (more items than AVL_MAX_MEDIA), AVL_E_IO / AVL_E_FORMAT
 * (the file), AVL_E_NOMEM. The file is closed before avl_inputs_load returns. */
typedef struct avl_inputs avl_inputs;

avl_status avl_inputs_load(const char *path, const avl_config *cfg, bool use_audio_in_video, avl_inputs **out);
/* Valid until avl_inputs_free. */
const avl_thinker_inputs *avl_inputs_get(const avl_inputs *in);
void avl_inputs_free(avl_inputs *in);

/* Optional outputs of avl_thinker_embed: the encoders' rows before they are merged. */
typedef struct {
    float *audio_embeds;  /* (n_audio tokens, H), allocated when requested; free with avl_free */
    int64_t n_audio;
    float *video_embeds;  /* (n_video tokens, H) */
    int64_t n_video;
    float *image_embeds;  /* (n_image tokens, H) */
    int64_t n_image;
} avl_encoder_outputs;

/* Builds the decoder's input: token embeddings with the encoders' outputs written into the
 * placeholder positions (HF's masked_scatter, per modality in sequence order), and the token
 * map with the 3-D position ids. *embeds (n, H) and *map are allocated (avl_free,
 * avl_token_map_free). enc may be NULL; when given, its arrays are filled. */
avl_status avl_thinker_embed(const avl_model *m, const avl_thinker_inputs *in, float **embeds, avl_token_map **map,
                             avl_encoder_outputs *enc);

/* ---- generation ---- */
typedef struct {
    int64_t max_new_tokens;  /* 64 */
    float temperature;       /* 0: greedy (argmax, lowest id on ties) */
    int top_k;               /* 0: off */
    float top_p;             /* 1: off */
    uint64_t seed;           /* sampling stream */
    const int32_t *stop_ids; /* generation ends after emitting one of these (it is kept) */
    int n_stop;
    /* Called after each step's logits (V) are known, before the choice is applied; may edit
     * logits in place (decoding methods do). step counts from 0. */
    void (*on_logits)(void *user, int64_t step, float *logits, int64_t V);
    void *user;
} avl_gen_params;

avl_gen_params avl_gen_default_params(void);

/* Prefills the run with (n, H) embeds at positions map->pos (the run must be empty), then
 * generates up to max_new_tokens ids into *out (allocated; avl_free). Generated token i sits at
 * position n + i + map->rope_delta on all three axes, as transformers places it. hooks apply to
 * every forward pass (prefill and steps). */
avl_status avl_generate(avl_run *r, const float *embeds, const avl_token_map *map, const avl_gen_params *gp,
                        const avl_hooks *hooks, int32_t **out, int64_t *n_out);

/* Softmax of logits (V) evaluated at the given ids: probs[i] = p(ids[i]). */
void avl_softmax_at(const float *logits, int64_t V, const int32_t *ids, int n, double *probs);

/* The sequence parameters (token ids, merge size, TMRoPE constants) of a loaded model. */
avl_seq_params avl_model_seq_params(const avl_model *m);

#ifdef __cplusplus
}
#endif
#endif
