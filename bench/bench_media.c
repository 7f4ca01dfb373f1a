/* bench/bench_media.c: decode + features for a 10-second 720p clip.
 *
 * Build and run from the worktree after building the library (see bench/README.md):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/bench_media.c build/libavlens.a \
 *      $(pkg-config --libs libavformat libavcodec libavutil libswscale libswresample fftw3f) -lm -lpthread \
 *      -o build/bench_media && build/bench_media build
 * The clip (1280x720, 30 fps, libx264, 48 kHz stereo AAC) is synthesised by the ffmpeg command into
 * the given folder on first use. Prints the seconds of each stage (best of 3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "avlens/media.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void check(avl_status rc)
{
    if (rc) {
        fprintf(stderr, "bench_media: %s\n", avl_last_error());
        exit(1);
    }
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char clip[4096], cmd[8192];
    snprintf(clip, sizeof clip, "%s/bench_720p_10s.mp4", dir);
    struct stat st;
    if (stat(clip, &st) != 0) {
        snprintf(cmd, sizeof cmd,
                 "ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i testsrc2=s=1280x720:r=30:d=10 "
                 "-f lavfi -i sine=f=440:r=48000:d=10 -ac 2 -c:v libx264 -preset veryfast -pix_fmt yuv420p "
                 "-c:a aac '%s'", clip);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench_media: could not synthesise %s\n", clip);
            return 1;
        }
    }
    double best[5] = {1e30, 1e30, 1e30, 1e30, 1e30};
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        avl_frames *f;
        check(avl_video_read(clip, NULL, &f));
        double t1 = now();
        avl_audio *a;
        check(avl_audio_read(clip, 16000, &a));
        double t2 = now();
        avl_mel_params mp = avl_mel_default_params();
        float *mel;
        int32_t *mask;
        int64_t frames;
        check(avl_log_mel(a->pcm, a->n, &mp, &mel, &mask, &frames));
        double t3 = now();
        avl_features_params p = avl_features_default_params();
        p.use_audio_in_video = true;
        avl_features *ft;
        check(avl_features_from_video(clip, NULL, &p, &ft));
        double t4 = now();
        /* resize + patchify alone, on the frames of the first stage */
        int64_t rh, rw;
        check(avl_smart_resize(f->height, f->width, 28, 128 * 28 * 28, avl_video_max_pixels(&p.video, f->count), &rh, &rw));
        uint8_t *rs = malloc((size_t)(f->count * rh * rw * 3));
        float *pv = malloc(sizeof(float) * (size_t)(f->count * rh * rw * 3));
        double t5 = now();
        for (int64_t i = 0; i < f->count; i++)
            check(avl_resize_bicubic_aa(f->rgb + i * f->height * f->width * 3, f->height, f->width, 3,
                                        rs + i * rh * rw * 3, rh, rw));
        int64_t grid[3];
        check(avl_patchify(rs, f->count, rh, rw, AVL_NORM_SLOW, pv, grid));
        double t6 = now();
        free(rs);
        free(pv);
        double d[5] = {t1 - t0, t2 - t1, t3 - t2, t6 - t5, t4 - t3};
        for (int i = 0; i < 5; i++)
            if (d[i] < best[i]) best[i] = d[i];
        if (rep == 0)
            printf("clip: %lld frames at %.3g fps, %lld sampled; %lld audio samples at 16 kHz; grid %lldx%lldx%lld\n",
                   (long long)f->total_frames, f->avg_fps, (long long)f->count, (long long)a->n,
                   (long long)ft->video_grid_thw[0], (long long)ft->video_grid_thw[1], (long long)ft->video_grid_thw[2]);
        avl_frames_free(f);
        avl_audio_free(a);
        avl_media_buf_free(mel);
        avl_media_buf_free(mask);
        avl_features_free(ft);
    }
    printf("video decode + sampling   %.3f s\n", best[0]);
    printf("audio decode + resample   %.3f s\n", best[1]);
    printf("log-mel (300 s padded)    %.3f s\n", best[2]);
    printf("resize + patchify         %.3f s\n", best[3]);
    printf("features total            %.3f s\n", best[4]);
    return 0;
}
