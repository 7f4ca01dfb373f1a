/* src/io/mkmodel_tok.c: the tiny byte-level BPE tokenizer that mkmodel writes, in Qwen's file
 * formats (tokenizer.json for the `tokenizers` library, vocab.json + merges.txt for the slow
 * Qwen2Tokenizer, tokenizer_config.json with Qwen2.5-Omni's chat template).
 *
 * Layout of the vocabulary, as in Qwen's own: ids 0..255 are the byte symbols in the order of
 * GPT-2's bytes_to_unicode table (printable bytes first, so id 0 is "!"), then one id per learned
 * merge, then the special (added) tokens in Qwen2.5-Omni's order, from <|endoftext|> on.
 * Merges are learned from k_corpus: at each step the most frequent adjacent pair over the
 * corpus's words (ties: the smallest pair of ids) is merged; training stops early once every
 * word is a single token. Everything is deterministic.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "io/mkmodel_internal.h"

/* Qwen2.5-Omni's added tokens, in id order (real ids 151643..151664; docs/checkpoint.md). */
static const char *const k_specials[] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",   "<|AUDIO|>",     "<|audio_bos|>",  "<|audio_eos|>",
    "<|box_end|>",   "<|quad_start|>", "<|quad_end|>", "<|vision_bos|>", "<|vision_eos|>", "<|vision_pad|>",
    "<|IMAGE|>",     "<|VIDEO|>",    "<tool_call>",  "</tool_call>",  "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
};
#define N_SPECIALS ((int)(sizeof k_specials / sizeof k_specials[0]))

/* Marked "additional_special_tokens" in tokenizer_config.json (Qwen2.5's list with the Omni
 * renamings; <|endoftext|> is the pad token instead). */
static const char *const k_additional[] = {
    "<|im_start|>", "<|im_end|>",     "<|AUDIO|>",      "<|audio_bos|>", "<|audio_eos|>", "<|box_end|>", "<|quad_start|>",
    "<|quad_end|>", "<|vision_bos|>", "<|vision_eos|>", "<|vision_pad|>", "<|IMAGE|>",    "<|VIDEO|>",
};

/* Qwen2's pre-tokenizer pattern (tokenizer.json, "Split" with behavior "Isolated"). */
static const char k_qwen_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Qwen2.5-Omni's chat template (tokenizer_config.json / chat_template.json); docs/checkpoint.md
 * says where it was read. */
const char avl__qwen25_omni_chat_template[] =
    "{% set audio_count = namespace(value=0) %}{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}{% if add_audio_id %}Audio {{ audio_count.value }}: "
    "{% endif %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: "
    "{% endif %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/* The training text: the paper's prompts, chat roles and plain sentences about sounds and
 * sights (written for this project). Roles repeat so that "user", "system" and "assistant"
 * become single tokens, as in Qwen's vocabulary. */
static const char k_corpus[] =
    "system\nYou are a helpful assistant.\nuser\nassistant\n"
    "system user assistant user assistant user assistant user assistant system user assistant\n"
    "Classify the sounding object into one of the categories below:\n\n"
    "A. people eating\nB. people talking\nC. dog barking\nD. playing guitar\nE. playing piano\n"
    "F. car engine\nG. bird singing\nH. baby crying\nI. cat meowing\nJ. people clapping\n\n"
    "Respond ONLY with a single label letter.\n"
    "Describe what you see and hear in a single sentence.\n"
    "A man is playing the guitar while a dog is barking in the garden.\n"
    "The woman is talking to the people on the street, and a car passes by.\n"
    "In the video, a child is singing and the audio has music and laughter.\n"
    "The sound of the engine is loud; the picture shows a red car on the road.\n"
    "What do you see? What do you hear? The answer is in the audio and in the video.\n"
    "There is a bird in the tree, and the bird is singing in the morning.\n"
    "The people are eating and talking at the table in the kitchen.\n"
    "user: describe the video. assistant: the video shows people playing music.\n"
    "user: what is the sound? assistant: the sound is a dog barking.\n"
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 20 30 2025 and the time is 12:30.\n";

/* GPT-2's bytes_to_unicode: byte -> code point, and the order that gives ids 0..255. */
static void byte_table(int cp[256], int order[256])
{
    int n = 0, k = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
            cp[b] = b;
            order[k++] = b;
        }
    for (int b = 0; b < 256; b++)
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
            cp[b] = 256 + n++;
            order[k++] = b;
        }
}

static size_t utf8_put(char *o, int c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    o[0] = (char)(0xC0 | (c >> 6));
    o[1] = (char)(0x80 | (c & 0x3F));
    return 2; /* every byte symbol is below U+0800 */
}

void avl__tiny_tok_free(avl__tiny_tok *t)
{
    if (!t) return;
    for (int64_t i = 0; i < t->n_tokens; i++) avl__free(t->tok[i]);
    avl__free(t->tok);
    avl__free(t->merge_a);
    avl__free(t->merge_b);
    memset(t, 0, sizeof *t);
}

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_space(int c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

typedef struct {
    int *sym;  /* token ids */
    int len;
    int count; /* occurrences in the corpus */
    char *text;
} word;

/* Splits the ASCII corpus roughly as Qwen's pattern does (" ?letters", a digit, " ?punct+",
 * whitespace runs) and counts the distinct words. */
static avl_status split_words(word **out, int *nw)
{
    const char *s = k_corpus;
    size_t n = strlen(s);
    word *w = avl__calloc(n + 1, sizeof *w);
    if (!w) return AVL_E_NOMEM;
    int k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        if (s[j] == ' ' && j + 1 < n && !is_space(s[j + 1]) && !is_digit(s[j + 1])) j++;
        if (is_alpha(s[j])) while (j < n && is_alpha(s[j])) j++;
        else if (is_digit(s[j])) j++;
        else if (is_space(s[j])) while (j < n && is_space(s[j])) j++;
        else while (j < n && !is_alpha(s[j]) && !is_digit(s[j]) && !is_space(s[j])) j++;
        int f = -1;
        for (int q = 0; q < k && f < 0; q++)
            if (strlen(w[q].text) == j - i && !memcmp(w[q].text, s + i, j - i)) f = q;
        if (f >= 0) w[f].count++;
        else {
            w[k].text = avl__malloc(j - i + 1);
            w[k].sym = avl__malloc((j - i) * sizeof(int));
            if (!w[k].text || !w[k].sym) {
                avl__free(w[k].text);
                avl__free(w[k].sym);
                for (int q = 0; q < k; q++) {
                    avl__free(w[q].text);
                    avl__free(w[q].sym);
                }
                avl__free(w);
                return AVL_E_NOMEM;
            }
            memcpy(w[k].text, s + i, j - i);
            w[k].text[j - i] = '\0';
            w[k].len = (int)(j - i);
            w[k].count = 1;
            k++;
        }
        i = j;
    }
    *out = w;
    *nw = k;
    return AVL_OK;
}

avl_status avl__tiny_tok_build(int64_t n_merges, avl__tiny_tok *t)
{
    memset(t, 0, sizeof *t);
    if (n_merges < 0) n_merges = 0;
    int cp[256], order[256], id_of_byte[256];
    byte_table(cp, order);
    int64_t cap = 256 + n_merges + N_SPECIALS;
    t->tok = avl__calloc((size_t)cap, sizeof *t->tok);
    t->merge_a = avl__calloc((size_t)(n_merges ? n_merges : 1), sizeof *t->merge_a);
    t->merge_b = avl__calloc((size_t)(n_merges ? n_merges : 1), sizeof *t->merge_b);
    word *w = NULL;
    int nw = 0;
    int64_t *pairs = NULL, *touched = NULL;
    if (!t->tok || !t->merge_a || !t->merge_b) goto oom;
    for (int i = 0; i < 256; i++) {
        char buf[4];
        size_t k = utf8_put(buf, cp[order[i]]);
        buf[k] = '\0';
        if (!(t->tok[i] = avl__strdup(buf))) goto oom;
        id_of_byte[order[i]] = i;
    }
    t->n_tokens = 256;
    if (split_words(&w, &nw)) goto oom;
    for (int q = 0; q < nw; q++)
        for (int i = 0; i < w[q].len; i++) w[q].sym[i] = id_of_byte[(unsigned char)w[q].text[i]];
    int64_t V = 256 + n_merges;
    /* pairs: dense (V, V) counts, but only the touched entries are visited and reset, so each
     * step costs O(corpus), not O(V^2). */
    pairs = avl__calloc((size_t)(V * V), sizeof *pairs);
    touched = avl__malloc(sizeof k_corpus * sizeof *touched);
    if (!pairs || !touched) goto oom;
    while (t->n_merges < n_merges) {
        int64_t nv = t->n_tokens, nt = 0;
        for (int q = 0; q < nw; q++)
            for (int i = 0; i + 1 < w[q].len; i++) {
                int64_t key = (int64_t)w[q].sym[i] * nv + w[q].sym[i + 1];
                if (!pairs[key]) touched[nt++] = key;
                pairs[key] += w[q].count;
            }
        /* most frequent; ties to the smallest (a, b), i.e. the smallest key */
        int64_t best = -1, bc = 0;
        for (int64_t i = 0; i < nt; i++) {
            int64_t key = touched[i];
            if (pairs[key] > bc || (pairs[key] == bc && key < best)) {
                bc = pairs[key];
                best = key;
            }
        }
        for (int64_t i = 0; i < nt; i++) pairs[touched[i]] = 0;
        if (best < 0) break; /* every word is a single token */
        int a = (int)(best / nv), b = (int)(best % nv);
        size_t la = strlen(t->tok[a]), lb = strlen(t->tok[b]);
        char *joined = avl__malloc(la + lb + 1);
        if (!joined) goto oom;
        memcpy(joined, t->tok[a], la);
        memcpy(joined + la, t->tok[b], lb + 1);
        int c = -1;
        for (int64_t i = 0; i < t->n_tokens && c < 0; i++)
            if (!strcmp(t->tok[i], joined)) c = (int)i;
        if (c < 0) {
            c = (int)t->n_tokens;
            t->tok[t->n_tokens++] = joined;
        } else {
            avl__free(joined);
        }
        t->merge_a[t->n_merges] = a;
        t->merge_b[t->n_merges] = b;
        t->n_merges++;
        for (int q = 0; q < nw; q++) {
            int o = 0;
            for (int i = 0; i < w[q].len; i++) {
                if (i + 1 < w[q].len && w[q].sym[i] == a && w[q].sym[i + 1] == b) {
                    w[q].sym[o++] = c;
                    i++;
                } else {
                    w[q].sym[o++] = w[q].sym[i];
                }
            }
            w[q].len = o;
        }
    }
    t->first_special = t->n_tokens;
    for (int i = 0; i < N_SPECIALS; i++)
        if (!(t->tok[t->n_tokens++] = avl__strdup(k_specials[i]))) goto oom;
    for (int q = 0; q < nw; q++) {
        avl__free(w[q].text);
        avl__free(w[q].sym);
    }
    avl__free(w);
    avl__free(pairs);
    avl__free(touched);
    return AVL_OK;
oom:
    for (int q = 0; w && q < nw; q++) {
        avl__free(w[q].text);
        avl__free(w[q].sym);
    }
    avl__free(w);
    avl__free(pairs);
    avl__free(touched);
    avl__tiny_tok_free(t);
    return avl__err(AVL_E_NOMEM, "mkmodel: out of memory while building the tokenizer");
}

int64_t avl__tiny_tok_id(const avl__tiny_tok *t, const char *token)
{
    /* Plain text tokens use byte-level symbols: ' ' is 'Ġ'. Callers pass ASCII words. */
    char enc[256];
    size_t o = 0;
    int cp[256], order[256];
    byte_table(cp, order);
    for (const unsigned char *p = (const unsigned char *)token; *p && o + 3 < sizeof enc; p++)
        o += utf8_put(enc + o, cp[*p]);
    enc[o] = '\0';
    for (int64_t i = 0; i < t->n_tokens; i++)
        if (!strcmp(t->tok[i], i >= t->first_special ? token : enc)) return i;
    return -1;
}

/* ---- files ---- */

static avl_status dump(json_t *j, const char *dir, const char *name, size_t flags)
{
    if (!j) return avl__err(AVL_E_NOMEM, "mkmodel: out of memory while writing %s", name);
    char *path = avl__path_join(dir, name);
    if (!path) {
        json_decref(j);
        return avl__err(AVL_E_NOMEM, "mkmodel: out of memory");
    }
    avl_status rc = AVL_OK;
    char *s = json_dumps(j, flags);
    FILE *f = s ? fopen(path, "wb") : NULL;
    if (!s) rc = avl__err(AVL_E_NOMEM, "%s: out of memory", path);
    else if (!f) rc = avl__err(AVL_E_IO, "%s: cannot create", path);
    else if (fputs(s, f) < 0 || fputc('\n', f) == EOF) rc = avl__err(AVL_E_IO, "%s: write failed", path);
    if (f && fclose(f) && !rc) rc = avl__err(AVL_E_IO, "%s: write failed", path);
    free(s);
    avl__free(path);
    json_decref(j);
    return rc;
}

/* json_object_set_new that remembers a failure in *bad. */
static void put(int *bad, json_t *o, const char *k, json_t *v)
{
    if (!o || !v || json_object_set_new(o, k, v)) {
        json_decref(v);
        *bad = 1;
    }
}

static json_t *byte_level(bool with_regex_flag)
{
    json_t *o = json_object();
    int bad = 0;
    put(&bad, o, "type", json_string("ByteLevel"));
    put(&bad, o, "add_prefix_space", json_false());
    put(&bad, o, "trim_offsets", json_false());
    if (with_regex_flag) put(&bad, o, "use_regex", json_false());
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *added_token(int64_t id, const char *content)
{
    json_t *o = json_object();
    int bad = 0;
    put(&bad, o, "id", json_integer(id));
    put(&bad, o, "content", json_string(content));
    put(&bad, o, "single_word", json_false());
    put(&bad, o, "lstrip", json_false());
    put(&bad, o, "rstrip", json_false());
    put(&bad, o, "normalized", json_false());
    put(&bad, o, "special", json_true());
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *merge_strings(const avl__tiny_tok *t)
{
    json_t *a = json_array();
    for (int64_t i = 0; a && i < t->n_merges; i++) {
        const char *x = t->tok[t->merge_a[i]], *y = t->tok[t->merge_b[i]];
        size_t n = strlen(x) + strlen(y) + 2;
        char *s = avl__malloc(n);
        if (!s) {
            json_decref(a);
            return NULL;
        }
        snprintf(s, n, "%s %s", x, y);
        int bad = json_array_append_new(a, json_string(s));
        avl__free(s);
        if (bad) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *vocab_object(const avl__tiny_tok *t)
{
    json_t *v = json_object(); /* insertion order = id order (jansson keeps it) */
    int bad = 0;
    for (int64_t i = 0; i < t->first_special; i++) put(&bad, v, t->tok[i], json_integer(i));
    if (bad) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static json_t *tokenizer_json(const avl__tiny_tok *t)
{
    int bad = 0;
    json_t *root = json_object();
    put(&bad, root, "version", json_string("1.0"));
    put(&bad, root, "truncation", json_null());
    put(&bad, root, "padding", json_null());
    json_t *added = json_array();
    for (int64_t i = t->first_special; added && i < t->n_tokens; i++)
        if (json_array_append_new(added, added_token(i, t->tok[i]))) bad = 1;
    put(&bad, root, "added_tokens", added);
    json_t *norm = json_object();
    put(&bad, norm, "type", json_string("NFC"));
    put(&bad, root, "normalizer", norm);
    json_t *pre = json_object(), *list = json_array(), *split = json_object(), *pat = json_object();
    put(&bad, pat, "Regex", json_string(k_qwen_regex));
    put(&bad, split, "type", json_string("Split"));
    put(&bad, split, "pattern", pat);
    put(&bad, split, "behavior", json_string("Isolated"));
    put(&bad, split, "invert", json_false());
    if (!list || json_array_append_new(list, split) || json_array_append_new(list, byte_level(true))) bad = 1;
    put(&bad, pre, "type", json_string("Sequence"));
    put(&bad, pre, "pretokenizers", list);
    put(&bad, root, "pre_tokenizer", pre);
    put(&bad, root, "post_processor", byte_level(true));
    put(&bad, root, "decoder", byte_level(true));
    json_t *model = json_object();
    put(&bad, model, "type", json_string("BPE"));
    put(&bad, model, "dropout", json_null());
    put(&bad, model, "unk_token", json_null());
    put(&bad, model, "continuing_subword_prefix", json_string(""));
    put(&bad, model, "end_of_word_suffix", json_string(""));
    put(&bad, model, "fuse_unk", json_false());
    put(&bad, model, "byte_fallback", json_false());
    put(&bad, model, "ignore_merges", json_false());
    put(&bad, model, "vocab", vocab_object(t));
    put(&bad, model, "merges", merge_strings(t));
    put(&bad, root, "model", model);
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static json_t *tokenizer_config(const avl__tiny_tok *t, int64_t model_max_length)
{
    int bad = 0;
    json_t *root = json_object(), *dec = json_object(), *add = json_array();
    put(&bad, root, "add_bos_token", json_false());
    put(&bad, root, "add_prefix_space", json_false());
    for (int64_t i = t->first_special; dec && i < t->n_tokens; i++) {
        char k[32];
        snprintf(k, sizeof k, "%lld", (long long)i);
        json_t *a = added_token(i, t->tok[i]);
        if (a) json_object_del(a, "id");
        put(&bad, dec, k, a);
    }
    put(&bad, root, "added_tokens_decoder", dec);
    for (size_t i = 0; add && i < sizeof k_additional / sizeof k_additional[0]; i++)
        if (json_array_append_new(add, json_string(k_additional[i]))) bad = 1;
    put(&bad, root, "additional_special_tokens", add);
    put(&bad, root, "bos_token", json_null());
    put(&bad, root, "chat_template", json_string(avl__qwen25_omni_chat_template));
    put(&bad, root, "clean_up_tokenization_spaces", json_false());
    put(&bad, root, "eos_token", json_string("<|im_end|>"));
    put(&bad, root, "errors", json_string("replace"));
    put(&bad, root, "extra_special_tokens", json_object());
    put(&bad, root, "model_max_length", json_integer(model_max_length));
    put(&bad, root, "pad_token", json_string("<|endoftext|>"));
    put(&bad, root, "processor_class", json_string("Qwen2_5OmniProcessor"));
    put(&bad, root, "split_special_tokens", json_false());
    put(&bad, root, "tokenizer_class", json_string("Qwen2Tokenizer"));
    put(&bad, root, "unk_token", json_null());
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static json_t *special_tokens_map(void)
{
    int bad = 0;
    json_t *root = json_object(), *add = json_array();
    for (size_t i = 0; add && i < sizeof k_additional / sizeof k_additional[0]; i++)
        if (json_array_append_new(add, json_string(k_additional[i]))) bad = 1;
    put(&bad, root, "additional_special_tokens", add);
    put(&bad, root, "eos_token", json_string("<|im_end|>"));
    put(&bad, root, "pad_token", json_string("<|endoftext|>"));
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

avl_status avl__tiny_tok_write(const avl__tiny_tok *t, const char *dir, int64_t model_max_length)
{
    avl_status rc;
    if ((rc = dump(tokenizer_json(t), dir, "tokenizer.json", JSON_INDENT(2)))) return rc;
    if ((rc = dump(vocab_object(t), dir, "vocab.json", JSON_COMPACT))) return rc;
    if ((rc = dump(tokenizer_config(t, model_max_length), dir, "tokenizer_config.json", JSON_INDENT(2)))) return rc;
    if ((rc = dump(special_tokens_map(), dir, "special_tokens_map.json", JSON_INDENT(2)))) return rc;
    json_t *added = json_object(), *tpl = json_object();
    int bad = 0;
    for (int64_t i = t->first_special; added && i < t->n_tokens; i++) put(&bad, added, t->tok[i], json_integer(i));
    if (bad) {
        json_decref(added);
        added = NULL;
    }
    if ((rc = dump(added, dir, "added_tokens.json", JSON_INDENT(2) | JSON_SORT_KEYS))) {
        json_decref(tpl);
        return rc;
    }
    put(&bad, tpl, "chat_template", json_string(avl__qwen25_omni_chat_template));
    if (bad) {
        json_decref(tpl);
        tpl = NULL;
    }
    if ((rc = dump(tpl, dir, "chat_template.json", JSON_INDENT(2)))) return rc;

    /* merges.txt: a version line, then one "a b" pair per line, as Qwen's file. */
    char *path = avl__path_join(dir, "merges.txt");
    if (!path) return avl__err(AVL_E_NOMEM, "mkmodel: out of memory");
    FILE *f = fopen(path, "wb");
    if (!f) {
        rc = avl__err(AVL_E_IO, "%s: cannot create", path);
        avl__free(path);
        return rc;
    }
    bool ok = fputs("#version: 0.2\n", f) >= 0;
    for (int64_t i = 0; ok && i < t->n_merges; i++)
        ok = fprintf(f, "%s %s\n", t->tok[t->merge_a[i]], t->tok[t->merge_b[i]]) > 0;
    if (fclose(f) || !ok) rc = avl__err(AVL_E_IO, "%s: write failed", path);
    avl__free(path);
    return rc;
}
