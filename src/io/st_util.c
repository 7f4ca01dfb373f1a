/* src/io/st_util.c: what the safetensors files share besides the name map (src/base/strmap.h):
 * names and shapes quoted for one-line messages, and the reference writer's dtype order. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "io/st_internal.h"

const char *avl__st_quote(const char *s, char *buf, size_t n)
{
    size_t len = strlen(s), i = 0;
    bool cut = len > n - 1;
    size_t keep = cut ? n - 4 : len;
    for (; i < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cut) {
        /* Do not leave half a UTF-8 sequence before the ellipsis. */
        while (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80) i--;
        if (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0xC0) i--;
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

const char *avl__st_shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    at += (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (at < n) snprintf(buf + at, n - at, "]");
    return buf;
}

int avl__st_dtype_rank(avl_dtype t)
{
    /* Positions in the reference enum: BOOL 0, U8 1, I8 2, F8_E5M2 3, F8_E4M3 4, I16 5, U16 6,
     * F16 7, BF16 8, I32 9, U32 10, F32 11, F64 12, I64 13, U64 14. */
    switch (t) {
    case AVL_DTYPE_U8: return 1;
    case AVL_DTYPE_F16: return 7;
    case AVL_DTYPE_BF16: return 8;
    case AVL_DTYPE_I32: return 9;
    case AVL_DTYPE_F32: return 11;
    case AVL_DTYPE_I64: return 13;
    default: return -1;
    }
}
