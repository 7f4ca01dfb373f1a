/* tests/support/trace_suite.h: the standard causal-tracing suite (All, Object, Sink-2/3/4,
 * Random-2/3/4, Unimodal and Cross-modal halves of Sink-2/3/4), traced twice on one sample, once
 * with the tracer's exact shortcuts and once naively (every restored run recomputed from
 * scratch), asserting that every restored answer, its logits and both indirect effects agree
 * bit for bit (or within tol), and that the shortcuts computed exactly the positions they
 * should. Header-only, like planted_sinks.h, for the planted tests that include it.
 *
 * The sets are built as `avlens trace` builds them (tools/avlens/cmd_trace.c): sinks from the
 * phi observer of the clean run, K = floor(L / N); Random N size-matched and seeded; the MDS
 * split from the received-attention observer. A model without sinks of the restored modality
 * gets stand-in sink sets (every N-th restored token, at most 4) so the sets keep their shapes.
 * Object is every third restored token (scattered, as a mask's tokens are). */
#ifndef AVL_TRACE_SUITE_H
#define AVL_TRACE_SUITE_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "avl_test.h"

typedef struct {
    const avl_model *m;
    const avl_tokenizer *tok;
    const avl_token_map *map;
    const float *clean, *corr;   /* (n, H) */
    avl_tok_kind patched;        /* kind of the restored tokens */
    avl_sink_params sp;
    int64_t max_new_tokens;
    double tol;                  /* 0: bit for bit */
    bool few;                    /* only All, Sink-2, Random-2, Cross-modal-2 (fewer runs) */
    int64_t n_restored;          /* out: restored runs compared */
    int64_t computed_short, computed_naive; /* out: prefill positions computed, summed */
    double max_ie_diff;          /* out: largest |IE shortcut - IE naive| */
} trace_suite;

enum { TS_MAX_SETS = 14 };

/* Tiny checkpoints pad lm_head past the tokenizer's ids: generation keeps to real ids. */
static void ts_real_ids_only(void *user, int64_t step, float *logits, int64_t V)
{
    (void)step;
    for (int64_t i = *(const int64_t *)user; i < V; i++) logits[i] = -INFINITY;
}

static void ts_same_double(double a, double b, double tol, const char *what, const char *set, int l0, int l1)
{
    bool same = tol == 0 ? memcmp(&a, &b, sizeof a) == 0 : fabs(a - b) <= tol;
    if (!same) fail_msg("%s, layers [%d, %d): %s %.17g (shortcut) vs %.17g (naive)", set, l0, l1, what, a, b);
}

/* Builds the 14 sets of the standard suite into sets/names from the tracer's observers. */
static int ts_build_sets(const trace_suite *s, const avl_phi_table *phi, const avl_received *rx, avl_tokset *sets,
                         char names[][32])
{
    int k = 0;
    avl_tokset base;
    assert_int_equal(avl_tokset_of_kind(s->map, s->patched, &base), AVL_OK);
    assert_true(base.n >= 8);
    assert_int_equal(avl_tokset_from_list(base.pos, base.n, &sets[k]), AVL_OK);
    snprintf(names[k++], 32, "all");
    int64_t obj[4096], n_obj = 0;
    for (int64_t i = 1; i < base.n && n_obj < 4096; i += 3) obj[n_obj++] = base.pos[i];
    assert_int_equal(avl_tokset_from_list(obj, n_obj, &sets[k]), AVL_OK);
    snprintf(names[k++], 32, "object");
    bool video = s->patched == AVL_TOK_VIDEO;
    for (int N = 2; N <= 4; N++) {
        avl_sinks *sk;
        assert_int_equal(avl_sinks_find(phi, s->sp.tau, s->map, N, &sk), AVL_OK);
        int64_t list[8], n = 0;
        const int64_t *from = video ? sk->video : sk->audio;
        int64_t nf = video ? sk->n_video : sk->n_audio;
        for (int64_t i = 0; i < nf && n < 8; i++) list[n++] = from[i];
        if (n == 0) /* stand-in sinks */
            for (int64_t i = 0; i < base.n && n < 4; i += N) list[n++] = base.pos[i];
        avl_sinks_free(sk);
        assert_int_equal(avl_tokset_from_list(list, n, &sets[k]), AVL_OK);
        snprintf(names[k++], 32, "sink%d", N);
        assert_int_equal(avl_tokset_random(&base, n, (uint64_t)N, &sets[k]), AVL_OK);
        snprintf(names[k++], 32, "random%d", N);
        avl_mds *md;
        int64_t order[8], n_uni;
        assert_int_equal(avl_mds_compute(rx, list, n, &md), AVL_OK);
        assert_int_equal(avl_mds_split(md, video, order, &n_uni), AVL_OK);
        avl_mds_free(md);
        int64_t half[8];
        for (int64_t i = 0; i < n_uni; i++) half[i] = order[i];
        assert_int_equal(avl_tokset_from_list(half, n_uni, &sets[k]), AVL_OK);
        snprintf(names[k++], 32, "unimodal%d", N);
        for (int64_t i = n_uni; i < n; i++) half[i - n_uni] = order[i];
        assert_int_equal(avl_tokset_from_list(half, n - n_uni, &sets[k]), AVL_OK);
        snprintf(names[k++], 32, "crossmodal%d", N);
    }
    avl_tokset_free(&base);
    return k;
}

/* Positions a restored run should compute with the shortcuts: from the first patched one at
 * or after d (the first row where the clean and corrupted embeddings differ) on, less the
 * patched ones when the site is before attention in every layer; the last is always computed. */
static int64_t ts_expected_computed(const trace_suite *s, avl_site site, const avl_tokset *set, int l0, int l1)
{
    int64_t n = s->map->n, H = avl_model_config(s->m)->text.hidden_size;
    int64_t nl = avl_model_config(s->m)->text.num_hidden_layers, d = 0;
    while (d < n - 1 && !memcmp(s->clean + d * H, s->corr + d * H, (size_t)H * sizeof(float))) d++;
    int64_t first = n - 1;
    for (int64_t i = 0; i < set->n; i++)
        if (set->pos[i] >= d) {
            first = set->pos[i] < n - 1 ? set->pos[i] : n - 1;
            break;
        }
    int64_t c = n - first;
    if ((site == AVL_SITE_RESID || site == AVL_SITE_ATTN_IN) && l0 == 0 && l1 == nl)
        for (int64_t i = 0; i < set->n; i++) c -= set->pos[i] >= first && set->pos[i] < n - 1;
    return c;
}

/* The suite at one site, over every layer and (window > 0) every window of that many layers. */
static void trace_suite_check(trace_suite *s, avl_site site, int window)
{
    int nl = (int)avl_model_config(s->m)->text.num_hidden_layers;
    avl_trace_params tp = avl_trace_default_params(s->m);
    tp.site = site;
    tp.gen.max_new_tokens = s->max_new_tokens;
    int64_t n_ids = avl_tokenizer_vocab_size(s->tok);
    tp.gen.on_logits = ts_real_ids_only;
    tp.gen.user = &n_ids;
    avl_trace_params tn = tp;
    tn.reuse_prefix = tn.reuse_clean_kv = false;
    avl_tokset patchable;
    assert_int_equal(avl_tokset_of_kind(s->map, s->patched, &patchable), AVL_OK);
    avl_plan *plan;
    avl_phi_table *phi;
    avl_received *rx;
    assert_int_equal(avl_plan_new(s->m, s->map, &plan), AVL_OK);
    assert_int_equal(avl_sinks_observe(plan, &s->sp, &phi), AVL_OK);
    assert_int_equal(avl_plan_observe_received(plan, 0, nl, &rx), AVL_OK);
    avl_tracer *ts, *tv;
    if (avl_tracer_new(s->m, s->tok, s->map, s->clean, s->corr, &patchable, &tp, plan, &ts)) fail_msg("%s", avl_last_error());
    assert_int_equal(avl_tracer_new(s->m, s->tok, s->map, s->clean, s->corr, &patchable, &tn, NULL, &tv), AVL_OK);
    int64_t V = avl_model_config(s->m)->text.vocab_size;
    const avl_gen_answer *a = avl_tracer_clean(ts), *b = avl_tracer_clean(tv);
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->logits, b->logits, (size_t)(a->n * V) * sizeof(float));
    a = avl_tracer_corrupted(ts), b = avl_tracer_corrupted(tv);
    assert_int_equal(a->n, b->n);
    if (s->tol == 0) assert_memory_equal(a->logits, b->logits, (size_t)(a->n * V) * sizeof(float));

    avl_tokset sets[TS_MAX_SETS];
    char names[TS_MAX_SETS][32];
    int n_sets = ts_build_sets(s, phi, rx, sets, names);
    int n_win = window > 0 && window < nl ? nl - window + 1 : 0;
    for (int k = 0; k < n_sets; k++) {
        bool run = !s->few || !strcmp(names[k], "all") || !strcmp(names[k], "sink2") ||
                   !strcmp(names[k], "random2") || !strcmp(names[k], "crossmodal2");
        for (int w = -1; run && w < n_win; w++) {
            int l0 = w < 0 ? 0 : w, l1 = w < 0 ? nl : w + window;
            avl_trace_result rs, rn;
            if (avl_tracer_restore(ts, &sets[k], l0, l1, &rs) || avl_tracer_restore(tv, &sets[k], l0, l1, &rn))
                fail_msg("%s: %s", names[k], avl_last_error());
            assert_int_equal(rn.n_computed, s->map->n);
            assert_int_equal(rs.n_computed, ts_expected_computed(s, site, &sets[k], l0, l1));
            assert_int_equal(rs.rest.n, rn.rest.n);
            assert_memory_equal(rs.rest.ids, rn.rest.ids, (size_t)rs.rest.n * sizeof(int32_t));
            if (s->tol == 0 && memcmp(rs.rest.logits, rn.rest.logits, (size_t)(rs.rest.n * V) * sizeof(float)))
                fail_msg("%s, layers [%d, %d): restored logits differ", names[k], l0, l1);
            ts_same_double(rs.p_rest_c, rn.p_rest_c, s->tol, "P_rest(c)", names[k], l0, l1);
            ts_same_double(rs.p_rest_r, rn.p_rest_r, s->tol, "P_rest(r)", names[k], l0, l1);
            ts_same_double(rs.ie_clean, rn.ie_clean, s->tol, "IE_clean", names[k], l0, l1);
            ts_same_double(rs.ie_corr, rn.ie_corr, s->tol, "IE_corr", names[k], l0, l1);
            double dmax = fmax(fabs(rs.ie_clean - rn.ie_clean), fabs(rs.ie_corr - rn.ie_corr));
            s->max_ie_diff = fmax(s->max_ie_diff, dmax);
            s->n_restored++;
            s->computed_short += rs.n_computed;
            s->computed_naive += rn.n_computed;
            avl_trace_result_clear(&rs);
            avl_trace_result_clear(&rn);
        }
        avl_tokset_free(&sets[k]);
    }
    avl_tracer_free(ts);
    avl_tracer_free(tv);
    avl_plan_free(plan);
    avl_phi_free(phi);
    avl_tokset_free(&patchable);
}

#endif
