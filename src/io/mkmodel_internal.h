/* src/io/mkmodel_internal.h: the tiny tokenizer behind mkmodel (internal). */
#ifndef AVLENS_IO_MKMODEL_INTERNAL_H
#define AVLENS_IO_MKMODEL_INTERNAL_H

#include <stdint.h>

#include "avlens/checkpoint.h"
#include "avlens/mkmodel.h"
#include "avlens/status.h"

typedef struct {
    char **tok;            /* [n_tokens] byte-level strings ("Ġthe"), specials as written */
    int64_t n_tokens;
    int64_t first_special; /* ids >= this are added (special) tokens */
    int *merge_a, *merge_b; /* [n_merges] the pair merged at each step, by id */
    int64_t n_merges;
} avl__tiny_tok;

/* Learns up to n_merges merges from the embedded corpus and appends the special tokens. */
avl_status avl__tiny_tok_build(int64_t n_merges, avl__tiny_tok *t);
void avl__tiny_tok_free(avl__tiny_tok *t);
/* Id of a special token ("<|AUDIO|>") or of a plain ASCII token ("user"); -1 when absent. */
int64_t avl__tiny_tok_id(const avl__tiny_tok *t, const char *token);
/* tokenizer.json, vocab.json, merges.txt, tokenizer_config.json, chat_template.json,
 * added_tokens.json, special_tokens_map.json. */
avl_status avl__tiny_tok_write(const avl__tiny_tok *t, const char *dir, int64_t model_max_length);

extern const char avl__qwen25_omni_chat_template[];

/* The planted-mechanism model (mkmodel_planted.c): whether p can hold it, and the edit of one
 * tensor's freshly filled values x (s->numel floats, in the spec's shape). */
avl_status avl__mkmodel_planted_check(const avl_mkmodel_params *p);
void avl__mkmodel_plant(const avl_mkmodel_params *p, const avl_config *c, const avl__tiny_tok *tok,
                        const avl_tensor_spec *s, float *x);

#endif
