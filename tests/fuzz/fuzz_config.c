/* tests/fuzz/fuzz_config.c: libFuzzer target for the config.json parser and validator
 * (avl_config_parse). Any input must give AVL_OK or a status with a detail, never a crash;
 * an accepted config must serialise, re-parse to the same struct, and give a tensor list. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "avlens/avlens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    avl_config c, d;
    avl_status rc = avl_config_parse((const char *)data, size, "fuzz/config.json", &c);
    if (rc != AVL_OK) {
        if (!avl_last_error()[0]) abort(); /* every failure explains itself */
        return 0;
    }
    char *s;
    if (avl_config_to_json(&c, &s) != AVL_OK) return 0;
    rc = avl_config_parse(s, strlen(s), "fuzz/rt.json", &d);
    avl_config_string_free(s);
    if (rc != AVL_OK) abort(); /* what we write we must read */
    if (c.text.hidden_size != d.text.hidden_size || c.vision.depth != d.vision.depth) abort();
    /* The tensor list of small configs only: the sizes here are untrusted. */
    if (c.text.num_hidden_layers + c.audio.encoder_layers + c.vision.depth < 4096) {
        int64_t counts[AVL_PART_COUNT];
        (void)avl_config_param_counts(&c, counts);
    }
    return 0;
}
