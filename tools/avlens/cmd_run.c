/* tools/avlens/cmd_run.c: `avlens run`: a clip and a question -> the thinker's answer, the
 * researcher's end-to-end path: media front end (avl_features_*) -> conversation and placeholder
 * expansion (avl_prompt_build) -> encoders and embeddings (avl_thinker_embed) -> prefill and
 * generation (avl_generate). With --score, the probabilities of given answer words: at the first
 * generated step, and the paper's "max over steps" rule (paper-spec.md section 1, the authors'
 * utils/logit.py max_prob_for_word). --inputs reads the processor's tensors instead of a clip (its
 * own small reader here, the same names `avlens forward --inputs` reads); --dump-inputs writes
 * them, so that `avlens forward` can recompute the logits of the same sequence.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *USAGE =
    "usage: avlens run --model DIR (--video CLIP [--audio A] | --frames F1,F2,... [--audio A] | --audio A\n"
    "                  | --inputs IN.safetensors) [--use-audio-in-video] --prompt TEXT [--system TEXT]\n"
    "                  [--max-new-tokens N] [--temperature T --top-p P --top-k K --seed S]\n"
    "                  [--score A,B,C] [--fps F] [--max-pixels N] [--dump-inputs OUT.safetensors]\n"
    "                  [--backend NAME] [--threads N]\n\n"
    "Prints the thinker's answer to a question about a clip (greedy unless --temperature > 0; it\n"
    "stops at <|im_end|> or <|endoftext|>). Progress goes to stderr.\n\n"
    "  --model DIR            a Qwen2.5-Omni checkpoint folder (config, safetensors, tokenizer)\n"
    "  --video CLIP           a video file, sampled at --fps (default 2) as qwen-omni-utils does\n"
    "  --frames LIST          comma-separated frame images in order (the paper's JPGs at 2 fps)\n"
    "  --audio A              an audio file (or any file with an audio track)\n"
    "  --use-audio-in-video   the audio belongs to the video: interleaved in 2-second chunks (the\n"
    "                         paper's layout); without --audio it is the video file's own track\n"
    "  --inputs FILE          the processor's tensors (input_ids already expanded, input_features,\n"
    "                         feature_attention_mask, pixel_values_videos, video_grid_thw,\n"
    "                         video_second_per_grid) instead of a clip; --prompt is then not used\n"
    "  --prompt TEXT          the user's text, after the media\n"
    "  --system TEXT          the system text (default \"You are a helpful assistant.\")\n"
    "  --max-new-tokens N     at most N generated tokens (default 64)\n"
    "  --temperature T        0 (default): greedy; > 0: sampling, with --top-p P, --top-k K, --seed S\n"
    "  --score A,B,C          also print a JSON line with each answer word's probability: at the\n"
    "                         first generated step (its first token), and the paper's rule (first\n"
    "                         token of W and of \" W\", max over the generated steps)\n"
    "  --fps F, --max-pixels N  the video route's sampling rate and per-frame pixel cap\n"
    "  --dump-inputs FILE     write the processor's tensors of this run (what --inputs and\n"
    "                         `avlens forward --inputs` read)\n"
    "  --backend NAME         auto (default), ref, onednn, openblas\n"
    "  --threads N            worker threads (default: all cores)\n";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}



static void progress(void *user, avl_answer_stage stage, double seconds)
{
    (void)user;
    static const char *what[] = {"encoders", "prefill", "generation"};
    fprintf(stderr, "avlens run: %s done in %.2f s\n", what[stage], seconds);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}


/* Writes what the processor would hand the model for this run (names as `avlens forward` reads). */
static avl_status dump_inputs(const char *out, const avl_thinker_inputs *in, int64_t n_mels)
{
    avl_st_writer *w;
    avl_status rc = avl_st_writer_new(&w);
    if (rc) return rc;
    int64_t L = in->n;
    int64_t *ids = malloc((size_t)(L ? L : 1) * sizeof *ids), *mask = malloc((size_t)(L ? L : 1) * sizeof *mask);
    int32_t *fmask = NULL;
    if (!ids || !mask) rc = AVL_E_NOMEM;
    for (int64_t i = 0; !rc && i < L; i++) {
        ids[i] = in->input_ids[i];
        mask[i] = 1;
    }
    int64_t s2[2] = {1, L};
    if (!rc) rc = avl_st_writer_add(w, "input_ids", AVL_DTYPE_I64, 2, s2, ids);
    if (!rc) rc = avl_st_writer_add(w, "attention_mask", AVL_DTYPE_I64, 2, s2, mask);
    if (!rc && in->pixel_values_videos) {
        const int64_t *g = in->media.video_grid_thw[0];
        int64_t sp[2] = {g[0] * g[1] * g[2], AVL_PATCH_DIM}, sg[2] = {1, 3}, s1[1] = {1};
        float spg = (float)in->media.video_second_per_grid[0];
        rc = avl_st_writer_add(w, "pixel_values_videos", AVL_DTYPE_F32, 2, sp, in->pixel_values_videos);
        if (!rc) rc = avl_st_writer_add(w, "video_grid_thw", AVL_DTYPE_I64, 2, sg, g);
        if (!rc) rc = avl_st_writer_add(w, "video_second_per_grid", AVL_DTYPE_F32, 1, s1, &spg);
    }
    if (!rc && in->input_features) {
        int64_t T = in->n_feature_frames, sf[3] = {1, n_mels, T}, sm[2] = {1, T};
        /* the mask is a prefix of valid frames (Whisper's), rebuilt from the count */
        if (!(fmask = malloc((size_t)T * sizeof *fmask))) rc = AVL_E_NOMEM;
        for (int64_t j = 0; !rc && j < T; j++) fmask[j] = j < in->media.audio_feature_len[0];
        if (!rc) rc = avl_st_writer_add(w, "input_features", AVL_DTYPE_F32, 3, sf, in->input_features);
        if (!rc) rc = avl_st_writer_add(w, "feature_attention_mask", AVL_DTYPE_I32, 2, sm, fmask);
    }
    if (!rc) rc = avl_st_writer_set_metadata(w, "use_audio_in_video", in->use_audio_in_video ? "true" : "false");
    if (!rc) rc = avl_st_writer_save(w, out);
    avl_st_writer_free(w);
    free(ids);
    free(mask);
    free(fmask);
    return rc;
}

int avl_cmd_run(int argc, char **argv)
{
    const char *cmd = "run";
    const char *model = NULL, *video = NULL, *audio = NULL, *inputs = NULL, *prompt = NULL, *system = NULL;
    const char *backend = "auto", *dump = NULL;
    char *frames_arg = NULL, *score_arg = NULL;
    bool aiv = false;
    long long max_new = 64, top_k = 0, seed = 0, threads = 0, max_pixels = 0;
    double temperature = 0.0, top_p = 1.0, fps = 2.0;
    enum { O_MODEL = 256, O_VIDEO, O_AUDIO, O_FRAMES, O_AIV, O_INPUTS, O_PROMPT, O_SYSTEM, O_MAXNEW, O_TEMP, O_TOPP,
           O_TOPK, O_SEED, O_SCORE, O_BACKEND, O_THREADS, O_FPS, O_MAXPIX, O_DUMP };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"video", required_argument, 0, O_VIDEO},
        {"audio", required_argument, 0, O_AUDIO},     {"frames", required_argument, 0, O_FRAMES},
        {"use-audio-in-video", no_argument, 0, O_AIV}, {"inputs", required_argument, 0, O_INPUTS},
        {"prompt", required_argument, 0, O_PROMPT},   {"system", required_argument, 0, O_SYSTEM},
        {"max-new-tokens", required_argument, 0, O_MAXNEW}, {"temperature", required_argument, 0, O_TEMP},
        {"top-p", required_argument, 0, O_TOPP},      {"top-k", required_argument, 0, O_TOPK},
        {"seed", required_argument, 0, O_SEED},       {"score", required_argument, 0, O_SCORE},
        {"backend", required_argument, 0, O_BACKEND}, {"threads", required_argument, 0, O_THREADS},
        {"fps", required_argument, 0, O_FPS},         {"max-pixels", required_argument, 0, O_MAXPIX},
        {"dump-inputs", required_argument, 0, O_DUMP}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_VIDEO: video = optarg; break;
        case O_AUDIO: audio = optarg; break;
        case O_FRAMES: frames_arg = optarg; break;
        case O_AIV: aiv = true; break;
        case O_INPUTS: inputs = optarg; break;
        case O_PROMPT: prompt = optarg; break;
        case O_SYSTEM: system = optarg; break;
        case O_SCORE: score_arg = optarg; break;
        case O_BACKEND: backend = optarg; break;
        case O_DUMP: dump = optarg; break;
        case O_MAXNEW: if (!cli_parse_int(cmd, "--max-new-tokens", optarg, &max_new)) return 2; break;
        case O_TOPK: if (!cli_parse_int(cmd, "--top-k", optarg, &top_k)) return 2; break;
        case O_SEED: if (!cli_parse_int(cmd, "--seed", optarg, &seed)) return 2; break;
        case O_THREADS: if (!cli_parse_int(cmd, "--threads", optarg, &threads)) return 2; break;
        case O_MAXPIX: if (!cli_parse_int(cmd, "--max-pixels", optarg, &max_pixels)) return 2; break;
        case O_TEMP:
            if (!cli_parse_real(optarg, 0, 100, &temperature)) return cli_usage_error(cmd, "--temperature wants 0 to 100, got '%s'", optarg);
            break;
        case O_TOPP:
            if (!cli_parse_real(optarg, 1e-9, 1, &top_p)) return cli_usage_error(cmd, "--top-p wants a number in (0, 1], got '%s'", optarg);
            break;
        case O_FPS:
            if (!cli_parse_real(optarg, 1e-3, 1000, &fps)) return cli_usage_error(cmd, "--fps wants a positive number, got '%s'", optarg);
            break;
        case 'h': fputs(USAGE, stdout); return 0;
        default:
            if (optopt) return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_usage_error(cmd, "--model is required");
    if (inputs && (video || frames_arg || audio)) return cli_usage_error(cmd, "--inputs excludes --video, --frames and --audio");
    if (video && frames_arg) return cli_usage_error(cmd, "give --video or --frames, not both");
    if (!inputs && !prompt) return cli_usage_error(cmd, "--prompt is required");
    if (aiv && !inputs && !video && !frames_arg) return cli_usage_error(cmd, "--use-audio-in-video needs --video or --frames");
    if (aiv && frames_arg && !audio) return cli_usage_error(cmd, "--use-audio-in-video with --frames needs --audio");
    if (max_new < 1) return cli_usage_error(cmd, "--max-new-tokens must be at least 1");

    int exit_code = 1;
    avl_status rc = AVL_OK;
    avl_tokenizer *tok = NULL;
    avl_model *m = NULL;
    avl_features *f = NULL;
    avl_prompt *pr = NULL;
    avl_inputs *loaded = NULL;
    avl_answer *ans = NULL;
    char **frame_list = NULL, **words = NULL;
    int n_words = 0;
    const avl_thinker_inputs *in = NULL;

    /* the answer words' token ids first: a bad --score is found before any work */
    if ((rc = avl_tokenizer_load(model, &tok))) {
        fprintf(stderr, "avlens run: %s: no usable tokenizer (tokenizer.json, or vocab.json + merges.txt): %s\n", model,
                avl_last_error());
        goto done;
    }
    if (score_arg) {
        long n = cli_split_list(score_arg, &words);
        if (n < 0) {
            exit_code = cli_usage_error(cmd, "--score wants comma-separated words, got an empty one");
            goto done;
        }
        n_words = (int)n;
    }
    double t0 = now();
    if (inputs) {
        /* the library's reader checks the tensors against the checkpoint's config */
        avl_config cfg;
        if ((rc = avl_config_load(model, &cfg)) || (rc = avl_inputs_load(inputs, &cfg, aiv, &loaded))) goto fail;
        in = avl_inputs_get(loaded);
    } else {
        avl_features_params fp = avl_features_default_params();
        fp.video.fps = fps;
        fp.list_fps = fps;
        fp.use_audio_in_video = aiv;
        if (max_pixels > 0) fp.video.max_pixels = max_pixels;
        if (video) {
            rc = avl_features_from_video(video, audio, &fp, &f);
        } else if (frames_arg) {
            long n = cli_split_list(frames_arg, &frame_list);
            if (n < 0) {
                exit_code = cli_usage_error(cmd, "--frames wants comma-separated file names, got an empty one");
                goto done;
            }
            rc = avl_features_from_frames((const char *const *)frame_list, n, audio, &fp, &f);
        } else if (audio) {
            rc = avl_features_from_audio(audio, &fp, &f);
        }
        if (rc) goto fail;
        if (f && f->pixel_values_videos)
            fprintf(stderr, "avlens run: video: %lld frames %lldx%lld -> %lldx%lld, grid %lldx%lldx%lld\n",
                    (long long)f->n_frames, (long long)f->src_w, (long long)f->src_h, (long long)f->frame_w,
                    (long long)f->frame_h, (long long)f->video_grid_thw[0], (long long)f->video_grid_thw[1],
                    (long long)f->video_grid_thw[2]);
        if (f && f->input_features)
            fprintf(stderr, "avlens run: audio: %.2f s, %lld valid mel frames\n", (double)f->n_audio_samples / 16000.0,
                    (long long)f->n_valid_frames);
    }
    double t_feat = now() - t0;
    t0 = now();
    avl_model_params mp = avl_model_default_params();
    mp.backend = backend;
    mp.threads = (int)threads;
    if ((rc = avl_model_load(model, &mp, &m))) goto fail;
    fprintf(stderr, "avlens run: model %s loaded in %.2f s (%s)\n", model, now() - t0, avl_model_backend(m));

    if (!inputs) {
        avl_prompt_params pp = avl_prompt_default_params();
        pp.system = system;
        pp.text = prompt;
        pp.use_audio_in_video = aiv;
        avl_seq_params sp = avl_model_seq_params(m);
        if ((rc = avl_prompt_build(tok, &sp, f, &pp, &pr))) goto fail;
        in = &pr->inputs;
        fprintf(stderr, "avlens run: features in %.2f s; prompt %lld tokens (%lld video, %lld audio)\n", t_feat,
                (long long)pr->n, (long long)pr->n_video_tokens, (long long)pr->n_audio_tokens);
    }
    if (dump) {
        if ((rc = dump_inputs(dump, in, avl_model_config(m)->audio.num_mel_bins))) goto fail;
        fprintf(stderr, "avlens run: wrote %s\n", dump);
    }

    avl_answer_params ap = avl_answer_default_params();
    ap.gen.max_new_tokens = max_new;
    ap.gen.temperature = (float)temperature;
    ap.gen.top_p = (float)top_p;
    ap.gen.top_k = (int)top_k;
    ap.gen.seed = (uint64_t)seed;
    ap.words = (const char *const *)words;
    ap.n_words = n_words;
    ap.progress = progress;
    if ((rc = avl_answer_run(m, tok, in, &ap, &ans))) goto fail;
    fprintf(stderr, "avlens run: %lld tokens generated\n", (long long)ans->n_ids);
    printf("%s\n", ans->text);
    if (n_words) {
        printf("{\"answer\": ");
        json_str(stdout, ans->text);
        printf(", \"steps\": %lld, \"first_step\": {", (long long)ans->n_ids);
        for (int i = 0; i < n_words; i++) {
            printf("%s", i ? ", " : "");
            json_str(stdout, words[i]);
            printf(": %.9g", ans->first_step[i]);
        }
        printf("}, \"max_over_steps\": {");
        for (int i = 0; i < n_words; i++) {
            printf("%s", i ? ", " : "");
            json_str(stdout, words[i]);
            printf(": %.9g", ans->max_over_steps[i]);
        }
        printf("}}\n");
    }
    exit_code = 0;
    goto done;
fail:
    exit_code = cli_fail(cmd, rc);
done:
    avl_answer_free(ans);
    avl_prompt_free(pr);
    avl_features_free(f);
    avl_inputs_free(loaded);
    free(frame_list);
    free(words);
    avl_model_free(m);
    avl_tokenizer_free(tok);
    return exit_code;
}
