/* src/data/svg.c: line chart, strip chart and heat strip as standalone SVG (see svg.h).
 *
 * Layout: a plot area inside fixed margins (room for the y label and tick labels on the left,
 * the legend on the right); light grey grid lines at the ticks; axis titles centred. Numbers
 * print with %g so that ticks like 0.1 do not grow 0.1000000001 tails.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/svg.h"

const char *const avl__svg_palette[8] = {"#E69F00", "#56B4E9", "#009E73", "#F0E442",
                                         "#0072B2", "#D55E00", "#CC79A7", "#000000"};

/* Lines avoid the yellow (too pale on white): orange, blue, green, vermillion, sky, purple, black. */
static const int line_order[7] = {4, 5, 2, 0, 1, 6, 7};
static const char *const dashes[7] = {"", "6 3", "2 3", "8 3 2 3", "", "6 3", "2 3"};

static const char *const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";

const char *avl__svg_modality_colour(const char *m)
{
    if (!m) return "#BBBBBB";
    if (!strcmp(m, "video")) return "#0072B2";
    if (!strcmp(m, "audio")) return "#D55E00";
    if (!strcmp(m, "image")) return "#009E73";
    if (!strcmp(m, "special")) return "#444444";
    return "#8C8C8C"; /* text: mid grey, still visible on the light row background */
}

int avl__svg_ticks(double lo, double hi, int want, double *first, double *step)
{
    if (!(hi > lo)) {
        double c = isfinite(lo) ? lo : 0;
        lo = c - 1;
        hi = c + 1;
    }
    if (want < 2) want = 2;
    double raw = (hi - lo) / want;
    double p = pow(10, floor(log10(raw)));
    double m = raw / p;
    double s = m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10;
    s *= p;
    /* never more than 12 ticks: step up along 1, 2, 5, 10, ... */
    while ((hi - lo) / s > 11) {
        double m2 = s / pow(10, floor(log10(s) + 1e-9));
        s = m2 < 1.5 ? s * 2 : m2 < 3.5 ? s * 2.5 : s * 2;
    }
    double f = ceil(lo / s - 1e-9) * s;
    int n = 0;
    for (double t = f; t <= hi + s * 1e-9 && n < 12; t += s) n++;
    *first = f;
    *step = s;
    return n;
}

static void num(char *buf, size_t n, double v)
{
    if (fabs(v) < 1e-12) v = 0; /* no "-0" */
    snprintf(buf, n, "%.6g", v);
}

static void begin(avl__sb *o, double w, double h, const char *title, const char *subtitle)
{
    avl__sb_printf(o,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                   "font-family=\"%s\" font-size=\"13\" role=\"img\">\n",
                   w, h, w, h, FONT);
    avl__sb_puts(o, "<title>");
    avl__sb_put_xml(o, title ? title : "");
    avl__sb_puts(o, "</title>\n");
    avl__sb_printf(o, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#FFFFFF\"/>\n", w, h);
    if (title && *title) {
        avl__sb_printf(o, "<text x=\"16\" y=\"26\" font-size=\"16\" font-weight=\"bold\" fill=\"#222222\">");
        avl__sb_put_xml(o, title);
        avl__sb_puts(o, "</text>\n");
    }
    if (subtitle && *subtitle) {
        avl__sb_printf(o, "<text x=\"16\" y=\"46\" font-size=\"12.5\" fill=\"#555555\">");
        avl__sb_put_xml(o, subtitle);
        avl__sb_puts(o, "</text>\n");
    }
}

static void text(avl__sb *o, double x, double y, const char *anchor, const char *extra, const char *s)
{
    avl__sb_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"#333333\"%s%s>", x, y, anchor,
                   extra && *extra ? " " : "", extra ? extra : "");
    avl__sb_put_xml(o, s);
    avl__sb_puts(o, "</text>\n");
}

typedef struct {
    double x0, y0, x1, y1;  /* plot area in pixels (y0 top) */
    double lo, hi;          /* y range */
    double xlo, xhi;        /* x range */
} area;

static double py(const area *a, double v) { return a->y1 - (v - a->lo) / (a->hi - a->lo) * (a->y1 - a->y0); }
static double px(const area *a, double v) { return a->x0 + (v - a->xlo) / (a->xhi - a->xlo) * (a->x1 - a->x0); }

/* y grid, tick labels and the y title. */
static void y_axis(avl__sb *o, const area *a, const char *ylabel, bool zero_line)
{
    double f, s;
    int n = avl__svg_ticks(a->lo, a->hi, 5, &f, &s);
    char b[32];
    for (int i = 0; i < n; i++) {
        double v = f + i * s, y = py(a, v);
        if (y < a->y0 - 0.5 || y > a->y1 + 0.5) continue;
        bool zero = zero_line && fabs(v) < s * 1e-6;
        avl__sb_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n", a->x0, y,
                       a->x1, y, zero ? "#888888" : "#E6E6E6");
        num(b, sizeof b, v);
        text(o, a->x0 - 8, y + 4, "end", "font-size=\"12\"", b);
    }
    if (ylabel && *ylabel) {
        double cy = (a->y0 + a->y1) / 2;
        avl__sb_printf(o, "<text transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\" fill=\"#333333\">",
                       a->x0 - 50, cy);
        avl__sb_put_xml(o, ylabel);
        avl__sb_puts(o, "</text>\n");
    }
    avl__sb_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>\n", a->x0, a->y0, a->x0, a->y1);
    avl__sb_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>\n", a->x0, a->y1, a->x1, a->y1);
}

static void legend_entry(avl__sb *o, double x, double y, const char *colour, const char *dash, bool line, const char *name)
{
    if (line)
        avl__sb_printf(o,
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s%s%s/>"
                       "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n",
                       x, y, x + 26, y, colour, *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "", x + 13, y, colour);
    else
        avl__sb_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" rx=\"2\" fill=\"%s\"/>\n", x + 6, y - 7, colour);
    text(o, x + 34, y + 4.5, "start", "font-size=\"12\"", name);
}

void avl__svg_line_chart(avl__sb *o, const avl__svg_frame *f, const avl__svg_series *s, int ns)
{
    double w = f->width > 0 ? f->width : 800, h = f->height > 0 ? f->height : 440;
    area a = {72, 64, w - 220, h - 56, INFINITY, -INFINITY, INFINITY, -INFINITY};
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (isfinite(s[k].y[i])) {
                a.lo = fmin(a.lo, s[k].y[i]);
                a.hi = fmax(a.hi, s[k].y[i]);
            }
            if (isfinite(s[k].x[i])) {
                a.xlo = fmin(a.xlo, s[k].x[i]);
                a.xhi = fmax(a.xhi, s[k].x[i]);
            }
        }
    if (!(a.hi >= a.lo)) a.lo = 0, a.hi = 1;
    if (f->zero_line) a.lo = fmin(a.lo, 0), a.hi = fmax(a.hi, 0);
    double pad = (a.hi - a.lo) * 0.06;
    if (pad == 0) pad = 1;
    a.lo -= pad;
    a.hi += pad;
    double t0, ts;
    avl__svg_ticks(a.lo, a.hi, 5, &t0, &ts);
    if (!(a.xhi > a.xlo)) {
        double c = isfinite(a.xlo) ? a.xlo : 0;
        a.xlo = c - 1;
        a.xhi = c + 1;
    }
    begin(o, w, h, f->title, f->subtitle);
    y_axis(o, &a, f->ylabel, f->zero_line);
    char b[32];
    double xf, xs;
    int nx = avl__svg_ticks(a.xlo, a.xhi, 8, &xf, &xs);
    for (int i = 0; i < nx; i++) {
        double v = xf + i * xs, x = px(&a, v);
        avl__sb_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>\n", x, a.y1, x, a.y1 + 5);
        num(b, sizeof b, v);
        text(o, x, a.y1 + 19, "middle", "font-size=\"12\"", b);
    }
    if (f->xlabel) text(o, (a.x0 + a.x1) / 2, h - 14, "middle", NULL, f->xlabel);
    for (int k = 0; k < ns; k++) {
        const char *col = avl__svg_palette[line_order[k % 7]];
        const char *dash = dashes[k % 7];
        bool open = false;
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].y[i]) || !isfinite(s[k].x[i])) {
                if (open) avl__sb_puts(o, "\"/>\n");
                open = false;
                continue;
            }
            if (!open)
                avl__sb_printf(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\" stroke-linejoin=\"round\"%s%s%s points=\"",
                               col, *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
            avl__sb_printf(o, "%s%.1f,%.1f", open ? " " : "", px(&a, s[k].x[i]), py(&a, s[k].y[i]));
            open = true;
        }
        if (open) avl__sb_puts(o, "\"/>\n");
        for (int i = 0; i < s[k].n; i++)
            if (isfinite(s[k].y[i]) && isfinite(s[k].x[i]))
                avl__sb_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", px(&a, s[k].x[i]), py(&a, s[k].y[i]), col);
        legend_entry(o, a.x1 + 18, a.y0 + 8 + 22 * k, col, dash, true, s[k].name ? s[k].name : "");
    }
    avl__sb_puts(o, "</svg>\n");
}

void avl__svg_strip_chart(avl__sb *o, const avl__svg_frame *f, const avl__svg_strip *cols, int ncols, double ymin,
                          double ymax, const char *const *legend_names, const char *const *legend_colours, int nlegend)
{
    double colw = ncols > 40 ? 14 : ncols > 20 ? 20 : 30;
    double w = f->width > 0 ? f->width : fmax(520, 72 + 150 + colw * ncols);
    double h = f->height > 0 ? f->height : 470;
    area a = {72, 64, w - 150, h - 110, ymin, ymax, 0, ncols};
    begin(o, w, h, f->title, f->subtitle);
    y_axis(o, &a, f->ylabel, true);
    double step = (a.x1 - a.x0) / (ncols > 0 ? ncols : 1);
    for (int c = 0; c < ncols; c++) {
        double cx = a.x0 + step * (c + 0.5);
        double bw = step * 0.6;
        if (isfinite(cols[c].mean)) {
            double y0 = py(&a, 0), y1 = py(&a, fmax(ymin, fmin(ymax, cols[c].mean)));
            avl__sb_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"0.35\"/>\n",
                           cx - bw / 2, fmin(y0, y1), bw, fabs(y1 - y0), cols[c].colour);
            avl__sb_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"/>\n",
                           cx - bw / 2, y1, cx + bw / 2, y1, cols[c].colour);
        }
        for (int i = 0; i < cols[c].n; i++) {
            double v = cols[c].values[i];
            if (!isfinite(v)) continue;
            /* a fixed jitter by index keeps the picture reproducible */
            double j = ((double)((i * 37) % 11) / 10.0 - 0.5) * bw * 0.7;
            avl__sb_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\" fill-opacity=\"0.55\"/>\n", cx + j,
                           py(&a, fmax(ymin, fmin(ymax, v))), cols[c].colour);
        }
        avl__sb_printf(o, "<text transform=\"translate(%.1f %.1f) rotate(-55)\" text-anchor=\"end\" font-size=\"11\" fill=\"#333333\">",
                       cx + 3, a.y1 + 12);
        avl__sb_put_xml(o, cols[c].label ? cols[c].label : "");
        avl__sb_puts(o, "</text>\n");
    }
    if (f->xlabel) text(o, (a.x0 + a.x1) / 2, h - 10, "middle", NULL, f->xlabel);
    for (int k = 0; k < nlegend; k++) legend_entry(o, a.x1 + 14, a.y0 + 8 + 22 * k, legend_colours[k], "", false, legend_names[k]);
    avl__sb_puts(o, "</svg>\n");
}

void avl__svg_heat_strip(avl__sb *o, const avl__svg_frame *f, const avl__svg_heat_row *rows, int nrows, int max_count)
{
    double w = f->width > 0 ? f->width : 900;
    double rowh = 22, gap = 14, left = 150, right = 24, top = 66;
    double h = top + nrows * (rowh + gap) + 92;
    begin(o, w, h, f->title, f->subtitle);
    if (max_count < 1) max_count = 1;
    double plotw = w - left - right;
    for (int r = 0; r < nrows; r++) {
        const avl__svg_heat_row *row = &rows[r];
        double y = top + r * (rowh + gap);
        text(o, left - 10, y + rowh / 2 + 4, "end", "font-size=\"12\"", row->label ? row->label : "");
        if (row->n <= 0) continue;
        double cw = plotw / (double)row->n;
        avl__sb_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#F7F7F7\"/>\n", left, y, plotw, rowh);
        /* runs of equal (modality, count) become one rectangle: a 1,500-token row stays small */
        for (int64_t i = 0; i < row->n;) {
            int64_t j = i + 1;
            while (j < row->n && row->count[j] == row->count[i] &&
                   !strcmp(row->modality[j] ? row->modality[j] : "", row->modality[i] ? row->modality[i] : ""))
                j++;
            const char *col = avl__svg_modality_colour(row->modality[i]);
            double x = left + cw * (double)i, ww = cw * (double)(j - i);
            /* the modality band under the row */
            avl__sb_printf(o, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"4\" fill=\"%s\"/>\n", x, y + rowh + 1, ww, col);
            if (row->count[i] > 0) {
                double op = 0.15 + 0.85 * fmin(1.0, (double)row->count[i] / max_count);
                /* a sink must stay visible even when a cell is narrower than a pixel */
                double vis = fmax(ww, 1.5);
                avl__sb_printf(o, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"%.2f\"/>\n", x,
                               y, vis, rowh, col, op);
            }
            i = j;
        }
    }
    /* x axis: relative position in the sequence */
    double ay = top + nrows * (rowh + gap) + 4;
    for (int k = 0; k <= 4; k++) {
        double x = left + plotw * k / 4.0;
        char b[32];
        snprintf(b, sizeof b, "%d%%", k * 25);
        avl__sb_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>\n", x, ay, x, ay + 5);
        text(o, x, ay + 19, "middle", "font-size=\"12\"", b);
    }
    text(o, left + plotw / 2, ay + 38, "middle", NULL, f->xlabel ? f->xlabel : "position in the input sequence");
    /* legend: modalities, then the shading scale */
    static const char *const mods[4] = {"text", "audio", "video", "image"};
    double lx = left, ly = ay + 62;
    for (int k = 0; k < 4; k++) {
        legend_entry(o, lx, ly, avl__svg_modality_colour(mods[k]), "", false, mods[k]);
        lx += 96;
    }
    char b[64];
    snprintf(b, sizeof b, "shade: sink in 1 … %d layers", max_count);
    for (int k = 0; k < 5; k++)
        avl__sb_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" fill=\"#0072B2\" fill-opacity=\"%.2f\"/>\n",
                       lx + 10 + 14 * k, ly - 7, 0.15 + 0.85 * k / 4.0);
    text(o, lx + 10 + 14 * 5 + 8, ly + 4.5, "start", "font-size=\"12\"", b);
    avl__sb_puts(o, "</svg>\n");
}

void avl__svg_bar_chart(avl__sb *o, const avl__svg_frame *f, const char *const *groups, int ngroups,
                        const char *const *series, int nseries, const double *values, double ymax)
{
    double w = f->width > 0 ? f->width : 800, h = f->height > 0 ? f->height : 400;
    area a = {72, 64, w - 180, h - 56, 0, ymax > 0 ? ymax : 1, 0, 1};
    begin(o, w, h, f->title, f->subtitle);
    y_axis(o, &a, f->ylabel, false);
    double gw = (a.x1 - a.x0) / (ngroups > 0 ? ngroups : 1), bw = gw * 0.8 / (nseries > 0 ? nseries : 1);
    char b[32];
    for (int g = 0; g < ngroups; g++) {
        double gx = a.x0 + g * gw + gw * 0.1;
        for (int s = 0; s < nseries; s++) {
            double v = values[g * nseries + s];
            if (!isfinite(v)) continue;
            double y = py(&a, fmin(fmax(v, a.lo), a.hi));
            avl__sb_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", gx + s * bw, y,
                           bw * 0.92, a.y1 - y, avl__svg_palette[s % 8]);
            num(b, sizeof b, v);
            avl__sb_put_xml(o, series[s]);
            avl__sb_printf(o, " %s</title></rect>\n", b);
        }
        text(o, a.x0 + (g + 0.5) * gw, a.y1 + 19, "middle", "font-size=\"12\"", groups[g]);
    }
    if (f->xlabel) text(o, (a.x0 + a.x1) / 2, h - 14, "middle", NULL, f->xlabel);
    for (int s = 0; s < nseries; s++) legend_entry(o, a.x1 + 18, a.y0 + 8 + 22 * s, avl__svg_palette[s % 8], "", false, series[s]);
    avl__sb_puts(o, "</svg>\n");
}
