/* src/eval/truth.c: the ground truth of CHAIR: per clip, the set of object classes, read from
 * JSON ({id: [objects]}, detector output) or CSV (id,object; VGGSounder's vggsounder.csv;
 * VGGSound's test.csv), every object mapped through the vocabulary (paper Sec. 6.3: the labelled
 * sound sources plus the objects DETR detects in 10 frames). Formats in docs/eval.md.
 */
#include <jansson.h>
#include <string.h>

#include "eval_internal.h"

typedef struct {
    char *id;
    int64_t *cls; /* (n) sorted ascending, no repeats */
    int64_t n, cap;
} clip;

struct avl_truth {
    avl__strmap ids; /* clip id -> index into clips */
    clip *clips;
    int64_t n, cap;
    int64_t added; /* classes this truth added to a vocabulary */
};

avl_status avl_truth_new(avl_truth **out)
{
    *out = avl__calloc(1, sizeof **out);
    if (!*out) return avl__err(AVL_E_NOMEM, "ground truth: out of memory");
    return AVL_OK;
}

void avl_truth_free(avl_truth *t)
{
    if (!t) return;
    for (int64_t i = 0; i < t->n; i++) {
        avl__free(t->clips[i].id);
        avl__free(t->clips[i].cls);
    }
    avl__free(t->clips);
    avl__strmap_free(&t->ids);
    avl__free(t);
}

int64_t avl_truth_clip_count(const avl_truth *t) { return t ? t->n : 0; }
int64_t avl_truth_added_classes(const avl_truth *t) { return t ? t->added : 0; }

bool avl__truth_get_clip(const avl_truth *t, const char *cid, const int64_t **cls, int64_t *n)
{
    int64_t *k = avl__strmap_findz(&t->ids, cid);
    if (!k) return false;
    *cls = t->clips[*k].cls;
    *n = t->clips[*k].n;
    return true;
}

bool avl_truth_get(const avl_truth *t, const char *id, const int64_t **cls, int64_t *n)
{
    *cls = NULL;
    *n = 0;
    if (!t || !id) return false;
    char *cid = avl__clip_id(id);
    if (!cid) return false;
    int64_t *k = avl__strmap_findz(&t->ids, cid);
    avl__free(cid);
    if (!k) return false;
    *cls = t->clips[*k].cls;
    *n = t->clips[*k].n;
    return true;
}

/* The clip of an id, made empty when new. */
static avl_status get_clip(avl_truth *t, const char *id, clip **out)
{
    char *cid = avl__clip_id(id);
    if (!cid) return avl__err(AVL_E_NOMEM, "ground truth: out of memory");
    if (!*cid) {
        avl__free(cid);
        char b[72];
        return avl__err(AVL_E_FORMAT, "clip id '%s' is empty once its path and extension are dropped", avl__clean(id, b));
    }
    int64_t *k = avl__strmap_findz(&t->ids, cid);
    if (k) {
        avl__free(cid);
        *out = &t->clips[*k];
        return AVL_OK;
    }
    if (t->n == t->cap) {
        int64_t nc = t->cap ? t->cap * 2 : 64;
        clip *g = avl__realloc(t->clips, (size_t)nc * sizeof *g);
        if (!g) {
            avl__free(cid);
            return avl__err(AVL_E_NOMEM, "ground truth: out of memory");
        }
        t->clips = g;
        t->cap = nc;
    }
    avl_status rc = avl__strmap_putz(&t->ids, cid, t->n);
    if (rc) {
        avl__free(cid);
        return rc;
    }
    clip *c = &t->clips[t->n++];
    memset(c, 0, sizeof *c);
    c->id = cid;
    *out = c;
    return AVL_OK;
}

static avl_status clip_insert(clip *c, int64_t cls)
{
    int64_t i = 0;
    while (i < c->n && c->cls[i] < cls) i++;
    if (i < c->n && c->cls[i] == cls) return AVL_OK;
    if (c->n == c->cap) {
        int64_t nc = c->cap ? c->cap * 2 : 4;
        int64_t *g = avl__realloc(c->cls, (size_t)nc * sizeof *g);
        if (!g) return avl__err(AVL_E_NOMEM, "ground truth: out of memory");
        c->cls = g;
        c->cap = nc;
    }
    memmove(c->cls + i + 1, c->cls + i, (size_t)(c->n - i) * sizeof *c->cls);
    c->cls[i] = cls;
    c->n++;
    return AVL_OK;
}

avl_status avl_truth_add(avl_truth *t, avl_vocab *v, const char *id, const char *object)
{
    if (!t || !v || !id || !object) return avl__err(AVL_E_ARG, "ground truth: NULL argument");
    clip *c;
    avl_status rc = get_clip(t, id, &c);
    if (rc) return rc;
    avl_mention *m;
    int64_t nm;
    rc = avl__vocab_mentions(v, object, true, &m, &nm);
    if (rc) return rc;
    for (int64_t i = 0; i < nm && !rc; i++) rc = clip_insert(c, m[i].cls);
    avl_mentions_free(m);
    if (rc || nm) return rc;
    /* no vocabulary phrase in it: the object becomes a class of its own */
    char *phrase;
    rc = avl__normalize_phrase(object, &phrase);
    if (rc) return rc;
    if (!*phrase) {
        avl__free(phrase);
        char b1[72], b2[72];
        return avl__err(AVL_E_FORMAT, "clip '%s': object '%s' has no words", avl__clean(id, b1), avl__clean(object, b2));
    }
    int64_t before = avl_vocab_class_count(v), cls;
    rc = avl__vocab_add_class(v, phrase, &cls);
    avl__free(phrase);
    if (rc) return rc;
    if (avl_vocab_class_count(v) > before) t->added++;
    return clip_insert(c, cls);
}

/* ---- JSON ---- */

static avl_status add_json_value(avl_truth *t, avl_vocab *v, const char *label, const char *id, json_t *val)
{
    avl_status rc;
    if (json_is_string(val)) {
        rc = avl_truth_add(t, v, id, json_string_value(val));
        return rc ? avl__err_wrap(rc, "%s", label) : AVL_OK;
    }
    if (!json_is_array(val)) {
        char b[72];
        return avl__err(AVL_E_FORMAT, "%s: clip '%s': objects must be a list or a string", label, avl__clean(id, b));
    }
    clip *c;
    rc = get_clip(t, id, &c); /* an empty list still makes the clip known */
    if (rc) return avl__err_wrap(rc, "%s", label);
    size_t i;
    json_t *e;
    json_array_foreach(val, i, e) {
        const char *obj = NULL;
        if (json_is_string(e)) obj = json_string_value(e);
        else if (json_is_object(e) && json_is_string(json_object_get(e, "label")))
            obj = json_string_value(json_object_get(e, "label"));
        if (!obj) {
            char b[72];
            return avl__err(AVL_E_FORMAT, "%s: clip '%s': object %zu is neither a string nor {\"label\": string}",
                            label, avl__clean(id, b), i);
        }
        rc = avl_truth_add(t, v, id, obj);
        if (rc) return avl__err_wrap(rc, "%s", label);
    }
    return AVL_OK;
}

static avl_status add_json(avl_truth *t, avl_vocab *v, const char *text, size_t len, const char *label)
{
    json_error_t jerr;
    json_t *root;
    avl_status rc = avl__json_loadb(text, len, JSON_REJECT_DUPLICATES, label, &root, &jerr);
    if (rc == AVL_E_NOMEM) return avl__err(AVL_E_NOMEM, "%s: out of memory while parsing JSON", label);
    if (rc) {
        char b[72];
        return avl__err(AVL_E_FORMAT, "%s:%d: bad JSON: %s", label, jerr.line, avl__clean(jerr.text, b));
    }
    if (json_is_object(root)) {
        const char *key;
        json_t *val;
        json_object_foreach(root, key, val) {
            rc = add_json_value(t, v, label, key, val);
            if (rc) break;
        }
    } else if (json_is_array(root)) {
        rc = add_json_value(t, v, label, label, root); /* one clip per file: the id is the file name */
    } else {
        rc = avl__err(AVL_E_FORMAT, "%s: ground truth must be a JSON object {id: [objects]} or a list", label);
    }
    json_decref(root);
    return rc;
}

/* ---- CSV ---- */

/* One CSV record starting at *pos: up to 8 fields, unquoted into buf. Returns the field count
 * (0 at the end of the text) or -1 on a bad quote. */
static int csv_record(const char *s, size_t len, size_t *pos, char *buf, size_t cap, char **f, int64_t *line,
                      bool *too_long)
{
    size_t i = *pos, o = 0;
    int nf = 0;
    *too_long = false;
    if (i >= len) return 0;
    f[nf++] = buf;
    bool quoted = false, was_quoted = false;
    for (; i < len; i++) {
        char ch = s[i];
        if (quoted) {
            if (ch == '"') {
                if (i + 1 < len && s[i + 1] == '"') i++;
                else {
                    quoted = false;
                    continue;
                }
            }
            if (ch == '\n') (*line)++;
        } else if (ch == '"' && !was_quoted && f[nf - 1] == buf + o) {
            quoted = was_quoted = true;
            continue;
        } else if (ch == ',') {
            if (o + 1 >= cap) *too_long = true;
            else buf[o++] = '\0';
            if (nf < 8) f[nf++] = buf + o;
            was_quoted = false;
            continue;
        } else if (ch == '\n' || ch == '\r') {
            break;
        } else if (was_quoted) {
            return -1; /* text after a closing quote */
        }
        if (o + 1 >= cap) *too_long = true;
        else buf[o++] = ch;
    }
    if (quoted) return -1;
    buf[o] = '\0';
    if (i < len && s[i] == '\r') i++;
    if (i < len && s[i] == '\n') i++;
    *pos = i;
    return nf;
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t') return false;
    return true;
}

static avl_status add_csv(avl_truth *t, avl_vocab *v, const char *text, size_t len, const char *label)
{
    char buf[4096];
    char *f[8];
    size_t pos = 0;
    int64_t line = 1;
    int id_col = 0, obj_col = 1;
    bool first = true;
    while (pos < len) {
        int64_t at = line;
        bool too_long;
        int nf = csv_record(text, len, &pos, buf, sizeof buf, f, &line, &too_long);
        line++;
        if (nf < 0) return avl__err(AVL_E_FORMAT, "%s:%lld: unbalanced double quote", label, (long long)at);
        if (too_long) return avl__err(AVL_E_FORMAT, "%s:%lld: record longer than %zu bytes", label, (long long)at, sizeof buf);
        if ((nf == 1 && blank(f[0]))) {
            first = false;
            continue;
        }
        if (first) {
            first = false;
            /* headers: vggsounder.csv (video_id,label,...), ours (id,object) */
            if (!strcmp(f[0], "video_id") || !strcmp(f[0], "id")) {
                obj_col = -1;
                for (int k = 1; k < nf; k++)
                    if (!strcmp(f[k], "label") || !strcmp(f[k], "object")) obj_col = k;
                if (obj_col < 0)
                    return avl__err(AVL_E_FORMAT, "%s:%lld: header has no 'label' or 'object' column", label, (long long)at);
                continue;
            }
        }
        if (nf <= obj_col || nf <= id_col)
            return avl__err(AVL_E_FORMAT, "%s:%lld: expected id,object but found %d field%s", label, (long long)at, nf,
                            nf == 1 ? "" : "s");
        if (blank(f[id_col])) return avl__err(AVL_E_FORMAT, "%s:%lld: empty clip id", label, (long long)at);
        avl_status rc = avl_truth_add(t, v, f[id_col], f[obj_col]);
        if (rc) return avl__err_wrap(rc, "%s:%lld", label, (long long)at);
    }
    return AVL_OK;
}

avl_status avl_truth_add_text(avl_truth *t, avl_vocab *v, const char *text, size_t len, const char *label)
{
    if (!t || !v || (!text && len)) return avl__err(AVL_E_ARG, "ground truth: NULL argument");
    if (!label) label = "ground truth";
    if (len && memchr(text, '\0', len)) return avl__err(AVL_E_FORMAT, "%s: NUL byte in text", label);
    size_t i = 0;
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) i = 3; /* UTF-8 byte-order mark */
    size_t j = i;
    while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n')) j++;
    if (j < len && (text[j] == '{' || text[j] == '[')) return add_json(t, v, text + i, len - i, label);
    return add_csv(t, v, text + i, len - i, label);
}

avl_status avl_truth_add_file(avl_truth *t, avl_vocab *v, const char *path)
{
    char *text;
    size_t len;
    avl_status rc = avl__read_file(path, &text, &len);
    if (rc) return rc;
    rc = avl_truth_add_text(t, v, text, len, path);
    avl__free(text);
    return rc;
}
