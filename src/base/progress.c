/* src/base/progress.c: a progress reporter for data-set runs (include/avlens/dataset.h).
 *
 * The library never prints: this object only composes the line and decides when one is due;
 * the application's callback writes it. On a terminal (tty) the line is a bar redrawn at most
 * every 0.1 s; in a log it is a plain line each time another every_percent is done or
 * every_seconds have passed, whichever comes first. The rate and the ETA count only the
 * samples processed in this run, not those skipped as already done (a resumed run would
 * otherwise promise an ETA far too short).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "avlens/dataset.h"
#include "base/internal.h"

struct avl_progress {
    avl_progress_params p;
    char label[64];
    int64_t done, skipped, failed;
    double t0, last_emit;
    double last_pct;  /* percent at the last log line */
    bool finished;
    char line[256];
};

avl_progress_params avl_progress_default_params(void)
{
    avl_progress_params p;
    memset(&p, 0, sizeof p);
    p.label = "progress";
    p.bar_width = 24;
    p.every_percent = 10;
    p.every_seconds = 60;
    return p;
}

static double now(const avl_progress *p)
{
    if (p->p.clock) return p->p.clock(p->p.user);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

avl_status avl_progress_new(const avl_progress_params *params, avl_progress **out)
{
    if (!out) return avl__err(AVL_E_ARG, "avl_progress_new: out is NULL");
    *out = NULL;
    if (!params || !params->fn) return avl__err(AVL_E_ARG, "avl_progress_new: no callback");
    if (params->total < 0) return avl__err(AVL_E_ARG, "avl_progress_new: total %lld is negative", (long long)params->total);
    avl_progress *p = avl__calloc(1, sizeof *p);
    if (!p) return avl__err(AVL_E_NOMEM, "progress: out of memory");
    p->p = *params;
    snprintf(p->label, sizeof p->label, "%s", params->label ? params->label : "progress");
    p->p.label = NULL; /* the caller's string is not kept */
    if (p->p.bar_width < 4) p->p.bar_width = 4;
    if (p->p.bar_width > 60) p->p.bar_width = 60;
    p->t0 = now(p);
    p->last_emit = -1e300;
    *out = p;
    return AVL_OK;
}

void avl_progress_free(avl_progress *p) { avl__free(p); }

/* "59s", "12m05s", "3h07m" */
static void fmt_duration(char *buf, size_t n, double s)
{
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t < 60) snprintf(buf, n, "%lds", t);
    else if (t < 3600) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
}

static void compose(avl_progress *p, double t)
{
    int64_t total = p->p.total, done = p->done + p->skipped;
    double frac = total > 0 ? (double)done / (double)total : 1.0;
    if (frac > 1) frac = 1;
    double elapsed = t - p->t0;
    char eta[32] = "?", per[32] = "";
    int64_t left = total - done;
    if (p->done > 0) {
        double rate = elapsed / (double)p->done; /* seconds per processed sample */
        fmt_duration(eta, sizeof eta, rate * (double)(left > 0 ? left : 0));
        if (rate >= 1) snprintf(per, sizeof per, "  %.1f s/sample", rate);
        else if (rate > 0) snprintf(per, sizeof per, "  %.1f samples/s", 1.0 / rate);
    }
    char extra[96] = "";
    if (p->failed || p->skipped)
        snprintf(extra, sizeof extra, "  (%lld failed, %lld skipped)", (long long)p->failed, (long long)p->skipped);
    if (p->finished) {
        char el[32];
        fmt_duration(el, sizeof el, elapsed);
        snprintf(p->line, sizeof p->line, "%s: %lld/%lld done in %s%s", p->label, (long long)done, (long long)total, el, extra);
        return;
    }
    if (p->p.tty) {
        char bar[64];
        int w = p->p.bar_width, full = (int)(frac * w);
        for (int i = 0; i < w; i++) bar[i] = i < full ? '#' : '.';
        bar[w] = '\0';
        snprintf(p->line, sizeof p->line, "%s [%s] %lld/%lld %5.1f%%%s  ETA %s%s", p->label, bar, (long long)done,
                 (long long)total, 100 * frac, per, eta, extra);
    } else {
        snprintf(p->line, sizeof p->line, "%s: %lld/%lld (%.1f%%)%s, ETA %s%s", p->label, (long long)done, (long long)total,
                 100 * frac, per, eta, extra);
    }
}

static void maybe_emit(avl_progress *p, bool force)
{
    double t = now(p);
    int64_t total = p->p.total, done = p->done + p->skipped;
    double pct = total > 0 ? 100.0 * (double)done / (double)total : 100;
    bool due;
    if (force) due = true;
    else if (p->p.tty) due = t - p->last_emit >= 0.1 || done == total;
    else
        due = (p->p.every_percent > 0 && pct - p->last_pct >= p->p.every_percent - 1e-9) ||
              (p->p.every_seconds > 0 && t - p->last_emit >= p->p.every_seconds && p->last_emit > -1e299);
    if (!due) return;
    compose(p, t);
    p->last_emit = t;
    if (!p->p.tty) p->last_pct = floor(pct / (p->p.every_percent > 0 ? p->p.every_percent : 1)) * (p->p.every_percent > 0 ? p->p.every_percent : 1);
    p->p.fn(p->line, p->p.tty, p->finished, p->p.user);
}

void avl_progress_skip(avl_progress *p, int64_t n)
{
    if (!p || n <= 0 || p->finished) return;
    p->skipped += n;
    if (p->p.tty) maybe_emit(p, false);
}

void avl_progress_step(avl_progress *p, bool failed)
{
    if (!p || p->finished) return;
    p->done++;
    if (failed) p->failed++;
    if (p->last_emit < -1e299) p->last_emit = p->t0; /* the time rule counts from the start */
    maybe_emit(p, false);
}

void avl_progress_finish(avl_progress *p)
{
    if (!p || p->finished) return;
    p->finished = true;
    maybe_emit(p, true);
}

const char *avl_progress_line(avl_progress *p)
{
    if (!p) return "";
    compose(p, now(p));
    return p->line;
}
