/* src/model/sequence.c: placeholder expansion, TMRoPE position ids and the token map.
 *
 * Mirrors Hugging Face transformers, models/qwen2_5_omni/:
 *   processing_qwen2_5_omni.py  Qwen2_5OmniProcessor.replace_multimodal_special_tokens and
 *                               get_chunked_index (expansion, chunks by float64 time values);
 *   modeling_qwen2_5_omni.py    get_rope_index, get_llm_pos_ids_for_vision, get_chunked_index
 *                               (positions; video times truncated from float32 products).
 * The expansion works on token ids rather than text: the placeholders are special tokens, which
 * the tokenizer splits out before anything else, so expanding ids equals expanding text.
 * Quirks kept on purpose: a block's start is "max of the previous block + 1" (the previous
 * block only, not the running maximum), and the two bos (and two eos) tokens of an audio-in-video
 * item share one position.
 */
#include <stdlib.h>
#include <string.h>

#include "avlens/sequence.h"
#include "base/internal.h"

avl_seq_params avl_seq_default_params(void)
{
    avl_seq_params p = {
        .audio_token_id = 151646,
        .image_token_id = 151655,
        .video_token_id = 151656,
        .vision_start_token_id = 151652,
        .vision_end_token_id = 151653,
        .audio_start_token_id = 151647,
        .audio_end_token_id = 151648,
        .spatial_merge_size = 2,
        .position_id_per_seconds = 25,
        .seconds_per_chunk = 2.0,
    };
    return p;
}

void avl_free(void *p) { avl__free(p); }

int64_t avl_audio_tokens_for_frames(int64_t n_frames)
{
    /* Python floor division; for n_frames >= 1 every operand is non-negative but for tiny
     * inputs ((x - 2) < 0) floor and C truncation differ, so floor explicitly. */
    int64_t a = (n_frames - 1 >= 0) ? (n_frames - 1) / 2 + 1 : -((-(n_frames - 1) + 1) / 2) + 1;
    int64_t b = a - 2;
    int64_t c = b >= 0 ? b / 2 : -((-b + 1) / 2);
    return c + 1;
}

/* ---- growable id buffer ---- */
typedef struct {
    int32_t *v;
    int64_t n, cap;
} idbuf;

static bool idbuf_push(idbuf *b, int32_t id, int64_t count)
{
    if (count < 0) return false;
    if (b->n + count > b->cap) {
        int64_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + count) cap *= 2;
        int32_t *v = avl__realloc(b->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        b->v = v;
        b->cap = cap;
    }
    for (int64_t i = 0; i < count; i++) b->v[b->n++] = id;
    return true;
}

/* The processor's get_chunked_index over values val(i), i < n: the end (exclusive) of each
 * chunk goes to ends[]; returns the number of chunks (at least 1). ends has room for n + 1. */
static int64_t chunk_ends(int64_t n, double (*val)(int64_t i, const void *ctx), const void *ctx, double per_chunk,
                          int64_t *ends)
{
    int64_t k = 0, cur = 1;
    for (int64_t i = 0; i < n; i++) {
        if (val(i, ctx) >= (double)cur * per_chunk) {
            ends[k++] = i;
            cur++;
        }
    }
    ends[k++] = n;
    return k;
}

typedef struct {
    int64_t hw;       /* merged tokens per temporal grid */
    double spg, pps;  /* seconds per grid, position ids per second */
} video_time_ctx;

/* processing_qwen2_5_omni: t * second_per_grid * position_id_per_seconds in float64 */
static double video_time_f64(int64_t i, const void *ctx)
{
    const video_time_ctx *c = ctx;
    return (double)(i / c->hw) * c->spg * c->pps;
}

static double audio_index_value(int64_t i, const void *ctx)
{
    (void)ctx;
    return (double)i;
}

avl_status avl_seq_expand(const avl_seq_params *p, const int32_t *ids, int64_t n, const avl_media_shape *m,
                          bool use_audio_in_video, int32_t **out, int64_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    int ia = 0, ii = 0, iv = 0;
    idbuf b = {0};
    int64_t *ends_v = NULL, *ends_a = NULL;
    int64_t mm = (int64_t)p->spatial_merge_size * p->spatial_merge_size;
    avl_status rc = AVL_OK;

#define NEED(cond, ...)                                                                                      \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            rc = avl__err(AVL_E_ARG, __VA_ARGS__);                                                           \
            goto done;                                                                                       \
        }                                                                                                    \
    } while (0)
#define PUSH(id, count)                                                                                      \
    do {                                                                                                     \
        if (!idbuf_push(&b, (id), (count))) {                                                                \
            rc = avl__err(AVL_E_NOMEM, "sequence: cannot grow the token buffer");                           \
            goto done;                                                                                       \
        }                                                                                                    \
    } while (0)

    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id == p->audio_token_id) {
            NEED(ia < m->n_audios, "sequence: audio placeholder at position %lld but only %d audio item(s)",
                 (long long)i, m->n_audios);
            PUSH(id, avl_audio_tokens_for_frames(m->audio_feature_len[ia++]));
        } else if (id == p->image_token_id) {
            NEED(ii < m->n_images, "sequence: image placeholder at position %lld but only %d image(s)", (long long)i,
                 m->n_images);
            const int64_t *g = m->image_grid_thw[ii++];
            PUSH(id, g[0] * g[1] * g[2] / mm);
        } else if (id == p->video_token_id && !use_audio_in_video) {
            NEED(iv < m->n_videos, "sequence: video placeholder at position %lld but only %d video(s)", (long long)i,
                 m->n_videos);
            const int64_t *g = m->video_grid_thw[iv++];
            PUSH(id, g[0] * g[1] * g[2] / mm);
        } else if (id == p->video_token_id) {
            NEED(i > 0 && ids[i - 1] == p->vision_start_token_id && i + 1 < n && ids[i + 1] == p->vision_end_token_id,
                 "sequence: video placeholder at position %lld is not wrapped in vision bos/eos, which "
                 "use_audio_in_video needs",
                 (long long)i);
            NEED(iv < m->n_videos, "sequence: video placeholder at position %lld but only %d video(s)", (long long)i,
                 m->n_videos);
            NEED(ia < m->n_audios, "sequence: video at position %lld has no audio item left for use_audio_in_video",
                 (long long)i);
            const int64_t *g = m->video_grid_thw[iv];
            int64_t hw = (g[1] / p->spatial_merge_size) * (g[2] / p->spatial_merge_size);
            int64_t nv = g[0] * hw, na = avl_audio_tokens_for_frames(m->audio_feature_len[ia]);
            NEED(nv >= 0 && na >= 0, "sequence: video %d has an empty grid or audio", iv);
            ends_v = avl__malloc((size_t)(nv + 1) * sizeof *ends_v);
            ends_a = avl__malloc((size_t)(na + 1) * sizeof *ends_a);
            if (!ends_v || !ends_a) {
                rc = avl__err(AVL_E_NOMEM, "sequence: cannot allocate chunk tables");
                goto done;
            }
            video_time_ctx vc = {hw, m->video_second_per_grid[iv], (double)p->position_id_per_seconds};
            double per_chunk = (double)(int64_t)(p->position_id_per_seconds * p->seconds_per_chunk);
            int64_t kv = chunk_ends(nv, video_time_f64, &vc, per_chunk, ends_v);
            int64_t ka = chunk_ends(na, audio_index_value, NULL, per_chunk, ends_a);
            /* the <|vision_bos|> is already in b: add <|audio_bos|>, the chunks, then the eos pair,
             * consuming the <|vision_eos|> that follows */
            PUSH(p->audio_start_token_id, 1);
            int64_t sv = 0, sa = 0;
            for (int64_t j = 0; j < (kv > ka ? kv : ka); j++) {
                if (j < kv) {
                    PUSH(p->video_token_id, ends_v[j] - sv);
                    sv = ends_v[j];
                }
                if (j < ka) {
                    PUSH(p->audio_token_id, ends_a[j] - sa);
                    sa = ends_a[j];
                }
            }
            PUSH(p->audio_end_token_id, 1);
            PUSH(p->vision_end_token_id, 1);
            avl__free(ends_v);
            avl__free(ends_a);
            ends_v = ends_a = NULL;
            iv++;
            ia++;
            i++; /* the vision eos was emitted above */
        } else {
            PUSH(id, 1);
        }
    }
    NEED(ia == m->n_audios && iv == m->n_videos && ii == m->n_images,
         "sequence: %d audio, %d video and %d image item(s) given but the text has placeholders for %d, %d and %d",
         m->n_audios, m->n_videos, m->n_images, ia, iv, ii);
    *out = b.v;
    *n_out = b.n;
    b.v = NULL;
done:
    avl__free(b.v);
    avl__free(ends_v);
    avl__free(ends_a);
    return rc;
#undef NEED
#undef PUSH
}

/* ---- positions ---- */

/* Position blocks are written straight into pos (3, n) at cursor w; `last_max` is the maximum
 * of the most recent block, which is what get_rope_index reads as llm_pos_ids_list[-1].max(). */
typedef struct {
    int64_t *pos; /* (3, n) */
    int64_t n, w;
    int64_t last_max; /* -1: no block yet */
} posw;

static int64_t next_start(const posw *p) { return p->last_max + 1; }

/* A block of len positions start, start+1, ... on all three axes. */
static bool put_linear(posw *p, int64_t start, int64_t len)
{
    if (len <= 0) return true;
    if (p->w + len > p->n) return false;
    for (int64_t i = 0; i < len; i++) {
        for (int a = 0; a < 3; a++) p->pos[a * p->n + p->w + i] = start + i;
    }
    p->w += len;
    p->last_max = start + len - 1;
    return true;
}

/* Columns [c0, c1) of a (3, cols) block given as three arrays. */
static bool put_cols(posw *p, const int64_t *t, const int64_t *h, const int64_t *wv, int64_t c0, int64_t c1)
{
    if (c1 <= c0) return true;
    if (p->w + (c1 - c0) > p->n) return false;
    int64_t mx = INT64_MIN;
    for (int64_t c = c0; c < c1; c++) {
        p->pos[0 * p->n + p->w] = t[c];
        p->pos[1 * p->n + p->w] = h[c];
        p->pos[2 * p->n + p->w] = wv[c];
        if (t[c] > mx) mx = t[c];
        if (h[c] > mx) mx = h[c];
        if (wv[c] > mx) mx = wv[c];
        p->w++;
    }
    p->last_max = mx;
    return true;
}

/* get_llm_pos_ids_for_vision: (t_index[k], row, col) + start for every merged token. */
static void vision_positions(int64_t start, const int64_t *g, int merge, double spg, int pps, bool is_image,
                             int64_t *t, int64_t *h, int64_t *w)
{
    int64_t gh = g[1] / merge, gw = g[2] / merge, k = 0;
    for (int64_t ti = 0; ti < g[0]; ti++) {
        /* images: t * 1 * pps in integers; videos: (t * float32(spg)) * pps in float32, truncated */
        int64_t tv;
        if (is_image) tv = ti * pps;
        else {
            volatile float prod = (float)ti * (float)spg; /* volatile: keep the float32 rounding steps */
            volatile float prod2 = prod * (float)pps;
            tv = (int64_t)prod2;
        }
        for (int64_t r = 0; r < gh; r++)
            for (int64_t c = 0; c < gw; c++, k++) {
                t[k] = tv + start;
                h[k] = r + start;
                w[k] = c + start;
            }
    }
}

/* modeling get_chunked_index: values minus base, integer comparisons. */
static int64_t chunk_ends_i64(const int64_t *v, int64_t n, int64_t base, int64_t per_chunk, int64_t *ends)
{
    int64_t k = 0, cur = 1;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] - base >= cur * per_chunk) {
            ends[k++] = i;
            cur++;
        }
    }
    ends[k++] = n;
    return k;
}

static int64_t find_from(const int32_t *ids, int64_t n, int64_t st, int32_t id)
{
    for (int64_t i = st; i < n; i++)
        if (ids[i] == id) return i;
    return n + 1;
}

static avl_status fill_token_info(const avl_seq_params *p, const int32_t *ids, int64_t n, const avl_media_shape *m,
                                  bool use_audio_in_video, avl_token_map *map);

avl_status avl_seq_positions(const avl_seq_params *p, const int32_t *ids, int64_t n, const avl_media_shape *m,
                             bool use_audio_in_video, avl_token_map **out)
{
    *out = NULL;
    avl_status rc = AVL_OK;
    avl_token_map *map = avl__calloc(1, sizeof *map);
    int64_t *tmp = NULL, *ends_v = NULL, *ends_a = NULL;
    if (!map) return avl__err(AVL_E_NOMEM, "sequence: cannot allocate the token map");
    map->n = n;
    map->pos = avl__malloc((size_t)(3 * (n ? n : 1)) * sizeof *map->pos);
    map->tok = avl__calloc((size_t)(n ? n : 1), sizeof *map->tok);
    if (!map->pos || !map->tok) {
        rc = avl__err(AVL_E_NOMEM, "sequence: cannot allocate positions for %lld tokens", (long long)n);
        goto fail;
    }
#define NEED(cond, ...)                                                                                      \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            rc = avl__err(AVL_E_ARG, __VA_ARGS__);                                                           \
            goto fail;                                                                                       \
        }                                                                                                    \
    } while (0)

    posw pw = {map->pos, n, 0, -1};
    if (m->n_images == 0 && m->n_videos == 0) {
        /* get_rope_index's text branch (also taken for audio-only input, where the block rule
         * gives the same consecutive numbers) */
        NEED(put_linear(&pw, 0, n), "sequence: internal position overflow");
    } else {
        int64_t image_nums = 0, video_nums = 0, audio_nums = 0;
        for (int64_t i = 0; i < n; i++) {
            if (ids[i] == p->audio_start_token_id) audio_nums++;
            if (ids[i] == p->vision_start_token_id && i + 1 < n) {
                int32_t nx = ids[i + 1];
                if (nx == p->image_token_id) image_nums++;
                if (use_audio_in_video ? nx == p->audio_start_token_id : nx == p->video_token_id) video_nums++;
            }
        }
        int64_t mm_nums = use_audio_in_video ? image_nums + audio_nums : image_nums + video_nums + audio_nums;
        int64_t remain_img = image_nums, remain_vid = video_nums, remain_aud = audio_nums;
        int ia = 0, ii = 0, iv = 0;
        int64_t st = 0;
        int merge = p->spatial_merge_size;
        for (int64_t k = 0; k < mm_nums; k++) {
            int64_t ed_img = remain_img > 0 ? find_from(ids, n, st, p->image_token_id) : n + 1;
            int64_t ed_vid = remain_vid > 0 ? find_from(ids, n, st, p->video_token_id) : n + 1;
            int64_t ed_aud = remain_aud > 0 ? find_from(ids, n, st, p->audio_token_id) : n + 1;
            int64_t min_ed = ed_img < ed_vid ? ed_img : ed_vid;
            if (ed_aud < min_ed) min_ed = ed_aud;
            NEED(min_ed <= n, "sequence: a media start token at or after position %lld has no media tokens",
                 (long long)st);
            if (min_ed == ed_aud) {
                NEED(ia < m->n_audios, "sequence: audio tokens at position %lld but no audio item left",
                     (long long)min_ed);
                int64_t text_len = min_ed - st - 1;
                NEED(text_len >= 0, "sequence: audio tokens at position %lld lack their audio bos", (long long)min_ed);
                NEED(put_linear(&pw, next_start(&pw), text_len), "sequence: ids longer than their layout");
                NEED(put_linear(&pw, next_start(&pw), 1), "sequence: ids longer than their layout");
                int64_t alen = avl_audio_tokens_for_frames(m->audio_feature_len[ia]);
                NEED(put_linear(&pw, next_start(&pw), alen), "sequence: audio %d needs %lld tokens past the end",
                     ia, (long long)alen);
                NEED(put_linear(&pw, next_start(&pw), 1), "sequence: audio %d has no eos token", ia);
                st += text_len + 2 + alen;
                ia++;
                remain_aud--;
            } else if (min_ed == ed_img || !use_audio_in_video) {
                bool is_img = min_ed == ed_img;
                NEED(is_img ? ii < m->n_images : iv < m->n_videos,
                     "sequence: %s tokens at position %lld but no %s item left", is_img ? "image" : "video",
                     (long long)min_ed, is_img ? "image" : "video");
                int64_t text_len = min_ed - st - 1;
                NEED(text_len >= 0, "sequence: vision tokens at position %lld lack their vision bos",
                     (long long)min_ed);
                NEED(put_linear(&pw, next_start(&pw), text_len), "sequence: ids longer than their layout");
                NEED(put_linear(&pw, next_start(&pw), 1), "sequence: ids longer than their layout");
                const int64_t *g = is_img ? m->image_grid_thw[ii] : m->video_grid_thw[iv];
                int64_t len = g[0] * (g[1] / merge) * (g[2] / merge);
                tmp = avl__malloc((size_t)(3 * (len ? len : 1)) * sizeof *tmp);
                if (!tmp) {
                    rc = avl__err(AVL_E_NOMEM, "sequence: cannot allocate vision positions");
                    goto fail;
                }
                vision_positions(next_start(&pw), g, merge, is_img ? 1.0 : m->video_second_per_grid[iv],
                                 p->position_id_per_seconds, is_img, tmp, tmp + len, tmp + 2 * len);
                NEED(put_cols(&pw, tmp, tmp + len, tmp + 2 * len, 0, len),
                     "sequence: %s needs %lld tokens past the end", is_img ? "image" : "video", (long long)len);
                avl__free(tmp);
                tmp = NULL;
                NEED(put_linear(&pw, next_start(&pw), 1), "sequence: vision item has no eos token");
                st += text_len + 2 + len;
                if (is_img) {
                    ii++;
                    remain_img--;
                } else {
                    iv++;
                    remain_vid--;
                }
            } else {
                NEED(iv < m->n_videos && ia < m->n_audios,
                     "sequence: audio-in-video tokens at position %lld but no video/audio item left",
                     (long long)min_ed);
                int64_t text_len = min_ed - st - 2;
                NEED(text_len >= 0, "sequence: video tokens at position %lld lack their two bos tokens",
                     (long long)min_ed);
                NEED(put_linear(&pw, next_start(&pw), text_len), "sequence: ids longer than their layout");
                int64_t bos = next_start(&pw);
                NEED(put_linear(&pw, bos, 1) && put_linear(&pw, bos, 1), "sequence: ids longer than their layout");
                int64_t s0 = next_start(&pw);
                int64_t alen = avl_audio_tokens_for_frames(m->audio_feature_len[ia]);
                const int64_t *g = m->video_grid_thw[iv];
                int64_t vlen = g[0] * (g[1] / merge) * (g[2] / merge);
                tmp = avl__malloc((size_t)(3 * (vlen + alen) + 1) * sizeof *tmp);
                ends_v = avl__malloc((size_t)(vlen + 1) * sizeof *ends_v);
                ends_a = avl__malloc((size_t)(alen + 1) * sizeof *ends_a);
                if (!tmp || !ends_v || !ends_a) {
                    rc = avl__err(AVL_E_NOMEM, "sequence: cannot allocate audio-in-video positions");
                    goto fail;
                }
                int64_t *vt = tmp, *vh = tmp + vlen, *vw = tmp + 2 * vlen, *aa = tmp + 3 * vlen;
                vision_positions(s0, g, merge, m->video_second_per_grid[iv], p->position_id_per_seconds, false, vt,
                                 vh, vw);
                for (int64_t j = 0; j < alen; j++) aa[j] = s0 + j;
                int64_t per = (int64_t)(p->position_id_per_seconds * p->seconds_per_chunk);
                int64_t kv = chunk_ends_i64(vt, vlen, s0, per, ends_v);
                int64_t ka = chunk_ends_i64(aa, alen, s0, per, ends_a);
                int64_t sv = 0, sa = 0;
                for (int64_t j = 0; j < (kv > ka ? kv : ka); j++) {
                    if (j < kv) {
                        NEED(put_cols(&pw, vt, vh, vw, sv, ends_v[j]), "sequence: video %d runs past the end", iv);
                        sv = ends_v[j];
                    }
                    if (j < ka) {
                        NEED(put_cols(&pw, aa, aa, aa, sa, ends_a[j]), "sequence: audio %d runs past the end", ia);
                        sa = ends_a[j];
                    }
                }
                avl__free(tmp);
                avl__free(ends_v);
                avl__free(ends_a);
                tmp = ends_v = ends_a = NULL;
                int64_t eos = next_start(&pw);
                NEED(put_linear(&pw, eos, 1) && put_linear(&pw, eos, 1),
                     "sequence: audio-in-video item %d has no eos pair", iv);
                st += text_len + 4 + alen + vlen;
                ia++;
                iv++;
                remain_vid--;
                remain_aud--;
            }
        }
        if (st < n) NEED(put_linear(&pw, next_start(&pw), n - st), "sequence: internal position overflow");
        NEED(pw.w == n, "sequence: the media layout covers %lld positions but the sequence has %lld",
             (long long)pw.w, (long long)n);
    }
    int64_t mx = -1;
    for (int64_t i = 0; i < 3 * n; i++)
        if (map->pos[i] > mx) mx = map->pos[i];
    map->rope_delta = mx + 1 - n;
    rc = fill_token_info(p, ids, n, m, use_audio_in_video, map);
    if (rc) goto fail;
    *out = map;
    return AVL_OK;
fail:
    avl__free(tmp);
    avl__free(ends_v);
    avl__free(ends_a);
    avl_token_map_free(map);
    return rc;
#undef NEED
}

/* The token map: walks the ids once, numbering each media item's tokens in order (tokens of an
 * item appear in raster order t, row, col even when chunks interleave them with audio). */
static avl_status fill_token_info(const avl_seq_params *p, const int32_t *ids, int64_t n, const avl_media_shape *m,
                                  bool use_audio_in_video, avl_token_map *map)
{
    int ia = -1, iv = -1, ii = -1;
    int64_t ka = 0, kv = 0, ki = 0;
    bool in_vid_audio = false; /* inside <|vision_bos|><|audio_bos|> ... of an audio-in-video item */
    int64_t *vends = NULL, nvends = 0, vj = 0; /* the item's video chunk ends, as the processor makes them */
    int merge = p->spatial_merge_size;
    double per_chunk = (double)(int64_t)(p->position_id_per_seconds * p->seconds_per_chunk);
    for (int64_t i = 0; i < n; i++) {
        avl_token_info *t = &map->tok[i];
        int32_t id = ids[i];
        t->item = -1;
        t->chunk = -1;
        t->row = t->col = -1;
        if (id == p->vision_start_token_id || id == p->audio_start_token_id) {
            t->kind = AVL_TOK_SPECIAL;
            bool next_audio_bos = i + 1 < n && ids[i + 1] == p->audio_start_token_id;
            if (id == p->vision_start_token_id && use_audio_in_video && next_audio_bos) {
                in_vid_audio = true;
                iv++;
                ia++;
                kv = ka = 0;
                vj = 0;
                avl__free(vends);
                vends = NULL;
                if (iv < m->n_videos) {
                    const int64_t *g = m->video_grid_thw[iv];
                    int64_t hw = (g[1] / merge) * (g[2] / merge), nv = g[0] * hw;
                    vends = avl__malloc((size_t)(nv + 1) * sizeof *vends);
                    if (!vends) return avl__err(AVL_E_NOMEM, "sequence: cannot allocate chunk table");
                    video_time_ctx vc = {hw, m->video_second_per_grid[iv], (double)p->position_id_per_seconds};
                    nvends = chunk_ends(nv, video_time_f64, &vc, per_chunk, vends);
                }
            } else if (id == p->audio_start_token_id && !in_vid_audio) {
                ia++;
                ka = 0;
            } else if (id == p->vision_start_token_id && i + 1 < n) {
                if (ids[i + 1] == p->image_token_id) {
                    ii++;
                    ki = 0;
                } else if (ids[i + 1] == p->video_token_id) {
                    iv++;
                    kv = 0;
                }
            }
        } else if (id == p->vision_end_token_id || id == p->audio_end_token_id) {
            t->kind = AVL_TOK_SPECIAL;
            if (id == p->vision_end_token_id) in_vid_audio = false;
        } else if (id == p->audio_token_id) {
            if (ia < 0) ia = 0; /* placeholder without bos: count it as the first item */
            if (ia >= m->n_audios)
            {
                avl__free(vends);
                return avl__err(AVL_E_ARG, "sequence: audio token at position %lld has no audio item", (long long)i);
            }
            t->kind = AVL_TOK_AUDIO;
            t->item = (int8_t)ia;
            t->index = (int32_t)ka;
            t->t = (int32_t)ka;
            t->t0 = (float)ka * 0.04f;
            t->t1 = (float)(ka + 1) * 0.04f;
            if (in_vid_audio) t->chunk = (int16_t)(ka / (int64_t)per_chunk);
            ka++;
            map->n_audio++;
        } else if (id == p->video_token_id || id == p->image_token_id) {
            bool img = id == p->image_token_id;
            int item = img ? ii : iv;
            if (item < 0) item = 0;
            if (item >= (img ? m->n_images : m->n_videos)) {
                avl__free(vends);
                return avl__err(AVL_E_ARG, "sequence: %s token at position %lld has no item", img ? "image" : "video",
                                (long long)i);
            }
            const int64_t *g = img ? m->image_grid_thw[item] : m->video_grid_thw[item];
            int64_t gh = g[1] / merge, gw = g[2] / merge, k = img ? ki++ : kv++;
            if (gh * gw == 0 || k >= g[0] * gh * gw) {
                avl__free(vends);
                return avl__err(AVL_E_ARG, "sequence: %s %d has more tokens than its grid %lldx%lldx%lld",
                                img ? "image" : "video", item, (long long)g[0], (long long)g[1], (long long)g[2]);
            }
            t->kind = img ? AVL_TOK_IMAGE : AVL_TOK_VIDEO;
            t->item = (int8_t)item;
            t->index = (int32_t)k;
            t->t = (int32_t)(k / (gh * gw));
            t->row = (int32_t)((k % (gh * gw)) / gw);
            t->col = (int32_t)(k % gw);
            double spg = img ? 0.0 : m->video_second_per_grid[item];
            t->t0 = (float)(t->t * spg);
            t->t1 = (float)((t->t + 1) * spg);
            if (!img && in_vid_audio && vends) {
                while (vj < nvends - 1 && k >= vends[vj]) vj++;
                t->chunk = (int16_t)vj;
            }
            if (img) map->n_image++;
            else map->n_video++;
        } else {
            t->kind = AVL_TOK_TEXT;
        }
    }
    avl__free(vends);
    return AVL_OK;
}

void avl_token_map_free(avl_token_map *map)
{
    if (!map) return;
    avl__free(map->pos);
    avl__free(map->tok);
    avl__free(map);
}
