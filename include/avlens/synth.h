/* avlens/synth.h: synthetic clips with a known answer, written with libavformat/libavcodec (no
 * ffmpeg program needed): a bright shape moving over a dark background (its shape and colour a
 * "visual class") with a sound track (a tone, noise bursts or silence: an "audio class").
 *
 *   avl_clip_params p = avl_clip_default_params();      // 2 s, 224x160, 10 fps, red square, 440 Hz
 *   avl_clip_color("green", p.color);
 *   p.shape = AVL_CLIP_CIRCLE;
 *   p.sound = AVL_CLIP_NOISE;
 *   if (avl_clip_write("clip.mp4", &p)) { fprintf(stderr, "%s\n", avl_last_error()); ... }
 *
 * The container follows the file's extension: .mp4/.mov get MPEG-4 part 2 video and AAC
 * audio, .mkv/.avi get MPEG-4 part 2 video and 16-bit PCM, .wav gets the audio only. Both
 * encoders are FFmpeg's own (always built in, unlike libx264). Files are written bit-exact:
 * the same parameters give the same bytes with the same FFmpeg build.
 */
#ifndef AVLENS_SYNTH_H
#define AVLENS_SYNTH_H

#include <stdint.h>

#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { AVL_CLIP_SQUARE = 0, AVL_CLIP_CIRCLE } avl_clip_shape;

typedef enum {
    AVL_CLIP_TONE = 0,  /* a sine at tone_hz, amplitude 0.5 */
    AVL_CLIP_NOISE,     /* white noise bursts: 0.25 s on, 0.25 s off, amplitude 0.5 */
    AVL_CLIP_SILENCE,   /* an audio track of zeros */
    AVL_CLIP_NO_AUDIO   /* no audio track at all */
} avl_clip_sound;

typedef struct {
    int64_t width, height;  /* even, >= 16 (224 x 160) */
    double fps;             /* 10 */
    double seconds;         /* 2 */
    avl_clip_shape shape;   /* square */
    uint8_t color[3];       /* the shape's colour (red: 230, 30, 30) */
    uint8_t background[3];  /* (20, 20, 28) */
    avl_clip_sound sound;   /* tone */
    double tone_hz;         /* 440 */
    int audio_rate;         /* 16000 */
    uint64_t seed;          /* the shape's row and direction; the noise */
    double volume;          /* the sound's amplitude factor, 0..1 (1: the amplitudes above) */
} avl_clip_params;

avl_clip_params avl_clip_default_params(void);

/* The colour of a name: red, green, blue, yellow, cyan, magenta, white, orange. AVL_E_ARG (the
 * name and the list in the detail) otherwise. */
avl_status avl_clip_color(const char *name, uint8_t rgb[3]);

/* The shape's bounding box in frame k: x0, y0 (inclusive), x1, y1 (exclusive), in pixels. */
void avl_clip_box(const avl_clip_params *p, int64_t k, int64_t box[4]);

/* Frames the clip has: round(seconds * fps). Samples: round(seconds * audio_rate). */
int64_t avl_clip_frames(const avl_clip_params *p);
int64_t avl_clip_samples(const avl_clip_params *p);

/* Renders frame k, (height, width, 3) RGB24, into rgb. */
void avl_clip_render(const avl_clip_params *p, int64_t k, uint8_t *rgb);

/* Writes the clip to path. AVL_E_ARG for parameters out of range (named), AVL_E_IO when the
 * file cannot be created, AVL_E_MEDIA for an extension FFmpeg has no muxer for or an encoder
 * failure, AVL_E_UNSUPPORTED for a container that cannot hold these codecs (.webm, .mp3); the
 * detail names the file. A failed write leaves no file behind. */
avl_status avl_clip_write(const char *path, const avl_clip_params *p);

#ifdef __cplusplus
}
#endif
#endif
