/* src/io/tokenizer_pretok.c: from raw bytes to the pieces BPE sees.
 *
 * The order mirrors Hugging Face tokenizers' TokenizerImpl::encode_single_sequence (and the JS
 * port @lenml/tokenizers, PreTrainedTokenizer._encode_text): added tokens are cut out of the
 * raw text first (AddedVocabulary::split_with_indices, leftmost-longest), the rest is
 * normalised (NFC), added tokens flagged normalized=true are cut out of the normalised text,
 * and what remains goes through the Split pre-tokeniser (behaviour "Isolated": every match and
 * every gap between matches is a piece).
 *
 * Invalid UTF-8 is repaired first, because the regex and NFC want valid text and because the
 * reference (a JS string built with TextDecoder) can only see U+FFFD there.
 */
#include <string.h>

#include <utf8proc.h>

#include "base/internal.h"
#include "io/tokenizer_internal.h"

/* GPT-2 bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.. in byte order. */
const uint16_t avl__byte_to_cp[256] = {
    256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271,
    272, 273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287,
    288, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
    80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95,
    96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 289,
    290, 291, 292, 293, 294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305,
    306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321,
    322, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 323, 174, 175,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207,
    208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255,
};

int avl__cp_to_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp < 256 || cp >= 256 + 68) return -1;
    /* the n-th byte outside the printable ranges: 0..32, 127..160, 173 */
    uint32_t n = cp - 256;
    return n < 33 ? (int)n : n < 67 ? (int)(127 + n - 33) : 173;
}

/* ---- UTF-8 ---- */

int avl__utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    if (c < 0x80 || n < 2) { *cp = c; return 1; }
    if (c < 0xE0) { *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F); return 2; }
    if (c < 0xF0 || n < 4) {
        if (n < 3) { *cp = c; return 1; }
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

/* Length of the valid sequence at s, or 0 with *bad = bytes to replace by one U+FFFD (the
 * WHATWG "UTF-8 decode" algorithm: a lead byte and the continuation bytes that fit it form
 * one maximal subpart; the first byte that does not fit starts over). */
static size_t utf8_valid_at(const uint8_t *s, size_t n, size_t *bad)
{
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

avl_status avl__utf8_repair(const char *str, size_t len, char **out, size_t *out_len)
{
    const uint8_t *s = (const uint8_t *)str;
    *out = NULL;
    *out_len = len;
    size_t i = 0, bad = 0;
    while (i < len) {
        if (s[i] < 0x80) { i++; continue; }
        size_t k = utf8_valid_at(s + i, len - i, &bad);
        if (!k) break;
        i += k;
    }
    if (i == len) return AVL_OK;
    /* each bad byte becomes at most 3 bytes */
    char *buf = avl__malloc(len * 3 + 1);
    if (!buf) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory repairing %zu bytes of text", len);
    memcpy(buf, s, i);
    size_t o = i;
    while (i < len) {
        size_t k = utf8_valid_at(s + i, len - i, &bad);
        if (k) {
            memcpy(buf + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += bad;
        }
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return AVL_OK;
}

/* ---- added tokens ---- */

/* Rust's char::is_whitespace (the Unicode White_Space property). */
static bool is_ws(uint32_t c)
{
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static bool is_word_cp(uint32_t c)
{
    if (c == '_') return true;
    if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

/* Start of the code point that ends just before position i (i > 0). */
static size_t prev_cp_start(const uint8_t *s, size_t i)
{
    size_t j = i - 1;
    while (j > 0 && (s[j] & 0xC0) == 0x80 && i - j < 4) j--;
    return j;
}

typedef struct {
    const avl_tokenizer *tok;
    avl__piece_fn piece;
    avl__id_fn emit_id;
    void *user;
    pcre2_match_data *md;
    int32_t *cps;     /* NFC scratch: (cps_cap) code points */
    size_t cps_cap;
    char *norm;       /* NFC output: (norm_cap) bytes, norm_len used */
    size_t norm_len, norm_cap;
} pt_ctx;

typedef avl_status (*section_fn)(pt_ctx *c, const char *s, size_t len);

/* Cuts added tokens of one kind (normalized or not) out of s; text between them goes to
 * on_text, tokens to emit_id. Leftmost match wins, then the longest (tokens are sorted
 * longest first); lstrip/rstrip swallow White_Space next to the token; single_word demands
 * that the neighbours are not word characters. */
static avl_status split_added(pt_ctx *c, const char *str, size_t len, bool normalized, section_fn on_text)
{
    const avl_tokenizer *tok = c->tok;
    const uint8_t *s = (const uint8_t *)str;
    size_t text_start = 0; /* start of pending text */
    size_t floor = 0;      /* lstrip may not reach before the previous token */
    avl_status rc;
    for (size_t i = 0; i < len;) {
        if (!tok->added_first[s[i]]) { i++; continue; }
        const avl__added_token *hit = NULL;
        for (int64_t k = 0; k < tok->n_added; k++) {
            const avl__added_token *a = &tok->added[k];
            if (a->normalized != normalized || a->len > len - i || (uint8_t)a->content[0] != s[i]) continue;
            if (memcmp(a->content, s + i, a->len)) continue;
            if (a->single_word) {
                uint32_t cp;
                if (i > 0) {
                    size_t p = prev_cp_start(s, i);
                    avl__utf8_decode(s + p, i - p, &cp);
                    if (is_word_cp(cp)) continue;
                }
                if (i + a->len < len) {
                    avl__utf8_decode(s + i + a->len, len - i - a->len, &cp);
                    if (is_word_cp(cp)) continue;
                }
            }
            hit = a;
            break;
        }
        if (!hit) { i++; continue; }
        size_t start = i, stop = i + hit->len;
        if (hit->lstrip) {
            while (start > floor && start > text_start) {
                size_t p = prev_cp_start(s, start);
                uint32_t cp;
                avl__utf8_decode(s + p, start - p, &cp);
                if (!is_ws(cp)) break;
                start = p;
            }
        }
        if (hit->rstrip) {
            while (stop < len) {
                uint32_t cp;
                int k = avl__utf8_decode(s + stop, len - stop, &cp);
                if (!is_ws(cp)) break;
                stop += (size_t)k;
            }
        }
        if (start > text_start && (rc = on_text(c, str + text_start, start - text_start))) return rc;
        if ((rc = c->emit_id(c->user, hit->id))) return rc;
        text_start = floor = i = stop;
    }
    if (len > text_start) return on_text(c, str + text_start, len - text_start);
    return AVL_OK;
}

/* ---- the Split regex ---- */

static avl_status regex_pieces(pt_ctx *c, const char *s, size_t len)
{
    const avl_tokenizer *tok = c->tok;
    avl_status rc;
    char *prefixed = NULL;
    if (tok->add_prefix_space && len && s[0] != ' ') {
        prefixed = avl__malloc(len + 1);
        if (!prefixed) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory");
        prefixed[0] = ' ';
        memcpy(prefixed + 1, s, len);
        s = prefixed;
        len++;
    }
    if (!tok->re) {
        rc = c->piece(c->user, s, len);
        avl__free(prefixed);
        return rc;
    }
    size_t prev = 0, off = 0;
    uint32_t opts = PCRE2_NO_UTF_CHECK;
    while (off <= len) {
        int m = pcre2_match(tok->re, (PCRE2_SPTR)s, len, off, opts, c->md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            /* resource limits (JIT stack, heap) on pathological input: retry without JIT, then
             * give the rest to BPE whole rather than fail on user text */
            if (!(opts & PCRE2_NO_JIT) && tok->re_jit) {
                opts |= PCRE2_NO_JIT;
                continue;
            }
            avl__log(AVL_LOG_WARN, "tokenizer: regex gave up (pcre2 error %d) at byte %zu of %zu", m, off, len);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t a = ov[0], b = ov[1];
        if (a > prev && (rc = c->piece(c->user, s + prev, a - prev))) goto done;
        if (b > a && (rc = c->piece(c->user, s + a, b - a))) goto done;
        prev = b;
        if (b == a) {
            /* an empty match: step over one code point, as JS matchAll does with the u flag */
            if (b >= len) break;
            uint32_t cp;
            off = b + (size_t)avl__utf8_decode((const uint8_t *)s + b, len - b, &cp);
        } else {
            off = b;
        }
    }
    rc = prev < len ? c->piece(c->user, s + prev, len - prev) : AVL_OK;
done:
    avl__free(prefixed);
    return rc;
}

static avl_status after_norm(pt_ctx *c, const char *s, size_t len)
{
    if (c->tok->has_norm_added) return split_added(c, s, len, true, regex_pieces);
    return regex_pieces(c, s, len);
}

/* Appends bytes to c->norm unchanged. */
static avl_status nfc_copy(pt_ctx *c, const char *s, size_t len)
{
    if (c->norm_len + len > c->norm_cap) {
        size_t cap = (c->norm_len + len) * 2 + 64;
        char *p = avl__realloc(c->norm, cap);
        if (!p) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory normalising %zu bytes", len);
        c->norm = p;
        c->norm_cap = cap;
    }
    memcpy(c->norm + c->norm_len, s, len);
    c->norm_len += len;
    return AVL_OK;
}

/* NFC of one stretch of text with utf8proc (canonical decomposition into code points, then
 * recomposition and re-encoding in place), appended to c->norm. On a utf8proc error (valid
 * UTF-8 gives none) the stretch is kept as it is. */
static avl_status nfc_append(pt_ctx *c, const char *s, size_t len)
{
    int opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    for (;;) {
        utf8proc_ssize_t n = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len,
                                                c->cps, (utf8proc_ssize_t)c->cps_cap, opts);
        if (n >= 0 && (size_t)n + 1 > c->cps_cap) {
            size_t cap = (size_t)n + len + 16;
            int32_t *p = avl__realloc(c->cps, cap * sizeof *p);
            if (!p) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory normalising %zu bytes", len);
            c->cps = p;
            c->cps_cap = cap;
            continue;
        }
        if (n < 0) return nfc_copy(c, s, len);
        utf8proc_ssize_t k = utf8proc_reencode(c->cps, n, opts);
        if (k < 0) return nfc_copy(c, s, len);
        return nfc_copy(c, (const char *)c->cps, (size_t)k);
    }
}

/* True when cp is an NFC boundary that text before it cannot change: a starter with no
 * canonical decomposition that is never the second half of a composition. Everything below
 * U+0300 is (no code point there has NFC_Quick_Check No or Maybe). Hangul vowel and trailing
 * jamo compose algorithmically and are not. */
static bool nfc_stable(uint32_t cp)
{
    if (cp < 0x300) return true;
    if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3)) return true; /* CJK, Hangul syllables */
    if ((cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11A8 && cp <= 0x11C2)) return false;
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    if (p->combining_class) return false;
    if (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0) return false;
    if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000) return false;
    return true;
}

/* NFC, applied only to the stretches that can change: each starts at the last stable code
 * point before an unstable one (that one may compose with what follows) and ends before the
 * next stable one. Text made only of stable code points (ASCII, most CJK, Cyrillic, emoji...)
 * passes through untouched, and utf8proc runs only where it matters. */
static avl_status normalize_section(pt_ctx *c, const char *str, size_t len)
{
    if (!c->tok->nfc) return after_norm(c, str, len);
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len && s[i] < 0xCC) i++; /* below U+0300 all the way */
    if (i == len) return after_norm(c, str, len);

    c->norm_len = 0;
    size_t copied = 0, last_stable = 0;
    bool changed = false;
    avl_status rc;
    for (i = 0; i < len;) {
        uint32_t cp;
        size_t k = (size_t)avl__utf8_decode(s + i, len - i, &cp);
        if (nfc_stable(cp)) {
            last_stable = i;
            i += k;
            continue;
        }
        size_t start = last_stable > copied ? last_stable : copied;
        size_t end = i + k;
        while (end < len) {
            size_t k2 = (size_t)avl__utf8_decode(s + end, len - end, &cp);
            if (nfc_stable(cp)) break;
            end += k2;
        }
        if (start > copied && (rc = nfc_copy(c, str + copied, start - copied))) return rc;
        if ((rc = nfc_append(c, str + start, end - start))) return rc;
        changed = true;
        copied = end;
        i = end;
        last_stable = end;
    }
    if (!changed) return after_norm(c, str, len);
    if (len > copied && (rc = nfc_copy(c, str + copied, len - copied))) return rc;
    return after_norm(c, c->norm, c->norm_len);
}

avl_status avl__pretokenize(const avl_tokenizer *tok, const char *s, size_t len,
                            avl__piece_fn piece, avl__id_fn emit_id, void *user)
{
    pt_ctx c = {.tok = tok, .piece = piece, .emit_id = emit_id, .user = user};
    if (tok->re) {
        c.md = pcre2_match_data_create_from_pattern(tok->re, NULL);
        if (!c.md) return avl__err(AVL_E_NOMEM, "tokenizer: out of memory for regex match data");
    }
    avl_status rc = tok->has_raw_added ? split_added(&c, s, len, false, normalize_section)
                                       : normalize_section(&c, s, len);
    pcre2_match_data_free(c.md);
    avl__free(c.cps);
    avl__free(c.norm);
    return rc;
}
