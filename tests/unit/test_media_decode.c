/* tests/unit/test_media_decode.c: decoding real files, synthesised at test time by the ffmpeg
 * command (testsrc2, sine): frame counts, timestamps, grids, sample counts, mel shapes, and a
 * clear error naming the file for every kind of bad input. */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

static char dir[4096];

static void sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[16384];
    snprintf(full, sizeof full, "cd '%s' && %s", dir, cmd);
    if (system(full) != 0) fail_msg("command failed: %s", cmd);
}

#define FF "ffmpeg -hide_banner -loglevel error -nostdin -y "

static const char *at(const char *name)
{
    static char buf[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", avl_test_dir("media_decode"));
    /* video 64x48 at 25 fps, 2 s, with a 44.1 kHz stereo AAC track */
    sh(FF "-f lavfi -i testsrc2=s=64x48:r=25:d=2 -f lavfi -i sine=f=440:r=44100:d=2 -ac 2 "
          "-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest av.mp4");
    sh(FF "-f lavfi -i testsrc2=s=64x48:r=7:d=3 -c:v mpeg4 noaudio.mp4");
    sh(FF "-f lavfi -i testsrc2=s=32x32:r=30000/1001:d=1 -c:v mpeg4 ntsc.mp4");
    /* variable frame rate: every third frame dropped after the first second */
    sh(FF "-f lavfi -i testsrc2=s=32x32:r=30:d=2 -vf \"select='lt(n\\,30)+not(mod(n\\,3))'\" "
          "-fps_mode vfr -c:v libx264 -preset ultrafast vfr.mp4");
    sh(FF "-f lavfi -i testsrc2=s=32x32:r=25:d=0.3 -c:v mpeg4 short.mp4");
    sh(FF "-f lavfi -i testsrc2=s=16x16:r=10:d=40 -f lavfi -i sine=f=300:r=16000:d=40 -c:v mpeg4 -c:a aac long.mp4");
    sh(FF "-f lavfi -i testsrc2=s=48x96:r=10:d=1 -c:v mpeg4 portrait.mp4");
    sh(FF "-f lavfi -i testsrc2=s=16x12:r=10:d=1 -c:v mpeg4 tiny.mp4");
    sh(FF "-f lavfi -i sine=f=440:r=48000:d=1.5 -ac 2 -c:a pcm_s16le s16_48k_stereo.wav");
    sh(FF "-f lavfi -i sine=f=440:r=22050:d=1 -c:a pcm_u8 u8.wav");
    sh(FF "-f lavfi -i sine=f=440:r=16000:d=1 -c:a pcm_s16le s16_16k.wav");
    sh(FF "-f lavfi -i sine=f=440:r=16000:d=1 -c:a flac -sample_fmt s16 a16.flac");
    sh(FF "-f lavfi -i sine=f=440:r=44100:d=1 -c:a flac -sample_fmt s32 -bits_per_raw_sample 24 a24.flac");
    sh(FF "-f lavfi -i testsrc2=s=100x80:r=2:d=2.5 f%%02d.jpg");
    sh(FF "-f lavfi -i testsrc2=s=64x48:r=1:d=1 -frames:v 1 img.png");
    return 0;
}

static void test_video_counts_and_times(void **state)
{
    (void)state;
    avl_frames *f;
    assert_int_equal(avl_video_read(at("av.mp4"), NULL, &f), AVL_OK);
    assert_int_equal(f->total_frames, 50);
    assert_true(fabs(f->avg_fps - 25.0) < 1e-9);
    assert_int_equal(f->count, 4); /* 2 s at 2 fps, but at least 4 */
    assert_int_equal(f->width, 64);
    assert_int_equal(f->height, 48);
    const int64_t want[4] = {0, 16, 33, 49}; /* round(linspace(0, 49, 4)) */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(f->index[i], want[i]);
        assert_true(fabs(f->time[i] - want[i] / 25.0) < 1e-6);
    }
    avl_frames_free(f);

    assert_int_equal(avl_video_read(at("noaudio.mp4"), NULL, &f), AVL_OK);
    assert_int_equal(f->total_frames, 21);
    assert_int_equal(f->count, 6);
    avl_frames_free(f);

    assert_int_equal(avl_video_read(at("ntsc.mp4"), NULL, &f), AVL_OK);
    assert_true(fabs(f->avg_fps - 30000.0 / 1001.0) < 1e-6);
    assert_int_equal(f->total_frames, 30);
    assert_int_equal(f->count, 4);
    avl_frames_free(f);

    assert_int_equal(avl_video_read(at("short.mp4"), NULL, &f), AVL_OK);
    assert_true(f->total_frames >= 7 && f->total_frames <= 8);
    assert_int_equal(f->count, 4);
    avl_frames_free(f);

    assert_int_equal(avl_video_read(at("long.mp4"), NULL, &f), AVL_OK);
    assert_int_equal(f->total_frames, 400);
    assert_int_equal(f->count, 80);
    assert_int_equal(f->index[79], 399);
    avl_frames_free(f);
}

static void test_vfr(void **state)
{
    (void)state;
    avl_frames *all;
    assert_int_equal(avl_video_read_all(at("vfr.mp4"), 1, &all), AVL_OK);
    /* 30 frames in the first second, then 10 */
    assert_int_equal(all->total_frames, 40);
    for (int64_t i = 1; i < all->count; i++) assert_true(all->time[i] > all->time[i - 1]);
    assert_true(fabs(all->time[35] - all->time[34] - 0.1) < 1e-3);
    assert_true(fabs(all->time[2] - all->time[1] - 1.0 / 30) < 1e-3);
    avl_frames *f;
    assert_int_equal(avl_video_read(at("vfr.mp4"), NULL, &f), AVL_OK);
    assert_int_equal(f->total_frames, 40);
    int64_t n;
    avl_video_params vp = avl_video_default_params();
    assert_int_equal(avl_video_nframes(40, f->avg_fps, &vp, &n), AVL_OK);
    assert_int_equal(f->count, n);
    /* the kept frames are the same pixels as in the full decode */
    for (int64_t i = 0; i < f->count; i++)
        assert_memory_equal(f->rgb + i * 32 * 32 * 3, all->rgb + f->index[i] * 32 * 32 * 3, 32 * 32 * 3);
    avl_frames_free(f);
    avl_frames_free(all);
}

/* Resizing while decoding equals decoding then resizing. */
static void test_resize_while_decoding(void **state)
{
    (void)state;
    avl_video_params p = avl_video_default_params();
    avl_frames *a, *b;
    assert_int_equal(avl_video_read(at("portrait.mp4"), &p, &a), AVL_OK);
    p.resize = true;
    assert_int_equal(avl_video_read(at("portrait.mp4"), &p, &b), AVL_OK);
    assert_int_equal(a->count, b->count);
    assert_int_equal(b->src_height, 96);
    assert_int_equal(b->src_width, 48);
    int64_t h, w;
    assert_int_equal(avl_smart_resize(96, 48, 28, (double)p.min_pixels, avl_video_max_pixels(&p, a->count), &h, &w), AVL_OK);
    assert_int_equal(b->height, h);
    assert_int_equal(b->width, w);
    uint8_t *r = malloc((size_t)(h * w * 3));
    for (int64_t i = 0; i < a->count; i++) {
        assert_int_equal(avl_resize_bicubic_aa(a->rgb + i * 96 * 48 * 3, 96, 48, 3, r, h, w), AVL_OK);
        assert_memory_equal(r, b->rgb + i * h * w * 3, (size_t)(h * w * 3));
    }
    free(r);
    avl_frames_free(a);
    avl_frames_free(b);
}

/* Our RGB equals the ffmpeg command's own bilinear swscale conversion. */
static void test_rgb_matches_ffmpeg(void **state)
{
    (void)state;
    sh(FF "-i av.mp4 -an -sws_flags bilinear -pix_fmt rgb24 -f rawvideo av.rgb");
    char *raw;
    size_t len;
    assert_int_equal(avl__read_file(at("av.rgb"), &raw, &len), AVL_OK);
    assert_int_equal(len, 50 * 64 * 48 * 3);
    avl_frames *f;
    assert_int_equal(avl_video_read_all(at("av.mp4"), 7, &f), AVL_OK);
    assert_int_equal(f->count, 8);
    int maxd = 0;
    for (int64_t i = 0; i < f->count; i++)
        for (int64_t j = 0; j < 64 * 48 * 3; j++) {
            int d = abs((int)f->rgb[i * 64 * 48 * 3 + j] - (int)(uint8_t)raw[f->index[i] * 64 * 48 * 3 + j]);
            if (d > maxd) maxd = d;
        }
    printf("rgb vs ffmpeg command: max difference %d\n", maxd);
    assert_true(maxd <= 1);
    avl_frames_free(f);
    avl__free(raw);
}

static void test_audio(void **state)
{
    (void)state;
    avl_audio *a;
    assert_int_equal(avl_audio_read(at("s16_48k_stereo.wav"), 16000, &a), AVL_OK);
    assert_int_equal(a->src_rate, 48000);
    assert_int_equal(a->src_channels, 2);
    assert_int_equal(a->n, 24000);
    /* lavfi sine has amplitude 1/8; ffmpeg's -ac 2 upmix puts it at 1/8/sqrt(2) in both channels,
       so their mean has that peak */
    double peak = 0;
    for (int64_t i = 8000; i < 16000; i++) peak = fmax(peak, fabs(a->pcm[i]));
    if (fabs(peak - 0.125 * M_SQRT1_2) >= 0.003) fail_msg("peak %g, wanted 0.0884", peak);
    avl_audio_free(a);

    assert_int_equal(avl_audio_read(at("u8.wav"), 16000, &a), AVL_OK);
    assert_int_equal(a->n, 16000);
    avl_audio_free(a);

    /* no resampling at 16 kHz: exactly int16 / 32768 */
    assert_int_equal(avl_audio_read(at("s16_16k.wav"), 16000, &a), AVL_OK);
    assert_int_equal(a->n, 16000);
    avl_audio *b;
    assert_int_equal(avl_audio_read(at("a16.flac"), 16000, &b), AVL_OK);
    assert_int_equal(b->n, 16000);
    assert_memory_equal(a->pcm, b->pcm, sizeof(float) * 16000);
    for (int64_t i = 0; i < 16000; i++) assert_true(a->pcm[i] * 32768.0f == nearbyintf(a->pcm[i] * 32768.0f));
    avl_audio_free(a);
    avl_audio_free(b);

    assert_int_equal(avl_audio_read(at("a24.flac"), 16000, &a), AVL_OK);
    assert_int_equal(a->n, 16000); /* ceil(44100 * 16000 / 44100) */
    avl_audio_free(a);

    /* the audio track of a video */
    assert_int_equal(avl_audio_read(at("av.mp4"), 16000, &a), AVL_OK);
    assert_true(a->n >= 31000 && a->n <= 33000);
    avl_audio_free(a);

    AVL_EXPECT_ERROR(avl_audio_read(at("noaudio.mp4"), 16000, &a), AVL_E_NOTFOUND, "noaudio.mp4", "no audio stream");
    AVL_EXPECT_ERROR(avl_video_read(at("u8.wav"), NULL, (avl_frames **)&a), AVL_E_NOTFOUND, "u8.wav", "no video stream");
}

static void test_features(void **state)
{
    (void)state;
    avl_features_params p = avl_features_default_params();
    p.use_audio_in_video = true;
    avl_features *f;
    assert_int_equal(avl_features_from_video(at("av.mp4"), NULL, &p, &f), AVL_OK);
    /* 64x48 is below min_pixels: beta = sqrt(100352/3072), ceil(48 beta/28) = 10, ceil(64 beta/28) = 14 */
    assert_int_equal(f->frame_h, 280);
    assert_int_equal(f->frame_w, 392);
    assert_int_equal(f->video_grid_thw[0], 2);
    assert_int_equal(f->video_grid_thw[1], 20);
    assert_int_equal(f->video_grid_thw[2], 28);
    assert_int_equal(f->n_patches, 2 * 20 * 28);
    assert_true(fabs(f->sample_fps - 2.0) < 1e-9);        /* 4 / 50 * 25 */
    assert_true(fabs(f->video_second_per_grid - 1.0) < 1e-9);
    assert_int_equal(f->n_mels, 128);
    assert_int_equal(f->n_mel_frames, 30000);
    assert_int_equal(f->n_valid_frames, (f->n_audio_samples + 159) / 160);
    avl_features_free(f);

    /* portrait and tiny frames; the authors' lower pixel cap */
    p = avl_features_default_params();
    assert_int_equal(avl_features_from_video(at("portrait.mp4"), NULL, &p, &f), AVL_OK);
    assert_true(f->frame_h > f->frame_w);
    assert_true(f->frame_h * f->frame_w >= 128 * 28 * 28);
    assert_null(f->input_features);
    avl_features_free(f);
    p.video.max_pixels = 128 * 28 * 28;
    assert_int_equal(avl_features_from_video(at("tiny.mp4"), at("s16_48k_stereo.wav"), &p, &f), AVL_OK);
    /* the upscaling branch of smart_resize does not re-check max_pixels (as in Python) */
    assert_int_equal(f->frame_h, 280);
    assert_int_equal(f->frame_w, 392);
    assert_int_equal(f->n_valid_frames, 150);
    assert_int_equal(f->feature_attention_mask[149], 1);
    assert_int_equal(f->feature_attention_mask[150], 0);
    avl_features_free(f);

    /* 29.97 fps, 30 frames: sample_fps = 4/30*29.97; the paper's infer.py tells the processor 2 */
    p = avl_features_default_params();
    assert_int_equal(avl_features_from_video(at("ntsc.mp4"), NULL, &p, &f), AVL_OK);
    assert_true(fabs(f->video_second_per_grid - 2.0 / (4.0 / 30.0 * 30000.0 / 1001.0)) < 1e-12);
    avl_features_free(f);
    p.processor_fps = 2.0;
    assert_int_equal(avl_features_from_video(at("ntsc.mp4"), NULL, &p, &f), AVL_OK);
    assert_true(f->video_second_per_grid == 1.0);
    avl_features_free(f);

    /* 40 s: 80 frames -> 40 temporal grids */
    assert_int_equal(avl_features_from_video(at("long.mp4"), NULL, &p, &f), AVL_OK);
    assert_int_equal(f->video_grid_thw[0], 40);
    avl_features_free(f);

    /* frame list: 5 JPGs padded to 6; 100x80 -> 112x84 */
    const char *frames[5] = {at("f01.jpg"), at("f02.jpg"), at("f03.jpg"), at("f04.jpg"), NULL};
    char f5[4200];
    snprintf(f5, sizeof f5, "%s/f05.jpg", dir);
    frames[4] = f5;
    p = avl_features_default_params();
    assert_int_equal(avl_features_from_frames(frames, 5, NULL, &p, &f), AVL_OK);
    assert_int_equal(f->n_frames, 6);
    assert_int_equal(f->video_grid_thw[0], 3);
    assert_int_equal(f->video_grid_thw[1], 6);
    assert_int_equal(f->video_grid_thw[2], 8);
    assert_true(fabs(f->video_second_per_grid - 1.0) < 1e-12);
    /* the padded frame repeats the last: the third grid's two frames are equal in every patch */
    for (int64_t k = 2 * 48; k < 3 * 48; k++)
        for (int c = 0; c < 3; c++)
            assert_memory_equal(f->pixel_values_videos + k * AVL_PATCH_DIM + c * 392,
                                f->pixel_values_videos + k * AVL_PATCH_DIM + c * 392 + 196, sizeof(float) * 196);
    avl_features_free(f);

    avl_frames *img;
    assert_int_equal(avl_image_read(at("img.png"), &img), AVL_OK);
    assert_int_equal(img->width, 64);
    assert_int_equal(img->height, 48);
    avl_frames_free(img);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    avl_frames *f;
    avl_features *ft;
    sh("head -c 3000 av.mp4 > truncated.mp4");
    sh("echo 'this is not a video' > text.mp4");
    sh(": > empty.mp4");
    AVL_EXPECT_ERROR(avl_video_read(at("truncated.mp4"), NULL, &f), AVL_E_MEDIA, "truncated.mp4");
    AVL_EXPECT_ERROR(avl_video_read(at("text.mp4"), NULL, &f), AVL_E_MEDIA, "text.mp4", "not a media file");
    AVL_EXPECT_ERROR(avl_video_read(at("empty.mp4"), NULL, &f), AVL_E_MEDIA, "empty.mp4", "empty");
    AVL_EXPECT_ERROR(avl_video_read(at("missing.mp4"), NULL, &f), AVL_E_IO, "missing.mp4", "No such file");
    AVL_EXPECT_ERROR(avl_audio_read(at("missing.wav"), 16000, (avl_audio **)&f), AVL_E_IO, "missing.wav");
    sh("head -c 2000 f01.jpg > cut.jpg");
    AVL_EXPECT_ERROR(avl_image_read(at("cut.jpg"), &f), AVL_E_MEDIA, "cut.jpg", "truncated");
    const char *frames[3] = {at("f01.jpg"), at("f99.jpg"), at("f02.jpg")};
    AVL_EXPECT_ERROR(avl_features_from_frames(frames, 3, NULL, NULL, &ft), AVL_E_IO, "frame 2", "f99.jpg");
    avl_features_params p = avl_features_default_params();
    p.use_audio_in_video = true;
    AVL_EXPECT_ERROR(avl_features_from_video(at("noaudio.mp4"), NULL, &p, &ft), AVL_E_NOTFOUND, "noaudio.mp4",
                     "no audio stream");
}

/* Every allocation failure yields AVL_E_NOMEM (or another clean status) and no leak (ASan). */
static void test_alloc_failures(void **state)
{
    (void)state;
    avl_features_params p = avl_features_default_params();
    p.mel.pad_to = 32000;
    int64_t k;
    for (k = 1; k < 400; k++) {
        avl_features *f = NULL;
        avl__alloc_fail_after(k);
        avl_status rc = avl_features_from_video(at("noaudio.mp4"), at("s16_48k_stereo.wav"), &p, &f);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            avl_features_free(f);
            break;
        }
        assert_int_equal(rc, AVL_E_NOMEM);
        assert_null(f);
    }
    assert_true(k > 10 && k < 400);
    /* the frame-list route, JPEG and PNG decoders included */
    const char *jpgs[3] = {at("f01.jpg"), at("f02.jpg"), at("f03.jpg")};
    for (k = 1; k < 400; k++) {
        avl_features *f = NULL;
        avl__alloc_fail_after(k);
        avl_status rc = avl_features_from_frames(jpgs, 3, NULL, &p, &f);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            avl_features_free(f);
            break;
        }
        assert_int_equal(rc, AVL_E_NOMEM);
        assert_null(f);
    }
    assert_true(k > 5 && k < 400);
    for (k = 1; k < 100; k++) {
        avl_frames *img = NULL;
        avl__alloc_fail_after(k);
        avl_status rc = avl_image_read(at("img.png"), &img);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            avl_frames_free(img);
            break;
        }
        assert_int_equal(rc, AVL_E_NOMEM);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_video_counts_and_times),
        cmocka_unit_test(test_vfr),
        cmocka_unit_test(test_rgb_matches_ffmpeg),
        cmocka_unit_test(test_resize_while_decoding),
        cmocka_unit_test(test_audio),
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
