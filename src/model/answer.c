/* src/model/answer.c: one question -> answer text and answer-word probabilities
 * (include/avlens/answer.h). The word rule mirrors the paper's authors' utils/logit.py
 * (max_prob_for_word), paper-spec.md section 1.
 */
#include <string.h>
#include <time.h>

#include "avlens/answer.h"
#include "base/internal.h"

avl_answer_params avl_answer_default_params(void)
{
    avl_answer_params p;
    memset(&p, 0, sizeof p);
    p.gen = avl_gen_default_params();
    return p;
}

void avl_answer_free(avl_answer *a)
{
    if (!a) return;
    avl_free(a->ids);
    avl__free(a->text);
    avl__free(a->word_ids);
    avl__free(a->first_step);
    avl__free(a->max_over_steps);
    avl__free(a);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    avl_answer *a;
    const avl_answer_params *p;
    double t0;
    /* the caller's own logits hook, called after scoring */
    void (*next)(void *user, int64_t step, float *logits, int64_t V);
    void *next_user;
} scoring;

static void on_logits(void *user, int64_t step, float *logits, int64_t V)
{
    scoring *s = user;
    avl_answer *a = s->a;
    if (step == 0) {
        double t = now();
        a->seconds[AVL_ANSWER_PREFILLED] = t - s->t0;
        s->t0 = t;
        if (s->p->progress) s->p->progress(s->p->user, AVL_ANSWER_PREFILLED, a->seconds[AVL_ANSWER_PREFILLED]);
    }
    for (int i = 0; i < a->n_words; i++) {
        double pr[2];
        avl_softmax_at(logits, V, a->word_ids + 2 * i, 2, pr);
        if (step == 0) a->first_step[i] = pr[0];
        for (int j = 0; j < 2; j++)
            if (pr[j] > a->max_over_steps[i]) a->max_over_steps[i] = pr[j];
    }
    if (s->next) s->next(s->next_user, step, logits, V);
}

static avl_status first_token(const avl_tokenizer *tok, const char *prefix, const char *word, int32_t *id)
{
    size_t n = strlen(prefix) + strlen(word);
    char *buf = avl__malloc(n + 1);
    if (!buf) return avl__err(AVL_E_NOMEM, "answer: out of memory");
    strcpy(buf, prefix);
    strcat(buf, word);
    int32_t *ids;
    int64_t k;
    avl_status rc = avl_tokenizer_encode(tok, buf, n, &ids, &k);
    avl__free(buf);
    if (rc) return rc;
    *id = k ? ids[0] : -1;
    avl_tokenizer_free_mem(ids);
    return AVL_OK;
}

avl_status avl_answer_run(const avl_model *m, const avl_tokenizer *tok, const avl_thinker_inputs *in,
                          const avl_answer_params *pp, avl_answer **out)
{
    *out = NULL;
    avl_answer_params dp = avl_answer_default_params();
    const avl_answer_params *p = pp ? pp : &dp;
    avl_status rc = AVL_OK;
    float *embeds = NULL;
    avl_token_map *map = NULL;
    avl_run *run = NULL;
    avl_answer *a = avl__calloc(1, sizeof *a);
    if (!a) return avl__err(AVL_E_NOMEM, "answer: out of memory");
    int nw = p->words ? p->n_words : 0;
    a->n_words = nw;
    if (nw > 0) {
        a->word_ids = avl__malloc((size_t)nw * 2 * sizeof *a->word_ids);
        a->first_step = avl__calloc((size_t)nw, sizeof *a->first_step);
        a->max_over_steps = avl__calloc((size_t)nw, sizeof *a->max_over_steps);
        if (!a->word_ids || !a->first_step || !a->max_over_steps) {
            rc = avl__err(AVL_E_NOMEM, "answer: out of memory");
            goto fail;
        }
    }
    for (int i = 0; i < nw; i++) {
        if (!p->words[i] || !*p->words[i]) {
            rc = avl__err(AVL_E_ARG, "answer: word %d is empty", i);
            goto fail;
        }
        if ((rc = first_token(tok, "", p->words[i], &a->word_ids[2 * i]))) goto fail;
        if ((rc = first_token(tok, " ", p->words[i], &a->word_ids[2 * i + 1]))) goto fail;
    }
    avl_gen_params gp = p->gen;
    int32_t stops[2];
    if (!gp.stop_ids) {
        int n = 0;
        if (!avl_tokenizer_token_id(tok, "<|im_end|>", &stops[n])) n++;
        if (!avl_tokenizer_token_id(tok, "<|endoftext|>", &stops[n])) n++;
        gp.stop_ids = stops;
        gp.n_stop = n;
    }
    if (gp.max_new_tokens < 1) {
        rc = avl__err(AVL_E_ARG, "answer: max_new_tokens is %lld, wanted at least 1", (long long)gp.max_new_tokens);
        goto fail;
    }

    double t0 = now();
    if ((rc = avl_thinker_embed(m, in, &embeds, &map, NULL))) goto fail;
    a->n_prompt = map->n;
    a->n_video_tokens = map->n_video;
    a->n_audio_tokens = map->n_audio;
    a->seconds[AVL_ANSWER_ENCODED] = now() - t0;
    if (p->progress) p->progress(p->user, AVL_ANSWER_ENCODED, a->seconds[AVL_ANSWER_ENCODED]);

    if ((rc = avl_run_new(m, map->n + gp.max_new_tokens, &run))) goto fail;
    scoring sc = {.a = a, .p = p, .t0 = now(), .next = gp.on_logits, .next_user = gp.user};
    gp.on_logits = on_logits;
    gp.user = &sc;
    if ((rc = avl_generate(run, embeds, map, &gp, NULL, &a->ids, &a->n_ids))) goto fail;
    a->seconds[AVL_ANSWER_DONE] = now() - sc.t0;

    int64_t n_text = a->n_ids;
    for (int s = 0; s < gp.n_stop && n_text > 0; s++)
        if (a->ids[n_text - 1] == gp.stop_ids[s]) {
            n_text--;
            break;
        }
    int32_t *known = avl__malloc((size_t)(n_text ? n_text : 1) * sizeof *known);
    if (!known) {
        rc = avl__err(AVL_E_NOMEM, "answer: out of memory");
        goto fail;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n_text; i++)
        if (avl_tokenizer_id_to_token(tok, a->ids[i])) known[k++] = a->ids[i];
    char *text = NULL;
    size_t len;
    rc = avl_tokenizer_decode(tok, known, k, true, &text, &len);
    avl__free(known);
    if (rc) goto fail;
    a->text = avl__strdup(text);
    avl_tokenizer_free_mem(text);
    if (!a->text) {
        rc = avl__err(AVL_E_NOMEM, "answer: out of memory");
        goto fail;
    }
    if (p->progress) p->progress(p->user, AVL_ANSWER_DONE, a->seconds[AVL_ANSWER_DONE]);
    avl_run_free(run);
    avl_token_map_free(map);
    avl_free(embeds);
    *out = a;
    return AVL_OK;
fail:
    avl_run_free(run);
    avl_token_map_free(map);
    avl_free(embeds);
    avl_answer_free(a);
    return rc;
}
