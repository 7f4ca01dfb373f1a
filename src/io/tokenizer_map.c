/* src/io/tokenizer_map.c: the tokenizer's two hash maps, open addressing with linear probing.
 * string -> id for the vocabulary, added tokens and the pre-token cache; (id, id) -> rank for
 * the merges. Capacities are powers of two kept at most half full. */
#include <string.h>

#include "base/internal.h"
#include "io/tokenizer_internal.h"

/* 64-bit FNV-1a with a final avalanche; keys are short (pre-tokens, vocabulary strings). */
uint64_t avl__tok_hash(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static size_t pow2_for(size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2 + 1) cap <<= 1;
    return cap;
}

avl_status avl__strmap_init(avl__strmap *m, size_t expect)
{
    m->cap = pow2_for(expect);
    m->count = 0;
    m->slots = avl__calloc(m->cap, sizeof *m->slots);
    if (!m->slots) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory for a map of %zu", m->cap);
    return AVL_OK;
}

void avl__strmap_free(avl__strmap *m)
{
    avl__free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

void avl__strmap_clear(avl__strmap *m)
{
    memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->count = 0;
}

static avl__strmap_slot *strmap_find(const avl__strmap *m, const char *key, uint32_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        avl__strmap_slot *s = &m->slots[i];
        if (!s->key) return s;
        if (s->hash == h && s->len == len && !memcmp(s->key, key, len)) return s;
    }
}

static avl_status strmap_grow(avl__strmap *m)
{
    avl__strmap bigger = {0};
    bigger.cap = m->cap * 2;
    bigger.slots = avl__calloc(bigger.cap, sizeof *bigger.slots);
    if (!bigger.slots) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory growing a map");
    for (size_t i = 0; i < m->cap; i++) {
        avl__strmap_slot *s = &m->slots[i];
        if (!s->key) continue;
        *strmap_find(&bigger, s->key, s->len, s->hash) = *s;
    }
    bigger.count = m->count;
    avl__free(m->slots);
    *m = bigger;
    return AVL_OK;
}

avl_status avl__strmap_put(avl__strmap *m, const char *key, uint32_t len, int32_t value)
{
    if ((m->count + 1) * 2 > m->cap) {
        avl_status rc = strmap_grow(m);
        if (rc) return rc;
    }
    uint64_t h = avl__tok_hash(key, len);
    avl__strmap_slot *s = strmap_find(m, key, len, h);
    if (!s->key) {
        s->key = key;
        s->len = len;
        s->hash = h;
        m->count++;
    }
    s->value = value;
    return AVL_OK;
}

int32_t avl__strmap_get(const avl__strmap *m, const char *key, uint32_t len)
{
    if (!m->slots) return -1;
    const avl__strmap_slot *s = strmap_find(m, key, len, avl__tok_hash(key, len));
    return s->key ? s->value : -1;
}

/* ---- pairs ---- */

static inline uint64_t pair_key(int32_t a, int32_t b)
{
    return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
}

static inline size_t pair_hash(uint64_t k)
{
    k *= 0x9e3779b97f4a7c15ull;
    return (size_t)(k ^ (k >> 29));
}

avl_status avl__pairmap_init(avl__pairmap *m, size_t expect)
{
    m->cap = pow2_for(expect);
    m->count = 0;
    m->slots = avl__calloc(m->cap, sizeof *m->slots);
    if (!m->slots) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory for %zu merges", expect);
    return AVL_OK;
}

void avl__pairmap_free(avl__pairmap *m)
{
    avl__free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

static avl__pairmap_slot *pairmap_find(const avl__pairmap *m, uint64_t k)
{
    size_t mask = m->cap - 1;
    for (size_t i = pair_hash(k) & mask;; i = (i + 1) & mask)
        if (m->slots[i].key == 0 || m->slots[i].key == k) return &m->slots[i];
}

avl_status avl__pairmap_put(avl__pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
    if ((m->count + 1) * 2 > m->cap) {
        avl__pairmap bigger = {0};
        bigger.cap = m->cap * 2;
        bigger.slots = avl__calloc(bigger.cap, sizeof *bigger.slots);
        if (!bigger.slots) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory growing the merges");
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key) *pairmap_find(&bigger, m->slots[i].key) = m->slots[i];
        bigger.count = m->count;
        avl__free(m->slots);
        *m = bigger;
    }
    uint64_t k = pair_key(a, b);
    avl__pairmap_slot *s = pairmap_find(m, k);
    if (!s->key) m->count++;
    s->key = k; /* a repeated merge takes its last rank, as HF's map building and the JS port do */
    s->rank = rank;
    s->merged = merged;
    return AVL_OK;
}

const avl__pairmap_slot *avl__pairmap_get(const avl__pairmap *m, int32_t a, int32_t b)
{
    const avl__pairmap_slot *s = pairmap_find(m, pair_key(a, b));
    return s->key ? s : NULL;
}
