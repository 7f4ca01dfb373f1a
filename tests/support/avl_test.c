/* tests/support/avl_test.c: shared test helpers. */
#include "avl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *avl_test_dir(const char *name)
{
    static char path[4096];
    char cmd[8300];
    snprintf(path, sizeof path, "%s/%s", AVL_TEST_WORK, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (system(cmd) != 0) fail_msg("cannot make scratch folder %s", path);
    return path;
}

void avl_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    if (len && fwrite(data, 1, len, f) != len) fail_msg("short write %s", path);
    fclose(f);
}

void avl_test_expect_error(int rc, int want, ...)
{
    if (rc != want)
        fail_msg("status %d (%s), wanted %d (%s); detail: %s", rc, avl_status_str(rc), want,
                 avl_status_str(want), avl_last_error());
    va_list ap;
    va_start(ap, want);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *)) {
        if (!strstr(avl_last_error(), s))
            fail_msg("error detail \"%s\" does not mention \"%s\"", avl_last_error(), s);
    }
    va_end(ap);
}
