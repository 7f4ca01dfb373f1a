/* tests/unit/test_masks.c: object masks (src/analysis/masks.c): grey conversion, reading mask
 * images (hand-written PPM and a PNG), the size check against the frame (the error names the
 * file and both sizes), missing masks, and the object token set they give. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avl_test.h"
#include "av_seq.h"
#include "base/internal.h"

/* A binary PPM of w x h: black except a white rectangle [x0, x1) x [y0, y1). */
static void write_ppm(const char *path, int w, int h, int x0, int y0, int x1, int y1)
{
    char head[64];
    int n = snprintf(head, sizeof head, "P6\n%d %d\n255\n", w, h);
    size_t size = (size_t)n + (size_t)(3 * w * h);
    uint8_t *b = calloc(1, size);
    assert_non_null(b);
    memcpy(b, head, (size_t)n);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) memset(b + n + 3 * (y * w + x), 255, 3);
    avl_test_write_file(path, b, size);
    free(b);
}

static void test_grey(void **state)
{
    (void)state;
    const uint8_t rgb[12] = {0, 0, 0, 255, 255, 255, 255, 0, 0, 10, 200, 30};
    uint8_t g[4];
    avl_mask_grey(rgb, 4, g);
    assert_int_equal(g[0], 0);
    assert_int_equal(g[1], 255);
    assert_int_equal(g[2], 76);  /* Pillow: (255 * 19595 + 32768) >> 16 */
    assert_int_equal(g[3], (10 * 19595 + 200 * 38470 + 30 * 7471 + 32768) >> 16);
}

static void test_read_and_tokens(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("masks");
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/001.ppm", dir);
    snprintf(b, sizeof b, "%s/013.ppm", dir);
    write_ppm(a, 20, 10, 0, 5, 4, 10); /* lower left: merged cell row 1, col 0 of the 2 x 2 grid */
    write_ppm(b, 20, 10, 0, 0, 0, 0);  /* empty */
    const char *paths[2] = {a, b};
    avl_masks *m;
    assert_int_equal(avl_masks_read(paths, 2, 10, 20, &m), AVL_OK);
    assert_int_equal(m->n, 2);
    assert_int_equal(m->h, 10);
    assert_int_equal(m->w, 20);
    assert_int_equal(m->grey[0][6 * 20 + 1], 255);
    assert_int_equal(m->grey[0][0], 0);
    avl_token_map *map = av_map();
    avl_tokset s;
    assert_int_equal(avl_tokset_object_masks(map, 0, m, 30, &s), AVL_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(map->tok[s.pos[0]].kind, AVL_TOK_VIDEO);
    assert_int_equal(map->tok[s.pos[0]].index, 2); /* grid 0, row 1, col 0 */
    avl_tokset_free(&s);
    avl_masks_free(m);

    /* a missing mask (NULL path) gives nothing at its grid index; sizes from the first mask */
    const char *one[2] = {NULL, a};
    assert_int_equal(avl_masks_read(one, 2, 0, 0, &m), AVL_OK);
    assert_null(m->grey[0]);
    assert_int_equal(avl_tokset_object_masks(map, 0, m, 30, &s), AVL_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(map->tok[s.pos[0]].index, 4 + 2);
    avl_tokset_free(&s);
    avl_masks_free(m);
    avl_token_map_free(map);
}

static void test_png(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("masks_png");
    char cmd[9000], p[4200];
    snprintf(p, sizeof p, "%s/m.png", dir);
    snprintf(cmd, sizeof cmd, "ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i color=white:s=16x8 -frames:v 1 %s", p);
    assert_int_equal(system(cmd), 0);
    const char *paths[1] = {p};
    avl_masks *m;
    assert_int_equal(avl_masks_read(paths, 1, 8, 16, &m), AVL_OK);
    assert_true(m->grey[0][0] > 250);
    avl_masks_free(m);
}

static void test_errors(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("masks_err");
    char a[4200], b[4200], gone[4200];
    snprintf(a, sizeof a, "%s/001.ppm", dir);
    snprintf(b, sizeof b, "%s/002.ppm", dir);
    snprintf(gone, sizeof gone, "%s/gone.png", dir);
    write_ppm(a, 20, 10, 0, 0, 2, 2);
    write_ppm(b, 24, 10, 0, 0, 2, 2);
    avl_masks *m = (avl_masks *)1;
    const char *paths[2] = {a, b};
    /* against the frame size */
    AVL_EXPECT_ERROR(avl_masks_read(paths, 1, 12, 20, &m), AVL_E_FORMAT, "001.ppm", "mask is 20x10", "frame is 20x12");
    assert_null(m);
    /* against the first mask */
    AVL_EXPECT_ERROR(avl_masks_read(paths, 2, 0, 0, &m), AVL_E_FORMAT, "002.ppm", "24x10", "20x10");
    const char *g[1] = {gone};
    avl_status rc = avl_masks_read(g, 1, 0, 0, &m);
    assert_true(rc != AVL_OK);
    assert_non_null(strstr(avl_last_error(), "gone.png"));
    AVL_EXPECT_ERROR(avl_masks_read(NULL, 2, 0, 0, &m), AVL_E_ARG, "masks");
    assert_int_equal(avl_tokset_object_masks(NULL, 0, NULL, 30, NULL), AVL_E_ARG);
    avl_masks_free(NULL);
}

/* every allocation of reading masks (the library's and the decoder's) may fail: a status, no leak */
static void test_alloc_failures(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("masks_fault");
    char a[4200];
    snprintf(a, sizeof a, "%s/001.ppm", dir);
    write_ppm(a, 20, 10, 0, 5, 4, 10);
    const char *paths[2] = {a, a};
    for (int64_t n = 1; n < 100; n++) {
        avl_masks *m = NULL;
        avl__alloc_fail_after(n);
        avl_status rc = avl_masks_read(paths, 2, 10, 20, &m);
        avl__alloc_fail_after(0);
        avl_masks_free(m);
        if (rc == AVL_OK) return;
        assert_true(avl_last_error()[0] != 0);
        assert_null(m);
    }
    fail_msg("avl_masks_read still failing after 100 allocations");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grey),
        cmocka_unit_test(test_read_and_tokens),
        cmocka_unit_test(test_png),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
