/* src/model/inputs.c: the thinker's inputs read from a .safetensors file of the tensors the
 * Hugging Face processor returns (Qwen2_5OmniProcessor.__call__ in transformers'
 * processing_qwen2_5_omni.py: input_ids, attention_mask, input_features, feature_attention_mask,
 * pixel_values_videos, video_grid_thw, video_second_per_grid, pixel_values, image_grid_thw).
 *
 * Everything the file claims is checked against itself and the config before anything is
 * computed, because avl_thinker_inputs carries no lengths for its pixel and feature arrays:
 * pixel rows = sum of t*h*w of the grids, patch width = the vision config's C*tp*p*p, mel bins =
 * the audio config's, and the masks as the processor makes them (all-ones attention mask; a
 * feature mask of ones then zeros, whose sum is the valid frame count the encoder reads).
 */
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "model/model_internal.h"

struct avl_inputs {
    avl_thinker_inputs ti;
    int32_t *ids;       /* (L) */
    float *features;    /* (n_audios, n_mels, T) */
    float *pix_videos;  /* (sum t*h*w over videos, patch_dim) */
    float *pix_images;  /* (sum t*h*w over images, patch_dim) */
};

typedef struct {
    const avl_st_file *f;
    const char *path;
} src;

/* The tensor `name` into *tv; AVL_E_NOTFOUND (detail names the file) when absent. */
static avl_status get(const src *s, const char *name, avl_tensor_view *tv)
{
    avl_status rc = avl_st_file_get(s->f, name, tv);
    if (rc == AVL_E_NOTFOUND) return avl__err(rc, "%s: no tensor '%s'", s->path, name);
    return rc;
}

static bool has(const src *s, const char *name)
{
    avl_tensor_view tv;
    return avl_st_file_get(s->f, name, &tv) == AVL_OK;
}

static bool is_int(avl_dtype t) { return t == AVL_DTYPE_I64 || t == AVL_DTYPE_I32 || t == AVL_DTYPE_U8; }
static bool is_float(avl_dtype t) { return t == AVL_DTYPE_F32 || t == AVL_DTYPE_F16 || t == AVL_DTYPE_BF16; }

/* Element i of an integer tensor (is_int checked by the caller). */
static int64_t int_at(const avl_tensor_view *tv, int64_t i)
{
    const uint8_t *p = tv->data;
    switch (tv->dtype) {
    case AVL_DTYPE_I64: { int64_t x; memcpy(&x, p + 8 * i, 8); return x; }
    case AVL_DTYPE_I32: { int32_t x; memcpy(&x, p + 4 * i, 4); return x; }
    default: return p[i];
    }
}

static avl_status want_int(const src *s, const avl_tensor_view *tv)
{
    if (is_int(tv->dtype)) return AVL_OK;
    return avl__err(AVL_E_SHAPE, "%s: tensor '%s' is %s, wanted an integer type (I64, I32, U8)", s->path, tv->name,
                    avl_dtype_name(tv->dtype));
}

/* A float tensor widened into a new fp32 array. */
static avl_status floats(const src *s, const avl_tensor_view *tv, float **out)
{
    if (!is_float(tv->dtype))
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' is %s, wanted a float type (F32, F16, BF16)", s->path,
                        tv->name, avl_dtype_name(tv->dtype));
    *out = avl__malloc((size_t)(tv->numel ? tv->numel : 1) * sizeof(float));
    if (!*out)
        return avl__err(AVL_E_NOMEM, "%s: cannot allocate %lld floats for '%s'", s->path, (long long)tv->numel,
                        tv->name);
    return avl_convert_to_f32(tv->dtype, tv->data, *out, tv->numel);
}

static avl_status read_ids(const src *s, const avl_config *cfg, avl_inputs *in)
{
    avl_tensor_view tv;
    avl_status rc = get(s, "input_ids", &tv);
    if (rc || (rc = want_int(s, &tv))) return rc;
    if (!(tv.ndim == 1 || (tv.ndim == 2 && tv.shape[0] == 1)))
        return avl__err(AVL_E_SHAPE, "%s: tensor 'input_ids' must be (1, L) or (L) (batch size 1), has %d dims%s",
                        s->path, tv.ndim, tv.ndim == 2 ? " with batch > 1" : "");
    if (tv.numel == 0) return avl__err(AVL_E_SHAPE, "%s: tensor 'input_ids' is empty", s->path);
    in->ids = avl__malloc((size_t)tv.numel * sizeof *in->ids);
    if (!in->ids) return avl__err(AVL_E_NOMEM, "%s: cannot allocate %lld token ids", s->path, (long long)tv.numel);
    for (int64_t i = 0; i < tv.numel; i++) {
        int64_t id = int_at(&tv, i);
        if (id < 0 || id >= cfg->text.vocab_size)
            return avl__err(AVL_E_ARG, "%s: tensor 'input_ids' has id %lld at position %lld, outside the vocabulary "
                            "(%lld)", s->path, (long long)id, (long long)i, (long long)cfg->text.vocab_size);
        in->ids[i] = (int32_t)id;
    }
    in->ti.input_ids = in->ids;
    in->ti.n = tv.numel;

    if (!has(s, "attention_mask")) return AVL_OK;
    avl_tensor_view am;
    if ((rc = get(s, "attention_mask", &am)) || (rc = want_int(s, &am))) return rc;
    if (am.numel != tv.numel || !(am.ndim == 1 || (am.ndim == 2 && am.shape[0] == 1)))
        return avl__err(AVL_E_SHAPE, "%s: tensor 'attention_mask' has %lld elements in %d dims, input_ids has %lld",
                        s->path, (long long)am.numel, am.ndim, (long long)tv.numel);
    for (int64_t i = 0; i < am.numel; i++)
        if (int_at(&am, i) != 1)
            return avl__err(AVL_E_ARG, "%s: tensor 'attention_mask' has %lld at position %lld: it must be all ones "
                            "(padding is not supported)", s->path, (long long)int_at(&am, i), (long long)i);
    return AVL_OK;
}

static avl_status read_audio(const src *s, const avl_config *cfg, avl_inputs *in)
{
    if (!has(s, "input_features")) {
        if (has(s, "feature_attention_mask"))
            return avl__err(AVL_E_SHAPE, "%s: tensor 'feature_attention_mask' without 'input_features'", s->path);
        return AVL_OK;
    }
    avl_tensor_view tv;
    avl_status rc = get(s, "input_features", &tv);
    if (rc) return rc;
    if (tv.ndim != 3 || tv.shape[1] != cfg->audio.num_mel_bins || tv.shape[0] < 1 || tv.shape[2] < 1)
        return avl__err(AVL_E_SHAPE, "%s: tensor 'input_features' must be (n_audios, %lld, T) with n_audios, T >= 1",
                        s->path, (long long)cfg->audio.num_mel_bins);
    if (tv.shape[0] > AVL_MAX_MEDIA)
        return avl__err(AVL_E_UNSUPPORTED, "%s: tensor 'input_features' holds %lld audios, at most %d are supported",
                        s->path, (long long)tv.shape[0], AVL_MAX_MEDIA);
    const int na = (int)tv.shape[0];
    const int64_t T = tv.shape[2];
    if ((rc = floats(s, &tv, &in->features))) return rc;
    in->ti.input_features = in->features;
    in->ti.n_feature_frames = T;
    in->ti.media.n_audios = na;
    for (int a = 0; a < na; a++) in->ti.media.audio_feature_len[a] = T;
    if (!has(s, "feature_attention_mask")) return AVL_OK;

    avl_tensor_view mv;
    if ((rc = get(s, "feature_attention_mask", &mv)) || (rc = want_int(s, &mv))) return rc;
    if (mv.ndim != 2 || mv.shape[0] != na || mv.shape[1] != T)
        return avl__err(AVL_E_SHAPE, "%s: tensor 'feature_attention_mask' must be (%d, %lld) to match "
                        "'input_features'", s->path, na, (long long)T);
    for (int a = 0; a < na; a++) {
        int64_t valid = 0;
        while (valid < T && int_at(&mv, a * T + valid) == 1) valid++;
        for (int64_t j = valid; j < T; j++)
            if (int_at(&mv, a * T + j) != 0)
                return avl__err(AVL_E_ARG, "%s: tensor 'feature_attention_mask' row %d is not ones then zeros "
                                "(value %lld at frame %lld)", s->path, a, (long long)int_at(&mv, a * T + j),
                                (long long)j);
        if (valid == 0)
            return avl__err(AVL_E_ARG, "%s: tensor 'feature_attention_mask' row %d has no valid frame", s->path, a);
        in->ti.media.audio_feature_len[a] = valid;
    }
    return AVL_OK;
}

/* pixel_values(_videos) with its grid_thw (and for videos, video_second_per_grid). */
static avl_status read_vision(const src *s, const avl_config *cfg, bool video, avl_inputs *in)
{
    const char *pix_name = video ? "pixel_values_videos" : "pixel_values";
    const char *grid_name = video ? "video_grid_thw" : "image_grid_thw";
    bool hp = has(s, pix_name), hg = has(s, grid_name);
    if (video && !hp && has(s, "video_second_per_grid"))
        return avl__err(AVL_E_SHAPE, "%s: tensor 'video_second_per_grid' without 'pixel_values_videos'", s->path);
    if (!hp && !hg) return AVL_OK;
    if (hp != hg)
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' without '%s'", s->path, hp ? pix_name : grid_name,
                        hp ? grid_name : pix_name);
    avl_tensor_view gv, pv;
    avl_status rc = get(s, grid_name, &gv);
    if (rc || (rc = want_int(s, &gv))) return rc;
    if (gv.ndim != 2 || gv.shape[1] != 3 || gv.shape[0] < 1)
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' must be (n, 3) with n >= 1", s->path, grid_name);
    if (gv.shape[0] > AVL_MAX_MEDIA)
        return avl__err(AVL_E_UNSUPPORTED, "%s: tensor '%s' lists %lld %s, at most %d are supported", s->path,
                        grid_name, (long long)gv.shape[0], video ? "videos" : "images", AVL_MAX_MEDIA);
    const int n = (int)gv.shape[0];
    const int64_t merge = cfg->vision.spatial_merge_size, lim = (int64_t)1 << 20;
    int64_t patches = 0;
    for (int v = 0; v < n; v++) {
        int64_t *g = video ? in->ti.media.video_grid_thw[v] : in->ti.media.image_grid_thw[v];
        for (int k = 0; k < 3; k++) g[k] = int_at(&gv, 3 * v + k);
        /* the limits keep t*h*w and its sum far from overflow */
        if (g[0] < 1 || g[1] < 1 || g[2] < 1 || g[0] > lim || g[1] > lim || g[2] > lim || g[0] * g[1] > lim ||
            g[1] % merge || g[2] % merge)
            return avl__err(AVL_E_ARG, "%s: tensor '%s' row %d is (%lld, %lld, %lld): each must be positive and "
                            "height and width multiples of the merge size %lld", s->path, grid_name, v,
                            (long long)g[0], (long long)g[1], (long long)g[2], (long long)merge);
        patches += g[0] * g[1] * g[2];
    }
    const avl_vision_config *vc = &cfg->vision;
    const int64_t pd = vc->in_channels * vc->temporal_patch_size * vc->patch_size * vc->patch_size;
    if ((rc = get(s, pix_name, &pv))) return rc;
    if (pv.ndim != 2 || pv.shape[1] != pd)
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' must be (patches, %lld), the vision config's patch size", s->path,
                        pix_name, (long long)pd);
    if (pv.shape[0] != patches)
        return avl__err(AVL_E_SHAPE, "%s: tensor '%s' has %lld patches, '%s' needs %lld", s->path, pix_name,
                        (long long)pv.shape[0], grid_name, (long long)patches);
    float **dst = video ? &in->pix_videos : &in->pix_images;
    if ((rc = floats(s, &pv, dst))) return rc;
    if (!video) {
        in->ti.media.n_images = n;
        in->ti.pixel_values = *dst;
        return AVL_OK;
    }
    in->ti.media.n_videos = n;
    in->ti.pixel_values_videos = *dst;
    for (int v = 0; v < n; v++) in->ti.media.video_second_per_grid[v] = 1.0;
    if (!has(s, "video_second_per_grid")) return AVL_OK;
    avl_tensor_view sv;
    if ((rc = get(s, "video_second_per_grid", &sv))) return rc;
    if (!is_float(sv.dtype))
        return avl__err(AVL_E_SHAPE, "%s: tensor 'video_second_per_grid' is %s, wanted a float type (F32, F16, BF16)",
                        s->path, avl_dtype_name(sv.dtype));
    if (sv.numel != n || sv.ndim > 2)
        return avl__err(AVL_E_SHAPE, "%s: tensor 'video_second_per_grid' has %lld values for %d videos", s->path,
                        (long long)sv.numel, n);
    for (int v = 0; v < n; v++) {
        float x;
        avl_convert_to_f32(sv.dtype, (const uint8_t *)sv.data + (size_t)v * avl_dtype_size(sv.dtype), &x, 1);
        if (!(x > 0.0f) || x > 1e6f)
            return avl__err(AVL_E_ARG, "%s: tensor 'video_second_per_grid' value %d is %g, not a positive duration",
                            s->path, v, (double)x);
        in->ti.media.video_second_per_grid[v] = x;
    }
    return AVL_OK;
}

avl_status avl_inputs_load(const char *path, const avl_config *cfg, bool use_audio_in_video, avl_inputs **out)
{
    *out = NULL;
    if (!path || !cfg) return avl__err(AVL_E_ARG, "inputs: path and config must not be NULL");
    avl_st_file *f;
    avl_status rc = avl_st_file_open(path, &f);
    if (rc) return rc;
    avl_inputs *in = avl__calloc(1, sizeof *in);
    if (!in) {
        avl_st_file_close(f);
        return avl__err(AVL_E_NOMEM, "%s: cannot allocate the inputs", path);
    }
    in->ti.use_audio_in_video = use_audio_in_video;
    src s = {f, path};
    rc = read_ids(&s, cfg, in);
    if (!rc) rc = read_audio(&s, cfg, in);
    if (!rc) rc = read_vision(&s, cfg, true, in);
    if (!rc) rc = read_vision(&s, cfg, false, in);
    avl_st_file_close(f);
    if (rc) {
        avl_inputs_free(in);
        return rc;
    }
    *out = in;
    return AVL_OK;
}

const avl_thinker_inputs *avl_inputs_get(const avl_inputs *in) { return &in->ti; }

void avl_inputs_free(avl_inputs *in)
{
    if (!in) return;
    avl__free(in->ids);
    avl__free(in->features);
    avl__free(in->pix_videos);
    avl__free(in->pix_images);
    avl__free(in);
}
