/* src/model/thinker.c: from the processor's tensors to the decoder's input.
 *
 * Mirrors Qwen2_5OmniThinkerForConditionalGeneration.forward in transformers'
 * modeling_qwen2_5_omni.py: embed the ids; run the audio tower on each audio's valid mel frames
 * and the vision tower on each video's / image's patches; write their rows into the positions of
 * the <|AUDIO|>, <|VIDEO|>, <|IMAGE|> tokens in sequence order (masked_scatter); position ids
 * from get_rope_index (src/model/sequence.c).
 */
#include <string.h>

#include "base/internal.h"
#include "model/model_internal.h"

avl_seq_params avl_model_seq_params(const avl_model *m)
{
    const avl_config *c = &m->cfg;
    avl_seq_params p = {
        .audio_token_id = (int32_t)c->audio_token_id,
        .image_token_id = (int32_t)c->image_token_id,
        .video_token_id = (int32_t)c->video_token_id,
        .vision_start_token_id = (int32_t)c->vision_start_token_id,
        .vision_end_token_id = (int32_t)c->vision_end_token_id,
        .audio_start_token_id = (int32_t)c->audio_start_token_id,
        .audio_end_token_id = (int32_t)c->audio_end_token_id,
        .spatial_merge_size = (int)c->vision.spatial_merge_size,
        .position_id_per_seconds = (int)c->position_id_per_seconds,
        .seconds_per_chunk = c->seconds_per_chunk,
    };
    return p;
}

/* Writes rows (count, H) of one item into the positions of kind/item, in token-index order. */
static avl_status scatter(const avl_model *m, const avl_token_map *map, int kind, int item, const float *rows,
                          int64_t count, float *embeds)
{
    int64_t seen = 0;
    for (int64_t i = 0; i < map->n; i++) {
        const avl_token_info *t = &map->tok[i];
        if (t->kind != kind || t->item != item) continue;
        if (t->index >= count)
            return avl__err(AVL_E_SHAPE, "thinker: item %d has %lld encoder rows but the sequence wants row %d", item,
                            (long long)count, t->index);
        memcpy(embeds + i * m->H, rows + (int64_t)t->index * m->H, (size_t)m->H * sizeof(float));
        seen++;
    }
    if (seen != count)
        return avl__err(AVL_E_SHAPE, "thinker: item %d has %lld encoder rows but %lld placeholder tokens", item,
                        (long long)count, (long long)seen);
    return AVL_OK;
}

avl_status avl_thinker_embed(const avl_model *m, const avl_thinker_inputs *in, float **embeds, avl_token_map **map,
                             avl_encoder_outputs *enc)
{
    *embeds = NULL;
    *map = NULL;
    if (enc) memset(enc, 0, sizeof *enc);
    const avl_media_shape *ms = &in->media;
    avl_seq_params sp = avl_model_seq_params(m);
    avl_status rc = avl_seq_positions(&sp, in->input_ids, in->n, ms, in->use_audio_in_video, map);
    if (rc) return rc;
    float *e = avl__malloc((size_t)(in->n * m->H) * sizeof *e);
    float *rows = NULL;
    if (!e) {
        rc = avl__err(AVL_E_NOMEM, "thinker: cannot allocate embeddings for %lld tokens", (long long)in->n);
        goto fail;
    }
    if ((rc = avl_run_embed_tokens(m, in->input_ids, in->n, e))) goto fail;

    /* audio */
    if (ms->n_audios > 0) {
        if (!in->input_features) {
            rc = avl__err(AVL_E_ARG, "thinker: %d audio item(s) but no input_features", ms->n_audios);
            goto fail;
        }
        if (!m->audio) {
            rc = avl__err(AVL_E_UNSUPPORTED, "thinker: this checkpoint has no audio tower");
            goto fail;
        }
        int64_t total = 0;
        for (int a = 0; a < ms->n_audios; a++) total += avl_audio_tokens_for_frames(ms->audio_feature_len[a]);
        if (enc) {
            enc->audio_embeds = avl__malloc((size_t)((total ? total : 1) * m->H) * sizeof(float));
            enc->n_audio = total;
            if (!enc->audio_embeds) {
                rc = avl__err(AVL_E_NOMEM, "thinker: cannot allocate audio outputs");
                goto fail;
            }
        }
        int64_t off = 0, n_mels = m->cfg.audio.num_mel_bins;
        for (int a = 0; a < ms->n_audios; a++) {
            int64_t nt = avl_audio_tokens_for_frames(ms->audio_feature_len[a]);
            if (ms->audio_feature_len[a] > in->n_feature_frames) {
                rc = avl__err(AVL_E_SHAPE, "thinker: audio %d claims %lld valid frames of %lld", a,
                              (long long)ms->audio_feature_len[a], (long long)in->n_feature_frames);
                goto fail;
            }
            rows = avl__malloc((size_t)((nt ? nt : 1) * m->H) * sizeof(float));
            if (!rows) {
                rc = avl__err(AVL_E_NOMEM, "thinker: cannot allocate audio rows");
                goto fail;
            }
            rc = avl__audio_encoder_forward(m, m->audio, in->input_features + a * n_mels * in->n_feature_frames,
                                            in->n_feature_frames, ms->audio_feature_len[a], rows);
            if (!rc) rc = scatter(m, *map, AVL_TOK_AUDIO, a, rows, nt, e);
            if (rc) goto fail;
            if (enc) memcpy(enc->audio_embeds + off * m->H, rows, (size_t)(nt * m->H) * sizeof(float));
            off += nt;
            avl__free(rows);
            rows = NULL;
        }
    }

    /* videos, then images: the same tower */
    for (int pass = 0; pass < 2; pass++) {
        bool img = pass == 1;
        int count = img ? ms->n_images : ms->n_videos;
        const float *pix = img ? in->pixel_values : in->pixel_values_videos;
        if (count == 0) continue;
        if (!pix) {
            rc = avl__err(AVL_E_ARG, "thinker: %d %s(s) but no %s", count, img ? "image" : "video",
                          img ? "pixel_values" : "pixel_values_videos");
            goto fail;
        }
        if (!m->vision) {
            rc = avl__err(AVL_E_UNSUPPORTED, "thinker: this checkpoint has no vision tower");
            goto fail;
        }
        int64_t mm = m->cfg.vision.spatial_merge_size * m->cfg.vision.spatial_merge_size;
        int64_t patch_dim = m->cfg.vision.in_channels * m->cfg.vision.temporal_patch_size * m->cfg.vision.patch_size *
                            m->cfg.vision.patch_size;
        int64_t total = 0;
        for (int v = 0; v < count; v++) {
            const int64_t *g = img ? ms->image_grid_thw[v] : ms->video_grid_thw[v];
            total += g[0] * g[1] * g[2] / mm;
        }
        float **dst = enc ? (img ? &enc->image_embeds : &enc->video_embeds) : NULL;
        if (enc) {
            *dst = avl__malloc((size_t)((total ? total : 1) * m->H) * sizeof(float));
            if (img) enc->n_image = total;
            else enc->n_video = total;
            if (!*dst) {
                rc = avl__err(AVL_E_NOMEM, "thinker: cannot allocate vision outputs");
                goto fail;
            }
        }
        int64_t poff = 0, roff = 0;
        for (int v = 0; v < count; v++) {
            const int64_t *g = img ? ms->image_grid_thw[v] : ms->video_grid_thw[v];
            int64_t np = g[0] * g[1] * g[2], nt = np / mm;
            rows = avl__malloc((size_t)((nt ? nt : 1) * m->H) * sizeof(float));
            if (!rows) {
                rc = avl__err(AVL_E_NOMEM, "thinker: cannot allocate vision rows");
                goto fail;
            }
            rc = avl__vision_encoder_forward(m, m->vision, pix + poff * patch_dim, g, rows);
            if (!rc) rc = scatter(m, *map, img ? AVL_TOK_IMAGE : AVL_TOK_VIDEO, v, rows, nt, e);
            if (rc) goto fail;
            if (enc) memcpy(*dst + roff * m->H, rows, (size_t)(nt * m->H) * sizeof(float));
            poff += np;
            roff += nt;
            avl__free(rows);
            rows = NULL;
        }
    }
    *embeds = e;
    return AVL_OK;
fail:
    avl__free(rows);
    avl__free(e);
    avl_token_map_free(*map);
    *map = NULL;
    if (enc) {
        avl__free(enc->audio_embeds);
        avl__free(enc->video_embeds);
        avl__free(enc->image_embeds);
        memset(enc, 0, sizeof *enc);
    }
    return rc;
}
