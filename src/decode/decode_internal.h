/* src/decode/decode_internal.h: what the files of src/decode/ share (not public). */
#ifndef AVLENS_DECODE_INTERNAL_H
#define AVLENS_DECODE_INTERNAL_H

#include "avlens/decode.h"

/* The sequence a decode grows: the prompt (embeds (n, H) at map->pos) followed by generated
 * tokens (gen (T, H) at gen_pos (3, T): token i at n + i + rope_delta on every axis). */
typedef struct {
    const float *embeds;
    const avl_token_map *map;
    float *gen;       /* (T, H) */
    int64_t *gen_pos; /* (3, T) */
    int64_t T, H;
} avl__dseq;

/* Allocates gen and gen_pos for T tokens and fills gen_pos. */
avl_status avl__dseq_init(avl__dseq *s, const float *embeds, const avl_token_map *map, int64_t T, int64_t H);
void avl__dseq_free(avl__dseq *s);

/* Runs positions [from, to) of the sequence (prompt rows from embeds, or from prompt_rows when
 * not NULL, generated rows from gen) through run r, whose cache must hold exactly [0, from).
 * logits (V) of position to - 1 when not NULL. */
avl_status avl__dseq_forward(avl_run *r, const avl__dseq *s, const float *prompt_rows, int64_t from, int64_t to,
                             const avl_hooks *hooks, float *logits);

/* argmax (lowest index on ties) of x (n) */
int32_t avl__argmax_d(const double *x, int64_t n);

avl_status avl__decode_avcd(const avl_model *m, const avl_decode_input *in, const avl_decode_params *p,
                            avl_decode_result *out);
avl_status avl__decode_fmd(const avl_model *m, const avl_decode_input *in, const avl_decode_params *p,
                           avl_decode_result *out);

#endif
