/* tests/golden/test_media_golden.c: the front end's numbers against tools/ref/media_ref.py.
 *
 * Tolerances (measured figures in docs/media.md):
 *   log-mel      max abs 2e-4 on (x+4)/4 values, fp32 FFT vs the float64 reference; the
 *                reference's own torch fp32 path differs from float64 by up to 7.6e-5 (sweep).
 *   resize       torchvision antialiased bicubic: at most 1 uint8 level on at most 0.1% of
 *                values (expected exact); PIL bicubic: exact.
 *   patches      max abs 1e-6 (same float32 operations as the reference).
 */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

static void *load(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/media/%s", AVL_TEST_DATA, name);
    char *buf;
    if (avl__read_file(path, &buf, len) != AVL_OK) fail_msg("%s", avl_last_error());
    return buf;
}

static void check_mel(const char *name)
{
    char fn[128];
    size_t n_in, n_ref;
    snprintf(fn, sizeof fn, "mel_%s.s16", name);
    int16_t *s16 = load(fn, &n_in);
    snprintf(fn, sizeof fn, "mel_%s.f32", name);
    float *ref = load(fn, &n_ref);
    int64_t n = (int64_t)(n_in / 2);
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)s16[i] / 32768.0f;
    avl_mel_params p = avl_mel_default_params();
    p.pad_to = 19200;
    float *mel;
    int32_t *mask;
    int64_t frames;
    assert_int_equal(avl_log_mel(x, n, &p, &mel, &mask, &frames), AVL_OK);
    assert_int_equal(frames, 120);
    assert_int_equal(n_ref, sizeof(float) * 128 * 120);
    double err = 0;
    for (int64_t i = 0; i < 128 * frames; i++) err = fmax(err, fabs((double)mel[i] - (double)ref[i]));
    int64_t ones = 0;
    for (int64_t f = 0; f < frames; f++) ones += mask[f];
    assert_int_equal(ones, 80); /* 12800 samples / 160 */
    assert_int_equal(mask[79], 1);
    assert_int_equal(mask[80], 0);
    printf("log-mel %-8s max abs error %.3g\n", name, err);
    assert_true(err < 2e-4);
    avl_media_buf_free(mel);
    avl_media_buf_free(mask);
    free(x);
    avl__free(s16);
    avl__free(ref);
}

static void test_mel_sweep(void **state) { (void)state; check_mel("sweep"); }
static void test_mel_noise(void **state) { (void)state; check_mel("noise"); }
static void test_mel_silence(void **state) { (void)state; check_mel("silence"); }
static void test_mel_square(void **state) { (void)state; check_mel("square"); }

/* the shortcut for frames wholly in the padding equals transforming them */
static void test_mel_padding_shortcut(void **state)
{
    (void)state;
    size_t n_in;
    int16_t *s16 = load("mel_sweep.s16", &n_in);
    int64_t n = (int64_t)(n_in / 2);
    float *x = calloc((size_t)48000, sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = (float)s16[i] / 32768.0f;
    avl_mel_params p = avl_mel_default_params();
    p.pad_to = 48000;
    float *a, *b;
    int64_t fa, fb;
    assert_int_equal(avl_log_mel(x, n, &p, &a, NULL, &fa), AVL_OK);          /* padded by the library */
    assert_int_equal(avl_log_mel(x, 48000, &p, &b, NULL, &fb), AVL_OK);      /* zeros given explicitly */
    assert_int_equal(fa, 300);
    assert_int_equal(fb, 300);
    assert_memory_equal(a, b, sizeof(float) * 128 * 300);
    avl_media_buf_free(a);
    avl_media_buf_free(b);
    /* the processor's default: 300 s -> 30000 frames, mask counts ceil(n/160) */
    int32_t *mask;
    p = avl_mel_default_params();
    assert_int_equal(avl_log_mel(x, 12801, &p, &a, &mask, &fa), AVL_OK);
    assert_int_equal(fa, 30000);
    int64_t ones = 0;
    for (int64_t f = 0; f < fa; f++) ones += mask[f];
    assert_int_equal(ones, 81);
    avl_media_buf_free(a);
    avl_media_buf_free(mask);
    free(x);
    avl__free(s16);
}

static uint8_t *pattern(int64_t h, int64_t w, int seed)
{
    uint8_t *p = malloc((size_t)(h * w * 3));
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                p[(y * w + x) * 3 + c] =
                    (uint8_t)((x * 7 + y * 13 + c * 50 + (x * y) % 31 + ((x / 5 + y / 3) % 2) * 60 + seed * 17) % 256);
    return p;
}

static const int64_t cases[][4] = {{97, 131, 56, 84}, {160, 90, 112, 56}, {10, 7, 28, 28},
                                   {240, 427, 112, 196}, {56, 84, 56, 84}, {33, 300, 28, 252}};

static void check_resize(const char *file, bool torch)
{
    size_t len;
    uint8_t *ref = load(file, &len);
    size_t off = 0, total = 0, diff = 0;
    int maxd = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t h = cases[k][0], w = cases[k][1], oh = cases[k][2], ow = cases[k][3];
        uint8_t *src = pattern(h, w, 0), *dst = malloc((size_t)(oh * ow * 3));
        avl_status rc = torch ? avl_resize_bicubic_aa(src, h, w, 3, dst, oh, ow)
                              : avl_resize_bicubic_pil(src, h, w, 3, dst, oh, ow);
        assert_int_equal(rc, AVL_OK);
        assert_true(off + (size_t)(oh * ow * 3) <= len);
        for (int64_t i = 0; i < oh * ow * 3; i++) {
            int d = abs((int)dst[i] - (int)ref[off + (size_t)i]);
            if (d) diff++;
            if (d > maxd) maxd = d;
        }
        off += (size_t)(oh * ow * 3);
        total += (size_t)(oh * ow * 3);
        free(src);
        free(dst);
    }
    assert_int_equal(off, len);
    printf("%s: %zu of %zu values differ, max difference %d\n", file, diff, total, maxd);
    if (torch) {
        assert_true(maxd <= 1);
        assert_true(diff * 1000 <= total);
    } else {
        assert_int_equal(maxd, 0);
    }
    avl__free(ref);
}

static void test_resize_torch(void **state) { (void)state; check_resize("resize_torch.u8", true); }
static void test_resize_pil(void **state) { (void)state; check_resize("resize_pil.u8", false); }

static void test_patches(void **state)
{
    (void)state;
    size_t len;
    float *ref = load("patches.f32", &len);
    const int64_t T = 4, H = 56, W = 28;
    uint8_t *rgb = malloc((size_t)(T * H * W * 3));
    for (int t = 0; t < T; t++) {
        uint8_t *p = pattern(H, W, t);
        memcpy(rgb + t * H * W * 3, p, (size_t)(H * W * 3));
        free(p);
    }
    int64_t grid[3];
    float *out = malloc(sizeof(float) * 16 * AVL_PATCH_DIM);
    assert_int_equal(avl_patchify(rgb, T, H, W, AVL_NORM_SLOW, out, grid), AVL_OK);
    assert_int_equal(grid[0], 2);
    assert_int_equal(grid[1], 4);
    assert_int_equal(grid[2], 2);
    assert_int_equal(len, sizeof(float) * 16 * AVL_PATCH_DIM);
    double err = 0;
    for (int64_t i = 0; i < 16 * AVL_PATCH_DIM; i++) err = fmax(err, fabs((double)out[i] - (double)ref[i]));
    printf("patches max abs error %.3g\n", err);
    assert_true(err <= 1e-6);
    /* the fast processor's fused normalisation */
    size_t len2;
    float *ref2 = load("patches_fast.f32", &len2);
    assert_int_equal(len2, len);
    assert_int_equal(avl_patchify(rgb, T, H, W, AVL_NORM_FAST, out, grid), AVL_OK);
    double err2 = 0, gap = 0;
    for (int64_t i = 0; i < 16 * AVL_PATCH_DIM; i++) {
        err2 = fmax(err2, fabs((double)out[i] - (double)ref2[i]));
        gap = fmax(gap, fabs((double)ref[i] - (double)ref2[i]));
    }
    printf("patches (fast) max abs error %.3g; slow vs fast processors differ by %.3g\n", err2, gap);
    assert_true(err2 <= 1e-6);
    avl__free(ref2);
    AVL_EXPECT_ERROR(avl_patchify(rgb, 3, H, W, AVL_NORM_SLOW, out, grid), AVL_E_ARG, "even");
    AVL_EXPECT_ERROR(avl_patchify(rgb, 2, 50, W, AVL_NORM_SLOW, out, grid), AVL_E_ARG, "28");
    free(out);
    free(rgb);
    avl__free(ref);
}

/* The paper's route: a frame list of JPGs (and a PNG with alpha), decoded as PIL decodes them,
 * resized as fetch_image, padded to even, patchified: exactly the reference. */
static void test_frame_list_route(void **state)
{
    (void)state;
    static const char *names[3] = {"list_a.jpg", "list_b.jpg", "list_c.png"};
    char paths[3][1024];
    const char *list[3];
    size_t len;
    uint8_t *rgb = load("list_rgb.u8", &len);
    assert_int_equal(len, 3 * 50 * 70 * 3);
    for (int i = 0; i < 3; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/media/%s", AVL_TEST_DATA, names[i]);
        list[i] = paths[i];
        avl_frames *f;
        assert_int_equal(avl_image_read(paths[i], &f), AVL_OK);
        assert_int_equal(f->height, 50);
        assert_int_equal(f->width, 70);
        int maxd = 0;
        for (int64_t j = 0; j < 50 * 70 * 3; j++) {
            int d = abs((int)f->rgb[j] - (int)rgb[i * 50 * 70 * 3 + j]);
            if (d > maxd) maxd = d;
        }
        printf("%s: decoded vs PIL max difference %d\n", names[i], maxd);
        assert_int_equal(maxd, 0);
        avl_frames_free(f);
    }
    avl__free(rgb);
    float *ref = load("list_patches.f32", &len);
    avl_features *ft;
    assert_int_equal(avl_features_from_frames(list, 3, NULL, NULL, &ft), AVL_OK);
    assert_int_equal(ft->n_frames, 4);
    assert_int_equal(ft->n_patches, 32);
    assert_int_equal(len, sizeof(float) * 32 * AVL_PATCH_DIM);
    double err = 0;
    for (int64_t i = 0; i < 32 * AVL_PATCH_DIM; i++)
        err = fmax(err, fabs((double)ft->pixel_values_videos[i] - (double)ref[i]));
    printf("frame-list route: pixel_values_videos max abs error %.3g\n", err);
    assert_true(err <= 1e-6);
    avl_features_free(ft);
    avl__free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mel_sweep),    cmocka_unit_test(test_mel_noise),
        cmocka_unit_test(test_mel_silence),  cmocka_unit_test(test_mel_square),
        cmocka_unit_test(test_mel_padding_shortcut), cmocka_unit_test(test_resize_torch),
        cmocka_unit_test(test_resize_pil),   cmocka_unit_test(test_patches),
        cmocka_unit_test(test_frame_list_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
