/* bench/bench_skinny.c: every decode-step product of the Qwen2.5-Omni 7B and 3B thinkers
 * (q, k, v, o, gate, up, down, lm_head; bf16 weights in HF layout) through the skinny kernel at
 * M = 1..4 rows, against the memory-bandwidth bound measured in the same run.
 *
 * The bound of a product is its weight bytes / read bandwidth. The bandwidth is the best of two
 * OpenMP read-and-sum loops over 512 MiB (64-bit scalar sums as bench_gemm's, and AVX2 sums over four streams per thread),
 * sampled before every product and again at the end; the summary ratios use the best sample of
 * the run (the most demanding bound). On a shared machine the same figures are also given by
 * CPU time (process CPU seconds / threads, for the kernel and for the read loop alike), which
 * other jobs time-slicing the cores disturb much less than wall time. A decode step
 * reads each weight once and nothing stays in cache between two uses of a layer, so every
 * product is timed on cold weights: small matrices are replicated into >= 256 MiB of copies
 * and each timed call reads the next copy. Time per call = best of R passes over the copies.
 *
 * "step (products)" adds up one layer's seven products times the layer count plus lm_head, at
 * M = 1 and at M = 2, and compares that with the bytes of all of them over the bandwidth.
 *
 * --step DIR (with --model 7b or 3b): the whole decode step instead, through avl_run_forward on a
 * made checkpoint (written into DIR once) with the real per-layer sizes, --layers L (2) decoder
 * layers and the full vocabulary, at M = 1 and 2 new positions; bound = all weight bytes of the
 * step / read bandwidth.
 *
 *   bench_skinny [--model 7b|3b|both] [--reps R (5)] [--threads N] [--mmax M (4)] [--only NAME]
 *   bench_skinny --model 7b|3b --step DIR [--layers L] [--reps R]
 *   OMP_WAIT_POLICY=passive recommended on shared machines.
 * Build: part of the normal build (bench/CMakeLists.txt); run build/bench/bench_skinny.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <immintrin.h>

#include "avlens/avlens.h"
#include "kernels/gemm.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t g_rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static double cpu_now(void) /* CPU seconds of the whole process (all threads) */
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/* Read every byte of a 512 MiB buffer, two ways: 64-bit scalar sums (8 per 64-byte line, as
 * bench_gemm) and 256-bit AVX2 sums. */
static uint64_t *g_bwbuf;
static const size_t g_bwn = (512u << 20) / 8;
static uint64_t read_scalar(void)
{
    uint64_t total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (size_t i = 0; i < g_bwn; i += 8) {
        uint64_t s = 0;
        for (int j = 0; j < 8; j++) s += g_bwbuf[i + j];
        total += s;
    }
    return total;
}

/* Four streams at once: the four quarters of lines [l0, l0 + 4q) in lock step, as the kernel
 * reads four rows of W at M = 1 (one stream per core does not draw the most the memory
 * gives). No OpenMP inside: clang outlines parallel regions without the target attribute. */
__attribute__((target("avx2"))) static uint64_t read4_avx2(const uint64_t *base, size_t q)
{
    const __m256i *p[4];
    for (int j = 0; j < 4; j++) p[j] = (const __m256i *)(const void *)(base + q * 8 * (size_t)j);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < 2 * q; i += 2) {
        s0 = _mm256_add_epi64(s0, _mm256_add_epi64(_mm256_load_si256(p[0] + i), _mm256_load_si256(p[0] + i + 1)));
        s1 = _mm256_add_epi64(s1, _mm256_add_epi64(_mm256_load_si256(p[1] + i), _mm256_load_si256(p[1] + i + 1)));
        s2 = _mm256_add_epi64(s2, _mm256_add_epi64(_mm256_load_si256(p[2] + i), _mm256_load_si256(p[2] + i + 1)));
        s3 = _mm256_add_epi64(s3, _mm256_add_epi64(_mm256_load_si256(p[3] + i), _mm256_load_si256(p[3] + i + 1)));
    }
    uint64_t v[4];
    _mm256_storeu_si256((__m256i *)(void *)v, _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3)));
    return v[0] + v[1] + v[2] + v[3];
}

/* Each thread reads its share of the buffer with read4_avx2. */
static uint64_t read_avx2(void)
{
    uint64_t total = 0;
#pragma omp parallel reduction(+ : total)
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        size_t lines = g_bwn / 8, per = lines / (size_t)nt, q = per / 4;
        total += read4_avx2(g_bwbuf + per * (size_t)id * 8, q);
    }
    return total;
}

/* Best of reps of both loops: GB/s (1e9 bytes / s) by wall time, and by CPU time per thread
 * (*cpu_bw; what the loop reads while it runs, which other jobs on the cores disturb less). */
static uint64_t g_sink;
static double stream_read(int reps, double *cpu_bw, double bw_loop[2])
{
    double best = 0, bestc = 0;
    int nt = avl_get_threads();
    for (int r = 0; r < reps; r++)
        for (int l = 0; l < 2; l++) {
            double t0 = now(), c0 = cpu_now();
            g_sink += l ? read_avx2() : read_scalar();
            double dt = now() - t0, dc = (cpu_now() - c0) / nt;
            double bw = (double)g_bwn * 8 / dt / 1e9;
            if (bw_loop) bw_loop[l] = fmax(bw_loop[l], bw);
            best = fmax(best, bw);
            bestc = fmax(bestc, (double)g_bwn * 8 / dc / 1e9);
        }
    if (cpu_bw) *cpu_bw = fmax(*cpu_bw, bestc);
    return best;
}

typedef struct {
    const char *name;
    int64_t n, k;
} shape;

typedef struct {
    const char *model;
    int64_t layers;
    shape s[8]; /* q k v o gate up down lm_head */
} model_shape;

static const model_shape g_models[] = {
    {"7b", 28, {{"q", 3584, 3584}, {"k", 512, 3584}, {"v", 512, 3584}, {"o", 3584, 3584},
                {"gate", 18944, 3584}, {"up", 18944, 3584}, {"down", 3584, 18944},
                {"lm_head", 152064, 3584}}},
    {"3b", 36, {{"q", 2048, 2048}, {"k", 256, 2048}, {"v", 256, 2048}, {"o", 2048, 2048},
                {"gate", 11008, 2048}, {"up", 11008, 2048}, {"down", 2048, 11008},
                {"lm_head", 151936, 2048}}},
};

enum { MMAX = 8 };

/* --step: the whole decode step through the model (avl_run_forward), at M = 1 and M = 2 new
 * positions after an 8-position prefix (the cache is truncated back to it after each step),
 * on a made checkpoint at the real per-layer sizes with `layers` decoder layers and the full
 * vocabulary (written once into dir). Bytes per step: every layer's weights and biases, and
 * lm_head; the bound uses the run's best read bandwidth (wall), and the CPU-time ratio the
 * CPU-time bandwidth. */
static int step_mode(const model_shape *ms, int64_t layers, const char *dir, int reps, double *bw_best, double *bw_cpu)
{
    const shape *q = &ms->s[0], *k = &ms->s[1], *g = &ms->s[4], *lm = &ms->s[7];
    int64_t H = q->k;
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *f = fopen(cfg, "r");
    if (f) fclose(f);
    else {
        avl_mkmodel_params p = avl_mkmodel_default_params();
        p.hidden = H;
        p.layers = layers;
        p.heads = q->n / 128;
        p.kv_heads = k->n / 128;
        p.ffn = g->n;
        p.vocab = lm->n;
        p.thinker_only = true;
        printf("# writing %s (%lld layers, vocabulary %lld) ...\n", dir, (long long)layers, (long long)lm->n);
        fflush(stdout);
        if (avl_mkmodel_write(&p, dir)) {
            fprintf(stderr, "bench_skinny: %s\n", avl_last_error());
            return 1;
        }
    }
    avl_model_params mp = avl_model_default_params();
    avl_model *m;
    avl_run *r;
    if (avl_model_load(dir, &mp, &m) || avl_run_new(m, 64, &r)) {
        fprintf(stderr, "bench_skinny: %s\n", avl_last_error());
        return 1;
    }
    const int64_t P = 8;
    float *emb = malloc(sizeof(float) * (size_t)((P + 2) * H)), *logits = malloc(sizeof(float) * 2 * (size_t)lm->n);
    for (int64_t i = 0; i < (P + 2) * H; i++) emb[i] = (float)((double)(rnd() >> 11) * 0x1p-53 - 0.5) * 0.1f;
    int64_t pos[3 * (P + 2)];
    for (int a = 0; a < 3; a++)
        for (int64_t i = 0; i < P + 2; i++) pos[a * (P + 2) + i] = i;
    if (avl_run_forward(r, emb, pos, P + 2, P, NULL, logits, 1)) {
        fprintf(stderr, "bench_skinny: %s\n", avl_last_error());
        return 1;
    }
    double bytes = 0;
    for (int p = 0; p < 7; p++) bytes += 2.0 * (double)(ms->s[p].n * ms->s[p].k);
    bytes += 2.0 * (double)(q->n + 2 * k->n); /* q, k, v biases */
    bytes = bytes * (double)layers + 2.0 * (double)(lm->n * lm->k);
    *bw_best = fmax(*bw_best, stream_read(2, bw_cpu, NULL));
    double best[3] = {1e30, 1e30, 1e30}, bestc[3] = {1e30, 1e30, 1e30};
    for (int rep = 0; rep < reps + 1; rep++)
        for (int64_t M = 1; M <= 2; M++) {
            double t0 = now(), c0 = cpu_now();
            /* positions P.., embeddings P.. (the 3-D positions start at column P of pos) */
            if (avl_run_forward(r, emb + P * H, pos + P, P + 2, M, NULL, logits, M) || avl_run_truncate(r, P)) {
                fprintf(stderr, "bench_skinny: %s\n", avl_last_error());
                return 1;
            }
            double dt = now() - t0, dc = (cpu_now() - c0) / avl_get_threads();
            if (rep > 0) best[M] = fmin(best[M], dt), bestc[M] = fmin(bestc[M], dc);
        }
    *bw_best = fmax(*bw_best, stream_read(2, bw_cpu, NULL));
    double bound = bytes / (*bw_best * 1e9), boundc = bytes / (*bw_cpu * 1e9);
    printf("%s decode step through avl_run_forward, %lld layers + lm_head (%.2f GB per step), best of %d; "
           "bandwidth %.2f GB/s (CPU time %.2f):\n", ms->model, (long long)layers, bytes / 1e9, reps, *bw_best, *bw_cpu);
    for (int M = 1; M <= 2; M++)
        printf("  M=%d: %.1f ms (ratio %.2f), CPU %.1f ms (ratio %.2f)\n", M, best[M] * 1e3, best[M] / bound,
               bestc[M] * 1e3, bestc[M] / boundc);
    printf("  M2/M1: %.2f (CPU %.2f)\n", best[2] / best[1], bestc[2] / bestc[1]);
    free(emb);
    free(logits);
    avl_run_free(r);
    avl_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *want = "both", *only = NULL, *step_dir = NULL;
    int reps = 5, mmax = 4;
    int64_t step_layers = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) want = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) avl_set_threads(atoi(argv[++i]));
        else if (!strcmp(argv[i], "--mmax") && i + 1 < argc) mmax = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--step") && i + 1 < argc) step_dir = argv[++i];
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) step_layers = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_skinny [--model 7b|3b|both] [--reps R] [--threads N] [--mmax M] "
                            "[--only NAME] [--step DIR [--layers L]]\n");
            return 2;
        }
    }
    if (reps < 1 || mmax < 1 || mmax > MMAX) {
        fprintf(stderr, "bench_skinny: --reps >= 1, 1 <= --mmax <= %d\n", MMAX);
        return 2;
    }
    FILE *la = fopen("/proc/loadavg", "r");
    char load[128] = "?\n";
    if (la) {
        if (!fgets(load, sizeof load, la)) load[0] = 0;
        fclose(la);
    }
    printf("# skinny kernel %s, %d threads, load average at start %s", avl__gemm_skinny_isa(),
           avl_get_threads(), load);
    g_bwbuf = aligned_alloc(64, g_bwn * 8);
    for (size_t i = 0; i < g_bwn; i++) g_bwbuf[i] = i;
    double bw_cpu = 0, bw_loop[2] = {0, 0};
    double bw_best = stream_read(3, &bw_cpu, bw_loop);
    printf("# read bandwidth at start: scalar loop %.2f GB/s, AVX2 loop %.2f GB/s; by CPU time %.2f GB/s\n",
           bw_loop[0], bw_loop[1], bw_cpu);

    if (step_dir) {
        for (size_t mi = 0; mi < sizeof g_models / sizeof g_models[0]; mi++)
            if (!strcmp(want, g_models[mi].model)) {
                int rc = step_mode(&g_models[mi], step_layers, step_dir, reps, &bw_best, &bw_cpu);
                free(g_bwbuf);
                return rc;
            }
        fprintf(stderr, "bench_skinny: --step needs --model 7b or 3b\n");
        return 2;
    }

    const int64_t KMAX = 18944;
    float *x = malloc(sizeof(float) * MMAX * KMAX), *y = malloc(sizeof(float) * MMAX * 152064);
    for (int64_t i = 0; i < MMAX * KMAX; i++) x[i] = (float)((double)(rnd() >> 11) * 0x1p-53 * 2 - 1);
    const int nt = avl_get_threads();

    for (size_t mi = 0; mi < sizeof g_models / sizeof g_models[0]; mi++) {
        const model_shape *ms = &g_models[mi];
        if (strcmp(want, "both") && strcmp(want, ms->model)) continue;
        double t_sum[MMAX + 1] = {0}, c_sum[MMAX + 1] = {0}, bytes_sum = 0;
        double t_prod[8][MMAX + 1], c_prod[8][MMAX + 1];
        printf("\n%s: ms per call (wall), best of %d passes over cold copies; (ratio) = time / (bytes / "
               "bandwidth sampled just before)\n", ms->model, reps);
        printf("%-8s %6s %6s %7s %7s", "product", "N", "K", "MB", "GB/s");
        for (int m = 1; m <= mmax; m++) printf("   M=%d ms (ratio)", m);
        printf("  M2/M1\n");
        for (int p = 0; p < 8; p++) {
            const shape *s = &ms->s[p];
            size_t bytes = (size_t)(s->n * s->k) * 2;
            double mult = p == 7 ? 1.0 : (double)ms->layers;
            bytes_sum += mult * (double)bytes;
            for (int m = 1; m <= mmax; m++) t_prod[p][m] = c_prod[p][m] = NAN;
            if (only && strcmp(only, s->name)) continue;
            int copies = (int)(((size_t)256 << 20) / bytes) + 1;
            uint16_t *w = malloc(bytes * (size_t)copies);
            uint64_t *w64 = (uint64_t *)w;
            for (size_t i = 0; i < bytes * (size_t)copies / 8; i++) {
                /* four bf16 in [-1, 1]: random sign and mantissa, exponent 120..126 */
                uint64_t r = rnd(), v = 0;
                for (int j = 0; j < 4; j++) {
                    uint64_t h = (r >> (16 * j)) & 0x807fu;
                    h |= (uint64_t)(120 + ((r >> (16 * j + 8)) % 7)) << 7;
                    v |= h << (16 * j);
                }
                w64[i] = v;
            }
            double bw = stream_read(2, &bw_cpu, NULL);
            bw_best = fmax(bw_best, bw);
            printf("%-8s %6lld %6lld %7.1f %7.2f", s->name, (long long)s->n, (long long)s->k, bytes / 1e6, bw);
            fflush(stdout);
            for (int m = 1; m <= mmax; m++) {
                double best = 1e30, bestc = 1e30;
                for (int r = 0; r < reps + 1; r++) { /* the first pass warms up (page faults) */
                    double t0 = now(), c0 = cpu_now();
                    for (int c = 0; c < copies; c++) {
                        avl__weight W = {AVL__DT_BF16, (const char *)w + (size_t)c * bytes, s->n, s->k, s->k};
                        avl__gemm_args a = {m, x, s->k, &W, NULL, y, s->n, false};
                        avl__gemm_skinny(&a);
                    }
                    double dt = (now() - t0) / copies, dc = (cpu_now() - c0) / copies / nt;
                    if (r > 0) best = fmin(best, dt), bestc = fmin(bestc, dc);
                }
                t_prod[p][m] = best;
                c_prod[p][m] = bestc;
                printf("   %7.2f (%5.2f)", best * 1e3, best / (bytes / (bw * 1e9)));
                fflush(stdout);
            }
            printf("  %5.2f\n", mmax >= 2 ? t_prod[p][2] / t_prod[p][1] : NAN);
            free(w);
        }
        double bw_end = stream_read(2, &bw_cpu, NULL);
        bw_best = fmax(bw_best, bw_end);
        printf("read bandwidth: best of the run %.2f GB/s (at the end %.2f); by CPU time %.2f GB/s\n", bw_best,
               bw_end, bw_cpu);
        for (int pass = 0; pass < 2; pass++) {
            double b = pass ? bw_cpu : bw_best;
            printf("ratio to the run's best bandwidth, %s:", pass ? "CPU time / CPU-time bandwidth" : "wall time");
            for (int p = 0; p < 8; p++) {
                if (isnan(t_prod[p][1])) continue;
                double bound = (double)(ms->s[p].n * ms->s[p].k) * 2 / (b * 1e9);
                printf(" %s", ms->s[p].name);
                for (int m = 1; m <= mmax; m++) printf(" %.2f", (pass ? c_prod[p][m] : t_prod[p][m]) / bound);
                printf(";");
            }
            printf("\n");
        }
        if (only) continue;
        for (int m = 1; m <= mmax; m++)
            for (int p = 0; p < 8; p++) {
                double mult = p == 7 ? 1.0 : (double)ms->layers;
                t_sum[m] += mult * t_prod[p][m];
                c_sum[m] += mult * c_prod[p][m];
            }
        double bound = bytes_sum / (bw_best * 1e9), boundc = bytes_sum / (bw_cpu * 1e9);
        printf("step (products, %lld layers + lm_head, %.2f GB): bound %.0f ms (CPU time %.0f ms);", (long long)ms->layers,
               bytes_sum / 1e9, bound * 1e3, boundc * 1e3);
        for (int m = 1; m <= mmax; m++)
            printf(" M=%d %.0f ms (%.2f; CPU %.2f)", m, t_sum[m] * 1e3, t_sum[m] / bound, c_sum[m] / boundc);
        if (mmax >= 2) printf("; M2/M1 %.2f (CPU %.2f)", t_sum[2] / t_sum[1], c_sum[2] / c_sum[1]);
        printf("\n");
    }
    free(x);
    free(y);
    free(g_bwbuf);
    return 0;
}
