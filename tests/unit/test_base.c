/* tests/unit/test_base.c: status texts, error detail, allocation fault injection. */
#include "avl_test.h"

#include <stdio.h>
#include <string.h>

#include "base/internal.h"

static void test_status_texts(void **state)
{
    (void)state;
    assert_string_equal(avl_status_str(AVL_OK), "ok");
    for (int s = AVL_OK; s >= AVL_E_INTERNAL; s--)
        assert_string_not_equal(avl_status_str((avl_status)s), "unknown status");
    assert_string_equal(avl_status_str((avl_status)-999), "unknown status");
}

static void test_error_detail_and_wrap(void **state)
{
    (void)state;
    avl_clear_error();
    assert_string_equal(avl_last_error(), "");
    int rc = avl__err(AVL_E_FORMAT, "%s: header is %d bytes", "x.safetensors", 12);
    assert_int_equal(rc, AVL_E_FORMAT);
    assert_string_equal(avl_last_error(), "x.safetensors: header is 12 bytes");
    rc = avl__err_wrap(AVL_E_CONFIG, "loading %s", "ckpt");
    assert_int_equal(rc, AVL_E_CONFIG);
    assert_string_equal(avl_last_error(), "loading ckpt: x.safetensors: header is 12 bytes");
}

static void test_alloc_fault_injection(void **state)
{
    (void)state;
    avl__alloc_fail_after(2);
    void *a = avl__malloc(8);
    void *b = avl__malloc(8);
    void *c = avl__calloc(2, 2);
    assert_non_null(a);
    assert_null(b);
    assert_null(c);
    assert_int_equal(avl__alloc_fail_after(0), 3);
    b = avl__malloc(8);
    assert_non_null(b);
    avl__free(a);
    avl__free(b);
}

static void test_read_file_errors(void **state)
{
    (void)state;
    char *buf;
    size_t n;
    AVL_EXPECT_ERROR(avl__read_file("/nonexistent/zz.json", &buf, &n), AVL_E_IO, "/nonexistent/zz.json",
                     "cannot open");
    assert_null(buf);
    const char *dir = avl_test_dir("base_read");
    char path[4200];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    avl_test_write_file(path, "hello", 5);
    assert_int_equal(avl__read_file(path, &buf, &n), AVL_OK);
    assert_int_equal(n, 5);
    assert_string_equal(buf, "hello");
    avl__free(buf);
    AVL_EXPECT_ERROR(avl__read_file(dir, &buf, &n), AVL_E_IO, "not a regular file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_texts),
        cmocka_unit_test(test_error_detail_and_wrap),
        cmocka_unit_test(test_alloc_fault_injection),
        cmocka_unit_test(test_read_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
