/* src/base/strmap.h: a hash map from byte strings to int64 values (internal).
 *
 *   avl__strmap m = {0};                      // empty; copies the keys it is given
 *   avl_status rc = avl__strmap_putz(&m, "cat", 7);
 *   int64_t v = avl__strmap_getz(&m, "cat", -1);  // 7, or -1 when absent
 *   int64_t *p = avl__strmap_findz(&m, "dog");    // NULL: absent
 *   avl__strmap_free(&m);
 *
 *   avl__strmap names;                        // borrowed keys: the caller keeps them alive
 *   rc = avl__strmap_init(&names, n, AVL__STRMAP_BORROW);
 *
 * Keys are any bytes (pointer + length; the *z forms take a NUL-terminated string); a value is
 * any int64 (an index, an offset, a packed pair). Open addressing with linear probing over a
 * power-of-two table kept at most half full; each slot keeps its key's hash so that probes
 * compare hashes before bytes and growing never rehashes. The hash is 64-bit FNV-1a with a
 * final avalanche (keys here are short: vocabulary strings, pre-tokens, tensor names, words).
 * Used by the tokenizer (vocabulary, added tokens, pre-token cache), the safetensors reader,
 * set and writer (tensor names) and CHAIR (phrases, classes, clip ids).
 *
 * All allocation goes through avl__malloc; a failed put leaves the map as it was and returns
 * AVL_E_NOMEM with a detail. Iteration order is the table's and not meaningful. Not
 * thread-safe: a map shared by threads needs the caller's lock (lookups alone may run in
 * parallel).
 */
#ifndef AVLENS_BASE_STRMAP_H
#define AVLENS_BASE_STRMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/internal.h"

typedef struct {
    const char *key; /* NULL marks an empty slot; a copy owned by the map unless borrowing */
    int64_t len;     /* key bytes */
    uint64_t hash;
    int64_t value;
} avl__strmap_slot;

typedef struct {
    avl__strmap_slot *slots; /* (cap) */
    int64_t cap;             /* 0 (nothing allocated yet) or a power of two */
    int64_t count;           /* keys held */
    bool borrow;             /* keys belong to the caller (AVL__STRMAP_BORROW) */
} avl__strmap;

/* Flag for avl__strmap_init: keep pointers to the caller's keys instead of copies; the key
 * memory must then outlive the map (or the next clear). */
#define AVL__STRMAP_BORROW 1u

/* Sizes the table for `expect` keys (it grows past that as needed) and sets the flags. A
 * zeroed struct is also a valid empty map that copies its keys; init is needed only to
 * borrow keys or to size the table up front. With expect 0 nothing is allocated and init
 * cannot fail; otherwise AVL_E_NOMEM on failure (the map is then empty and valid). */
avl_status avl__strmap_init(avl__strmap *m, int64_t expect, unsigned flags);
/* Frees the table and copied keys; the map is zeroed (empty, copying). NULL-safe. */
void avl__strmap_free(avl__strmap *m);
/* Removes every key, keeps the table and the flags. */
void avl__strmap_clear(avl__strmap *m);

/* Finds key, or inserts it with value 0: *value points at its value (valid until the next put,
 * clear or free) and *added (when not NULL) says whether it was inserted now. One probe for
 * "insert unless present" and for counters. AVL_E_NOMEM on failure (map unchanged). */
avl_status avl__strmap_emplace(avl__strmap *m, const void *key, int64_t len, int64_t **value, bool *added);
/* Inserts or overwrites. AVL_E_NOMEM on failure (map unchanged). */
avl_status avl__strmap_put(avl__strmap *m, const void *key, int64_t len, int64_t value);
/* Pointer to key's value (valid until the next put, clear or free), or NULL when absent. */
int64_t *avl__strmap_find(const avl__strmap *m, const void *key, int64_t len);
/* Key's value, or `absent`. */
int64_t avl__strmap_get(const avl__strmap *m, const void *key, int64_t len, int64_t absent);

/* The hash the map uses (exposed so that tests can pick colliding keys). */
uint64_t avl__strmap_hash(const void *key, int64_t len);

/* Walks the keys: start with *pos = 0; each call that returns true gives one key (its bytes,
 * NUL-terminated when the map copied them), its length and value (outputs may be NULL).
 * The map must not change during the walk. */
bool avl__strmap_next(const avl__strmap *m, int64_t *pos, const char **key, int64_t *len, int64_t *value);

/* The same for NUL-terminated keys. */
static inline avl_status avl__strmap_emplacez(avl__strmap *m, const char *key, int64_t **value, bool *added)
{
    return avl__strmap_emplace(m, key, (int64_t)strlen(key), value, added);
}
static inline avl_status avl__strmap_putz(avl__strmap *m, const char *key, int64_t value)
{
    return avl__strmap_put(m, key, (int64_t)strlen(key), value);
}
static inline int64_t *avl__strmap_findz(const avl__strmap *m, const char *key)
{
    return avl__strmap_find(m, key, (int64_t)strlen(key));
}
static inline int64_t avl__strmap_getz(const avl__strmap *m, const char *key, int64_t absent)
{
    return avl__strmap_get(m, key, (int64_t)strlen(key), absent);
}

#endif
