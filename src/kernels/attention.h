/* src/kernels/attention.h: scaled dot-product attention, fp32, with grouped-query heads,
 * causal and block (segment) masks, and a hook that sees (and may edit) each head's
 * probabilities.
 *
 * For each query head h (its key/value head is h / (n_heads / n_kv_heads)), each query i:
 *   s[j]   = (q[i,h,:] · k[j,kvh,:]) * scale        (scale = 1/sqrt(head_dim) by default)
 *   s[j]   = -inf where the mask forbids key j
 *   p      = softmax(s)                              (all -inf -> all 0)
 *   hook(p, s) if set                                (may edit p in place)
 *   out[i,h,:] = sum_j p[j] v[j,kvh,:]
 *
 * Positions: query i sits at absolute position q_pos0 + i, key j at position j (with a KV cache,
 * q_pos0 = number of cached keys before this chunk; L_k includes the chunk).
 * Masks: causal: key j visible iff j <= q_pos0 + i.  Segments (vision window attention,
 * block-diagonal like cu_seqlens): seg_bounds[0] = 0 < seg_bounds[1] < ... < seg_bounds[n_seg]
 * = the last position + 1; query and key must lie in the same [seg_bounds[s], seg_bounds[s+1]).
 * Both may be on at once (causal within segments).
 *
 * Mirrors the eager attention of transformers' modeling_qwen2_5_omni.py (repeat_kv for GQA,
 * softmax in fp32) as a formula; no code is taken from it.
 */
#ifndef AVLENS_KERNELS_ATTENTION_H
#define AVLENS_KERNELS_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "avlens/status.h"

/* Called once per (head, block of queries), from any OpenMP thread, concurrently for
 * different heads: it must be thread-safe and must not call OpenMP-parallel kernels.
 *   user      the hook_user pointer given with the hook
 *   layer     the layer number given in the params (for the caller's bookkeeping)
 *   head      query head index
 *   q_start   first query row of this block (0-based in this call, absolute position
 *             q_pos0 + q_start), q_count rows in the block
 *   n_keys    L_k
 *   probs     (q_count, n_keys), row stride n_keys: softmax probabilities, masked entries 0.
 *             Editable: whatever it holds when the hook returns is multiplied into V
 *             (no renormalisation is done).
 *   scores    (q_count, n_keys), row stride n_keys: the scaled, masked scores before the
 *             softmax (-inf where masked). Read-only.
 * Both views are valid during the call only. Blocks of one head arrive in increasing q_start
 * order only when a single thread runs; do not depend on the order. */
typedef void (*avl__attn_hook)(void *user, int layer, int64_t head, int64_t q_start,
                               int64_t q_count, int64_t n_keys, float *probs,
                               const float *scores);

typedef struct {
    int64_t n_heads;     /* query heads */
    int64_t n_kv_heads;  /* key/value heads; divides n_heads */
    int64_t head_dim;    /* d */
    int64_t n_q;         /* L_q: queries in this call */
    int64_t n_k;         /* L_k: keys (cached + new) */
    int64_t q_pos0;      /* absolute position of query 0 (see masks above) */
    const float *q;      /* (L_q, n_heads * d), row stride ldq */
    int64_t ldq;
    const float *k;      /* (L_k, n_kv_heads * d), row stride ldk */
    int64_t ldk;
    const float *v;      /* (L_k, n_kv_heads * d), row stride ldv */
    int64_t ldv;
    float *out;          /* (L_q, n_heads * d), row stride ldo; must not overlap q, k, v */
    int64_t ldo;
    float scale;         /* 0: 1/sqrt(d) */
    bool causal;
    const int64_t *seg_bounds; /* (n_seg + 1) or NULL: block mask */
    int64_t n_seg;
    avl__attn_hook hook; /* NULL: none (no extra cost) */
    void *hook_user;
    int layer;           /* passed to the hook only */
} avl__attn_params;

/* Fast attention: OpenMP over (head, block of 32 queries), vectorised dot products, scratch
 * per thread. Results are the same for any thread count. AVL_E_ARG for inconsistent
 * params (named), AVL_E_NOMEM when scratch cannot be allocated. */
avl_status avl__attention(const avl__attn_params *p);

/* The reference: one query at a time, fixed order, no threads. Same contract. The hook is
 * called with q_count = 1. */
avl_status avl__ref_attention(const avl__attn_params *p);

/* Shared argument check (used by both). */
avl_status avl__attention_check(const avl__attn_params *p);

#endif
