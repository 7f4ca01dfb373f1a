/* tests/unit/test_config.c: config.json parsing: the published 7B/3B values, class defaults,
 * the bare-thinker form, every rejected value naming file and key, round trip, fault injection. */
#include "avl_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

#define FIX7 AVL_TEST_DATA "/config/qwen25-omni-7b.json"
#define FIX3 AVL_TEST_DATA "/config/qwen25-omni-3b.json"

static void test_7b_fixture(void **state)
{
    (void)state;
    avl_config c;
    int rc = avl_config_load(FIX7, &c);
    if (rc) fail_msg("%s", avl_last_error());
    assert_string_equal(c.model_type, "qwen2_5_omni");
    assert_true(c.full_model);
    assert_true(c.has_talker);
    assert_true(c.has_token2wav);
    assert_string_equal(c.tensor_prefix, "thinker.");
    assert_int_equal(c.text.hidden_size, 3584);
    assert_int_equal(c.text.intermediate_size, 18944);
    assert_int_equal(c.text.num_hidden_layers, 28);
    assert_int_equal(c.text.num_attention_heads, 28);
    assert_int_equal(c.text.num_key_value_heads, 4);
    assert_int_equal(c.text.head_dim, 128);
    assert_int_equal(c.text.vocab_size, 152064);
    assert_int_equal(c.text.max_position_embeddings, 32768);
    assert_true(c.text.rms_norm_eps == 1e-6);
    assert_true(c.text.rope_theta == 1e6);
    assert_string_equal(c.text.rope_type, "default");
    assert_int_equal(c.text.mrope_section[0], 16);
    assert_int_equal(c.text.mrope_section[1], 24);
    assert_int_equal(c.text.mrope_section[2], 24);
    assert_false(c.text.tie_word_embeddings);
    assert_false(c.text.use_sliding_window);
    assert_string_equal(c.text.hidden_act, "silu");
    assert_int_equal(c.audio.num_mel_bins, 128);
    assert_int_equal(c.audio.d_model, 1280);
    assert_int_equal(c.audio.encoder_layers, 32);
    assert_int_equal(c.audio.encoder_attention_heads, 20);
    assert_int_equal(c.audio.encoder_ffn_dim, 5120);
    assert_int_equal(c.audio.max_source_positions, 1500);
    assert_int_equal(c.audio.n_window, 100);
    assert_int_equal(c.audio.output_dim, 3584);
    assert_string_equal(c.audio.activation_function, "gelu");
    assert_false(c.audio.scale_embedding);
    assert_int_equal(c.vision.depth, 32);
    assert_int_equal(c.vision.hidden_size, 1280);
    assert_int_equal(c.vision.num_heads, 16);
    assert_int_equal(c.vision.intermediate_size, 3420);
    assert_int_equal(c.vision.patch_size, 14);
    assert_int_equal(c.vision.temporal_patch_size, 2);
    assert_int_equal(c.vision.spatial_merge_size, 2);
    assert_int_equal(c.vision.window_size, 112);
    assert_int_equal(c.vision.in_channels, 3);
    assert_int_equal(c.vision.out_hidden_size, 3584);
    assert_int_equal(c.vision.n_fullatt, 4);
    assert_int_equal(c.vision.fullatt_block_indexes[0], 7);
    assert_int_equal(c.vision.fullatt_block_indexes[3], 31);
    assert_string_equal(c.vision.hidden_act, "silu");
    assert_int_equal(c.audio_token_id, 151646);
    assert_int_equal(c.image_token_id, 151655);
    assert_int_equal(c.video_token_id, 151656);
    assert_int_equal(c.vision_start_token_id, 151652);
    assert_int_equal(c.vision_end_token_id, 151653);
    assert_int_equal(c.audio_start_token_id, 151647);
    assert_int_equal(c.audio_end_token_id, 151648);
    assert_int_equal(c.user_token_id, 872);
    assert_int_equal(c.position_id_per_seconds, 25);
    assert_true(c.seconds_per_chunk == 2.0);
    assert_string_equal(c.torch_dtype, "bfloat16");
}

static void test_3b_fixture(void **state)
{
    (void)state;
    avl_config c;
    int rc = avl_config_load(FIX3, &c);
    if (rc) fail_msg("%s", avl_last_error());
    assert_int_equal(c.text.hidden_size, 2048);
    assert_int_equal(c.text.intermediate_size, 11008);
    assert_int_equal(c.text.num_hidden_layers, 36);
    assert_int_equal(c.text.num_attention_heads, 16);
    assert_int_equal(c.text.num_key_value_heads, 2);
    assert_int_equal(c.text.head_dim, 128);
    assert_int_equal(c.text.vocab_size, 151936);
    assert_int_equal(c.audio.d_model, 1280);
    assert_int_equal(c.audio.output_dim, 2048);
    assert_int_equal(c.vision.hidden_size, 1280);
    assert_int_equal(c.vision.out_hidden_size, 2048);
}

/* A folder path reads its config.json. */
static void test_load_from_folder(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("config_folder");
    char *buf;
    size_t len;
    assert_int_equal(avl__read_file(FIX7, &buf, &len), AVL_OK);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    avl_test_write_file(path, buf, len);
    avl__free(buf);
    avl_config c;
    assert_int_equal(avl_config_load(dir, &c), AVL_OK);
    assert_int_equal(c.text.hidden_size, 3584);
    AVL_EXPECT_ERROR(avl_config_load(AVL_TEST_WORK "/no/such/folder", &c), AVL_E_IO, "no/such/folder");
}

/* Absent keys take the transformers class defaults (vision hidden_size 3584 here: the class
 * default, not the checkpoints' 1280). */
static void test_class_defaults(void **state)
{
    (void)state;
    const char *j = "{\"model_type\": \"qwen2_5_omni\", \"thinker_config\": {\"text_config\": {},"
                    " \"audio_config\": {}, \"vision_config\": {}}}";
    avl_config c;
    int rc = avl_config_parse(j, strlen(j), "config.json", &c);
    if (rc) fail_msg("%s", avl_last_error());
    assert_int_equal(c.text.hidden_size, 3584);
    assert_int_equal(c.text.vocab_size, 152064);
    assert_int_equal(c.text.num_key_value_heads, 4);
    assert_int_equal(c.text.mrope_section[0], 16);
    assert_false(c.text.tie_word_embeddings);
    assert_int_equal(c.vision.hidden_size, 3584);
    assert_int_equal(c.vision.n_fullatt, 4);
    assert_int_equal(c.audio.output_dim, 3584);
    assert_int_equal(c.vision_start_token_id, 151652);
    assert_int_equal(c.bos_token_id, -1);
    assert_false(c.has_talker);
    assert_string_equal(c.torch_dtype, "");
    const char *j1 = "{\"model_type\": \"qwen2_5_omni\", \"dtype\": \"bfloat16\", \"thinker_config\": {\"text_config\": {},"
                     " \"audio_config\": {}, \"vision_config\": {}}}";
    assert_int_equal(avl_config_parse(j1, strlen(j1), "config.json", &c), AVL_OK);
    assert_string_equal(c.torch_dtype, "bfloat16"); /* the newer spelling of torch_dtype */
    /* num_key_value_heads null -> num_attention_heads; explicit head_dim is kept. */
    const char *j2 = "{\"model_type\": \"qwen2_5_omni_thinker\", \"text_config\": {\"num_key_value_heads\": null,"
                     " \"hidden_size\": 3584, \"head_dim\": 64, \"rope_scaling\": {\"type\": \"mrope\","
                     " \"mrope_section\": [8, 12, 12]}}, \"audio_config\": {}, \"vision_config\": {\"embed_dim\": 1280,"
                     " \"in_chans\": 4, \"out_hidden_size\": 3584}, \"eos_token_id\": [151645, 151643]}";
    rc = avl_config_parse(j2, strlen(j2), "config.json", &c);
    if (rc) fail_msg("%s", avl_last_error());
    assert_int_equal(c.text.num_key_value_heads, 28);
    assert_int_equal(c.text.head_dim, 64);
    assert_string_equal(c.text.rope_type, "mrope");
    assert_int_equal(c.vision.hidden_size, 1280);
    assert_int_equal(c.vision.in_channels, 4);
    assert_int_equal(c.eos_token_id, 151645);
    assert_false(c.full_model);
    assert_string_equal(c.tensor_prefix, "");
}

/* The bare thinker form: the thinker_config object of the 7B file as the whole file. */
static void test_bare_thinker(void **state)
{
    (void)state;
    json_t *root = json_load_file(FIX7, 0, NULL);
    assert_non_null(root);
    char *s = json_dumps(json_object_get(root, "thinker_config"), 0);
    json_decref(root);
    avl_config c;
    int rc = avl_config_parse(s, strlen(s), "thinker/config.json", &c);
    free(s);
    if (rc) fail_msg("%s", avl_last_error());
    assert_string_equal(c.model_type, "qwen2_5_omni_thinker");
    assert_false(c.full_model);
    assert_string_equal(c.tensor_prefix, "");
    assert_int_equal(c.text.hidden_size, 3584);
    assert_int_equal(c.bos_token_id, 151644);
}

/* Sets (or with value NULL removes) the key at a dotted path in the 7B fixture, parses it as
 * "config.json" and expects want plus the substrings. */
static void expect_bad(const char *path, const char *value_json, int want, const char *msg)
{
    json_t *root = json_load_file(FIX7, 0, NULL);
    assert_non_null(root);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *obj = root;
    char *key = buf, *dot;
    while ((dot = strchr(key, '.'))) {
        *dot = '\0';
        obj = json_object_get(obj, key);
        assert_non_null(obj);
        key = dot + 1;
    }
    if (value_json) {
        json_t *v = json_loads(value_json, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        json_object_set_new(obj, key, v);
    } else {
        json_object_del(obj, key);
    }
    char *s = json_dumps(root, 0);
    json_decref(root);
    avl_config c;
    int rc = avl_config_parse(s, strlen(s), "config.json", &c);
    free(s);
    AVL_EXPECT_ERROR(rc, want, msg);
}

static void test_bad_values(void **state)
{
    (void)state;
    const int C = AVL_E_CONFIG;
    expect_bad("thinker_config.text_config.hidden_size", "3000", C,
               "config.json: thinker_config.text_config.num_attention_heads = 28 does not divide hidden_size 3000");
    expect_bad("thinker_config.text_config.num_key_value_heads", "5", C,
               "config.json: thinker_config.text_config.num_key_value_heads = 5 does not divide num_attention_heads 28");
    expect_bad("thinker_config.text_config.rope_scaling.mrope_section", "[16, 24, 23]", C,
               "config.json: thinker_config.text_config.rope_scaling.mrope_section = [16,24,23] sums to 63, head_dim/2 is 64");
    expect_bad("thinker_config.text_config.rope_scaling.mrope_section", "[32, 32]", C,
               "config.json: thinker_config.text_config.rope_scaling.mrope_section must be a list of 3 integers");
    expect_bad("thinker_config.text_config.rope_scaling.rope_type", "\"yarn\"", C, "rope_type 'yarn' is not supported");
    expect_bad("thinker_config.text_config.rope_scaling.mrope_section", "[-16, 40, 40]", C, "mrope_section has an impossible entry -16");
    expect_bad("thinker_config.text_config.num_hidden_layers", "100000000", C,
               "thinker_config.text_config.num_hidden_layers = 100000000 is implausibly large");
    expect_bad("thinker_config.vision_config.spatial_merge_size", "1000", C, "spatial_merge_size = 1000 is implausibly large");
    expect_bad("thinker_config.text_config.num_hidden_layers", "0", C,
               "config.json: thinker_config.text_config.num_hidden_layers = 0 must be positive");
    expect_bad("thinker_config.text_config.vocab_size", "-5", C, "thinker_config.text_config.vocab_size = -5 must be positive");
    expect_bad("thinker_config.text_config.hidden_size", "\"big\"", C,
               "config.json: thinker_config.text_config.hidden_size must be an integer");
    expect_bad("thinker_config.text_config.hidden_size", "3584.5", C, "hidden_size must be an integer");
    expect_bad("thinker_config.text_config.rms_norm_eps", "-1", C, "thinker_config.text_config.rms_norm_eps = -1 must be a positive number");
    expect_bad("thinker_config.text_config.rms_norm_eps", "\"x\"", C, "rms_norm_eps must be a number");
    expect_bad("thinker_config.text_config.tie_word_embeddings", "1", C, "tie_word_embeddings must be true or false");
    expect_bad("thinker_config.text_config.hidden_act", "3", C, "hidden_act must be a string");
    expect_bad("thinker_config.audio_config.encoder_attention_heads", "7", C,
               "config.json: thinker_config.audio_config.encoder_attention_heads = 7 does not divide d_model 1280");
    expect_bad("thinker_config.audio_config.output_dim", "2048", C,
               "thinker_config.audio_config.output_dim = 2048 differs from text_config.hidden_size 3584");
    expect_bad("thinker_config.audio_config.n_window", "0", C, "thinker_config.audio_config.n_window = 0 must be positive");
    expect_bad("thinker_config.vision_config.num_heads", "7", C,
               "thinker_config.vision_config.num_heads = 7 does not divide hidden_size 1280");
    expect_bad("thinker_config.vision_config.fullatt_block_indexes", "[7, 15, 23, 32]", C,
               "config.json: thinker_config.vision_config.fullatt_block_indexes[3] = 32 is not a block (depth 32)");
    expect_bad("thinker_config.vision_config.fullatt_block_indexes", "[-1]", C, "fullatt_block_indexes[0] = -1 is not a block");
    expect_bad("thinker_config.vision_config.fullatt_block_indexes", "7", C, "fullatt_block_indexes must be a list of integers");
    expect_bad("thinker_config.vision_config.out_hidden_size", "1280", C,
               "thinker_config.vision_config.out_hidden_size = 1280 differs from text_config.hidden_size 3584");
    expect_bad("thinker_config.vision_config.window_size", "14", C, "window_size = 14 is smaller than patch_size * spatial_merge_size 28");
    expect_bad("thinker_config.vision_config.depth", "0", C, "thinker_config.vision_config.depth = 0 must be positive");
    expect_bad("thinker_config.audio_token_index", "200000", C,
               "config.json: thinker_config.audio_token_index = 200000 is outside the vocabulary");
    expect_bad("thinker_config.user_token_id", "-3", C, "thinker_config.user_token_id = -3 is outside the vocabulary");
    expect_bad("thinker_config.seconds_per_chunk", "0", C, "thinker_config.seconds_per_chunk = 0 must be a positive number");
    expect_bad("thinker_config.text_config", NULL, C, "config.json: missing key thinker_config.text_config");
    expect_bad("thinker_config.vision_config", NULL, C, "config.json: missing key thinker_config.vision_config");
    expect_bad("thinker_config.audio_config", "[]", C, "config.json: thinker_config.audio_config must be an object");
    expect_bad("thinker_config", NULL, C, "config.json: missing key thinker_config");
    expect_bad("model_type", NULL, C, "config.json: missing key model_type");
    expect_bad("model_type", "\"llama\"", C, "config.json: model_type 'llama' is not qwen2_5_omni");
    expect_bad("model_type", "7", C, "model_type must be a string");
}

static void test_malformed(void **state)
{
    (void)state;
    avl_config c;
    const char *s = "{\"model_type\": ";
    AVL_EXPECT_ERROR(avl_config_parse(s, strlen(s), "x/config.json", &c), AVL_E_FORMAT, "x/config.json: not valid JSON");
    s = "[1, 2]";
    AVL_EXPECT_ERROR(avl_config_parse(s, strlen(s), "config.json", &c), AVL_E_CONFIG, "top level must be a JSON object");
    s = "{\"model_type\": \"a\", \"model_type\": \"b\"}";
    AVL_EXPECT_ERROR(avl_config_parse(s, strlen(s), "config.json", &c), AVL_E_FORMAT, "not valid JSON");
    AVL_EXPECT_ERROR(avl_config_parse(NULL, 0, "config.json", &c), AVL_E_ARG, "NULL");
}

/* Writing then reading gives the same struct, in both forms. */
static void test_round_trip(void **state)
{
    (void)state;
    avl_config a, b;
    assert_int_equal(avl_config_load(FIX7, &a), AVL_OK);
    for (int form = 0; form < 2; form++) {
        if (form == 1) {
            a.full_model = false;
            a.has_talker = a.has_token2wav = false;
            snprintf(a.model_type, sizeof a.model_type, "qwen2_5_omni_thinker");
            a.tensor_prefix[0] = '\0';
        }
        char *s;
        assert_int_equal(avl_config_to_json(&a, &s), AVL_OK);
        int rc = avl_config_parse(s, strlen(s), "rt/config.json", &b);
        avl_config_string_free(s);
        if (rc) fail_msg("%s", avl_last_error());
        assert_memory_equal(&a, &b, sizeof a);
    }
}

/* Every allocation failure while loading is reported as AVL_E_NOMEM and leaks nothing. */
static void test_fault_injection(void **state)
{
    (void)state;
    avl_config c;
    int n;
    for (n = 1; n < 100000; n++) { /* until it succeeds (jansson allocates through avl__malloc too) */
        avl__alloc_fail_after(n);
        int rc = avl_config_load(FIX7, &c);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) break;
        AVL_EXPECT_ERROR(rc, AVL_E_NOMEM, "qwen25-omni-7b.json");
    }
    assert_true(n > 1); /* at least one allocation was failed */
    assert_int_equal(c.text.hidden_size, 3584);
    /* and on a folder path (one more allocation: the joined file name) */
    const char *dir = avl_test_dir("config_fault");
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *buf;
    size_t len;
    assert_int_equal(avl__read_file(FIX3, &buf, &len), AVL_OK);
    avl_test_write_file(path, buf, len);
    avl__free(buf);
    for (n = 1; n < 100000; n++) { /* until it succeeds (jansson allocates through avl__malloc too) */
        avl__alloc_fail_after(n);
        int rc = avl_config_load(dir, &c);
        avl__alloc_fail_after(0);
        if (rc == AVL_OK) break;
        assert_int_equal(rc, AVL_E_NOMEM);
    }
    assert_int_equal(c.text.hidden_size, 2048);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_7b_fixture),  cmocka_unit_test(test_3b_fixture),
        cmocka_unit_test(test_load_from_folder), cmocka_unit_test(test_class_defaults),
        cmocka_unit_test(test_bare_thinker), cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_malformed),   cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_fault_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
