/* tests/support/av_seq.h: the small audio-in-video token map the analysis unit tests share
 * (header-only; include after avl_test.h): text, one video of grid 2 x 4 x 4 patches (2
 * temporal indices of 2 x 2 merged tokens, 2 s each) with its audio (200 mel frames: 50 tokens)
 * interleaved in 2-second chunks, text. */
#ifndef AVL_TEST_AV_SEQ_H
#define AVL_TEST_AV_SEQ_H

static inline avl_token_map *av_map(void)
{
    avl_seq_params sp = avl_seq_default_params();
    int32_t chat[5] = {40, sp.vision_start_token_id, sp.video_token_id, sp.vision_end_token_id, 41};
    avl_media_shape ms = {0};
    ms.n_videos = 1;
    ms.video_grid_thw[0][0] = 2;
    ms.video_grid_thw[0][1] = 4;
    ms.video_grid_thw[0][2] = 4;
    ms.video_second_per_grid[0] = 2.0;
    ms.n_audios = 1;
    ms.audio_feature_len[0] = 200;
    int32_t *ids;
    int64_t n;
    avl_token_map *map;
    assert_int_equal(avl_seq_expand(&sp, chat, 5, &ms, true, &ids, &n), AVL_OK);
    assert_int_equal(avl_seq_positions(&sp, ids, n, &ms, true, &map), AVL_OK);
    avl_free(ids);
    return map;
}

#endif
