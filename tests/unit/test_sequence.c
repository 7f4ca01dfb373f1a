/* tests/unit/test_sequence.c: placeholder expansion, TMRoPE position ids and the token map,
 * on cases worked out by hand from get_rope_index's rules (see the comments of each case). */
#include "avl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

enum { T = 10, VS = 151652, VE = 151653, AS = 151647, AE = 151648, V = 151656, A = 151646, I = 151655 };

static avl_seq_params P;

static int setup(void **state)
{
    (void)state;
    P = avl_seq_default_params();
    return 0;
}

static void expect_axis(const avl_token_map *m, int axis, int64_t from, const int64_t *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (m->pos[axis * m->n + from + i] != want[i])
            fail_msg("axis %d position %lld: got %lld, want %lld", axis, (long long)(from + i),
                     (long long)m->pos[axis * m->n + from + i], (long long)want[i]);
}

static void expect_all_axes_linear(const avl_token_map *m, int64_t from, int64_t start, int64_t n)
{
    for (int a = 0; a < 3; a++)
        for (int64_t i = 0; i < n; i++)
            if (m->pos[a * m->n + from + i] != start + i)
                fail_msg("axis %d position %lld: got %lld, want %lld", a, (long long)(from + i),
                         (long long)m->pos[a * m->n + from + i], (long long)(start + i));
}

static void test_audio_token_count(void **state)
{
    (void)state;
    /* 100 mel frames per second -> 25 tokens per second */
    assert_int_equal(avl_audio_tokens_for_frames(3000), 750);
    assert_int_equal(avl_audio_tokens_for_frames(400), 100);
    assert_int_equal(avl_audio_tokens_for_frames(240), 60);
    assert_int_equal(avl_audio_tokens_for_frames(1), 0); /* ((0)//2+1-2)//2+1 = (-1)//2+1 = 0 */
}

static void test_text_only(void **state)
{
    (void)state;
    int32_t ids[5] = {T, T, T, T, T};
    avl_media_shape m = {0};
    avl_token_map *map;
    assert_int_equal(avl_seq_positions(&P, ids, 5, &m, false, &map), AVL_OK);
    expect_all_axes_linear(map, 0, 0, 5);
    assert_int_equal(map->rope_delta, 0);
    assert_int_equal(map->tok[3].kind, AVL_TOK_TEXT);
    avl_token_map_free(map);
}

/* The docstring example of get_rope_index with bos/eos and text around it: grid (3, 4, 4),
 * 2 s per grid -> temporal ids step 50; text [0,1], bos 2, video starts at 3, eos = 103 + 1. */
static void test_video_only(void **state)
{
    (void)state;
    int32_t chat[5] = {T, T, VS, V, VE};
    avl_media_shape m = {.n_videos = 1, .video_grid_thw = {{3, 4, 4}}, .video_second_per_grid = {2.0}};
    int32_t *ids;
    int64_t n;
    assert_int_equal(avl_seq_expand(&P, chat, 5, &m, false, &ids, &n), AVL_OK);
    assert_int_equal(n, 2 + 1 + 12 + 1);
    int32_t *ids2 = realloc(ids, (size_t)(n + 2) * sizeof *ids);
    ids = ids2;
    ids[n] = T;
    ids[n + 1] = T;
    n += 2;
    avl_token_map *map;
    assert_int_equal(avl_seq_positions(&P, ids, n, &m, false, &map), AVL_OK);
    expect_all_axes_linear(map, 0, 0, 3);
    int64_t t[12] = {3, 3, 3, 3, 53, 53, 53, 53, 103, 103, 103, 103};
    int64_t h[12] = {3, 3, 4, 4, 3, 3, 4, 4, 3, 3, 4, 4};
    int64_t w[12] = {3, 4, 3, 4, 3, 4, 3, 4, 3, 4, 3, 4};
    expect_axis(map, 0, 3, t, 12);
    expect_axis(map, 1, 3, h, 12);
    expect_axis(map, 2, 3, w, 12);
    expect_all_axes_linear(map, 15, 104, 3);
    assert_int_equal(map->rope_delta, 106 + 1 - 18);
    /* token map: the 6th video token is grid t=1, row 0, col 1 */
    const avl_token_info *ti = &map->tok[3 + 5];
    assert_int_equal(ti->kind, AVL_TOK_VIDEO);
    assert_int_equal(ti->t, 1);
    assert_int_equal(ti->row, 0);
    assert_int_equal(ti->col, 1);
    assert_int_equal(ti->index, 5);
    assert_true(ti->t0 == 2.0f && ti->t1 == 4.0f);
    assert_int_equal(map->tok[2].kind, AVL_TOK_SPECIAL);
    assert_int_equal(map->n_video, 12);
    avl_token_map_free(map);
    free(ids);
}

/* Audio in video over two 2-second chunks: grid (4, 4, 4) at 1 s per grid (t ids 0, 25, 50, 75),
 * 400 mel frames = 100 audio tokens. Layout: T T VS AS V*8 A*50 V*8 A*50 AE VE T.
 * Positions: text 0 1; the bos pair both 2; video from 3 (t 3, 28 | 53, 78), audio 3..102;
 * the last block (audio 53..102) ends at 102, so the eos pair is 103 103; text 104. */
static void test_audio_in_video_two_chunks(void **state)
{
    (void)state;
    int32_t chat[6] = {T, T, VS, V, VE, T};
    avl_media_shape m = {.n_videos = 1,
                         .video_grid_thw = {{4, 4, 4}},
                         .video_second_per_grid = {1.0},
                         .n_audios = 1,
                         .audio_feature_len = {400}};
    int32_t *ids;
    int64_t n;
    assert_int_equal(avl_seq_expand(&P, chat, 6, &m, true, &ids, &n), AVL_OK);
    assert_int_equal(n, 123);
    assert_int_equal(ids[2], VS);
    assert_int_equal(ids[3], AS);
    for (int i = 4; i < 12; i++) assert_int_equal(ids[i], V);
    for (int i = 12; i < 62; i++) assert_int_equal(ids[i], A);
    for (int i = 62; i < 70; i++) assert_int_equal(ids[i], V);
    for (int i = 70; i < 120; i++) assert_int_equal(ids[i], A);
    assert_int_equal(ids[120], AE);
    assert_int_equal(ids[121], VE);
    assert_int_equal(ids[122], T);

    avl_token_map *map;
    assert_int_equal(avl_seq_positions(&P, ids, n, &m, true, &map), AVL_OK);
    expect_all_axes_linear(map, 0, 0, 2);
    for (int a = 0; a < 3; a++) {
        assert_int_equal(map->pos[a * n + 2], 2);
        assert_int_equal(map->pos[a * n + 3], 2);
        assert_int_equal(map->pos[a * n + 120], 103);
        assert_int_equal(map->pos[a * n + 121], 103);
        assert_int_equal(map->pos[a * n + 122], 104);
    }
    int64_t t0[8] = {3, 3, 3, 3, 28, 28, 28, 28}, t1[8] = {53, 53, 53, 53, 78, 78, 78, 78};
    expect_axis(map, 0, 4, t0, 8);
    expect_axis(map, 0, 62, t1, 8);
    int64_t hrow[8] = {3, 3, 4, 4, 3, 3, 4, 4};
    expect_axis(map, 1, 62, hrow, 8);
    expect_all_axes_linear(map, 12, 3, 50);
    expect_all_axes_linear(map, 70, 53, 50);
    assert_int_equal(map->rope_delta, 105 - 123);
    /* token map: chunks and items */
    assert_int_equal(map->tok[4].chunk, 0);
    assert_int_equal(map->tok[62].chunk, 1);
    assert_int_equal(map->tok[62].t, 2);
    assert_int_equal(map->tok[12].kind, AVL_TOK_AUDIO);
    assert_int_equal(map->tok[12].chunk, 0);
    assert_int_equal(map->tok[70].index, 50);
    assert_int_equal(map->tok[70].chunk, 1);
    assert_true(map->tok[70].t0 > 1.99f && map->tok[70].t0 < 2.01f);
    assert_int_equal(map->n_audio, 100);
    assert_int_equal(map->n_video, 16);
    avl_token_map_free(map);
    free(ids);
}

/* The quirk: with audio in video, the eos pair starts after the LAST block, here audio ending at
 * 1 + 59 = 60, below the video's 1 + 75 = 76. Grid (4,4,4) at 1 s; 240 frames = 60 tokens.
 * Layout: VS AS V*8 A*50 V*8 A*10 AE VE; bos pair at 0, media from 1, eos pair at 61. */
static void test_audio_in_video_last_block_quirk(void **state)
{
    (void)state;
    int32_t chat[3] = {VS, V, VE};
    avl_media_shape m = {.n_videos = 1,
                         .video_grid_thw = {{4, 4, 4}},
                         .video_second_per_grid = {1.0},
                         .n_audios = 1,
                         .audio_feature_len = {240}};
    int32_t *ids;
    int64_t n;
    assert_int_equal(avl_seq_expand(&P, chat, 3, &m, true, &ids, &n), AVL_OK);
    assert_int_equal(n, 2 + 8 + 50 + 8 + 10 + 2);
    avl_token_map *map;
    assert_int_equal(avl_seq_positions(&P, ids, n, &m, true, &map), AVL_OK);
    /* bos pair at 0 (no text before), media from 1 */
    assert_int_equal(map->pos[0], 0);
    assert_int_equal(map->pos[1], 0);
    assert_int_equal(map->pos[2], 1);           /* first video token, t = 0 */
    assert_int_equal(map->pos[60], 1 + 50);     /* first video token of chunk 1: t = 50 */
    expect_all_axes_linear(map, 68, 51, 10);    /* audio 50..59 */
    assert_int_equal(map->pos[n - 2], 61);
    assert_int_equal(map->pos[n - 1], 61);
    assert_int_equal(map->rope_delta, (1 + 75 + 1) - n); /* the global max is the video's 76 */
    avl_token_map_free(map);
    free(ids);
}

/* Audio longer than video: grid (2,4,4) at 1 s (t 0, 25: one chunk), 100 audio tokens (two
 * chunks): V*8 A*50 A*50. */
static void test_audio_longer_than_video(void **state)
{
    (void)state;
    int32_t chat[3] = {VS, V, VE};
    avl_media_shape m = {.n_videos = 1,
                         .video_grid_thw = {{2, 4, 4}},
                         .video_second_per_grid = {1.0},
                         .n_audios = 1,
                         .audio_feature_len = {400}};
    int32_t *ids;
    int64_t n;
    assert_int_equal(avl_seq_expand(&P, chat, 3, &m, true, &ids, &n), AVL_OK);
    assert_int_equal(n, 2 + 8 + 100 + 2);
    for (int i = 2; i < 10; i++) assert_int_equal(ids[i], V);
    for (int i = 10; i < 110; i++) assert_int_equal(ids[i], A);
    avl_token_map *map;
    assert_int_equal(avl_seq_positions(&P, ids, n, &m, true, &map), AVL_OK);
    expect_all_axes_linear(map, 10, 1, 100);
    assert_int_equal(map->pos[n - 1], 101);
    assert_int_equal(map->tok[10 + 60].chunk, 1);
    avl_token_map_free(map);
    free(ids);
}

/* Separate audio then an image: T AS A*k AE T VS I*4 VE: audio positions are consecutive;
 * the image's temporal id is t * 25 = 0 for its single grid. */
static void test_audio_then_image(void **state)
{
    (void)state;
    int32_t chat[9] = {T, AS, A, AE, T, VS, I, VE, T};
    avl_media_shape m = {.n_images = 1, .image_grid_thw = {{1, 4, 4}}, .n_audios = 1, .audio_feature_len = {200}};
    int32_t *ids;
    int64_t n;
    assert_int_equal(avl_seq_expand(&P, chat, 9, &m, false, &ids, &n), AVL_OK);
    assert_int_equal(n, 9 - 2 + 50 + 4);
    avl_token_map *map;
    assert_int_equal(avl_seq_positions(&P, ids, n, &m, false, &map), AVL_OK);
    expect_all_axes_linear(map, 0, 0, 1 + 1 + 50 + 1 + 1 + 1); /* T AS A*50 AE T VS */
    int64_t h[4] = {55, 55, 56, 56}, w[4] = {55, 56, 55, 56}, t[4] = {55, 55, 55, 55};
    expect_axis(map, 0, 55, t, 4);
    expect_axis(map, 1, 55, h, 4);
    expect_axis(map, 2, 55, w, 4);
    expect_all_axes_linear(map, 59, 57, 2); /* VE, T */
    assert_int_equal(map->tok[55].kind, AVL_TOK_IMAGE);
    assert_int_equal(map->n_image, 4);
    avl_token_map_free(map);
    free(ids);
}

static void test_mismatch_errors(void **state)
{
    (void)state;
    int32_t chat[3] = {VS, V, VE};
    avl_media_shape none = {0};
    int32_t *ids;
    int64_t n;
    AVL_EXPECT_ERROR(avl_seq_expand(&P, chat, 3, &none, false, &ids, &n), AVL_E_ARG, "video placeholder",
                     "position 1");
    avl_media_shape two = {.n_videos = 2, .video_grid_thw = {{2, 4, 4}, {2, 4, 4}}, .video_second_per_grid = {1, 1}};
    AVL_EXPECT_ERROR(avl_seq_expand(&P, chat, 3, &two, false, &ids, &n), AVL_E_ARG, "2 video");
    int32_t bare[1] = {V};
    avl_media_shape one = {.n_videos = 1, .video_grid_thw = {{2, 4, 4}}, .video_second_per_grid = {1},
                           .n_audios = 1, .audio_feature_len = {100}};
    AVL_EXPECT_ERROR(avl_seq_expand(&P, bare, 1, &one, true, &ids, &n), AVL_E_ARG, "not wrapped");
    /* positions: a grid that says 16 tokens for a sequence that holds 4 */
    int32_t short_ids[6] = {VS, V, V, V, V, VE};
    avl_media_shape big = {.n_videos = 1, .video_grid_thw = {{4, 4, 4}}, .video_second_per_grid = {1}};
    avl_token_map *map;
    assert_int_not_equal(avl_seq_positions(&P, short_ids, 6, &big, false, &map), AVL_OK);
    assert_null(map);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    int32_t chat[6] = {T, T, VS, V, VE, T};
    avl_media_shape m = {.n_videos = 1, .video_grid_thw = {{4, 4, 4}}, .video_second_per_grid = {1.0},
                         .n_audios = 1, .audio_feature_len = {400}};
    for (int64_t k = 1;; k++) {
        int32_t *ids = NULL;
        int64_t n = 0;
        avl_token_map *map = NULL;
        avl__alloc_fail_after(k);
        avl_status rc = avl_seq_expand(&P, chat, 6, &m, true, &ids, &n);
        if (rc == AVL_OK) rc = avl_seq_positions(&P, ids, n, &m, true, &map);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            avl_token_map_free(map);
            avl_free(ids);
            break;
        }
        assert_int_equal(rc, AVL_E_NOMEM);
        avl_free(ids);
        assert_true(k < 100);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audio_token_count),
        cmocka_unit_test(test_text_only),
        cmocka_unit_test(test_video_only),
        cmocka_unit_test(test_audio_in_video_two_chunks),
        cmocka_unit_test(test_audio_in_video_last_block_quirk),
        cmocka_unit_test(test_audio_longer_than_video),
        cmocka_unit_test(test_audio_then_image),
        cmocka_unit_test(test_mismatch_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
