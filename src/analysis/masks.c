/* src/analysis/masks.c: object masks (SAM2 writes one black/white image per frame) read as grey
 * images, checked against the size of their frames, for the video Object token set
 * (avl_tokset_object_video; paper Sec. 4.2, paper-spec.md section 4, the authors'
 * logic/object.py). Grey is Pillow's convert("L"): L = (19595 R + 38470 G + 7471 B + 2^15) >> 16
 * (ITU-R 601 luma in 16-bit fixed point, Pillow's Convert.c); for black/white masks any luma
 * formula gives the same cells. */
#include <stdio.h>
#include <string.h>

#include "avlens/analysis.h"
#include "avlens/media.h"
#include "base/internal.h"

void avl_mask_grey(const uint8_t *rgb, int64_t n_pixels, uint8_t *grey)
{
    for (int64_t i = 0; i < n_pixels; i++) {
        const uint8_t *p = rgb + 3 * i;
        grey[i] = (uint8_t)(((uint32_t)p[0] * 19595u + (uint32_t)p[1] * 38470u + (uint32_t)p[2] * 7471u + 0x8000u) >> 16);
    }
}

void avl_masks_free(avl_masks *m)
{
    if (!m) return;
    if (m->grey)
        for (int64_t i = 0; i < m->n; i++) avl__free(m->grey[i]);
    avl__free(m->grey);
    avl__free(m);
}

avl_status avl_masks_read(const char *const *paths, int64_t n, int64_t frame_h, int64_t frame_w, avl_masks **out)
{
    *out = NULL;
    if (n < 0 || (n > 0 && !paths) || frame_h < 0 || frame_w < 0)
        return avl__err(AVL_E_ARG, "masks: bad arguments (n %lld, frame %lldx%lld)", (long long)n, (long long)frame_w,
                        (long long)frame_h);
    avl_masks *m = avl__calloc(1, sizeof *m);
    if (!m || !(m->grey = avl__calloc((size_t)n + 1, sizeof *m->grey))) {
        avl__free(m);
        return avl__err(AVL_E_NOMEM, "masks: out of memory for %lld masks", (long long)n);
    }
    m->n = n;
    avl_status rc = AVL_OK;
    for (int64_t i = 0; i < n && !rc; i++) {
        if (!paths[i]) continue; /* no mask for this frame: no object tokens there */
        avl_frames *f = NULL;
        if ((rc = avl_image_read(paths[i], &f))) {
            rc = avl__err_wrap(rc, "mask %lld", (long long)i);
            break;
        }
        /* every mask must match its frame (and the first mask fixes the size when no frame size
         * is given), otherwise the cells would cut the wrong pixels */
        int64_t want_h = frame_h ? frame_h : m->h, want_w = frame_w ? frame_w : m->w;
        if ((want_h && f->height != want_h) || (want_w && f->width != want_w)) {
            rc = avl__err(AVL_E_FORMAT, "%s: mask is %lldx%lld but its frame is %lldx%lld", paths[i],
                          (long long)f->width, (long long)f->height, (long long)want_w, (long long)want_h);
        } else if (!(m->grey[i] = avl__malloc((size_t)(f->height * f->width) + 1))) {
            rc = avl__err(AVL_E_NOMEM, "%s: out of memory for the grey mask", paths[i]);
        } else {
            m->h = f->height;
            m->w = f->width;
            avl_mask_grey(f->rgb, f->height * f->width, m->grey[i]);
        }
        avl_frames_free(f);
    }
    if (rc) {
        avl_masks_free(m);
        return rc;
    }
    *out = m;
    return AVL_OK;
}

avl_status avl_tokset_object_masks(const avl_token_map *map, int item, const avl_masks *m, int threshold,
                                   avl_tokset *out)
{
    if (!m) return avl__err(AVL_E_ARG, "object tokens: no masks");
    return avl_tokset_object_video(map, item, (const uint8_t *const *)m->grey, m->n, m->h, m->w, threshold, out);
}
