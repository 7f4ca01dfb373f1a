/* tests/unit/test_safetensors_stream.c: the streaming safetensors writer (avl_st_stream_*).
 *
 * The in-memory writer's output is checked against the reference library's bytes in
 * test_safetensors.c; here the streaming writer, driven tensor by tensor as a caller that holds
 * one tensor at a time would, must give the same files byte for byte (single file, several
 * shards with an oversized tensor, one shard, no tensors), and its misuse and failures must be
 * reported with the file's name and leave no half-written file behind.
 */
#include "avl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/internal.h"

typedef struct {
    const char *name;
    avl_dtype dtype;
    int ndim;
    int64_t shape[3];
} spec;

/* Mixed dtypes (so the layout order differs from the declaration order), a scalar, an empty
 * tensor, a name that needs escaping, and one tensor bigger than the shard limit used below. */
static const spec g_specs[] = {
    {"model.layers.1.mlp.weight", AVL_DTYPE_BF16, 2, {3, 5}},
    {"model.layers.0.mlp.weight", AVL_DTYPE_BF16, 2, {3, 5}},
    {"lm_head.weight", AVL_DTYPE_F32, 2, {16, 4}}, /* 256 bytes: a shard of its own */
    {"ids", AVL_DTYPE_I64, 1, {3}},
    {"scale", AVL_DTYPE_F16, 0, {0}},
    {"mask", AVL_DTYPE_U8, 1, {7}},
    {"empty", AVL_DTYPE_F32, 2, {0, 4}},
    {"q\"\\\n\xc3\xa9", AVL_DTYPE_I32, 1, {2}},
    {"norm.weight", AVL_DTYPE_F32, 1, {9}},
};
enum { NSPECS = sizeof g_specs / sizeof g_specs[0] };

static size_t nbytes_of(const spec *s)
{
    size_t n = avl_dtype_size(s->dtype);
    for (int d = 0; d < s->ndim; d++) n *= (size_t)s->shape[d];
    return n;
}

/* Tensor i's bytes, made on demand (as a streaming caller would). */
static unsigned char *make(int64_t i)
{
    size_t n = nbytes_of(&g_specs[i]);
    unsigned char *b = malloc(n ? n : 1);
    for (size_t j = 0; j < n; j++) b[j] = (unsigned char)(i * 37 + j * 11 + 1);
    return b;
}

static char *pj(const char *dir, const char *name)
{
    static char buf[8][4200];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 4200, "%s/%s", dir, name);
    return p;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void expect_same_file(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = read_all(a, &na), *y = read_all(b, &nb);
    if (na != nb || memcmp(x, y, na)) fail_msg("%s and %s differ (%zu and %zu bytes)", a, b, na, nb);
    free(x);
    free(y);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The in-memory writer with the first n specs. */
static avl_st_writer *writer_with(int n)
{
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    for (int i = 0; i < n; i++) {
        unsigned char *b = make(i);
        assert_int_equal(avl_st_writer_add(w, g_specs[i].name, g_specs[i].dtype, g_specs[i].ndim, g_specs[i].shape, b),
                         AVL_OK);
        free(b);
    }
    assert_int_equal(avl_st_writer_set_metadata(w, "format", "pt"), AVL_OK);
    return w;
}

/* Declares the first n specs; returns AVL_OK or the first failure. */
static avl_status declare_all(avl_st_stream *s, int n)
{
    avl_status rc = avl_st_stream_set_metadata(s, "format", "pt");
    for (int i = 0; !rc && i < n; i++)
        rc = avl_st_stream_declare(s, g_specs[i].name, g_specs[i].dtype, g_specs[i].ndim, g_specs[i].shape);
    return rc;
}

/* Writes everything the stream asks for, one freshly made tensor at a time, then finishes. */
static avl_status stream_rest(avl_st_stream *s)
{
    avl_status rc = AVL_OK;
    for (int64_t i; !rc && (i = avl_st_stream_next(s)) >= 0;) {
        unsigned char *b = make(i);
        assert_string_equal(avl_st_stream_name(s, i), g_specs[i].name);
        rc = avl_st_stream_write(s, g_specs[i].name, b, nbytes_of(&g_specs[i]));
        free(b);
    }
    return rc ? rc : avl_st_stream_finish(s);
}

/* Streams the first n specs to path (max == 0) or as shards into path. */
static avl_status stream_to(const char *path, int n, size_t max)
{
    avl_st_stream *s;
    avl_status rc = avl_st_stream_new(&s);
    if (rc) return rc;
    rc = declare_all(s, n);
    if (!rc) rc = max ? avl_st_stream_begin_sharded(s, path, max) : avl_st_stream_begin(s, path);
    if (!rc) rc = stream_rest(s);
    avl_st_stream_free(s);
    return rc;
}

static void test_single_file_identical(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_stream_single");
    for (int n = 0; n <= NSPECS; n += NSPECS) { /* no tensors, then all */
        avl_st_writer *w = writer_with(n);
        assert_int_equal(avl_st_writer_save(w, pj(dir, "mem.safetensors")), AVL_OK);
        avl_st_writer_free(w);
        assert_int_equal(stream_to(pj(dir, "str.safetensors"), n, 0), AVL_OK);
        expect_same_file(pj(dir, "mem.safetensors"), pj(dir, "str.safetensors"));
        assert_false(exists(pj(dir, "str.safetensors.tmp")));
    }
    /* and it reads back */
    avl_st_file *f;
    assert_int_equal(avl_st_file_open(pj(dir, "str.safetensors"), &f), AVL_OK);
    assert_int_equal(avl_st_file_count(f), NSPECS);
    avl_tensor_view v;
    assert_int_equal(avl_st_file_get(f, "ids", &v), AVL_OK);
    unsigned char *b = make(3);
    assert_memory_equal(v.data, b, 24);
    free(b);
    avl_st_file_close(f);
}

static void test_sharded_identical(void **state)
{
    (void)state;
    const char *root = avl_test_dir("st_stream_sharded");
    /* 40 bytes: the F32 lm_head (256) gets its own shard; the rest split by insertion order into
     * {0}, {1}, {3..6}, {7}, {8}: 6 shards, numbered as huggingface_hub lists them */
    avl_st_writer *w = writer_with(NSPECS);
    assert_int_equal(avl_st_writer_save_sharded(w, pj(root, "mem"), 40), AVL_OK);
    avl_st_writer_free(w);
    assert_int_equal(stream_to(pj(root, "str"), NSPECS, 40), AVL_OK);
    char a[4200], b[4200];
    for (int k = 0; k <= 6; k++) {
        char name[64];
        if (k < 6) snprintf(name, sizeof name, "model-%05d-of-00006.safetensors", k + 1);
        else snprintf(name, sizeof name, "model.safetensors.index.json");
        snprintf(a, sizeof a, "%s/mem/%s", root, name);
        snprintf(b, sizeof b, "%s/str/%s", root, name);
        expect_same_file(a, b);
        strcat(b, ".tmp");
        assert_false(exists(b));
    }
    avl_st_set *set;
    assert_int_equal(avl_st_open_dir(pj(root, "str"), &set), AVL_OK);
    assert_int_equal(avl_st_count(set), NSPECS);
    avl_st_close(set);

    /* one shard, and no tensors at all: still the index form */
    for (int n = 0; n <= NSPECS; n += NSPECS) {
        char m[64], s2[64];
        snprintf(m, sizeof m, "mem1_%d", n);
        snprintf(s2, sizeof s2, "str1_%d", n);
        w = writer_with(n);
        assert_int_equal(avl_st_writer_save_sharded(w, pj(root, m), 1 << 20), AVL_OK);
        avl_st_writer_free(w);
        assert_int_equal(stream_to(pj(root, s2), n, 1 << 20), AVL_OK);
        snprintf(a, sizeof a, "%s/%s/model-00001-of-00001.safetensors", root, m);
        snprintf(b, sizeof b, "%s/%s/model-00001-of-00001.safetensors", root, s2);
        expect_same_file(a, b);
        snprintf(a, sizeof a, "%s/%s/model.safetensors.index.json", root, m);
        snprintf(b, sizeof b, "%s/%s/model.safetensors.index.json", root, s2);
        expect_same_file(a, b);
    }
}

static void test_misuse(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_stream_misuse");
    const char *path = pj(dir, "m.safetensors"), *tmp = pj(dir, "m.safetensors.tmp");
    avl_st_stream *s;
    assert_int_equal(avl_st_stream_new(&s), AVL_OK);
    assert_int_equal(declare_all(s, NSPECS), AVL_OK);
    unsigned char *b = make(0);
    AVL_EXPECT_ERROR(avl_st_stream_write(s, g_specs[0].name, b, 30), AVL_E_ARG, "before avl_st_stream_begin");
    AVL_EXPECT_ERROR(avl_st_stream_finish(s), AVL_E_ARG, "before avl_st_stream_begin");
    assert_int_equal(avl_st_stream_next(s), -1);
    AVL_EXPECT_ERROR(avl_st_stream_declare(s, "ids", AVL_DTYPE_U8, 0, NULL), AVL_E_ARG, "duplicate tensor name 'ids'");
    AVL_EXPECT_ERROR(avl_st_stream_declare(s, "x", AVL_DTYPE_U8, 1, (int64_t[]){-1}), AVL_E_ARG, "'x'", "negative");

    assert_int_equal(avl_st_stream_begin(s, path), AVL_OK);
    assert_true(exists(tmp));
    assert_false(exists(path));
    AVL_EXPECT_ERROR(avl_st_stream_declare(s, "late", AVL_DTYPE_U8, 0, NULL), AVL_E_ARG, "'late'", "after writing began");
    AVL_EXPECT_ERROR(avl_st_stream_set_metadata(s, "k", "v"), AVL_E_ARG, "after writing began");
    /* layout order: by dtype rank (I64 first, then F32), not declaration order */
    assert_int_equal(avl_st_stream_next(s), 3);
    AVL_EXPECT_ERROR(avl_st_stream_write(s, g_specs[0].name, b, 30), AVL_E_ARG, path,
                     "'model.layers.1.mlp.weight' written out of order", "next tensor is 'ids'");
    AVL_EXPECT_ERROR(avl_st_stream_write(s, "nope", b, 30), AVL_E_ARG, path, "'nope' was not declared");
    AVL_EXPECT_ERROR(avl_st_stream_write(s, "ids", b, 4), AVL_E_ARG, path, "'ids' is 24 bytes (I64 [3])", "got 4");
    AVL_EXPECT_ERROR(avl_st_stream_finish(s), AVL_E_ARG, path, "0 of 9 tensors written", "the next is 'ids'");
    free(b);
    /* the errors wrote nothing: the stream goes on and gives the right file */
    assert_int_equal(stream_rest(s), AVL_OK);
    assert_false(exists(tmp));
    avl_st_writer *w = writer_with(NSPECS);
    assert_int_equal(avl_st_writer_save(w, pj(dir, "mem.safetensors")), AVL_OK);
    avl_st_writer_free(w);
    expect_same_file(path, pj(dir, "mem.safetensors"));

    /* after finish: declare more and write again */
    assert_int_equal(avl_st_stream_declare(s, "zz", AVL_DTYPE_U8, 1, (int64_t[]){1}), AVL_OK);
    assert_int_equal(avl_st_stream_begin(s, pj(dir, "again.safetensors")), AVL_OK);
    for (int64_t i; (i = avl_st_stream_next(s)) >= 0;) {
        if (i == NSPECS) {
            AVL_EXPECT_ERROR(avl_st_stream_write(s, "zz", "ab", 2), AVL_E_ARG, "again.safetensors", "'zz' is 1 bytes");
            assert_int_equal(avl_st_stream_write(s, "zz", "a", 1), AVL_OK);
            continue;
        }
        unsigned char *d = make(i);
        assert_int_equal(avl_st_stream_write(s, g_specs[i].name, d, nbytes_of(&g_specs[i])), AVL_OK);
        free(d);
    }
    AVL_EXPECT_ERROR(avl_st_stream_write(s, "zz", "a", 1), AVL_E_ARG, "after all 10 declared tensors");
    assert_int_equal(avl_st_stream_finish(s), AVL_OK);
    avl_st_file *f;
    assert_int_equal(avl_st_file_open(pj(dir, "again.safetensors"), &f), AVL_OK);
    assert_int_equal(avl_st_file_count(f), NSPECS + 1);
    avl_st_file_close(f);

    /* abandoned half way: the .tmp goes, nothing appears under the final name */
    const char *half = pj(dir, "half.safetensors"), *half_tmp = pj(dir, "half.safetensors.tmp");
    assert_int_equal(avl_st_stream_begin(s, half), AVL_OK);
    int64_t i = avl_st_stream_next(s);
    b = make(i);
    assert_int_equal(avl_st_stream_write(s, g_specs[i].name, b, nbytes_of(&g_specs[i])), AVL_OK);
    free(b);
    assert_true(exists(half_tmp));
    avl_st_stream_free(s);
    assert_false(exists(half_tmp));
    assert_false(exists(half));
    avl_st_stream_free(NULL);
    avl_st_stream_abort(NULL);
    assert_int_equal(avl_st_stream_count(NULL), 0);
    assert_null(avl_st_stream_name(NULL, 0));
}

static void test_unwritable(void **state)
{
    (void)state;
    avl_st_stream *s;
    assert_int_equal(avl_st_stream_new(&s), AVL_OK);
    assert_int_equal(declare_all(s, 3), AVL_OK);
    AVL_EXPECT_ERROR(avl_st_stream_begin(s, "/nonexistent/dir/x.safetensors"), AVL_E_IO,
                     "/nonexistent/dir/x.safetensors", "cannot write");
    assert_int_equal(avl_st_stream_next(s), -1);
    AVL_EXPECT_ERROR(avl_st_stream_begin_sharded(s, "/nonexistent/dir", 100), AVL_E_IO, "/nonexistent/dir",
                     "cannot create folder");
    AVL_EXPECT_ERROR(avl_st_stream_begin_sharded(s, "/tmp", 0), AVL_E_ARG, "max_shard_bytes");
    /* a shard that cannot be created (the folder holds a folder of that name.tmp) */
    const char *dir = avl_test_dir("st_stream_unwritable");
    char blocker[4200];
    snprintf(blocker, sizeof blocker, "%s/model-00002-of-00006.safetensors.tmp", dir);
    mkdir(blocker, 0777);
    avl_st_stream_free(s);
    assert_int_equal(avl_st_stream_new(&s), AVL_OK);
    assert_int_equal(declare_all(s, NSPECS), AVL_OK);
    assert_int_equal(avl_st_stream_begin_sharded(s, dir, 40), AVL_OK);
    avl_status rc = AVL_OK;
    for (int64_t i; !rc && (i = avl_st_stream_next(s)) >= 0;) {
        unsigned char *b = make(i);
        rc = avl_st_stream_write(s, g_specs[i].name, b, nbytes_of(&g_specs[i]));
        free(b);
    }
    AVL_EXPECT_ERROR(rc, AVL_E_IO, "model-00002-of-00006.safetensors", "cannot write");
    AVL_EXPECT_ERROR(avl_st_stream_write(s, "x", "", 0), AVL_E_IO, "an earlier write failed");
    AVL_EXPECT_ERROR(avl_st_stream_finish(s), AVL_E_IO, "model-00002-of-00006.safetensors", "an earlier write failed");
    avl_st_stream_free(s);
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    assert_false(exists(idx));
}

/* Every allocation of a whole streamed write failing in turn: out of memory or success, never a
 * leftover .tmp, and the final success gives the reference bytes. */
static avl_status op_stream(const char *dir, size_t max)
{
    return stream_to(max ? pj(dir, "sh") : pj(dir, "f.safetensors"), NSPECS, max);
}

static void test_fault_injection(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("st_stream_fault");
    avl_st_writer *w = writer_with(NSPECS);
    assert_int_equal(avl_st_writer_save(w, pj(dir, "ref.safetensors")), AVL_OK);
    avl_st_writer_free(w);
    for (int k = 0; k < 2; k++) {
        size_t max = k ? 100 : 0;
        for (int64_t n = 1;; n++) {
            avl__alloc_fail_after(n);
            avl_status rc = op_stream(dir, max);
            avl__alloc_fail_after(0);
            if (!max) assert_false(exists(pj(dir, "f.safetensors.tmp")));
            if (rc == AVL_OK) break;
            if (rc != AVL_E_NOMEM)
                fail_msg("allocation %lld failing gave %s (%s)", (long long)n, avl_status_str(rc), avl_last_error());
            if (n > 10000) fail_msg("never succeeds");
        }
    }
    expect_same_file(pj(dir, "f.safetensors"), pj(dir, "ref.safetensors"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_file_identical),
        cmocka_unit_test(test_sharded_identical),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_unwritable),
        cmocka_unit_test(test_fault_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
