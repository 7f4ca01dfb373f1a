/* tests/unit/test_tokenizer.c: the tokenizer on the tiny committed tokenizer and on hand-made
 * ones: lookups by name, round trips, invalid UTF-8, added-token flags, both merge spellings,
 * both loaders, the chat template, every load error, allocation failures, threads.
 * (Agreement with the JS reference on Qwen's real tokenizer is tests/cli/test_tokenizer_ref.sh.) */
#include "avl_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "base/internal.h"
#include "io/tokenizer_internal.h"

#define TINY AVL_TEST_DATA "/tokenizer/tiny/tokenizer.json"
#define TINY_VM AVL_TEST_DATA "/tokenizer/tiny/vm"

static avl_tokenizer *load_ok(const char *path)
{
    avl_tokenizer *t = NULL;
    avl_status rc = avl_tokenizer_load(path, &t);
    if (rc) fail_msg("load %s: %s", path, avl_last_error());
    return t;
}

static int64_t enc(const avl_tokenizer *t, const char *s, size_t len, int32_t *out, int64_t cap)
{
    int32_t *ids;
    int64_t n;
    avl_status rc = avl_tokenizer_encode(t, s, len, &ids, &n);
    if (rc) fail_msg("encode: %s", avl_last_error());
    for (int64_t i = 0; i < n && i < cap; i++) out[i] = ids[i];
    avl_tokenizer_free_mem(ids);
    return n;
}

static void expect_same(const avl_tokenizer *a, const avl_tokenizer *b, const char *s, size_t len)
{
    int32_t x[4096], y[4096];
    int64_t nx = enc(a, s, len, x, 4096), ny = enc(b, s, len, y, 4096);
    assert_int_equal(nx, ny);
    for (int64_t i = 0; i < nx && i < 4096; i++) assert_int_equal(x[i], y[i]);
}

static void id_of(const avl_tokenizer *t, const char *tok, int32_t want)
{
    int32_t id = -1;
    assert_int_equal(avl_tokenizer_token_id(t, tok, &id), AVL_OK);
    assert_int_equal(id, want);
}

/* ---- the tiny tokenizer ---- */

static void test_byte_alphabet(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) assert_int_equal(avl__cp_to_byte(avl__byte_to_cp[b]), b);
    assert_int_equal(avl__cp_to_byte('A'), 'A');
    assert_int_equal(avl__cp_to_byte(0x120), ' '); /* 'Ġ' */
    assert_int_equal(avl__cp_to_byte(' '), -1);
    assert_int_equal(avl__cp_to_byte(0x144), -1);
}

static void test_lookups(void **state)
{
    (void)state;
    avl_tokenizer *t = load_ok(TINY);
    /* tools/gen_tiny_tokenizer.mjs puts the added tokens at ids 0..11 */
    id_of(t, "<|endoftext|>", 0);
    id_of(t, "<|im_start|>", 1);
    id_of(t, "<|im_end|>", 2);
    id_of(t, "<|AUDIO|>", 3);
    id_of(t, "</think>", 11);
    id_of(t, "a", 12 + 'a');        /* then the 256 byte characters in byte order */
    int32_t id;
    AVL_EXPECT_ERROR(avl_tokenizer_token_id(t, "<|nope|>", &id), AVL_E_NOTFOUND, "tokenizer.json", "<|nope|>");
    assert_int_equal(avl_tokenizer_vocab_size(t), 12 + 256 + 320);
    assert_string_equal(avl_tokenizer_id_to_token(t, 1), "<|im_start|>");
    assert_null(avl_tokenizer_id_to_token(t, 100000));
    assert_true(avl_tokenizer_is_added(t, 11));
    assert_false(avl_tokenizer_is_added(t, 12));
    avl_tokenizer_free(t);
    avl_tokenizer_free(NULL);
}

static void test_round_trip(void **state)
{
    (void)state;
    avl_tokenizer *t = load_ok(TINY);
    static const char *texts[] = {
        "", "Hello world", "  spaces   and\ttabs\r\n", "It's THEY'RE we've", "12345678901234567890",
        "你好世界，今天天气很好。", "Привет, мир!", "😀👍🏽👨‍👩‍👧‍👦", "<|im_start|>user\nhi<|im_end|>\n",
        "def f(x):\n    return x ** 2\n", "مرحبا بالعالم", "นี่คือ", "한국어 모델",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int32_t *ids;
        int64_t n;
        assert_int_equal(avl_tokenizer_encode(t, texts[i], strlen(texts[i]), &ids, &n), AVL_OK);
        char *back;
        size_t len;
        assert_int_equal(avl_tokenizer_decode(t, ids, n, false, &back, &len), AVL_OK);
        assert_int_equal(len, strlen(texts[i]));
        assert_string_equal(back, texts[i]);
        avl_tokenizer_free_mem(back);
        avl_tokenizer_free_mem(ids);
    }
    /* skip_special drops special added tokens but keeps non-special ones */
    const char *s = "<|im_start|>x<think>y<|im_end|>";
    int32_t *ids;
    int64_t n;
    assert_int_equal(avl_tokenizer_encode(t, s, strlen(s), &ids, &n), AVL_OK);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[n - 1], 2);
    char *back;
    size_t len;
    assert_int_equal(avl_tokenizer_decode(t, ids, n, true, &back, &len), AVL_OK);
    assert_string_equal(back, "x<think>y");
    avl_tokenizer_free_mem(back);
    avl_tokenizer_free_mem(ids);
    /* a bad id names its position */
    int32_t bad[] = {12, 13, 99999};
    AVL_EXPECT_ERROR(avl_tokenizer_decode(t, bad, 3, false, &back, &len), AVL_E_ARG, "99999", "position 2");
    /* a token sequence that splits a character decodes to U+FFFD, not to invalid bytes */
    int32_t ch[8];
    int64_t k = enc(t, "\xE2\x82\xAC", 3, ch, 8); /* the euro sign: 3 byte tokens in the tiny vocabulary */
    assert_true(k >= 2);
    assert_int_equal(avl_tokenizer_decode(t, ch, 1, false, &back, &len), AVL_OK);
    assert_string_equal(back, "\xEF\xBF\xBD");
    avl_tokenizer_free_mem(back);
    avl_tokenizer_free(t);
}

static void test_nfc_and_invalid_utf8(void **state)
{
    (void)state;
    avl_tokenizer *t = load_ok(TINY);
    expect_same(t, t, "e\xCC\x81", 3); /* trivial, but runs the NFC path */
    int32_t a[64], b[64];
    int64_t na = enc(t, "caf" "e\xCC\x81", 6, a, 64), nb = enc(t, "caf\xC3\xA9", 5, b, 64);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);
    /* invalid bytes are read as U+FFFD, one per maximal subpart (WHATWG) */
    struct {
        const char *bad;
        size_t len;
        const char *good;
    } cases[] = {
        {"a\xFF" "b", 3, "a\xEF\xBF\xBD" "b"},
        {"\xC0\x80", 2, "\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xF0\x9F\x98", 3, "\xEF\xBF\xBD"},
        {"\xE2\x28\xA1", 3, "\xEF\xBF\xBD(\xEF\xBF\xBD"},
        {"\xF4\x90\x80\x80", 4, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"x\xC3", 2, "x\xEF\xBF\xBD"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        na = enc(t, cases[i].bad, cases[i].len, a, 64);
        nb = enc(t, cases[i].good, strlen(cases[i].good), b, 64);
        if (na != nb) fail_msg("invalid UTF-8 case %zu: %lld ids, repaired text gives %lld", i, (long long)na, (long long)nb);
        assert_memory_equal(a, b, (size_t)na * sizeof *a);
    }
    /* NUL bytes are text like any other */
    assert_int_equal(enc(t, "a\0b", 3, a, 64), 3);
    avl_tokenizer_free(t);
}

/* NFC is applied only around code points that can change; encoding x must equal encoding
 * utf8proc's whole-string NFC of x (NFC is idempotent), on random strings of tricky code points. */
static void test_nfc_stretches(void **state)
{
    (void)state;
    static const uint32_t pool[] = {
        'a', 'e', 'o', 'A', ' ', '.', 0x300, 0x301, 0x308, 0x323, 0x327, 0x345, 0x3B1, 0x1F00, 0x212B, 0x2126, 0x958,
        0x915, 0x93C, 0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01, 0x30AB, 0x3099, 0x304B, 0x4E00, 0xC5, 0xE9, 0x340, 0x344,
        0x1E9B, 0x627, 0x653, 0x5D1, 0x5BC, 0xFB2C, 0x1D15E, 0x1F600, 0xF900, 0x9C7, 0x9BE, 0x9D7, 0xB47, 0xB3E, 0x1025, 0x102E,
    };
    avl_tokenizer *t = load_ok(TINY);
    uint32_t seed = 12345;
    for (int r = 0; r < 400; r++) {
        char buf[256];
        size_t n = 0;
        int len = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 12;
        for (int i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            n += (size_t)utf8proc_encode_char((utf8proc_int32_t)pool[(seed >> 16) % (sizeof pool / sizeof *pool)],
                                              (utf8proc_uint8_t *)buf + n);
        }
        buf[n] = 0;
        char *whole = (char *)utf8proc_NFC((const utf8proc_uint8_t *)buf);
        assert_non_null(whole);
        int32_t a[256], b[256];
        int64_t na = enc(t, buf, n, a, 256), nb = enc(t, whole, strlen(whole), b, 256);
        if (na != nb || memcmp(a, b, (size_t)na * sizeof *a)) fail_msg("NFC stretch differs on case %d", r);
        free(whole);
    }
    avl_tokenizer_free(t);
}

static void test_two_loaders_agree(void **state)
{
    (void)state;
    avl_tokenizer *a = load_ok(TINY), *b = load_ok(TINY_VM), *c = load_ok(AVL_TEST_DATA "/tokenizer/tiny");
    const char *s = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|audio_bos|><|AUDIO|><|audio_eos|>"
                    " The quick brown fox's 123 你好 <think>x</think>";
    expect_same(a, b, s, strlen(s));
    expect_same(a, c, s, strlen(s));
    assert_int_equal(avl_tokenizer_vocab_size(a), avl_tokenizer_vocab_size(b));
    avl_tokenizer_free(a);
    avl_tokenizer_free(b);
    avl_tokenizer_free(c);
}

/* ---- hand-made tokenizers ---- */

/* The 256 byte characters at ids 0..255 plus extra JSON vocab entries, given merges and added
 * tokens (JSON text fragments), Qwen's pipeline unless pre is given. */
static const char *write_tok(const char *dir, const char *name, const char *extra_vocab, const char *merges,
                             const char *added, const char *pre)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t cap = 1 << 16, n = 0;
    char *j = malloc(cap);
    n += (size_t)snprintf(j + n, cap - n, "{\"added_tokens\": [%s], \"normalizer\": {\"type\": \"NFC\"},"
                          "\"pre_tokenizer\": %s, \"decoder\": {\"type\": \"ByteLevel\"},"
                          "\"model\": {\"type\": \"BPE\", \"vocab\": {",
                          added ? added : "",
                          pre ? pre : "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                                      "{\"Regex\": \"\\\\s+|\\\\p{L}+|\\\\p{N}|[^\\\\s\\\\p{L}\\\\p{N}]+\"}, \"behavior\": "
                                      "\"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}");
    for (int b = 0; b < 256; b++) {
        uint16_t cp = avl__byte_to_cp[b];
        if (cp == '"' || cp == '\\') n += (size_t)snprintf(j + n, cap - n, "\"\\%c\": %d,", (char)cp, b);
        else n += (size_t)snprintf(j + n, cap - n, "\"\\u%04x\": %d,", cp, b);
    }
    n += (size_t)snprintf(j + n, cap - n, "%s%s}, \"merges\": [%s]}}", extra_vocab ? extra_vocab : "",
                          extra_vocab ? "" : "\"zz_dummy\": 9999", merges ? merges : "");
    avl_test_write_file(path, j, n);
    free(j);
    return path;
}

static void test_merge_spellings(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("tok_merges");
    const char *vocab = "\"ab\": 256, \"abc\": 257, \"cd\": 258, \"Ġa\": 259";
    char p1[4096], p2[4096];
    strcpy(p1, write_tok(dir, "old.json", vocab, "\"a b\", \"ab c\", \"c d\", \"Ġ a\"", NULL, NULL));
    strcpy(p2, write_tok(dir, "new.json", vocab, "[\"a\", \"b\"], [\"ab\", \"c\"], [\"c\", \"d\"], [\"Ġ\", \"a\"]", NULL, NULL));
    avl_tokenizer *a = load_ok(p1), *b = load_ok(p2);
    int32_t ids[16];
    /* "abcd": ab (rank 0) then abc (rank 1) beats cd (rank 2) -> [abc, d] */
    assert_int_equal(enc(a, "abcd", 4, ids, 16), 2);
    assert_int_equal(ids[0], 257);
    assert_int_equal(ids[1], 'd');
    expect_same(a, b, "abcd abc cdab a", 15);
    avl_tokenizer_free(a);
    avl_tokenizer_free(b);
}

static void test_added_token_flags(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("tok_flags");
    const char *added =
        "{\"id\": 300, \"content\": \"<L>\", \"lstrip\": true, \"special\": true, \"normalized\": false},"
        "{\"id\": 301, \"content\": \"<R>\", \"rstrip\": true, \"special\": true, \"normalized\": false},"
        "{\"id\": 302, \"content\": \"<W>\", \"single_word\": true, \"special\": true, \"normalized\": false},"
        "{\"id\": 303, \"content\": \"\\u00e9\", \"special\": false, \"normalized\": true},"
        "{\"id\": 304, \"content\": \"<R><R>\", \"special\": true, \"normalized\": false}";
    avl_tokenizer *t = load_ok(write_tok(dir, "flags.json", NULL, NULL, added, NULL));
    int32_t ids[32];
    int64_t n = enc(t, "a  <L>b", 7, ids, 32); /* lstrip swallows the spaces before <L> */
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 'a');
    assert_int_equal(ids[1], 300);
    assert_int_equal(ids[2], 'b');
    n = enc(t, "<R> \t b", 7, ids, 32); /* rstrip swallows the spaces after <R> */
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 301);
    assert_int_equal(ids[1], 'b');
    n = enc(t, "x<W>", 4, ids, 32); /* single_word: not inside a word */
    assert_int_equal(n, 4);
    n = enc(t, "x <W> y", 7, ids, 32);
    assert_int_equal(ids[2], 302);
    n = enc(t, "<R><R>", 6, ids, 32); /* longest match wins */
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 304);
    n = enc(t, "e\xCC\x81", 3, ids, 32); /* normalized=true: found after NFC */
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 303);
    avl_tokenizer_free(t);
}

/* ---- errors: each names the file and the problem ---- */

static void test_load_errors(void **state)
{
    (void)state;
    const char *dir = avl_test_dir("tok_errors");
    char path[4096];
    avl_tokenizer *t = (avl_tokenizer *)1;
    snprintf(path, sizeof path, "%s/notjson.json", dir);
    avl_test_write_file(path, "{\"model\": ", 10);
    AVL_EXPECT_ERROR(avl_tokenizer_load(path, &t), AVL_E_FORMAT, "notjson.json", "not JSON");
    assert_null(t);

    snprintf(path, sizeof path, "%s/novocab.json", dir);
    const char *novocab = "{\"model\": {\"type\": \"BPE\", \"merges\": []}}";
    avl_test_write_file(path, novocab, strlen(novocab));
    AVL_EXPECT_ERROR(avl_tokenizer_load(path, &t), AVL_E_FORMAT, "novocab.json", "model.vocab is missing");

    AVL_EXPECT_ERROR(avl_tokenizer_load(write_tok(dir, "badmerge.json", NULL, "\"a zz\"", NULL, NULL), &t), AVL_E_FORMAT,
                     "badmerge.json", "merge 0", "'zz'", "not in model.vocab");
    AVL_EXPECT_ERROR(avl_tokenizer_load(write_tok(dir, "badmerge2.json", NULL, "\"a b\"", NULL, NULL), &t), AVL_E_FORMAT,
                     "badmerge2.json", "'ab'");
    AVL_EXPECT_ERROR(avl_tokenizer_load(write_tok(dir, "badmerge3.json", NULL, "\"a b c\"", NULL, NULL), &t),
                     AVL_E_FORMAT, "badmerge3.json", "two tokens");
    AVL_EXPECT_ERROR(avl_tokenizer_load(write_tok(dir, "badregex.json", NULL, NULL, NULL,
                                                  "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\\\\p{L\"}, "
                                                  "\"behavior\": \"Isolated\", \"invert\": false}"),
                                        &t),
                     AVL_E_FORMAT, "badregex.json", "regex does not compile");
    AVL_EXPECT_ERROR(avl_tokenizer_load(write_tok(dir, "metaspace.json", NULL, NULL, NULL, "{\"type\": \"Metaspace\"}"), &t),
                     AVL_E_UNSUPPORTED, "metaspace.json", "Metaspace");
    snprintf(path, sizeof path, "%s/missing.json", dir);
    AVL_EXPECT_ERROR(avl_tokenizer_load(path, &t), AVL_E_IO, "missing.json");
    /* a folder with neither tokenizer.json nor vocab.json */
    AVL_EXPECT_ERROR(avl_tokenizer_load(dir, &t), AVL_E_IO, "vocab.json");
    AVL_EXPECT_ERROR(avl_tokenizer_load(NULL, &t), AVL_E_ARG, "NULL");
}

/* ---- chat template ---- */

static char *render(const char *json, const avl_chat_params *p)
{
    char *out;
    size_t len;
    avl_status rc = avl_chat_render(json, strlen(json), p, &out, &len);
    if (rc) fail_msg("render: %s", avl_last_error());
    assert_int_equal(strlen(out), len);
    return out;
}

static void test_chat(void **state)
{
    (void)state;
    char *s = render("[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":[{\"type\":\"video\",\"video\":\"v.mp4\"},"
                     "{\"type\":\"audio\",\"audio\":\"a.wav\"},{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Q?\"}]}]",
                     NULL);
    assert_string_equal(s, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|vision_bos|><|VIDEO|><|vision_eos|>"
                           "<|audio_bos|><|AUDIO|><|audio_eos|><|vision_bos|><|IMAGE|><|vision_eos|>Q?<|im_end|>\n"
                           "<|im_start|>assistant\n");
    avl_tokenizer_free_mem(s);
    avl_chat_params p = avl_chat_default_params();
    p.add_generation_prompt = false;
    p.add_vision_id = p.add_audio_id = true;
    s = render("[{\"role\":\"user\",\"content\":[{\"image\":\"x\"},{\"audio_url\":\"y\"},{\"video\":\"z\"},{\"type\":\"image\"}]}]", &p);
    assert_string_equal(s, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                           "Picture 1: <|vision_bos|><|IMAGE|><|vision_eos|>Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>"
                           "Video 1: <|vision_bos|><|VIDEO|><|vision_eos|>Picture 2: <|vision_bos|><|IMAGE|><|vision_eos|>"
                           "<|im_end|>\n");
    avl_tokenizer_free_mem(s);
    s = render("[]", NULL);
    assert_string_equal(s, "<|im_start|>assistant\n");
    avl_tokenizer_free_mem(s);

    char *out;
    size_t len;
    AVL_EXPECT_ERROR(avl_chat_render("[{", 2, NULL, &out, &len), AVL_E_FORMAT, "not JSON");
    AVL_EXPECT_ERROR(avl_chat_render("{}", 2, NULL, &out, &len), AVL_E_FORMAT, "array");
    const char *j = "[{\"role\":\"user\",\"content\":\"a\"},{\"content\":\"b\"}]";
    AVL_EXPECT_ERROR(avl_chat_render(j, strlen(j), NULL, &out, &len), AVL_E_FORMAT, "message 1", "role");
    j = "[{\"role\":\"user\",\"content\":[{\"text\":5}]}]";
    AVL_EXPECT_ERROR(avl_chat_render(j, strlen(j), NULL, &out, &len), AVL_E_FORMAT, "message 0", "content[0].text");
    assert_null(out);

    /* placeholders become single special ids of the tiny tokenizer */
    avl_tokenizer *t = load_ok(TINY);
    s = render("[{\"role\":\"user\",\"content\":[{\"type\":\"audio\"}]}]", NULL);
    int32_t ids[256];
    int64_t n = enc(t, s, strlen(s), ids, 256);
    int audio = 0;
    for (int64_t i = 0; i < n; i++) audio += ids[i] == 3;
    assert_int_equal(audio, 1);
    avl_tokenizer_free_mem(s);
    avl_tokenizer_free(t);
}

/* ---- allocation failures: every path returns AVL_E_NOMEM and leaks nothing (ASan) ---- */

static void test_alloc_failures(void **state)
{
    (void)state;
    const char *text = "<|im_start|>user\nHello wörld e\xCC\x81 \xFF 你好 123<|im_end|>";
    int64_t n_ok = 0;
    for (int64_t k = 1; k < 100000; k++) {
        avl__alloc_fail_after(k);
        avl_tokenizer *t = NULL;
        avl_status rc = avl_tokenizer_load(TINY, &t);
        int32_t *ids = NULL;
        int64_t n = 0;
        char *back = NULL;
        if (!rc) rc = avl_tokenizer_encode(t, text, strlen(text), &ids, &n);
        if (!rc) rc = avl_tokenizer_decode(t, ids, n, false, &back, NULL);
        avl__alloc_fail_after(0);
        avl_tokenizer_free_mem(back);
        avl_tokenizer_free_mem(ids);
        avl_tokenizer_free(t);
        if (rc == AVL_OK) {
            n_ok = k;
            break;
        }
        assert_int_equal(rc, AVL_E_NOMEM);
    }
    assert_true(n_ok > 1);
}

/* ---- threads share one tokenizer (and its cache) ---- */

typedef struct {
    const avl_tokenizer *t;
    int64_t total;
} thread_arg;

static void *worker(void *p)
{
    thread_arg *a = p;
    const char *s = "The quick brown fox jumps over the lazy dog. 你好世界 It's 12345.";
    for (int r = 0; r < 200; r++) {
        int32_t *ids;
        int64_t n;
        if (avl_tokenizer_encode(a->t, s, strlen(s), &ids, &n)) return NULL;
        a->total += n;
        avl_tokenizer_free_mem(ids);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    avl_tokenizer *t = load_ok(TINY);
    thread_arg args[4] = {{t, 0}, {t, 0}, {t, 0}, {t, 0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, &args[i]);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 1; i < 4; i++) assert_int_equal(args[i].total, args[0].total);
    assert_true(args[0].total > 0);
    avl_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_alphabet),    cmocka_unit_test(test_lookups),          cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_nfc_and_invalid_utf8), cmocka_unit_test(test_nfc_stretches),
        cmocka_unit_test(test_two_loaders_agree),
        cmocka_unit_test(test_merge_spellings),  cmocka_unit_test(test_added_token_flags),
        cmocka_unit_test(test_load_errors),      cmocka_unit_test(test_chat),
        cmocka_unit_test(test_alloc_failures),   cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
