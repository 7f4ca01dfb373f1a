/* tests/unit/test_interp.c: plans at the hook level (attention edits worked out by hand, patch
 * and capture bookkeeping, argument errors, allocation failures), token sets and input
 * corruption. */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

static avl_model *M;
static avl_token_map *MAP; /* 8 text positions */

static int setup(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("interp_unit");
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.thinker_only = true;
    p.dtype = AVL_DTYPE_F32;
    if (avl_mkmodel_write(&p, dir)) return -1;
    avl_model_params mp = avl_model_default_params();
    if (avl_model_load(dir, &mp, &M)) return -1;
    avl_seq_params sp = avl_model_seq_params(M);
    int32_t ids[8] = {10, 11, 12, 13, 14, 15, 16, 17};
    avl_media_shape ms = {0};
    return avl_seq_positions(&sp, ids, 8, &ms, false, &MAP) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    avl_token_map_free(MAP);
    avl_model_free(M);
    return 0;
}

/* scores of queries 5 and 6 over 8 keys (masked after the query) and the kernel's softmax */
static void rows(float *s, float *p)
{
    const float base[8] = {1.0f, -2.0f, 0.5f, 3.0f, -0.25f, 2.0f, 0.75f, 0.0f};
    for (int r = 0; r < 2; r++) {
        int q = 5 + r;
        double z = 0, mx = -INFINITY;
        for (int j = 0; j < 8; j++) {
            s[r * 8 + j] = j <= q ? base[j] : -INFINITY;
            if (j <= q && base[j] > mx) mx = base[j];
        }
        for (int j = 0; j <= q; j++) z += exp(base[j] - mx);
        for (int j = 0; j < 8; j++) p[r * 8 + j] = j <= q ? (float)(exp(base[j] - mx) / z) : 0.0f;
    }
}

static void softmax_ref(const double *a, int n, double *out)
{
    double mx = -INFINITY, z = 0;
    for (int j = 0; j < n; j++)
        if (a[j] > mx) mx = a[j];
    for (int j = 0; j < n; j++) z += isinf(a[j]) ? 0 : exp(a[j] - mx);
    for (int j = 0; j < n; j++) out[j] = isinf(a[j]) ? 0 : exp(a[j] - mx) / z;
}

static void test_pre_softmax_edit(void **state)
{
    (void)state;
    avl_plan *p;
    assert_int_equal(avl_plan_new(M, MAP, &p), AVL_OK);
    avl_tokset up, down, q6;
    int64_t k1 = 1, k3 = 3, k7 = 7, q = 6;
    int64_t ks[2] = {k1, k7};
    assert_int_equal(avl_tokset_from_list(ks, 2, &up), AVL_OK); /* key 7 is masked for both rows */
    assert_int_equal(avl_tokset_from_list(&k3, 1, &down), AVL_OK);
    assert_int_equal(avl_tokset_from_list(&q, 1, &q6), AVL_OK);
    int64_t head1 = 1;
    avl_attn_edit e1 = {.kind = AVL_EDIT_PRE_ABS, .c = 0.5, .layer0 = 0, .layer1 = 1, .heads = &head1, .n_heads = 1,
                        .queries = &q6, .queries_from = 100, .keys = &up};
    avl_attn_edit e2 = e1;
    e2.c = -0.6;
    e2.keys = &down;
    assert_int_equal(avl_plan_edit_attn(p, &e1), AVL_OK);
    assert_int_equal(avl_plan_edit_attn(p, &e2), AVL_OK);
    const avl_hooks *h = avl_plan_hooks(p);
    assert_non_null(h);
    assert_false(h->wants_attn(h->user, 1));
    assert_true(h->wants_attn(h->user, 0));
    float s[16], pr[16], orig[16];
    rows(s, pr);
    memcpy(orig, pr, sizeof pr);
    h->attn(h->user, 0, 1, 5, 2, 8, pr, s);
    assert_memory_equal(pr, orig, 8 * sizeof(float)); /* query 5 is not in the set */
    double a[8], want[8];
    for (int j = 0; j < 8; j++) a[j] = s[8 + j];
    a[1] = a[1] + 0.5 * fabs(a[1]); /* -2 -> -1 */
    a[3] = a[3] - 0.6 * fabs(a[3]); /* 3 -> 1.2 */
    softmax_ref(a, 8, want);
    for (int j = 0; j < 8; j++)
        if (fabs(pr[8 + j] - want[j]) > 1e-6) fail_msg("key %d: %g, want %g", j, pr[8 + j], want[j]);
    assert_true(pr[15] == 0.0f); /* masked stays masked */
    /* another head: untouched; a generated query (>= queries_from): edited */
    rows(s, pr);
    h->attn(h->user, 0, 0, 5, 2, 8, pr, s);
    assert_memory_equal(pr, orig, sizeof orig);
    float s1[9], p1[9];
    for (int j = 0; j < 9; j++) s1[j] = j < 8 ? s[8 + j] : 0.5f;
    h->attn(h->user, 0, 1, 100, 1, 9, p1, s1);
    double b[9], wb[9];
    for (int j = 0; j < 9; j++) b[j] = s1[j];
    b[1] = -1.0;
    b[3] = 1.2;
    softmax_ref(b, 9, wb);
    for (int j = 0; j < 9; j++) assert_true(fabs(p1[j] - wb[j]) < 1e-6);
    avl_tokset_free(&up);
    avl_tokset_free(&down);
    avl_tokset_free(&q6);
    avl_plan_free(p);
}

static void test_post_softmax_edits(void **state)
{
    (void)state;
    int64_t k0 = 0;
    avl_tokset keys;
    assert_int_equal(avl_tokset_from_list(&k0, 1, &keys), AVL_OK);
    for (int renorm = 0; renorm < 2; renorm++) {
        avl_plan *p;
        assert_int_equal(avl_plan_new(M, MAP, &p), AVL_OK);
        avl_attn_edit e = {.kind = renorm ? AVL_EDIT_POST_RENORM : AVL_EDIT_POST_SCALE, .c = renorm ? 0.0 : 2.0,
                           .layer0 = 0, .layer1 = 2, .queries_from = -1, .keys = &keys};
        assert_int_equal(avl_plan_edit_attn(p, &e), AVL_OK);
        const avl_hooks *h = avl_plan_hooks(p);
        float s[16], pr[16], orig[16];
        rows(s, pr);
        memcpy(orig, pr, sizeof pr);
        h->attn(h->user, 1, 3, 5, 2, 8, pr, s);
        for (int r = 0; r < 2; r++) {
            if (!renorm) {
                assert_true(pr[r * 8] == 2.0f * orig[r * 8]);
                assert_memory_equal(pr + r * 8 + 1, orig + r * 8 + 1, 7 * sizeof(float));
            } else {
                double sum = 0;
                assert_true(pr[r * 8] == 0.0f);
                for (int j = 0; j < 8; j++) sum += pr[r * 8 + j];
                assert_true(fabs(sum - 1.0) < 1e-6);
                assert_true(fabs(pr[r * 8 + 2] / orig[r * 8 + 2] - 1.0 / (1.0 - orig[r * 8])) < 1e-5);
            }
        }
        avl_plan_free(p);
    }
    avl_tokset_free(&keys);
}

static void test_plan_errors(void **state)
{
    (void)state;
    avl_plan *p, *q;
    avl_capture *c;
    assert_int_equal(avl_plan_new(M, MAP, &p), AVL_OK);
    assert_int_equal(avl_plan_new(M, MAP, &q), AVL_OK);
    AVL_EXPECT_ERROR(avl_plan_capture(p, AVL_SITE_RESID, 0, 9, NULL, &c), AVL_E_ARG, "layers [0, 9)");
    AVL_EXPECT_ERROR(avl_plan_capture(p, AVL_SITE_FINAL, 0, 1, NULL, &c), AVL_E_ARG, "FINAL");
    int64_t far = 8, two = 2, three = 3;
    avl_tokset bad, s2, s3;
    assert_int_equal(avl_tokset_from_list(&far, 1, &bad), AVL_OK);
    assert_int_equal(avl_tokset_from_list(&two, 1, &s2), AVL_OK);
    assert_int_equal(avl_tokset_from_list(&three, 1, &s3), AVL_OK);
    AVL_EXPECT_ERROR(avl_plan_capture(p, AVL_SITE_RESID, 0, 1, &bad, &c), AVL_E_ARG, "position 8");
    assert_int_equal(avl_plan_capture(p, AVL_SITE_ATTN_IN, 0, 1, &s2, &c), AVL_OK);
    AVL_EXPECT_ERROR(avl_plan_patch(q, AVL_SITE_ATTN_IN, 0, 1, &s3, c), AVL_E_ARG, "position 3", "source");
    AVL_EXPECT_ERROR(avl_plan_patch(q, AVL_SITE_ATTN_IN, 0, 2, &s2, c), AVL_E_ARG, "holds [0, 1)");
    AVL_EXPECT_ERROR(avl_plan_patch(q, AVL_SITE_MLP_OUT, 0, 1, &s2, c), AVL_E_ARG, "same site");
    int64_t h9 = 9;
    avl_attn_edit e = {.kind = AVL_EDIT_PRE_ABS, .layer0 = 0, .layer1 = 1, .heads = &h9, .n_heads = 1, .keys = &s2};
    AVL_EXPECT_ERROR(avl_plan_edit_attn(q, &e), AVL_E_ARG, "head 9");
    e.heads = NULL;
    e.keys = NULL;
    AVL_EXPECT_ERROR(avl_plan_edit_attn(q, &e), AVL_E_ARG, "key");
    assert_null(avl_plan_hooks(q));
    /* FINAL capture: layer n_layers */
    assert_int_equal(avl_plan_capture(p, AVL_SITE_FINAL, 2, 3, NULL, &c), AVL_OK);
    assert_non_null(avl_capture_layer(c, 2));
    assert_null(avl_capture_layer(c, 1));
    avl_tokset_free(&bad);
    avl_tokset_free(&s2);
    avl_tokset_free(&s3);
    avl_plan_free(p);
    avl_plan_free(q);
}

static void test_plan_alloc_failures(void **state)
{
    (void)state;
    int64_t ks[3] = {1, 2, 5};
    for (int64_t n = 1; n < 200; n++) {
        avl_plan *p = NULL;
        avl_tokset set = {0};
        avl_capture *c, *c2;
        avl_received *rx;
        avl__alloc_fail_after(n);
        avl_status rc = avl_tokset_from_list(ks, 3, &set);
        if (!rc) rc = avl_plan_new(M, MAP, &p);
        if (!rc) rc = avl_plan_capture(p, AVL_SITE_RESID, 0, 2, &set, &c);
        if (!rc) rc = avl_plan_capture(p, AVL_SITE_ATTN_IN, 0, 2, NULL, &c2);
        if (!rc) rc = avl_plan_patch(p, AVL_SITE_RESID, 0, 1, &set, c);
        if (!rc) rc = avl_plan_observe_received(p, 0, 2, &rx);
        avl_attn_edit e = {.kind = AVL_EDIT_PRE_ABS, .layer0 = 0, .layer1 = 1, .queries = &set, .keys = &set};
        if (!rc) rc = avl_plan_edit_attn(p, &e);
        avl__alloc_fail_after(0);
        avl_plan_free(p);
        avl_tokset_free(&set);
        if (rc == AVL_OK) return;
        assert_int_equal(rc, AVL_E_NOMEM);
    }
    fail_msg("never succeeded");
}

static void test_toksets(void **state)
{
    (void)state;
    int64_t l[6] = {5, 1, 5, 3, 1, 0};
    avl_tokset s;
    assert_int_equal(avl_tokset_from_list(l, 6, &s), AVL_OK);
    assert_int_equal(s.n, 4);
    int64_t want[4] = {0, 1, 3, 5};
    assert_memory_equal(s.pos, want, sizeof want);
    assert_true(avl_tokset_contains(&s, 3));
    assert_false(avl_tokset_contains(&s, 4));
    avl_tokset_free(&s);
    avl_tokset_free(&s);
    int64_t neg = -1;
    AVL_EXPECT_ERROR(avl_tokset_from_list(&neg, 1, &s), AVL_E_ARG, "negative");
    assert_int_equal(avl_tokset_of_kind(MAP, AVL_TOK_TEXT, &s), AVL_OK);
    assert_int_equal(s.n, 8);
    avl_tokset_free(&s);
}

static void test_corrupt_audio(void **state)
{
    (void)state;
    /* the Whisper log-mel of silence, computed by the front end itself */
    avl_mel_params mp = avl_mel_default_params();
    mp.pad_to = 0;
    float *pcm = calloc(8000, sizeof *pcm), *mel;
    int64_t frames;
    assert_int_equal(avl_log_mel(pcm, 8000, &mp, &mel, NULL, &frames), AVL_OK);
    float buf[64];
    avl_corruption z = {.kind = AVL_CORRUPT_ZERO};
    assert_int_equal(avl_corrupt_audio_features(buf, 64, &z), AVL_OK);
    for (int64_t i = 0; i < (int64_t)mp.n_mels * frames; i++) assert_true(mel[i] == buf[0]);
    assert_true(buf[63] == -1.5f);
    avl_media_buf_free(mel);
    free(pcm);
    /* noise: seeded, with the asked spread */
    float *a = calloc(100000, sizeof *a), *b = calloc(100000, sizeof *b);
    avl_corruption n = {.kind = AVL_CORRUPT_NOISE, .std = 0.5, .seed = 3};
    assert_int_equal(avl_corrupt_audio_features(a, 100000, &n), AVL_OK);
    assert_int_equal(avl_corrupt_audio_features(b, 100000, &n), AVL_OK);
    assert_memory_equal(a, b, 100000 * sizeof *a);
    double s = 0, ss = 0;
    for (int i = 0; i < 100000; i++) {
        s += a[i];
        ss += (double)a[i] * a[i];
    }
    assert_true(fabs(s / 1e5) < 0.01);
    assert_true(fabs(sqrt(ss / 1e5) - 0.5) < 0.01);
    n.std = -1;
    AVL_EXPECT_ERROR(avl_corrupt_audio_features(a, 10, &n), AVL_E_ARG, "std");
    avl_corruption mean = {.kind = AVL_CORRUPT_MEAN};
    AVL_EXPECT_ERROR(avl_corrupt_audio_features(a, 10, &mean), AVL_E_ARG, "input_features");
    free(a);
    free(b);
}

static void test_corrupt_video(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        uint8_t *black = calloc(2 * 56 * 28 * 3, 1);
        float want[8 * AVL_PATCH_DIM], got[8 * AVL_PATCH_DIM];
        int64_t grid[3];
        assert_int_equal(avl_patchify(black, 2, 56, 28, (avl_norm_mode)mode, want, grid), AVL_OK);
        for (int i = 0; i < 8 * AVL_PATCH_DIM; i++) got[i] = 7.0f;
        avl_corruption z = {.kind = AVL_CORRUPT_ZERO, .norm = (avl_norm_mode)mode};
        assert_int_equal(avl_corrupt_video_pixels(got, 8, AVL_PATCH_DIM, &z), AVL_OK);
        assert_memory_equal(got, want, sizeof want);
        free(black);
    }
    float x[4];
    avl_corruption z = {.kind = AVL_CORRUPT_ZERO};
    AVL_EXPECT_ERROR(avl_corrupt_video_pixels(x, 1, 4, &z), AVL_E_ARG, "3 channels");
}

static void test_corrupt_mean(void **state)
{
    (void)state;
    avl_token_info tok[4] = {{.kind = AVL_TOK_TEXT}, {.kind = AVL_TOK_AUDIO}, {.kind = AVL_TOK_TEXT}, {.kind = AVL_TOK_AUDIO}};
    avl_token_map map = {.n = 4, .tok = tok};
    float e[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(avl_corrupt_mean_embeds(e, 2, &map, AVL_TOK_AUDIO), AVL_OK);
    float want[8] = {1, 2, 5, 6, 5, 6, 5, 6};
    assert_memory_equal(e, want, sizeof want);
    assert_int_equal(avl_corrupt_mean_embeds(e, 2, &map, AVL_TOK_VIDEO), AVL_OK);
    assert_memory_equal(e, want, sizeof want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pre_softmax_edit),   cmocka_unit_test(test_post_softmax_edits),
        cmocka_unit_test(test_plan_errors),        cmocka_unit_test(test_plan_alloc_failures),
        cmocka_unit_test(test_toksets),            cmocka_unit_test(test_corrupt_audio),
        cmocka_unit_test(test_corrupt_video),      cmocka_unit_test(test_corrupt_mean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
