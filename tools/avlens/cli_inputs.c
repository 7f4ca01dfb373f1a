/* tools/avlens/cli_inputs.c: thinker inputs for analysis commands (contract in cli_inputs.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_inputs.h"

void cli_inputs_free(cli_inputs *in)
{
    free(in->ids);
    free(in->feat);
    free(in->pixv);
    free(in->pixi);
    avl_features_free(in->f);
    memset(in, 0, sizeof *in);
}

/* A tensor as int64 (integer dtypes) or fp32 (float dtypes) in a new malloc'd array. */
static bool get_tensor(const char *cmd, const avl_st_set *s, const char *name, bool ints, void **out,
                       avl_tensor_view *tv)
{
    avl_status rc = avl_st_get(s, name, tv);
    if (rc) return cli_fail(cmd, rc), false;
    size_t n = (size_t)(tv->numel ? tv->numel : 1);
    if (!ints) {
        float *v = malloc(n * sizeof *v);
        if (!v || avl_convert_to_f32(tv->dtype, tv->data, v, tv->numel)) {
            free(v);
            fprintf(stderr, "avlens %s: %s: tensor '%s' is %s, wanted a float type\n", cmd, tv->file, name,
                    avl_dtype_name(tv->dtype));
            return false;
        }
        *out = v;
        return true;
    }
    int64_t *v = malloc(n * sizeof *v);
    if (!v) return cli_fail(cmd, AVL_E_NOMEM), false;
    const uint8_t *p = tv->data;
    for (int64_t i = 0; i < tv->numel; i++) {
        switch (tv->dtype) {
        case AVL_DTYPE_I64: memcpy(&v[i], p + 8 * i, 8); break;
        case AVL_DTYPE_I32: { int32_t x; memcpy(&x, p + 4 * i, 4); v[i] = x; break; }
        case AVL_DTYPE_U8: v[i] = p[i]; break;
        default:
            free(v);
            fprintf(stderr, "avlens %s: %s: tensor '%s' is %s, wanted an integer type\n", cmd, tv->file, name,
                    avl_dtype_name(tv->dtype));
            return false;
        }
    }
    *out = v;
    return true;
}

bool cli_inputs_from_file(const char *cmd, const char *path, const avl_config *cfg, bool use_audio_in_video,
                          cli_inputs *out)
{
    memset(out, 0, sizeof *out);
    avl_st_set *s = NULL;
    avl_status rc = avl_st_open_dir(path, &s);
    if (rc) return cli_fail(cmd, rc), false;
    avl_tensor_view tv;
    int64_t *ids64 = NULL, *mask = NULL, *grid = NULL;
    float *spg = NULL;
    bool ok = false;
    avl_thinker_inputs *ti = &out->ti;
    ti->use_audio_in_video = use_audio_in_video;
    if (!get_tensor(cmd, s, "input_ids", true, (void **)&ids64, &tv)) goto done;
    ti->n = tv.numel;
    if (!(out->ids = malloc((size_t)(ti->n + 1) * sizeof *out->ids))) goto nomem;
    for (int64_t i = 0; i < ti->n; i++) out->ids[i] = (int32_t)ids64[i];
    ti->input_ids = out->ids;
    if (avl_st_has(s, "input_features")) {
        if (!get_tensor(cmd, s, "input_features", false, (void **)&out->feat, &tv)) goto done;
        if (tv.ndim != 3 || tv.shape[1] != cfg->audio.num_mel_bins || tv.shape[0] > AVL_MAX_MEDIA) {
            fprintf(stderr, "avlens %s: %s: input_features must be (n_audios, %lld, T)\n", cmd, path,
                    (long long)cfg->audio.num_mel_bins);
            goto done;
        }
        ti->input_features = out->feat;
        ti->media.n_audios = (int)tv.shape[0];
        ti->n_feature_frames = tv.shape[2];
        avl_tensor_view mv;
        for (int a = 0; a < ti->media.n_audios; a++) ti->media.audio_feature_len[a] = tv.shape[2];
        if (avl_st_has(s, "feature_attention_mask")) {
            if (!get_tensor(cmd, s, "feature_attention_mask", true, (void **)&mask, &mv)) goto done;
            if (mv.numel != tv.shape[0] * tv.shape[2]) {
                fprintf(stderr, "avlens %s: %s: feature_attention_mask does not match input_features\n", cmd, path);
                goto done;
            }
            for (int a = 0; a < ti->media.n_audios; a++) {
                int64_t c = 0;
                for (int64_t j = 0; j < tv.shape[2]; j++) c += mask[a * tv.shape[2] + j] != 0;
                ti->media.audio_feature_len[a] = c;
            }
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *pix = pass ? "pixel_values" : "pixel_values_videos";
        const char *gname = pass ? "image_grid_thw" : "video_grid_thw";
        if (!avl_st_has(s, pix)) continue;
        if (!get_tensor(cmd, s, pix, false, (void **)(pass ? &out->pixi : &out->pixv), &tv)) goto done;
        free(grid);
        grid = NULL;
        if (!get_tensor(cmd, s, gname, true, (void **)&grid, &tv)) goto done;
        int n = (int)(tv.numel / 3);
        if (tv.numel % 3 || n > AVL_MAX_MEDIA) {
            fprintf(stderr, "avlens %s: %s: %s must be (n, 3) with n <= %d\n", cmd, path, gname, AVL_MAX_MEDIA);
            goto done;
        }
        for (int v = 0; v < n; v++)
            for (int k = 0; k < 3; k++) {
                if (pass) ti->media.image_grid_thw[v][k] = grid[3 * v + k];
                else ti->media.video_grid_thw[v][k] = grid[3 * v + k];
            }
        if (pass) {
            ti->media.n_images = n;
            ti->pixel_values = out->pixi;
            continue;
        }
        ti->media.n_videos = n;
        ti->pixel_values_videos = out->pixv;
        for (int v = 0; v < n; v++) ti->media.video_second_per_grid[v] = 1.0;
        if (avl_st_has(s, "video_second_per_grid")) {
            if (!get_tensor(cmd, s, "video_second_per_grid", false, (void **)&spg, &tv)) goto done;
            if (tv.numel != n) {
                fprintf(stderr, "avlens %s: %s: video_second_per_grid has %lld values for %d videos\n", cmd, path,
                        (long long)tv.numel, n);
                goto done;
            }
            for (int v = 0; v < n; v++) ti->media.video_second_per_grid[v] = spg[v];
        }
    }
    ok = true;
    goto done;
nomem:
    cli_fail(cmd, AVL_E_NOMEM);
done:
    free(ids64);
    free(mask);
    free(grid);
    free(spg);
    avl_st_close(s);
    if (!ok) cli_inputs_free(out);
    return ok;
}

bool cli_inputs_from_video(const char *cmd, const char *model_dir, const avl_model *m, const char *video,
                           const char *prompt, bool fast_processor, cli_inputs *out)
{
    memset(out, 0, sizeof *out);
    avl_features_params fp = avl_features_default_params();
    fp.use_audio_in_video = true;
    fp.norm = fast_processor ? AVL_NORM_FAST : AVL_NORM_SLOW;
    avl_tokenizer *tok = NULL;
    char *chat = NULL, *msgs = NULL;
    int32_t *ids = NULL, *expanded = NULL;
    int64_t n = 0, ne = 0;
    bool ok = false;
    avl_status rc;
    if ((rc = avl_features_from_video(video, NULL, &fp, &out->f))) goto fail;
    if ((rc = avl_tokenizer_load(model_dir, &tok))) goto fail;
    json_t *j = json_pack("[{s:s, s:[{s:s, s:s}]}, {s:s, s:[{s:s, s:s}, {s:s, s:s}]}]", "role", "system", "content",
                          "type", "text", "text", "You are a helpful assistant.", "role", "user", "content", "type",
                          "video", "video", video, "type", "text", "text", prompt);
    msgs = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!msgs) {
        rc = AVL_E_NOMEM;
        goto fail;
    }
    size_t len;
    avl_chat_params cp = avl_chat_default_params();
    if ((rc = avl_chat_render(msgs, strlen(msgs), &cp, &chat, &len))) goto fail;
    if ((rc = avl_tokenizer_encode(tok, chat, len, &ids, &n))) goto fail;
    avl_thinker_inputs *ti = &out->ti;
    avl_features *f = out->f;
    ti->use_audio_in_video = true;
    ti->media.n_videos = 1;
    for (int k = 0; k < 3; k++) ti->media.video_grid_thw[0][k] = f->video_grid_thw[k];
    ti->media.video_second_per_grid[0] = f->video_second_per_grid;
    ti->pixel_values_videos = f->pixel_values_videos;
    if (f->input_features) {
        ti->media.n_audios = 1;
        ti->media.audio_feature_len[0] = f->n_valid_frames;
        ti->input_features = f->input_features;
        ti->n_feature_frames = f->n_mel_frames;
    }
    avl_seq_params sp = avl_model_seq_params(m);
    if ((rc = avl_seq_expand(&sp, ids, n, &ti->media, true, &expanded, &ne))) goto fail;
    if (!(out->ids = malloc((size_t)(ne + 1) * sizeof *out->ids))) {
        rc = AVL_E_NOMEM;
        goto fail;
    }
    memcpy(out->ids, expanded, (size_t)ne * sizeof *out->ids);
    ti->input_ids = out->ids;
    ti->n = ne;
    ok = true;
    goto done;
fail:
    cli_fail(cmd, rc);
done:
    free(msgs);
    avl_tokenizer_free_mem(chat);
    avl_tokenizer_free_mem(ids);
    avl_free(expanded);
    avl_tokenizer_free(tok);
    if (!ok) cli_inputs_free(out);
    return ok;
}
