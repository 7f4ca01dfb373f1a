/* tools/avlens/cmd_demo.c: `avlens demo`: the paper in miniature, and the README's first command.
 *
 * Writes a planted-mechanism checkpoint (avl_mkmodel_params.planted: its right answers are known,
 * docs/demo.md) and a handful of synthetic clips with their object masks, then runs the same
 * data-set commands a researcher runs on VGGSound, in this process and with the same code
 * (avl_cmd_dominance, avl_cmd_trace, avl_cmd_sinks, avl_cmd_caption, avl_cmd_chair; each is
 * printed as the command line that repeats it), so every record lands in DIR/runs/<analysis>/
 * exactly as there. Finally avl_report_write turns the records into DIR/report.html, with a first
 * section that puts each planted answer beside what the analyses found.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static const char *USAGE =
    "usage: avlens demo [--out DIR] [--quick]\n\n"
    "The paper in miniature on a tiny checkpoint with a planted mechanism (docs/demo.md):\n"
    "  1. writes the checkpoint (DIR/model, Hugging Face layout) and synthetic clips with object\n"
    "     masks (DIR/clips/), a classification and a captioning manifest;\n"
    "  2. runs unimodal dominance, causal tracing (All, Object, Sink-2/3/4, Random-2/3/4,\n"
    "     Unimodal-sink, Cross-modal-sink; layer windows), sinks and MDS, captioning with every\n"
    "     decoding method and CHAIR/F1, writing records to DIR/runs/<analysis>/ as the data-set\n"
    "     commands do (each step prints the command that repeats it);\n"
    "  3. writes DIR/report.html: the planted answers beside what was found, the paper's tables and\n"
    "     the figures (SVG).\n"
    "A rerun skips the samples already on file, as every data-set command does.\n\n"
    "  --out DIR    where everything goes (default: demo)\n"
    "  --quick      two clips instead of four (what the tests run)\n"
    "  --threads N  worker threads of every step (default 1: the demo's matrices are so small that\n"
    "               more threads cost more than they save, above all on a busy machine)\n";

/* The decoding methods the demo captions with, in the order of the CHAIR table. */
static const char *const METHODS[] = {
    "vanilla", "asd", "reverse-asd", "pai", "vcd", "avcd", "fmd",
};
#define N_METHODS ((int)(sizeof METHODS / sizeof METHODS[0]))

/* Every token set of the paper's tracing tables, and the two tracing runs (the windows only for
 * the sets the layer-window figure draws). */
static const char TRACE_SETS[] = "all,object,sink2,sink3,sink4,random2,random3,random4,unimodal2,crossmodal2";
static const char WINDOW_SETS[] = "sink2,random2";
#define WINDOW "2"
/* the per-token sweep: this many tokens of each clip, evenly spaced (every one: about 30 s) */
#define SWEEP_LIMIT "48"

/* The planted checkpoint: its sink dimensions and the threshold its width allows (phi <=
 * sqrt(64) = 8 here, so the paper's tau = 25 cannot be reached). */
#define AUDIO_GAIN 2.0
#define TAU "5"

typedef struct {
    const char *id;
    const char *color;
    double volume;   /* of the 440 Hz tone */
    char designed;   /* 'a' audio-dominant, 'v' video-dominant: what the checkpoint was built to give */
} demo_clip;

/* Clips are 4 s (two 2-second chunks of audio-in-video), so the video tokens of the second chunk
 * can attend to the audio of the first: the route the planted circuit uses. */
static const demo_clip CLIPS[] = {
    {"faint_tone_red_square", "red", 0.02, 'a'},
    {"soft_tone_white_square", "white", 0.1, 'v'},
    {"faint_tone_white_square", "white", 0.02, 'a'},
    {"soft_tone_red_square", "red", 0.1, 'v'},
};
#define N_CLIPS_FULL 4
#define N_CLIPS_QUICK 2
#define SECONDS 4.0

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "avlens demo: %s: cannot create: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* Runs a subcommand in this process, after printing it as a command line. */
static int run_cmd(int (*fn)(int, char **), const char *const *args)
{
    char *argv[64];
    int argc = 0;
    fputs("$ avlens", stdout);
    for (; args[argc] && argc < 63; argc++) {
        argv[argc] = (char *)args[argc];
        const char *a = args[argc];
        bool quote = strpbrk(a, " \"'\\$&;|<>()") != NULL;
        printf(quote ? " '%s'" : " %s", a);
    }
    argv[argc] = NULL;
    putchar('\n');
    fflush(stdout);
    /* getopt_long permutes argv: give it a copy */
    char *copy[64];
    memcpy(copy, argv, sizeof(char *) * (size_t)(argc + 1));
    int code = fn(argc, copy);
    fflush(stdout);
    fflush(stderr);
    return code;
}

/* The boxes the shape covers in the two frames of temporal grid index t, as a white-on-black
 * mask the size of the frames (the video is sampled at 2 fps: frames round(linspace(0, n-1, m))
 * of the clip, two per grid index). */
static int write_mask(const char *path, const avl_clip_params *p, int t)
{
    int64_t nf = avl_clip_frames(p), m = (int64_t)llround(SECONDS * 2.0);
    uint8_t *img = calloc((size_t)(p->width * p->height), 3);
    FILE *f = img ? fopen(path, "wb") : NULL;
    if (!f) {
        free(img);
        fprintf(stderr, "avlens demo: %s: cannot write\n", path);
        return 1;
    }
    for (int k = 2 * t; k < 2 * t + 2 && k < m; k++) {
        int64_t frame = (int64_t)llround((double)k * (double)(nf - 1) / (double)(m - 1)), b[4];
        avl_clip_box(p, frame, b);
        for (int64_t y = b[1] < 0 ? 0 : b[1]; y < b[3] && y < p->height; y++)
            for (int64_t x = b[0] < 0 ? 0 : b[0]; x < b[2] && x < p->width; x++) memset(img + 3 * (y * p->width + x), 255, 3);
    }
    fprintf(f, "P6\n%lld %lld\n255\n", (long long)p->width, (long long)p->height);
    fwrite(img, 3, (size_t)(p->width * p->height), f);
    free(img);
    return fclose(f) ? 1 : 0;
}

static avl_clip_params clip_params(const demo_clip *c)
{
    avl_clip_params p = avl_clip_default_params();
    avl_clip_color(c->color, p.color);
    p.seconds = SECONDS;
    p.volume = c->volume;
    return p;
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
        fprintf(f, "<rect x=\"%lld\" y=\"%lld\" width=\"%lld\" height=\"%lld\" fill=\"rgb(%d,%d,%d)\" opacity=\"%s\"/>",
                (long long)b[0], (long long)b[1], (long long)(b[2] - b[0]), (long long)(b[3] - b[1]), p->color[0],
                p->color[1], p->color[2], e ? "1" : "0.35");
    }
    fprintf(f, "</svg>");
}

/* ---- the files the commands read ---- */

static int write_inputs(const char *dir, int n_clips)
{
    char path[4400];
    json_t *cls = json_array(), *cap = json_array(), *ev = json_array(), *truth = json_object();
    int bad = 0;
    for (int c = 0; c < n_clips && !bad; c++) {
        const demo_clip *dc = &CLIPS[c];
        avl_clip_params p = clip_params(dc);
        snprintf(path, sizeof path, "%s/clips/%s.mp4", dir, dc->id);
        avl_status rc = avl_clip_write(path, &p);
        if (rc) {
            bad = cli_fail("demo", rc);
            break;
        }
        json_t *masks = json_array();
        for (int t = 0; t < (int)(SECONDS / 1.0) && !bad; t++) {
            snprintf(path, sizeof path, "%s/clips/%s.mask%d.ppm", dir, dc->id, t);
            bad = write_mask(path, &p, t);
            snprintf(path, sizeof path, "clips/%s.mask%d.ppm", dc->id, t);
            json_array_append_new(masks, json_string(path));
        }
        char video[512], shape[64];
        snprintf(video, sizeof video, "clips/%s.mp4", dc->id);
        snprintf(shape, sizeof shape, "a %s square", dc->color);
        const char *opts[3] = {"a 440 Hz tone", shape, "neither"};
        char *q = avl_classification_prompt(opts, 3);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(dc->id));
        json_object_set_new(o, "video", json_string(video));
        json_object_set_new(o, "text", json_string(q ? q : ""));
        json_object_set_new(o, "masks", masks);
        json_object_set_new(o, "designed_dominance", json_string(dc->designed == 'a' ? "audio" : "video"));
        json_array_append_new(cls, o);
        avl_free_string(q);
        o = json_object();
        json_object_set_new(o, "id", json_string(dc->id));
        json_object_set_new(o, "video", json_string(video));
        json_object_set_new(o, "text", json_string("Describe what you see and hear in a single sentence."));
        json_array_append_new(cap, o);
        /* the tone plays through both 2-second blocks */
        o = json_pack("{s:s, s:[i,i]}", "id", dc->id, "important_blocks", 0, 1);
        json_array_append_new(ev, o);
        json_object_set_new(truth, dc->id, json_pack("[s,s]", "tone", "square"));
    }
    static const char *const names[4] = {"classify.json", "caption.json", "events.json", "truth.json"};
    json_t *docs[4] = {cls, cap, ev, truth};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!bad && json_dump_file(docs[i], path, JSON_INDENT(1)) != 0) {
            fprintf(stderr, "avlens demo: %s: cannot write\n", path);
            bad = 1;
        }
        json_decref(docs[i]);
    }
    /* the CHAIR vocabulary of the demo: the clips' objects and a few that are not there */
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    FILE *f = bad ? NULL : fopen(path, "w");
    if (!bad && !f) {
        fprintf(stderr, "avlens demo: %s: cannot write\n", path);
        bad = 1;
    }
    if (f) {
        fputs("# avlens demo: the objects of the synthetic clips (format: docs/eval.md)\n"
              "square, box, block\ncircle, disc, ball\ntone, beep, sine, whistle\ndog, puppy\ncar\nspeech, voice\n", f);
        if (fclose(f)) bad = 1;
    }
    return bad;
}

/* ---- reading the records back for the "known answers" section ---- */

static json_t *read_records(const char *runs, const char *analysis)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s/shard-0-of-1.jsonl", runs, analysis);
    json_t *all = json_object();
    FILE *f = fopen(path, "r");
    if (!f) return all;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(o, "id"));
        if (id) json_object_set(all, id, o);
        json_decref(o);
    }
    free(line);
    fclose(f);
    return all;
}

/* IE_clean of one (set, N, window) in a trace record; NAN when absent. */
static double ie_of(json_t *rec, const char *set, int n, int l0, int l1)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(rec, "results"), i, e)
    {
        json_t *nn = json_object_get(e, "n");
        if (strcmp(json_string_value(json_object_get(e, "set")) ? json_string_value(json_object_get(e, "set")) : "", set))
            continue;
        if (n > 0 && (!json_is_integer(nn) || json_integer_value(nn) != n)) continue;
        if (json_integer_value(json_object_get(e, "layer_start")) != l0 || json_integer_value(json_object_get(e, "layer_end")) != l1)
            continue;
        json_t *v = json_object_get(e, "ie_clean");
        return json_is_number(v) ? json_number_value(v) : NAN;
    }
    return NAN;
}

static void cell_ie(FILE *f, double v, bool want_high)
{
    if (isnan(v)) {
        fputs("<td>-</td>", f);
        return;
    }
    bool ok = want_high ? v > 0.5 : v < 0.2;
    fprintf(f, "<td class=\"num\" style=\"background:%s\">%.3f</td>", ok ? "#e3f4e1" : "#fbe3e0", v);
}

/* The first section of report.html: what the demo did and the planted answers beside the found
 * ones. Returns a malloc'd HTML fragment. */
static char *intro_html(const char *dir, const char *runs, int n_clips, int nl, double seconds, int *n_match)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    json_t *dom = read_records(runs, "dominance"), *tr = read_records(runs, "trace"), *win = read_records(runs, "trace.windows");
    json_t *sk = read_records(runs, "sinks");
    *n_match = 0;
    fprintf(f, "<p class=\"meta\">Written by <code>avlens demo --out %s</code> (this run: %.0f s; samples already on "
               "file are skipped): a tiny Qwen2.5-Omni checkpoint "
               "(<code>%s/model</code>, Hugging Face layout) with a <b>planted mechanism</b>, %d synthetic clips, and "
               "the paper's analyses run by the same commands a researcher runs on VGGSound; their records are in "
               "<code>%s/runs/&lt;analysis&gt;/</code> (docs/records.md), the tables below were built from them "
               "(<code>avlens report --in %s/runs --out %s</code>).</p>\n",
            dir, seconds, dir, n_clips, dir, dir, dir);
    fputs("<h2>The planted mechanism and its known answers</h2>\n<p>The checkpoint (<code>avlens mkmodel --planted</code>, "
          "docs/demo.md) answers the classification prompt with <b>A</b> (the sound) when the loudness evidence wins "
          "and <b>B</b> (the shape) when the brightness evidence wins. Its sinks are planted: layer 0 writes a massive "
          "activation into dimension 7 of the object's video tokens and into dimension 8 of the tone's audio tokens. "
          "In layer 1 the video sinks of the second chunk read the audio sinks and the audio sinks read the video "
          "sinks; in layer 2 the answer position reads both modalities' evidence from the sinks only. So zeroing the "
          "audio removes the loudness evidence (the answer turns to B), restoring the video sinks brings it back "
          "(high IE for All, Object and Sink sets, near zero for Random sets, which rarely hit the object), and only "
          "layer windows that include layer 2 restore it.</p>\n", f);
    fputs("<h3>Known answers beside what was found</h3>\n<table>\n<tr><th>clip</th><th>frames</th><th>designed</th>"
          "<th>found (av / a / v)</th><th>IE<sub>clean</sub> Sink-2</th><th>Random-2</th><th>Object</th>", f);
    fprintf(f, "<th>Sink-2, layers 0-%d (no layer 2)</th><th>layers 1-%d</th><th>global sinks (N = 2)</th></tr>\n", 1, 2);
    for (int c = 0; c < n_clips; c++) {
        const demo_clip *dc = &CLIPS[c];
        avl_clip_params p = clip_params(dc);
        json_t *d = json_object_get(dom, dc->id), *t = json_object_get(tr, dc->id), *w = json_object_get(win, dc->id);
        json_t *ans = json_object_get(d, "answers");
        const char *found = json_string_value(json_object_get(d, "case"));
        const char *want = dc->designed == 'a' ? "audio" : "video";
        bool match = found && !strcmp(found, want);
        *n_match += match;
        fprintf(f, "<tr><td><a href=\"clips/%s.mp4\">%s</a><br>tone at volume %g, %s square</td><td>", dc->id, dc->id,
                dc->volume, dc->color);
        clip_svg(f, &p);
        fprintf(f, "</td><td>%s-dominant<br>(av %s, a A, v B)</td>", want, dc->designed == 'a' ? "A" : "B");
        fprintf(f, "<td style=\"background:%s\">%s-dominant<br>(%s / %s / %s)</td>", match ? "#e3f4e1" : "#fbe3e0",
                found ? found : "no record", json_string_value(json_object_get(ans, "av")) ? json_string_value(json_object_get(ans, "av")) : "-",
                json_string_value(json_object_get(ans, "a")) ? json_string_value(json_object_get(ans, "a")) : "-",
                json_string_value(json_object_get(ans, "v")) ? json_string_value(json_object_get(ans, "v")) : "-");
        cell_ie(f, ie_of(t, "sink", 2, 0, nl), true);
        cell_ie(f, ie_of(t, "random", 2, 0, nl), dc->designed == 'v'); /* the tone's audio tokens are all sinks */
        cell_ie(f, ie_of(t, "object", 0, 0, nl), true);
        cell_ie(f, ie_of(w, "sink", 2, 0, 2), false);
        cell_ie(f, ie_of(w, "sink", 2, 1, 3), true);
        json_t *g = json_object_get(json_object_get(json_object_get(sk, dc->id), "global"), "2");
        fprintf(f, "<td class=\"num\">%zu</td></tr>\n", json_array_size(g));
    }
    fputs("</table>\n<p class=\"note\">Green: as planted. For an audio-dominant clip the audio is zeroed and video "
          "tokens are restored; for a video-dominant one the video is zeroed and audio tokens are restored, where every "
          "audio token of the tone is a sink, so Random-2 (as many random audio tokens as there are audio sinks) is "
          "the same set as Sink-2 there. The unimodal / cross-modal split of the sinks is not planted: it is reported "
          "as found. The captions of a checkpoint that only knows three letters mention no objects, so CHAIR shows "
          "the machinery, not a finding.</p>\n", f);
    json_decref(dom);
    json_decref(tr);
    json_decref(win);
    json_decref(sk);
    fclose(f);
    return buf;
}

int avl_cmd_demo(int argc, char **argv)
{
    const char *out = "demo";
    bool quick = false;
    long long threads = 1;
    static const struct option opts[] = {{"out", required_argument, 0, 'o'}, {"quick", no_argument, 0, 'q'},
                                         {"threads", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'q': quick = true; break;
        case 't': if (!cli_parse_int("demo", "--threads", optarg, &threads)) return 2; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: return cli_usage_error("demo", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    /* the demo's matrices are tiny: spinning OpenMP workers would cost more than they save on a
     * shared machine (set before the first parallel region; a user's own setting wins) */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    double t0 = now(), t_step = t0;
    int n_clips = quick ? N_CLIPS_QUICK : N_CLIPS_FULL;
    char model[4200], clips[4200], runs[4200], cls[4200], cap[4200], events[4200], truth[4200], vocab[4200], chair[4200];
    snprintf(model, sizeof model, "%s/model", out);
    snprintf(clips, sizeof clips, "%s/clips", out);
    snprintf(runs, sizeof runs, "%s/runs", out);
    snprintf(cls, sizeof cls, "%s/classify.json", out);
    snprintf(cap, sizeof cap, "%s/caption.json", out);
    snprintf(events, sizeof events, "%s/events.json", out);
    snprintf(truth, sizeof truth, "%s/truth.json", out);
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", out);
    snprintf(chair, sizeof chair, "%s/chair", out);
    if (make_dir(out) || make_dir(clips) || make_dir(runs)) return 1;

    printf("[1/9] the planted checkpoint and %d synthetic clips with object masks\n", n_clips);
    printf("$ avlens mkmodel --planted --audio-gain %g --out %s\n", AUDIO_GAIN, model);
    avl_mkmodel_params mp = avl_mkmodel_default_params();
    mp.planted = true;
    mp.planted_audio_gain = AUDIO_GAIN;
    mp.layers = 4;
    mp.dtype = AVL_DTYPE_F32;
    avl_status rc = avl_mkmodel_write(&mp, model);
    if (rc) return cli_fail("demo", rc);
    if (write_inputs(out, n_clips)) return 1;
    double timing[9];
    int step = 0;
#define STEP_DONE() (timing[step++] = now() - t_step, t_step = now())
    STEP_DONE();
    char dims[32];
    snprintf(dims, sizeof dims, "%lld,%lld", (long long)avl_mkmodel_planted_sink_dim(true),
             (long long)avl_mkmodel_planted_sink_dim(false));
    char nthreads[32];
    snprintf(nthreads, sizeof nthreads, "%lld", threads);
#define COMMON "--model", model, "--out", runs, "--media-root", out, "--threads", nthreads

    printf("[2/9] unimodal dominance (Sec. 3.1)\n");
    const char *a_dom[] = {"dominance", "--manifest", cls, COMMON, "--max-new-tokens", "1", NULL};
    if (run_cmd(avl_cmd_dominance, a_dom)) return 1;
    STEP_DONE();

    printf("[3/9] causal tracing of the dominant clips, every token set (Sec. 3.2, 4.2, 5.1)\n");
    const char *a_tr[] = {"trace", "--manifest", cls, COMMON, "--max-new-tokens", "1", "--sets", TRACE_SETS,
                          "--dims", dims, "--tau", TAU, "--events", events, NULL};
    if (run_cmd(avl_cmd_trace, a_tr)) return 1;
    STEP_DONE();

    printf("[4/9] layer windows of %s layers (Fig. 10 in miniature)\n", WINDOW);
    const char *a_win[] = {"trace", "--manifest", cls, COMMON, "--max-new-tokens", "1", "--sets", WINDOW_SETS,
                           "--layer-window", WINDOW, "--analysis", "trace.windows", "--dims", dims, "--tau", TAU, NULL};
    if (run_cmd(avl_cmd_trace, a_win)) return 1;
    STEP_DONE();

    printf("[5/9] the bottom-up per-token sweep, %s tokens per clip (App. B.1.1, Tab. 6-7)\n", SWEEP_LIMIT);
    const char *a_sw[] = {"trace", "--sweep", "--manifest", cls, COMMON, "--max-new-tokens", "1", "--sweep-limit", SWEEP_LIMIT,
                          "--dims", dims, "--tau", TAU, "--events", events, NULL};
    if (run_cmd(avl_cmd_trace, a_sw)) return 1;
    STEP_DONE();

    printf("[6/9] sinks and MDS (App. A.1, Sec. 5.1, Tab. 12)\n");
    const char *a_sk[] = {"sinks", "--manifest", cls, COMMON, "--k-divide", "2,3,4", "--dims", dims, "--tau", TAU, NULL};
    if (run_cmd(avl_cmd_sinks, a_sk)) return 1;
    STEP_DONE();

    printf("[7/9] captions with %d decoding methods (Sec. 6)\n", N_METHODS);
    for (int k = 0; k < N_METHODS; k++) {
        const char *a_cap[] = {"caption", "--manifest", cap, COMMON, "--use-audio-in-video", "--decode", METHODS[k],
                               "--dataset", "demo", "--max-new-tokens", "8", "--dims", dims, "--tau", TAU, NULL};
        if (run_cmd(avl_cmd_caption, a_cap)) return 1;
    }
    STEP_DONE();

    printf("[8/9] CHAIR and F1 of the captions (Tab. 3 layout)\n");
    const char *a_ch[40] = {"chair"};
    int na = 1;
    char cpath[N_METHODS][4400];
    for (int k = 0; k < N_METHODS; k++) {
        snprintf(cpath[k], sizeof cpath[k], "%s/caption.%s/shard-0-of-1.jsonl", runs, METHODS[k]);
        a_ch[na++] = "--captions";
        a_ch[na++] = cpath[k];
    }
    const char *tail[] = {"--truth", truth, "--vocab", vocab, "--out", chair, NULL};
    for (int i = 0; tail[i]; i++) a_ch[na++] = tail[i];
    a_ch[na] = NULL;
    if (run_cmd(avl_cmd_chair, a_ch)) return 1;
    STEP_DONE();

    printf("[9/9] the report\n");
    int n_match = 0;
    char *intro = intro_html(out, runs, n_clips, (int)mp.layers, now() - t0, &n_match);
    avl_report_params rp = avl_report_default_params();
    rp.title = "avlens demo: the paper in miniature";
    rp.intro_html = intro;
    char chair_csv[4300];
    snprintf(chair_csv, sizeof chair_csv, "%s/chair.csv", chair);
    rp.chair_csv = chair_csv;
    printf("$ avlens report --in %s --out %s\n", runs, out);
    rc = avl_report_write(runs, out, &rp);
    free(intro);
    if (rc) return cli_fail("demo", rc);
    STEP_DONE();
    static const char *const STEP_NAMES[] = {"checkpoint + clips", "dominance", "tracing", "layer windows", "sweep", "sinks + MDS",
                                             "captions", "CHAIR", "report"};
    printf("timings:");
    for (int i = 0; i < step; i++) printf(" %s %.1f s%s", STEP_NAMES[i], timing[i], i + 1 < step ? "," : "\n");
    printf("%d of %d clips have the planted dominance; wrote %s/report.html in %.1f s\n", n_match, n_clips, out, now() - t0);
    return 0;
}
