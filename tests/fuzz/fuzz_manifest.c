/* tests/fuzz/fuzz_manifest.c: any bytes as a manifest (JSON conversations, JSON lines, CSV).
 * The load either fails with a one-line message and no dataset, or gives samples whose fields
 * hold together: ids unique and findable, options and labels consistent, every error naming
 * the manifest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "avlens/avlens.h"

static void check_one_line(const char *s)
{
    if (!s || !s[0] || strchr(s, '\n')) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    avl_dataset_params p = avl_dataset_default_params();
    p.media_root = "root";
    /* the first byte picks the format sometimes, so forced formats are covered too */
    if (size > 0 && data[0] == 'C') p.format = AVL_MANIFEST_CSV;
    avl_dataset *ds = NULL;
    if (avl_dataset_load_memory(data, size, "fuzz.json", &p, &ds) != AVL_OK) {
        if (ds) abort();
        check_one_line(avl_last_error());
        return 0;
    }
    int64_t n = avl_dataset_count(ds);
    for (int64_t i = 0; i < n; i++) {
        const avl_sample *s = avl_dataset_at(ds, i);
        if (!s || !s->id || !s->id[0] || strchr(s->id, '/')) abort();
        if (avl_dataset_find(ds, s->id) != i) abort();
        if (!s->extra_json || s->extra_json[0] != '{') abort();
        if (s->n_options < 0 || s->n_options > 26) abort();
        for (int k = 0; k < s->n_options; k++)
            if (!s->options[k]) abort();
        if (s->label && s->n_options && (s->label < 'A' || s->label >= 'A' + s->n_options)) abort();
        if (s->label && s->n_options && strcmp(s->label_name, s->options[s->label - 'A']) != 0) abort();
        for (int64_t k = 0; k < s->n_frames; k++)
            if (!s->frames[k] || (strncmp(s->frames[k], "root/", 5) != 0 && s->frames[k][0] != '/')) abort();
        if (s->video_path && strlen(s->video_path) == 0) abort();
    }
    for (int64_t i = 0; i < avl_dataset_error_count(ds); i++) {
        const avl_dataset_error *e = avl_dataset_error_at(ds, i);
        check_one_line(e->message);
        if (strncmp(e->message, "fuzz.json: ", 11) != 0 || e->status >= 0) abort();
    }
    avl_dataset_free(ds);
    return 0;
}
