/* src/media/decode.c: FFmpeg (libavformat/libavcodec/libswscale/libswresample) -> RGB24 frames
 * and mono float PCM.
 *
 * Video follows what qwen-omni-utils' torchvision backend sees (torchvision.io.read_video, i.e.
 * PyAV): every frame of the first video stream is decoded and converted with
 * frame.to_rgb() = swscale to rgb24 with SWS_BILINEAR and swscale's default (BT.601) matrix; the
 * frame rate is the stream's avg_frame_rate (PyAV's average_rate). To stay memory-sensible only
 * the frames the sampling rule keeps are held: the stream's packets are counted first (cheap,
 * no decoding), the indices are computed from that count, the stream is decoded once keeping
 * those frames, and when the decoder produced a different number of frames than packets the file
 * is decoded again with the true count.
 *
 * Audio follows librosa.load(path, sr=16000) (qwen_utils/audio_process.py): samples as float
 * (int16 / 32768 etc.), channels averaged (librosa.to_mono), resampled with soxr at its HQ
 * quality (librosa's default res_type "soxr_hq"; here libswresample's soxr engine at precision 20)
 * and fixed to ceil(n * rate / src_rate) samples. Where librosa falls back to audioread (formats
 * libsndfile cannot read, e.g. AAC in mp4), audioread gets 16-bit samples from the ffmpeg
 * command; we keep the decoder's float samples (a difference below 2^-15 per sample).
 */
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "avlens/media.h"
#include "base/internal.h"
#include "media/media_internal.h"

void avl_frames_free(avl_frames *f)
{
    if (!f) return;
    avl__free(f->rgb);
    avl__free(f->time);
    avl__free(f->index);
    avl__free(f);
}

void avl_audio_free(avl_audio *a)
{
    if (!a) return;
    avl__free(a->pcm);
    avl__free(a);
}

static const char *av_text(int err, char *buf, size_t n)
{
    if (av_strerror(err, buf, n) < 0) snprintf(buf, n, "error %d", err);
    return buf;
}

/* FFmpeg prints to stderr by default; the library never prints, so its messages go to the
 * avlens log at debug level. */
static void ff_log(void *avcl, int level, const char *fmt, va_list vl)
{
    (void)avcl;
    if (level > AV_LOG_WARNING) return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, vl);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = '\0';
    avl__log(AVL_LOG_DEBUG, "ffmpeg: %s", line);
}

static pthread_once_t ff_once = PTHREAD_ONCE_INIT;
static void ff_init(void) { av_log_set_callback(ff_log); }
void avl__ff_quiet(void) { pthread_once(&ff_once, ff_init); }

/* Opens path for reading; the error names the file. */
static avl_status open_input(const char *path, AVFormatContext **out)
{
    *out = NULL;
    pthread_once(&ff_once, ff_init);
    struct stat st;
    if (stat(path, &st) != 0) return avl__err(AVL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return avl__err(AVL_E_IO, "%s: not a regular file", path);
    if (st.st_size == 0) return avl__err(AVL_E_MEDIA, "%s: empty file", path);
    AVFormatContext *fmt = NULL;
    char eb[128];
    int r = avformat_open_input(&fmt, path, NULL, NULL);
    if (r < 0)
        return avl__err(AVL_E_MEDIA, "%s: not a media file FFmpeg can read (%s)", path,
                        av_text(r, eb, sizeof eb));
    r = avformat_find_stream_info(fmt, NULL);
    if (r < 0) {
        avformat_close_input(&fmt);
        return avl__err(AVL_E_MEDIA, "%s: cannot read stream information (%s)", path, av_text(r, eb, sizeof eb));
    }
    *out = fmt;
    return AVL_OK;
}

static int first_stream(AVFormatContext *fmt, enum AVMediaType type)
{
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        AVStream *s = fmt->streams[i];
        if (s->codecpar->codec_type != type) continue;
        if (type == AVMEDIA_TYPE_VIDEO && (s->disposition & AV_DISPOSITION_ATTACHED_PIC)) continue;
        return (int)i;
    }
    return -1;
}

static avl_status open_decoder(const char *path, AVStream *s, AVCodecContext **out)
{
    *out = NULL;
    const AVCodec *codec = avcodec_find_decoder(s->codecpar->codec_id);
    if (!codec)
        return avl__err(AVL_E_MEDIA, "%s: no decoder for codec '%s'", path, avcodec_get_name(s->codecpar->codec_id));
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (!c) return avl__err(AVL_E_NOMEM, "%s: out of memory for a decoder", path);
    char eb[128];
    int r = avcodec_parameters_to_context(c, s->codecpar);
    if (r >= 0) {
        c->pkt_timebase = s->time_base;
        c->thread_count = 0; /* FFmpeg picks; decoding is bit-exact whatever the thread count */
        r = avcodec_open2(c, codec, NULL);
    }
    if (r < 0) {
        avcodec_free_context(&c);
        return avl__err(AVL_E_MEDIA, "%s: cannot open the %s decoder (%s)", path, codec->name, av_text(r, eb, sizeof eb));
    }
    *out = c;
    return AVL_OK;
}

/* ---- video ---- */

typedef struct {
    const char *path;
    int64_t nkeep;             /* frames to keep */
    const int64_t *want;       /* (nkeep) ascending frame indices; NULL with every > 0 */
    int64_t every;             /* keep every k-th frame (want == NULL) */
    avl_frames *out;           /* filled: rgb/time/index for nkeep frames */
    int64_t decoded;           /* frames decoded (T) */
    const avl_video_params *sized; /* resize each kept frame with these bounds (NULL: keep as is) */
    uint8_t *scratch;          /* (src_h, src_w, 3) one decoded frame when resizing */
    struct SwsContext *sws;
} video_pass;

static avl_status keep_frame(video_pass *vp, AVFrame *fr, double tb, int64_t k, int64_t slot)
{
    avl_frames *o = vp->out;
    if (!o->rgb) {
        /* the first kept frame fixes the size; later frames of another size are scaled to it */
        o->src_width = fr->width;
        o->src_height = fr->height;
        o->width = fr->width;
        o->height = fr->height;
        if (vp->sized) {
            double maxp = avl_video_max_pixels(vp->sized, vp->nkeep);
            avl_status rc = avl_smart_resize(fr->height, fr->width, 28, (double)vp->sized->min_pixels, maxp,
                                             &o->height, &o->width);
            if (rc) return avl__err_wrap(rc, "%s", vp->path);
            vp->scratch = avl__malloc((size_t)fr->width * (size_t)fr->height * 3);
            if (!vp->scratch) return avl__err(AVL_E_NOMEM, "%s: out of memory for a %dx%d frame", vp->path,
                                              fr->width, fr->height);
        }
        size_t bytes = (size_t)(o->width * o->height * 3) * (size_t)vp->nkeep;
        o->rgb = avl__malloc(bytes); /* (nkeep, h, w, 3) */
        if (!o->rgb) return avl__err(AVL_E_NOMEM, "%s: out of memory for %lld frames of %lldx%lld", vp->path,
                                     (long long)vp->nkeep, (long long)o->width, (long long)o->height);
    }
    vp->sws = sws_getCachedContext(vp->sws, fr->width, fr->height, fr->format, (int)o->src_width,
                                   (int)o->src_height, AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
    if (!vp->sws) return avl__err(AVL_E_MEDIA, "%s: cannot convert pixel format '%s' to RGB", vp->path,
                                  av_get_pix_fmt_name(fr->format));
    uint8_t *slot_rgb = o->rgb + (size_t)slot * (size_t)(o->width * o->height * 3);
    uint8_t *dst[4] = {vp->sized ? vp->scratch : slot_rgb, NULL, NULL, NULL};
    int dst_stride[4] = {(int)o->src_width * 3, 0, 0, 0};
    sws_scale(vp->sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, dst, dst_stride);
    if (vp->sized) {
        avl_status rc = avl_resize_bicubic_aa(vp->scratch, o->src_height, o->src_width, 3, slot_rgb, o->height, o->width);
        if (rc) return rc;
    }
    int64_t ts = fr->best_effort_timestamp;
    o->time[slot] = ts == AV_NOPTS_VALUE ? NAN : (double)ts * tb;
    o->index[slot] = k;
    return AVL_OK;
}

/* Frames of this decoded index go to which slots: [*lo, *hi) of want. */
static avl_status take(video_pass *vp, AVFrame *fr, double tb, int64_t *cursor)
{
    int64_t k = vp->decoded++;
    if (vp->want) {
        while (*cursor < vp->nkeep && vp->want[*cursor] == k) {
            avl_status rc = keep_frame(vp, fr, tb, k, *cursor);
            if (rc) return rc;
            (*cursor)++;
        }
    } else if (k % vp->every == 0) {
        if (*cursor >= vp->nkeep) return AVL_OK; /* more frames than packets: counted only */
        avl_status rc = keep_frame(vp, fr, tb, k, *cursor);
        if (rc) return rc;
        (*cursor)++;
    }
    return AVL_OK;
}

/* Counts the packets of the first video stream (no decoding). */
static avl_status count_packets(const char *path, int64_t *out, double *fps)
{
    AVFormatContext *fmt;
    avl_status rc = open_input(path, &fmt);
    if (rc) return rc;
    int vs = first_stream(fmt, AVMEDIA_TYPE_VIDEO);
    if (vs < 0) {
        avformat_close_input(&fmt);
        return avl__err(AVL_E_NOTFOUND, "%s: no video stream", path);
    }
    AVStream *s = fmt->streams[vs];
    AVRational r = s->avg_frame_rate;
    if (r.num <= 0 || r.den <= 0) r = s->r_frame_rate;
    *fps = (r.num > 0 && r.den > 0) ? av_q2d(r) : 0.0;
    AVPacket *pkt = av_packet_alloc();
    if (!pkt) {
        avformat_close_input(&fmt);
        return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    }
    int64_t n = 0;
    while (av_read_frame(fmt, pkt) >= 0) {
        if (pkt->stream_index == vs) n++;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    *out = n;
    return AVL_OK;
}

static avl_status decode_pass(video_pass *vp)
{
    AVFormatContext *fmt;
    avl_status rc = open_input(vp->path, &fmt);
    if (rc) return rc;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = NULL;
    AVFrame *fr = NULL;
    int vs = first_stream(fmt, AVMEDIA_TYPE_VIDEO);
    if (vs < 0) {
        rc = avl__err(AVL_E_NOTFOUND, "%s: no video stream", vp->path);
        goto done;
    }
    if ((rc = open_decoder(vp->path, fmt->streams[vs], &dec))) goto done;
    pkt = av_packet_alloc();
    fr = av_frame_alloc();
    if (!pkt || !fr) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", vp->path);
        goto done;
    }
    double tb = av_q2d(fmt->streams[vs]->time_base);
    int64_t cursor = 0, bad = 0;
    bool eof = false;
    while (!eof) {
        int r = av_read_frame(fmt, pkt);
        if (r < 0) {
            eof = true;
            avcodec_send_packet(dec, NULL); /* flush */
        } else if (pkt->stream_index != vs) {
            av_packet_unref(pkt);
            continue;
        } else {
            r = avcodec_send_packet(dec, pkt);
            av_packet_unref(pkt);
            if (r < 0 && r != AVERROR(EAGAIN)) bad++; /* a damaged packet: skip it, as ffmpeg does */
        }
        while ((r = avcodec_receive_frame(dec, fr)) >= 0) {
            rc = take(vp, fr, tb, &cursor);
            av_frame_unref(fr);
            if (rc) goto done;
        }
    }
    if (vp->decoded == 0) {
        rc = avl__err(AVL_E_MEDIA, "%s: the video stream decoded to no frames%s", vp->path,
                      bad ? " (damaged or truncated)" : "");
        goto done;
    }
done:
    sws_freeContext(vp->sws);
    vp->sws = NULL;
    avl__free(vp->scratch);
    vp->scratch = NULL;
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return rc;
}

static avl_status frames_alloc(int64_t n, avl_frames **out)
{
    avl_frames *f = avl__calloc(1, sizeof *f);
    if (!f) return avl__err(AVL_E_NOMEM, "out of memory");
    f->time = avl__malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    f->index = avl__malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (!f->time || !f->index) {
        avl_frames_free(f);
        return avl__err(AVL_E_NOMEM, "out of memory for %lld frames", (long long)n);
    }
    f->count = n;
    *out = f;
    return AVL_OK;
}

static void frames_reset(avl_frames *f)
{
    avl__free(f->rgb);
    f->rgb = NULL;
    f->width = f->height = 0;
}

avl_status avl_video_read(const char *path, const avl_video_params *pp, avl_frames **out)
{
    *out = NULL;
    avl_video_params p = pp ? *pp : avl_video_default_params();
    int64_t packets;
    double fps;
    avl_status rc = count_packets(path, &packets, &fps);
    if (rc) return rc;
    if (!(fps > 0)) return avl__err(AVL_E_MEDIA, "%s: the video stream has no frame rate", path);
    int64_t total = packets;
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t n;
        if (total < 1) return avl__err(AVL_E_MEDIA, "%s: the video stream has no frames", path);
        if ((rc = avl_video_nframes(total, fps, &p, &n))) return avl__err_wrap(rc, "%s", path);
        avl_frames *f;
        if ((rc = frames_alloc(n, &f))) return rc;
        int64_t *want = avl__malloc(sizeof(int64_t) * (size_t)n);
        if (!want) {
            avl_frames_free(f);
            return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
        }
        avl_video_frame_indices(total, n, want);
        video_pass vp = {.path = path, .nkeep = n, .want = want, .out = f, .sized = p.resize ? &p : NULL};
        rc = decode_pass(&vp);
        avl__free(want);
        if (rc) {
            avl_frames_free(f);
            return rc;
        }
        if (vp.decoded == total) {
            f->total_frames = total;
            f->avg_fps = fps;
            *out = f;
            return AVL_OK;
        }
        avl__log(AVL_LOG_INFO, "%s: %lld packets decoded to %lld frames; decoding again", path,
                 (long long)total, (long long)vp.decoded);
        total = vp.decoded;
        frames_reset(f);
        avl_frames_free(f);
    }
    return avl__err(AVL_E_MEDIA, "%s: the frame count changed between two decodings", path);
}

avl_status avl_video_read_all(const char *path, int64_t keep_every, avl_frames **out)
{
    *out = NULL;
    if (keep_every < 1) return avl__err(AVL_E_ARG, "%s: keep_every must be >= 1", path);
    int64_t packets;
    double fps;
    avl_status rc = count_packets(path, &packets, &fps);
    if (rc) return rc;
    /* room for the packet count; a decoder that yields more frames only counts the extra */
    int64_t room = (packets + keep_every - 1) / keep_every;
    avl_frames *f;
    if ((rc = frames_alloc(room, &f))) return rc;
    video_pass vp = {.path = path, .nkeep = room, .every = keep_every, .out = f};
    if ((rc = decode_pass(&vp))) {
        avl_frames_free(f);
        return rc;
    }
    int64_t kept = (vp.decoded + keep_every - 1) / keep_every;
    f->count = kept < room ? kept : room;
    f->total_frames = vp.decoded;
    f->avg_fps = fps;
    *out = f;
    return AVL_OK;
}

/* PIL's Image.paste(img, mask=alpha) onto white: DIV255(255*(255-a) + v*a) with its rounding. */
static uint8_t over_white(uint8_t v, uint8_t a)
{
    uint32_t t = 255u * (255u - a) + (uint32_t)v * a + 128u;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* JPEG through libjpeg (as PIL); NOTFOUND-free: AVL_E_UNSUPPORTED means "use FFmpeg". */
static avl_status image_read_jpeg(const char *path, avl_frames **out)
{
    uint8_t *rgb;
    int64_t h, w;
    avl_status rc = avl__jpeg_read(path, &rgb, &h, &w);
    if (rc) return rc;
    avl_frames *f;
    if ((rc = frames_alloc(1, &f))) {
        avl__free(rgb);
        return rc;
    }
    f->rgb = rgb;
    f->height = f->src_height = h;
    f->width = f->src_width = w;
    f->time[0] = 0.0;
    f->index[0] = 0;
    f->total_frames = 1;
    *out = f;
    return AVL_OK;
}

avl_status avl_image_read(const char *path, avl_frames **out)
{
    *out = NULL;
    AVFormatContext *fmt;
    pthread_once(&ff_once, ff_init);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && avl__is_jpeg(path)) {
        avl_status jr = image_read_jpeg(path, out);
        if (jr != AVL_E_UNSUPPORTED) return jr;
    }
    avl_status rc = open_input(path, &fmt);
    if (rc) return rc;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    avl_frames *f = NULL;
    struct SwsContext *sws = NULL;
    uint8_t *rgba = NULL;
    int vs = first_stream(fmt, AVMEDIA_TYPE_VIDEO);
    if (vs < 0) {
        rc = avl__err(AVL_E_MEDIA, "%s: not an image", path);
        goto done;
    }
    if (!pkt || !fr) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((rc = open_decoder(path, fmt->streams[vs], &dec))) goto done;
    bool got = false, eof = false;
    while (!got && !eof) {
        int r = av_read_frame(fmt, pkt);
        if (r < 0) {
            eof = true;
            avcodec_send_packet(dec, NULL);
        } else if (pkt->stream_index != vs) {
            av_packet_unref(pkt);
            continue;
        } else {
            avcodec_send_packet(dec, pkt);
            av_packet_unref(pkt);
        }
        if (avcodec_receive_frame(dec, fr) >= 0) got = true;
    }
    if (!got) {
        rc = avl__err(AVL_E_MEDIA, "%s: the image decoded to nothing (damaged or truncated)", path);
        goto done;
    }
    if ((rc = frames_alloc(1, &f))) goto done;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fr->format);
    /* qwen's to_rgb composites only RGBA images on white; other modes drop alpha */
    bool alpha = d && (d->flags & AV_PIX_FMT_FLAG_ALPHA) && (d->flags & AV_PIX_FMT_FLAG_RGB) && d->nb_components == 4;
    f->width = f->src_width = fr->width;
    f->height = f->src_height = fr->height;
    size_t px = (size_t)fr->width * (size_t)fr->height;
    f->rgb = avl__malloc(px * 3); /* (1, h, w, 3) */
    if (alpha) rgba = avl__malloc(px * 4);
    if (!f->rgb || (alpha && !rgba)) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory for a %dx%d image", path, fr->width, fr->height);
        goto done;
    }
    sws = sws_getContext(fr->width, fr->height, fr->format, fr->width, fr->height,
                         alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
    if (!sws) {
        rc = avl__err(AVL_E_MEDIA, "%s: cannot convert pixel format '%s' to RGB", path, av_get_pix_fmt_name(fr->format));
        goto done;
    }
    uint8_t *dst[4] = {alpha ? rgba : f->rgb, NULL, NULL, NULL};
    int stride[4] = {fr->width * (alpha ? 4 : 3), 0, 0, 0};
    sws_scale(sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, dst, stride);
    if (alpha)
        for (size_t i = 0; i < px; i++)
            for (int c = 0; c < 3; c++) f->rgb[i * 3 + c] = over_white(rgba[i * 4 + c], rgba[i * 4 + 3]);
    f->time[0] = 0.0;
    f->index[0] = 0;
    f->total_frames = 1;
    f->avg_fps = 0.0;
    *out = f;
    f = NULL;
done:
    avl__free(rgba);
    sws_freeContext(sws);
    avl_frames_free(f);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return rc;
}

/* ---- audio ---- */

typedef struct {
    float *x;
    int64_t n, cap;
} fbuf;

static bool fbuf_grow(fbuf *b, int64_t extra)
{
    if (b->n + extra <= b->cap) return true;
    int64_t cap = b->cap ? b->cap : 65536;
    while (cap < b->n + extra) cap *= 2;
    float *x = avl__realloc(b->x, sizeof(float) * (size_t)cap);
    if (!x) return false;
    b->x = x;
    b->cap = cap;
    return true;
}

/* Appends the channel mean of a decoded frame (converted to planar float by swr). */
static avl_status append_mono(const char *path, SwrContext *conv, AVFrame *fr, int channels, fbuf *mono,
                              float **planes, int *plane_cap)
{
    int n = fr->nb_samples;
    if (n > *plane_cap) {
        for (int c = 0; c < channels; c++) {
            float *p = avl__realloc(planes[c], sizeof(float) * (size_t)n);
            if (!p) return avl__err(AVL_E_NOMEM, "%s: out of memory", path);
            planes[c] = p;
        }
        *plane_cap = n;
    }
    int got = swr_convert(conv, (uint8_t **)planes, n, (const uint8_t **)fr->extended_data, n);
    if (got < 0) return avl__err(AVL_E_MEDIA, "%s: cannot convert audio samples", path);
    if (!fbuf_grow(mono, got)) return avl__err(AVL_E_NOMEM, "%s: out of memory for audio", path);
    for (int i = 0; i < got; i++) {
        float s = planes[0][i];
        for (int c = 1; c < channels; c++) s += planes[c][i];
        mono->x[mono->n + i] = channels == 1 ? s : s / (float)channels;
    }
    mono->n += got;
    return AVL_OK;
}

/* Resamples mono (n at src) to rate with swr's soxr engine; length ceil(n*rate/src). */
static avl_status resample(const char *path, const float *x, int64_t n, int src, int rate, float **out,
                           int64_t *out_n)
{
    int64_t want = (int64_t)ceil((double)n * ((double)rate / (double)src));
    float *y = avl__calloc((size_t)(want + 1), sizeof(float));
    if (!y) return avl__err(AVL_E_NOMEM, "%s: out of memory for audio", path);
    SwrContext *s = NULL;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    int r = swr_alloc_set_opts2(&s, &mono, AV_SAMPLE_FMT_FLT, rate, &mono, AV_SAMPLE_FMT_FLT, src, 0, NULL);
    if (r >= 0) r = av_opt_set(s, "resampler", "soxr", 0);
    if (r >= 0) r = av_opt_set_double(s, "precision", 20.0, 0);
    if (r >= 0) r = swr_init(s);
    if (r < 0) {
        swr_free(&s);
        avl__free(y);
        return avl__err(AVL_E_MEDIA, "%s: cannot set up resampling %d -> %d Hz", path, src, rate);
    }
    /* the whole signal in one call (swr keeps what does not fit), then flush until empty */
    int64_t cap = swr_get_out_samples(s, (int)n) + 4096, got = 0;
    float *buf = avl__malloc(sizeof(float) * (size_t)cap);
    if (!buf || n > INT32_MAX) {
        avl__free(buf);
        swr_free(&s);
        avl__free(y);
        return avl__err(AVL_E_NOMEM, "%s: out of memory for resampling %lld samples", path, (long long)n);
    }
    const uint8_t *in[1] = {(const uint8_t *)x};
    for (int round = 0; got < cap; round++) {
        uint8_t *o[1] = {(uint8_t *)(buf + got)};
        int k = swr_convert(s, o, (int)(cap - got), round == 0 ? in : NULL, round == 0 ? (int)n : 0);
        if (k < 0) {
            avl__free(buf);
            swr_free(&s);
            avl__free(y);
            return avl__err(AVL_E_MEDIA, "%s: resampling failed", path);
        }
        got += k;
        if (k == 0 && round > 0) break;
    }
    memcpy(y, buf, sizeof(float) * (size_t)(got < want ? got : want));
    avl__free(buf);
    swr_free(&s);
    *out = y; /* zero-padded to want when the resampler returned fewer (fix_length) */
    *out_n = want;
    return AVL_OK;
}

avl_status avl_audio_read(const char *path, int rate, avl_audio **out)
{
    *out = NULL;
    if (rate <= 0) return avl__err(AVL_E_ARG, "%s: sample rate %d", path, rate);
    AVFormatContext *fmt;
    avl_status rc = open_input(path, &fmt);
    if (rc) return rc;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    SwrContext *conv = NULL;
    fbuf mono = {0};
    float *planes[64] = {0};
    int plane_cap = 0, channels = 0;
    avl_audio *a = NULL;
    int as = first_stream(fmt, AVMEDIA_TYPE_AUDIO);
    if (as < 0) {
        rc = avl__err(AVL_E_NOTFOUND, "%s: no audio stream", path);
        goto done;
    }
    if (!pkt || !fr) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((rc = open_decoder(path, fmt->streams[as], &dec))) goto done;
    channels = dec->ch_layout.nb_channels;
    int src_rate = dec->sample_rate;
    if (channels < 1 || channels > 64 || src_rate < 1) {
        rc = avl__err(AVL_E_MEDIA, "%s: audio stream with %d channels at %d Hz", path, channels, src_rate);
        goto done;
    }
    bool eof = false;
    while (!eof) {
        int r = av_read_frame(fmt, pkt);
        if (r < 0) {
            eof = true;
            avcodec_send_packet(dec, NULL);
        } else if (pkt->stream_index != as) {
            av_packet_unref(pkt);
            continue;
        } else {
            avcodec_send_packet(dec, pkt);
            av_packet_unref(pkt);
        }
        while (avcodec_receive_frame(dec, fr) >= 0) {
            if (!conv) {
                /* format conversion only: same layout and rate, planar float out */
                int e = swr_alloc_set_opts2(&conv, &fr->ch_layout, AV_SAMPLE_FMT_FLTP, fr->sample_rate,
                                            &fr->ch_layout, fr->format, fr->sample_rate, 0, NULL);
                if (e >= 0) e = swr_init(conv);
                if (e < 0) {
                    rc = avl__err(AVL_E_MEDIA, "%s: cannot convert audio format '%s'", path,
                                  av_get_sample_fmt_name(fr->format));
                    goto done;
                }
                channels = fr->ch_layout.nb_channels;
                if (channels < 1 || channels > 64) {
                    rc = avl__err(AVL_E_MEDIA, "%s: %d audio channels", path, channels);
                    goto done;
                }
            }
            rc = append_mono(path, conv, fr, channels, &mono, planes, &plane_cap);
            av_frame_unref(fr);
            if (rc) goto done;
        }
    }
    a = avl__calloc(1, sizeof *a);
    if (!a) {
        rc = avl__err(AVL_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    a->src_rate = src_rate;
    a->src_channels = channels;
    a->rate = rate;
    if (src_rate == rate || mono.n == 0) {
        a->pcm = mono.x ? mono.x : avl__calloc(1, sizeof(float));
        mono.x = NULL;
        a->n = mono.n;
        if (!a->pcm) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory", path);
            goto done;
        }
    } else if ((rc = resample(path, mono.x, mono.n, src_rate, rate, &a->pcm, &a->n))) {
        goto done;
    }
    *out = a;
    a = NULL;
done:
    avl_audio_free(a);
    avl__free(mono.x);
    for (int c = 0; c < 64; c++) avl__free(planes[c]);
    swr_free(&conv);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return rc;
}
