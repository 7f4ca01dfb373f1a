/* src/analysis/trace.c: causal tracing (paper Sec. 3.2-3.3, Eqs. 3-4; paper-spec.md section 3;
 * the authors' causal_tracing_modality_sink.py and logic/causal_trace.py), with exact shortcuts.
 *
 * Clean run (capturing the patch site at the patchable tokens), corrupted run, restored runs =
 * the corrupted inputs with the site overwritten by the clean activations at a token set in the
 * chosen layers, during the prefill only. c = the clean answer, r = the corrupted answer;
 *   IE_clean = P_rest(c) - P_corr(c)       (Eq. 3)
 *   IE_corr  = P_corr(r) - P_rest(r)       (Eq. 4)
 * A tracer runs clean and corrupted once and keeps their KV caches. Let d be the first position
 * whose clean and corrupted embeddings differ: before d the two runs are the same computation,
 * so the corrupted run starts from the clean cache up to d. A restored run then
 *  (1) starts from the corrupted cache up to its first patched position p at or after d
 *      (attention is causal; nothing between d and p is patched, and a patch before d writes
 *      the value that is already there, so those keys and values are the corrupted run's), and
 *  (2) when the site is RESID or ATTN_IN in every layer, copies the patched tokens' keys and
 *      values from the clean cache: k, v of layer l at token t are functions of ATTN_IN_l[t]
 *      (= RMSNorm(RESID_l[t])) and t's position only, and the patch makes that input the clean
 *      one. Those tokens are then not computed at all (nothing else reads their hidden state;
 *      the last position, whose logits are read, is always computed).
 * Both are the same arithmetic as the full recomputation when every row of a GEMM and every
 * query of attention is computed independently of the others in the batch (the ref backend and
 * the attention kernel; see docs/analyses.md for OpenBLAS). tests/planted/test_trace_shortcuts.c
 * checks bit equality; bench/bench_trace.c measures the saving.
 */
#include <ctype.h>
#include <string.h>

#include "base/internal.h"
#include "model/model_internal.h"
#include "avlens/analysis.h"

avl_trace_params avl_trace_default_params(const avl_model *m)
{
    avl_trace_params p = {.site = AVL_SITE_ATTN_IN, .layer0 = 0, .layer1 = (int)m->n_layers,
                          .reuse_prefix = true, .reuse_clean_kv = true};
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

struct avl_tracer {
    const avl_model *m;
    const avl_tokenizer *tok;
    const avl_token_map *map;
    const float *clean_embeds, *corr_embeds; /* (n, H) each, the caller's */
    avl_trace_params tp;
    avl_plan *own_plan;       /* the clean plan when the caller gave none */
    avl_capture *cap;         /* site, all layers, patchable positions (owned by the clean plan) */
    avl_run *clean, *corr, *rest; /* KV caches of n + cap positions */
    int64_t d;                /* first position whose clean and corrupted embeddings differ (< n) */
    avl_gen_answer a_clean, a_corr;
    int32_t ic[2], ir[2];     /* ids of the clean and corrupted answer words */
    float *logits;            /* (V) the last prefill row's logits */
    int64_t *slots;           /* (2n) a restored run's skipped positions, then those it computes */
    float *g_embeds;          /* (n, H) their embeddings, gathered */
    int64_t *g_pos;           /* (3, n) their position ids, gathered */
};

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

/* Generation on a run that holds the prefill, t->logits holding its last row's logits: the
 * same steps as avl_gen_answer_run after its prefill. */
static avl_status answer_after_prefill(avl_tracer *t, avl_run *run, const avl_hooks *hooks, avl_gen_answer *out)
{
    memset(out, 0, sizeof *out);
    const avl_gen_params *gp = &t->tp.gen;
    int64_t cap = gp->max_new_tokens > 0 ? gp->max_new_tokens : 1;
    avl__logits_keeper k = {.V = t->m->V, .cap = cap, .user = gp};
    k.logits = avl__malloc((size_t)(cap * t->m->V) * sizeof(float));
    if (!k.logits) return avl__err(AVL_E_NOMEM, "trace: cannot keep %lld steps of logits", (long long)cap);
    avl_gen_params g = *gp;
    g.on_logits = avl__keep_logits_cb;
    g.user = &k;
    avl_status rc = avl__generate_continue(run, t->logits, t->map, &g, hooks, &out->ids, &out->n);
    if (!rc) {
        size_t len;
        rc = avl_tokenizer_decode(t->tok, out->ids, out->n, true, &out->text, &len);
    }
    if (rc) {
        avl__free(k.logits);
        avl_gen_answer_clear(out);
        return rc;
    }
    out->logits = k.logits;
    out->V = t->m->V;
    return AVL_OK;
}

/* A run of embeds from position `from` on (run holds the cache below it), then generation. */
static avl_status full_run(avl_tracer *t, avl_run *run, int64_t from, const float *embeds, const avl_hooks *hooks,
                           avl_gen_answer *out)
{
    const avl_token_map *map = t->map;
    avl_status rc = avl_run_truncate(run, from);
    if (!rc)
        rc = avl_run_forward(run, embeds + from * t->m->H, map->pos + from, map->n, map->n - from, hooks, t->logits, 1);
    if (!rc) rc = answer_after_prefill(t, run, hooks, out);
    return rc;
}

static avl_status word_ids_of(const avl_tokenizer *tok, const avl_gen_answer *a, int32_t ids[2])
{
    char *w = word_of(a);
    if (!w) return avl__err(AVL_E_NOMEM, "trace: cannot allocate");
    avl_status rc = avl_word_ids(tok, w, ids);
    avl__free(w);
    return rc;
}

void avl_tracer_free(avl_tracer *t)
{
    if (!t) return;
    avl_plan_free(t->own_plan);
    avl_run_free(t->clean);
    avl_run_free(t->corr);
    avl_run_free(t->rest);
    avl_gen_answer_clear(&t->a_clean);
    avl_gen_answer_clear(&t->a_corr);
    avl__free(t->logits);
    avl__free(t->slots);
    avl__free(t->g_embeds);
    avl__free(t->g_pos);
    avl__free(t);
}

const avl_gen_answer *avl_tracer_clean(const avl_tracer *t) { return &t->a_clean; }
const avl_gen_answer *avl_tracer_corrupted(const avl_tracer *t) { return &t->a_corr; }

avl_status avl_tracer_new(const avl_model *m, const avl_tokenizer *tok, const avl_token_map *map,
                          const float *clean_embeds, const float *corr_embeds, const avl_tokset *patchable,
                          const avl_trace_params *tp, avl_plan *clean_plan, avl_tracer **out)
{
    *out = NULL;
    if (tp->site != AVL_SITE_RESID && tp->site != AVL_SITE_ATTN_IN && tp->site != AVL_SITE_ATTN_OUT &&
        tp->site != AVL_SITE_MLP_OUT)
        return avl__err(AVL_E_ARG, "trace: the patch site must be RESID, ATTN_IN, ATTN_OUT or MLP_OUT");
    if (map->n <= 0) return avl__err(AVL_E_ARG, "trace: empty sequence");
    avl_tracer *t = avl__calloc(1, sizeof *t);
    if (!t) return avl__err(AVL_E_NOMEM, "trace: cannot allocate");
    t->m = m;
    t->tok = tok;
    t->map = map;
    t->clean_embeds = clean_embeds;
    t->corr_embeds = corr_embeds;
    t->tp = *tp;
    int64_t n = map->n, H = m->H, cap = tp->gen.max_new_tokens > 0 ? tp->gen.max_new_tokens : 1;
    avl_status rc = AVL_OK;
    t->logits = avl__malloc((size_t)m->V * sizeof(float));
    t->slots = avl__malloc((size_t)(2 * n) * sizeof(int64_t));
    t->g_embeds = avl__malloc((size_t)(n * H) * sizeof(float));
    t->g_pos = avl__malloc((size_t)(3 * n) * sizeof(int64_t));
    if (!t->logits || !t->slots || !t->g_embeds || !t->g_pos) rc = avl__err(AVL_E_NOMEM, "trace: cannot allocate");
    if (!rc) rc = avl_run_new(m, n + cap, &t->clean);
    if (!rc) rc = avl_run_new(m, n + cap, &t->corr);
    if (!rc) rc = avl_run_new(m, n + cap, &t->rest);
    if (!rc && !clean_plan) rc = avl_plan_new(m, map, &t->own_plan);
    avl_plan *plan = clean_plan ? clean_plan : t->own_plan;
    if (!rc) rc = avl_plan_capture(plan, tp->site, 0, (int)m->n_layers, patchable, &t->cap);
    /* d: the clean and corrupted runs are one computation before it (the last row is always
     * computed: its logits are read) */
    for (t->d = 0; t->d < n - 1; t->d++)
        if (memcmp(clean_embeds + t->d * H, corr_embeds + t->d * H, (size_t)H * sizeof(float))) break;
    bool share = tp->reuse_prefix; /* the prefix shortcut, applied to the corrupted run */
    if (!rc) rc = full_run(t, t->clean, 0, clean_embeds, avl_plan_hooks(plan), &t->a_clean);
    if (!rc && share) rc = avl_run_copy_prefix(t->corr, t->clean, t->d);
    if (!rc) rc = full_run(t, t->corr, share ? t->d : 0, corr_embeds, NULL, &t->a_corr);
    if (!rc) rc = word_ids_of(tok, &t->a_clean, t->ic);
    if (!rc) rc = word_ids_of(tok, &t->a_corr, t->ir);
    if (rc) {
        avl_tracer_free(t);
        return rc;
    }
    *out = t;
    return AVL_OK;
}

/* The prefill of the restored run from position `first` on, skipping the positions in skip
 * (ascending, at or after first, none of them the last), whose keys and values the cache
 * already holds: the other positions go through the decoder as one batch item at their cache
 * slots (one pass; the hooks see each contiguous stretch). */
static avl_status prefill_rest(avl_tracer *t, int64_t first, const int64_t *skip, int64_t n_skip,
                               const avl_hooks *hooks, int64_t *n_computed)
{
    const avl_token_map *map = t->map;
    int64_t n = map->n, H = t->m->H, nc = 0, s = 0;
    int64_t *slots = t->slots + n_skip; /* t->slots holds skip first: the rest is free */
    for (int64_t p = first; p < n; p++) {
        if (s < n_skip && skip[s] == p) {
            s++;
            continue;
        }
        slots[nc++] = p;
    }
    for (int64_t i = 0; i < nc; i++) {
        memcpy(t->g_embeds + i * H, t->corr_embeds + slots[i] * H, (size_t)H * sizeof(float));
        for (int a = 0; a < 3; a++) t->g_pos[a * nc + i] = map->pos[a * n + slots[i]];
    }
    avl_batch_item it = {.run = t->rest, .embeds = t->g_embeds, .pos = t->g_pos, .ld_pos = nc, .n = nc,
                         .slots = slots, .hooks = hooks, .logits = t->logits, .n_logits = 1};
    *n_computed = nc;
    return avl_run_forward_batch(&it, 1);
}

avl_status avl_tracer_restore(avl_tracer *t, const avl_tokset *tokens, int layer0, int layer1,
                              avl_trace_result *out)
{
    memset(out, 0, sizeof *out);
    const avl_model *m = t->m;
    const avl_token_map *map = t->map;
    int nl = (int)m->n_layers;
    int64_t n = map->n;
    avl_plan *rest = NULL;
    avl_status rc = avl_plan_new(m, map, &rest);
    if (!rc) rc = avl_plan_patch(rest, t->tp.site, layer0, layer1, tokens, t->cap);
    if (rc) goto done;
    const avl_hooks *hooks = avl_plan_hooks(rest);
    if (!t->tp.reuse_prefix && !t->tp.reuse_clean_kv) {
        rc = full_run(t, t->rest, 0, t->corr_embeds, hooks, &out->rest);
        out->n_computed = n;
    } else {
        /* the first patched position at or after d; the last position is always computed */
        int64_t first = n - 1;
        for (int64_t i = 0; i < tokens->n; i++)
            if (tokens->pos[i] >= t->d) {
                first = tokens->pos[i] < n - 1 ? tokens->pos[i] : n - 1;
                break;
            }
        if (!t->tp.reuse_prefix) first = 0;
        bool kv = t->tp.reuse_clean_kv && (t->tp.site == AVL_SITE_RESID || t->tp.site == AVL_SITE_ATTN_IN) &&
                  layer0 == 0 && layer1 == nl;
        int64_t n_skip = 0;
        if (kv)
            for (int64_t i = 0; i < tokens->n; i++)
                if (tokens->pos[i] >= first && tokens->pos[i] < n - 1) t->slots[n_skip++] = tokens->pos[i];
        rc = avl_run_copy_prefix(t->rest, t->corr, first);
        if (!rc && n_skip) rc = avl_run_copy_positions(t->rest, t->clean, t->slots, n_skip);
        if (!rc) rc = prefill_rest(t, first, t->slots, n_skip, hooks, &out->n_computed);
        if (!rc) rc = answer_after_prefill(t, t->rest, hooks, &out->rest);
    }
    if (rc) goto done;
    bool f = t->tp.first_step_only;
    int64_t V = m->V;
    const avl_gen_answer *cl = &t->a_clean, *co = &t->a_corr;
    out->p_clean_c = avl_word_prob(cl->logits, cl->n, V, t->ic, f);
    out->p_corr_c = avl_word_prob(co->logits, co->n, V, t->ic, f);
    out->p_rest_c = avl_word_prob(out->rest.logits, out->rest.n, V, t->ic, f);
    out->p_corr_r = avl_word_prob(co->logits, co->n, V, t->ir, f);
    out->p_rest_r = avl_word_prob(out->rest.logits, out->rest.n, V, t->ir, f);
    out->ie_clean = out->p_rest_c - out->p_corr_c;
    out->ie_corr = out->p_corr_r - out->p_rest_r;
    out->n_patched = tokens->n;
done:
    avl_plan_free(rest);
    if (rc) avl_trace_result_clear(out);
    return rc;
}

avl_status avl_trace_run(const avl_model *m, const avl_tokenizer *tok, const avl_token_map *map,
                         const float *clean_embeds, const float *corr_embeds, const avl_tokset *tokens,
                         const avl_trace_params *tp, avl_trace_result *out)
{
    memset(out, 0, sizeof *out);
    avl_tracer *t = NULL;
    avl_status rc = avl_tracer_new(m, tok, map, clean_embeds, corr_embeds, tokens, tp, NULL, &t);
    if (!rc) rc = avl_tracer_restore(t, tokens, tp->layer0, tp->layer1, out);
    if (!rc) { /* hand the tracer's answers over */
        out->clean = t->a_clean;
        out->corr = t->a_corr;
        memset(&t->a_clean, 0, sizeof t->a_clean);
        memset(&t->a_corr, 0, sizeof t->a_corr);
    }
    avl_tracer_free(t);
    return rc;
}

/* ---- the per-token sweep (App. B.1.1) ---------------------------------------------------- */

/* The probabilities and effects of a restored answer, as avl_tracer_restore computes them. */
static void fill_result(const avl_tracer *t, const avl_gen_answer *rest, avl_sweep_token *o)
{
    bool f = t->tp.first_step_only;
    int64_t V = t->m->V;
    const avl_gen_answer *co = &t->a_corr;
    o->p_rest_c = avl_word_prob(rest->logits, rest->n, V, t->ic, f);
    o->p_rest_r = avl_word_prob(rest->logits, rest->n, V, t->ir, f);
    o->ie_clean = o->p_rest_c - avl_word_prob(co->logits, co->n, V, t->ic, f);
    o->ie_corr = avl_word_prob(co->logits, co->n, V, t->ir, f) - o->p_rest_r;
}

/* Up to `nb` single-token restored runs in one batched prefill (each item its own KV cache;
 * the products read the weights once for all of them). Only for the both-shortcuts case: the
 * patched token is then never computed (its clean K/V are copied), so no computed row is
 * patched and the items need no hooks. Same arithmetic as avl_tracer_restore per token (bit
 * for bit on the ref backend). pos[j] < n - 1. */
static avl_status sweep_batch(avl_tracer *t, avl_run **runs, float *embeds, int64_t *gpos, int64_t *slots, float *logits,
                              const int64_t *pos, int64_t nb, avl_sweep_token *out)
{
    const avl_token_map *map = t->map;
    int64_t n = map->n, H = t->m->H, V = t->m->V;
    avl_batch_item items[AVL_SWEEP_MAX_BATCH];
    avl_status rc = AVL_OK;
    for (int64_t j = 0; j < nb && !rc; j++) {
        int64_t p = pos[j], first = p >= t->d ? p : n - 1;
        rc = avl_run_copy_prefix(runs[j], t->corr, first);
        if (!rc && p >= first) rc = avl_run_copy_positions(runs[j], t->clean, &p, 1);
        int64_t nc = 0, *sl = slots + j * n;
        float *e = embeds + j * n * H;
        int64_t *gp = gpos + j * 3 * n;
        for (int64_t q = first; q < n; q++)
            if (q != p) sl[nc++] = q;
        for (int64_t i = 0; i < nc; i++) {
            memcpy(e + i * H, t->corr_embeds + sl[i] * H, (size_t)H * sizeof(float));
            for (int a = 0; a < 3; a++) gp[a * nc + i] = map->pos[a * n + sl[i]];
        }
        items[j] = (avl_batch_item){.run = runs[j], .embeds = e, .pos = gp, .ld_pos = nc, .n = nc, .slots = sl,
                                    .hooks = NULL, .logits = logits + j * V, .n_logits = 1};
        out[j].pos = p;
        out[j].n_computed = nc;
    }
    if (!rc) rc = avl_run_forward_batch(items, nb);
    for (int64_t j = 0; j < nb && !rc; j++) {
        avl_gen_answer a;
        memcpy(t->logits, logits + j * V, (size_t)V * sizeof(float));
        if ((rc = answer_after_prefill(t, runs[j], NULL, &a))) break;
        fill_result(t, &a, &out[j]);
        avl_gen_answer_clear(&a);
    }
    return rc;
}

avl_status avl_tracer_sweep(avl_tracer *t, const avl_tokset *tokens, int layer0, int layer1, int batch,
                            avl_sweep_progress progress, void *user, avl_sweep_token *out)
{
    if (!t || !tokens || (tokens->n && !out)) return avl__err(AVL_E_ARG, "sweep: tracer, tokens and output are required");
    const avl_model *m = t->m;
    int64_t n = t->map->n, H = m->H, V = m->V;
    int nl = (int)m->n_layers;
    if (batch > AVL_SWEEP_MAX_BATCH) batch = AVL_SWEEP_MAX_BATCH;
    if (batch > tokens->n) batch = (int)tokens->n; /* no more caches than runs */
    bool batched = batch > 1 && t->tp.reuse_prefix && t->tp.reuse_clean_kv &&
                   (t->tp.site == AVL_SITE_RESID || t->tp.site == AVL_SITE_ATTN_IN) && layer0 == 0 && layer1 == nl;
    avl_run *runs[AVL_SWEEP_MAX_BATCH] = {0};
    float *embeds = NULL, *logits = NULL;
    int64_t *gpos = NULL, *slots = NULL;
    avl_status rc = AVL_OK;
    if (batched) {
        int64_t cap = t->tp.gen.max_new_tokens > 0 ? t->tp.gen.max_new_tokens : 1;
        for (int j = 0; j < batch && !rc; j++) rc = avl_run_new(m, n + cap, &runs[j]);
        embeds = avl__malloc((size_t)(batch * n * H) * sizeof *embeds);
        logits = avl__malloc((size_t)(batch * V) * sizeof *logits);
        gpos = avl__malloc((size_t)(batch * 3 * n) * sizeof *gpos);
        slots = avl__malloc((size_t)(batch * n) * sizeof *slots);
        if (!rc && (!embeds || !logits || !gpos || !slots)) rc = avl__err(AVL_E_NOMEM, "sweep: cannot allocate a batch of %d", batch);
    }
    int64_t i = 0;
    while (i < tokens->n && !rc) {
        /* the next batch: single-token runs of tokens before the last position */
        int64_t nb = 0;
        if (batched)
            while (nb < batch && i + nb < tokens->n && tokens->pos[i + nb] < n - 1) nb++;
        if (nb >= 2) {
            /* a token outside the capture is an error, as in avl_tracer_restore */
            for (int64_t j = 0; j < nb && !rc; j++) {
                avl_plan *probe = NULL;
                avl_tokset one = {.pos = (int64_t *)&tokens->pos[i + j], .n = 1};
                rc = avl_plan_new(m, t->map, &probe);
                if (!rc) rc = avl_plan_patch(probe, t->tp.site, layer0, layer1, &one, t->cap);
                avl_plan_free(probe);
            }
            if (!rc) rc = sweep_batch(t, runs, embeds, gpos, slots, logits, tokens->pos + i, nb, out + i);
        } else {
            nb = 1;
            int64_t p = tokens->pos[i];
            avl_tokset one = {.pos = &p, .n = 1};
            avl_trace_result r;
            if (!(rc = avl_tracer_restore(t, &one, layer0, layer1, &r))) {
                out[i] = (avl_sweep_token){.pos = p, .ie_clean = r.ie_clean, .ie_corr = r.ie_corr, .p_rest_c = r.p_rest_c,
                                           .p_rest_r = r.p_rest_r, .n_computed = r.n_computed};
                avl_trace_result_clear(&r);
            }
        }
        if (rc) rc = avl__err_wrap(rc, "sweep: token at position %lld", (long long)tokens->pos[i]);
        for (int64_t j = 0; j < nb && !rc && progress; j++) progress(user, i + j + 1, tokens->n);
        i += nb;
    }
    for (int j = 0; j < AVL_SWEEP_MAX_BATCH; j++) avl_run_free(runs[j]);
    avl__free(embeds);
    avl__free(logits);
    avl__free(gpos);
    avl__free(slots);
    return rc;
}
