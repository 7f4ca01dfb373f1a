/* tests/unit/test_json.c: JSON parsing through the library's allocator (src/base/json.h): a
 * good parse, bad input as AVL_E_FORMAT with jansson's position, and every allocation failure
 * as AVL_E_NOMEM (never as a syntax error), leaking nothing (ASan). */
#include "avl_test.h"

#include <string.h>

#include "base/json.h"

static const char DOC[] = "{\"name\": \"model.layers.0.mlp.up_proj.weight\", \"shape\": [3, 4],"
                          " \"nested\": {\"a\": [1, 2.5, \"x\", null, true], \"long key with spaces\": \"v\"}}";

static void test_parse(void **state)
{
    (void)state;
    json_t *root;
    json_error_t jerr;
    assert_int_equal(avl__json_loadb(DOC, strlen(DOC), JSON_REJECT_DUPLICATES, "doc.json", &root, &jerr), AVL_OK);
    assert_true(json_is_object(root));
    assert_string_equal(json_string_value(json_object_get(root, "name")), "model.layers.0.mlp.up_proj.weight");
    json_decref(root);
    assert_false(avl__json_oom());

    const char bad[] = "{\"a\": 1,\n \"b\": }";
    assert_int_equal(avl__json_loadb(bad, strlen(bad), 0, "bad.json", &root, &jerr), AVL_E_FORMAT);
    assert_null(root);
    AVL_EXPECT_ERROR(AVL_E_FORMAT, AVL_E_FORMAT, "bad.json: not valid JSON", "line 2");
    assert_int_equal(jerr.line, 2);

    const char dup[] = "{\"a\": 1, \"a\": 2}";
    assert_int_equal(avl__json_loadb(dup, strlen(dup), JSON_REJECT_DUPLICATES, "dup.json", &root, NULL), AVL_E_FORMAT);
    AVL_EXPECT_ERROR(AVL_E_FORMAT, AVL_E_FORMAT, "dup.json: not valid JSON", "duplicate");
}

static void test_alloc_failures(void **state)
{
    (void)state;
    int64_t k_ok = 0;
    for (int64_t k = 1; k < 10000; k++) {
        json_t *root = NULL;
        json_error_t jerr;
        avl__alloc_fail_after(k);
        avl_status rc = avl__json_loadb(DOC, strlen(DOC), JSON_REJECT_DUPLICATES, "doc.json", &root, &jerr);
        avl__alloc_fail_after(0);
        if (!rc) {
            json_decref(root);
            k_ok = k;
            break;
        }
        AVL_EXPECT_ERROR(rc, AVL_E_NOMEM, "doc.json: out of memory parsing JSON");
        assert_null(root);
    }
    assert_true(k_ok > 5); /* the parse allocates: injection reached jansson */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
