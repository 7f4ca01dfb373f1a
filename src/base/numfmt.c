/* src/base/numfmt.c: bf16 and IEEE half <-> fp32, bit-exact.
 *
 * bf16 is the top half of an fp32. fp32 -> bf16 rounds to nearest, ties to even, and turns every
 * NaN into the quiet NaN 0x7FC0, as torch does (c10/util/BFloat16.h, round_to_nearest_even).
 * IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; subnormals, infinities and
 * NaNs are kept; fp32 -> f16 rounds to nearest even (as the F16C instruction vcvtps2ph with
 * rounding mode 0) and keeps a NaN's sign and top 10 payload bits, setting the quiet bit when
 * they would all be zero (so a NaN never becomes an infinity).
 * Sources may be unaligned: elements are read with memcpy.
 */
#include <string.h>

#include "avlens/safetensors.h"
#include "base/internal.h"
#include "kernels/dtype.h"

static inline uint32_t f2u(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

float avl_bf16_to_f32(uint16_t x) { return avl__bf16_to_f32(x); }

uint16_t avl_f32_to_bf16(float x)
{
    uint32_t u = f2u(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;
    /* Adding 0x7FFF plus the lowest kept bit rounds half-way cases to the even neighbour;
     * a carry out of the mantissa bumps the exponent, up to infinity, which is right. */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* The exact widenings live in kernels/dtype.h (the kernels inline them); these are their
 * public names. */
float avl_f16_to_f32(uint16_t h) { return avl__f16_to_f32(h); }

uint16_t avl_f32_to_f16(float x)
{
    uint32_t u = f2u(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) { /* NaN */
        uint16_t payload = (uint16_t)((a >> 13) & 0x3FFu);
        return (uint16_t)(sign | 0x7C00u | (payload ? payload : 0x200u));
    }
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* >= 65520 rounds to inf */
    if (a < 0x38800000u) {                                     /* below 2^-14: subnormal or 0 */
        if (a <= 0x33000000u) return sign;                     /* <= 2^-25 (a tie goes to 0) */
        uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126 - e; /* result = m * 2^(e-150) / 2^-24, in units of 2^-24 */
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t t = a - 0x38000000u; /* rebias the exponent from 127 to 15 */
    t += 0xFFFu + ((t >> 13) & 1u);
    return (uint16_t)(sign | (t >> 13));
}

avl_status avl_convert_to_f32(avl_dtype dtype, const void *src, float *dst, int64_t n)
{
    if (n < 0) return avl__err(AVL_E_ARG, "avl_convert_to_f32: negative count %lld", (long long)n);
    if (n > 0 && (!src || !dst)) return avl__err(AVL_E_ARG, "avl_convert_to_f32: NULL buffer");
    const unsigned char *s = src;
    switch (dtype) {
    case AVL_DTYPE_F32:
        if (n) memmove(dst, src, (size_t)n * 4);
        return AVL_OK;
    case AVL_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = avl_bf16_to_f32(h);
        }
        return AVL_OK;
    case AVL_DTYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = avl_f16_to_f32(h);
        }
        return AVL_OK;
    default:
        return avl__err(AVL_E_ARG, "avl_convert_to_f32: dtype %s is not a float type", avl_dtype_name(dtype));
    }
}
