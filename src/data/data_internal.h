/* src/data/data_internal.h: helpers shared by the data-set files (manifests, records, merge,
 * report, SVG): a string pool, a growable string, hashing, and reading record files. */
#ifndef AVLENS_DATA_INTERNAL_H
#define AVLENS_DATA_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/dataset.h"
#include "base/internal.h"

/* A pool of small allocations released together (chunks from avl__malloc). */
typedef struct avl__pool_chunk avl__pool_chunk;
typedef struct {
    avl__pool_chunk *head;
} avl__pool;

void *avl__pool_alloc(avl__pool *p, size_t n);                 /* 8-aligned; NULL on failure */
char *avl__pool_strdup(avl__pool *p, const char *s);           /* NULL s gives NULL */
char *avl__pool_strndup(avl__pool *p, const char *s, size_t n);
void avl__pool_free(avl__pool *p);

/* A growable NUL-terminated string. After a failed allocation `failed` is set and further
 * appends do nothing, so callers check once at the end. */
typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} avl__sb;

void avl__sb_put(avl__sb *b, const char *s, size_t n);
void avl__sb_puts(avl__sb *b, const char *s);
void avl__sb_printf(avl__sb *b, const char *fmt, ...) AVL__PRINTF(2, 3);
/* Appends s with the XML/HTML special characters escaped (& < > " '). */
void avl__sb_put_xml(avl__sb *b, const char *s);
void avl__sb_free(avl__sb *b);
/* Writes the buffer to path (replacing it); AVL_E_NOMEM when the buffer had failed. */
avl_status avl__sb_write_file(const avl__sb *b, const char *path);

/* 64-bit FNV-1a of s continued from h (start with AVL__FNV_OFFSET), and the splitmix64
 * finaliser that spreads its bits. */
#define AVL__FNV_OFFSET 0xcbf29ce484222325ull
uint64_t avl__fnv1a(uint64_t h, const char *s);
uint64_t avl__mix64(uint64_t x);

/* mkdir -p (mode 0777 before umask). */
avl_status avl__mkdirs(const char *path);

/* An analysis folder name is [A-Za-z0-9._-]+ and not "." or "..". */
bool avl__analysis_name_ok(const char *name);

/* One record read from a shard file. */
typedef struct {
    json_t *obj;         /* owned reference */
    const char *id;      /* inside obj */
    bool ok;             /* "status" is missing or "ok" */
    int64_t file_no;     /* index of the file in the read order */
    int64_t line;        /* 1-based line number */
} avl__rec;

/* The records of one analysis folder, one per id after deduplication (merge rule in
 * dataset.h), sorted by id. */
typedef struct {
    avl__rec *recs;
    int64_t n, cap;
    char **files;        /* the shard files read, in order (basenames) */
    int64_t n_files;
    int64_t lines, duplicates, conflicts, torn;
} avl__recset;

/* Reads every *.jsonl in dir (sorted by name). A torn last line of a file is skipped (and
 * counted); any other malformed line is an AVL_E_FORMAT error. label names the folder in
 * log lines. */
avl_status avl__recset_read_dir(const char *dir, const char *label, avl__recset *out);
void avl__recset_free(avl__recset *s);

/* Lists the subfolders of dir that are analysis folders, sorted; *names freed with
 * avl__free_strv. */
avl_status avl__list_subdirs(const char *dir, char ***names, int64_t *n);
/* Lists the regular files in dir whose names end in suffix, sorted. */
avl_status avl__list_files(const char *dir, const char *suffix, char ***names, int64_t *n);
void avl__free_strv(char **v, int64_t n);

/* Splits a record file's text into lines and parses each as a JSON object. For each record
 * line calls fn (which takes ownership of obj; returns non-OK to stop). The bytes after the
 * last newline are the tail: a complete JSON object there is a record (the file was written
 * without the final newline); anything else is a torn line: *torn gets its length and it is
 * skipped. A malformed line elsewhere is AVL_E_FORMAT naming path and line. */
typedef avl_status (*avl__line_fn)(json_t *obj, int64_t line, void *user);
avl_status avl__parse_record_lines(const char *buf, size_t len, const char *path, avl__line_fn fn,
                                   void *user, size_t *torn, bool *tail_unterminated);

#endif
