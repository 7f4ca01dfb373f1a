/* src/model/audio_encoder.h: the audio encoder's forward pass with a stage observer.
 *
 * avl__audio_encoder_forward (model_internal.h) is this with no observer. The observer exists for
 * the golden tests (a failure names the first stage that diverges) and for analyses that want the
 * encoder's hidden states; it costs nothing when NULL.
 */
#ifndef AVLENS_MODEL_AUDIO_ENCODER_H
#define AVLENS_MODEL_AUDIO_ENCODER_H

#include "model/model_internal.h"

/* Called with rows [row0, row0 + rows) of the encoder's sequence after the conv stem (one row per
 * two mel frames, chunks concatenated): stage 0 is the conv stem's output with the positional
 * embedding added (the first layer's input), stage l (1..encoder_layers) the output of layer l.
 * x: (rows, d_model), valid during the call only. Rows arrive in increasing order, in groups of
 * whole chunks. */
typedef void (*avl__audio_stage_fn)(void *user, int stage, int64_t row0, int64_t rows, int64_t dim, const float *x);

avl_status avl__audio_encoder_forward_observed(const avl_model *m, const avl__audio_enc *e, const float *features,
                                               int64_t ld, int64_t n_frames, float *out, avl__audio_stage_fn fn,
                                               void *user);

#endif
