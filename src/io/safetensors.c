/* src/io/safetensors.c: reads one .safetensors file, memory-mapped and validated.
 *
 * Layout (https://github.com/huggingface/safetensors, README "Format"): 8 bytes little-endian
 * u64 N, N bytes of UTF-8 JSON, then the data section. The JSON maps each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section) and
 * may hold "__metadata__", an object of strings.
 *
 * Everything in the header is checked before a single view is handed out (docs/safetensors.md
 * lists the checks and their messages). The reference reader (safetensors/src/tensor.rs,
 * Metadata::validate) is stricter in one way: it wants the spans to tile the data section
 * exactly; we accept gaps and trailing bytes but never overlaps, since a gap cannot make a view
 * read the wrong bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/internal.h"
#include "io/st_internal.h"

/* One tensor of the header. */
typedef struct {
    const char *name; /* into f->arena */
    avl_dtype dtype;
    int ndim;
    int64_t shape[AVL_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* byte span within the data section */
} st_entry;

struct avl_st_file {
    char *path;              /* the path, or the label of an in-memory image */
    const uint8_t *base;     /* (size,) the whole file */
    size_t size;
    bool mapped;             /* base is our mmap (unmap at close) */
    const uint8_t *data;     /* base + 8 + N */
    uint64_t data_len;
    st_entry *entries;       /* (n,) sorted by begin, then name */
    int64_t n;
    char *arena;             /* names, metadata keys and values, NUL-terminated */
    const char **meta;       /* (2 * nmeta,) key, value, key, value, ... */
    int64_t nmeta;
    avl__strmap index;       /* name -> position in entries (keys borrowed from entries) */
};

/* ---- dtypes ---- */

static const struct {
    const char *name;
    size_t size;
} g_dtypes[AVL_DTYPE_COUNT] = {
    [AVL_DTYPE_F32] = {"F32", 4}, [AVL_DTYPE_F16] = {"F16", 2}, [AVL_DTYPE_BF16] = {"BF16", 2},
    [AVL_DTYPE_I64] = {"I64", 8}, [AVL_DTYPE_I32] = {"I32", 4}, [AVL_DTYPE_U8] = {"U8", 1},
};

/* Spellings the format defines that avlens does not read: an error of its own kind. */
static const char *const g_foreign_dtypes[] = {
    "BOOL", "I8", "I16", "U16", "U32", "U64", "F64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",
    "F6_E2M3", "F6_E3M2", "C64", "PackedU4", "PackedI4",
};

const char *avl_dtype_name(avl_dtype t)
{
    return ((unsigned)t < AVL_DTYPE_COUNT) ? g_dtypes[t].name : "?";
}

size_t avl_dtype_size(avl_dtype t)
{
    return ((unsigned)t < AVL_DTYPE_COUNT) ? g_dtypes[t].size : 0;
}

avl_status avl_dtype_parse(const char *name, avl_dtype *out)
{
    if (!name) return AVL_E_NOTFOUND;
    for (int i = 0; i < AVL_DTYPE_COUNT; i++) {
        if (strcmp(name, g_dtypes[i].name) == 0) {
            if (out) *out = (avl_dtype)i;
            return AVL_OK;
        }
    }
    return AVL_E_NOTFOUND;
}

/* ---- header validation ---- */

/* Reads a JSON integer that must be >= 0. */
static bool get_uint(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* Fills e from the header entry `name: v`. The error names f's path and the tensor. */
static avl_status parse_entry(const avl_st_file *f, const char *name, const json_t *v, st_entry *e)
{
    char q[AVL__ST_QN], sh[256];
    const char *path = f->path;
    if (!json_is_object(v))
        return avl__err(AVL_E_FORMAT, "%s: tensor '%s' is not a JSON object", path,
                        avl__st_quote(name, q, sizeof q));

    const json_t *jd = json_object_get(v, "dtype");
    if (!json_is_string(jd))
        return avl__err(AVL_E_FORMAT, "%s: tensor '%s' has no \"dtype\" string", path,
                        avl__st_quote(name, q, sizeof q));
    const char *ds = json_string_value(jd);
    if (avl_dtype_parse(ds, &e->dtype) != AVL_OK) {
        char qd[64];
        for (size_t i = 0; i < sizeof g_foreign_dtypes / sizeof *g_foreign_dtypes; i++)
            if (strcmp(ds, g_foreign_dtypes[i]) == 0)
                return avl__err(AVL_E_UNSUPPORTED, "%s: tensor '%s' has dtype %s, which avlens does not read",
                                path, avl__st_quote(name, q, sizeof q), ds);
        return avl__err(AVL_E_FORMAT, "%s: tensor '%s' has unknown dtype '%s'", path,
                        avl__st_quote(name, q, sizeof q), avl__st_quote(ds, qd, sizeof qd));
    }

    const json_t *js = json_object_get(v, "shape");
    if (!json_is_array(js))
        return avl__err(AVL_E_FORMAT, "%s: tensor '%s' has no \"shape\" array", path,
                        avl__st_quote(name, q, sizeof q));
    size_t nd = json_array_size(js);
    if (nd > AVL_MAX_DIMS)
        return avl__err(AVL_E_FORMAT, "%s: tensor '%s' has %zu dimensions (at most %d)", path,
                        avl__st_quote(name, q, sizeof q), nd, AVL_MAX_DIMS);
    e->ndim = (int)nd;
    uint64_t numel = 1;
    bool overflow = false;
    for (size_t d = 0; d < nd; d++) {
        uint64_t s;
        if (!get_uint(json_array_get(js, d), &s))
            return avl__err(AVL_E_FORMAT, "%s: tensor '%s' shape entry %zu is not a non-negative integer",
                            path, avl__st_quote(name, q, sizeof q), d);
        e->shape[d] = (int64_t)s;
        if (__builtin_mul_overflow(numel, s, &numel)) overflow = true;
    }
    for (size_t d = nd; d < AVL_MAX_DIMS; d++) e->shape[d] = 0;
    uint64_t nbytes = 0;
    if (!overflow && __builtin_mul_overflow(numel, (uint64_t)avl_dtype_size(e->dtype), &nbytes))
        overflow = true;
    if (overflow || numel > (uint64_t)INT64_MAX)
        return avl__err(AVL_E_FORMAT, "%s: tensor '%s' has shape %s %s, too many bytes to count", path,
                        avl__st_quote(name, q, sizeof q), avl__st_shape_str(e->ndim, e->shape, sh, sizeof sh),
                        ds);
    e->numel = (int64_t)numel;

    const json_t *jo = json_object_get(v, "data_offsets");
    uint64_t b, en;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !get_uint(json_array_get(jo, 0), &b) ||
        !get_uint(json_array_get(jo, 1), &en))
        return avl__err(AVL_E_FORMAT, "%s: tensor '%s' has no \"data_offsets\" [begin, end] of non-negative integers",
                        path, avl__st_quote(name, q, sizeof q));
    if (en < b)
        return avl__err(AVL_E_FORMAT, "%s: tensor '%s' has data_offsets [%llu,%llu] that end before they begin",
                        path, avl__st_quote(name, q, sizeof q), (unsigned long long)b, (unsigned long long)en);
    if (en - b != nbytes)
        return avl__err(AVL_E_FORMAT, "%s: tensor '%s' has shape %s %s (%llu bytes) but spans %llu bytes", path,
                        avl__st_quote(name, q, sizeof q), avl__st_shape_str(e->ndim, e->shape, sh, sizeof sh),
                        ds, (unsigned long long)nbytes, (unsigned long long)(en - b));
    if (en > f->data_len)
        return avl__err(AVL_E_FORMAT,
                        "%s: tensor '%s' ends at byte %llu of the data section, past its end (%llu bytes; file truncated?)",
                        path, avl__st_quote(name, q, sizeof q), (unsigned long long)en,
                        (unsigned long long)f->data_len);
    e->begin = b;
    e->end = en;
    e->name = name;
    return AVL_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Copies s into the arena at *at. */
static const char *arena_put(char *arena, size_t *at, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = arena + *at;
    memcpy(d, s, n);
    *at += n;
    return d;
}

/* Validates "__metadata__" and copies it into the arena. */
static avl_status parse_metadata(avl_st_file *f, const json_t *m, char *arena, size_t *at)
{
    char q[AVL__ST_QN];
    if (!json_is_object(m))
        return avl__err(AVL_E_FORMAT, "%s: \"__metadata__\" is not an object of strings", f->path);
    size_t n = json_object_size(m);
    f->meta = avl__calloc(2 * n, sizeof *f->meta);
    if (!f->meta) return avl__err(AVL_E_NOMEM, "%s: out of memory reading the metadata", f->path);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (!json_is_string(v))
            return avl__err(AVL_E_FORMAT, "%s: \"__metadata__\" value for '%s' is not a string", f->path,
                            avl__st_quote(k, q, sizeof q));
        f->meta[2 * f->nmeta] = arena_put(arena, at, k);
        f->meta[2 * f->nmeta + 1] = arena_put(arena, at, json_string_value(v));
        f->nmeta++;
    }
    return AVL_OK;
}

/* Validates the whole image f->base[0..size) and builds entries and index. */
static avl_status parse_file(avl_st_file *f)
{
    const char *path = f->path;
    char q[AVL__ST_QN], q2[AVL__ST_QN];
    if (f->size == 0) return avl__err(AVL_E_FORMAT, "%s: file is empty (0 bytes)", path);
    if (f->size < 8)
        return avl__err(AVL_E_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header length", path,
                        f->size);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | f->base[i];
    if (hn > (uint64_t)(f->size - 8))
        return avl__err(AVL_E_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)", path,
                        (unsigned long long)hn, f->size);
    if (hn > AVL__ST_MAX_HEADER)
        return avl__err(AVL_E_FORMAT, "%s: header length %llu is over the %llu-byte limit", path,
                        (unsigned long long)hn, AVL__ST_MAX_HEADER);
    if (hn == 0) return avl__err(AVL_E_FORMAT, "%s: header is empty (length 0)", path);
    f->data = f->base + 8 + hn;
    f->data_len = (uint64_t)f->size - 8 - hn;

    json_error_t jerr;
    json_t *root;
    avl_status rc = avl__json_loadb((const char *)f->base + 8, (size_t)hn, JSON_REJECT_DUPLICATES, path, &root, &jerr);
    if (rc == AVL_E_NOMEM) return avl__err(AVL_E_NOMEM, "%s: out of memory parsing the header", path);
    if (rc) {
        switch (json_error_code(&jerr)) {
        case json_error_duplicate_key:
            return avl__err(AVL_E_FORMAT, "%s: duplicate tensor name in the header (%s)", path,
                            avl__st_quote(jerr.text, q, sizeof q));
        default:
            return avl__err(AVL_E_FORMAT, "%s: header is not valid JSON: %s (header byte %d)", path,
                            avl__st_quote(jerr.text, q, sizeof q), jerr.position);
        }
    }
    if (!json_is_object(root)) {
        rc = avl__err(AVL_E_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }

    /* One arena for every string we keep: names, metadata keys and values. */
    size_t arena_len = 1, nt = 0;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (strcmp(k, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (json_is_object(v)) {
                json_object_foreach(v, mk, mv) {
                    arena_len += strlen(mk) + 1;
                    if (json_is_string(mv)) arena_len += strlen(json_string_value(mv)) + 1;
                }
            }
        } else {
            arena_len += strlen(k) + 1;
            nt++;
        }
    }
    f->arena = avl__malloc(arena_len);
    f->entries = avl__calloc(nt, sizeof *f->entries);
    if (!f->arena || !f->entries) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory reading the header", path);
        goto done;
    }
    size_t at = 0;
    json_object_foreach(root, k, v) {
        if (strcmp(k, "__metadata__") == 0) {
            rc = parse_metadata(f, v, f->arena, &at);
        } else {
            rc = parse_entry(f, k, v, &f->entries[f->n]);
            if (!rc) f->entries[f->n++].name = arena_put(f->arena, &at, k);
        }
        if (rc) goto done;
    }

    qsort(f->entries, (size_t)f->n, sizeof *f->entries, cmp_entry);
    /* Sorted by begin, a non-empty span overlaps an earlier one iff it begins before the
     * furthest end seen so far. Empty spans hold no bytes and overlap nothing. */
    int64_t far = -1;
    for (int64_t i = 0; i < f->n; i++) {
        const st_entry *e = &f->entries[i];
        if (e->begin == e->end) continue;
        if (far >= 0 && e->begin < f->entries[far].end) {
            const st_entry *p = &f->entries[far];
            rc = avl__err(AVL_E_FORMAT, "%s: tensors '%s' [%llu,%llu) and '%s' [%llu,%llu) overlap", path,
                          avl__st_quote(p->name, q, sizeof q), (unsigned long long)p->begin,
                          (unsigned long long)p->end, avl__st_quote(e->name, q2, sizeof q2),
                          (unsigned long long)e->begin, (unsigned long long)e->end);
            goto done;
        }
        if (far < 0 || e->end > f->entries[far].end) far = i;
    }

    rc = avl__strmap_init(&f->index, f->n, AVL__STRMAP_BORROW);
    for (int64_t i = 0; !rc && i < f->n; i++) {
        int64_t *at;
        bool added;
        rc = avl__strmap_emplacez(&f->index, f->entries[i].name, &at, &added);
        if (rc) rc = avl__err(AVL_E_NOMEM, "%s: out of memory indexing the tensors", path);
        else if (!added) rc = avl__err(AVL_E_INTERNAL, "%s: duplicate name after JSON check", path);
        else *at = i;
    }
done:
    json_decref(root);
    return rc;
}

/* ---- open / close ---- */

static avl_status file_new(const char *path, avl_st_file **out)
{
    avl_st_file *f = avl__calloc(1, sizeof *f);
    if (f) f->path = avl__strdup(path);
    if (!f || !f->path) {
        avl__free(f);
        return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    }
    *out = f;
    return AVL_OK;
}

avl_status avl_st_file_open_memory(const void *buf, size_t len, const char *label, avl_st_file **out)
{
    if (!out) return avl__err(AVL_E_ARG, "avl_st_file_open_memory: out is NULL");
    *out = NULL;
    if (!label) label = "<memory>";
    if (!buf && len) return avl__err(AVL_E_ARG, "%s: buffer is NULL", label);
    avl_st_file *f;
    avl_status rc = file_new(label, &f);
    if (rc) return rc;
    f->base = buf;
    f->size = len;
    rc = parse_file(f);
    if (rc) {
        avl_st_file_close(f);
        return rc;
    }
    *out = f;
    return AVL_OK;
}

avl_status avl_st_file_open(const char *path, avl_st_file **out)
{
    if (!out) return avl__err(AVL_E_ARG, "avl_st_file_open: out is NULL");
    *out = NULL;
    if (!path) return avl__err(AVL_E_ARG, "avl_st_file_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return avl__err(AVL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return avl__err(AVL_E_IO, "%s: not a regular file", path);
    }
    avl_st_file *f;
    avl_status rc = file_new(path, &f);
    if (rc) {
        close(fd);
        return rc;
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            rc = avl__err(AVL_E_IO, "%s: cannot map %zu bytes: %s", path, f->size, strerror(errno));
            close(fd);
            avl_st_file_close(f);
            return rc;
        }
        f->base = p;
        f->mapped = true;
    }
    close(fd); /* the mapping keeps the file alive */
    rc = parse_file(f);
    if (rc) {
        avl_st_file_close(f);
        return rc;
    }
    *out = f;
    return AVL_OK;
}

void avl_st_file_close(avl_st_file *f)
{
    if (!f) return;
    if (f->mapped) munmap((void *)f->base, f->size);
    avl__strmap_free(&f->index);
    avl__free(f->entries);
    avl__free(f->meta);
    avl__free(f->arena);
    avl__free(f->path);
    avl__free(f);
}

/* ---- queries ---- */

int64_t avl_st_file_count(const avl_st_file *f) { return f ? f->n : 0; }

const char *avl__st_file_path(const avl_st_file *f) { return f->path; }

static void fill_view(const avl_st_file *f, const st_entry *e, avl_tensor_view *out)
{
    memset(out, 0, sizeof *out);
    out->name = e->name;
    out->file = f->path;
    out->dtype = e->dtype;
    out->ndim = e->ndim;
    memcpy(out->shape, e->shape, sizeof out->shape);
    out->numel = e->numel;
    out->data = f->data + e->begin;
    out->nbytes = (size_t)(e->end - e->begin);
}

avl_status avl_st_file_at(const avl_st_file *f, int64_t i, avl_tensor_view *out)
{
    if (!f || !out) return avl__err(AVL_E_ARG, "avl_st_file_at: NULL argument");
    if (i < 0 || i >= f->n)
        return avl__err(AVL_E_ARG, "%s: tensor index %lld is out of range (%lld tensors)", f->path, (long long)i,
                        (long long)f->n);
    fill_view(f, &f->entries[i], out);
    return AVL_OK;
}

avl_status avl_st_file_get(const avl_st_file *f, const char *name, avl_tensor_view *out)
{
    if (!f || !name || !out) return avl__err(AVL_E_ARG, "avl_st_file_get: NULL argument");
    int64_t i = avl__strmap_getz(&f->index, name, -1);
    if (i < 0) {
        char q[AVL__ST_QN];
        return avl__err(AVL_E_NOTFOUND, "%s: no tensor '%s'", f->path, avl__st_quote(name, q, sizeof q));
    }
    fill_view(f, &f->entries[i], out);
    return AVL_OK;
}

const char *avl_st_file_metadata(const avl_st_file *f, const char *key)
{
    if (!f || !key) return NULL;
    for (int64_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}
