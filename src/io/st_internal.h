/* src/io/st_internal.h: what the safetensors reader, the checkpoint set and the writer share.
 *
 * The dtype order the reference writer uses and helpers to quote names safely inside one-line
 * error messages (st_util.c). Name -> index lookup is the shared src/base/strmap.h with
 * borrowed keys; JSON parsing is src/base/json.h.
 */
#ifndef AVLENS_IO_ST_INTERNAL_H
#define AVLENS_IO_ST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/safetensors.h"
#include "base/json.h"
#include "base/strmap.h"

/* Header length cap, the same as the reference library's MAX_HEADER_SIZE. */
#define AVL__ST_MAX_HEADER 100000000ull

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

/* ---- the reader, used by the set ---- */
/* Path (or label) of an open file. */
const char *avl__st_file_path(const avl_st_file *f);

#endif
