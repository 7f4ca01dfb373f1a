/* src/media/patchify.c: frames -> the vision encoder's pixel patches.
 *
 * Mirrors Qwen2VLImageProcessor._preprocess (transformers models/qwen2_vl/
 * image_processing_qwen2_vl.py) for a video: rescale by 1/255 (computed in float64 and stored
 * as float32, as image_transforms.rescale does), normalise with the CLIP mean and std in float32
 * ((x - mean) / std, image_transforms.normalize), then reshape the (T, 3, H, W) stack to
 * (T/2, 2, 3, H/28, 2, 14, W/28, 2, 14), transpose (0, 3, 6, 4, 7, 2, 1, 5, 8) and flatten to
 * (T/2 * H/14 * W/14, 3*2*14*14): patches in 2x2 merge-window order, each patch (channel,
 * frame, row, col). The fast (torch) processors fuse the two steps
 * (BaseImageProcessorFast._fuse_mean_std_and_rescale_factor): mean and std become float32 tensors
 * multiplied by 1/rescale_factor (the float32 op rounds the scalar to 255.0f), and torchvision's
 * normalize computes (x - mean255) / std255 in float32; the results differ by about one ulp.
 */
#include "avlens/media.h"
#include "base/internal.h"

static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

avl_status avl_patchify(const uint8_t *rgb, int64_t t, int64_t h, int64_t w, avl_norm_mode mode,
                        float *out, int64_t grid_thw[3])
{
    const int64_t P = AVL_PATCH, M = AVL_MERGE, TP = AVL_TEMPORAL_PATCH;
    if (t <= 0 || t % TP || h <= 0 || h % (P * M) || w <= 0 || w % (P * M))
        return avl__err(AVL_E_ARG, "patchify: %lld frames of %lldx%lld: need an even count and "
                        "sides that are multiples of 28", (long long)t, (long long)w, (long long)h);
    /* value lookup: normalised value of every possible byte per channel */
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        float m255 = clip_mean[c] * 255.0f, s255 = clip_std[c] * 255.0f;
        for (int v = 0; v < 256; v++) {
            if (mode == AVL_NORM_FAST) {
                lut[c][v] = ((float)v - m255) / s255;
            } else {
                float r = (float)((double)v * (1.0 / 255.0));
                lut[c][v] = (r - clip_mean[c]) / clip_std[c];
            }
        }
    }
    int64_t gt = t / TP, gh = h / P, gw = w / P;
    float *o = out;
    for (int64_t it = 0; it < gt; it++)
        for (int64_t bh = 0; bh < gh / M; bh++)
            for (int64_t bw = 0; bw < gw / M; bw++)
                for (int64_t mh = 0; mh < M; mh++)
                    for (int64_t mw = 0; mw < M; mw++)
                        /* one patch: (channel, frame, row, col) */
                        for (int c = 0; c < 3; c++)
                            for (int64_t tp = 0; tp < TP; tp++) {
                                const uint8_t *frame = rgb + (it * TP + tp) * h * w * 3;
                                for (int64_t py = 0; py < P; py++) {
                                    int64_t y = (bh * M + mh) * P + py;
                                    const uint8_t *row = frame + (y * w + (bw * M + mw) * P) * 3 + c;
                                    for (int64_t px = 0; px < P; px++) *o++ = lut[c][row[px * 3]];
                                }
                            }
    grid_thw[0] = gt;
    grid_thw[1] = gh;
    grid_thw[2] = gw;
    return AVL_OK;
}
