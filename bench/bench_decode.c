/* bench/bench_decode.c: ms per generated token of the decoding methods on one clip-shaped
 * sequence. A made checkpoint (hidden 512, 8 layers, 8 heads, 4 KV heads, ffn 1536, bf16) and a
 * hand-built audio-visual prompt (video grid T x 16 x 16 patches with audio in video, text
 * around it); each method generates N tokens (no stop token), greedy. Reported: the whole
 * decode (prefills + steps) and its ratio to vanilla; the decode of 1 token ("prompt": the
 * prefills and the prompt-time work); and per generated step, (t_N - t_1) / (N - 1), with its
 * ratio to vanilla's. The sink
 * dimensions are two arbitrary ones with tau 0 so that ASD has sinks to edit. VCD gets a
 * second copy of the embeddings as its distorted input (the cost is the same); PAI a 20-token
 * text prompt as its unconditional input. Best of 3 runs.
 *   bench_decode [N [T [SHAPE]]]   (default N = 32 tokens, T = 8 temporal patches: 512 video
 *                                  tokens, SHAPE small)
 * SHAPE "3b": the LLM layers of Qwen2.5-Omni-3B (hidden 2048, 16 heads over 2 KV heads, ffn
 * 11008) and its vocabulary (151936), 4 layers instead of 36: a step then reads about 0.7 GB of
 * bf16 weights, so it is bound by memory reads as a real step is (the small shape is bound by
 * per-call overheads). ASD is run with its passes batched per step (default) and one by one.
 * OMP_WAIT_POLICY=passive recommended on shared machines. */
#include <stdbool.h>
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

int main(int argc, char **argv)
{
    int64_t N = argc > 1 ? atoll(argv[1]) : 32, T = argc > 2 ? atoll(argv[2]) : 8;
    bool big = argc > 3 && strcmp(argv[3], "3b") == 0;
    const char *dir = big ? "bench_decode_model_3b" : "bench_decode_model";
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.hidden = big ? 2048 : 512;
    p.layers = big ? 4 : 8;
    p.heads = big ? 16 : 8;
    p.kv_heads = big ? 2 : 4;
    p.ffn = big ? 11008 : 1536;
    if (big) p.vocab = 151936;
    p.thinker_only = true;
    avl_model *m;
    avl_model_params mp = avl_model_default_params();
    if (avl_mkmodel_write(&p, dir) || avl_model_load(dir, &mp, &m)) {
        fprintf(stderr, "%s\n", avl_last_error());
        return 1;
    }
    avl_seq_params sp = avl_model_seq_params(m);
    int32_t chat[12] = {40, 41, 42, 43, sp.vision_start_token_id, sp.video_token_id, sp.vision_end_token_id,
                        44, 45, 46, 47, 48};
    avl_media_shape ms = {0};
    ms.n_videos = 1;
    ms.video_grid_thw[0][0] = T;
    ms.video_grid_thw[0][1] = 16;
    ms.video_grid_thw[0][2] = 16;
    ms.video_second_per_grid[0] = 1.0;
    ms.n_audios = 1;
    ms.audio_feature_len[0] = (int)(T * 100); /* T seconds of 100 mel frames */
    int32_t *ids;
    int64_t L;
    avl_token_map *map;
    if (avl_seq_expand(&sp, chat, 12, &ms, true, &ids, &L) || avl_seq_positions(&sp, ids, L, &ms, true, &map)) {
        fprintf(stderr, "%s\n", avl_last_error());
        return 1;
    }
    float *embeds = malloc((size_t)(L * p.hidden) * sizeof *embeds);
    int32_t uids[20];
    for (int i = 0; i < 20; i++) uids[i] = 40 + i;
    avl_media_shape none = {0};
    avl_token_map *umap;
    float *uemb = malloc((size_t)(20 * p.hidden) * sizeof *uemb);
    /* media rows: the placeholder's embedding row is as good as any for timing */
    if (avl_run_embed_tokens(m, ids, L, embeds) || avl_seq_positions(&sp, uids, 20, &none, false, &umap) ||
        avl_run_embed_tokens(m, uids, 20, uemb))
        return 1;
    printf("L = %lld (%lld video, %lld audio), %lld new tokens, %s\n", (long long)L, (long long)map->n_video,
           (long long)map->n_audio, (long long)N, avl_model_backend(m));
    avl_decode_input in = {.embeds = embeds, .map = map, .distorted_embeds = embeds, .uncond_embeds = uemb,
                           .uncond_map = umap};
    double base = 0, base_step = 0;
    const avl_decode_method order[] = {AVL_DECODE_VANILLA, AVL_DECODE_ASD, AVL_DECODE_PAI, AVL_DECODE_VCD};
    for (int k = 0; k < 4; k++) {
        avl_decode_params dp;
        avl_decode_default_params(m, order[k], &dp);
        dp.max_new_tokens = N;
        dp.sinks = (avl_sink_params){.n_dims = 2, .dims = {1, 2}, .tau = 0.0};
        /* variants: 0 the default; ASD also 1 = steps one by one, 2 = that and two full prefills */
        for (int var = 0; var <= (order[k] == AVL_DECODE_ASD ? 2 : 0); var++) {
            dp.batched_steps = var == 0;
            dp.shared_prefix = var < 2;
            double best[2] = {1e30, 1e30};
            int64_t n = 0;
            for (int one = 0; one < 2; one++) { /* N tokens, then 1 token: the steps' cost is the difference */
                dp.max_new_tokens = one ? 1 : N;
                for (int rep = 0; rep < 3; rep++) {
                    avl_decode_result r;
                    double t0 = now();
                    if (avl_decode(m, &in, &dp, &r)) {
                        fprintf(stderr, "%s\n", avl_last_error());
                        return 1;
                    }
                    double dt = now() - t0;
                    best[one] = dt < best[one] ? dt : best[one];
                    if (!one) n = r.n;
                    avl_decode_result_clear(&r);
                }
            }
            double step = (best[0] - best[1]) / (double)(n - 1);
            if (k == 0) base = best[0], base_step = step;
            static const char *vname[3] = {"batched", "one by one", "1-by-1, 2 prefills"};
            printf("%-12s %-19s %8.1f ms total %5.2fx | prompt %7.1f ms | %7.2f ms/step %5.2fx\n",
                   avl_decode_method_name(order[k]), order[k] == AVL_DECODE_ASD ? vname[var] : "",
                   best[0] * 1e3, best[0] / base, best[1] * 1e3, step * 1e3, step / base_step);
        }
    }
    avl_token_map_free(map);
    avl_token_map_free(umap);
    avl_free(ids);
    free(embeds);
    free(uemb);
    avl_model_free(m);
    return 0;
}
