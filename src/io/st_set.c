/* src/io/st_set.c: a checkpoint as one set of tensors, from one file or from shards.
 *
 * A sharded Hugging Face checkpoint is model.safetensors.index.json,
 *   {"metadata": {...}, "weight_map": {"<tensor name>": "<shard file name>", ...}},
 * beside the shard files (transformers' save_pretrained writes it; "metadata" is ignored here).
 * Rules (docs/safetensors.md):
 *  - every shard the weight_map names is opened and validated; a missing one is an error
 *    naming the shard and the index; shards the index does not name are not opened;
 *  - every tensor the weight_map names must be in the shard it names;
 *  - a tensor found in an opened shard but absent from the weight_map is still part of the set
 *    (transformers loads every tensor of each shard file, whatever the index says);
 *  - a name in two shards is an error.
 * Lookup is a hash map over all names; avl_st_at() walks shards in file-name order, and each
 * shard's tensors in data order.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/internal.h"
#include "io/st_internal.h"

typedef struct {
    int32_t file; /* index into files */
    int64_t idx;  /* tensor index within that file (data order) */
} st_ref;

struct avl_st_set {
    avl_st_file **files; /* (nfiles,) */
    int64_t nfiles;
    st_ref *refs;        /* (n,) every tensor, in avl_st_at order */
    int64_t n;
    const char **names;  /* (n,) borrowed from the files; keys of index */
    avl__strmap index;   /* name -> position in refs (keys borrowed from the files) */
    char *where;         /* the index or file path, for messages */
};

void avl_st_close(avl_st_set *s)
{
    if (!s) return;
    for (int64_t i = 0; i < s->nfiles; i++) avl_st_file_close(s->files[i]);
    avl__free(s->files);
    avl__free(s->refs);
    avl__free(s->names);
    avl__strmap_free(&s->index);
    avl__free(s->where);
    avl__free(s);
}

/* Builds refs, names and index over s->files. `where` names the index or file for messages. */
static avl_status build_index(avl_st_set *s, const char *where)
{
    int64_t total = 0;
    for (int64_t i = 0; i < s->nfiles; i++) total += avl_st_file_count(s->files[i]);
    s->refs = avl__calloc((size_t)total, sizeof *s->refs);
    s->names = avl__calloc((size_t)total, sizeof *s->names);
    if (!s->refs || !s->names || avl__strmap_init(&s->index, total, AVL__STRMAP_BORROW) != AVL_OK)
        return avl__err(AVL_E_NOMEM, "%s: out of memory indexing the tensors", where);
    for (int64_t i = 0; i < s->nfiles; i++) {
        int64_t m = avl_st_file_count(s->files[i]);
        for (int64_t j = 0; j < m; j++) {
            avl_tensor_view v;
            avl_status rc = avl_st_file_at(s->files[i], j, &v);
            if (rc) return rc;
            int64_t *at;
            bool added;
            rc = avl__strmap_emplacez(&s->index, v.name, &at, &added);
            if (rc) return avl__err(rc, "%s: out of memory indexing the tensors", where);
            if (!added) {
                char q[AVL__ST_QN];
                const avl_st_file *of = s->files[s->refs[*at].file];
                return avl__err(AVL_E_FORMAT, "%s: tensor '%s' is in two shards, %s and %s", where,
                                avl__st_quote(v.name, q, sizeof q), avl__st_file_path(of), v.file);
            }
            *at = s->n;
            s->refs[s->n] = (st_ref){(int32_t)i, j};
            s->names[s->n] = v.name;
            s->n++;
        }
    }
    return AVL_OK;
}

static avl_status new_set(int64_t nfiles, const char *where, avl_st_set **out)
{
    avl_st_set *s = avl__calloc(1, sizeof *s);
    if (s) s->files = avl__calloc((size_t)nfiles, sizeof *s->files);
    if (s) s->where = avl__strdup(where);
    if (!s || !s->files || !s->where) {
        avl_st_close(s);
        return avl__err(AVL_E_NOMEM, "%s: out of memory", where);
    }
    *out = s;
    return AVL_OK;
}

static avl_status open_single(const char *path, avl_st_set **out)
{
    avl_st_set *s;
    avl_status rc = new_set(1, path, &s);
    if (rc) return rc;
    rc = avl_st_file_open(path, &s->files[0]);
    if (!rc) {
        s->nfiles = 1;
        rc = build_index(s, path);
    }
    if (rc) {
        avl_st_close(s);
        return rc;
    }
    *out = s;
    return AVL_OK;
}

/* A shard name must stay inside the checkpoint folder. */
static bool safe_shard_name(const char *n)
{
    if (!n[0] || n[0] == '/') return false;
    for (const char *p = n; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return false;
        if (!slash) break;
        p = slash + 1;
    }
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks the parsed index, opens its shards into a new set. */
static avl_status open_from_index(const char *ipath, json_t *root, avl_st_set **out)
{
    char q[AVL__ST_QN], q2[AVL__ST_QN];
    if (!json_is_object(root)) return avl__err(AVL_E_FORMAT, "%s: index is not a JSON object", ipath);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) return avl__err(AVL_E_FORMAT, "%s: index has no \"weight_map\" object", ipath);

    /* The distinct shard names, sorted. */
    size_t nw = json_object_size(wm);
    const char **shards = avl__calloc(nw, sizeof *shards);
    if (!shards) return avl__err(AVL_E_NOMEM, "%s: out of memory", ipath);
    size_t ns = 0;
    const char *k;
    json_t *v;
    json_object_foreach(wm, k, v) {
        if (!json_is_string(v)) {
            avl__free(shards);
            return avl__err(AVL_E_FORMAT, "%s: weight_map entry for '%s' is not a file name", ipath,
                            avl__st_quote(k, q, sizeof q));
        }
        if (!safe_shard_name(json_string_value(v))) {
            avl__free(shards);
            return avl__err(AVL_E_FORMAT, "%s: weight_map maps '%s' to '%s', which is not a file in the checkpoint folder",
                            ipath, avl__st_quote(k, q, sizeof q),
                            avl__st_quote(json_string_value(v), q2, sizeof q2));
        }
        shards[ns++] = json_string_value(v);
    }
    qsort(shards, ns, sizeof *shards, cmp_str);
    size_t nu = 0;
    for (size_t i = 0; i < ns; i++)
        if (nu == 0 || strcmp(shards[nu - 1], shards[i]) != 0) shards[nu++] = shards[i];

    /* Shard paths are relative to the index's folder. */
    const char *slash = strrchr(ipath, '/');
    char *dir = slash ? avl__malloc((size_t)(slash - ipath) + 2) : avl__strdup(".");
    if (!dir) {
        avl__free(shards);
        return avl__err(AVL_E_NOMEM, "%s: out of memory", ipath);
    }
    if (slash) {
        size_t dl = (size_t)(slash - ipath);
        memcpy(dir, ipath, dl);
        if (dl == 0) dir[dl++] = '/'; /* the index is in "/" */
        dir[dl] = '\0';
    }

    avl_st_set *s = NULL;
    avl_status rc = new_set((int64_t)nu, ipath, &s);
    for (size_t i = 0; !rc && i < nu; i++) {
        char *sp = avl__path_join(dir, shards[i]);
        if (!sp) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", ipath);
            break;
        }
        rc = avl_st_file_open(sp, &s->files[i]);
        if (rc == AVL_E_IO) {
            struct stat st;
            if (stat(sp, &st) != 0 && errno == ENOENT)
                rc = avl__err(AVL_E_IO, "%s: shard '%s' is missing (looked for %s)", ipath,
                              avl__st_quote(shards[i], q, sizeof q), sp);
            else
                rc = avl__err_wrap(AVL_E_IO, "%s: cannot open shard '%s'", ipath, avl__st_quote(shards[i], q, sizeof q));
        }
        if (!rc) s->nfiles = (int64_t)i + 1;
        avl__free(sp);
    }
    if (!rc) rc = build_index(s, ipath);

    /* Every weight_map entry must be where the index says it is. */
    if (!rc) {
        json_object_foreach(wm, k, v) {
            const char *shard = json_string_value(v);
            int64_t at = avl__strmap_getz(&s->index, k, -1);
            const char **hit = bsearch(&shard, shards, nu, sizeof *shards, cmp_str);
            bool ok = at >= 0 && hit && (int32_t)(hit - shards) == s->refs[at].file;
            if (!ok) {
                rc = avl__err(AVL_E_FORMAT, "%s: weight_map puts tensor '%s' in %s, which does not hold it", ipath,
                              avl__st_quote(k, q, sizeof q), avl__st_quote(shard, q2, sizeof q2));
                break;
            }
        }
    }
    avl__free(dir);
    avl__free(shards);
    if (rc) {
        avl_st_close(s);
        return rc;
    }
    *out = s;
    return AVL_OK;
}

static avl_status open_index(const char *ipath, avl_st_set **out)
{
    char *text;
    size_t len;
    avl_status rc = avl__read_file(ipath, &text, &len);
    if (rc) return rc;
    json_error_t jerr;
    json_t *root;
    rc = avl__json_loadb(text, len, JSON_REJECT_DUPLICATES, ipath, &root, &jerr);
    avl__free(text);
    if (rc) {
        char q[AVL__ST_QN];
        if (rc == AVL_E_NOMEM)
            return avl__err(AVL_E_NOMEM, "%s: out of memory parsing the index", ipath);
        if (json_error_code(&jerr) == json_error_duplicate_key)
            return avl__err(AVL_E_FORMAT, "%s: duplicate tensor name in the index (%s)", ipath,
                            avl__st_quote(jerr.text, q, sizeof q));
        return avl__err(AVL_E_FORMAT, "%s: index is not valid JSON: %s (line %d, column %d)", ipath,
                        avl__st_quote(jerr.text, q, sizeof q), jerr.line, jerr.column);
    }
    rc = open_from_index(ipath, root, out);
    json_decref(root);
    return rc;
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

avl_status avl_st_open_dir(const char *path, avl_st_set **out)
{
    if (!out) return avl__err(AVL_E_ARG, "avl_st_open_dir: out is NULL");
    *out = NULL;
    if (!path) return avl__err(AVL_E_ARG, "avl_st_open_dir: path is NULL");
    struct stat st;
    if (stat(path, &st) != 0) return avl__err(AVL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        char *ip = avl__path_join(path, "model.safetensors.index.json");
        char *sp = avl__path_join(path, "model.safetensors");
        avl_status rc;
        if (!ip || !sp) rc = avl__err(AVL_E_NOMEM, "%s: out of memory", path);
        else if (is_file(ip)) rc = open_index(ip, out);
        else if (is_file(sp)) rc = open_single(sp, out);
        else rc = avl__err(AVL_E_IO, "%s: holds neither model.safetensors.index.json nor model.safetensors", path);
        avl__free(ip);
        avl__free(sp);
        return rc;
    }
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0) return open_index(path, out);
    return open_single(path, out);
}

int64_t avl_st_count(const avl_st_set *s) { return s ? s->n : 0; }

avl_status avl_st_at(const avl_st_set *s, int64_t i, avl_tensor_view *out)
{
    if (!s || !out) return avl__err(AVL_E_ARG, "avl_st_at: NULL argument");
    if (i < 0 || i >= s->n)
        return avl__err(AVL_E_ARG, "avl_st_at: tensor index %lld is out of range (%lld tensors)", (long long)i,
                        (long long)s->n);
    return avl_st_file_at(s->files[s->refs[i].file], s->refs[i].idx, out);
}

avl_status avl_st_get(const avl_st_set *s, const char *name, avl_tensor_view *out)
{
    if (!s || !name || !out) return avl__err(AVL_E_ARG, "avl_st_get: NULL argument");
    int64_t i = avl__strmap_getz(&s->index, name, -1);
    if (i < 0) {
        char q[AVL__ST_QN];
        return avl__err(AVL_E_NOTFOUND, "%s: no tensor '%s'", s->where, avl__st_quote(name, q, sizeof q));
    }
    return avl_st_file_at(s->files[s->refs[i].file], s->refs[i].idx, out);
}

bool avl_st_has(const avl_st_set *s, const char *name)
{
    return s && name && avl__strmap_getz(&s->index, name, -1) >= 0;
}
