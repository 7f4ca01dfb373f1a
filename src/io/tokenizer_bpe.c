/* src/io/tokenizer_bpe.c: byte-pair encoding of pre-tokens, the encode/decode entry points.
 *
 * The merge loop follows Hugging Face tokenizers' models/bpe/word.rs (Word::merge_all): a
 * min-heap of candidate merges ordered by (rank, position), entries checked for staleness when
 * popped, symbols kept in a doubly linked list over an array. Equal ranks resolve leftmost
 * first, which is also what the JS port's fractional position bias does.
 *
 * A cache maps pre-token bytes to their ids (most words repeat); it is shared by threads under
 * a mutex and emptied when it grows past a bound. Pre-tokens longer than 256 bytes are not
 * cached (the JS port draws the same line).
 */
#include <string.h>

#include "base/internal.h"
#include "io/tokenizer_internal.h"

#define CACHE_MAX_KEY 256
#define CACHE_MAX_ENTRIES 65536

/* ---- growable id list ---- */
typedef struct {
    int32_t *v;
    int64_t n, cap;
} idvec;

static avl_status idvec_push(idvec *a, int32_t id)
{
    if (a->n == a->cap) {
        int64_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *p = avl__realloc(a->v, (size_t)cap * sizeof *p);
        if (!p) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory for %lld ids", (long long)cap);
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return AVL_OK;
}

/* ---- merge heap ---- */
typedef struct {
    int32_t rank, pos;
} cand;

static inline bool cand_less(cand a, cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(cand *h, int64_t *n, cand c)
{
    int64_t i = (*n)++;
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!cand_less(c, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, int64_t *n)
{
    cand top = h[0], last = h[--(*n)];
    int64_t i = 0;
    for (;;) {
        int64_t l = 2 * i + 1;
        if (l >= *n) break;
        int64_t m = (l + 1 < *n && cand_less(h[l + 1], h[l])) ? l + 1 : l;
        if (!cand_less(h[m], last)) break;
        h[i] = h[m];
        i = m;
    }
    if (*n > 0) h[i] = last;
    return top;
}

/* Initial symbols of a piece: one per byte (byte-level) or per code point, each its vocabulary
 * id; a symbol missing from the vocabulary becomes <0xXX> tokens (byte_fallback), the unknown
 * token, or nothing (HF drops it when there is no unk_token). */
static avl_status initial_symbols(const avl_tokenizer *tok, const uint8_t *s, size_t len, idvec *out)
{
    avl_status rc;
    if (tok->byte_level) {
        for (size_t i = 0; i < len; i++) {
            int32_t id = tok->byte_id[s[i]];
            if (id < 0) id = tok->byte_fallback ? tok->fallback_id[s[i]] : tok->unk_id;
            if (id >= 0 && (rc = idvec_push(out, id))) return rc;
        }
        return AVL_OK;
    }
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = (size_t)avl__utf8_decode(s + i, len - i, &cp);
        int32_t id = avl__strmap_get(&tok->vocab, (const char *)s + i, k, -1);
        if (id >= 0) {
            if ((rc = idvec_push(out, id))) return rc;
        } else if (tok->byte_fallback) {
            for (size_t j = 0; j < k; j++) {
                int32_t b = tok->fallback_id[s[i + j]];
                if (b < 0) b = tok->unk_id;
                if (b >= 0 && (rc = idvec_push(out, b))) return rc;
            }
        } else if (tok->unk_id >= 0) {
            if ((rc = idvec_push(out, tok->unk_id))) return rc;
        }
        i += k;
    }
    return AVL_OK;
}

/* Merges sym[0..n) in place (by merge rank, leftmost first); returns the new count. */
static avl_status merge_all(const avl_tokenizer *tok, int32_t *sym, int64_t n, int64_t *n_out)
{
    if (n < 2) {
        *n_out = n;
        return AVL_OK;
    }
    /* small pieces (nearly all) use the stack */
    enum { SMALL = 64 };
    int32_t next_s[SMALL], prev_s[SMALL];
    cand heap_s[SMALL * 3];
    int32_t *next = next_s, *prev = prev_s;
    cand *heap = heap_s;
    /* each merge pushes at most 2 candidates: the heap never holds more than 3n */
    if (n > SMALL) {
        next = avl__malloc((size_t)n * sizeof *next);
        prev = avl__malloc((size_t)n * sizeof *prev);
        heap = avl__malloc((size_t)n * 3 * sizeof *heap);
        if (!next || !prev || !heap) {
            avl__free(next);
            avl__free(prev);
            avl__free(heap);
            return avl__err(AVL_E_NOMEM, "tokenizer: out of memory merging %lld symbols", (long long)n);
        }
    }
    int64_t hn = 0;
    for (int64_t i = 0; i < n; i++) {
        next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        prev[i] = (int32_t)i - 1;
        if (i + 1 < n) {
            const avl__pairmap_slot *m = avl__pairmap_get(&tok->merges, sym[i], sym[i + 1]);
            if (m) heap_push(heap, &hn, (cand){m->rank, (int32_t)i});
        }
    }
    while (hn > 0) {
        cand c = heap_pop(heap, &hn);
        int32_t p = c.pos, q = next[p];
        if (sym[p] < 0 || q < 0) continue;
        const avl__pairmap_slot *m = avl__pairmap_get(&tok->merges, sym[p], sym[q]);
        if (!m || m->rank != c.rank) continue; /* stale: a neighbour has changed since */
        sym[p] = m->merged;
        sym[q] = -1;
        next[p] = next[q];
        if (next[p] >= 0) prev[next[p]] = p;
        if (prev[p] >= 0) {
            const avl__pairmap_slot *l = avl__pairmap_get(&tok->merges, sym[prev[p]], sym[p]);
            if (l) heap_push(heap, &hn, (cand){l->rank, prev[p]});
        }
        if (next[p] >= 0) {
            const avl__pairmap_slot *r = avl__pairmap_get(&tok->merges, sym[p], sym[next[p]]);
            if (r) heap_push(heap, &hn, (cand){r->rank, p});
        }
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (sym[i] >= 0) sym[k++] = sym[i];
    if (next != next_s) {
        avl__free(next);
        avl__free(prev);
        avl__free(heap);
    }
    *n_out = k;
    return AVL_OK;
}

/* ---- cache ---- */

static bool cache_lookup(avl_tokenizer *tok, const char *s, size_t len, idvec *out, avl_status *rc)
{
    *rc = AVL_OK;
    pthread_mutex_lock(&tok->mu);
    int32_t off = avl__strmap_get(&tok->cache, s, len, -1);
    if (off >= 0) {
        int32_t cnt = tok->cache_ids[off];
        for (int32_t i = 0; i < cnt && !*rc; i++) *rc = idvec_push(out, tok->cache_ids[off + 1 + i]);
    }
    pthread_mutex_unlock(&tok->mu);
    return off >= 0;
}

/* Best effort: a failed allocation only means the entry is not cached. */
static void cache_store(avl_tokenizer *tok, const char *s, size_t len, const int32_t *ids, int64_t n)
{
    pthread_mutex_lock(&tok->mu);
    if (tok->cache.count >= CACHE_MAX_ENTRIES) {
        avl__strmap_clear(&tok->cache);
        tok->cache_keys_len = tok->cache_ids_len = 0;
    }
    if (avl__strmap_get(&tok->cache, s, len, -1) >= 0) goto out;
    if (tok->cache_keys_len + len > tok->cache_keys_cap || tok->cache_ids_len + (size_t)n + 1 > tok->cache_ids_cap) {
        /* the map holds pointers into cache_keys: never move it, start over instead */
        if (!tok->cache_keys) {
            tok->cache_keys_cap = (size_t)CACHE_MAX_ENTRIES * 24;
            tok->cache_ids_cap = (size_t)CACHE_MAX_ENTRIES * 8;
            tok->cache_keys = avl__malloc(tok->cache_keys_cap);
            tok->cache_ids = avl__malloc(tok->cache_ids_cap * sizeof *tok->cache_ids);
            if (!tok->cache_keys || !tok->cache_ids) {
                avl__free(tok->cache_keys);
                avl__free(tok->cache_ids);
                tok->cache_keys = NULL;
                tok->cache_ids = NULL;
                tok->cache_keys_cap = tok->cache_ids_cap = 0;
                goto out;
            }
        }
        avl__strmap_clear(&tok->cache);
        tok->cache_keys_len = tok->cache_ids_len = 0;
        if (len > tok->cache_keys_cap || (size_t)n + 1 > tok->cache_ids_cap) goto out;
    }
    char *k = tok->cache_keys + tok->cache_keys_len;
    memcpy(k, s, len);
    size_t off = tok->cache_ids_len;
    if (avl__strmap_put(&tok->cache, k, (int64_t)len, (int64_t)off)) goto out;
    tok->cache_keys_len += len;
    tok->cache_ids[off] = (int32_t)n;
    memcpy(tok->cache_ids + off + 1, ids, (size_t)n * sizeof *ids);
    tok->cache_ids_len += (size_t)n + 1;
out:
    pthread_mutex_unlock(&tok->mu);
}

/* ---- encode ---- */

typedef struct {
    const avl_tokenizer *tok;
    idvec out;
} enc_ctx;

static avl_status enc_id(void *user, int32_t id) { return idvec_push(&((enc_ctx *)user)->out, id); }

static avl_status enc_piece(void *user, const char *s, size_t len)
{
    enc_ctx *c = user;
    const avl_tokenizer *tok = c->tok;
    avl_tokenizer *mut = (avl_tokenizer *)tok; /* only the mutex-guarded cache changes */
    avl_status rc;
    bool cacheable = len <= CACHE_MAX_KEY;
    if (cacheable && cache_lookup(mut, s, len, &c->out, &rc)) return rc;

    if (tok->ignore_merges) {
        /* the whole piece is a token: take it without merging (HF BPE ignore_merges) */
        int32_t id = -1;
        if (tok->byte_level && len <= CACHE_MAX_KEY) {
            char buf[CACHE_MAX_KEY * 2];
            size_t o = 0;
            for (size_t i = 0; i < len; i++) {
                uint16_t cp = avl__byte_to_cp[(uint8_t)s[i]];
                if (cp < 0x80) buf[o++] = (char)cp;
                else {
                    buf[o++] = (char)(0xC0 | (cp >> 6));
                    buf[o++] = (char)(0x80 | (cp & 0x3F));
                }
            }
            id = avl__strmap_get(&tok->vocab, buf, o, -1);
        } else if (!tok->byte_level) {
            id = avl__strmap_get(&tok->vocab, s, len, -1);
        }
        if (id >= 0) return idvec_push(&c->out, id);
    }

    int64_t start = c->out.n;
    if ((rc = initial_symbols(tok, (const uint8_t *)s, len, &c->out))) return rc;
    if (c->out.n == start) return AVL_OK; /* nothing of the piece is in the vocabulary */
    int64_t k = 0;
    if ((rc = merge_all(tok, c->out.v + start, c->out.n - start, &k))) return rc;
    c->out.n = start + k;
    if (cacheable) cache_store(mut, s, len, c->out.v + start, k);
    return AVL_OK;
}

avl_status avl_tokenizer_encode(const avl_tokenizer *tok, const char *utf8, size_t len,
                                int32_t **ids, int64_t *n)
{
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!tok || !ids || !n || (!utf8 && len)) return avl__err(AVL_E_ARG, "avl_tokenizer_encode: NULL argument");
    char *fixed;
    size_t flen;
    avl_status rc = avl__utf8_repair(utf8 ? utf8 : "", len, &fixed, &flen);
    if (rc) return rc;
    enc_ctx c = {.tok = tok};
    rc = avl__pretokenize(tok, fixed ? fixed : (utf8 ? utf8 : ""), flen, enc_piece, enc_id, &c);
    avl__free(fixed);
    if (rc) {
        avl__free(c.out.v);
        return rc;
    }
    if (!c.out.v) {
        c.out.v = avl__malloc(sizeof(int32_t));
        if (!c.out.v) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory");
    }
    *ids = c.out.v;
    *n = c.out.n;
    return AVL_OK;
}

/* ---- decode ---- */

typedef struct {
    char *v;
    size_t n, cap;
} bytes;

static avl_status bytes_put(bytes *b, const void *p, size_t k)
{
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + k + 1) cap *= 2;
        char *q = avl__realloc(b->v, cap);
        if (!q) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory decoding");
        b->v = q;
        b->cap = cap;
    }
    memcpy(b->v + b->n, p, k);
    b->n += k;
    b->v[b->n] = '\0';
    return AVL_OK;
}

/* Appends the bytes of run (raw decoder output) to out, repairing invalid UTF-8 (Rust's
 * String::from_utf8_lossy, applied by HF to each run of non-added tokens). */
static avl_status flush_run(bytes *run, bytes *out)
{
    if (!run->n) return AVL_OK;
    char *fixed;
    size_t flen;
    avl_status rc = avl__utf8_repair(run->v, run->n, &fixed, &flen);
    if (!rc) rc = bytes_put(out, fixed ? fixed : run->v, flen);
    avl__free(fixed);
    run->n = 0;
    return rc;
}

/* One model token's bytes under the ByteLevel decoder: every character maps back to its byte;
 * a token with a character outside the alphabet passes through as its UTF-8 (as HF does). */
static avl_status byte_level_token(const char *t, size_t len, bytes *run)
{
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += (size_t)avl__utf8_decode((const uint8_t *)t + i, len - i, &cp);
        if (avl__cp_to_byte(cp) < 0) return bytes_put(run, t, len);
    }
    char buf[256];
    size_t o = 0;
    avl_status rc = AVL_OK;
    for (size_t i = 0; i < len && !rc;) {
        uint32_t cp;
        i += (size_t)avl__utf8_decode((const uint8_t *)t + i, len - i, &cp);
        buf[o++] = (char)avl__cp_to_byte(cp);
        if (o == sizeof buf) {
            rc = bytes_put(run, buf, o);
            o = 0;
        }
    }
    return rc ? rc : bytes_put(run, buf, o);
}

avl_status avl_tokenizer_decode(const avl_tokenizer *tok, const int32_t *ids, int64_t n,
                                bool skip_special, char **out, size_t *len)
{
    if (out) *out = NULL;
    if (len) *len = 0;
    if (!tok || !out || (!ids && n) || n < 0) return avl__err(AVL_E_ARG, "avl_tokenizer_decode: bad argument");
    bytes res = {0}, run = {0};
    avl_status rc = bytes_put(&res, "", 0);
    for (int64_t i = 0; i < n && !rc; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= tok->n_ids || !tok->id_kind[id]) {
            rc = avl__err(AVL_E_ARG, "decode: id %d at position %lld is not in the vocabulary (%d ids)",
                          id, (long long)i, tok->n_ids);
            break;
        }
        uint8_t kind = tok->id_kind[id];
        if (kind >= 2) {
            if ((rc = flush_run(&run, &res))) break;
            if (kind == 3 && skip_special) continue;
            rc = bytes_put(&res, tok->id_str[id], tok->id_len[id]);
        } else if (tok->decoder_byte_level) {
            rc = byte_level_token(tok->id_str[id], tok->id_len[id], &run);
        } else {
            rc = bytes_put(&run, tok->id_str[id], tok->id_len[id]);
        }
    }
    if (!rc) rc = flush_run(&run, &res);
    avl__free(run.v);
    if (rc) {
        avl__free(res.v);
        return rc;
    }
    *out = res.v;
    if (len) *len = res.n;
    return AVL_OK;
}

/* ---- lookups ---- */

avl_status avl_tokenizer_token_id(const avl_tokenizer *tok, const char *token, int32_t *id)
{
    if (!tok || !token || !id) return avl__err(AVL_E_ARG, "avl_tokenizer_token_id: NULL argument");
    uint32_t len = (uint32_t)strlen(token);
    int32_t v = avl__strmap_get(&tok->added_map, token, len, -1);
    if (v < 0) v = avl__strmap_get(&tok->vocab, token, len, -1);
    if (v < 0) return avl__err(AVL_E_NOTFOUND, "%s: no token '%s'", tok->path, token);
    *id = v;
    return AVL_OK;
}

const char *avl_tokenizer_id_to_token(const avl_tokenizer *tok, int32_t id)
{
    if (!tok || id < 0 || id >= tok->n_ids) return NULL;
    return tok->id_str[id];
}

int64_t avl_tokenizer_vocab_size(const avl_tokenizer *tok) { return tok ? tok->n_ids : 0; }

bool avl_tokenizer_is_added(const avl_tokenizer *tok, int32_t id)
{
    return tok && id >= 0 && id < tok->n_ids && tok->id_kind[id] >= 2;
}

void avl_tokenizer_free_mem(void *p) { avl__free(p); }
