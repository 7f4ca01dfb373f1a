/* src/interp/interp_internal.h: what src/analysis/ may ask of a plan beyond the public API. */
#ifndef AVLENS_INTERP_INTERNAL_H
#define AVLENS_INTERP_INTERNAL_H

#include "avlens/interp.h"

/* The plan's decoder layers, positions (map->n) and hidden width. */
void avl__plan_geometry(const avl_plan *p, int *n_layers, int64_t *L, int64_t *H);

#endif
