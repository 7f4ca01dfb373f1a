/* src/interp/corrupt.c: input corruption of one modality (paper-spec.md section 3 and App. B.1.5).
 *
 * ZERO follows the authors' causal_tracing_modality_sink.py, which zeroes the decoded frames
 * (torch.zeros_like on the video) or the waveform BEFORE the processor: the processor tensors
 * are then not zeros but what normalisation makes of black frames and of silence, and that is
 * what these functions write. NOISE adds seeded N(0, std^2) to the processor tensor. MEAN
 * replaces the encoder's rows in the decoder input by their mean.
 */
#include <math.h>
#include <string.h>

#include "base/internal.h"
#include "base/rng.h"
#include "avlens/interp.h"

/* The Whisper log-mel of silence: log10(max(0, 1e-10)) = -10; the floor max - 8 = -18 does
 * not apply; (-10 + 4) / 4. */
#define SILENCE_LOG_MEL (-1.5f)

static avl_status add_noise(float *x, int64_t n, const avl_corruption *c, const char *what)
{
    if (!(c->std >= 0.0) || !isfinite(c->std))
        return avl__err(AVL_E_ARG, "corrupt %s: noise std %g is not a finite non-negative number", what, c->std);
    avl__rng r;
    avl__rng_seed(&r, c->seed);
    for (int64_t i = 0; i < n; i++) x[i] = (float)((double)x[i] + c->std * avl__rng_normal(&r));
    return AVL_OK;
}

avl_status avl_corrupt_audio_features(float *features, int64_t count, const avl_corruption *c)
{
    if (count < 0) return avl__err(AVL_E_ARG, "corrupt audio: negative size");
    switch (c->kind) {
    case AVL_CORRUPT_ZERO:
        for (int64_t i = 0; i < count; i++) features[i] = SILENCE_LOG_MEL;
        return AVL_OK;
    case AVL_CORRUPT_NOISE: return add_noise(features, count, c, "audio");
    default: return avl__err(AVL_E_ARG, "corrupt audio: kind %d does not act on input_features", (int)c->kind);
    }
}

avl_status avl_corrupt_video_pixels(float *pixels, int64_t n_patches, int64_t patch_dim, const avl_corruption *c)
{
    if (n_patches < 0 || patch_dim <= 0 || patch_dim % 3)
        return avl__err(AVL_E_ARG, "corrupt video: patch_dim %lld is not 3 channels", (long long)patch_dim);
    switch (c->kind) {
    case AVL_CORRUPT_ZERO: {
        /* the normalised value of a 0 byte per channel, as avl_patchify computes it: run it on
         * one black 2 x 28 x 28 clip and read one value of each channel */
        static uint8_t black[AVL_TEMPORAL_PATCH * 28 * 28 * 3];
        float ref[4 * AVL_PATCH_DIM];
        int64_t grid[3];
        avl_status rc = avl_patchify(black, AVL_TEMPORAL_PATCH, 28, 28, c->norm, ref, grid);
        if (rc) return rc;
        int64_t per = patch_dim / 3, ref_per = AVL_PATCH_DIM / 3;
        for (int64_t i = 0; i < n_patches; i++)
            for (int64_t j = 0; j < patch_dim; j++) pixels[i * patch_dim + j] = ref[(j / per) * ref_per];
        return AVL_OK;
    }
    case AVL_CORRUPT_NOISE: return add_noise(pixels, n_patches * patch_dim, c, "video");
    default: return avl__err(AVL_E_ARG, "corrupt video: kind %d does not act on pixel_values_videos", (int)c->kind);
    }
}

avl_status avl_corrupt_mean_embeds(float *embeds, int64_t H, const avl_token_map *map, avl_tok_kind kind)
{
    if (H <= 0) return avl__err(AVL_E_ARG, "corrupt mean: width %lld", (long long)H);
    double *mean = avl__calloc((size_t)H, sizeof *mean);
    if (!mean) return avl__err(AVL_E_NOMEM, "corrupt mean: cannot allocate %lld values", (long long)H);
    int64_t cnt = 0;
    for (int64_t i = 0; i < map->n; i++) {
        if (map->tok[i].kind != (int8_t)kind) continue;
        for (int64_t j = 0; j < H; j++) mean[j] += embeds[i * H + j];
        cnt++;
    }
    if (cnt) {
        for (int64_t i = 0; i < map->n; i++) {
            if (map->tok[i].kind != (int8_t)kind) continue;
            for (int64_t j = 0; j < H; j++) embeds[i * H + j] = (float)(mean[j] / (double)cnt);
        }
    }
    avl__free(mean);
    return AVL_OK;
}
