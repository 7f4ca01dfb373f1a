/* src/eval/vocab.c: CHAIR vocabularies: object classes with synonyms, read from text files, and
 * the mention finder (longest match over normalised phrases).
 *
 * The file format follows CHAIR's synonyms list (one line per class, the node word first, then
 * its synonyms; Rohrbach et al. 2018, LisaAnne/Hallucination utils/chair.py), with commas between
 * entries so that synonyms may have several words, and two directives for what chair.py hard-codes:
 * "@animal" (its animal_words, for "baby X" / "adult X") and "@ignore" (phrases that name no object
 * and must not count their words). The bigram table of chair.py ("traffic light", "teddy bear",
 * "passenger jet" -> jet) is covered by multi-word entries plus the longest match. docs/eval.md.
 */
#include <stdio.h>
#include <string.h>

#include "eval_internal.h"

struct avl_vocab {
    char **names;      /* (n) canonical names: normalised phrases */
    uint8_t *animal;   /* (n) 1 when "baby X" / "adult X" reduce to this class */
    int64_t n, cap;
    avl__strmap classes; /* canonical name -> class */
    avl__strmap phrases; /* normalised phrase -> 2 * class + label_only, -1 for an ignored phrase */
    avl__strmap where;   /* phrase -> (source << 32) | line of the line that set it */
    int max_words;       /* longest phrase, in tokens */
    int64_t source;      /* counts the files added, to tell in-file conflicts */
};

avl_status avl_vocab_new(avl_vocab **out)
{
    *out = avl__calloc(1, sizeof **out);
    if (!*out) return avl__err(AVL_E_NOMEM, "vocabulary: out of memory");
    return AVL_OK;
}

void avl_vocab_free(avl_vocab *v)
{
    if (!v) return;
    for (int64_t i = 0; i < v->n; i++) avl__free(v->names[i]);
    avl__free(v->names);
    avl__free(v->animal);
    avl__strmap_free(&v->classes);
    avl__strmap_free(&v->phrases);
    avl__strmap_free(&v->where);
    avl__free(v);
}

int64_t avl_vocab_class_count(const avl_vocab *v) { return v ? v->n : 0; }

const char *avl_vocab_class_name(const avl_vocab *v, int64_t i)
{
    return (v && i >= 0 && i < v->n) ? v->names[i] : NULL;
}

static int count_words(const char *phrase)
{
    int n = *phrase ? 1 : 0;
    for (; *phrase; phrase++) n += *phrase == ' ';
    return n;
}

avl_status avl__vocab_add_class(avl_vocab *v, const char *phrase, int64_t *cls)
{
    int64_t *p = avl__strmap_findz(&v->classes, phrase);
    if (p) {
        *cls = *p;
        return AVL_OK;
    }
    if (v->n == v->cap) {
        int64_t nc = v->cap ? v->cap * 2 : 64;
        char **names = avl__realloc(v->names, (size_t)nc * sizeof *names);
        if (!names) return avl__err(AVL_E_NOMEM, "vocabulary: out of memory");
        v->names = names;
        uint8_t *an = avl__realloc(v->animal, (size_t)nc);
        if (!an) return avl__err(AVL_E_NOMEM, "vocabulary: out of memory");
        v->animal = an;
        v->cap = nc;
    }
    char *name = avl__strdup(phrase);
    if (!name) return avl__err(AVL_E_NOMEM, "vocabulary: out of memory");
    avl_status rc = avl__strmap_putz(&v->classes, phrase, v->n);
    if (!rc && !avl__strmap_findz(&v->phrases, phrase)) rc = avl__strmap_putz(&v->phrases, phrase, 2 * v->n);
    if (rc) {
        avl__free(name);
        return rc;
    }
    int w = count_words(phrase);
    if (w > v->max_words) v->max_words = w;
    v->names[v->n] = name;
    v->animal[v->n] = 0;
    *cls = v->n++;
    return AVL_OK;
}

static int64_t enc(int64_t cls, bool label_only) { return cls < 0 ? -1 : 2 * cls + label_only; }
static int64_t dec_cls(int64_t x) { return x < 0 ? -1 : x / 2; }
static bool dec_label(int64_t x) { return x >= 0 && x % 2; }

/* Gives phrase to class cls (-1: ignore), refusing a second owner within one file. */
static avl_status set_phrase(avl_vocab *v, const char *phrase, int64_t cls, bool label_only, const char *label,
                             int64_t line)
{
    int64_t *old = avl__strmap_findz(&v->phrases, phrase);
    int64_t *wh = avl__strmap_findz(&v->where, phrase);
    if (old && dec_cls(*old) == cls) {
        if (!label_only && dec_label(*old)) *old = enc(cls, false); /* a caption phrase too */
        return wh ? AVL_OK : avl__strmap_putz(&v->where, phrase, (v->source << 32) | (line & 0xffffffff));
    }
    if (old && wh && (*wh >> 32) == v->source) {
        const char *owner = *old >= 0 ? v->names[dec_cls(*old)] : "@ignore";
        return avl__err(AVL_E_FORMAT, "%s:%lld: '%s' is already given to '%s' on line %lld", label,
                        (long long)line, phrase, owner, (long long)(*wh & 0xffffffff));
    }
    avl_status rc = avl__strmap_putz(&v->phrases, phrase, enc(cls, label_only));
    if (!rc) rc = avl__strmap_putz(&v->where, phrase, (v->source << 32) | (line & 0xffffffff));
    if (rc) return rc;
    int w = count_words(phrase);
    if (w > v->max_words) v->max_words = w;
    return AVL_OK;
}

/* Splits one line at commas into normalised entries and applies it. */
static avl_status add_line(avl_vocab *v, char *line, const char *label, int64_t ln)
{
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '#') return AVL_OK;
    enum { CLASS, ANIMAL, IGNORE } kind = CLASS;
    if (*s == '@') {
        if (!strncmp(s, "@animal", 7) && (s[7] == ' ' || s[7] == '\t')) kind = ANIMAL, s += 8;
        else if (!strncmp(s, "@ignore", 7) && (s[7] == ' ' || s[7] == '\t')) kind = IGNORE, s += 8;
        else {
            s[strcspn(s, " \t")] = '\0';
            char b[72];
            return avl__err(AVL_E_FORMAT, "%s:%lld: unknown directive '%s' (want @animal or @ignore followed by entries)",
                            label, (long long)ln, avl__clean(s, b));
        }
    }
    int64_t cls = -1;
    int entry = 0;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma) *comma = '\0';
        while (*s == ' ' || *s == '\t') s++;
        bool label_only = *s == '=';
        if (label_only && (kind != CLASS || entry == 0))
            return avl__err(AVL_E_FORMAT, "%s:%lld: entry %d: '=' (label-only) is allowed only on synonyms of a class",
                            label, (long long)ln, entry + 1);
        if (label_only) s++;
        char *phrase;
        avl_status rc = avl__normalize_phrase(s, &phrase);
        if (rc) return rc;
        if (!*phrase) {
            avl__free(phrase);
            return avl__err(AVL_E_FORMAT, "%s:%lld: entry %d has no words (empty between commas?)", label,
                            (long long)ln, entry + 1);
        }
        if (kind == CLASS && entry == 0) {
            rc = avl__vocab_add_class(v, phrase, &cls);
            if (!rc) rc = set_phrase(v, phrase, cls, false, label, ln);
        } else if (kind == CLASS) {
            rc = set_phrase(v, phrase, cls, label_only, label, ln);
        } else if (kind == IGNORE) {
            rc = set_phrase(v, phrase, -1, false, label, ln);
        } else {
            int64_t *c = avl__strmap_findz(&v->phrases, phrase);
            if (!c || *c < 0)
                rc = avl__err(AVL_E_FORMAT, "%s:%lld: @animal '%s' is not a class of the vocabulary (define it first)",
                              label, (long long)ln, phrase);
            else
                v->animal[dec_cls(*c)] = 1;
        }
        avl__free(phrase);
        if (rc) return rc;
        entry++;
        if (!comma) break;
        s = comma + 1;
    }
    return AVL_OK;
}

avl_status avl_vocab_add_text(avl_vocab *v, const char *text, size_t len, const char *label)
{
    if (!v || (!text && len)) return avl__err(AVL_E_ARG, "vocabulary: NULL argument");
    if (!label) label = "vocabulary";
    v->source++;
    char buf[4096];
    int64_t ln = 0;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        ln++;
        size_t k = e - i;
        if (k && text[i + k - 1] == '\r') k--;
        if (k >= sizeof buf)
            return avl__err(AVL_E_FORMAT, "%s:%lld: line longer than %zu bytes", label, (long long)ln, sizeof buf - 1);
        if (memchr(text + i, '\0', k))
            return avl__err(AVL_E_FORMAT, "%s:%lld: NUL byte in line", label, (long long)ln);
        memcpy(buf, text + i, k);
        buf[k] = '\0';
        avl_status rc = add_line(v, buf, label, ln);
        if (rc) return rc;
        i = e + 1;
    }
    return AVL_OK;
}

avl_status avl_vocab_add_file(avl_vocab *v, const char *path)
{
    char *text;
    size_t len;
    avl_status rc = avl__read_file(path, &text, &len);
    if (rc) return rc;
    rc = avl_vocab_add_text(v, text, len, path);
    avl__free(text);
    return rc;
}

int64_t avl_vocab_lookup(const avl_vocab *v, const char *phrase)
{
    if (!v || !phrase) return -1;
    char *p;
    if (avl__normalize_phrase(phrase, &p)) return -1;
    int64_t *c = avl__strmap_findz(&v->phrases, p);
    avl__free(p);
    return c ? dec_cls(*c) : -1;
}

void avl_mentions_free(avl_mention *m) { avl__free(m); }

/* Longest vocabulary phrase starting at token i: its length in tokens (0: none) and class;
 * label-only phrases count when labels is true. */
static void longest(const avl_vocab *v, const avl__token *t, int64_t n, int64_t i, bool labels, char *buf, size_t cap,
                    int *len, int64_t *cls)
{
    *len = 0;
    size_t at = 0;
    for (int k = 0; k < v->max_words && i + k < n; k++) {
        size_t w = strlen(t[i + k].word);
        if (at + w + 2 > cap) break; /* longer than any phrase can be */
        if (k) buf[at++] = ' ';
        memcpy(buf + at, t[i + k].word, w + 1);
        at += w;
        int64_t *c = avl__strmap_findz(&v->phrases, buf);
        if (c && (labels || !dec_label(*c))) {
            *len = k + 1;
            *cls = dec_cls(*c);
        }
    }
}

avl_status avl_vocab_mentions(const avl_vocab *v, const char *text, avl_mention **out, int64_t *n)
{
    return avl__vocab_mentions(v, text, false, out, n);
}

avl_status avl__vocab_mentions(const avl_vocab *v, const char *text, bool labels, avl_mention **out, int64_t *n)
{
    *out = NULL;
    *n = 0;
    if (!v || !text) return avl__err(AVL_E_ARG, "mentions: NULL argument");
    avl__token *t;
    int64_t nt;
    avl_status rc = avl__tokenize(text, &t, &nt);
    if (rc) return rc;
    avl_mention *m = NULL;
    int64_t nm = 0;
    char buf[1024];
    for (int64_t i = 0; i < nt;) {
        int len;
        int64_t cls = -1;
        longest(v, t, nt, i, labels, buf, sizeof buf, &len, &cls);
        /* "baby elephant", "adult dog": the animal alone, when that is the longer reading */
        if ((!strcmp(t[i].word, "baby") || !strcmp(t[i].word, "adult")) && i + 1 < nt) {
            int l2;
            int64_t c2 = -1;
            longest(v, t, nt, i + 1, labels, buf, sizeof buf, &l2, &c2);
            if (l2 && c2 >= 0 && v->animal[c2] && 1 + l2 > len) {
                len = 1 + l2;
                cls = c2;
            }
        }
        if (!len) {
            i++;
            continue;
        }
        if (cls >= 0) {
            if (!m) {
                m = avl__malloc((size_t)nt * sizeof *m); /* at most one mention per token */
                if (!m) {
                    avl__tokens_free(t, nt);
                    return avl__err(AVL_E_NOMEM, "mentions: out of memory");
                }
            }
            m[nm].cls = cls;
            m[nm].start = t[i].start;
            m[nm].end = t[i + len - 1].end;
            nm++;
        }
        i += len;
    }
    avl__tokens_free(t, nt);
    *out = m;
    *n = nm;
    return AVL_OK;
}
