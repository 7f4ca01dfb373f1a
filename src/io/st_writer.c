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
 * Writing streams: every tensor is declared first (name, dtype, shape), so each file's header,
 * offsets included, is known before its data; the bytes then go straight to the file one tensor at
 * a time in header order (avl_st_stream_*). The in-memory writer (avl_st_writer_*) keeps a copy of
 * each tensor and feeds that stream, so both produce the same bytes by construction. Each file is
 * written as <name>.tmp and renamed when complete, so a failure never leaves a half-written file
 * under the final name.
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
} st_decl;

enum { ST_DECLARING, ST_WRITING, ST_FAILED };

struct avl_st_stream {
    st_decl *t; /* (n,) in declaration order */
    int64_t n, cap;
    avl__strmap names; /* name -> declaration index (keys borrowed: t[i].name) */
    char **meta;       /* (2 * nmeta,) key, value pairs, owned */
    int64_t nmeta, metacap;
    /* the plan of the file(s) being written (ST_WRITING, ST_FAILED) */
    int state;
    bool sharded;
    char *target;       /* the file (single) or the folder (sharded) */
    int64_t nshards;
    int64_t *shard;     /* (n,) shard of each declared tensor */
    int64_t *order;     /* (n,) declaration indexes in write order: shard by shard, layout order */
    int64_t *shard_end; /* (nshards,) end of each shard's run in order */
    int64_t next;       /* position in order of the next tensor to write */
    int64_t cur;        /* the open shard (nshards once all are closed) */
    FILE *f;            /* the open shard's temporary file */
    char *path, *tmp;   /* the open shard's final and temporary paths */
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

/* ---- declaring ---- */

avl_status avl_st_stream_new(avl_st_stream **out)
{
    if (!out) return avl__err(AVL_E_ARG, "avl_st_stream_new: out is NULL");
    *out = avl__calloc(1, sizeof **out);
    if (!*out) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory");
    return avl__strmap_init(&(*out)->names, 0, AVL__STRMAP_BORROW); /* allocates nothing */
}

/* Forgets the plan of the current file(s); an unfinished temporary file is closed and removed. */
static void plan_clear(avl_st_stream *s)
{
    if (s->f) {
        fclose(s->f);
        s->f = NULL;
        if (s->tmp) remove(s->tmp);
    }
    avl__free(s->target);
    avl__free(s->shard);
    avl__free(s->order);
    avl__free(s->shard_end);
    avl__free(s->path);
    avl__free(s->tmp);
    s->target = s->path = s->tmp = NULL;
    s->shard = s->order = s->shard_end = NULL;
    s->state = ST_DECLARING;
    s->next = s->cur = s->nshards = 0;
}

void avl_st_stream_abort(avl_st_stream *s)
{
    if (s) plan_clear(s);
}

void avl_st_stream_free(avl_st_stream *s)
{
    if (!s) return;
    plan_clear(s);
    for (int64_t i = 0; i < s->n; i++) avl__free(s->t[i].name);
    avl__free(s->t);
    for (int64_t i = 0; i < 2 * s->nmeta; i++) avl__free(s->meta[i]);
    avl__free(s->meta);
    avl__strmap_free(&s->names);
    avl__free(s);
}

/* Checks a declaration; its byte size in *nbytes_out. */
static avl_status check_decl(const avl_st_stream *s, const char *name, avl_dtype dtype, int ndim,
                             const int64_t *shape, size_t *nbytes_out)
{
    char q[AVL__ST_QN], sh[256];
    avl__st_quote(name, q, sizeof q);
    if (s->state != ST_DECLARING)
        return avl__err(AVL_E_ARG, "safetensors writer: tensor '%s' declared after writing began", q);
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
        nbytes > (uint64_t)INT64_MAX || nbytes > (uint64_t)SIZE_MAX)
        return avl__err(AVL_E_ARG, "safetensors writer: tensor '%s' shape %s is too large", q,
                        avl__st_shape_str(ndim, shape, sh, sizeof sh));
    if (avl__strmap_findz(&s->names, name))
        return avl__err(AVL_E_ARG, "safetensors writer: duplicate tensor name '%s'", q);
    *nbytes_out = (size_t)nbytes;
    return AVL_OK;
}

/* Appends a checked declaration. */
static avl_status push_decl(avl_st_stream *s, const char *name, avl_dtype dtype, int ndim, const int64_t *shape,
                            size_t nbytes)
{
    char q[AVL__ST_QN];
    avl__st_quote(name, q, sizeof q);
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 16;
        st_decl *t = avl__realloc(s->t, (size_t)cap * sizeof *t);
        if (!t) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory adding '%s'", q);
        s->t = t;
        s->cap = cap;
    }
    st_decl *t = &s->t[s->n];
    memset(t, 0, sizeof *t);
    t->name = avl__strdup(name);
    avl_status rc = t->name ? avl__strmap_putz(&s->names, t->name, s->n) : AVL_E_NOMEM;
    if (rc) {
        avl__free(t->name);
        return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory adding '%s'", q);
    }
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->nbytes = nbytes;
    s->n++;
    return AVL_OK;
}

avl_status avl_st_stream_declare(avl_st_stream *s, const char *name, avl_dtype dtype, int ndim, const int64_t *shape)
{
    if (!s || !name) return avl__err(AVL_E_ARG, "avl_st_stream_declare: NULL argument");
    size_t nbytes;
    avl_status rc = check_decl(s, name, dtype, ndim, shape, &nbytes);
    return rc ? rc : push_decl(s, name, dtype, ndim, shape, nbytes);
}

avl_status avl_st_stream_set_metadata(avl_st_stream *s, const char *key, const char *value)
{
    if (!s || !key || !value) return avl__err(AVL_E_ARG, "avl_st_writer_set_metadata: NULL argument");
    if (s->state != ST_DECLARING)
        return avl__err(AVL_E_ARG, "safetensors writer: metadata set after writing began");
    if (!utf8_valid(key) || !utf8_valid(value))
        return avl__err(AVL_E_ARG, "safetensors writer: metadata key or value is not UTF-8");
    char *v = avl__strdup(value);
    if (!v) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory setting metadata");
    for (int64_t i = 0; i < s->nmeta; i++) {
        if (strcmp(s->meta[2 * i], key) == 0) {
            avl__free(s->meta[2 * i + 1]);
            s->meta[2 * i + 1] = v;
            return AVL_OK;
        }
    }
    if (s->nmeta == s->metacap) {
        int64_t cap = s->metacap ? 2 * s->metacap : 4;
        char **m = avl__realloc(s->meta, (size_t)(2 * cap) * sizeof *m);
        if (!m) {
            avl__free(v);
            return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory setting metadata");
        }
        s->meta = m;
        s->metacap = cap;
    }
    char *k = avl__strdup(key);
    if (!k) {
        avl__free(v);
        return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory setting metadata");
    }
    s->meta[2 * s->nmeta] = k;
    s->meta[2 * s->nmeta + 1] = v;
    s->nmeta++;
    return AVL_OK;
}

int64_t avl_st_stream_count(const avl_st_stream *s) { return s ? s->n : 0; }

/* ---- the layout ---- */

/* A tensor's place in the layout order, or in the index's name order. */
typedef struct {
    int rank;         /* avl__st_dtype_rank, or 0 when sorting by name only */
    const char *name;
    int64_t idx;      /* declaration index */
    int64_t shard;
} wt_key;

static int cmp_key(const void *a, const void *b)
{
    const wt_key *x = a, *y = b;
    if (x->rank != y->rank) return x->rank > y->rank ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Sorts the declaration indexes idx[0..n) into the reference layout order. */
static avl_status sort_tensors(const avl_st_stream *s, int64_t *idx, int64_t n)
{
    wt_key *k = avl__malloc((size_t)(n ? n : 1) * sizeof *k);
    if (!k) return AVL_E_NOMEM;
    for (int64_t i = 0; i < n; i++)
        k[i] = (wt_key){avl__st_dtype_rank(s->t[idx[i]].dtype), s->t[idx[i]].name, idx[i], 0};
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
static avl_status build_header(const avl_st_stream *s, const int64_t *idx, int64_t n, sbuf *b)
{
    sb_put(b, "{", 1);
    if (s->nmeta) {
        char ***keys = avl__malloc((size_t)s->nmeta * sizeof *keys);
        if (!keys) return AVL_E_NOMEM;
        for (int64_t i = 0; i < s->nmeta; i++) keys[i] = &s->meta[2 * i];
        qsort(keys, (size_t)s->nmeta, sizeof *keys, cmp_meta);
        sb_str(b, "\"__metadata__\":{");
        for (int64_t i = 0; i < s->nmeta; i++) {
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
        const st_decl *t = &s->t[idx[i]];
        if (i || s->nmeta) sb_put(b, ",", 1);
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

/* Writes len bytes to path via path.tmp and a rename (the index file). */
static avl_status write_whole(const char *path, const char *buf, size_t len)
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
    bool ok = fwrite(buf, 1, len, f) == len;
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

/* Fails the stream: the open temporary file is removed, later writes repeat the failure. */
static avl_status fail_io(avl_st_stream *s, int err)
{
    avl_status rc = avl__err(AVL_E_IO, "%s: cannot write: %s", s->path ? s->path : s->target, strerror(err));
    if (s->f) {
        fclose(s->f);
        s->f = NULL;
        remove(s->tmp);
    }
    s->state = ST_FAILED;
    return rc;
}

/* Opens shard k (path.tmp) and writes its length and header. */
static avl_status open_shard(avl_st_stream *s, int64_t k)
{
    avl__free(s->path);
    avl__free(s->tmp);
    s->path = s->tmp = NULL;
    size_t dl = strlen(s->target);
    if (!s->sharded) {
        s->path = avl__strdup(s->target);
    } else if ((s->path = avl__malloc(dl + 64))) {
        snprintf(s->path, dl + 64, "%s%smodel-%05lld-of-%05lld.safetensors", s->target,
                 dl && s->target[dl - 1] == '/' ? "" : "/", (long long)k + 1, (long long)s->nshards);
    }
    size_t pl = s->path ? strlen(s->path) : 0;
    if (s->path) s->tmp = avl__malloc(pl + 5);
    if (!s->tmp) {
        s->state = ST_FAILED;
        return avl__err(AVL_E_NOMEM, "%s: out of memory", s->path ? s->path : s->target);
    }
    memcpy(s->tmp, s->path, pl);
    memcpy(s->tmp + pl, ".tmp", 5);
    int64_t b = k ? s->shard_end[k - 1] : 0, e = s->shard_end[k];
    sbuf head = {0};
    if (build_header(s, s->order + b, e - b, &head)) {
        avl__free(head.p);
        s->state = ST_FAILED;
        return avl__err(AVL_E_NOMEM, "%s: out of memory building the header", s->path);
    }
    s->f = fopen(s->tmp, "wb");
    if (!s->f) {
        avl__free(head.p);
        s->state = ST_FAILED;
        return avl__err(AVL_E_IO, "%s: cannot write (%s): %s", s->path, s->tmp, strerror(errno));
    }
    unsigned char le[8];
    uint64_t hn = head.len;
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hn >> (8 * i));
    bool ok = fwrite(le, 1, 8, s->f) == 8 && fwrite(head.p, 1, head.len, s->f) == head.len;
    int err = errno;
    avl__free(head.p);
    return ok ? AVL_OK : fail_io(s, err);
}

/* Closes every shard whose tensors are all written (renaming it into place) and opens the next. */
static avl_status settle(avl_st_stream *s)
{
    while (s->cur < s->nshards && s->next == s->shard_end[s->cur]) {
        int err = 0;
        FILE *f = s->f;
        s->f = NULL;
        if (fclose(f) != 0) err = errno;
        else if (rename(s->tmp, s->path) != 0) err = errno;
        if (err) {
            remove(s->tmp);
            return fail_io(s, err);
        }
        s->cur++;
        if (s->cur < s->nshards) {
            avl_status rc = open_shard(s, s->cur);
            if (rc) return rc;
        }
    }
    return AVL_OK;
}

/* Plans the file(s): shard of each tensor, the write order, and opens the first file. */
static avl_status begin(avl_st_stream *s, const char *target, bool sharded, size_t max_shard_bytes)
{
    plan_clear(s);
    int64_t n = s->n;
    s->target = avl__strdup(target);
    s->shard = avl__malloc((size_t)(n ? n : 1) * sizeof *s->shard);
    s->order = avl__malloc((size_t)(n ? n : 1) * sizeof *s->order);
    s->shard_end = avl__malloc((size_t)(n ? n : 1) * sizeof *s->shard_end);
    if (!s->target || !s->shard || !s->order || !s->shard_end) {
        plan_clear(s);
        return avl__err(AVL_E_NOMEM, "%s: out of memory", target);
    }
    s->sharded = sharded;
    int64_t nshards = 0;
    if (!sharded) {
        for (int64_t i = 0; i < n; i++) s->shard[i] = 0;
        nshards = 1;
    } else {
        /* shard[i] = the shard of tensor i, numbered as huggingface_hub appends them to its
         * list: an oversized tensor's shard comes before the shard that was open at the time. */
        size_t cur_bytes = 0;
        int64_t open_start = -1; /* first tensor of the open shard */
        for (int64_t i = 0; i < n; i++) {
            size_t sz = s->t[i].nbytes;
            if (sz > max_shard_bytes) {
                s->shard[i] = nshards++;
                continue;
            }
            if (open_start >= 0 && cur_bytes + sz > max_shard_bytes) {
                int64_t id = nshards++;
                for (int64_t j = open_start; j < i; j++)
                    if (s->shard[j] == -1) s->shard[j] = id;
                open_start = -1;
            }
            if (open_start < 0) {
                open_start = i;
                cur_bytes = 0;
            }
            s->shard[i] = -1;
            cur_bytes += sz;
        }
        if (open_start >= 0) {
            int64_t id = nshards++;
            for (int64_t j = open_start; j < n; j++)
                if (s->shard[j] == -1) s->shard[j] = id;
        }
        if (nshards == 0) nshards = 1; /* no tensors: one empty shard */
    }
    s->nshards = nshards;
    /* The write order: shard by shard, each in the reference layout order. */
    int64_t m = 0;
    for (int64_t k = 0; k < nshards; k++) {
        int64_t b = m;
        for (int64_t i = 0; i < n; i++)
            if (s->shard[i] == k) s->order[m++] = i;
        if (sort_tensors(s, s->order + b, m - b)) {
            plan_clear(s);
            return avl__err(AVL_E_NOMEM, "%s: out of memory", target);
        }
        s->shard_end[k] = m;
    }
    s->state = ST_WRITING;
    s->next = s->cur = 0;
    avl_status rc = open_shard(s, 0);
    if (!rc) rc = settle(s);
    if (rc) plan_clear(s); /* keeps the error detail */
    return rc;
}

avl_status avl_st_stream_begin(avl_st_stream *s, const char *path)
{
    if (!s || !path) return avl__err(AVL_E_ARG, "avl_st_stream_begin: NULL argument");
    return begin(s, path, false, 0);
}

avl_status avl_st_stream_begin_sharded(avl_st_stream *s, const char *dir, size_t max_shard_bytes)
{
    if (!s || !dir) return avl__err(AVL_E_ARG, "avl_st_stream_begin_sharded: NULL argument");
    if (max_shard_bytes == 0) return avl__err(AVL_E_ARG, "%s: max_shard_bytes is 0", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return avl__err(AVL_E_IO, "%s: cannot create folder: %s", dir, strerror(errno));
    return begin(s, dir, true, max_shard_bytes);
}

int64_t avl_st_stream_next(const avl_st_stream *s)
{
    if (!s || s->state != ST_WRITING || s->next >= s->n) return -1;
    return s->order[s->next];
}

const char *avl_st_stream_name(const avl_st_stream *s, int64_t i)
{
    return s && i >= 0 && i < s->n ? s->t[i].name : NULL;
}

avl_status avl_st_stream_write(avl_st_stream *s, const char *name, const void *data, size_t nbytes)
{
    char q[AVL__ST_QN], q2[AVL__ST_QN];
    if (!s || !name) return avl__err(AVL_E_ARG, "avl_st_stream_write: NULL argument");
    avl__st_quote(name, q, sizeof q);
    if (s->state == ST_DECLARING)
        return avl__err(AVL_E_ARG, "safetensors writer: tensor '%s' written before avl_st_stream_begin", q);
    if (s->state == ST_FAILED)
        return avl__err(AVL_E_IO, "%s: an earlier write failed; tensor '%s' not written", s->path ? s->path : s->target, q);
    if (s->next >= s->n)
        return avl__err(AVL_E_ARG, "%s: tensor '%s' written after all %lld declared tensors", s->target, q,
                        (long long)s->n);
    const st_decl *t = &s->t[s->order[s->next]];
    if (strcmp(t->name, name) != 0) {
        const int64_t *known = avl__strmap_findz(&s->names, name);
        return avl__err(AVL_E_ARG, "%s: tensor '%s' %s; the header's next tensor is '%s'", s->path, q,
                        known ? "written out of order" : "was not declared", avl__st_quote(t->name, q2, sizeof q2));
    }
    if (nbytes != t->nbytes)
        return avl__err(AVL_E_ARG, "%s: tensor '%s' is %llu bytes (%s %s), got %llu", s->path, q,
                        (unsigned long long)t->nbytes, avl_dtype_name(t->dtype),
                        avl__st_shape_str(t->ndim, t->shape, q2, sizeof q2), (unsigned long long)nbytes);
    if (nbytes && !data) return avl__err(AVL_E_ARG, "%s: tensor '%s' has no data", s->path, q);
    if (nbytes && fwrite(data, 1, nbytes, s->f) != nbytes) return fail_io(s, errno);
    s->next++;
    return settle(s);
}

avl_status avl_st_stream_finish(avl_st_stream *s)
{
    char q[AVL__ST_QN];
    if (!s) return avl__err(AVL_E_ARG, "avl_st_stream_finish: NULL argument");
    if (s->state == ST_DECLARING) return avl__err(AVL_E_ARG, "safetensors writer: finish before avl_st_stream_begin");
    if (s->state == ST_FAILED) {
        avl_status rc = avl__err(AVL_E_IO, "%s: an earlier write failed", s->path ? s->path : s->target);
        plan_clear(s);
        return rc;
    }
    if (s->next < s->n)
        return avl__err(AVL_E_ARG, "%s: %lld of %lld tensors written; the next is '%s'", s->path, (long long)s->next,
                        (long long)s->n, avl__st_quote(s->t[s->order[s->next]].name, q, sizeof q));
    avl_status rc = AVL_OK;
    if (s->sharded) {
        /* The index, as json.dumps(index, indent=2, sort_keys=True) + "\n". */
        sbuf index = {0};
        uint64_t total = 0;
        wt_key *keys = avl__malloc((size_t)(s->n ? s->n : 1) * sizeof *keys);
        size_t dl = strlen(s->target);
        char *path = avl__malloc(dl + 64);
        if (!keys || !path) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", s->target);
        } else {
            for (int64_t i = 0; i < s->n; i++) {
                keys[i] = (wt_key){0, s->t[i].name, i, s->shard[i]};
                total += s->t[i].nbytes;
            }
            qsort(keys, (size_t)s->n, sizeof *keys, cmp_key);
            sb_str(&index, "{\n  \"metadata\": {\n    \"total_size\": ");
            sb_fmt_u64(&index, total);
            sb_str(&index, "\n  },\n  \"weight_map\": {");
            for (int64_t i = 0; i < s->n; i++) {
                char fname[64];
                snprintf(fname, sizeof fname, "model-%05lld-of-%05lld.safetensors", (long long)keys[i].shard + 1,
                         (long long)s->nshards);
                sb_str(&index, i ? ",\n    " : "\n    ");
                sb_json_python(&index, keys[i].name);
                sb_str(&index, ": ");
                sb_json_python(&index, fname);
            }
            sb_str(&index, s->n ? "\n  }\n}\n" : "}\n}\n");
            snprintf(path, dl + 64, "%s%smodel.safetensors.index.json", s->target,
                     dl && s->target[dl - 1] == '/' ? "" : "/");
            if (index.oom) rc = avl__err(AVL_E_NOMEM, "%s: out of memory building the index", s->target);
            else rc = write_whole(path, index.p, index.len);
        }
        avl__free(index.p);
        avl__free(keys);
        avl__free(path);
    }
    plan_clear(s);
    return rc;
}

/* ---- the in-memory writer: declarations in a stream, plus a copy of each tensor's bytes ---- */

struct avl_st_writer {
    avl_st_stream *s;
    void **data; /* (cap,) our copy of tensor i's bytes, by declaration index */
    int64_t cap;
};

avl_status avl_st_writer_new(avl_st_writer **out)
{
    if (!out) return avl__err(AVL_E_ARG, "avl_st_writer_new: out is NULL");
    *out = avl__calloc(1, sizeof **out);
    if (!*out) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory");
    avl_status rc = avl_st_stream_new(&(*out)->s);
    if (rc) {
        avl__free(*out);
        *out = NULL;
    }
    return rc;
}

void avl_st_writer_free(avl_st_writer *w)
{
    if (!w) return;
    for (int64_t i = 0; i < avl_st_stream_count(w->s); i++) avl__free(w->data[i]);
    avl__free(w->data);
    avl_st_stream_free(w->s);
    avl__free(w);
}

avl_status avl_st_writer_add(avl_st_writer *w, const char *name, avl_dtype dtype, int ndim,
                             const int64_t *shape, const void *data)
{
    if (!w || !name) return avl__err(AVL_E_ARG, "avl_st_writer_add: NULL argument");
    size_t nbytes;
    avl_status rc = check_decl(w->s, name, dtype, ndim, shape, &nbytes);
    if (rc) return rc;
    char q[AVL__ST_QN];
    avl__st_quote(name, q, sizeof q);
    if (nbytes && !data) return avl__err(AVL_E_ARG, "safetensors writer: tensor '%s' has no data", q);
    if (w->s->n == w->cap) {
        int64_t cap = w->cap ? 2 * w->cap : 16;
        void **d = avl__realloc(w->data, (size_t)cap * sizeof *d);
        if (!d) return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory adding '%s'", q);
        w->data = d;
        w->cap = cap;
    }
    void *copy = avl__malloc(nbytes ? nbytes : 1);
    if (!copy)
        return avl__err(AVL_E_NOMEM, "safetensors writer: out of memory adding '%s' (%llu bytes)", q,
                        (unsigned long long)nbytes);
    if (nbytes) memcpy(copy, data, nbytes);
    if ((rc = push_decl(w->s, name, dtype, ndim, shape, nbytes))) {
        avl__free(copy);
        return rc;
    }
    w->data[w->s->n - 1] = copy;
    return AVL_OK;
}

avl_status avl_st_writer_set_metadata(avl_st_writer *w, const char *key, const char *value)
{
    if (!w) return avl__err(AVL_E_ARG, "avl_st_writer_set_metadata: NULL argument");
    return avl_st_stream_set_metadata(w->s, key, value);
}

/* Streams every tensor in the order the begun stream asks for, then finishes. */
static avl_status write_all(avl_st_writer *w, avl_status rc)
{
    int64_t i;
    while (!rc && (i = avl_st_stream_next(w->s)) >= 0)
        rc = avl_st_stream_write(w->s, w->s->t[i].name, w->data[i], w->s->t[i].nbytes);
    if (!rc) rc = avl_st_stream_finish(w->s);
    avl_st_stream_abort(w->s); /* after a failure: removes the temporary file; else a no-op */
    return rc;
}

avl_status avl_st_writer_save(avl_st_writer *w, const char *path)
{
    if (!w || !path) return avl__err(AVL_E_ARG, "avl_st_writer_save: NULL argument");
    return write_all(w, avl_st_stream_begin(w->s, path));
}

avl_status avl_st_writer_save_sharded(avl_st_writer *w, const char *dir, size_t max_shard_bytes)
{
    if (!w || !dir) return avl__err(AVL_E_ARG, "avl_st_writer_save_sharded: NULL argument");
    return write_all(w, avl_st_stream_begin_sharded(w->s, dir, max_shard_bytes));
}
