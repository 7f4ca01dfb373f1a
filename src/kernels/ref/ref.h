/* src/kernels/ref/ref.h: the reference kernels: plain C, one thread, a fixed summation order,
 * written for clarity. Each has the same contract as its fast twin (kernels/gemm.h,
 * kernels/ops.h, kernels/attention.h) and exists to test it. */
#ifndef AVLENS_KERNELS_REF_H
#define AVLENS_KERNELS_REF_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/gemm.h"

void avl__ref_gemm(const avl__gemm_args *a);
void avl__ref_rmsnorm(float *y, const float *x, const float *w, int64_t rows, int64_t dim,
                      float eps);
void avl__ref_layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows,
                        int64_t dim, float eps);
void avl__ref_silu_mul(float *y, const float *g, const float *u, int64_t n);
void avl__ref_gelu(float *y, const float *x, int64_t n, bool tanh_approx);
void avl__ref_softmax_rows(float *x, int64_t rows, int64_t cols, int64_t ld);
void avl__ref_rope(float *x, int64_t ldx, int64_t rows, int64_t n_heads, int64_t hd,
                   const float *cos, const float *sin, int64_t ldcs);

#endif
