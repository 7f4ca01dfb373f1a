/* tests/unit/test_answer.c: avl_answer_run on a tiny checkpoint: the word probabilities against
 * a plain forward pass (first step) and against the generated steps recomputed one by one (max
 * over steps), stop tokens, the decoded text, determinism, errors and allocation failures. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "avl_test.h"
#include "base/internal.h"

static avl_model *model;
static avl_tokenizer *tok;
static avl_prompt *pr;

static int setup(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("answer");
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.seed = 3;
    if (avl_mkmodel_write(&p, dir)) return -1;
    avl_model_params mp = avl_model_default_params();
    mp.backend = "ref";
    mp.threads = 1;
    if (avl_model_load(dir, &mp, &model) || avl_tokenizer_load(dir, &tok)) return -1;
    avl_prompt_params pp = avl_prompt_default_params();
    pp.text = "Is it red? Answer yes or no.";
    avl_seq_params sp = avl_model_seq_params(model);
    return avl_prompt_build(tok, &sp, NULL, &pp, &pr) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    avl_prompt_free(pr);
    avl_tokenizer_free(tok);
    avl_model_free(model);
    return 0;
}

/* Logits (V) after feeding prompt + gen[0..k) with plain forward passes. */
static void logits_after(const int32_t *gen, int64_t k, float *logits)
{
    int64_t n = pr->n + k, H = avl_model_config(model)->text.hidden_size;
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    memcpy(ids, pr->ids, (size_t)pr->n * sizeof *ids);
    memcpy(ids + pr->n, gen, (size_t)k * sizeof *ids);
    float *e = malloc((size_t)(n * H) * sizeof *e);
    int64_t *pos = malloc((size_t)(3 * n) * sizeof *pos);
    for (int64_t i = 0; i < n; i++) pos[i] = pos[n + i] = pos[2 * n + i] = i; /* text only: plain ids */
    assert_int_equal(avl_run_embed_tokens(model, ids, n, e), AVL_OK);
    avl_run *r;
    assert_int_equal(avl_run_new(model, n, &r), AVL_OK);
    assert_int_equal(avl_run_forward(r, e, pos, n, n, NULL, logits, 1), AVL_OK);
    avl_run_free(r);
    free(ids);
    free(e);
    free(pos);
}

static void test_word_probs(void **state)
{
    (void)state;
    const char *words[] = {"yes", "no", "A"};
    avl_answer_params ap = avl_answer_default_params();
    ap.gen.max_new_tokens = 5;
    ap.words = words;
    ap.n_words = 3;
    avl_answer *a;
    assert_int_equal(avl_answer_run(model, tok, &pr->inputs, &ap, &a), AVL_OK);
    assert_true(a->n_ids >= 1 && a->n_ids <= 5);
    assert_int_equal(a->n_prompt, pr->n);
    assert_non_null(a->text);
    int64_t V = avl_model_config(model)->text.vocab_size;
    float *lg = malloc((size_t)V * sizeof *lg);
    double best[3] = {0, 0, 0};
    for (int64_t k = 0; k < a->n_ids; k++) {
        logits_after(a->ids, k, lg);
        for (int i = 0; i < 3; i++) {
            double p[2];
            avl_softmax_at(lg, V, a->word_ids + 2 * i, 2, p);
            if (k == 0) assert_true(fabs(p[0] - a->first_step[i]) <= 1e-5 * p[0]);
            for (int j = 0; j < 2; j++) best[i] = p[j] > best[i] ? p[j] : best[i];
        }
    }
    for (int i = 0; i < 3; i++) {
        assert_true(fabs(best[i] - a->max_over_steps[i]) <= 1e-5 * best[i]);
        assert_true(a->max_over_steps[i] >= a->first_step[i]);
        assert_true(a->word_ids[2 * i] != a->word_ids[2 * i + 1]); /* "yes" and " yes" differ */
    }
    /* the same again: greedy is deterministic */
    avl_answer *b;
    assert_int_equal(avl_answer_run(model, tok, &pr->inputs, &ap, &b), AVL_OK);
    assert_string_equal(a->text, b->text);
    assert_int_equal(a->n_ids, b->n_ids);
    assert_true(a->first_step[0] == b->first_step[0]);
    avl_answer_free(b);
    avl_answer_free(a);
    free(lg);
}

/* A stop token ends generation and is left out of the text. */
static void test_stop(void **state)
{
    (void)state;
    avl_answer_params ap = avl_answer_default_params();
    ap.gen.max_new_tokens = 4;
    avl_answer *a;
    assert_int_equal(avl_answer_run(model, tok, &pr->inputs, &ap, &a), AVL_OK);
    int32_t stop = a->ids[1]; /* make the second generated token a stop token */
    avl_answer_free(a);
    ap.gen.stop_ids = &stop;
    ap.gen.n_stop = 1;
    assert_int_equal(avl_answer_run(model, tok, &pr->inputs, &ap, &a), AVL_OK);
    assert_true(a->n_ids <= 2);
    assert_int_equal(a->ids[a->n_ids - 1], stop);
    avl_answer_free(a);
}

static void test_errors(void **state)
{
    (void)state;
    const char *words[] = {"yes", ""};
    avl_answer_params ap = avl_answer_default_params();
    ap.words = words;
    ap.n_words = 2;
    avl_answer *a = (avl_answer *)1;
    AVL_EXPECT_ERROR(avl_answer_run(model, tok, &pr->inputs, &ap, &a), AVL_E_ARG, "word 1 is empty");
    assert_null(a);
    ap.n_words = 1;
    ap.gen.max_new_tokens = 0;
    AVL_EXPECT_ERROR(avl_answer_run(model, tok, &pr->inputs, &ap, &a), AVL_E_ARG, "max_new_tokens");
    avl_answer_free(NULL);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    const char *words[] = {"yes"};
    avl_answer_params ap = avl_answer_default_params();
    ap.gen.max_new_tokens = 2;
    ap.words = words;
    ap.n_words = 1;
    for (int64_t k = 1;; k++) {
        avl_answer *a = NULL;
        avl__alloc_fail_after(k);
        avl_status rc = avl_answer_run(model, tok, &pr->inputs, &ap, &a);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            avl_answer_free(a);
            break;
        }
        assert_int_equal(rc, AVL_E_NOMEM);
        assert_null(a);
        if (k > 100000) fail_msg("never succeeded");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_word_probs),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
