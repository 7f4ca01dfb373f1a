/* src/data/svg.h: a small SVG writer for the report's figures (internal).
 *
 * Three charts, each a complete standalone <svg> document appended to a string: a line chart
 * (numeric x, several series, legend), a strip chart (one column per category, a dot per value
 * and a bar for the column's mean) and a heat strip (rows of cells along a token timeline,
 * coloured by modality and shaded by a count). Colours come from the Okabe-Ito palette, which
 * stays distinguishable under the common colour-vision deficiencies; series are told apart by
 * dash pattern and marker too. Text uses a sans-serif stack (DejaVu Sans first) at 12-16 px.
 */
#ifndef AVLENS_DATA_SVG_H
#define AVLENS_DATA_SVG_H

#include "data/data_internal.h"

/* Okabe-Ito: orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple, black. */
extern const char *const avl__svg_palette[8];

/* Modality colours used by every figure: text, audio, video, image, special. */
const char *avl__svg_modality_colour(const char *modality);

typedef struct {
    const char *name;     /* legend text */
    const double *x, *y;  /* n points; a NaN y leaves a gap */
    int n;
} avl__svg_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double width, height;  /* pixels; 0: 720 x 420 */
    bool zero_line;        /* draw y = 0 when the range crosses it */
    const char *subtitle;  /* smaller grey line under the title, or NULL */
} avl__svg_frame;

void avl__svg_line_chart(avl__sb *out, const avl__svg_frame *f, const avl__svg_series *s, int ns);

typedef struct {
    const char *label;     /* tick label under the column */
    const char *colour;    /* fill of the dots and the bar */
    const double *values;  /* dots (NaN skipped) */
    int n;
    double mean;           /* the bar's height (from 0) */
} avl__svg_strip;

/* y range fixed to [ymin, ymax]; legend: up to 4 (name, colour) pairs. */
void avl__svg_strip_chart(avl__sb *out, const avl__svg_frame *f, const avl__svg_strip *cols, int ncols, double ymin,
                          double ymax, const char *const *legend_names, const char *const *legend_colours, int nlegend);

typedef struct {
    const char *label;          /* row label (sample id) */
    int64_t n;                  /* tokens in the row */
    const char *const *modality;  /* per token: "text", "audio", "video", ... (n entries) */
    const int *count;           /* per token: layers in which it is a sink (n entries) */
} avl__svg_heat_row;

void avl__svg_heat_strip(avl__sb *out, const avl__svg_frame *f, const avl__svg_heat_row *rows, int nrows, int max_count);

/* Grouped bars: values (ngroups, nseries) row-major, y from 0 to ymax; NaN leaves a gap. */
void avl__svg_bar_chart(avl__sb *out, const avl__svg_frame *f, const char *const *groups, int ngroups,
                        const char *const *series, int nseries, const double *values, double ymax);

/* "Nice" axis ticks covering [lo, hi]: step 1, 2 or 5 times a power of ten; returns the count
 * (at most 12) and writes the first tick and the step. */
int avl__svg_ticks(double lo, double hi, int want, double *first, double *step);

#endif
