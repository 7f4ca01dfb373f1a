/* src/eval/tokens.c: word normalisation for CHAIR: lower-case, tokenise, singularise.
 *
 * A token is a run of ASCII letters and digits and of non-ASCII bytes (kept as they are: UTF-8
 * letters stay inside words, they are not case-folded). Everything else splits, hyphens too, so
 * "hair-dryer" reads as "hair dryer". A possessive "'s" (or a bare trailing "'") is dropped:
 * "dog's" -> "dog". Each token is then singularised (lemma.c).
 */
#include <string.h>
#include <strings.h>

#include "eval_internal.h"

static bool word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

void avl__tokens_free(avl__token *t, int64_t n)
{
    if (!t) return;
    for (int64_t i = 0; i < n; i++) avl__free(t[i].word);
    avl__free(t);
}

avl_status avl__tokenize(const char *text, avl__token **toks, int64_t *n)
{
    *toks = NULL;
    *n = 0;
    avl__token *t = NULL;
    int64_t nt = 0, cap = 0;
    char lower[128], sing[136];
    size_t i = 0;
    while (text[i]) {
        if (!word_byte((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t s = i;
        while (word_byte((unsigned char)text[i])) i++;
        size_t e = i, len = e - s;
        /* possessive: dog's, dogs' */
        if (text[i] == '\'' && (text[i + 1] == 's' || text[i + 1] == 'S') && !word_byte((unsigned char)text[i + 2]))
            i += 2;
        char *w;
        if (len < sizeof lower) {
            for (size_t k = 0; k < len; k++) {
                char c = text[s + k];
                lower[k] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
            }
            lower[len] = '\0';
            avl_eval_singular(lower, sing, sizeof sing);
            w = avl__strdup(sing);
        } else { /* too long to be a vocabulary word: kept lower-cased, not singularised */
            w = avl__malloc(len + 1);
            if (w) {
                for (size_t k = 0; k < len; k++) {
                    char c = text[s + k];
                    w[k] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
                }
                w[len] = '\0';
            }
        }
        if (!w) goto nomem;
        if (nt == cap) {
            int64_t nc = cap ? cap * 2 : 16;
            avl__token *g = avl__realloc(t, (size_t)nc * sizeof *g);
            if (!g) {
                avl__free(w);
                goto nomem;
            }
            t = g;
            cap = nc;
        }
        t[nt].word = w;
        t[nt].start = s;
        t[nt].end = e;
        nt++;
    }
    *toks = t;
    *n = nt;
    return AVL_OK;
nomem:
    avl__tokens_free(t, nt);
    return avl__err(AVL_E_NOMEM, "tokeniser: out of memory");
}

avl_status avl__normalize_phrase(const char *text, char **out)
{
    *out = NULL;
    avl__token *t;
    int64_t n;
    avl_status rc = avl__tokenize(text, &t, &n);
    if (rc) return rc;
    size_t len = 1;
    for (int64_t i = 0; i < n; i++) len += strlen(t[i].word) + 1;
    char *s = avl__malloc(len), *p = s;
    if (!s) {
        avl__tokens_free(t, n);
        return avl__err(AVL_E_NOMEM, "tokeniser: out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        if (i) *p++ = ' ';
        size_t k = strlen(t[i].word);
        memcpy(p, t[i].word, k);
        p += k;
    }
    *p = '\0';
    avl__tokens_free(t, n);
    *out = s;
    return AVL_OK;
}

char *avl__clip_id(const char *id)
{
    static const char *const exts[] = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".wav", ".flac",
                                       ".mp3", ".ogg", ".m4a", ".jpg", ".jpeg", ".png", ".json"};
    const char *slash = strrchr(id, '/');
    const char *s = slash ? slash + 1 : id;
    size_t n = strlen(s);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t k = strlen(exts[i]);
        if (n > k && !strcasecmp(s + n - k, exts[i])) {
            n -= k;
            break;
        }
    }
    char *r = avl__malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

const char *avl__clean(const char *s, char buf[72])
{
    size_t i = 0;
    for (; s[i] && i < 60; i++) buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (s[i]) memcpy(buf + i, "...", 3), i += 3;
    buf[i] = '\0';
    return buf;
}
