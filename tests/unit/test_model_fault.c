/* tests/unit/test_model_fault.c: fault injection (STYLE.md, tests 6) on the model's paths.
 *
 * For n = 1, 2, ... the n-th library allocation and every later one fail
 * (avl__alloc_fail_after); each attempt must return AVL_E_NOMEM, hand nothing out and free
 * whatever it had made (the ASan build of scripts/test.sh checks the leaks), until n passes the
 * number of allocations the operation needs and it succeeds. Paths:
 *   avl_model_load          a tiny checkpoint written here with avl_mkmodel_write: two shards +
 *                           index, both towers
 *   a pass                  avl_thinker_embed (audio in video: a 2x2x2 video with its audio, then
 *                           a separate audio and an image) + avl_run_new + avl_run_forward with
 *                           hooks on every site and on attention + avl_generate of 3 tokens, with
 *                           the "openblas" backend (whose GEMM widens bf16 weights into allocated
 *                           panels; "ref" allocates nothing more) and with "auto" when that is
 *                           another backend (oneDNN on a bf16 machine)
 * The successful attempt must give the same logits as a pass without injection.
 * avl_inputs_load has its own loop in tests/unit/test_inputs.c.
 *
 * Cost: attempt n redoes the work before allocation n, so a loop costs about N^2/2 allocations'
 * worth of work; the checkpoint and the inputs are as small as still reach every path, and one
 * kernel thread is used (idle OpenMP workers spinning between many short regions would cost
 * most of the time on a shared machine), so the debug ASan build runs it in seconds.
 *
 * Found by this test: avl_config_parse reported a JSON allocation failure as "not valid JSON"
 * (AVL_E_FORMAT) once jansson allocated through avl__malloc; it now says AVL_E_NOMEM.
 */
#include "avl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

static char g_dir[4200];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/m", avl_test_dir("unit_model_fault"));
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.seed = 5;
    p.audio_layers = 1;
    p.vision_depth = 2; /* block 0 windowed, block 1 full attention */
    p.shards = 2;
    if (avl_mkmodel_write(&p, g_dir)) {
        fprintf(stderr, "mkmodel: %s\n", avl_last_error());
        return -1;
    }
    return 0;
}

static void test_model_load(void **state)
{
    (void)state;
    int64_t n = 1;
    for (;; n++) {
        avl_model *m = (avl_model *)1;
        avl__alloc_fail_after(n);
        avl_status rc = avl_model_load(g_dir, NULL, &m);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            avl_model_free(m);
            break;
        }
        if (rc != AVL_E_NOMEM)
            fail_msg("allocation %lld: status %s: %s", (long long)n, avl_status_str(rc), avl_last_error());
        assert_null(m);
    }
    if (getenv("AVL_TEST_VERBOSE")) print_message("avl_model_load: %lld allocations\n", (long long)n - 1);
    assert_true(n > 20);
}

static bool all_sites(void *u, int layer, avl_site s) { return (void)u, (void)layer, (void)s, true; }
static void touch(void *u, int layer, avl_site s, int64_t p0, int64_t n, int64_t dim, float *x)
{
    (void)u, (void)layer, (void)s, (void)p0, (void)n, (void)dim, (void)x;
}
static bool all_layers(void *u, int layer) { return (void)u, (void)layer, true; }
static void look(void *u, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                 const float *scores)
{
    (void)u, (void)layer, (void)head, (void)q0, (void)nq, (void)nk, (void)probs, (void)scores;
}

/* The inputs of a pass: text, <|vision_bos|><|VIDEO|><|vision_eos|> (with its audio), text,
 * <|audio_bos|><|AUDIO|><|audio_eos|>, <|vision_bos|><|IMAGE|><|vision_eos|>, text; expanded. */
typedef struct {
    avl_thinker_inputs ti;
    int32_t *ids;
    float *features; /* (2, 128, 40) */
    float *pix;      /* video (8, 1176) */
    float *img;      /* image (4, 1176) */
} inputs;

static inputs make_inputs(const avl_model *m)
{
    inputs in = {0};
    avl_seq_params sp = avl_model_seq_params(m);
    avl_media_shape *ms = &in.ti.media;
    ms->n_videos = 1;
    ms->video_grid_thw[0][0] = 2, ms->video_grid_thw[0][1] = 2, ms->video_grid_thw[0][2] = 2;
    ms->video_second_per_grid[0] = 2.0;
    ms->n_audios = 2;
    ms->audio_feature_len[0] = 40, ms->audio_feature_len[1] = 23;
    ms->n_images = 1;
    ms->image_grid_thw[0][0] = 1, ms->image_grid_thw[0][1] = 2, ms->image_grid_thw[0][2] = 2;
    int32_t chat[] = {30, 31, sp.vision_start_token_id, sp.video_token_id, sp.vision_end_token_id, 32,
                      sp.audio_start_token_id, sp.audio_token_id, sp.audio_end_token_id,
                      sp.vision_start_token_id, sp.image_token_id, sp.vision_end_token_id, 33, 34};
    if (avl_seq_expand(&sp, chat, sizeof chat / sizeof chat[0], ms, true, &in.ids, &in.ti.n))
        fail_msg("expand: %s", avl_last_error());
    in.ti.input_ids = in.ids;
    in.ti.use_audio_in_video = true;
    in.ti.n_feature_frames = 40;
    in.features = malloc(sizeof(float) * 2 * 128 * 40);
    in.pix = malloc(sizeof(float) * 8 * 1176);
    in.img = malloc(sizeof(float) * 4 * 1176);
    for (int i = 0; i < 2 * 128 * 40; i++) in.features[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    for (int i = 0; i < 8 * 1176; i++) in.pix[i] = (float)((i * 53) % 97) / 48.0f - 1.0f;
    for (int i = 0; i < 4 * 1176; i++) in.img[i] = (float)((i * 29) % 89) / 44.0f - 1.0f;
    in.ti.input_features = in.features;
    in.ti.pixel_values_videos = in.pix;
    in.ti.pixel_values = in.img;
    return in;
}

/* One pass: embed, forward (all rows' logits into out), then 3 generated tokens. */
static avl_status pass(const avl_model *m, const avl_thinker_inputs *ti, float *out)
{
    float *embeds = NULL;
    avl_token_map *map = NULL;
    avl_encoder_outputs enc = {0};
    avl_run *r = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    avl_hooks hk = {.wants = all_sites, .at_site = touch, .wants_attn = all_layers, .attn = look};
    avl_status rc = avl_thinker_embed(m, ti, &embeds, &map, &enc);
    if (rc) {
        assert_null(embeds);
        assert_null(map);
        assert_null(enc.audio_embeds);
    }
    if (!rc) rc = avl_run_new(m, map->n + 3, &r);
    if (!rc) rc = avl_run_forward(r, embeds, map->pos, map->n, map->n, &hk, out, map->n);
    if (!rc) rc = avl_run_truncate(r, 0);
    avl_gen_params gp = avl_gen_default_params();
    gp.max_new_tokens = 3;
    if (!rc) rc = avl_generate(r, embeds, map, &gp, &hk, &ids, &n_ids);
    if (!rc && n_ids != 3) rc = avl__err(AVL_E_INTERNAL, "generated %lld tokens", (long long)n_ids);
    if (rc) assert_null(ids);
    avl_free(ids);
    avl_run_free(r);
    avl_free(enc.audio_embeds), avl_free(enc.video_embeds), avl_free(enc.image_embeds);
    avl_free(embeds);
    avl_token_map_free(map);
    return rc;
}

static void test_forward(void **state)
{
    avl_model_params mp = avl_model_default_params();
    mp.backend = *state;
    mp.threads = 1;
    avl_model *m;
    if (avl_model_load(g_dir, &mp, &m)) fail_msg("%s", avl_last_error());
    if (!strcmp(*state, "auto") && !strncmp(avl_model_backend(m), "openblas", 8)) {
        avl_model_free(m);
        avl_set_threads(0);
        skip(); /* auto is openblas here: the other test covers it */
    }
    inputs in = make_inputs(m);
    const int64_t L = in.ti.n, V = avl_model_config(m)->text.vocab_size;
    float *want = calloc((size_t)(L * V), sizeof(float)), *got = calloc((size_t)(L * V), sizeof(float));
    if (pass(m, &in.ti, want)) fail_msg("%s", avl_last_error());
    int64_t n = 1;
    for (;; n++) {
        avl__alloc_fail_after(n);
        avl_status rc = pass(m, &in.ti, got);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) break;
        if (rc != AVL_E_NOMEM)
            fail_msg("%s, allocation %lld: status %s: %s", (const char *)*state, (long long)n, avl_status_str(rc),
                     avl_last_error());
    }
    if (getenv("AVL_TEST_VERBOSE"))
        print_message("pass of %lld tokens (%s): %lld allocations\n", (long long)L, avl_model_backend(m),
                      (long long)n - 1);
    assert_true(n > 20);
    assert_memory_equal(got, want, sizeof(float) * (size_t)(L * V));
    free(want), free(got);
    avl_free(in.ids), free(in.features), free(in.pix), free(in.img);
    avl_model_free(m);
    avl_set_threads(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_load),
        {"test_forward/openblas", test_forward, NULL, NULL, "openblas"},
        {"test_forward/auto", test_forward, NULL, NULL, "auto"},
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
