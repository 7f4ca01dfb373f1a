/* tools/avlens/cli.h: what the subcommands share.
 *
 * Each subcommand is one file cmd_<name>.c with `int avl_cmd_<name>(int argc, char **argv)`,
 * where argv[0] is the subcommand's name; it returns the process exit code (0 ok, 1 failure,
 * 2 usage error) and is listed in main.c's table.
 */
#ifndef AVL_CLI_H
#define AVL_CLI_H

#include <stdbool.h>

#include "avlens/avlens.h"

/* Prints "avlens <cmd>: <detail of the last error>" to stderr and returns 1. */
int cli_fail(const char *cmd, avl_status rc);

/* Prints "avlens <cmd>: <message>" and a hint to run --help, returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when argv holds -h or --help. */
bool cli_wants_help(int argc, char **argv);

/* A finite number in [lo, hi]; false (no message) when s is not one. */
bool cli_parse_real(const char *s, double lo, double hi, double *out);
/* A finite number > 0; false (no message) when s is not one. */
bool cli_parse_positive(const char *s, double *out);
/* Splits a comma-separated list in place into *items (free() it): the count; -1 when out of
 * memory; -(k + 2) when item k is empty. */
long cli_split_list(char *s, char ***items);

/* Prints o as JSON (flags as json_dumps takes them) and a newline, then releases o (o may be
 * NULL: out of memory while building it). AVL_E_NOMEM when it cannot be printed. */
struct json_t;
avl_status cli_print_json(struct json_t *o, size_t flags);

/* Parses a non-negative integer flag value; false (and a message) when it is not one. */
bool cli_parse_int(const char *cmd, const char *flag, const char *s, long long *out);

/* The progress callback of data-set commands (avl_progress_params.fn): redraws one line on a
 * terminal ("\r" + line + clear to the end), else prints the line; both on stderr. */
void cli_progress_show(const char *line, bool redraw, bool final, void *user);

/* Prints the bad records of a manifest as "avlens <cmd>: warning: <message>" on stderr (the
 * first 20, then a count) and returns how many there were (a data-set run goes on with the good samples). */
long long cli_report_dataset_errors(const char *cmd, const avl_dataset *ds);

/* AVL_COMMANDS: one declaration per subcommand */
int avl_cmd_demo(int argc, char **argv);
int avl_cmd_inspect(int argc, char **argv);
int avl_cmd_mkclip(int argc, char **argv);
int avl_cmd_mkmodel(int argc, char **argv);
int avl_cmd_run(int argc, char **argv);
int avl_cmd_features(int argc, char **argv);
int avl_cmd_tokenize(int argc, char **argv);
int avl_cmd_backend(int argc, char **argv);
int avl_cmd_chair(int argc, char **argv);
int avl_cmd_forward(int argc, char **argv);
int avl_cmd_manifest(int argc, char **argv);
int avl_cmd_mds(int argc, char **argv);
int avl_cmd_merge(int argc, char **argv);
int avl_cmd_report(int argc, char **argv);
int avl_cmd_sinkdims(int argc, char **argv);
int avl_cmd_dominance(int argc, char **argv);
int avl_cmd_trace(int argc, char **argv);
int avl_cmd_sinks(int argc, char **argv);
int avl_cmd_caption(int argc, char **argv);
int avl_cmd_version(int argc, char **argv);

#endif
