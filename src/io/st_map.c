/* src/io/st_map.c: the string -> index map behind tensor lookup, and message helpers.
 *
 * Open addressing with linear probing over a power-of-two table kept at most half full;
 * FNV-1a hashes. A 2,000-tensor checkpoint needs a 4,096-slot table (64 KiB).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "io/st_internal.h"

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

static avl_status map_alloc(avl__st_map *m, size_t cap)
{
    m->keys = avl__calloc(cap, sizeof *m->keys);
    m->vals = avl__malloc(cap * sizeof *m->vals);
    if (!m->keys || !m->vals) {
        avl__free(m->keys);
        avl__free(m->vals);
        m->keys = NULL;
        m->vals = NULL;
        return AVL_E_NOMEM;
    }
    m->cap = cap;
    m->count = 0;
    return AVL_OK;
}

static size_t cap_for(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2) cap *= 2;
    return cap;
}

avl_status avl__st_map_init(avl__st_map *m, size_t n)
{
    memset(m, 0, sizeof *m);
    return map_alloc(m, cap_for(n));
}

void avl__st_map_free(avl__st_map *m)
{
    if (!m) return;
    avl__free(m->keys);
    avl__free(m->vals);
    memset(m, 0, sizeof *m);
}

/* Slot of key, or of the empty slot where it would go. */
static size_t find_slot(const avl__st_map *m, const char *key)
{
    size_t mask = m->cap - 1, i = (size_t)fnv1a(key) & mask;
    while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & mask;
    return i;
}

static avl_status grow(avl__st_map *m)
{
    avl__st_map old = *m;
    avl_status rc = map_alloc(m, old.cap ? old.cap * 2 : 16);
    if (rc) {
        *m = old;
        return rc;
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.keys[i]) continue;
        size_t j = find_slot(m, old.keys[i]);
        m->keys[j] = old.keys[i];
        m->vals[j] = old.vals[i];
        m->count++;
    }
    avl__free(old.keys);
    avl__free(old.vals);
    return AVL_OK;
}

avl_status avl__st_map_put(avl__st_map *m, const char *key, int64_t val, int64_t *old)
{
    if (m->cap) {
        size_t i = find_slot(m, key);
        if (m->keys[i]) {
            if (old) *old = m->vals[i];
            return AVL_E_ARG;
        }
    }
    if (2 * (m->count + 1) > m->cap) {
        avl_status rc = grow(m);
        if (rc) return rc;
    }
    size_t i = find_slot(m, key);
    m->keys[i] = key;
    m->vals[i] = val;
    m->count++;
    return AVL_OK;
}

int64_t avl__st_map_get(const avl__st_map *m, const char *key)
{
    if (!m->cap) return -1;
    size_t i = find_slot(m, key);
    return m->keys[i] ? m->vals[i] : -1;
}

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

static pthread_once_t g_json_once = PTHREAD_ONCE_INIT;
static _Thread_local bool tl_json_oom;

static void *json_alloc(size_t n)
{
    void *p = avl__malloc(n);
    if (!p) tl_json_oom = true;
    return p;
}

static void json_init_once(void) { json_set_alloc_funcs(json_alloc, avl__free); }

void avl__st_json_begin(void)
{
    pthread_once(&g_json_once, json_init_once);
    tl_json_oom = false;
}

bool avl__st_json_oom(void) { return tl_json_oom; }
