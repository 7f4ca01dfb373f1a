/* tools/avlens/cmd_run.c: `avlens run` (being written). */
#include "cli.h"
int avl_cmd_run(int argc, char **argv) { (void)argc; (void)argv; return cli_usage_error("run", "not yet"); }
