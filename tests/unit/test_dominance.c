/* tests/unit/test_dominance.c: the three runs of unimodal dominance on a tiny made checkpoint
 * with random processor tensors: each run equals a run by hand on inputs corrupted with the
 * public corruption functions, logits are kept per step, word probabilities come from them and
 * the class follows Eqs. 1-2 on the texts. */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_three_runs(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("dominance_unit");
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.seed = 4;
    assert_int_equal(avl_mkmodel_write(&p, dir), AVL_OK);
    avl_model_params mp = avl_model_default_params();
    avl_model *m;
    avl_tokenizer *tok;
    assert_int_equal(avl_model_load(dir, &mp, &m), AVL_OK);
    assert_int_equal(avl_tokenizer_load(dir, &tok), AVL_OK);
    avl_seq_params sp = avl_model_seq_params(m);
    int32_t chat[5] = {40, sp.vision_start_token_id, sp.video_token_id, sp.vision_end_token_id, 41};
    avl_thinker_inputs in = {0};
    in.use_audio_in_video = true;
    in.media.n_videos = 1;
    in.media.video_grid_thw[0][0] = 2;
    in.media.video_grid_thw[0][1] = 4;
    in.media.video_grid_thw[0][2] = 4;
    in.media.video_second_per_grid[0] = 2.0;
    in.media.n_audios = 1;
    in.media.audio_feature_len[0] = 200;
    int32_t *ids;
    int64_t n;
    assert_int_equal(avl_seq_expand(&sp, chat, 5, &in.media, true, &ids, &n), AVL_OK);
    in.input_ids = ids;
    in.n = n;
    int64_t nmel = avl_model_config(m)->audio.num_mel_bins, nfeat = nmel * 200, npix = 32 * AVL_PATCH_DIM;
    float *feat = malloc((size_t)nfeat * sizeof *feat), *pix = malloc((size_t)npix * sizeof *pix);
    for (int64_t i = 0; i < nfeat; i++) feat[i] = (float)sin(0.37 * (double)i);
    for (int64_t i = 0; i < npix; i++) pix[i] = (float)cos(0.11 * (double)i);
    in.input_features = feat;
    in.n_feature_frames = 200;
    in.pixel_values_videos = pix;

    avl_gen_params gp = avl_gen_default_params();
    gp.max_new_tokens = 3;
    avl_dominance_result r;
    assert_int_equal(avl_dominance_run(m, tok, &in, &gp, AVL_NORM_SLOW, &r), AVL_OK);
    assert_int_equal(r.av.n, 3);
    assert_non_null(r.av.text);
    assert_non_null(r.a.logits);
    assert_int_equal(r.dominance, avl_dominance_classify(r.av.text, r.a.text, r.v.text));

    /* the audio-only run by hand: video pixels of black frames, the same layout */
    float *black = malloc((size_t)npix * sizeof *black);
    avl_corruption z = {.kind = AVL_CORRUPT_ZERO, .norm = AVL_NORM_SLOW};
    assert_int_equal(avl_corrupt_video_pixels(black, 32, AVL_PATCH_DIM, &z), AVL_OK);
    avl_thinker_inputs ia = in;
    ia.pixel_values_videos = black;
    float *embeds;
    avl_token_map *map;
    assert_int_equal(avl_thinker_embed(m, &ia, &embeds, &map, NULL), AVL_OK);
    avl_gen_answer a;
    assert_int_equal(avl_gen_answer_run(m, tok, embeds, map, &gp, NULL, &a), AVL_OK);
    assert_int_equal(a.n, r.a.n);
    assert_memory_equal(a.ids, r.a.ids, (size_t)a.n * sizeof(int32_t));
    assert_memory_equal(a.logits, r.a.logits, (size_t)(a.n * a.V) * sizeof(float));
    /* the first step's greedy choice has the largest probability among the ids of that step */
    int32_t two[2] = {a.ids[0], -1};
    double p0 = avl_word_prob(a.logits, a.n, a.V, two, true);
    for (int32_t id = 0; id < a.V; id += 17) {
        int32_t o[2] = {id, -1};
        assert_true(avl_word_prob(a.logits, 1, a.V, o, true) <= p0);
    }
    avl_gen_answer_clear(&a);
    avl_token_map_free(map);
    avl_free(embeds);
    free(black);
    avl_dominance_result_clear(&r);
    avl_dominance_result_clear(&r);
    avl_free(ids);
    free(feat);
    free(pix);
    avl_tokenizer_free(tok);
    avl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_three_runs)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
