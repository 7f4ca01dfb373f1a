/* src/media/synth.c: synthetic clips (include/avlens/synth.h): frames rendered in RGB, converted
 * to yuv420p with swscale and encoded with FFmpeg's native MPEG-4 part 2 encoder at a fixed
 * quantiser (2: colours survive the round trip to within a few levels); audio synthesised in float
 * and encoded as AAC (FFmpeg's native encoder) or 16-bit PCM. Packets of the two streams are
 * written in time order. FFmpeg's bit-exact flags keep the output reproducible.
 */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "avlens/synth.h"
#include "base/internal.h"
#include "base/rng.h"
#include "media/media_internal.h"

avl_clip_params avl_clip_default_params(void)
{
    avl_clip_params p = {
        .width = 224, .height = 160, .fps = 10.0, .seconds = 2.0, .shape = AVL_CLIP_SQUARE,
        .color = {230, 30, 30}, .background = {20, 20, 28}, .sound = AVL_CLIP_TONE, .tone_hz = 440.0, .volume = 1.0,
        .audio_rate = 16000, .seed = 0,
    };
    return p;
}

static const struct {
    const char *name;
    uint8_t rgb[3];
} COLORS[] = {
    {"red", {230, 30, 30}},    {"green", {30, 210, 60}},    {"blue", {40, 70, 235}},  {"yellow", {235, 220, 40}},
    {"cyan", {40, 220, 230}},  {"magenta", {225, 40, 220}}, {"white", {240, 240, 240}}, {"orange", {245, 140, 20}},
};

avl_status avl_clip_color(const char *name, uint8_t rgb[3])
{
    for (size_t i = 0; i < sizeof COLORS / sizeof COLORS[0]; i++)
        if (!strcasecmp(name, COLORS[i].name)) {
            memcpy(rgb, COLORS[i].rgb, 3);
            return AVL_OK;
        }
    return avl__err(AVL_E_ARG, "colour '%s': not one of red, green, blue, yellow, cyan, magenta, white, orange", name);
}

int64_t avl_clip_frames(const avl_clip_params *p) { return (int64_t)llround(p->seconds * p->fps); }
int64_t avl_clip_samples(const avl_clip_params *p) { return (int64_t)llround(p->seconds * p->audio_rate); }

/* The shape is a (s x s) box, s = 3/8 of the short side (even); it crosses the frame at one row,
 * left to right or right to left, from a margin of 1/16 of the width to the other. */
void avl_clip_box(const avl_clip_params *p, int64_t k, int64_t box[4])
{
    int64_t w = p->width, h = p->height;
    int64_t s = ((w < h ? w : h) * 3 / 8) & ~(int64_t)1;
    avl__rng r;
    avl__rng_seed_str(&r, p->seed, "clip.motion");
    int64_t slack = (h - s) / 4;
    int64_t y0 = (h - s) / 2 + (slack > 0 ? (int64_t)(avl__rng_u64(&r) % (uint64_t)(2 * slack + 1)) - slack : 0);
    bool rtl = avl__rng_u64(&r) & 1;
    int64_t xa = w / 16, xb = w - s - w / 16;
    int64_t n = avl_clip_frames(p);
    double u = n > 1 ? (double)k / (double)(n - 1) : 0.0;
    if (rtl) u = 1.0 - u;
    int64_t x0 = xa + (int64_t)llround(u * (double)(xb - xa));
    box[0] = x0;
    box[1] = y0;
    box[2] = x0 + s;
    box[3] = y0 + s;
}

void avl_clip_render(const avl_clip_params *p, int64_t k, uint8_t *rgb)
{
    int64_t w = p->width, h = p->height, b[4];
    for (int64_t i = 0; i < w * h; i++) memcpy(rgb + 3 * i, p->background, 3);
    avl_clip_box(p, k, b);
    double cx = 0.5 * (double)(b[0] + b[2]), cy = 0.5 * (double)(b[1] + b[3]), rad = 0.5 * (double)(b[2] - b[0]);
    for (int64_t y = b[1]; y < b[3]; y++)
        for (int64_t x = b[0]; x < b[2]; x++) {
            if (x < 0 || x >= w || y < 0 || y >= h) continue;
            if (p->shape == AVL_CLIP_CIRCLE) {
                double dx = (double)x + 0.5 - cx, dy = (double)y + 0.5 - cy; /* pixel centres */
                if (dx * dx + dy * dy > rad * rad) continue;
            }
            memcpy(rgb + 3 * (y * w + x), p->color, 3);
        }
}

/* The whole sound track, (n) mono floats in [-0.5, 0.5]. */
static void render_audio(const avl_clip_params *p, float *pcm, int64_t n)
{
    avl__rng r;
    avl__rng_seed_str(&r, p->seed, "clip.noise");
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / p->audio_rate;
        switch (p->sound) {
        case AVL_CLIP_TONE: pcm[i] = (float)(p->volume * 0.5 * sin(2.0 * M_PI * p->tone_hz * t)); break;
        case AVL_CLIP_NOISE: pcm[i] = fmod(t, 0.5) < 0.25 ? (float)(p->volume * (avl__rng_uniform(&r) - 0.5)) : 0.0f; break;
        default: pcm[i] = 0.0f;
        }
    }
}

typedef struct {
    const char *path;
    AVFormatContext *fmt;
    AVCodecContext *venc, *aenc;
    AVStream *vst, *ast;
    AVFrame *vframe, *aframe;
    AVPacket *pkt;
    struct SwsContext *sws;
    uint8_t *rgb;   /* (height, width, 3) */
    float *pcm;     /* (n_samples) */
    int64_t n_frames, n_samples;
} writer;

static avl_status ff_err(const writer *w, int r, const char *what)
{
    char eb[128];
    if (av_strerror(r, eb, sizeof eb) < 0) snprintf(eb, sizeof eb, "error %d", r);
    return avl__err(r == AVERROR(ENOMEM) ? AVL_E_NOMEM : AVL_E_MEDIA, "%s: %s (%s)", w->path, what, eb);
}

/* Sends frame (NULL: flush) to enc and writes every packet it returns. */
static avl_status encode(writer *w, AVCodecContext *enc, AVStream *st, AVFrame *frame)
{
    int r = avcodec_send_frame(enc, frame);
    if (r < 0) return ff_err(w, r, "encoder refused a frame");
    for (;;) {
        r = avcodec_receive_packet(enc, w->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return AVL_OK;
        if (r < 0) return ff_err(w, r, "encoding failed");
        av_packet_rescale_ts(w->pkt, enc->time_base, st->time_base);
        w->pkt->stream_index = st->index;
        r = av_interleaved_write_frame(w->fmt, w->pkt);
        if (r < 0) return ff_err(w, r, "cannot write a packet");
    }
}

static avl_status open_video(writer *w, const avl_clip_params *p)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (!codec) return avl__err(AVL_E_MEDIA, "%s: this FFmpeg has no MPEG-4 encoder", w->path);
    if (!(w->vst = avformat_new_stream(w->fmt, NULL))) return avl__err(AVL_E_NOMEM, "%s: out of memory", w->path);
    if (!(w->venc = avcodec_alloc_context3(codec))) return avl__err(AVL_E_NOMEM, "%s: out of memory", w->path);
    AVCodecContext *c = w->venc;
    AVRational fr = av_d2q(p->fps, 100000);
    c->width = (int)p->width;
    c->height = (int)p->height;
    c->time_base = av_inv_q(fr);
    c->framerate = fr;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->gop_size = 12;
    c->max_b_frames = 0; /* one packet per frame, in order */
    c->flags |= AV_CODEC_FLAG_QSCALE | AV_CODEC_FLAG_BITEXACT;
    c->global_quality = FF_QP2LAMBDA * 2;
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int r = avcodec_open2(c, codec, NULL);
    if (r < 0) return ff_err(w, r, "cannot open the MPEG-4 encoder");
    if ((r = avcodec_parameters_from_context(w->vst->codecpar, c)) < 0) return ff_err(w, r, "video parameters");
    w->vst->time_base = c->time_base;
    w->vst->avg_frame_rate = fr;
    if (!(w->vframe = av_frame_alloc())) return avl__err(AVL_E_NOMEM, "%s: out of memory", w->path);
    w->vframe->format = c->pix_fmt;
    w->vframe->width = c->width;
    w->vframe->height = c->height;
    if ((r = av_frame_get_buffer(w->vframe, 0)) < 0) return ff_err(w, r, "frame buffer");
    w->sws = sws_getContext(c->width, c->height, AV_PIX_FMT_RGB24, c->width, c->height, AV_PIX_FMT_YUV420P,
                            SWS_BILINEAR | SWS_BITEXACT | SWS_ACCURATE_RND, NULL, NULL, NULL);
    if (!w->sws) return avl__err(AVL_E_MEDIA, "%s: cannot set up the colour conversion", w->path);
    if (!(w->rgb = avl__malloc((size_t)(p->width * p->height * 3))))
        return avl__err(AVL_E_NOMEM, "%s: out of memory for a frame", w->path);
    return AVL_OK;
}

static avl_status open_audio(writer *w, const avl_clip_params *p, bool aac)
{
    const AVCodec *codec = avcodec_find_encoder(aac ? AV_CODEC_ID_AAC : AV_CODEC_ID_PCM_S16LE);
    if (!codec) return avl__err(AVL_E_MEDIA, "%s: this FFmpeg has no %s encoder", w->path, aac ? "AAC" : "PCM");
    if (!(w->ast = avformat_new_stream(w->fmt, NULL))) return avl__err(AVL_E_NOMEM, "%s: out of memory", w->path);
    if (!(w->aenc = avcodec_alloc_context3(codec))) return avl__err(AVL_E_NOMEM, "%s: out of memory", w->path);
    AVCodecContext *c = w->aenc;
    c->sample_rate = p->audio_rate;
    c->sample_fmt = aac ? AV_SAMPLE_FMT_FLTP : AV_SAMPLE_FMT_S16;
    av_channel_layout_default(&c->ch_layout, 1);
    c->time_base = (AVRational){1, p->audio_rate};
    c->flags |= AV_CODEC_FLAG_BITEXACT;
    if (aac) c->bit_rate = 96000;
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int r = avcodec_open2(c, codec, NULL);
    if (r < 0) return ff_err(w, r, aac ? "cannot open the AAC encoder" : "cannot open the PCM encoder");
    if ((r = avcodec_parameters_from_context(w->ast->codecpar, c)) < 0) return ff_err(w, r, "audio parameters");
    w->ast->time_base = c->time_base;
    if (!(w->aframe = av_frame_alloc())) return avl__err(AVL_E_NOMEM, "%s: out of memory", w->path);
    w->aframe->format = c->sample_fmt;
    w->aframe->sample_rate = c->sample_rate;
    w->aframe->nb_samples = c->frame_size > 0 ? c->frame_size : 1024;
    if ((r = av_channel_layout_copy(&w->aframe->ch_layout, &c->ch_layout)) < 0) return ff_err(w, r, "channel layout");
    if ((r = av_frame_get_buffer(w->aframe, 0)) < 0) return ff_err(w, r, "audio buffer");
    if (!(w->pcm = avl__malloc((size_t)(w->n_samples ? w->n_samples : 1) * sizeof(float))))
        return avl__err(AVL_E_NOMEM, "%s: out of memory for the sound", w->path);
    render_audio(p, w->pcm, w->n_samples);
    return AVL_OK;
}

static avl_status put_video(writer *w, const avl_clip_params *p, int64_t k)
{
    int r = av_frame_make_writable(w->vframe);
    if (r < 0) return ff_err(w, r, "frame buffer");
    avl_clip_render(p, k, w->rgb);
    const uint8_t *src[1] = {w->rgb};
    int stride[1] = {(int)(3 * p->width)};
    sws_scale(w->sws, src, stride, 0, (int)p->height, w->vframe->data, w->vframe->linesize);
    w->vframe->pts = k;
    return encode(w, w->venc, w->vst, w->vframe);
}

/* Audio frame starting at sample s0 (the last one may be short; PCM accepts it, AAC pads it). */
static avl_status put_audio(writer *w, int64_t s0)
{
    int r = av_frame_make_writable(w->aframe);
    if (r < 0) return ff_err(w, r, "audio buffer");
    int64_t cap = w->aenc->frame_size > 0 ? w->aenc->frame_size : 1024;
    int64_t n = w->n_samples - s0 < cap ? w->n_samples - s0 : cap;
    w->aframe->nb_samples = (int)n;
    for (int64_t i = 0; i < n; i++) {
        float x = w->pcm[s0 + i];
        if (w->aenc->sample_fmt == AV_SAMPLE_FMT_FLTP) ((float *)w->aframe->data[0])[i] = x;
        else ((int16_t *)w->aframe->data[0])[i] = (int16_t)lrintf(x * 32767.0f);
    }
    w->aframe->pts = s0;
    return encode(w, w->aenc, w->ast, w->aframe);
}

avl_status avl_clip_write(const char *path, const avl_clip_params *p)
{
    avl_clip_params dp = avl_clip_default_params();
    if (!p) p = &dp;
    if (p->width < 16 || p->height < 16 || p->width > 4096 || p->height > 4096 || (p->width | p->height) & 1)
        return avl__err(AVL_E_ARG, "%s: size %lldx%lld: sides must be even, 16 to 4096", path, (long long)p->width,
                        (long long)p->height);
    if (!(p->fps >= 1.0 && p->fps <= 120.0)) return avl__err(AVL_E_ARG, "%s: fps %g: must be 1 to 120", path, p->fps);
    if (!(p->seconds > 0.0 && p->seconds <= 600.0))
        return avl__err(AVL_E_ARG, "%s: %g seconds: must be more than 0 and at most 600", path, p->seconds);
    if (p->audio_rate < 8000 || p->audio_rate > 96000)
        return avl__err(AVL_E_ARG, "%s: audio rate %d: must be 8000 to 96000", path, p->audio_rate);
    if (!(p->volume >= 0.0 && p->volume <= 1.0))
        return avl__err(AVL_E_ARG, "%s: volume %g is outside 0..1", path, p->volume);
    if (p->sound == AVL_CLIP_TONE && !(p->tone_hz > 0.0 && p->tone_hz < 0.5 * p->audio_rate))
        return avl__err(AVL_E_ARG, "%s: tone %g Hz: must lie between 0 and half the audio rate", path, p->tone_hz);
    avl__ff_quiet();

    writer w = {.path = path, .n_frames = avl_clip_frames(p), .n_samples = avl_clip_samples(p)};
    avl_status rc = AVL_OK;
    bool created = false;
    int r = avformat_alloc_output_context2(&w.fmt, NULL, NULL, path);
    if (r < 0 || !w.fmt) return avl__err(AVL_E_MEDIA, "%s: no container FFmpeg can write for this file name", path);
    const char *name = w.fmt->oformat->name;
    bool has_video = w.fmt->oformat->video_codec != AV_CODEC_ID_NONE;
    bool aac = strstr(name, "mp4") || strstr(name, "mov") || strstr(name, "ipod");
    if (has_video && w.n_frames < 1) {
        rc = avl__err(AVL_E_ARG, "%s: %g seconds at %g fps is no frame", path, p->seconds, p->fps);
        goto done;
    }
    if (!has_video && p->sound == AVL_CLIP_NO_AUDIO) {
        rc = avl__err(AVL_E_ARG, "%s: an audio-only container and no audio asked for", path);
        goto done;
    }
    enum AVCodecID vid = AV_CODEC_ID_MPEG4, aid = aac ? AV_CODEC_ID_AAC : AV_CODEC_ID_PCM_S16LE;
    if ((has_video && avformat_query_codec(w.fmt->oformat, vid, FF_COMPLIANCE_NORMAL) != 1) ||
        (p->sound != AVL_CLIP_NO_AUDIO && avformat_query_codec(w.fmt->oformat, aid, FF_COMPLIANCE_NORMAL) != 1)) {
        rc = avl__err(AVL_E_UNSUPPORTED, "%s: the %s container cannot hold MPEG-4 video with %s audio; use .mp4, .mov, "
                      ".mkv, .avi or .wav", path, name, aac ? "AAC" : "PCM");
        goto done;
    }
    w.fmt->flags |= AVFMT_FLAG_BITEXACT;
    if (!(w.pkt = av_packet_alloc())) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (has_video && (rc = open_video(&w, p))) goto done;
    if (p->sound != AVL_CLIP_NO_AUDIO && (rc = open_audio(&w, p, aac))) goto done;
    if ((r = avio_open(&w.fmt->pb, path, AVIO_FLAG_WRITE)) < 0) {
        rc = avl__err(AVL_E_IO, "%s: cannot create (%s)", path, av_err2str(r));
        goto done;
    }
    created = true;
    if ((r = avformat_write_header(w.fmt, NULL)) < 0) {
        rc = ff_err(&w, r, "cannot write the header");
        goto done;
    }
    /* frames and audio blocks in order of their start times */
    int64_t k = w.venc ? 0 : w.n_frames, s0 = w.aenc ? 0 : w.n_samples;
    int64_t block = w.aenc && w.aenc->frame_size > 0 ? w.aenc->frame_size : 1024;
    while (k < w.n_frames || s0 < w.n_samples) {
        double tv = k < w.n_frames ? (double)k / p->fps : INFINITY;
        double ta = s0 < w.n_samples ? (double)s0 / p->audio_rate : INFINITY;
        if (tv <= ta) {
            if ((rc = put_video(&w, p, k++))) goto done;
        } else {
            if ((rc = put_audio(&w, s0))) goto done;
            s0 += block;
        }
    }
    if (w.venc && (rc = encode(&w, w.venc, w.vst, NULL))) goto done;
    if (w.aenc && (rc = encode(&w, w.aenc, w.ast, NULL))) goto done;
    if ((r = av_write_trailer(w.fmt)) < 0) rc = ff_err(&w, r, "cannot finish the file");
done:
    if (w.fmt && w.fmt->pb) avio_closep(&w.fmt->pb);
    avformat_free_context(w.fmt);
    avcodec_free_context(&w.venc);
    avcodec_free_context(&w.aenc);
    av_frame_free(&w.vframe);
    av_frame_free(&w.aframe);
    av_packet_free(&w.pkt);
    sws_freeContext(w.sws);
    avl__free(w.rgb);
    avl__free(w.pcm);
    if (rc && created) remove(path); /* no half-written clip left behind */
    return rc;
}
