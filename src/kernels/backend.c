/* src/kernels/backend.c: the public face of the GEMM backends (avlens/backend.h). */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>

#include "avlens/backend.h"
#include "kernels/gemm.h"

avl_status avl_backend_describe(const char *name, char *buf, size_t n)
{
    const avl__gemm_backend *be;
    avl_status rc = avl__gemm_backend_select(name ? name : "auto", &be);
    if (rc != AVL_OK) return rc;
    char lib[160];
    if (be == &avl__gemm_onednn) {
        char impl[64];
        const dnnl_version_t *v = dnnl_version(); /* the library loaded, not the header */
        snprintf(lib, sizeof lib, "oneDNN %d.%d.%d, isa %s, bf16 matmul %s", v->major, v->minor,
                 v->patch, avl__gemm_backend_isa(be),
                 avl__gemm_onednn_has_bf16()
                     ? avl__gemm_onednn_impl(256, 256, 256, impl, sizeof impl)
                     : "unavailable (bf16 weights go to openblas)");
    } else if (be == &avl__gemm_openblas) {
        snprintf(lib, sizeof lib, "OpenBLAS sgemm, core %s, bf16/f16 weights widened per call",
                 avl__gemm_backend_isa(be));
    } else {
        if (n > 0) snprintf(buf, n, "ref: plain C reference (single-threaded)");
        return AVL_OK;
    }
    char skinny[96] = "";
    /* oneDNN without bf16 hands bf16 weights to the OpenBLAS path, its boundary included */
    int64_t smax = be == &avl__gemm_onednn && !avl__gemm_onednn_has_bf16()
                       ? avl__gemm_openblas.skinny_max_m
                       : be->skinny_max_m;
    if (smax > 0)
        snprintf(skinny, sizeof skinny, "; decode (M <= %lld) on the %s skinny kernel",
                 (long long)smax, avl__gemm_skinny_isa());
    if (n > 0) snprintf(buf, n, "%s: %s%s; %d threads", be->name, lib, skinny, avl__get_threads());
    return AVL_OK;
}

void avl_set_threads(int n)
{
    avl__set_threads(n);
}

int avl_get_threads(void)
{
    return avl__get_threads();
}
