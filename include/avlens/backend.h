/* avlens/backend.h: the matrix-product backend avlens computes with, and its threads.
 *
 * Usage:
 *   char buf[256];
 *   if (avl_backend_describe("auto", buf, sizeof buf) == AVL_OK) puts(buf);
 *   // "onednn: oneDNN 2.6.3, isa avx512_core_amx, bf16 matmul brg:avx512_core_amx;
 *   //  decode (M <= 4) on the avx512 skinny kernel; 2 threads"
 *   avl_set_threads(1);   // every kernel, oneDNN and OpenBLAS included
 *
 * Backends: "ref" (plain C, for tests), "onednn" (bf16 on AMX / AVX512-BF16), "openblas" (fp32,
 * portable); "auto" picks oneDNN when the CPU has bf16 arithmetic, else OpenBLAS.
 */
#ifndef AVLENS_BACKEND_H
#define AVLENS_BACKEND_H

#include <stddef.h>

#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes a one-line description of the backend name ("auto", "ref", "onednn", "openblas";
 * NULL means "auto"): the backend chosen, its library version and the ISA it runs, the skinny
 * (decode) kernel, the thread count. The text is truncated to fit n bytes (always
 * NUL-terminated when n > 0). AVL_E_ARG for an unknown name, AVL_E_UNSUPPORTED when that
 * backend cannot run on this machine (the detail says why). */
avl_status avl_backend_describe(const char *name, char *buf, size_t n);

/* Threads for every kernel started from the calling thread (n <= 0: back to the default,
 * OMP_NUM_THREADS or the cores; like omp_set_num_threads, the setting is per calling thread).
 * Results are reproducible for a fixed thread count. */
void avl_set_threads(int n);
int avl_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif
