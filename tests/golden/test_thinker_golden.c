/* tests/golden/test_thinker_golden.c: the whole thinker, stage by stage, against the independent
 * fp32 PyTorch reference (tools/ref/qwen25_omni_ref.py; files made by tools/ref/make_golden.py).
 *
 * Every folder of tests/data/golden/ with a case.json is a case and must hold inputs.safetensors,
 * expected.safetensors and model/ (a folder with golden.safetensors instead is the audio
 * encoder's own case, tests/golden/test_audio_encoder.c; anything else fails). Each case runs
 * twice, with the "ref" backend and with "auto": avl_model_load, avl_inputs_load (the flags from
 * case.json), avl_thinker_embed (keeping the encoders' rows) and one avl_run_forward over the
 * whole sequence with hooks that capture the residual stream entering every layer
 * (AVL_SITE_RESID), the final norm's output (AVL_SITE_FINAL) and, for the layers case.json names
 * in "attn_layers", every head's attention probabilities (averaged over heads afterwards in head
 * order, so the mean does not depend on which thread ran which head). Then, in pipeline order:
 *   position_ids, rope_deltas                         exact
 *   audio_embeds, video_embeds, image_embeds          (the encoders)
 *   hidden_states.0 .. hidden_states.<n_layers>       (0: the merged embeddings; last: final norm)
 *   attn.<layer>                                      (head mean, (L, L))
 *   logits
 * The failure names the case, the backend and the FIRST stage over its bound, with the error and
 * where it is; later stages only diverge because of it. AVL_TEST_VERBOSE=1 prints every stage.
 *
 * Tolerance: max |got - want| <= tol * max |want| per stage.
 *   tol = 1e-4 for "ref" and the fp32 paths of "auto" (OpenBLAS; oneDNN without bf16
 *     arithmetic hands bf16 weights to OpenBLAS). Both sides compute in fp32 from the same bf16
 *     weights and bf16-exact inputs, so only the order of roundings differs: a dot product of
 *     K <= 1176 terms carries ~sqrt(K) u relative error typically (u = 2^-24), a few 1e-6 after a
 *     handful of layers; measured <= 2.2e-6 (docs/model.md). 1e-4 leaves a factor 50 for other
 *     summation orders while a wrong formula (a rotary pair off by one, a missing bias, a
 *     mask off by one) moves a stage by 1e-2 or more.
 *   tol = 3e-2 for oneDNN's bf16 path (AVX512-BF16 / AMX machines): every GEMM rounds its
 *     activation input to bf16 (relative 2^-8). docs/kernels.md ("Tolerances") derives the
 *     typical normalised error of one such GEMM as 2^-8/sqrt(3) ~ 2.3e-3, with random signs;
 *     the longest chain here (vision tower: patch embedding, 4 blocks of 4 GEMMs, merger 2,
 *     then 2-3 decoder layers of 7 GEMMs and lm_head) has about 30 GEMMs, whose independent
 *     errors add to ~sqrt(30) * 2.3e-3 ~ 1.3e-2; 3e-2 is that with a factor 2 for the norms and
 *     softmax that pass relative errors on. It is the bound the vision golden test uses. It has
 *     not been run: the development machine has no bf16 arithmetic (docs/kernels.md).
 */
#include "avl_test.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/internal.h"
#include "model/model_internal.h"

#define GOLDEN AVL_TEST_DATA "/golden"
#define MAX_CASES 64
#define MAX_ATTN 8

typedef struct {
    char name[256];
    char dir[1100];
    const char *backend;
    char problem[1600]; /* non-empty: the folder is broken, the test fails with this */
    char test_name[300];
} gcase;

/* ---- capturing hooks ---- */
typedef struct {
    int64_t L, H, nh;
    int n_layers;
    float *hidden;            /* (n_layers + 1, L, H) */
    int n_attn;
    int attn_layer[MAX_ATTN];
    float *attn[MAX_ATTN];    /* per listed layer: (nh, L, L) */
} capture;

static bool cap_wants(void *u, int layer, avl_site s)
{
    (void)u, (void)layer;
    return s == AVL_SITE_RESID || s == AVL_SITE_FINAL;
}

static void cap_site(void *u, int layer, avl_site s, int64_t p0, int64_t n, int64_t dim, float *x)
{
    capture *c = u;
    (void)s;
    memcpy(c->hidden + ((int64_t)layer * c->L + p0) * dim, x, (size_t)(n * dim) * sizeof(float));
}

static int attn_slot(const capture *c, int layer)
{
    for (int i = 0; i < c->n_attn; i++)
        if (c->attn_layer[i] == layer) return i;
    return -1;
}

static bool cap_wants_attn(void *u, int layer) { return attn_slot(u, layer) >= 0; }

/* Called concurrently for different heads: each call writes its own rows of its own head. */
static void cap_attn(void *u, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                     const float *scores)
{
    capture *c = u;
    (void)scores;
    float *a = c->attn[attn_slot(c, layer)];
    for (int64_t i = 0; i < nq; i++)
        memcpy(a + (head * c->L + q0 + i) * c->L, probs + i * nk, (size_t)nk * sizeof(float));
}

/* ---- comparison ---- */
typedef struct {
    const char *cs, *backend;
    const avl_st_file *exp;
    double tol;
    char first[1024]; /* the first stage over its bound, or "" */
    int compared;     /* expected tensors looked at */
} cmp;

static void note_fail(cmp *c, const char *fmt, ...) AVL__PRINTF(2, 3);
static void note_fail(cmp *c, const char *fmt, ...)
{
    if (c->first[0]) return;
    int k = snprintf(c->first, sizeof c->first, "%s (%s): ", c->cs, c->backend);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->first + k, sizeof c->first - (size_t)k, fmt, ap);
    va_end(ap);
}

static bool want_tensor(cmp *c, const char *name, avl_tensor_view *tv, int64_t numel)
{
    if (avl_st_file_get(c->exp, name, tv)) {
        note_fail(c, "stage %s: avlens made it (%lld values), expected.safetensors lacks it", name, (long long)numel);
        return false;
    }
    c->compared++;
    if (tv->numel != numel) {
        note_fail(c, "stage %s: %lld values, expected %lld", name, (long long)numel, (long long)tv->numel);
        return false;
    }
    return true;
}

static void stage_int(cmp *c, const char *name, const int64_t *got, int64_t n)
{
    avl_tensor_view tv;
    if (!want_tensor(c, name, &tv, n)) return;
    if (tv.dtype != AVL_DTYPE_I64) {
        note_fail(c, "stage %s: expected.safetensors has it as %s, not I64", name, avl_dtype_name(tv.dtype));
        return;
    }
    int64_t bad = 0, at = -1, w = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t x;
        memcpy(&x, (const char *)tv.data + 8 * i, 8);
        if (x != got[i] && bad++ == 0) at = i, w = x;
    }
    if (getenv("AVL_TEST_VERBOSE"))
        print_message("  %-12s %-6s %-18s %lld of %lld differ\n", c->cs, c->backend, name, (long long)bad, (long long)n);
    if (bad)
        note_fail(c, "stage %s: %lld of %lld values differ, first at flat index %lld: got %lld, want %lld", name,
                  (long long)bad, (long long)n, (long long)at, (long long)got[at], (long long)w);
}

/* got (n / cols, cols) against the expected tensor of the same size. */
static void stage_f32(cmp *c, const char *name, const float *got, int64_t n, int64_t cols)
{
    avl_tensor_view tv;
    if (!want_tensor(c, name, &tv, n)) return;
    float *want = malloc((size_t)(n ? n : 1) * sizeof *want);
    assert_non_null(want);
    if (avl_convert_to_f32(tv.dtype, tv.data, want, n)) fail_msg("%s: expected %s is not float", c->cs, name);
    double err = 0, mx = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= err)) err = e, at = i; /* NaN counts as the worst */
        mx = fmax(mx, fabs((double)want[i]));
    }
    double rel = err / (mx > 0 ? mx : 1);
    if (getenv("AVL_TEST_VERBOSE"))
        print_message("  %-12s %-6s %-18s max error %.3g of max %.3g (normalised %.2e)\n", c->cs, c->backend, name, err,
                      mx, rel);
    if (!(rel <= c->tol))
        note_fail(c, "stage %s diverges first: row %lld col %lld got %.9g, want %.9g; max error %.3g = %.2e of the "
                  "largest magnitude %.3g (bound %.0e)", name, (long long)(at / cols), (long long)(at % cols),
                  (double)got[at], (double)want[at], err, rel, mx, c->tol);
    free(want);
}

/* ---- one case ---- */
static bool bf16_path(const avl__gemm_backend *be)
{
    const char *isa = avl__gemm_backend_isa(be);
    return strcmp(be->name, "onednn") == 0 && (strstr(isa, "bf16") || strstr(isa, "amx"));
}

static void test_case(void **state)
{
    const gcase *gc = *state;
    if (gc->problem[0]) fail_msg("%s", gc->problem);
    char path[1300];

    /* case.json: the run's flags */
    snprintf(path, sizeof path, "%s/case.json", gc->dir);
    json_error_t je;
    json_t *cj = json_load_file(path, 0, &je);
    if (!cj) fail_msg("%s: not JSON (line %d: %s)", path, je.line, je.text);
    json_t *aiv = json_object_get(cj, "use_audio_in_video"), *al = json_object_get(cj, "attn_layers");
    if (!json_is_boolean(aiv) || !json_is_array(al) || json_array_size(al) > MAX_ATTN)
        fail_msg("%s: needs \"use_audio_in_video\" (bool) and \"attn_layers\" (array of at most %d)", path, MAX_ATTN);

    avl_model_params mp = avl_model_default_params();
    mp.backend = gc->backend;
    avl_model *m;
    snprintf(path, sizeof path, "%s/model", gc->dir);
    if (avl_model_load(path, &mp, &m)) fail_msg("%s: %s", gc->name, avl_last_error());
    const avl_config *cfg = avl_model_config(m);
    avl_inputs *in;
    snprintf(path, sizeof path, "%s/inputs.safetensors", gc->dir);
    if (avl_inputs_load(path, cfg, json_is_true(aiv), &in)) fail_msg("%s: %s", gc->name, avl_last_error());
    const avl_thinker_inputs *ti = avl_inputs_get(in);

    float *embeds;
    avl_token_map *map;
    avl_encoder_outputs enc;
    if (avl_thinker_embed(m, ti, &embeds, &map, &enc)) fail_msg("%s: thinker_embed: %s", gc->name, avl_last_error());
    const int64_t L = ti->n, H = m->H, V = m->V;
    capture cap = {.L = L, .H = H, .nh = m->nh, .n_layers = (int)m->n_layers};
    cap.hidden = calloc((size_t)((cap.n_layers + 1) * L * H), sizeof(float));
    for (size_t i = 0; i < json_array_size(al); i++) {
        json_int_t l = json_integer_value(json_array_get(al, i));
        if (!json_is_integer(json_array_get(al, i)) || l < 0 || l >= cap.n_layers)
            fail_msg("%s: case.json attn_layers[%zu] is not a layer of 0..%d", gc->name, i, cap.n_layers - 1);
        cap.attn_layer[cap.n_attn] = (int)l;
        cap.attn[cap.n_attn++] = calloc((size_t)(cap.nh * L * L), sizeof(float));
    }
    avl_hooks hk = {.wants = cap_wants, .at_site = cap_site, .wants_attn = cap_wants_attn, .attn = cap_attn,
                    .user = &cap};
    float *logits = malloc((size_t)(L * V) * sizeof(float));
    avl_run *run;
    if (avl_run_new(m, L, &run)) fail_msg("%s: %s", gc->name, avl_last_error());
    if (avl_run_forward(run, embeds, map->pos, L, L, &hk, logits, L))
        fail_msg("%s: forward: %s", gc->name, avl_last_error());

    avl_st_file *exp;
    snprintf(path, sizeof path, "%s/expected.safetensors", gc->dir);
    if (avl_st_file_open(path, &exp)) fail_msg("%s: %s", gc->name, avl_last_error());
    cmp c = {.cs = gc->name, .backend = gc->backend, .exp = exp, .tol = bf16_path(m->be) ? 3e-2 : 1e-4};
    if (getenv("AVL_TEST_VERBOSE")) print_message("%s on %s, bound %.0e\n", gc->name, avl_model_backend(m), c.tol);

    stage_int(&c, "position_ids", map->pos, 3 * L);
    stage_int(&c, "rope_deltas", &map->rope_delta, 1);
    if (enc.n_audio) stage_f32(&c, "audio_embeds", enc.audio_embeds, enc.n_audio * H, H);
    if (enc.n_video) stage_f32(&c, "video_embeds", enc.video_embeds, enc.n_video * H, H);
    if (enc.n_image) stage_f32(&c, "image_embeds", enc.image_embeds, enc.n_image * H, H);
    for (int l = 0; l <= cap.n_layers; l++) {
        char name[64];
        snprintf(name, sizeof name, "hidden_states.%d", l);
        stage_f32(&c, name, cap.hidden + (int64_t)l * L * H, L * H, H);
    }
    for (int i = 0; i < cap.n_attn; i++) {
        float *a = cap.attn[i];
        for (int64_t h = 1; h < cap.nh; h++) /* head mean in head order */
            for (int64_t j = 0; j < L * L; j++) a[j] += a[h * L * L + j];
        for (int64_t j = 0; j < L * L; j++) a[j] /= (float)cap.nh;
        char name[64];
        snprintf(name, sizeof name, "attn.%d", cap.attn_layer[i]);
        stage_f32(&c, name, a, L * L, L);
    }
    stage_f32(&c, "logits", logits, L * V, V);

    /* Every expected stage of the thinker must have been compared (the encoders' internals,
     * audio.* / video.* / image.*, belong to the encoders' own golden tests). */
    int thinker_stages = 0;
    for (int64_t i = 0; i < avl_st_file_count(exp); i++) {
        avl_tensor_view tv;
        avl_st_file_at(exp, i, &tv);
        if (strncmp(tv.name, "audio.", 6) && strncmp(tv.name, "video.", 6) && strncmp(tv.name, "image.", 6))
            thinker_stages++;
    }
    if (!c.first[0] && thinker_stages != c.compared)
        note_fail(&c, "expected.safetensors has %d thinker stages, avlens made %d of them (an encoder did not run, "
                  "or attn_layers differ from the reference's)", thinker_stages, c.compared);

    avl_st_file_close(exp);
    avl_run_free(run);
    free(logits);
    free(cap.hidden);
    for (int i = 0; i < cap.n_attn; i++) free(cap.attn[i]);
    avl_free(enc.audio_embeds), avl_free(enc.video_embeds), avl_free(enc.image_embeds);
    avl_free(embeds);
    avl_token_map_free(map);
    avl_inputs_free(in);
    avl_model_free(m);
    json_decref(cj);
    if (c.first[0]) fail_msg("%s", c.first);
}

/* ---- discovery ---- */
static bool exists(const char *dir, const char *name)
{
    char p[1300];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static int by_name(const void *a, const void *b) { return strcmp(((const gcase *)a)->name, ((const gcase *)b)->name); }

int main(void)
{
    static gcase found[MAX_CASES], runs[2 * MAX_CASES];
    static struct CMUnitTest tests[2 * MAX_CASES + 1];
    int nf = 0, nt = 0;
    DIR *d = opendir(GOLDEN);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) && nf < MAX_CASES) {
            if (de->d_name[0] == '.') continue;
            gcase *g = &found[nf];
            char dir[1100];
            snprintf(dir, sizeof dir, "%s/%s", GOLDEN, de->d_name);
            snprintf(g->dir, sizeof g->dir, "%s", dir);
            snprintf(g->name, sizeof g->name, "%.255s", de->d_name);
            if (!exists(dir, "case.json")) {
                if (exists(dir, "golden.safetensors")) continue; /* the audio encoder's case */
                snprintf(g->problem, sizeof g->problem, "%s: neither a thinker case (case.json) nor an audio encoder "
                         "case (golden.safetensors)", dir);
            } else {
                const char *need[] = {"inputs.safetensors", "expected.safetensors", "model/config.json"};
                for (int i = 0; i < 3; i++)
                    if (!exists(dir, need[i]) && !g->problem[0])
                        snprintf(g->problem, sizeof g->problem, "%s: case.json but no %s (rerun tools/ref/"
                                 "make_golden.py %.255s)", dir, need[i], de->d_name);
            }
            nf++;
        }
        closedir(d);
    }
    qsort(found, (size_t)nf, sizeof *found, by_name);
    for (int i = 0; i < nf; i++) {
        const char *be[2] = {"ref", "auto"};
        for (int b = 0; b < (found[i].problem[0] ? 1 : 2); b++) {
            runs[nt] = found[i];
            runs[nt].backend = be[b];
            snprintf(runs[nt].test_name, sizeof runs[nt].test_name, "%.255s/%s", found[i].name, be[b]);
            tests[nt] = (struct CMUnitTest){runs[nt].test_name, test_case, NULL, NULL, &runs[nt]};
            nt++;
        }
    }
    if (nt == 0) { /* no golden data is a failure, not a skip */
        snprintf(runs[0].problem, sizeof runs[0].problem, "%s: no golden cases (tools/ref/make_golden.py writes them)",
                 GOLDEN);
        tests[nt++] = (struct CMUnitTest){"no_cases", test_case, NULL, NULL, &runs[0]};
    }
    return _cmocka_run_group_tests("thinker_golden", tests, (size_t)nt, NULL, NULL);
}
