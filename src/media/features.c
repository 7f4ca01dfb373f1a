/* src/media/features.c: the front end end to end: files -> the tensors Qwen2_5OmniProcessor
 * returns (pixel_values_videos, video_grid_thw, video_second_per_grid, input_features,
 * feature_attention_mask).
 *
 * Video file route (qwen-omni-utils fetch_video, torchvision backend): sampled frames, then
 * smart_resize(h, w, 28, min_pixels, max(min(cap, total_pixels/n*2), int(min_pixels*1.05))) and
 * torchvision's antialiased bicubic; sample_fps = n/T*F. Frame-list route (fetch_video with a
 * list, i.e. fetch_image per frame): smart_resize(h, w, 28, 4*28*28, 16384*28*28), PIL bicubic,
 * count padded to even with the last frame, fps from the caller (2). Then the processor:
 * smart_resize again with 3136 / 12845056 (the identity for these sizes; PIL bicubic otherwise),
 * rescale, normalise, patchify; video_second_per_grid = temporal_patch_size / fps.
 * Audio: librosa-style 16 kHz mono, Whisper log-mel padded to 300 s (see mel.c).
 */
#include <string.h>

#include "avlens/media.h"
#include "base/internal.h"

#define PROC_MIN_PIXELS 3136.0
#define PROC_MAX_PIXELS 12845056.0

avl_features_params avl_features_default_params(void)
{
    avl_features_params p = {
        .video = avl_video_default_params(),
        .list_min_pixels = 4 * 28 * 28,
        .list_max_pixels = 16384 * 28 * 28,
        .list_fps = 2.0,
        .use_audio_in_video = false,
        .norm = AVL_NORM_SLOW,
        .processor_fps = 0.0,
        .mel = avl_mel_default_params(),
    };
    return p;
}

void avl_features_free(avl_features *f)
{
    if (!f) return;
    avl__free(f->input_features);
    avl__free(f->feature_attention_mask);
    avl__free(f->pixel_values_videos);
    avl__free(f->frame_time);
    avl__free(f);
}

/* The processor's own smart_resize and patchify of n frames (n even) of h x w. */
static avl_status to_patches(const char *label, uint8_t *rgb, int64_t n, int64_t h, int64_t w, avl_norm_mode norm,
                              avl_features *f)
{
    int64_t ph, pw;
    avl_status rc = avl_smart_resize(h, w, 28, PROC_MIN_PIXELS, PROC_MAX_PIXELS, &ph, &pw);
    if (rc) return avl__err_wrap(rc, "%s", label);
    uint8_t *buf = rgb;
    if (ph != h || pw != w) {
        buf = avl__malloc((size_t)(n * ph * pw * 3)); /* (n, ph, pw, 3) */
        if (!buf) return avl__err(AVL_E_NOMEM, "%s: out of memory", label);
        for (int64_t i = 0; i < n; i++)
            if ((rc = avl_resize_bicubic_pil(rgb + i * h * w * 3, h, w, 3, buf + i * ph * pw * 3, ph, pw))) {
                avl__free(buf);
                return rc;
            }
    }
    int64_t patches = (n / AVL_TEMPORAL_PATCH) * (ph / AVL_PATCH) * (pw / AVL_PATCH);
    f->pixel_values_videos = avl__malloc(sizeof(float) * (size_t)(patches * AVL_PATCH_DIM));
    if (!f->pixel_values_videos) rc = avl__err(AVL_E_NOMEM, "%s: out of memory for %lld patches", label, (long long)patches);
    else rc = avl_patchify(buf, n, ph, pw, norm, f->pixel_values_videos, f->video_grid_thw);
    if (buf != rgb) avl__free(buf);
    if (rc) return rc;
    f->n_patches = patches;
    f->n_frames = n;
    f->frame_h = ph;
    f->frame_w = pw;
    return AVL_OK;
}

static avl_status add_audio(const char *path, const avl_features_params *p, avl_features *f)
{
    avl_audio *a;
    avl_status rc = avl_audio_read(path, p->mel.rate, &a);
    if (rc) return rc;
    int64_t frames;
    rc = avl_log_mel(a->pcm, a->n, &p->mel, &f->input_features, &f->feature_attention_mask, &frames);
    if (rc) {
        avl_audio_free(a);
        return avl__err_wrap(rc, "%s", path);
    }
    f->n_mels = p->mel.n_mels;
    f->n_mel_frames = frames;
    f->n_audio_samples = a->n;
    int64_t valid = 0;
    for (int64_t i = 0; i < frames; i++) valid += f->feature_attention_mask[i];
    f->n_valid_frames = valid;
    avl_audio_free(a);
    return AVL_OK;
}

avl_status avl_features_from_audio(const char *audio, const avl_features_params *pp, avl_features **out)
{
    *out = NULL;
    avl_features_params p = pp ? *pp : avl_features_default_params();
    avl_features *f = avl__calloc(1, sizeof *f);
    if (!f) return avl__err(AVL_E_NOMEM, "%s: out of memory", audio);
    avl_status rc = add_audio(audio, &p, f);
    if (rc) {
        avl_features_free(f);
        return rc;
    }
    *out = f;
    return AVL_OK;
}

avl_status avl_features_from_video(const char *video, const char *audio, const avl_features_params *pp,
                                   avl_features **out)
{
    *out = NULL;
    avl_features_params p = pp ? *pp : avl_features_default_params();
    avl_frames *fr = NULL;
    avl_features *f = avl__calloc(1, sizeof *f);
    if (!f) return avl__err(AVL_E_NOMEM, "%s: out of memory", video);
    /* frames come back already resized (only the small frames are held) */
    p.video.resize = true;
    avl_status rc = avl_video_read(video, &p.video, &fr);
    if (rc) goto done;
    int64_t n = fr->count, rh = fr->height, rw = fr->width;
    f->frame_time = avl__malloc(sizeof(double) * (size_t)n);
    if (!f->frame_time) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", video);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) f->frame_time[i] = fr->time[i];
    f->src_h = fr->src_height;
    f->src_w = fr->src_width;
    f->total_frames = fr->total_frames;
    f->avg_fps = fr->avg_fps;
    f->sample_fps = (double)n / (double)fr->total_frames * fr->avg_fps;
    f->video_second_per_grid = AVL_TEMPORAL_PATCH / (p.processor_fps > 0 ? p.processor_fps : f->sample_fps);
    if ((rc = to_patches(video, fr->rgb, n, rh, rw, p.norm, f))) goto done;
    avl_frames_free(fr);
    fr = NULL;
    if (audio) {
        rc = add_audio(audio, &p, f);
    } else if (p.use_audio_in_video) {
        rc = add_audio(video, &p, f);
        if (rc == AVL_E_NOTFOUND)
            rc = avl__err(AVL_E_NOTFOUND, "%s: no audio stream, but the audio in the video was asked for", video);
    }
done:
    avl_frames_free(fr);
    if (rc) avl_features_free(f);
    else *out = f;
    return rc;
}

avl_status avl_features_from_frames(const char *const *paths, int64_t n, const char *audio,
                                    const avl_features_params *pp, avl_features **out)
{
    *out = NULL;
    avl_features_params p = pp ? *pp : avl_features_default_params();
    if (n < 1) return avl__err(AVL_E_ARG, "frame list is empty");
    if (!(p.list_fps > 0)) return avl__err(AVL_E_ARG, "frame list fps %g is not positive", p.list_fps);
    int64_t total = n + (n % 2); /* padded to even with the last frame */
    int64_t rh = 0, rw = 0;
    uint8_t *rs = NULL;
    avl_status rc = AVL_OK;
    avl_features *f = avl__calloc(1, sizeof *f);
    if (!f) return avl__err(AVL_E_NOMEM, "out of memory");
    f->frame_time = avl__malloc(sizeof(double) * (size_t)total);
    if (!f->frame_time) {
        rc = avl__err(AVL_E_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        avl_frames *img;
        if ((rc = avl_image_read(paths[i], &img))) {
            rc = avl__err_wrap(rc, "frame %lld", (long long)i + 1);
            goto done;
        }
        int64_t h, w;
        rc = avl_smart_resize(img->height, img->width, 28, (double)p.list_min_pixels, (double)p.list_max_pixels, &h, &w);
        if (rc) {
            avl_frames_free(img);
            rc = avl__err_wrap(rc, "%s", paths[i]);
            goto done;
        }
        if (i == 0) {
            rh = h;
            rw = w;
            f->src_h = img->height;
            f->src_w = img->width;
            rs = avl__malloc((size_t)(total * rh * rw * 3)); /* (total, rh, rw, 3) */
            if (!rs) {
                avl_frames_free(img);
                rc = avl__err(AVL_E_NOMEM, "%s: out of memory for %lld frames", paths[i], (long long)total);
                goto done;
            }
        } else if (h != rh || w != rw) {
            rc = avl__err(AVL_E_SHAPE, "%s: %lldx%lld resizes to %lldx%lld, but the first frame (%s) to %lldx%lld",
                          paths[i], (long long)img->width, (long long)img->height, (long long)w, (long long)h,
                          paths[0], (long long)rw, (long long)rh);
            avl_frames_free(img);
            goto done;
        }
        rc = avl_resize_bicubic_pil(img->rgb, img->height, img->width, 3, rs + i * rh * rw * 3, rh, rw);
        avl_frames_free(img);
        if (rc) goto done;
        f->frame_time[i] = (double)i / p.list_fps;
    }
    if (total > n) {
        memcpy(rs + n * rh * rw * 3, rs + (n - 1) * rh * rw * 3, (size_t)(rh * rw * 3));
        f->frame_time[n] = f->frame_time[n - 1];
    }
    f->sample_fps = p.list_fps;
    f->video_second_per_grid = AVL_TEMPORAL_PATCH / (p.processor_fps > 0 ? p.processor_fps : p.list_fps);
    if ((rc = to_patches(paths[0], rs, total, rh, rw, p.norm, f))) goto done;
    if (audio) rc = add_audio(audio, &p, f);
done:
    avl__free(rs);
    if (rc) avl_features_free(f);
    else *out = f;
    return rc;
}
