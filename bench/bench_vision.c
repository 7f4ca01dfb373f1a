/* bench/bench_vision.c: times the vision encoder at the real Qwen2.5-Omni vision sizes (hidden
 * 1280, 16 heads, FFN 3420, patch 14, window 112, out 3584) with random bf16 weights and fewer
 * blocks (the cost is linear in the depth; the figure for 32 blocks is extrapolated).
 *
 * Built by bench/CMakeLists.txt (every bench_*.c) where the tree has it; else by hand:
 *   cc -O2 -march=x86-64-v3 -fopenmp -Iinclude -Isrc bench/bench_vision.c build/libavlens.a \
 *      $(pkg-config --libs jansson libpcre2-8 libutf8proc fftw3f openblas libavformat libavcodec \
 *      libavutil libswscale libswresample) -ldnnl -lm -o build/bench_vision
 * Run: build/bench_vision [backend=auto] [depth=4] [t=2] [h=24] [w=24]
 * The weights go to $TMPDIR/avl_bench_vision (made once, reused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "avlens/config.h"
#include "avlens/safetensors.h"
#include "model/model_internal.h"

enum { D = 1280, NH = 16, FF = 3420, OUT = 3584, KP = 3 * 2 * 14 * 14 };

static uint32_t rng = 1;

static void add(avl_st_writer *w, const char *name, int ndim, int64_t r, int64_t c, float off, float sc)
{
    int64_t n = ndim == 1 ? r : r * c, shape[2] = {r, c};
    uint16_t *b = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) {
        rng = rng * 1664525u + 1013904223u;
        b[i] = avl_f32_to_bf16(off + sc * ((float)(rng >> 8) / (float)(1 << 24) - 0.5f));
    }
    if (avl_st_writer_add(w, name, AVL_DTYPE_BF16, ndim, shape, b)) {
        fprintf(stderr, "%s\n", avl_last_error());
        exit(1);
    }
    free(b);
}

static void make_weights(const char *path, int depth)
{
    avl_st_writer *w;
    avl_st_writer_new(&w);
    char n[128];
    int64_t pe[5] = {D, 3, 2, 14, 14};
    uint16_t *pw = calloc((size_t)D * KP, 2);
    for (int64_t i = 0; i < (int64_t)D * KP; i++) pw[i] = avl_f32_to_bf16(0.05f * (float)((i * 7919) % 13 - 6) / 6);
    avl_st_writer_add(w, "thinker.visual.patch_embed.proj.weight", AVL_DTYPE_BF16, 5, pe, pw);
    free(pw);
    for (int l = 0; l < depth; l++) {
#define A(s, nd, r, c, o, sc) snprintf(n, sizeof n, "thinker.visual.blocks.%d.%s", l, s), add(w, n, nd, r, c, o, sc)
        A("norm1.weight", 1, D, 0, 1.0f, 0.1f);
        A("norm2.weight", 1, D, 0, 1.0f, 0.1f);
        A("attn.q.weight", 2, D, D, 0, 0.05f);
        A("attn.k.weight", 2, D, D, 0, 0.05f);
        A("attn.v.weight", 2, D, D, 0, 0.05f);
        A("attn.q.bias", 1, D, 0, 0, 0.05f);
        A("attn.k.bias", 1, D, 0, 0, 0.05f);
        A("attn.v.bias", 1, D, 0, 0, 0.05f);
        A("attn.proj.weight", 2, D, D, 0, 0.05f);
        A("attn.proj.bias", 1, D, 0, 0, 0.05f);
        A("mlp.gate_proj.weight", 2, FF, D, 0, 0.05f);
        A("mlp.up_proj.weight", 2, FF, D, 0, 0.05f);
        A("mlp.down_proj.weight", 2, D, FF, 0, 0.03f);
        A("mlp.gate_proj.bias", 1, FF, 0, 0, 0.05f);
        A("mlp.up_proj.bias", 1, FF, 0, 0, 0.05f);
        A("mlp.down_proj.bias", 1, D, 0, 0, 0.05f);
#undef A
    }
    add(w, "thinker.visual.merger.ln_q.weight", 1, D, 0, 1.0f, 0.1f);
    add(w, "thinker.visual.merger.mlp.0.weight", 2, 4 * D, 4 * D, 0, 0.02f);
    add(w, "thinker.visual.merger.mlp.0.bias", 1, 4 * D, 0, 0, 0.02f);
    add(w, "thinker.visual.merger.mlp.2.weight", 2, OUT, 4 * D, 0, 0.02f);
    add(w, "thinker.visual.merger.mlp.2.bias", 1, OUT, 0, 0, 0.02f);
    if (avl_st_writer_save(w, path)) {
        fprintf(stderr, "%s\n", avl_last_error());
        exit(1);
    }
    avl_st_writer_free(w);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "auto";
    int depth = argc > 2 ? atoi(argv[2]) : 4;
    int64_t t = argc > 3 ? atoll(argv[3]) : 2, h = argc > 4 ? atoll(argv[4]) : 24, wd = argc > 5 ? atoll(argv[5]) : 24;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/avl_bench_vision_%d", tmp, depth);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat st;
    if (stat(path, &st) != 0) make_weights(path, depth);

    avl_model m;
    memset(&m, 0, sizeof m);
    avl_config_defaults(&m.cfg);
    snprintf(m.cfg.tensor_prefix, sizeof m.cfg.tensor_prefix, "thinker.");
    avl_vision_config *v = &m.cfg.vision;
    v->depth = depth;
    v->hidden_size = D;
    v->num_heads = NH;
    v->intermediate_size = FF;
    v->out_hidden_size = OUT;
    v->n_fullatt = 1;
    v->fullatt_block_indexes[0] = depth - 1; /* 1 in 8 blocks is full in the real model */
    if (avl_st_open_dir(dir, &m.st) || avl__gemm_backend_select(backend, &m.be) ||
        avl__vision_encoder_load(&m, &m.vision)) {
        fprintf(stderr, "%s\n", avl_last_error());
        return 1;
    }
    int64_t N = t * h * wd;
    float *px = malloc((size_t)(N * KP) * sizeof(float)), *out = malloc((size_t)(N / 4 * OUT) * sizeof(float));
    for (int64_t i = 0; i < N * KP; i++) px[i] = (float)((i * 31) % 17 - 8) / 8.0f;
    int64_t g[3] = {t, h, wd};
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        if (avl__vision_encoder_forward(&m, m.vision, px, g, out)) {
            fprintf(stderr, "%s\n", avl_last_error());
            return 1;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    /* GEMM flops: patch embed, per block 4 D^2 + 3 D F, merger 4D*4D + 4D*OUT per unit */
    double fl = 2.0 * (double)N * ((double)KP * D + depth * (4.0 * D * D + 3.0 * D * FF) + 4.0 * D * D + D * OUT);
    double blocks = best; /* extrapolation: the merger and embed are small next to the blocks */
    printf("backend %s (%s), %d thread(s), grid (%lld,%lld,%lld) = %lld patches, depth %d: %.3f s best of 3, "
           "%.1f GFLOP/s; 32 blocks ~ %.1f s\n",
           m.be->name, avl__gemm_backend_isa(m.be), avl__get_threads(), (long long)t, (long long)h, (long long)wd,
           (long long)N, depth, best, fl / best * 1e-9, blocks * 32.0 / depth);
    free(px);
    free(out);
    avl__vision_encoder_free(m.vision);
    avl_st_close(m.st);
    return 0;
}
