/* src/eval/chair_report.c: writes CHAIR results: the paper's Tab. 3 layout (one row per method
 * and data set: CHAIR_s, CHAIR_i, F1, plus precision and recall) as CSV and Markdown, and the
 * per-caption details as JSONL. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "eval_internal.h"

static avl_status open_out(const char *path, FILE **f)
{
    *f = fopen(path, "wb");
    if (!*f) return avl__err(AVL_E_IO, "%s: cannot create: %s", path, strerror(errno));
    return AVL_OK;
}

static avl_status close_out(const char *path, FILE *f)
{
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) return avl__err(AVL_E_IO, "%s: write failed: %s", path, strerror(errno));
    return AVL_OK;
}

/* A CSV field, quoted when it holds a comma, quote or line break. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

avl_status avl_chair_write_csv(const avl_chair *c, const char *path)
{
    if (!c || !path) return avl__err(AVL_E_ARG, "chair: NULL argument");
    FILE *f;
    avl_status rc = open_out(path, &f);
    if (rc) return rc;
    fprintf(f, "method,dataset,captions,chair_s,chair_i,precision,recall,f1,mentions,hallucinated_mentions\n");
    for (int64_t i = 0; i < avl_chair_group_count(c); i++) {
        avl_chair_scores s;
        avl_chair_group(c, i, &s);
        csv_field(f, s.method);
        fputc(',', f);
        csv_field(f, s.dataset);
        fprintf(f, ",%lld,%.4f,%.4f,%.4f,%.4f,%.4f,%lld,%lld\n", (long long)s.n_captions, s.chair_s, s.chair_i,
                s.precision, s.recall, s.f1, (long long)s.n_mentions, (long long)s.n_mentions_hallucinated);
    }
    return close_out(path, f);
}

/* A Markdown cell: '|' escaped, line breaks as spaces. */
static void md_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else fputc(*s, f);
    }
}

avl_status avl_chair_write_markdown(const avl_chair *c, const char *path)
{
    if (!c || !path) return avl__err(AVL_E_ARG, "chair: NULL argument");
    FILE *f;
    avl_status rc = open_out(path, &f);
    if (rc) return rc;
    fprintf(f, "| Method | Data set | Captions | CHAIR_s ↓ | CHAIR_i ↓ | Precision ↑ | Recall ↑ | F1 ↑ |\n"
               "|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int64_t i = 0; i < avl_chair_group_count(c); i++) {
        avl_chair_scores s;
        avl_chair_group(c, i, &s);
        fputs("| ", f);
        md_cell(f, s.method);
        fputs(" | ", f);
        md_cell(f, s.dataset);
        fprintf(f, " | %lld | %.1f | %.1f | %.1f | %.1f | %.1f |\n", (long long)s.n_captions, s.chair_s, s.chair_i,
                s.precision, s.recall, s.f1);
    }
    return close_out(path, f);
}

static json_t *str_array(const char *const *v, int64_t n)
{
    json_t *a = json_array();
    for (int64_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* One caption as a JSON object (NULL on allocation failure). */
static json_t *caption_json(const avl_chair_caption *k)
{
    json_t *ms = json_array();
    for (int64_t i = 0; ms && i < k->n_mentions; i++) {
        json_t *m = json_pack("{s:s, s:s, s:b}", "text", k->mentions[i].text, "object", k->mentions[i].object,
                              "hallucinated", (int)k->mentions[i].hallucinated);
        if (!m || json_array_append_new(ms, m)) {
            json_decref(ms);
            ms = NULL;
        }
    }
    if (!ms) return NULL;
    int64_t nh = 0;
    for (int64_t i = 0; i < k->n_mentions; i++) nh += k->mentions[i].hallucinated;
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o*, s:o*, s:o*, s:o*, s:I, s:I}", "id", k->id, "method",
                     k->method, "dataset", k->dataset, "caption", k->caption, "mentions", ms, "generated",
                     str_array(k->generated, k->n_generated), "truth", str_array(k->truth, k->n_truth),
                     "hallucinated", str_array(k->hallucinated, k->n_hallucinated), "covered",
                     str_array(k->covered, k->n_covered), "n_mentions", (json_int_t)k->n_mentions,
                     "n_hallucinated_mentions", (json_int_t)nh);
}

avl_status avl_chair_write_details(const avl_chair *c, const char *path)
{
    if (!c || !path) return avl__err(AVL_E_ARG, "chair: NULL argument");
    FILE *f;
    avl_status rc = open_out(path, &f);
    if (rc) return rc;
    avl__json_begin(); /* jansson allocates through avl__malloc */
    for (int64_t i = 0; i < avl_chair_caption_count(c); i++) {
        avl_chair_caption k;
        avl_chair_get_caption(c, i, &k);
        json_t *o = caption_json(&k);
        if (!o || json_dumpf(o, f, JSON_COMPACT | JSON_ENSURE_ASCII) != 0) {
            json_decref(o);
            fclose(f);
            return avl__err(AVL_E_NOMEM, "%s: cannot format caption %lld", path, (long long)i);
        }
        fputc('\n', f);
        json_decref(o);
    }
    return close_out(path, f);
}
