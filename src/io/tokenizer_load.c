/* src/io/tokenizer_load.c: reads a Hugging Face tokenizer into struct avl_tokenizer.
 *
 * Two inputs: tokenizer.json (the "tokenizers" serialisation: normalizer, pre_tokenizer,
 * model {type BPE, vocab, merges, ...}, added_tokens, decoder), or the older pair vocab.json +
 * merges.txt with added tokens from tokenizer_config.json "added_tokens_decoder" (or
 * added_tokens.json), for which Qwen2's normaliser (NFC) and Split regex are assumed.
 *
 * Only what byte-level BPE tokenizers use is accepted; anything else is AVL_E_UNSUPPORTED
 * with the key named, so that a tokenizer is never silently run with a different pipeline.
 * Both merge spellings are read: "a b" strings (tokenizers < 0.20) and ["a", "b"] pairs.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/internal.h"
#include "base/json.h"
#include "io/tokenizer_internal.h"

/* Ids beyond this are refused: a vocabulary of 16M entries is not a tokenizer we know, and a
 * bound keeps a hostile file from asking for gigabytes. */
#define MAX_ID (1 << 24)

/* transformers' tokenization_qwen2.py PRETOKENIZE_REGEX, used only for vocab.json + merges.txt
 * (tokenizer.json carries its own pattern, which is read from the file). */
static const char QWEN2_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* GPT-2's pattern, for a ByteLevel pre-tokeniser with use_regex true. */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void avl_tokenizer_free(avl_tokenizer *tok)
{
    if (!tok) return;
    avl__free(tok->path);
    avl__free(tok->id_str);
    avl__free(tok->id_len);
    avl__free(tok->id_kind);
    avl__strmap_free(&tok->vocab);
    avl__strmap_free(&tok->added_map);
    avl__pairmap_free(&tok->merges);
    for (int64_t i = 0; i < tok->n_added; i++) avl__free(tok->added[i].content);
    avl__free(tok->added);
    pcre2_code_free(tok->re);
    avl__strmap_free(&tok->cache);
    avl__free(tok->cache_keys);
    avl__free(tok->cache_ids);
    pthread_mutex_destroy(&tok->mu);
    avl__free(tok->vocab_arena);
    avl__free(tok);
}

static avl_status tok_new(const char *path, avl_tokenizer **out)
{
    avl_tokenizer *tok = avl__calloc(1, sizeof *tok);
    if (!tok) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    pthread_mutex_init(&tok->mu, NULL);
    tok->unk_id = -1;
    tok->path = avl__strdup(path);
    if (!tok->path || avl__strmap_init(&tok->cache, 1024, AVL__STRMAP_BORROW)) {
        avl_tokenizer_free(tok);
        return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    }
    *out = tok;
    return AVL_OK;
}

avl_status avl__tok_compile_regex(avl_tokenizer *tok, const char *pattern, const char *what)
{
    int err;
    PCRE2_SIZE off;
    tok->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!tok->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return avl__err(AVL_E_FORMAT, "%s: %s regex does not compile at offset %zu: %s", tok->path, what,
                        (size_t)off, (const char *)msg);
    }
    tok->re_jit = pcre2_jit_compile(tok->re, PCRE2_JIT_COMPLETE) == 0;
    return AVL_OK;
}

/* ---- vocabulary and added tokens -> id tables ---- */

typedef struct {
    const char *s;
    uint32_t len;
    int32_t id;
} vocab_entry;

/* Fills id tables and maps from the vocabulary entries and tok->added. */
static avl_status build_ids(avl_tokenizer *tok, const vocab_entry *v, int64_t nv)
{
    int64_t max_id = -1;
    size_t bytes = 0;
    for (int64_t i = 0; i < nv; i++) {
        if (v[i].id > max_id) max_id = v[i].id;
        bytes += v[i].len + 1;
    }
    for (int64_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].id > max_id) max_id = tok->added[i].id;
    tok->n_ids = (int32_t)(max_id + 1);
    size_t n = tok->n_ids ? (size_t)tok->n_ids : 1;
    tok->id_str = avl__calloc(n, sizeof *tok->id_str);
    tok->id_len = avl__calloc(n, sizeof *tok->id_len);
    tok->id_kind = avl__calloc(n, 1);
    tok->vocab_arena = avl__malloc(bytes + 1);
    if (!tok->id_str || !tok->id_len || !tok->id_kind || !tok->vocab_arena)
        return avl__err(AVL_E_NOMEM, "%s: out of memory for %d ids", tok->path, tok->n_ids);
    avl_status rc = avl__strmap_init(&tok->vocab, nv, AVL__STRMAP_BORROW);
    if (!rc) rc = avl__strmap_init(&tok->added_map, tok->n_added, AVL__STRMAP_BORROW);
    if (rc) return rc;
    char *a = tok->vocab_arena;
    for (int64_t i = 0; i < nv; i++) {
        memcpy(a, v[i].s, v[i].len);
        a[v[i].len] = '\0';
        if ((rc = avl__strmap_put(&tok->vocab, a, v[i].len, v[i].id))) return rc;
        if (!tok->id_kind[v[i].id]) {
            tok->id_str[v[i].id] = a;
            tok->id_len[v[i].id] = v[i].len;
            tok->id_kind[v[i].id] = 1;
        }
        a += v[i].len + 1;
    }
    for (int64_t i = 0; i < tok->n_added; i++) {
        avl__added_token *t = &tok->added[i];
        if ((rc = avl__strmap_put(&tok->added_map, t->content, t->len, t->id))) return rc;
        tok->id_str[t->id] = t->content;
        tok->id_len[t->id] = t->len;
        tok->id_kind[t->id] = t->special ? 3 : 2;
        tok->added_first[(uint8_t)t->content[0]] = 1;
        if (t->normalized) tok->has_norm_added = true;
        else tok->has_raw_added = true;
    }
    /* single-byte tokens of the byte-level alphabet, and <0xXX> for byte_fallback */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        uint16_t cp = avl__byte_to_cp[b];
        uint32_t k;
        if (cp < 0x80) {
            buf[0] = (char)cp;
            k = 1;
        } else {
            buf[0] = (char)(0xC0 | (cp >> 6));
            buf[1] = (char)(0x80 | (cp & 0x3F));
            k = 2;
        }
        tok->byte_id[b] = avl__strmap_get(&tok->vocab, buf, k, -1);
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        tok->fallback_id[b] = avl__strmap_get(&tok->vocab, buf, 6, -1);
    }
    return AVL_OK;
}

static int cmp_added_len(const void *x, const void *y)
{
    const avl__added_token *a = x, *b = y;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Adds one added token (content copied). */
static avl_status add_added(avl_tokenizer *tok, int64_t cap, const char *content, int64_t id, bool special,
                            bool single_word, bool lstrip, bool rstrip, bool normalized, const char *where)
{
    if (!content || !content[0])
        return avl__err(AVL_E_FORMAT, "%s: %s: added token has no content", tok->path, where);
    if (id < 0 || id >= MAX_ID)
        return avl__err(AVL_E_FORMAT, "%s: %s: added token '%s' has id %lld outside [0, %d)", tok->path, where,
                        content, (long long)id, MAX_ID);
    if (tok->n_added >= cap) return avl__err(AVL_E_INTERNAL, "%s: too many added tokens", tok->path);
    avl__added_token *t = &tok->added[tok->n_added];
    t->content = avl__strdup(content);
    if (!t->content) return avl__err(AVL_E_NOMEM, "%s: out of memory", tok->path);
    t->len = (uint32_t)strlen(content);
    t->id = (int32_t)id;
    t->special = special;
    t->single_word = single_word;
    t->lstrip = lstrip;
    t->rstrip = rstrip;
    t->normalized = normalized;
    tok->n_added++;
    return AVL_OK;
}

static bool jbool(json_t *o, const char *key, bool dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* ---- merges ---- */

typedef struct {
    char *buf;
    size_t cap;
} scratch;

static avl_status add_merge(avl_tokenizer *tok, scratch *sc, int64_t rank, const char *a, size_t alen,
                            const char *b, size_t blen)
{
    int32_t ia = avl__strmap_get(&tok->vocab, a, alen, -1);
    int32_t ib = avl__strmap_get(&tok->vocab, b, blen, -1);
    if (alen + blen + 1 > sc->cap) {
        size_t cap = (alen + blen + 1) * 2;
        char *p = avl__realloc(sc->buf, cap);
        if (!p) return avl__err(AVL_E_NOMEM, "%s: out of memory", tok->path);
        sc->buf = p;
        sc->cap = cap;
    }
    memcpy(sc->buf, a, alen);
    memcpy(sc->buf + alen, b, blen);
    sc->buf[alen + blen] = '\0';
    int32_t im = avl__strmap_get(&tok->vocab, sc->buf, alen + blen, -1);
    if (ia < 0 || ib < 0 || im < 0) {
        const char *which = ia < 0 ? a : ib < 0 ? b : sc->buf;
        int wl = (int)(ia < 0 ? alen : ib < 0 ? blen : alen + blen);
        return avl__err(AVL_E_FORMAT, "%s: merge %lld ('%.*s' '%.*s') names '%.*s', which is not in model.vocab",
                        tok->path, (long long)rank, (int)alen, a, (int)blen, b, wl, which);
    }
    if (rank >= INT32_MAX) return avl__err(AVL_E_FORMAT, "%s: too many merges", tok->path);
    return avl__pairmap_put(&tok->merges, ia, ib, (int32_t)rank, im);
}

/* Splits "a b" at its single space (HF rejects any other number of parts). */
static avl_status add_merge_string(avl_tokenizer *tok, scratch *sc, int64_t rank, const char *s, size_t len,
                                   const char *where)
{
    const char *sp = memchr(s, ' ', len);
    if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s)))
        return avl__err(AVL_E_FORMAT, "%s: %s %lld ('%.*s') is not two tokens separated by one space", tok->path,
                        where, (long long)rank, (int)(len > 80 ? 80 : len), s);
    return add_merge(tok, sc, rank, s, (size_t)(sp - s), sp + 1, len - (size_t)(sp - s) - 1);
}

static avl_status read_json_merges(avl_tokenizer *tok, json_t *merges)
{
    if (!merges || json_is_null(merges)) return avl__pairmap_init(&tok->merges, 16);
    if (!json_is_array(merges)) return avl__err(AVL_E_FORMAT, "%s: model.merges is not an array", tok->path);
    size_t n = json_array_size(merges);
    avl_status rc = avl__pairmap_init(&tok->merges, n);
    if (rc) return rc;
    scratch sc = {0};
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) {
            rc = add_merge_string(tok, &sc, (int64_t)i, json_string_value(m), json_string_length(m), "merge");
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            rc = add_merge(tok, &sc, (int64_t)i, json_string_value(a), json_string_length(a), json_string_value(b),
                           json_string_length(b));
        } else {
            rc = avl__err(AVL_E_FORMAT, "%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", tok->path, i);
        }
    }
    tok->n_merges = (int64_t)n;
    avl__free(sc.buf);
    return rc;
}

/* ---- vocab object -> entries ---- */

static avl_status read_vocab(avl_tokenizer *tok, json_t *vocab, const char *key, vocab_entry **out, int64_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!vocab) return avl__err(AVL_E_FORMAT, "%s: %s is missing", tok->path, key);
    if (!json_is_object(vocab)) return avl__err(AVL_E_FORMAT, "%s: %s is not an object", tok->path, key);
    size_t n = json_object_size(vocab);
    vocab_entry *v = avl__malloc((n ? n : 1) * sizeof *v);
    if (!v) return avl__err(AVL_E_NOMEM, "%s: out of memory for %zu tokens", tok->path, n);
    int64_t k = 0;
    const char *name;
    json_t *val;
    void *iter = json_object_iter(vocab);
    while (iter) {
        name = json_object_iter_key(iter);
        val = json_object_iter_value(iter);
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= MAX_ID) {
            avl__free(v);
            return avl__err(AVL_E_FORMAT, "%s: %s['%s'] is not an id in [0, %d)", tok->path, key, name, MAX_ID);
        }
        v[k].s = name;
        v[k].len = (uint32_t)strlen(name);
        v[k].id = (int32_t)json_integer_value(val);
        k++;
        iter = json_object_iter_next(vocab, iter);
    }
    *out = v;
    *nout = k;
    return AVL_OK;
}

/* ---- tokenizer.json sections ---- */

static const char *jtype(json_t *o)
{
    const char *t = json_string_value(json_object_get(o, "type"));
    return t ? t : "";
}

static avl_status read_normalizer(avl_tokenizer *tok, json_t *n)
{
    if (!n || json_is_null(n)) return AVL_OK;
    const char *t = jtype(n);
    if (!strcmp(t, "NFC")) {
        tok->nfc = true;
        return AVL_OK;
    }
    if (!strcmp(t, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list)) return avl__err(AVL_E_FORMAT, "%s: normalizer.normalizers is not an array", tok->path);
        for (size_t i = 0; i < json_array_size(list); i++) {
            avl_status rc = read_normalizer(tok, json_array_get(list, i));
            if (rc) return rc;
        }
        return AVL_OK;
    }
    return avl__err(AVL_E_UNSUPPORTED, "%s: normalizer type '%s' is not supported (only NFC)", tok->path, t);
}

typedef struct {
    bool have_split, byte_level_regex;
} pretok_seen;

static avl_status read_pretok(avl_tokenizer *tok, json_t *p, pretok_seen *seen)
{
    if (!p || json_is_null(p)) return AVL_OK;
    const char *t = jtype(p);
    if (!strcmp(t, "Sequence")) {
        json_t *list = json_object_get(p, "pretokenizers");
        if (!json_is_array(list)) return avl__err(AVL_E_FORMAT, "%s: pre_tokenizer.pretokenizers is not an array", tok->path);
        for (size_t i = 0; i < json_array_size(list); i++) {
            avl_status rc = read_pretok(tok, json_array_get(list, i), seen);
            if (rc) return rc;
        }
        return AVL_OK;
    }
    if (!strcmp(t, "ByteLevel")) {
        if (tok->byte_level) return avl__err(AVL_E_UNSUPPORTED, "%s: two ByteLevel pre-tokenizers", tok->path);
        tok->byte_level = true;
        tok->add_prefix_space = jbool(p, "add_prefix_space", false);
        seen->byte_level_regex = jbool(p, "use_regex", true);
        return AVL_OK;
    }
    if (!strcmp(t, "Split")) {
        if (seen->have_split) return avl__err(AVL_E_UNSUPPORTED, "%s: more than one Split pre-tokenizer", tok->path);
        seen->have_split = true;
        const char *beh = json_string_value(json_object_get(p, "behavior"));
        if (!beh || strcmp(beh, "Isolated") || jbool(p, "invert", false))
            return avl__err(AVL_E_UNSUPPORTED, "%s: Split pre-tokenizer with behavior '%s'%s (only Isolated, not inverted)",
                            tok->path, beh ? beh : "?", jbool(p, "invert", false) ? " inverted" : "");
        json_t *pat = json_object_get(p, "pattern");
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        const char *lit = json_string_value(json_object_get(pat, "String"));
        if (re) return avl__tok_compile_regex(tok, re, "pre_tokenizer Split");
        if (lit) {
            /* a literal: quote it for PCRE2 */
            size_t n = strlen(lit);
            char *q = avl__malloc(n + 5);
            if (!q) return avl__err(AVL_E_NOMEM, "%s: out of memory", tok->path);
            if (strstr(lit, "\\E")) {
                avl__free(q);
                return avl__err(AVL_E_UNSUPPORTED, "%s: Split String pattern containing \\E", tok->path);
            }
            snprintf(q, n + 5, "\\Q%s\\E", lit);
            avl_status rc = avl__tok_compile_regex(tok, q, "pre_tokenizer Split");
            avl__free(q);
            return rc;
        }
        return avl__err(AVL_E_FORMAT, "%s: Split pre-tokenizer has no pattern.Regex or pattern.String", tok->path);
    }
    return avl__err(AVL_E_UNSUPPORTED, "%s: pre_tokenizer type '%s' is not supported (Split, ByteLevel, Sequence)",
                    tok->path, t);
}

static avl_status read_added_json(avl_tokenizer *tok, json_t *list)
{
    if (!list || json_is_null(list)) return AVL_OK;
    if (!json_is_array(list)) return avl__err(AVL_E_FORMAT, "%s: added_tokens is not an array", tok->path);
    size_t n = json_array_size(list);
    tok->added = avl__calloc(n ? n : 1, sizeof *tok->added);
    if (!tok->added) return avl__err(AVL_E_NOMEM, "%s: out of memory", tok->path);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(list, i);
        json_t *id = json_object_get(a, "id");
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        if (!json_is_integer(id))
            return avl__err(AVL_E_FORMAT, "%s: %s has no integer id", tok->path, where);
        bool special = jbool(a, "special", false);
        avl_status rc = add_added(tok, (int64_t)n, json_string_value(json_object_get(a, "content")), json_integer_value(id),
                                  special, jbool(a, "single_word", false), jbool(a, "lstrip", false),
                                  jbool(a, "rstrip", false), jbool(a, "normalized", !special), where);
        if (rc) return rc;
    }
    return AVL_OK;
}

static avl_status load_json_path(const char *path, json_t **out)
{
    *out = NULL;
    char *text;
    size_t len;
    avl_status rc = avl__read_file(path, &text, &len);
    if (rc) return rc;
    json_error_t e;
    json_t *j;
    rc = avl__json_loadb(text, len, JSON_ALLOW_NUL, path, &j, &e);
    avl__free(text);
    if (rc == AVL_E_NOMEM) return rc;
    if (rc) return avl__err(AVL_E_FORMAT, "%s: not JSON: %s (line %d, column %d)", path, e.text, e.line, e.column);
    *out = j;
    return AVL_OK;
}

static avl_status finish(avl_tokenizer *tok, vocab_entry *v, int64_t nv)
{
    if (tok->n_added > 1) qsort(tok->added, (size_t)tok->n_added, sizeof *tok->added, cmp_added_len);
    return build_ids(tok, v, nv);
}

static avl_status load_tokenizer_json(const char *path, avl_tokenizer **out)
{
    json_t *root;
    avl_status rc = load_json_path(path, &root);
    if (rc) return rc;
    avl_tokenizer *tok = NULL;
    vocab_entry *v = NULL;
    int64_t nv = 0;
    if ((rc = tok_new(path, &tok))) goto done;
    if (!json_is_object(root)) {
        rc = avl__err(AVL_E_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) {
        rc = avl__err(AVL_E_FORMAT, "%s: model is missing", path);
        goto done;
    }
    const char *type = json_string_value(json_object_get(model, "type"));
    if (type && strcmp(type, "BPE")) {
        rc = avl__err(AVL_E_UNSUPPORTED, "%s: model.type '%s' is not supported (only BPE)", path, type);
        goto done;
    }
    const char *cont = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *eow = json_string_value(json_object_get(model, "end_of_word_suffix"));
    if ((cont && cont[0]) || (eow && eow[0])) {
        rc = avl__err(AVL_E_UNSUPPORTED, "%s: model.continuing_subword_prefix / end_of_word_suffix are not supported", path);
        goto done;
    }
    json_t *dropout = json_object_get(model, "dropout");
    if (json_is_number(dropout) && json_number_value(dropout) > 0) {
        rc = avl__err(AVL_E_UNSUPPORTED, "%s: model.dropout > 0 is not supported", path);
        goto done;
    }
    tok->ignore_merges = jbool(model, "ignore_merges", false);
    tok->byte_fallback = jbool(model, "byte_fallback", false);
    if ((rc = read_vocab(tok, json_object_get(model, "vocab"), "model.vocab", &v, &nv))) goto done;
    if ((rc = read_added_json(tok, json_object_get(root, "added_tokens")))) goto done;
    if ((rc = read_normalizer(tok, json_object_get(root, "normalizer")))) goto done;
    pretok_seen seen = {0};
    if ((rc = read_pretok(tok, json_object_get(root, "pre_tokenizer"), &seen))) goto done;
    if (seen.byte_level_regex) {
        if (seen.have_split) {
            rc = avl__err(AVL_E_UNSUPPORTED, "%s: Split and ByteLevel with use_regex together", path);
            goto done;
        }
        if ((rc = avl__tok_compile_regex(tok, GPT2_PATTERN, "ByteLevel"))) goto done;
    }
    json_t *dec = json_object_get(root, "decoder");
    if (dec && !json_is_null(dec)) {
        if (strcmp(jtype(dec), "ByteLevel")) {
            rc = avl__err(AVL_E_UNSUPPORTED, "%s: decoder type '%s' is not supported (only ByteLevel)", path, jtype(dec));
            goto done;
        }
        tok->decoder_byte_level = true;
    }
    if ((rc = finish(tok, v, nv))) goto done;
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) tok->unk_id = avl__strmap_get(&tok->vocab, json_string_value(unk), json_string_length(unk), -1);
    rc = read_json_merges(tok, json_object_get(model, "merges"));
done:
    avl__free(v);
    json_decref(root);
    if (rc) avl_tokenizer_free(tok);
    else *out = tok;
    return rc;
}

/* ---- vocab.json + merges.txt ---- */

static avl_status load_added_from_config(avl_tokenizer *tok, const char *dir)
{
    char *cfg = avl__path_join(dir, "tokenizer_config.json");
    char *aj = avl__path_join(dir, "added_tokens.json");
    avl_status rc = AVL_OK;
    json_t *j = NULL;
    struct stat st;
    if (!cfg || !aj) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    if (stat(cfg, &st) == 0) {
        if ((rc = load_json_path(cfg, &j))) goto done;
        json_t *dec = json_object_get(j, "added_tokens_decoder");
        if (json_is_object(dec)) {
            size_t n = json_object_size(dec);
            tok->added = avl__calloc(n ? n : 1, sizeof *tok->added);
            if (!tok->added) {
                rc = avl__err(AVL_E_NOMEM, "%s: out of memory", cfg);
                goto done;
            }
            const char *key;
            json_t *a;
            json_object_foreach(dec, key, a) {
                char *end;
                long long id = strtoll(key, &end, 10);
                if (*end || end == key) {
                    rc = avl__err(AVL_E_FORMAT, "%s: added_tokens_decoder key '%s' is not an id", cfg, key);
                    goto done;
                }
                bool special = jbool(a, "special", false);
                if ((rc = add_added(tok, (int64_t)n, json_string_value(json_object_get(a, "content")), id, special,
                                    jbool(a, "single_word", false), jbool(a, "lstrip", false), jbool(a, "rstrip", false),
                                    jbool(a, "normalized", !special), "added_tokens_decoder")))
                    goto done;
            }
            goto done;
        }
        json_decref(j);
        j = NULL;
    }
    if (stat(aj, &st) == 0) {
        if ((rc = load_json_path(aj, &j))) goto done;
        if (!json_is_object(j)) {
            rc = avl__err(AVL_E_FORMAT, "%s: not a JSON object", aj);
            goto done;
        }
        size_t n = json_object_size(j);
        tok->added = avl__calloc(n ? n : 1, sizeof *tok->added);
        if (!tok->added) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", aj);
            goto done;
        }
        const char *key;
        json_t *id;
        json_object_foreach(j, key, id) {
            if (!json_is_integer(id)) {
                rc = avl__err(AVL_E_FORMAT, "%s: '%s' has no integer id", aj, key);
                goto done;
            }
            size_t kl = strlen(key);
            /* added_tokens.json carries no flags: <|...|> names are taken as special */
            bool special = kl >= 4 && !strncmp(key, "<|", 2) && !strcmp(key + kl - 2, "|>");
            if ((rc = add_added(tok, (int64_t)n, key, json_integer_value(id), special, false, false, false, false,
                                "added_tokens.json")))
                goto done;
        }
    }
done:
    json_decref(j);
    avl__free(cfg);
    avl__free(aj);
    return rc;
}

static avl_status load_vocab_merges(const char *dir, avl_tokenizer **out)
{
    char *vpath = avl__path_join(dir, "vocab.json");
    char *mpath = avl__path_join(dir, "merges.txt");
    avl_tokenizer *tok = NULL;
    json_t *vj = NULL;
    char *mtext = NULL;
    vocab_entry *v = NULL;
    int64_t nv = 0;
    scratch sc = {0};
    avl_status rc;
    if (!vpath || !mpath) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    if ((rc = load_json_path(vpath, &vj))) goto done;
    if ((rc = tok_new(vpath, &tok))) goto done;
    if ((rc = read_vocab(tok, vj, "vocabulary", &v, &nv))) goto done;
    if ((rc = load_added_from_config(tok, dir))) goto done;
    tok->nfc = true;
    tok->byte_level = true;
    tok->decoder_byte_level = true;
    if ((rc = avl__tok_compile_regex(tok, QWEN2_PATTERN, "Qwen2 pre-tokenizer"))) goto done;
    if ((rc = finish(tok, v, nv))) goto done;
    size_t mlen;
    if ((rc = avl__read_file(mpath, &mtext, &mlen))) goto done;
    if ((rc = avl__pairmap_init(&tok->merges, mlen / 8 + 16))) goto done;
    int64_t rank = 0;
    char *save = tok->path;
    tok->path = mpath; /* merge errors name merges.txt */
    for (char *line = mtext; line < mtext + mlen && !rc;) {
        char *nl = memchr(line, '\n', (size_t)(mtext + mlen - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(mtext + mlen - line);
        if (len && line[len - 1] == '\r') len--;
        if (len && !(rank == 0 && line == mtext && !strncmp(line, "#version", 8)))
            rc = add_merge_string(tok, &sc, rank++, line, len, "merges.txt line");
        line = nl ? nl + 1 : mtext + mlen;
    }
    tok->path = save;
    tok->n_merges = rank;
done:
    avl__free(sc.buf);
    avl__free(v);
    avl__free(mtext);
    json_decref(vj);
    avl__free(vpath);
    avl__free(mpath);
    if (rc) avl_tokenizer_free(tok);
    else *out = tok;
    return rc;
}

avl_status avl_tokenizer_load(const char *path_or_dir, avl_tokenizer **out)
{
    if (out) *out = NULL;
    if (!path_or_dir || !out) return avl__err(AVL_E_ARG, "avl_tokenizer_load: NULL argument");
    struct stat st;
    if (stat(path_or_dir, &st) != 0) return avl__err(AVL_E_IO, "%s: no such file or folder", path_or_dir);
    if (!S_ISDIR(st.st_mode)) return load_tokenizer_json(path_or_dir, out);
    char *tj = avl__path_join(path_or_dir, "tokenizer.json");
    if (!tj) return avl__err(AVL_E_NOMEM, "%s: out of memory", path_or_dir);
    avl_status rc;
    if (stat(tj, &st) == 0) rc = load_tokenizer_json(tj, out);
    else rc = load_vocab_merges(path_or_dir, out);
    avl__free(tj);
    return rc;
}
