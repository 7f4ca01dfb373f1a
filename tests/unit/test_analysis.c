/* tests/unit/test_analysis.c: the analyses' arithmetic on hand-made inputs: sink selection
 * (Counter.most_common order), phi, sink-dimension finding, MDS split, Tab. 12 statistics,
 * token sets, dominance classes and word probabilities. */
#include "avl_test.h"
#include "av_seq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_phi(void **state)
{
    (void)state;
    float x[4] = {3, 0, 0, 4};
    avl_sink_params p = {.n_dims = 1, .dims = {3}, .tau = 1};
    assert_true(fabsf(avl_sink_phi(x, 4, &p) - 1.6f) < 1e-6f);
    p.n_dims = 2;
    p.dims[1] = 0;
    assert_true(fabsf(avl_sink_phi(x, 4, &p) - 1.6f) < 1e-6f);
    x[0] = -5;
    assert_true(fabsf(avl_sink_phi(x, 4, &p) - (float)(5 / sqrt(41.0 / 4 + 1e-6))) < 1e-6f);
    avl_config c;
    avl_config_defaults(&c); /* the 7B sizes */
    assert_int_equal(avl_sink_default_params(&c, &p), AVL_OK);
    assert_int_equal(p.n_dims, 2);
    assert_int_equal(p.dims[0], 458);
    assert_int_equal(p.dims[1], 2570);
    assert_true(p.tau == 25.0);
}

/* Counter(S_0 + S_1 + S_2).most_common(K) with S_0 = [4], S_1 = [2, 4], S_2 = [0, 2, 5]:
 * counts 4:2, 2:2, 0:1, 5:1 in insertion order 4, 2, 0, 5 -> [4, 2, 0, 5]. */
static void test_sink_order(void **state)
{
    (void)state;
    float phi[3 * 6] = {0};
    phi[0 * 6 + 4] = 2;
    phi[1 * 6 + 2] = 2;
    phi[1 * 6 + 4] = 2;
    phi[2 * 6 + 0] = 2;
    phi[2 * 6 + 2] = 2;
    phi[2 * 6 + 5] = 2;
    phi[2 * 6 + 1] = 1; /* not > tau */
    avl_phi_table t = {.n_layers = 3, .L = 6, .phi = phi};
    avl_token_info tok[6] = {{.kind = AVL_TOK_TEXT}, {.kind = AVL_TOK_TEXT}, {.kind = AVL_TOK_VIDEO},
                             {.kind = AVL_TOK_VIDEO}, {.kind = AVL_TOK_AUDIO}, {.kind = AVL_TOK_VIDEO}};
    avl_token_map map = {.n = 6, .tok = tok};
    avl_sinks *s;
    assert_int_equal(avl_sinks_find(&t, 1.0, &map, 1, &s), AVL_OK);
    int64_t want[4] = {4, 2, 0, 5};
    assert_int_equal(s->n_global, 4);
    assert_memory_equal(s->global, want, sizeof want);
    assert_int_equal(s->freq[4], 2);
    assert_int_equal(s->freq[1], 0);
    assert_int_equal(s->layer_count[2], 3);
    assert_int_equal(s->n_video, 2);
    assert_int_equal(s->video[0], 2);
    assert_int_equal(s->video[1], 5);
    assert_int_equal(s->n_audio, 1);
    avl_sinks_free(s);
    assert_int_equal(avl_sinks_find(&t, 1.0, &map, 3, &s), AVL_OK);
    assert_int_equal(s->K, 2);
    assert_int_equal(s->n_global, 2);
    assert_int_equal(s->global[1], 2);
    avl_sinks_free(s);
    AVL_EXPECT_ERROR(avl_sinks_find(&t, 1.0, &map, 0, &s), AVL_E_ARG, "k_divide");
    map.n = 5;
    AVL_EXPECT_ERROR(avl_sinks_find(&t, 1.0, &map, 2, &s), AVL_E_ARG, "5");
}

static void test_find_dims(void **state)
{
    (void)state;
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)((i % 7) - 3) * 0.3f;
    x[17] = 500.0f;
    x[40] = -800.0f;
    x[41] = 70.0f; /* above the floor 20 and above 100 x the median |x| (0.6) */
    int64_t dims[8];
    int n;
    assert_int_equal(avl_sink_find_dims(x, 64, 100.0, 20.0, dims, 8, &n), AVL_OK);
    assert_int_equal(n, 3);
    assert_int_equal(dims[0], 40);
    assert_int_equal(dims[1], 17);
    assert_int_equal(dims[2], 41);
    assert_int_equal(avl_sink_find_dims(x, 64, 100.0, 100.0, dims, 8, &n), AVL_OK);
    assert_int_equal(n, 2);
}

static void test_mds_split_and_stats(void **state)
{
    (void)state;
    int64_t sinks[4] = {10, 11, 12, 13};
    double mean[4] = {0.2, NAN, 0.8, 0.2};
    avl_mds m = {.n = 4, .sinks = sinks, .mean = mean};
    int64_t order[4], n_uni;
    assert_int_equal(avl_mds_split(&m, true, order, &n_uni), AVL_OK);
    int64_t wv[4] = {12, 10, 13, 11};
    assert_memory_equal(order, wv, sizeof wv);
    assert_int_equal(n_uni, 2);
    assert_int_equal(avl_mds_split(&m, false, order, &n_uni), AVL_OK);
    int64_t wa[4] = {10, 13, 12, 11};
    assert_memory_equal(order, wa, sizeof wa);
    m.n = 3;
    assert_int_equal(avl_mds_split(&m, true, order, &n_uni), AVL_OK);
    assert_int_equal(n_uni, 1);

    double x[5] = {4, NAN, 1, 3, 2};
    avl_summary s;
    avl_summarize(x, 5, &s);
    assert_int_equal(s.count, 4);
    assert_true(fabs(s.median - 2.5) < 1e-12);
    assert_true(fabs(s.q25 - 1.75) < 1e-12);
    assert_true(fabs(s.q75 - 3.25) < 1e-12);
    assert_true(fabs(s.iqr - 1.5) < 1e-12);
    assert_true(fabs(s.std - sqrt(1.25)) < 1e-12);
    avl_summarize(x + 1, 1, &s);
    assert_int_equal(s.count, 0);
    assert_true(isnan(s.median));
}

static void test_object_tokens(void **state)
{
    (void)state;
    avl_token_map *map = av_map();
    assert_int_equal(map->n_video, 8);
    uint8_t m0[100] = {0}, m1[100] = {0};
    m0[7 * 10 + 2] = 200; /* row 1, col 0 of the 2 x 2 grid (5-pixel cells) */
    m0[0] = 30;           /* not above the threshold */
    m1[0 * 10 + 9] = 31;  /* row 0, col 1 */
    const uint8_t *masks[2] = {m0, m1};
    avl_tokset s;
    assert_int_equal(avl_tokset_object_video(map, 0, masks, 2, 10, 10, 30, &s), AVL_OK);
    assert_int_equal(s.n, 2);
    for (int i = 0; i < 2; i++) assert_int_equal(map->tok[s.pos[i]].kind, AVL_TOK_VIDEO);
    assert_int_equal(map->tok[s.pos[0]].index, 2);
    assert_int_equal(map->tok[s.pos[1]].index, 5);
    avl_tokset_free(&s);
    /* a missing mask gives nothing for its grid index */
    const uint8_t *one[2] = {NULL, m1};
    assert_int_equal(avl_tokset_object_video(map, 0, one, 2, 10, 10, 30, &s), AVL_OK);
    assert_int_equal(s.n, 1);
    avl_tokset_free(&s);
    /* audio: 40 ms tokens overlapping [0.5, 0.7) s: tokens 12 .. 17 */
    double seg[2] = {0.5, 0.7};
    assert_int_equal(avl_tokset_object_audio(map, 0, seg, 1, &s), AVL_OK);
    assert_int_equal(s.n, 6);
    assert_int_equal(map->tok[s.pos[0]].index, 12);
    assert_int_equal(map->tok[s.pos[5]].index, 17);
    avl_tokset_free(&s);
    assert_int_equal(avl_audio_runs(map), 1);
    avl_token_map_free(map);
}

static void test_random_tokens(void **state)
{
    (void)state;
    int64_t pool[20];
    for (int i = 0; i < 20; i++) pool[i] = 100 + 3 * i;
    avl_tokset from = {.n = 20, .pos = pool}, a, b, c;
    assert_int_equal(avl_tokset_random(&from, 5, 0, &a), AVL_OK);
    assert_int_equal(avl_tokset_random(&from, 5, 0, &b), AVL_OK);
    assert_int_equal(avl_tokset_random(&from, 5, 1, &c), AVL_OK);
    assert_int_equal(a.n, 5);
    assert_memory_equal(a.pos, b.pos, 5 * sizeof(int64_t));
    assert_true(memcmp(a.pos, c.pos, 5 * sizeof(int64_t)) != 0);
    for (int i = 0; i < 5; i++) assert_true(avl_tokset_contains(&from, a.pos[i]));
    avl_tokset_free(&a);
    avl_tokset_free(&b);
    avl_tokset_free(&c);
    assert_int_equal(avl_tokset_random(&from, 30, 0, &a), AVL_OK);
    assert_int_equal(a.n, 20);
    avl_tokset_free(&a);
}

static void test_dominance(void **state)
{
    (void)state;
    assert_int_equal(avl_dominance_classify("A", " A\n", "B"), AVL_DOM_AUDIO);
    assert_int_equal(avl_dominance_classify("B", "A", "B"), AVL_DOM_VIDEO);
    assert_int_equal(avl_dominance_classify("A", "A", "A"), AVL_DOM_NONE);
    assert_int_equal(avl_dominance_classify("C", "A", "B"), AVL_DOM_NONE);
    assert_string_equal(avl_dominance_name(AVL_DOM_VIDEO), "video");
    /* word probabilities: max over steps and ids, or the first step */
    float lg[2 * 4] = {0, 0, 0, 0, /* step 0: uniform */ 0, 0, 5, 0};
    int32_t ids[2] = {2, 3};
    double first = avl_word_prob(lg, 2, 4, ids, true), best = avl_word_prob(lg, 2, 4, ids, false);
    assert_true(fabs(first - 0.25) < 1e-12);
    assert_true(fabs(best - exp(5.0) / (exp(5.0) + 3)) < 1e-12);
    int32_t none[2] = {-1, -1};
    assert_true(avl_word_prob(lg, 2, 4, none, false) == 0.0);
    assert_true(avl_word_prob(lg, 0, 4, ids, false) == 0.0);
}

static void test_word_ids(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("analysis_tok");
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.thinker_only = true;
    assert_int_equal(avl_mkmodel_write(&p, dir), AVL_OK);
    avl_tokenizer *tok;
    assert_int_equal(avl_tokenizer_load(dir, &tok), AVL_OK);
    int32_t ids[2];
    assert_int_equal(avl_word_ids(tok, "A", ids), AVL_OK);
    assert_true(ids[0] >= 0 && ids[1] >= 0);
    char *t;
    size_t n;
    assert_int_equal(avl_tokenizer_decode(tok, ids, 1, false, &t, &n), AVL_OK);
    assert_string_equal(t, "A");
    avl_tokenizer_free_mem(t);
    assert_int_equal(avl_tokenizer_decode(tok, ids + 1, 1, false, &t, &n), AVL_OK);
    assert_true(t[0] == ' ');
    avl_tokenizer_free_mem(t);
    avl_tokenizer_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phi),         cmocka_unit_test(test_sink_order),
        cmocka_unit_test(test_find_dims),   cmocka_unit_test(test_mds_split_and_stats),
        cmocka_unit_test(test_object_tokens), cmocka_unit_test(test_random_tokens),
        cmocka_unit_test(test_dominance),   cmocka_unit_test(test_word_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
