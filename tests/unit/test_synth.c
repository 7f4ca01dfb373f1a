/* tests/unit/test_synth.c: synthetic clips written by avl_clip_write and read back with the media
 * front end: frame count and size, the shape's colour inside its box and the background outside,
 * the audio sample count, the tone's frequency by a DFT bin, the noise bursts' on/off pattern,
 * bit-exact rewrites, and the parameter and file errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avl_test.h"

/* Mean colour of the box (shrunk by m pixels) of frame k. */
static void box_mean(const avl_frames *f, int64_t k, const int64_t b[4], int64_t m, double out[3])
{
    double s[3] = {0, 0, 0};
    int64_t cnt = 0;
    for (int64_t y = b[1] + m; y < b[3] - m; y++)
        for (int64_t x = b[0] + m; x < b[2] - m; x++, cnt++)
            for (int c = 0; c < 3; c++) s[c] += f->rgb[((k * f->height + y) * f->width + x) * 3 + c];
    for (int c = 0; c < 3; c++) out[c] = s[c] / (double)cnt;
}

/* |DFT| of pcm at frequency hz (rate 16000), normalised by n. */
static double dft_mag(const float *pcm, int64_t n, double hz)
{
    double re = 0, im = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = 2.0 * M_PI * hz * (double)i / 16000.0;
        re += pcm[i] * cos(a);
        im -= pcm[i] * sin(a);
    }
    return sqrt(re * re + im * im) / (double)n;
}

static void check_video(const char *path, const avl_clip_params *p)
{
    avl_frames *f;
    if (avl_video_read_all(path, 1, &f)) fail_msg("%s", avl_last_error());
    assert_int_equal(f->count, avl_clip_frames(p));
    assert_int_equal(f->width, p->width);
    assert_int_equal(f->height, p->height);
    assert_true(fabs(f->avg_fps - p->fps) < 1e-6);
    for (int64_t k = 0; k < f->count; k += 3) {
        int64_t b[4];
        avl_clip_box(p, k, b);
        double in[3];
        box_mean(f, k, b, 4, in);
        for (int c = 0; c < 3; c++)
            if (fabs(in[c] - p->color[c]) > 12) fail_msg("%s frame %lld channel %d: %g, drew %d", path, (long long)k, c, in[c], p->color[c]);
        /* a corner far from the shape is background */
        int64_t corner[4] = {0, 0, 8, 8};
        if (b[1] < 12) corner[1] = p->height - 8, corner[3] = p->height;
        double bg[3];
        box_mean(f, k, corner, 0, bg);
        for (int c = 0; c < 3; c++) assert_true(fabs(bg[c] - p->background[c]) < 8);
    }
    /* the shape moves */
    int64_t b0[4], b1[4];
    avl_clip_box(p, 0, b0);
    avl_clip_box(p, f->count - 1, b1);
    assert_true(llabs(b1[0] - b0[0]) > p->width / 2);
    avl_frames_free(f);
}

static avl_audio *read_audio(const char *path)
{
    avl_audio *a;
    if (avl_audio_read(path, 16000, &a)) fail_msg("%s", avl_last_error());
    return a;
}

static void test_mp4_tone(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/red.mp4", avl_test_dir("synth_mp4"));
    avl_clip_params p = avl_clip_default_params();
    p.tone_hz = 1000;
    assert_int_equal(avl_clip_write(path, &p), AVL_OK);
    check_video(path, &p);
    avl_audio *a = read_audio(path);
    assert_int_equal(a->src_rate, 16000);
    /* AAC works in 1024-sample blocks; the mp4 edit list trims the encoder delay */
    assert_true(llabs(a->n - avl_clip_samples(&p)) <= 1024);
    double at = dft_mag(a->pcm, a->n, 1000), off = dft_mag(a->pcm, a->n, 700), off2 = dft_mag(a->pcm, a->n, 1300);
    assert_true(at > 0.2);          /* a 0.5 sine gives 0.25 */
    assert_true(at > 50 * off && at > 50 * off2);
    avl_audio_free(a);
}

static void test_mkv_noise_circle(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/green.mkv", avl_test_dir("synth_mkv"));
    avl_clip_params p = avl_clip_default_params();
    p.shape = AVL_CLIP_CIRCLE;
    assert_int_equal(avl_clip_color("green", p.color), AVL_OK);
    p.sound = AVL_CLIP_NOISE;
    p.width = 160;
    p.height = 120;
    p.fps = 4;
    p.seconds = 3;
    p.seed = 5;
    assert_int_equal(avl_clip_write(path, &p), AVL_OK);
    check_video(path, &p);
    /* the circle leaves the box's corners as background */
    avl_frames *f;
    assert_int_equal(avl_video_read_all(path, 1, &f), AVL_OK);
    int64_t b[4];
    avl_clip_box(&p, 0, b);
    int64_t corner[4] = {b[0], b[1], b[0] + 3, b[1] + 3};
    double c[3];
    box_mean(f, 0, corner, 0, c);
    assert_true(c[1] < 80);
    avl_frames_free(f);
    /* PCM: the exact sample count; bursts on for 0.25 s, off for the next 0.25 s */
    avl_audio *a = read_audio(path);
    assert_int_equal(a->n, avl_clip_samples(&p));
    for (int burst = 0; burst < 6; burst++) {
        double on = 0, offe = 0;
        for (int64_t i = 400; i < 3600; i++) {
            on += a->pcm[burst * 8000 + i] * a->pcm[burst * 8000 + i];
            offe += a->pcm[burst * 8000 + 4000 + i] * a->pcm[burst * 8000 + 4000 + i];
        }
        assert_true(on / 3200 > 0.05);  /* uniform in +-0.5: 1/12 */
        assert_true(offe / 3200 < 1e-6);
    }
    avl_audio_free(a);
}

static void test_wav_and_silent(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("synth_wav");
    char wav[4096], silent[4096], quiet[4096];
    snprintf(wav, sizeof wav, "%s/a.wav", dir);
    snprintf(silent, sizeof silent, "%s/noaudio.mp4", dir);
    snprintf(quiet, sizeof quiet, "%s/silence.mkv", dir);
    avl_clip_params p = avl_clip_default_params();
    p.tone_hz = 250;
    p.seconds = 1.5;
    assert_int_equal(avl_clip_write(wav, &p), AVL_OK);
    avl_frames *f = (avl_frames *)1;
    AVL_EXPECT_ERROR(avl_video_read(wav, NULL, &f), AVL_E_NOTFOUND, "a.wav");
    avl_audio *a = read_audio(wav);
    assert_int_equal(a->n, 24000);
    assert_true(dft_mag(a->pcm, a->n, 250) > 0.2);
    avl_audio_free(a);

    p.sound = AVL_CLIP_NO_AUDIO;
    assert_int_equal(avl_clip_write(silent, &p), AVL_OK);
    AVL_EXPECT_ERROR(avl_audio_read(silent, 16000, &a), AVL_E_NOTFOUND, "noaudio.mp4");
    p.sound = AVL_CLIP_SILENCE;
    assert_int_equal(avl_clip_write(quiet, &p), AVL_OK);
    a = read_audio(quiet);
    for (int64_t i = 0; i < a->n; i++) assert_true(a->pcm[i] == 0.0f);
    avl_audio_free(a);
}

static void test_bit_exact(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("synth_exact");
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/a.mp4", dir);
    snprintf(b, sizeof b, "%s/b.mp4", dir);
    avl_clip_params p = avl_clip_default_params();
    p.seconds = 1;
    assert_int_equal(avl_clip_write(a, &p), AVL_OK);
    assert_int_equal(avl_clip_write(b, &p), AVL_OK);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    for (int ca, cb;;) {
        ca = fgetc(fa);
        cb = fgetc(fb);
        assert_int_equal(ca, cb);
        if (ca == EOF) break;
    }
    fclose(fa);
    fclose(fb);
}

static void test_errors(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("synth_errors");
    char path[4096];
    snprintf(path, sizeof path, "%s/x.mp4", dir);
    avl_clip_params p = avl_clip_default_params();
    p.width = 101;
    AVL_EXPECT_ERROR(avl_clip_write(path, &p), AVL_E_ARG, "x.mp4", "101x160", "even");
    p = avl_clip_default_params();
    p.seconds = 0;
    AVL_EXPECT_ERROR(avl_clip_write(path, &p), AVL_E_ARG, "x.mp4", "seconds");
    p = avl_clip_default_params();
    p.tone_hz = 9000;
    AVL_EXPECT_ERROR(avl_clip_write(path, &p), AVL_E_ARG, "9000 Hz");
    p = avl_clip_default_params();
    snprintf(path, sizeof path, "%s/x.notacontainer", dir);
    AVL_EXPECT_ERROR(avl_clip_write(path, &p), AVL_E_MEDIA, "x.notacontainer");
    snprintf(path, sizeof path, "%s/x.webm", dir);
    AVL_EXPECT_ERROR(avl_clip_write(path, &p), AVL_E_UNSUPPORTED, "x.webm", "webm container");
    snprintf(path, sizeof path, "%s/missing/x.mp4", dir);
    AVL_EXPECT_ERROR(avl_clip_write(path, &p), AVL_E_IO, "missing/x.mp4");
    uint8_t rgb[3];
    AVL_EXPECT_ERROR(avl_clip_color("mauve", rgb), AVL_E_ARG, "mauve", "red");
    assert_int_equal(avl_clip_color("Blue", rgb), AVL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mp4_tone),  cmocka_unit_test(test_mkv_noise_circle), cmocka_unit_test(test_wav_and_silent),
        cmocka_unit_test(test_bit_exact), cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
