/* tests/support/avl_test.h: what every C test needs besides cmocka.
 *
 * Include this instead of <cmocka.h>: it brings the headers cmocka wants first.
 * AVL_TEST_DATA is tests/data in the source tree; AVL_TEST_WORK a scratch folder in the build
 * tree; each test makes its own subfolder with avl_test_dir().
 */
#ifndef AVL_TEST_H
#define AVL_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "avlens/avlens.h"

/* A fresh empty scratch folder AVL_TEST_WORK/<name> (removed first if present). Returns a
 * static buffer. */
const char *avl_test_dir(const char *name);

/* Writes len bytes to path; fails the test on error. */
void avl_test_write_file(const char *path, const void *data, size_t len);

/* Asserts rc == want and that avl_last_error() contains every given substring (NULL-ended). */
void avl_test_expect_error(int rc, int want, ...);

#define AVL_EXPECT_ERROR(rc, want, ...) avl_test_expect_error((rc), (want), __VA_ARGS__, (const char *)NULL)

#endif
