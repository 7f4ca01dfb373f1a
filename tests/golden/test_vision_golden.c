/* tests/golden/test_vision_golden.c: the vision encoder against the golden files of the
 * independent PyTorch reference (tools/ref/qwen25_omni_ref.py, tests/data/golden/<case>/).
 *
 * For every case whose inputs hold pixel_values_videos or pixel_values (with their grid_thw), the
 * case's tiny checkpoint is loaded with avl_model_load, each item encoded on its own and the rows
 * concatenated, then compared with expected video_embeds / image_embeds:
 *   ref backend     max |error| <= 1e-4 of the largest expected magnitude (fp32 throughout; the
 *                   reference computes in fp32 too, so only rounding order differs)
 *   auto backend    the same bound on an fp32 path (OpenBLAS, or oneDNN on a CPU without bf16
 *                   arithmetic); 3e-2 on oneDNN's bf16 path, which rounds every GEMM input to bf16.
 * A case without pixels is skipped; no case at all (golden data not generated yet) skips the test.
 */
#include "avl_test.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "model/model_internal.h"

#define GOLDEN AVL_TEST_DATA "/golden"

static float *tensor_f32(const avl_st_file *f, const char *name, avl_tensor_view *tv)
{
    if (avl_st_file_get(f, name, tv)) return NULL;
    float *v = malloc((size_t)tv->numel * sizeof(float) + 1);
    if (avl_convert_to_f32(tv->dtype, tv->data, v, tv->numel)) fail_msg("%s: not a float tensor", name);
    return v;
}

/* Encodes every item of one kind ("pixel_values_videos" + "video_grid_thw", or the image pair)
 * and compares with the expected rows. Returns false when the case has no such input. */
static bool check_kind(const char *cs, const avl_model *m, const avl_st_file *in, const avl_st_file *exp,
                       const char *pix_name, const char *grid_name, const char *want_name, double tol)
{
    avl_tensor_view pv, gv, wv;
    float *pix = tensor_f32(in, pix_name, &pv);
    if (!pix) return false;
    if (avl_st_file_get(in, grid_name, &gv) || gv.dtype != AVL_DTYPE_I64 || gv.ndim != 2 || gv.shape[1] != 3)
        fail_msg("%s: %s missing or not (n, 3) int64", cs, grid_name);
    float *want = tensor_f32(exp, want_name, &wv);
    if (!want) fail_msg("%s: expected.safetensors has no %s", cs, want_name);
    const int64_t H = wv.shape[1], kp = pv.shape[1];
    float *got = malloc((size_t)wv.numel * sizeof(float));
    int64_t row = 0, patch = 0;
    for (int64_t i = 0; i < gv.shape[0]; i++) {
        int64_t g[3];
        memcpy(g, (const char *)gv.data + i * 24, 24);
        int64_t n = g[0] * g[1] * g[2], rows = n / 4;
        assert_true(patch + n <= pv.shape[0] && row + rows <= wv.shape[0]);
        avl_status rc = avl__vision_encoder_forward(m, m->vision, pix + patch * kp, g, got + row * H);
        if (rc) fail_msg("%s: %s item %lld: %s", cs, pix_name, (long long)i, avl_last_error());
        patch += n;
        row += rows;
    }
    assert_int_equal(row, wv.shape[0]);
    double err = 0, mx = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < wv.numel; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (e > err) err = e, at = i;
        mx = fmax(mx, fabs((double)want[i]));
    }
    if (getenv("AVL_TEST_VERBOSE"))
        print_message("%s %s (%s): max error %.3g of max %.3g\n", cs, want_name, avl_model_backend(m), err, mx);
    if (err > tol * mx)
        fail_msg("%s: %s row %lld col %lld: got %g, want %g (error %.3g > %.g of %.3g)", cs, want_name,
                 (long long)(at / H), (long long)(at % H), got[at], want[at], err, tol, mx);
    free(pix), free(want), free(got);
    return true;
}

/* oneDNN rounds GEMM inputs to bf16 only on a CPU with bf16 arithmetic (AVX512-BF16, AMX);
 * elsewhere it hands bf16 weights to the fp32 OpenBLAS path. */
static bool bf16_path(const avl__gemm_backend *be)
{
    const char *isa = avl__gemm_backend_isa(be);
    return strcmp(be->name, "onednn") == 0 && (strstr(isa, "bf16") || strstr(isa, "amx"));
}

static void run_backend(const char *backend)
{
    DIR *d = opendir(GOLDEN);
    if (!d) skip();
    int checked = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char dir[1024], path[1200];
        snprintf(dir, sizeof dir, "%s/%s", GOLDEN, de->d_name);
        snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
        avl_st_file *in, *exp;
        if (avl_st_file_open(path, &in)) continue;
        avl_tensor_view tv;
        if (avl_st_file_get(in, "pixel_values_videos", &tv) && avl_st_file_get(in, "pixel_values", &tv)) {
            avl_st_file_close(in);
            continue;
        }
        snprintf(path, sizeof path, "%s/expected.safetensors", dir);
        if (avl_st_file_open(path, &exp)) fail_msg("%s: %s", de->d_name, avl_last_error());
        snprintf(path, sizeof path, "%s/model", dir);
        avl_model_params mp = avl_model_default_params();
        mp.backend = backend;
        avl_model *m;
        if (avl_model_load(path, &mp, &m)) fail_msg("%s: %s", de->d_name, avl_last_error());
        assert_non_null(m->vision);
        double tol = bf16_path(m->be) ? 3e-2 : 1e-4;
        checked += check_kind(de->d_name, m, in, exp, "pixel_values_videos", "video_grid_thw", "video_embeds", tol);
        checked += check_kind(de->d_name, m, in, exp, "pixel_values", "image_grid_thw", "image_embeds", tol);
        avl_model_free(m);
        avl_st_file_close(exp);
        avl_st_file_close(in);
    }
    closedir(d);
    if (!checked) skip();
}

static void test_golden_ref_backend(void **state)
{
    (void)state;
    run_backend("ref");
}

static void test_golden_auto_backend(void **state)
{
    (void)state;
    run_backend("auto");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_ref_backend),
        cmocka_unit_test(test_golden_auto_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
