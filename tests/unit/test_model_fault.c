/* tests/unit/test_model_fault.c: fault injection (STYLE.md, tests 6) on the model's paths.
 *
 * For n = 1, 2, ... the n-th library allocation and every later one fail
 * (avl__alloc_fail_after); each attempt must return AVL_E_NOMEM with an empty out-parameter
 * and free whatever it had made (the ASan build, scripts/test.sh, checks the leaks), until n
 * passes the number of allocations the operation needs and it succeeds. Paths:
 *   avl_model_load          the odd_sizes golden checkpoint: two shards + index, both towers
 *   avl_inputs_load + avl_thinker_embed + avl_run_new + avl_run_forward (with hooks on every
 *                           site and on attention) + avl_generate, on that case's inputs (audio
 *                           in video, then a separate audio), with "ref" and with "auto" (whose
 *                           GEMM widens bf16 weights into allocated panels)
 * The successful attempt must give the same logits as a run without injection. One kernel
 * thread: the attempts are many short passes, where idle OpenMP workers spinning between
 * regions would cost most of the time on a shared machine.
 *
 * Found by this test: avl_config_parse reported a JSON allocation failure as "not valid JSON"
 * (AVL_E_FORMAT) once jansson allocated through avl__malloc; it now says AVL_E_NOMEM.
 */
#include "avl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

#define CASE AVL_TEST_DATA "/golden/odd_sizes"
#define MAX_L 1024

static void test_model_load(void **state)
{
    (void)state;
    int64_t n = 1;
    for (;; n++) {
        avl_model *m = (avl_model *)1;
        avl__alloc_fail_after(n);
        avl_status rc = avl_model_load(CASE "/model", NULL, &m);
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

/* One full pass: inputs, embed, forward (all rows' logits into out), then 3 generated tokens. */
static avl_status pass(const avl_model *m, float *out)
{
    avl_inputs *in = NULL;
    float *embeds = NULL;
    avl_token_map *map = NULL;
    avl_encoder_outputs enc = {0};
    avl_run *r = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    avl_hooks hk = {.wants = all_sites, .at_site = touch, .wants_attn = all_layers, .attn = look};
    avl_status rc = avl_inputs_load(CASE "/inputs.safetensors", avl_model_config(m), true, &in);
    if (!rc) rc = avl_thinker_embed(m, avl_inputs_get(in), &embeds, &map, &enc);
    if (!rc && map->n > MAX_L) rc = avl__err(AVL_E_INTERNAL, "the case has more than %d tokens", MAX_L);
    if (!rc) rc = avl_run_new(m, map->n + 3, &r);
    if (!rc) rc = avl_run_forward(r, embeds, map->pos, map->n, map->n, &hk, out, map->n);
    if (!rc) rc = avl_run_truncate(r, 0);
    avl_gen_params gp = avl_gen_default_params();
    gp.max_new_tokens = 3;
    if (!rc) rc = avl_generate(r, embeds, map, &gp, &hk, &ids, &n_ids);
    if (!rc && n_ids != 3) rc = avl__err(AVL_E_INTERNAL, "generated %lld tokens", (long long)n_ids);
    if (rc) assert_null(ids); /* a failed avl_generate hands nothing out */
    avl_free(ids);
    avl_run_free(r);
    avl_free(enc.audio_embeds), avl_free(enc.video_embeds), avl_free(enc.image_embeds);
    avl_free(embeds);
    avl_token_map_free(map);
    avl_inputs_free(in);
    return rc;
}

static void test_forward(void **state)
{
    avl_model_params mp = avl_model_default_params();
    mp.backend = *state;
    mp.threads = 1;
    avl_model *m;
    if (avl_model_load(CASE "/model", &mp, &m)) fail_msg("%s", avl_last_error());
    const int64_t L = MAX_L, V = avl_model_config(m)->text.vocab_size;
    float *want = calloc((size_t)(L * V), sizeof(float)), *got = calloc((size_t)(L * V), sizeof(float));
    if (pass(m, want)) fail_msg("%s", avl_last_error());
    int64_t n = 1;
    for (;; n++) {
        avl__alloc_fail_after(n);
        avl_status rc = pass(m, got);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) break;
        if (rc != AVL_E_NOMEM)
            fail_msg("%s, allocation %lld: status %s: %s", (const char *)*state, (long long)n, avl_status_str(rc),
                     avl_last_error());
    }
    if (getenv("AVL_TEST_VERBOSE"))
        print_message("forward pass (%s): %lld allocations\n", (const char *)*state, (long long)n - 1);
    assert_true(n > 20);
    assert_memory_equal(got, want, sizeof(float) * (size_t)(87 * V)); /* the case's 87 tokens */
    free(want), free(got);
    avl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_load),
        {"test_forward/ref", test_forward, NULL, NULL, "ref"},
        {"test_forward/auto", test_forward, NULL, NULL, "auto"},
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
