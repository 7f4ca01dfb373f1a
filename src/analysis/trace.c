/* src/analysis/trace.c: naive causal tracing (paper Sec. 3.2-3.3, Eqs. 3-4; paper-spec.md
 * section 3; the authors' causal_tracing_modality_sink.py and logic/causal_trace.py).
 *
 * Clean run (capturing the patch site at the traced tokens), corrupted run, restored run =
 * the corrupted inputs with the site overwritten by the clean activations at those tokens in
 * the chosen layers, during the prefill only. c = the clean answer, r = the corrupted answer;
 *   IE_clean = P_rest(c) - P_corr(c)       (Eq. 3)
 *   IE_corr  = P_corr(r) - P_rest(r)       (Eq. 4)
 * Every run is complete here (no KV sharing: that shortcut comes later and must match this).
 */
#include <ctype.h>
#include <string.h>

#include "base/internal.h"
#include "model/model_internal.h"
#include "avlens/analysis.h"

avl_trace_params avl_trace_default_params(const avl_model *m)
{
    avl_trace_params p = {.site = AVL_SITE_ATTN_IN, .layer0 = 0, .layer1 = (int)m->n_layers};
    p.gen = avl_gen_default_params();
    p.gen.max_new_tokens = 4;
    return p;
}

void avl_trace_result_clear(avl_trace_result *r)
{
    if (!r) return;
    avl_gen_answer_clear(&r->clean);
    avl_gen_answer_clear(&r->corr);
    avl_gen_answer_clear(&r->rest);
}

/* The answer word: the first white-space-delimited word of the text (a new string). */
static char *word_of(const avl_gen_answer *a)
{
    const char *s = a->text ? a->text : "";
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = 0;
    while (s[n] && !isspace((unsigned char)s[n])) n++;
    char *w = avl__malloc(n + 1);
    if (w) {
        memcpy(w, s, n);
        w[n] = 0;
    }
    return w;
}

avl_status avl_trace_run(const avl_model *m, const avl_tokenizer *tok, const avl_token_map *map,
                         const float *clean_embeds, const float *corr_embeds, const avl_tokset *tokens,
                         const avl_trace_params *tp, avl_trace_result *out)
{
    memset(out, 0, sizeof *out);
    avl_plan *clean = NULL, *rest = NULL;
    avl_capture *cap = NULL;
    char *c = NULL, *r = NULL;
    avl_status rc = avl_plan_new(m, map, &clean);
    if (!rc) rc = avl_plan_capture(clean, tp->site, tp->layer0, tp->layer1, tokens, &cap);
    if (!rc) rc = avl_gen_answer_run(m, tok, clean_embeds, map, &tp->gen, avl_plan_hooks(clean), &out->clean);
    if (!rc) rc = avl_gen_answer_run(m, tok, corr_embeds, map, &tp->gen, NULL, &out->corr);
    if (!rc) rc = avl_plan_new(m, map, &rest);
    if (!rc) rc = avl_plan_patch(rest, tp->site, tp->layer0, tp->layer1, tokens, cap);
    if (!rc) rc = avl_gen_answer_run(m, tok, corr_embeds, map, &tp->gen, avl_plan_hooks(rest), &out->rest);
    if (!rc) {
        c = word_of(&out->clean);
        r = word_of(&out->corr);
        if (!c || !r) rc = avl__err(AVL_E_NOMEM, "trace: cannot allocate");
    }
    int32_t ic[2], ir[2];
    if (!rc) rc = avl_word_ids(tok, c, ic);
    if (!rc) rc = avl_word_ids(tok, r, ir);
    if (!rc) {
        bool f = tp->first_step_only;
        int64_t V = m->V;
        out->p_clean_c = avl_word_prob(out->clean.logits, out->clean.n, V, ic, f);
        out->p_corr_c = avl_word_prob(out->corr.logits, out->corr.n, V, ic, f);
        out->p_rest_c = avl_word_prob(out->rest.logits, out->rest.n, V, ic, f);
        out->p_corr_r = avl_word_prob(out->corr.logits, out->corr.n, V, ir, f);
        out->p_rest_r = avl_word_prob(out->rest.logits, out->rest.n, V, ir, f);
        out->ie_clean = out->p_rest_c - out->p_corr_c;
        out->ie_corr = out->p_corr_r - out->p_rest_r;
        out->n_patched = tokens->n;
    }
    avl__free(c);
    avl__free(r);
    avl_plan_free(rest);
    avl_plan_free(clean);
    if (rc) avl_trace_result_clear(out);
    return rc;
}
