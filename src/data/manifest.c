/* src/data/manifest.c: data-set manifests -> samples (include/avlens/dataset.h, docs/data.md).
 *
 * Three shapes are read:
 * - the authors' conversations (kaistmm/crossmodal-hub, preprocess/step1/output2input_*.py
 *   writes them): a JSON list of chats, each [system message, user message]; the user message's
 *   content holds a {"type":"video","video": file or [frames]} (and optionally an audio item)
 *   and a {"type":"text"} with the question; extra keys on the user message carry the label
 *   ("label" letter, "label_name", "choices"), the answers of earlier steps and so on;
 * - flat items: a JSON list, or JSON lines, of objects with media keys ("video", "audio",
 *   "audio_path") and the same label keys: the authors' result lines and
 *   object_important_seconds_*.json;
 * - VGGSound-style CSV: "<ytid>_<start:06d>.mp4,<label>" (RFC 4180 quoting, CRLF or LF), or a
 *   CSV with a header naming "video_id"/"file" and "label" columns.
 * A bad record becomes an avl_dataset_error and the others load; only a file that is unusable
 * as a whole fails the load.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data_internal.h"

struct avl_dataset {
    avl__pool pool;
    avl_manifest_format format;
    avl_sample *samples;
    int64_t n, cap;
    avl_dataset_error *errors;
    int64_t n_err, cap_err;
    int64_t filtered;
    /* id -> sample index, open addressing (power-of-two size, at most half full) */
    int64_t *slots;
    int64_t n_slots;
    const char *name;  /* the manifest's path, for messages */
};

static const char *const SYSTEM_DEFAULT = "You are a helpful assistant.";

avl_dataset_params avl_dataset_default_params(void)
{
    avl_dataset_params p;
    memset(&p, 0, sizeof p);
    p.format = AVL_MANIFEST_AUTO;
    p.max_options = 20;
    p.system_prompt = SYSTEM_DEFAULT;
    return p;
}

void avl_dataset_free(avl_dataset *ds)
{
    if (!ds) return;
    avl__pool_free(&ds->pool);
    avl__free(ds->samples);
    avl__free(ds->errors);
    avl__free(ds->slots);
    avl__free(ds);
}

int64_t avl_dataset_count(const avl_dataset *ds) { return ds ? ds->n : 0; }
int64_t avl_dataset_error_count(const avl_dataset *ds) { return ds ? ds->n_err : 0; }
int64_t avl_dataset_filtered_count(const avl_dataset *ds) { return ds ? ds->filtered : 0; }
avl_manifest_format avl_dataset_format(const avl_dataset *ds) { return ds ? ds->format : AVL_MANIFEST_AUTO; }

const avl_sample *avl_dataset_at(const avl_dataset *ds, int64_t i)
{
    return ds && i >= 0 && i < ds->n ? &ds->samples[i] : NULL;
}

const avl_dataset_error *avl_dataset_error_at(const avl_dataset *ds, int64_t i)
{
    return ds && i >= 0 && i < ds->n_err ? &ds->errors[i] : NULL;
}

/* ---- id table ---------------------------------------------------------------------------- */

static int64_t *slot_for(const avl_dataset *ds, const char *id)
{
    uint64_t mask = (uint64_t)ds->n_slots - 1;
    uint64_t h = avl__mix64(avl__fnv1a(AVL__FNV_OFFSET, id)) & mask;
    while (ds->slots[h] >= 0 && strcmp(ds->samples[ds->slots[h]].id, id) != 0) h = (h + 1) & mask;
    return &ds->slots[h];
}

int64_t avl_dataset_find(const avl_dataset *ds, const char *id)
{
    if (!ds || !id || !ds->n_slots) return -1;
    return *slot_for(ds, id);
}

static avl_status grow_slots(avl_dataset *ds)
{
    if (ds->n_slots && (ds->n + 1) * 2 <= ds->n_slots) return AVL_OK;
    int64_t ns = ds->n_slots ? ds->n_slots * 2 : 64;
    int64_t *s = avl__malloc((size_t)ns * sizeof *s);
    if (!s) return avl__err(AVL_E_NOMEM, "%s: out of memory", ds->name);
    for (int64_t i = 0; i < ns; i++) s[i] = -1;
    avl__free(ds->slots);
    ds->slots = s;
    ds->n_slots = ns;
    for (int64_t i = 0; i < ds->n; i++) *slot_for(ds, ds->samples[i].id) = i;
    return AVL_OK;
}

/* ---- building samples -------------------------------------------------------------------- */

/* One record being read; the strings point into the JSON or the pool until committed. */
typedef struct {
    avl_dataset *ds;
    const avl_dataset_params *params;
    int64_t index;
    avl_sample s;
    const char *id_hint;  /* id for error messages before the id is known */
    bool failed;          /* an error was recorded for this record */
} rec_ctx;

/* Records a per-record error (the message is composed here) and returns OK so that loading
 * goes on; returns NOMEM only when the error list itself cannot grow. */
static avl_status rec_error(rec_ctx *c, avl_status code, const char *fmt, ...) AVL__PRINTF(3, 4);
static avl_status rec_error(rec_ctx *c, avl_status code, const char *fmt, ...)
{
    avl_dataset *ds = c->ds;
    c->failed = true;
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *id = c->s.id ? c->s.id : c->id_hint;
    char msg[1400];
    const char *unit = ds->format == AVL_MANIFEST_CSV ? "row" : "record";
    if (id)
        snprintf(msg, sizeof msg, "%s: %s %lld (%s): %s", ds->name, unit, (long long)c->index, id, what);
    else
        snprintf(msg, sizeof msg, "%s: %s %lld: %s", ds->name, unit, (long long)c->index, what);
    /* one line, whatever the record held: control characters (a newline in a quoted CSV
     * field, say) print as '?' */
    for (char *m = msg; *m; m++)
        if ((unsigned char)*m < 0x20) *m = '?';
    if (ds->n_err == ds->cap_err) {
        int64_t nc = ds->cap_err ? ds->cap_err * 2 : 16;
        avl_dataset_error *ne = avl__realloc(ds->errors, (size_t)nc * sizeof *ne);
        if (!ne) return avl__err(AVL_E_NOMEM, "%s: out of memory", ds->name);
        ds->errors = ne;
        ds->cap_err = nc;
    }
    avl_dataset_error *e = &ds->errors[ds->n_err];
    e->index = c->index;
    e->status = code;
    e->id = avl__pool_strdup(&ds->pool, id);
    e->message = avl__pool_strdup(&ds->pool, msg);
    if ((id && !e->id) || !e->message) return avl__err(AVL_E_NOMEM, "%s: out of memory", ds->name);
    ds->n_err++;
    return AVL_OK;
}

#define NOMEM(c) avl__err(AVL_E_NOMEM, "%s: out of memory", (c)->ds->name)

static bool is_abs(const char *p) { return p[0] == '/'; }

/* Joins a relative media path to media_root; copies into the pool. */
static const char *media_path(rec_ctx *c, const char *p)
{
    const char *root = c->params->media_root;
    if (!root || !*root || is_abs(p)) return avl__pool_strdup(&c->ds->pool, p);
    size_t a = strlen(root), b = strlen(p);
    bool slash = root[a - 1] != '/';
    char *d = avl__pool_alloc(&c->ds->pool, a + slash + b + 1);
    if (!d) return NULL;
    memcpy(d, root, a);
    if (slash) d[a] = '/';
    memcpy(d + a + slash, p, b + 1);
    return d;
}

/* The file name without folder and without its last extension. */
static const char *path_stem(avl__pool *pool, const char *p)
{
    const char *b = strrchr(p, '/');
    b = b ? b + 1 : p;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    return avl__pool_strndup(pool, b, n);
}

/* The name of the folder holding p ("a/b/c.jpg" -> "b"), NULL when p has no folder. */
static const char *parent_name(avl__pool *pool, const char *p)
{
    const char *e = strrchr(p, '/');
    if (!e) return NULL;
    const char *s = e;
    while (s > p && s[-1] != '/') s--;
    if (s == e) return NULL;
    return avl__pool_strndup(pool, s, (size_t)(e - s));
}

static bool id_ok(const char *id)
{
    if (!id || !*id || strlen(id) > 512) return false;
    for (const char *s = id; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '/') return false;
    return true;
}

/* Parses "A. text" lines: the first run of lines "X. ..." with X = 'A', 'B', ... in order.
 * Returns the count (0 when the text has no options), or -1 with *bad describing a jump. */
static int parse_options(rec_ctx *c, const char *text, const char ***out, char *bad, size_t badn)
{
    *out = NULL;
    const char *starts[26];
    size_t lens[26];
    int n = 0;
    const char *line = text;
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len >= 3 && line[0] >= 'A' && line[0] <= 'Z' && line[1] == '.' && line[2] == ' ') {
            if (line[0] != 'A' + n) {
                if (n == 0 && line[0] != 'A') { /* e.g. "B. " inside prose: not an option list */
                    line = nl ? nl + 1 : NULL;
                    continue;
                }
                if (n > 0 && line[0] == 'A') break; /* a second list: keep the first */
                snprintf(bad, badn, "options in the prompt jump from %c to %c", n ? 'A' + n - 1 : '-', line[0]);
                return -1;
            }
            size_t l = len - 3;
            while (l > 0 && (line[3 + l - 1] == '\r' || line[3 + l - 1] == ' ')) l--;
            starts[n] = line + 3;
            lens[n] = l;
            n++;
            if (n == 26) break;
        } else if (n > 0) {
            break; /* the list ended */
        }
        line = nl ? nl + 1 : NULL;
    }
    if (n == 0) return 0;
    const char **v = avl__pool_alloc(&c->ds->pool, (size_t)n * sizeof *v);
    if (!v) return -2;
    for (int i = 0; i < n; i++)
        if (!(v[i] = avl__pool_strndup(&c->ds->pool, starts[i], lens[i]))) return -2;
    *out = v;
    return n;
}

char *avl_classification_prompt(const char *const *options, int n)
{
    if (!options || n < 1 || n > 26) return NULL;
    avl__sb b = {0};
    avl__sb_puts(&b, "Classify the sounding object into one of the categories below:\n\n");
    for (int i = 0; i < n; i++) avl__sb_printf(&b, "%s%c. %s", i ? "\n" : "", 'A' + i, options[i] ? options[i] : "");
    /* the authors' prompt ends "(A–T)" with an en dash (U+2013) */
    avl__sb_printf(&b, "\n\nRespond ONLY with a single label letter (A\xe2\x80\x93%c).", 'A' + n - 1);
    if (b.failed) {
        avl__sb_free(&b);
        return NULL;
    }
    return b.buf;
}

static const char *json_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Options from a "choices" object {"A": "...", ...}: letters must run from A without gaps. */
static int choices_options(rec_ctx *c, json_t *choices, const char ***out, char *bad, size_t badn)
{
    size_t n = json_object_size(choices);
    *out = NULL;
    if (n == 0) return 0;
    if (n > 26) {
        snprintf(bad, badn, "\"choices\" has %zu entries (at most 26)", n);
        return -1;
    }
    const char **v = avl__pool_alloc(&c->ds->pool, n * sizeof *v);
    if (!v) return -2;
    for (size_t i = 0; i < n; i++) {
        char key[2] = {(char)('A' + i), 0};
        const char *t = json_str(choices, key);
        if (!t) {
            snprintf(bad, badn, "\"choices\" lacks a text for letter %c", key[0]);
            return -1;
        }
        if (!(v[i] = avl__pool_strdup(&c->ds->pool, t))) return -2;
    }
    *out = v;
    return (int)n;
}

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Label checks shared by every shape: the letter must name an option, the name must agree. */
static avl_status settle_label(rec_ctx *c, const char *label, const char *label_name, bool *bad)
{
    avl_sample *s = &c->s;
    *bad = true;
    if (label && label[0] >= 'A' && label[0] <= 'Z' && label[1] == '\0') {
        if (s->n_options == 0) {
            s->label = label[0];
            s->label_name = avl__pool_strdup(&c->ds->pool, label_name);
            if (label_name && !s->label_name) return NOMEM(c);
            *bad = false;
            return AVL_OK;
        }
        int k = label[0] - 'A';
        if (k >= s->n_options)
            return rec_error(c, AVL_E_FORMAT, "label '%c' is not among the %d options (A-%c)", label[0],
                             s->n_options, 'A' + s->n_options - 1);
        if (label_name && strcmp(label_name, s->options[k]) != 0)
            return rec_error(c, AVL_E_FORMAT, "label_name '%s' differs from option %c '%s'", label_name,
                             label[0], s->options[k]);
        s->label = label[0];
        s->label_name = s->options[k];
        *bad = false;
        return AVL_OK;
    }
    /* no letter: a class name (label or label_name) that must be among the options */
    const char *name = label ? label : label_name;
    if (!name) {
        *bad = false;
        return AVL_OK;
    }
    if (s->n_options == 0) {
        if (!(s->label_name = avl__pool_strdup(&c->ds->pool, name))) return NOMEM(c);
        *bad = false;
        return AVL_OK;
    }
    for (int i = 0; i < s->n_options; i++)
        if (!strcmp(s->options[i], name)) {
            s->label = (char)('A' + i);
            s->label_name = s->options[i];
            *bad = false;
            return AVL_OK;
        }
    return rec_error(c, AVL_E_FORMAT, "the option list lacks the label '%s'", name);
}

/* Adds the finished sample (duplicate ids and missing media are errors). */
static avl_status commit(rec_ctx *c)
{
    avl_dataset *ds = c->ds;
    avl_sample *s = &c->s;
    if (c->params->check_media) {
        const char *missing = NULL;
        if (s->video_path && !file_exists(s->video_path)) missing = s->video_path;
        for (int64_t i = 0; !missing && i < s->n_frames; i++)
            if (!file_exists(s->frames[i])) missing = s->frames[i];
        if (!missing && s->audio_path && !file_exists(s->audio_path)) missing = s->audio_path;
        if (missing) return rec_error(c, AVL_E_IO, "media file %s does not exist", missing);
    }
    avl_status rc = grow_slots(ds);
    if (rc != AVL_OK) return rc;
    int64_t *slot = slot_for(ds, s->id);
    if (*slot >= 0)
        return rec_error(c, AVL_E_FORMAT, "duplicate id (first at %s %lld)", ds->format == AVL_MANIFEST_CSV ? "row" : "record",
                         (long long)ds->samples[*slot].index);
    if (ds->n == ds->cap) {
        int64_t nc = ds->cap ? ds->cap * 2 : 64;
        avl_sample *ns = avl__realloc(ds->samples, (size_t)nc * sizeof *ns);
        if (!ns) return NOMEM(c);
        ds->samples = ns;
        ds->cap = nc;
    }
    s->index = c->index;
    if (!s->extra_json) s->extra_json = "{}";
    ds->samples[ds->n] = *s;
    *slot = ds->n;
    ds->n++;
    return AVL_OK;
}

/* Moves the keys of o not in `used` into the sample's extra_json. */
static avl_status keep_extra(rec_ctx *c, json_t *o, const char *const *used)
{
    json_t *extra = json_object();
    if (!extra) return NOMEM(c);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        bool skip = false;
        for (const char *const *u = used; *u && !skip; u++) skip = !strcmp(*u, key);
        if (!skip && json_object_set(extra, key, v) != 0) {
            json_decref(extra);
            return NOMEM(c);
        }
    }
    char *t = json_dumps(extra, JSON_COMPACT);
    json_decref(extra);
    if (!t) return NOMEM(c);
    c->s.extra_json = avl__pool_strdup(&c->ds->pool, t);
    free(t);
    return c->s.extra_json ? AVL_OK : NOMEM(c);
}

/* Reads the media value of a "video" key: a file path, a list of frame paths, or (items only)
 * a bare id. Returns 1 when taken, 0 when absent, -1 after recording an error. */
static int take_video(rec_ctx *c, json_t *v, bool allow_bare_id, avl_status *rc)
{
    avl_sample *s = &c->s;
    *rc = AVL_OK;
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) {
        const char *p = json_string_value(v);
        if (!*p) {
            *rc = rec_error(c, AVL_E_FORMAT, "\"video\" is an empty string");
            return -1;
        }
        if (allow_bare_id && !strchr(p, '/') && !strchr(p, '.')) {
            /* the authors' result lines name the clip by id only */
            if (!(s->id = avl__pool_strdup(&c->ds->pool, p))) *rc = NOMEM(c);
            return *rc ? -1 : 0;
        }
        if (!(s->video_path = media_path(c, p))) {
            *rc = NOMEM(c);
            return -1;
        }
        return 1;
    }
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (n == 0) {
            *rc = rec_error(c, AVL_E_FORMAT, "\"video\" frame list is empty");
            return -1;
        }
        const char **f = avl__pool_alloc(&c->ds->pool, n * sizeof *f);
        if (!f) {
            *rc = NOMEM(c);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);
            if (!json_is_string(e) || !*json_string_value(e)) {
                *rc = rec_error(c, AVL_E_FORMAT, "\"video\" frame %zu is not a file name", i);
                return -1;
            }
            if (!(f[i] = media_path(c, json_string_value(e)))) {
                *rc = NOMEM(c);
                return -1;
            }
        }
        s->frames = f;
        s->n_frames = (int64_t)n;
        return 1;
    }
    *rc = rec_error(c, AVL_E_FORMAT, "\"video\" is neither a file name nor a list of frames");
    return -1;
}

static avl_status take_audio(rec_ctx *c, const char *p)
{
    if (!p || !*p || !strcmp(p, "unknown_audio")) return AVL_OK; /* the authors' placeholder */
    return (c->s.audio_path = media_path(c, p)) ? AVL_OK : NOMEM(c);
}

/* The id, once the media are known: an explicit string "id", else from the media. */
static avl_status settle_id(rec_ctx *c, json_t *o, bool *bad)
{
    avl_sample *s = &c->s;
    avl__pool *pool = &c->ds->pool;
    *bad = true;
    const char *explicit_id = json_str(o, "id");
    if (explicit_id) s->id = avl__pool_strdup(pool, explicit_id);
    else if (!s->id && s->video_path) s->id = path_stem(pool, s->video_path);
    else if (!s->id && s->n_frames) s->id = parent_name(pool, s->frames[0]);
    if (!s->id && s->audio_path) s->id = path_stem(pool, s->audio_path);
    if (!s->id && s->n_frames)
        return rec_error(c, AVL_E_FORMAT, "cannot derive an id: frame '%s' is not inside a folder", s->frames[0]);
    if (!s->id) return rec_error(c, AVL_E_FORMAT, "cannot derive an id: no \"id\" and no media");
    if (!id_ok(s->id)) return rec_error(c, AVL_E_FORMAT, "id '%.80s' is empty, too long or has '/' or control characters", s->id);
    *bad = false;
    return AVL_OK;
}

/* Options from the prompt and from "choices", checked against each other. */
static avl_status settle_options(rec_ctx *c, json_t *o, bool *bad)
{
    avl_sample *s = &c->s;
    char why[256];
    *bad = true;
    const char **from_text = NULL, **from_choices = NULL;
    int nt = s->question ? parse_options(c, s->question, &from_text, why, sizeof why) : 0;
    if (nt == -2) return NOMEM(c);
    if (nt < 0) return rec_error(c, AVL_E_FORMAT, "%s", why);
    json_t *ch = json_object_get(o, "choices");
    int nc = 0;
    if (ch && !json_is_null(ch)) {
        if (!json_is_object(ch)) return rec_error(c, AVL_E_FORMAT, "\"choices\" is not an object");
        nc = choices_options(c, ch, &from_choices, why, sizeof why);
        if (nc == -2) return NOMEM(c);
        if (nc < 0) return rec_error(c, AVL_E_FORMAT, "%s", why);
    }
    if (nt && nc) {
        if (nt != nc)
            return rec_error(c, AVL_E_FORMAT, "the prompt lists %d options, \"choices\" has %d", nt, nc);
        for (int i = 0; i < nt; i++)
            if (strcmp(from_text[i], from_choices[i]) != 0)
                return rec_error(c, AVL_E_FORMAT, "option %c in the prompt ('%s') differs from \"choices\" ('%s')",
                                 'A' + i, from_text[i], from_choices[i]);
    }
    s->options = nt ? from_text : from_choices;
    s->n_options = nt ? nt : nc;
    if (!s->question && s->n_options) {
        /* a result line without its prompt: rebuild the authors' classification prompt */
        char *q = avl_classification_prompt(s->options, s->n_options);
        if (!q) return NOMEM(c);
        s->question = avl__pool_strdup(&c->ds->pool, q);
        avl__free(q);
        if (!s->question) return NOMEM(c);
    }
    *bad = false;
    return AVL_OK;
}

/* The label keys and the extra-field split, common to both JSON shapes. o holds the keys. */
static avl_status finish_json_record(rec_ctx *c, json_t *o, const char *const *used)
{
    bool bad;
    avl_status rc = settle_id(c, o, &bad);
    if (rc != AVL_OK || bad) return rc;
    rc = settle_options(c, o, &bad);
    if (rc != AVL_OK || bad) return rc;
    json_t *lv = json_object_get(o, "label");
    if (lv && !json_is_null(lv) && !json_is_string(lv)) return rec_error(c, AVL_E_FORMAT, "\"label\" is not a string");
    json_t *ln = json_object_get(o, "label_name");
    if (ln && !json_is_null(ln) && !json_is_string(ln)) return rec_error(c, AVL_E_FORMAT, "\"label_name\" is not a string");
    rc = settle_label(c, json_str(o, "label"), json_str(o, "label_name"), &bad);
    if (rc != AVL_OK || bad) return rc;
    c->s.original_label = avl__pool_strdup(&c->ds->pool, json_str(o, "original_label"));
    c->s.objects = avl__pool_strdup(&c->ds->pool, json_str(o, "objects"));
    if ((json_str(o, "original_label") && !c->s.original_label) || (json_str(o, "objects") && !c->s.objects))
        return NOMEM(c);
    rc = keep_extra(c, o, used);
    if (rc != AVL_OK) return rc;
    return commit(c);
}

/* Concatenated text of a message's content (a string, or a list of {"type":"text"} items). */
static const char *content_text(rec_ctx *c, json_t *content, bool *bad)
{
    *bad = false;
    if (json_is_string(content)) return avl__pool_strdup(&c->ds->pool, json_string_value(content));
    if (!json_is_array(content)) {
        *bad = true;
        return NULL;
    }
    avl__sb b = {0};
    size_t i;
    json_t *it;
    bool any = false;
    json_array_foreach(content, i, it) {
        const char *type = json_str(it, "type");
        if (type && !strcmp(type, "text") && json_str(it, "text")) {
            avl__sb_puts(&b, json_str(it, "text"));
            any = true;
        }
    }
    const char *r = NULL;
    if (any && !b.failed) r = avl__pool_strdup(&c->ds->pool, b.buf ? b.buf : "");
    avl__sb_free(&b);
    return r;
}

static avl_status conversation_record(rec_ctx *c, json_t *conv)
{
    if (!json_is_array(conv)) return rec_error(c, AVL_E_FORMAT, "not a conversation (a list of messages)");
    json_t *sys = NULL, *user = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(conv, i, m) {
        if (!json_is_object(m)) return rec_error(c, AVL_E_FORMAT, "message %zu is not an object", i);
        const char *role = json_str(m, "role");
        if (!role) return rec_error(c, AVL_E_FORMAT, "message %zu has no \"role\"", i);
        if (!strcmp(role, "system") && !sys) sys = m;
        else if (!strcmp(role, "user") && !user) user = m;
    }
    if (!user) return rec_error(c, AVL_E_FORMAT, "no user message");
    bool bad;
    if (sys) {
        c->s.system_prompt = content_text(c, json_object_get(sys, "content"), &bad);
        if (bad) return rec_error(c, AVL_E_FORMAT, "the system message's \"content\" is neither text nor a list");
    }
    json_t *content = json_object_get(user, "content");
    if (!json_is_array(content)) return rec_error(c, AVL_E_FORMAT, "the user message has no \"content\" list");
    avl__sb q = {0};
    bool have_text = false;
    json_t *it;
    json_array_foreach(content, i, it) {
        const char *type = json_str(it, "type");
        if (!type) {
            avl__sb_free(&q);
            return rec_error(c, AVL_E_FORMAT, "user content item %zu has no \"type\"", i);
        }
        avl_status rc = AVL_OK;
        if (!strcmp(type, "text")) {
            const char *t = json_str(it, "text");
            if (!t) {
                avl__sb_free(&q);
                return rec_error(c, AVL_E_FORMAT, "user content item %zu has no \"text\"", i);
            }
            avl__sb_puts(&q, t);
            have_text = true;
        } else if (!strcmp(type, "video")) {
            if (c->s.video_path || c->s.n_frames) rc = rec_error(c, AVL_E_UNSUPPORTED, "more than one video item");
            else if (take_video(c, json_object_get(it, "video"), false, &rc) == 0)
                rc = rec_error(c, AVL_E_FORMAT, "video item %zu has no \"video\"", i);
        } else if (!strcmp(type, "audio")) {
            const char *a = json_str(it, "audio");
            if (!a) rc = rec_error(c, AVL_E_FORMAT, "audio item %zu has no \"audio\" file", i);
            else rc = take_audio(c, a);
        } else {
            rc = rec_error(c, AVL_E_UNSUPPORTED, "user content item %zu has type '%s' (video, audio, text are read)", i, type);
        }
        if (rc != AVL_OK || c->failed) {
            avl__sb_free(&q);
            return rc;
        }
    }
    if (q.failed) {
        avl__sb_free(&q);
        return NOMEM(c);
    }
    if (have_text) c->s.question = avl__pool_strdup(&c->ds->pool, q.buf ? q.buf : "");
    avl__sb_free(&q);
    if (have_text && !c->s.question) return NOMEM(c);
    if (!c->s.video_path && !c->s.n_frames && !c->s.audio_path) {
        c->id_hint = NULL;
        return rec_error(c, AVL_E_FORMAT, "the user message has no video or audio item");
    }
    if (!have_text) {
        /* derive the id first so the message names the sample */
        if (c->s.video_path) c->id_hint = path_stem(&c->ds->pool, c->s.video_path);
        else if (c->s.n_frames) c->id_hint = parent_name(&c->ds->pool, c->s.frames[0]);
        return rec_error(c, AVL_E_FORMAT, "the user message has no text item (the question)");
    }
    static const char *const used[] = {"role", "content", "id", "label", "label_name", "original_label",
                                       "objects", "choices", NULL};
    return finish_json_record(c, user, used);
}

static avl_status item_record(rec_ctx *c, json_t *o)
{
    if (!json_is_object(o)) return rec_error(c, AVL_E_FORMAT, "not a JSON object");
    avl_status rc;
    c->id_hint = json_str(o, "id");
    if (take_video(c, json_object_get(o, "video"), true, &rc) < 0) return rc;
    json_t *a = json_object_get(o, "audio");
    if (!a || json_is_null(a)) a = json_object_get(o, "audio_path");
    if (a && !json_is_null(a)) {
        if (!json_is_string(a)) return rec_error(c, AVL_E_FORMAT, "\"audio\" is not a file name");
        if ((rc = take_audio(c, json_string_value(a))) != AVL_OK) return rc;
    }
    json_t *t = json_object_get(o, "text");
    if (t && !json_is_null(t)) {
        if (!json_is_string(t)) return rec_error(c, AVL_E_FORMAT, "\"text\" is not a string");
        if (!(c->s.question = avl__pool_strdup(&c->ds->pool, json_string_value(t)))) return NOMEM(c);
    }
    static const char *const used[] = {"video", "audio", "audio_path", "text", "label", "label_name",
                                       "original_label", "objects", "choices", NULL};
    /* a numeric "id" (the authors' running index) stays in extra; a string id is the id */
    static const char *const used_sid[] = {"id", "video", "audio", "audio_path", "text", "label",
                                           "label_name", "original_label", "objects", "choices", NULL};
    return finish_json_record(c, o, json_is_string(json_object_get(o, "id")) ? used_sid : used);
}

/* ---- JSON shapes ------------------------------------------------------------------------- */

static void rec_init(rec_ctx *c, avl_dataset *ds, const avl_dataset_params *p, int64_t index)
{
    memset(c, 0, sizeof *c);
    c->ds = ds;
    c->params = p;
    c->index = index;
}

static bool looks_like_item(json_t *o)
{
    return json_object_get(o, "video") || json_object_get(o, "audio") || json_object_get(o, "audio_path");
}

static avl_status load_json(avl_dataset *ds, const char *data, size_t size, const avl_dataset_params *p)
{
    json_error_t err;
    json_t *root = json_loadb(data, size, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        /* not one JSON value: JSON lines, each a record (a bad line is that record's error) */
        if (p->format == AVL_MANIFEST_CONVERSATIONS || size == 0 || data[0] != '{')
            return avl__err(AVL_E_FORMAT, "%s: line %d column %d: %s", ds->name, err.line, err.column, err.text);
        ds->format = AVL_MANIFEST_ITEMS;
        int64_t index = 0;
        const char *line = data, *end = data + size;
        int64_t lineno = 0;
        while (line < end) {
            const char *nl = memchr(line, '\n', (size_t)(end - line));
            size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
            lineno++;
            bool blank = true;
            for (size_t k = 0; k < len && blank; k++) blank = isspace((unsigned char)line[k]) != 0;
            if (!blank) {
                rec_ctx c;
                rec_init(&c, ds, p, index);
                json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
                avl_status rc;
                if (!o) rc = rec_error(&c, AVL_E_FORMAT, "line %lld is not JSON: %s", (long long)lineno, err.text);
                else rc = item_record(&c, o);
                json_decref(o);
                if (rc != AVL_OK) return rc;
                index++;
            }
            line = nl ? nl + 1 : end;
        }
        return AVL_OK;
    }
    avl_status rc = AVL_OK;
    if (json_is_object(root)) {
        if (!looks_like_item(root)) {
            const char *k0 = json_object_iter_key(json_object_iter(root));
            rc = avl__err(AVL_E_FORMAT,
                          "%s: the top level is an object keyed by '%s'..., not a manifest (a list of conversations or "
                          "records; JSON lines)", ds->name, k0 ? k0 : "");
        } else {
            ds->format = AVL_MANIFEST_ITEMS;
            rec_ctx c;
            rec_init(&c, ds, p, 0);
            rc = item_record(&c, root);
        }
        json_decref(root);
        return rc;
    }
    if (!json_is_array(root)) {
        json_decref(root);
        return avl__err(AVL_E_FORMAT, "%s: the top level is neither a list nor an object", ds->name);
    }
    json_t *first = json_array_get(root, 0);
    bool conv = p->format == AVL_MANIFEST_CONVERSATIONS ||
                (p->format == AVL_MANIFEST_AUTO && (json_is_array(first) || !first));
    ds->format = conv ? AVL_MANIFEST_CONVERSATIONS : AVL_MANIFEST_ITEMS;
    size_t i;
    json_t *e;
    json_array_foreach(root, i, e) {
        rec_ctx c;
        rec_init(&c, ds, p, (int64_t)i);
        rc = conv ? conversation_record(&c, e) : item_record(&c, e);
        if (rc != AVL_OK) break;
    }
    json_decref(root);
    return rc;
}

typedef struct {
    const char **names;
    int64_t n;
} class_list;

/* ---- CSV --------------------------------------------------------------------------------- */

/* Reads one RFC 4180 row starting at *pos into fields (pool strings). Returns the field count,
 * 0 at the end of input, -1 on an unterminated quote, -2 on allocation failure. */
static int csv_row(avl__pool *pool, const char *d, size_t n, size_t *pos, const char **fields, int max_fields)
{
    size_t i = *pos;
    if (i >= n) return 0;
    int nf = 0;
    avl__sb f = {0};
    for (;;) {
        f.len = 0;
        if (f.buf) f.buf[0] = '\0';
        bool quoted = i < n && d[i] == '"';
        if (quoted) {
            i++;
            for (;;) {
                if (i >= n) {
                    avl__sb_free(&f);
                    return -1;
                }
                if (d[i] == '"') {
                    if (i + 1 < n && d[i + 1] == '"') {
                        avl__sb_put(&f, "\"", 1);
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                avl__sb_put(&f, d + i, 1);
                i++;
            }
        }
        while (i < n && d[i] != ',' && d[i] != '\n' && d[i] != '\r') avl__sb_put(&f, d + i++, 1);
        if (nf < max_fields) {
            fields[nf] = avl__pool_strdup(pool, f.buf ? f.buf : "");
            if (!fields[nf] || f.failed) {
                avl__sb_free(&f);
                return -2;
            }
        }
        nf++;
        if (i < n && d[i] == ',') {
            i++;
            continue;
        }
        if (i < n && d[i] == '\r') i++;
        if (i < n && d[i] == '\n') i++;
        break;
    }
    avl__sb_free(&f);
    *pos = i;
    return nf;
}

static avl_status add_class(avl_dataset *ds, class_list *cl, int64_t *cap, const char *name, size_t n, const char *path)
{
    while (n && (name[0] == ' ' || name[0] == '\t')) name++, n--;
    while (n && (name[n - 1] == ' ' || name[n - 1] == '\t' || name[n - 1] == '\r')) n--;
    if (n == 0 || name[0] == '#') return AVL_OK;
    if (cl->n == *cap) {
        int64_t nc = *cap ? *cap * 2 : 64;
        const char **nn = avl__realloc(cl->names, (size_t)nc * sizeof *nn);
        if (!nn) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
        cl->names = nn;
        *cap = nc;
    }
    if (!(cl->names[cl->n] = avl__pool_strndup(&ds->pool, name, n))) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    cl->n++;
    return AVL_OK;
}

/* A class list: one class per line (commas allowed), or a CSV whose header is
 * index,mid,display_name (vggsounder-classes.csv), where the third column is the class. */
static avl_status load_classes(avl_dataset *ds, const char *path, class_list *cl)
{
    char *buf;
    size_t len;
    avl_status rc = avl__read_file(path, &buf, &len);
    if (rc != AVL_OK) return avl__err_wrap(rc, "class list");
    int64_t cap = 0;
    cl->names = NULL;
    cl->n = 0;
    static const char header[] = "index,mid,display_name";
    if (!strncmp(buf, header, sizeof header - 1)) {
        size_t pos = 0;
        const char *f[8];
        int nf = csv_row(&ds->pool, buf, len, &pos, f, 8); /* the header */
        while (rc == AVL_OK && nf > 0) {
            nf = csv_row(&ds->pool, buf, len, &pos, f, 8);
            if (nf == -1) rc = avl__err(AVL_E_FORMAT, "%s: unterminated quote", path);
            else if (nf == -2) rc = avl__err(AVL_E_NOMEM, "%s: out of memory", path);
            else if (nf >= 3) rc = add_class(ds, cl, &cap, f[2], strlen(f[2]), path);
            else if (nf > 0 && !(nf == 1 && !f[0][0])) rc = avl__err(AVL_E_FORMAT, "%s: a row has %d fields, wants 3", path, nf);
        }
    } else {
        const char *line = buf, *end = buf + len;
        while (rc == AVL_OK && line < end) {
            const char *nl = memchr(line, '\n', (size_t)(end - line));
            size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
            rc = add_class(ds, cl, &cap, line, n, path);
            line = nl ? nl + 1 : end;
        }
    }
    avl__free(buf);
    if (rc == AVL_OK && cl->n == 0) rc = avl__err(AVL_E_FORMAT, "%s: no classes", path);
    if (rc != AVL_OK) {
        avl__free(cl->names);
        cl->names = NULL;
        cl->n = 0;
    }
    return rc;
}

typedef struct {
    uint64_t key;
    const char *name;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Options for one CSV sample: every class when they fit, else the label plus the
 * max_options-1 distractors with the smallest keys; in key order. The key of a class is
 * mix(seed, id, class), so the choice and the order depend on the id, not on row order. */
static avl_status csv_options(rec_ctx *c, const class_list *cl, int64_t label_idx)
{
    int64_t n = cl->n;
    scored *sc = avl__malloc((size_t)n * sizeof *sc);
    if (!sc) return NOMEM(c);
    uint64_t base = avl__fnv1a(AVL__FNV_OFFSET ^ avl__mix64(c->params->option_seed), c->s.id);
    for (int64_t i = 0; i < n; i++) {
        sc[i].key = avl__mix64(avl__fnv1a(base, cl->names[i]));
        sc[i].name = cl->names[i];
    }
    scored lab = sc[label_idx];
    sc[label_idx] = sc[n - 1];
    int64_t m = c->params->max_options > 0 ? c->params->max_options : 20;
    if (m > 26) m = 26;
    qsort(sc, (size_t)(n - 1), sizeof *sc, cmp_scored);
    int64_t k = n < m ? n : m;
    sc[k - 1] = lab; /* the label joins the k-1 first distractors */
    qsort(sc, (size_t)k, sizeof *sc, cmp_scored);
    const char **v = avl__pool_alloc(&c->ds->pool, (size_t)k * sizeof *v);
    if (!v) {
        avl__free(sc);
        return NOMEM(c);
    }
    for (int64_t i = 0; i < k; i++) {
        v[i] = sc[i].name;
        if (sc[i].name == lab.name) {
            c->s.label = (char)('A' + i);
            c->s.label_name = lab.name;
        }
    }
    avl__free(sc);
    c->s.options = v;
    c->s.n_options = (int)k;
    char *q = avl_classification_prompt(v, (int)k);
    if (!q) return NOMEM(c);
    c->s.question = avl__pool_strdup(&c->ds->pool, q);
    avl__free(q);
    return c->s.question ? AVL_OK : NOMEM(c);
}

static avl_status load_csv(avl_dataset *ds, const char *d, size_t n, const avl_dataset_params *p)
{
    ds->format = AVL_MANIFEST_CSV;
    class_list cl = {0};
    avl_status rc = AVL_OK;
    if (p->class_list && *p->class_list && (rc = load_classes(ds, p->class_list, &cl)) != AVL_OK) return rc;
    size_t pos = 0;
    if (n >= 3 && !memcmp(d, "\xef\xbb\xbf", 3)) pos = 3; /* a UTF-8 byte-order mark */
    int id_col = 0, label_col = 1;
    int64_t index = 0;
    bool first = true;
    const char *hdr[16] = {0}; /* column names of a headed CSV */
    bool headed = false;
    for (;;) {
        const char *f[16];
        int nf = csv_row(&ds->pool, d, n, &pos, f, 16);
        if (nf == 0) break;
        if (nf == -2) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", ds->name);
            break;
        }
        if (nf == -1) {
            rec_ctx c;
            rec_init(&c, ds, p, index);
            rc = rec_error(&c, AVL_E_FORMAT, "unterminated quote (the rest of the file is skipped)");
            break;
        }
        if (nf == 1 && !f[0][0]) continue; /* blank line */
        if (first) {
            first = false;
            /* a header names its columns: video_id/file/path and label */
            int hid = -1, hlab = -1;
            for (int k = 0; k < nf && k < 16; k++) {
                if (!strcmp(f[k], "video_id") || !strcmp(f[k], "file") || !strcmp(f[k], "path") || !strcmp(f[k], "id")) hid = k;
                if (!strcmp(f[k], "label")) hlab = k;
            }
            if (hid >= 0 && hlab >= 0) {
                id_col = hid;
                label_col = hlab;
                headed = true;
                for (int k = 0; k < nf && k < 16; k++) hdr[k] = f[k];
                continue;
            }
        }
        rec_ctx c;
        rec_init(&c, ds, p, index++);
        if (nf > id_col && f[id_col][0]) c.id_hint = f[id_col];
        if (nf <= id_col || nf <= label_col || !f[id_col][0]) {
            if ((rc = rec_error(&c, AVL_E_FORMAT, "wants a file name and a label, has %d field%s", nf, nf == 1 ? "" : "s")) != AVL_OK) break;
            continue;
        }
        const char *file = f[id_col], *label = f[label_col];
        c.id_hint = file;
        if (!*label) {
            if ((rc = rec_error(&c, AVL_E_FORMAT, "empty label")) != AVL_OK) break;
            continue;
        }
        /* "<ytid>_<start>.mp4" names the file; a bare id gets ".mp4" */
        const char *dot = strrchr(file, '.');
        const char *fname = file;
        if (!dot || strchr(dot, '/')) {
            size_t l = strlen(file);
            char *t = avl__pool_alloc(&ds->pool, l + 5);
            if (!t) {
                rc = avl__err(AVL_E_NOMEM, "%s: out of memory", ds->name);
                break;
            }
            memcpy(t, file, l);
            memcpy(t + l, ".mp4", 5);
            fname = t;
        }
        c.s.video_path = media_path(&c, fname);
        c.s.id = path_stem(&ds->pool, fname);
        c.s.system_prompt = avl__pool_strdup(&ds->pool, p->system_prompt);
        c.s.original_label = avl__pool_strdup(&ds->pool, label);
        if (!c.s.video_path || !c.s.id || !c.s.original_label || (p->system_prompt && !c.s.system_prompt)) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", ds->name);
            break;
        }
        if (!id_ok(c.s.id)) {
            if ((rc = rec_error(&c, AVL_E_FORMAT, "file name gives no usable id")) != AVL_OK) break;
            continue;
        }
        /* the other columns, by header name (or "colK") */
        json_t *extra = NULL;
        if (nf > 2) {
            if (!(extra = json_object())) {
                rc = avl__err(AVL_E_NOMEM, "%s: out of memory", ds->name);
                break;
            }
            for (int k = 0; k < nf && k < 16; k++) {
                if (k == id_col || k == label_col) continue;
                char key[16];
                snprintf(key, sizeof key, "col%d", k);
                json_object_set_new(extra, hdr[k] && *hdr[k] ? hdr[k] : key, json_string(f[k]));
            }
        }
        int64_t prev = headed ? avl_dataset_find(ds, c.s.id) : -1;
        if (prev >= 0) {
            /* a multi-label table (vggsounder.csv: one row per clip and label): the later
             * labels of a clip join its sample as "more_labels" */
            avl_sample *ps = &ds->samples[prev];
            json_t *pe = json_loads(ps->extra_json, 0, NULL);
            json_t *item = extra ? json_copy(extra) : json_object();
            json_t *more = pe ? json_object_get(pe, "more_labels") : NULL;
            if (pe && !more && json_object_set_new(pe, "more_labels", json_array()) == 0) more = json_object_get(pe, "more_labels");
            char *t = NULL;
            if (pe && item && more && json_object_set_new(item, "label", json_string(label)) == 0 &&
                json_array_append(more, item) == 0)
                t = json_dumps(pe, JSON_COMPACT);
            json_decref(item);
            json_decref(pe);
            json_decref(extra);
            const char *stored = t ? avl__pool_strdup(&ds->pool, t) : NULL;
            free(t);
            if (!stored) {
                rc = avl__err(AVL_E_NOMEM, "%s: out of memory", ds->name);
                break;
            }
            ps->extra_json = stored;
            continue;
        }
        if (extra) {
            char *t = json_dumps(extra, JSON_COMPACT);
            json_decref(extra);
            c.s.extra_json = t ? avl__pool_strdup(&ds->pool, t) : NULL;
            free(t);
            if (!c.s.extra_json) {
                rc = avl__err(AVL_E_NOMEM, "%s: out of memory", ds->name);
                break;
            }
        }
        if (cl.n) {
            int64_t li = -1;
            for (int64_t k = 0; k < cl.n && li < 0; k++)
                if (!strcmp(cl.names[k], label)) li = k;
            if (li < 0) {
                ds->filtered++;
                continue;
            }
            if ((rc = csv_options(&c, &cl, li)) != AVL_OK) break;
        } else {
            c.s.label_name = c.s.original_label;
        }
        if ((rc = commit(&c)) != AVL_OK) break;
    }
    avl__free(cl.names);
    return rc;
}

/* ---- entry points ------------------------------------------------------------------------ */

avl_status avl_dataset_load_memory(const void *data, size_t size, const char *name,
                                   const avl_dataset_params *params, avl_dataset **out)
{
    if (!out) return avl__err(AVL_E_ARG, "avl_dataset_load: out is NULL");
    *out = NULL;
    if (!data && size) return avl__err(AVL_E_ARG, "avl_dataset_load: data is NULL");
    avl_dataset_params dp = params ? *params : avl_dataset_default_params();
    avl_dataset *ds = avl__calloc(1, sizeof *ds);
    if (!ds) return avl__err(AVL_E_NOMEM, "%s: out of memory", name ? name : "manifest");
    ds->name = avl__pool_strdup(&ds->pool, name ? name : "manifest");
    if (!ds->name) {
        avl_dataset_free(ds);
        return avl__err(AVL_E_NOMEM, "manifest: out of memory");
    }
    const char *d = data;
    size_t k = 0;
    while (k < size && isspace((unsigned char)d[k])) k++;
    avl_manifest_format f = dp.format;
    if (f == AVL_MANIFEST_AUTO) f = k < size && (d[k] == '[' || d[k] == '{') ? AVL_MANIFEST_ITEMS : AVL_MANIFEST_CSV;
    avl_status rc;
    if (k == size) rc = avl__err(AVL_E_FORMAT, "%s: empty manifest", ds->name);
    else if (f == AVL_MANIFEST_CSV) rc = load_csv(ds, d, size, &dp);
    else rc = load_json(ds, d, size, &dp);
    if (rc != AVL_OK) {
        avl_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return AVL_OK;
}

avl_status avl_dataset_load(const char *path, const avl_dataset_params *params, avl_dataset **out)
{
    if (!out || !path) return avl__err(AVL_E_ARG, "avl_dataset_load: path or out is NULL");
    *out = NULL;
    char *buf;
    size_t len;
    avl_status rc = avl__read_file(path, &buf, &len);
    if (rc != AVL_OK) return rc;
    rc = avl_dataset_load_memory(buf, len, path, params, out);
    avl__free(buf);
    return rc;
}
