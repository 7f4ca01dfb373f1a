/* src/media/media_internal.h: helpers shared by the media files (prefix avl__). */
#ifndef AVLENS_MEDIA_INTERNAL_H
#define AVLENS_MEDIA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "avlens/status.h"

/* True when the file starts with a JPEG SOI marker. */
bool avl__is_jpeg(const char *path);

/* Decodes a JPEG as PIL does (libjpeg defaults, RGB out) into a new (h, w, 3) buffer.
 * AVL_E_UNSUPPORTED (no detail) for CMYK/YCCK files, which the caller gives to FFmpeg. */
avl_status avl__jpeg_read(const char *path, uint8_t **rgb, int64_t *h, int64_t *w);

/* Sends FFmpeg's own messages to the avlens log (once per process; the library never prints). */
void avl__ff_quiet(void);

#endif
