/* tests/fuzz/fuzz_tokenizer.c: arbitrary bytes through the tiny committed tokenizer (encode,
 * then decode), and the same bytes as a chat messages list. Checks: no crash, encode is
 * deterministic (the second run goes through the cache), every id decodes, and decoding gives
 * valid UTF-8. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "avlens/tokenizer.h"
#include "base/internal.h"
#include "io/tokenizer_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static avl_tokenizer *tok;
    if (!tok && avl_tokenizer_load(AVL_TEST_DATA "/tokenizer/tiny/tokenizer.json", &tok)) abort();
    int32_t *a, *b;
    int64_t na, nb;
    if (avl_tokenizer_encode(tok, (const char *)data, size, &a, &na)) abort();
    if (avl_tokenizer_encode(tok, (const char *)data, size, &b, &nb)) abort();
    if (na != nb || memcmp(a, b, (size_t)na * sizeof *a)) abort();
    char *text;
    size_t len;
    if (avl_tokenizer_decode(tok, a, na, false, &text, &len)) abort();
    char *fixed;
    size_t flen;
    if (avl__utf8_repair(text, len, &fixed, &flen)) abort();
    if (fixed) abort(); /* decode output must already be valid UTF-8 */
    avl_tokenizer_free_mem(text);
    avl_tokenizer_free_mem(a);
    avl_tokenizer_free_mem(b);

    char *r;
    if (avl_chat_render((const char *)data, size, NULL, &r, &len) == AVL_OK) avl_tokenizer_free_mem(r);
    return 0;
}
