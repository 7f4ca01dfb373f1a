/* src/io/st_writer.c: writes .safetensors files byte for byte as the reference library does.
 *
 * The layout mirrors safetensors/src/tensor.rs (prepare, serialize_to_file), which the Python
 * package calls:
 *  - tensors sorted by dtype rank descending (its Dtype enum order: ... F16 < BF16 < I32 < F32 <
 *    I64), then by name (byte order); data_offsets contiguous from 0 in that order;
 *  - the header is serde_json's compact form: "__metadata__" first when there is any, then each
 *    tensor as {"dtype":..,"shape":[..],"data_offsets":[b,e]}; strings escape only '"', '\\'
 *    and control bytes (\b \t \n \f \r, others \u00xx), and are otherwise raw UTF-8;
 *  - the header is padded with spaces to a multiple of 8 and preceded by its length as a
 *    little-endian u64.
 * The reference keeps metadata in a HashMap, so its key order is unspecified; we write the keys
 * sorted (byte order), which is identical for the usual single-key {"format": "pt"}.
 *
 * Sharding mirrors huggingface_hub's split_torch_state_dict_into_shards (insertion order; a
 * tensor that would tip the current shard over max_shard_bytes starts a new one; a tensor larger
 * than the limit gets a shard of its own) and transformers' save_pretrained for the names
 * (model-00001-of-00003.safetensors) and for the index (json.dumps(indent=2, sort_keys=True)
 * plus a newline, ASCII-only with \uXXXX escapes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/internal.h"
#include "io/st_internal.h"

typedef struct {
    char *name;
    avl_dtype dtype;
    int ndim;
    int64_t shape[AVL_MAX_DIMS];
    size_t nbytes;
    void *data; /* (nbytes,) our copy */
} wt_tensor;

struct avl_st_writer {
    wt_tensor *t; /* (n,) in insertion order */
    int64_t n, cap;
    avl__strmap names; /* name -> position in t (keys borrowed: t[i].name) */
    char **meta;       /* (2 * nmeta,) key, value pairs, owned */
    int64_t nmeta, metacap;
};

/* ---- a growable byte buffer that remembers an allocation failure ---- */
typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const void *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = avl__realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt_u64(sbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string as serde_json writes it. */
static void sb_json_serde(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\t': esc[1] = 't'; break;
        case '\n': esc[1] = 'n'; break;
        case '\f': esc[1] = 'f'; break;
        case '\r': esc[1] = 'r'; break;
        default:
            if (c >= 0x20) {
                sb_put(b, p, 1);
                continue;
            }
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        sb_put(b, esc, n);
    }
    sb_put(b, "\"", 1);
}

/* Decodes one UTF-8 sequence at *p (already validated); advances *p. */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len > 1) c &= 0x3Fu >> (len - 1);
    for (int i = 1; i < len; i++) c = (c << 6) | (s[i] & 0x3Fu);
    *p = s + len;
    return c;
}

/* A JSON string as Python's json.dumps writes it with ensure_ascii=True. */
static void sb_json_python(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c = utf8_next(&p);
        char tmp[16];
        switch (c) {
        case '"': sb_str(b, "\\\""); continue;
        case '\\': sb_str(b, "\\\\"); continue;
        case '\n': sb_str(b, "\\n"); continue;
        case '\r': sb_str(b, "\\r"); continue;
        case '\t': sb_str(b, "\\t"); continue;
        case '\b': sb_str(b, "\\b"); continue;
        case '\f': sb_str(b, "\\f"); continue;
        default: break;
        }
        if (c >= 0x20 && c < 0x7F) {
            char ch = (char)c;
            sb_put(b, &ch, 1);
        } else if (c < 0x10000) {
            snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)c);
            sb_str(b, tmp);
        } else {
            uint32_t v = c - 0x10000;
            snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", (unsigned)(0xD800 + (v >> 10)), (unsigned)(0xDC00 + (v & 0x3FF)));
            sb_str(b, tmp);
        }
    }
    sb_put(b, "\"", 1);
}

/* True when s is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static bool utf8_valid(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s;
        int len;
        uint32_t min;
        if (c < 0x80) {
            s++;
            continue;
        } else if (c >= 0xC2 && c < 0xE0) {
            len = 2;
            min = 0x80;
        } else if (c >= 0xE0 && c < 0xF0) {
            len = 3;
            min = 0x800;
        } else if (c >= 0xF0 && c < 0xF5) {
            len = 4;
            min = 0x10000;
        } else {
            return false;
        }
        uint32_t v = c & (0x3Fu >> (len - 1));
        for (int i = 1; i < len; i++) {
            if ((s[i] & 0xC0) != 0x80) return false;
            v = (v << 6) | (s[i] & 0x3Fu);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return false;
        s += len;
    }
    return true;
}

/* ---- collecting ---- */

avl_status avl_st_writer_new(avl_st_writer **out)
{
    if (!out) return avl__err(AVL_E_ARG, "avl_st_writer_new: out is NULL");
    *out = avl__calloc(1, sizeof **out);
    if (!*out) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory");
    return avl__strmap_init(&(*out)->names, 0, AVL__STRMAP_BORROW); /* allocates nothing */
}

void avl_st_writer_free(avl_st_writer *w)
{
    if (!w) return;
    for (int64_t i = 0; i < w->n; i++) {
        avl__free(w->t[i].name);
        avl__free(w->t[i].data);
    }
    avl__free(w->t);
    for (int64_t i = 0; i < 2 * w->nmeta; i++) avl__free(w->meta[i]);
    avl__free(w->meta);
    avl__strmap_free(&w->names);
    avl__free(w);
}

avl_status avl_st_writer_add(avl_st_writer *w, const char *name, avl_dtype dtype, int ndim,
                             const int64_t *shape, const void *data)
{
    char q[AVL__ST_QN], sh[256];
    if (!w || !name) return avl__err(AVL_E_ARG, "avl_st_writer_add: NULL argument");
    avl__st_quote(name, q, sizeof q);
    if (!utf8_valid(name)) return avl__err(AVL_E_ARG, "safetensors writer: tensor name '%s' is not UTF-8", q);
    if (strcmp(name, "__metadata__") == 0)
        return avl__err(AVL_E_ARG, "safetensors writer: '__metadata__' is reserved, not a tensor name");
    if ((unsigned)dtype >= AVL_DTYPE_COUNT)
        return avl__err(AVL_E_ARG, "safetensors writer: tensor '%s' has unknown dtype %d", q, (int)dtype);
    if (ndim < 0 || ndim > AVL_MAX_DIMS || (ndim > 0 && !shape))
        return avl__err(AVL_E_ARG, "safetensors writer: tensor '%s' has %d dimensions (0..%d)", q, ndim, AVL_MAX_DIMS);
    uint64_t numel = 1, nbytes;
    bool overflow = false;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return avl__err(AVL_E_ARG, "safetensors writer: tensor '%s' has negative shape %s", q,
                            avl__st_shape_str(ndim, shape, sh, sizeof sh));
        if (__builtin_mul_overflow(numel, (uint64_t)shape[d], &numel)) overflow = true;
    }
    if (overflow || __builtin_mul_overflow(numel, (uint64_t)avl_dtype_size(dtype), &nbytes) ||
        nbytes > (uint64_t)INT64_MAX)
        return avl__err(AVL_E_ARG, "safetensors writer: tensor '%s' shape %s is too large", q,
                        avl__st_shape_str(ndim, shape, sh, sizeof sh));
    if (nbytes && !data) return avl__err(AVL_E_ARG, "safetensors writer: tensor '%s' has no data", q);
    if (avl__strmap_findz(&w->names, name))
        return avl__err(AVL_E_ARG, "safetensors writer: duplicate tensor name '%s'", q);

    if (w->n == w->cap) {
        int64_t cap = w->cap ? 2 * w->cap : 16;
        wt_tensor *t = avl__realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory adding '%s'", q);
        w->t = t;
        w->cap = cap;
    }
    wt_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = avl__strdup(name);
    t->data = avl__malloc((size_t)nbytes);
    avl_status rc = (t->name && t->data) ? avl__strmap_putz(&w->names, t->name, w->n) : AVL_E_NOMEM;
    if (rc) {
        avl__free(t->name);
        avl__free(t->data);
        return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory adding '%s' (%llu bytes)", q,
                        (unsigned long long)nbytes);
    }
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->nbytes = (size_t)nbytes;
    if (nbytes) memcpy(t->data, data, (size_t)nbytes);
    w->n++;
    return AVL_OK;
}

avl_status avl_st_writer_set_metadata(avl_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value) return avl__err(AVL_E_ARG, "avl_st_writer_set_metadata: NULL argument");
    if (!utf8_valid(key) || !utf8_valid(value))
        return avl__err(AVL_E_ARG, "safetensors writer: metadata key or value is not UTF-8");
    char *v = avl__strdup(value);
    if (!v) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory setting metadata");
    for (int64_t i = 0; i < w->nmeta; i++) {
        if (strcmp(w->meta[2 * i], key) == 0) {
            avl__free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return AVL_OK;
        }
    }
    if (w->nmeta == w->metacap) {
        int64_t cap = w->metacap ? 2 * w->metacap : 4;
        char **m = avl__realloc(w->meta, (size_t)(2 * cap) * sizeof *m);
        if (!m) {
            avl__free(v);
            return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory setting metadata");
        }
        w->meta = m;
        w->metacap = cap;
    }
    char *k = avl__strdup(key);
    if (!k) {
        avl__free(v);
        return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory setting metadata");
    }
    w->meta[2 * w->nmeta] = k;
    w->meta[2 * w->nmeta + 1] = v;
    w->nmeta++;
    return AVL_OK;
}

/* ---- writing ---- */

/* A tensor's place in the layout order, or in the index's name order. */
typedef struct {
    int rank;         /* avl__st_dtype_rank, or 0 when sorting by name only */
    const char *name;
    int64_t idx;      /* position in w->t */
    int64_t shard;
} wt_key;

static int cmp_key(const void *a, const void *b)
{
    const wt_key *x = a, *y = b;
    if (x->rank != y->rank) return x->rank > y->rank ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Sorts the positions idx[0..n) into the reference layout order. */
static avl_status sort_tensors(const avl_st_writer *w, int64_t *idx, int64_t n)
{
    wt_key *k = avl__malloc((size_t)n * sizeof *k);
    if (!k) return AVL_E_NOMEM;
    for (int64_t i = 0; i < n; i++)
        k[i] = (wt_key){avl__st_dtype_rank(w->t[idx[i]].dtype), w->t[idx[i]].name, idx[i], 0};
    qsort(k, (size_t)n, sizeof *k, cmp_key);
    for (int64_t i = 0; i < n; i++) idx[i] = k[i].idx;
    avl__free(k);
    return AVL_OK;
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* Builds the padded header for the tensors idx[0..n) (already in layout order). */
static avl_status build_header(const avl_st_writer *w, const int64_t *idx, int64_t n, sbuf *b)
{
    sb_put(b, "{", 1);
    if (w->nmeta) {
        char ***keys = avl__malloc((size_t)w->nmeta * sizeof *keys);
        if (!keys) return AVL_E_NOMEM;
        for (int64_t i = 0; i < w->nmeta; i++) keys[i] = &w->meta[2 * i];
        qsort(keys, (size_t)w->nmeta, sizeof *keys, cmp_meta);
        sb_str(b, "\"__metadata__\":{");
        for (int64_t i = 0; i < w->nmeta; i++) {
            if (i) sb_put(b, ",", 1);
            sb_json_serde(b, keys[i][0]);
            sb_put(b, ":", 1);
            sb_json_serde(b, keys[i][1]);
        }
        sb_put(b, "}", 1);
        avl__free(keys);
    }
    uint64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        const wt_tensor *t = &w->t[idx[i]];
        if (i || w->nmeta) sb_put(b, ",", 1);
        sb_json_serde(b, t->name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, avl_dtype_name(t->dtype));
        sb_str(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) sb_put(b, ",", 1);
            sb_fmt_u64(b, (uint64_t)t->shape[d]);
        }
        sb_str(b, "],\"data_offsets\":[");
        sb_fmt_u64(b, off);
        sb_put(b, ",", 1);
        off += t->nbytes;
        sb_fmt_u64(b, off);
        sb_str(b, "]}");
    }
    sb_put(b, "}", 1);
    while (!b->oom && b->len % 8) sb_put(b, " ", 1);
    return b->oom ? AVL_E_NOMEM : AVL_OK;
}

/* Writes the bytes of buf to path via path.tmp and a rename, so that a failed save never leaves
 * a half-written file under the final name. */
static avl_status write_parts(const char *path, const avl_st_writer *w, const sbuf *head, const int64_t *idx,
                              int64_t n, const sbuf *plain)
{
    size_t pl = strlen(path);
    char *tmp = avl__malloc(pl + 5);
    if (!tmp) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        avl_status rc = avl__err(AVL_E_IO, "%s: cannot write (%s): %s", path, tmp, strerror(errno));
        avl__free(tmp);
        return rc;
    }
    bool ok = true;
    if (plain) {
        ok = fwrite(plain->p, 1, plain->len, f) == plain->len;
    } else {
        unsigned char le[8];
        uint64_t hn = head->len;
        for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hn >> (8 * i));
        ok = fwrite(le, 1, 8, f) == 8 && fwrite(head->p, 1, head->len, f) == head->len;
        for (int64_t i = 0; ok && i < n; i++) {
            const wt_tensor *t = &w->t[idx[i]];
            if (t->nbytes) ok = fwrite(t->data, 1, t->nbytes, f) == t->nbytes;
        }
    }
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    avl_status rc = AVL_OK;
    if (!ok) {
        remove(tmp);
        rc = avl__err(AVL_E_IO, "%s: cannot write: %s", path, strerror(err));
    }
    avl__free(tmp);
    return rc;
}

/* Writes the tensors idx[0..n) (any order) as one file. */
static avl_status save_subset(const avl_st_writer *w, int64_t *idx, int64_t n, const char *path)
{
    sbuf head = {0};
    avl_status rc = sort_tensors(w, idx, n);
    if (!rc) rc = build_header(w, idx, n, &head);
    if (rc) rc = avl__err(AVL_E_NOMEM, "%s: out of memory building the header", path);
    else rc = write_parts(path, w, &head, idx, n, NULL);
    avl__free(head.p);
    return rc;
}

avl_status avl_st_writer_save(avl_st_writer *w, const char *path)
{
    if (!w || !path) return avl__err(AVL_E_ARG, "avl_st_writer_save: NULL argument");
    int64_t *idx = avl__malloc((size_t)w->n * sizeof *idx);
    if (!idx) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    for (int64_t i = 0; i < w->n; i++) idx[i] = i;
    avl_status rc = save_subset(w, idx, w->n, path);
    avl__free(idx);
    return rc;
}

avl_status avl_st_writer_save_sharded(avl_st_writer *w, const char *dir, size_t max_shard_bytes)
{
    if (!w || !dir) return avl__err(AVL_E_ARG, "avl_st_writer_save_sharded: NULL argument");
    if (max_shard_bytes == 0) return avl__err(AVL_E_ARG, "%s: max_shard_bytes is 0", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return avl__err(AVL_E_IO, "%s: cannot create folder: %s", dir, strerror(errno));

    /* shard[i] = the shard of tensor i, numbered in the order shards are closed. */
    int64_t *shard = avl__malloc((size_t)w->n * sizeof *shard);
    int64_t *idx = avl__malloc((size_t)w->n * sizeof *idx);
    sbuf index = {0};
    char *path = NULL;
    wt_key *keys = NULL;
    avl_status rc = AVL_OK;
    if (!shard || !idx) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    int64_t nshards = 0;
    size_t cur_bytes = 0;
    uint64_t total = 0;
    /* Shards are numbered in the order huggingface_hub appends them to its list: an oversized
     * tensor's shard comes before the shard that was open at the time. */
    int64_t open_start = -1; /* first tensor of the open shard */
    for (int64_t i = 0; i < w->n; i++) {
        size_t sz = w->t[i].nbytes;
        total += sz;
        if (sz > max_shard_bytes) {
            shard[i] = nshards++;
            continue;
        }
        if (open_start >= 0 && cur_bytes + sz > max_shard_bytes) {
            int64_t id = nshards++;
            for (int64_t j = open_start; j < i; j++)
                if (shard[j] == -1) shard[j] = id;
            open_start = -1;
        }
        if (open_start < 0) {
            open_start = i;
            cur_bytes = 0;
        }
        shard[i] = -1;
        cur_bytes += sz;
    }
    if (open_start >= 0) {
        int64_t id = nshards++;
        for (int64_t j = open_start; j < w->n; j++)
            if (shard[j] == -1) shard[j] = id;
    }
    if (nshards == 0) nshards = 1; /* no tensors: one empty shard */

    /* Write the shards. */
    size_t dl = strlen(dir);
    path = avl__malloc(dl + 64);
    if (!path) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    for (int64_t s = 0; s < nshards && !rc; s++) {
        int64_t m = 0;
        for (int64_t i = 0; i < w->n; i++)
            if (shard[i] == s) idx[m++] = i;
        snprintf(path, dl + 64, "%s%smodel-%05lld-of-%05lld.safetensors", dir,
                 dl && dir[dl - 1] == '/' ? "" : "/", (long long)s + 1, (long long)nshards);
        rc = save_subset(w, idx, m, path);
    }
    if (rc) goto done;

    /* The index, as json.dumps(index, indent=2, sort_keys=True) + "\n". */
    keys = avl__malloc((size_t)w->n * sizeof *keys);
    if (!keys) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    for (int64_t i = 0; i < w->n; i++) keys[i] = (wt_key){0, w->t[i].name, i, shard[i]};
    qsort(keys, (size_t)w->n, sizeof *keys, cmp_key);
    sb_str(&index, "{\n  \"metadata\": {\n    \"total_size\": ");
    sb_fmt_u64(&index, total);
    sb_str(&index, "\n  },\n  \"weight_map\": {");
    for (int64_t i = 0; i < w->n; i++) {
        char fname[64];
        snprintf(fname, sizeof fname, "model-%05lld-of-%05lld.safetensors", (long long)keys[i].shard + 1,
                 (long long)nshards);
        sb_str(&index, i ? ",\n    " : "\n    ");
        sb_json_python(&index, keys[i].name);
        sb_str(&index, ": ");
        sb_json_python(&index, fname);
    }
    sb_str(&index, w->n ? "\n  }\n}\n" : "}\n}\n");
    if (index.oom) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory building the index", dir);
        goto done;
    }
    snprintf(path, dl + 64, "%s%smodel.safetensors.index.json", dir, dl && dir[dl - 1] == '/' ? "" : "/");
    rc = write_parts(path, w, NULL, NULL, 0, &index);
done:
    avl__free(shard);
    avl__free(idx);
    avl__free(index.p);
    avl__free(path);
    avl__free(keys);
    return rc;
}
