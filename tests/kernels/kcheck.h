/* tests/kernels/kcheck.h: what the kernel tests share: a seeded generator and buffers. */
#ifndef AVL_KCHECK_H
#define AVL_KCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uint64_t s;
} krng;

static inline uint64_t krng_next(krng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) */
static inline float krng_unit(krng *r)
{
    return (float)((double)(krng_next(r) >> 11) * 0x1p-52 - 1.0);
}

static inline void krng_fill(krng *r, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = scale * krng_unit(r);
}

#endif
