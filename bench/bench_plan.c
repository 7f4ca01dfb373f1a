/* bench/bench_plan.c: what plans cost on top of a plain prefill. A made checkpoint (hidden 512,
 * 4 layers, 8 heads, 4 KV heads, bf16) and a text sequence of L positions; times a prefill
 * without hooks, with an empty plan, with the received-attention observer in every layer, with
 * the sinks' phi observer, with a capture of ATTN_IN at every position, and with a pre-softmax
 * edit of 64 keys for every query. Best of 3 runs each.
 *   bench_plan [L]        (default 2048; OMP_WAIT_POLICY=passive recommended on shared machines) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avlens/avlens.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double run(const avl_model *m, const float *embeds, const avl_token_map *map, const avl_hooks *hk)
{
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        avl_run *r;
        if (avl_run_new(m, map->n, &r)) return -1;
        double t0 = now();
        if (avl_run_forward(r, embeds, map->pos, map->n, map->n, hk, NULL, 0)) return -1;
        double dt = now() - t0;
        best = dt < best ? dt : best;
        avl_run_free(r);
    }
    return best * 1e3;
}

int main(int argc, char **argv)
{
    int64_t L = argc > 1 ? atoll(argv[1]) : 2048;
    const char *dir = "bench_plan_model";
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.hidden = 512;
    p.layers = 4;
    p.heads = 8;
    p.kv_heads = 4;
    p.ffn = 1024;
    p.thinker_only = true;
    avl_model *m;
    avl_model_params mp = avl_model_default_params();
    if (avl_mkmodel_write(&p, dir) || avl_model_load(dir, &mp, &m)) {
        fprintf(stderr, "%s\n", avl_last_error());
        return 1;
    }
    int32_t *ids = malloc((size_t)L * sizeof *ids);
    for (int64_t i = 0; i < L; i++) ids[i] = (int32_t)(40 + i % 200);
    avl_seq_params sp = avl_model_seq_params(m);
    avl_media_shape ms = {0};
    avl_token_map *map;
    float *embeds = malloc((size_t)(L * p.hidden) * sizeof *embeds);
    if (avl_seq_positions(&sp, ids, L, &ms, false, &map) || avl_run_embed_tokens(m, ids, L, embeds)) return 1;
    printf("L = %lld, %s\n", (long long)L, avl_model_backend(m));
    double base = run(m, embeds, map, NULL);
    printf("%-28s %9.1f ms\n", "no hooks", base);
    for (int k = 0; k < 5; k++) {
        avl_plan *plan;
        avl_plan_new(m, map, &plan);
        const char *what = "empty plan";
        avl_received *rx;
        avl_phi_table *phi = NULL;
        avl_capture *cap;
        avl_tokset keys = {0};
        if (k == 1) {
            what = "received observer";
            avl_plan_observe_received(plan, 0, (int)p.layers, &rx);
        } else if (k == 2) {
            what = "sinks phi observer";
            avl_sink_params s = {.n_dims = 2, .dims = {1, 2}, .tau = 25};
            avl_sinks_observe(plan, &s, &phi);
        } else if (k == 3) {
            what = "capture ATTN_IN, all";
            avl_plan_capture(plan, AVL_SITE_ATTN_IN, 0, (int)p.layers, NULL, &cap);
        } else if (k == 4) {
            what = "pre-softmax edit, 64 keys";
            int64_t kk[64];
            for (int i = 0; i < 64; i++) kk[i] = i * (L / 64);
            avl_tokset_from_list(kk, 64, &keys);
            avl_attn_edit e = {.kind = AVL_EDIT_PRE_ABS, .c = 0.6, .layer0 = 0, .layer1 = (int)p.layers,
                               .queries_from = -1, .keys = &keys};
            avl_plan_edit_attn(plan, &e);
        }
        double t = run(m, embeds, map, avl_plan_hooks(plan));
        printf("%-28s %9.1f ms  (x%.2f)\n", what, t, t / base);
        avl_phi_free(phi);
        avl_tokset_free(&keys);
        avl_plan_free(plan);
    }
    avl_token_map_free(map);
    free(embeds);
    free(ids);
    avl_model_free(m);
    return 0;
}
