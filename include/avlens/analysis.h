/* avlens/analysis.h: the paper's first analyses on top of plans: sinks (App. A.1), the
 * modality dominance score MDS (Sec. 5.1, Eq. 5), unimodal dominance (Sec. 3.1, Eqs. 1-2),
 * the token sets of causal tracing (Sec. 4.2, 5.1) and causal tracing with its exact shortcuts
 * (Sec. 3.2, Eqs. 3-4).
 * Every constant and its source: docs/analyses.md and /work/shared/spec/paper-spec.md.
 *
 *   avl_sink_params sp;
 *   avl_sink_default_params(avl_model_config(m), &sp);      // 7B: D = {458, 2570}, tau = 25
 *   avl_plan *plan; avl_plan_new(m, map, &plan);
 *   avl_phi_table *phi; avl_sinks_observe(plan, &sp, &phi);  // phi per layer and position
 *   avl_received *rx;   avl_plan_observe_received(plan, 0, n_layers, &rx);
 *   avl_run_forward(run, embeds, map->pos, map->n, map->n, avl_plan_hooks(plan), logits, 1);
 *   avl_sinks *s; avl_sinks_find(phi, sp.tau, map, 2, &s);   // K = floor(L / 2)
 *   avl_mds *md;  avl_mds_compute(rx, s->video, s->n_video, &md);
 *   ...
 *   avl_mds_free(md); avl_sinks_free(s); avl_phi_free(phi); avl_plan_free(plan);
 */
#ifndef AVLENS_ANALYSIS_H
#define AVLENS_ANALYSIS_H

#include <stdbool.h>
#include <stdint.h>

#include "avlens/interp.h"
#include "avlens/model.h"
#include "avlens/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sinks (src/analysis/sinks.c) ---- */

#define AVL_SINK_MAX_DIMS 16

typedef struct {
    int n_dims;
    int64_t dims[AVL_SINK_MAX_DIMS]; /* D: massive-activation dimensions of the backbone */
    double tau;                      /* threshold on phi */
} avl_sink_params;

/* The paper's values (App. A.1.2, Tab. 4) recognised from the config: Qwen2.5-Omni-7B (28
 * layers, hidden 3584): D = {458, 2570}, tau = 25; Qwen2.5-Omni-3B (36 layers, hidden 2048):
 * tau = 20 and D unknown here (n_dims = 0: find it with avl_sink_find_dims / `avlens
 * sinkdims`). Any other model: tau = 25, n_dims = 0. Returns AVL_OK in every case. */
avl_status avl_sink_default_params(const avl_config *cfg, avl_sink_params *out);

/* phi(x) = max over d in D of |x_d / sqrt(mean(x^2) + 1e-6)|, fp32 (the mean accumulated in
 * double, then rounded), x (H). */
float avl_sink_phi(const float *x, int64_t H, const avl_sink_params *p);

/* phi of every (layer, position): (n_layers, L), filled by a plan's RESID observer. */
typedef struct {
    int n_layers;
    int64_t L;
    float *phi; /* (n_layers, L) */
    avl_sink_params params;
} avl_phi_table;

/* Adds to plan an observer of the layer-input hidden states (RESID, layers 0..n-1) that fills
 * a new table; the table must outlive the plan's forward passes (free with avl_phi_free).
 * AVL_E_ARG when p has no dimensions or a dimension outside the hidden size. */
avl_status avl_sinks_observe(avl_plan *plan, const avl_sink_params *p, avl_phi_table **out);
void avl_phi_free(avl_phi_table *t);

/* Sinks of one sequence. */
typedef struct {
    int n_layers;
    int64_t L;
    uint8_t *member;       /* (n_layers, L): 1 where phi > tau (S_l over ALL positions) */
    int64_t *layer_count;  /* (n_layers): |S_l| */
    int32_t *freq;         /* (L): f(t) = layers with t in S_l */
    int64_t K;             /* floor(L / N) */
    int64_t n_global;      /* min(K, tokens with f >= 1) */
    int64_t *global;       /* (n_global): most frequent first; ties by first appearance (lowest
                              layer, then lowest position), as Counter.most_common */
    int64_t n_video, *video; /* global sinks that are video tokens, in rank order */
    int64_t n_audio, *audio; /* global sinks that are audio tokens, in rank order */
} avl_sinks;

/* Per-layer sets, frequencies and the global top-K with K = floor(L / N) (Eq. 13, N the
 * authors' k_divide). phi may come from avl_sinks_observe or anywhere else of that shape. */
avl_status avl_sinks_find(const avl_phi_table *phi, double tau, const avl_token_map *map, int64_t N,
                          avl_sinks **out);
void avl_sinks_free(avl_sinks *s);

/* Massive-activation dimensions from one hidden state x (H) (the BOS / first token's, at a
 * middle layer): dimension d is massive when |x_d| >= ratio * median(|x|) and |x_d| >= floor
 * (Sun et al. 2024, "Massive activations": about 1e4 x the median; we use ratio = 100 and
 * floor = 20 as defaults, see docs/analyses.md). dims (at most max) sorted by |x_d|
 * descending, ties by lower d. */
avl_status avl_sink_find_dims(const float *x, int64_t H, double ratio, double floor_abs, int64_t *dims, int max,
                              int *n_dims);

/* ---- MDS (src/analysis/mds.c) ---- */

typedef struct {
    int n_layers;     /* the observer's layers [layer0, layer0 + n_layers) */
    int layer0;
    int64_t n;        /* sinks */
    int64_t *sinks;   /* (n) as given */
    double *a_v, *a_a, *mds; /* (n, n_layers) */
    double *mean;     /* (n): layer mean of MDS ignoring NaN (NaN when every layer is NaN) */
} avl_mds;

/* MDS(s, l) = (a_v - a_a) / (a_v + a_a + 1e-9) for each sink and each observed layer, a_v =
 * mean over heads and video queries q > s of attn_l[h, q, s] (0 where none), a_a likewise
 * over audio queries. */
avl_status avl_mds_compute(const avl_received *rx, const int64_t *sinks, int64_t n, avl_mds **out);
void avl_mds_free(avl_mds *m);

/* The unimodal / cross-modal split (Sec. 5.1; causal_tracing_modality_sink.py build_layerlist):
 * order (n) gets the sinks sorted by layer-mean MDS, descending for video sinks (video=true),
 * ascending for audio ones; ties keep the input order (a stable sort, as Python's sorted);
 * NaN means go last. The first *n_uni = floor(n / 2) are unimodal, the rest cross-modal. */
avl_status avl_mds_split(const avl_mds *m, bool video, int64_t *order, int64_t *n_uni);

/* Tab. 12 statistics of a list of values (NaN ignored): median and quartiles with numpy's
 * linear interpolation, IQR = q75 - q25, std with ddof = 0 (numpy's default), mean. */
typedef struct {
    int64_t count;
    double median, q25, q75, iqr, mean, std;
} avl_summary;

void avl_summarize(const double *x, int64_t n, avl_summary *out);

/* ---- token sets (src/analysis/tokensets.c) ---- */

/* Object tokens of video item `item`: masks[i] (mask_h, mask_w) grey bytes for temporal grid
 * index i (n_masks of them; grid indices without a mask get none). The mask is split into the
 * item's merged h x w token grid with cell edges round(g * side / cells) (round half to even,
 * as Python's round); a cell is an object cell if any pixel is > threshold (30). */
avl_status avl_tokset_object_video(const avl_token_map *map, int item, const uint8_t *const *masks, int64_t n_masks,
                                   int64_t mask_h, int64_t mask_w, int threshold, avl_tokset *out);

/* Object masks of one video item (src/analysis/masks.c): grey images, one per temporal grid
 * index, NULL where a frame has none. */
typedef struct {
    int64_t n;        /* masks (grid indices) */
    int64_t h, w;     /* size of every mask present */
    uint8_t **grey;   /* (n) each (h, w), or NULL */
} avl_masks;

/* Reads paths[0..n) (PNG/JPG, as SAM2 writes them; a NULL path: no mask for that index) with
 * avl_image_read and converts them to grey (avl_mask_grey). Each mask must be frame_h x frame_w
 * (the size of the frames it was drawn on; 0 and 0: all masks must match the first one);
 * a mismatch is AVL_E_FORMAT naming the mask file and both sizes ("m/001.png: mask is 64x48 but
 * its frame is 224x160"). Unreadable files: AVL_E_IO / AVL_E_MEDIA naming the file. */
avl_status avl_masks_read(const char *const *paths, int64_t n, int64_t frame_h, int64_t frame_w, avl_masks **out);
void avl_masks_free(avl_masks *m); /* NULL-safe */

/* Pillow's convert("L") of n_pixels RGB24 pixels: (19595 R + 38470 G + 7471 B + 2^15) >> 16. */
void avl_mask_grey(const uint8_t *rgb, int64_t n_pixels, uint8_t *grey);

/* avl_tokset_object_video on the masks read above. */
avl_status avl_tokset_object_masks(const avl_token_map *map, int item, const avl_masks *m, int threshold,
                                   avl_tokset *out);

/* Object tokens of audio item `item`: tokens whose time span [t0, t1) overlaps one of the
 * sound-event segments (n_seg pairs of seconds [start, end)). */
avl_status avl_tokset_object_audio(const avl_token_map *map, int item, const double *segments, int64_t n_seg,
                                   avl_tokset *out);

/* Random N (Sec. 4.2): a uniform sample of `size` positions of `from` without replacement
 * (partial Fisher-Yates on a seeded xoshiro stream); size > from->n takes all of them. */
avl_status avl_tokset_random(const avl_tokset *from, int64_t size, uint64_t seed, avl_tokset *out);

/* The audio tokens grouped into contiguous runs (the authors' get_continuous_ranges); the
 * default tracing filter skips samples with fewer than 5 runs. */
int64_t avl_audio_runs(const avl_token_map *map);

/* ---- unimodal dominance (src/analysis/dominance.c) ---- */

typedef enum { AVL_DOM_NONE = 0, AVL_DOM_AUDIO, AVL_DOM_VIDEO } avl_dominance;

/* Eq. 1: audio-dominant when y_av = y_a and y_av != y_v; Eq. 2: video-dominant when y_av = y_v
 * and y_av != y_a (answers compared after trimming white space). */
avl_dominance avl_dominance_classify(const char *y_av, const char *y_a, const char *y_v);
const char *avl_dominance_name(avl_dominance d); /* "none", "audio", "video" */

/* The first token of word and of " " + word (utils/logit.py max_prob_for_word); ids[1] = -1
 * when an encoding is empty. */
avl_status avl_word_ids(const avl_tokenizer *tok, const char *word, int32_t ids[2]);

/* The word's probability from the logits of the generated steps (n_steps, V): the max over
 * steps (or the first step only) and over the two ids of softmax(logits)[id]. 0 with no step. */
double avl_word_prob(const float *step_logits, int64_t n_steps, int64_t V, const int32_t ids[2], bool first_step_only);

/* One generated answer with the logits of every step. */
typedef struct {
    int32_t *ids;     /* (n) generated ids */
    int64_t n;
    char *text;       /* decoded, special tokens skipped */
    float *logits;    /* (n, V) raw logits of each step */
    int64_t V;
} avl_gen_answer;

void avl_gen_answer_clear(avl_gen_answer *a);

/* Greedy generation on prepared decoder inputs (embeds of map) under hooks (may be NULL),
 * keeping every step's logits. */
avl_status avl_gen_answer_run(const avl_model *m, const avl_tokenizer *tok, const float *embeds,
                               const avl_token_map *map, const avl_gen_params *gp, const avl_hooks *hooks,
                               avl_gen_answer *out);

/* The three runs of Sec. 3.1 on the processor tensors: joint; audio-only (video frames zeroed
 * before the processor: avl_corrupt_video_pixels ZERO, sequence unchanged); video-only (the
 * waveform zeroed: avl_corrupt_audio_features ZERO). norm: the processor's normalisation. */
typedef struct {
    avl_gen_answer av, a, v;
    avl_dominance dominance;
} avl_dominance_result;

avl_status avl_dominance_run(const avl_model *m, const avl_tokenizer *tok, const avl_thinker_inputs *in,
                             const avl_gen_params *gp, avl_norm_mode norm, avl_dominance_result *out);
void avl_dominance_result_clear(avl_dominance_result *r);

/* ---- causal tracing (src/analysis/trace.c) ---- */

typedef struct {
    avl_site site;        /* AVL_SITE_ATTN_IN ("before attention", default); RESID, ATTN_OUT, MLP_OUT */
    int layer0, layer1;   /* patched layers: [0, n_layers) by default (avl_trace_run only) */
    avl_gen_params gen;   /* greedy, a few tokens */
    bool first_step_only; /* word probabilities: first step only (default: max over steps) */
    /* Exact shortcuts of the restored run (both on by default; off = naive full recomputation,
     * the same numbers bit for bit on a row-independent backend such as ref, docs/analyses.md):
     *  reuse_prefix:   the restored run equals the corrupted one before its first patched
     *                  position, so it starts from a copy of the corrupted run's KV cache there;
     *  reuse_clean_kv: when site is RESID or ATTN_IN and every layer is patched, a patched
     *                  token's keys and values equal the clean run's in every layer, so they are
     *                  copied from the clean run's cache and the token is not computed at all
     *                  (the last prefill position, whose logits are read, is always computed). */
    bool reuse_prefix;
    bool reuse_clean_kv;
} avl_trace_params;

avl_trace_params avl_trace_default_params(const avl_model *m);

typedef struct {
    avl_gen_answer clean, corr, rest;     /* avl_tracer_restore fills rest only (the tracer holds
                                             clean and corr: avl_tracer_clean/_corrupted) */
    double p_clean_c, p_corr_c, p_rest_c; /* P(c): c = the clean answer word */
    double p_corr_r, p_rest_r;            /* P(r): r = the corrupted answer word */
    double ie_clean, ie_corr;             /* Eq. 3: P_rest(c) - P_corr(c); Eq. 4: P_corr(r) - P_rest(r) */
    int64_t n_patched;                    /* tokens patched */
    int64_t n_computed;                   /* prefill positions the restored run computed (map->n
                                             when naive) */
} avl_trace_result;

/* A tracer: the clean and corrupted runs of one sample, done once, and any number of restored
 * runs against them (token sets, layer windows):
 *
 *   avl_trace_params tp = avl_trace_default_params(m);
 *   avl_tracer *t;
 *   avl_tracer_new(m, tok, map, clean, corr, &video_tokens, &tp, NULL, &t);  // clean + corrupted
 *   avl_trace_result r;
 *   avl_tracer_restore(t, &sink_set, 0, n_layers, &r);   // r.ie_clean, r.ie_corr
 *   avl_trace_result_clear(&r);
 *   avl_tracer_free(t);
 *
 * Clean run on clean_embeds, corrupted run on corr_embeds (same map), each generated with
 * tp->gen; the clean run captures tp->site in every layer at the positions of `patchable`
 * (NULL: every position; every set restored later must lie inside it). clean_plan: NULL, or the
 * caller's plan for the clean run with observers and captures only (e.g. sinks and received
 * attention, which then see the clean prefill; no patches or attention edits: the shortcuts
 * take the clean run to be the plain one); the tracer adds its capture to it; it must outlive
 * the tracer. With the shortcuts the corrupted run starts from the clean cache before the first
 * position whose embeddings differ (they are the same computation there). c = the
 * first word of the clean answer, r = that of the corrupted one (give gen.stop_ids, e.g.
 * <|im_end|>, so that a letter answer ends there). The embeddings and the map must outlive the
 * tracer. Keeps three KV caches of map->n + gen.max_new_tokens positions. */
typedef struct avl_tracer avl_tracer;

avl_status avl_tracer_new(const avl_model *m, const avl_tokenizer *tok, const avl_token_map *map,
                          const float *clean_embeds, const float *corr_embeds, const avl_tokset *patchable,
                          const avl_trace_params *tp, avl_plan *clean_plan, avl_tracer **out);
void avl_tracer_free(avl_tracer *t);
const avl_gen_answer *avl_tracer_clean(const avl_tracer *t);
const avl_gen_answer *avl_tracer_corrupted(const avl_tracer *t);

/* The restored run: the corrupted inputs with tp->site in layers [layer0, layer1) overwritten at
 * `tokens` by the clean run's activations (prefill only; generated steps read the patched
 * cache), with the shortcuts tp allows. AVL_E_ARG for bad layers or a token outside patchable. */
avl_status avl_tracer_restore(avl_tracer *t, const avl_tokset *tokens, int layer0, int layer1,
                              avl_trace_result *out);

/* One restored run from scratch: avl_tracer_new (patchable = tokens) + avl_tracer_restore with
 * tp's layers; out gets the clean and corrupted answers too. */
avl_status avl_trace_run(const avl_model *m, const avl_tokenizer *tok, const avl_token_map *map,
                         const float *clean_embeds, const float *corr_embeds, const avl_tokset *tokens,
                         const avl_trace_params *tp, avl_trace_result *out);
void avl_trace_result_clear(avl_trace_result *r);

/* ---- bottom-up per-token sweep (src/analysis/sweep.c; App. B.1.1, Tab. 6-7) ---- */

/* One token's restored run: that token alone patched. */
typedef struct {
    int64_t pos;
    double ie_clean, ie_corr;
    double p_rest_c, p_rest_r;
    int64_t n_computed;
} avl_sweep_token;

/* Called after each token's run (done of total); may be NULL. */
typedef void (*avl_sweep_progress)(void *user, int64_t done, int64_t total);

/* One restored run per position of tokens (each inside the tracer's patchable set), patching
 * that position alone in layers [layer0, layer1): out[i] (tokens->n of them) for tokens->pos[i].
 * With every layer, the before-attention (or RESID) site and both shortcuts, each run computes
 * only the positions after its token, and `batch` (at most AVL_SWEEP_MAX_BATCH; <= 1: one at
 * a time) such runs go through the decoder together (avl_run_forward_batch: one read of the
 * weights for all of them; batch extra KV caches of map->n + max_new_tokens positions). Each
 * result equals avl_tracer_restore of that token alone (bit for bit on the ref backend).
 * progress (may be NULL) is called after each token. */
#define AVL_SWEEP_MAX_BATCH 16
avl_status avl_tracer_sweep(avl_tracer *t, const avl_tokset *tokens, int layer0, int layer1, int batch,
                            avl_sweep_progress progress, void *user, avl_sweep_token *out);

/* order (n) gets the indices of ie (n values) by decreasing effect: descending ie, ties by
 * descending tie (may be NULL), then ascending index; NaN last. */
avl_status avl_sweep_rank(const double *ie, const double *tie, int64_t n, int64_t *order);

#ifdef __cplusplus
}
#endif
#endif
