/* src/base/alloc.c: the library's allocator, with fault injection for tests.
 *
 * The counters are atomics so that threaded code may allocate; injection itself is meant for
 * single-threaded tests.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static _Atomic int64_t g_count;   /* allocations since the last avl__alloc_fail_after */
static _Atomic int64_t g_fail_at; /* 0: never fail; else fail from this count on */

int64_t avl__alloc_fail_after(int64_t n)
{
    int64_t c = atomic_exchange(&g_count, 0);
    atomic_store(&g_fail_at, n);
    return c;
}

static bool should_fail(void)
{
    int64_t c = atomic_fetch_add(&g_count, 1) + 1;
    int64_t f = atomic_load(&g_fail_at);
    return f > 0 && c >= f;
}

void *avl__malloc(size_t n)
{
    if (should_fail()) return NULL;
    return malloc(n ? n : 1);
}

void *avl__calloc(size_t count, size_t size)
{
    if (should_fail()) return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *avl__realloc(void *p, size_t n)
{
    if (should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

void avl__free(void *p) { free(p); }

char *avl__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = avl__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *avl__path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *p = avl__malloc(a + slash + b + 1);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a] = '/';
    memcpy(p + a + slash, name, b + 1);
    return p;
}

avl_status avl__read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return avl__err(AVL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return avl__err(AVL_E_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = avl__malloc(n + 1);
    if (!buf) {
        fclose(f);
        return avl__err(AVL_E_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        avl__free(buf);
        return avl__err(AVL_E_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return AVL_OK;
}
