/* avlens/interp.h: plans (what one forward pass does besides computing) and input corruption.
 *
 *   avl_plan *clean, *rest;
 *   avl_plan_new(m, map, &clean);
 *   avl_capture *cap;
 *   avl_plan_capture(clean, AVL_SITE_ATTN_IN, 0, n_layers, NULL, &cap);   // every prefill position
 *   avl_received *rx;
 *   avl_plan_observe_received(clean, 0, n_layers, &rx);                     // MDS's reduction
 *   avl_run_forward(run, embeds, map->pos, map->n, map->n, avl_plan_hooks(clean), logits, 1);
 *   double from_video = avl_received_mean(rx, 12, AVL_QG_VIDEO, key);      // layer 12, one key
 *
 *   avl_plan_new(m, map, &rest);                                            // the restored run
 *   avl_plan_patch(rest, AVL_SITE_ATTN_IN, 0, n_layers, &video_tokens, cap);
 *   avl_run_forward(run2, corrupted_embeds, ..., avl_plan_hooks(rest), logits, 1);
 *   avl_plan_free(rest); avl_plan_free(clean);   // frees cap and rx too
 *
 * A plan belongs to one sequence (its token map, which must outlive it) and composes all its
 * parts into one avl_hooks. avl_plan_hooks returns NULL for an empty plan, so an empty plan is
 * plain inference at no extra cost. At a site, patches apply first and captures then see the
 * patched values; in the attention hook, pre-softmax edits apply first, then post-softmax edits,
 * then observers see the probabilities that are actually multiplied into V.
 * A plan may be used for several forward passes of one run (prefill, then generated steps):
 * captures and patches only concern positions of the token map (the prefill); attention edits
 * may name generated queries (queries_from); observers count prefill queries only.
 * Not thread-safe to modify while a forward pass uses it.
 */
#ifndef AVLENS_INTERP_H
#define AVLENS_INTERP_H

#include <stdbool.h>
#include <stdint.h>

#include "avlens/media.h"
#include "avlens/model.h"
#include "avlens/sequence.h"
#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- token sets ---- */

/* A set of positions, ascending and unique. Owned by whoever made it (avl_tokset_free). */
typedef struct {
    int64_t n;
    int64_t *pos; /* (n) */
} avl_tokset;

/* From a list in any order, duplicates allowed; AVL_E_ARG for a negative position. */
avl_status avl_tokset_from_list(const int64_t *pos, int64_t n, avl_tokset *out);
/* Every position of the map whose kind is kind. */
avl_status avl_tokset_of_kind(const avl_token_map *map, avl_tok_kind kind, avl_tokset *out);
bool avl_tokset_contains(const avl_tokset *s, int64_t pos);
void avl_tokset_free(avl_tokset *s); /* frees pos and zeroes *s; NULL-safe */

/* ---- plans ---- */

typedef struct avl_plan avl_plan;

/* A plan for forward passes over the sequence of map (map->n prefill positions). */
avl_status avl_plan_new(const avl_model *m, const avl_token_map *map, avl_plan **out);
void avl_plan_free(avl_plan *p);
/* The hooks to hand to avl_run_forward / avl_generate; NULL when the plan is empty. Valid
 * until the plan is changed or freed. */
const avl_hooks *avl_plan_hooks(avl_plan *p);
/* The hooks never allocate and cannot fail: everything is allocated when parts are added. */

/* Activations at a site, written during the forward pass. Owned by the plan. */
typedef struct {
    avl_site site;
    int layer0, layer1;  /* layers [layer0, layer1); FINAL uses layer n_layers */
    int64_t n;           /* positions captured */
    const int64_t *pos;  /* (n) ascending */
    int64_t dim;         /* H */
    float *data;         /* (layer1 - layer0, n, dim); zero until the pass reaches them */
} avl_capture;

/* Rows of one captured layer, (n, dim), or NULL when layer is outside the capture. */
const float *avl_capture_layer(const avl_capture *c, int layer);

/* Captures site in layers [layer0, layer1) at the positions of tokens (NULL: every position of
 * the map). AVL_E_ARG for a bad layer range or a position outside the map. */
avl_status avl_plan_capture(avl_plan *p, avl_site site, int layer0, int layer1, const avl_tokset *tokens,
                            avl_capture **out);

/* Overwrites site in layers [layer0, layer1) at the positions of tokens with src's rows (the
 * capture of another run, which must stay alive while this plan runs). src must have the same
 * site and dim, hold every layer and every position asked for (AVL_E_ARG naming what is
 * missing). */
avl_status avl_plan_patch(avl_plan *p, avl_site site, int layer0, int layer1, const avl_tokset *tokens,
                          const avl_capture *src);

/* Calls fn at site in layers [layer0, layer1) with the activations of the map's positions
 * (after any patch of this plan), from the forward pass's thread, in chunk order: x (n, dim)
 * holds positions [p0, p0 + n). For reductions that must not store every row (e.g. sinks). */
typedef void (*avl_site_fn)(void *user, int layer, int64_t p0, int64_t n, int64_t dim, const float *x);
avl_status avl_plan_on_site(avl_plan *p, avl_site site, int layer0, int layer1, avl_site_fn fn, void *user);

/* Attention edits. Scores a are the scaled pre-softmax scores (q.k / sqrt(d)).
 *   PRE_ABS:      a_j <- a_j + c |a_j| for the chosen keys (PAI's and ASD's form; c < 0 lowers),
 *                 then the row's softmax is recomputed from the edited scores. The decoder's
 *                 hook only sees the probabilities and the read-only scores, so the edit is
 *                 done inside the hook: edited scores are written into the probability row and
 *                 the softmax is evaluated in place with the same operations, in the same
 *                 order, as the attention kernel's (max over unmasked keys, expf(a - max),
 *                 sum in increasing key order, one reciprocal, multiply). The result is
 *                 therefore bit-identical to running the kernel on edited scores (with c = 0
 *                 the row is reproduced exactly; a unit test checks it). Masked keys stay masked.
 *   POST_SCALE:   p_j <- c p_j for the chosen keys, no renormalisation.
 *   POST_RENORM:  p_j <- c p_j, then the row is rescaled so that its sum is what it was.
 * Several PRE edits on one row compose (each reads the scores the previous left) before a
 * single softmax. */
typedef enum { AVL_EDIT_PRE_ABS = 0, AVL_EDIT_POST_SCALE, AVL_EDIT_POST_RENORM } avl_edit_kind;

typedef struct {
    avl_edit_kind kind;
    double c;
    int layer0, layer1;        /* layers [layer0, layer1) */
    const int64_t *heads;      /* query heads, or NULL: all */
    int n_heads;
    const avl_tokset *queries; /* query positions, or NULL: every prefill position */
    int64_t queries_from;      /* also every query at position >= this (generated steps); -1: none */
    const avl_tokset *keys;    /* key positions (required) */
} avl_attn_edit;

/* Adds an edit (the sets are copied). AVL_E_ARG for bad layers or heads. */
avl_status avl_plan_edit_attn(avl_plan *p, const avl_attn_edit *e);

/* Observer: attention each key receives, by query group, on the fly (no L x L map stored).
 * For layer l, group g and key k:
 *   mean_g(l, k) = mean over heads h and over prefill queries q in group g with q > k of
 *                  attn_l[h, q, k]   (0 where there is no such query).
 * Groups: VIDEO (video tokens), AUDIO (audio tokens), TEXT (everything else: text, media
 * delimiters, image tokens). Sums are accumulated in fixed point (2^-40 units, int64, atomic
 * adds), so the result is exactly the same for any thread count, block size or chunking. */
typedef enum { AVL_QG_VIDEO = 0, AVL_QG_AUDIO, AVL_QG_TEXT, AVL_QG_COUNT } avl_qgroup;

typedef struct avl_received avl_received;

avl_status avl_plan_observe_received(avl_plan *p, int layer0, int layer1, avl_received **out);
/* mean_g(layer, key) as above; NaN for a layer outside the observer or a key outside the map. */
double avl_received_mean(const avl_received *r, int layer, avl_qgroup g, int64_t key);
/* The observed layers [*layer0, *layer1). */
void avl_received_layers(const avl_received *r, int *layer0, int *layer1);
/* Queries of group g after key (the denominator / n_heads). */
int64_t avl_received_count(const avl_received *r, avl_qgroup g, int64_t key);

/* ---- input corruption (paper-spec.md section 3) ---- */

typedef enum {
    AVL_CORRUPT_ZERO = 0, /* the raw input zeroed before the processor */
    AVL_CORRUPT_NOISE,    /* N(0, std^2) added to the processor tensor, seeded */
    AVL_CORRUPT_MEAN      /* encoder outputs replaced by their mean (after avl_thinker_embed) */
} avl_corrupt_kind;

typedef struct {
    avl_corrupt_kind kind;
    double std;          /* NOISE */
    uint64_t seed;       /* NOISE */
    avl_norm_mode norm;  /* ZERO of video: the processor's normalisation (slow or fast) */
} avl_corruption;

/* input_features (count floats, any layout) in place. ZERO: the Whisper log-mel of a silent
 * waveform, which is -1.5 in every bin and frame (log10(1e-10) = -10, the max-8 floor does not
 * bite, (-10 + 4) / 4); NOISE: adds noise. MEAN is AVL_E_ARG here. */
avl_status avl_corrupt_audio_features(float *features, int64_t count, const avl_corruption *c);

/* pixel_values_videos (n_patches, patch_dim) in place, patch_dim = 3 * (values per channel),
 * each patch laid out (channel, frame, row, col). ZERO: what the processor makes of black
 * frames: every value of channel ch becomes (0 - mean_ch) / std_ch under c->norm; NOISE: adds
 * noise. MEAN is AVL_E_ARG here. */
avl_status avl_corrupt_video_pixels(float *pixels, int64_t n_patches, int64_t patch_dim, const avl_corruption *c);

/* MEAN: in embeds (map->n, H), every row of kind is replaced by the mean of those rows
 * (computed in double). No rows of that kind: nothing changes. */
avl_status avl_corrupt_mean_embeds(float *embeds, int64_t H, const avl_token_map *map, avl_tok_kind kind);

#ifdef __cplusplus
}
#endif
#endif
