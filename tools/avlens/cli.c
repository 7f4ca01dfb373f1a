/* tools/avlens/cli.c: helpers shared by the subcommands. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_fail(const char *cmd, avl_status rc)
{
    const char *d = avl_last_error();
    fprintf(stderr, "avlens %s: %s\n", cmd, d[0] ? d : avl_status_str(rc));
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "avlens %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see: avlens %s --help)\n", cmd);
    return 2;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return true;
    return false;
}

bool cli_parse_int(const char *cmd, const char *flag, const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) {
        cli_usage_error(cmd, "%s wants a non-negative integer, got '%s'", flag, s);
        return false;
    }
    *out = v;
    return true;
}

void cli_progress_show(const char *line, bool redraw, bool final, void *user)
{
    (void)user;
    if (redraw) fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    else fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

long long cli_report_dataset_errors(const char *cmd, const avl_dataset *ds)
{
    long long n = avl_dataset_error_count(ds);
    const long long shown = 20; /* a broken file must not bury the terminal */
    for (long long i = 0; i < n && i < shown; i++) fprintf(stderr, "avlens %s: warning: %s\n", cmd, avl_dataset_error_at(ds, i)->message);
    if (n > shown) fprintf(stderr, "avlens %s: warning: ... and %lld more bad records\n", cmd, n - shown);
    return n;
}

bool cli_parse_real(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_positive(const char *s, double *out)
{
    double v;
    if (!cli_parse_real(s, -INFINITY, INFINITY, &v) || !(v > 0)) return false;
    *out = v;
    return true;
}

long cli_split_list(char *s, char ***items)
{
    long n = 1;
    for (char *p = s; *p; p++) n += *p == ',';
    char **v = malloc(sizeof(char *) * (size_t)n);
    if (!v) return -1;
    long k = 0;
    for (char *tok = s;; k++) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = '\0';
        if (!*tok) {
            free(v);
            return -(k + 2); /* empty item at index k */
        }
        v[k] = tok;
        if (!comma) break;
        tok = comma + 1;
    }
    *items = v;
    return k + 1;
}

avl_status cli_print_json(json_t *o, size_t flags)
{
    char *text = o ? json_dumps(o, flags) : NULL;
    json_decref(o);
    if (!text) return AVL_E_NOMEM;
    puts(text);
    free(text);
    return AVL_OK;
}
