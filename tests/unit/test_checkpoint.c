/* tests/unit/test_checkpoint.c: the thinker tensor list (names, shapes, the published 7B
 * parameter count), verification errors (wrong shape, missing tensor, wrong dtype, truncated
 * shard), non-thinker tensors ignored, and mkmodel: round trip, determinism, shards, forms. */
#include "avl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/internal.h"

#define FIX7 AVL_TEST_DATA "/config/qwen25-omni-7b.json"
#define FIX3 AVL_TEST_DATA "/config/qwen25-omni-3b.json"

static const avl_tensor_spec *find_spec(const avl_tensor_spec *s, int64_t n, const char *name)
{
    for (int64_t i = 0; i < n; i++)
        if (!strcmp(s[i].name, name)) return &s[i];
    return NULL;
}

static void expect_shape(const avl_tensor_spec *s, int64_t n, const char *name, int ndim, const int64_t *shape)
{
    const avl_tensor_spec *t = find_spec(s, n, name);
    if (!t) fail_msg("no spec %s", name);
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(t->shape[i], shape[i]);
}

#define SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

/* 8,931,813,888 parameters in 1,346 tensors: the "total_parameters" of a thinker-only
 * Qwen2.5-Omni-7B checkpoint's safetensors index (docs/checkpoint.md gives the source). */
static void test_7b_specs_and_count(void **state)
{
    (void)state;
    avl_config c;
    assert_int_equal(avl_config_load(FIX7, &c), AVL_OK);
    avl_tensor_spec *s;
    int64_t n;
    assert_int_equal(avl_thinker_tensor_specs(&c, &s, &n), AVL_OK);
    assert_int_equal(n, 1346);
    int64_t by_part[AVL_PART_COUNT] = {0};
    for (int64_t i = 0; i < n; i++) by_part[s[i].part]++;
    assert_int_equal(by_part[AVL_PART_AUDIO], 489);
    assert_int_equal(by_part[AVL_PART_VISION], 518);
    assert_int_equal(by_part[AVL_PART_LLM], 338);
    assert_int_equal(by_part[AVL_PART_LM_HEAD], 1);
    expect_shape(s, n, "thinker.audio_tower.conv1.weight", SHAPE(1280, 128, 3));
    expect_shape(s, n, "thinker.audio_tower.conv2.weight", SHAPE(1280, 1280, 3));
    expect_shape(s, n, "thinker.audio_tower.audio_bos_eos_token.weight", SHAPE(2, 3584));
    expect_shape(s, n, "thinker.audio_tower.layers.31.self_attn.k_proj.weight", SHAPE(1280, 1280));
    assert_null(find_spec(s, n, "thinker.audio_tower.layers.0.self_attn.k_proj.bias"));
    expect_shape(s, n, "thinker.audio_tower.layers.0.self_attn.q_proj.bias", SHAPE(1280));
    expect_shape(s, n, "thinker.audio_tower.layers.0.fc1.weight", SHAPE(5120, 1280));
    expect_shape(s, n, "thinker.audio_tower.layers.0.fc2.weight", SHAPE(1280, 5120));
    expect_shape(s, n, "thinker.audio_tower.proj.weight", SHAPE(3584, 1280));
    assert_null(find_spec(s, n, "thinker.audio_tower.positional_embedding.positional_embedding"));
    expect_shape(s, n, "thinker.visual.patch_embed.proj.weight", SHAPE(1280, 3, 2, 14, 14));
    assert_null(find_spec(s, n, "thinker.visual.patch_embed.proj.bias"));
    expect_shape(s, n, "thinker.visual.blocks.0.norm1.weight", SHAPE(1280));
    assert_null(find_spec(s, n, "thinker.visual.blocks.0.norm1.bias")); /* RMSNorm */
    expect_shape(s, n, "thinker.visual.blocks.7.attn.q.weight", SHAPE(1280, 1280));
    expect_shape(s, n, "thinker.visual.blocks.7.attn.proj.bias", SHAPE(1280));
    expect_shape(s, n, "thinker.visual.blocks.31.mlp.gate_proj.weight", SHAPE(3420, 1280));
    expect_shape(s, n, "thinker.visual.blocks.31.mlp.down_proj.bias", SHAPE(1280));
    expect_shape(s, n, "thinker.visual.merger.ln_q.weight", SHAPE(1280));
    expect_shape(s, n, "thinker.visual.merger.mlp.0.weight", SHAPE(5120, 5120));
    expect_shape(s, n, "thinker.visual.merger.mlp.2.weight", SHAPE(3584, 5120));
    expect_shape(s, n, "thinker.model.embed_tokens.weight", SHAPE(152064, 3584));
    expect_shape(s, n, "thinker.model.layers.27.self_attn.q_proj.weight", SHAPE(3584, 3584));
    expect_shape(s, n, "thinker.model.layers.27.self_attn.k_proj.weight", SHAPE(512, 3584));
    expect_shape(s, n, "thinker.model.layers.27.self_attn.v_proj.bias", SHAPE(512));
    expect_shape(s, n, "thinker.model.layers.0.self_attn.o_proj.weight", SHAPE(3584, 3584));
    assert_null(find_spec(s, n, "thinker.model.layers.0.self_attn.o_proj.bias"));
    expect_shape(s, n, "thinker.model.layers.0.mlp.down_proj.weight", SHAPE(3584, 18944));
    expect_shape(s, n, "thinker.model.norm.weight", SHAPE(3584));
    expect_shape(s, n, "thinker.lm_head.weight", SHAPE(152064, 3584));
    avl_tensor_specs_free(s);

    int64_t counts[AVL_PART_COUNT];
    int64_t total = avl_config_param_counts(&c, counts);
    assert_int_equal(counts[AVL_PART_AUDIO], 639647232);
    assert_int_equal(counts[AVL_PART_VISION], 676550144);
    assert_int_equal(counts[AVL_PART_LLM], 7070619136);
    assert_int_equal(counts[AVL_PART_LM_HEAD], 544997376);
    assert_int_equal(total, INT64_C(8931813888));
}

static void test_3b_specs(void **state)
{
    (void)state;
    avl_config c;
    assert_int_equal(avl_config_load(FIX3, &c), AVL_OK);
    avl_tensor_spec *s;
    int64_t n;
    assert_int_equal(avl_thinker_tensor_specs(&c, &s, &n), AVL_OK);
    assert_int_equal(n, 489 + 518 + (2 + 36 * 12) + 1);
    expect_shape(s, n, "thinker.model.layers.35.self_attn.k_proj.weight", SHAPE(256, 2048));
    expect_shape(s, n, "thinker.visual.merger.mlp.2.weight", SHAPE(2048, 5120));
    expect_shape(s, n, "thinker.audio_tower.proj.weight", SHAPE(2048, 1280));
    avl_tensor_specs_free(s);
    /* tied embeddings: lm_head becomes optional and is not counted */
    c.text.tie_word_embeddings = true;
    int64_t counts[AVL_PART_COUNT];
    avl_config_param_counts(&c, counts);
    assert_int_equal(counts[AVL_PART_LM_HEAD], 0);
}

static bool same_file(const char *a, const char *b)
{
    char *x, *y;
    size_t nx, ny;
    if (avl__read_file(a, &x, &nx)) fail_msg("%s", avl_last_error());
    if (avl__read_file(b, &y, &ny)) fail_msg("%s", avl_last_error());
    bool same = nx == ny && !memcmp(x, y, nx);
    avl__free(x);
    avl__free(y);
    return same;
}

static const char *k_files[] = {"config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json",
                                "vocab.json", "merges.txt", "tokenizer_config.json", "chat_template.json",
                                "added_tokens.json", "special_tokens_map.json"};

static void test_mkmodel_round_trip(void **state)
{
    (void)state;
    char a[4200], b[4200], c2[4200];
    snprintf(a, sizeof a, "%s", avl_test_dir("mk_a"));
    snprintf(b, sizeof b, "%s", avl_test_dir("mk_b"));
    snprintf(c2, sizeof c2, "%s", avl_test_dir("mk_c"));
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.seed = 11;
    if (avl_mkmodel_write(&p, a)) fail_msg("%s", avl_last_error());
    avl_checkpoint *ck;
    if (avl_checkpoint_open(a, &ck)) fail_msg("%s", avl_last_error());
    avl_config want;
    assert_int_equal(avl_mkmodel_config(&p, &want), AVL_OK);
    const avl_config *got = avl_checkpoint_config(ck);
    assert_int_equal(got->text.hidden_size, 64);
    assert_int_equal(got->text.num_key_value_heads, 2);
    assert_true(got->text.num_attention_heads > got->text.num_key_value_heads); /* GQA */
    assert_true(got->audio.encoder_layers > 1);
    assert_true(got->vision.n_fullatt > 0 && got->vision.n_fullatt < got->vision.depth); /* window + full */
    assert_int_equal(got->text.mrope_section[0] + got->text.mrope_section[1] + got->text.mrope_section[2],
                     got->text.head_dim / 2);
    assert_int_equal(got->text.vocab_size, want.text.vocab_size);
    assert_int_equal(got->audio_token_id, want.audio_token_id);
    assert_true(got->has_talker && got->has_token2wav);
    avl_tensor_view w;
    assert_int_equal(avl_checkpoint_get(ck, "thinker.model.norm.weight", &w), AVL_OK);
    assert_int_equal(w.dtype, AVL_DTYPE_BF16);
    float f[4];
    assert_int_equal(avl_convert_to_f32(w.dtype, w.data, f, 4), AVL_OK);
    assert_true(f[0] == 1.0f && f[3] == 1.0f);
    assert_int_equal(avl_checkpoint_get(ck, "thinker.model.layers.0.self_attn.q_proj.weight", &w), AVL_OK);
    float q[64];
    avl_convert_to_f32(w.dtype, w.data, q, 64);
    double ss = 0;
    for (int i = 0; i < 64; i++) ss += (double)q[i] * q[i];
    assert_true(ss > 0 && ss / 64 < 0.01); /* N(0, 0.02): sane magnitudes */
    avl_checkpoint_close(ck);

    /* same parameters -> byte-identical files */
    if (avl_mkmodel_write(&p, b)) fail_msg("%s", avl_last_error());
    for (size_t i = 0; i < sizeof k_files / sizeof k_files[0]; i++) {
        char x[4400], y[4400];
        snprintf(x, sizeof x, "%s/%s", a, k_files[i]);
        snprintf(y, sizeof y, "%s/%s", b, k_files[i]);
        if (!same_file(x, y)) fail_msg("%s differs between two writes", k_files[i]);
    }
    /* another seed: other weights, same config */
    p.seed = 12;
    if (avl_mkmodel_write(&p, c2)) fail_msg("%s", avl_last_error());
    char x[4400], y[4400];
    snprintf(x, sizeof x, "%s/model.safetensors", a);
    snprintf(y, sizeof y, "%s/model.safetensors", c2);
    assert_false(same_file(x, y));
    snprintf(x, sizeof x, "%s/config.json", a);
    snprintf(y, sizeof y, "%s/config.json", c2);
    assert_true(same_file(x, y));
}

static void test_mkmodel_forms(void **state)
{
    (void)state;
    char d[4200];
    avl_checkpoint *ck;
    /* shards + index, f32 */
    snprintf(d, sizeof d, "%s", avl_test_dir("mk_sharded"));
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.shards = 3;
    p.dtype = AVL_DTYPE_F32;
    if (avl_mkmodel_write(&p, d)) fail_msg("%s", avl_last_error());
    char f[4400];
    snprintf(f, sizeof f, "%s/model.safetensors.index.json", d);
    assert_int_equal(access(f, F_OK), 0);
    snprintf(f, sizeof f, "%s/model-00003-of-00003.safetensors", d); /* exactly 3 balanced shards */
    assert_int_equal(access(f, F_OK), 0);
    if (avl_checkpoint_open(d, &ck)) fail_msg("%s", avl_last_error());
    avl_tensor_view w;
    assert_int_equal(avl_checkpoint_get(ck, "thinker.lm_head.weight", &w), AVL_OK);
    assert_int_equal(w.dtype, AVL_DTYPE_F32);
    avl_checkpoint_close(ck);
    /* bare thinker, f16, tied */
    snprintf(d, sizeof d, "%s", avl_test_dir("mk_thinker"));
    p = avl_mkmodel_default_params();
    p.thinker_only = true;
    p.tie_word_embeddings = true;
    p.dtype = AVL_DTYPE_F16;
    p.layers = 3;
    p.n_fullatt = 1;
    p.fullatt[0] = 2;
    if (avl_mkmodel_write(&p, d)) fail_msg("%s", avl_last_error());
    if (avl_checkpoint_open(d, &ck)) fail_msg("%s", avl_last_error());
    const avl_config *c = avl_checkpoint_config(ck);
    assert_false(c->full_model);
    assert_int_equal(c->text.num_hidden_layers, 3);
    assert_int_equal(c->vision.fullatt_block_indexes[0], 2);
    assert_int_equal(avl_checkpoint_get(ck, "model.layers.2.mlp.up_proj.weight", &w), AVL_OK);
    assert_int_equal(w.dtype, AVL_DTYPE_F16);
    assert_false(avl_st_has(avl_checkpoint_tensors(ck), "lm_head.weight"));
    avl_checkpoint_close(ck);
    /* impossible parameters are config errors */
    p = avl_mkmodel_default_params();
    p.kv_heads = 3;
    snprintf(d, sizeof d, "%s", avl_test_dir("mk_bad"));
    AVL_EXPECT_ERROR(avl_mkmodel_write(&p, d), AVL_E_CONFIG, "num_key_value_heads = 3 does not divide num_attention_heads 4");
    p = avl_mkmodel_default_params();
    p.vocab = 100;
    AVL_EXPECT_ERROR(avl_mkmodel_write(&p, d), AVL_E_CONFIG, "vocab 100 is smaller than the tokenizer");
}

/* Rewrites src's model.safetensors into dst (with src's config.json), replacing or dropping
 * one tensor, and adding extra non-thinker tensors. */
static void rewrite(const char *src, const char *dst, const char *name, avl_dtype dtype, int ndim,
                    const int64_t *shape, bool extra_talker)
{
    char a[4400], b[4400];
    snprintf(a, sizeof a, "%s/config.json", src);
    snprintf(b, sizeof b, "%s/config.json", dst);
    char *buf;
    size_t len;
    assert_int_equal(avl__read_file(a, &buf, &len), AVL_OK);
    avl_test_write_file(b, buf, len);
    avl__free(buf);
    avl_st_set *set;
    if (avl_st_open_dir(src, &set)) fail_msg("%s", avl_last_error());
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    for (int64_t i = 0; i < avl_st_count(set); i++) {
        avl_tensor_view v;
        assert_int_equal(avl_st_at(set, i, &v), AVL_OK);
        if (name && !strcmp(v.name, name)) {
            if (ndim < 0) continue; /* drop */
            int64_t numel = 1;
            for (int d = 0; d < ndim; d++) numel *= shape[d];
            void *z = calloc((size_t)numel, avl_dtype_size(dtype));
            assert_int_equal(avl_st_writer_add(w, v.name, dtype, ndim, shape, z), AVL_OK);
            free(z);
            continue;
        }
        assert_int_equal(avl_st_writer_add(w, v.name, v.dtype, v.ndim, v.shape, v.data), AVL_OK);
    }
    if (extra_talker) {
        int64_t sh[2] = {3, 5};
        uint8_t z[30] = {0};
        assert_int_equal(avl_st_writer_add(w, "talker.model.odd.weight", AVL_DTYPE_BF16, 2, sh, z), AVL_OK);
        assert_int_equal(avl_st_writer_add(w, "token2wav.code_embed.weight", AVL_DTYPE_U8, 2, sh, z), AVL_OK);
    }
    snprintf(b, sizeof b, "%s/model.safetensors", dst);
    assert_int_equal(avl_st_writer_save(w, b), AVL_OK);
    avl_st_writer_free(w);
    avl_st_close(set);
}

static void test_verify_errors(void **state)
{
    (void)state;
    char src[4200], d[4200];
    snprintf(src, sizeof src, "%s", avl_test_dir("vf_src"));
    avl_mkmodel_params p = avl_mkmodel_default_params();
    if (avl_mkmodel_write(&p, src)) fail_msg("%s", avl_last_error());
    avl_checkpoint *ck = NULL;
    avl_config cfg;
    assert_int_equal(avl_mkmodel_config(&p, &cfg), AVL_OK);

    /* wrong shape: names the file, the tensor, both shapes */
    snprintf(d, sizeof d, "%s", avl_test_dir("vf_shape"));
    rewrite(src, d, "thinker.model.layers.1.self_attn.q_proj.weight", AVL_DTYPE_BF16, 2, (const int64_t[]){64, 96}, false);
    AVL_EXPECT_ERROR(avl_checkpoint_open(d, &ck), AVL_E_SHAPE,
                     "vf_shape/model.safetensors: tensor 'thinker.model.layers.1.self_attn.q_proj.weight' has shape [64,96], config needs [64,64]");
    assert_null(ck);

    /* missing: names the checkpoint, the tensor and the needed shape */
    snprintf(d, sizeof d, "%s", avl_test_dir("vf_missing"));
    rewrite(src, d, "thinker.lm_head.weight", AVL_DTYPE_BF16, -1, NULL, false);
    char want[4400];
    snprintf(want, sizeof want, "checkpoint %s: no tensor 'thinker.lm_head.weight' (config needs [%lld,64])", d,
             (long long)cfg.text.vocab_size);
    AVL_EXPECT_ERROR(avl_checkpoint_open(d, &ck), AVL_E_NOTFOUND, want);

    /* an integer dtype where a float is needed */
    snprintf(d, sizeof d, "%s", avl_test_dir("vf_dtype"));
    rewrite(src, d, "thinker.visual.merger.ln_q.weight", AVL_DTYPE_I32, 1, (const int64_t[]){32}, false);
    AVL_EXPECT_ERROR(avl_checkpoint_open(d, &ck), AVL_E_SHAPE,
                     "tensor 'thinker.visual.merger.ln_q.weight' has dtype I32, a float type");

    /* rank differs */
    snprintf(d, sizeof d, "%s", avl_test_dir("vf_rank"));
    rewrite(src, d, "thinker.visual.patch_embed.proj.weight", AVL_DTYPE_BF16, 2, (const int64_t[]){32, 1176}, false);
    AVL_EXPECT_ERROR(avl_checkpoint_open(d, &ck), AVL_E_SHAPE, "has shape [32,1176], config needs [32,3,2,14,14]");

    /* talker.* and token2wav.* tensors are ignored, whatever they hold */
    snprintf(d, sizeof d, "%s", avl_test_dir("vf_talker"));
    rewrite(src, d, NULL, AVL_DTYPE_BF16, 0, NULL, true);
    if (avl_checkpoint_open(d, &ck)) fail_msg("%s", avl_last_error());
    avl_checkpoint_close(ck);

    /* the optional audio_bos_eos_token may be absent */
    snprintf(d, sizeof d, "%s", avl_test_dir("vf_optional"));
    rewrite(src, d, "thinker.audio_tower.audio_bos_eos_token.weight", AVL_DTYPE_BF16, -1, NULL, false);
    if (avl_checkpoint_open(d, &ck)) fail_msg("%s", avl_last_error());
    avl_checkpoint_close(ck);

    /* verify directly with a set */
    avl_st_set *set;
    assert_int_equal(avl_st_open_dir(src, &set), AVL_OK);
    assert_int_equal(avl_checkpoint_verify(&cfg, set, src), AVL_OK);
    cfg.text.intermediate_size = 96;
    AVL_EXPECT_ERROR(avl_checkpoint_verify(&cfg, set, src), AVL_E_SHAPE, "mlp.gate_proj.weight' has shape [128,64], config needs [96,64]");
    avl_st_close(set);
}

/* A shard cut short: the error names the shard file. */
static void test_truncated_shard(void **state)
{
    (void)state;
    char d[4200], f[4400];
    snprintf(d, sizeof d, "%s", avl_test_dir("vf_trunc"));
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.shards = 3;
    if (avl_mkmodel_write(&p, d)) fail_msg("%s", avl_last_error());
    snprintf(f, sizeof f, "%s/model-00002-of-00003.safetensors", d);
    char *buf;
    size_t len;
    assert_int_equal(avl__read_file(f, &buf, &len), AVL_OK);
    avl_test_write_file(f, buf, len - 100);
    avl__free(buf);
    avl_checkpoint *ck = NULL;
    int rc = avl_checkpoint_open(d, &ck);
    assert_int_not_equal(rc, AVL_OK);
    assert_null(ck);
    if (!strstr(avl_last_error(), "model-00002-of-00003.safetensors"))
        fail_msg("error does not name the shard: %s", avl_last_error());
    /* a missing shard, too */
    unlink(f);
    rc = avl_checkpoint_open(d, &ck);
    assert_int_not_equal(rc, AVL_OK);
    if (!strstr(avl_last_error(), "model-00002-of-00003.safetensors"))
        fail_msg("error does not name the shard: %s", avl_last_error());
    /* a bad config.json stops the open before the tensors */
    snprintf(f, sizeof f, "%s/config.json", d);
    avl_test_write_file(f, "{\"model_type\": \"qwen2_5_omni\"}", 30);
    AVL_EXPECT_ERROR(avl_checkpoint_open(d, &ck), AVL_E_CONFIG, "config.json: missing key thinker_config");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_7b_specs_and_count), cmocka_unit_test(test_3b_specs),
        cmocka_unit_test(test_mkmodel_round_trip), cmocka_unit_test(test_mkmodel_forms),
        cmocka_unit_test(test_verify_errors),      cmocka_unit_test(test_truncated_shard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
