/* tests/golden/test_sinks_golden.c: the analyses' inputs against the PyTorch reference
 * (tools/ref/qwen25_omni_ref.py) on the golden audio-in-video case (tests/data/golden/
 * audio_in_video: 101 positions, 6 video and 62 audio tokens, 2 layers): phi of every layer
 * input from our plan's observer against phi of the reference's hidden_states.N, the sinks
 * found from each, and the received-attention observer of layer 1 (the MDS inputs a_v, a_a)
 * against the same reduction of the reference's head-mean attention attn.1. */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CASE AVL_TEST_DATA "/golden/audio_in_video"

static float *floats(const avl_st_set *s, const char *name, avl_tensor_view *tv)
{
    assert_int_equal(avl_st_get(s, name, tv), AVL_OK);
    float *v = malloc((size_t)tv->numel * sizeof *v + 4);
    assert_int_equal(avl_convert_to_f32(tv->dtype, tv->data, v, tv->numel), AVL_OK);
    return v;
}

static int64_t *ints(const avl_st_set *s, const char *name, avl_tensor_view *tv)
{
    assert_int_equal(avl_st_get(s, name, tv), AVL_OK);
    int64_t *v = malloc((size_t)tv->numel * sizeof *v + 8);
    for (int64_t i = 0; i < tv->numel; i++) {
        if (tv->dtype == AVL_DTYPE_I64) memcpy(&v[i], (const uint8_t *)tv->data + 8 * i, 8);
        else {
            int32_t x;
            assert_int_equal(tv->dtype, AVL_DTYPE_I32);
            memcpy(&x, (const uint8_t *)tv->data + 4 * i, 4);
            v[i] = x;
        }
    }
    return v;
}

static void test_against_reference(void **state)
{
    (void)state;
    avl_model_params mp = avl_model_default_params();
    avl_model *m;
    assert_int_equal(avl_model_load(CASE "/model", &mp, &m), AVL_OK);
    avl_st_set *in, *ex;
    assert_int_equal(avl_st_open_dir(CASE "/inputs.safetensors", &in), AVL_OK);
    assert_int_equal(avl_st_open_dir(CASE "/expected.safetensors", &ex), AVL_OK);
    avl_tensor_view tv;
    avl_thinker_inputs ti = {0};
    ti.use_audio_in_video = true;
    int64_t *ids64 = ints(in, "input_ids", &tv);
    ti.n = tv.numel;
    int32_t *ids = malloc((size_t)ti.n * sizeof *ids);
    for (int64_t i = 0; i < ti.n; i++) ids[i] = (int32_t)ids64[i];
    ti.input_ids = ids;
    float *feat = floats(in, "input_features", &tv);
    ti.input_features = feat;
    ti.media.n_audios = 1;
    ti.n_feature_frames = tv.shape[2];
    int64_t *fm = ints(in, "feature_attention_mask", &tv);
    for (int64_t j = 0; j < tv.numel; j++) ti.media.audio_feature_len[0] += fm[j] != 0;
    float *pix = floats(in, "pixel_values_videos", &tv);
    ti.pixel_values_videos = pix;
    int64_t *grid = ints(in, "video_grid_thw", &tv);
    ti.media.n_videos = 1;
    for (int k = 0; k < 3; k++) ti.media.video_grid_thw[0][k] = grid[k];
    float *spg = floats(in, "video_second_per_grid", &tv);
    ti.media.video_second_per_grid[0] = spg[0];

    float *embeds;
    avl_token_map *map;
    assert_int_equal(avl_thinker_embed(m, &ti, &embeds, &map, NULL), AVL_OK);
    int64_t L = map->n, H = avl_model_config(m)->text.hidden_size;
    int nl = (int)avl_model_config(m)->text.num_hidden_layers;
    assert_int_equal(L, 101);
    avl_plan *plan;
    avl_sink_params sp = {.n_dims = 2, .dims = {0, 1}, .tau = 2.0};
    avl_phi_table *phi;
    avl_received *rx;
    assert_int_equal(avl_plan_new(m, map, &plan), AVL_OK);
    assert_int_equal(avl_sinks_observe(plan, &sp, &phi), AVL_OK);
    assert_int_equal(avl_plan_observe_received(plan, 0, nl, &rx), AVL_OK);
    avl_run *run;
    assert_int_equal(avl_run_new(m, L, &run), AVL_OK);
    assert_int_equal(avl_run_forward(run, embeds, map->pos, L, L, avl_plan_hooks(plan), NULL, 0), AVL_OK);

    /* phi from the reference's hidden states */
    avl_phi_table ref = {.n_layers = nl, .L = L, .params = sp};
    ref.phi = malloc((size_t)(nl * L) * sizeof(float));
    for (int l = 0; l < nl; l++) {
        char name[64];
        snprintf(name, sizeof name, "hidden_states.%d", l);
        float *hs = floats(ex, name, &tv);
        for (int64_t t = 0; t < L; t++) {
            float want = avl_sink_phi(hs + t * H, H, &sp), got = phi->phi[l * L + t];
            if (fabsf(got - want) > 1e-4f * (1.0f + fabsf(want)))
                fail_msg("phi layer %d position %lld: %g, reference %g", l, (long long)t, got, want);
            ref.phi[l * L + t] = want;
        }
        free(hs);
    }
    /* the same sinks from both, with tau in the middle of the widest gap of phi in [1, 4] */
    float *sorted = malloc((size_t)(nl * L) * sizeof(float));
    memcpy(sorted, ref.phi, (size_t)(nl * L) * sizeof(float));
    for (int64_t i = 1; i < nl * L; i++)
        for (int64_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            float t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    double tau = 2.0, gap = 0;
    for (int64_t i = 1; i < nl * L; i++)
        if (sorted[i - 1] >= 1.0f && sorted[i] <= 4.0f && sorted[i] - sorted[i - 1] > gap) {
            gap = sorted[i] - sorted[i - 1];
            tau = 0.5 * (sorted[i] + sorted[i - 1]);
        }
    avl_sinks *a, *b;
    assert_int_equal(avl_sinks_find(phi, tau, map, 2, &a), AVL_OK);
    assert_int_equal(avl_sinks_find(&ref, tau, map, 2, &b), AVL_OK);
    assert_true(a->n_global > 0);
    assert_int_equal(a->n_global, b->n_global);
    assert_memory_equal(a->global, b->global, (size_t)a->n_global * sizeof(int64_t));

    /* received attention of layer 1 against the reference's head-mean map */
    float *att = floats(ex, "attn.1", &tv);
    for (int64_t k = 0; k < L; k++) {
        double sum[AVL_QG_COUNT] = {0};
        int64_t cnt[AVL_QG_COUNT] = {0};
        for (int64_t q = k + 1; q < L; q++) {
            int kind = map->tok[q].kind;
            int g = kind == AVL_TOK_VIDEO ? AVL_QG_VIDEO : kind == AVL_TOK_AUDIO ? AVL_QG_AUDIO : AVL_QG_TEXT;
            sum[g] += att[q * L + k];
            cnt[g]++;
        }
        for (int g = 0; g < AVL_QG_COUNT; g++) {
            double want = cnt[g] ? sum[g] / (double)cnt[g] : 0.0, got = avl_received_mean(rx, 1, (avl_qgroup)g, k);
            if (fabs(got - want) > 1e-5) fail_msg("layer 1 key %lld group %d: %g, reference %g", (long long)k, g, got, want);
        }
    }
    free(att);
    free(sorted);
    free(ref.phi);
    avl_sinks_free(a);
    avl_sinks_free(b);
    avl_run_free(run);
    avl_phi_free(phi);
    avl_plan_free(plan);
    avl_token_map_free(map);
    avl_free(embeds);
    free(ids64);
    free(ids);
    free(feat);
    free(fm);
    free(pix);
    free(grid);
    free(spg);
    avl_st_close(in);
    avl_st_close(ex);
    avl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_reference)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
