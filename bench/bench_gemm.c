/* bench/bench_gemm.c: raw matrix-product speed of each GEMM path on the Qwen2.5-Omni-7B
 * thinker's shapes, and the memory read bandwidth the decode kernel should approach.
 *
 *   prefill: M = 1536 tokens, K = 3584, N in {3584 (q/o proj), 512 (k/v proj), 18944 (gate/up)}
 *            GFLOP/s = 2 M N K / time, per backend
 *   decode:  M = 1..4 (and 8, 16 for the crossover) against W = 18944 x 3584 bf16 (136 MB, one
 *            FFN matrix): GB/s = weight bytes / time, per path
 *   stream:  a plain read-and-sum over 512 MiB, the bandwidth ceiling for decode
 *   attention: one layer's causal attention at L = 1536 (28 heads, 4 KV heads, d = 128)
 *
 * usage: bench_gemm [--threads N] [--quick]    (--quick: N = 3584 only, fewer repeats)
 * Build: part of the normal build (bench/CMakeLists.txt); run build/bench/bench_gemm.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avlens/avlens.h"
#include "kernels/attention.h"
#include "kernels/gemm.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t g_rng = 88172645463325252ull;
static float frand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 11) * 0x1p-53 * 2 - 1);
}

/* Best of reps: read every byte of a 512 MiB buffer, summing 64-bit words (8 independent
 * sums per thread so that the loop is bound by loads). Returns GB/s (1e9 bytes). */
static double stream_read(int reps)
{
    size_t n = (512u << 20) / 8;
    uint64_t *buf = malloc(n * 8);
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double best = 0;
    uint64_t sink = 0; /* printed below so that the sums cannot be optimised away */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        uint64_t total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
        for (size_t i = 0; i < n; i += 8) {
            uint64_t s = 0;
            for (int j = 0; j < 8; j++) s += buf[i + j];
            total += s;
        }
        double dt = now() - t0;
        sink += total;
        best = fmax(best, n * 8 / dt / 1e9);
    }
    free(buf);
    if (sink == 42) printf(" ");
    return best;
}

typedef struct {
    const char *name;
    int kind; /* 0 backend via its gemm (no skinny), 1 skinny native, 2 skinny portable */
    const avl__gemm_backend *be;
} path;

static double time_path(const path *p, int64_t M, const float *x, const avl__weight *w, float *y,
                        int reps)
{
    avl__gemm_args a = {M, x, w->k, w, NULL, y, w->n, false};
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (p->kind == 0) {
            if (p->be->gemm(&a) != AVL_OK) {
                fprintf(stderr, "%s: %s\n", p->name, avl_last_error());
                return NAN;
            }
        } else {
            if (p->kind == 2) avl__gemm_skinny_force("portable");
            avl__gemm_skinny(&a);
            avl__gemm_skinny_force(NULL);
        }
        best = fmin(best, now() - t0);
    }
    return best;
}

int main(int argc, char **argv)
{
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) avl_set_threads(atoi(argv[++i]));
        else {
            fprintf(stderr, "usage: bench_gemm [--threads N] [--quick]\n");
            return 2;
        }
    }
    char desc[512];
    for (const char *b = "onednn"; b; b = strcmp(b, "onednn") ? NULL : "openblas") {
        if (avl_backend_describe(b, desc, sizeof desc) == AVL_OK) printf("# %s\n", desc);
    }
    printf("# threads %d\n", avl_get_threads());
    FILE *la = fopen("/proc/loadavg", "r");
    char load[128] = "?";
    if (la) {
        if (!fgets(load, sizeof load, la)) load[0] = 0;
        fclose(la);
    }
    printf("# load average at start (other jobs share the cores): %s\n", load);

    printf("memory read bandwidth (512 MiB, best of 5): %.1f GB/s\n\n", stream_read(5));

    const int64_t K = 3584, Ns[] = {3584, 512, 18944};
    const int64_t NMAX = 18944, MP = 1536;
    uint16_t *w = malloc(sizeof(uint16_t) * NMAX * K);
    for (int64_t i = 0; i < NMAX * K; i++) w[i] = avl__f32_to_bf16(frand());
    float *x = malloc(sizeof(float) * MP * K), *y = malloc(sizeof(float) * MP * NMAX);
    for (int64_t i = 0; i < MP * K; i++) x[i] = frand();

    path ps[] = {{"onednn", 0, &avl__gemm_onednn},
                 {"openblas", 0, &avl__gemm_openblas},
                 {"skinny", 1, NULL},
                 {"skinny-portable", 2, NULL},
                 {"ref", 0, &avl__gemm_ref}};
    printf("prefill GEMM, bf16 weights, M=%lld K=%lld (GFLOP/s, best of %d; ref timed on M=8)\n",
           (long long)MP, (long long)K, quick ? 1 : 2);
    printf("%-10s", "N");
    for (int p = 0; p < 2; p++) printf(" %12s", ps[p].name);
    printf(" %12s\n", "ref");
    for (int ni = 0; ni < 3; ni++) {
        if (quick && ni > 0) break;
        avl__weight W = {AVL__DT_BF16, w, Ns[ni], K, K};
        printf("%-10lld", (long long)Ns[ni]);
        for (int p = 0; p < 2; p++) {
            double t = time_path(&ps[p], MP, x, &W, y, quick ? 1 : 2);
            printf(" %12.1f", 2.0 * MP * Ns[ni] * K / t / 1e9);
            fflush(stdout);
        }
        double t = time_path(&ps[4], 8, x, &W, y, 1);
        printf(" %12.2f\n", 2.0 * 8 * Ns[ni] * K / t / 1e9);
    }

    avl__weight W = {AVL__DT_BF16, w, NMAX, K, K};
    double bytes = (double)NMAX * K * 2;
    printf("\ndecode GEMV against W %lldx%lld bf16 (%.0f MB): weight GB/s, best of %d\n",
           (long long)NMAX, (long long)K, bytes / 1e6, quick ? 3 : 5);
    printf("%-4s", "M");
    for (int p = 0; p < 4; p++) printf(" %16s", ps[p].name);
    printf("\n");
    const int64_t Ms[] = {1, 2, 3, 4, 8, 16};
    for (int mi = 0; mi < 6; mi++) {
        printf("%-4lld", (long long)Ms[mi]);
        for (int p = 0; p < 4; p++) {
            double t = time_path(&ps[p], Ms[mi], x, &W, y, quick ? 3 : 5);
            printf(" %10.1f (%3.0fms)", bytes / t / 1e9, t * 1e3);
            fflush(stdout);
        }
        printf("\n");
    }
    free(w);

    /* attention of one 7B layer at prefill: 28 heads, 4 KV heads, d = 128, causal, L = 1536;
     * causal halves the 4 L^2 d flops per head (QK^T and PV) */
    {
        int64_t L = 1536, H = 28, KV = 4, d = 128;
        float *q = malloc(sizeof(float) * L * H * d), *k = malloc(sizeof(float) * L * KV * d),
              *v = malloc(sizeof(float) * L * KV * d), *o = malloc(sizeof(float) * L * H * d);
        for (int64_t i = 0; i < L * H * d; i++) q[i] = frand();
        for (int64_t i = 0; i < L * KV * d; i++) k[i] = frand(), v[i] = frand();
        avl__attn_params ap = {H, KV, d, L, L, 0, q, H * d, k, KV * d, v, KV * d, o, H * d, 0.0f,
                               true, NULL, 0, NULL, NULL, 0};
        double best = 1e30;
        for (int r = 0; r < (quick ? 1 : 3); r++) {
            double t0 = now();
            if (avl__attention(&ap) != AVL_OK) fprintf(stderr, "attention: %s\n", avl_last_error());
            best = fmin(best, now() - t0);
        }
        printf("\nattention, causal, L=%lld, %lld heads (%lld kv), d=%lld: %.0f ms, %.1f GFLOP/s\n",
               (long long)L, (long long)H, (long long)KV, (long long)d, best * 1e3,
               2.0 * L * L * H * d / best / 1e9);
        free(q), free(k), free(v), free(o);
    }
    free(x);
    free(y);
    return 0;
}
