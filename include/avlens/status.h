/* avlens/status.h: status codes, error detail and logging.
 *
 * Every fallible avlens function returns an avl_status: 0 (AVL_OK) on success, a negative
 * code on failure. avl_status_str() gives the fixed text of a code; avl_last_error() gives
 * the detail of the most recent failure on the calling thread, always naming the file and the
 * problem, e.g.
 *   "ckpt/model.safetensors: tensor 'thinker.lm_head.weight' ends at byte 4096 past the file end (2048)"
 * The detail is per thread (like errno) and stays valid until the next failing avlens call on
 * that thread.
 *
 * The library never prints and never exits: it reports through the log callback, which by
 * default discards everything.
 */
#ifndef AVLENS_STATUS_H
#define AVLENS_STATUS_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AVL_OK = 0,
    AVL_E_IO = -1,          /* a file is missing, unreadable or could not be written */
    AVL_E_FORMAT = -2,      /* a file is malformed: bad header, bad JSON, truncated */
    AVL_E_SHAPE = -3,       /* a tensor has the wrong shape or dtype for its role */
    AVL_E_CONFIG = -4,      /* a configuration value is missing or impossible */
    AVL_E_NOMEM = -5,       /* an allocation failed */
    AVL_E_ARG = -6,         /* a caller passed an invalid argument */
    AVL_E_NOTFOUND = -7,    /* a named item (tensor, token, key) does not exist */
    AVL_E_UNSUPPORTED = -8, /* valid but not supported by this build */
    AVL_E_MEDIA = -9,       /* a media file could not be decoded */
    AVL_E_INTERNAL = -10    /* a bug in avlens: please report it */
} avl_status;

/* Fixed text for a status code ("ok", "i/o error", ...). Never NULL. */
const char *avl_status_str(avl_status s);

/* Detail of the last failure on this thread; "" when there was none. Never NULL. */
const char *avl_last_error(void);

/* Clears the last-error detail of this thread. */
void avl_clear_error(void);

typedef enum {
    AVL_LOG_ERROR = 0,
    AVL_LOG_WARN = 1,
    AVL_LOG_INFO = 2,
    AVL_LOG_DEBUG = 3
} avl_log_level;

/* Receives every log line (without trailing newline). Called from any thread. */
typedef void (*avl_log_fn)(avl_log_level level, const char *msg, void *user);

/* Installs the log callback (NULL restores the default, which discards). Not thread-safe:
 * call once at start-up. */
void avl_set_log(avl_log_fn fn, void *user);

#ifdef __cplusplus
}
#endif
#endif
