/* tests/unit/test_prompt.c: avl_prompt_build on the tiny tokenizer: the id layout of each
 * conversation form (system, user, vision bos, interleaved video/audio chunks, eos, text,
 * generation prompt) built piece by piece from encoded strings, the mask counted for the audio,
 * the errors, and allocation failures. */
#include <stdlib.h>
#include <string.h>

#include "avl_test.h"
#include "base/internal.h"

static avl_tokenizer *tok;
static avl_seq_params sp;

static int setup(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("prompt");
    avl_mkmodel_params p = avl_mkmodel_default_params();
    if (avl_mkmodel_write(&p, dir)) return -1;
    if (avl_tokenizer_load(dir, &tok)) return -1;
    avl_config c;
    if (avl_mkmodel_config(&p, &c)) return -1;
    sp = avl_seq_default_params();
    sp.audio_token_id = (int32_t)c.audio_token_id;
    sp.image_token_id = (int32_t)c.image_token_id;
    sp.video_token_id = (int32_t)c.video_token_id;
    sp.vision_start_token_id = (int32_t)c.vision_start_token_id;
    sp.vision_end_token_id = (int32_t)c.vision_end_token_id;
    sp.audio_start_token_id = (int32_t)c.audio_start_token_id;
    sp.audio_end_token_id = (int32_t)c.audio_end_token_id;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    avl_tokenizer_free(tok);
    return 0;
}

/* Expected ids, appended piece by piece. */
typedef struct {
    int32_t v[4096];
    int64_t n;
} ids_t;

static void add_text(ids_t *e, const char *s)
{
    int32_t *ids;
    int64_t n;
    assert_int_equal(avl_tokenizer_encode(tok, s, strlen(s), &ids, &n), AVL_OK);
    memcpy(e->v + e->n, ids, (size_t)n * sizeof *ids);
    e->n += n;
    avl_tokenizer_free_mem(ids);
}

static void add_rep(ids_t *e, int32_t id, int64_t k)
{
    for (int64_t i = 0; i < k; i++) e->v[e->n++] = id;
}

/* Features with the given shapes; the pixel and mel values are never read by the prompt. */
static avl_features *fake(bool video, int64_t valid_frames)
{
    avl_features *f = calloc(1, sizeof *f);
    if (video) {
        f->video_grid_thw[0] = 4; /* 4 grids of 4x6 patches: 6 tokens each */
        f->video_grid_thw[1] = 4;
        f->video_grid_thw[2] = 6;
        f->video_second_per_grid = 1.0; /* time ids 0, 25, 50, 75: chunks {0,1}, {2,3} */
        f->n_patches = 96;
        f->pixel_values_videos = calloc(96 * AVL_PATCH_DIM, sizeof(float));
    }
    if (valid_frames > 0) {
        f->n_mels = 128;
        f->n_mel_frames = 3000;
        f->input_features = calloc(128 * 3000, sizeof(float));
        f->feature_attention_mask = calloc(3000, sizeof(int32_t));
        for (int64_t i = 0; i < valid_frames; i++) f->feature_attention_mask[i] = 1;
        f->n_valid_frames = 12345; /* not used: the processor counts the mask */
    }
    return f;
}

static void fake_free(avl_features *f)
{
    free(f->pixel_values_videos);
    free(f->input_features);
    free(f->feature_attention_mask);
    free(f);
}

static void expect_ids(const avl_prompt *pr, const ids_t *e)
{
    assert_int_equal(pr->n, e->n);
    for (int64_t i = 0; i < e->n; i++)
        if (pr->ids[i] != e->v[i]) fail_msg("id %lld: got %d, want %d", (long long)i, pr->ids[i], e->v[i]);
}

static const char *HEAD = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n";
static const char *TEXT = "What is the moving shape?";
static const char *TAIL = "<|im_end|>\n<|im_start|>assistant\n";

/* The paper's layout: video with its own audio, 400 valid mel frames -> 100 audio tokens in two
 * 2-second chunks of 50, interleaved with two video chunks of 12. */
static void test_audio_in_video(void **state)
{
    (void)state;
    avl_features *f = fake(true, 400);
    avl_prompt_params p = avl_prompt_default_params();
    p.text = TEXT;
    p.use_audio_in_video = true;
    avl_prompt *pr;
    assert_int_equal(avl_prompt_build(tok, &sp, f, &p, &pr), AVL_OK);
    ids_t e = {.n = 0};
    add_text(&e, HEAD);
    add_rep(&e, sp.vision_start_token_id, 1);
    add_rep(&e, sp.audio_start_token_id, 1);
    add_rep(&e, sp.video_token_id, 12);
    add_rep(&e, sp.audio_token_id, 50);
    add_rep(&e, sp.video_token_id, 12);
    add_rep(&e, sp.audio_token_id, 50);
    add_rep(&e, sp.audio_end_token_id, 1);
    add_rep(&e, sp.vision_end_token_id, 1);
    add_text(&e, TEXT);
    add_text(&e, TAIL);
    expect_ids(pr, &e);
    assert_int_equal(pr->n_video_tokens, 24);
    assert_int_equal(pr->n_audio_tokens, 100);
    assert_true(strstr(pr->chat, "<|vision_bos|><|VIDEO|><|vision_eos|>What is") != NULL);
    assert_null(strstr(pr->chat, "<|AUDIO|>"));
    assert_int_equal(pr->n_chat_ids, e.n - 124 - 2 + 1); /* one <|VIDEO|>, no audio bos/eos before */
    /* the inputs point at the features and carry the shapes */
    assert_ptr_equal(pr->inputs.input_ids, pr->ids);
    assert_int_equal(pr->inputs.n, pr->n);
    assert_true(pr->inputs.use_audio_in_video);
    assert_ptr_equal(pr->inputs.pixel_values_videos, f->pixel_values_videos);
    assert_ptr_equal(pr->inputs.input_features, f->input_features);
    assert_int_equal(pr->inputs.n_feature_frames, 3000);
    assert_int_equal(pr->inputs.media.n_videos, 1);
    assert_int_equal(pr->inputs.media.n_audios, 1);
    assert_int_equal(pr->inputs.media.audio_feature_len[0], 400);
    assert_int_equal(pr->inputs.media.video_grid_thw[0][2], 6);
    /* the token map agrees with the expansion */
    avl_token_map *map;
    assert_int_equal(avl_seq_positions(&sp, pr->ids, pr->n, &pr->inputs.media, true, &map), AVL_OK);
    assert_int_equal(map->n_video, 24);
    assert_int_equal(map->n_audio, 100);
    avl_token_map_free(map);
    avl_prompt_free(pr);
    fake_free(f);
}

/* A separate audio file: the video block, then the audio block, then the text. */
static void test_video_then_audio(void **state)
{
    (void)state;
    avl_features *f = fake(true, 230); /* 230 frames -> 115 -> 57 tokens */
    avl_prompt_params p = avl_prompt_default_params();
    p.text = TEXT;
    avl_prompt *pr;
    assert_int_equal(avl_prompt_build(tok, &sp, f, &p, &pr), AVL_OK);
    ids_t e = {.n = 0};
    add_text(&e, HEAD);
    add_rep(&e, sp.vision_start_token_id, 1);
    add_rep(&e, sp.video_token_id, 24);
    add_rep(&e, sp.vision_end_token_id, 1);
    add_rep(&e, sp.audio_start_token_id, 1);
    add_rep(&e, sp.audio_token_id, 57);
    add_rep(&e, sp.audio_end_token_id, 1);
    add_text(&e, TEXT);
    add_text(&e, TAIL);
    expect_ids(pr, &e);
    assert_false(pr->inputs.use_audio_in_video);
    avl_prompt_free(pr);
    fake_free(f);
}

/* Audio only, a custom system text with characters JSON must escape, no generation prompt. */
static void test_audio_only_custom_system(void **state)
{
    (void)state;
    avl_features *f = fake(false, 1000); /* 250 tokens */
    avl_prompt_params p = avl_prompt_default_params();
    p.system = "Say \"yes\"\tor\\no.\nThen stop.";
    p.text = "Heard?";
    p.add_generation_prompt = false;
    avl_prompt *pr;
    assert_int_equal(avl_prompt_build(tok, &sp, f, &p, &pr), AVL_OK);
    ids_t e = {.n = 0};
    add_text(&e, "<|im_start|>system\nSay \"yes\"\tor\\no.\nThen stop.<|im_end|>\n<|im_start|>user\n");
    add_rep(&e, sp.audio_start_token_id, 1);
    add_rep(&e, sp.audio_token_id, 250);
    add_rep(&e, sp.audio_end_token_id, 1);
    add_text(&e, "Heard?<|im_end|>\n");
    expect_ids(pr, &e);
    assert_null(pr->inputs.pixel_values_videos);
    avl_prompt_free(pr);
    fake_free(f);
}

/* No features: a text-only chat, identical to rendering and encoding it directly. */
static void test_text_only(void **state)
{
    (void)state;
    avl_prompt_params p = avl_prompt_default_params();
    p.text = TEXT;
    avl_prompt *pr;
    assert_int_equal(avl_prompt_build(tok, &sp, NULL, &p, &pr), AVL_OK);
    ids_t e = {.n = 0};
    add_text(&e, HEAD);
    add_text(&e, TEXT);
    add_text(&e, TAIL);
    expect_ids(pr, &e);
    assert_int_equal(pr->n_chat_ids, pr->n);
    assert_int_equal(pr->n_video_tokens + pr->n_audio_tokens, 0);
    avl_prompt_free(pr);
}

static void test_errors(void **state)
{
    (void)state;
    avl_prompt *pr = (avl_prompt *)1;
    avl_prompt_params p = avl_prompt_default_params();
    p.use_audio_in_video = true;
    avl_features *f = fake(true, 0);
    AVL_EXPECT_ERROR(avl_prompt_build(tok, &sp, f, &p, &pr), AVL_E_ARG, "use_audio_in_video", "no audio");
    assert_null(pr);
    fake_free(f);
    f = fake(false, 100);
    AVL_EXPECT_ERROR(avl_prompt_build(tok, &sp, f, &p, &pr), AVL_E_ARG, "no video");
    p.use_audio_in_video = false;
    /* a config whose ids do not match the tokenizer */
    avl_seq_params bad = sp;
    bad.audio_token_id = 7;
    AVL_EXPECT_ERROR(avl_prompt_build(tok, &bad, f, &p, &pr), AVL_E_ARG, "<|AUDIO|>", "the config 7");
    fake_free(f);
    avl_prompt_free(NULL);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    avl_features *f = fake(true, 400);
    avl_prompt_params p = avl_prompt_default_params();
    p.text = TEXT;
    p.use_audio_in_video = true;
    for (int64_t k = 1;; k++) {
        avl_prompt *pr = NULL;
        avl__alloc_fail_after(k);
        avl_status rc = avl_prompt_build(tok, &sp, f, &p, &pr);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            assert_int_equal(pr->n_video_tokens, 24);
            assert_int_equal(pr->n_audio_tokens, 100);
            avl_prompt_free(pr);
            break;
        }
        assert_int_equal(rc, AVL_E_NOMEM);
        assert_null(pr);
        if (k > 10000) fail_msg("never succeeded");
    }
    fake_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audio_in_video),       cmocka_unit_test(test_video_then_audio),
        cmocka_unit_test(test_audio_only_custom_system), cmocka_unit_test(test_text_only),
        cmocka_unit_test(test_errors),               cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
