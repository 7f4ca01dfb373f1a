/* avlens/media.h: real clips in: video/audio files and frame lists -> the model inputs that the
 * Qwen2.5-Omni processor produces (pixel patches + grid, Whisper log-mel + mask).
 *
 *   avl_features_params p = avl_features_default_params();
 *   p.use_audio_in_video = true;
 *   avl_features *f;
 *   if (avl_features_from_video("clip.mp4", NULL, &p, &f) != AVL_OK) {
 *       fprintf(stderr, "%s\n", avl_last_error());   // "clip.mp4: no video stream"
 *       return 1;
 *   }
 *   // f->pixel_values_videos: (grid_t*grid_h*grid_w, 1176); f->input_features: (128, 30000)
 *   avl_features_free(f);
 *
 * The lower pieces (decode, sampling, smart_resize, the two bicubic resizers, patchify, log-mel)
 * are public too so that tests and analyses can use them one by one. Every rule and where it
 * comes from is in docs/media.md. Buffers are row-major; each comment gives the shape.
 * Functions return AVL_E_MEDIA with the file named when FFmpeg cannot read something,
 * AVL_E_IO for a missing or unreadable file, AVL_E_NOTFOUND when a stream is absent.
 */
#ifndef AVLENS_MEDIA_H
#define AVLENS_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- frames ---- */

/* Frames in RGB24. Owned: free with avl_frames_free. */
typedef struct {
    int64_t count;        /* frames held */
    int64_t height, width;/* of the frames held */
    int64_t src_height, src_width; /* as decoded (differs from height/width when resized) */
    uint8_t *rgb;         /* (count, height, width, 3) */
    double *time;         /* (count) presentation time in seconds (NAN when unknown) */
    int64_t *index;       /* (count) index of each frame among all decoded frames */
    int64_t total_frames; /* T: frames the stream decoded to (count for images/lists) */
    double avg_fps;       /* F: the stream's average frame rate (0 for images) */
} avl_frames;

void avl_frames_free(avl_frames *f);

/* Sampling rule of qwen-omni-utils (vision_process.py) for a video file. */
typedef struct {
    double fps;           /* frames per second to sample (2.0) */
    int64_t min_frames;   /* 4 */
    int64_t max_frames;   /* 768 (further limited to the frame count) */
    int64_t min_pixels;   /* 128*28*28 */
    int64_t max_pixels;   /* 768*28*28 upstream; the paper authors' copy uses 128*28*28 */
    int64_t total_pixels; /* int(128000*28*28*0.9) */
    bool resize;          /* false: keep decoded frames; true: keep them already resized as the video
                             route does (smart_resize with the bound below, antialiased bicubic), so
                             that only the small frames are ever held (one full frame of scratch) */
} avl_video_params;

avl_video_params avl_video_default_params(void);

/* n = T/F*fps clamped to [ceil2(min_frames), floor2(min(max_frames, T))] and to T, then
 * floored to even. AVL_E_MEDIA-free: returns AVL_E_ARG (detail given) when n < 2 or n > T,
 * i.e. a clip with fewer than 2 frames. */
avl_status avl_video_nframes(int64_t total, double avg_fps, const avl_video_params *p, int64_t *out);

/* idx[i] = round_half_even(i*(total-1)/(n-1)) (torch.linspace(...).round()), i < n. */
void avl_video_frame_indices(int64_t total, int64_t n, int64_t *idx);

/* Qwen's smart_resize: sides multiple of factor, area within [min_pixels, max_pixels],
 * Python rounding (half to even). AVL_E_ARG when the aspect ratio exceeds 200 or a side <= 0. */
avl_status avl_smart_resize(int64_t h, int64_t w, int64_t factor, double min_pixels,
                            double max_pixels, int64_t *out_h, int64_t *out_w);

/* The video route's pixel bound: max(min(p->max_pixels, total_pixels/n*2), int(min_pixels*1.05))
 * (a float, as in vision_process.fetch_video). */
double avl_video_max_pixels(const avl_video_params *p, int64_t n);

/* Decodes the first video stream of path and keeps the frames the sampling rule picks
 * (p NULL: defaults). Only the kept frames are held in memory: the packets are counted first,
 * the stream is decoded once keeping the chosen indices, and if the decoder produced a different
 * number of frames than packets the stream is decoded a second time with the true count.
 * With p->resize, each kept frame is resized as soon as it is decoded. */
avl_status avl_video_read(const char *path, const avl_video_params *p, avl_frames **out);

/* Decodes every frame (keep_every = 1) or every k-th frame of the first video stream. */
avl_status avl_video_read_all(const char *path, int64_t keep_every, avl_frames **out);

/* Decodes one image (jpg, png, ...; the first frame of any file FFmpeg reads) to RGB24. */
avl_status avl_image_read(const char *path, avl_frames **out);

/* ---- audio ---- */

typedef struct {
    int64_t n;            /* samples */
    float *pcm;           /* (n) mono */
    int rate;             /* samples per second of pcm */
    int src_rate;         /* the stream's rate */
    int src_channels;
} avl_audio;

void avl_audio_free(avl_audio *a);

/* Decodes the first audio stream of path (a video's track or an audio file) to mono float at
 * rate (16000 for the model): channels averaged as librosa.to_mono, resampled with
 * libswresample's soxr engine (20-bit, the SOXR_HQ precision librosa's default "soxr_hq" uses),
 * length ceil(n_src*rate/src_rate) as librosa.resample(fix=True). AVL_E_NOTFOUND (file named)
 * when there is no audio stream. */
avl_status avl_audio_read(const char *path, int rate, avl_audio **out);

/* ---- resizing ---- */

/* torchvision resize(BICUBIC, antialias=True) on uint8 as torch 1.13 computes it
 * (_upsample_bicubic2d_aa in fp32, a = -0.5, support scaled by the downscale factor, width pass
 * then height pass, clamp to [0,255], round half to even). src (h, w, c), dst (oh, ow, c). */
avl_status avl_resize_bicubic_aa(const uint8_t *src, int64_t h, int64_t w, int64_t c,
                                 uint8_t *dst, int64_t oh, int64_t ow);

/* PIL Image.resize(BICUBIC) on 8-bit images (fixed point, 22 fractional bits, horizontal
 * pass rounded to uint8 then vertical). src (h, w, c), dst (oh, ow, c). */
avl_status avl_resize_bicubic_pil(const uint8_t *src, int64_t h, int64_t w, int64_t c,
                                  uint8_t *dst, int64_t oh, int64_t ow);

/* ---- patches ---- */

#define AVL_PATCH 14
#define AVL_TEMPORAL_PATCH 2
#define AVL_MERGE 2
#define AVL_PATCH_DIM (3 * AVL_TEMPORAL_PATCH * AVL_PATCH * AVL_PATCH) /* 1176 */

/* How the processor turns bytes into normalised floats. */
typedef enum {
    AVL_NORM_SLOW = 0,  /* Qwen2VLImageProcessor: (float32(x * (1/255)) - mean) / std */
    AVL_NORM_FAST = 1   /* Qwen2VLImageProcessorFast (use_fast=True, what the paper's authors load
                           for the 7B model): (x - 255 mean) / (255 std), rescale fused */
} avl_norm_mode;

/* Rescales by 1/255, normalises with the CLIP mean/std and patchifies t frames (t even;
 * h, w multiples of 28) into out (t/2*h/14*w/14, 1176) in merge-window order, each patch laid
 * out (channel, frame, row, col). rgb (t, h, w, 3). grid_thw gets (t/2, h/14, w/14). The two
 * modes differ by about one float32 ulp. */
avl_status avl_patchify(const uint8_t *rgb, int64_t t, int64_t h, int64_t w, avl_norm_mode mode,
                        float *out, int64_t grid_thw[3]);

/* ---- log-mel ---- */

typedef struct {
    int n_mels;           /* 128 */
    int n_fft;            /* 400 */
    int hop;              /* 160 */
    int rate;             /* 16000 */
    int64_t pad_to;       /* samples to pad (and truncate) to: 4,800,000 (Qwen2.5-Omni's
                             preprocessor_config n_samples = 300 s); 0: no padding ("longest") */
} avl_mel_params;

avl_mel_params avl_mel_default_params(void);

/* Whisper log-mel of pcm (n samples) after padding with zeros (or truncating) to p->pad_to:
 * frames = len/hop, mel (n_mels, frames), mask (frames) = 1 for the frames whose first sample
 * lies in the signal (the extractor's sample mask taken every hop), 0 after. mask may be NULL.
 * Both buffers are allocated with the library allocator and freed with avl_media_buf_free. */
avl_status avl_log_mel(const float *pcm, int64_t n, const avl_mel_params *p, float **mel,
                       int32_t **mask, int64_t *frames);

/* The slaney mel filter bank (n_fft/2+1, n_mels) as transformers' mel_filter_bank(..., 0, 8000,
 * norm="slaney", mel_scale="slaney") in float64, cast to float. filters has (n_fft/2+1)*n_mels. */
avl_status avl_mel_filters(int n_fft, int n_mels, int rate, float *filters);

void avl_media_buf_free(void *p);

/* ---- the whole front end ---- */

typedef struct {
    avl_video_params video;       /* the video-file route */
    int64_t list_min_pixels;      /* frame-list route: 4*28*28 */
    int64_t list_max_pixels;      /* frame-list route: 16384*28*28 */
    double list_fps;              /* frame-list route: 2.0 */
    bool use_audio_in_video;      /* take the audio from the video file when no audio is given */
    avl_norm_mode norm;           /* AVL_NORM_SLOW */
    double processor_fps;         /* 0: video_second_per_grid = 2 / sample_fps (qwen-omni-utils passes
                                     the sample fps to the processor); > 0: 2 / processor_fps, e.g. 2
                                     as the paper's infer.py, which passes no fps (the default 2.0) */
    avl_mel_params mel;
} avl_features_params;

avl_features_params avl_features_default_params(void);

/* Model inputs, named as the Hugging Face processor names them. Owned. */
typedef struct {
    /* audio (absent: input_features NULL) */
    float *input_features;          /* (1, n_mels, n_mel_frames) */
    int32_t *feature_attention_mask;/* (1, n_mel_frames) */
    int64_t n_mels, n_mel_frames, n_valid_frames;
    int64_t n_audio_samples;        /* 16 kHz samples before padding */
    /* video (absent: pixel_values_videos NULL) */
    float *pixel_values_videos;     /* (n_patches, 1176) */
    int64_t n_patches;
    int64_t video_grid_thw[3];
    double video_second_per_grid;   /* temporal_patch_size / sample_fps */
    double sample_fps;
    int64_t n_frames;               /* sampled frames (after padding a list to even) */
    int64_t frame_h, frame_w;       /* resized frame size */
    int64_t src_h, src_w;           /* decoded frame size */
    int64_t total_frames;           /* T of the file (0 for a list) */
    double avg_fps;
    double *frame_time;             /* (n_frames) timestamps of the sampled frames, seconds */
} avl_features;

void avl_features_free(avl_features *f);

/* video: a video file; audio: NULL or an audio file (or any file with an audio track).
 * With p->use_audio_in_video and no audio path, the audio is the video's track (an error
 * naming the file if it has none). */
avl_status avl_features_from_video(const char *video, const char *audio,
                                   const avl_features_params *p, avl_features **out);

/* frames: n image paths in order (the authors' manifests); audio as above (may be NULL). */
avl_status avl_features_from_frames(const char *const *frames, int64_t n, const char *audio,
                                    const avl_features_params *p, avl_features **out);

/* Audio only: input_features and feature_attention_mask. */
avl_status avl_features_from_audio(const char *audio, const avl_features_params *p,
                                   avl_features **out);

#ifdef __cplusplus
}
#endif
#endif
