/* src/kernels/gemm_openblas.c: the portable backend: cblas_sgemm in fp32.
 *
 * F32 weights (4-byte aligned) are used in place. BF16 and F16 weights (and F32 ones that are
 * only 2-byte aligned) are widened to fp32 per call, one panel of rows at a time, into a
 * scratch panel of at most PANEL_BYTES (16 MiB), and each panel is one sgemm writing its
 * columns of Y. Caching the widened weights instead would double the resident weights: the
 * 7B thinker's ~15 GB of bf16 would need ~30 GB more in fp32, beyond this machine's 24 GiB, so
 * the per-call conversion (about one extra pass over W, small next to the 2*M*N*K flops for
 * prefill-sized M) is the only choice that always fits.
 *
 * Threads: OpenBLAS (the pthread build) keeps its own pool; avl__set_threads sets its count.
 * Bias and accumulate are applied after each panel's sgemm (beta = accumulate ? 1 : 0, then
 * + bias), so the order is (X·W^T + old Y) + bias.
 */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>

#include "base/internal.h"
#include "kernels/gemm.h"

enum { PANEL_BYTES = 16 << 20 };

static avl_status ob_probe(char *isa, size_t n)
{
    snprintf(isa, n, "%s", openblas_get_corename());
    return AVL_OK;
}

static void add_bias(const avl__gemm_args *a, int64_t n0, int64_t nb)
{
    if (!a->bias) return;
    for (int64_t i = 0; i < a->m; i++) {
        float *yr = a->y + i * a->ldy;
        for (int64_t j = n0; j < n0 + nb; j++)
            yr[j] = yr[j] + avl__load_elem(a->bias->dtype, a->bias->data, j);
    }
}

static avl_status ob_gemm(const avl__gemm_args *a)
{
    const avl__weight *w = a->w;
    int64_t M = a->m, N = w->n, K = w->k;
    float beta = a->accumulate ? 1.0f : 0.0f;
    if (M > INT_MAX || N > INT_MAX || w->ld > INT_MAX || a->ldx > INT_MAX || a->ldy > INT_MAX)
        return avl__err(AVL_E_UNSUPPORTED, "gemm openblas: a size or leading dimension exceeds "
                        "the 32-bit BLAS interface (M=%lld N=%lld)", (long long)M, (long long)N);
    openblas_set_num_threads(avl__get_threads());
    if (w->dtype == AVL__DT_F32 && (uintptr_t)w->data % 4 == 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, a->x,
                    (int)a->ldx, w->data, (int)w->ld, beta, a->y, (int)a->ldy);
        add_bias(a, 0, N);
        return AVL_OK;
    }
    int64_t nb = PANEL_BYTES / (4 * K);
    if (nb < 16) nb = 16;
    nb = nb / 16 * 16;
    if (nb > N) nb = N;
    float *panel = avl__malloc(sizeof(float) * (size_t)(nb * K)); /* (nb, K) widened rows */
    if (!panel)
        return avl__err(AVL_E_NOMEM, "gemm openblas: panel of %lld x %lld floats", (long long)nb,
                        (long long)K);
    size_t es = avl__dtype_size(w->dtype);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t cnt = N - n0 < nb ? N - n0 : nb;
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < cnt; j++)
            avl__convert_to_f32(w->dtype, (const char *)w->data + (size_t)((n0 + j) * w->ld) * es,
                                panel + j * K, K);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)cnt, (int)K, 1.0f,
                    a->x, (int)a->ldx, panel, (int)K, beta, a->y + n0, (int)a->ldy);
        add_bias(a, n0, cnt);
    }
    avl__free(panel);
    return AVL_OK;
}

/* Skinny up to M = 16: on 18944 x 3584 bf16 (bench/README.md) the skinny kernel beats
 * widening W plus sgemm by 2-4x for every M up to 16 (the widening alone costs more than the
 * skinny pass); it kept winning up to M = 48 in a noisier run, so 16 is on the safe side. */
const avl__gemm_backend avl__gemm_openblas = {"openblas", ob_probe, ob_gemm, 16};
