/* src/kernels/ops.h: the element-wise and row-wise operations of the decoder and encoders,
 * fast versions (OpenMP over rows, split-lane sums). Their plain twins, same arguments, are
 * avl__ref_* in kernels/ref/ref.h; tests/kernels/test_ops.c holds them together.
 *
 * All buffers fp32, row-major. "(rows, dim)" means rows rows of dim values, contiguous unless
 * a leading dimension is given. Outputs may alias inputs where said.
 * Mirrors (formulas, not code): Qwen2RMSNorm, torch.nn.LayerNorm, Qwen2MLP's
 * act_fn(gate)*up with SiLU, torch.nn.GELU (approximate='none' | 'tanh'), torch.softmax, and
 * apply_rotary_pos_emb / rotate_half in transformers' modeling_qwen2_5_omni.py.
 */
#ifndef AVLENS_KERNELS_OPS_H
#define AVLENS_KERNELS_OPS_H

#include <stdbool.h>
#include <stdint.h>

/* RMSNorm: y[r,:] = x[r,:] / sqrt(mean(x[r,:]^2) + eps) * w.
 * x, y: (rows, dim), y may be x; w: (dim). */
void avl__rmsnorm(float *y, const float *x, const float *w, int64_t rows, int64_t dim, float eps);

/* LayerNorm with biased variance: y = (x - mean) / sqrt(var + eps) * w + b.
 * x, y: (rows, dim), y may be x; w, b: (dim); b may be NULL (no bias). */
void avl__layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows,
                    int64_t dim, float eps);

/* y = silu(g) * u = g / (1 + exp(-g)) * u.  g, u, y: (n); y may be g or u. */
void avl__silu_mul(float *y, const float *g, const float *u, int64_t n);

/* y = gelu(x): erf form 0.5 x (1 + erf(x / sqrt 2)) (torch's default), or with tanh_approx
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).  x, y: (n); y may be x. */
void avl__gelu(float *y, const float *x, int64_t n, bool tanh_approx);

/* Softmax of each row in place. x: (rows, cols), row stride ld. -inf entries get probability
 * 0; a row that is all -inf becomes all 0 (not NaN). */
void avl__softmax_rows(float *x, int64_t rows, int64_t cols, int64_t ld);

/* Rotary embedding in place, HF rotate_half convention: for each row r and head h, with
 * v = x[r, h*hd : (h+1)*hd] and half = hd/2:
 *   out[i]        = v[i]*cos[r,i]        - v[i+half]*sin[r,i]          (i < half)
 *   out[i+half]   = v[i+half]*cos[r,i+half] + v[i]*sin[r,i+half]
 * x: (rows, n_heads*hd), row stride ldx; cos, sin: (rows, hd), row stride ldcs (the tables
 * already gathered per position, as the HF model builds them; TMRoPE's 3-D sections are merged
 * into them by the caller). hd must be even. */
void avl__rope(float *x, int64_t ldx, int64_t rows, int64_t n_heads, int64_t hd,
               const float *cos, const float *sin, int64_t ldcs);

#endif
