/* src/kernels/gemm.c: argument checks, backend selection, the thread count, and the helpers
 * the backends share (exact dtype conversion, the bias/accumulate epilogue). */
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "kernels/gemm.h"

void avl__convert_to_f32(avl__dtype t, const void *src, float *dst, int64_t n)
{
    if (t == AVL__DT_F32) {
        memcpy(dst, src, (size_t)n * 4);
    } else if (t == AVL__DT_BF16) {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = avl__bits_to_f32((uint32_t)s[i] << 16);
    } else {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = avl__f16_to_f32(s[i]);
    }
}

void avl__convert_f32_to_bf16(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = avl__f32_to_bf16(src[i]);
}

void avl__gemm_epilogue(int64_t m, int64_t n, const float *acc, int64_t ldacc,
                        const avl__vec *bias, float *y, int64_t ldy, bool accumulate)
{
    for (int64_t i = 0; i < m; i++) {
        const float *a = acc + i * ldacc;
        float *yr = y + i * ldy;
        for (int64_t j = 0; j < n; j++) {
            float v = a[j];
            if (bias) v += avl__load_elem(bias->dtype, bias->data, j);
            if (accumulate) v += yr[j];
            yr[j] = v;
        }
    }
}

/* ---- threads ---- */

static int g_default_threads; /* omp_get_max_threads() before any avl__set_threads */

void avl__set_threads(int n)
{
    if (g_default_threads == 0) g_default_threads = omp_get_max_threads();
    omp_set_num_threads(n > 0 ? n : g_default_threads);
}

int avl__get_threads(void)
{
    return omp_get_max_threads();
}

/* ---- backend selection ---- */

static const avl__gemm_backend *const g_backends[] = {&avl__gemm_ref, &avl__gemm_onednn,
                                                      &avl__gemm_openblas};
#define N_BACKENDS (sizeof g_backends / sizeof g_backends[0])

/* Each backend is probed once; the outcome and ISA string are kept for describe. */
static pthread_once_t g_probe_once = PTHREAD_ONCE_INIT;
static avl_status g_probe_rc[N_BACKENDS];
static char g_probe_isa[N_BACKENDS][96];
static char g_probe_err[N_BACKENDS][256];

static void probe_all(void)
{
    for (size_t i = 0; i < N_BACKENDS; i++) {
        g_probe_rc[i] = g_backends[i]->probe(g_probe_isa[i], sizeof g_probe_isa[i]);
        if (g_probe_rc[i] != AVL_OK) {
            snprintf(g_probe_err[i], sizeof g_probe_err[i], "%s", avl_last_error());
            g_probe_isa[i][0] = 0;
        }
    }
}

static int backend_index(const avl__gemm_backend *be)
{
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (g_backends[i] == be) return (int)i;
    return -1;
}

const char *avl__gemm_backend_isa(const avl__gemm_backend *be)
{
    pthread_once(&g_probe_once, probe_all);
    int i = backend_index(be);
    return i < 0 ? "" : g_probe_isa[i];
}

/* True when oneDNN's ISA name says the CPU has bf16 arithmetic (avx512_core_bf16, _amx);
 * plain avx512_core would emulate bf16, slower than OpenBLAS in fp32. */
static bool isa_has_bf16(const char *isa)
{
    return strstr(isa, "bf16") || strstr(isa, "amx");
}

avl_status avl__gemm_backend_select(const char *name, const avl__gemm_backend **out)
{
    *out = NULL;
    if (!name) name = "auto";
    pthread_once(&g_probe_once, probe_all);
    if (!strcmp(name, "auto")) {
        int dn = backend_index(&avl__gemm_onednn), ob = backend_index(&avl__gemm_openblas);
        if (g_probe_rc[dn] == AVL_OK && avl__gemm_onednn_has_bf16() && isa_has_bf16(g_probe_isa[dn]))
            *out = &avl__gemm_onednn;
        else if (g_probe_rc[ob] == AVL_OK) *out = &avl__gemm_openblas;
        else *out = &avl__gemm_ref;
        return AVL_OK;
    }
    for (size_t i = 0; i < N_BACKENDS; i++) {
        if (strcmp(name, g_backends[i]->name)) continue;
        if (g_probe_rc[i] != AVL_OK)
            return avl__err(AVL_E_UNSUPPORTED, "gemm backend '%s' cannot run here: %s", name,
                            g_probe_err[i]);
        *out = g_backends[i];
        return AVL_OK;
    }
    return avl__err(AVL_E_ARG, "gemm backend '%s': unknown (expected auto, ref, onednn or openblas)",
                    name);
}

/* ---- the entry point ---- */

avl_status avl__gemm(const avl__gemm_backend *be, int64_t m, const float *x, int64_t ldx,
                     const avl__weight *w, const avl__vec *bias, float *y, int64_t ldy,
                     bool accumulate)
{
    if (!be || !w) return avl__err(AVL_E_ARG, "gemm: backend or weight is NULL");
    if (avl__dtype_size(w->dtype) == 0)
        return avl__err(AVL_E_ARG, "gemm: weight dtype %d is not F32, BF16 or F16", (int)w->dtype);
    if (m < 0 || w->n < 0 || w->k < 0)
        return avl__err(AVL_E_ARG, "gemm: negative size M=%lld N=%lld K=%lld", (long long)m,
                        (long long)w->n, (long long)w->k);
    if (w->ld < w->k || ldx < w->k || ldy < w->n)
        return avl__err(AVL_E_ARG,
                        "gemm: leading dimension too small (ld=%lld ldx=%lld for K=%lld, ldy=%lld for N=%lld)",
                        (long long)w->ld, (long long)ldx, (long long)w->k, (long long)ldy,
                        (long long)w->n);
    if (m == 0 || w->n == 0) return AVL_OK;
    if (!x || !y || (!w->data && w->k > 0))
        return avl__err(AVL_E_ARG, "gemm: X, Y or W data is NULL");
    if ((uintptr_t)w->data % 2)
        return avl__err(AVL_E_ARG, "gemm: weight data %p is not 2-byte aligned", w->data);
    if (bias && (!bias->data || avl__dtype_size(bias->dtype) == 0))
        return avl__err(AVL_E_ARG, "gemm: bias has no data or an unknown dtype");
    avl__gemm_args a = {m, x, ldx, w, bias, y, ldy, accumulate};
    if (w->k == 0) {
        /* X·W^T is empty: the result is the bias (and the old Y). */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < w->n; j++) {
                float v = bias ? avl__load_elem(bias->dtype, bias->data, j) : 0.0f;
                y[i * ldy + j] = accumulate ? v + y[i * ldy + j] : v;
            }
        return AVL_OK;
    }
    if (m <= be->skinny_max_m) {
        avl__gemm_skinny(&a);
        return AVL_OK;
    }
    return be->gemm(&a);
}
