/* tests/fuzz/fuzz_mask.c: libFuzzer target for the grey-mask-to-token-cells path
 * (avl_mask_grey, avl_tokset_object_video): the first bytes choose the merged token grid, the
 * mask size and the threshold, the rest are the pixels of two masks (RGB turned grey, then the
 * grey bytes themselves). Any input must give AVL_OK or a status with a detail, never a crash;
 * an accepted set must hold ascending video tokens of the item, at most all of them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "avlens/avlens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5) return 0;
    int hc = 1 + data[0] % 6, wc = 1 + data[1] % 6;          /* merged cells */
    int64_t mh = 1 + data[2] % 64, mw = 1 + data[3] % 64;    /* mask size */
    int threshold = data[4];
    data += 5;
    size -= 5;

    avl_seq_params sp = avl_seq_default_params();
    int32_t chat[5] = {40, sp.vision_start_token_id, sp.video_token_id, sp.vision_end_token_id, 41};
    avl_media_shape ms = {0};
    ms.n_videos = 1;
    ms.video_grid_thw[0][0] = 2;
    ms.video_grid_thw[0][1] = 2 * hc;
    ms.video_grid_thw[0][2] = 2 * wc;
    ms.video_second_per_grid[0] = 2.0;
    int32_t *ids = NULL;
    int64_t n = 0;
    avl_token_map *map = NULL;
    if (avl_seq_expand(&sp, chat, 5, &ms, false, &ids, &n) != AVL_OK) abort();
    if (avl_seq_positions(&sp, ids, n, &ms, false, &map) != AVL_OK) abort();
    avl_free(ids);

    size_t px = (size_t)(mh * mw);
    uint8_t *grey = malloc(2 * px), *rgb = malloc(3 * px);
    if (!grey || !rgb) abort();
    /* mask 0 from RGB bytes through the grey conversion, mask 1 from the bytes as they are */
    for (size_t i = 0; i < 3 * px; i++) rgb[i] = size ? data[i % size] : 0;
    avl_mask_grey(rgb, (int64_t)px, grey);
    for (size_t i = 0; i < px; i++) grey[px + i] = size ? data[(3 * px + i) % size] : 0;
    const uint8_t *masks[3] = {grey, grey + px, NULL};
    int64_t n_masks = 1 + (size % 3); /* 1 to 3: more masks than grid indices must be harmless */
    avl_tokset s = {0};
    avl_status rc = avl_tokset_object_video(map, 0, masks, n_masks, mh, mw, threshold, &s);
    if (rc != AVL_OK) {
        if (!avl_last_error()[0]) abort(); /* every failure explains itself */
    } else {
        if (s.n > map->n_video) abort();
        for (int64_t i = 0; i < s.n; i++) {
            if (s.pos[i] < 0 || s.pos[i] >= map->n || map->tok[s.pos[i]].kind != AVL_TOK_VIDEO) abort();
            if (i > 0 && s.pos[i] <= s.pos[i - 1]) abort();
        }
    }
    avl_tokset_free(&s);
    free(grey);
    free(rgb);
    avl_token_map_free(map);
    return 0;
}
