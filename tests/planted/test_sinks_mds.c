/* tests/planted/test_sinks_mds.c: planted sinks and a planted attention split on a tiny
 * Qwen2.5-Omni thinker with hand-set weights, and the metamorphic checks of plans.
 *
 * The model (H = 128, 4 layers, 4 heads of 32, 2 KV heads, fp32) is written by mkmodel and then
 * edited tensor by tensor:
 *  - every layer: the query rows of head dim 31 read only dimension QA (weight G), of head dim
 *    30 only QV; the key rows of head dim 31 read only KA, of head dim 30 only KV. These head
 *    dims belong to the slowest rotary pairs, whose angles stay below 1e-3 here, so a query with
 *    a large QA scores about G^2 * x'_QA * x'_KA / sqrt(32) ~ 25 against a key with a large KA:
 *    audio queries (QA set) look at KA sinks, video queries (QV set) at KV sinks.
 *  - layer 1's MLP is zeroed except one path: gate and up read dimension M, down writes into
 *    both sink dimensions D = {10, 70}; a token whose M is large becomes a sink from layer 2.
 * The decoder input is built by hand (embedding rows scaled to unit size): four sinks get 100 in
 * D (video token 0 and audio token 1 carry KA, video token 1 and audio token 0 carry KV), one
 * text token of the tail gets M = 30. Expected: sinks exactly these five, f = 4 for the four,
 * f = 2 for the marker token, order by position among equals; MDS about -1 for KA sinks and +1
 * for KV sinks; the video split puts video token 1 first (unimodal), the audio split audio
 * token 1 first (unimodal).
 */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define PLANTED_SINKS_DIR "planted_sinks"
#include "planted_sinks.h"

static void expect_same_logits(const float *a, const float *b, const char *what)
{
    int64_t V = avl_model_config(F.m)->text.vocab_size;
    if (memcmp(a, b, (size_t)(F.L * V) * sizeof(float)) != 0) fail_msg("%s: logits differ", what);
}

static avl_sink_params sink_params(void)
{
    avl_sink_params sp = {.n_dims = 2, .dims = {D0, D1}, .tau = 6.0};
    return sp;
}

static void test_planted_sinks(void **state)
{
    (void)state;
    avl_plan *p;
    assert_int_equal(avl_plan_new(F.m, F.map, &p), AVL_OK);
    avl_sink_params sp = sink_params();
    avl_phi_table *phi;
    assert_int_equal(avl_sinks_observe(p, &sp, &phi), AVL_OK);
    avl_capture *cap;
    int64_t first = F.sv1;
    avl_tokset one;
    assert_int_equal(avl_tokset_from_list(&first, 1, &one), AVL_OK);
    assert_int_equal(avl_plan_capture(p, AVL_SITE_RESID, 1, 2, &one, &cap), AVL_OK);
    free(forward(avl_plan_hooks(p)));
    /* the sink-dimension rule finds exactly the planted dimensions in a sink's layer-1 input */
    int64_t dims[8];
    int nd;
    assert_int_equal(avl_sink_find_dims(avl_capture_layer(cap, 1), HID, 100.0, 20.0, dims, 8, &nd), AVL_OK);
    assert_int_equal(nd, 2);
    assert_true((dims[0] == D0 && dims[1] == D1) || (dims[0] == D1 && dims[1] == D0));
    avl_tokset_free(&one);
    avl_sinks *s;
    assert_int_equal(avl_sinks_find(phi, sp.tau, F.map, 2, &s), AVL_OK);
    int64_t want[5] = {F.sv1, F.sv2, F.sa1, F.sa2, F.marker};
    assert_int_equal(s->K, F.L / 2);
    if (s->n_global != 5) {
        for (int64_t i = 0; i < s->n_global; i++)
            fprintf(stderr, "sink %lld f=%d\n", (long long)s->global[i], s->freq[s->global[i]]);
        fail_msg("%lld global sinks, want 5", (long long)s->n_global);
    }
    for (int i = 0; i < 5; i++) assert_int_equal(s->global[i], want[i]);
    for (int i = 0; i < 4; i++) assert_int_equal(s->freq[want[i]], NL);
    assert_int_equal(s->freq[F.marker], 2);
    assert_int_equal(s->member[1 * F.L + F.marker], 0);
    assert_int_equal(s->member[2 * F.L + F.marker], 1);
    assert_int_equal(s->layer_count[0], 4);
    assert_int_equal(s->layer_count[3], 5);
    assert_int_equal(s->n_video, 2);
    assert_int_equal(s->video[0], F.sv1);
    assert_int_equal(s->video[1], F.sv2);
    assert_int_equal(s->n_audio, 2);
    assert_int_equal(s->audio[0], F.sa1);
    assert_int_equal(s->audio[1], F.sa2);
    /* K = floor(L / N) cuts the ranking: N = L / 3 keeps the first three */
    avl_sinks *s3;
    assert_int_equal(avl_sinks_find(phi, sp.tau, F.map, F.L / 3, &s3), AVL_OK);
    assert_int_equal(s3->n_global, 3);
    assert_int_equal(s3->global[2], F.sa1);
    avl_sinks_free(s3);
    avl_sinks_free(s);
    avl_phi_free(phi);
    avl_plan_free(p);
}

static void test_planted_mds(void **state)
{
    (void)state;
    avl_plan *p;
    assert_int_equal(avl_plan_new(F.m, F.map, &p), AVL_OK);
    avl_received *rx;
    assert_int_equal(avl_plan_observe_received(p, 0, NL, &rx), AVL_OK);
    free(forward(avl_plan_hooks(p)));
    int64_t vs[2] = {F.sv1, F.sv2}, as[2] = {F.sa1, F.sa2};
    avl_mds *mv, *ma;
    assert_int_equal(avl_mds_compute(rx, vs, 2, &mv), AVL_OK);
    assert_int_equal(avl_mds_compute(rx, as, 2, &ma), AVL_OK);
    assert_int_equal(mv->n_layers, NL);
    for (int l = 0; l < NL; l++) {
        /* KA sinks: looked at by audio queries; KV sinks: by video queries */
        if (!(mv->mds[0 * NL + l] < -0.9)) fail_msg("video sink 0 layer %d: MDS %g", l, mv->mds[l]);
        if (!(mv->mds[1 * NL + l] > 0.9)) fail_msg("video sink 1 layer %d: MDS %g", l, mv->mds[NL + l]);
        if (!(ma->mds[0 * NL + l] > 0.9)) fail_msg("audio sink 0 layer %d: MDS %g", l, ma->mds[l]);
        if (!(ma->mds[1 * NL + l] < -0.9)) fail_msg("audio sink 1 layer %d: MDS %g", l, ma->mds[NL + l]);
        assert_true(mv->a_a[l] > 0.3);
        assert_true(mv->a_v[NL + l] > 0.3);
    }
    int64_t order[2], n_uni;
    assert_int_equal(avl_mds_split(mv, true, order, &n_uni), AVL_OK);
    assert_int_equal(n_uni, 1);
    assert_int_equal(order[0], F.sv2); /* unimodal: its own modality looks at it */
    assert_int_equal(order[1], F.sv1);
    assert_int_equal(avl_mds_split(ma, false, order, &n_uni), AVL_OK);
    assert_int_equal(order[0], F.sa2);
    assert_int_equal(order[1], F.sa1);
    avl_mds_free(mv);
    avl_mds_free(ma);
    avl_plan_free(p);
}

/* The observer against a brute-force reduction of the full maps, and its independence of
 * how the queries are split into blocks and in which order the blocks come. */
typedef struct {
    float *attn; /* (NL, NH, L, L) */
    int64_t L;
} fullmap;

static void full_attn(void *u, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                      const float *scores)
{
    fullmap *f = u;
    (void)scores;
    for (int64_t r = 0; r < nq; r++)
        memcpy(f->attn + (((int64_t)layer * NH + head) * f->L + q0 + r) * f->L, probs + r * nk,
               (size_t)nk * sizeof(float));
}

static void test_observer_exact(void **state)
{
    (void)state;
    fullmap fm = {.L = F.L};
    fm.attn = calloc((size_t)(NL * NH * F.L * F.L), sizeof(float));
    avl_hooks hk = {.attn = full_attn, .user = &fm};
    free(forward(&hk));
    /* the same probabilities reduced in two very different block splits and orders (blocks of
     * 32 rows ascending, as threads might; single rows, heads and queries descending) must
     * give bit-identical sums: what makes the observer independent of the thread count */
    double *got[2];
    for (int way = 0; way < 2; way++) {
        avl_plan *p;
        avl_received *rx;
        assert_int_equal(avl_plan_new(F.m, F.map, &p), AVL_OK);
        assert_int_equal(avl_plan_observe_received(p, 0, NL, &rx), AVL_OK);
        const avl_hooks *h = avl_plan_hooks(p);
        float *rows = malloc((size_t)(32 * F.L) * sizeof(float));
        for (int l = 0; l < NL; l++)
            for (int hh = 0; hh < NH; hh++) {
                int head = way ? NH - 1 - hh : hh;
                const float *base = fm.attn + ((int64_t)l * NH + head) * F.L * F.L;
                if (way == 0) {
                    for (int64_t q0 = 0; q0 < F.L; q0 += 32) {
                        int64_t nq = F.L - q0 < 32 ? F.L - q0 : 32;
                        memcpy(rows, base + q0 * F.L, (size_t)(nq * F.L) * sizeof(float));
                        h->attn(h->user, l, head, q0, nq, F.L, rows, rows);
                    }
                } else {
                    for (int64_t q = F.L - 1; q >= 0; q--) {
                        memcpy(rows, base + q * F.L, (size_t)F.L * sizeof(float));
                        h->attn(h->user, l, head, q, 1, F.L, rows, rows);
                    }
                }
            }
        free(rows);
        got[way] = malloc((size_t)(NL * AVL_QG_COUNT * F.L) * sizeof(double));
        for (int l = 0; l < NL; l++)
            for (int g = 0; g < AVL_QG_COUNT; g++)
                for (int64_t k = 0; k < F.L; k++)
                    got[way][(l * AVL_QG_COUNT + g) * F.L + k] = avl_received_mean(rx, l, (avl_qgroup)g, k);
        avl_plan_free(p);
    }
    assert_memory_equal(got[0], got[1], (size_t)(NL * AVL_QG_COUNT * F.L) * sizeof(double));
    for (int l = 0; l < NL; l++)
        for (int64_t k = 0; k < F.L; k++) {
            double sum[AVL_QG_COUNT] = {0};
            int64_t cnt[AVL_QG_COUNT] = {0};
            for (int64_t q = k + 1; q < F.L; q++) {
                int kind = F.map->tok[q].kind;
                int g = kind == AVL_TOK_VIDEO ? AVL_QG_VIDEO : kind == AVL_TOK_AUDIO ? AVL_QG_AUDIO : AVL_QG_TEXT;
                for (int h = 0; h < NH; h++) sum[g] += fm.attn[(((int64_t)l * NH + h) * F.L + q) * F.L + k];
                cnt[g]++;
            }
            for (int g = 0; g < AVL_QG_COUNT; g++) {
                double want = cnt[g] ? sum[g] / (double)(cnt[g] * NH) : 0.0;
                double have = got[0][(l * AVL_QG_COUNT + g) * F.L + k];
                if (fabs(have - want) > 1e-9) fail_msg("layer %d group %d key %lld: %g vs %g", l, g, (long long)k, have, want);
            }
        }
    free(got[0]);
    free(got[1]);
    free(fm.attn);
}

static void test_empty_and_observers_only(void **state)
{
    (void)state;
    float *base = forward(NULL);
    avl_plan *p;
    assert_int_equal(avl_plan_new(F.m, F.map, &p), AVL_OK);
    assert_null(avl_plan_hooks(p)); /* an empty plan installs nothing */
    avl_received *rx;
    avl_capture *cap;
    avl_phi_table *phi;
    avl_sink_params sp = sink_params();
    assert_int_equal(avl_plan_observe_received(p, 0, NL, &rx), AVL_OK);
    assert_int_equal(avl_plan_capture(p, AVL_SITE_ATTN_IN, 0, NL, NULL, &cap), AVL_OK);
    assert_int_equal(avl_sinks_observe(p, &sp, &phi), AVL_OK);
    float *obs = forward(avl_plan_hooks(p));
    expect_same_logits(base, obs, "observers only");
    /* a PRE edit with c = 0 recomputes every softmax row it touches: bit-identical */
    avl_tokset all;
    int64_t *every = malloc((size_t)F.L * sizeof *every);
    for (int64_t i = 0; i < F.L; i++) every[i] = i;
    assert_int_equal(avl_tokset_from_list(every, F.L, &all), AVL_OK);
    avl_plan *e;
    assert_int_equal(avl_plan_new(F.m, F.map, &e), AVL_OK);
    avl_attn_edit ed = {.kind = AVL_EDIT_PRE_ABS, .c = 0.0, .layer0 = 0, .layer1 = NL, .queries_from = -1, .keys = &all};
    assert_int_equal(avl_plan_edit_attn(e, &ed), AVL_OK);
    float *zero_edit = forward(avl_plan_hooks(e));
    expect_same_logits(base, zero_edit, "pre-softmax edit with c = 0");
    free(zero_edit);
    free(every);
    avl_tokset_free(&all);
    avl_plan_free(e);
    free(obs);
    free(base);
    avl_phi_free(phi);
    avl_plan_free(p);
}

static void test_self_patch(void **state)
{
    (void)state;
    static const avl_site sites[4] = {AVL_SITE_RESID, AVL_SITE_ATTN_IN, AVL_SITE_ATTN_OUT, AVL_SITE_MLP_OUT};
    float *base = forward(NULL);
    avl_tokset video;
    assert_int_equal(avl_tokset_of_kind(F.map, AVL_TOK_VIDEO, &video), AVL_OK);
    for (int s = 0; s < 4; s++) {
        avl_plan *src, *dst;
        avl_capture *cap;
        assert_int_equal(avl_plan_new(F.m, F.map, &src), AVL_OK);
        assert_int_equal(avl_plan_capture(src, sites[s], 0, NL, NULL, &cap), AVL_OK);
        free(forward(avl_plan_hooks(src)));
        assert_int_equal(avl_plan_new(F.m, F.map, &dst), AVL_OK);
        assert_int_equal(avl_plan_patch(dst, sites[s], 0, NL, &video, cap), AVL_OK);
        float *patched = forward(avl_plan_hooks(dst));
        expect_same_logits(base, patched, "self patch");
        free(patched);
        avl_plan_free(dst);
        avl_plan_free(src);
    }
    avl_tokset_free(&video);
    free(base);
}

/* Patching really moves activations: the marker token's clean ATTN_IN patched into a run whose
 * marker was removed restores its sinkhood from layer 2 on only where it is patched. */
static void test_patch_restores(void **state)
{
    (void)state;
    avl_plan *clean;
    avl_capture *cap;
    int64_t mk = F.marker;
    avl_tokset one;
    assert_int_equal(avl_tokset_from_list(&mk, 1, &one), AVL_OK);
    assert_int_equal(avl_plan_new(F.m, F.map, &clean), AVL_OK);
    assert_int_equal(avl_plan_capture(clean, AVL_SITE_MLP_OUT, 0, NL, &one, &cap), AVL_OK);
    free(forward(avl_plan_hooks(clean)));
    float saved = F.embeds[mk * HID + MK];
    F.embeds[mk * HID + MK] = 0.0f; /* corrupted: no marker */
    avl_sink_params sp = sink_params();
    int32_t freq[2];
    for (int patched = 0; patched < 2; patched++) {
        avl_plan *p;
        avl_phi_table *phi;
        avl_sinks *s;
        assert_int_equal(avl_plan_new(F.m, F.map, &p), AVL_OK);
        if (patched) assert_int_equal(avl_plan_patch(p, AVL_SITE_MLP_OUT, 1, 2, &one, cap), AVL_OK);
        assert_int_equal(avl_sinks_observe(p, &sp, &phi), AVL_OK);
        free(forward(avl_plan_hooks(p)));
        assert_int_equal(avl_sinks_find(phi, sp.tau, F.map, 2, &s), AVL_OK);
        freq[patched] = s->freq[mk];
        avl_sinks_free(s);
        avl_phi_free(phi);
        avl_plan_free(p);
    }
    F.embeds[mk * HID + MK] = saved;
    assert_int_equal(freq[0], 0);
    assert_int_equal(freq[1], 2);
    avl_tokset_free(&one);
    avl_plan_free(clean);
}

/* A pre-softmax edit that lowers the KA sinks for audio queries takes their attention away. */
static void test_edit_moves_attention(void **state)
{
    (void)state;
    avl_tokset keys, audio;
    int64_t ka[2] = {F.sv1, F.sa2};
    assert_int_equal(avl_tokset_from_list(ka, 2, &keys), AVL_OK);
    assert_int_equal(avl_tokset_of_kind(F.map, AVL_TOK_AUDIO, &audio), AVL_OK);
    double a_a[2];
    for (int edit = 0; edit < 2; edit++) {
        avl_plan *p;
        avl_received *rx;
        assert_int_equal(avl_plan_new(F.m, F.map, &p), AVL_OK);
        if (edit) {
            avl_attn_edit e = {.kind = AVL_EDIT_PRE_ABS, .c = -1.0, .layer0 = 0, .layer1 = NL,
                               .queries = &audio, .queries_from = -1, .keys = &keys};
            assert_int_equal(avl_plan_edit_attn(p, &e), AVL_OK);
        }
        assert_int_equal(avl_plan_observe_received(p, 0, NL, &rx), AVL_OK);
        free(forward(avl_plan_hooks(p)));
        a_a[edit] = avl_received_mean(rx, 0, AVL_QG_AUDIO, F.sv1);
        avl_plan_free(p);
    }
    assert_true(a_a[0] > 0.3);
    assert_true(a_a[1] < 0.05);
    avl_tokset_free(&keys);
    avl_tokset_free(&audio);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planted_sinks),       cmocka_unit_test(test_planted_mds),
        cmocka_unit_test(test_observer_exact),      cmocka_unit_test(test_empty_and_observers_only),
        cmocka_unit_test(test_self_patch),          cmocka_unit_test(test_patch_restores),
        cmocka_unit_test(test_edit_moves_attention),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
