/* src/data/report.c: records -> tables (CSV, Markdown), figures (SVG) and report.html.
 *
 * The record schemas are in docs/records.md. What is computed (the paper's tables):
 * - dominance (Tab. 5 counts, Sec. 3.1 Eqs. 1-2): per model, how many samples are
 *   audio-dominant, video-dominant or neither, and the accuracy of each run where a label is known;
 * - trace (Tab. 1, 2, 9-11; Eqs. 3-4): per (model, site, corruption), per token set and
 *   dominance case: mean IE_clean and IE_corr times 100 and the mean number of patched tokens,
 *   over the ok records, from the results that patch every layer; results over a layer window
 *   feed the layer-window curve (App. B.1.4);
 * - mds (Tab. 12): median, IQR (numpy's linear interpolation) and population std of MDS over
 *   sinks x layers, per sink modality, null values left out;
 * - sinks: mean number of global sinks per N and modality, and the heat strip of f(t);
 * - sweep (App. B.1.1, Tab. 6-7): per (model, site, corruption), dominance case and sink group
 *   N: the share of S u O (Sink N with Object) among the top-k tokens ranked by IE_clean (ties
 *   by IE_corr, then position), averaged over samples (k capped at the tokens swept), and the
 *   effect of the group runs S u O and Neither relative to All (ratio of the means over samples).
 * Records with "status":"error" are counted and listed, never averaged.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avlens/analysis.h"
#include "data/svg.h"

avl_report_params avl_report_default_params(void)
{
    avl_report_params p;
    p.title = "avlens report";
    p.max_strips = 8;
    p.intro_html = NULL;
    p.chair_csv = NULL;
    return p;
}

/* ---- tables ------------------------------------------------------------------------------ */

typedef struct {
    char *title;
    char *name;       /* file stem */
    int ncol;
    char **cells;     /* row-major; row 0 is the header */
    int nrow, cap;
    char *note;       /* a line under the table */
    bool detail;      /* long: folded away in the HTML page */
} table;

typedef struct {
    table **t;
    int n;
    bool nomem;
} tables;

static table *table_new(tables *ts, const char *name, const char *title, int ncol)
{
    table *t = avl__calloc(1, sizeof *t);
    table **nt = avl__realloc(ts->t, (size_t)(ts->n + 1) * sizeof *nt);
    if (!t || !nt) {
        avl__free(t);
        if (nt) ts->t = nt;
        ts->nomem = true;
        return NULL;
    }
    ts->t = nt;
    t->name = avl__strdup(name);
    t->title = avl__strdup(title);
    t->ncol = ncol;
    if (!t->name || !t->title) ts->nomem = true;
    ts->t[ts->n++] = t;
    return t;
}

static void table_row(tables *ts, table *t, const char *const *cells)
{
    if (!t) return;
    if (t->nrow == t->cap) {
        int nc = t->cap ? t->cap * 2 : 16;
        char **n = avl__realloc(t->cells, (size_t)nc * (size_t)t->ncol * sizeof *n);
        if (!n) {
            ts->nomem = true;
            return;
        }
        t->cells = n;
        t->cap = nc;
    }
    for (int c = 0; c < t->ncol; c++) {
        char *s = avl__strdup(cells[c] ? cells[c] : "");
        if (!s) ts->nomem = true;
        t->cells[t->nrow * t->ncol + c] = s;
    }
    t->nrow++;
}

static void tables_free(tables *ts)
{
    for (int i = 0; i < ts->n; i++) {
        table *t = ts->t[i];
        for (int k = 0; k < t->nrow * t->ncol; k++) avl__free(t->cells[k]);
        avl__free(t->cells);
        avl__free(t->title);
        avl__free(t->name);
        avl__free(t->note);
        avl__free(t);
    }
    avl__free(ts->t);
}

static const char *cell(const table *t, int r, int c)
{
    const char *s = t->cells[r * t->ncol + c];
    return s ? s : "";
}

static void table_csv(const table *t, avl__sb *o)
{
    for (int r = 0; r < t->nrow; r++) {
        for (int c = 0; c < t->ncol; c++) {
            const char *s = cell(t, r, c);
            if (c) avl__sb_puts(o, ",");
            if (strpbrk(s, ",\"\n")) {
                avl__sb_puts(o, "\"");
                for (; *s; s++) avl__sb_put(o, *s == '"' ? "\"\"" : s, *s == '"' ? 2 : 1);
                avl__sb_puts(o, "\"");
            } else {
                avl__sb_puts(o, s);
            }
        }
        avl__sb_puts(o, "\n");
    }
}

static void md_cell(avl__sb *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') avl__sb_puts(o, "\\|");
        else if (*s == '\n') avl__sb_puts(o, " ");
        else avl__sb_put(o, s, 1);
    }
}

static void table_md(const table *t, avl__sb *o)
{
    avl__sb_printf(o, "### %s\n\n", t->title);
    for (int r = 0; r < t->nrow; r++) {
        avl__sb_puts(o, "|");
        for (int c = 0; c < t->ncol; c++) {
            avl__sb_puts(o, " ");
            md_cell(o, cell(t, r, c));
            avl__sb_puts(o, " |");
        }
        avl__sb_puts(o, "\n");
        if (r == 0) {
            avl__sb_puts(o, "|");
            for (int c = 0; c < t->ncol; c++) avl__sb_puts(o, c == 0 ? " :--- |" : " ---: |");
            avl__sb_puts(o, "\n");
        }
    }
    if (t->note) avl__sb_printf(o, "\n%s\n", t->note);
    avl__sb_puts(o, "\n");
}

static bool numeric(const char *s)
{
    if (!strcmp(s, "-") || !strcmp(s, "n/a")) return true;
    char *end;
    strtod(s, &end);
    return end != s && *end == '\0';
}

static void table_html(const table *t, avl__sb *o)
{
    if (t->detail) {
        avl__sb_puts(o, "<details>\n<summary>");
        avl__sb_put_xml(o, t->title);
        avl__sb_printf(o, " (%d rows)</summary>\n<table>\n", t->nrow - 1);
    } else {
        avl__sb_puts(o, "<h3>");
        avl__sb_put_xml(o, t->title);
        avl__sb_puts(o, "</h3>\n<table>\n");
    }
    for (int r = 0; r < t->nrow; r++) {
        avl__sb_puts(o, "<tr>");
        for (int c = 0; c < t->ncol; c++) {
            const char *tag = r == 0 ? "th" : "td";
            avl__sb_printf(o, "<%s%s>", tag, r > 0 && numeric(cell(t, r, c)) ? " class=\"num\"" : "");
            avl__sb_put_xml(o, cell(t, r, c));
            avl__sb_printf(o, "</%s>", tag);
        }
        avl__sb_puts(o, "</tr>\n");
    }
    avl__sb_puts(o, "</table>\n");
    if (t->detail) avl__sb_puts(o, "</details>\n");
    if (t->note) {
        avl__sb_puts(o, "<p class=\"note\">");
        avl__sb_put_xml(o, t->note);
        avl__sb_puts(o, "</p>\n");
    }
}

/* ---- small statistics -------------------------------------------------------------------- */

typedef struct {
    double *v;
    int64_t n, cap;
    bool nomem;
} dvec;

static void dvec_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        int64_t nc = d->cap ? d->cap * 2 : 64;
        double *nv = avl__realloc(d->v, (size_t)nc * sizeof *nv);
        if (!nv) {
            d->nomem = true;
            return;
        }
        d->v = nv;
        d->cap = nc;
    }
    d->v[d->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* numpy.percentile's default ("linear"): position q*(n-1) in the sorted values. */
static double quantile_sorted(const double *v, int64_t n, double q)
{
    if (n == 0) return NAN;
    double pos = q * (double)(n - 1);
    int64_t i = (int64_t)floor(pos);
    double fr = pos - (double)i;
    if (i + 1 >= n) return v[n - 1];
    return v[i] + fr * (v[i + 1] - v[i]);
}

static void fmt(char *b, size_t n, double v, int digits)
{
    if (!isfinite(v)) snprintf(b, n, "n/a");
    else {
        if (fabs(v) < 0.5 * pow(10, -digits)) v = 0; /* no "-0.00" */
        snprintf(b, n, "%.*f", digits, v);
    }
}

/* ---- JSON access ------------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : dflt;
}

static double jnum(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* ---- the collected data ------------------------------------------------------------------ */

/* One aggregate cell of the trace tables: the key parts and the sums. */
typedef struct {
    char *group;      /* "model | site | corruption" */
    char *dominance;  /* "audio" / "video" */
    char *set;        /* "sink" ... */
    int n;            /* N of sink/random sets, 0 otherwise */
    int ls, le;       /* layer window; le < 0: every layer */
    int64_t count;
    double ie_clean, ie_corr, tokens;
} trace_cell;

typedef struct {
    trace_cell *c;
    int64_t n, cap;
} trace_cells;

typedef struct {
    char *model;
    int64_t ok, errors, cases[3], labelled, correct[3];
} dom_row;

/* One cell of the sweep tables: (setting, dominance, N, k); k = 0 holds the group runs. */
typedef struct {
    char *group;      /* "model | site | corruption" */
    char *dominance;
    int n;            /* sink group N */
    int64_t k;        /* top-k (Tab. 6), or 0: group runs (Tab. 7) */
    int64_t count;    /* samples */
    double frac;      /* k > 0: sum over samples of the S u O share of the top k */
    double ie[3][2];  /* k = 0: sums of IE_clean, IE_corr of All, S u O, Neither */
    double tok[3];    /* k = 0: sums of #tokens of All, S u O, Neither */
} sweep_cell;

typedef struct {
    avl_report_params p;
    tables ts;
    trace_cells trace;
    sweep_cell *sweep;
    int64_t n_sweep, cap_sweep;
    dom_row *dom;
    int ndom;
    dvec mds[2];                /* video, audio */
    int64_t mds_sinks[2], mds_samples;
    json_t *mds_first;          /* the first sample's mds record (for the per-sink figure) */
    json_t *sink_rows[64];      /* sinks records shown in the heat strip */
    int nsink_rows;
    /* sinks table: per N, sums of counts per modality */
    struct {
        int n;
        int64_t samples;
        double total, video, audio, text;
    } sinkn[8];
    int nsinkn;
    json_t *captions;           /* {id: {method: caption}} from caption.<method> records */
    json_t *trace_seen;         /* (setting, sample) pairs already counted */
    char **chair_rows;          /* "method" or "method (dataset)" per chair.csv row */
    double *chair_vals;         /* (n_chair, 3): CHAIR_s, CHAIR_i, F1 */
    int n_chair;
    json_t *methods;            /* the methods in the order first seen */
    int64_t errors_total;
    tables errs;                /* one table listing the error records */
    table *err_table;
    bool nomem;
} report;

static trace_cell *trace_cell_get(report *r, const char *group, const char *dom, const char *set, int n, int ls, int le)
{
    trace_cells *t = &r->trace;
    for (int64_t i = 0; i < t->n; i++) {
        trace_cell *c = &t->c[i];
        if (!strcmp(c->group, group) && !strcmp(c->dominance, dom) && !strcmp(c->set, set) && c->n == n && c->ls == ls &&
            c->le == le)
            return c;
    }
    if (t->n == t->cap) {
        int64_t nc = t->cap ? t->cap * 2 : 64;
        trace_cell *nn = avl__realloc(t->c, (size_t)nc * sizeof *nn);
        if (!nn) return NULL;
        t->c = nn;
        t->cap = nc;
    }
    trace_cell *c = &t->c[t->n];
    memset(c, 0, sizeof *c);
    c->group = avl__strdup(group);
    c->dominance = avl__strdup(dom);
    c->set = avl__strdup(set);
    if (!c->group || !c->dominance || !c->set) {
        avl__free(c->group);
        avl__free(c->dominance);
        avl__free(c->set);
        return NULL;
    }
    c->n = n;
    c->ls = ls;
    c->le = le;
    t->n++;
    return c;
}

static void note_error(report *r, const char *folder, json_t *o)
{
    r->errors_total++;
    if (!r->err_table) {
        r->err_table = table_new(&r->errs, "errors", "Samples that failed", 4);
        const char *h[4] = {"analysis folder", "id", "code", "message"};
        table_row(&r->errs, r->err_table, h);
    }
    const char *row[4] = {folder, jstr(o, "id", ""), jstr(o, "code", ""), jstr(o, "message", "")};
    table_row(&r->errs, r->err_table, row);
}

static void add_dominance(report *r, json_t *o)
{
    const char *model = jstr(o, "model", "model");
    dom_row *d = NULL;
    for (int i = 0; i < r->ndom; i++)
        if (!strcmp(r->dom[i].model, model)) d = &r->dom[i];
    if (!d) {
        dom_row *nd = avl__realloc(r->dom, (size_t)(r->ndom + 1) * sizeof *nd);
        if (!nd) {
            r->nomem = true;
            return;
        }
        r->dom = nd;
        d = &r->dom[r->ndom];
        memset(d, 0, sizeof *d);
        if (!(d->model = avl__strdup(model))) {
            r->nomem = true;
            return;
        }
        r->ndom++;
    }
    d->ok++;
    const char *cs = jstr(o, "case", "none");
    d->cases[!strcmp(cs, "audio") ? 0 : !strcmp(cs, "video") ? 1 : 2]++;
    const char *label = jstr(o, "label", NULL);
    json_t *ans = json_object_get(o, "answers");
    if (label && json_is_object(ans)) {
        d->labelled++;
        static const char *const runs[3] = {"av", "a", "v"};
        for (int k = 0; k < 3; k++) {
            const char *a = jstr(ans, runs[k], NULL);
            if (a && !strcmp(a, label)) d->correct[k]++;
        }
    }
}

static void add_trace(report *r, json_t *o)
{
    char group[512];
    snprintf(group, sizeof group, "%s | %s | %s", jstr(o, "model", "model"), jstr(o, "site", "before_attn"),
             jstr(o, "corruption", "zero"));
    const char *dom = jstr(o, "dominance", "?");
    double nl = jnum(o, "n_layers");
    json_t *res = json_object_get(o, "results");
    size_t i;
    json_t *e;
    json_array_foreach(res, i, e) {
        const char *set = jstr(e, "set", NULL);
        double ie_c = jnum(e, "ie_clean"), ie_r = jnum(e, "ie_corr"), tok = jnum(e, "n_tokens");
        if (!set || !isfinite(ie_c) || !isfinite(ie_r)) continue;
        double n = jnum(e, "n"), ls = jnum(e, "layer_start"), le = jnum(e, "layer_end");
        int in = isfinite(n) ? (int)n : 0;
        int ils = isfinite(ls) ? (int)ls : 0;
        int ile = isfinite(le) ? (int)le : -1;
        if (ils == 0 && (ile < 0 || (isfinite(nl) && ile >= (int)nl))) ile = -1; /* every layer */
        /* the same sample and setting in two folders (a layer-window run repeats the every-layer
         * result, e.g. trace/ and trace.windows/) counts once */
        char key[768];
        snprintf(key, sizeof key, "%s|%s|%s|%d|%d|%d|%s", group, dom, set, in, ils, ile, jstr(o, "id", ""));
        if (!r->trace_seen && !(r->trace_seen = json_object())) {
            r->nomem = true;
            return;
        }
        if (json_object_get(r->trace_seen, key)) continue;
        json_object_set_new(r->trace_seen, key, json_true());
        trace_cell *c = trace_cell_get(r, group, dom, set, in, ils, ile);
        if (!c) {
            r->nomem = true;
            return;
        }
        c->count++;
        c->ie_clean += ie_c;
        c->ie_corr += ie_r;
        c->tokens += isfinite(tok) ? tok : 0;
    }
}

static sweep_cell *sweep_cell_get(report *r, const char *group, const char *dom, int n, int64_t k)
{
    for (int64_t i = 0; i < r->n_sweep; i++) {
        sweep_cell *c = &r->sweep[i];
        if (!strcmp(c->group, group) && !strcmp(c->dominance, dom) && c->n == n && c->k == k) return c;
    }
    if (r->n_sweep == r->cap_sweep) {
        int64_t nc = r->cap_sweep ? 2 * r->cap_sweep : 32;
        sweep_cell *nn = avl__realloc(r->sweep, (size_t)nc * sizeof *nn);
        if (!nn) return NULL;
        r->sweep = nn;
        r->cap_sweep = nc;
    }
    sweep_cell *c = &r->sweep[r->n_sweep];
    memset(c, 0, sizeof *c);
    c->group = avl__strdup(group);
    c->dominance = avl__strdup(dom);
    if (!c->group || !c->dominance) {
        avl__free(c->group);
        avl__free(c->dominance);
        return NULL;
    }
    c->n = n;
    c->k = k;
    r->n_sweep++;
    return c;
}

/* The group run (group, N) of a sweep record: its entry, or NULL. */
static json_t *sweep_group(json_t *groups, const char *name, int n)
{
    size_t i;
    json_t *e;
    json_array_foreach(groups, i, e) {
        double en = jnum(e, "n");
        if (!strcmp(jstr(e, "group", ""), name) && (n == 0 ? !isfinite(en) : isfinite(en) && (int)en == n)) return e;
    }
    return NULL;
}

static void add_sweep(report *r, json_t *o)
{
    char group[512];
    snprintf(group, sizeof group, "%s | %s | %s", jstr(o, "model", "model"), jstr(o, "site", "before_attn"),
             jstr(o, "corruption", "zero"));
    const char *dom = jstr(o, "dominance", "?");
    json_t *toks = json_object_get(o, "tokens"), *groups = json_object_get(o, "groups"), *tk = json_object_get(o, "top_k");
    int64_t n = (int64_t)json_array_size(toks);
    int64_t ks[16] = {5, 10, 20}, nk = 3;
    if (json_array_size(tk)) {
        nk = 0;
        size_t i;
        json_t *e;
        json_array_foreach(tk, i, e) if (json_is_integer(e) && json_integer_value(e) > 0 && nk < 16) ks[nk++] = json_integer_value(e);
    }
    static const int NS[2] = {2, 3};
    double *ie = avl__malloc(((size_t)n + 1) * 2 * sizeof *ie);
    int64_t *order = avl__malloc(((size_t)n + 1) * sizeof *order);
    uint8_t *mem = avl__malloc((size_t)n + 1);
    if (!ie || !order || !mem) r->nomem = true;
    else {
        for (int64_t i = 0; i < n; i++) {
            json_t *e = json_array_get(toks, (size_t)i);
            ie[i] = jnum(e, "ie_clean");
            ie[n + i] = jnum(e, "ie_corr");
            mem[i] = (uint8_t)((json_is_true(json_object_get(e, "sink2")) ? 1 : 0) |
                               (json_is_true(json_object_get(e, "sink3")) ? 2 : 0) |
                               (json_is_true(json_object_get(e, "object")) ? 4 : 0));
        }
        if (avl_sweep_rank(ie, ie + n, n, order)) r->nomem = true;
        /* Tab. 6: the S u O share among the top k */
        for (int g = 0; g < 2 && n > 0 && !r->nomem; g++)
            for (int64_t j = 0; j < nk; j++) {
                int64_t k = ks[j] < n ? ks[j] : n, in = 0;
                for (int64_t i = 0; i < k; i++) in += (mem[order[i]] & ((1u << g) | 4u)) != 0;
                sweep_cell *c = sweep_cell_get(r, group, dom, NS[g], ks[j]);
                if (!c) {
                    r->nomem = true;
                    break;
                }
                c->count++;
                c->frac += (double)in / (double)k;
            }
    }
    avl__free(ie);
    avl__free(order);
    avl__free(mem);
    /* Tab. 7: the group runs */
    json_t *all = sweep_group(groups, "all", 0);
    for (int g = 0; g < 2 && all && !r->nomem; g++) {
        json_t *e[3] = {all, sweep_group(groups, "sink_object", NS[g]), sweep_group(groups, "neither", NS[g])};
        bool okv = e[1] && e[2];
        for (int i = 0; i < 3 && okv; i++) okv = isfinite(jnum(e[i], "ie_clean")) && isfinite(jnum(e[i], "ie_corr"));
        if (!okv) continue;
        sweep_cell *c = sweep_cell_get(r, group, dom, NS[g], 0);
        if (!c) {
            r->nomem = true;
            break;
        }
        c->count++;
        for (int i = 0; i < 3; i++) {
            c->ie[i][0] += jnum(e[i], "ie_clean");
            c->ie[i][1] += jnum(e[i], "ie_corr");
            double t = jnum(e[i], "n_tokens");
            c->tok[i] += isfinite(t) ? t : 0;
        }
    }
}

static void add_mds(report *r, json_t *o)
{
    r->mds_samples++;
    if (!r->mds_first) r->mds_first = json_incref(o);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(o, "sinks"), i, s) {
        const char *m = jstr(s, "modality", "");
        int k = !strcmp(m, "video") ? 0 : !strcmp(m, "audio") ? 1 : -1;
        if (k < 0) continue;
        r->mds_sinks[k]++;
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(s, "mds"), j, v) if (json_is_number(v)) dvec_push(&r->mds[k], json_number_value(v));
    }
}

/* Modality of a position from the record's segments (NULL outside them). */
static const char *segment_modality(json_t *segs, int64_t pos)
{
    size_t i;
    json_t *s;
    json_array_foreach(segs, i, s) {
        double a = jnum(s, "start"), b = jnum(s, "end");
        if (pos >= a && pos < b) return jstr(s, "modality", NULL);
    }
    return NULL;
}

static void add_sinks(report *r, json_t *o)
{
    if (r->nsink_rows < r->p.max_strips && r->nsink_rows < 64) r->sink_rows[r->nsink_rows++] = json_incref(o);
    json_t *segs = json_object_get(o, "segments");
    const char *key;
    json_t *list;
    json_object_foreach(json_object_get(o, "global"), key, list) {
        int n = atoi(key);
        int k;
        for (k = 0; k < r->nsinkn && r->sinkn[k].n != n; k++) {}
        if (k == r->nsinkn) {
            if (r->nsinkn == 8) continue;
            memset(&r->sinkn[k], 0, sizeof r->sinkn[k]);
            r->sinkn[k].n = n;
            r->nsinkn++;
        }
        r->sinkn[k].samples++;
        size_t i;
        json_t *p;
        json_array_foreach(list, i, p) {
            if (!json_is_integer(p)) continue;
            const char *m = segment_modality(segs, json_integer_value(p));
            r->sinkn[k].total++;
            if (m && !strcmp(m, "video")) r->sinkn[k].video++;
            else if (m && !strcmp(m, "audio")) r->sinkn[k].audio++;
            else r->sinkn[k].text++;
        }
    }
}

/* ---- composing the tables ---------------------------------------------------------------- */

static void dominance_table(report *r)
{
    if (!r->ndom) return;
    table *t = table_new(&r->ts, "dominance", "Unimodal dominance (Eqs. 1-2): samples per case and accuracy per run", 8);
    const char *h[8] = {"model", "samples", "audio-dominant", "video-dominant", "neither", "acc. AV (%)", "acc. A (%)", "acc. V (%)"};
    table_row(&r->ts, t, h);
    for (int i = 0; i < r->ndom; i++) {
        dom_row *d = &r->dom[i];
        char b[7][32];
        snprintf(b[0], 32, "%lld", (long long)d->ok);
        for (int k = 0; k < 3; k++) snprintf(b[1 + k], 32, "%lld", (long long)d->cases[k]);
        for (int k = 0; k < 3; k++) fmt(b[4 + k], 32, d->labelled ? 100.0 * (double)d->correct[k] / (double)d->labelled : NAN, 1);
        const char *row[8] = {d->model, b[0], b[1], b[2], b[3], b[4], b[5], b[6]};
        table_row(&r->ts, t, row);
    }
}

/* Token sets in the paper's row order. */
static int set_rank(const char *s)
{
    static const char *const order[] = {"all", "object", "sink", "random", "unimodal_sink", "crossmodal_sink"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, order[i])) return i;
    return 6;
}

static void set_label(char *b, size_t n, const char *set, int N)
{
    const char *name = !strcmp(set, "all") ? "All" : !strcmp(set, "object") ? "Object" : !strcmp(set, "sink") ? "Sink"
                     : !strcmp(set, "random") ? "Random" : !strcmp(set, "unimodal_sink") ? "Unimodal sink"
                     : !strcmp(set, "crossmodal_sink") ? "Cross-modal sink" : set;
    if (N > 0) snprintf(b, n, "%s (N=%d)", name, N);
    else snprintf(b, n, "%s", name);
}

static int cmp_cells(const void *a, const void *b)
{
    const trace_cell *x = a, *y = b;
    int c = strcmp(x->group, y->group);
    if (c) return c;
    c = set_rank(x->set) - set_rank(y->set);
    if (c) return c;
    if ((c = strcmp(x->set, y->set))) return c;
    if (x->n != y->n) return x->n - y->n;
    if (x->ls != y->ls) return x->ls - y->ls;
    if (x->le != y->le) return x->le - y->le;
    return strcmp(x->dominance, y->dominance);
}

static void trace_tables(report *r)
{
    trace_cells *tc = &r->trace;
    if (!tc->n) return;
    qsort(tc->c, (size_t)tc->n, sizeof *tc->c, cmp_cells);
    /* the tidy CSV of every cell, windows included */
    table *all = table_new(&r->ts, "trace", "Causal tracing: every setting (IE x100)", 10);
    const char *h[10] = {"model | site | corruption", "dominance", "token set", "N", "layer_start", "layer_end", "samples",
                         "IE_clean", "IE_corr", "#tokens"};
    table_row(&r->ts, all, h);
    if (all) all->detail = true;
    for (int64_t i = 0; i < tc->n; i++) {
        trace_cell *c = &tc->c[i];
        char b[7][32];
        snprintf(b[0], 32, "%d", c->n);
        snprintf(b[1], 32, "%d", c->ls);
        if (c->le < 0) snprintf(b[2], 32, "all");
        else snprintf(b[2], 32, "%d", c->le);
        snprintf(b[3], 32, "%lld", (long long)c->count);
        fmt(b[4], 32, 100 * c->ie_clean / (double)c->count, 2);
        fmt(b[5], 32, 100 * c->ie_corr / (double)c->count, 2);
        fmt(b[6], 32, c->tokens / (double)c->count, 1);
        const char *row[10] = {c->group, c->dominance, c->set, b[0], b[1], b[2], b[3], b[4], b[5], b[6]};
        table_row(&r->ts, all, row);
    }
    /* the paper's layout: one table per (model, site, corruption); rows token sets, column
     * groups audio-dominant | video-dominant; every-layer results only */
    int64_t g0 = 0;
    int gi = 0;
    while (g0 < tc->n) {
        int64_t g1 = g0;
        while (g1 < tc->n && !strcmp(tc->c[g1].group, tc->c[g0].group)) g1++;
        char name[32], title[640];
        snprintf(name, sizeof name, "trace_table_%d", ++gi);
        snprintf(title, sizeof title, "Causal tracing, %s: IE x100 and mean #tokens per token set (Tab. 1/2 layout)",
                 tc->c[g0].group);
        table *t = NULL;
        for (int64_t i = g0; i < g1; i++) {
            trace_cell *c = &tc->c[i];
            if (c->le >= 0 || c->ls != 0) continue;
            if (!t) {
                t = table_new(&r->ts, name, title, 9);
                const char *hh[9] = {"token set", "A-dom. IE_clean", "A-dom. IE_corr", "A-dom. #tokens", "A-dom. n",
                                     "V-dom. IE_clean", "V-dom. IE_corr", "V-dom. #tokens", "V-dom. n"};
                table_row(&r->ts, t, hh);
                if (t) {
                    t->note = avl__strdup("IE_clean = P_rest(clean answer) - P_corr(clean answer); IE_corr = P_corr(corrupt answer) - "
                                          "P_rest(corrupt answer); means over samples, x100. n: samples.");
                    if (!t->note) r->nomem = true;
                }
            }
            /* one row per (set, N): fill from the audio and video cells of this row */
            bool first_of_row = i == g0 || strcmp(tc->c[i - 1].set, c->set) || tc->c[i - 1].n != c->n ||
                                tc->c[i - 1].le >= 0 || tc->c[i - 1].ls != 0;
            if (!first_of_row) continue;
            char lab[96], b[8][32];
            set_label(lab, sizeof lab, c->set, c->n);
            for (int k = 0; k < 8; k++) snprintf(b[k], 32, "-");
            for (int64_t j = i; j < g1 && !strcmp(tc->c[j].set, c->set) && tc->c[j].n == c->n; j++) {
                trace_cell *d = &tc->c[j];
                if (d->le >= 0 || d->ls != 0) continue;
                int off = !strcmp(d->dominance, "audio") ? 0 : !strcmp(d->dominance, "video") ? 4 : -1;
                if (off < 0) continue;
                fmt(b[off], 32, 100 * d->ie_clean / (double)d->count, 2);
                fmt(b[off + 1], 32, 100 * d->ie_corr / (double)d->count, 2);
                fmt(b[off + 2], 32, d->tokens / (double)d->count, 1);
                snprintf(b[off + 3], 32, "%lld", (long long)d->count);
            }
            const char *row[9] = {lab, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]};
            table_row(&r->ts, t, row);
        }
        g0 = g1;
    }
}

/* video-dominant first, as the paper's Tab. 6-7 */
static int dom_rank(const char *d) { return !strcmp(d, "video") ? 0 : !strcmp(d, "audio") ? 1 : 2; }

static int cmp_sweep(const void *a, const void *b)
{
    const sweep_cell *x = a, *y = b;
    int c = strcmp(x->group, y->group);
    if (c) return c;
    if (dom_rank(x->dominance) != dom_rank(y->dominance)) return dom_rank(x->dominance) - dom_rank(y->dominance);
    c = strcmp(x->dominance, y->dominance);
    if (c) return c;
    if (x->n != y->n) return x->n - y->n;
    return x->k < y->k ? -1 : x->k > y->k;
}

static void sweep_tables(report *r)
{
    if (!r->n_sweep) return;
    qsort(r->sweep, (size_t)r->n_sweep, sizeof *r->sweep, cmp_sweep);
    /* the k seen, ascending */
    int64_t ks[16];
    int nk = 0;
    for (int64_t i = 0; i < r->n_sweep; i++) {
        int64_t k = r->sweep[i].k;
        bool seen = k == 0;
        for (int j = 0; j < nk && !seen; j++) seen = ks[j] == k;
        if (seen || nk == 16) continue;
        int j = nk++;
        while (j > 0 && ks[j - 1] > k) ks[j] = ks[j - 1], j--;
        ks[j] = k;
    }
    if (nk) {
        table *t = table_new(&r->ts, "sweep_topk",
                             "Bottom-up sweep: share of S u O (Sink N with Object) and Neither among the top-k tokens (Tab. 6 layout)",
                             4 + nk);
        const char *h[20] = {"model | site | corruption", "dominance", "group"};
        char hk[16][32];
        for (int j = 0; j < nk; j++) {
            snprintf(hk[j], 32, "top-%lld", (long long)ks[j]);
            h[3 + j] = hk[j];
        }
        h[3 + nk] = "samples";
        table_row(&r->ts, t, h);
        if (t && !(t->note = avl__strdup("Tokens ranked by IE_clean (ties by IE_corr); per sample the share of the top k "
                                          "(k capped at the tokens swept) in S u O, then the mean over samples.")))
            r->nomem = true;
        for (int64_t i = 0; i < r->n_sweep;) {
            const sweep_cell *c0 = &r->sweep[i];
            int64_t i1 = i;
            while (i1 < r->n_sweep && !strcmp(r->sweep[i1].group, c0->group) && !strcmp(r->sweep[i1].dominance, c0->dominance) &&
                   r->sweep[i1].n == c0->n)
                i1++;
            char b[2][16][32], lab[2][48], cnt[32] = "0";
            for (int j = 0; j < nk; j++) snprintf(b[0][j], 32, "-"), snprintf(b[1][j], 32, "-");
            bool any = false;
            for (int64_t x = i; x < i1; x++) {
                const sweep_cell *c = &r->sweep[x];
                if (c->k == 0 || !c->count) continue;
                for (int j = 0; j < nk; j++)
                    if (ks[j] == c->k) {
                        fmt(b[0][j], 32, c->frac / (double)c->count, 2);
                        fmt(b[1][j], 32, 1.0 - c->frac / (double)c->count, 2);
                    }
                snprintf(cnt, sizeof cnt, "%lld", (long long)c->count);
                any = true;
            }
            if (any) {
                snprintf(lab[0], sizeof lab[0], "S u O (N=%d)", c0->n);
                snprintf(lab[1], sizeof lab[1], "Neither (N=%d)", c0->n);
                for (int w = 0; w < 2; w++) {
                    const char *row[20] = {c0->group, c0->dominance, lab[w]};
                    for (int j = 0; j < nk; j++) row[3 + j] = b[w][j];
                    row[3 + nk] = cnt;
                    table_row(&r->ts, t, row);
                }
            }
            i = i1;
        }
    }
    table *t = NULL;
    const sweep_cell *last_all = NULL;
    static const char *const GN[3] = {"All", "S u O", "Neither"};
    for (int64_t i = 0; i < r->n_sweep; i++) {
        const sweep_cell *c = &r->sweep[i];
        if (c->k != 0 || !c->count) continue;
        if (!t) {
            t = table_new(&r->ts, "sweep_share",
                          "Bottom-up sweep: effect of patching S u O or Neither relative to All (Tab. 7 layout)", 9);
            const char *h[9] = {"model | site | corruption", "dominance", "group", "share of IE_clean", "share of IE_corr",
                                "IE_clean x100", "IE_corr x100", "#tokens", "samples"};
            table_row(&r->ts, t, h);
            if (t && !(t->note = avl__strdup("share = mean IE of the group run / mean IE of All (over the samples); "
                                              "S u O and Neither need not add up to 1.")))
                r->nomem = true;
        }
        for (int g = 0; g < 3; g++) {
            if (g == 0 && last_all && !strcmp(last_all->group, c->group) && !strcmp(last_all->dominance, c->dominance))
                continue; /* All once per (setting, dominance) */
            if (g == 0) last_all = c;
            char lab[48], b[6][32];
            if (g == 0) snprintf(lab, sizeof lab, "All");
            else snprintf(lab, sizeof lab, "%s (N=%d)", GN[g], c->n);
            double cn = (double)c->count;
            fmt(b[0], 32, c->ie[g][0] / c->ie[0][0], 2);
            fmt(b[1], 32, c->ie[g][1] / c->ie[0][1], 2);
            fmt(b[2], 32, 100 * c->ie[g][0] / cn, 2);
            fmt(b[3], 32, 100 * c->ie[g][1] / cn, 2);
            fmt(b[4], 32, c->tok[g] / cn, 1);
            snprintf(b[5], 32, "%lld", (long long)c->count);
            const char *row[9] = {c->group, c->dominance, lab, b[0], b[1], b[2], b[3], b[4], b[5]};
            table_row(&r->ts, t, row);
        }
    }
}

static void mds_table(report *r)
{
    if (!r->mds_samples) return;
    table *t = table_new(&r->ts, "mds", "MDS statistics of sink tokens over sinks x layers (Tab. 12 layout)", 7);
    const char *h[7] = {"sink modality", "samples", "sinks", "values", "median", "IQR", "std"};
    table_row(&r->ts, t, h);
    static const char *const names[2] = {"video", "audio"};
    for (int k = 0; k < 2; k++) {
        dvec *d = &r->mds[k];
        if (d->nomem) r->nomem = true;
        double med = NAN, iqr = NAN, sd = NAN;
        if (d->n) {
            qsort(d->v, (size_t)d->n, sizeof *d->v, cmp_double);
            med = quantile_sorted(d->v, d->n, 0.5);
            iqr = quantile_sorted(d->v, d->n, 0.75) - quantile_sorted(d->v, d->n, 0.25);
            double m = 0, ss = 0;
            for (int64_t i = 0; i < d->n; i++) m += d->v[i];
            m /= (double)d->n;
            for (int64_t i = 0; i < d->n; i++) ss += (d->v[i] - m) * (d->v[i] - m);
            sd = sqrt(ss / (double)d->n); /* population std, as numpy.std */
        }
        char b[6][32];
        snprintf(b[0], 32, "%lld", (long long)r->mds_samples);
        snprintf(b[1], 32, "%lld", (long long)r->mds_sinks[k]);
        snprintf(b[2], 32, "%lld", (long long)d->n);
        fmt(b[3], 32, med, 3);
        fmt(b[4], 32, iqr, 3);
        fmt(b[5], 32, sd, 3);
        const char *row[7] = {names[k], b[0], b[1], b[2], b[3], b[4], b[5]};
        table_row(&r->ts, t, row);
    }
}

static void sinks_table(report *r)
{
    if (!r->nsinkn) return;
    table *t = table_new(&r->ts, "sinks", "Global sinks per sample (K = floor(L / N)): mean count per modality", 6);
    const char *h[6] = {"N", "samples", "sinks", "video", "audio", "text/other"};
    table_row(&r->ts, t, h);
    for (int k = 0; k < r->nsinkn; k++) {
        char b[6][32];
        double s = (double)r->sinkn[k].samples;
        snprintf(b[0], 32, "%d", r->sinkn[k].n);
        snprintf(b[1], 32, "%lld", (long long)r->sinkn[k].samples);
        fmt(b[2], 32, r->sinkn[k].total / s, 1);
        fmt(b[3], 32, r->sinkn[k].video / s, 1);
        fmt(b[4], 32, r->sinkn[k].audio / s, 1);
        fmt(b[5], 32, r->sinkn[k].text / s, 1);
        const char *row[6] = {b[0], b[1], b[2], b[3], b[4], b[5]};
        table_row(&r->ts, t, row);
    }
}

/* ---- figures ----------------------------------------------------------------------------- */

typedef struct {
    char *file;   /* basename */
    char *caption;
    char *svg;    /* the figure itself, put inline in report.html */
} figure;

typedef struct {
    figure f[64];
    int n;
} figures;

static avl_status save_figure(figures *fs, const char *out, const char *file, const char *caption, avl__sb *svg)
{
    char *path = avl__path_join(out, file);
    if (!path) return avl__err(AVL_E_NOMEM, "report: out of memory");
    avl_status rc = avl__sb_write_file(svg, path);
    avl__free(path);
    if (rc != AVL_OK || fs->n == 64) return rc;
    fs->f[fs->n].file = avl__strdup(file);
    fs->f[fs->n].caption = avl__strdup(caption);
    fs->f[fs->n].svg = avl__strdup(svg->buf ? svg->buf : "");
    if (!fs->f[fs->n].file || !fs->f[fs->n].caption || !fs->f[fs->n].svg) {
        avl__free(fs->f[fs->n].file);
        avl__free(fs->f[fs->n].caption);
        avl__free(fs->f[fs->n].svg);
        return avl__err(AVL_E_NOMEM, "report: out of memory");
    }
    fs->n++;
    return AVL_OK;
}

/* Layer-window curves: per (group, dominance) with window results, one chart per IE. */
static avl_status layer_window_figures(report *r, const char *out, figures *fs)
{
    trace_cells *tc = &r->trace;
    int fig = 0;
    avl_status rc = AVL_OK;
    for (int64_t i = 0; i < tc->n && rc == AVL_OK; i++) {
        trace_cell *c = &tc->c[i];
        if (c->le < 0 && c->ls == 0) continue;
        /* the first window cell of this (group, dominance) starts a figure */
        bool seen = false;
        for (int64_t j = 0; j < i && !seen; j++)
            seen = (tc->c[j].le >= 0 || tc->c[j].ls != 0) && !strcmp(tc->c[j].group, c->group) &&
                   !strcmp(tc->c[j].dominance, c->dominance);
        if (seen) continue;
        fig++;
        /* series: one per (set, N) */
        avl__svg_series ser[16];
        char names[16][96];
        double *xs[16] = {0}, *ys[2][16] = {{0}};
        int ns = 0;
        for (int64_t j = i; j < tc->n && rc == AVL_OK; j++) {
            trace_cell *d = &tc->c[j];
            if ((d->le < 0 && d->ls == 0) || strcmp(d->group, c->group) || strcmp(d->dominance, c->dominance)) continue;
            int k;
            char lab[96];
            set_label(lab, sizeof lab, d->set, d->n);
            for (k = 0; k < ns && strcmp(names[k], lab); k++) {}
            if (k == ns) {
                if (ns == 16) continue;
                snprintf(names[ns], sizeof names[ns], "%s", lab);
                ser[ns].name = names[ns];
                ser[ns].n = 0;
                xs[ns] = avl__malloc(sizeof(double) * 256);
                ys[0][ns] = avl__malloc(sizeof(double) * 256);
                ys[1][ns] = avl__malloc(sizeof(double) * 256);
                ns++;
                if (!xs[k] || !ys[0][k] || !ys[1][k]) rc = avl__err(AVL_E_NOMEM, "report: out of memory");
            }
            if (rc != AVL_OK || ser[k].n == 256) continue;
            xs[k][ser[k].n] = d->ls;
            ys[0][k][ser[k].n] = 100 * d->ie_clean / (double)d->count;
            ys[1][k][ser[k].n] = 100 * d->ie_corr / (double)d->count;
            ser[k].n++;
        }
        for (int which = 0; which < 2 && rc == AVL_OK; which++) {
            for (int k = 0; k < ns; k++) {
                ser[k].x = xs[k];
                ser[k].y = ys[which][k];
            }
            char title[600], file[64], cap[700];
            snprintf(title, sizeof title, "%s by patched layer window", which ? "IE_corr" : "IE_clean");
            char sub[600];
            snprintf(sub, sizeof sub, "%s, %s-dominant samples", c->group, c->dominance);
            snprintf(file, sizeof file, "layer_window_%d_%s.svg", fig, which ? "corr" : "clean");
            snprintf(cap, sizeof cap, "Mean %s (x100) when patching layers [l, l+w) from the first layer l of the window (App. B.1.4).",
                     which ? "IE_corr" : "IE_clean");
            avl__svg_frame f = {title, "first layer of the patched window", which ? "IE_corr (x100)" : "IE_clean (x100)", 0, 0, true, sub};
            avl__sb svg = {0};
            avl__svg_line_chart(&svg, &f, ser, ns);
            rc = save_figure(fs, out, file, cap, &svg);
            avl__sb_free(&svg);
        }
        for (int k = 0; k < ns; k++) {
            avl__free(xs[k]);
            avl__free(ys[0][k]);
            avl__free(ys[1][k]);
        }
    }
    return rc;
}

typedef struct {
    double mean;
    json_t *sink;
} sink_order;

static int cmp_sink_order(const void *a, const void *b)
{
    const sink_order *x = a, *y = b;
    return x->mean > y->mean ? -1 : x->mean < y->mean;
}

/* MDS per sink token of the first mds record: dots per layer, a bar for the layer mean. */
static avl_status mds_figure(report *r, const char *out, figures *fs)
{
    json_t *o = r->mds_first;
    if (!o) return AVL_OK;
    json_t *sinks = json_object_get(o, "sinks");
    size_t n = json_array_size(sinks);
    if (n == 0) return AVL_OK;
    if (n > 80) n = 80;
    sink_order *so = avl__calloc(n, sizeof *so);
    avl__svg_strip *cols = avl__calloc(n, sizeof *cols);
    double *vals = avl__calloc(n * 128, sizeof *vals);
    char (*labels)[48] = avl__calloc(n, sizeof *labels);
    avl_status rc = AVL_OK;
    if (!so || !cols || !vals || !labels) rc = avl__err(AVL_E_NOMEM, "report: out of memory");
    for (size_t i = 0; rc == AVL_OK && i < n; i++) {
        json_t *s = json_array_get(sinks, i);
        double sum = 0;
        int cnt = 0;
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(s, "mds"), j, v) if (json_is_number(v)) sum += json_number_value(v), cnt++;
        so[i].mean = cnt ? sum / cnt : NAN;
        so[i].sink = s;
    }
    if (rc == AVL_OK) qsort(so, n, sizeof *so, cmp_sink_order);
    for (size_t i = 0; rc == AVL_OK && i < n; i++) {
        json_t *s = so[i].sink;
        const char *m = jstr(s, "modality", "");
        snprintf(labels[i], sizeof labels[i], "%s %lld", !strcmp(m, "video") ? "V" : !strcmp(m, "audio") ? "A" : "?",
                 (long long)json_integer_value(json_object_get(s, "pos")));
        cols[i].label = labels[i];
        cols[i].colour = avl__svg_modality_colour(m);
        cols[i].values = vals + i * 128;
        cols[i].mean = so[i].mean;
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(s, "mds"), j, v) {
            if (j >= 128) break;
            vals[i * 128 + j] = json_is_number(v) ? json_number_value(v) : NAN;
            cols[i].n = (int)j + 1;
        }
    }
    if (rc == AVL_OK) {
        char title[400];
        snprintf(title, sizeof title, "sample %s; dots: each layer, bar: mean over layers", jstr(o, "id", ""));
        avl__svg_frame f = {"MDS per sink token", "sink token (V: video, A: audio; position), ordered by mean MDS",
                            "MDS (video − audio share)", 0, 0, true, title};
        const char *ln[2] = {"video sink", "audio sink"};
        const char *lc[2] = {avl__svg_modality_colour("video"), avl__svg_modality_colour("audio")};
        avl__sb svg = {0};
        avl__svg_strip_chart(&svg, &f, cols, (int)n, -1, 1, ln, lc, 2);
        rc = save_figure(fs, out, "mds_per_sink.svg", "Dots: MDS in each layer; bar: the mean over layers (Eq. 5). "
                                                       "Positive: attended mostly from video queries.", &svg);
        avl__sb_free(&svg);
    }
    avl__free(so);
    avl__free(cols);
    avl__free(vals);
    avl__free(labels);
    return rc;
}

static avl_status sink_strip_figure(report *r, const char *out, figures *fs)
{
    if (!r->nsink_rows) return AVL_OK;
    avl__svg_heat_row rows[64];
    int max_count = 1;
    avl_status rc = AVL_OK;
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < r->nsink_rows && rc == AVL_OK; i++) {
        json_t *o = r->sink_rows[i];
        double L = jnum(o, "n_tokens"), nl = jnum(o, "n_layers");
        if (!isfinite(L) || L < 1 || L > 1e7) continue;
        if (isfinite(nl) && nl > max_count) max_count = (int)nl;
        int64_t n = (int64_t)L;
        const char **mod = avl__calloc((size_t)n, sizeof *mod);
        int *cnt = avl__calloc((size_t)n, sizeof *cnt);
        rows[i].modality = mod;
        rows[i].count = cnt;
        if (!mod || !cnt) {
            rc = avl__err(AVL_E_NOMEM, "report: out of memory");
            break;
        }
        rows[i].label = jstr(o, "id", "");
        rows[i].n = n;
        size_t k;
        json_t *s;
        json_array_foreach(json_object_get(o, "segments"), k, s) {
            double a = jnum(s, "start"), b = jnum(s, "end");
            const char *m = jstr(s, "modality", "text");
            for (int64_t p = isfinite(a) && a > 0 ? (int64_t)a : 0; isfinite(b) && p < (int64_t)b && p < n; p++) mod[p] = m;
        }
        json_t *pf;
        json_array_foreach(json_object_get(o, "freq"), k, pf) {
            json_t *p = json_array_get(pf, 0), *f = json_array_get(pf, 1);
            if (!json_is_integer(p) || !json_is_integer(f)) continue;
            json_int_t pos = json_integer_value(p);
            if (pos >= 0 && pos < n) cnt[pos] = (int)json_integer_value(f);
            if (!isfinite(nl) && json_integer_value(f) > max_count) max_count = (int)json_integer_value(f);
        }
    }
    if (rc == AVL_OK) {
        avl__svg_frame f = {"Sink frequency along the token timeline", "position in the input sequence", NULL, 0, 0, false,
                            "one row per sample; band under each row: modality of the token"};
        avl__sb svg = {0};
        avl__svg_heat_strip(&svg, &f, rows, r->nsink_rows, max_count);
        rc = save_figure(fs, out, "sink_strip.svg", "Each row is one sample; a cell is shaded by the number of layers in which "
                                                    "the token is a sink, coloured by its modality (band below).", &svg);
        avl__sb_free(&svg);
    }
    for (int i = 0; i < r->nsink_rows; i++) {
        avl__free((void *)rows[i].modality);
        avl__free((void *)rows[i].count);
    }
    return rc;
}

/* ---- captions and CHAIR ------------------------------------------------------------------ */

static void add_caption(report *r, json_t *o, const char *method)
{
    const char *id = jstr(o, "id", NULL), *cap = jstr(o, "caption", NULL);
    if (!id || !cap) return;
    if (!r->captions) r->captions = json_object();
    if (!r->methods) r->methods = json_array();
    bool seen = false;
    size_t i;
    json_t *m;
    json_array_foreach(r->methods, i, m) seen = seen || !strcmp(json_string_value(m), method);
    if (!seen) json_array_append_new(r->methods, json_string(method));
    json_t *row = json_object_get(r->captions, id);
    if (!row) {
        row = json_object();
        json_object_set_new(r->captions, id, row);
    }
    if (!r->captions || !r->methods || !row || json_object_set_new(row, method, json_string(cap))) r->nomem = true;
}

static void captions_table(report *r)
{
    int nm = r->methods ? (int)json_array_size(r->methods) : 0;
    if (!nm || nm > 30) return;
    table *t = table_new(&r->ts, "captions", "Captions per clip and decoding method", nm + 1);
    const char *head[32] = {"clip"};
    for (int k = 0; k < nm; k++) head[k + 1] = json_string_value(json_array_get(r->methods, (size_t)k));
    table_row(&r->ts, t, head);
    const char *id;
    json_t *row;
    json_object_foreach(r->captions, id, row)
    {
        const char *cells[32] = {id};
        for (int k = 0; k < nm; k++) cells[k + 1] = json_string_value(json_object_get(row, head[k + 1]));
        table_row(&r->ts, t, cells);
    }
}

/* One CSV line split in place into at most max fields (RFC 4180 quotes); the count. */
static int csv_split(char *line, char **f, int max)
{
    int n = 0;
    char *w = line, *p = line;
    while (n < max) {
        f[n++] = w;
        bool q = *p == '"';
        if (q) p++;
        for (;;) {
            if (!*p || *p == '\n' || *p == '\r' || (!q && *p == ',')) break;
            if (q && *p == '"') {
                if (p[1] == '"') p++;
                else {
                    q = false;
                    p++;
                    continue;
                }
            }
            *w++ = *p++;
        }
        bool more = *p == ',';
        *w++ = '\0';
        if (!more) break;
        p++;
    }
    return n;
}

/* chair.csv of avlens chair (method, dataset, captions, chair_s, chair_i, precision, recall, f1,
 * ...) as the paper's Tab. 3: one row per method, CHAIR_s, CHAIR_i and F1 per data set. */
static avl_status chair_table(report *r)
{
    char *text;
    size_t len;
    avl_status rc = avl__read_file(r->p.chair_csv, &text, &len);
    if (rc) return rc;
    char *lines[256];
    int nl = 0;
    for (char *p = text; *p && nl < 256;) {
        lines[nl++] = p;
        char *e = strchr(p, '\n');
        if (!e) break;
        *e = '\0';
        p = e + 1;
    }
    char *f[12];
    if (nl < 1 || csv_split(lines[0], f, 12) < 8 || strcmp(f[0], "method") || strcmp(f[5], "precision")) {
        avl__free(text);
        return avl__err(AVL_E_FORMAT, "%s: not a chair.csv of avlens chair (header method,dataset,...,f1)", r->p.chair_csv);
    }
    /* data sets and methods in the order first seen */
    const char *ds[16], *me[64];
    int nds = 0, nme = 0;
    double vals[64][16][3];
    for (int a = 0; a < 64; a++)
        for (int b = 0; b < 16; b++) vals[a][b][0] = vals[a][b][1] = vals[a][b][2] = NAN;
    for (int i = 1; i < nl; i++) {
        if (!lines[i][0] || csv_split(lines[i], f, 12) < 8) continue;
        int a = 0, b = 0;
        while (a < nme && strcmp(me[a], f[0])) a++;
        while (b < nds && strcmp(ds[b], f[1])) b++;
        if (a == 64 || b == 16) continue;
        if (a == nme) me[nme++] = f[0];
        if (b == nds) ds[nds++] = f[1];
        vals[a][b][0] = strtod(f[3], NULL);
        vals[a][b][1] = strtod(f[4], NULL);
        vals[a][b][2] = strtod(f[7], NULL);
    }
    table *t = table_new(&r->ts, "chair", "CHAIR and F1 (Tab. 3 layout, x100)", 1 + 3 * nds);
    char head[16 * 3][96];
    const char *hc[1 + 16 * 3] = {"method"};
    static const char *const metric[3] = {"CHAIR_s", "CHAIR_i", "F1"};
    for (int b = 0; b < nds; b++)
        for (int k = 0; k < 3; k++) {
            snprintf(head[b * 3 + k], sizeof head[0], "%s %s", ds[b], metric[k]);
            hc[1 + b * 3 + k] = head[b * 3 + k];
        }
    table_row(&r->ts, t, hc);
    r->chair_rows = avl__calloc((size_t)(nme * nds) + 1, sizeof *r->chair_rows);
    r->chair_vals = avl__calloc((size_t)(nme * nds * 3) + 1, sizeof *r->chair_vals);
    if (!r->chair_rows || !r->chair_vals) r->nomem = true;
    for (int a = 0; a < nme && !r->nomem; a++) {
        char cells[16 * 3][32];
        const char *row[1 + 16 * 3] = {me[a]};
        for (int b = 0; b < nds; b++) {
            for (int k = 0; k < 3; k++) {
                fmt(cells[b * 3 + k], 32, vals[a][b][k], 1);
                row[1 + b * 3 + k] = cells[b * 3 + k];
                r->chair_vals[r->n_chair * 3 + k] = vals[a][b][k];
            }
            char label[160];
            if (nds > 1) snprintf(label, sizeof label, "%s (%s)", me[a], ds[b]);
            else snprintf(label, sizeof label, "%s", me[a]);
            if (!(r->chair_rows[r->n_chair++] = avl__strdup(label))) r->nomem = true;
        }
        table_row(&r->ts, t, row);
    }
    if (t && !(t->note = avl__strdup("CHAIR_s: captions with a hallucinated object; CHAIR_i: hallucinated mentions; "
                                      "F1 of the mentioned objects against the clip's objects (docs/eval.md).")))
        r->nomem = true;
    avl__free(text);
    return AVL_OK;
}

static avl_status chair_figure(report *r, const char *out, figures *fs)
{
    if (r->n_chair == 0) return AVL_OK;
    static const char *const series[3] = {"CHAIR_s", "CHAIR_i", "F1"};
    avl__svg_frame f = {"CHAIR and F1 per decoding method", "decoding method", "percent", 0, 0, false,
                        "lower CHAIR is better, higher F1 is better"};
    avl__sb svg = {0};
    avl__svg_bar_chart(&svg, &f, (const char *const *)r->chair_rows, r->n_chair, series, 3, r->chair_vals, 100);
    avl_status rc = save_figure(fs, out, "chair.svg", "The Tab. 3 columns as bars, one group per method.", &svg);
    avl__sb_free(&svg);
    return rc;
}

/* ---- files ------------------------------------------------------------------------------- */

static avl_status write_tables(const tables *ts, const char *out, avl__sb *md)
{
    avl_status rc = AVL_OK;
    for (int i = 0; i < ts->n && rc == AVL_OK; i++) {
        const table *t = ts->t[i];
        avl__sb csv = {0};
        table_csv(t, &csv);
        char name[96];
        snprintf(name, sizeof name, "%s.csv", t->name);
        char *path = avl__path_join(out, name);
        rc = path ? avl__sb_write_file(&csv, path) : avl__err(AVL_E_NOMEM, "report: out of memory");
        avl__free(path);
        avl__sb_free(&csv);
        table_md(t, md);
    }
    return rc;
}

static const char CSS[] =
    "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;color:#222;max-width:1100px;margin:2em auto;padding:0 1em;"
    "line-height:1.45}\n"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}"
    "h3{font-size:1.05em;margin-top:1.6em}\n"
    "table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{padding:.3em .7em;border-bottom:1px solid #e4e4e4}"
    "th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "tr:hover td{background:#fafafa}.note,.meta{color:#555;font-size:.9em}figure{margin:1.5em 0}"
    "figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#555;font-size:.9em}\n"
    "details{margin:1em 0}summary{cursor:pointer;font-weight:bold}\n";

static avl_status write_html(report *r, const char *out, const figures *fs, const char *in)
{
    avl__sb h = {0};
    avl__sb_puts(&h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>");
    avl__sb_put_xml(&h, r->p.title);
    avl__sb_printf(&h, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", CSS);
    avl__sb_put_xml(&h, r->p.title);
    avl__sb_puts(&h, "</h1>\n<p class=\"meta\">Records from <code>");
    avl__sb_put_xml(&h, in);
    avl__sb_printf(&h, "</code>; %lld failed sample%s. Tables are also in the CSV and Markdown files beside this page.</p>\n",
                   (long long)r->errors_total, r->errors_total == 1 ? "" : "s");
    if (r->p.intro_html) avl__sb_puts(&h, r->p.intro_html);
    if (r->ts.n) avl__sb_puts(&h, "<h2>Tables</h2>\n");
    for (int i = 0; i < r->ts.n; i++)
        if (!r->ts.t[i]->detail) table_html(r->ts.t[i], &h);
    if (fs->n) avl__sb_puts(&h, "<h2>Figures</h2>\n");
    for (int i = 0; i < fs->n; i++) {
        /* inline, so the page is one file to open and its figures are part of the DOM */
        avl__sb_puts(&h, "<figure>\n");
        avl__sb_puts(&h, fs->f[i].svg);
        avl__sb_puts(&h, "<figcaption>");
        avl__sb_put_xml(&h, fs->f[i].caption);
        avl__sb_puts(&h, " (<a href=\"");
        avl__sb_put_xml(&h, fs->f[i].file);
        avl__sb_puts(&h, "\">");
        avl__sb_put_xml(&h, fs->f[i].file);
        avl__sb_puts(&h, "</a>)</figcaption>\n</figure>\n");
    }
    bool any_detail = false;
    for (int i = 0; i < r->ts.n; i++) any_detail |= r->ts.t[i]->detail;
    if (any_detail) avl__sb_puts(&h, "<h2>All settings</h2>\n");
    for (int i = 0; i < r->ts.n; i++)
        if (r->ts.t[i]->detail) table_html(r->ts.t[i], &h);
    if (r->err_table) {
        avl__sb_puts(&h, "<h2>Failures</h2>\n");
        table_html(r->err_table, &h);
    }
    avl__sb_puts(&h, "</body>\n</html>\n");
    char *path = avl__path_join(out, "report.html");
    avl_status rc = path ? avl__sb_write_file(&h, path) : avl__err(AVL_E_NOMEM, "report: out of memory");
    avl__free(path);
    avl__sb_free(&h);
    return rc;
}

static void report_free(report *r)
{
    tables_free(&r->ts);
    tables_free(&r->errs);
    for (int64_t i = 0; i < r->trace.n; i++) {
        avl__free(r->trace.c[i].group);
        avl__free(r->trace.c[i].dominance);
        avl__free(r->trace.c[i].set);
    }
    avl__free(r->trace.c);
    for (int64_t i = 0; i < r->n_sweep; i++) {
        avl__free(r->sweep[i].group);
        avl__free(r->sweep[i].dominance);
    }
    avl__free(r->sweep);
    for (int i = 0; i < r->ndom; i++) avl__free(r->dom[i].model);
    avl__free(r->dom);
    avl__free(r->mds[0].v);
    avl__free(r->mds[1].v);
    json_decref(r->mds_first);
    json_decref(r->captions);
    json_decref(r->trace_seen);
    json_decref(r->methods);
    avl__free(r->chair_vals);
    for (int i = 0; i < r->n_chair; i++) avl__free(r->chair_rows[i]);
    avl__free(r->chair_rows);
    for (int i = 0; i < r->nsink_rows; i++) json_decref(r->sink_rows[i]);
}

avl_status avl_report_write(const char *in, const char *out, const avl_report_params *params)
{
    if (!in || !out || !*in || !*out) return avl__err(AVL_E_ARG, "report: input and output folders are required");
    report r;
    memset(&r, 0, sizeof r);
    r.p = params ? *params : avl_report_default_params();
    if (!r.p.title) r.p.title = "avlens report";
    if (r.p.max_strips < 1) r.p.max_strips = 8;
    char **names;
    int64_t n;
    avl_status rc = avl__list_subdirs(in, &names, &n);
    if (rc != AVL_OK) return rc;
    int64_t records = 0;
    for (int64_t i = 0; rc == AVL_OK && i < n; i++) {
        char *dir = avl__path_join(in, names[i]);
        avl__recset s;
        if (!dir) rc = avl__err(AVL_E_NOMEM, "report: out of memory");
        if (rc == AVL_OK) rc = avl__recset_read_dir(dir, names[i], &s);
        avl__free(dir);
        if (rc != AVL_OK) break;
        for (int64_t k = 0; k < s.n; k++) {
            json_t *o = s.recs[k].obj;
            records++;
            if (!s.recs[k].ok) {
                note_error(&r, names[i], o);
                continue;
            }
            const char *kind = jstr(o, "analysis", names[i]);
            if (!strncmp(kind, "dominance", 9)) add_dominance(&r, o);
            else if (!strncmp(kind, "trace", 5)) add_trace(&r, o);
            else if (!strncmp(kind, "mds", 3)) add_mds(&r, o);
            else if (!strncmp(kind, "sweep", 5)) add_sweep(&r, o);
            else if (!strncmp(kind, "sinks", 5)) add_sinks(&r, o);
            else if (!strncmp(kind, "caption", 7)) {
                /* caption.<method>/: the record names its method */
                const char *dot = strchr(names[i], '.');
                add_caption(&r, o, jstr(o, "method", dot ? dot + 1 : names[i]));
            }
        }
        avl__recset_free(&s);
    }
    avl__free_strv(names, n);
    if (rc == AVL_OK && records == 0) rc = avl__err(AVL_E_NOTFOUND, "%s: no records (want <analysis>/shard-*.jsonl folders)", in);
    if (rc == AVL_OK) rc = avl__mkdirs(out);
    figures fs;
    memset(&fs, 0, sizeof fs);
    if (rc == AVL_OK) {
        dominance_table(&r);
        trace_tables(&r);
        sweep_tables(&r);
        mds_table(&r);
        sinks_table(&r);
        captions_table(&r);
        if (r.p.chair_csv) rc = chair_table(&r);
        if (rc == AVL_OK && (r.nomem || r.ts.nomem || r.errs.nomem)) rc = avl__err(AVL_E_NOMEM, "report: out of memory");
    }
    avl__sb md = {0};
    if (rc == AVL_OK) {
        avl__sb_printf(&md, "# %s\n\n", r.p.title);
        rc = write_tables(&r.ts, out, &md);
        if (rc == AVL_OK && r.err_table) rc = write_tables(&r.errs, out, &md);
    }
    if (rc == AVL_OK) rc = layer_window_figures(&r, out, &fs);
    if (rc == AVL_OK) rc = mds_figure(&r, out, &fs);
    if (rc == AVL_OK) rc = sink_strip_figure(&r, out, &fs);
    if (rc == AVL_OK) rc = chair_figure(&r, out, &fs);
    if (rc == AVL_OK) {
        for (int i = 0; i < fs.n; i++) avl__sb_printf(&md, "![%s](%s)\n\n%s\n\n", fs.f[i].file, fs.f[i].file, fs.f[i].caption);
        char *path = avl__path_join(out, "report.md");
        rc = path ? avl__sb_write_file(&md, path) : avl__err(AVL_E_NOMEM, "report: out of memory");
        avl__free(path);
    }
    if (rc == AVL_OK) rc = write_html(&r, out, &fs, in);
    avl__sb_free(&md);
    for (int i = 0; i < fs.n; i++) {
        avl__free(fs.f[i].file);
        avl__free(fs.f[i].caption);
        avl__free(fs.f[i].svg);
    }
    report_free(&r);
    return rc;
}
