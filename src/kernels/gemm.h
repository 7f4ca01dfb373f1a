/* src/kernels/gemm.h: the matrix product every linear layer runs on, behind a small backend
 * vtable (in the manner of ggml's backends and BLIS's framework/kernel split).
 *
 *   Y[M,N] = X[M,K] · W[N,K]^T  (+ bias[N])  (+ Y if accumulate)
 *
 * X fp32 row-major with leading dimension ldx; W in Hugging Face layout (one row per output
 * feature, W[n,k] at element n*ld + k) in bf16, f16 or f32, used in place (memory-mapped,
 * read-only, start address only 2-byte aligned); Y fp32 with leading dimension ldy;
 * accumulation in fp32.
 *
 * Usage:
 *   const avl__gemm_backend *be;
 *   if ((rc = avl__gemm_backend_select("auto", &be)) != AVL_OK) return rc;
 *   avl__weight w = {AVL__DT_BF16, ptr, 18944, 3584, 3584};
 *   avl__vec bias = {AVL__DT_BF16, bias_ptr};                 // or pass NULL
 *   rc = avl__gemm(be, M, x, 3584, &w, &bias, y, 18944, false);
 *
 * Backends (see docs/kernels.md):
 *   ref       plain C, fixed summation order, exact weight conversion: the truth for tests.
 *   onednn    oneDNN matmul: bf16 weights in place, activations rounded fp32 -> bf16 (RNE),
 *             fp32 accumulation and output; AMX / AVX512-BF16 when the CPU has them.
 *   openblas  cblas_sgemm in fp32; bf16/f16 weights converted to fp32 per call in panels.
 * Every backend but ref sends M <= skinny_max_m to the skinny kernel (avl__gemm_skinny), a
 * weight-streaming GEMV that is memory-bound and faster than either library for decode.
 *
 * Threads: OpenMP (avl__set_threads). For a fixed thread count results are bitwise
 * reproducible; the ref and skinny kernels are reproducible for any thread count.
 */
#ifndef AVLENS_KERNELS_GEMM_H
#define AVLENS_KERNELS_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/status.h"
#include "kernels/dtype.h"

/* A weight matrix W[n_out, n_in], element (n, k) at data + (n*ld + k) * dtype size.
 * data needs 2-byte alignment only. ld >= k. */
typedef struct {
    avl__dtype dtype;
    const void *data;
    int64_t n; /* N: output features (rows) */
    int64_t k; /* K: input features (columns) */
    int64_t ld;
} avl__weight;

/* A vector of n elements of dtype (biases are stored in the checkpoint's weight dtype). */
typedef struct {
    avl__dtype dtype;
    const void *data;
} avl__vec;

/* The arguments of one product, as a backend receives them (already validated). */
typedef struct {
    int64_t m;              /* M: rows of X and Y */
    const float *x;         /* (M, K), row stride ldx */
    int64_t ldx;
    const avl__weight *w;   /* (N, K) */
    const avl__vec *bias;   /* (N) or NULL */
    float *y;               /* (M, N), row stride ldy */
    int64_t ldy;
    bool accumulate;        /* add to the old Y instead of overwriting it */
} avl__gemm_args;

typedef struct avl__gemm_backend {
    const char *name;       /* "ref", "onednn", "openblas" */
    /* Probes the backend once (thread-safe): AVL_OK when it runs on this machine; writes a
     * short description of the ISA it will use into isa (e.g. "avx512_core_amx"). */
    avl_status (*probe)(char *isa, size_t isa_len);
    /* Computes one product; returns AVL_E_NOMEM or AVL_E_INTERNAL (library failure). */
    avl_status (*gemm)(const avl__gemm_args *a);
    /* Products with M <= skinny_max_m go to avl__gemm_skinny instead (0: never). */
    int64_t skinny_max_m;
} avl__gemm_backend;

/* The backends compiled in (each file defines one). */
extern const avl__gemm_backend avl__gemm_ref;
extern const avl__gemm_backend avl__gemm_onednn;
extern const avl__gemm_backend avl__gemm_openblas;

/* Picks a backend by name: "ref", "onednn", "openblas", or "auto" (oneDNN when it runs and
 * reports an ISA with bf16 arithmetic, AVX512-BF16 or AMX; else OpenBLAS).
 * AVL_E_ARG for an unknown name, AVL_E_UNSUPPORTED when the named backend cannot run here. */
avl_status avl__gemm_backend_select(const char *name, const avl__gemm_backend **out);

/* The ISA string the backend's probe reported ("" when it has not been probed or failed). */
const char *avl__gemm_backend_isa(const avl__gemm_backend *be);

/* Y = X·W^T (+ bias) (+ Y). Checks the arguments (AVL_E_ARG with the offending value named:
 * M < 0, null pointers, ldx < K, ldy < N, ld < K, unknown dtype, misaligned data) then runs
 * the skinny kernel or the backend. M == 0 or N == 0 is a no-op; K == 0 gives bias (+ Y). */
avl_status avl__gemm(const avl__gemm_backend *be, int64_t m, const float *x, int64_t ldx,
                     const avl__weight *w, const avl__vec *bias, float *y, int64_t ldy,
                     bool accumulate);

/* The skinny (small-M) kernel: one pass over W per call, each output computed by one thread
 * in a fixed order, so results do not depend on the thread count. Any M works; it is meant
 * for M up to about 16. Uses AVX-512F or AVX2+FMA(+F16C) when the CPU has them, else portable C.
 * Arguments as avl__gemm, assumed valid. */
void avl__gemm_skinny(const avl__gemm_args *a);

/* The implementation oneDNN picks for a bf16 product of this shape, e.g.
 * "brg:avx512_core_amx" or "ref:any" ("unavailable" when it cannot make one). Returns buf. */
const char *avl__gemm_onednn_impl(int64_t m, int64_t n, int64_t k, char *buf, size_t len);

/* True when oneDNN can make a bf16 matmul here (AVX512_CORE or better); without it the
 * onednn backend sends bf16 weights to openblas. */
bool avl__gemm_onednn_has_bf16(void);

/* Which skinny kernel runs here: "avx512", "avx2" or "portable". */
const char *avl__gemm_skinny_isa(void);

/* Forces one skinny variant ("portable", "avx2", "avx512"; NULL: back to the best one), so
 * that tests and benchmarks reach every variant the CPU can run. False (and no change) when
 * the CPU cannot run it. Process-wide: for tests and benchmarks only. */
bool avl__gemm_skinny_force(const char *isa);

/* Adds bias and/or the old Y to a freshly computed block: y[i,j] = acc[i,j] + bias[j] + yold.
 * Shared by backends that compute acc into a scratch buffer. */
void avl__gemm_epilogue(int64_t m, int64_t n, const float *acc, int64_t ldacc,
                        const avl__vec *bias, float *y, int64_t ldy, bool accumulate);

/* Threads used by every kernel (OpenMP, OpenBLAS and oneDNN follow). n <= 0: the default
 * (OMP_NUM_THREADS or the number of cores). OpenMP semantics: the setting belongs to the
 * calling thread (other threads keep the default until they set their own). */
void avl__set_threads(int n);
int avl__get_threads(void);

#endif
