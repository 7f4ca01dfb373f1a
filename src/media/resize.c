/* src/media/resize.c: the two bicubic resizers the Qwen front end uses on 8-bit RGB.
 *
 * 1. torchvision transforms.functional.resize(BICUBIC, antialias=True) on a uint8 tensor, as
 *    torch 1.13 computes it: the frame is cast to float32, PyTorch's _upsample_bicubic2d_aa
 *    (aten/src/ATen/native/cpu/UpSampleKernel.cpp, _compute_weights_aa + HelperInterpCubic::
 *    aa_filter, a = -0.5) resamples the width then the height into float32 buffers, and
 *    torchvision clamps to [0, 255] and rounds (torch.round: half to even) back to uint8.
 *    The filter support is 2 pixels scaled by the downscale factor (antialias); weights are
 *    normalised to sum 1 per output pixel. The float/double promotions of the C++ are kept
 *    (center is computed in double and stored as float, the filter argument likewise).
 * 2. PIL Image.resize(BICUBIC) (Pillow's libImaging/Resample.c): the same Keys kernel with
 *    a = -0.5 and support scaled by the downscale factor, coefficients in double, quantised to
 *    22 fractional bits, a horizontal pass rounded and clipped to uint8, then a vertical pass.
 *    A dimension whose size does not change is not resampled; an unchanged size is a copy.
 */
#include <math.h>
#include <string.h>

#include "avlens/media.h"
#include "base/internal.h"

/* ---- torch ---- */

static float torch_cubic(float x)
{
    const float a = -0.5f;
    x = fabsf(x);
    if (x < 1.0f) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2.0f) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0.0f;
}

/* Weights for one dimension: for output i, taps xmin[i] .. xmin[i]+xsize[i]-1 with weights
 * w[i*ksize + j]. */
typedef struct {
    int64_t ksize;
    int64_t *xmin, *xsize;
    float *w;          /* (out, ksize) */
    double *wd;        /* (out, ksize), PIL only */
    int32_t *wi;       /* (out, ksize), PIL only */
} taps;

static void taps_free(taps *t)
{
    avl__free(t->xmin);
    avl__free(t->xsize);
    avl__free(t->w);
    avl__free(t->wd);
    avl__free(t->wi);
    memset(t, 0, sizeof *t);
}

static avl_status torch_taps(int64_t in, int64_t out, taps *t)
{
    memset(t, 0, sizeof *t);
    float scale = (float)in / (float)out;
    float support = scale >= 1.0f ? (float)((4 * 0.5) * scale) : (float)(4 * 0.5);
    t->ksize = (int64_t)ceil(support) * 2 + 1;
    t->xmin = avl__malloc(sizeof(int64_t) * (size_t)out);
    t->xsize = avl__malloc(sizeof(int64_t) * (size_t)out);
    t->w = avl__calloc((size_t)(out * t->ksize), sizeof(float));
    if (!t->xmin || !t->xsize || !t->w) {
        taps_free(t);
        return avl__err(AVL_E_NOMEM, "resize: out of memory for %lld weights", (long long)out);
    }
    float invscale = scale >= 1.0f ? (float)(1.0 / scale) : 1.0f;
    for (int64_t i = 0; i < out; i++) {
        float center = (float)(scale * (i + 0.5));
        int64_t lo = (int64_t)((double)(center - support) + 0.5);
        int64_t hi = (int64_t)((double)(center + support) + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int64_t n = hi - lo;
        if (n > t->ksize) n = t->ksize; /* cannot happen; keeps the buffer safe */
        float *w = t->w + i * t->ksize, total = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            /* the C++ evaluates (j + xmin - center + 0.5) * invscale in double */
            w[j] = torch_cubic((float)(((double)((float)(j + lo) - center) + 0.5) * (double)invscale));
            total += w[j];
        }
        if (total != 0.0f)
            for (int64_t j = 0; j < n; j++) w[j] /= total;
        t->xmin[i] = lo;
        t->xsize[i] = n;
    }
    return AVL_OK;
}

avl_status avl_resize_bicubic_aa(const uint8_t *src, int64_t h, int64_t w, int64_t c,
                                 uint8_t *dst, int64_t oh, int64_t ow)
{
    if (h <= 0 || w <= 0 || c <= 0 || oh <= 0 || ow <= 0)
        return avl__err(AVL_E_ARG, "resize: bad size %lldx%lld -> %lldx%lld", (long long)w,
                        (long long)h, (long long)ow, (long long)oh);
    taps tw, th;
    avl_status rc = torch_taps(w, ow, &tw);
    if (rc) return rc;
    rc = torch_taps(h, oh, &th);
    if (rc) {
        taps_free(&tw);
        return rc;
    }
    float *mid = avl__malloc(sizeof(float) * (size_t)(h * ow * c)); /* (h, ow, c) */
    if (!mid) {
        taps_free(&tw);
        taps_free(&th);
        return avl__err(AVL_E_NOMEM, "resize: out of memory for a %lldx%lld buffer", (long long)ow,
                        (long long)h);
    }
    /* width pass: uint8 -> float */
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *row = src + y * w * c;
        for (int64_t x = 0; x < ow; x++) {
            const float *k = tw.w + x * tw.ksize;
            int64_t lo = tw.xmin[x], n = tw.xsize[x];
            for (int64_t ch = 0; ch < c; ch++) {
                float acc = (float)row[lo * c + ch] * k[0];
                for (int64_t j = 1; j < n; j++) acc += (float)row[(lo + j) * c + ch] * k[j];
                mid[(y * ow + x) * c + ch] = acc;
            }
        }
    }
    /* height pass: float -> clamp -> round half even -> uint8 */
    for (int64_t y = 0; y < oh; y++) {
        const float *k = th.w + y * th.ksize;
        int64_t lo = th.xmin[y], n = th.xsize[y];
        for (int64_t i = 0; i < ow * c; i++) {
            float acc = mid[lo * ow * c + i] * k[0];
            for (int64_t j = 1; j < n; j++) acc += mid[(lo + j) * ow * c + i] * k[j];
            if (acc < 0.0f) acc = 0.0f;
            if (acc > 255.0f) acc = 255.0f;
            dst[y * ow * c + i] = (uint8_t)nearbyintf(acc);
        }
    }
    avl__free(mid);
    taps_free(&tw);
    taps_free(&th);
    return AVL_OK;
}

/* ---- PIL ---- */

#define PIL_PRECISION_BITS (32 - 8 - 2)

static double pil_cubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static avl_status pil_taps(int64_t in, int64_t out, taps *t)
{
    memset(t, 0, sizeof *t);
    double scale = (double)in / (double)out;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    t->ksize = (int64_t)ceil(support) * 2 + 1;
    t->xmin = avl__malloc(sizeof(int64_t) * (size_t)out);
    t->xsize = avl__malloc(sizeof(int64_t) * (size_t)out);
    t->wd = avl__calloc((size_t)(out * t->ksize), sizeof(double));
    t->wi = avl__calloc((size_t)(out * t->ksize), sizeof(int32_t));
    if (!t->xmin || !t->xsize || !t->wd || !t->wi) {
        taps_free(t);
        return avl__err(AVL_E_NOMEM, "resize: out of memory for %lld weights", (long long)out);
    }
    for (int64_t i = 0; i < out; i++) {
        double center = (i + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int64_t lo = (int64_t)(center - support + 0.5);
        int64_t hi = (int64_t)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int64_t n = hi - lo;
        if (n > t->ksize) n = t->ksize;
        double *k = t->wd + i * t->ksize;
        for (int64_t j = 0; j < n; j++) {
            k[j] = pil_cubic((j + lo - center + 0.5) * ss);
            ww += k[j];
        }
        for (int64_t j = 0; j < n; j++) {
            if (ww != 0.0) k[j] /= ww;
            double v = k[j] * (1 << PIL_PRECISION_BITS);
            t->wi[i * t->ksize + j] = (int32_t)(k[j] < 0 ? -0.5 + v : 0.5 + v);
        }
        t->xmin[i] = lo;
        t->xsize[i] = n;
    }
    return AVL_OK;
}

static inline uint8_t pil_clip8(int32_t v)
{
    if (v >= (1 << PIL_PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PIL_PRECISION_BITS);
}

/* One pass along a dimension: n_lines lines of `in` samples spaced `step` apart (in units of
 * pixels), lines `line_stride` apart. */
static void pil_pass(const uint8_t *src, uint8_t *dst, const taps *t, int64_t lines, int64_t out,
                     int64_t c, int64_t src_line, int64_t src_step, int64_t dst_line, int64_t dst_step)
{
    for (int64_t l = 0; l < lines; l++)
        for (int64_t x = 0; x < out; x++) {
            const int32_t *k = t->wi + x * t->ksize;
            for (int64_t ch = 0; ch < c; ch++) {
                int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int64_t j = 0; j < t->xsize[x]; j++)
                    ss += (int32_t)src[l * src_line + (t->xmin[x] + j) * src_step + ch] * k[j];
                dst[l * dst_line + x * dst_step + ch] = pil_clip8(ss);
            }
        }
}

avl_status avl_resize_bicubic_pil(const uint8_t *src, int64_t h, int64_t w, int64_t c,
                                  uint8_t *dst, int64_t oh, int64_t ow)
{
    if (h <= 0 || w <= 0 || c <= 0 || oh <= 0 || ow <= 0)
        return avl__err(AVL_E_ARG, "resize: bad size %lldx%lld -> %lldx%lld", (long long)w,
                        (long long)h, (long long)ow, (long long)oh);
    if (oh == h && ow == w) {
        memcpy(dst, src, (size_t)(h * w * c));
        return AVL_OK;
    }
    taps tw = {0}, th = {0};
    uint8_t *mid = NULL;
    avl_status rc = AVL_OK;
    const uint8_t *cur = src;
    if (ow != w) {
        if ((rc = pil_taps(w, ow, &tw))) goto done;
        uint8_t *target = oh != h ? (mid = avl__malloc((size_t)(h * ow * c))) : dst; /* (h, ow, c) */
        if (!target) {
            rc = avl__err(AVL_E_NOMEM, "resize: out of memory");
            goto done;
        }
        pil_pass(src, target, &tw, h, ow, c, w * c, c, ow * c, c);
        cur = target;
    }
    if (oh != h) {
        if ((rc = pil_taps(h, oh, &th))) goto done;
        /* columns as lines: line = one x position, step = one row */
        pil_pass(cur, dst, &th, ow, oh, c, c, ow * c, c, ow * c);
    }
done:
    avl__free(mid);
    taps_free(&tw);
    taps_free(&th);
    return rc;
}
