/* src/io/tokenizer_chat.c: Qwen2.5-Omni's chat template, rendered in C.
 *
 * Mirrors the Jinja template of Qwen/Qwen2.5-Omni-7B (the processor's chat_template; the same
 * text is in transformers' tests/models/qwen2_5_omni/test_processor_qwen2_5_omni.py,
 * prepare_processor_dict). docs/tokenizer.md quotes it whole. transformers renders it with
 * trim_blocks and lstrip_blocks on; no block tag of this template is followed by a newline
 * or preceded by indentation, so neither changes the output.
 *
 * Per message: a default system turn before the first message when that one is not "system";
 * "<|im_start|>ROLE\n"; a string content verbatim, or each item of a content list: an image
 * (type "image" or an "image"/"image_url" key) as <|vision_bos|><|IMAGE|><|vision_eos|>, an
 * audio (type "audio" or an "audio"/"audio_url" key) as <|audio_bos|><|AUDIO|><|audio_eos|>,
 * a video (type "video" or a "video" key) as <|vision_bos|><|VIDEO|><|vision_eos|>, else its
 * "text"; then "<|im_end|>\n". The tests are made in that order, as the template does.
 * Counters for add_vision_id / add_audio_id run over the whole conversation.
 *
 * Where Jinja would quietly render something odd (a missing role as "", a number as its
 * decimal text, iterating a string content item), this returns AVL_E_FORMAT instead.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "base/json.h"
#include "io/tokenizer_internal.h"

avl_chat_params avl_chat_default_params(void)
{
    return (avl_chat_params){.add_generation_prompt = true, .add_vision_id = false, .add_audio_id = false};
}

typedef struct {
    char *v;
    size_t n, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t k)
{
    if (b->oom) return;
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + k + 1) cap *= 2;
        char *p = avl__realloc(b->v, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->v = p;
        b->cap = cap;
    }
    memcpy(b->v + b->n, s, k);
    b->n += k;
    b->v[b->n] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_json_str(sbuf *b, json_t *s) { put(b, json_string_value(s), json_string_length(s)); }

static bool has_type(json_t *item, const char *t)
{
    const char *v = json_string_value(json_object_get(item, "type"));
    return v && !strcmp(v, t);
}

static bool has_key(json_t *item, const char *k) { return json_object_get(item, k) != NULL; }

avl_status avl_chat_render(const char *messages_json, size_t len, const avl_chat_params *p,
                           char **out, size_t *out_len)
{
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!messages_json || !out) return avl__err(AVL_E_ARG, "avl_chat_render: NULL argument");
    avl_chat_params prm = p ? *p : avl_chat_default_params();
    json_error_t e;
    json_t *msgs;
    avl_status rc = avl__json_loadb(messages_json, len, JSON_ALLOW_NUL, "chat messages", &msgs, &e);
    if (rc == AVL_E_NOMEM) return rc;
    if (rc) return avl__err(AVL_E_FORMAT, "chat messages: not JSON: %s (line %d, column %d)", e.text, e.line, e.column);
    sbuf b = {0};
    int image_n = 0, audio_n = 0, video_n = 0;
    if (!json_is_array(msgs)) {
        rc = avl__err(AVL_E_FORMAT, "chat messages: not a JSON array of messages");
        goto done;
    }
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        json_t *role = json_object_get(m, "role");
        json_t *content = json_object_get(m, "content");
        if (!json_is_string(role)) {
            rc = avl__err(AVL_E_FORMAT, "chat message %zu: \"role\" is missing or not a string", i);
            goto done;
        }
        if (i == 0 && strcmp(json_string_value(role), "system"))
            puts_(&b, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
        puts_(&b, "<|im_start|>");
        put_json_str(&b, role);
        puts_(&b, "\n");
        if (json_is_string(content)) {
            put_json_str(&b, content);
            puts_(&b, "<|im_end|>\n");
            continue;
        }
        if (!json_is_array(content)) {
            rc = avl__err(AVL_E_FORMAT, "chat message %zu: \"content\" is neither a string nor a list", i);
            goto done;
        }
        for (size_t k = 0; k < json_array_size(content); k++) {
            json_t *it = json_array_get(content, k);
            char num[64];
            if (!json_is_object(it)) {
                rc = avl__err(AVL_E_FORMAT, "chat message %zu: content[%zu] is not an object", i, k);
                goto done;
            }
            if (has_type(it, "image") || has_key(it, "image") || has_key(it, "image_url")) {
                image_n++;
                if (prm.add_vision_id) {
                    snprintf(num, sizeof num, "Picture %d: ", image_n);
                    puts_(&b, num);
                }
                puts_(&b, "<|vision_bos|><|IMAGE|><|vision_eos|>");
            } else if (has_type(it, "audio") || has_key(it, "audio") || has_key(it, "audio_url")) {
                audio_n++;
                if (prm.add_audio_id) {
                    snprintf(num, sizeof num, "Audio %d: ", audio_n);
                    puts_(&b, num);
                }
                puts_(&b, "<|audio_bos|><|AUDIO|><|audio_eos|>");
            } else if (has_type(it, "video") || has_key(it, "video")) {
                video_n++;
                if (prm.add_vision_id) {
                    snprintf(num, sizeof num, "Video %d: ", video_n);
                    puts_(&b, num);
                }
                puts_(&b, "<|vision_bos|><|VIDEO|><|vision_eos|>");
            } else if (has_key(it, "text")) {
                json_t *t = json_object_get(it, "text");
                if (!json_is_string(t)) {
                    rc = avl__err(AVL_E_FORMAT, "chat message %zu: content[%zu].text is not a string", i, k);
                    goto done;
                }
                put_json_str(&b, t);
            }
            /* an item that is none of these renders nothing, as in the template */
        }
        puts_(&b, "<|im_end|>\n");
    }
    if (prm.add_generation_prompt) puts_(&b, "<|im_start|>assistant\n");
    put(&b, "", 0); /* an empty conversation still yields "" */
    if (b.oom) rc = avl__err(AVL_E_NOMEM, "chat messages: out of memory rendering");
done:
    json_decref(msgs);
    if (rc) {
        avl__free(b.v);
        return rc;
    }
    *out = b.v;
    if (out_len) *out_len = b.n;
    return AVL_OK;
}
