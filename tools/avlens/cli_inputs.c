/* tools/avlens/cli_inputs.c: thinker inputs for analysis commands (contract in cli_inputs.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_inputs.h"

void cli_inputs_free(cli_inputs *in)
{
    avl_inputs_free(in->loaded);
    avl_prompt_free(in->pr); /* before the features it points into */
    avl_features_free(in->f);
    memset(in, 0, sizeof *in);
}

bool cli_inputs_from_file(const char *cmd, const char *path, const avl_config *cfg, bool use_audio_in_video,
                          cli_inputs *out)
{
    /* the library's reader checks every tensor against the config and names file and tensor */
    avl_status rc = avl_inputs_load(path, cfg, use_audio_in_video, &out->loaded);
    if (rc) {
        cli_fail(cmd, rc);
        return false;
    }
    out->ti = *avl_inputs_get(out->loaded);
    return true;
}

bool cli_inputs_from_video(const char *cmd, const char *model_dir, const avl_model *m, const char *video,
                           const char *prompt, bool fast_processor, cli_inputs *out)
{
    avl_tokenizer *tok = NULL;
    avl_features_params fp = avl_features_default_params();
    fp.use_audio_in_video = true;
    fp.norm = fast_processor ? AVL_NORM_FAST : AVL_NORM_SLOW;
    avl_status rc = avl_features_from_video(video, NULL, &fp, &out->f);
    if (!rc) rc = avl_tokenizer_load(model_dir, &tok);
    if (!rc) {
        /* the paper's conversation: system prompt, then the video with its own audio, then the text */
        avl_seq_params sp = avl_model_seq_params(m);
        avl_prompt_params pp = avl_prompt_default_params();
        pp.text = prompt;
        pp.use_audio_in_video = true;
        rc = avl_prompt_build(tok, &sp, out->f, &pp, &out->pr);
    }
    avl_tokenizer_free(tok);
    if (rc) {
        cli_fail(cmd, rc);
        cli_inputs_free(out);
        return false;
    }
    out->ti = out->pr->inputs;
    return true;
}
