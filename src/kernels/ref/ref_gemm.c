/* src/kernels/ref/ref_gemm.c: the reference GEMM, the truth the fast backends are tested
 * against. Plain C, no threads, no vector intrinsics; weights converted exactly (dtype.h).
 *
 * Fixed order for every output (independent of compiler and flags: each product and each sum
 * is its own statement, so no FMA contraction even under -ffp-contract=on):
 *   acc = 0; for k = 0..K-1: acc = acc + x[m,k]*w[n,k]      (fp32)
 *   y[m,n] = acc (+ bias[n]) (+ old y[m,n])
 */
#include "kernels/gemm.h"
#include "kernels/ref/ref.h"

static avl_status ref_probe(char *isa, size_t n)
{
    if (n) {
        strncpy(isa, "c", n - 1);
        isa[n - 1] = 0;
    }
    return AVL_OK;
}

void avl__ref_gemm(const avl__gemm_args *a)
{
    const avl__weight *w = a->w;
    for (int64_t i = 0; i < a->m; i++) {
        const float *xr = a->x + i * a->ldx;
        for (int64_t j = 0; j < w->n; j++) {
            const char *wr = (const char *)w->data + (size_t)(j * w->ld) * avl__dtype_size(w->dtype);
            float acc = 0.0f;
            for (int64_t k = 0; k < w->k; k++) {
                float p = xr[k] * avl__load_elem(w->dtype, wr, k);
                acc = acc + p;
            }
            if (a->bias) acc = acc + avl__load_elem(a->bias->dtype, a->bias->data, j);
            float *yp = a->y + i * a->ldy + j;
            *yp = a->accumulate ? acc + *yp : acc;
        }
    }
}

static avl_status ref_gemm(const avl__gemm_args *a)
{
    avl__ref_gemm(a);
    return AVL_OK;
}

const avl__gemm_backend avl__gemm_ref = {"ref", ref_probe, ref_gemm, 0};
