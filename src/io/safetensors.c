/* src/io/safetensors.c: a small implementation of avlens/safetensors.h.
 *
 * STAND-IN: branch `st` owns the real implementation of this header; this file exists so that
 * branch `cfg` (config, checkpoint verification, mkmodel) builds and tests on its own, and the
 * lead replaces it with st's files at merge. It implements the whole header with the same
 * validation rules, in one file, so that swapping it out leaves no duplicate symbols.
 *
 * Format (https://github.com/huggingface/safetensors): u64 little-endian header length N, N bytes
 * of JSON, then the data; data_offsets are relative to the end of the header.
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

#include "avlens/safetensors.h"
#include "base/internal.h"

static const char *const k_dtype_names[AVL_DTYPE_COUNT] = {"F32", "F16", "BF16", "I64", "I32", "U8"};
static const size_t k_dtype_sizes[AVL_DTYPE_COUNT] = {4, 2, 2, 8, 4, 1};

const char *avl_dtype_name(avl_dtype t)
{
    return (unsigned)t < AVL_DTYPE_COUNT ? k_dtype_names[t] : "?";
}

size_t avl_dtype_size(avl_dtype t) { return (unsigned)t < AVL_DTYPE_COUNT ? k_dtype_sizes[t] : 0; }

avl_status avl_dtype_parse(const char *name, avl_dtype *out)
{
    for (int i = 0; name && i < AVL_DTYPE_COUNT; i++)
        if (!strcmp(name, k_dtype_names[i])) {
            *out = (avl_dtype)i;
            return AVL_OK;
        }
    return AVL_E_NOTFOUND;
}

/* ---- one file ---- */

typedef struct {
    char *name;
    avl_dtype dtype;
    int ndim;
    int64_t shape[AVL_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* relative to the data section */
} entry;

struct avl_st_file {
    char *path;
    const uint8_t *base; /* whole file */
    size_t size;
    bool mapped;
    const uint8_t *data; /* after the header */
    size_t data_len;
    entry *e;       /* in data order */
    int64_t n;
    int64_t *by_name; /* indices of e sorted by name */
    json_t *meta;
};

static int cmp_offset(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static const entry *g_sort_entries; /* qsort has no context argument; used single-threaded at open */

static int cmp_name_idx(const void *a, const void *b)
{
    return strcmp(g_sort_entries[*(const int64_t *)a].name, g_sort_entries[*(const int64_t *)b].name);
}

static avl_status parse_header(avl_st_file *f)
{
    const char *label = f->path;
    if (f->size < 8) return avl__err(AVL_E_FORMAT, "%s: %zu bytes, too short for a safetensors header", label, f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->base[i];
    if (n > f->size - 8)
        return avl__err(AVL_E_FORMAT, "%s: header length %llu exceeds the file size %zu", label,
                        (unsigned long long)n, f->size);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->base + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return avl__err(AVL_E_FORMAT, "%s: header is not JSON (%s)", label, jerr.text);
    avl_status rc = AVL_OK;
    if (!json_is_object(root)) {
        rc = avl__err(AVL_E_FORMAT, "%s: header is not a JSON object", label);
        goto done;
    }
    f->data = f->base + 8 + n;
    f->data_len = f->size - 8 - (size_t)n;
    size_t cap = json_object_size(root);
    f->e = avl__calloc(cap ? cap : 1, sizeof *f->e);
    if (!f->e) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", label);
        goto done;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (!strcmp(k, "__metadata__")) {
            if (!json_is_object(v)) {
                rc = avl__err(AVL_E_FORMAT, "%s: __metadata__ is not an object", label);
                goto done;
            }
            f->meta = json_incref(v);
            continue;
        }
        entry *e = &f->e[f->n];
        json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
               *off = json_object_get(v, "data_offsets");
        if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) ||
            json_array_size(off) != 2) {
            rc = avl__err(AVL_E_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets", label, k);
            goto done;
        }
        if (avl_dtype_parse(json_string_value(dt), &e->dtype)) {
            rc = avl__err(AVL_E_FORMAT, "%s: tensor '%s' has unknown dtype '%s'", label, k, json_string_value(dt));
            goto done;
        }
        if (json_array_size(sh) > AVL_MAX_DIMS) {
            rc = avl__err(AVL_E_FORMAT, "%s: tensor '%s' has %zu dimensions (at most %d)", label, k,
                          json_array_size(sh), AVL_MAX_DIMS);
            goto done;
        }
        e->ndim = (int)json_array_size(sh);
        e->numel = 1;
        for (int d = 0; d < e->ndim; d++) {
            json_t *x = json_array_get(sh, (size_t)d);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > (1LL << 40)) {
                rc = avl__err(AVL_E_FORMAT, "%s: tensor '%s' has a bad shape", label, k);
                goto done;
            }
            e->shape[d] = (int64_t)json_integer_value(x);
            if (e->shape[d] && e->numel > (INT64_C(1) << 50) / e->shape[d]) {
                rc = avl__err(AVL_E_FORMAT, "%s: tensor '%s' is implausibly large", label, k);
                goto done;
            }
            e->numel *= e->shape[d];
        }
        json_t *b = json_array_get(off, 0), *en = json_array_get(off, 1);
        if (!json_is_integer(b) || !json_is_integer(en) || json_integer_value(b) < 0 ||
            json_integer_value(en) < json_integer_value(b)) {
            rc = avl__err(AVL_E_FORMAT, "%s: tensor '%s' has bad data_offsets", label, k);
            goto done;
        }
        e->begin = (uint64_t)json_integer_value(b);
        e->end = (uint64_t)json_integer_value(en);
        if (e->end - e->begin != (uint64_t)e->numel * avl_dtype_size(e->dtype)) {
            rc = avl__err(AVL_E_FORMAT, "%s: tensor '%s' spans %llu bytes, its shape and dtype need %llu", label, k,
                          (unsigned long long)(e->end - e->begin),
                          (unsigned long long)((uint64_t)e->numel * avl_dtype_size(e->dtype)));
            goto done;
        }
        if (e->end > f->data_len) {
            rc = avl__err(AVL_E_FORMAT, "%s: tensor '%s' ends at byte %llu past the file end (%zu)", label, k,
                          (unsigned long long)(e->end + 8 + n), f->size);
            goto done;
        }
        e->name = avl__strdup(k);
        if (!e->name) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", label);
            goto done;
        }
        f->n++;
    }
    qsort(f->e, (size_t)f->n, sizeof *f->e, cmp_offset);
    for (int64_t i = 1; i < f->n; i++)
        if (f->e[i].begin < f->e[i - 1].end) {
            rc = avl__err(AVL_E_FORMAT, "%s: tensors '%s' and '%s' overlap", label, f->e[i - 1].name, f->e[i].name);
            goto done;
        }
    f->by_name = avl__malloc((size_t)(f->n ? f->n : 1) * sizeof *f->by_name);
    if (!f->by_name) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", label);
        goto done;
    }
    for (int64_t i = 0; i < f->n; i++) f->by_name[i] = i;
    g_sort_entries = f->e;
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name_idx);
done:
    json_decref(root);
    return rc;
}

static avl_status file_new(const char *label, avl_st_file **out)
{
    avl_st_file *f = avl__calloc(1, sizeof *f);
    if (!f) return avl__err(AVL_E_NOMEM, "%s: out of memory", label);
    f->path = avl__strdup(label);
    if (!f->path) {
        avl__free(f);
        return avl__err(AVL_E_NOMEM, "%s: out of memory", label);
    }
    *out = f;
    return AVL_OK;
}

avl_status avl_st_file_open_memory(const void *buf, size_t len, const char *label, avl_st_file **out)
{
    if (!buf || !out) return avl__err(AVL_E_ARG, "avl_st_file_open_memory: NULL argument");
    *out = NULL;
    avl_st_file *f;
    avl_status rc = file_new(label ? label : "<memory>", &f);
    if (rc) return rc;
    f->base = buf;
    f->size = len;
    if ((rc = parse_header(f))) {
        avl_st_file_close(f);
        return rc;
    }
    *out = f;
    return AVL_OK;
}

avl_status avl_st_file_open(const char *path, avl_st_file **out)
{
    if (!path || !out) return avl__err(AVL_E_ARG, "avl_st_file_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return avl__err(AVL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
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
    if (f->size) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            avl_st_file_close(f);
            return avl__err(AVL_E_IO, "%s: cannot map: %s", path, strerror(errno));
        }
        f->base = m;
        f->mapped = true;
    } else {
        f->base = (const uint8_t *)"";
    }
    close(fd);
    if ((rc = parse_header(f))) {
        avl_st_file_close(f);
        return rc;
    }
    *out = f;
    return AVL_OK;
}

void avl_st_file_close(avl_st_file *f)
{
    if (!f) return;
    for (int64_t i = 0; i < f->n; i++) avl__free(f->e[i].name);
    avl__free(f->e);
    avl__free(f->by_name);
    json_decref(f->meta);
    if (f->mapped) munmap((void *)f->base, f->size);
    avl__free(f->path);
    avl__free(f);
}

int64_t avl_st_file_count(const avl_st_file *f) { return f ? f->n : 0; }

static void view_of(const avl_st_file *f, const entry *e, avl_tensor_view *out)
{
    memset(out, 0, sizeof *out);
    out->name = e->name;
    out->file = f->path;
    out->dtype = e->dtype;
    out->ndim = e->ndim;
    memcpy(out->shape, e->shape, sizeof e->shape);
    out->numel = e->numel;
    out->data = f->data + e->begin;
    out->nbytes = (size_t)(e->end - e->begin);
}

avl_status avl_st_file_at(const avl_st_file *f, int64_t i, avl_tensor_view *out)
{
    if (!f || !out || i < 0 || i >= f->n) return avl__err(AVL_E_ARG, "avl_st_file_at: index out of range");
    view_of(f, &f->e[i], out);
    return AVL_OK;
}

static const entry *find(const avl_st_file *f, const char *name)
{
    int64_t lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        int c = strcmp(f->e[f->by_name[mid]].name, name);
        if (!c) return &f->e[f->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

avl_status avl_st_file_get(const avl_st_file *f, const char *name, avl_tensor_view *out)
{
    if (!f || !name || !out) return avl__err(AVL_E_ARG, "avl_st_file_get: NULL argument");
    const entry *e = find(f, name);
    if (!e) return avl__err(AVL_E_NOTFOUND, "%s: no tensor '%s'", f->path, name);
    view_of(f, e, out);
    return AVL_OK;
}

const char *avl_st_file_metadata(const avl_st_file *f, const char *key)
{
    if (!f || !f->meta || !key) return NULL;
    json_t *v = json_object_get(f->meta, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- a set ---- */

typedef struct {
    const char *name; /* borrowed from the file's entry */
    int file;
} set_entry;

struct avl_st_set {
    avl_st_file **files;
    int nfiles;
    set_entry *e; /* sorted by name */
    int64_t n;
};

static int cmp_set_entry(const void *a, const void *b)
{
    return strcmp(((const set_entry *)a)->name, ((const set_entry *)b)->name);
}

void avl_st_close(avl_st_set *s)
{
    if (!s) return;
    for (int i = 0; i < s->nfiles; i++) avl_st_file_close(s->files[i]);
    avl__free(s->files);
    avl__free(s->e);
    avl__free(s);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static avl_status set_add_file(avl_st_set *s, const char *path)
{
    avl_st_file **fs = avl__realloc(s->files, (size_t)(s->nfiles + 1) * sizeof *fs);
    if (!fs) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    s->files = fs;
    avl_status rc = avl_st_file_open(path, &s->files[s->nfiles]);
    if (rc) return rc;
    s->nfiles++;
    return AVL_OK;
}

static avl_status set_index(avl_st_set *s)
{
    int64_t total = 0;
    for (int i = 0; i < s->nfiles; i++) total += s->files[i]->n;
    s->e = avl__malloc((size_t)(total ? total : 1) * sizeof *s->e);
    if (!s->e) return avl__err(AVL_E_NOMEM, "safetensors set: out of memory");
    for (int i = 0; i < s->nfiles; i++)
        for (int64_t j = 0; j < s->files[i]->n; j++) s->e[s->n++] = (set_entry){s->files[i]->e[j].name, i};
    qsort(s->e, (size_t)s->n, sizeof *s->e, cmp_set_entry);
    for (int64_t i = 1; i < s->n; i++)
        if (!strcmp(s->e[i].name, s->e[i - 1].name))
            return avl__err(AVL_E_FORMAT, "%s: tensor '%s' is also in %s", s->files[s->e[i].file]->path,
                            s->e[i].name, s->files[s->e[i - 1].file]->path);
    return AVL_OK;
}

static avl_status open_index(avl_st_set *s, const char *index_path)
{
    char *buf;
    size_t len;
    avl_status rc = avl__read_file(index_path, &buf, &len);
    if (rc) return rc;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, 0, &jerr);
    avl__free(buf);
    if (!root) return avl__err(AVL_E_FORMAT, "%s: not valid JSON (%s)", index_path, jerr.text);
    json_t *wm = json_object_get(root, "weight_map");
    char *dir = avl__strdup(index_path);
    if (!dir) {
        json_decref(root);
        return avl__err(AVL_E_NOMEM, "%s: out of memory", index_path);
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    if (!json_is_object(wm)) {
        rc = avl__err(AVL_E_FORMAT, "%s: no \"weight_map\" object", index_path);
        goto done;
    }
    /* Shards in first-seen order of the sorted weight map; each opened once. */
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v)
    {
        if (!json_is_string(v) || strchr(json_string_value(v), '/')) {
            rc = avl__err(AVL_E_FORMAT, "%s: weight_map['%s'] is not a file name", index_path, name);
            goto done;
        }
        char *p = avl__path_join(dir, json_string_value(v));
        if (!p) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", index_path);
            goto done;
        }
        bool seen = false;
        for (int i = 0; i < s->nfiles && !seen; i++) seen = !strcmp(s->files[i]->path, p);
        if (!seen && (rc = set_add_file(s, p))) {
            avl__err_wrap(rc, "%s names shard %s", index_path, json_string_value(v));
            avl__free(p);
            goto done;
        }
        avl__free(p);
    }
    if ((rc = set_index(s))) goto done;
    json_object_foreach(wm, name, v)
    {
        if (!avl_st_has(s, name)) {
            rc = avl__err(AVL_E_FORMAT, "%s: tensor '%s' is mapped to %s, which lacks it", index_path, name,
                          json_string_value(v));
            goto done;
        }
    }
done:
    avl__free(dir);
    json_decref(root);
    return rc;
}

avl_status avl_st_open_dir(const char *path, avl_st_set **out)
{
    if (!path || !out) return avl__err(AVL_E_ARG, "avl_st_open_dir: NULL argument");
    *out = NULL;
    avl_st_set *s = avl__calloc(1, sizeof *s);
    if (!s) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    avl_status rc;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char *idx = avl__path_join(path, "model.safetensors.index.json");
        char *one = avl__path_join(path, "model.safetensors");
        if (!idx || !one) rc = avl__err(AVL_E_NOMEM, "%s: out of memory", path);
        else if (access(idx, F_OK) == 0) rc = open_index(s, idx);
        else if (access(one, F_OK) == 0) {
            rc = set_add_file(s, one);
            if (!rc) rc = set_index(s);
        } else rc = avl__err(AVL_E_IO, "%s: neither model.safetensors.index.json nor model.safetensors", path);
        avl__free(idx);
        avl__free(one);
    } else if (ends_with(path, ".json")) {
        rc = open_index(s, path);
    } else {
        rc = set_add_file(s, path);
        if (!rc) rc = set_index(s);
    }
    if (rc) {
        avl_st_close(s);
        return rc;
    }
    *out = s;
    return AVL_OK;
}

int64_t avl_st_count(const avl_st_set *s) { return s ? s->n : 0; }

avl_status avl_st_at(const avl_st_set *s, int64_t i, avl_tensor_view *out)
{
    if (!s || !out || i < 0 || i >= s->n) return avl__err(AVL_E_ARG, "avl_st_at: index out of range");
    return avl_st_file_get(s->files[s->e[i].file], s->e[i].name, out);
}

static const set_entry *set_find(const avl_st_set *s, const char *name)
{
    set_entry key = {name, 0};
    return bsearch(&key, s->e, (size_t)s->n, sizeof *s->e, cmp_set_entry);
}

avl_status avl_st_get(const avl_st_set *s, const char *name, avl_tensor_view *out)
{
    if (!s || !name || !out) return avl__err(AVL_E_ARG, "avl_st_get: NULL argument");
    const set_entry *e = set_find(s, name);
    if (!e) return avl__err(AVL_E_NOTFOUND, "%s: no tensor '%s'", s->nfiles ? s->files[0]->path : "set", name);
    return avl_st_file_get(s->files[e->file], name, out);
}

bool avl_st_has(const avl_st_set *s, const char *name) { return s && name && set_find(s, name); }

/* ---- writing ---- */

typedef struct {
    char *name;
    avl_dtype dtype;
    int ndim;
    int64_t shape[AVL_MAX_DIMS];
    void *data;
    size_t nbytes;
} wentry;

struct avl_st_writer {
    wentry *e;
    int64_t n, cap;
    json_t *meta;
};

avl_status avl_st_writer_new(avl_st_writer **out)
{
    if (!out) return avl__err(AVL_E_ARG, "avl_st_writer_new: NULL argument");
    *out = avl__calloc(1, sizeof **out);
    return *out ? AVL_OK : avl__err(AVL_E_NOMEM, "safetensors writer: out of memory");
}

void avl_st_writer_free(avl_st_writer *w)
{
    if (!w) return;
    for (int64_t i = 0; i < w->n; i++) {
        avl__free(w->e[i].name);
        avl__free(w->e[i].data);
    }
    avl__free(w->e);
    json_decref(w->meta);
    avl__free(w);
}

avl_status avl_st_writer_add(avl_st_writer *w, const char *name, avl_dtype dtype, int ndim,
                             const int64_t *shape, const void *data)
{
    if (!w || !name || (ndim && !shape) || ndim < 0 || ndim > AVL_MAX_DIMS || !avl_dtype_size(dtype))
        return avl__err(AVL_E_ARG, "avl_st_writer_add: bad argument for '%s'", name ? name : "?");
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return avl__err(AVL_E_ARG, "avl_st_writer_add: '%s' has a negative dimension", name);
        numel *= shape[i];
    }
    if (w->n == w->cap) {
        int64_t cap = w->cap ? w->cap * 2 : 64;
        wentry *e = avl__realloc(w->e, (size_t)cap * sizeof *e);
        if (!e) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory");
        w->e = e;
        w->cap = cap;
    }
    wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->nbytes = (size_t)numel * avl_dtype_size(dtype);
    e->name = avl__strdup(name);
    e->data = avl__malloc(e->nbytes ? e->nbytes : 1);
    if (!e->name || !e->data) {
        avl__free(e->name);
        avl__free(e->data);
        return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory for '%s'", name);
    }
    if (e->nbytes) memcpy(e->data, data, e->nbytes);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    w->n++;
    return AVL_OK;
}

avl_status avl_st_writer_set_metadata(avl_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value) return avl__err(AVL_E_ARG, "avl_st_writer_set_metadata: NULL argument");
    if (!w->meta && !(w->meta = json_object())) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory");
    if (json_object_set_new(w->meta, key, json_string(value)))
        return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory");
    return AVL_OK;
}

static int cmp_wentry_ptr(const void *a, const void *b)
{
    return strcmp((*(const wentry *const *)a)->name, (*(const wentry *const *)b)->name);
}

/* Writes the entries es[0..n) (in that order) to path. */
static avl_status write_file(const avl_st_writer *w, wentry **es, int64_t n, const char *path)
{
    json_t *h = json_object();
    if (!h) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    int bad = 0;
    if (w->meta) bad |= json_object_set(h, "__metadata__", w->meta);
    uint64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        json_t *t = json_object(), *sh = json_array(), *of = json_array();
        bad |= !t || !sh || !of;
        for (int d = 0; !bad && d < es[i]->ndim; d++) bad |= json_array_append_new(sh, json_integer(es[i]->shape[d]));
        if (!bad) {
            bad |= json_array_append_new(of, json_integer((json_int_t)off));
            bad |= json_array_append_new(of, json_integer((json_int_t)(off + es[i]->nbytes)));
            bad |= json_object_set_new(t, "dtype", json_string(avl_dtype_name(es[i]->dtype)));
            bad |= json_object_set(t, "shape", sh);
            bad |= json_object_set(t, "data_offsets", of);
            bad |= json_object_set(h, es[i]->name, t);
        }
        json_decref(t);
        json_decref(sh);
        json_decref(of);
        off += es[i]->nbytes;
    }
    char *s = bad ? NULL : json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    if (!s) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    size_t hl = strlen(s), padded = (hl + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(s);
        return avl__err(AVL_E_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(s, 1, hl, f) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (int64_t i = 0; ok && i < n; i++) ok = fwrite(es[i]->data, 1, es[i]->nbytes, f) == es[i]->nbytes;
    free(s);
    if (fclose(f) || !ok) return avl__err(AVL_E_IO, "%s: write failed: %s", path, strerror(errno));
    return AVL_OK;
}

static avl_status sorted_entries(const avl_st_writer *w, wentry ***out)
{
    wentry **es = avl__malloc((size_t)(w->n ? w->n : 1) * sizeof *es);
    if (!es) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory");
    for (int64_t i = 0; i < w->n; i++) es[i] = &w->e[i];
    qsort(es, (size_t)w->n, sizeof *es, cmp_wentry_ptr);
    for (int64_t i = 1; i < w->n; i++)
        if (!strcmp(es[i]->name, es[i - 1]->name)) {
            avl__free(es);
            return avl__err(AVL_E_ARG, "safetensors writer: tensor '%s' added twice", es[i]->name);
        }
    *out = es;
    return AVL_OK;
}

avl_status avl_st_writer_save(avl_st_writer *w, const char *path)
{
    if (!w || !path) return avl__err(AVL_E_ARG, "avl_st_writer_save: NULL argument");
    wentry **es;
    avl_status rc = sorted_entries(w, &es);
    if (rc) return rc;
    rc = write_file(w, es, w->n, path);
    avl__free(es);
    return rc;
}

avl_status avl_st_writer_save_sharded(avl_st_writer *w, const char *dir, size_t max_shard_bytes)
{
    if (!w || !dir || !max_shard_bytes) return avl__err(AVL_E_ARG, "avl_st_writer_save_sharded: bad argument");
    wentry **es;
    avl_status rc = sorted_entries(w, &es);
    if (rc) return rc;
    /* Greedy in name order: a shard closes when the next tensor would overflow it. */
    int64_t *start = avl__malloc((size_t)(w->n + 2) * sizeof *start);
    json_t *idx = json_object(), *wm = json_object(), *md = json_object();
    char *path = NULL;
    if (!start || !idx || !wm || !md) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    int nshards = 0;
    size_t acc = 0, total = 0;
    for (int64_t i = 0; i < w->n; i++) {
        if (i == 0 || (acc + es[i]->nbytes > max_shard_bytes && acc > 0)) {
            start[nshards++] = i;
            acc = 0;
        }
        acc += es[i]->nbytes;
        total += es[i]->nbytes;
    }
    if (nshards == 0) start[nshards++] = 0;
    start[nshards] = w->n;
    for (int s = 0; s < nshards && !rc; s++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, nshards);
        avl__free(path);
        path = avl__path_join(dir, name);
        if (!path) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
            break;
        }
        rc = write_file(w, es + start[s], start[s + 1] - start[s], path);
        for (int64_t i = start[s]; !rc && i < start[s + 1]; i++)
            if (json_object_set_new(wm, es[i]->name, json_string(name)))
                rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
    }
    if (rc) goto done;
    if (json_object_set_new(md, "total_size", json_integer((json_int_t)total)) ||
        json_object_set(idx, "metadata", md) || json_object_set(idx, "weight_map", wm)) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    avl__free(path);
    path = avl__path_join(dir, "model.safetensors.index.json");
    if (!path) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    if (json_dump_file(idx, path, JSON_INDENT(2) | JSON_SORT_KEYS))
        rc = avl__err(AVL_E_IO, "%s: cannot write", path);
done:
    avl__free(path);
    json_decref(idx);
    json_decref(wm);
    json_decref(md);
    avl__free(start);
    avl__free(es);
    return rc;
}

/* ---- numbers ---- */

uint16_t avl_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                          /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float avl_bf16_to_f32(uint16_t x)
{
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t avl_f32_to_f16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t sign = (u >> 16) & 0x8000u, e = (u >> 23) & 0xffu, m = u & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));
    int32_t ne = (int32_t)e - 127 + 15;
    if (ne >= 31) return (uint16_t)(sign | 0x7c00u);
    if (ne <= 0) { /* subnormal half or zero */
        if (ne < -10) return (uint16_t)sign;
        m |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - ne);
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)ne << 10) | (m >> 13), rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into the exponent: fine */
    return (uint16_t)(sign | h);
}

float avl_f16_to_f32(uint16_t x)
{
    uint32_t sign = (uint32_t)(x & 0x8000u) << 16, e = (x >> 10) & 0x1fu, m = x & 0x3ffu, u;
    if (e == 0) {
        if (!m) u = sign;
        else {
            e = 127 - 15 + 1;
            while (!(m & 0x400u)) {
                m <<= 1;
                e--;
            }
            u = sign | (e << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        u = sign | 0x7f800000u | (m << 13);
    } else {
        u = sign | ((e - 15 + 127) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

avl_status avl_convert_to_f32(avl_dtype dtype, const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        if (dtype == AVL_DTYPE_F32) memcpy(&dst[i], p + 4 * i, 4);
        else if (dtype == AVL_DTYPE_BF16 || dtype == AVL_DTYPE_F16) {
            uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
            dst[i] = dtype == AVL_DTYPE_BF16 ? avl_bf16_to_f32(h) : avl_f16_to_f32(h);
        } else return avl__err(AVL_E_ARG, "avl_convert_to_f32: %s is not a float dtype", avl_dtype_name(dtype));
    }
    return AVL_OK;
}
