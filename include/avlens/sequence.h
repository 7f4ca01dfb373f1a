/* avlens/sequence.h: the token sequence of one Qwen2.5-Omni input: placeholder expansion,
 * 3-D rotary position ids (TMRoPE) and the token map.
 *
 *   avl_seq_params sp = avl_seq_default_params();      // Qwen2.5-Omni's ids; or from a config
 *   avl_media_shape m = {.n_videos = 1, .video_grid_thw = {{10, 24, 24}}, .video_second_per_grid = {2.0},
 *                        .n_audios = 1, .audio_feature_len = {1000}};
 *   int32_t *ids; int64_t n;
 *   avl_seq_expand(&sp, chat_ids, n_chat, &m, true, &ids, &n);   // one <|VIDEO|> -> interleaved chunks
 *   avl_token_map *map;
 *   avl_seq_positions(&sp, ids, n, &m, true, &map);              // map->pos: (3, n)
 *
 * Mirrors Hugging Face transformers, models/qwen2_5_omni: processing_qwen2_5_omni.py
 * (replace_multimodal_special_tokens, get_chunked_index) for the expansion and
 * modeling_qwen2_5_omni.py (get_rope_index, get_llm_pos_ids_for_vision, get_chunked_index) for
 * the positions, including their arithmetic: the processor places video tokens into 2-second
 * chunks by t * second_per_grid * 25 in double precision, the position ids truncate the same
 * product computed in single precision.
 */
#ifndef AVLENS_SEQUENCE_H
#define AVLENS_SEQUENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AVL_MAX_MEDIA 16

typedef struct {
    int32_t audio_token_id;        /* <|AUDIO|> 151646 */
    int32_t image_token_id;        /* <|IMAGE|> 151655 */
    int32_t video_token_id;        /* <|VIDEO|> 151656 */
    int32_t vision_start_token_id; /* <|vision_bos|> 151652 */
    int32_t vision_end_token_id;   /* <|vision_eos|> 151653 */
    int32_t audio_start_token_id;  /* <|audio_bos|> 151647 */
    int32_t audio_end_token_id;    /* <|audio_eos|> 151648 */
    int spatial_merge_size;        /* 2: one LLM token per 2x2 patches */
    int position_id_per_seconds;   /* 25 */
    double seconds_per_chunk;      /* 2.0 */
} avl_seq_params;

/* Qwen2.5-Omni's published values (7B and 3B share them). */
avl_seq_params avl_seq_default_params(void);

/* The shapes of the media items, in the order their placeholders appear. */
typedef struct {
    int n_images;
    int64_t image_grid_thw[AVL_MAX_MEDIA][3]; /* patch grid (t, h, w) before merging */
    int n_videos;
    int64_t video_grid_thw[AVL_MAX_MEDIA][3];
    double video_second_per_grid[AVL_MAX_MEDIA]; /* seconds per temporal grid (2 / fps) */
    int n_audios;                                /* with use_audio_in_video, one per video */
    int64_t audio_feature_len[AVL_MAX_MEDIA];    /* valid mel frames (feature_attention_mask sum) */
} avl_media_shape;

/* Audio tokens the encoder makes from n valid mel frames: ((n - 1) / 2 + 1 - 2) / 2 + 1. */
int64_t avl_audio_tokens_for_frames(int64_t n_frames);

/* Expands each single placeholder of a rendered chat (<|AUDIO|>, <|IMAGE|>, <|VIDEO|>) to as
 * many tokens as its item yields; with use_audio_in_video, each
 * <|vision_bos|><|VIDEO|><|vision_eos|> becomes <|vision_bos|><|audio_bos|> then, chunk by
 * 2-second chunk, the chunk's video tokens followed by its audio tokens, then
 * <|audio_eos|><|vision_eos|>. *out is allocated (free with avl_free). Errors (AVL_E_ARG): more
 * placeholders than items, or items left over. */
avl_status avl_seq_expand(const avl_seq_params *p, const int32_t *ids, int64_t n, const avl_media_shape *m,
                          bool use_audio_in_video, int32_t **out, int64_t *n_out);

typedef enum {
    AVL_TOK_TEXT = 0,  /* ordinary text, chat-template tokens */
    AVL_TOK_SPECIAL,   /* media delimiters: vision/audio bos and eos */
    AVL_TOK_AUDIO,
    AVL_TOK_VIDEO,
    AVL_TOK_IMAGE
} avl_tok_kind;

/* What one position of the sequence is. */
typedef struct {
    int8_t kind;     /* avl_tok_kind */
    int8_t item;     /* which video / audio / image (0-based); -1 for text */
    int16_t chunk;   /* 2-second chunk within an audio-in-video item; -1 elsewhere */
    int32_t index;   /* index of the token within its item (video: t*h*w + row*w + col) */
    int32_t t, row, col; /* video/image: temporal grid and merged row/col; audio: t = index */
    float t0, t1;    /* time span in seconds: video: grid span; audio: 40 ms per token */
} avl_token_info;

/* The token map of a sequence (ARCHITECTURE.md): built once with the sequence. */
typedef struct {
    int64_t n;
    int64_t *pos;          /* (3, n): temporal, height, width position ids */
    avl_token_info *tok;   /* (n) */
    int64_t rope_delta;    /* max position + 1 - n: generated token i sits at n + i + rope_delta */
    int64_t n_audio, n_video, n_image; /* counts of each kind */
} avl_token_map;

/* Position ids as get_rope_index computes them, and the token map. Errors (AVL_E_ARG) name the
 * position where the ids and the media shapes disagree. */
avl_status avl_seq_positions(const avl_seq_params *p, const int32_t *ids, int64_t n, const avl_media_shape *m,
                             bool use_audio_in_video, avl_token_map **out);
void avl_token_map_free(avl_token_map *map);

/* Frees memory that avlens allocated and handed to the caller. NULL-safe. */
void avl_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
