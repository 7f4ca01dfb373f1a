/* src/data/records.c: the results store (include/avlens/dataset.h, docs/records.md).
 *
 * DIR/<analysis>/shard-<i>-of-<n>.jsonl holds one JSON object per line, one line per finished
 * sample (ok or error). Each line is written with one fwrite and flushed, so a killed run leaves
 * at most one torn line at the end; opening the shard again cuts it off and reads which samples
 * are done. The shard of a sample is a hash of its id (stable when the manifest grows). The
 * file is locked (flock) while open, so two runs of the same shard cannot interleave lines.
 * Merging folds every shard file of an analysis into one record per id.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "data/data_internal.h"

/* ---- shards ------------------------------------------------------------------------------ */

int avl_shard_of(const char *id, int count)
{
    if (!id || count <= 1) return 0;
    return (int)(avl__mix64(avl__fnv1a(AVL__FNV_OFFSET, id)) % (uint64_t)count);
}

bool avl_shard_selects(const char *id, int index, int count)
{
    return count <= 1 || avl_shard_of(id, count) == index;
}

avl_status avl_shard_parse(const char *text, int *index, int *count)
{
    if (!text || !index || !count) return avl__err(AVL_E_ARG, "--shard: no value");
    char *end;
    errno = 0;
    long i = strtol(text, &end, 10);
    if (end == text || *end != '/' || errno) return avl__err(AVL_E_ARG, "--shard '%s': want i/n, e.g. 3/16", text);
    const char *s = end + 1;
    long n = strtol(s, &end, 10);
    if (end == s || *end || errno) return avl__err(AVL_E_ARG, "--shard '%s': want i/n, e.g. 3/16", text);
    if (n < 1 || n > 65536 || i < 0 || i >= n)
        return avl__err(AVL_E_ARG, "--shard '%s': want 0 <= i < n <= 65536", text);
    *index = (int)i;
    *count = (int)n;
    return AVL_OK;
}

/* ---- reading record lines ---------------------------------------------------------------- */

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

/* Parses one line as a record object; NULL (and *why) when it is not one. */
static json_t *parse_record(const char *s, size_t n, char *why, size_t whyn)
{
    json_error_t err;
    json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &err);
    if (!o) {
        snprintf(why, whyn, "not JSON: %s", err.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        snprintf(why, whyn, "not a JSON object");
        json_decref(o);
        return NULL;
    }
    json_t *id = json_object_get(o, "id");
    if (!json_is_string(id) || !*json_string_value(id)) {
        snprintf(why, whyn, "no string \"id\"");
        json_decref(o);
        return NULL;
    }
    return o;
}

avl_status avl__parse_record_lines(const char *buf, size_t len, const char *path, avl__line_fn fn,
                                   void *user, size_t *torn, bool *tail_unterminated)
{
    *torn = 0;
    *tail_unterminated = false;
    const char *p = buf, *end = buf + len;
    int64_t line = 0;
    char why[256];
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        if (!blank(p, n)) {
            json_t *o = parse_record(p, n, why, sizeof why);
            if (!o) {
                if (!nl) { /* the last line, unterminated: a write cut short */
                    *torn = n;
                    return AVL_OK;
                }
                return avl__err(AVL_E_FORMAT, "%s: line %lld: %s", path, (long long)line, why);
            }
            if (!nl) *tail_unterminated = true;
            avl_status rc = fn(o, line, user);
            if (rc != AVL_OK) return rc;
        } else if (!nl) {
            *torn = n; /* trailing blanks without newline: harmless, but cut them too */
        }
        p = nl ? nl + 1 : end;
    }
    return AVL_OK;
}

/* ---- the writer -------------------------------------------------------------------------- */

/* id -> what is on file, open addressing */
typedef struct {
    char *id;
    bool ok, err;
} done_slot;

struct avl_records {
    avl_records_params params;
    char *analysis, *path;
    FILE *f;
    done_slot *slots;
    int64_t n_slots, n_ids;
    int64_t torn;
};

avl_records_params avl_records_default_params(void)
{
    avl_records_params p;
    memset(&p, 0, sizeof p);
    p.shard_index = 0;
    p.shard_count = 1;
    p.timestamp = true;
    return p;
}

static done_slot *find_slot(done_slot *slots, int64_t n_slots, const char *id)
{
    uint64_t mask = (uint64_t)n_slots - 1;
    uint64_t h = avl__mix64(avl__fnv1a(AVL__FNV_OFFSET, id)) & mask;
    while (slots[h].id && strcmp(slots[h].id, id) != 0) h = (h + 1) & mask;
    return &slots[h];
}

static avl_status note_record(avl_records *r, const char *id, bool ok)
{
    if ((r->n_ids + 1) * 2 > r->n_slots) {
        int64_t ns = r->n_slots ? r->n_slots * 2 : 256;
        done_slot *s = avl__calloc((size_t)ns, sizeof *s);
        if (!s) return avl__err(AVL_E_NOMEM, "%s: out of memory", r->path);
        for (int64_t i = 0; i < r->n_slots; i++)
            if (r->slots[i].id) *find_slot(s, ns, r->slots[i].id) = r->slots[i];
        avl__free(r->slots);
        r->slots = s;
        r->n_slots = ns;
    }
    done_slot *d = find_slot(r->slots, r->n_slots, id);
    if (!d->id) {
        if (!(d->id = avl__strdup(id))) return avl__err(AVL_E_NOMEM, "%s: out of memory", r->path);
        r->n_ids++;
    }
    if (ok) d->ok = true;
    else d->err = true;
    return AVL_OK;
}

static avl_status note_line(json_t *o, int64_t line, void *user)
{
    avl_records *r = user;
    const char *st = json_string_value(json_object_get(o, "status"));
    avl_status rc = note_record(r, json_string_value(json_object_get(o, "id")), !st || !strcmp(st, "ok"));
    json_decref(o);
    return rc;
}

void avl_records_close(avl_records *r)
{
    if (!r) return;
    if (r->f) fclose(r->f); /* also drops the flock */
    for (int64_t i = 0; i < r->n_slots; i++) avl__free(r->slots[i].id);
    avl__free(r->slots);
    avl__free(r->analysis);
    avl__free(r->path);
    avl__free(r);
}

avl_status avl_records_open(const avl_records_params *params, avl_records **out)
{
    if (!out) return avl__err(AVL_E_ARG, "avl_records_open: out is NULL");
    *out = NULL;
    if (!params || !params->dir || !*params->dir) return avl__err(AVL_E_ARG, "records: no results folder");
    if (!avl__analysis_name_ok(params->analysis))
        return avl__err(AVL_E_ARG, "records: analysis name '%s' wants letters, digits, '.', '_' or '-'",
                        params->analysis ? params->analysis : "");
    int n = params->shard_count < 1 ? 1 : params->shard_count;
    if (params->shard_index < 0 || params->shard_index >= n)
        return avl__err(AVL_E_ARG, "records: shard %d/%d is out of range", params->shard_index, n);
    avl_records *r = avl__calloc(1, sizeof *r);
    if (!r) return avl__err(AVL_E_NOMEM, "records: out of memory");
    r->params = *params;
    r->params.shard_count = n;
    char *folder = avl__path_join(params->dir, params->analysis);
    char name[64];
    snprintf(name, sizeof name, "shard-%d-of-%d.jsonl", params->shard_index, n);
    r->analysis = avl__strdup(params->analysis);
    r->path = folder ? avl__path_join(folder, name) : NULL;
    avl_status rc = AVL_OK;
    if (!folder || !r->analysis || !r->path) rc = avl__err(AVL_E_NOMEM, "records: out of memory");
    if (rc == AVL_OK) rc = avl__mkdirs(folder);
    avl__free(folder);
    r->params.dir = r->params.analysis = NULL; /* not kept: the caller's strings */
    int fd = -1;
    if (rc == AVL_OK) {
        fd = open(r->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
        if (fd < 0) rc = avl__err(AVL_E_IO, "%s: cannot open: %s", r->path, strerror(errno));
        else if (flock(fd, LOCK_EX | LOCK_NB) != 0)
            rc = avl__err(AVL_E_IO, "%s: another run is writing this shard (locked)", r->path);
    }
    char *buf = NULL;
    size_t len = 0;
    if (rc == AVL_OK) rc = avl__read_file(r->path, &buf, &len);
    if (rc == AVL_OK) {
        size_t torn;
        bool unterminated;
        rc = avl__parse_record_lines(buf, len, r->path, note_line, r, &torn, &unterminated);
        if (rc == AVL_OK && torn) {
            /* a run was killed while writing its last record: drop the fragment */
            if (ftruncate(fd, (off_t)(len - torn)) != 0)
                rc = avl__err(AVL_E_IO, "%s: cannot cut the torn last line: %s", r->path, strerror(errno));
            else {
                r->torn = (int64_t)torn;
                avl__log(AVL_LOG_WARN, "%s: cut a torn last line (%zu bytes) left by an interrupted run", r->path, torn);
            }
        }
        if (rc == AVL_OK && unterminated && write(fd, "\n", 1) != 1)
            rc = avl__err(AVL_E_IO, "%s: cannot end the last line: %s", r->path, strerror(errno));
    }
    avl__free(buf);
    if (rc == AVL_OK) {
        r->f = fdopen(fd, "ab");
        if (!r->f) rc = avl__err(AVL_E_IO, "%s: cannot open: %s", r->path, strerror(errno));
    }
    if (rc != AVL_OK) {
        if (fd >= 0 && !r->f) close(fd);
        avl_records_close(r);
        return rc;
    }
    *out = r;
    return AVL_OK;
}

bool avl_records_done(const avl_records *r, const char *id)
{
    if (!r || !id || !r->n_slots) return false;
    done_slot *d = find_slot(r->slots, r->n_slots, id);
    if (!d->id) return false;
    return d->ok || (d->err && !r->params.retry_errors);
}

int64_t avl_records_count(const avl_records *r) { return r ? r->n_ids : 0; }
int64_t avl_records_torn_bytes(const avl_records *r) { return r ? r->torn : 0; }
const char *avl_records_path(const avl_records *r) { return r ? r->path : ""; }

static void utc_stamp(char *buf, size_t n)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%06ldZ", base, (long)tv.tv_usec);
}

/* Writes obj as one line: "id", "analysis", "status" first, then the rest in order. */
static avl_status write_record(avl_records *r, json_t *obj)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    json_t *o = json_object();
    avl_status rc = AVL_OK;
    if (!o) return avl__err(AVL_E_NOMEM, "%s: out of memory", r->path);
    json_t *an = json_object_get(obj, "analysis");
    json_t *st = json_object_get(obj, "status");
    char kind[128];
    snprintf(kind, sizeof kind, "%s", r->analysis);
    char *dot = strchr(kind, '.');
    if (dot) *dot = '\0'; /* "trace.after_attn" writes analysis "trace" */
    int bad = json_object_set_new(o, "id", json_string(id));
    bad |= an ? json_object_set(o, "analysis", an) : json_object_set_new(o, "analysis", json_string(kind));
    bad |= st ? json_object_set(o, "status", st) : json_object_set_new(o, "status", json_string("ok"));
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (!strcmp(key, "id") || !strcmp(key, "analysis") || !strcmp(key, "status") || !strcmp(key, "written_at")) continue;
        bad |= json_object_set(o, key, v);
    }
    if (r->params.timestamp) {
        char ts[48];
        utc_stamp(ts, sizeof ts);
        bad |= json_object_set_new(o, "written_at", json_string(ts));
    }
    char *text = bad ? NULL : json_dumps(o, JSON_COMPACT);
    bool ok = !st || (json_is_string(st) && !strcmp(json_string_value(st), "ok"));
    json_decref(o);
    if (!text) return avl__err(AVL_E_NOMEM, "%s: out of memory", r->path);
    size_t n = strlen(text);
    text[n] = '\n'; /* replaces the NUL: the line goes out with one fwrite */
    size_t w = fwrite(text, 1, n + 1, r->f);
    free(text);
    if (w != n + 1 || fflush(r->f) != 0) rc = avl__err(AVL_E_IO, "%s: write failed: %s", r->path, strerror(errno));
    else if (r->params.fsync && fsync(fileno(r->f)) != 0)
        rc = avl__err(AVL_E_IO, "%s: fsync failed: %s", r->path, strerror(errno));
    if (rc == AVL_OK) rc = note_record(r, id, ok);
    return rc;
}

avl_status avl_records_append(avl_records *r, const char *json)
{
    if (!r || !json) return avl__err(AVL_E_ARG, "avl_records_append: NULL argument");
    char why[256];
    json_t *o = parse_record(json, strlen(json), why, sizeof why);
    if (!o) return avl__err(AVL_E_ARG, "%s: record to append is %s", r->path, why);
    json_t *st = json_object_get(o, "status");
    avl_status rc;
    if (st && !json_is_string(st)) rc = avl__err(AVL_E_ARG, "%s: record %s: \"status\" is not a string", r->path,
                                                 json_string_value(json_object_get(o, "id")));
    else rc = write_record(r, o);
    json_decref(o);
    return rc;
}

avl_status avl_records_append_error(avl_records *r, const char *id, avl_status code, const char *message)
{
    if (!r || !id || !*id) return avl__err(AVL_E_ARG, "avl_records_append_error: NULL argument");
    json_t *o = json_object();
    int bad = !o;
    if (o) {
        bad |= json_object_set_new(o, "id", json_string(id));
        bad |= json_object_set_new(o, "status", json_string("error"));
        bad |= json_object_set_new(o, "code", json_string(avl_status_str(code)));
        /* invalid UTF-8 in a message must not lose the record */
        json_t *m = json_string(message ? message : "");
        if (!m) m = json_string("(message is not valid UTF-8)");
        bad |= json_object_set_new(o, "message", m);
    }
    if (bad || !json_string_value(json_object_get(o, "id"))) {
        json_decref(o);
        return avl__err(AVL_E_ARG, "%s: cannot make an error record for id '%s' (not UTF-8?)", r->path, id);
    }
    avl_status rc = write_record(r, o);
    json_decref(o);
    return rc;
}

/* ---- reading a folder of shards (merge, report) ------------------------------------------ */

typedef struct {
    avl__recset *set;
    int64_t file_no;
} read_ctx;

static avl_status add_line(json_t *o, int64_t line, void *user)
{
    read_ctx *c = user;
    avl__recset *s = c->set;
    if (s->n == s->cap) {
        int64_t nc = s->cap ? s->cap * 2 : 256;
        avl__rec *nr = avl__realloc(s->recs, (size_t)nc * sizeof *nr);
        if (!nr) {
            json_decref(o);
            return avl__err(AVL_E_NOMEM, "records: out of memory");
        }
        s->recs = nr;
        s->cap = nc;
    }
    const char *st = json_string_value(json_object_get(o, "status"));
    avl__rec *r = &s->recs[s->n++];
    r->obj = o;
    r->id = json_string_value(json_object_get(o, "id"));
    r->ok = !st || !strcmp(st, "ok");
    r->file_no = c->file_no;
    r->line = line;
    s->lines++;
    return AVL_OK;
}

/* Sorts by id, then the preferred record last: ok over error, then larger written_at, then
 * later file and line. */
static int cmp_rec(const void *a, const void *b)
{
    const avl__rec *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    if (x->ok != y->ok) return x->ok ? 1 : -1;
    const char *tx = json_string_value(json_object_get(x->obj, "written_at"));
    const char *ty = json_string_value(json_object_get(y->obj, "written_at"));
    if (tx && ty && (c = strcmp(tx, ty))) return c;
    if (x->file_no != y->file_no) return x->file_no < y->file_no ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

static bool same_content(json_t *a, json_t *b)
{
    json_t *x = json_copy(a), *y = json_copy(b);
    bool eq = false;
    if (x && y) {
        json_object_del(x, "written_at");
        json_object_del(y, "written_at");
        eq = json_equal(x, y);
    }
    json_decref(x);
    json_decref(y);
    return eq;
}

void avl__recset_free(avl__recset *s)
{
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) json_decref(s->recs[i].obj);
    avl__free(s->recs);
    avl__free_strv(s->files, s->n_files);
    memset(s, 0, sizeof *s);
}

avl_status avl__recset_read_dir(const char *dir, const char *label, avl__recset *out)
{
    memset(out, 0, sizeof *out);
    avl_status rc = avl__list_files(dir, ".jsonl", &out->files, &out->n_files);
    for (int64_t i = 0; rc == AVL_OK && i < out->n_files; i++) {
        char *path = avl__path_join(dir, out->files[i]);
        char *buf = NULL;
        size_t len;
        if (!path) rc = avl__err(AVL_E_NOMEM, "records: out of memory");
        if (rc == AVL_OK) rc = avl__read_file(path, &buf, &len);
        if (rc == AVL_OK) {
            read_ctx c = {out, i};
            size_t torn;
            bool unterminated;
            rc = avl__parse_record_lines(buf, len, path, add_line, &c, &torn, &unterminated);
            if (rc == AVL_OK && torn) {
                out->torn++;
                avl__log(AVL_LOG_WARN, "%s: skipped a torn last line (%zu bytes)", path, torn);
            }
        }
        avl__free(buf);
        avl__free(path);
    }
    if (rc != AVL_OK) {
        avl__recset_free(out);
        return rc;
    }
    if (out->n) qsort(out->recs, (size_t)out->n, sizeof *out->recs, cmp_rec);
    /* keep the last of each id's run */
    int64_t w = 0;
    for (int64_t i = 0; i < out->n; i++) {
        bool last = i + 1 == out->n || strcmp(out->recs[i].id, out->recs[i + 1].id) != 0;
        if (last) {
            out->recs[w++] = out->recs[i];
            continue;
        }
        avl__rec *a = &out->recs[i], *b = &out->recs[i + 1];
        if (same_content(a->obj, b->obj)) {
            out->duplicates++;
        } else {
            out->conflicts++;
            avl__log(AVL_LOG_WARN, "%s: id %s: %s line %lld differs from %s line %lld; keeping the latter", label,
                     a->id, out->files[a->file_no], (long long)a->line, out->files[b->file_no], (long long)b->line);
        }
        json_decref(a->obj);
    }
    out->n = w;
    return AVL_OK;
}

/* ---- merge ------------------------------------------------------------------------------- */

static avl_status write_merged(const avl__recset *s, const char *folder)
{
    char *path = avl__path_join(folder, "shard-0-of-1.jsonl");
    char *tmp = avl__path_join(folder, "shard-0-of-1.jsonl.tmp");
    avl_status rc = AVL_OK;
    if (!path || !tmp) rc = avl__err(AVL_E_NOMEM, "merge: out of memory");
    FILE *f = NULL;
    if (rc == AVL_OK && !(f = fopen(tmp, "wb"))) rc = avl__err(AVL_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    for (int64_t i = 0; rc == AVL_OK && i < s->n; i++) {
        char *t = json_dumps(s->recs[i].obj, JSON_COMPACT);
        if (!t) rc = avl__err(AVL_E_NOMEM, "merge: out of memory");
        else if (fputs(t, f) == EOF || fputc('\n', f) == EOF) rc = avl__err(AVL_E_IO, "%s: write failed", tmp);
        free(t);
    }
    if (f && fclose(f) != 0 && rc == AVL_OK) rc = avl__err(AVL_E_IO, "%s: write failed", tmp);
    if (rc == AVL_OK && rename(tmp, path) != 0) rc = avl__err(AVL_E_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (rc != AVL_OK && tmp) unlink(tmp);
    avl__free(path);
    avl__free(tmp);
    return rc;
}

/* In-place merge deletes shard files: refuse while a run still holds one (its writer's flock). */
static avl_status check_unlocked(const char *folder, const avl__recset *s)
{
    for (int64_t k = 0; k < s->n_files; k++) {
        char *p = avl__path_join(folder, s->files[k]);
        if (!p) return avl__err(AVL_E_NOMEM, "merge: out of memory");
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        bool busy = fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) != 0;
        if (fd >= 0) close(fd);
        avl_status rc = busy ? avl__err(AVL_E_IO, "%s: a run is still writing this shard; merge in place after it ends", p) : AVL_OK;
        avl__free(p);
        if (rc != AVL_OK) return rc;
    }
    return AVL_OK;
}

static bool same_folder(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

avl_status avl_records_merge(const char *in, const char *out, avl_merge_summary *summary)
{
    avl_merge_summary sum;
    memset(&sum, 0, sizeof sum);
    if (summary) *summary = sum;
    if (!in || !*in) return avl__err(AVL_E_ARG, "merge: no input folder");
    if (!out || !*out) out = in;
    char **names;
    int64_t n;
    avl_status rc = avl__list_subdirs(in, &names, &n);
    if (rc != AVL_OK) return rc;
    if (rc == AVL_OK && (rc = avl__mkdirs(out)) != AVL_OK) {
        avl__free_strv(names, n);
        return rc;
    }
    bool in_place = same_folder(in, out);
    for (int64_t i = 0; rc == AVL_OK && i < n; i++) {
        char *src = avl__path_join(in, names[i]);
        char *dst = avl__path_join(out, names[i]);
        avl__recset s;
        if (!src || !dst) rc = avl__err(AVL_E_NOMEM, "merge: out of memory");
        if (rc == AVL_OK) rc = avl__recset_read_dir(src, names[i], &s);
        if (rc == AVL_OK) {
            if (s.n_files > 0) {
                sum.analyses++;
                sum.files += s.n_files;
                sum.records += s.lines;
                sum.samples += s.n;
                sum.duplicates += s.duplicates;
                sum.conflicts += s.conflicts;
                sum.torn += s.torn;
                rc = in_place ? check_unlocked(src, &s) : AVL_OK;
                if (rc == AVL_OK) rc = avl__mkdirs(dst);
                if (rc == AVL_OK) rc = write_merged(&s, dst);
                for (int64_t k = 0; rc == AVL_OK && in_place && k < s.n_files; k++) {
                    if (!strcmp(s.files[k], "shard-0-of-1.jsonl")) continue;
                    char *p = avl__path_join(src, s.files[k]);
                    if (!p) rc = avl__err(AVL_E_NOMEM, "merge: out of memory");
                    else if (unlink(p) != 0) rc = avl__err(AVL_E_IO, "%s: cannot remove: %s", p, strerror(errno));
                    avl__free(p);
                }
            }
            avl__recset_free(&s);
        }
        avl__free(src);
        avl__free(dst);
    }
    avl__free_strv(names, n);
    if (summary) *summary = sum;
    return rc;
}
