/* src/base/rng.h: a small deterministic random number generator (internal).
 *
 * xoshiro256** (Blackman and Vigna, https://prng.di.unimi.it/xoshiro256starstar.c) seeded
 * through splitmix64, normals by the Box-Muller transform. The same seed gives the same
 * sequence on every run of the same build; nothing here reads the clock or global state.
 * Used by mkmodel (tiny random checkpoints) and by tests.
 */
#ifndef AVLENS_BASE_RNG_H
#define AVLENS_BASE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
    double spare; /* the second Box-Muller normal, valid when has_spare */
    int has_spare;
} avl__rng;

/* Seeds from one 64-bit value (any value, 0 included). */
void avl__rng_seed(avl__rng *r, uint64_t seed);
/* Seeds from a value and a string (e.g. a tensor name), so that each named stream is
 * independent of the order in which streams are drawn. */
void avl__rng_seed_str(avl__rng *r, uint64_t seed, const char *s);
uint64_t avl__rng_u64(avl__rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double avl__rng_uniform(avl__rng *r);
/* Standard normal. */
double avl__rng_normal(avl__rng *r);

#endif
