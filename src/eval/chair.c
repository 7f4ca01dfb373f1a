/* src/eval/chair.c: CHAIR_s, CHAIR_i, precision, recall and F1 over a corpus of captions.
 *
 * Definitions (docs/eval.md; the CHAIR of Rohrbach et al. 2018 with the precision/recall/F1 the
 * PAI/OPERA-era copies add, LALBJ/PAI chair.py): per caption, mentions are the vocabulary
 * classes found in it, with repetition; a mention is hallucinated when its class is not in the
 * clip's ground truth. Over a group of captions (one method on one data set), micro-averaged:
 *   CHAIR_s   = captions with >= 1 hallucinated mention / captions
 *   CHAIR_i   = hallucinated mentions / mentions                      (with repetition)
 *   precision = sum |set(gen) & GT| / sum |set(gen)|                  (sets)
 *   recall    = sum |GT & set(gen)| / sum |GT|
 *   F1        = 2PR / (P + R); all x100.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "eval_internal.h"

typedef struct {
    char *method, *dataset;
    int64_t n_captions, n_captions_hallucinated, n_mentions, n_mentions_hallucinated;
    int64_t n_generated, n_generated_correct, n_truth, n_truth_covered;
} group;

typedef struct {
    char *id, *caption;
    int64_t group;
    avl_chair_mention *mentions; /* (n_mentions) text owned, object a vocabulary name */
    int64_t n_mentions;
    const char **sets; /* generated, truth, hallucinated, covered back to back */
    int64_t n_generated, n_truth, n_hallucinated, n_covered;
} caption;

struct avl_chair {
    const avl_vocab *v;
    const avl_truth *t;
    avl__strmap group_ids; /* "method\x1f" "dataset" -> group */
    group *groups;
    int64_t n_groups, cap_groups;
    caption *caps;
    int64_t n_caps, cap_caps;
    char *def_method, *def_dataset; /* for records that name none; NULL = "-" */
};

avl_status avl_chair_new(const avl_vocab *v, const avl_truth *t, avl_chair **out)
{
    *out = NULL;
    if (!v || !t) return avl__err(AVL_E_ARG, "chair: NULL vocabulary or ground truth");
    avl_chair *c = avl__calloc(1, sizeof *c);
    if (!c) return avl__err(AVL_E_NOMEM, "chair: out of memory");
    c->v = v;
    c->t = t;
    *out = c;
    return AVL_OK;
}

static void caption_free(caption *k)
{
    avl__free(k->id);
    avl__free(k->caption);
    if (k->mentions)
        for (int64_t i = 0; i < k->n_mentions; i++) avl__free((char *)k->mentions[i].text);
    avl__free(k->mentions);
    avl__free(k->sets);
}

void avl_chair_free(avl_chair *c)
{
    if (!c) return;
    for (int64_t i = 0; i < c->n_caps; i++) caption_free(&c->caps[i]);
    avl__free(c->caps);
    for (int64_t i = 0; i < c->n_groups; i++) {
        avl__free(c->groups[i].method);
        avl__free(c->groups[i].dataset);
    }
    avl__free(c->groups);
    avl__strmap_free(&c->group_ids);
    avl__free(c->def_method);
    avl__free(c->def_dataset);
    avl__free(c);
}

avl_status avl_chair_set_defaults(avl_chair *c, const char *method, const char *dataset)
{
    if (!c) return avl__err(AVL_E_ARG, "chair: NULL argument");
    char *m = method ? avl__strdup(method) : NULL, *d = dataset ? avl__strdup(dataset) : NULL;
    if ((method && !m) || (dataset && !d)) {
        avl__free(m);
        avl__free(d);
        return avl__err(AVL_E_NOMEM, "chair: out of memory");
    }
    avl__free(c->def_method);
    avl__free(c->def_dataset);
    c->def_method = m;
    c->def_dataset = d;
    return AVL_OK;
}

static avl_status find_group(avl_chair *c, const char *method, const char *dataset, int64_t *out)
{
    size_t nm = strlen(method), nd = strlen(dataset);
    char *key = avl__malloc(nm + nd + 2);
    if (!key) return avl__err(AVL_E_NOMEM, "chair: out of memory");
    memcpy(key, method, nm);
    key[nm] = '\x1f';
    memcpy(key + nm + 1, dataset, nd + 1);
    int64_t *g = avl__strmap_findz(&c->group_ids, key);
    if (g) {
        *out = *g;
        avl__free(key);
        return AVL_OK;
    }
    avl_status rc = AVL_OK;
    if (c->n_groups == c->cap_groups) {
        int64_t nc = c->cap_groups ? c->cap_groups * 2 : 8;
        group *ng = avl__realloc(c->groups, (size_t)nc * sizeof *ng);
        if (!ng) rc = avl__err(AVL_E_NOMEM, "chair: out of memory");
        else {
            c->groups = ng;
            c->cap_groups = nc;
        }
    }
    group *gr = rc ? NULL : &c->groups[c->n_groups];
    if (gr) {
        memset(gr, 0, sizeof *gr);
        gr->method = avl__strdup(method);
        gr->dataset = avl__strdup(dataset);
        if (!gr->method || !gr->dataset) rc = avl__err(AVL_E_NOMEM, "chair: out of memory");
    }
    if (!rc) rc = avl__strmap_putz(&c->group_ids, key, c->n_groups);
    avl__free(key);
    if (rc) {
        if (gr) {
            avl__free(gr->method);
            avl__free(gr->dataset);
        }
        return rc;
    }
    *out = c->n_groups++;
    return AVL_OK;
}

static bool has(const int64_t *sorted, int64_t n, int64_t x)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && sorted[lo] == x;
}

avl_status avl_chair_add(avl_chair *c, const char *id, const char *text, const char *method, const char *dataset)
{
    if (!c || !id || !text) return avl__err(AVL_E_ARG, "chair: NULL argument");
    if (!method) method = "-";
    if (!dataset) dataset = "-";
    const int64_t *gt;
    int64_t ngt;
    char *cid = avl__clip_id(id);
    if (!cid) return avl__err(AVL_E_NOMEM, "chair: out of memory");
    if (!avl__truth_get_clip(c->t, cid, &gt, &ngt)) {
        avl__free(cid);
        char b[72];
        return avl__err(AVL_E_NOTFOUND, "clip '%s' has no ground truth", avl__clean(id, b));
    }
    avl_status rc = AVL_OK;
    if (c->n_caps == c->cap_caps) {
        int64_t nc = c->cap_caps ? c->cap_caps * 2 : 64;
        caption *g = avl__realloc(c->caps, (size_t)nc * sizeof *g);
        if (!g) rc = avl__err(AVL_E_NOMEM, "chair: out of memory");
        else {
            c->caps = g;
            c->cap_caps = nc;
        }
    }
    int64_t gi = 0;
    if (!rc) rc = find_group(c, method, dataset, &gi);
    avl_mention *m = NULL;
    int64_t nm = 0;
    if (!rc) rc = avl_vocab_mentions(c->v, text, &m, &nm);
    if (rc) {
        avl__free(cid);
        return rc;
    }

    caption k;
    memset(&k, 0, sizeof k);
    k.group = gi;
    k.id = cid;
    k.caption = avl__strdup(text);
    k.mentions = avl__calloc(nm ? (size_t)nm : 1, sizeof *k.mentions);
    /* sets: generated (<= nm), truth (ngt), hallucinated (<= nm), covered (<= ngt) */
    k.sets = avl__calloc((size_t)(2 * nm + 2 * ngt + 1), sizeof *k.sets);
    if (!k.id || !k.caption || !k.mentions || !k.sets) goto nomem;
    k.n_mentions = nm;
    int64_t n_halluc_mentions = 0;
    int64_t *gen = avl__malloc((size_t)(nm + 1) * sizeof *gen); /* unique classes, first-mention order */
    if (!gen) goto nomem;
    int64_t ngen = 0;
    for (int64_t i = 0; i < nm; i++) {
        size_t len = m[i].end - m[i].start;
        char *s = avl__malloc(len + 1);
        if (!s) {
            avl__free(gen);
            goto nomem;
        }
        memcpy(s, text + m[i].start, len);
        s[len] = '\0';
        k.mentions[i].text = s;
        k.mentions[i].object = avl_vocab_class_name(c->v, m[i].cls);
        k.mentions[i].hallucinated = !has(gt, ngt, m[i].cls);
        n_halluc_mentions += k.mentions[i].hallucinated;
        bool seen = false;
        for (int64_t j = 0; j < ngen && !seen; j++) seen = gen[j] == m[i].cls;
        if (!seen) gen[ngen++] = m[i].cls;
    }
    const char **p = k.sets;
    for (int64_t j = 0; j < ngen; j++) *p++ = avl_vocab_class_name(c->v, gen[j]);
    k.n_generated = ngen;
    for (int64_t j = 0; j < ngt; j++) *p++ = avl_vocab_class_name(c->v, gt[j]);
    k.n_truth = ngt;
    for (int64_t j = 0; j < ngen; j++)
        if (!has(gt, ngt, gen[j])) *p++ = avl_vocab_class_name(c->v, gen[j]), k.n_hallucinated++;
    for (int64_t j = 0; j < ngt; j++) {
        bool in = false;
        for (int64_t q = 0; q < ngen && !in; q++) in = gen[q] == gt[j];
        if (in) *p++ = avl_vocab_class_name(c->v, gt[j]), k.n_covered++;
    }
    avl__free(gen);
    avl_mentions_free(m);

    group *g = &c->groups[gi];
    g->n_captions++;
    g->n_captions_hallucinated += n_halluc_mentions > 0;
    g->n_mentions += nm;
    g->n_mentions_hallucinated += n_halluc_mentions;
    g->n_generated += k.n_generated;
    g->n_generated_correct += k.n_generated - k.n_hallucinated;
    g->n_truth += k.n_truth;
    g->n_truth_covered += k.n_covered;
    c->caps[c->n_caps++] = k;
    return AVL_OK;
nomem:
    avl_mentions_free(m);
    caption_free(&k);
    return avl__err(AVL_E_NOMEM, "chair: out of memory");
}

int64_t avl_chair_group_count(const avl_chair *c) { return c ? c->n_groups : 0; }
int64_t avl_chair_caption_count(const avl_chair *c) { return c ? c->n_caps : 0; }

static double pct(int64_t a, int64_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

avl_status avl_chair_group(const avl_chair *c, int64_t i, avl_chair_scores *out)
{
    if (!c || !out || i < 0 || i >= c->n_groups)
        return avl__err(AVL_E_ARG, "chair: group %lld out of range", (long long)i);
    const group *g = &c->groups[i];
    memset(out, 0, sizeof *out);
    out->method = g->method;
    out->dataset = g->dataset;
    out->n_captions = g->n_captions;
    out->n_captions_hallucinated = g->n_captions_hallucinated;
    out->n_mentions = g->n_mentions;
    out->n_mentions_hallucinated = g->n_mentions_hallucinated;
    out->n_generated = g->n_generated;
    out->n_generated_correct = g->n_generated_correct;
    out->n_truth = g->n_truth;
    out->n_truth_covered = g->n_truth_covered;
    out->chair_s = pct(g->n_captions_hallucinated, g->n_captions);
    out->chair_i = pct(g->n_mentions_hallucinated, g->n_mentions);
    out->precision = pct(g->n_generated_correct, g->n_generated);
    out->recall = pct(g->n_truth_covered, g->n_truth);
    double s = out->precision + out->recall;
    out->f1 = s > 0 ? 2.0 * out->precision * out->recall / s : 0.0;
    return AVL_OK;
}

avl_status avl_chair_get_caption(const avl_chair *c, int64_t i, avl_chair_caption *out)
{
    if (!c || !out || i < 0 || i >= c->n_caps)
        return avl__err(AVL_E_ARG, "chair: caption %lld out of range", (long long)i);
    const caption *k = &c->caps[i];
    out->id = k->id;
    out->method = c->groups[k->group].method;
    out->dataset = c->groups[k->group].dataset;
    out->caption = k->caption;
    out->n_mentions = k->n_mentions;
    out->mentions = k->mentions;
    out->n_generated = k->n_generated;
    out->n_truth = k->n_truth;
    out->n_hallucinated = k->n_hallucinated;
    out->n_covered = k->n_covered;
    out->generated = k->sets;
    out->truth = k->sets + k->n_generated;
    out->hallucinated = out->truth + k->n_truth;
    out->covered = out->hallucinated + k->n_hallucinated;
    return AVL_OK;
}

/* ---- captions JSONL ---- */

static avl_status opt_string(json_t *o, const char *key, const char **out, const char *label, int64_t line)
{
    json_t *x = json_object_get(o, key);
    *out = NULL;
    if (!x || json_is_null(x)) return AVL_OK;
    if (!json_is_string(x)) return avl__err(AVL_E_FORMAT, "%s:%lld: \"%s\" must be a string", label, (long long)line, key);
    *out = json_string_value(x);
    return AVL_OK;
}

avl_status avl_chair_add_jsonl_text(avl_chair *c, const char *text, size_t len, const char *label)
{
    if (!c || (!text && len)) return avl__err(AVL_E_ARG, "chair: NULL argument");
    if (!label) label = "captions";
    int64_t line = 0;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        line++;
        size_t s = i;
        i = e + 1;
        while (s < e && (text[s] == ' ' || text[s] == '\t' || text[s] == '\r')) s++;
        if (s == e) continue;
        json_error_t jerr;
        json_t *o;
        avl_status rc = avl__json_loadb(text + s, e - s, JSON_REJECT_DUPLICATES, label, &o, &jerr);
        if (rc == AVL_E_NOMEM)
            return avl__err(AVL_E_NOMEM, "%s:%lld: out of memory while parsing JSON", label, (long long)line);
        if (rc) {
            char b[72];
            return avl__err(AVL_E_FORMAT, "%s:%lld: bad JSON: %s", label, (long long)line, avl__clean(jerr.text, b));
        }
        const char *id = NULL, *cap = NULL, *method = NULL, *dataset = NULL;
        char idbuf[32];
        if (!json_is_object(o)) {
            rc = avl__err(AVL_E_FORMAT, "%s:%lld: a caption record must be a JSON object", label, (long long)line);
        } else {
            json_t *jid = json_object_get(o, "id");
            if (json_is_integer(jid)) {
                snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(jid));
                id = idbuf;
            } else if (json_is_string(jid)) {
                id = json_string_value(jid);
            } else {
                rc = avl__err(AVL_E_FORMAT, "%s:%lld: \"id\" missing or not a string", label, (long long)line);
            }
            if (!rc && !json_is_string(json_object_get(o, "caption")))
                rc = avl__err(AVL_E_FORMAT, "%s:%lld: \"caption\" missing or not a string", label, (long long)line);
            if (!rc) cap = json_string_value(json_object_get(o, "caption"));
            if (!rc) rc = opt_string(o, "method", &method, label, line);
            if (!rc) rc = opt_string(o, "dataset", &dataset, label, line);
            if (!method) method = c->def_method;
            if (!dataset) dataset = c->def_dataset;
            if (!rc) {
                rc = avl_chair_add(c, id, cap, method, dataset);
                if (rc) rc = avl__err_wrap(rc, "%s:%lld", label, (long long)line);
            }
        }
        json_decref(o);
        if (rc) return rc;
    }
    return AVL_OK;
}

avl_status avl_chair_add_jsonl(avl_chair *c, const char *path)
{
    char *text;
    size_t len;
    avl_status rc = avl__read_file(path, &text, &len);
    if (rc) return rc;
    rc = avl_chair_add_jsonl_text(c, text, len, path);
    avl__free(text);
    return rc;
}
