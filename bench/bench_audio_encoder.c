/* bench/bench_audio_encoder.c: speed of the audio encoder at the Qwen2.5-Omni-7B tower's sizes
 * (128 mel bins, d_model 1280, 20 heads, ffn 5120, n_window 100, output 3584) on a checkpoint
 * with random weights written by mkmodel (only a few of the 32 layers, to keep the file small:
 * the per-layer time extrapolates linearly).
 *
 *   stem:   conv1 + conv2 of every chunk (2 GEMMs per chunk)
 *   layer:  one encoder layer over all rows (6 GEMMs + block attention)
 *   7B estimate = stem + 32 x layer (+ pooling and proj, negligible)
 *
 * usage: bench_audio_encoder [--frames N (3000 = 30 s)] [--layers L (2)] [--backend NAME (auto)]
 *                            [--threads T] [--dir DIR (/tmp/avl_bench_audio)]
 * Build: part of the normal build (bench/CMakeLists.txt); run build/bench/bench_audio_encoder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avlens/avlens.h"
#include "avlens/mkmodel.h"
#include "model/audio_encoder.h"
#include "model/model_internal.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct {
    double t0, *at; /* at[s]: time the last group reached stage s */
    double *acc;    /* acc[s]: time spent before stage s, summed over groups */
    double last;
} timing;

static void tick(void *user, int stage, int64_t row0, int64_t rows, int64_t dim, const float *x)
{
    timing *t = user;
    double n = now();
    t->acc[stage] += n - t->last;
    t->last = n;
}

int main(int argc, char **argv)
{
    int64_t frames = 3000, layers = 2;
    const char *backend = "auto", *dir = "/tmp/avl_bench_audio";
    int threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--frames")) frames = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--layers")) layers = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--backend")) backend = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else {
            fprintf(stderr, "bench_audio_encoder: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.thinker_only = true;
    p.hidden = 3584;
    p.heads = 28;
    p.kv_heads = 4;
    p.layers = 1;
    p.ffn = 256;
    p.audio_layers = layers;
    p.audio_d = 1280;
    p.audio_heads = 20;
    p.audio_ffn = 5120;
    p.mel_bins = 128;
    p.n_window = 100;
    if (avl_mkmodel_write(&p, dir)) {
        fprintf(stderr, "bench_audio_encoder: %s\n", avl_last_error());
        return 1;
    }
    avl_model_params mp = avl_model_default_params();
    mp.backend = backend;
    mp.threads = threads;
    avl_model *m;
    if (avl_model_load(dir, &mp, &m)) {
        fprintf(stderr, "bench_audio_encoder: %s\n", avl_last_error());
        return 1;
    }
    float *feat = malloc((size_t)(128 * frames) * sizeof(float));
    int64_t ntok = avl_audio_tokens_for_frames(frames);
    float *out = malloc((size_t)((ntok > 0 ? ntok : 1) * 3584) * sizeof(float));
    for (int64_t i = 0; i < 128 * frames; i++) feat[i] = (float)((i * 7919) % 2001) / 1000.0f - 1.0f;
    double best_total = 1e30, best_stem = 0, best_layer = 0;
    for (int rep = 0; rep < 2; rep++) {
        double acc[64] = {0};
        timing t = {.acc = acc};
        t.t0 = t.last = now();
        if (avl__audio_encoder_forward_observed(m, m->audio, feat, frames, frames, out, tick, &t)) {
            fprintf(stderr, "bench_audio_encoder: %s\n", avl_last_error());
            return 1;
        }
        double total = now() - t.t0, lay = 0;
        for (int64_t l = 1; l <= layers; l++) lay += acc[l];
        if (total < best_total) {
            best_total = total;
            best_stem = acc[0];
            best_layer = lay / (double)layers;
        }
    }
    printf("audio encoder, 7B sizes, %lld frames (%.1f s) -> %lld rows -> %lld tokens, backend %s\n",
           (long long)frames, frames / 100.0, (long long)((frames - 1) / 2 + 1), (long long)ntok, avl_model_backend(m));
    printf("  conv stem          %8.1f ms\n", best_stem * 1e3);
    double rows = (double)((frames - 1) / 2 + 1), D = 1280, F = 5120;
    printf("  one layer          %8.1f ms  (mean of %lld; %.1f GFLOP/s in its products)\n", best_layer * 1e3,
           (long long)layers, 2 * rows * (4 * D * D + 2 * D * F) / best_layer * 1e-9);
    printf("  whole pass (%lld L) %8.1f ms\n", (long long)layers, best_total * 1e3);
    printf("  32-layer estimate  %8.1f ms\n", (best_total + 32.0 * best_layer - (double)layers * best_layer) * 1e3);
    free(feat);
    free(out);
    avl_model_free(m);
    return 0;
}
