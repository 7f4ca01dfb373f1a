/* tools/avlens/cmd_version.c: `avlens version`: the version and the libraries built in. */
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <utf8proc.h>

#include "cli.h"

int avl_cmd_version(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: avlens version\n\nPrints the avlens version and the versions of the libraries it was built with.\n");
        return 0;
    }
    printf("avlens %s\n", AVLENS_VERSION);
    printf("jansson %s\n", JANSSON_VERSION);
    printf("pcre2 %d.%d\n", PCRE2_MAJOR, PCRE2_MINOR);
    printf("utf8proc %s\n", utf8proc_version());
    return 0;
}
