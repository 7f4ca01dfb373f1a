/* src/base/status.c: status texts, per-thread error detail, logging. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char tl_err[2048];

const char *avl_status_str(avl_status s)
{
    switch (s) {
    case AVL_OK: return "ok";
    case AVL_E_IO: return "i/o error";
    case AVL_E_FORMAT: return "malformed file";
    case AVL_E_SHAPE: return "wrong shape";
    case AVL_E_CONFIG: return "bad configuration";
    case AVL_E_NOMEM: return "out of memory";
    case AVL_E_ARG: return "invalid argument";
    case AVL_E_NOTFOUND: return "not found";
    case AVL_E_UNSUPPORTED: return "unsupported";
    case AVL_E_MEDIA: return "media error";
    case AVL_E_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *avl_last_error(void) { return tl_err; }

void avl_clear_error(void) { tl_err[0] = '\0'; }

avl_status avl__err(avl_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_err, sizeof tl_err, fmt, ap);
    va_end(ap);
    return code;
}

avl_status avl__err_wrap(avl_status code, const char *fmt, ...)
{
    char prefix[512], old[sizeof tl_err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, tl_err, sizeof old);
    /* Truncation is acceptable for an error message; build it piecewise to say so. */
    size_t n = strlen(prefix);
    if (n > sizeof tl_err - 3) n = sizeof tl_err - 3;
    memcpy(tl_err, prefix, n);
    tl_err[n] = ':';
    tl_err[n + 1] = ' ';
    size_t m = strlen(old);
    if (m > sizeof tl_err - n - 3) m = sizeof tl_err - n - 3;
    memcpy(tl_err + n + 2, old, m);
    tl_err[n + 2 + m] = '\0';
    return code;
}

static avl_log_fn g_log_fn; /* set once at start-up by the application */
static void *g_log_user;

void avl_set_log(avl_log_fn fn, void *user)
{
    g_log_fn = fn;
    g_log_user = user;
}

void avl__log(avl_log_level level, const char *fmt, ...)
{
    if (!g_log_fn) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_user);
}
