/* src/io/st_internal.h: what the safetensors reader, the checkpoint set and the writer share.
 *
 * A small string -> index hash map (open addressing, FNV-1a), the dtype order the reference
 * writer uses, and helpers to quote names safely inside one-line error messages.
 */
#ifndef AVLENS_IO_ST_INTERNAL_H
#define AVLENS_IO_ST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/safetensors.h"

/* Header length cap, the same as the reference library's MAX_HEADER_SIZE. */
#define AVL__ST_MAX_HEADER 100000000ull

/* ---- string -> int64 map; keys are borrowed (the caller keeps them alive) ---- */
typedef struct {
    const char **keys; /* (cap,) NULL = empty slot */
    int64_t *vals;     /* (cap,) */
    size_t cap;        /* a power of two, or 0 */
    size_t count;
} avl__st_map;

/* Sizes the table for n keys (it also grows on insert). AVL_E_NOMEM on failure. */
avl_status avl__st_map_init(avl__st_map *m, size_t n);
void avl__st_map_free(avl__st_map *m);
/* Inserts key -> val. If key is present already, leaves the map unchanged, stores the old value
 * in *old (when old is not NULL) and returns AVL_E_ARG without detail. AVL_E_NOMEM on failure. */
avl_status avl__st_map_put(avl__st_map *m, const char *key, int64_t val, int64_t *old);
/* The value for key, or -1. */
int64_t avl__st_map_get(const avl__st_map *m, const char *key);

/* ---- error text ---- */
/* Copies s into buf (size n >= 8) for a one-line message: control characters become '?', and a
 * long string is cut with "...". Returns buf. */
const char *avl__st_quote(const char *s, char *buf, size_t n);
#define AVL__ST_QN 160 /* buffer size used for a quoted name */

/* Writes "[2,3]" for a shape into buf. Returns buf. */
const char *avl__st_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

/* ---- dtypes ---- */
/* Rank of a dtype in the reference library's Dtype enum (BOOL < U8 < I8 < ... < F16 < BF16 <
 * I32 < U32 < F32 < F64 < I64 < U64); its writer orders tensors by this rank descending, then
 * by name. */
int avl__st_dtype_rank(avl_dtype t);

/* Routes jansson's allocations through avl__malloc/avl__free (once per process) so that fault
 * injection reaches JSON parsing too, and clears this thread's "a JSON allocation failed" flag.
 * Call right before each json_load*. */
void avl__st_json_begin(void);
/* True when an allocation failed since avl__st_json_begin on this thread. jansson's lexer turns
 * some allocation failures into syntax errors ("string or '}' expected"), so the error code of
 * a failed load is not enough to tell a lack of memory from bad input. */
bool avl__st_json_oom(void);

/* ---- the reader, used by the set ---- */
/* Path (or label) of an open file. */
const char *avl__st_file_path(const avl_st_file *f);

#endif
