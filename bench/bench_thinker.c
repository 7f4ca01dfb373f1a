/* bench/bench_thinker.c: the whole thinker on a ~2,000-token audio+video input, at the real
 * Qwen2.5-Omni 7B or 3B sizes, with random weights and a reduced depth.
 *
 * What it does:
 *   1. writes (once; reused while the parameters match) a random-weight checkpoint with
 *      avl_mkmodel_write at the sizes of tests/data/config/qwen25-omni-<size>.json (hidden, FFN,
 *      heads, KV heads, vocabulary, audio and vision towers) but N decoder layers, N audio layers
 *      and N vision blocks (--layers N; at the real depth, --layers 28 for 7B, the towers get
 *      their real 32 layers / blocks: the whole thinker, ~17.8 GB); the writer runs in a child
 *      process (mkmodel streams: one tensor in memory at a time) so that it does not count in
 *      this process's peak RSS;
 *   2. measures the memory read bandwidth (a plain read of 512 MiB, best of 5, in a child);
 *   3. builds the input: the checkpoint's tokenizer and chat template render a captioning prompt
 *      around one video with its audio (use_audio_in_video), T temporal grids of 24x24 patches
 *      (12x12 merged tokens) at 1 s per grid and T seconds of audio (25 audio tokens per second);
 *      T = 10 unless --tokens asks for fewer; filler text pads the prompt to exactly --tokens;
 *   4. runs the audio tower, the vision tower (and, once more, one vision block with full
 *      attention, to price the real model's full-attention blocks), assembles the decoder input,
 *      prefills all positions (logits of the last one) and decodes --decode tokens greedily;
 *   5. times the backend's raw GEMM on one decoder layer's own weights at M = the prefill chunk;
 *   6. reports per-layer figures and extrapolations to the real depth, labelled as such.
 *
 * Every matrix product goes through a timing wrapper around the model's backend (the skinny
 * routing kept), so the report can say how much of each stage was GEMM.
 *
 * usage: bench_thinker [--model-size 7b|3b] [--layers N (2)] [--tokens N (2000)] [--decode N (8)]
 *                      [--backend NAME (auto)] [--threads N] [--chunk N (512)] [--dir DIR]
 *                      [--config PATH] [--tokenizer PATH] [--raw-reps N (1 per pass)] [--prefill-only]
 * --prefill-only: no decode, no separately timed full-attention vision block, one raw GEMM pass
 * (before the prefill): what a full-depth run needs to measure the real peak RSS and prefill.
 * The resident set (now and peak) is printed after loading, after each tower and after the prefill.
 * The checkpoint goes to DIR (default: <build>/bench/thinker-<size>-L<N>), about 3.3 GB for
 * 7B with 2 layers (the embeddings and lm_head alone are 2.2 GB). Delete it when done.
 * Built by bench/CMakeLists.txt (every bench_*.c); run build/bench/bench_thinker.
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "avlens/avlens.h"
#include "avlens/mkmodel.h"
#include "model/audio_encoder.h"
#include "model/model_internal.h"

#ifndef AVL_BENCH_SOURCE_DIR
#define AVL_BENCH_SOURCE_DIR "."
#endif
#ifndef AVL_BENCH_BINARY_DIR
#define AVL_BENCH_BINARY_DIR "."
#endif

enum { GH = 24, GW = 24 }; /* patches per frame: 12 x 12 merged tokens */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_thinker: %s: %s\n", what, avl_last_error());
    exit(1);
}

/* ---- a timing wrapper around the model's backend ---- */

enum { PH_AUDIO, PH_VISION, PH_VISION_FULL, PH_PREFILL, PH_DECODE, PH_RAW, PH_COUNT };

typedef struct {
    int phase;
    int64_t n, k;
    double t, flop;
    int64_t calls;
} tally;

static const avl__gemm_backend *g_inner;
static int g_phase;
static tally g_tally[128];
static int g_ntally;

static avl_status wrap_gemm(const avl__gemm_args *a)
{
    double t0 = now();
    avl_status rc = AVL_OK;
    if (a->m <= g_inner->skinny_max_m) avl__gemm_skinny(a);
    else rc = g_inner->gemm(a);
    double dt = now() - t0;
    int i = 0;
    while (i < g_ntally && !(g_tally[i].phase == g_phase && g_tally[i].n == a->w->n && g_tally[i].k == a->w->k)) i++;
    if (i == g_ntally && g_ntally < (int)(sizeof g_tally / sizeof g_tally[0])) {
        g_tally[i] = (tally){g_phase, a->w->n, a->w->k, 0, 0, 0};
        g_ntally++;
    }
    if (i < g_ntally) {
        g_tally[i].t += dt;
        g_tally[i].flop += 2.0 * (double)a->m * (double)a->w->n * (double)a->w->k;
        g_tally[i].calls++;
    }
    return rc;
}

static avl__gemm_backend g_wrap;

/* GEMM seconds and flops of a phase, restricted to products with k == k_only (0: any) or n == n_only. */
static void gemm_sum(int phase, int64_t n_only, int64_t k_only, double *t, double *flop)
{
    *t = *flop = 0;
    for (int i = 0; i < g_ntally; i++) {
        const tally *x = &g_tally[i];
        if (x->phase != phase || (n_only && x->n != n_only) || (k_only && x->k != k_only)) continue;
        *t += x->t;
        *flop += x->flop;
    }
}

/* ---- memory read bandwidth (bench_gemm's loop), in a child so its buffer is not in our RSS ---- */

static double stream_read(int reps)
{
    size_t n = (512u << 20) / 8;
    uint64_t *buf = malloc(n * 8);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double best = 0;
    uint64_t sink = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        uint64_t total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
        for (size_t i = 0; i < n; i += 8) {
            uint64_t s = 0;
            for (int j = 0; j < 8; j++) s += buf[i + j];
            total += s;
        }
        double dt = now() - t0;
        sink += total;
        best = fmax(best, (double)(n * 8) / dt / 1e9);
    }
    free(buf);
    if (sink == 42) printf(" ");
    return best;
}

static double bandwidth_in_child(int threads)
{
    int fd[2];
    if (pipe(fd)) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        if (threads > 0) omp_set_num_threads(threads);
        double bw = stream_read(5);
        ssize_t w = write(fd[1], &bw, sizeof bw);
        _exit(w == (ssize_t)sizeof bw ? 0 : 1);
    }
    close(fd[1]);
    double bw = 0;
    if (pid < 0 || read(fd[0], &bw, sizeof bw) != (ssize_t)sizeof bw) bw = 0;
    close(fd[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
    return bw;
}

/* ---- the checkpoint ---- */

static int64_t real_full_blocks_below(const avl_vision_config *v, int64_t n, int64_t *idx)
{
    int64_t c = 0;
    for (int i = 0; i < v->n_fullatt; i++)
        if (v->fullatt_block_indexes[i] < n) idx[c++] = v->fullatt_block_indexes[i];
    return c;
}

/* At the real decoder depth (--layers 28 for 7B) the towers get their real depths too (32 audio
 * layers, 32 vision blocks with the real full-attention blocks): the whole thinker. */
static avl_mkmodel_params params_for(const avl_config *c, int64_t layers)
{
    const bool full = layers >= c->text.num_hidden_layers;
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.seed = 1;
    p.hidden = c->text.hidden_size;
    p.layers = layers;
    p.heads = c->text.num_attention_heads;
    p.kv_heads = c->text.num_key_value_heads;
    p.ffn = c->text.intermediate_size;
    p.vocab = c->text.vocab_size;
    p.tie_word_embeddings = c->text.tie_word_embeddings;
    p.audio_layers = full ? c->audio.encoder_layers : layers;
    p.audio_d = c->audio.d_model;
    p.audio_heads = c->audio.encoder_attention_heads;
    p.audio_ffn = c->audio.encoder_ffn_dim;
    p.mel_bins = c->audio.num_mel_bins;
    p.n_window = c->audio.n_window;
    p.vision_depth = full ? c->vision.depth : layers;
    p.vision_hidden = c->vision.hidden_size;
    p.vision_heads = c->vision.num_heads;
    p.vision_ffn = c->vision.intermediate_size;
    p.patch = c->vision.patch_size;
    p.temporal_patch = c->vision.temporal_patch_size;
    p.merge = c->vision.spatial_merge_size;
    p.window = c->vision.window_size;
    p.n_fullatt = (int)real_full_blocks_below(&c->vision, p.vision_depth, p.fullatt);
    p.dtype = AVL_DTYPE_BF16;
    return p;
}

static void stamp_text(const avl_mkmodel_params *p, char *buf, size_t len)
{
    snprintf(buf, len,
             "bench_thinker v1 seed %llu H %lld L %lld nh %lld kv %lld F %lld V %lld tie %d audio %lld %lld %lld %lld "
             "%lld %lld vision %lld %lld %lld %lld %lld %lld %lld %lld full %d\n",
             (unsigned long long)p->seed, (long long)p->hidden, (long long)p->layers, (long long)p->heads,
             (long long)p->kv_heads, (long long)p->ffn, (long long)p->vocab, (int)p->tie_word_embeddings,
             (long long)p->audio_layers, (long long)p->audio_d, (long long)p->audio_heads, (long long)p->audio_ffn,
             (long long)p->mel_bins, (long long)p->n_window, (long long)p->vision_depth, (long long)p->vision_hidden,
             (long long)p->vision_heads, (long long)p->vision_ffn, (long long)p->patch, (long long)p->temporal_patch,
             (long long)p->merge, (long long)p->window, p->n_fullatt);
}

/* Prints the size of the checkpoint's files. */
static void system_du(const char *dir)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "du -b '%s'/*.safetensors* | sed 's/^/checkpoint file: /'", dir);
    if (system(cmd) != 0) printf("checkpoint: du failed\n");
}

/* Resident set now (from /proc/self/statm) and peak so far (ru_maxrss), in GiB. */
static void print_rss(const char *when)
{
    double cur = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        long size, res;
        if (fscanf(f, "%ld %ld", &size, &res) == 2) cur = (double)res * (double)sysconf(_SC_PAGESIZE);
        fclose(f);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("rss: %s: now %.2f GiB, peak so far %.2f GiB\n", when, cur / 1073741824.0,
           (double)ru.ru_maxrss * 1024.0 / 1073741824.0);
}

static void ensure_checkpoint(const avl_mkmodel_params *p, const char *dir, double bytes)
{
    char want[1024], have[1024] = "", path[4200];
    stamp_text(p, want, sizeof want);
    snprintf(path, sizeof path, "%s/bench_stamp.txt", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(have, 1, sizeof have - 1, f);
        have[n] = 0;
        fclose(f);
        if (!strcmp(have, want)) {
            printf("checkpoint: reusing %s\n", dir);
            return;
        }
    }
    mkdir(dir, 0777);
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0) {
        double avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
        if (avail < bytes + 2e9) {
            fprintf(stderr, "bench_thinker: %s: %.1f GB free, the checkpoint needs %.1f GB (+2 GB margin)\n", dir,
                    avail / 1e9, bytes / 1e9);
            exit(1);
        }
    }
    printf("checkpoint: writing %.2f GB of random bf16 weights to %s (child process) ...\n", bytes / 1e9, dir);
    fflush(stdout);
    double t0 = now();
    pid_t pid = fork();
    /* (mkmodel streams: the child holds one tensor at a time, ~3.3 GB for the 7B embedding) */
    if (pid == 0) {
        if (avl_mkmodel_write(p, dir)) {
            fprintf(stderr, "bench_thinker: mkmodel: %s\n", avl_last_error());
            _exit(1);
        }
        FILE *s = fopen(path, "w");
        if (!s || fputs(want, s) < 0 || fclose(s)) _exit(1);
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_thinker: writing the checkpoint failed\n");
        exit(1);
    }
    printf("checkpoint: written in %.1f s\n", now() - t0);
    system_du(dir);
}

/* ---- the input sequence ---- */

static const char *SYSTEM =
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and "
    "visual inputs, as well as generating text and speech.";
static const char *QUESTION = "Describe what you see and hear in a single sentence.";
static const char *FILLER =
    "The clip shows a kitchen in the morning; a woman pours coffee while a radio plays in the background and a dog "
    "waits by the door. ";

typedef struct {
    double t_tok_load, t_render, t_encode, t_expand, t_positions, t_embed;
    int64_t n_chat, n_pad;
} seq_timing;

static int64_t find_id(const int32_t *ids, int64_t n, int32_t id)
{
    for (int64_t i = 0; i < n; i++)
        if (ids[i] == id) return i;
    return -1;
}

/* Expanded ids for `grids` temporal grids, padded with filler text up to target (when longer). */
static void build_ids(const avl_tokenizer *tok, const avl_seq_params *sp, int64_t grids, int64_t target,
                      avl_media_shape *ms, int32_t **out, int64_t *n_out, seq_timing *st)
{
    char json[2048];
    snprintf(json, sizeof json,
             "[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"%s\"}]},"
             "{\"role\":\"user\",\"content\":[{\"type\":\"video\",\"video\":\"clip.mp4\"},"
             "{\"type\":\"text\",\"text\":\"%s\"}]}]",
             SYSTEM, QUESTION);
    char *chat;
    size_t chat_len;
    avl_chat_params cp = avl_chat_default_params();
    double t0 = now();
    if (avl_chat_render(json, strlen(json), &cp, &chat, &chat_len)) die("chat template");
    st->t_render = now() - t0;
    int32_t *ids;
    int64_t n;
    t0 = now();
    if (avl_tokenizer_encode(tok, chat, chat_len, &ids, &n)) die("tokenizer");
    st->t_encode = now() - t0;
    st->n_chat = n;
    memset(ms, 0, sizeof *ms);
    ms->n_videos = 1;
    ms->video_grid_thw[0][0] = grids;
    ms->video_grid_thw[0][1] = GH;
    ms->video_grid_thw[0][2] = GW;
    ms->video_second_per_grid[0] = 1.0; /* 2 frames per grid at the processor's 2 fps */
    ms->n_audios = 1;
    ms->audio_feature_len[0] = grids * 100; /* 100 mel frames per second */
    int32_t *ex;
    int64_t nx;
    t0 = now();
    if (avl_seq_expand(sp, ids, n, ms, true, &ex, &nx)) die("sequence expansion");
    st->t_expand = now() - t0;
    avl_tokenizer_free_mem(ids);
    avl_tokenizer_free_mem(chat);
    st->n_pad = 0;
    if (nx < target) {
        int64_t pad = target - nx, at = find_id(ex, nx, sp->vision_end_token_id) + 1;
        size_t fl = strlen(FILLER), reps = (size_t)pad / 8 + 2, len = fl * reps;
        char *text = malloc(len + 1);
        for (size_t i = 0; i < reps; i++) memcpy(text + i * fl, FILLER, fl);
        text[len] = 0;
        int32_t *fid;
        int64_t nf;
        if (avl_tokenizer_encode(tok, text, len, &fid, &nf)) die("tokenizer");
        if (nf < pad) { /* each repetition is far more than the 8 tokens budgeted for it */
            fprintf(stderr, "bench_thinker: filler text too short\n");
            exit(1);
        }
        int32_t *all = malloc((size_t)target * sizeof *all);
        memcpy(all, ex, (size_t)at * sizeof *all);
        memcpy(all + at, fid, (size_t)pad * sizeof *all);
        memcpy(all + at + pad, ex + at, (size_t)(nx - at) * sizeof *all);
        avl_free(ex);
        avl_tokenizer_free_mem(fid);
        free(text);
        st->n_pad = pad;
        *out = all;
        *n_out = target;
        return;
    }
    int32_t *copy = malloc((size_t)nx * sizeof *copy);
    memcpy(copy, ex, (size_t)nx * sizeof *copy);
    avl_free(ex);
    *out = copy;
    *n_out = nx;
}

/* ---- per-layer timing through the decoder's hooks ---- */

typedef struct {
    double last;
    int layer;
    double *acc; /* (n_layers) */
} layer_clock;

static bool lc_wants(void *user, int layer, avl_site s)
{
    (void)user;
    (void)layer;
    return s == AVL_SITE_RESID || s == AVL_SITE_FINAL;
}

static void lc_at(void *user, int layer, avl_site s, int64_t p0, int64_t n, int64_t dim, float *x)
{
    (void)p0;
    (void)n;
    (void)dim;
    (void)x;
    layer_clock *c = user;
    double t = now();
    if (c->layer >= 0) c->acc[c->layer] += t - c->last;
    c->layer = s == AVL_SITE_FINAL ? -1 : layer;
    c->last = t;
}

/* ---- audio stage clock (as bench_audio_encoder) ---- */

typedef struct {
    double last, acc[256];
} stage_clock;

static void stage_tick(void *user, int stage, int64_t row0, int64_t rows, int64_t dim, const float *x)
{
    (void)row0;
    (void)rows;
    (void)dim;
    (void)x;
    stage_clock *c = user;
    double t = now();
    if (stage >= 0 && stage < 256) c->acc[stage] += t - c->last;
    c->last = t;
}

static uint64_t g_rng = 88172645463325252ull;
static float frand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) * 0x1p-53 * 2 - 1);
}

/* One timing pass over layer 0's seven weights at M = min(chunk, n) through the model's own
 * backend (not the wrapper), keeping the best time per product in best[7]. */
static void raw_pass(const avl_model *m, int64_t n, int reps, double best[7])
{
    const avl__dec_layer *L0 = &m->layers[0];
    const avl__weight *ws[7] = {&L0->q, &L0->k, &L0->v, &L0->o, &L0->gate, &L0->up, &L0->down};
    const int64_t M = m->prefill_chunk < n ? m->prefill_chunk : n, F = m->F > m->H ? m->F : m->H;
    float *X = malloc((size_t)(M * F) * sizeof(float)), *Y = malloc((size_t)(M * F) * sizeof(float));
    if (!X || !Y) {
        fprintf(stderr, "bench_thinker: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < M * F; i++) X[i] = frand();
    for (int w = 0; w < 7; w++)
        for (int rep = 0; rep < reps; rep++) {
            double t0 = now();
            if (avl__gemm(g_inner, M, X, ws[w]->k, ws[w], NULL, Y, ws[w]->n, false)) die("raw gemm");
            best[w] = fmin(best[w], now() - t0);
        }
    free(X);
    free(Y);
}

static double raw_flops(const avl_model *m, int64_t n)
{
    const avl__dec_layer *L0 = &m->layers[0];
    const avl__weight *ws[7] = {&L0->q, &L0->k, &L0->v, &L0->o, &L0->gate, &L0->up, &L0->down};
    const int64_t M = m->prefill_chunk < n ? m->prefill_chunk : n;
    double f = 0;
    for (int w = 0; w < 7; w++) f += 2.0 * (double)M * (double)ws[w]->n * (double)ws[w]->k;
    return f;
}

static double gib(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

int main(int argc, char **argv)
{
    const char *size = "7b", *backend = "auto", *dir = NULL, *config = NULL, *tok_path = NULL;
    int64_t layers = 2, target = 2000, decode = 8, chunk = 512;
    int threads = 0, raw_reps = 1;
    bool prefill_only = false;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--prefill-only")) { /* a flag: no value */
            prefill_only = true;
            i--;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: bench_thinker [--model-size 7b|3b] [--layers N] [--tokens N] [--decode N] [--backend NAME]\n"
                   "                     [--threads N] [--chunk N] [--dir DIR] [--config PATH] [--tokenizer PATH]\n"
                   "                     [--raw-reps N] [--prefill-only]\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "bench_thinker: %s needs a value (or is unknown)\n", a);
            return 2;
        }
        if (!strcmp(a, "--model-size")) size = v;
        else if (!strcmp(a, "--layers")) layers = atoll(v);
        else if (!strcmp(a, "--tokens")) target = atoll(v);
        else if (!strcmp(a, "--decode")) decode = atoll(v);
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--chunk")) chunk = atoll(v);
        else if (!strcmp(a, "--dir")) dir = v;
        else if (!strcmp(a, "--config")) config = v;
        else if (!strcmp(a, "--tokenizer")) tok_path = v;
        else if (!strcmp(a, "--raw-reps")) raw_reps = atoi(v);
        else {
            fprintf(stderr, "bench_thinker: unknown option %s\n", a);
            return 2;
        }
    }
    if (strcmp(size, "7b") && strcmp(size, "3b")) {
        fprintf(stderr, "bench_thinker: --model-size must be 7b or 3b\n");
        return 2;
    }
    if (layers < 1 || target < 64 || decode < 0 || chunk < 1 || raw_reps < 1) {
        fprintf(stderr, "bench_thinker: --layers >= 1, --tokens >= 64, --decode >= 0, --chunk >= 1, --raw-reps >= 1\n");
        return 2;
    }
    if (prefill_only) decode = 0;
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines show up when redirected to a file */
    setenv("OMP_WAIT_POLICY", "passive", 0); /* busy-waiting threads slow a shared machine */

    char cfg_path[4096], dir_buf[4096];
    if (!config) {
        snprintf(cfg_path, sizeof cfg_path, "%s/tests/data/config/qwen25-omni-%s.json", AVL_BENCH_SOURCE_DIR, size);
        config = cfg_path;
    }
    if (!dir) {
        snprintf(dir_buf, sizeof dir_buf, "%s/thinker-%s-L%lld", AVL_BENCH_BINARY_DIR, size, (long long)layers);
        dir = dir_buf;
    }
    avl_config real;
    if (avl_config_load(config, &real)) die(config);
    const int64_t L_full = real.text.num_hidden_layers, A_full = real.audio.encoder_layers, V_full = real.vision.depth;
    if (layers > L_full) layers = L_full;
    const bool full_depth = layers == L_full;

    avl_mkmodel_params p = params_for(&real, layers);
    const int64_t a_n = p.audio_layers, v_n = p.vision_depth; /* the towers' depths in the checkpoint */
    avl_config red;
    if (avl_mkmodel_config(&p, &red)) die("mkmodel config");
    int64_t cnt_real[AVL_PART_COUNT], cnt_red[AVL_PART_COUNT];
    double params_real = (double)avl_config_param_counts(&real, cnt_real);
    double params_red = (double)avl_config_param_counts(&red, cnt_red);

    char load[64] = "?";
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (!fgets(load, sizeof load, la)) load[0] = 0;
        fclose(la);
        load[strcspn(load, "\n")] = 0;
    }
    printf("bench_thinker: Qwen2.5-Omni-%s sizes from %s, %lld of %lld decoder layers, %lld of %lld audio layers, "
           "%lld of %lld vision blocks\n",
           size, config, (long long)layers, (long long)L_full, (long long)a_n, (long long)A_full, (long long)v_n,
           (long long)V_full);
    if (prefill_only) printf("prefill only: no separate full-attention block, no decode, one raw GEMM pass\n");
    printf("load average at start: %s\n", load);
    ensure_checkpoint(&p, dir, params_red * 2.0);

    double bw = bandwidth_in_child(threads);
    printf("memory read bandwidth (512 MiB, best of 5, child process): %.2f GB/s\n", bw);

    /* ---- load ---- */
    avl_model_params mp = avl_model_default_params();
    mp.backend = backend;
    mp.threads = threads;
    mp.prefill_chunk = chunk;
    avl_model *m;
    double t0 = now();
    if (avl_model_load(dir, &mp, &m)) die(dir);
    double t_load = now() - t0;
    g_inner = m->be;
    g_wrap = *m->be;
    g_wrap.gemm = wrap_gemm;
    g_wrap.skinny_max_m = 0; /* the wrapper does the skinny routing itself, so it times it too */
    m->be = &g_wrap;
    const int64_t H = m->H, F = m->F, V = m->V, qd = m->nh * m->hd, kd = m->nkv * m->hd;
    printf("model: loaded in %.2f s; backend %s, prefill chunk %lld\n", t_load, avl_model_backend(m),
           (long long)m->prefill_chunk);
    /* First touch of the mapped weights (page faults; the file is in the page cache after
     * writing): done here and reported, so that the stages below time warm weights. The
     * embedding is left alone: a forward touches only the rows of its ids. */
    t0 = now();
    double touched = 0;
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < avl_st_count(m->st); i++) {
        avl_tensor_view tv;
        if (avl_st_at(m->st, i, &tv) || strstr(tv.name, "embed_tokens")) continue;
        const uint8_t *b = tv.data;
        for (size_t off = 0; off < tv.nbytes; off += 4096) sink += b[off];
        touched += (double)tv.nbytes;
    }
    (void)sink;
    printf("weights: first touch of %.2f GB of mapped weights (all but the embedding) %.2f s\n", touched * 1e-9,
           now() - t0);
    print_rss("after loading and touching the weights");

    /* ---- tokenizer and sequence ---- */
    seq_timing st = {0};
    avl_tokenizer *tok;
    t0 = now();
    if (avl_tokenizer_load(dir, &tok)) die("tokenizer");
    st.t_tok_load = now() - t0;
    avl_seq_params sp = avl_model_seq_params(m);
    int64_t grids = 10;
    avl_media_shape ms;
    int32_t *ids = NULL;
    int64_t n = 0;
    for (;;) {
        build_ids(tok, &sp, grids, target, &ms, &ids, &n, &st);
        if (n <= target || grids == 1) break;
        free(ids);
        grids--;
    }
    avl_token_map *map;
    t0 = now();
    if (avl_seq_positions(&sp, ids, n, &ms, true, &map)) die("positions");
    st.t_positions = now() - t0;
    const int64_t frames = ms.audio_feature_len[0], n_patch = grids * GH * GW;
    printf("input: %lld tokens = %lld video (grid %lldx%dx%d) + %lld audio (%lld mel frames) + %lld text/special "
           "(%lld of them filler)\n",
           (long long)n, (long long)map->n_video, (long long)grids, GH, GW, (long long)map->n_audio, (long long)frames,
           (long long)(n - map->n_video - map->n_audio), (long long)st.n_pad);
    double t_real_tok_load = -1, t_real_tok_enc = -1;
    int64_t n_real_tok = 0;
    if (tok_path) {
        avl_tokenizer *rt;
        t0 = now();
        if (avl_tokenizer_load(tok_path, &rt)) die(tok_path);
        t_real_tok_load = now() - t0;
        char json[2048], *chat;
        size_t cl;
        snprintf(json, sizeof json,
                 "[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"%s\"}]},{\"role\":\"user\","
                 "\"content\":[{\"type\":\"video\",\"video\":\"clip.mp4\"},{\"type\":\"text\",\"text\":\"%s\"}]}]",
                 SYSTEM, QUESTION);
        if (avl_chat_render(json, strlen(json), NULL, &chat, &cl)) die("chat template");
        int32_t *rid;
        t0 = now();
        if (avl_tokenizer_encode(rt, chat, cl, &rid, &n_real_tok)) die("tokenizer");
        t_real_tok_enc = now() - t0;
        avl_tokenizer_free_mem(rid);
        avl_tokenizer_free_mem(chat);
        avl_tokenizer_free(rt);
    }

    /* ---- media (random) ---- */
    const int64_t kp = m->cfg.vision.in_channels * m->cfg.vision.temporal_patch_size * m->cfg.vision.patch_size *
                       m->cfg.vision.patch_size;
    const int64_t mels = m->cfg.audio.num_mel_bins;
    float *px = malloc((size_t)(n_patch * kp) * sizeof(float)), *feat = malloc((size_t)(mels * frames) * sizeof(float));
    for (int64_t i = 0; i < n_patch * kp; i++) px[i] = frand();
    for (int64_t i = 0; i < mels * frames; i++) feat[i] = frand();
    const int64_t n_aud = map->n_audio, n_vid = map->n_video;
    float *aud_rows = malloc((size_t)(n_aud * H) * sizeof(float)), *vid_rows = malloc((size_t)(n_vid * H) * sizeof(float));

    /* ---- audio tower ---- */
    printf("running: audio tower ...\n");
    g_phase = PH_AUDIO;
    stage_clock sc;
    memset(&sc, 0, sizeof sc);
    sc.last = t0 = now();
    if (avl__audio_encoder_forward_observed(m, m->audio, feat, frames, frames, aud_rows, stage_tick, &sc))
        die("audio encoder");
    double t_audio = now() - t0, a_layers = 0;
    for (int64_t l = 1; l <= a_n; l++) a_layers += sc.acc[l];
    double a_layer = a_layers / (double)a_n, a_fixed = t_audio - a_layers;
    printf("audio tower: %.1f s\n", t_audio);
    print_rss("after the audio tower");
    double t_audio_full = a_fixed + (double)A_full * a_layer;

    /* ---- vision tower: the reduced depth, then one full-attention block ---- */
    printf("running: vision tower ...\n");
    g_phase = PH_VISION;
    int64_t g3[3] = {grids, GH, GW};
    t0 = now();
    if (avl__vision_encoder_forward(m, m->vision, px, g3, vid_rows)) die("vision encoder");
    double t_vis = now() - t0;
    printf("vision tower: %.1f s\n", t_vis);
    print_rss("after the vision tower");
    const int64_t vD = m->cfg.vision.hidden_size, unitD = vD * m->cfg.vision.spatial_merge_size *
                                                           m->cfg.vision.spatial_merge_size;
    double gt_stem, gf_stem, gt_merge, gf_merge;
    gemm_sum(PH_VISION, 0, kp, &gt_stem, &gf_stem);
    gemm_sum(PH_VISION, 0, unitD, &gt_merge, &gf_merge);
    int64_t full_idx[AVL_CONFIG_MAX_FULLATT];
    const int64_t nfull_red = real_full_blocks_below(&real.vision, v_n, full_idx);
    const int64_t nfull_real = real.vision.n_fullatt;
    double t_vfull_block = -1;
    if (nfull_real > 0 && !prefill_only) {
        avl_vision_config saved = m->cfg.vision;
        m->cfg.vision.depth = 1;
        m->cfg.vision.n_fullatt = 1;
        m->cfg.vision.fullatt_block_indexes[0] = 0;
        printf("running: one full-attention vision block ...\n");
        avl__vision_enc *ef;
        avl_status rc = avl__vision_encoder_load(m, &ef);
        m->cfg.vision = saved;
        if (rc) die("vision encoder (one full block)");
        g_phase = PH_VISION_FULL;
        float *tmp = malloc((size_t)(n_vid * H) * sizeof(float));
        t0 = now();
        if (avl__vision_encoder_forward(m, ef, px, g3, tmp)) die("vision encoder (one full block)");
        double t1 = now() - t0, a, b, c2, d;
        gemm_sum(PH_VISION_FULL, 0, kp, &a, &b);
        gemm_sum(PH_VISION_FULL, 0, unitD, &c2, &d);
        t_vfull_block = t1 - a - c2;
        free(tmp);
        avl__vision_encoder_free(ef);
    }
    double v_fixed = gt_stem + gt_merge, v_blocks = t_vis - v_fixed;
    double v_win_block = (nfull_red > 0 && t_vfull_block > 0 && v_n > nfull_red)
                             ? (v_blocks - (double)nfull_red * t_vfull_block) / (double)(v_n - nfull_red)
                             : v_blocks / (double)v_n;
    double t_vis_full = v_fixed + (double)(V_full - nfull_real) * v_win_block +
                        (double)nfull_real * (t_vfull_block > 0 ? t_vfull_block : v_win_block);

    /* ---- decoder input ---- */
    t0 = now();
    float *embeds = malloc((size_t)(n * H) * sizeof(float));
    if (avl_run_embed_tokens(m, ids, n, embeds)) die("embed");
    for (int64_t i = 0; i < n; i++) {
        const avl_token_info *ti = &map->tok[i];
        if (ti->kind == AVL_TOK_AUDIO) memcpy(embeds + i * H, aud_rows + (int64_t)ti->index * H, (size_t)H * 4);
        else if (ti->kind == AVL_TOK_VIDEO) memcpy(embeds + i * H, vid_rows + (int64_t)ti->index * H, (size_t)H * 4);
    }
    st.t_embed = now() - t0;

    /* ---- raw GEMM of the same backend on layer 0's weights at M = the prefill chunk: one pass
     * before the prefill and one after the decode, best per product (the load of a shared
     * machine drifts) ---- */
    printf("running: raw GEMM, pass 1 ...\n");
    double raw_best[7] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
    raw_pass(m, n, raw_reps, raw_best);

    /* ---- prefill ---- */
    printf("running: prefill of %lld positions ...\n", (long long)n);
    avl_run *r;
    if (avl_run_new(m, n + decode, &r)) die("run");
    double *lacc = calloc((size_t)m->n_layers, sizeof *lacc);
    layer_clock lc = {0, -1, lacc};
    avl_hooks hk = {.wants = lc_wants, .at_site = lc_at, .user = &lc};
    float *logits = malloc((size_t)V * sizeof(float));
    g_phase = PH_PREFILL;
    t0 = now();
    if (avl_run_forward(r, embeds, map->pos, n, n, &hk, logits, 1)) die("prefill");
    double t_pf = now() - t0, pf_layers = 0;
    printf("prefill: %.1f s = %.2f tokens/s\n", t_pf, (double)n / t_pf);
    print_rss("after the prefill");
    for (int64_t l = 0; l < m->n_layers; l++) pf_layers += lacc[l];
    double pf_layer = pf_layers / (double)m->n_layers, pf_rest = t_pf - pf_layers;
    double pf_gemm_t, pf_gemm_f, lm_t, lm_f;
    gemm_sum(PH_PREFILL, 0, 0, &pf_gemm_t, &pf_gemm_f);
    gemm_sum(PH_PREFILL, V, 0, &lm_t, &lm_f);
    const double nn = (double)n;
    const double fl_gemm_layer = 2.0 * nn * ((double)H * qd + 2.0 * H * kd + (double)qd * H + 3.0 * H * F);
    const double fl_attn_layer = 2.0 * 2.0 * (double)m->hd * (double)m->nh * nn * (nn + 1) / 2.0;
    const double fl_lm = 2.0 * (double)H * (double)V;
    const double fl_pf = (double)m->n_layers * (fl_gemm_layer + fl_attn_layer) + fl_lm;
    const double fl_pf_full = (double)L_full * (fl_gemm_layer + fl_attn_layer) + fl_lm;
    double t_pf_full = pf_rest + (double)L_full * pf_layer;

    /* ---- decode ---- */
    printf("running: %lld decode steps ...\n", (long long)decode);
    double *dacc = calloc((size_t)m->n_layers, sizeof *dacc);
    layer_clock dc = {0, -1, dacc};
    avl_hooks dh = {.wants = lc_wants, .at_site = lc_at, .user = &dc};
    g_phase = PH_DECODE;
    double t_dec = 0, t_dec_best = 1e30;
    float *e1 = malloc((size_t)H * sizeof(float));
    for (int64_t s = 0; s < decode; s++) {
        int32_t best = 0;
        for (int64_t j = 1; j < V; j++)
            if (logits[j] > logits[best]) best = (int32_t)j;
        if (avl_run_embed_tokens(m, &best, 1, e1)) die("embed");
        int64_t pos = n + s + map->rope_delta, p3[3] = {pos, pos, pos};
        t0 = now();
        if (avl_run_forward(r, e1, p3, 1, 1, &dh, logits, 1)) die("decode");
        double dt = now() - t0;
        t_dec += dt;
        t_dec_best = fmin(t_dec_best, dt);
    }
    double dec_tok = decode ? t_dec / (double)decode : 0, dec_layers = 0;
    for (int64_t l = 0; l < m->n_layers; l++) dec_layers += dacc[l];
    double dec_layer = decode ? dec_layers / (double)decode / (double)m->n_layers : 0;
    double dec_rest = dec_tok - (double)m->n_layers * dec_layer;
    double dec_tok_full = dec_rest + (double)L_full * dec_layer;
    double dec_lm_t, dec_lm_f;
    gemm_sum(PH_DECODE, V, 0, &dec_lm_t, &dec_lm_f);
    /* bytes a decode step reads: each layer's bf16 weights (biases and norms included), lm_head,
     * the KV cache (fp32, keys and values of ~n positions), one embedding row */
    const double layer_w = 2.0 * ((double)H * qd + 2.0 * H * kd + (double)qd * H + 3.0 * H * F + qd + 2.0 * kd + 2.0 * H);
    const double kv_read = 2.0 * (nn + (double)decode / 2.0) * (double)kd * 4.0;
    const double lm_bytes = 2.0 * (double)H * (double)V;
    const double bytes_tok = (double)m->n_layers * (layer_w + kv_read) + lm_bytes + 2.0 * H;
    const double bytes_tok_full = (double)L_full * (layer_w + kv_read) + lm_bytes + 2.0 * H;

    /* ---- raw GEMM, second pass (the first ran before the prefill) ---- */
    if (!prefill_only) {
        printf("running: raw GEMM, pass 2 ...\n");
        raw_pass(m, n, raw_reps, raw_best);
    }
    double raw_t = 0, raw_f = 0;
    for (int w = 0; w < 7; w++) raw_t += raw_best[w];
    raw_f = raw_flops(m, n);
    const double raw_rate = raw_f / raw_t;
    const int64_t M = m->prefill_chunk < n ? m->prefill_chunk : n;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru); /* before the second bandwidth sample, whose buffer would count */
    /* the bandwidth again, after the run and in this process (a child forked after OpenMP has
     * started must not use OpenMP): on a shared machine one sample can be unlucky; the bound
     * uses the better of the two */
    double bw2 = stream_read(5);
    printf("memory read bandwidth again: %.2f GB/s\n", bw2);
    if (bw2 > bw) bw = bw2;
    const double rss = (double)ru.ru_maxrss * 1024.0;
    /* the full model's extra: the weights of the missing layers and blocks (all touched in a
     * forward) and their KV cache; the mapped embedding is touched only row by row in both */
    const double extra_w = 2.0 * (params_real - params_red);
    const double extra_kv = (double)(L_full - m->n_layers) * 2.0 * (double)(n + decode) * (double)kd * 4.0;
    const double rss_full = rss + extra_w + extra_kv;

    /* ---- report ---- */
    printf("\n== pipeline pieces (checkpoint's own tokenizer: %lld ids) ==\n", (long long)avl_tokenizer_vocab_size(tok));
    printf("  tokenizer load          %9.2f ms\n", st.t_tok_load * 1e3);
    printf("  chat template render    %9.3f ms\n", st.t_render * 1e3);
    printf("  encode chat (%lld ids)  %9.3f ms\n", (long long)st.n_chat, st.t_encode * 1e3);
    if (tok_path)
        printf("  %s: load %.1f ms, encode chat (%lld ids) %.3f ms\n", tok_path, t_real_tok_load * 1e3,
               (long long)n_real_tok, t_real_tok_enc * 1e3);
    printf("  placeholder expansion   %9.3f ms\n", st.t_expand * 1e3);
    printf("  3-D positions + map     %9.3f ms\n", st.t_positions * 1e3);
    printf("  embeddings + scatter    %9.2f ms\n", st.t_embed * 1e3);

    double ag_t, ag_f;
    gemm_sum(PH_AUDIO, 0, 0, &ag_t, &ag_f);
    printf("\n== audio tower: %lld mel frames -> %lld tokens ==\n", (long long)frames, (long long)n_aud);
    printf("  measured (%lld layers)   %9.1f ms  (conv stem %.1f, per layer %.1f, pooling+proj %.1f; GEMM %.0f%% of "
           "the time at %.1f GFLOP/s)\n",
           (long long)a_n, t_audio * 1e3, sc.acc[0] * 1e3, a_layer * 1e3, (a_fixed - sc.acc[0]) * 1e3,
           100 * ag_t / t_audio, ag_f / ag_t * 1e-9);
    printf("  EXTRAPOLATED %lld layers %9.1f ms  (stem + proj + %lld x per layer)\n", (long long)A_full,
           t_audio_full * 1e3, (long long)A_full);

    double vg_t, vg_f;
    gemm_sum(PH_VISION, 0, 0, &vg_t, &vg_f);
    printf("\n== vision tower: grid %lldx%dx%d = %lld patches -> %lld tokens ==\n", (long long)grids, GH, GW,
           (long long)n_patch, (long long)n_vid);
    printf("  measured (%lld blocks, %lld full-attention) %9.1f ms  (patch embed %.1f, merger GEMMs %.1f, per block "
           "%.1f; GEMM %.0f%% at %.1f GFLOP/s)\n",
           (long long)v_n, (long long)nfull_red, t_vis * 1e3, gt_stem * 1e3, gt_merge * 1e3,
           v_blocks / (double)v_n * 1e3, 100 * vg_t / t_vis, vg_f / vg_t * 1e-9);
    if (t_vfull_block > 0)
        printf("  one full-attention block (measured separately) %.1f ms; window block %.1f ms\n", t_vfull_block * 1e3,
               v_win_block * 1e3);
    printf("  EXTRAPOLATED %lld blocks (%lld full) %9.1f ms\n", (long long)V_full, (long long)nfull_real,
           t_vis_full * 1e3);

    printf("\n== decoder prefill: %lld positions, chunks of %lld, logits of the last ==\n", (long long)n,
           (long long)m->prefill_chunk);
    printf("  FLOPs per layer: GEMM %.1f G (q/k/v/o + MLP), attention %.1f G (QK^T + PV, causal half); lm_head %.2f G\n",
           fl_gemm_layer * 1e-9, fl_attn_layer * 1e-9, fl_lm * 1e-9);
    printf("  measured (%lld layers)   %9.2f s  = %.1f tokens/s; per layer %.2f s (GEMM %.2f s of it); rest "
           "(lm_head, norms, tables) %.2f s\n",
           (long long)m->n_layers, t_pf, nn / t_pf, pf_layer, (pf_gemm_t - lm_t) / (double)m->n_layers, pf_rest);
    printf("  achieved %.1f GFLOP/s = %.0f%% of the raw GEMM rate; in-place GEMMs ran at %.1f GFLOP/s\n",
           fl_pf / t_pf * 1e-9, 100 * (fl_pf / t_pf) / raw_rate, (pf_gemm_f - lm_f) / (pf_gemm_t - lm_t) * 1e-9);
    printf("  raw GEMM, same backend, layer 0's 7 weights at M=%lld (best of %d each, %s): %.1f GFLOP/s\n", (long long)M,
           (prefill_only ? 1 : 2) * raw_reps,
           prefill_only ? "before the prefill" : "half before the prefill, half after the decode", raw_rate * 1e-9);
    printf("  EXTRAPOLATED %lld layers %9.1f s  = %.1f tokens/s (%.2f TFLOP)\n", (long long)L_full, t_pf_full,
           nn / t_pf_full, fl_pf_full * 1e-12);

    printf("\n== decode: %lld greedy steps after the prefill ==\n", (long long)decode);
    if (decode) {
        printf("  measured (%lld layers)   %9.1f ms/token (best %.1f); per layer %.1f ms; lm_head %.1f ms; rest %.1f ms\n",
               (long long)m->n_layers, dec_tok * 1e3, t_dec_best * 1e3, dec_layer * 1e3, dec_lm_t / (double)decode * 1e3,
               (dec_rest - dec_lm_t / (double)decode) * 1e3);
        const double bps = bw * 1e9;
        printf("  bytes read per token %.2f GB -> bandwidth bound %.1f ms at %.2f GB/s (best of the two samples); "
               "measured / bound = %.2f (best step: %.2f)\n",
               bytes_tok * 1e-9, bytes_tok / bps * 1e3, bw, dec_tok / (bytes_tok / bps), t_dec_best / (bytes_tok / bps));
        printf("  EXTRAPOLATED %lld layers %9.1f ms/token; bound %.1f ms (%.2f GB/token); ratio %.2f\n",
               (long long)L_full, dec_tok_full * 1e3, bytes_tok_full / bps * 1e3, bytes_tok_full * 1e-9,
               dec_tok_full / (bytes_tok_full / bps));
    }

    printf("\n== memory ==\n");
    printf("  peak RSS measured (ru_maxrss)  %.2f GiB (checkpoint %.2f GB bf16, mmap'd)\n", gib(rss), params_red * 2e-9);
    if (full_depth && a_n == A_full && v_n == V_full)
        printf("  this is the full %s thinker: peak RSS MEASURED %.2f GiB (%lld positions + %lld decode steps)\n", size,
               gib(rss), (long long)n, (long long)decode);
    else
        printf("  ESTIMATED full %s: + %.2f GiB weights of the missing layers/blocks + %.2f GiB their KV cache = %.2f GiB\n",
               size, gib(extra_w), gib(extra_kv), gib(rss_full));

    printf("\n== %s full %s, this machine: audio %.1f s + vision %.1f s + prefill %.1f s; then %.2f s/token%s ==\n",
           full_depth && a_n == A_full && v_n == V_full ? "MEASURED" : "ESTIMATED", size, t_audio_full, t_vis_full,
           t_pf_full, dec_tok_full, decode ? "" : " (no decode run)");

    free(e1);
    free(lacc);
    free(dacc);
    free(logits);
    free(embeds);
    free(aud_rows);
    free(vid_rows);
    free(px);
    free(feat);
    free(ids);
    avl_token_map_free(map);
    avl_tokenizer_free(tok);
    avl_run_free(r);
    m->be = g_inner;
    avl_model_free(m);
    return 0;
}
