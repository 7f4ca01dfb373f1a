/* tests/unit/test_safetensors.c: the safetensors reader, checkpoint sets, the writer, number
 * conversions, and allocation-failure paths.
 *
 * Byte-exact references: the expected files in test_reference_* are written out by hand from
 * the format description; the first four are the byte arrays asserted by the reference
 * library's own unit tests (safetensors/src/tensor.rs: test_empty, test_serialization,
 * test_serialization_forced_alignement), so the C writer is checked against the reference
 * implementation's output, not against itself.
 */
#include "avl_test.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "base/internal.h"

/* ---- helpers ---- */

static char g_paths[8][4200];
static int g_path_i;

/* dir/name in one of a few rotating static buffers. */
static const char *pj(const char *dir, const char *name)
{
    char *p = g_paths[g_path_i++ % 8];
    snprintf(p, 4200, "%s/%s", dir, name);
    return p;
}

/* An image: 8-byte length of header, the header, then len bytes of data. */
static unsigned char *image(const char *header, const void *data, size_t len, size_t *out_len)
{
    size_t hn = strlen(header);
    unsigned char *b = malloc(8 + hn + len + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hn >> (8 * i));
    memcpy(b + 8, header, hn);
    if (len) memcpy(b + 8 + hn, data, len);
    *out_len = 8 + hn + len;
    return b;
}

/* Writes an image to dir/name and returns the path. */
static const char *write_image(const char *dir, const char *name, const char *header, const void *data, size_t len)
{
    size_t n;
    unsigned char *b = image(header, data, len, &n);
    const char *p = pj(dir, name);
    avl_test_write_file(p, b, n);
    free(b);
    return p;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) fail_msg("short read %s", path);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static void expect_file_bytes(const char *path, const void *want, size_t want_len)
{
    size_t n;
    unsigned char *got = slurp(path, &n);
    if (n != want_len) fail_msg("%s: %zu bytes, wanted %zu", path, n, want_len);
    for (size_t i = 0; i < n; i++)
        if (got[i] != ((const unsigned char *)want)[i])
            fail_msg("%s: byte %zu is 0x%02x, wanted 0x%02x", path, i, got[i], ((const unsigned char *)want)[i]);
    free(got);
}

/* Opens an in-memory image expecting failure with the given code and substrings. */
#define EXPECT_BAD_IMAGE(header, data, len, code, ...)                                              \
    do {                                                                                            \
        size_t n_;                                                                                  \
        unsigned char *b_ = image((header), (data), (len), &n_);                                    \
        avl_st_file *f_ = (avl_st_file *)1;                                                         \
        AVL_EXPECT_ERROR(avl_st_file_open_memory(b_, n_, "m.safetensors", &f_), (code), "m.safetensors", \
                         __VA_ARGS__);                                                              \
        assert_null(f_);                                                                            \
        free(b_);                                                                                   \
    } while (0)

/* ---- dtypes ---- */

static void test_dtypes(void **state)
{
    (void)state;
    static const char *names[] = {"F32", "F16", "BF16", "I64", "I32", "U8"};
    static const size_t sizes[] = {4, 2, 2, 8, 4, 1};
    for (int t = 0; t < AVL_DTYPE_COUNT; t++) {
        assert_string_equal(avl_dtype_name((avl_dtype)t), names[t]);
        assert_int_equal(avl_dtype_size((avl_dtype)t), sizes[t]);
        avl_dtype d;
        assert_int_equal(avl_dtype_parse(names[t], &d), AVL_OK);
        assert_int_equal(d, t);
    }
    assert_string_equal(avl_dtype_name(AVL_DTYPE_COUNT), "?");
    assert_int_equal(avl_dtype_size((avl_dtype)-1), 0);
    avl_dtype d;
    assert_int_equal(avl_dtype_parse("bf16", &d), AVL_E_NOTFOUND);
    assert_int_equal(avl_dtype_parse("F64", &d), AVL_E_NOTFOUND);
}

/* ---- byte-exact writer output ---- */

static const char *save_to(avl_st_writer *w, const char *dir, const char *name)
{
    const char *p = pj(dir, name);
    assert_int_equal(avl_st_writer_save(w, p), AVL_OK);
    return p;
}

static void test_reference_empty(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_ref_empty");
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    static const unsigned char want0[] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    expect_file_bytes(save_to(w, dir, "a.safetensors"), want0, sizeof want0);
    assert_int_equal(avl_st_writer_set_metadata(w, "framework", "pt"), AVL_OK);
    static const char want1[] = "(\0\0\0\0\0\0\0{\"__metadata__\":{\"framework\":\"pt\"}}     ";
    expect_file_bytes(save_to(w, dir, "b.safetensors"), want1, sizeof want1 - 1);
    avl_st_writer_free(w);
}

static void test_reference_f32(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_ref_f32");
    static const float v[6] = {0, 1, 2, 3, 4, 5};
    static const unsigned char data[24] = {0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};

    /* "attn.0" [1,2,3]: the header is 64 bytes, no padding needed. */
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "attn.0", AVL_DTYPE_F32, 3, (int64_t[]){1, 2, 3}, v), AVL_OK);
    static const char h1[] = "@\0\0\0\0\0\0\0{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
    unsigned char want[256];
    memcpy(want, h1, sizeof h1 - 1);
    memcpy(want + sizeof h1 - 1, data, 24);
    const char *p = save_to(w, dir, "a.safetensors");
    expect_file_bytes(p, want, sizeof h1 - 1 + 24);
    avl_st_writer_free(w);

    /* The reader accepts the reference bytes and sees the floats. */
    avl_st_file *f;
    assert_int_equal(avl_st_file_open_memory(want, sizeof h1 - 1 + 24, "ref", &f), AVL_OK);
    avl_tensor_view t;
    assert_int_equal(avl_st_file_get(f, "attn.0", &t), AVL_OK);
    assert_int_equal(t.ndim, 3);
    assert_int_equal(t.numel, 6);
    float back[6];
    assert_int_equal(avl_convert_to_f32(t.dtype, t.data, back, 6), AVL_OK);
    assert_memory_equal(back, v, sizeof v);
    avl_st_file_close(f);

    /* "attn0" [1,1,2,3]: 65 bytes of JSON padded with 7 spaces to 72. */
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "attn0", AVL_DTYPE_F32, 4, (int64_t[]){1, 1, 2, 3}, v), AVL_OK);
    static const char h2[] =
        "H\0\0\0\0\0\0\0{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ";
    memcpy(want, h2, sizeof h2 - 1);
    memcpy(want + sizeof h2 - 1, data, 24);
    expect_file_bytes(save_to(w, dir, "b.safetensors"), want, sizeof h2 - 1 + 24);
    avl_st_writer_free(w);
}

/* Order: dtype rank descending (I64 > F32 > I32 > BF16 > F16 > U8), then name; metadata keys
 * sorted; serde_json escapes. The expected header is written out by hand. */
static void test_reference_order_and_escapes(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_ref_order");
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    unsigned char bytes[64];
    for (int i = 0; i < 64; i++) bytes[i] = (unsigned char)(i + 1);
    assert_int_equal(avl_st_writer_add(w, "b", AVL_DTYPE_U8, 1, (int64_t[]){3}, bytes), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "a", AVL_DTYPE_BF16, 1, (int64_t[]){2}, bytes + 3), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "z", AVL_DTYPE_I64, 0, NULL, bytes + 7), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "c", AVL_DTYPE_F32, 1, (int64_t[]){1}, bytes + 15), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "m", AVL_DTYPE_F16, 2, (int64_t[]){1, 0}, bytes), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "k", AVL_DTYPE_I32, 1, (int64_t[]){1}, bytes + 19), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "B", AVL_DTYPE_F32, 1, (int64_t[]){1}, bytes + 23), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "q\"\\\n\x01\xc3\xa9/", AVL_DTYPE_U8, 1, (int64_t[]){1}, bytes + 27),
                     AVL_OK);
    assert_int_equal(avl_st_writer_set_metadata(w, "format", "pt"), AVL_OK);
    assert_int_equal(avl_st_writer_set_metadata(w, "author", "x"), AVL_OK);
    assert_int_equal(avl_st_writer_set_metadata(w, "format", "np"), AVL_OK); /* replaces */
    const char *header = "{\"__metadata__\":{\"author\":\"x\",\"format\":\"np\"},"
                         "\"z\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
                         "\"B\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                         "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]},"
                         "\"k\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[16,20]},"
                         "\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[20,24]},"
                         "\"m\":{\"dtype\":\"F16\",\"shape\":[1,0],\"data_offsets\":[24,24]},"
                         "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[24,27]},"
                         "\"q\\\"\\\\\\n\\u0001\xc3\xa9/\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[27,28]}}";
    size_t hn = strlen(header), padded = (hn + 7) / 8 * 8;
    unsigned char want[1024];
    for (int i = 0; i < 8; i++) want[i] = (unsigned char)(padded >> (8 * i));
    memcpy(want + 8, header, hn);
    memset(want + 8 + hn, ' ', padded - hn);
    unsigned char *d = want + 8 + padded;
    memcpy(d, bytes + 7, 8);       /* z */
    memcpy(d + 8, bytes + 23, 4);  /* B */
    memcpy(d + 12, bytes + 15, 4); /* c */
    memcpy(d + 16, bytes + 19, 4); /* k */
    memcpy(d + 20, bytes + 3, 4);  /* a */
    memcpy(d + 24, bytes, 3);      /* b */
    memcpy(d + 27, bytes + 27, 1); /* q... */
    const char *p = save_to(w, dir, "o.safetensors");
    expect_file_bytes(p, want, 8 + padded + 28);
    avl_st_writer_free(w);

    avl_st_file *f;
    assert_int_equal(avl_st_file_open(p, &f), AVL_OK);
    assert_int_equal(avl_st_file_count(f), 8);
    assert_string_equal(avl_st_file_metadata(f, "format"), "np");
    assert_string_equal(avl_st_file_metadata(f, "author"), "x");
    assert_null(avl_st_file_metadata(f, "nope"));
    avl_tensor_view t;
    assert_int_equal(avl_st_file_get(f, "q\"\\\n\x01\xc3\xa9/", &t), AVL_OK);
    assert_int_equal(((const unsigned char *)t.data)[0], 28);
    assert_int_equal(avl_st_file_get(f, "z", &t), AVL_OK);
    assert_int_equal(t.ndim, 0);
    assert_int_equal(t.numel, 1);
    assert_int_equal(t.nbytes, 8);
    assert_int_equal(avl_st_file_get(f, "m", &t), AVL_OK);
    assert_int_equal(t.numel, 0);
    assert_int_equal(t.nbytes, 0);
    /* at() walks data order (empty "m" at 24 sorts before "b" at [24,27)). */
    static const char *order[] = {"z", "B", "c", "k", "a", "m", "b"};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(avl_st_file_at(f, i, &t), AVL_OK);
        assert_string_equal(t.name, order[i]);
        assert_string_equal(t.file, p);
    }
    AVL_EXPECT_ERROR(avl_st_file_at(f, 8, &t), AVL_E_ARG, p, "out of range");
    avl_st_file_close(f);
}

/* ---- round trips ---- */

static uint64_t g_rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

typedef struct {
    const char *name;
    avl_dtype dtype;
    int ndim;
    int64_t shape[AVL_MAX_DIMS];
} spec;

static const spec g_specs[] = {
    {"thinker.model.embed_tokens.weight", AVL_DTYPE_BF16, 2, {7, 5}},
    {"thinker.model.norm.weight", AVL_DTYPE_F32, 1, {5}},
    {"thinker.lm_head.weight", AVL_DTYPE_F16, 2, {3, 5}},
    {"pos_ids", AVL_DTYPE_I64, 3, {1, 2, 3}},
    {"mask", AVL_DTYPE_U8, 1, {9}},
    {"counts", AVL_DTYPE_I32, 1, {3}},
    {"scalar", AVL_DTYPE_F32, 0, {0}},
    {"empty", AVL_DTYPE_BF16, 2, {0, 4}},
    {"deep", AVL_DTYPE_U8, 8, {1, 2, 1, 2, 1, 2, 1, 3}},
};
#define NSPECS (int)(sizeof g_specs / sizeof *g_specs)

static size_t spec_bytes(const spec *s)
{
    size_t n = avl_dtype_size(s->dtype);
    for (int d = 0; d < s->ndim; d++) n *= (size_t)s->shape[d];
    return n;
}

static void test_roundtrip(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_roundtrip");
    unsigned char *data[NSPECS];
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    for (int i = 0; i < NSPECS; i++) {
        size_t n = spec_bytes(&g_specs[i]);
        data[i] = malloc(n + 1);
        unsigned char *src = malloc(n + 1);
        for (size_t j = 0; j < n; j++) data[i][j] = src[j] = (unsigned char)rnd();
        assert_int_equal(avl_st_writer_add(w, g_specs[i].name, g_specs[i].dtype, g_specs[i].ndim, g_specs[i].shape,
                                           src),
                         AVL_OK);
        memset(src, 0, n); /* the writer keeps its own copy */
        free(src);
    }
    assert_int_equal(avl_st_writer_set_metadata(w, "format", "pt"), AVL_OK);
    const char *pa = save_to(w, dir, "a.safetensors");
    AVL_EXPECT_ERROR(avl_st_writer_add(w, "mask", AVL_DTYPE_U8, 1, (int64_t[]){1}, "x"), AVL_E_ARG, "duplicate",
                     "mask");
    avl_st_writer_free(w);

    avl_st_file *f;
    assert_int_equal(avl_st_file_open(pa, &f), AVL_OK);
    assert_int_equal(avl_st_file_count(f), NSPECS);
    assert_string_equal(avl_st_file_metadata(f, "format"), "pt");
    for (int i = 0; i < NSPECS; i++) {
        avl_tensor_view t;
        assert_int_equal(avl_st_file_get(f, g_specs[i].name, &t), AVL_OK);
        assert_string_equal(t.name, g_specs[i].name);
        assert_int_equal(t.dtype, g_specs[i].dtype);
        assert_int_equal(t.ndim, g_specs[i].ndim);
        int64_t numel = 1;
        for (int d = 0; d < t.ndim; d++) {
            assert_int_equal(t.shape[d], g_specs[i].shape[d]);
            numel *= t.shape[d];
        }
        assert_int_equal(t.numel, numel);
        assert_int_equal(t.nbytes, spec_bytes(&g_specs[i]));
        if (t.nbytes) {
            assert_memory_equal(t.data, data[i], t.nbytes);
            /* The writer's layout keeps every tensor aligned to its element size. */
            assert_int_equal((uintptr_t)t.data % avl_dtype_size(t.dtype), 0);
        }
    }

    /* Writing the views back, in reverse order, gives the same bytes. */
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    for (int64_t i = avl_st_file_count(f) - 1; i >= 0; i--) {
        avl_tensor_view t;
        assert_int_equal(avl_st_file_at(f, i, &t), AVL_OK);
        assert_int_equal(avl_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape, t.data), AVL_OK);
    }
    assert_int_equal(avl_st_writer_set_metadata(w, "format", "pt"), AVL_OK);
    const char *pb = save_to(w, dir, "b.safetensors");
    avl_st_writer_free(w);
    size_t na;
    unsigned char *a = slurp(pa, &na);
    expect_file_bytes(pb, a, na);
    free(a);
    avl_st_file_close(f);

    /* The same file through a set. */
    avl_st_set *s;
    assert_int_equal(avl_st_open_dir(pa, &s), AVL_OK);
    assert_int_equal(avl_st_count(s), NSPECS);
    assert_true(avl_st_has(s, "mask"));
    assert_false(avl_st_has(s, "nope"));
    avl_tensor_view t;
    AVL_EXPECT_ERROR(avl_st_get(s, "nope", &t), AVL_E_NOTFOUND, pa, "no tensor 'nope'");
    avl_st_close(s);
    for (int i = 0; i < NSPECS; i++) free(data[i]);
}

static void test_open_dir_single(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_dir_single");
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "x", AVL_DTYPE_F32, 1, (int64_t[]){2}, (float[]){1, 2}), AVL_OK);
    save_to(w, dir, "model.safetensors");
    avl_st_writer_free(w);
    avl_st_set *s;
    assert_int_equal(avl_st_open_dir(dir, &s), AVL_OK);
    avl_tensor_view t;
    assert_int_equal(avl_st_get(s, "x", &t), AVL_OK);
    assert_int_equal(avl_st_at(s, 0, &t), AVL_OK);
    assert_string_equal(t.name, "x");
    AVL_EXPECT_ERROR(avl_st_at(s, 1, &t), AVL_E_ARG, "out of range");
    avl_st_close(s);
    avl_st_close(NULL);
    avl_st_file_close(NULL);
    avl_st_writer_free(NULL);
}

/* 2,000 names in the pattern of a real checkpoint: every one found, quickly. */
static void test_lookup_many(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_lookup");
    static const char *parts[] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                  "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                                  "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight",
                                  "self_attn.q_proj.bias"};
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    char name[128];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "thinker.model.layers.%d.%s", i / 10, parts[i % 10]);
        uint16_t v = (uint16_t)i;
        assert_int_equal(avl_st_writer_add(w, name, AVL_DTYPE_BF16, 1, (int64_t[]){1}, &v), AVL_OK);
    }
    const char *p = save_to(w, dir, "model.safetensors");
    avl_st_writer_free(w);
    avl_st_set *s;
    assert_int_equal(avl_st_open_dir(dir, &s), AVL_OK);
    assert_int_equal(avl_st_count(s), 2000);
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "thinker.model.layers.%d.%s", i / 10, parts[i % 10]);
        avl_tensor_view t;
        assert_int_equal(avl_st_get(s, name, &t), AVL_OK);
        uint16_t v;
        memcpy(&v, t.data, 2);
        assert_int_equal(v, i);
    }
    avl_tensor_view t;
    AVL_EXPECT_ERROR(avl_st_get(s, "thinker.model.layers.200.mlp.up_proj.weight", &t), AVL_E_NOTFOUND, p,
                     "no tensor 'thinker.model.layers.200.mlp.up_proj.weight'");
    avl_st_close(s);
}

/* ---- sharded ---- */

static void test_sharded_roundtrip(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_sharded");
    float v[10];
    for (int i = 0; i < 10; i++) v[i] = (float)i + 0.5f;
    unsigned char u[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    /* Limit 24: {b, a} fill a shard; big (40 bytes) gets its own, numbered first because it is
     * closed before the open one; c starts the third. */
    assert_int_equal(avl_st_writer_add(w, "b", AVL_DTYPE_F32, 1, (int64_t[]){4}, v), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "a", AVL_DTYPE_F32, 1, (int64_t[]){2}, v + 4), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "big", AVL_DTYPE_F32, 1, (int64_t[]){10}, v), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "c", AVL_DTYPE_U8, 1, (int64_t[]){8}, u), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "\xc3\xa9\xf0\x9f\x98\x80\x7f", AVL_DTYPE_U8, 0, NULL, u), AVL_OK);
    assert_int_equal(avl_st_writer_set_metadata(w, "format", "pt"), AVL_OK);
    assert_int_equal(avl_st_writer_save_sharded(w, dir, 24), AVL_OK);
    avl_st_writer_free(w);

    const char *want = "{\n"
                       "  \"metadata\": {\n"
                       "    \"total_size\": 73\n"
                       "  },\n"
                       "  \"weight_map\": {\n"
                       "    \"a\": \"model-00002-of-00003.safetensors\",\n"
                       "    \"b\": \"model-00002-of-00003.safetensors\",\n"
                       "    \"big\": \"model-00001-of-00003.safetensors\",\n"
                       "    \"c\": \"model-00003-of-00003.safetensors\",\n"
                       "    \"\\u00e9\\ud83d\\ude00\\u007f\": \"model-00003-of-00003.safetensors\"\n"
                       "  }\n"
                       "}\n";
    expect_file_bytes(pj(dir, "model.safetensors.index.json"), want, strlen(want));

    avl_st_file *f;
    assert_int_equal(avl_st_file_open(pj(dir, "model-00001-of-00003.safetensors"), &f), AVL_OK);
    assert_int_equal(avl_st_file_count(f), 1);
    assert_string_equal(avl_st_file_metadata(f, "format"), "pt");
    avl_st_file_close(f);

    /* By folder, by index path: the same set. */
    const char *how[2] = {dir, pj(dir, "model.safetensors.index.json")};
    for (int k = 0; k < 2; k++) {
        avl_st_set *s;
        assert_int_equal(avl_st_open_dir(how[k], &s), AVL_OK);
        assert_int_equal(avl_st_count(s), 5);
        avl_tensor_view t;
        assert_int_equal(avl_st_get(s, "big", &t), AVL_OK);
        assert_memory_equal(t.data, v, 40);
        assert_non_null(strstr(t.file, "model-00001-of-00003.safetensors"));
        assert_int_equal(avl_st_get(s, "a", &t), AVL_OK);
        assert_memory_equal(t.data, v + 4, 8);
        assert_int_equal(avl_st_get(s, "c", &t), AVL_OK);
        assert_memory_equal(t.data, u, 8);
        /* at(): shards in file-name order, tensors in data order. */
        static const char *order[] = {"big", "a", "b", "c", "\xc3\xa9\xf0\x9f\x98\x80\x7f"};
        for (int i = 0; i < 5; i++) {
            assert_int_equal(avl_st_at(s, i, &t), AVL_OK);
            assert_string_equal(t.name, order[i]);
        }
        avl_st_close(s);
    }

    /* One shard still writes the index form. */
    const char *dir1 = avl_test_dir("st_sharded_one");
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "a", AVL_DTYPE_F32, 1, (int64_t[]){2}, v), AVL_OK);
    assert_int_equal(avl_st_writer_save_sharded(w, dir1, 1 << 20), AVL_OK);
    avl_st_writer_free(w);
    const char *want1 = "{\n  \"metadata\": {\n    \"total_size\": 8\n  },\n  \"weight_map\": {\n"
                        "    \"a\": \"model-00001-of-00001.safetensors\"\n  }\n}\n";
    expect_file_bytes(pj(dir1, "model.safetensors.index.json"), want1, strlen(want1));
    avl_st_set *s;
    assert_int_equal(avl_st_open_dir(dir1, &s), AVL_OK);
    assert_int_equal(avl_st_count(s), 1);
    avl_st_close(s);
}

/* An extra tensor in a shard, absent from the index, is still reachable. */
static void test_sharded_unindexed_tensor(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_unindexed");
    write_image(dir, "s1.safetensors",
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                "\"extra\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                "xy", 2);
    const char *idx = pj(dir, "model.safetensors.index.json");
    const char *text = "{\"metadata\":{\"total_size\":2},\"weight_map\":{\"a\":\"s1.safetensors\"}}";
    avl_test_write_file(idx, text, strlen(text));
    avl_st_set *s;
    assert_int_equal(avl_st_open_dir(dir, &s), AVL_OK);
    assert_int_equal(avl_st_count(s), 2);
    avl_tensor_view t;
    assert_int_equal(avl_st_get(s, "extra", &t), AVL_OK);
    assert_int_equal(((const char *)t.data)[0], 'y');
    avl_st_close(s);
}

/* ---- malformed files, one problem each ---- */

static void test_bad_missing_file(void **state)
{
    (void)state;
    avl_st_file *f;
    AVL_EXPECT_ERROR(avl_st_file_open("/nonexistent/m.safetensors", &f), AVL_E_IO, "/nonexistent/m.safetensors",
                     "cannot open");
    assert_null(f);
    avl_st_set *s;
    AVL_EXPECT_ERROR(avl_st_open_dir("/nonexistent/ckpt", &s), AVL_E_IO, "/nonexistent/ckpt", "cannot open");
    const char *dir = avl_test_dir("st_bad_missing");
    AVL_EXPECT_ERROR(avl_st_open_dir(dir, &s), AVL_E_IO, dir, "neither model.safetensors.index.json nor model.safetensors");
    AVL_EXPECT_ERROR(avl_st_file_open(dir, &f), AVL_E_IO, dir, "not a regular file");
}

static void test_bad_zero_byte_file(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_bad_zero");
    const char *p = pj(dir, "z.safetensors");
    avl_test_write_file(p, "", 0);
    avl_st_file *f;
    AVL_EXPECT_ERROR(avl_st_file_open(p, &f), AVL_E_FORMAT, p, "file is empty (0 bytes)");
    AVL_EXPECT_ERROR(avl_st_file_open_memory(NULL, 0, "m.safetensors", &f), AVL_E_FORMAT, "m.safetensors", "empty");
}

static void test_bad_short_file(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_bad_short");
    const char *p = pj(dir, "s.safetensors");
    avl_test_write_file(p, "\x10\0\0\0\0", 5);
    avl_st_file *f;
    AVL_EXPECT_ERROR(avl_st_file_open(p, &f), AVL_E_FORMAT, p, "file is 5 bytes, too short for the 8-byte header length");
}

static void test_bad_header_length_lies(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_bad_hlen");
    const char *p = pj(dir, "h.safetensors");
    unsigned char b[20] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    avl_test_write_file(p, b, sizeof b);
    avl_st_file *f;
    AVL_EXPECT_ERROR(avl_st_file_open(p, &f), AVL_E_FORMAT, p, "header length 200 runs past the end of the file (20 bytes)");
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    AVL_EXPECT_ERROR(avl_st_file_open_memory(huge, sizeof huge, "m.safetensors", &f), AVL_E_FORMAT, "m.safetensors",
                     "header length 18446744073709551615 runs past the end");
}

/* A header over the 100 MB cap, in a sparse file (no disk used). */
static void test_bad_header_too_large(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_bad_hbig");
    const char *p = pj(dir, "big.safetensors");
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0);
    uint64_t hn = 100000001ull;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hn >> (8 * i));
    assert_int_equal(write(fd, le, 8), 8);
    assert_int_equal(ftruncate(fd, (off_t)(8 + hn + 8)), 0);
    close(fd);
    avl_st_file *f;
    AVL_EXPECT_ERROR(avl_st_file_open(p, &f), AVL_E_FORMAT, p, "header length 100000001 is over the 100000000-byte limit");
    unlink(p);
}

static void test_bad_header_not_json(void **state)
{
    (void)state;
    EXPECT_BAD_IMAGE("{\"a\": {\"dtype\": ", NULL, 0, AVL_E_FORMAT, "header is not valid JSON");
    EXPECT_BAD_IMAGE("{\"a\":1} trailing", NULL, 0, AVL_E_FORMAT, "header is not valid JSON");
    EXPECT_BAD_IMAGE("{\"\xff\":1}", NULL, 0, AVL_E_FORMAT, "header is not valid JSON");
    EXPECT_BAD_IMAGE("[1,2]", NULL, 0, AVL_E_FORMAT, "header is not a JSON object");
    size_t n;
    unsigned char *b = image("", NULL, 0, &n);
    avl_st_file *f;
    AVL_EXPECT_ERROR(avl_st_file_open_memory(b, n, "m.safetensors", &f), AVL_E_FORMAT, "m.safetensors",
                     "header is empty");
    free(b);
}

static void test_bad_unknown_dtype(void **state)
{
    (void)state;
    EXPECT_BAD_IMAGE("{\"a.weight\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1, AVL_E_FORMAT,
                     "tensor 'a.weight' has unknown dtype 'Q7'");
    EXPECT_BAD_IMAGE("{\"a.weight\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", "12345678", 8,
                     AVL_E_UNSUPPORTED, "tensor 'a.weight' has dtype F64, which avlens does not read");
    EXPECT_BAD_IMAGE("{\"a.weight\":{\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1, AVL_E_FORMAT,
                     "tensor 'a.weight' has no \"dtype\" string");
}

static void test_bad_shape(void **state)
{
    (void)state;
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", "x", 1, AVL_E_FORMAT,
                     "tensor 'a' shape entry 0 is not a non-negative integer");
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1.0],\"data_offsets\":[0,1]}}", "x", 1, AVL_E_FORMAT,
                     "tensor 'a' shape entry 1 is not a non-negative integer");
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", "x", 1,
                     AVL_E_FORMAT, "tensor 'a' has 9 dimensions (at most 8)");
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"U8\",\"shape\":3,\"data_offsets\":[0,1]}}", "x", 1, AVL_E_FORMAT,
                     "tensor 'a' has no \"shape\" array");
    EXPECT_BAD_IMAGE("{\"a\":[1]}", NULL, 0, AVL_E_FORMAT, "tensor 'a' is not a JSON object");
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,0]}}", NULL, 0,
                     AVL_E_FORMAT, "tensor 'a' has shape [4294967296,4294967296,4] F32, too many bytes to count");
}

static void test_bad_shape_bytes_mismatch(void **state)
{
    (void)state;
    size_t n;
    unsigned char *b = image("{\"a.weight\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,10]}}",
                             "0123456789", 10, &n);
    avl_st_file *f;
    assert_int_equal(avl_st_file_open_memory(b, n, "m.safetensors", &f), AVL_E_FORMAT);
    assert_string_equal(avl_last_error(),
                        "m.safetensors: tensor 'a.weight' has shape [2,3] BF16 (12 bytes) but spans 10 bytes");
    free(b);
}

static void test_bad_offsets(void **state)
{
    (void)state;
    /* The file lost its last bytes. */
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "0123456789", 10,
                     AVL_E_FORMAT, "tensor 'a' ends at byte 16 of the data section, past its end (10 bytes");
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[5,4]}}", "0123456789", 10, AVL_E_FORMAT,
                     "tensor 'a' has data_offsets [5,4] that end before they begin");
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", "0", 1, AVL_E_FORMAT,
                     "tensor 'a' has no \"data_offsets\"");
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", "0", 1, AVL_E_FORMAT,
                     "tensor 'a' has no \"data_offsets\"");

    /* A real file truncated on disk. */
    const char *dir = avl_test_dir("st_bad_trunc");
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    assert_int_equal(avl_st_writer_add(w, "w", AVL_DTYPE_F32, 1, (int64_t[]){4}, (float[]){1, 2, 3, 4}), AVL_OK);
    const char *p = save_to(w, dir, "t.safetensors");
    avl_st_writer_free(w);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(truncate(p, st.st_size - 3), 0);
    avl_st_file *f;
    AVL_EXPECT_ERROR(avl_st_file_open(p, &f), AVL_E_FORMAT, p, "tensor 'w' ends at byte 16", "13 bytes");

    /* Gaps and trailing bytes are accepted (see docs/safetensors.md). */
    size_t n;
    unsigned char *b = image("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},"
                             "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                             "0123456789", 10, &n);
    assert_int_equal(avl_st_file_open_memory(b, n, "gap", &f), AVL_OK);
    avl_tensor_view t;
    assert_int_equal(avl_st_file_at(f, 1, &t), AVL_OK);
    assert_string_equal(t.name, "a");
    assert_memory_equal(t.data, "45", 2);
    avl_st_file_close(f);
    free(b);
}

static void test_bad_overlap(void **state)
{
    (void)state;
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"U8\",\"shape\":[6],\"data_offsets\":[0,6]},"
                     "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]},"
                     "\"c\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
                     "0123456789", 10, AVL_E_FORMAT, "tensors 'a' [0,6) and 'c' [4,8) overlap");
    /* A long span hides behind a short one that starts later. */
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"U8\",\"shape\":[10],\"data_offsets\":[0,10]},"
                     "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                     "0123456789", 10, AVL_E_FORMAT, "tensors 'a' [0,10) and 'b' [1,2) overlap");
    /* Empty spans overlap nothing. */
    size_t n;
    unsigned char *b = image("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                             "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]}}",
                             "0123", 4, &n);
    avl_st_file *f;
    assert_int_equal(avl_st_file_open_memory(b, n, "m", &f), AVL_OK);
    avl_st_file_close(f);
    free(b);
}

static void test_bad_duplicate_names(void **state)
{
    (void)state;
    EXPECT_BAD_IMAGE("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                     "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                     "01", 2, AVL_E_FORMAT, "duplicate tensor name");
}

static void test_bad_metadata(void **state)
{
    (void)state;
    EXPECT_BAD_IMAGE("{\"__metadata__\":[1]}", NULL, 0, AVL_E_FORMAT, "\"__metadata__\" is not an object of strings");
    EXPECT_BAD_IMAGE("{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", NULL, 0, AVL_E_FORMAT,
                     "\"__metadata__\" value for 'n' is not a string");
}

/* Control characters in names are shown as '?' so the message stays on one line. */
static void test_bad_name_in_message_one_line(void **state)
{
    (void)state;
    EXPECT_BAD_IMAGE("{\"a\\nb\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1, AVL_E_FORMAT,
                     "tensor 'a?b' has unknown dtype");
    assert_null(strchr(avl_last_error(), '\n'));
}

/* ---- bad checkpoints ---- */

static const char *write_index(const char *dir, const char *text)
{
    const char *p = pj(dir, "model.safetensors.index.json");
    avl_test_write_file(p, text, strlen(text));
    return p;
}

static void test_bad_missing_shard(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_bad_shard_missing");
    write_image(dir, "model-00001-of-00002.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                "x", 1);
    const char *idx = write_index(dir, "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                                       "\"b\":\"model-00002-of-00002.safetensors\"}}");
    avl_st_set *s = (avl_st_set *)1;
    AVL_EXPECT_ERROR(avl_st_open_dir(dir, &s), AVL_E_IO, idx, "shard 'model-00002-of-00002.safetensors' is missing");
    assert_null(s);
}

static void test_bad_shard_lacks_tensor(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_bad_shard_lacks");
    write_image(dir, "s1.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1);
    write_image(dir, "s2.safetensors", "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "y", 1);
    /* "b" exists, but in the other shard; "c" nowhere. */
    const char *idx = write_index(dir, "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\"}}");
    avl_st_set *s;
    AVL_EXPECT_ERROR(avl_st_open_dir(dir, &s), AVL_E_FORMAT, idx,
                     "weight_map puts tensor 'b' in s1.safetensors, which does not hold it");
    write_index(dir, "{\"weight_map\":{\"a\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}}");
    AVL_EXPECT_ERROR(avl_st_open_dir(idx, &s), AVL_E_FORMAT, idx,
                     "weight_map puts tensor 'c' in s2.safetensors, which does not hold it");
}

static void test_bad_tensor_in_two_shards(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_bad_two_shards");
    const char *p1 = write_image(dir, "s1.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1);
    const char *p2 = write_image(dir, "s2.safetensors",
                                 "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                                 "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                                 "yz", 2);
    const char *idx = write_index(dir, "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}");
    avl_st_set *s;
    AVL_EXPECT_ERROR(avl_st_open_dir(dir, &s), AVL_E_FORMAT, idx, "tensor 'a' is in two shards", p1, p2);
}

static void test_bad_index(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_bad_index");
    avl_st_set *s;
    const char *idx = write_index(dir, "{\"weight_map\": {\"a\": ");
    AVL_EXPECT_ERROR(avl_st_open_dir(dir, &s), AVL_E_FORMAT, idx, "index is not valid JSON");
    write_index(dir, "{\"metadata\": {}}");
    AVL_EXPECT_ERROR(avl_st_open_dir(dir, &s), AVL_E_FORMAT, idx, "index has no \"weight_map\" object");
    write_index(dir, "{\"weight_map\": {\"a\": 3}}");
    AVL_EXPECT_ERROR(avl_st_open_dir(dir, &s), AVL_E_FORMAT, idx, "weight_map entry for 'a' is not a file name");
    write_index(dir, "{\"weight_map\": {\"a\": \"../x.safetensors\"}}");
    AVL_EXPECT_ERROR(avl_st_open_dir(dir, &s), AVL_E_FORMAT, idx, "'../x.safetensors', which is not a file in the checkpoint folder");
    write_index(dir, "{\"weight_map\": {\"a\": \"s.safetensors\", \"a\": \"t.safetensors\"}}");
    AVL_EXPECT_ERROR(avl_st_open_dir(dir, &s), AVL_E_FORMAT, idx, "duplicate tensor name in the index");
    /* A bad shard's own error comes through, naming the shard. */
    const char *sp = pj(dir, "s.safetensors");
    avl_test_write_file(sp, "", 0);
    write_index(dir, "{\"weight_map\": {\"a\": \"s.safetensors\"}}");
    AVL_EXPECT_ERROR(avl_st_open_dir(dir, &s), AVL_E_FORMAT, sp, "file is empty");
}

static void test_writer_bad_args(void **state)
{
    (void)state;
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    uint8_t x = 0;
    AVL_EXPECT_ERROR(avl_st_writer_add(w, "__metadata__", AVL_DTYPE_U8, 0, NULL, &x), AVL_E_ARG, "reserved");
    AVL_EXPECT_ERROR(avl_st_writer_add(w, "a", (avl_dtype)99, 0, NULL, &x), AVL_E_ARG, "'a'", "unknown dtype");
    AVL_EXPECT_ERROR(avl_st_writer_add(w, "a", AVL_DTYPE_U8, 9, (int64_t[9]){1}, &x), AVL_E_ARG, "'a'", "dimensions");
    AVL_EXPECT_ERROR(avl_st_writer_add(w, "a", AVL_DTYPE_U8, 1, (int64_t[]){-2}, &x), AVL_E_ARG, "'a'", "negative shape [-2]");
    AVL_EXPECT_ERROR(avl_st_writer_add(w, "a", AVL_DTYPE_U8, 1, (int64_t[]){1}, NULL), AVL_E_ARG, "'a'", "no data");
    AVL_EXPECT_ERROR(avl_st_writer_add(w, "\xff", AVL_DTYPE_U8, 0, NULL, &x), AVL_E_ARG, "not UTF-8");
    AVL_EXPECT_ERROR(avl_st_writer_add(w, "a", AVL_DTYPE_I64, 2, (int64_t[]){INT64_MAX, 2}, &x), AVL_E_ARG, "too large");
    AVL_EXPECT_ERROR(avl_st_writer_save_sharded(w, "/tmp", 0), AVL_E_ARG, "max_shard_bytes");
    AVL_EXPECT_ERROR(avl_st_writer_save(w, "/nonexistent/dir/x.safetensors"), AVL_E_IO, "/nonexistent/dir/x.safetensors",
                     "cannot write");
    avl_st_writer_free(w);
}

/* ---- conversions ---- */

static uint32_t f2u(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static void test_bf16_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = avl_bf16_to_f32((uint16_t)h);
        assert_int_equal(f2u(f), h << 16);
        uint16_t back = avl_f32_to_bf16(f);
        if (isnan(f)) assert_int_equal(back, 0x7FC0);
        else assert_int_equal(back, h);
    }
}

static void test_f16_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = avl_f16_to_f32((uint16_t)h);
        uint32_t e = (h >> 10) & 31, m = h & 1023;
        double want = e == 0 ? ldexp((double)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024.0 + m, (int)e - 25);
        if (h & 0x8000) want = -want;
        if (isnan(want)) assert_true(isnan(f));
        else assert_true((double)f == want && !signbit(f) == !signbit(want));
        assert_int_equal(avl_f32_to_f16(f), h); /* NaN payloads survive too */
    }
}

static void test_known_roundings(void **state)
{
    (void)state;
    /* bf16: 1 + 2^-8 is half-way between 1 and 1 + 2^-7: ties to even (1.0). */
    assert_int_equal(avl_f32_to_bf16(1.0f + 0x1p-8f), 0x3F80);
    assert_int_equal(avl_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-23f), 0x3F81);
    assert_int_equal(avl_f32_to_bf16(1.0f + 0x1p-7f + 0x1p-8f), 0x3F82); /* odd + half -> even, up */
    assert_int_equal(avl_f32_to_bf16(-2.0f), 0xC000);
    assert_int_equal(avl_f32_to_bf16(INFINITY), 0x7F80);
    assert_int_equal(avl_f32_to_bf16(3.4028235e38f), 0x7F80); /* FLT_MAX rounds up to inf */
    assert_int_equal(avl_f32_to_bf16(-NAN), 0x7FC0);
    assert_int_equal(avl_f32_to_bf16(u2f(0x7F800001u)), 0x7FC0); /* signalling NaN stays NaN */
    assert_int_equal(avl_f32_to_bf16(u2f(0x00000001u)), 0x0000);  /* smallest subnormal -> 0 */
    assert_int_equal(avl_f32_to_bf16(u2f(0x00008000u)), 0x0000);  /* tie to even (0) */
    assert_int_equal(avl_f32_to_bf16(u2f(0x00018000u)), 0x0002);  /* tie to even (2) */
    /* f16 */
    assert_int_equal(avl_f32_to_f16(1.0f), 0x3C00);
    assert_int_equal(avl_f32_to_f16(65504.0f), 0x7BFF);
    assert_int_equal(avl_f32_to_f16(65519.0f), 0x7BFF);
    assert_int_equal(avl_f32_to_f16(65520.0f), 0x7C00); /* half-way to 65536: even is inf */
    assert_int_equal(avl_f32_to_f16(-1e10f), 0xFC00);
    assert_int_equal(avl_f32_to_f16(1.0f + 0x1p-11f), 0x3C00);             /* tie -> even */
    assert_int_equal(avl_f32_to_f16(1.0f + 0x1p-10f + 0x1p-11f), 0x3C02);  /* tie -> even, up */
    assert_int_equal(avl_f32_to_f16(0x1p-14f), 0x0400);                    /* min normal */
    assert_int_equal(avl_f32_to_f16(0x1p-24f), 0x0001);                    /* min subnormal */
    assert_int_equal(avl_f32_to_f16(0x1p-25f), 0x0000);                    /* tie -> 0 */
    assert_int_equal(avl_f32_to_f16(0x1.8p-25f), 0x0001);
    assert_int_equal(avl_f32_to_f16(0x1.8p-24f), 0x0002);                  /* 1.5 units: tie -> 2 */
    assert_int_equal(avl_f32_to_f16(0x1.ffcp-15f), 0x0400);                /* 1023.5 units: tie -> 1024, the min normal */
    assert_int_equal(avl_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(avl_f32_to_f16(u2f(0x7F800001u)) & 0x7C00, 0x7C00);
    assert_true((avl_f32_to_f16(u2f(0x7F800001u)) & 0x3FF) != 0); /* still a NaN */
    assert_int_equal(avl_f32_to_f16(u2f(0xFFC00000u)), 0xFE00);
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) static uint16_t hw_f16(float x) { return (uint16_t)_cvtss_sh(x, 0); }
#endif

/* An independent bf16 rounding: pick the nearer of the two neighbours in double precision. */
static uint16_t ref_bf16(float x)
{
    uint32_t u = f2u(x);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    if ((u & 0xFFFF) == 0) return lo;
    double dl = fabs((double)x - (double)avl_bf16_to_f32(lo));
    double dh = isinf(avl_bf16_to_f32(hi)) ? ldexp(1.0, 128) - fabs((double)x)
                                          : fabs((double)avl_bf16_to_f32(hi) - (double)x);
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return (lo & 1) ? hi : lo;
}

static void test_f32_conversions_sampled(void **state)
{
    (void)state;
#if defined(__x86_64__)
    unsigned a, b, c, d;
    bool hw = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
#else
    bool hw = false;
#endif
    for (uint64_t u = 0; u < 0x100000000ull; u += 997) {
        float x = u2f((uint32_t)u);
        if (isnan(x)) {
            assert_true(isnan(avl_f16_to_f32(avl_f32_to_f16(x))));
            assert_int_equal(avl_f32_to_bf16(x), 0x7FC0);
            continue;
        }
#if defined(__x86_64__)
        if (hw && avl_f32_to_f16(x) != hw_f16(x))
            fail_msg("f32 0x%08x -> f16 0x%04x, F16C says 0x%04x", (unsigned)u, avl_f32_to_f16(x), hw_f16(x));
#endif
        if (avl_f32_to_bf16(x) != ref_bf16(x))
            fail_msg("f32 0x%08x -> bf16 0x%04x, reference 0x%04x", (unsigned)u, avl_f32_to_bf16(x), ref_bf16(x));
    }
    (void)hw;
}

static void test_convert_to_f32(void **state)
{
    (void)state;
    unsigned char buf[64];
    float want[5] = {1.5f, -2.0f, 0.0f, 65504.0f, 0x1p-24f}, got[5];
    /* Unaligned sources (offset 1). */
    for (int i = 0; i < 5; i++) {
        uint16_t h = avl_f32_to_f16(want[i]);
        memcpy(buf + 1 + 2 * i, &h, 2);
    }
    assert_int_equal(avl_convert_to_f32(AVL_DTYPE_F16, buf + 1, got, 5), AVL_OK);
    assert_memory_equal(got, want, sizeof want);
    for (int i = 0; i < 4; i++) {
        uint16_t h = avl_f32_to_bf16(want[i]);
        memcpy(buf + 1 + 2 * i, &h, 2);
    }
    assert_int_equal(avl_convert_to_f32(AVL_DTYPE_BF16, buf + 1, got, 4), AVL_OK);
    assert_true(got[0] == 1.5f && got[1] == -2.0f && got[2] == 0.0f && got[3] == 65536.0f);
    memcpy(buf + 3, want, sizeof want);
    assert_int_equal(avl_convert_to_f32(AVL_DTYPE_F32, buf + 3, got, 5), AVL_OK);
    assert_memory_equal(got, want, sizeof want);
    assert_int_equal(avl_convert_to_f32(AVL_DTYPE_F32, NULL, NULL, 0), AVL_OK);
    AVL_EXPECT_ERROR(avl_convert_to_f32(AVL_DTYPE_I64, buf, got, 1), AVL_E_ARG, "I64", "not a float type");
    AVL_EXPECT_ERROR(avl_convert_to_f32(AVL_DTYPE_F32, buf, got, -1), AVL_E_ARG, "negative");
}

/* ---- allocation failures: every N-th allocation fails once, nothing leaks (ASan) ---- */

typedef avl_status (*fallible)(const char *dir);

static avl_status op_write(const char *dir)
{
    avl_st_writer *w;
    avl_status rc = avl_st_writer_new(&w);
    if (rc) return rc;
    for (int i = 0; i < NSPECS && !rc; i++) {
        static unsigned char zeros[256];
        rc = avl_st_writer_add(w, g_specs[i].name, g_specs[i].dtype, g_specs[i].ndim, g_specs[i].shape, zeros);
    }
    for (int i = 0; i < 20 && !rc; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", i);
        rc = avl_st_writer_add(w, name, AVL_DTYPE_F32, 1, (int64_t[]){1}, (float[]){1});
    }
    if (!rc) rc = avl_st_writer_set_metadata(w, "format", "pt");
    if (!rc) rc = avl_st_writer_set_metadata(w, "a", "b");
    if (!rc) rc = avl_st_writer_set_metadata(w, "a", "c");
    if (!rc) rc = avl_st_writer_save(w, pj(dir, "model.safetensors"));
    if (!rc) rc = avl_st_writer_save_sharded(w, pj(dir, "sh"), 64);
    avl_st_writer_free(w);
    return rc;
}

static avl_status op_read_file(const char *dir)
{
    avl_st_file *f;
    avl_status rc = avl_st_file_open(pj(dir, "model.safetensors"), &f);
    avl_st_file_close(f);
    return rc;
}

static avl_status op_read_memory(const char *dir)
{
    (void)dir;
    static const char h[] = "{\"__metadata__\":{\"k\":\"v\",\"k2\":\"v2\"},"
                            "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                            "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}";
    size_t n;
    unsigned char *b = image(h, "xy", 2, &n);
    avl_st_file *f;
    avl_status rc = avl_st_file_open_memory(b, n, "m", &f);
    avl_st_file_close(f);
    free(b);
    return rc;
}

static avl_status op_read_set(const char *dir)
{
    avl_st_set *s;
    avl_status rc = avl_st_open_dir(pj(dir, "sh"), &s);
    if (!rc && avl_st_count(s) != NSPECS + 20) rc = AVL_E_INTERNAL;
    avl_st_close(s);
    if (rc) return rc;
    rc = avl_st_open_dir(dir, &s);
    avl_st_close(s);
    return rc;
}

static void run_fault_loop(const char *what, fallible op, const char *dir)
{
    for (int64_t n = 1;; n++) {
        avl__alloc_fail_after(n);
        avl_status rc = op(dir);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) break;
        if (rc != AVL_E_NOMEM)
            fail_msg("%s: allocation %lld failing gave %s (%s), not out of memory", what, (long long)n,
                     avl_status_str(rc), avl_last_error());
        if (n > 100000) fail_msg("%s: never succeeds", what);
    }
}

static void test_fault_injection(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_fault");
    char d[4200];
    snprintf(d, sizeof d, "%s", dir);
    run_fault_loop("write", op_write, d);
    run_fault_loop("read file", op_read_file, d);
    run_fault_loop("read memory", op_read_memory, d);
    run_fault_loop("read set", op_read_set, d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_reference_empty),
        cmocka_unit_test(test_reference_f32),
        cmocka_unit_test(test_reference_order_and_escapes),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_open_dir_single),
        cmocka_unit_test(test_lookup_many),
        cmocka_unit_test(test_sharded_roundtrip),
        cmocka_unit_test(test_sharded_unindexed_tensor),
        cmocka_unit_test(test_bad_missing_file),
        cmocka_unit_test(test_bad_zero_byte_file),
        cmocka_unit_test(test_bad_short_file),
        cmocka_unit_test(test_bad_header_length_lies),
        cmocka_unit_test(test_bad_header_too_large),
        cmocka_unit_test(test_bad_header_not_json),
        cmocka_unit_test(test_bad_unknown_dtype),
        cmocka_unit_test(test_bad_shape),
        cmocka_unit_test(test_bad_shape_bytes_mismatch),
        cmocka_unit_test(test_bad_offsets),
        cmocka_unit_test(test_bad_overlap),
        cmocka_unit_test(test_bad_duplicate_names),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_name_in_message_one_line),
        cmocka_unit_test(test_bad_missing_shard),
        cmocka_unit_test(test_bad_shard_lacks_tensor),
        cmocka_unit_test(test_bad_tensor_in_two_shards),
        cmocka_unit_test(test_bad_index),
        cmocka_unit_test(test_writer_bad_args),
        cmocka_unit_test(test_bf16_exhaustive),
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_known_roundings),
        cmocka_unit_test(test_f32_conversions_sampled),
        cmocka_unit_test(test_convert_to_f32),
        cmocka_unit_test(test_fault_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
