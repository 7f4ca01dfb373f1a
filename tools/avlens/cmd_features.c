/* tools/avlens/cmd_features.c: `avlens features`: a clip -> the Qwen2.5-Omni processor's model
 * inputs in one safetensors file (names as the Hugging Face processor returns them). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *usage_text =
    "usage: avlens features (--video CLIP | --frames F1,F2,... | --audio A) [--audio A]\n"
    "                       [--use-audio-in-video] [--fps F] [--max-pixels N] [--processor-fps F]\n"
    "                       [--fast-processor] [--prompt TEXT --model DIR [--system TEXT]]\n"
    "                       --out FILE.safetensors\n"
    "\n"
    "Turns a clip into exactly what Qwen2.5-Omni's processor gives the model:\n"
    "  pixel_values_videos     F32 (grid_t*grid_h*grid_w, 1176)\n"
    "  video_grid_thw          I64 (1, 3)\n"
    "  video_second_per_grid   F32 (1)\n"
    "  input_features          F32 (1, 128, 30000)   Whisper log-mel padded to 300 s\n"
    "  feature_attention_mask  I32 (1, 30000)\n"
    "\n"
    "  --video CLIP            a video file: every frame decoded, sampled at --fps (default 2)\n"
    "  --frames LIST           comma-separated frame images in order (the paper's 20 JPGs per clip);\n"
    "                          --fps gives their rate (default 2)\n"
    "  --audio A               an audio file (or any file with an audio track)\n"
    "  --use-audio-in-video    take the audio track of --video (an error if it has none)\n"
    "  --max-pixels N          per-frame pixel cap of the video route (default 602112 = 768*28*28;\n"
    "                          the paper authors' copy used 100352 = 128*28*28)\n"
    "  --processor-fps F       the fps the processor is told: video_second_per_grid = 2/F (default:\n"
    "                          the sample fps, as qwen-omni-utils passes it; the paper's infer.py\n"
    "                          passes none, i.e. 2)\n"
    "  --fast-processor        normalise as the fast (torch) image processor, use_fast=True, which the\n"
    "                          paper's authors load for the 7B model (differs by ~1 float32 ulp)\n"
    "  --prompt TEXT           also write input_ids and attention_mask: the conversation (system,\n"
    "                          user: the media then TEXT) rendered with the checkpoint's chat template,\n"
    "                          encoded, placeholders expanded as the processor does\n"
    "  --model DIR             the checkpoint whose tokenizer and token ids --prompt uses\n"
    "  --system TEXT           the system prompt (default \"You are a helpful assistant.\")\n"
    "  --out FILE              the safetensors file to write\n";



/* The sequence parameters a checkpoint's config gives (what avl_model_seq_params returns for a
 * loaded model), without loading the weights. */
static avl_seq_params seq_params_of(const avl_config *c)
{
    avl_seq_params p = avl_seq_default_params();
    p.audio_token_id = (int32_t)c->audio_token_id;
    p.image_token_id = (int32_t)c->image_token_id;
    p.video_token_id = (int32_t)c->video_token_id;
    p.vision_start_token_id = (int32_t)c->vision_start_token_id;
    p.vision_end_token_id = (int32_t)c->vision_end_token_id;
    p.audio_start_token_id = (int32_t)c->audio_start_token_id;
    p.audio_end_token_id = (int32_t)c->audio_end_token_id;
    p.spatial_merge_size = (int)c->vision.spatial_merge_size;
    p.position_id_per_seconds = (int)c->position_id_per_seconds;
    p.seconds_per_chunk = c->seconds_per_chunk;
    return p;
}

static avl_status write_features(const avl_features *f, const avl_prompt *pr, const char *out, const char *source)
{
    avl_st_writer *w;
    avl_status rc = avl_st_writer_new(&w);
    if (rc) return rc;
    if (pr) {
        int64_t shape[2] = {1, pr->n};
        int64_t *ids = malloc((size_t)(pr->n ? pr->n : 1) * sizeof *ids);
        int64_t *mask = malloc((size_t)(pr->n ? pr->n : 1) * sizeof *mask);
        if (!ids || !mask) rc = AVL_E_NOMEM;
        for (int64_t i = 0; !rc && i < pr->n; i++) {
            ids[i] = pr->ids[i];
            mask[i] = 1;
        }
        if (!rc) rc = avl_st_writer_add(w, "input_ids", AVL_DTYPE_I64, 2, shape, ids);
        if (!rc) rc = avl_st_writer_add(w, "attention_mask", AVL_DTYPE_I64, 2, shape, mask);
        free(ids);
        free(mask);
    }
    if (f->pixel_values_videos) {
        int64_t s1[2] = {f->n_patches, AVL_PATCH_DIM};
        int64_t s2[2] = {1, 3};
        int64_t s3[1] = {1};
        float spg = (float)f->video_second_per_grid;
        if (!rc) rc = avl_st_writer_add(w, "pixel_values_videos", AVL_DTYPE_F32, 2, s1, f->pixel_values_videos);
        if (!rc) rc = avl_st_writer_add(w, "video_grid_thw", AVL_DTYPE_I64, 2, s2, f->video_grid_thw);
        if (!rc) rc = avl_st_writer_add(w, "video_second_per_grid", AVL_DTYPE_F32, 1, s3, &spg);
    }
    if (f->input_features) {
        int64_t s1[3] = {1, f->n_mels, f->n_mel_frames};
        int64_t s2[2] = {1, f->n_mel_frames};
        if (!rc) rc = avl_st_writer_add(w, "input_features", AVL_DTYPE_F32, 3, s1, f->input_features);
        if (!rc) rc = avl_st_writer_add(w, "feature_attention_mask", AVL_DTYPE_I32, 2, s2, f->feature_attention_mask);
    }
    char buf[64];
    if (!rc) rc = avl_st_writer_set_metadata(w, "source", source);
    if (!rc && f->pixel_values_videos) {
        snprintf(buf, sizeof buf, "%.17g", f->sample_fps);
        rc = avl_st_writer_set_metadata(w, "sample_fps", buf);
    }
    if (!rc && f->input_features) {
        snprintf(buf, sizeof buf, "%lld", (long long)f->n_audio_samples);
        rc = avl_st_writer_set_metadata(w, "audio_samples_16k", buf);
    }
    if (!rc) rc = avl_st_writer_save(w, out);
    avl_st_writer_free(w);
    return rc;
}

int avl_cmd_features(int argc, char **argv)
{
    const char *cmd = "features";
    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    const char *video = NULL, *audio = NULL, *out = NULL, *prompt = NULL, *model = NULL, *system_text = NULL;
    char *frames_arg = NULL;
    double fps = 2.0, processor_fps = 0.0;
    bool fast = false;
    long long max_pixels = -1;
    bool audio_in_video = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--use-audio-in-video")) {
            audio_in_video = true;
        } else if (!strcmp(a, "--fast-processor")) {
            fast = true;
        } else if (!strcmp(a, "--video") || !strcmp(a, "--frames") || !strcmp(a, "--audio") || !strcmp(a, "--out") ||
                   !strcmp(a, "--fps") || !strcmp(a, "--max-pixels") || !strcmp(a, "--processor-fps") ||
                   !strcmp(a, "--prompt") || !strcmp(a, "--model") || !strcmp(a, "--system")) {
            if (!has_val) return cli_usage_error(cmd, "%s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--video")) video = v;
            else if (!strcmp(a, "--frames")) frames_arg = argv[i];
            else if (!strcmp(a, "--audio")) audio = v;
            else if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--prompt")) prompt = v;
            else if (!strcmp(a, "--model")) model = v;
            else if (!strcmp(a, "--system")) system_text = v;
            else if (!strcmp(a, "--fps") || !strcmp(a, "--processor-fps")) {
                if (!cli_parse_positive(v, !strcmp(a, "--fps") ? &fps : &processor_fps))
                    return cli_usage_error(cmd, "%s wants a positive number, got '%s'", a, v);
            } else if (!cli_parse_int(cmd, "--max-pixels", v, &max_pixels)) {
                return 2;
            }
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        }
    }
    if (!out) return cli_usage_error(cmd, "--out is required");
    if (video && frames_arg) return cli_usage_error(cmd, "give --video or --frames, not both");
    if (!video && !frames_arg && !audio) return cli_usage_error(cmd, "give --video, --frames or --audio");
    if (audio_in_video && !video) return cli_usage_error(cmd, "--use-audio-in-video needs --video");
    if (audio_in_video && audio) return cli_usage_error(cmd, "--use-audio-in-video and --audio exclude each other");
    if (max_pixels == 0) return cli_usage_error(cmd, "--max-pixels must be positive");
    if ((prompt != NULL) != (model != NULL)) return cli_usage_error(cmd, "--prompt and --model go together");
    if (system_text && !prompt) return cli_usage_error(cmd, "--system needs --prompt");

    avl_features_params p = avl_features_default_params();
    p.video.fps = fps;
    p.list_fps = fps;
    p.use_audio_in_video = audio_in_video;
    if (max_pixels > 0) p.video.max_pixels = max_pixels;
    p.processor_fps = processor_fps;
    p.norm = fast ? AVL_NORM_FAST : AVL_NORM_SLOW;

    avl_features *f = NULL;
    avl_status rc;
    const char *source;
    if (video) {
        source = video;
        rc = avl_features_from_video(video, audio, &p, &f);
    } else if (frames_arg) {
        char **items;
        long n = cli_split_list(frames_arg, &items);
        if (n == -1) return cli_fail(cmd, AVL_E_NOMEM);
        if (n < 0) return cli_usage_error(cmd, "--frames has an empty name at position %ld", -n - 1);
        source = items[0];
        rc = avl_features_from_frames((const char *const *)items, n, audio, &p, &f);
        free(items);
    } else {
        source = audio;
        rc = avl_features_from_audio(audio, &p, &f);
    }
    if (rc) return cli_fail(cmd, rc);
    avl_prompt *pr = NULL;
    if (prompt) {
        avl_config cfg;
        avl_tokenizer *tok = NULL;
        rc = avl_config_load(model, &cfg);
        if (!rc) rc = avl_tokenizer_load(model, &tok);
        if (!rc) {
            avl_seq_params sp = seq_params_of(&cfg);
            avl_prompt_params pp = avl_prompt_default_params();
            pp.text = prompt;
            pp.system = system_text;
            pp.use_audio_in_video = audio_in_video;
            rc = avl_prompt_build(tok, &sp, f, &pp, &pr);
        }
        avl_tokenizer_free(tok);
        if (rc) {
            avl_features_free(f);
            return cli_fail(cmd, rc);
        }
    }
    rc = write_features(f, pr, out, source);
    if (rc) {
        avl_prompt_free(pr);
        avl_features_free(f);
        return cli_fail(cmd, rc);
    }
    if (pr) printf("prompt: %lld tokens after expansion\n", (long long)pr->n);
    avl_prompt_free(pr);
    if (f->pixel_values_videos)
        printf("video: %lld frames of %lldx%lld -> %lldx%lld, grid %lldx%lldx%lld, %.4g s per grid\n",
               (long long)f->n_frames, (long long)f->src_w, (long long)f->src_h, (long long)f->frame_w,
               (long long)f->frame_h, (long long)f->video_grid_thw[0], (long long)f->video_grid_thw[1],
               (long long)f->video_grid_thw[2], f->video_second_per_grid);
    if (f->input_features)
        printf("audio: %lld samples at 16 kHz -> %lld of %lld mel frames valid\n", (long long)f->n_audio_samples,
               (long long)f->n_valid_frames, (long long)f->n_mel_frames);
    printf("wrote %s\n", out);
    avl_features_free(f);
    return 0;
}
