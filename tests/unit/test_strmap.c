/* tests/unit/test_strmap.c: the shared string -> int64 map (src/base/strmap.h): lookups,
 * forced collisions, growth, many keys, borrowed vs copied keys, iteration, and allocation
 * failures at every step (ASan checks that nothing leaks). */
#include "avl_test.h"

#include <stdio.h>
#include <string.h>

#include "base/strmap.h"

static void test_basic(void **state)
{
    (void)state;
    avl__strmap m = {0};
    assert_int_equal(avl__strmap_getz(&m, "absent", -7), -7); /* a zeroed map is empty */
    assert_null(avl__strmap_findz(&m, "absent"));
    assert_int_equal(avl__strmap_putz(&m, "cat", 1), AVL_OK);
    assert_int_equal(avl__strmap_putz(&m, "ca", 2), AVL_OK);
    assert_int_equal(avl__strmap_putz(&m, "catalogue", 3), AVL_OK);
    assert_int_equal(avl__strmap_put(&m, "a\0b", 3, 4), AVL_OK); /* bytes, not C strings */
    assert_int_equal(avl__strmap_put(&m, "a\0c", 3, 5), AVL_OK);
    assert_int_equal(avl__strmap_put(&m, NULL, 0, 6), AVL_OK); /* the empty key */
    assert_int_equal(avl__strmap_putz(&m, "neg", -1), AVL_OK); /* any value, -1 included */
    assert_int_equal(m.count, 7);
    assert_int_equal(avl__strmap_getz(&m, "cat", -9), 1);
    assert_int_equal(avl__strmap_getz(&m, "ca", -9), 2);
    assert_int_equal(avl__strmap_getz(&m, "catalogue", -9), 3);
    assert_int_equal(avl__strmap_getz(&m, "c", -9), -9);
    assert_int_equal(avl__strmap_getz(&m, "a", -9), -9);
    assert_int_equal(avl__strmap_get(&m, "a\0b", 3, -9), 4);
    assert_int_equal(avl__strmap_get(&m, "a\0c", 3, -9), 5);
    assert_int_equal(avl__strmap_getz(&m, "", -9), 6);
    assert_int_equal(avl__strmap_get(&m, NULL, 0, -9), 6);
    int64_t *neg = avl__strmap_findz(&m, "neg");
    assert_non_null(neg);
    assert_int_equal(*neg, -1);
    /* overwrite; writing through find */
    assert_int_equal(avl__strmap_putz(&m, "cat", 10), AVL_OK);
    *avl__strmap_findz(&m, "ca") += 20;
    assert_int_equal(m.count, 7);
    assert_int_equal(avl__strmap_getz(&m, "cat", -9), 10);
    assert_int_equal(avl__strmap_getz(&m, "ca", -9), 22);
    /* emplace: inserted once with 0, found after */
    int64_t *v;
    bool added;
    assert_int_equal(avl__strmap_emplacez(&m, "dog", &v, &added), AVL_OK);
    assert_true(added);
    assert_int_equal(*v, 0);
    *v = 42;
    assert_int_equal(avl__strmap_emplacez(&m, "dog", &v, &added), AVL_OK);
    assert_false(added);
    assert_int_equal(*v, 42);
    /* a copied key does not depend on the caller's buffer */
    char buf[8];
    strcpy(buf, "tmp");
    assert_int_equal(avl__strmap_putz(&m, buf, 8), AVL_OK);
    strcpy(buf, "xxx");
    assert_int_equal(avl__strmap_getz(&m, "tmp", -9), 8);
    /* clear keeps the map usable */
    avl__strmap_clear(&m);
    assert_int_equal(m.count, 0);
    assert_null(avl__strmap_findz(&m, "cat"));
    assert_int_equal(avl__strmap_putz(&m, "cat", 11), AVL_OK);
    assert_int_equal(avl__strmap_getz(&m, "cat", -9), 11);
    avl__strmap_free(&m);
    avl__strmap_free(&m); /* twice is fine */
    avl__strmap_free(NULL);
    avl__strmap_clear(&m); /* on a zeroed map too */
}

/* Keys that all land in the same slot of a 64-slot table: long probe chains, wrap-around at
 * the end of the table, and growth that must keep every one of them. */
static void test_collisions(void **state)
{
    (void)state;
    enum { N = 24 };
    char keys[N][16];
    int n = 0;
    for (int i = 0; n < N && i < 10000000; i++) {
        char k[16];
        int len = snprintf(k, sizeof k, "k%d", i);
        if ((avl__strmap_hash(k, len) & 63) == 63) memcpy(keys[n++], k, (size_t)len + 1);
    }
    assert_int_equal(n, N);
    avl__strmap m;
    assert_int_equal(avl__strmap_init(&m, 20, AVL__STRMAP_BORROW), AVL_OK); /* 64 slots */
    assert_int_equal(m.cap, 64);
    for (int i = 0; i < N; i++) {
        assert_int_equal(avl__strmap_putz(&m, keys[i], i), AVL_OK);
        for (int j = 0; j <= i; j++) assert_int_equal(avl__strmap_getz(&m, keys[j], -1), j);
        for (int j = i + 1; j < N; j++) assert_int_equal(avl__strmap_getz(&m, keys[j], -1), -1);
    }
    assert_int_equal(m.cap, 64); /* 24 keys still fit at most half full */
    /* the chain starts at the last slot and wraps to the start */
    assert_ptr_equal(m.slots[63].key, keys[0]);
    assert_ptr_equal(m.slots[0].key, keys[1]);
    /* borrowed keys are the caller's pointers */
    int64_t pos = 0, seen = 0, len, val;
    const char *k;
    while (avl__strmap_next(&m, &pos, &k, &len, &val)) {
        assert_ptr_equal(k, keys[val]);
        assert_int_equal(len, (int64_t)strlen(keys[val]));
        seen++;
    }
    assert_int_equal(seen, N);
    /* growth past the first table keeps them all */
    for (int i = 0; i < 200; i++) {
        char *extra = test_malloc(16); /* borrowed: freed after the map is done with it */
        snprintf(extra, 16, "x%d", i);
        assert_int_equal(avl__strmap_putz(&m, extra, 1000 + i), AVL_OK);
    }
    for (int j = 0; j < N; j++) assert_int_equal(avl__strmap_getz(&m, keys[j], -1), j);
    assert_true(m.cap >= 512);
    /* free the borrowed extras */
    pos = 0;
    while (avl__strmap_next(&m, &pos, &k, NULL, &val))
        if (val >= 1000) test_free((void *)k);
    avl__strmap_free(&m);
}

/* Many keys into a map that starts zeroed (copied keys) and one sized up front (borrowed). */
static void test_many_keys(void **state)
{
    (void)state;
    enum { N = 50000 };
    avl__strmap a = {0}, b;
    char *store = test_malloc((size_t)N * 16);
    assert_int_equal(avl__strmap_init(&b, N, AVL__STRMAP_BORROW), AVL_OK);
    int64_t cap0 = b.cap;
    for (int i = 0; i < N; i++) {
        char *k = store + (size_t)i * 16;
        snprintf(k, 16, "w%07d", i * 7919 % 1000003);
        assert_int_equal(avl__strmap_putz(&a, k, i), AVL_OK);
        assert_int_equal(avl__strmap_putz(&b, k, -i), AVL_OK);
        assert_true(a.count * 2 <= a.cap);
        assert_int_equal(a.cap & (a.cap - 1), 0); /* a power of two */
    }
    assert_int_equal(b.cap, cap0); /* sized up front: never grew */
    assert_int_equal(a.count, N);
    assert_int_equal(b.count, N);
    for (int i = 0; i < N; i++) {
        const char *k = store + (size_t)i * 16;
        assert_int_equal(avl__strmap_getz(&a, k, -1), i);
        assert_int_equal(avl__strmap_getz(&b, k, 1), -i);
    }
    assert_int_equal(avl__strmap_getz(&a, "w", -1), -1);
    assert_int_equal(avl__strmap_getz(&a, "w00000000", -1), -1);
    /* iteration visits each key once, with its value; copied keys are NUL-terminated */
    int64_t pos = 0, seen = 0, sum = 0, len, val;
    const char *k;
    while (avl__strmap_next(&a, &pos, &k, &len, &val)) {
        assert_int_equal((int64_t)strlen(k), len);
        assert_string_equal(k, store + (size_t)val * 16);
        seen++;
        sum += val;
    }
    assert_int_equal(seen, N);
    assert_int_equal(sum, (int64_t)N * (N - 1) / 2);
    assert_false(avl__strmap_next(&a, &pos, &k, &len, &val)); /* stays at the end */
    avl__strmap_free(&a);
    avl__strmap_free(&b);
    test_free(store);
}

/* Every allocation failure while filling a copying map returns AVL_E_NOMEM, leaves what was
 * inserted before it intact and the failed key absent, and leaks nothing. */
static void test_alloc_failures(void **state)
{
    (void)state;
    enum { N = 300 };
    int64_t k_ok = 0;
    for (int64_t k = 1; k < 10000; k++) {
        avl__strmap m = {0};
        avl__alloc_fail_after(k);
        avl_status rc = AVL_OK;
        int i;
        for (i = 0; i < N && !rc; i++) {
            char key[16];
            snprintf(key, sizeof key, "key%d", i);
            rc = avl__strmap_putz(&m, key, i);
            if (!rc && i % 3 == 0) rc = avl__strmap_putz(&m, key, i); /* overwrite: no allocation */
        }
        avl__alloc_fail_after(0);
        if (rc) {
            AVL_EXPECT_ERROR(rc, AVL_E_NOMEM, "string map: out of memory");
            int failed = i - 1;
            assert_int_equal(m.count, failed);
            for (int j = 0; j <= failed; j++) {
                char key[16];
                snprintf(key, sizeof key, "key%d", j);
                assert_int_equal(avl__strmap_getz(&m, key, -1), j < failed ? j : -1);
            }
            /* still usable after the failure */
            assert_int_equal(avl__strmap_putz(&m, "after", 1), AVL_OK);
            assert_int_equal(avl__strmap_getz(&m, "after", -1), 1);
        }
        avl__strmap_free(&m);
        if (!rc) {
            k_ok = k;
            break;
        }
    }
    assert_true(k_ok > N); /* one copy per key, plus the tables */

    /* init that cannot allocate */
    avl__strmap m;
    avl__alloc_fail_after(1);
    avl_status rc = avl__strmap_init(&m, 100, AVL__STRMAP_BORROW);
    avl_status rc0 = avl__strmap_init(&m, 0, AVL__STRMAP_BORROW); /* allocates nothing */
    avl__alloc_fail_after(0);
    AVL_EXPECT_ERROR(rc, AVL_E_NOMEM, "string map");
    assert_int_equal(rc0, AVL_OK);
    assert_true(m.borrow);
    assert_int_equal(avl__strmap_putz(&m, "static", 3), AVL_OK);
    assert_int_equal(avl__strmap_getz(&m, "static", -1), 3);
    avl__strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_collisions),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
