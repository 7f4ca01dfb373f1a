/* src/base/internal.h: helpers shared inside the library (prefix avl__), never installed.
 *
 * Allocation goes through avl__malloc & co. so that tests can make the N-th allocation fail
 * (fault injection, see avl__alloc_fail_after) and check that every path returns
 * AVL_E_NOMEM and leaks nothing.
 */
#ifndef AVLENS_BASE_INTERNAL_H
#define AVLENS_BASE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/status.h"

#if defined(__GNUC__)
#define AVL__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AVL__PRINTF(a, b)
#endif

/* Records the detail for this thread and returns code, so that callers can write
 *   return avl__err(AVL_E_FORMAT, "%s: header is not JSON", path); */
avl_status avl__err(avl_status code, const char *fmt, ...) AVL__PRINTF(2, 3);

/* Prefixes the current detail with "prefix: " (used to add context on the way up). */
avl_status avl__err_wrap(avl_status code, const char *fmt, ...) AVL__PRINTF(2, 3);

void avl__log(avl_log_level level, const char *fmt, ...) AVL__PRINTF(2, 3);

void *avl__malloc(size_t n);
void *avl__calloc(size_t count, size_t size);
void *avl__realloc(void *p, size_t n);
void avl__free(void *p);
char *avl__strdup(const char *s);

/* Fault injection for tests: the n-th allocation from now (1-based) and every later one fail;
 * n = 0 turns injection off. Returns how many allocations happened since the last call. */
int64_t avl__alloc_fail_after(int64_t n);

/* Reads a whole file into a NUL-terminated buffer (*len excludes the NUL). */
avl_status avl__read_file(const char *path, char **out, size_t *len);

/* Joins dir and name with one '/' into a new string (NULL on allocation failure). */
char *avl__path_join(const char *dir, const char *name);

#endif
