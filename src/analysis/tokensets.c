/* src/analysis/tokensets.c: token sets for causal tracing (paper Sec. 4.2, 5.1;
 * paper-spec.md section 4; the authors' logic/object.py get_object_token and
 * causal_tracing_modality_sink.py build_layerlist).
 *
 * Video object tokens: the mask of temporal grid index i is cut into the merged h x w grid with
 * cell edges int(round(g * side / cells)) (Python's round: half to even, clamped to the image);
 * a cell with any grey pixel > 30 is an object cell; the token is i*h*w + gy*w + gx of the item.
 * Audio object tokens: the tokens whose 40 ms span overlaps a sound-event segment.
 * Random N: seeded partial Fisher-Yates (the authors' random.sample is unseeded).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "base/rng.h"
#include "avlens/analysis.h"

static avl_status alloc_set(avl_tokset *out, int64_t n)
{
    out->n = 0;
    out->pos = avl__malloc(((size_t)n + 1) * sizeof *out->pos);
    if (!out->pos) return avl__err(AVL_E_NOMEM, "token set: cannot allocate %lld positions", (long long)n);
    return AVL_OK;
}

avl_status avl_tokset_object_video(const avl_token_map *map, int item, const uint8_t *const *masks, int64_t n_masks,
                                   int64_t mask_h, int64_t mask_w, int threshold, avl_tokset *out)
{
    out->n = 0;
    out->pos = NULL;
    if (mask_h <= 0 || mask_w <= 0 || n_masks < 0)
        return avl__err(AVL_E_ARG, "object tokens: mask of %lldx%lld", (long long)mask_w, (long long)mask_h);
    /* the item's merged grid */
    int64_t gh = 0, gw = 0, count = 0;
    for (int64_t i = 0; i < map->n; i++) {
        const avl_token_info *t = &map->tok[i];
        if (t->kind != AVL_TOK_VIDEO || t->item != item) continue;
        if (t->row + 1 > gh) gh = t->row + 1;
        if (t->col + 1 > gw) gw = t->col + 1;
        count++;
    }
    avl_status rc = alloc_set(out, count);
    if (rc || count == 0) return rc;
    for (int64_t i = 0; i < map->n; i++) {
        const avl_token_info *t = &map->tok[i];
        if (t->kind != AVL_TOK_VIDEO || t->item != item || t->t >= n_masks || !masks[t->t]) continue;
        double cw = (double)mask_w / (double)gw, ch = (double)mask_h / (double)gh;
        int64_t x0 = (int64_t)rint(t->col * cw), x1 = (int64_t)rint((t->col + 1) * cw);
        int64_t y0 = (int64_t)rint(t->row * ch), y1 = (int64_t)rint((t->row + 1) * ch);
        x0 = x0 < 0 ? 0 : x0 > mask_w ? mask_w : x0;
        x1 = x1 < 0 ? 0 : x1 > mask_w ? mask_w : x1;
        y0 = y0 < 0 ? 0 : y0 > mask_h ? mask_h : y0;
        y1 = y1 < 0 ? 0 : y1 > mask_h ? mask_h : y1;
        bool on = false;
        for (int64_t y = y0; y < y1 && !on; y++)
            for (int64_t x = x0; x < x1; x++)
                if (masks[t->t][y * mask_w + x] > threshold) {
                    on = true;
                    break;
                }
        if (on) out->pos[out->n++] = i;
    }
    return AVL_OK;
}

avl_status avl_tokset_object_audio(const avl_token_map *map, int item, const double *segments, int64_t n_seg,
                                   avl_tokset *out)
{
    avl_status rc = alloc_set(out, map->n);
    if (rc) return rc;
    for (int64_t i = 0; i < map->n; i++) {
        const avl_token_info *t = &map->tok[i];
        if (t->kind != AVL_TOK_AUDIO || t->item != item) continue;
        for (int64_t s = 0; s < n_seg; s++)
            if ((double)t->t0 < segments[2 * s + 1] && (double)t->t1 > segments[2 * s]) {
                out->pos[out->n++] = i;
                break;
            }
    }
    return AVL_OK;
}

avl_status avl_tokset_random(const avl_tokset *from, int64_t size, uint64_t seed, avl_tokset *out)
{
    out->n = 0;
    out->pos = NULL;
    if (size < 0) return avl__err(AVL_E_ARG, "random token set: negative size %lld", (long long)size);
    if (size > from->n) size = from->n;
    int64_t *pool = avl__malloc(((size_t)from->n + 1) * sizeof *pool);
    if (!pool) return avl__err(AVL_E_NOMEM, "random token set: cannot allocate %lld positions", (long long)from->n);
    if (from->n) memcpy(pool, from->pos, (size_t)from->n * sizeof *pool);
    avl__rng r;
    avl__rng_seed(&r, seed);
    for (int64_t i = 0; i < size; i++) {
        int64_t j = i + (int64_t)(avl__rng_uniform(&r) * (double)(from->n - i));
        if (j >= from->n) j = from->n - 1;
        int64_t tmp = pool[i];
        pool[i] = pool[j];
        pool[j] = tmp;
    }
    avl_status rc = avl_tokset_from_list(pool, size, out);
    avl__free(pool);
    return rc;
}

int64_t avl_audio_runs(const avl_token_map *map)
{
    int64_t runs = 0;
    for (int64_t i = 0; i < map->n; i++)
        if (map->tok[i].kind == AVL_TOK_AUDIO && (i == 0 || map->tok[i - 1].kind != AVL_TOK_AUDIO)) runs++;
    return runs;
}
