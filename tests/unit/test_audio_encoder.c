/* tests/unit/test_audio_encoder.c: the audio encoder's contract, checked without a reference:
 * output length, chunk independence (one chunk is full attention over it; a long input equals its
 * chunks run one by one), padding frames never read, grouping invariance, argument and checkpoint
 * errors, and allocation failures. Uses the tiny checkpoint of tests/data/golden/audio_tiny
 * (tools/ref/make_audio_golden.py) and the ref GEMM backend. */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avlens/mkmodel.h"
#include "base/internal.h"
#include "model/audio_encoder.h"
#include "model/model_internal.h"

#define MODEL AVL_TEST_DATA "/golden/audio_tiny/model.safetensors"
enum { N_MELS = 8, D = 16, HEADS = 2, FFN = 32, LAYERS = 2, OUT_DIM = 24, MAX_POS = 32 };

/* A model with only the audio tower's config and tensors, the tower not loaded yet. */
static avl_model *tiny_base(int64_t n_window, void (*tweak)(avl_config *))
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
    if (tweak) tweak(&m->cfg);
    if (avl_st_open_dir(MODEL, &m->st) || avl__gemm_backend_select("ref", &m->be)) fail_msg("%s", avl_last_error());
    return m;
}

/* The same with the tower loaded; *rc gets the load status. */
static avl_model *tiny_model(int64_t n_window, void (*tweak)(avl_config *), avl_status *rc)
{
    avl_model *m = tiny_base(n_window, tweak);
    *rc = avl__audio_encoder_load(m, &m->audio);
    return m;
}

static avl_model *model_ok(int64_t n_window)
{
    avl_status rc;
    avl_model *m = tiny_model(n_window, NULL, &rc);
    if (rc) fail_msg("load: %s", avl_last_error());
    return m;
}

/* (N_MELS, ld) features, deterministic. */
static float *features(int64_t ld, unsigned seed)
{
    float *f = malloc((size_t)(N_MELS * ld) * sizeof(float));
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < N_MELS * ld; i++) {
        s = s * 1664525u + 1013904223u;
        f[i] = (float)(s >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
    }
    return f;
}

static float *encode(const avl_model *m, const float *feat, int64_t ld, int64_t n)
{
    int64_t t = avl_audio_tokens_for_frames(n);
    float *out = calloc((size_t)((t > 0 ? t : 1) * OUT_DIM), sizeof(float));
    avl_status rc = avl__audio_encoder_forward(m, m->audio, feat, ld, n, out);
    if (rc) fail_msg("forward of %lld frames: %s", (long long)n, avl_last_error());
    return out;
}

static void expect_close(const float *a, const float *b, int64_t n, double tol, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - (double)b[i]) <= tol))
            fail_msg("%s: element %lld: %.9g vs %.9g", what, (long long)i, a[i], b[i]);
}

/* The number of rows written is avl_audio_tokens_for_frames(n) for every n, and nothing past them
 * is touched. */
static void test_token_count(void **state)
{
    (void)state;
    const int64_t ld = 64;
    float *feat = features(ld, 1);
    for (int64_t nw = 3; nw <= 4; nw++) {
        avl_model *m = model_ok(nw);
        for (int64_t n = 1; n <= ld; n++) {
            int64_t t = avl_audio_tokens_for_frames(n);
            assert_int_equal(t, ((n - 1) / 2 + 1) / 2); /* floor(rows after the conv stem / 2) */
            float *out = malloc((size_t)((t + 2) * OUT_DIM) * sizeof(float));
            for (int64_t i = 0; i < (t + 2) * OUT_DIM; i++) out[i] = NAN;
            assert_int_equal(avl__audio_encoder_forward(m, m->audio, feat, ld, n, out), AVL_OK);
            for (int64_t i = 0; i < t * OUT_DIM; i++)
                if (!isfinite(out[i])) fail_msg("n_window %lld, %lld frames: element %lld not written", (long long)nw,
                                                (long long)n, (long long)i);
            for (int64_t i = t * OUT_DIM; i < (t + 2) * OUT_DIM; i++)
                if (!isnan(out[i])) fail_msg("n_window %lld, %lld frames: wrote past %lld tokens", (long long)nw,
                                             (long long)n, (long long)t);
            free(out);
        }
        avl_model_free(m);
    }
    free(feat);
}

/* One chunk of exactly 2*n_window frames is full attention over it: a window large enough to hold
 * the whole input (one chunk either way) gives the same result. */
static void test_one_chunk_is_full_attention(void **state)
{
    (void)state;
    float *feat = features(8, 2);
    avl_model *a = model_ok(4), *b = model_ok(MAX_POS);
    float *oa = encode(a, feat, 8, 8), *ob = encode(b, feat, 8, 8);
    expect_close(oa, ob, 2 * OUT_DIM, 0.0, "n_window 4 vs 32 on 8 frames");
    free(oa);
    free(ob);
    avl_model_free(a);
    avl_model_free(b);
    free(feat);
}

/* Chunks do not see each other: with an even window (no pooled pair straddles two chunks) an input
 * of k full chunks gives the tokens of its chunks run one at a time; with a ragged tail too. */
static void test_chunks_independent(void **state)
{
    (void)state;
    const int64_t ld = 29, nw = 4, fr = 2 * nw; /* chunks of 8, 8, 8, 5 frames */
    float *feat = features(ld, 3);
    avl_model *m = model_ok(nw);
    float *all = encode(m, feat, ld, ld);
    int64_t tok = 0;
    for (int64_t f0 = 0; f0 < ld; f0 += fr) {
        int64_t len = ld - f0 < fr ? ld - f0 : fr, t = avl_audio_tokens_for_frames(len);
        float *one = encode(m, feat + f0, ld, len);
        char what[64];
        snprintf(what, sizeof what, "chunk at frame %lld", (long long)f0);
        expect_close(all + tok * OUT_DIM, one, t * OUT_DIM, 1e-6, what);
        tok += t;
        free(one);
    }
    assert_int_equal(tok, avl_audio_tokens_for_frames(ld));
    free(all);
    avl_model_free(m);
    free(feat);
}

/* Frames past n_frames are never read: NaN there changes nothing. */
static void test_padding_ignored(void **state)
{
    (void)state;
    const int64_t ld = 40, n = 21;
    float *clean = features(ld, 4), *dirty = features(ld, 4);
    for (int64_t c = 0; c < N_MELS; c++)
        for (int64_t t = n; t < ld; t++) {
            clean[c * ld + t] = 0.0f;
            dirty[c * ld + t] = NAN;
        }
    for (int64_t nw = 3; nw <= 4; nw++) {
        avl_model *m = model_ok(nw);
        float *a = encode(m, clean, ld, n), *b = encode(m, dirty, ld, n);
        expect_close(a, b, avl_audio_tokens_for_frames(n) * OUT_DIM, 0.0, "padding zeros vs NaN");
        free(a);
        free(b);
        avl_model_free(m);
    }
    free(clean);
    free(dirty);
}

/* How many chunks share one pass through the layers (prefill_chunk rows) changes nothing, for an
 * odd window too (groups keep an even number of rows so pooled pairs stay whole). */
static void test_grouping_invariant(void **state)
{
    (void)state;
    const int64_t ld = 45;
    float *feat = features(ld, 5);
    for (int64_t nw = 3; nw <= 4; nw++) {
        avl_model *m = model_ok(nw);
        float *ref = encode(m, feat, ld, ld);
        const int64_t budgets[] = {1, 4, 7, 13};
        for (int i = 0; i < 4; i++) {
            m->prefill_chunk = budgets[i];
            float *o = encode(m, feat, ld, ld);
            char what[64];
            snprintf(what, sizeof what, "n_window %lld, prefill_chunk %lld", (long long)nw, (long long)budgets[i]);
            expect_close(o, ref, avl_audio_tokens_for_frames(ld) * OUT_DIM, 1e-6, what);
            free(o);
        }
        free(ref);
        avl_model_free(m);
    }
    free(feat);
}

static void test_forward_args(void **state)
{
    (void)state;
    avl_model *m = model_ok(4);
    float *feat = features(10, 6), out[4 * OUT_DIM];
    AVL_EXPECT_ERROR(avl__audio_encoder_forward(m, m->audio, feat, 10, 0, out), AVL_E_ARG, "0 valid frames");
    AVL_EXPECT_ERROR(avl__audio_encoder_forward(m, m->audio, feat, 10, 11, out), AVL_E_ARG, "11 valid frames",
                     "stride of 10");
    AVL_EXPECT_ERROR(avl__audio_encoder_forward(m, NULL, feat, 10, 10, out), AVL_E_ARG, "no audio tower");
    AVL_EXPECT_ERROR(avl__audio_encoder_forward(m, m->audio, NULL, 10, 10, out), AVL_E_ARG, "NULL");
    /* 1 or 2 frames make one row after the conv stem, which the pooling drops: no tokens, no error */
    assert_int_equal(avl_audio_tokens_for_frames(2), 0);
    assert_int_equal(avl__audio_encoder_forward(m, m->audio, feat, 10, 2, out), AVL_OK);
    avl_model_free(m);
    free(feat);
}

static void three_layers(avl_config *c) { c->audio.encoder_layers = 3; }
static void wide_ffn(avl_config *c) { c->audio.encoder_ffn_dim = 40; }
static void big_window(avl_config *c) { c->audio.n_window = MAX_POS + 1; }
static void relu(avl_config *c) { snprintf(c->audio.activation_function, AVL_CONFIG_NAME, "relu"); }
static void narrow_llm(avl_config *c) { c->text.hidden_size = 20; }
static void odd_width(avl_config *c) { c->audio.d_model = 15; c->audio.encoder_attention_heads = 1; }
static void prefixed(avl_config *c) { snprintf(c->tensor_prefix, sizeof c->tensor_prefix, "thinker."); }

static void expect_load_error(void (*tweak)(avl_config *), avl_status want, const char *a, const char *b)
{
    avl_status rc;
    avl_model *m = tiny_model(4, tweak, &rc);
    AVL_EXPECT_ERROR(rc, want, a, b);
    assert_null(m->audio);
    avl_model_free(m);
}

static void test_load_errors(void **state)
{
    (void)state;
    expect_load_error(three_layers, AVL_E_NOTFOUND, "audio_tower.layers.2.", "model.safetensors");
    expect_load_error(wide_ffn, AVL_E_SHAPE, "audio_tower.layers.0.fc1.weight", "[40,16]");
    expect_load_error(big_window, AVL_E_CONFIG, "n_window 33", "max_source_positions 32");
    expect_load_error(relu, AVL_E_UNSUPPORTED, "activation_function 'relu'", "audio_config");
    expect_load_error(narrow_llm, AVL_E_CONFIG, "output_dim 24", "hidden_size 20");
    expect_load_error(odd_width, AVL_E_CONFIG, "d_model 15", "even");
    expect_load_error(prefixed, AVL_E_NOTFOUND, "thinker.audio_tower.conv1.weight", "model.safetensors");
}

/* Every allocation of the tower's loading and of a forward pass may fail: the status says so and nothing
 * leaks (the ASan build checks). */
static void test_alloc_failures(void **state)
{
    (void)state;
    const int64_t ld = 21;
    float *feat = features(ld, 7);
    float out[5 * OUT_DIM];
    avl_model *good = model_ok(3);
    float *want = encode(good, feat, ld, ld);
    avl_model_free(good);
    bool done = false;
    for (int64_t k = 1; k < 200 && !done; k++) {
        avl_model *m = tiny_base(3, NULL);
        avl__alloc_fail_after(k);
        avl_status rc = avl__audio_encoder_load(m, &m->audio);
        if (!rc) rc = avl__audio_encoder_forward(m, m->audio, feat, ld, ld, out);
        avl__alloc_fail_after(0);
        if (rc) {
            AVL_EXPECT_ERROR(rc, AVL_E_NOMEM, "");
        } else {
            expect_close(out, want, 5 * OUT_DIM, 0.0, "after injected failures");
            done = true;
        }
        avl_model_free(m);
    }
    assert_true(done);
    free(want);
    free(feat);
}

/* avl_model_load loads the tower of a full checkpoint written by mkmodel (thinker. prefix, and the
 * bare thinker without it), and the encoder runs at its sizes (128 mel bins, n_window 8). */
static void test_model_load(void **state)
{
    (void)state;
    for (int bare = 0; bare < 2; bare++) {
        avl_mkmodel_params p = avl_mkmodel_default_params();
        p.n_window = 8;
        p.thinker_only = bare;
        const char *dir = avl_test_dir(bare ? "audio_encoder_bare" : "audio_encoder_full");
        if (avl_mkmodel_write(&p, dir)) fail_msg("mkmodel: %s", avl_last_error());
        avl_model_params mp = avl_model_default_params();
        mp.backend = "ref";
        avl_model *m;
        if (avl_model_load(dir, &mp, &m)) fail_msg("load: %s", avl_last_error());
        assert_non_null(m->audio);
        const int64_t n = 2 * 2 * p.n_window + 7, ld = n + 3, t = avl_audio_tokens_for_frames(n);
        float *feat = calloc((size_t)(p.mel_bins * ld), sizeof(float));
        for (int64_t i = 0; i < p.mel_bins * ld; i++) feat[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        float *out = malloc((size_t)(t * p.hidden) * sizeof(float));
        assert_int_equal(avl__audio_encoder_forward(m, m->audio, feat, ld, n, out), AVL_OK);
        for (int64_t i = 0; i < t * p.hidden; i++) assert_true(isfinite(out[i]));
        free(feat);
        free(out);
        avl_model_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_count),
        cmocka_unit_test(test_one_chunk_is_full_attention),
        cmocka_unit_test(test_chunks_independent),
        cmocka_unit_test(test_padding_ignored),
        cmocka_unit_test(test_grouping_invariant),
        cmocka_unit_test(test_forward_args),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_model_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
