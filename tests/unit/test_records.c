/* tests/unit/test_records.c: the results store: shard selection (each sample exactly once,
 * balanced, stable), resume after a simulated kill (torn last line) equals an uninterrupted run,
 * error records and retries, the shard lock, and merge (sharded == unsharded, conflicts,
 * in place). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avl_test.h"
#include "base/internal.h"

static char *slurp(const char *path)
{
    char *b;
    size_t n;
    if (avl__read_file(path, &b, &n) != AVL_OK) fail_msg("%s", avl_last_error());
    return b;
}

static void id_of(char *buf, size_t n, int i) { snprintf(buf, n, "%c%05d_%06d", "-_aZ"[i % 4], i * 7919 % 100000, i % 300); }

static void shards_cover_once_and_balance(void **state)
{
    enum { N = 20000 };
    static const int counts[] = {1, 2, 3, 7, 16, 64};
    char id[64];
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        int n = counts[c];
        int64_t per[64] = {0};
        for (int i = 0; i < N; i++) {
            id_of(id, sizeof id, i);
            int hits = 0;
            for (int s = 0; s < n; s++) hits += avl_shard_selects(id, s, n);
            assert_int_equal(hits, 1); /* exactly one shard takes each sample */
            per[avl_shard_of(id, n)]++;
        }
        double mean = (double)N / n;
        for (int s = 0; s < n; s++)
            if (per[s] < mean * 0.85 || per[s] > mean * 1.15) fail_msg("shard %d/%d has %lld of %d samples", s, n, (long long)per[s], N);
    }
    /* stable: a sample's shard depends on its id only */
    assert_int_equal(avl_shard_of("--U7joUcTCo_000000", 16), avl_shard_of("--U7joUcTCo_000000", 16));
    assert_int_equal(avl_shard_of("x", 1), 0);
}

static void shard_parse(void **state)
{
    int i, n;
    assert_int_equal(avl_shard_parse("3/16", &i, &n), AVL_OK);
    assert_int_equal(i, 3);
    assert_int_equal(n, 16);
    assert_int_equal(avl_shard_parse("0/1", &i, &n), AVL_OK);
    AVL_EXPECT_ERROR(avl_shard_parse("16/16", &i, &n), AVL_E_ARG, "16/16", "0 <= i < n");
    AVL_EXPECT_ERROR(avl_shard_parse("3", &i, &n), AVL_E_ARG, "want i/n");
    AVL_EXPECT_ERROR(avl_shard_parse("a/b", &i, &n), AVL_E_ARG, "want i/n");
    AVL_EXPECT_ERROR(avl_shard_parse("1/0", &i, &n), AVL_E_ARG, "0 <= i < n");
    AVL_EXPECT_ERROR(avl_shard_parse("1/4x", &i, &n), AVL_E_ARG, "want i/n");
}

static avl_records *open_rec(const char *dir, int i, int n, bool retry)
{
    avl_records_params p = avl_records_default_params();
    p.dir = dir;
    p.analysis = "trace";
    p.shard_index = i;
    p.shard_count = n;
    p.retry_errors = retry;
    p.timestamp = false;
    avl_records *r = NULL;
    if (avl_records_open(&p, &r) != AVL_OK) fail_msg("%s", avl_last_error());
    return r;
}

static void record_json(char *buf, size_t n, int i)
{
    char id[64];
    id_of(id, sizeof id, i);
    snprintf(buf, n, "{\"id\":\"%s\",\"model\":\"tiny\",\"results\":[{\"set\":\"sink\",\"n\":2,\"ie_clean\":%d.5,\"ie_corr\":-0.%d}],"
             "\"note\":\"line\\nbreak\"}", id, i, i);
}

/* The sample loop of a data-set command: skip what is done, write the rest; stop after `stop`
 * new records (a "kill"). Returns how many were written. */
static int run(const char *dir, int shard, int nshards, int nsamples, int stop)
{
    avl_records *r = open_rec(dir, shard, nshards, false);
    int wrote = 0;
    for (int i = 0; i < nsamples && wrote < stop; i++) {
        char id[64], js[512];
        id_of(id, sizeof id, i);
        if (!avl_shard_selects(id, shard, nshards) || avl_records_done(r, id)) continue;
        if (i % 9 == 4) {
            assert_int_equal(avl_records_append_error(r, id, AVL_E_MEDIA, "clip.mp4: cannot decode"), AVL_OK);
        } else {
            record_json(js, sizeof js, i);
            assert_int_equal(avl_records_append(r, js), AVL_OK);
        }
        wrote++;
    }
    avl_records_close(r);
    return wrote;
}

static void resume_after_kill(void **state)
{
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s", avl_test_dir("records_whole"));
    snprintf(b, sizeof b, "%s", avl_test_dir("records_killed"));
    assert_int_equal(run(a, 0, 1, 30, 1000), 30);

    /* killed after 12 records, in the middle of writing the 13th */
    assert_int_equal(run(b, 0, 1, 30, 12), 12);
    char path[1200];
    snprintf(path, sizeof path, "%s/trace/shard-0-of-1.jsonl", b);
    FILE *f = fopen(path, "ab");
    static const char frag[] = "{\"id\":\"-00012_000012\",\"model\":\"ti"; /* torn: no newline, not JSON */
    fputs(frag, f);
    fclose(f);

    avl_records *r = open_rec(b, 0, 1, false);
    assert_int_equal(avl_records_torn_bytes(r), (int64_t)strlen(frag));
    assert_int_equal(avl_records_count(r), 12);
    char id[64];
    id_of(id, sizeof id, 11);
    assert_true(avl_records_done(r, id));
    id_of(id, sizeof id, 12);
    assert_false(avl_records_done(r, id));
    avl_records_close(r);
    assert_int_equal(run(b, 0, 1, 30, 1000), 18);
    assert_int_equal(run(b, 0, 1, 30, 1000), 0); /* all done: a rerun writes nothing */

    char pa[1200];
    snprintf(pa, sizeof pa, "%s/trace/shard-0-of-1.jsonl", a);
    char *x = slurp(pa), *y = slurp(path);
    assert_string_equal(x, y);
    /* one line per record, the record as given plus analysis and status */
    assert_non_null(strstr(x, "{\"id\":\"-00000_000000\",\"analysis\":\"trace\",\"status\":\"ok\",\"model\":\"tiny\""));
    assert_non_null(strstr(x, "\"status\":\"error\",\"code\":\"media error\",\"message\":\"clip.mp4: cannot decode\""));
    int lines = 0;
    for (char *p = x; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 30);
    free(x);
    free(y);
}

static void unterminated_but_complete_tail(void **state)
{
    const char *d = avl_test_dir("records_tail");
    char folder[1024], path[1100];
    snprintf(folder, sizeof folder, "%s/trace", d);
    mkdir(folder, 0777);
    snprintf(path, sizeof path, "%s/shard-0-of-1.jsonl", folder);
    const char *text = "{\"id\":\"a\",\"status\":\"ok\"}\n{\"id\":\"b\",\"status\":\"ok\"}";
    avl_test_write_file(path, text, strlen(text));
    avl_records *r = open_rec(d, 0, 1, false);
    assert_int_equal(avl_records_torn_bytes(r), 0);
    assert_true(avl_records_done(r, "b"));
    assert_int_equal(avl_records_append(r, "{\"id\":\"c\"}"), AVL_OK);
    avl_records_close(r);
    char *x = slurp(path);
    assert_string_equal(x, "{\"id\":\"a\",\"status\":\"ok\"}\n{\"id\":\"b\",\"status\":\"ok\"}\n"
                           "{\"id\":\"c\",\"analysis\":\"trace\",\"status\":\"ok\"}\n");
    free(x);

    /* a bad line that is not the last one is an error naming file and line */
    text = "{\"id\":\"a\"}\n{\"id\":\n{\"id\":\"c\"}\n";
    avl_test_write_file(path, text, strlen(text));
    avl_records_params p = avl_records_default_params();
    p.dir = d;
    p.analysis = "trace";
    AVL_EXPECT_ERROR(avl_records_open(&p, &r), AVL_E_FORMAT, "shard-0-of-1.jsonl: line 2: not JSON");
    assert_null(r);
    text = "{\"id\":\"a\"}\n[1]\n{\"id\":\"c\"}\n";
    avl_test_write_file(path, text, strlen(text));
    AVL_EXPECT_ERROR(avl_records_open(&p, &r), AVL_E_FORMAT, "line 2: not a JSON object");
    text = "{\"id\":\"a\"}\n{\"x\":1}\n{\"id\":\"c\"}\n";
    avl_test_write_file(path, text, strlen(text));
    AVL_EXPECT_ERROR(avl_records_open(&p, &r), AVL_E_FORMAT, "line 2: no string \"id\"");
}

static void errors_retry_lock_args(void **state)
{
    const char *d = avl_test_dir("records_retry");
    avl_records *r = open_rec(d, 0, 1, false);
    assert_int_equal(avl_records_append_error(r, "s1", AVL_E_MEDIA, "bad clip"), AVL_OK);
    /* a second writer of the same shard is refused */
    avl_records_params p = avl_records_default_params();
    p.dir = d;
    p.analysis = "trace";
    avl_records *r2 = NULL;
    AVL_EXPECT_ERROR(avl_records_open(&p, &r2), AVL_E_IO, "shard-0-of-1.jsonl", "locked");
    /* bad records to append */
    AVL_EXPECT_ERROR(avl_records_append(r, "[1]"), AVL_E_ARG, "not a JSON object");
    AVL_EXPECT_ERROR(avl_records_append(r, "{\"x\":1}"), AVL_E_ARG, "no string \"id\"");
    AVL_EXPECT_ERROR(avl_records_append(r, "{\"id\":\"a\",\"status\":3}"), AVL_E_ARG, "\"status\" is not a string");
    AVL_EXPECT_ERROR(avl_records_append(r, "{\"id\":"), AVL_E_ARG, "not JSON");
    avl_records_close(r);

    r = open_rec(d, 0, 1, false);
    assert_true(avl_records_done(r, "s1"));
    avl_records_close(r);
    r = open_rec(d, 0, 1, true);
    assert_false(avl_records_done(r, "s1"));
    assert_int_equal(avl_records_append(r, "{\"id\":\"s1\",\"v\":1}"), AVL_OK);
    assert_true(avl_records_done(r, "s1"));
    avl_records_close(r);
    /* the ok record wins the merge over the earlier error */
    char out[1024];
    snprintf(out, sizeof out, "%s/merged", d);
    avl_merge_summary s;
    assert_int_equal(avl_records_merge(d, out, &s), AVL_OK);
    assert_int_equal(s.samples, 1);
    assert_int_equal(s.conflicts, 1);
    char path[1200];
    snprintf(path, sizeof path, "%s/trace/shard-0-of-1.jsonl", out);
    char *x = slurp(path);
    assert_string_equal(x, "{\"id\":\"s1\",\"analysis\":\"trace\",\"status\":\"ok\",\"v\":1}\n");
    free(x);

    p.analysis = "../up";
    AVL_EXPECT_ERROR(avl_records_open(&p, &r2), AVL_E_ARG, "analysis name '../up'");
    p.analysis = "trace";
    p.shard_index = 4;
    p.shard_count = 4;
    AVL_EXPECT_ERROR(avl_records_open(&p, &r2), AVL_E_ARG, "shard 4/4");
}

static void merge_equals_unsharded(void **state)
{
    char a[1024], b[1024], ma[1100], mb[1100];
    snprintf(a, sizeof a, "%s", avl_test_dir("merge_single"));
    snprintf(b, sizeof b, "%s", avl_test_dir("merge_sharded"));
    enum { NS = 60, SH = 4 };
    run(a, 0, 1, NS, 1000);
    for (int s = 0; s < SH; s++) run(b, s, SH, NS, 1000);
    /* a shard killed and resumed on the way changes nothing */
    snprintf(ma, sizeof ma, "%s/out", a);
    snprintf(mb, sizeof mb, "%s/out", b);
    avl_merge_summary sa, sb;
    assert_int_equal(avl_records_merge(a, ma, &sa), AVL_OK);
    assert_int_equal(avl_records_merge(b, mb, &sb), AVL_OK);
    assert_int_equal(sa.samples, NS);
    assert_int_equal(sb.samples, NS);
    assert_int_equal(sb.files, SH);
    assert_int_equal(sb.conflicts, 0);
    char pa[1200], pb[1200];
    snprintf(pa, sizeof pa, "%s/trace/shard-0-of-1.jsonl", ma);
    snprintf(pb, sizeof pb, "%s/trace/shard-0-of-1.jsonl", mb);
    char *x = slurp(pa), *y = slurp(pb);
    assert_string_equal(x, y);
    /* sorted by id */
    char *prev = NULL;
    for (char *l = x; *l;) {
        char *nl = strchr(l, '\n');
        *nl = '\0';
        if (prev) assert_true(strcmp(prev, l) < 0);
        prev = l;
        l = nl + 1;
    }
    free(x);
    free(y);

    /* in place: refused while a writer holds a shard, then the shard files are replaced by
     * the merged one */
    avl_records *w = open_rec(b, 1, SH, false);
    AVL_EXPECT_ERROR(avl_records_merge(b, NULL, &sb), AVL_E_IO, "shard-1-of-4.jsonl: a run is still writing");
    avl_records_close(w);
    assert_int_equal(avl_records_merge(b, NULL, &sb), AVL_OK);
    char p0[1200];
    snprintf(p0, sizeof p0, "%s/trace/shard-1-of-4.jsonl", b);
    assert_int_not_equal(access(p0, F_OK), 0);
    snprintf(p0, sizeof p0, "%s/trace/shard-0-of-1.jsonl", b);
    x = slurp(p0);
    y = slurp(pa);
    assert_string_equal(x, y);
    free(x);
    free(y);
}

static void merge_conflicts_latest_wins(void **state)
{
    const char *d = avl_test_dir("merge_conflict");
    char folder[1024], p1[1100], p2[1100];
    snprintf(folder, sizeof folder, "%s/sinks", d);
    mkdir(folder, 0777);
    snprintf(p1, sizeof p1, "%s/shard-0-of-2.jsonl", folder);
    snprintf(p2, sizeof p2, "%s/shard-1-of-2.jsonl", folder);
    const char *t1 = "{\"id\":\"x\",\"v\":1,\"written_at\":\"2026-01-02T00:00:00.000000Z\"}\n"
                     "{\"id\":\"y\",\"v\":1,\"written_at\":\"2026-01-01T00:00:00.000000Z\"}\n";
    const char *t2 = "{\"id\":\"x\",\"v\":2,\"written_at\":\"2026-01-01T00:00:00.000000Z\"}\n"
                     "{\"id\":\"y\",\"v\":1,\"written_at\":\"2026-01-03T00:00:00.000000Z\"}\n{\"id\":\"z\",\"v";
    avl_test_write_file(p1, t1, strlen(t1));
    avl_test_write_file(p2, t2, strlen(t2));
    avl_merge_summary s;
    char out[1100];
    snprintf(out, sizeof out, "%s/m", d);
    assert_int_equal(avl_records_merge(d, out, &s), AVL_OK);
    assert_int_equal(s.samples, 2);
    assert_int_equal(s.records, 4);
    assert_int_equal(s.conflicts, 1);   /* x: v 1 vs 2 */
    assert_int_equal(s.duplicates, 1);  /* y: same content, other time */
    assert_int_equal(s.torn, 1);
    char path[1200];
    snprintf(path, sizeof path, "%s/sinks/shard-0-of-1.jsonl", out);
    char *x = slurp(path);
    assert_string_equal(x, "{\"id\":\"x\",\"v\":1,\"written_at\":\"2026-01-02T00:00:00.000000Z\"}\n"
                           "{\"id\":\"y\",\"v\":1,\"written_at\":\"2026-01-03T00:00:00.000000Z\"}\n");
    free(x);
    AVL_EXPECT_ERROR(avl_records_merge("/nonexistent/folder", NULL, &s), AVL_E_IO, "/nonexistent/folder");
}

static void timestamps(void **state)
{
    const char *d = avl_test_dir("records_time");
    avl_records_params p = avl_records_default_params();
    p.dir = d;
    p.analysis = "mds.k2";
    p.fsync = true;
    avl_records *r;
    assert_int_equal(avl_records_open(&p, &r), AVL_OK);
    assert_int_equal(avl_records_append(r, "{\"id\":\"a\",\"written_at\":\"old\"}"), AVL_OK);
    char path[1200];
    snprintf(path, sizeof path, "%s", avl_records_path(r));
    avl_records_close(r);
    char *x = slurp(path);
    /* the folder name's part before '.' is the analysis kind */
    assert_non_null(strstr(x, "{\"id\":\"a\",\"analysis\":\"mds\",\"status\":\"ok\",\"written_at\":\"20"));
    assert_non_null(strstr(x, "Z\"}\n"));
    free(x);
}

static void alloc_failures(void **state)
{
    const char *d = avl_test_dir("records_fault");
    char js[512];
    for (int64_t n = 1; n < 2000; n++) {
        avl__alloc_fail_after(n);
        avl_records_params p = avl_records_default_params();
        p.dir = d;
        p.analysis = "trace";
        avl_records *r = NULL;
        int rc = avl_records_open(&p, &r);
        for (int i = 0; rc == AVL_OK && i < 40; i++) {
            record_json(js, sizeof js, i);
            char id[64];
            id_of(id, sizeof id, i);
            if (!avl_records_done(r, id)) rc = avl_records_append(r, js);
        }
        avl_records_close(r);
        avl_merge_summary s;
        if (rc == AVL_OK) {
            char out[1100];
            snprintf(out, sizeof out, "%s/m", d);
            rc = avl_records_merge(d, out, &s);
        }
        int64_t used = avl__alloc_fail_after(0);
        if (rc == AVL_OK && used < n) return;
        if (rc != AVL_OK && rc != AVL_E_NOMEM) fail_msg("allocation %lld: status %d: %s", (long long)n, rc, avl_last_error());
    }
    fail_msg("more than 2000 allocations?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shards_cover_once_and_balance), cmocka_unit_test(shard_parse),
        cmocka_unit_test(resume_after_kill),             cmocka_unit_test(unterminated_but_complete_tail),
        cmocka_unit_test(errors_retry_lock_args),        cmocka_unit_test(merge_equals_unsharded),
        cmocka_unit_test(merge_conflicts_latest_wins),   cmocka_unit_test(timestamps),
        cmocka_unit_test(alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
