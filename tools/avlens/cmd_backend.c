/* tools/avlens/cmd_backend.c: `avlens backend`: which GEMM backend runs here and on what ISA. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
    printf("usage: avlens backend [--all] [--threads N] [NAME]\n\n"
           "Prints the matrix-product backend avlens uses on this machine: its library, the\n"
           "instruction set it runs, the decode (small-M) kernel and the thread count.\n"
           "NAME is auto (default), onednn, openblas or ref.\n\n"
           "  --all         one line per backend (those that cannot run say why)\n"
           "  --threads N   describe with N threads (0: the default)\n");
}

int avl_cmd_backend(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *name = "auto";
    int all = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) {
            all = 1;
        } else if (!strcmp(argv[i], "--threads")) {
            long long t;
            if (i + 1 >= argc) return cli_usage_error("backend", "--threads needs a value");
            if (!cli_parse_int("backend", "--threads", argv[++i], &t)) return 2;
            avl_set_threads((int)t);
        } else if (argv[i][0] == '-') {
            return cli_usage_error("backend", "unknown option '%s'", argv[i]);
        } else {
            name = argv[i];
        }
    }
    char buf[512];
    if (!all) {
        avl_status rc = avl_backend_describe(name, buf, sizeof buf);
        if (rc != AVL_OK) return cli_fail("backend", rc);
        printf("%s\n", buf);
        return 0;
    }
    static const char *names[] = {"auto", "onednn", "openblas", "ref"};
    for (int i = 0; i < 4; i++) {
        avl_status rc = avl_backend_describe(names[i], buf, sizeof buf);
        printf("%-9s %s\n", names[i], rc == AVL_OK ? buf : avl_last_error());
    }
    return 0;
}
