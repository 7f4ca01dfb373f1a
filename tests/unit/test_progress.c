/* tests/unit/test_progress.c: the progress reporter with an injected clock: when lines are
 * due (log mode: every N % or M seconds; tty: redraws), the ETA from processed samples only,
 * and the final line. */
#include <stdio.h>
#include <string.h>

#include "avl_test.h"

typedef struct {
    double t;
    char lines[64][256];
    bool redraw[64], final[64];
    int n;
} sink;

static double clock_fn(void *user) { return ((sink *)user)->t; }

static void collect(const char *line, bool redraw, bool final, void *user)
{
    sink *s = user;
    if (s->n < 64) {
        snprintf(s->lines[s->n], sizeof s->lines[0], "%s", line);
        s->redraw[s->n] = redraw;
        s->final[s->n] = final;
        s->n++;
    }
}

static avl_progress *make(sink *s, int64_t total, bool tty)
{
    avl_progress_params p = avl_progress_default_params();
    p.label = "trace";
    p.total = total;
    p.tty = tty;
    p.fn = collect;
    p.user = s;
    p.clock = clock_fn;
    p.every_percent = 25;
    p.every_seconds = 100;
    avl_progress *pr;
    assert_int_equal(avl_progress_new(&p, &pr), AVL_OK);
    return pr;
}

static void log_mode(void **state)
{
    sink s = {0};
    avl_progress *p = make(&s, 8, false);
    for (int i = 0; i < 8; i++) {
        s.t += 2;
        avl_progress_step(p, i == 5);
    }
    /* a line at 25, 50, 75, 100 % */
    assert_int_equal(s.n, 4);
    assert_string_equal(s.lines[0], "trace: 2/8 (25.0%)  2.0 s/sample, ETA 12s");
    assert_string_equal(s.lines[3], "trace: 8/8 (100.0%)  2.0 s/sample, ETA 0s  (1 failed, 0 skipped)");
    assert_false(s.redraw[0]);
    avl_progress_finish(p);
    assert_int_equal(s.n, 5);
    assert_true(s.final[4]);
    assert_string_equal(s.lines[4], "trace: 8/8 done in 16s  (1 failed, 0 skipped)");
    avl_progress_finish(p); /* once only */
    assert_int_equal(s.n, 5);
    avl_progress_free(p);
}

static void time_rule_and_skips(void **state)
{
    sink s = {0};
    avl_progress *p = make(&s, 1000, false);
    avl_progress_skip(p, 100); /* resumed: 100 done before */
    s.t = 50;
    avl_progress_step(p, false);
    assert_int_equal(s.n, 0);
    s.t = 150; /* more than every_seconds since the start */
    avl_progress_step(p, false);
    assert_int_equal(s.n, 1);
    /* ETA from 2 samples in 150 s, not from 102: 898 * 75 s */
    assert_string_equal(s.lines[0], "trace: 102/1000 (10.2%)  75.0 s/sample, ETA 18h42m  (0 failed, 100 skipped)");
    avl_progress_free(p);
}

static void tty_mode(void **state)
{
    sink s = {0};
    avl_progress *p = make(&s, 4, true);
    s.t = 1;
    avl_progress_step(p, false);
    s.t = 1.05; /* within 0.1 s: not redrawn */
    avl_progress_step(p, false);
    s.t = 2;
    avl_progress_step(p, false);
    assert_int_equal(s.n, 2);
    assert_true(s.redraw[0]);
    assert_string_equal(s.lines[1], "trace [##################......] 3/4  75.0%  1.5 samples/s  ETA 1s");
    avl_progress_finish(p);
    assert_true(s.final[2]);
    assert_string_equal(avl_progress_line(p), "trace: 3/4 done in 2s");
    avl_progress_free(p);
}

static void bad_params(void **state)
{
    avl_progress_params p = avl_progress_default_params();
    avl_progress *pr;
    AVL_EXPECT_ERROR(avl_progress_new(&p, &pr), AVL_E_ARG, "no callback");
    p.fn = collect;
    p.total = -1;
    AVL_EXPECT_ERROR(avl_progress_new(&p, &pr), AVL_E_ARG, "negative");
    avl_progress_free(NULL);
    avl_progress_step(NULL, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_mode),
        cmocka_unit_test(time_rule_and_skips),
        cmocka_unit_test(tty_mode),
        cmocka_unit_test(bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
