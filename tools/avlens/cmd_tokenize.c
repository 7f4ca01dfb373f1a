/* tools/avlens/cmd_tokenize.c: `avlens tokenize`: text -> ids, ids -> text, chat -> ids. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *CMD = "tokenize";

static void help(void)
{
    printf("usage: avlens tokenize --tokenizer PATH [--jsonl | --decode | --chat [--text]] [options] < input\n\n"
           "Encodes UTF-8 text read on standard input and prints the ids as one JSON array.\n\n"
           "  --tokenizer PATH          tokenizer.json, or a folder with tokenizer.json or vocab.json + merges.txt\n"
           "  --jsonl                   one input per line, each a JSON string, {\"text\": \"...\"} or\n"
           "                            {\"b64\": \"...\"} (raw bytes, may be invalid UTF-8); one id array per line\n"
           "  --decode                  read a JSON array of ids, print the text\n"
           "  --skip-special            with --decode: leave out special tokens\n"
           "  --decode --jsonl          one id array per line; one JSON string per line\n"
           "  --chat                    read a JSON messages list, render Qwen2.5-Omni's chat template, encode it\n"
           "  --text                    with --chat: print the rendered text instead of ids (no --tokenizer needed)\n"
           "  --chat --jsonl            one messages list per line; one id array (or with --text one JSON string)\n"
           "                            per line\n"
           "  --no-generation-prompt    with --chat: do not end with \"<|im_start|>assistant\\n\"\n"
           "  --add-vision-id           with --chat: \"Picture k: \" / \"Video k: \" before images / videos\n"
           "  --add-audio-id            with --chat: \"Audio k: \" before audio\n"
           "\nInvalid UTF-8 in the input is read as U+FFFD.\n");
}

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return NULL;
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            if (feof(f) || ferror(f)) break;
            continue;
        }
        cap *= 2;
        char *p = realloc(buf, cap + 1);
        if (!p) {
            free(buf);
            return NULL;
        }
        buf = p;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void print_ids(const int32_t *ids, int64_t n)
{
    putchar('[');
    for (int64_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    fputs("]\n", stdout);
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decodes standard or URL-safe base64 (padding optional) into out; false on a bad character. */
static bool b64_decode(const char *s, size_t len, char *out, size_t *out_len)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=') break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    *out_len = o;
    return true;
}

static int encode_and_print(avl_tokenizer *tok, const char *s, size_t len)
{
    int32_t *ids;
    int64_t n;
    avl_status rc = avl_tokenizer_encode(tok, s, len, &ids, &n);
    if (rc) return cli_fail(CMD, rc);
    print_ids(ids, n);
    avl_tokenizer_free_mem(ids);
    return 0;
}

static int run_jsonl(avl_tokenizer *tok, char *in, size_t len)
{
    long long lineno = 0;
    for (char *line = in; line < in + len;) {
        char *nl = memchr(line, '\n', (size_t)(in + len - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(in + len - line);
        lineno++;
        if (ll && line[ll - 1] == '\r') ll--;
        json_error_t e;
        json_t *j = json_loadb(line, ll, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (!j) {
            fprintf(stderr, "avlens %s: stdin line %lld: not JSON: %s\n", CMD, lineno, e.text);
            return 1;
        }
        json_t *s = json_is_string(j) ? j : json_object_get(j, "text");
        json_t *b = json_is_object(j) ? json_object_get(j, "b64") : NULL;
        int rc;
        if (json_is_string(s)) {
            rc = encode_and_print(tok, json_string_value(s), json_string_length(s));
        } else if (json_is_string(b)) {
            size_t bl = json_string_length(b), n;
            char *raw = malloc(bl + 1);
            if (!raw || !b64_decode(json_string_value(b), bl, raw, &n)) {
                free(raw);
                json_decref(j);
                fprintf(stderr, "avlens %s: stdin line %lld: \"b64\" is not base64\n", CMD, lineno);
                return 1;
            }
            rc = encode_and_print(tok, raw, n);
            free(raw);
        } else {
            json_decref(j);
            fprintf(stderr, "avlens %s: stdin line %lld: not a JSON string, {\"text\": ...} or {\"b64\": ...}\n", CMD,
                    lineno);
            return 1;
        }
        json_decref(j);
        if (rc) return rc;
        line = nl ? nl + 1 : in + len;
    }
    return 0;
}

/* --chat --jsonl: one messages list per line. */
static int run_chat_lines(avl_tokenizer *tok, const char *in, size_t len, const avl_chat_params *cp, bool text)
{
    long long lineno = 0;
    for (const char *line = in; line < in + len;) {
        const char *nl = memchr(line, '\n', (size_t)(in + len - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(in + len - line);
        lineno++;
        char *r;
        size_t rl;
        avl_status rc = avl_chat_render(line, ll, cp, &r, &rl);
        if (rc) {
            fprintf(stderr, "avlens %s: stdin line %lld: %s\n", CMD, lineno, avl_last_error());
            return 1;
        }
        int ret = 0;
        if (text) {
            json_t *s = json_stringn(r, rl);
            char *enc = s ? json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
            if (enc) printf("%s\n", enc);
            else ret = 1;
            free(enc);
            json_decref(s);
        } else {
            ret = encode_and_print(tok, r, rl);
        }
        avl_tokenizer_free_mem(r);
        if (ret) return ret;
        line = nl ? nl + 1 : in + len;
    }
    return 0;
}

/* Decodes one JSON id array; lineno > 0 names the stdin line in messages. */
static int run_decode(avl_tokenizer *tok, const char *in, size_t len, bool skip_special, bool as_json,
                      long long lineno)
{
    char where[48] = "stdin";
    if (lineno > 0) snprintf(where, sizeof where, "stdin line %lld", lineno);
    json_error_t e;
    json_t *j = json_loadb(in, len, 0, &e);
    if (!json_is_array(j)) {
        json_decref(j);
        fprintf(stderr, "avlens %s: %s: not a JSON array of ids%s%s\n", CMD, where, j ? "" : ": ", j ? "" : e.text);
        return 1;
    }
    size_t n = json_array_size(j);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        json_decref(j);
        fprintf(stderr, "avlens %s: out of memory\n", CMD);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(j, i);
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX) {
            fprintf(stderr, "avlens %s: %s: element %zu is not an integer id\n", CMD, where, i);
            free(ids);
            json_decref(j);
            return 1;
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    json_decref(j);
    char *text;
    size_t tl;
    avl_status rc = avl_tokenizer_decode(tok, ids, (int64_t)n, skip_special, &text, &tl);
    free(ids);
    if (rc) return cli_fail(CMD, rc);
    if (as_json) {
        json_t *js = json_stringn(text, tl);
        char *enc = js ? json_dumps(js, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
        if (enc) printf("%s\n", enc);
        free(enc);
        json_decref(js);
        if (!enc) {
            avl_tokenizer_free_mem(text);
            fprintf(stderr, "avlens %s: out of memory\n", CMD);
            return 1;
        }
    } else {
        fwrite(text, 1, tl, stdout);
    }
    avl_tokenizer_free_mem(text);
    return 0;
}

/* --decode --jsonl: one id array per line -> one JSON string per line. */
static int run_decode_lines(avl_tokenizer *tok, const char *in, size_t len, bool skip_special)
{
    long long lineno = 0;
    for (const char *line = in; line < in + len;) {
        const char *nl = memchr(line, '\n', (size_t)(in + len - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(in + len - line);
        lineno++;
        if (run_decode(tok, line, ll, skip_special, true, lineno)) return 1;
        line = nl ? nl + 1 : in + len;
    }
    return 0;
}

int avl_cmd_tokenize(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *path = NULL;
    bool jsonl = false, decode = false, chat = false, text = false, skip_special = false;
    avl_chat_params cp = avl_chat_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokenizer")) {
            if (++i >= argc) return cli_usage_error(CMD, "--tokenizer wants a path");
            path = argv[i];
        } else if (!strcmp(a, "--jsonl")) jsonl = true;
        else if (!strcmp(a, "--decode")) decode = true;
        else if (!strcmp(a, "--skip-special")) skip_special = true;
        else if (!strcmp(a, "--chat")) chat = true;
        else if (!strcmp(a, "--text")) text = true;
        else if (!strcmp(a, "--add-generation-prompt")) cp.add_generation_prompt = true;
        else if (!strcmp(a, "--no-generation-prompt")) cp.add_generation_prompt = false;
        else if (!strcmp(a, "--add-vision-id")) cp.add_vision_id = true;
        else if (!strcmp(a, "--add-audio-id")) cp.add_audio_id = true;
        else return cli_usage_error(CMD, "unknown option '%s'", a);
    }
    if (decode && chat) return cli_usage_error(CMD, "--decode and --chat exclude each other");
    if (text && !chat) return cli_usage_error(CMD, "--text goes with --chat");
    if (!path && !(chat && text)) return cli_usage_error(CMD, "--tokenizer PATH is required");

    avl_tokenizer *tok = NULL;
    if (path) {
        avl_status rc = avl_tokenizer_load(path, &tok);
        if (rc) return cli_fail(CMD, rc);
    }
    size_t len;
    char *in = read_all(stdin, &len);
    if (!in) {
        avl_tokenizer_free(tok);
        fprintf(stderr, "avlens %s: cannot read standard input\n", CMD);
        return 1;
    }
    int ret = 0;
    if (chat && jsonl) {
        ret = run_chat_lines(tok, in, len, &cp, text);
    } else if (jsonl && !decode) {
        ret = run_jsonl(tok, in, len);
    } else if (decode && jsonl) {
        ret = run_decode_lines(tok, in, len, skip_special);
    } else if (decode) {
        ret = run_decode(tok, in, len, skip_special, false, 0);
    } else if (chat) {
        char *r;
        size_t rl;
        avl_status rc = avl_chat_render(in, len, &cp, &r, &rl);
        if (rc) ret = cli_fail(CMD, rc);
        else {
            if (text) fwrite(r, 1, rl, stdout);
            else ret = encode_and_print(tok, r, rl);
            avl_tokenizer_free_mem(r);
        }
    } else {
        ret = encode_and_print(tok, in, len);
    }
    free(in);
    avl_tokenizer_free(tok);
    if (fflush(stdout) != 0 && !ret) {
        fprintf(stderr, "avlens %s: cannot write standard output\n", CMD);
        ret = 1;
    }
    return ret;
}
