/* tests/fuzz/fuzz_chair.c: any bytes as the three inputs of `avlens chair`: an extra vocabulary,
 * a ground-truth file (JSON or CSV) and captions (JSONL), separated by lines "%%". Every failure
 * must leave a one-line detail; a success must give scores inside [0, 100] and consistent counts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "avlens/avlens.h"

static const char *k_base = "person, man, woman, people\ndog, puppy, =dog barking\ncat, kitten\nteddy bear\nbear\n"
                            "cell phone, phone\n@animal dog, cat, bear\n@ignore hot dog\n";

static void check_error(void)
{
    const char *e = avl_last_error();
    if (!e[0] || strchr(e, '\n')) abort(); /* one line, never empty */
}

/* Splits data at the first two "\n%%\n" into up to three parts. */
static void split(const char *s, size_t n, const char **p, size_t *len)
{
    const char *sep = "\n%%\n";
    size_t at = 0;
    for (int k = 0; k < 3; k++) {
        p[k] = s + at;
        len[k] = n - at;
        if (k == 2) break;
        const char *hit = NULL;
        for (size_t i = at; i + 4 <= n; i++)
            if (!memcmp(s + i, sep, 4)) {
                hit = s + i;
                break;
            }
        if (!hit) {
            for (int j = k + 1; j < 3; j++) p[j] = s + n, len[j] = 0;
            return;
        }
        len[k] = (size_t)(hit - (s + at));
        at = (size_t)(hit - s) + 4;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p[3];
    size_t len[3];
    split((const char *)data, size, p, len);
    avl_vocab *v = NULL;
    avl_truth *t = NULL;
    avl_chair *c = NULL;
    if (avl_vocab_new(&v) || avl_vocab_add_text(v, k_base, strlen(k_base), "base.txt")) abort();
    if (avl_truth_new(&t)) abort();
    avl_status rc = avl_vocab_add_text(v, p[0], len[0], "vocab.txt");
    if (rc) check_error();
    rc = avl_truth_add_text(t, v, p[1], len[1], "truth");
    if (rc) check_error();
    if (avl_chair_new(v, t, &c)) abort();
    rc = avl_chair_add_jsonl_text(c, p[2], len[2], "captions.jsonl");
    if (rc) check_error();
    /* records before a bad line are scored: check whatever is there */
    for (int64_t g = 0; g < avl_chair_group_count(c); g++) {
        avl_chair_scores s;
        if (avl_chair_group(c, g, &s)) abort();
        if (s.n_mentions_hallucinated > s.n_mentions || s.n_captions_hallucinated > s.n_captions ||
            s.n_generated_correct > s.n_generated || s.n_truth_covered > s.n_truth ||
            s.n_generated_correct != s.n_truth_covered)
            abort();
        double x[] = {s.chair_s, s.chair_i, s.precision, s.recall, s.f1};
        for (int i = 0; i < 5; i++)
            if (!(x[i] >= 0.0 && x[i] <= 100.0)) abort();
    }
    for (int64_t i = 0; i < avl_chair_caption_count(c); i++) {
        avl_chair_caption k;
        if (avl_chair_get_caption(c, i, &k)) abort();
        if (k.n_generated > k.n_mentions || k.n_hallucinated > k.n_generated || k.n_covered > k.n_truth) abort();
        for (int64_t j = 0; j < k.n_mentions; j++)
            if (!k.mentions[j].text || !k.mentions[j].object) abort();
    }
    avl_chair_free(c);
    avl_truth_free(t);
    avl_vocab_free(v);
    return 0;
}
