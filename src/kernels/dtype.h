/* src/kernels/dtype.h: element types of weights and their exact conversions to fp32.
 *
 * bf16 is the top half of an IEEE binary32, so bf16 -> fp32 is a 16-bit shift (exact).
 * binary16 (f16) -> fp32 is exact too (every f16 value, subnormals included, is an fp32 value);
 * it is decoded by hand here so that the reference needs no F16C.
 * fp32 -> bf16 rounds to nearest, ties to even (as torch's .to(torch.bfloat16) and oneDNN do),
 * and keeps NaN a NaN.
 *
 * Weights may start at any 2-byte aligned address (memory-mapped safetensors), so elements are
 * read through memcpy-free uint16_t loads for bf16/f16 and memcpy for f32 (which may be only
 * 2-byte aligned too).
 */
#ifndef AVLENS_KERNELS_DTYPE_H
#define AVLENS_KERNELS_DTYPE_H

#include <stdint.h>
#include <string.h>

typedef enum {
    AVL__DT_F32 = 0,
    AVL__DT_BF16 = 1,
    AVL__DT_F16 = 2
} avl__dtype;

/* Bytes per element (0 for an unknown type). */
static inline size_t avl__dtype_size(avl__dtype t)
{
    return t == AVL__DT_F32 ? 4 : (t == AVL__DT_BF16 || t == AVL__DT_F16) ? 2 : 0;
}

static inline const char *avl__dtype_name(avl__dtype t)
{
    return t == AVL__DT_F32 ? "F32" : t == AVL__DT_BF16 ? "BF16" : t == AVL__DT_F16 ? "F16" : "?";
}

static inline float avl__bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t avl__f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float avl__bf16_to_f32(uint16_t h)
{
    return avl__bits_to_f32((uint32_t)h << 16);
}

/* Round to nearest even; NaN stays a (quiet) NaN of the same sign. */
static inline uint16_t avl__f32_to_bf16(float f)
{
    uint32_t u = avl__f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Exact IEEE binary16 -> binary32, subnormals, infinities and NaN included. */
static inline float avl__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return avl__bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return avl__bits_to_f32(sign);
        /* subnormal: man * 2^-24, exact in fp32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return avl__bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

/* Element i of a vector of type t starting at p (p 2-byte aligned at least). */
static inline float avl__load_elem(avl__dtype t, const void *p, int64_t i)
{
    if (t == AVL__DT_BF16) return avl__bf16_to_f32(((const uint16_t *)p)[i]);
    if (t == AVL__DT_F16) return avl__f16_to_f32(((const uint16_t *)p)[i]);
    float f;
    memcpy(&f, (const char *)p + 4 * i, 4);
    return f;
}

/* Converts n elements of type t at src (2-byte aligned) to fp32 in dst. Exact. */
void avl__convert_to_f32(avl__dtype t, const void *src, float *dst, int64_t n);

/* Converts n fp32 values to bf16, round to nearest even. */
void avl__convert_f32_to_bf16(const float *src, uint16_t *dst, int64_t n);

#endif
