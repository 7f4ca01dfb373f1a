/* src/media/sampling.c: which frames of a video are kept, and at what size.
 *
 * Mirrors qwen-omni-utils' vision_process.py (the copy the paper's authors ship as
 * qwen_utils/vision_process.py in kaistmm/crossmodal-hub): smart_nframes, the index rule
 * torch.linspace(0, T-1, n).round() of _read_video_torchvision, smart_resize, and the
 * max_pixels bound of fetch_video. Python's round() and torch.round() both round half to even;
 * torch.linspace on float32 computes from both ends (RangeFactoriesKernel.cpp), reproduced here.
 */
#include <math.h>

#include "avlens/media.h"
#include "base/internal.h"

#define FRAME_FACTOR 2

avl_video_params avl_video_default_params(void)
{
    avl_video_params p = {
        .fps = 2.0,
        .min_frames = 4,
        .max_frames = 768,
        .min_pixels = 128 * 28 * 28,
        .max_pixels = 768 * 28 * 28,
        .total_pixels = (int64_t)(128000.0 * 28 * 28 * 0.9),
    };
    return p;
}

static double floor_by(double x, double f) { return floor(x / f) * f; }
static double ceil_by(double x, double f) { return ceil(x / f) * f; }
/* Python's round(x / f) * f: nearbyint rounds half to even in the default rounding mode. */
static double round_by(double x, double f) { return nearbyint(x / f) * f; }

avl_status avl_video_nframes(int64_t total, double avg_fps, const avl_video_params *p, int64_t *out)
{
    *out = 0;
    if (total <= 0) return avl__err(AVL_E_ARG, "video has no frames");
    if (!(avg_fps > 0)) return avl__err(AVL_E_ARG, "video frame rate %g is not positive", avg_fps);
    if (!(p->fps > 0)) return avl__err(AVL_E_ARG, "sampling fps %g is not positive", p->fps);
    double min_frames = ceil_by((double)p->min_frames, FRAME_FACTOR);
    double cap = (double)(p->max_frames < total ? p->max_frames : total);
    double max_frames = floor_by(cap, FRAME_FACTOR);
    double n = (double)total / avg_fps * p->fps;
    n = fmax(n, min_frames);
    n = fmin(n, max_frames);
    n = fmin(n, (double)total);
    n = floor_by(n, FRAME_FACTOR);
    if (!(n >= FRAME_FACTOR && n <= (double)total))
        return avl__err(AVL_E_ARG, "video has %lld frame(s): %g sampled frames is outside [2, %lld]",
                        (long long)total, n, (long long)total);
    *out = (int64_t)n;
    return AVL_OK;
}

void avl_video_frame_indices(int64_t total, int64_t n, int64_t *idx)
{
    if (n <= 0) return;
    if (n == 1) {
        idx[0] = 0;
        return;
    }
    /* float32 as torch.linspace: start + step*i for the first half, end - step*(n-1-i) after */
    float start = 0.0f, end = (float)(total - 1);
    float step = (end - start) / (float)(n - 1);
    int64_t half = n / 2;
    for (int64_t i = 0; i < n; i++) {
        float v = i < half ? start + step * (float)i : end - step * (float)(n - 1 - i);
        idx[i] = (int64_t)nearbyintf(v);
    }
}

avl_status avl_smart_resize(int64_t h, int64_t w, int64_t factor, double min_pixels,
                            double max_pixels, int64_t *out_h, int64_t *out_w)
{
    *out_h = *out_w = 0;
    if (h <= 0 || w <= 0 || factor <= 0)
        return avl__err(AVL_E_ARG, "cannot resize a %lldx%lld image", (long long)w, (long long)h);
    double big = (double)(h > w ? h : w), small = (double)(h < w ? h : w);
    if (big / small > 200)
        return avl__err(AVL_E_ARG, "%lldx%lld image: aspect ratio %.1f exceeds 200", (long long)w,
                        (long long)h, big / small);
    double f = (double)factor;
    double hb = fmax(f, round_by((double)h, f));
    double wb = fmax(f, round_by((double)w, f));
    if (hb * wb > max_pixels) {
        double beta = sqrt((double)h * (double)w / max_pixels);
        hb = fmax(f, floor_by((double)h / beta, f));
        wb = fmax(f, floor_by((double)w / beta, f));
    } else if (hb * wb < min_pixels) {
        double beta = sqrt(min_pixels / ((double)h * (double)w));
        hb = ceil_by((double)h * beta, f);
        wb = ceil_by((double)w * beta, f);
    }
    *out_h = (int64_t)hb;
    *out_w = (int64_t)wb;
    return AVL_OK;
}

double avl_video_max_pixels(const avl_video_params *p, int64_t n)
{
    double m = fmin((double)p->max_pixels, (double)p->total_pixels / (double)n * FRAME_FACTOR);
    double lo = (double)(int64_t)((double)p->min_pixels * 1.05);
    return fmax(m, lo);
}
