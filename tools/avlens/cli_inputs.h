/* tools/avlens/cli_inputs.h: the thinker's inputs for analysis commands, from a safetensors
 * file of processor tensors (names as `avlens forward` reads them) or from a clip (the media
 * front end, the paper's system prompt and chat template, placeholders expanded). */
#ifndef AVL_CLI_INPUTS_H
#define AVL_CLI_INPUTS_H

#include <stdbool.h>

#include "avlens/avlens.h"

typedef struct {
    avl_thinker_inputs ti; /* points into the buffers below */
    int32_t *ids;
    float *feat, *pixv, *pixi;
    avl_features *f;       /* the clip route */
} cli_inputs;

/* IN tensors: input_ids; input_features (+ feature_attention_mask); pixel_values_videos +
 * video_grid_thw (+ video_second_per_grid); pixel_values + image_grid_thw. On failure prints
 * "avlens <cmd>: ..." and returns false. */
bool cli_inputs_from_file(const char *cmd, const char *path, const avl_config *cfg, bool use_audio_in_video,
                          cli_inputs *out);

/* A video file with its own audio track (use_audio_in_video), prompt as the user's text after
 * the video; the system prompt is the authors' "You are a helpful assistant.". */
bool cli_inputs_from_video(const char *cmd, const char *model_dir, const avl_model *m, const char *video,
                           const char *prompt, bool fast_processor, cli_inputs *out);

void cli_inputs_free(cli_inputs *in);

#endif
