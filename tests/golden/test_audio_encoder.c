/* tests/golden/test_audio_encoder.c: the audio encoder against the fp32 reference
 * (tools/ref/qwen25_omni_ref.py, audio_encoder) on a tiny checkpoint, stage by stage.
 *
 * Data: tests/data/golden/audio_tiny/ made by tools/ref/make_audio_golden.py: model.safetensors
 * (bf16 audio_tower.* tensors, bare-thinker names) and golden.safetensors (one mel input and, per
 * case, the hidden state after the conv stem and after every layer, and the audio embeddings).
 * Cases: "tail" (n_window 4, 21 frames: a ragged last chunk), "odd" (n_window 3, 23 frames: pooled
 * pairs straddle chunks), "one" (n_window 4, 8 frames: exactly one chunk).
 *
 * Tolerance, as max |c - ref| / max |ref| per stage:
 *   ref backend   1e-4: both sides compute in fp32 from the same bf16 weights; only summation
 *                 order and libm (expf/sinf/erff) differ.
 *   openblas      1e-4: fp32 products (bf16 weights widened exactly), a different summation order.
 *   onednn        3e-2: every GEMM input activation is rounded to bf16 (8 significant bits,
 *                 relative 2^-9 per product) through 2 conv + 6 products per layer, and the error
 *                 compounds through the layer norms. The measured figures are printed.
 */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "model/audio_encoder.h"
#include "model/model_internal.h"

#define DIR AVL_TEST_DATA "/golden/audio_tiny"
enum { N_MELS = 8, D = 16, HEADS = 2, FFN = 32, LAYERS = 2, OUT_DIM = 24, MAX_POS = 32 };

static avl_model *tiny_model(int64_t n_window, const char *backend)
{
    avl_model *m = avl__calloc(1, sizeof *m);
    assert_non_null(m);
    avl_config_defaults(&m->cfg);
    m->cfg.tensor_prefix[0] = '\0';
    avl_audio_config *a = &m->cfg.audio;
    a->num_mel_bins = N_MELS;
    a->d_model = D;
    a->encoder_layers = LAYERS;
    a->encoder_attention_heads = HEADS;
    a->encoder_ffn_dim = FFN;
    a->max_source_positions = MAX_POS;
    a->n_window = n_window;
    a->output_dim = OUT_DIM;
    snprintf(a->activation_function, sizeof a->activation_function, "gelu");
    m->cfg.text.hidden_size = OUT_DIM;
    m->prefill_chunk = 512;
    assert_int_equal(avl_st_open_dir(DIR "/model.safetensors", &m->st), AVL_OK);
    avl_status rc = avl__gemm_backend_select(backend, &m->be);
    if (rc) fail_msg("backend %s: %s", backend, avl_last_error());
    rc = avl__audio_encoder_load(m, &m->audio);
    if (rc) fail_msg("load: %s", avl_last_error());
    return m;
}

/* Stage outputs gathered from the observer: stage s rows at hid[s] (rows, D). */
typedef struct {
    float *hid[LAYERS + 1];
    int64_t rows;
} stages;

static void observe(void *user, int stage, int64_t row0, int64_t rows, int64_t dim, const float *x)
{
    stages *s = user;
    assert_int_equal(dim, D);
    assert_true(stage >= 0 && stage <= LAYERS && row0 + rows <= s->rows);
    memcpy(s->hid[stage] + row0 * D, x, (size_t)(rows * D) * sizeof(float));
}

static const float *golden(avl_st_set *g, const char *name, int64_t rows, int64_t cols)
{
    avl_tensor_view tv;
    if (avl_st_get(g, name, &tv)) fail_msg("golden: %s", avl_last_error());
    assert_int_equal(tv.dtype, AVL_DTYPE_F32);
    if (tv.numel != rows * cols) fail_msg("golden %s: %lld elements, want %lld", name, (long long)tv.numel,
                                          (long long)(rows * cols));
    return tv.data; /* F32 data of the golden file; safetensors pads headers to 8 bytes */
}

static int64_t golden_i64(avl_st_set *g, const char *name)
{
    avl_tensor_view tv;
    if (avl_st_get(g, name, &tv)) fail_msg("golden: %s", avl_last_error());
    int64_t v;
    memcpy(&v, tv.data, sizeof v);
    return v;
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double e = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= e)) e = d; /* NaN propagates */
        if (fabs((double)b[i]) > mx) mx = fabs((double)b[i]);
    }
    return mx > 0 ? e / mx : e;
}

/* Runs one case; returns the worst relative error over its stages; fails at the first stage
 * above tol, naming it. */
static double run_case(const char *name, const char *backend, double tol)
{
    avl_st_set *g;
    assert_int_equal(avl_st_open_dir(DIR "/golden.safetensors", &g), AVL_OK);
    char key[96];
    snprintf(key, sizeof key, "%s.n_window", name);
    int64_t nw = golden_i64(g, key);
    snprintf(key, sizeof key, "%s.n_frames", name);
    int64_t nf = golden_i64(g, key);
    avl_tensor_view ft;
    assert_int_equal(avl_st_get(g, "features", &ft), AVL_OK);
    assert_int_equal(ft.ndim, 2);
    assert_int_equal(ft.shape[0], N_MELS);
    int64_t ld = ft.shape[1];
    float *feat = malloc((size_t)ft.numel * sizeof(float));
    memcpy(feat, ft.data, (size_t)ft.numel * sizeof(float));

    avl_model *m = tiny_model(nw, backend);
    int64_t rows = (nf - 1) / 2 + 1, ntok = avl_audio_tokens_for_frames(nf);
    stages s = {.rows = rows};
    for (int i = 0; i <= LAYERS; i++) s.hid[i] = calloc((size_t)(rows * D), sizeof(float));
    float *out = calloc((size_t)(ntok * OUT_DIM), sizeof(float));
    avl_status rc = avl__audio_encoder_forward_observed(m, m->audio, feat, ld, nf, out, observe, &s);
    if (rc) fail_msg("%s: forward: %s", name, avl_last_error());

    double worst = 0;
    for (int i = 0; i <= LAYERS + 1; i++) {
        const float *want, *got;
        int64_t n;
        if (i <= LAYERS) {
            snprintf(key, sizeof key, "%s.audio.hidden.%d", name, i);
            want = golden(g, key, rows, D);
            got = s.hid[i];
            n = rows * D;
        } else {
            snprintf(key, sizeof key, "%s.audio_embeds", name);
            want = golden(g, key, ntok, OUT_DIM);
            got = out;
            n = ntok * OUT_DIM;
        }
        double e = rel_err(got, want, n);
        if (!(e <= tol)) fail_msg("%s (%s backend): first diverging stage %s: relative error %.3g > %.1g", name,
                                  backend, key, e, tol);
        if (e > worst) worst = e;
    }
    for (int i = 0; i <= LAYERS; i++) free(s.hid[i]);
    free(out);
    free(feat);
    avl_model_free(m);
    avl_st_close(g);
    return worst;
}

static void test_ref_backend(void **state)
{
    (void)state;
    const char *cases[] = {"tail", "odd", "one"};
    for (int i = 0; i < 3; i++) {
        double e = run_case(cases[i], "ref", 1e-4);
        printf("# audio encoder, ref backend, case %s: max relative error %.3g\n", cases[i], e);
    }
}

/* Every other backend that runs here, each with its tolerance (see the top of the file). */
static void test_fast_backends(void **state)
{
    (void)state;
    const struct { const char *name; double tol; } bes[] = {{"openblas", 1e-4}, {"onednn", 3e-2}};
    const char *cases[] = {"tail", "odd", "one"};
    for (int b = 0; b < 2; b++) {
        const avl__gemm_backend *be;
        if (avl__gemm_backend_select(bes[b].name, &be)) {
            printf("# audio encoder: backend %s does not run here: %s\n", bes[b].name, avl_last_error());
            continue;
        }
        for (int i = 0; i < 3; i++) {
            double e = run_case(cases[i], bes[b].name, bes[b].tol);
            printf("# audio encoder, %s backend (%s), case %s: max relative error %.3g\n", bes[b].name,
                   avl__gemm_backend_isa(be), cases[i], e);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_backend),
        cmocka_unit_test(test_fast_backends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
