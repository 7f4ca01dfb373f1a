/* tests/fuzz/fuzz_safetensors.c: any bytes as a .safetensors image; a valid one must give views
 * that stay inside the image and agree with their shape and dtype. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "avlens/avlens.h"

static volatile unsigned g_sink; /* keeps the byte reads */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    avl_st_file *f = NULL;
    if (avl_st_file_open_memory(data, size, "fuzz.safetensors", &f) != AVL_OK) {
        if (f) abort();
        if (!avl_last_error()[0] || strchr(avl_last_error(), '\n')) abort(); /* one line, never empty */
        return 0;
    }
    unsigned sum = 0;
    int64_t n = avl_st_file_count(f);
    for (int64_t i = 0; i < n; i++) {
        avl_tensor_view v;
        if (avl_st_file_at(f, i, &v) != AVL_OK) abort();
        const uint8_t *p = v.data;
        if (p < data || p + v.nbytes > data + size) abort();
        if ((uint64_t)v.nbytes != (uint64_t)v.numel * avl_dtype_size(v.dtype)) abort();
        for (size_t j = 0; j < v.nbytes; j++) sum += p[j]; /* touch every byte */
        avl_tensor_view w;
        if (avl_st_file_get(f, v.name, &w) != AVL_OK || w.data != v.data) abort();
        if (v.dtype == AVL_DTYPE_F32 || v.dtype == AVL_DTYPE_F16 || v.dtype == AVL_DTYPE_BF16) {
            float tmp[16];
            int64_t m = v.numel < 16 ? v.numel : 16;
            if (avl_convert_to_f32(v.dtype, v.data, tmp, m) != AVL_OK) abort();
        }
    }
    g_sink = sum;
    (void)avl_st_file_metadata(f, "format");
    avl_st_file_close(f);
    return 0;
}
