/* src/io/tokenizer_internal.h: the tokenizer's shared insides (loading, pre-tokenising, BPE).
 *
 * Files: tokenizer_load.c (tokenizer.json / vocab.json + merges.txt -> this struct),
 * tokenizer_pretok.c (UTF-8 repair, added-token splitting, NFC, the Split regex),
 * tokenizer_bpe.c (merge loop, cache, encode, decode), tokenizer_chat.c (chat template),
 * tokenizer_map.c (the merge-pair map; string maps are base/strmap.h, keys borrowed).
 */
#ifndef AVLENS_IO_TOKENIZER_INTERNAL_H
#define AVLENS_IO_TOKENIZER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pcre2.h>

#include "avlens/tokenizer.h"
#include "base/strmap.h"

/* ---- (id, id) -> (rank, merged id) map for merges ---- */
typedef struct {
    uint64_t key; /* (a << 32 | b) + 1; 0 marks an empty slot */
    int32_t rank, merged;
} avl__pairmap_slot;

typedef struct {
    avl__pairmap_slot *slots;
    size_t cap, count;
} avl__pairmap;

avl_status avl__pairmap_init(avl__pairmap *m, size_t expect);
void avl__pairmap_free(avl__pairmap *m);
/* A pair that repeats takes its last rank (Hugging Face builds a map from the list). */
avl_status avl__pairmap_put(avl__pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
/* Returns the slot or NULL. */
const avl__pairmap_slot *avl__pairmap_get(const avl__pairmap *m, int32_t a, int32_t b);

/* ---- the tokenizer ---- */
typedef struct {
    char *content;  /* owned, NUL-terminated */
    uint32_t len;
    int32_t id;
    bool special, single_word, lstrip, rstrip, normalized;
} avl__added_token;

struct avl_tokenizer {
    char *path;                /* the file it came from, for messages */
    int32_t n_ids;             /* max id + 1 */
    char **id_str;             /* (n_ids) into vocab_arena or added[].content, NULL if unused */
    char *vocab_arena;         /* every model vocabulary string, NUL-terminated, back to back */
    uint32_t *id_len;          /* (n_ids) */
    uint8_t *id_kind;          /* (n_ids) 0 unused, 1 model vocab, 2 added, 3 added special */
    avl__strmap vocab;         /* model vocabulary string -> id (keys in vocab_arena) */
    avl__strmap added_map;     /* added token content -> id */
    avl__pairmap merges;
    int64_t n_merges;

    avl__added_token *added;   /* (n_added) sorted by length, longest first */
    int64_t n_added;
    bool has_raw_added, has_norm_added;
    uint8_t added_first[256];  /* 1 when some added token starts with this byte */

    /* model flags */
    bool byte_level;           /* ByteLevel pre-tokeniser present: BPE runs on bytes */
    bool add_prefix_space;
    bool ignore_merges, byte_fallback;
    int32_t unk_id;            /* -1 when none */
    int32_t byte_id[256];      /* id of each byte's single-character token, -1 when absent */
    int32_t fallback_id[256];  /* id of "<0xXX>" for byte_fallback, -1 when absent */

    bool nfc;                  /* NFC normaliser */
    pcre2_code *re;            /* Split pattern, NULL for no split */
    bool re_jit;

    bool decoder_byte_level;

    /* cache: pre-token bytes -> ids, shared by threads under mu */
    pthread_mutex_t mu;
    avl__strmap cache;         /* key bytes in cache_keys, value = offset into cache_ids */
    char *cache_keys;
    size_t cache_keys_len, cache_keys_cap;
    int32_t *cache_ids;        /* per entry: count, then the ids */
    size_t cache_ids_len, cache_ids_cap;
};

/* GPT-2's byte -> code point table (bytes_to_unicode) and its inverse (-1 for code points
 * that are no byte's image). */
extern const uint16_t avl__byte_to_cp[256];
int avl__cp_to_byte(uint32_t cp);

/* Pre-tokenising (tokenizer_pretok.c). */

/* Replaces invalid UTF-8 by U+FFFD following the WHATWG decoder (maximal subparts). Returns a
 * new buffer in *out (or NULL and *out_len = len when the input was valid). */
avl_status avl__utf8_repair(const char *s, size_t len, char **out, size_t *out_len);

/* Decodes one code point of valid UTF-8 at s (n bytes available); returns its length. */
int avl__utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Calls fn on each piece of text the model must encode, and emit_id for each added token,
 * in order. */
typedef avl_status (*avl__piece_fn)(void *user, const char *s, size_t len);
typedef avl_status (*avl__id_fn)(void *user, int32_t id);
avl_status avl__pretokenize(const avl_tokenizer *tok, const char *s, size_t len,
                            avl__piece_fn piece, avl__id_fn emit_id, void *user);

/* Loading helpers shared by the two loaders (tokenizer_load.c). */
avl_status avl__tok_compile_regex(avl_tokenizer *tok, const char *pattern, const char *what);

#endif
