/* bench/bench_records.c: how fast the results store appends (flush vs fsync), resumes (reads a
 * shard file back) and merges, with trace-like records of about 1 KB.
 * Build by hand from the worktree after a release build:
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/bench_records.c build/libavlens.a \
 *      $(pkg-config --libs jansson) -lm -o build/bench_records && build/bench_records /tmp/avl_bench 20000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avlens/avlens.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(void)
{
    fprintf(stderr, "bench: %s\n", avl_last_error());
    exit(1);
}

static double append(const char *dir, const char *analysis, int n, bool fsync_each)
{
    avl_records_params p = avl_records_default_params();
    p.dir = dir;
    p.analysis = analysis;
    p.fsync = fsync_each;
    avl_records *r;
    if (avl_records_open(&p, &r) != AVL_OK) die();
    char js[2048];
    double t0 = now();
    for (int i = 0; i < n; i++) {
        int k = snprintf(js, sizeof js, "{\"id\":\"clip%07d_000000\",\"model\":\"Qwen2.5-Omni-7B\",\"dominance\":\"audio\",\"results\":[", i);
        for (int s = 0; s < 8; s++)
            k += snprintf(js + k, sizeof js - (size_t)k, "%s{\"set\":\"sink\",\"n\":%d,\"layer_start\":0,\"layer_end\":28,\"n_tokens\":%d,"
                          "\"p_rest_clean\":0.%06d,\"p_rest_corr\":0.%06d,\"ie_clean\":0.%06d,\"ie_corr\":0.%06d}",
                          s ? "," : "", s, 100 + s, i, 2 * i, 3 * i % 999999, 5 * i % 999999);
        snprintf(js + k, sizeof js - (size_t)k, "]}");
        if (avl_records_append(r, js) != AVL_OK) die();
    }
    double dt = now() - t0;
    avl_records_close(r);
    return dt;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp/avl_bench";
    int n = argc > 2 ? atoi(argv[2]) : 20000;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    double t = append(dir, "trace", n, false);
    printf("append, fflush only: %d records in %.3f s (%.0f records/s)\n", n, t, n / t);
    int m = n / 20 > 0 ? n / 20 : 1;
    t = append(dir, "trace.fsync", m, true);
    printf("append, fsync each:  %d records in %.3f s (%.0f records/s)\n", m, t, m / t);
    avl_records_params p = avl_records_default_params();
    p.dir = dir;
    p.analysis = "trace";
    avl_records *r;
    double t0 = now();
    if (avl_records_open(&p, &r) != AVL_OK) die();
    t = now() - t0;
    printf("resume (read %lld records back): %.3f s\n", (long long)avl_records_count(r), t);
    avl_records_close(r);
    char out[1100];
    snprintf(out, sizeof out, "%s/merged", dir);
    avl_merge_summary s;
    t0 = now();
    if (avl_records_merge(dir, out, &s) != AVL_OK) die();
    printf("merge (%lld records): %.3f s\n", (long long)s.records, now() - t0);
    snprintf(out, sizeof out, "%s/report", dir);
    t0 = now();
    if (avl_report_write(dir, out, NULL) != AVL_OK) die();
    printf("report (%lld records): %.3f s\n", (long long)s.records, now() - t0);
    return 0;
}
