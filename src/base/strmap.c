/* src/base/strmap.c: byte string -> int64 hash map (see strmap.h for the contract).
 *
 * Open addressing with linear probing; the table is a power of two at most half full, so a
 * probe always ends at an empty slot. Slots are 32 bytes (two per cache line) and carry the
 * key's hash: a probe compares hashes, then lengths, then bytes, and growing reinserts by the
 * stored hash without reading the keys.
 */
#include "base/strmap.h"

#include <string.h>

/* 64-bit FNV-1a with a final avalanche (the mixing step of MurmurHash3's fmix64) so that the
 * low bits, which pick the slot, depend on every byte. */
uint64_t avl__strmap_hash(const void *p, int64_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* Smallest power of two >= 16 that holds `expect` keys at most half full; 0 if too large. */
static int64_t cap_for(int64_t expect)
{
    if (expect < 0 || expect > INT64_MAX / 4) return 0;
    int64_t cap = 16;
    while (cap < expect * 2 + 1) cap <<= 1;
    return cap;
}

static avl_status alloc_slots(avl__strmap *m, int64_t cap)
{
    avl__strmap_slot *slots = cap ? avl__calloc((size_t)cap, sizeof *slots) : NULL;
    if (!slots)
        return avl__err(AVL_E_NOMEM, "string map: out of memory for %lld slots", (long long)cap);
    m->slots = slots;
    m->cap = cap;
    m->count = 0;
    return AVL_OK;
}

avl_status avl__strmap_init(avl__strmap *m, int64_t expect, unsigned flags)
{
    memset(m, 0, sizeof *m);
    m->borrow = (flags & AVL__STRMAP_BORROW) != 0;
    if (expect == 0) return AVL_OK;
    return alloc_slots(m, cap_for(expect));
}

static void free_keys(avl__strmap *m)
{
    if (m->borrow) return;
    for (int64_t i = 0; i < m->cap; i++) avl__free((void *)m->slots[i].key);
}

void avl__strmap_free(avl__strmap *m)
{
    if (!m) return;
    free_keys(m);
    avl__free(m->slots);
    memset(m, 0, sizeof *m);
}

void avl__strmap_clear(avl__strmap *m)
{
    if (!m->cap) return;
    free_keys(m);
    memset(m->slots, 0, (size_t)m->cap * sizeof *m->slots);
    m->count = 0;
}

/* The slot holding key, or the empty slot where it would go (the table is never full).
 * Inlined: lookups are the tokenizer's hot path (a pre-token cache probe per piece). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline avl__strmap_slot *probe(const avl__strmap *m, const void *key, int64_t len, uint64_t h)
{
    size_t mask = (size_t)m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        avl__strmap_slot *s = &m->slots[i];
        if (!s->key) return s;
        if (s->hash == h && s->len == len && !memcmp(s->key, key, (size_t)len)) return s;
    }
}

static avl_status grow(avl__strmap *m)
{
    avl__strmap bigger = {.borrow = m->borrow};
    avl_status rc = alloc_slots(&bigger, m->cap ? m->cap * 2 : 16);
    if (rc) return rc;
    size_t mask = (size_t)bigger.cap - 1;
    for (int64_t i = 0; i < m->cap; i++) {
        const avl__strmap_slot *s = &m->slots[i];
        if (!s->key) continue;
        /* keys are distinct: the first empty slot from the home position is the place */
        size_t j = (size_t)s->hash & mask;
        while (bigger.slots[j].key) j = (j + 1) & mask;
        bigger.slots[j] = *s;
    }
    bigger.count = m->count;
    avl__free(m->slots);
    *m = bigger;
    return AVL_OK;
}

avl_status avl__strmap_emplace(avl__strmap *m, const void *key, int64_t len, int64_t **value, bool *added)
{
    if (added) *added = false;
    if (len == 0) key = ""; /* a NULL pointer must not mark the slot empty */
    uint64_t h = avl__strmap_hash(key, len);
    if (m->cap) {
        avl__strmap_slot *s = probe(m, key, len, h);
        if (s->key) {
            *value = &s->value;
            return AVL_OK;
        }
    }
    const char *k = key;
    if (!m->borrow) {
        char *copy = avl__malloc((size_t)len + 1);
        if (!copy) return avl__err(AVL_E_NOMEM, "string map: out of memory copying a %lld-byte key", (long long)len);
        memcpy(copy, key, (size_t)len);
        copy[len] = '\0';
        k = copy;
    }
    if ((m->count + 1) * 2 > m->cap) {
        avl_status rc = grow(m);
        if (rc) {
            if (!m->borrow) avl__free((void *)k);
            return rc;
        }
    }
    avl__strmap_slot *s = probe(m, k, len, h);
    s->key = k;
    s->len = len;
    s->hash = h;
    s->value = 0;
    m->count++;
    *value = &s->value;
    if (added) *added = true;
    return AVL_OK;
}

avl_status avl__strmap_put(avl__strmap *m, const void *key, int64_t len, int64_t value)
{
    int64_t *v;
    avl_status rc = avl__strmap_emplace(m, key, len, &v, NULL);
    if (rc) return rc;
    *v = value;
    return AVL_OK;
}

int64_t *avl__strmap_find(const avl__strmap *m, const void *key, int64_t len)
{
    if (!m->cap) return NULL;
    if (len == 0) key = "";
    avl__strmap_slot *s = probe(m, key, len, avl__strmap_hash(key, len));
    return s->key ? &s->value : NULL;
}

int64_t avl__strmap_get(const avl__strmap *m, const void *key, int64_t len, int64_t absent)
{
    const int64_t *v = avl__strmap_find(m, key, len);
    return v ? *v : absent;
}

bool avl__strmap_next(const avl__strmap *m, int64_t *pos, const char **key, int64_t *len, int64_t *value)
{
    for (int64_t i = *pos; i < m->cap; i++) {
        const avl__strmap_slot *s = &m->slots[i];
        if (!s->key) continue;
        if (key) *key = s->key;
        if (len) *len = s->len;
        if (value) *value = s->value;
        *pos = i + 1;
        return true;
    }
    *pos = m->cap;
    return false;
}
