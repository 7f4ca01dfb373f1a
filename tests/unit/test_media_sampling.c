/* tests/unit/test_media_sampling.c: frame counts, frame indices and smart_resize against the
 * Python rules (tests/data/media/sampling.txt, from tools/ref/media_ref.py with torch.linspace). */
#include "avl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

static void test_sampling_table(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/media/sampling.txt", AVL_TEST_DATA);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192];
    int nf = 0, nr = 0;
    avl_video_params p = avl_video_default_params();
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        if (!strncmp(s, "frames ", 7)) {
            s += 7;
            long long total = strtoll(s, &s, 10);
            double fps = strtod(s, &s);
            long long n = strtoll(s, &s, 10);
            int64_t got;
            assert_int_equal(avl_video_nframes(total, fps, &p, &got), AVL_OK);
            if (got != n) fail_msg("T=%lld F=%g: n=%lld, wanted %lld", total, fps, (long long)got, n);
            int64_t *idx = malloc(sizeof(int64_t) * (size_t)n);
            avl_video_frame_indices(total, n, idx);
            for (long long i = 0; i < n; i++) {
                long long want = strtoll(s, &s, 10);
                if (idx[i] != want) fail_msg("T=%lld n=%lld: index %lld is %lld, wanted %lld", total, n, i, (long long)idx[i], want);
            }
            free(idx);
            nf++;
        } else if (!strncmp(s, "resize ", 7)) {
            s += 7;
            long long h = strtoll(s, &s, 10), w = strtoll(s, &s, 10);
            double mn = strtod(s, &s), mx = strtod(s, &s);
            long long oh = strtoll(s, &s, 10), ow = strtoll(s, &s, 10);
            int64_t gh, gw;
            assert_int_equal(avl_smart_resize(h, w, 28, mn, mx, &gh, &gw), AVL_OK);
            if (gh != oh || gw != ow)
                fail_msg("smart_resize(%lld, %lld, %g, %g) = %lldx%lld, wanted %lldx%lld", h, w, mn, mx, (long long)gh,
                         (long long)gw, oh, ow);
            nr++;
        }
    }
    fclose(f);
    assert_true(nf >= 10);
    assert_true(nr >= 10);
}

static void test_sampling_rules(void **state)
{
    (void)state;
    avl_video_params p = avl_video_default_params();
    int64_t n;
    /* a 10 s clip at 25 fps: 20 frames, 2 s per temporal grid */
    assert_int_equal(avl_video_nframes(250, 25.0, &p, &n), AVL_OK);
    assert_int_equal(n, 20);
    /* a single frame cannot make a temporal patch */
    AVL_EXPECT_ERROR(avl_video_nframes(1, 25.0, &p, &n), AVL_E_ARG, "1 frame");
    AVL_EXPECT_ERROR(avl_video_nframes(0, 25.0, &p, &n), AVL_E_ARG, "no frames");
    AVL_EXPECT_ERROR(avl_video_nframes(10, 0.0, &p, &n), AVL_E_ARG, "frame rate");
    /* the max_frames cap: 40 minutes at 30 fps still gives 768 */
    assert_int_equal(avl_video_nframes(72000, 30.0, &p, &n), AVL_OK);
    assert_int_equal(n, 768);
    /* the authors' lower cap: max_pixels = int(min_pixels * 1.05) = 105369 */
    p.max_pixels = 128 * 28 * 28;
    assert_true(avl_video_max_pixels(&p, 20) == 105369.0);
    p = avl_video_default_params();
    assert_true(avl_video_max_pixels(&p, 20) == 602112.0);
    assert_true(avl_video_max_pixels(&p, 500) == 361267.2);
    int64_t h, w;
    AVL_EXPECT_ERROR(avl_smart_resize(10, 2500, 28, 3136, 1e7, &h, &w), AVL_E_ARG, "aspect ratio");
    AVL_EXPECT_ERROR(avl_smart_resize(0, 25, 28, 3136, 1e7, &h, &w), AVL_E_ARG, "25x0");
    /* Python's round: 12.5 -> 12 (350/28 = 12.5 -> 336) */
    assert_int_equal(avl_smart_resize(350, 350, 28, 3136, 12845056, &h, &w), AVL_OK);
    assert_int_equal(h, 336);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampling_table),
        cmocka_unit_test(test_sampling_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
