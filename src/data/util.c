/* src/data/util.c: small helpers of the data-set files: string pool, growable string, hashes,
 * folders. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data_internal.h"

struct avl__pool_chunk {
    avl__pool_chunk *next;
    size_t used, cap;
    /* data follows, 8-aligned (the header is 24 bytes) */
};

#define POOL_CHUNK 65536

void *avl__pool_alloc(avl__pool *p, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    avl__pool_chunk *c = p->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > POOL_CHUNK / 2 ? n : POOL_CHUNK;
        c = avl__malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        /* A big block goes behind the current chunk so the current one keeps filling up. */
        if (p->head && cap != POOL_CHUNK) {
            c->next = p->head->next;
            p->head->next = c;
        } else {
            c->next = p->head;
            p->head = c;
        }
    }
    void *r = (char *)(c + 1) + c->used;
    c->used += n;
    return r;
}

char *avl__pool_strndup(avl__pool *p, const char *s, size_t n)
{
    char *d = avl__pool_alloc(p, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *avl__pool_strdup(avl__pool *p, const char *s)
{
    return s ? avl__pool_strndup(p, s, strlen(s)) : NULL;
}

void avl__pool_free(avl__pool *p)
{
    avl__pool_chunk *c = p->head;
    while (c) {
        avl__pool_chunk *n = c->next;
        avl__free(c);
        c = n;
    }
    p->head = NULL;
}

static bool sb_reserve(avl__sb *b, size_t extra)
{
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *nb = avl__realloc(b->buf, cap);
    if (!nb) {
        b->failed = true;
        return false;
    }
    b->buf = nb;
    b->cap = cap;
    return true;
}

void avl__sb_put(avl__sb *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n)) return;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

void avl__sb_puts(avl__sb *b, const char *s) { avl__sb_put(b, s, strlen(s)); }

void avl__sb_printf(avl__sb *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        avl__sb_put(b, small, (size_t)n);
        return;
    }
    if (!sb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void avl__sb_put_xml(avl__sb *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': avl__sb_puts(b, "&amp;"); break;
        case '<': avl__sb_puts(b, "&lt;"); break;
        case '>': avl__sb_puts(b, "&gt;"); break;
        case '"': avl__sb_puts(b, "&quot;"); break;
        case '\'': avl__sb_puts(b, "&#39;"); break;
        default:
            /* XML 1.0 forbids most control characters even escaped: drop them. */
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') break;
            avl__sb_put(b, s, 1);
        }
    }
}

void avl__sb_free(avl__sb *b)
{
    avl__free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

avl_status avl__sb_write_file(const avl__sb *b, const char *path)
{
    if (b->failed) return avl__err(AVL_E_NOMEM, "%s: out of memory while composing", path);
    FILE *f = fopen(path, "wb");
    if (!f) return avl__err(AVL_E_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t w = b->len ? fwrite(b->buf, 1, b->len, f) : 0;
    int e = ferror(f);
    if (fclose(f) != 0 || e || w != b->len) return avl__err(AVL_E_IO, "%s: write failed", path);
    return AVL_OK;
}

uint64_t avl__fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t avl__mix64(uint64_t x)
{
    /* splitmix64's finaliser: FNV-1a alone leaves the low bits of similar ids correlated. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

avl_status avl__mkdirs(const char *path)
{
    size_t n = strlen(path);
    char *p = avl__malloc(n + 1);
    if (!p) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            avl_status rc = avl__err(AVL_E_IO, "%s: cannot create folder: %s", p, strerror(errno));
            avl__free(p);
            return rc;
        }
        p[i] = c;
    }
    struct stat st;
    avl_status rc = AVL_OK;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) rc = avl__err(AVL_E_IO, "%s: not a folder", path);
    avl__free(p);
    return rc;
}

bool avl__analysis_name_ok(const char *name)
{
    if (!name || !*name || !strcmp(name, ".") || !strcmp(name, "..")) return false;
    for (const char *s = name; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void avl__free_strv(char **v, int64_t n)
{
    if (!v) return;
    for (int64_t i = 0; i < n; i++) avl__free(v[i]);
    avl__free(v);
}

/* Lists names in dir: folders (want_dirs) or regular files ending in suffix. */
static avl_status list_dir(const char *dir, bool want_dirs, const char *suffix, char ***names, int64_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return avl__err(AVL_E_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    char **v = NULL;
    int64_t cnt = 0, cap = 0;
    struct dirent *e;
    avl_status rc = AVL_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = avl__path_join(dir, e->d_name);
        if (!full) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
            break;
        }
        struct stat st;
        bool keep = stat(full, &st) == 0;
        avl__free(full);
        if (keep && want_dirs) keep = S_ISDIR(st.st_mode) && avl__analysis_name_ok(e->d_name);
        if (keep && !want_dirs) {
            size_t a = strlen(e->d_name), b = strlen(suffix);
            keep = S_ISREG(st.st_mode) && a > b && !strcmp(e->d_name + a - b, suffix);
        }
        if (!keep) continue;
        if (cnt == cap) {
            int64_t nc = cap ? cap * 2 : 16;
            char **nv = avl__realloc(v, (size_t)nc * sizeof *nv);
            if (!nv) {
                rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
                break;
            }
            v = nv;
            cap = nc;
        }
        if (!(v[cnt] = avl__strdup(e->d_name))) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
            break;
        }
        cnt++;
    }
    closedir(d);
    if (rc != AVL_OK) {
        avl__free_strv(v, cnt);
        return rc;
    }
    if (cnt) qsort(v, (size_t)cnt, sizeof *v, cmp_str);
    *names = v;
    *n = cnt;
    return AVL_OK;
}

avl_status avl__list_subdirs(const char *dir, char ***names, int64_t *n)
{
    return list_dir(dir, true, NULL, names, n);
}

avl_status avl__list_files(const char *dir, const char *suffix, char ***names, int64_t *n)
{
    return list_dir(dir, false, suffix, names, n);
}

void avl_free_string(char *s) { avl__free(s); }
