/* src/base/json.c: jansson's allocations through avl__malloc, and a parse that tells a lack of
 * memory from bad input (see json.h). */
#include "base/json.h"

#include <pthread.h>

static pthread_once_t g_json_once = PTHREAD_ONCE_INIT;
static _Thread_local bool tl_json_oom;

static void *json_alloc(size_t n)
{
    void *p = avl__malloc(n);
    if (!p) tl_json_oom = true;
    return p;
}

static void json_init_once(void) { json_set_alloc_funcs(json_alloc, avl__free); }

void avl__json_begin(void)
{
    pthread_once(&g_json_once, json_init_once);
    tl_json_oom = false;
}

bool avl__json_oom(void) { return tl_json_oom; }

avl_status avl__json_loadb(const char *buf, size_t len, size_t flags, const char *label, json_t **out,
                           json_error_t *err)
{
    json_error_t local;
    if (!err) err = &local;
    avl__json_begin();
    *out = json_loadb(buf, len, flags, err);
    if (*out) return AVL_OK;
    if (tl_json_oom) return avl__err(AVL_E_NOMEM, "%s: out of memory parsing JSON", label);
    return avl__err(AVL_E_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", label, err->text, err->line,
                    err->column);
}
