/* tests/fuzz/fuzz_tokenizer_json.c: the tokenizer.json loader on arbitrary input. The input is
 * split at its first 0x01 byte: before it a tokenizer.json (written to a scratch file, since
 * the loader reads paths), after it text to encode with whatever loaded. Checks: no crash, no
 * leak, and a loaded tokenizer encodes and decodes its text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "avlens/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/avl_fuzz_tokenizer_%d.json", (int)getpid());
    const uint8_t *sep = memchr(data, 0x01, size);
    size_t jlen = sep ? (size_t)(sep - data) : size;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, jlen, f);
    fclose(f);
    avl_tokenizer *tok;
    if (avl_tokenizer_load(path, &tok) == AVL_OK) {
        const char *text = sep ? (const char *)sep + 1 : "Hello <|im_start|> world 123";
        size_t tlen = sep ? size - jlen - 1 : strlen(text);
        int32_t *ids;
        int64_t n;
        if (avl_tokenizer_encode(tok, text, tlen, &ids, &n)) abort();
        char *back;
        size_t blen;
        if (avl_tokenizer_decode(tok, ids, n, true, &back, &blen)) abort();
        avl_tokenizer_free_mem(back);
        avl_tokenizer_free_mem(ids);
        int32_t id;
        (void)avl_tokenizer_token_id(tok, "<|im_start|>", &id);
        avl_tokenizer_free(tok);
    }
    remove(path);
    return 0;
}
