/* tools/avlens/cmd_demo.c: `avlens demo`: the README's first command. Makes a tiny Qwen2.5-Omni
 * checkpoint in the exact Hugging Face layout, loads and verifies it the way a real 7B
 * checkpoint is loaded, tokenizes the paper's captioning prompt with the checkpoint's own
 * tokenizer and chat template, then makes three synthetic clips (avl_clip_write) and runs each
 * through the whole path a researcher uses (features -> prompt -> encoders -> thinker): the
 * captioning prompt (greedy) and a three-way classification prompt in the paper's format with the
 * option probabilities. Everything found goes to DIR/report.html and DIR/summary.json.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static const char *USAGE =
    "usage: avlens demo [--out DIR] [--seed N]\n\n"
    "Makes a tiny Qwen2.5-Omni checkpoint (DIR/model), loads and verifies it, tokenizes the paper's\n"
    "captioning prompt with its chat template, makes three synthetic clips (DIR/clips/), asks the\n"
    "model to caption and to classify each (`avlens run`'s path: features, prompt, encoders,\n"
    "generation, option probabilities), and writes DIR/report.html and DIR/summary.json.\n"
    "The weights are random, so the answers are noise: the demo shows the path, not the model.\n\n"
    "  --out DIR    where everything goes (default: demo)\n"
    "  --seed N     seed of the random weights (default: 0)\n";

static const char *PROMPT_JSON =
    "[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"You are a helpful assistant.\"}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"video\",\"video\":\"clip.mp4\"},"
    "{\"type\":\"text\",\"text\":\"Describe what you see and hear in a single sentence.\"}]}]";


static const char *CAPTION = "Describe what you see and hear in a single sentence.";
/* The paper's classification format (paper-spec.md section 1) with three options. */
static const char *CLASSIFY = "Classify the moving object into one of the categories below:\n\n"
                              "A. red square\nB. green circle\nC. blue square\n\n"
                              "Respond ONLY with a single label letter (A\xe2\x80\x93" "C).";
static const char *LETTERS[] = {"A", "B", "C"};

typedef struct {
    const char *name, *color, *sound_name;
    avl_clip_shape shape;
    avl_clip_sound sound;
    double tone_hz;
} clip_spec;

static const clip_spec CLIPS[] = {
    {"red_square_tone", "red", "440 Hz tone", AVL_CLIP_SQUARE, AVL_CLIP_TONE, 440.0},
    {"green_circle_noise", "green", "noise bursts", AVL_CLIP_CIRCLE, AVL_CLIP_NOISE, 0.0},
    {"blue_square_silence", "blue", "silence", AVL_CLIP_SQUARE, AVL_CLIP_SILENCE, 0.0},
};
#define N_CLIPS ((int)(sizeof CLIPS / sizeof CLIPS[0]))

typedef struct {
    avl_clip_params params;
    char path[4400];
    int64_t grid[3], n_prompt, n_video, n_audio;
    double seconds;             /* wall time of the clip's whole path (not written to summary.json) */
    char *caption, *label;      /* answers (malloc'd) */
    double first[3], best[3];   /* option probabilities */
} clip_result;

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static char *dup_str(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

/* One clip: write it, then caption and classify it as `avlens run` would. */
static avl_status run_clip(const avl_model *m, const avl_tokenizer *tok, const char *dir, const clip_spec *cs,
                           uint64_t seed, clip_result *r)
{
    double t0 = now();
    r->params = avl_clip_default_params();
    avl_clip_color(cs->color, r->params.color);
    r->params.shape = cs->shape;
    r->params.sound = cs->sound;
    if (cs->tone_hz > 0) r->params.tone_hz = cs->tone_hz;
    r->params.seed = seed;
    snprintf(r->path, sizeof r->path, "%s/%s.mp4", dir, cs->name);
    avl_status rc = avl_clip_write(r->path, &r->params);
    if (rc) return rc;
    avl_features_params fp = avl_features_default_params();
    fp.use_audio_in_video = true;
    avl_features *f = NULL;
    avl_prompt *pr = NULL;
    avl_answer *a = NULL;
    avl_seq_params sp = avl_model_seq_params(m);
    if ((rc = avl_features_from_video(r->path, NULL, &fp, &f))) goto done;
    memcpy(r->grid, f->video_grid_thw, sizeof r->grid);
    for (int q = 0; q < 2; q++) {
        avl_prompt_params pp = avl_prompt_default_params();
        pp.text = q ? CLASSIFY : CAPTION;
        pp.use_audio_in_video = true;
        if ((rc = avl_prompt_build(tok, &sp, f, &pp, &pr))) goto done;
        avl_answer_params ap = avl_answer_default_params();
        ap.gen.max_new_tokens = q ? 3 : 8;
        if (q) {
            ap.words = LETTERS;
            ap.n_words = 3;
        }
        if ((rc = avl_answer_run(m, tok, &pr->inputs, &ap, &a))) goto done;
        r->n_prompt = pr->n;
        r->n_video = pr->n_video_tokens;
        r->n_audio = pr->n_audio_tokens;
        char **dst = q ? &r->label : &r->caption;
        if (!(*dst = dup_str(a->text))) {
            rc = AVL_E_NOMEM;
            goto done;
        }
        for (int i = 0; q && i < 3; i++) {
            r->first[i] = a->first_step[i];
            r->best[i] = a->max_over_steps[i];
        }
        avl_answer_free(a);
        a = NULL;
        avl_prompt_free(pr);
        pr = NULL;
    }
    r->seconds = now() - t0;
done:
    avl_answer_free(a);
    avl_prompt_free(pr);
    avl_features_free(f);
    return rc;
}

/* The clip's first and last frames as one small SVG: the shape where it starts (faint) and ends. */
static void clip_svg(FILE *f, const avl_clip_params *p)
{
    int64_t n = avl_clip_frames(p);
    fprintf(f, "<svg width=\"%lld\" height=\"%lld\" viewBox=\"0 0 %lld %lld\"><rect width=\"100%%\" height=\"100%%\" "
               "fill=\"rgb(%d,%d,%d)\"/>", (long long)p->width / 2, (long long)p->height / 2, (long long)p->width,
            (long long)p->height, p->background[0], p->background[1], p->background[2]);
    for (int e = 0; e < 2; e++) {
        int64_t b[4];
        avl_clip_box(p, e ? n - 1 : 0, b);
        const char *op = e ? "1" : "0.35";
        if (p->shape == AVL_CLIP_CIRCLE)
            fprintf(f, "<circle cx=\"%g\" cy=\"%g\" r=\"%g\" fill=\"rgb(%d,%d,%d)\" opacity=\"%s\"/>", 0.5 * (double)(b[0] + b[2]),
                    0.5 * (double)(b[1] + b[3]), 0.5 * (double)(b[2] - b[0]), p->color[0], p->color[1], p->color[2], op);
        else
            fprintf(f, "<rect x=\"%lld\" y=\"%lld\" width=\"%lld\" height=\"%lld\" fill=\"rgb(%d,%d,%d)\" opacity=\"%s\"/>",
                    (long long)b[0], (long long)b[1], (long long)(b[2] - b[0]), (long long)(b[3] - b[1]), p->color[0],
                    p->color[1], p->color[2], op);
    }
    fprintf(f, "</svg>");
}

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

int avl_cmd_demo(int argc, char **argv)
{
    const char *out = "demo";
    long long seed = 0;
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'}, {"seed", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's': if (!cli_parse_int("demo", "--seed", optarg, &seed)) return 2; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: return cli_usage_error("demo", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    /* the demo's matrices are tiny: spinning OpenMP workers would cost more than they save on a
     * shared machine (set before the first parallel region; a user's own setting wins) */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "avlens demo: %s: cannot create: %s\n", out, strerror(errno));
        return 1;
    }
    char model_dir[4096], path[4200];
    snprintf(model_dir, sizeof model_dir, "%s/model", out);

    avl_status rc;
    avl_checkpoint *ck = NULL;
    avl_tokenizer *tok = NULL;
    char *chat = NULL;
    size_t chat_len = 0;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    int exit_code = 1;
    avl_model *m = NULL;
    clip_result res[N_CLIPS];
    memset(res, 0, sizeof res);
    char clip_dir[4200];

    printf("[1/5] writing a tiny Qwen2.5-Omni checkpoint to %s\n", model_dir);
    avl_mkmodel_params mp = avl_mkmodel_default_params();
    mp.seed = (uint64_t)seed;
    if ((rc = avl_mkmodel_write(&mp, model_dir))) goto fail;

    printf("[2/5] loading and verifying it as a real checkpoint is loaded\n");
    if ((rc = avl_checkpoint_open(model_dir, &ck))) goto fail;
    const avl_config *cfg = avl_checkpoint_config(ck);
    int64_t counts[AVL_PART_COUNT];
    int64_t total = avl_config_param_counts(cfg, counts);
    printf("      %s: LLM %lld layers x %lld wide (%lld heads, %lld KV heads), audio tower %lld layers, "
           "vision tower %lld blocks; %lld parameters\n",
           cfg->model_type, (long long)cfg->text.num_hidden_layers, (long long)cfg->text.hidden_size,
           (long long)cfg->text.num_attention_heads, (long long)cfg->text.num_key_value_heads,
           (long long)cfg->audio.encoder_layers, (long long)cfg->vision.depth, (long long)total);

    printf("[3/5] tokenizing the paper's captioning prompt with the checkpoint's chat template\n");
    if ((rc = avl_tokenizer_load(model_dir, &tok))) goto fail;
    avl_chat_params cp = avl_chat_default_params();
    if ((rc = avl_chat_render(PROMPT_JSON, strlen(PROMPT_JSON), &cp, &chat, &chat_len))) goto fail;
    if ((rc = avl_tokenizer_encode(tok, chat, chat_len, &ids, &n_ids))) goto fail;
    printf("      %lld tokens\n", (long long)n_ids);

    snprintf(clip_dir, sizeof clip_dir, "%s/clips", out);
    if (mkdir(clip_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "avlens demo: %s: cannot create: %s\n", clip_dir, strerror(errno));
        goto done;
    }
    printf("[4/5] loading the model for inference\n");
    avl_model_params lp = avl_model_default_params();
    if ((rc = avl_model_load(model_dir, &lp, &m))) goto fail;
    printf("[5/5] %d synthetic clips in %s, each captioned and classified (features -> prompt -> thinker)\n", N_CLIPS,
           clip_dir);
    for (int c = 0; c < N_CLIPS; c++) {
        if ((rc = run_clip(m, tok, clip_dir, &CLIPS[c], (uint64_t)seed + (uint64_t)c, &res[c]))) goto fail;
        clip_result *r = &res[c];
        printf("      %s: grid %lldx%lldx%lld, %lld video + %lld audio tokens, %.1f s\n", CLIPS[c].name,
               (long long)r->grid[0], (long long)r->grid[1], (long long)r->grid[2], (long long)r->n_video,
               (long long)r->n_audio, r->seconds);
        printf("        caption: %s\n        label: %s   p(A,B,C) first step = %.4f %.4f %.4f\n", r->caption, r->label,
               r->first[0], r->first[1], r->first[2]);
    }

    snprintf(path, sizeof path, "%s/summary.json", out);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "avlens demo: %s: cannot write: %s\n", path, strerror(errno));
        goto done;
    }
    fprintf(f, "{\"model\": \"%s\", \"parameters\": %lld, \"parts\": {", model_dir, (long long)total);
    for (int p = 0; p < AVL_PART_COUNT; p++)
        fprintf(f, "%s\"%s\": %lld", p ? ", " : "", avl_part_name((avl_part)p), (long long)counts[p]);
    fprintf(f, "}, \"prompt_tokens\": [");
    for (int64_t i = 0; i < n_ids; i++) fprintf(f, "%s%d", i ? ", " : "", ids[i]);
    fprintf(f, "], \"captioning_prompt\": ");
    json_str(f, CAPTION);
    fprintf(f, ", \"classification_prompt\": ");
    json_str(f, CLASSIFY);
    fprintf(f, ", \"clips\": [");
    for (int c = 0; c < N_CLIPS; c++) {
        const clip_result *r = &res[c];
        fprintf(f, "%s\n  {\"clip\": ", c ? "," : "");
        json_str(f, r->path);
        fprintf(f, ", \"shape\": \"%s\", \"color\": \"%s\", \"sound\": ", CLIPS[c].shape == AVL_CLIP_CIRCLE ? "circle" : "square",
                CLIPS[c].color);
        json_str(f, CLIPS[c].sound_name);
        fprintf(f, ", \"grid_thw\": [%lld, %lld, %lld], \"sequence_tokens\": %lld, \"video_tokens\": %lld, "
                   "\"audio_tokens\": %lld, \"caption\": ", (long long)r->grid[0], (long long)r->grid[1],
                (long long)r->grid[2], (long long)r->n_prompt, (long long)r->n_video, (long long)r->n_audio);
        json_str(f, r->caption);
        fprintf(f, ", \"label\": ");
        json_str(f, r->label);
        fprintf(f, ", \"first_step\": {\"A\": %.6g, \"B\": %.6g, \"C\": %.6g}, \"max_over_steps\": {\"A\": %.6g, "
                   "\"B\": %.6g, \"C\": %.6g}}", r->first[0], r->first[1], r->first[2], r->best[0], r->best[1], r->best[2]);
    }
    fprintf(f, "]}\n");
    fclose(f);

    snprintf(path, sizeof path, "%s/report.html", out);
    f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "avlens demo: %s: cannot write: %s\n", path, strerror(errno));
        goto done;
    }
    fprintf(f, "<!doctype html><html><head><meta charset=\"utf-8\"><title>avlens demo</title>"
               "<style>body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}"
               "th{background:#f3f3f3}pre{background:#f7f7f7;padding:1em;white-space:pre-wrap}"
               ".tok{display:inline-block;border:1px solid #bbb;margin:1px;padding:0 3px;font-family:monospace}"
               ".sp{background:#ffe9b3}</style></head><body>\n");
    fprintf(f, "<h1>avlens demo</h1><p>A tiny checkpoint in the Hugging Face layout of Qwen2.5-Omni, written "
               "by <code>avlens mkmodel</code> (seed %lld) to <code>", seed);
    html_escape(f, model_dir);
    fprintf(f, "</code>, loaded and verified tensor by tensor.</p>\n<h2>Model</h2><table><tr><th>part</th><th>parameters</th></tr>\n");
    for (int p = 0; p < AVL_PART_COUNT; p++)
        fprintf(f, "<tr><td style=\"text-align:left\">%s</td><td>%lld</td></tr>\n", avl_part_name((avl_part)p),
                (long long)counts[p]);
    fprintf(f, "<tr><th style=\"text-align:left\">total</th><th>%lld</th></tr></table>\n", (long long)total);
    fprintf(f, "<p>LLM: %lld layers, hidden %lld, %lld heads / %lld KV heads, head_dim %lld, mrope_section "
               "[%lld, %lld, %lld]. Audio tower: %lld layers, d_model %lld. Vision tower: %lld blocks, hidden %lld.</p>\n",
            (long long)cfg->text.num_hidden_layers, (long long)cfg->text.hidden_size,
            (long long)cfg->text.num_attention_heads, (long long)cfg->text.num_key_value_heads,
            (long long)cfg->text.head_dim, (long long)cfg->text.mrope_section[0], (long long)cfg->text.mrope_section[1],
            (long long)cfg->text.mrope_section[2], (long long)cfg->audio.encoder_layers, (long long)cfg->audio.d_model,
            (long long)cfg->vision.depth, (long long)cfg->vision.hidden_size);
    fprintf(f, "<h2>The captioning prompt</h2><pre>");
    html_escape(f, chat);
    fprintf(f, "</pre><p>%lld tokens (special tokens shaded):</p><p>", (long long)n_ids);
    for (int64_t i = 0; i < n_ids; i++) {
        const char *t = avl_tokenizer_id_to_token(tok, ids[i]);
        fprintf(f, "<span class=\"tok%s\" title=\"%d\">", avl_tokenizer_is_added(tok, ids[i]) ? " sp" : "", ids[i]);
        html_escape(f, t ? t : "?");
        fprintf(f, "</span>");
    }
    fprintf(f, "</p>\n<h2>Three synthetic clips, end to end</h2><p>Each clip was written by <code>avlens mkclip</code>'s "
               "library call (MPEG-4 video, AAC audio, 2 s at 10 fps), read back by the media front end (sampled at 2 fps, "
               "resized, patchified; log-mel of its own audio track), put in the paper's conversation with the audio "
               "interleaved into the video in 2-second chunks, and run through both encoders and the thinker, as "
               "<code>avlens run --use-audio-in-video</code> does. The weights are random: the answers are noise, the "
               "path is real.</p>\n<table><tr><th>clip</th><th>first / last frame</th><th>grid (t, h, w)</th>"
               "<th>prompt / video / audio tokens</th><th>caption (greedy, 8 tokens)</th><th>label</th>"
               "<th>p(A) p(B) p(C) first step</th><th>max over steps</th></tr>\n");
    for (int c = 0; c < N_CLIPS; c++) {
        const clip_result *r = &res[c];
        fprintf(f, "<tr><td style=\"text-align:left\"><a href=\"clips/%s.mp4\">%s</a><br>%s %s, %s</td><td>", CLIPS[c].name,
                CLIPS[c].name, CLIPS[c].color, CLIPS[c].shape == AVL_CLIP_CIRCLE ? "circle" : "square", CLIPS[c].sound_name);
        clip_svg(f, &r->params);
        fprintf(f, "</td><td>%lld &times; %lld &times; %lld</td><td>%lld / %lld / %lld</td><td style=\"text-align:left\"><code>",
                (long long)r->grid[0], (long long)r->grid[1], (long long)r->grid[2], (long long)r->n_prompt,
                (long long)r->n_video, (long long)r->n_audio);
        html_escape(f, r->caption);
        fprintf(f, "</code></td><td><code>");
        html_escape(f, r->label);
        fprintf(f, "</code></td><td>%.4f %.4f %.4f</td><td>%.4f %.4f %.4f</td></tr>\n", r->first[0], r->first[1],
                r->first[2], r->best[0], r->best[1], r->best[2]);
    }
    fprintf(f, "</table><p>Classification prompt:</p><pre>");
    html_escape(f, CLASSIFY);
    fprintf(f, "</pre><p>Option probabilities: the softmax probability of the option's first token at the first "
               "generated step, and the paper's rule (first token of <i>W</i> and of \" <i>W</i>\", maximum over the "
               "generated steps).</p></body></html>\n");
    fclose(f);
    printf("wrote %s/report.html and %s/summary.json\n", out, out);
    exit_code = 0;
    goto done;
fail:
    exit_code = cli_fail("demo", rc);
done:
    avl_tokenizer_free_mem(ids);
    avl_tokenizer_free_mem(chat);
    avl_tokenizer_free(tok);
    avl_checkpoint_close(ck);
    avl_model_free(m);
    for (int c = 0; c < N_CLIPS; c++) {
        free(res[c].caption);
        free(res[c].label);
    }
    return exit_code;
}
