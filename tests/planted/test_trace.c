/* tests/planted/test_trace.c: naive causal tracing on a tiny thinker with a planted circuit:
 * a head that copies an audio class feature into one chosen video token V*, and a head that
 * reads it from V* into the last position, where lm_head turns it into the answer "A" or "B".
 *
 * Model (H = 128, 2 layers, 4 heads of 32, 2 KV heads, fp32; mkmodel's random weights, then):
 *  - layer 0, head 0 (KV head 0), head dim 31 (a slow rotary pair: angles < 1e-3 here):
 *    query reads QM (set only on V*), key reads KM (set on every audio token): V* attends to
 *    the audio tokens before it. Value dim 31 reads C (the class feature, +-10 on audio tokens),
 *    o_proj writes head 0's dim 31 into C2 only.
 *  - layer 1, head 0: query reads QL (set on the last position), key reads KS (set on V*),
 *    value dim 31 reads C2, o_proj writes it into C3.
 *  - lm_head: the row of "A" reads +20 C3, the row of "B" -20 C3.
 * Clean: class +10, answer A. Corrupted: class -10, answer B. Restoring V*'s ATTN_IN in every
 * layer brings A back (IE_clean near 1); restoring another video token does not. */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_suite.h"

enum { HID = 128, NL = 2, NH = 4, NKV = 2, HD = 32, C = 40, C2 = 41, C3 = 42, QM = 43, KM = 44, QL = 45, KS = 46 };

static avl_model *M;
static avl_tokenizer *TOK;
static avl_token_map *MAP;
static int32_t *IDS, ID_A, ID_B;
static int64_t L, VSTAR, VOTHER;
static char DIR_[512];
static float *CLEAN, *CORR;

static void set_row(float *w, int64_t cols, int64_t row, int col, float v)
{
    for (int64_t c = 0; c < cols; c++) w[row * cols + c] = 0.0f;
    if (col >= 0) w[row * cols + col] = v;
}

static void edit_tensor(const char *name, float *w, const int64_t *shape)
{
    int l;
    char kind[64];
    int64_t j = HD - 1;
    if (!strcmp(name, "lm_head.weight")) {
        set_row(w, shape[1], ID_A, C3, 20.0f);
        set_row(w, shape[1], ID_B, C3, -20.0f);
        return;
    }
    if (sscanf(name, "model.layers.%d.self_attn.%63[^.]", &l, kind) != 2 || !strstr(name, ".weight")) {
        /* the decoder's biases only (the towers have self_attn tensors too): none in planted rows */
        if (!strncmp(name, "model.layers.", 13) && strstr(name, "self_attn") && strstr(name, ".bias")) {
            if (strstr(name, "q_proj"))
                for (int h = 0; h < NH; h++) w[h * HD + j] = 0.0f;
            else if (strstr(name, "k_proj") || strstr(name, "v_proj"))
                for (int h = 0; h < NKV; h++) w[h * HD + j] = 0.0f;
        }
        return;
    }
    if (!strcmp(kind, "q_proj"))
        for (int h = 0; h < NH; h++) set_row(w, shape[1], h * HD + j, h == 0 ? (l == 0 ? QM : QL) : -1, 3.0f);
    else if (!strcmp(kind, "k_proj"))
        for (int h = 0; h < NKV; h++) set_row(w, shape[1], h * HD + j, h == 0 ? (l == 0 ? KM : KS) : -1, 3.0f);
    else if (!strcmp(kind, "v_proj"))
        for (int h = 0; h < NKV; h++) set_row(w, shape[1], h * HD + j, h == 0 ? (l == 0 ? C : C2) : -1, 1.0f);
    else if (!strcmp(kind, "o_proj")) {
        /* o_proj (H, NH*HD): every query head's dim 31 column is cleared; head 0's writes the copy */
        for (int h = 0; h < NH; h++)
            for (int64_t r = 0; r < shape[0]; r++) w[r * shape[1] + h * HD + j] = 0.0f;
        w[(l == 0 ? C2 : C3) * shape[1] + 0 * HD + j] = 1.0f;
    }
}

static int setup(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("planted_trace");
    snprintf(DIR_, sizeof DIR_, "%s", dir);
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.seed = 5;
    p.hidden = HID;
    p.layers = NL;
    p.heads = NH;
    p.kv_heads = NKV;
    p.dtype = AVL_DTYPE_F32;
    p.thinker_only = true;
    if (avl_mkmodel_write(&p, dir)) return -1;
    if (avl_tokenizer_load(dir, &TOK)) return -1;
    int32_t ids[2];
    if (avl_word_ids(TOK, "A", ids)) return -1;
    ID_A = ids[0];
    if (avl_word_ids(TOK, "B", ids)) return -1;
    ID_B = ids[0];
    char path[600], tmp[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s/edited.tmp", dir);
    avl_st_set *s;
    avl_st_writer *w;
    if (avl_st_open_dir(path, &s) || avl_st_writer_new(&w)) return -1;
    for (int64_t i = 0; i < avl_st_count(s); i++) {
        avl_tensor_view tv;
        if (avl_st_at(s, i, &tv)) return -1;
        float *x = malloc((size_t)tv.numel * sizeof *x + 4);
        memcpy(x, tv.data, (size_t)tv.numel * sizeof *x);
        edit_tensor(tv.name, x, tv.shape);
        if (avl_st_writer_add(w, tv.name, tv.dtype, tv.ndim, tv.shape, x)) return -1;
        free(x);
    }
    if (avl_st_writer_save(w, tmp)) return -1;
    avl_st_writer_free(w);
    avl_st_close(s);
    if (rename(tmp, path)) return -1;
    avl_model_params mp = avl_model_default_params();
    if (avl_model_load(dir, &mp, &M)) return -1;

    /* the sequence of the sinks test: 2 chunks of (8 video, 50 audio) tokens between text */
    avl_seq_params sp = avl_model_seq_params(M);
    int32_t chat[9] = {40, 41, 42, sp.vision_start_token_id, sp.video_token_id, sp.vision_end_token_id, 43, 44, 45};
    avl_media_shape ms = {0};
    ms.n_videos = 1;
    ms.video_grid_thw[0][0] = 4;
    ms.video_grid_thw[0][1] = 4;
    ms.video_grid_thw[0][2] = 4;
    ms.video_second_per_grid[0] = 1.0;
    ms.n_audios = 1;
    ms.audio_feature_len[0] = 400;
    if (avl_seq_expand(&sp, chat, 9, &ms, true, &IDS, &L) || avl_seq_positions(&sp, IDS, L, &ms, true, &MAP)) return -1;
    CLEAN = malloc((size_t)(L * HID) * sizeof(float));
    CORR = malloc((size_t)(L * HID) * sizeof(float));
    if (avl_run_embed_tokens(M, IDS, L, CLEAN)) return -1;
    VSTAR = VOTHER = -1;
    for (int64_t i = 0; i < L; i++) {
        float *e = CLEAN + i * HID;
        for (int k = 0; k < HID; k++) e[k] *= 50.0f;
        for (int k = C; k <= KS; k++) e[k] = 0.0f;
        const avl_token_info *t = &MAP->tok[i];
        if (t->kind == AVL_TOK_AUDIO) {
            e[C] = 10.0f;
            e[KM] = 20.0f;
        }
        if (t->kind == AVL_TOK_VIDEO && t->chunk == 1 && VSTAR < 0) {
            VSTAR = i;
            e[QM] = 20.0f;
            e[KS] = 20.0f;
        } else if (t->kind == AVL_TOK_VIDEO && t->chunk == 1 && VOTHER < 0) {
            VOTHER = i;
        }
        if (i == L - 1) e[QL] = 20.0f;
    }
    memcpy(CORR, CLEAN, (size_t)(L * HID) * sizeof(float));
    for (int64_t i = 0; i < L; i++)
        if (MAP->tok[i].kind == AVL_TOK_AUDIO) CORR[i * HID + C] = -10.0f;
    return VSTAR > 0 && VOTHER > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    avl_model_free(M);
    avl_tokenizer_free(TOK);
    avl_token_map_free(MAP);
    avl_free(IDS);
    free(CLEAN);
    free(CORR);
    return 0;
}

static void trace(int64_t pos, avl_trace_result *r)
{
    avl_tokset set;
    assert_int_equal(avl_tokset_from_list(&pos, 1, &set), AVL_OK);
    avl_trace_params tp = avl_trace_default_params(M);
    tp.gen.max_new_tokens = 1; /* the answer is one letter */
    assert_int_equal(tp.site, AVL_SITE_ATTN_IN);
    assert_int_equal(tp.layer1, NL);
    assert_int_equal(avl_trace_run(M, TOK, MAP, CLEAN, CORR, &set, &tp, r), AVL_OK);
    avl_tokset_free(&set);
}

static void test_restore_the_carrier(void **state)
{
    (void)state;
    avl_trace_result r;
    trace(VSTAR, &r);
    assert_int_equal(r.clean.ids[0], ID_A);
    assert_int_equal(r.corr.ids[0], ID_B);
    assert_int_equal(r.rest.ids[0], ID_A);
    assert_int_equal(r.n_patched, 1);
    if (!(r.p_clean_c > 0.9 && r.p_corr_c < 0.1 && r.ie_clean > 0.8 && r.ie_corr > 0.8))
        fail_msg("P_clean(c) %g P_corr(c) %g IE_clean %g IE_corr %g", r.p_clean_c, r.p_corr_c, r.ie_clean, r.ie_corr);
    assert_true(fabs(r.ie_clean - (r.p_rest_c - r.p_corr_c)) < 1e-15);
    assert_true(fabs(r.ie_corr - (r.p_corr_r - r.p_rest_r)) < 1e-15);
    avl_trace_result_clear(&r);
}

static void test_restore_a_bystander(void **state)
{
    (void)state;
    avl_trace_result r;
    trace(VOTHER, &r);
    assert_int_equal(r.rest.ids[0], ID_B);
    if (!(fabs(r.ie_clean) < 0.05 && fabs(r.ie_corr) < 0.05)) fail_msg("IE_clean %g IE_corr %g", r.ie_clean, r.ie_corr);
    avl_trace_result_clear(&r);
}

/* The exact shortcuts on the planted circuit: the standard suite (stand-in sinks: this model
 * has no sink dimensions) with and without them, bit for bit on the ref backend, before
 * attention in every layer and over windows of one layer, and after attention. */
static void test_shortcuts_equal_naive(void **state)
{
    (void)state;
    avl_model *ref;
    avl_model_params mp = avl_model_default_params();
    mp.backend = "ref";
    mp.threads = 1;
    assert_int_equal(avl_model_load(DIR_, &mp, &ref), AVL_OK);
    trace_suite s = {.m = ref, .tok = TOK, .map = MAP, .clean = CLEAN, .corr = CORR, .patched = AVL_TOK_VIDEO,
                     .max_new_tokens = 1};
    s.sp = (avl_sink_params){.n_dims = 1, .dims = {0}, .tau = 1e9};
    trace_suite_check(&s, AVL_SITE_ATTN_IN, 0);
    s.few = true;
    trace_suite_check(&s, AVL_SITE_ATTN_IN, 1);
    trace_suite_check(&s, AVL_SITE_ATTN_OUT, 0);
    assert_int_equal(s.n_restored, 14 + 4 * 3 + 4);
    /* the carrier restored with the shortcuts brings the answer back, as it does naively */
    avl_tokset set;
    assert_int_equal(avl_tokset_from_list(&VSTAR, 1, &set), AVL_OK);
    avl_trace_params tp = avl_trace_default_params(ref);
    tp.gen.max_new_tokens = 1;
    avl_trace_result r;
    assert_int_equal(avl_trace_run(ref, TOK, MAP, CLEAN, CORR, &set, &tp, &r), AVL_OK);
    assert_int_equal(r.rest.ids[0], ID_A);
    assert_int_equal(r.n_computed, L - VSTAR - 1);
    avl_trace_result_clear(&r);
    avl_tokset_free(&set);
    avl_model_free(ref);
}

/* The bottom-up sweep (App. B.1.1): every video token restored alone; the carrier V* ranks
 * first with IE near 1, every other token near 0; each run equals the single-token trace. */
static int64_t PROGRESS_DONE, PROGRESS_TOTAL;

static void on_progress(void *user, int64_t done, int64_t total)
{
    (void)user;
    assert_int_equal(done, PROGRESS_DONE + 1);
    PROGRESS_DONE = done;
    PROGRESS_TOTAL = total;
}

static void test_sweep_ranks_the_carrier_first(void **state)
{
    (void)state;
    avl_tokset video;
    assert_int_equal(avl_tokset_of_kind(MAP, AVL_TOK_VIDEO, &video), AVL_OK);
    assert_true(video.n >= 8);
    avl_trace_params tp = avl_trace_default_params(M);
    tp.gen.max_new_tokens = 1;
    avl_tracer *t;
    assert_int_equal(avl_tracer_new(M, TOK, MAP, CLEAN, CORR, &video, &tp, NULL, &t), AVL_OK);
    avl_sweep_token *sw = calloc((size_t)video.n, sizeof *sw);
    PROGRESS_DONE = 0;
    assert_int_equal(avl_tracer_sweep(t, &video, 0, NL, 4, on_progress, NULL, sw), AVL_OK);
    assert_int_equal(PROGRESS_DONE, video.n);
    assert_int_equal(PROGRESS_TOTAL, video.n);
    double *ie = malloc((size_t)video.n * sizeof *ie), *ic = malloc((size_t)video.n * sizeof *ic);
    int64_t *order = malloc((size_t)video.n * sizeof *order);
    for (int64_t i = 0; i < video.n; i++) {
        assert_int_equal(sw[i].pos, video.pos[i]);
        ie[i] = sw[i].ie_clean;
        ic[i] = sw[i].ie_corr;
    }
    assert_int_equal(avl_sweep_rank(ie, ic, video.n, order), AVL_OK);
    assert_int_equal(sw[order[0]].pos, VSTAR);
    if (!(sw[order[0]].ie_clean > 0.8 && sw[order[0]].ie_corr > 0.8))
        fail_msg("carrier IE_clean %g IE_corr %g", sw[order[0]].ie_clean, sw[order[0]].ie_corr);
    for (int64_t r = 1; r < video.n; r++)
        if (!(fabs(sw[order[r]].ie_clean) < 0.05 && fabs(sw[order[r]].ie_corr) < 0.05))
            fail_msg("token %lld: IE_clean %g IE_corr %g", (long long)sw[order[r]].pos, sw[order[r]].ie_clean,
                     sw[order[r]].ie_corr);
    /* the sweep's run of V* is the single-token trace */
    avl_trace_result one;
    trace(VSTAR, &one);
    for (int64_t i = 0; i < video.n; i++)
        if (sw[i].pos == VSTAR) assert_true(fabs(sw[i].ie_clean - one.ie_clean) < 1e-6);
    avl_trace_result_clear(&one);
    /* a token outside the patchable set is an error naming the sweep */
    int64_t text = 0;
    avl_tokset bad = {.pos = &text, .n = 1};
    AVL_EXPECT_ERROR(avl_tracer_sweep(t, &bad, 0, NL, 1, NULL, NULL, sw), AVL_E_ARG, "sweep");
    int64_t two[2] = {0, VOTHER};
    avl_tokset bad2 = {.pos = two, .n = 2};
    AVL_EXPECT_ERROR(avl_tracer_sweep(t, &bad2, 0, NL, 4, NULL, NULL, sw), AVL_E_ARG, "sweep");
    free(ie);
    free(ic);
    free(order);
    free(sw);
    avl_tracer_free(t);
    avl_tokset_free(&video);
}

/* The batched sweep equals one run at a time bit for bit on the ref backend (batches of 5 over
 * the video tokens and the last position, with a 2-step answer), and windows (no batching)
 * equal avl_tracer_restore. */
static void test_sweep_batched_equals_single(void **state)
{
    (void)state;
    avl_model *ref;
    avl_model_params mp = avl_model_default_params();
    mp.backend = "ref";
    mp.threads = 1;
    assert_int_equal(avl_model_load(DIR_, &mp, &ref), AVL_OK);
    avl_tokset video, set;
    assert_int_equal(avl_tokset_of_kind(MAP, AVL_TOK_VIDEO, &video), AVL_OK);
    int64_t *pos = malloc((size_t)(video.n + 1) * sizeof *pos);
    memcpy(pos, video.pos, (size_t)video.n * sizeof *pos);
    pos[video.n] = L - 1; /* the last position: never batched */
    assert_int_equal(avl_tokset_from_list(pos, video.n + 1, &set), AVL_OK);
    avl_trace_params tp = avl_trace_default_params(ref);
    tp.gen.max_new_tokens = 2;
    avl_tracer *t;
    assert_int_equal(avl_tracer_new(ref, TOK, MAP, CLEAN, CORR, NULL, &tp, NULL, &t), AVL_OK);
    int64_t n = set.n;
    avl_sweep_token *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
    assert_int_equal(avl_tracer_sweep(t, &set, 0, NL, 1, NULL, NULL, a), AVL_OK);
    assert_int_equal(avl_tracer_sweep(t, &set, 0, NL, 5, NULL, NULL, b), AVL_OK);
    for (int64_t i = 0; i < n; i++) {
        assert_int_equal(a[i].pos, set.pos[i]);
        assert_int_equal(b[i].pos, set.pos[i]);
        assert_int_equal(a[i].n_computed, b[i].n_computed);
        if (a[i].ie_clean != b[i].ie_clean || a[i].ie_corr != b[i].ie_corr || a[i].p_rest_c != b[i].p_rest_c ||
            a[i].p_rest_r != b[i].p_rest_r)
            fail_msg("token %lld: single %.17g %.17g, batched %.17g %.17g", (long long)a[i].pos, a[i].ie_clean, a[i].ie_corr,
                     b[i].ie_clean, b[i].ie_corr);
    }
    /* a one-layer window is not batched: the same as avl_tracer_restore */
    assert_int_equal(avl_tracer_sweep(t, &video, 1, NL, 5, NULL, NULL, b), AVL_OK);
    avl_tokset one = {.pos = &VSTAR, .n = 1};
    avl_trace_result r;
    assert_int_equal(avl_tracer_restore(t, &one, 1, NL, &r), AVL_OK);
    for (int64_t i = 0; i < video.n; i++)
        if (b[i].pos == VSTAR) assert_true(b[i].ie_clean == r.ie_clean);
    avl_trace_result_clear(&r);
    free(a);
    free(b);
    free(pos);
    avl_tokset_free(&set);
    avl_tokset_free(&video);
    avl_tracer_free(t);
    avl_model_free(ref);
}

/* ranking: descending, ties by the second key, then by index; NaN last */
static void test_sweep_rank_order(void **state)
{
    (void)state;
    double ie[6] = {0.1, NAN, 0.5, 0.1, 0.1, -0.2}, tie[6] = {0.0, 1.0, 0.0, 0.3, 0.0, 0.0};
    int64_t order[6];
    assert_int_equal(avl_sweep_rank(ie, tie, 6, order), AVL_OK);
    const int64_t want[6] = {2, 3, 0, 4, 5, 1};
    for (int i = 0; i < 6; i++) assert_int_equal(order[i], want[i]);
    assert_int_equal(avl_sweep_rank(ie, NULL, 6, order), AVL_OK);
    const int64_t want2[6] = {2, 0, 3, 4, 5, 1};
    for (int i = 0; i < 6; i++) assert_int_equal(order[i], want2[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_restore_the_carrier), cmocka_unit_test(test_restore_a_bystander),
                                       cmocka_unit_test(test_shortcuts_equal_naive),
                                       cmocka_unit_test(test_sweep_ranks_the_carrier_first),
                                       cmocka_unit_test(test_sweep_batched_equals_single),
                                       cmocka_unit_test(test_sweep_rank_order)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
