/* src/eval/eval_internal.h: what the CHAIR files share: the word normaliser and the class table
 * of the vocabulary (string maps are the shared src/base/strmap.h, keys copied). */
#ifndef AVLENS_EVAL_INTERNAL_H
#define AVLENS_EVAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/eval.h"
#include "base/internal.h"
#include "base/json.h"
#include "base/strmap.h"

/* ---- normalisation ---- */
/* One token of a text: its singular lower-case form and its byte span in the text. */
typedef struct {
    char *word;
    size_t start, end;
} avl__token;

/* Splits text into tokens (see eval.h); *toks freed by avl__tokens_free. */
avl_status avl__tokenize(const char *text, avl__token **toks, int64_t *n);
void avl__tokens_free(avl__token *t, int64_t n);
/* The normalised phrase of a text: its tokens joined by one space (new string, "" for none). */
avl_status avl__normalize_phrase(const char *text, char **out);

/* ---- vocabulary internals ---- */
/* Adds a class named by a normalised phrase (or finds it); *cls its index. */
avl_status avl__vocab_add_class(avl_vocab *v, const char *phrase, int64_t *cls);

/* avl_vocab_mentions, with the label-only phrases ("=entry") when labels is true (ground truth). */
avl_status avl__vocab_mentions(const avl_vocab *v, const char *text, bool labels, avl_mention **out, int64_t *n);

/* avl_truth_get for an id already normalised by avl__clip_id (allocates nothing). */
bool avl__truth_get_clip(const avl_truth *t, const char *cid, const int64_t **cls, int64_t *n);

/* A copy of s fit for a one-line message: control bytes become '?', at most 60 bytes (then
 * "..."). Returns buf. */
const char *avl__clean(const char *s, char buf[72]);

/* Ids as clips are known by: a leading path and a media extension dropped (new string). */
char *avl__clip_id(const char *id);

#endif
