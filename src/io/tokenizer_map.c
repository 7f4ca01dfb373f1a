/* src/io/tokenizer_map.c: the (id, id) -> (rank, merged id) map of BPE merges, open addressing
 * with linear probing over a power-of-two table kept at most half full. (The tokenizer's string
 * maps are the shared src/base/strmap.h.) */
#include "base/internal.h"
#include "io/tokenizer_internal.h"

static size_t pow2_for(size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2 + 1) cap <<= 1;
    return cap;
}

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
