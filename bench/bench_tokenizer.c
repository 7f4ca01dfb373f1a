/* bench/bench_tokenizer.c: encoding speed of the tokenizer, in MB of UTF-8 input per second.
 *
 *   bench_tokenizer TOKENIZER_JSON [MB]
 *
 * Builds MB (default 4) of mixed text from a fixed seed: English-like prose from a word list,
 * code, runs of random CJK ideographs, Cyrillic/Arabic/Hindi words, digits, emoji, whitespace
 * and chat markup with special tokens. Reports the load time, a cold pass (empty pre-token
 * cache) and a warm pass (same text again), single-threaded. See bench/README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avlens/avlens.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "with", "as", "was", "on", "be", "at", "by",
    "this", "from", "or", "an", "are", "which", "model", "attention", "audio", "video", "token", "layer",
    "sequence", "visual", "encoder", "decoder", "dominance", "interpretability", "experiment", "results",
    "However", "The", "We", "In", "sound", "frame", "speaker", "music", "dog", "barking", "people", "talking",
    "it's", "don't", "they're", "we've", "Qwen", "Omni", "transformer", "probability", "hidden", "state",
    "analysis", "figure", "table", "shows", "significant", "increase", "between", "modalities", "during",
};
static const char *code[] = {
    "for (int i = 0; i < n; i++) {\n    sum += a[i] * b[i];\n}\n",
    "def forward(self, x):\n        return self.proj(torch.relu(x))\n",
    "if (rc != AVL_OK) return avl__err(rc, \"%s: bad\", path);\n",
    "\t\tconst value = obj?.items?.[0] ?? null;\n",
};
static const char *other[] = {"Привет", "модель", "внимание", "مرحبا", "نموذج", "नमस्ते", "ध्यान", "สวัสดี",
                              "안녕하세요", "모델", "😀", "👍🏽", "👨‍👩‍👧", "café", "naïve"};

static void put(char *buf, size_t *n, size_t cap, const char *s)
{
    size_t k = strlen(s);
    if (*n + k < cap) {
        memcpy(buf + *n, s, k);
        *n += k;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON [MB]\n", argv[0]);
        return 2;
    }
    double mb = argc > 2 ? atof(argv[2]) : 4.0;
    size_t cap = (size_t)(mb * 1024 * 1024), n = 0;
    char *text = malloc(cap + 64);
    while (n + 256 < cap) {
        uint32_t r = rnd(100);
        char tmp[64];
        if (r < 55) { /* a sentence */
            int k = 5 + (int)rnd(15);
            for (int i = 0; i < k; i++) {
                put(text, &n, cap, words[rnd(sizeof words / sizeof *words)]);
                put(text, &n, cap, i + 1 < k ? " " : ". ");
            }
            if (rnd(4) == 0) put(text, &n, cap, "\n\n");
        } else if (r < 70) {
            put(text, &n, cap, code[rnd(sizeof code / sizeof *code)]);
        } else if (r < 85) { /* a run of CJK ideographs with a full stop */
            int k = 4 + (int)rnd(20);
            for (int i = 0; i < k; i++) {
                uint32_t cp = 0x4E00 + rnd(0x9FA5 - 0x4E00);
                tmp[0] = (char)(0xE0 | (cp >> 12));
                tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                tmp[2] = (char)(0x80 | (cp & 0x3F));
                tmp[3] = 0;
                put(text, &n, cap, tmp);
            }
            put(text, &n, cap, "。");
        } else if (r < 93) {
            put(text, &n, cap, other[rnd(sizeof other / sizeof *other)]);
            put(text, &n, cap, " ");
        } else if (r < 97) {
            snprintf(tmp, sizeof tmp, "%u.%02u %u ", rnd(100000), rnd(100), rnd(1000000000));
            put(text, &n, cap, tmp);
        } else {
            put(text, &n, cap, "<|im_start|>user\nDescribe the clip.<|im_end|>\n<|im_start|>assistant\n");
        }
    }
    avl_tokenizer *tok;
    double t0 = now();
    if (avl_tokenizer_load(argv[1], &tok)) {
        fprintf(stderr, "%s\n", avl_last_error());
        return 1;
    }
    double t1 = now();
    printf("load: %.3f s (%lld ids)\n", t1 - t0, (long long)avl_tokenizer_vocab_size(tok));
    for (int pass = 0; pass < 2; pass++) {
        int32_t *ids;
        int64_t k;
        double a = now();
        if (avl_tokenizer_encode(tok, text, n, &ids, &k)) {
            fprintf(stderr, "%s\n", avl_last_error());
            return 1;
        }
        double b = now();
        printf("%s pass: %.2f MB in %.3f s = %.1f MB/s, %lld tokens (%.2f bytes/token)\n", pass ? "warm" : "cold",
               (double)n / 1048576.0, b - a, (double)n / 1048576.0 / (b - a), (long long)k, (double)n / (double)k);
        avl_tokenizer_free_mem(ids);
    }
    avl_tokenizer_free(tok);
    free(text);
    return 0;
}
