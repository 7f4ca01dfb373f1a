/* tests/unit/test_inputs.c: avl_inputs_load, the processor's tensors from a .safetensors file.
 *
 * A complete valid file (ids, mask, two audios with a feature mask, two videos with seconds per
 * grid, one image) is read back field by field; then each error is made by replacing or
 * dropping one tensor of it, and the detail must name the file, the tensor and the problem.
 * Last, every allocation of a load fails in turn (AVL_E_NOMEM each time, nothing leaks under
 * ASan) until the load succeeds. The config is mkmodel's default: vocabulary from its
 * tokenizer, 128 mel bins, patches of 3*2*14*14 = 1176, merge size 2.
 */
#include "avl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

enum { L = 7, NA = 2, MEL = 128, T = 10, PD = 1176, NV = 2, VP = 2 * 2 * 2 + 1 * 2 * 4, IP = 1 * 2 * 2 };

typedef struct {
    const char *name;
    avl_dtype dt;
    int nd;
    int64_t sh[4];
    const void *data;
} tdesc;

static avl_config C;
static char g_path[4200];
static int64_t g_ids[L] = {1, 2, 3, 4, 5, 6, 7};
static int64_t g_ones[L] = {1, 1, 1, 1, 1, 1, 1};
static int64_t g_fmask[NA * T];
static int64_t g_vgrid[NV * 3] = {2, 2, 2, 1, 2, 4};
static int64_t g_igrid[3] = {1, 2, 2};
static float g_spg[NV] = {2.0f, 0.5f};
static uint16_t *g_feat, *g_vpix, *g_ipix; /* BF16, as make_tiny.py writes them */
static float *g_zeros;                     /* big enough for any replacement below */

static int setup(void **state)
{
    (void)state;
    avl_mkmodel_params p = avl_mkmodel_default_params();
    if (avl_mkmodel_config(&p, &C)) return -1;
    for (int a = 0; a < NA; a++)
        for (int j = 0; j < T; j++) g_fmask[a * T + j] = j < (a ? 4 : T);
    g_feat = malloc(sizeof(uint16_t) * NA * MEL * T);
    g_vpix = malloc(sizeof(uint16_t) * VP * PD);
    g_ipix = malloc(sizeof(uint16_t) * IP * PD);
    g_zeros = calloc(64 * PD, sizeof(float));
    for (int i = 0; i < NA * MEL * T; i++) g_feat[i] = avl_f32_to_bf16((float)(i % 97) / 8.0f);
    for (int i = 0; i < VP * PD; i++) g_vpix[i] = avl_f32_to_bf16((float)(i % 89) / 16.0f);
    for (int i = 0; i < IP * PD; i++) g_ipix[i] = avl_f32_to_bf16((float)(i % 83) / 32.0f);
    snprintf(g_path, sizeof g_path, "%s/inputs.safetensors", avl_test_dir("unit_inputs"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_feat), free(g_vpix), free(g_ipix), free(g_zeros);
    return 0;
}

static const tdesc GOOD[] = {
    {"input_ids", AVL_DTYPE_I64, 2, {1, L}, g_ids},
    {"attention_mask", AVL_DTYPE_I64, 2, {1, L}, g_ones},
    {"input_features", AVL_DTYPE_BF16, 3, {NA, MEL, T}, NULL},        /* g_feat */
    {"feature_attention_mask", AVL_DTYPE_I64, 2, {NA, T}, g_fmask},
    {"pixel_values_videos", AVL_DTYPE_BF16, 2, {VP, PD}, NULL},        /* g_vpix */
    {"video_grid_thw", AVL_DTYPE_I64, 2, {NV, 3}, g_vgrid},
    {"video_second_per_grid", AVL_DTYPE_F32, 1, {NV}, g_spg},
    {"pixel_values", AVL_DTYPE_BF16, 2, {IP, PD}, NULL},               /* g_ipix */
    {"image_grid_thw", AVL_DTYPE_I64, 2, {1, 3}, g_igrid},
};
enum { N_GOOD = sizeof GOOD / sizeof GOOD[0] };

static const void *good_data(int i)
{
    if (!strcmp(GOOD[i].name, "input_features")) return g_feat;
    if (!strcmp(GOOD[i].name, "pixel_values_videos")) return g_vpix;
    if (!strcmp(GOOD[i].name, "pixel_values")) return g_ipix;
    return GOOD[i].data;
}

/* Writes GOOD without the tensors named in drop (space-separated) and without those that an
 * extra replaces, plus the extras. Returns the file's path. */
static const char *write_inputs(const char *drop, int n_extra, const tdesc *extra)
{
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    for (int i = 0; i < N_GOOD; i++) {
        char key[64];
        snprintf(key, sizeof key, " %s ", GOOD[i].name);
        char padded[512];
        snprintf(padded, sizeof padded, " %s ", drop ? drop : "");
        bool skip = strstr(padded, key) != NULL;
        for (int e = 0; e < n_extra; e++) skip |= !strcmp(extra[e].name, GOOD[i].name);
        if (!skip) assert_int_equal(avl_st_writer_add(w, GOOD[i].name, GOOD[i].dt, GOOD[i].nd, GOOD[i].sh, good_data(i)),
                                    AVL_OK);
    }
    for (int e = 0; e < n_extra; e++)
        assert_int_equal(avl_st_writer_add(w, extra[e].name, extra[e].dt, extra[e].nd, extra[e].sh,
                                           extra[e].data ? extra[e].data : g_zeros), AVL_OK);
    assert_int_equal(avl_st_writer_save(w, g_path), AVL_OK);
    avl_st_writer_free(w);
    return g_path;
}

static void test_reads_everything(void **state)
{
    (void)state;
    avl_inputs *in;
    assert_int_equal(avl_inputs_load(write_inputs(NULL, 0, NULL), &C, true, &in), AVL_OK);
    const avl_thinker_inputs *t = avl_inputs_get(in);
    assert_int_equal(t->n, L);
    for (int i = 0; i < L; i++) assert_int_equal(t->input_ids[i], g_ids[i]);
    assert_true(t->use_audio_in_video);
    assert_int_equal(t->media.n_audios, NA);
    assert_int_equal(t->n_feature_frames, T);
    assert_int_equal(t->media.audio_feature_len[0], T);
    assert_int_equal(t->media.audio_feature_len[1], 4);
    for (int i = 0; i < NA * MEL * T; i++) assert_true(t->input_features[i] == avl_bf16_to_f32(g_feat[i]));
    assert_int_equal(t->media.n_videos, NV);
    for (int v = 0; v < NV; v++)
        for (int k = 0; k < 3; k++) assert_int_equal(t->media.video_grid_thw[v][k], g_vgrid[3 * v + k]);
    assert_true(t->media.video_second_per_grid[0] == 2.0 && t->media.video_second_per_grid[1] == 0.5);
    for (int i = 0; i < VP * PD; i++) assert_true(t->pixel_values_videos[i] == avl_bf16_to_f32(g_vpix[i]));
    assert_int_equal(t->media.n_images, 1);
    for (int k = 0; k < 3; k++) assert_int_equal(t->media.image_grid_thw[0][k], g_igrid[k]);
    for (int i = 0; i < IP * PD; i++) assert_true(t->pixel_values[i] == avl_bf16_to_f32(g_ipix[i]));
    avl_inputs_free(in);
    avl_inputs_free(NULL);
}

/* Optional tensors: ids alone (as (L), I32); features without a mask (all frames valid);
 * videos without seconds per grid (1.0). */
static void test_defaults(void **state)
{
    (void)state;
    int32_t ids32[L] = {9, 8, 7, 6, 5, 4, 3};
    avl_inputs *in;
    tdesc ids = {"input_ids", AVL_DTYPE_I32, 1, {L}, ids32};
    const char *p = write_inputs("attention_mask input_features feature_attention_mask pixel_values_videos "
                                 "video_grid_thw video_second_per_grid pixel_values image_grid_thw", 1, &ids);
    assert_int_equal(avl_inputs_load(p, &C, false, &in), AVL_OK);
    const avl_thinker_inputs *t = avl_inputs_get(in);
    assert_int_equal(t->n, L);
    assert_int_equal(t->input_ids[2], 7);
    assert_false(t->use_audio_in_video);
    assert_int_equal(t->media.n_audios + t->media.n_videos + t->media.n_images, 0);
    assert_null(t->input_features);
    assert_null(t->pixel_values_videos);
    assert_null(t->pixel_values);
    avl_inputs_free(in);

    assert_int_equal(avl_inputs_load(write_inputs("feature_attention_mask video_second_per_grid", 0, NULL), &C,
                                     false, &in), AVL_OK);
    t = avl_inputs_get(in);
    assert_int_equal(t->media.audio_feature_len[0], T);
    assert_int_equal(t->media.audio_feature_len[1], T);
    assert_true(t->media.video_second_per_grid[0] == 1.0 && t->media.video_second_per_grid[1] == 1.0);
    avl_inputs_free(in);
}

/* Loads a file that must fail with want and a detail holding the path and the substrings. */
#define EXPECT_FAIL(path, want, ...)                                                                         \
    do {                                                                                                     \
        avl_inputs *in_ = (avl_inputs *)1;                                                                   \
        avl_status rc_ = avl_inputs_load((path), &C, false, &in_);                                           \
        AVL_EXPECT_ERROR(rc_, want, g_path, __VA_ARGS__);                                                    \
        assert_null(in_);                                                                                    \
    } while (0)

static void test_file_errors(void **state)
{
    (void)state;
    avl_inputs *in;
    snprintf(g_path, sizeof g_path, "%s/missing.safetensors", avl_test_dir("unit_inputs"));
    AVL_EXPECT_ERROR(avl_inputs_load(g_path, &C, false, &in), AVL_E_IO, "missing.safetensors");
    assert_null(in);
    avl_test_write_file(g_path, "not a safetensors file", 22);
    AVL_EXPECT_ERROR(avl_inputs_load(g_path, &C, false, &in), AVL_E_FORMAT, "missing.safetensors");
    AVL_EXPECT_ERROR(avl_inputs_load(g_path, NULL, false, &in), AVL_E_ARG, "config");
    snprintf(g_path, sizeof g_path, "%s/inputs.safetensors", avl_test_dir("unit_inputs"));
}

static void test_ids_errors(void **state)
{
    (void)state;
    float fids[L] = {0};
    int64_t two[2 * L] = {0};
    int64_t bad[L] = {1, 2, 3, 4, 5, 6, 7};
    bad[4] = C.text.vocab_size;
    int64_t mask0[L] = {1, 1, 1, 0, 1, 1, 1};
    EXPECT_FAIL(write_inputs("input_ids", 0, NULL), AVL_E_NOTFOUND, "no tensor 'input_ids'");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"input_ids", AVL_DTYPE_F32, 2, {1, L}, fids}), AVL_E_SHAPE,
                "'input_ids' is F32", "integer");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"input_ids", AVL_DTYPE_I64, 2, {2, L}, two}), AVL_E_SHAPE,
                "'input_ids' must be (1, L) or (L)", "batch");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"input_ids", AVL_DTYPE_I64, 3, {1, 1, L}, two}), AVL_E_SHAPE,
                "'input_ids' must be (1, L) or (L)");
    EXPECT_FAIL(write_inputs("attention_mask", 1, &(tdesc){"input_ids", AVL_DTYPE_I64, 2, {1, 0}, two}), AVL_E_SHAPE,
                "'input_ids' is empty");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"input_ids", AVL_DTYPE_I64, 1, {L}, bad}), AVL_E_ARG,
                "'input_ids' has id", "at position 4", "outside the vocabulary");
    bad[4] = -1;
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"input_ids", AVL_DTYPE_I64, 1, {L}, bad}), AVL_E_ARG,
                "id -1 at position 4");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"attention_mask", AVL_DTYPE_I64, 2, {1, L}, mask0}), AVL_E_ARG,
                "'attention_mask' has 0 at position 3", "must be all ones", "padding is not supported");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"attention_mask", AVL_DTYPE_I64, 2, {1, L - 1}, g_ones}), AVL_E_SHAPE,
                "'attention_mask' has 6 elements", "input_ids has 7");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"attention_mask", AVL_DTYPE_F32, 2, {1, L}, NULL}), AVL_E_SHAPE,
                "'attention_mask' is F32");
}

static void test_audio_errors(void **state)
{
    (void)state;
    int64_t gap[NA * T], none[NA * T] = {0}, two[NA * T];
    memcpy(gap, g_fmask, sizeof gap);
    gap[T + 6] = 1; /* row 1: 1 1 1 1 0 0 1 ... */
    for (int i = 0; i < NA * T; i++) two[i] = 1;
    two[5] = 2;
    for (int j = 0; j < T; j++) none[j] = 1;
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"input_features", AVL_DTYPE_BF16, 3, {NA, 80, T}, NULL}), AVL_E_SHAPE,
                "'input_features' must be (n_audios, 128, T)");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"input_features", AVL_DTYPE_BF16, 2, {NA, MEL}, NULL}), AVL_E_SHAPE,
                "'input_features' must be");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"input_features", AVL_DTYPE_I32, 3, {NA, MEL, T}, NULL}), AVL_E_SHAPE,
                "'input_features' is I32", "float");
    EXPECT_FAIL(write_inputs("feature_attention_mask", 1,
                             &(tdesc){"input_features", AVL_DTYPE_F32, 3, {AVL_MAX_MEDIA + 1, MEL, 1}, NULL}),
                AVL_E_UNSUPPORTED, "'input_features' holds 17 audios", "at most 16");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"feature_attention_mask", AVL_DTYPE_I64, 2, {NA, T - 1}, g_fmask}),
                AVL_E_SHAPE, "'feature_attention_mask' must be (2, 10)", "input_features");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"feature_attention_mask", AVL_DTYPE_I64, 2, {NA, T}, gap}), AVL_E_ARG,
                "'feature_attention_mask' row 1 is not ones then zeros", "frame 6");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"feature_attention_mask", AVL_DTYPE_I64, 2, {NA, T}, two}), AVL_E_ARG,
                "row 0 is not ones then zeros", "value 2");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"feature_attention_mask", AVL_DTYPE_I64, 2, {NA, T}, none}),
                AVL_E_ARG, "'feature_attention_mask' row 1 has no valid frame");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"feature_attention_mask", AVL_DTYPE_F32, 2, {NA, T}, NULL}),
                AVL_E_SHAPE, "'feature_attention_mask' is F32");
    EXPECT_FAIL(write_inputs("input_features", 0, NULL), AVL_E_SHAPE,
                "'feature_attention_mask' without 'input_features'");
}

static void test_vision_errors(void **state)
{
    (void)state;
    int64_t odd[NV * 3] = {2, 2, 2, 1, 3, 4}, zero[NV * 3] = {2, 2, 2, 0, 2, 4}, big[(AVL_MAX_MEDIA + 1) * 3];
    for (int i = 0; i < AVL_MAX_MEDIA + 1; i++) big[3 * i] = 1, big[3 * i + 1] = 2, big[3 * i + 2] = 2;
    float neg[NV] = {1.0f, -2.0f};
    EXPECT_FAIL(write_inputs("video_grid_thw", 0, NULL), AVL_E_SHAPE,
                "'pixel_values_videos' without 'video_grid_thw'");
    EXPECT_FAIL(write_inputs("pixel_values_videos", 0, NULL), AVL_E_SHAPE,
                "'video_second_per_grid' without 'pixel_values_videos'");
    EXPECT_FAIL(write_inputs("pixel_values_videos video_second_per_grid", 0, NULL), AVL_E_SHAPE,
                "'video_grid_thw' without 'pixel_values_videos'");
    EXPECT_FAIL(write_inputs("image_grid_thw", 0, NULL), AVL_E_SHAPE, "'pixel_values' without 'image_grid_thw'");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"video_grid_thw", AVL_DTYPE_I64, 2, {3, 2}, g_vgrid}), AVL_E_SHAPE,
                "'video_grid_thw' must be (n, 3)");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"video_grid_thw", AVL_DTYPE_F32, 2, {NV, 3}, NULL}), AVL_E_SHAPE,
                "'video_grid_thw' is F32", "integer");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"video_grid_thw", AVL_DTYPE_I64, 2, {NV, 3}, odd}), AVL_E_ARG,
                "'video_grid_thw' row 1 is (1, 3, 4)", "multiples of the merge size 2");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"video_grid_thw", AVL_DTYPE_I64, 2, {NV, 3}, zero}), AVL_E_ARG,
                "'video_grid_thw' row 1 is (0, 2, 4)");
    EXPECT_FAIL(write_inputs("video_second_per_grid", 1,
                             &(tdesc){"video_grid_thw", AVL_DTYPE_I64, 2, {AVL_MAX_MEDIA + 1, 3}, big}),
                AVL_E_UNSUPPORTED, "'video_grid_thw' lists 17 videos", "at most 16");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"pixel_values_videos", AVL_DTYPE_BF16, 2, {VP - 1, PD}, g_vpix}),
                AVL_E_SHAPE, "'pixel_values_videos' has 15 patches", "'video_grid_thw' needs 16");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"pixel_values_videos", AVL_DTYPE_F32, 2, {VP, PD - 1}, NULL}),
                AVL_E_SHAPE, "'pixel_values_videos' must be (patches, 1176)");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"pixel_values_videos", AVL_DTYPE_I64, 2, {VP, PD}, NULL}),
                AVL_E_SHAPE, "'pixel_values_videos' is I64", "float");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"video_second_per_grid", AVL_DTYPE_F32, 1, {1}, g_spg}), AVL_E_SHAPE,
                "'video_second_per_grid' has 1 values for 2 videos");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"video_second_per_grid", AVL_DTYPE_I64, 1, {NV}, g_ones}),
                AVL_E_SHAPE, "'video_second_per_grid' is I64", "float");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"video_second_per_grid", AVL_DTYPE_F32, 1, {NV}, neg}), AVL_E_ARG,
                "'video_second_per_grid' value 1 is -2", "positive");
    EXPECT_FAIL(write_inputs(NULL, 1, &(tdesc){"pixel_values", AVL_DTYPE_BF16, 2, {IP + 1, PD}, NULL}), AVL_E_SHAPE,
                "'pixel_values' has 5 patches", "'image_grid_thw' needs 4");
    EXPECT_FAIL(write_inputs(NULL, 1,
                             &(tdesc){"image_grid_thw", AVL_DTYPE_I64, 2, {AVL_MAX_MEDIA + 1, 3}, big}),
                AVL_E_UNSUPPORTED, "'image_grid_thw' lists 17 images");
}

/* Every allocation of a full load fails in turn; each gives AVL_E_NOMEM and frees what it made. */
static void test_allocation_failures(void **state)
{
    (void)state;
    const char *p = write_inputs(NULL, 0, NULL);
    int64_t n = 1;
    for (;; n++) {
        avl_inputs *in = (avl_inputs *)1;
        avl__alloc_fail_after(n);
        avl_status rc = avl_inputs_load(p, &C, false, &in);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            avl_inputs_free(in);
            break;
        }
        if (rc != AVL_E_NOMEM) fail_msg("allocation %lld: %s (%s)", (long long)n, avl_status_str(rc), avl_last_error());
        assert_null(in);
    }
    assert_true(n > 5); /* the file, the object and four arrays at least */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_everything), cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_errors),      cmocka_unit_test(test_ids_errors),
        cmocka_unit_test(test_audio_errors),     cmocka_unit_test(test_vision_errors),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
