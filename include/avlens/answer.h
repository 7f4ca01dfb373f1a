/* avlens/answer.h: one question, one answer: the thinker's inputs -> encoders -> prefill ->
 * generation -> decoded text, with the probabilities of chosen answer words.
 *
 *   avl_answer_params ap = avl_answer_default_params();    // greedy, 64 tokens
 *   const char *words[] = {"A", "B", "C"};
 *   ap.words = words;
 *   ap.n_words = 3;
 *   avl_answer *a;
 *   if (avl_answer_run(model, tok, &prompt->inputs, &ap, &a)) { fprintf(stderr, "%s\n", avl_last_error()); ... }
 *   printf("%s  p(A) = %.3f\n", a->text, a->max_over_steps[0]);
 *   avl_answer_free(a);
 *
 * Word probabilities follow the paper (paper-spec.md section 1; the authors' utils/logit.py,
 * max_prob_for_word): for a word W take the first token of "W" and of " W"; at each generated
 * step take the softmax of the step's logits (temperature 1, before any sampling filter); the
 * word's probability is the maximum over the steps and over those two ids (max_over_steps).
 * first_step is the softmax probability of the first token of "W" at the first step, the answer
 * position of a one-letter answer.
 */
#ifndef AVLENS_ANSWER_H
#define AVLENS_ANSWER_H

#include <stdint.h>

#include "avlens/model.h"
#include "avlens/status.h"
#include "avlens/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AVL_ANSWER_ENCODED = 0,  /* the encoders ran and the embeddings are built */
    AVL_ANSWER_PREFILLED,    /* the prompt went through the decoder (first logits known) */
    AVL_ANSWER_DONE          /* generation ended */
} avl_answer_stage;

typedef struct {
    avl_gen_params gen;          /* stop_ids NULL: <|im_end|> and <|endoftext|>, looked up by name */
    const char *const *words;    /* answer words to score (may be NULL) */
    int n_words;
    /* optional: told when each stage ends, with the seconds it took */
    void (*progress)(void *user, avl_answer_stage stage, double seconds);
    void *user;
} avl_answer_params;

avl_answer_params avl_answer_default_params(void);

typedef struct {
    int32_t *ids;                /* (n_ids) generated ids, the stop token included */
    int64_t n_ids;
    char *text;                  /* decoded without the stop token and special tokens; ids the
                                    tokenizer has no token for (padding rows of the embedding
                                    matrix) are skipped, as Hugging Face's decode skips them */
    int64_t n_prompt;            /* positions of the prompt */
    int64_t n_video_tokens, n_audio_tokens;
    int n_words;
    int32_t *word_ids;           /* (n_words, 2): first token of "W", of " W" (-1: none) */
    double *first_step;          /* (n_words) */
    double *max_over_steps;      /* (n_words) */
    double seconds[3];           /* per avl_answer_stage */
} avl_answer;

/* Runs the whole question on a fresh run of m. Errors: those of avl_thinker_embed,
 * avl_generate and the tokenizer; AVL_E_ARG for an empty word. */
avl_status avl_answer_run(const avl_model *m, const avl_tokenizer *tok, const avl_thinker_inputs *in,
                          const avl_answer_params *p, avl_answer **out);

/* NULL-safe. */
void avl_answer_free(avl_answer *a);

#ifdef __cplusplus
}
#endif
#endif
