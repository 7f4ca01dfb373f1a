/* src/eval/strmap.c: a small string -> int64 hash map (FNV-1a, linear probing), for the
 * vocabulary's phrases and the ground truth's clip ids. */
#include <string.h>

#include "eval_internal.h"

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void avl__wordmap_free(avl__wordmap *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->cap; i++) avl__free(m->keys[i]);
    avl__free(m->keys);
    avl__free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t slot(char *const *keys, size_t cap, const char *key)
{
    size_t i = (size_t)hash(key) & (cap - 1);
    while (keys[i] && strcmp(keys[i], key)) i = (i + 1) & (cap - 1);
    return i;
}

int64_t *avl__wordmap_get(const avl__wordmap *m, const char *key)
{
    if (!m->cap) return NULL;
    size_t i = slot(m->keys, m->cap, key);
    return m->keys[i] ? &m->vals[i] : NULL;
}

static avl_status grow(avl__wordmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    char **keys = avl__calloc(cap, sizeof *keys);
    int64_t *vals = avl__calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        avl__free(keys);
        avl__free(vals);
        return avl__err(AVL_E_NOMEM, "hash map: cannot grow to %zu slots", cap);
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = slot(keys, cap, m->keys[i]);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    avl__free(m->keys);
    avl__free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return AVL_OK;
}

avl_status avl__wordmap_put(avl__wordmap *m, const char *key, int64_t val)
{
    int64_t *p = avl__wordmap_get(m, key);
    if (p) {
        *p = val;
        return AVL_OK;
    }
    if ((m->n + 1) * 2 > m->cap) { /* load factor <= 1/2 */
        avl_status rc = grow(m);
        if (rc) return rc;
    }
    char *k = avl__strdup(key);
    if (!k) return avl__err(AVL_E_NOMEM, "hash map: cannot copy a key");
    size_t i = slot(m->keys, m->cap, key);
    m->keys[i] = k;
    m->vals[i] = val;
    m->n++;
    return AVL_OK;
}
