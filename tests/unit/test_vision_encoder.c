/* tests/unit/test_vision_encoder.c: the vision encoder on a tiny random checkpoint (bf16 weights,
 * temporal patch 2, merge 2 and 4 x 4 merged units per window like the real model, but 2 x 2
 * pixel patches and a window of 18 pixels (18 // 2 // 2 = 4, floor division as HF) so the patch
 * embedding stays cheap under the sanitizers; the golden test covers the real 14-pixel patches),
 * against
 *   - a naive double-precision reference written from the architecture in the INPUT order: window
 *     attention as a mask "same frame and same window of units", no permutation at all, so the
 *     encoder's window order, rotary gathering and inverse permutation are checked independently;
 *   - metamorphic cases: one window covering the frame equals full attention (bitwise); frames of
 *     one item equal the frames encoded alone; fused attn.qkv equals separate q/k/v; the fast
 *     backends equal the reference backend within tolerance, with one thread or several;
 *   - errors (grid, tensors, config) and allocation failures at every step.
 */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "model/model_internal.h"

enum { D = 16, NH = 2, HD = D / NH, FF = 24, DEPTH = 3, OUT = 16, PATCH = 2, TP = 2, MERGE = 2, UNIT = 4, C = 3,
       KP = C * TP * PATCH * PATCH, WIN = 4 /* units per window side: 18 // 2 // 2 */ };

/* ---- the tiny checkpoint: named fp32 tensors holding bf16-representable values ---- */

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[5];
    int64_t n;
    float *v;
} tens;

static tens T[64];
static int n_tens;
static uint32_t rng = 12345u;

static float uni(void) /* uniform in [-1, 1) */
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

static float round_bf16(float x) { return avl_bf16_to_f32(avl_f32_to_bf16(x)); }

static void add(const char *name, int ndim, const int64_t *shape, float offset, float scale)
{
    tens *t = &T[n_tens++];
    snprintf(t->name, sizeof t->name, "thinker.visual.%s", name);
    t->ndim = ndim;
    t->n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->n *= shape[i];
    }
    t->v = malloc((size_t)t->n * sizeof(float));
    for (int64_t i = 0; i < t->n; i++) t->v[i] = round_bf16(offset + scale * uni());
}

static const float *get(const char *fmt, ...)
{
    char name[96], full[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "thinker.visual.%s", name);
    for (int i = 0; i < n_tens; i++)
        if (!strcmp(T[i].name, full)) return T[i].v;
    fail_msg("test: no tensor %s", full);
    return NULL;
}

static void make_tensors(void)
{
    char n[96];
    int64_t pe[5] = {D, C, TP, PATCH, PATCH};
    add("patch_embed.proj.weight", 5, pe, 0.0f, 1.0f / sqrtf((float)KP) * 1.7f);
    for (int l = 0; l < DEPTH; l++) {
        int64_t dd[2] = {D, D}, fd[2] = {FF, D}, df[2] = {D, FF}, d1[1] = {D}, f1[1] = {FF};
#define A(suffix, nd, sh, off, sc) snprintf(n, sizeof n, "blocks.%d.%s", l, suffix), add(n, nd, sh, off, sc)
        A("norm1.weight", 1, d1, 1.0f, 0.2f);
        A("norm2.weight", 1, d1, 1.0f, 0.2f);
        A("attn.q.weight", 2, dd, 0.0f, 0.6f);
        A("attn.k.weight", 2, dd, 0.0f, 0.6f);
        A("attn.v.weight", 2, dd, 0.0f, 0.3f);
        A("attn.q.bias", 1, d1, 0.0f, 0.1f);
        A("attn.k.bias", 1, d1, 0.0f, 0.1f);
        A("attn.v.bias", 1, d1, 0.0f, 0.1f);
        A("attn.proj.weight", 2, dd, 0.0f, 0.3f);
        A("attn.proj.bias", 1, d1, 0.0f, 0.1f);
        A("mlp.gate_proj.weight", 2, fd, 0.0f, 0.3f);
        A("mlp.up_proj.weight", 2, fd, 0.0f, 0.3f);
        A("mlp.down_proj.weight", 2, df, 0.0f, 0.25f);
        A("mlp.gate_proj.bias", 1, f1, 0.0f, 0.1f);
        A("mlp.up_proj.bias", 1, f1, 0.0f, 0.1f);
        A("mlp.down_proj.bias", 1, d1, 0.0f, 0.1f);
#undef A
    }
    int64_t d1[1] = {D}, mm[2] = {UNIT * D, UNIT * D}, m1[1] = {UNIT * D}, om[2] = {OUT, UNIT * D}, o1[1] = {OUT};
    add("merger.ln_q.weight", 1, d1, 1.0f, 0.2f);
    add("merger.mlp.0.weight", 2, mm, 0.0f, 0.1f);
    add("merger.mlp.0.bias", 1, m1, 0.0f, 0.1f);
    add("merger.mlp.2.weight", 2, om, 0.0f, 0.1f);
    add("merger.mlp.2.bias", 1, o1, 0.0f, 0.1f);
}

static void writer_add_f32(avl_st_writer *w, const char *name, int ndim, const int64_t *shape, const float *v,
                           int64_t n)
{
    uint16_t *b = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) b[i] = avl_f32_to_bf16(v[i]);
    assert_int_equal(avl_st_writer_add(w, name, AVL_DTYPE_BF16, ndim, shape, b), AVL_OK);
    free(b);
}

/* Writes the tensors as bf16 into dir/model.safetensors; fused: attn.q/k/v as one attn.qkv;
 * skip: a tensor name to leave out; bad_shape: a tensor to write with its dims swapped. */
static void write_ckpt(const char *dir, bool fused, const char *skip, const char *bad_shape)
{
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    for (int i = 0; i < n_tens; i++) {
        tens *t = &T[i];
        if (skip && strstr(t->name, skip)) continue;
        if (fused && (strstr(t->name, ".attn.q.") || strstr(t->name, ".attn.k.") || strstr(t->name, ".attn.v.")))
            continue;
        int64_t sh[5];
        memcpy(sh, t->shape, sizeof sh);
        if (bad_shape && strstr(t->name, bad_shape)) {
            int64_t x = sh[0];
            sh[0] = sh[1];
            sh[1] = x;
        }
        writer_add_f32(w, t->name, t->ndim, sh, t->v, t->n);
    }
    if (fused) {
        for (int l = 0; l < DEPTH; l++) {
            float *qkv = malloc(3 * D * D * sizeof(float)), *b = malloc(3 * D * sizeof(float));
            const char *part[3] = {"q", "k", "v"};
            for (int p = 0; p < 3; p++) {
                memcpy(qkv + p * D * D, get("blocks.%d.attn.%s.weight", l, part[p]), D * D * sizeof(float));
                memcpy(b + p * D, get("blocks.%d.attn.%s.bias", l, part[p]), D * sizeof(float));
            }
            char n[96];
            int64_t sw[2] = {3 * D, D}, sb[1] = {3 * D};
            snprintf(n, sizeof n, "thinker.visual.blocks.%d.attn.qkv.weight", l);
            writer_add_f32(w, n, 2, sw, qkv, 3 * D * D);
            snprintf(n, sizeof n, "thinker.visual.blocks.%d.attn.qkv.bias", l);
            writer_add_f32(w, n, 1, sb, b, 3 * D);
            free(qkv);
            free(b);
        }
    }
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(avl_st_writer_save(w, path), AVL_OK);
    avl_st_writer_free(w);
}

static const char *ckpt_dir, *fused_dir;

static int group_setup(void **state)
{
    (void)state;
    make_tensors();
    static char d1[512], d2[512];
    snprintf(d1, sizeof d1, "%s", avl_test_dir("vision_encoder"));
    write_ckpt(d1, false, NULL, NULL);
    snprintf(d2, sizeof d2, "%s", avl_test_dir("vision_encoder_fused"));
    write_ckpt(d2, true, NULL, NULL);
    ckpt_dir = d1;
    fused_dir = d2;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_tens; i++) free(T[i].v);
    return 0;
}

/* ---- a model holding only what the vision encoder reads ---- */

static void tiny_config(avl_config *c)
{
    avl_config_defaults(c);
    snprintf(c->tensor_prefix, sizeof c->tensor_prefix, "thinker.");
    avl_vision_config *v = &c->vision;
    v->depth = DEPTH;
    v->hidden_size = D;
    v->num_heads = NH;
    v->intermediate_size = FF;
    v->patch_size = PATCH;
    v->temporal_patch_size = TP;
    v->spatial_merge_size = MERGE;
    v->window_size = 18;
    v->in_channels = C;
    v->out_hidden_size = OUT;
    v->n_fullatt = 1;
    v->fullatt_block_indexes[0] = 1;
    snprintf(v->hidden_act, sizeof v->hidden_act, "silu");
}

static avl_model *open_model(const char *dir, const char *backend, const avl_config *cfg)
{
    avl_model *m = calloc(1, sizeof *m);
    m->cfg = *cfg;
    assert_int_equal(avl_st_open_dir(dir, &m->st), AVL_OK);
    assert_int_equal(avl__gemm_backend_select(backend, &m->be), AVL_OK);
    return m;
}

static void close_model(avl_model *m)
{
    avl__vision_encoder_free(m->vision);
    avl_st_close(m->st);
    free(m);
}

static avl_model *load(const char *dir, const char *backend, const avl_config *cfg)
{
    avl_model *m = open_model(dir, backend, cfg);
    avl_status rc = avl__vision_encoder_load(m, &m->vision);
    if (rc) fail_msg("load: %s", avl_last_error());
    return m;
}

static float *random_patches(int64_t n, uint32_t seed)
{
    uint32_t keep = rng;
    rng = seed;
    float *p = malloc((size_t)(n * KP) * sizeof(float));
    for (int64_t i = 0; i < n * KP; i++) p[i] = 1.5f * uni();
    rng = keep;
    return p;
}

/* Runs the encoder; checks the output has exactly t*h*w/4 rows (guard values after it stay). */
static float *encode(const avl_model *m, const float *patches, int64_t t, int64_t h, int64_t w)
{
    int64_t rows = t * h * w / UNIT, n = rows * OUT;
    float *out = malloc((size_t)(n + 8) * sizeof(float));
    for (int64_t i = 0; i < n + 8; i++) out[i] = -12345.0f;
    int64_t g[3] = {t, h, w};
    avl_status rc = avl__vision_encoder_forward(m, m->vision, patches, g, out);
    if (rc) fail_msg("forward (%lld,%lld,%lld): %s", (long long)t, (long long)h, (long long)w, avl_last_error());
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(out[i]) || out[i] == -12345.0f) fail_msg("output %lld not written", (long long)i);
    for (int64_t i = n; i < n + 8; i++)
        if (out[i] != -12345.0f) fail_msg("output written past its %lld rows", (long long)rows);
    return out;
}

/* ---- the naive reference, in the input order, in double ---- */

static void rms(double *y, const double *x, const float *w, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] * x[i];
    double r = 1.0 / sqrt(s / (double)n + 1e-6);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

static void lin(double *y, const double *x, const float *W, const float *b, int64_t nout, int64_t nin)
{
    for (int64_t o = 0; o < nout; o++) {
        double s = b ? b[o] : 0.0;
        for (int64_t i = 0; i < nin; i++) s += (double)W[o * nin + i] * x[i];
        y[o] = s;
    }
}

/* out (t*h*w/4, OUT). full[l]: block l attends over the whole frame. */
static void naive(const float *P, int64_t t, int64_t gh, int64_t gw, const bool *full, double *out)
{
    const int64_t N = t * gh * gw, uw = gw / MERGE;
    double *x = calloc((size_t)(N * D), sizeof(double)), *h = calloc((size_t)(N * D), sizeof(double));
    double *q = calloc((size_t)(N * D), sizeof(double)), *k = calloc((size_t)(N * D), sizeof(double));
    double *v = calloc((size_t)(N * D), sizeof(double)), *a = calloc((size_t)(N * D), sizeof(double));
    double *g = malloc(FF * sizeof(double)), *u = malloc(FF * sizeof(double)), *y = malloc(D * sizeof(double));
    double *sc = malloc((size_t)N * sizeof(double)), *pd = malloc(KP * sizeof(double));
    int64_t *frame = malloc((size_t)N * sizeof(int64_t)), *row = malloc((size_t)N * sizeof(int64_t));
    int64_t *col = malloc((size_t)N * sizeof(int64_t)), *wid = malloc((size_t)N * sizeof(int64_t));
    double inv[HD / 4];
    for (int i = 0; i < HD / 4; i++) inv[i] = 1.0 / pow(10000.0, (2.0 * i) / (HD / 2));
    for (int64_t r = 0; r < N; r++) {
        int64_t f = r / (gh * gw), i = r % (gh * gw), un = i / UNIT, s = i % UNIT, by = un / uw, bx = un % uw;
        frame[r] = f;
        row[r] = by * MERGE + s / MERGE;
        col[r] = bx * MERGE + s % MERGE;
        wid[r] = (f * 1000 + by / WIN) * 1000 + bx / WIN;
        for (int j = 0; j < KP; j++) pd[j] = P[r * KP + j];
        lin(x + r * D, pd, get("patch_embed.proj.weight"), NULL, D, KP);
    }
    for (int l = 0; l < DEPTH; l++) {
        for (int64_t r = 0; r < N; r++) {
            rms(h + r * D, x + r * D, get("blocks.%d.norm1.weight", l), D);
            lin(q + r * D, h + r * D, get("blocks.%d.attn.q.weight", l), get("blocks.%d.attn.q.bias", l), D, D);
            lin(k + r * D, h + r * D, get("blocks.%d.attn.k.weight", l), get("blocks.%d.attn.k.bias", l), D, D);
            lin(v + r * D, h + r * D, get("blocks.%d.attn.v.weight", l), get("blocks.%d.attn.v.bias", l), D, D);
            for (int hh = 0; hh < NH; hh++)
                for (int i = 0; i < HD / 2; i++) {
                    double ang = i < HD / 4 ? row[r] * inv[i] : col[r] * inv[i - HD / 4];
                    double c = cos(ang), s = sin(ang);
                    double *qq = q + r * D + hh * HD, *kk = k + r * D + hh * HD;
                    double q1 = qq[i], q2 = qq[i + HD / 2], k1 = kk[i], k2 = kk[i + HD / 2];
                    qq[i] = q1 * c - q2 * s;
                    qq[i + HD / 2] = q2 * c + q1 * s;
                    kk[i] = k1 * c - k2 * s;
                    kk[i + HD / 2] = k2 * c + k1 * s;
                }
        }
        for (int64_t r = 0; r < N; r++)
            for (int hh = 0; hh < NH; hh++) {
                double mx = -1e300, sum = 0;
                for (int64_t j = 0; j < N; j++) {
                    bool vis = frame[j] == frame[r] && (full[l] || wid[j] == wid[r]);
                    double s = 0;
                    for (int d = 0; d < HD; d++) s += q[r * D + hh * HD + d] * k[j * D + hh * HD + d];
                    sc[j] = vis ? s / sqrt((double)HD) : -INFINITY;
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int64_t j = 0; j < N; j++) sum += sc[j] = exp(sc[j] - mx);
                for (int d = 0; d < HD; d++) {
                    double o = 0;
                    for (int64_t j = 0; j < N; j++) o += sc[j] / sum * v[j * D + hh * HD + d];
                    a[r * D + hh * HD + d] = o;
                }
            }
        for (int64_t r = 0; r < N; r++) {
            lin(y, a + r * D, get("blocks.%d.attn.proj.weight", l), get("blocks.%d.attn.proj.bias", l), D, D);
            for (int d = 0; d < D; d++) x[r * D + d] += y[d];
            rms(h + r * D, x + r * D, get("blocks.%d.norm2.weight", l), D);
            lin(g, h + r * D, get("blocks.%d.mlp.gate_proj.weight", l), get("blocks.%d.mlp.gate_proj.bias", l), FF, D);
            lin(u, h + r * D, get("blocks.%d.mlp.up_proj.weight", l), get("blocks.%d.mlp.up_proj.bias", l), FF, D);
            for (int i = 0; i < FF; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
            lin(y, g, get("blocks.%d.mlp.down_proj.weight", l), get("blocks.%d.mlp.down_proj.bias", l), D, FF);
            for (int d = 0; d < D; d++) x[r * D + d] += y[d];
        }
    }
    /* merger: units are 4 consecutive rows of the input order */
    double *cat = malloc(UNIT * D * sizeof(double)), *m0 = malloc(UNIT * D * sizeof(double));
    for (int64_t un = 0; un < N / UNIT; un++) {
        for (int s = 0; s < UNIT; s++) rms(cat + s * D, x + (un * UNIT + s) * D, get("merger.ln_q.weight"), D);
        lin(m0, cat, get("merger.mlp.0.weight"), get("merger.mlp.0.bias"), UNIT * D, UNIT * D);
        for (int i = 0; i < UNIT * D; i++) m0[i] = 0.5 * m0[i] * (1.0 + erf(m0[i] / sqrt(2.0)));
        lin(out + un * OUT, m0, get("merger.mlp.2.weight"), get("merger.mlp.2.bias"), OUT, UNIT * D);
    }
    free(cat), free(m0), free(x), free(h), free(q), free(k), free(v), free(a), free(g), free(u), free(y);
    free(sc), free(pd), free(frame), free(row), free(col), free(wid);
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const double *b, int64_t n)
{
    double e = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs(b[i]));
    }
    return e / mx;
}

static double rel_err_f(const float *a, const float *b, int64_t n)
{
    double e = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)b[i]));
    }
    return e / mx;
}

/* ---- tests ---- */

/* oneDNN rounds GEMM inputs to bf16 only on a CPU with bf16 arithmetic (AVX512-BF16, AMX);
 * elsewhere it hands bf16 weights to the fp32 OpenBLAS path. */
static bool bf16_path(const avl__gemm_backend *be)
{
    const char *isa = avl__gemm_backend_isa(be);
    return strcmp(be->name, "onednn") == 0 && (strstr(isa, "bf16") || strstr(isa, "amx"));
}


static void check_against_naive(const avl_model *m, int64_t t, int64_t h, int64_t w, uint32_t seed)
{
    bool full[DEPTH] = {false, true, false};
    float *p = random_patches(t * h * w, seed);
    float *out = encode(m, p, t, h, w);
    int64_t n = t * h * w / UNIT * OUT;
    double *want = malloc((size_t)n * sizeof(double));
    naive(p, t, h, w, full, want);
    double e = rel_err(out, want, n);
    if (getenv("AVL_TEST_VERBOSE"))
        print_message("grid (%lld,%lld,%lld): %.3g\n", (long long)t, (long long)h, (long long)w, e);
    if (e > 1e-4) fail_msg("grid (%lld,%lld,%lld): relative error %.3g > 1e-4", (long long)t, (long long)h,
                           (long long)w, e);
    free(p), free(out), free(want);
}

static void test_matches_naive_reference(void **state)
{
    (void)state;
    avl_config cfg;
    tiny_config(&cfg);
    avl_model *m = load(ckpt_dir, "ref", &cfg);
    check_against_naive(m, 1, 2, 2, 1);    /* one unit */
    check_against_naive(m, 1, 4, 6, 2);    /* 2 x 3 units: one window */
    check_against_naive(m, 1, 20, 12, 3);  /* 10 x 6 units: 3 x 2 windows cut at the edges */
    check_against_naive(m, 1, 16, 8, 4);   /* 8 x 4 units: exact multiples (HF's empty pad windows) */
    check_against_naive(m, 2, 10, 18, 5);  /* 5 x 9 units: 2 x 3 windows, two frames */
    close_model(m);
}

/* Grids of at most 4 x 4 units fit one window: the window order is the identity and window
 * attention is full attention, so an encoder whose blocks are all "full" gives the same bits. */
static void test_one_window_is_full_attention(void **state)
{
    (void)state;
    avl_config cw, cf;
    tiny_config(&cw);
    cw.vision.n_fullatt = 0;
    tiny_config(&cf);
    cf.vision.n_fullatt = DEPTH;
    for (int l = 0; l < DEPTH; l++) cf.vision.fullatt_block_indexes[l] = l;
    avl_model *mw = load(ckpt_dir, "ref", &cw), *mf = load(ckpt_dir, "ref", &cf);
    const int64_t grids[3][3] = {{1, 8, 8}, {1, 8, 4}, {2, 6, 8}};
    for (int i = 0; i < 3; i++) {
        const int64_t *g = grids[i];
        float *p = random_patches(g[0] * g[1] * g[2], 10 + i);
        float *a = encode(mw, p, g[0], g[1], g[2]), *b = encode(mf, p, g[0], g[1], g[2]);
        assert_memory_equal(a, b, (size_t)(g[0] * g[1] * g[2] / UNIT * OUT) * sizeof(float));
        free(p), free(a), free(b);
    }
    /* ... and a larger grid does see the difference (the windows are real) */
    float *p = random_patches(12 * 12, 20);
    float *a = encode(mw, p, 1, 12, 12), *b = encode(mf, p, 1, 12, 12);
    assert_true(rel_err_f(a, b, 36 * OUT) > 1e-3);
    free(p), free(a), free(b);
    close_model(mw);
    close_model(mf);
}

/* Attention never crosses a temporal grid (cu_seqlens and cu_window_seqlens are per frame), so
 * the frames of one item come out as each frame encoded alone (6 x 5 units: 2 x 2 windows). */
static void test_frames_are_independent(void **state)
{
    (void)state;
    avl_config cfg;
    tiny_config(&cfg);
    avl_model *m = load(ckpt_dir, "ref", &cfg);
    const int64_t t = 3, h = 12, w = 10, per = h * w, rows = per / UNIT;
    float *p = random_patches(t * per, 30);
    float *all = encode(m, p, t, h, w);
    for (int64_t f = 0; f < t; f++) {
        float *one = encode(m, p + f * per * KP, 1, h, w);
        double e = rel_err_f(all + f * rows * OUT, one, rows * OUT);
        if (e > 1e-6) fail_msg("frame %lld: together vs alone differ by %.3g", (long long)f, e);
        free(one);
    }
    free(p), free(all);
    close_model(m);
}

static void test_fused_qkv_checkpoint(void **state)
{
    (void)state;
    avl_config cfg;
    tiny_config(&cfg);
    avl_model *a = load(ckpt_dir, "ref", &cfg), *b = load(fused_dir, "ref", &cfg);
    float *p = random_patches(2 * 12 * 12, 40);
    float *x = encode(a, p, 2, 12, 12), *y = encode(b, p, 2, 12, 12);
    assert_memory_equal(x, y, (size_t)(2 * 36 * OUT) * sizeof(float));
    free(p), free(x), free(y);
    close_model(a);
    close_model(b);
}

/* Each fast backend that runs here ("auto", "onednn", "openblas") against the reference backend,
 * and with one thread against the default count. In fp32 (OpenBLAS, and oneDNN on a CPU without
 * bf16 arithmetic, which hands bf16 weights to OpenBLAS) only the summation order differs: 5e-5
 * holds (under 1e-5 seen). oneDNN's bf16 path rounds every GEMM input to bf16 (8 significant
 * bits, relative error up to 2^-9); through a few blocks that leaves errors near 1e-2 of the
 * largest value, hence 3e-2 (not measured here: this CPU has no bf16 arithmetic). */
static void test_fast_backends(void **state)
{
    (void)state;
    avl_config cfg;
    tiny_config(&cfg);
    avl_model *r = load(ckpt_dir, "ref", &cfg);
    float *p = random_patches(2 * 12 * 10, 50);
    float *x = encode(r, p, 2, 12, 10);
    const char *names[3] = {"auto", "onednn", "openblas"};
    for (int b = 0; b < 3; b++) {
        const avl__gemm_backend *be;
        if (avl__gemm_backend_select(names[b], &be) != AVL_OK) continue; /* not built or cannot run here */
        avl_model *f = load(ckpt_dir, names[b], &cfg);
        float *y = encode(f, p, 2, 12, 10);
        double tol = bf16_path(f->be) ? 3e-2 : 5e-5;
        double e = rel_err_f(y, x, 2 * 30 * OUT);
        if (getenv("AVL_TEST_VERBOSE")) print_message("%s (%s) vs ref: %.3g\n", names[b], f->be->name, e);
        if (e > tol) fail_msg("backend %s vs ref: relative error %.3g > %.g", names[b], e, tol);
        avl__set_threads(1);
        float *z = encode(f, p, 2, 12, 10);
        avl__set_threads(0);
        e = rel_err_f(z, y, 2 * 30 * OUT);
        if (e > tol)
            fail_msg("backend %s, 1 thread vs %d: relative error %.3g > %.g", names[b], avl__get_threads(), e, tol);
        free(y), free(z);
        close_model(f);
    }
    free(p), free(x);
    close_model(r);
}

static void test_bad_grid(void **state)
{
    (void)state;
    avl_config cfg;
    tiny_config(&cfg);
    avl_model *m = load(ckpt_dir, "ref", &cfg);
    float *p = random_patches(64, 60), out[16 * OUT];
    const int64_t bad[4][3] = {{1, 3, 4}, {1, 4, 5}, {0, 4, 4}, {1, -2, 4}};
    for (int i = 0; i < 4; i++)
        AVL_EXPECT_ERROR(avl__vision_encoder_forward(m, m->vision, p, bad[i], out), AVL_E_ARG, "grid");
    const int64_t g[3] = {1, 4, 4};
    AVL_EXPECT_ERROR(avl__vision_encoder_forward(m, NULL, p, g, out), AVL_E_ARG, "no vision tower");
    free(p);
    close_model(m);
}

static void test_bad_checkpoint(void **state)
{
    (void)state;
    avl_config cfg;
    tiny_config(&cfg);
    avl__vision_enc *e = (avl__vision_enc *)1;
    const char *dir = avl_test_dir("vision_encoder_missing");
    write_ckpt(dir, false, "blocks.2.mlp.up_proj.bias", NULL);
    avl_model *m = open_model(dir, "ref", &cfg);
    AVL_EXPECT_ERROR(avl__vision_encoder_load(m, &e), AVL_E_NOTFOUND, "thinker.visual.blocks.2.mlp.up_proj.bias");
    assert_null(e);
    close_model(m);

    dir = avl_test_dir("vision_encoder_shape");
    write_ckpt(dir, false, NULL, "patch_embed.proj.weight");
    m = open_model(dir, "ref", &cfg);
    AVL_EXPECT_ERROR(avl__vision_encoder_load(m, &e), AVL_E_SHAPE, "patch_embed.proj.weight", "[16,3,2,2,2]");
    close_model(m);

    dir = avl_test_dir("vision_encoder_shape2");
    write_ckpt(dir, false, NULL, "blocks.1.mlp.down_proj.weight");
    m = open_model(dir, "ref", &cfg);
    AVL_EXPECT_ERROR(avl__vision_encoder_load(m, &e), AVL_E_SHAPE, "blocks.1.mlp.down_proj.weight");
    close_model(m);

    avl_config c2 = cfg;
    c2.vision.num_heads = 16; /* head dim 2: not a multiple of 4 */
    m = open_model(ckpt_dir, "ref", &c2);
    AVL_EXPECT_ERROR(avl__vision_encoder_load(m, &e), AVL_E_CONFIG, "multiple of 4");
    close_model(m);
    c2 = cfg;
    snprintf(c2.vision.hidden_act, sizeof c2.vision.hidden_act, "quick_gelu");
    m = open_model(ckpt_dir, "ref", &c2);
    AVL_EXPECT_ERROR(avl__vision_encoder_load(m, &e), AVL_E_UNSUPPORTED, "quick_gelu");
    close_model(m);
}

/* Fails the n-th allocation for n = 1, 2, ... in loading and in a forward pass: every failure
 * is AVL_E_NOMEM and nothing leaks (the sanitizer build checks the leaks). */
static void test_allocation_failures(void **state)
{
    (void)state;
    avl_config cfg;
    tiny_config(&cfg);
    avl_model *m = open_model(ckpt_dir, "ref", &cfg);
    int n;
    for (n = 1; n < 1000; n++) {
        avl__alloc_fail_after(n);
        avl_status rc = avl__vision_encoder_load(m, &m->vision);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) break;
        assert_int_equal(rc, AVL_E_NOMEM);
        assert_null(m->vision);
    }
    assert_true(n > 1 && n < 1000);
    float *p = random_patches(4 * 10, 70), out[10 * OUT];
    const int64_t g[3] = {1, 4, 10}; /* 2 x 5 units: two windows */
    for (n = 1; n < 1000; n++) {
        avl__alloc_fail_after(n);
        avl_status rc = avl__vision_encoder_forward(m, m->vision, p, g, out);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) break;
        assert_int_equal(rc, AVL_E_NOMEM);
    }
    if (getenv("AVL_TEST_VERBOSE")) print_message("forward: %d allocations\n", n - 1);
    assert_true(n > 1 && n < 1000);
    free(p);
    close_model(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_naive_reference),
        cmocka_unit_test(test_one_window_is_full_attention),
        cmocka_unit_test(test_frames_are_independent),
        cmocka_unit_test(test_fused_qkv_checkpoint),
        cmocka_unit_test(test_fast_backends),
        cmocka_unit_test(test_bad_grid),
        cmocka_unit_test(test_bad_checkpoint),
        cmocka_unit_test(test_allocation_failures),
    };
    if (getenv("AVL_TEST_FILTER")) cmocka_set_test_filter(getenv("AVL_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
