/* src/base/json.h: jansson with the library's allocator (internal).
 *
 *   json_error_t jerr;
 *   json_t *root;
 *   avl_status rc = avl__json_loadb(text, len, JSON_REJECT_DUPLICATES, path, &root, &jerr);
 *   if (rc) return rc;                         // detail: "<path>: ..." (or phrase your own)
 *   ...
 *   json_decref(root);
 *
 * Every JSON parse in the library goes through avl__json_loadb so that (1) jansson allocates
 * with avl__malloc/avl__free, which lets fault injection reach the parser, and (2) a failed
 * allocation is reported as AVL_E_NOMEM. (2) needs a flag beside jansson's own error: its
 * lexer turns some allocation failures into syntax errors ("string or '}' expected"), so the
 * error it returns cannot tell a lack of memory from bad input.
 *
 * The allocator switch (json_set_alloc_funcs) is process-wide and happens once, on first use;
 * avl__free is free(), so objects jansson made before the switch are still freed correctly.
 */
#ifndef AVLENS_BASE_JSON_H
#define AVLENS_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "base/internal.h"

/* Parses len bytes of buf with json_loadb(flags). On success *out is the new value. Returns
 * AVL_E_NOMEM when an allocation failed during the parse (detail "<label>: out of memory
 * parsing JSON") or AVL_E_FORMAT for bad input (detail "<label>: not valid JSON: <jansson's
 * text> (line L, column C)"); *err (when not NULL) holds jansson's error either way, so a
 * caller may phrase its own message. *out is NULL on failure. */
avl_status avl__json_loadb(const char *buf, size_t len, size_t flags, const char *label, json_t **out,
                           json_error_t *err);

/* The two steps inside avl__json_loadb, for other jansson calls that allocate (building and
 * dumping values): routes jansson's allocations through avl__malloc (once per process) and
 * clears this thread's "a JSON allocation failed" flag. */
void avl__json_begin(void);
/* True when a jansson allocation failed on this thread since the last avl__json_begin. */
bool avl__json_oom(void);

#endif
