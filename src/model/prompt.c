/* src/model/prompt.c: conversation + features -> expanded input ids and the thinker's inputs.
 *
 * Mirrors what the paper's inference does through Hugging Face: Qwen2_5OmniProcessor
 * .apply_chat_template on [system, user(video, [audio,] text)] (processing_qwen2_5_omni.py and the
 * chat template in docs/tokenizer.md), qwen-omni-utils' process_mm_info (with use_audio_in_video
 * the audio comes from the video and the conversation holds only the video item), then the
 * processor's __call__, which tokenizes and expands each placeholder
 * (replace_multimodal_special_tokens; here avl_seq_expand) using the features' shapes.
 */
#include <stdio.h>
#include <string.h>

#include "avlens/prompt.h"
#include "base/internal.h"

avl_prompt_params avl_prompt_default_params(void)
{
    avl_prompt_params p = {.system = NULL, .text = NULL, .use_audio_in_video = false, .add_generation_prompt = true};
    return p;
}

typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *t = avl__realloc(b->s, cap);
        if (!t) {
            b->oom = true;
            return;
        }
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal of s (UTF-8 passes through; controls and quotes escaped). */
static void sb_json(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                sb_put(b, esc, 6);
            } else {
                sb_put(b, (const char *)p, 1);
            }
        }
    }
    sb_put(b, "\"", 1);
}

avl_status avl_prompt_messages_json(const avl_features *f, const avl_prompt_params *pp, char **out)
{
    *out = NULL;
    avl_prompt_params dp = avl_prompt_default_params();
    const avl_prompt_params *p = pp ? pp : &dp;
    bool video = f && f->pixel_values_videos, audio = f && f->input_features;
    if (p->use_audio_in_video && !(video && audio))
        return avl__err(AVL_E_ARG, "prompt: use_audio_in_video needs both a video and its audio (the features have %s)",
                        video ? "no audio" : audio ? "no video" : "neither");
    sbuf b = {0};
    sb_str(&b, "[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":");
    sb_json(&b, p->system ? p->system : AVL_DEFAULT_SYSTEM_PROMPT);
    sb_str(&b, "}]},{\"role\":\"user\",\"content\":[");
    bool first = true;
    if (video) {
        sb_str(&b, "{\"type\":\"video\",\"video\":\"video\"}");
        first = false;
    }
    if (audio && !p->use_audio_in_video) {
        sb_str(&b, first ? "" : ",");
        sb_str(&b, "{\"type\":\"audio\",\"audio\":\"audio\"}");
        first = false;
    }
    if (p->text) {
        sb_str(&b, first ? "" : ",");
        sb_str(&b, "{\"type\":\"text\",\"text\":");
        sb_json(&b, p->text);
        sb_str(&b, "}");
    }
    sb_str(&b, "]}]");
    if (b.oom) {
        avl__free(b.s);
        return avl__err(AVL_E_NOMEM, "prompt: out of memory for the messages");
    }
    *out = b.s;
    return AVL_OK;
}

void avl_prompt_free(avl_prompt *pr)
{
    if (!pr) return;
    avl__free(pr->chat);
    avl__free(pr->ids);
    avl__free(pr);
}

/* The placeholder the template writes must be the id the sequence code expands. */
static avl_status check_token(const avl_tokenizer *tok, const char *name, int32_t want)
{
    int32_t id;
    if (avl_tokenizer_token_id(tok, name, &id) != AVL_OK)
        return avl__err(AVL_E_ARG, "prompt: the tokenizer has no %s token", name);
    if (id != want)
        return avl__err(AVL_E_ARG, "prompt: the tokenizer gives %s id %d, the config %d", name, id, want);
    return AVL_OK;
}

avl_status avl_prompt_build(const avl_tokenizer *tok, const avl_seq_params *sp, const avl_features *f,
                            const avl_prompt_params *pp, avl_prompt **out)
{
    *out = NULL;
    avl_prompt_params dp = avl_prompt_default_params();
    const avl_prompt_params *p = pp ? pp : &dp;
    bool video = f && f->pixel_values_videos, audio = f && f->input_features;
    avl_status rc;
    if (video && (rc = check_token(tok, "<|VIDEO|>", sp->video_token_id))) return rc;
    if (audio && (rc = check_token(tok, "<|AUDIO|>", sp->audio_token_id))) return rc;

    char *json = NULL, *chat = NULL;
    size_t chat_len = 0;
    int32_t *chat_ids = NULL;
    int64_t n_chat = 0;
    avl_prompt *pr = avl__calloc(1, sizeof *pr);
    if (!pr) return avl__err(AVL_E_NOMEM, "prompt: out of memory");
    if ((rc = avl_prompt_messages_json(f, p, &json))) goto fail;
    avl_chat_params cp = avl_chat_default_params();
    cp.add_generation_prompt = p->add_generation_prompt;
    if ((rc = avl_chat_render(json, strlen(json), &cp, &chat, &chat_len))) goto fail;
    if (!(pr->chat = avl__strdup(chat))) {
        rc = avl__err(AVL_E_NOMEM, "prompt: out of memory");
        goto fail;
    }
    if ((rc = avl_tokenizer_encode(tok, chat, chat_len, &chat_ids, &n_chat))) goto fail;
    pr->n_chat_ids = n_chat;

    avl_thinker_inputs *in = &pr->inputs;
    avl_media_shape *m = &in->media;
    if (video) {
        m->n_videos = 1;
        for (int k = 0; k < 3; k++) m->video_grid_thw[0][k] = f->video_grid_thw[k];
        m->video_second_per_grid[0] = f->video_second_per_grid;
        in->pixel_values_videos = f->pixel_values_videos;
    }
    if (audio) {
        int64_t valid = 0; /* the processor counts the mask, not the signal length */
        for (int64_t i = 0; i < f->n_mel_frames; i++) valid += f->feature_attention_mask[i] != 0;
        m->n_audios = 1;
        m->audio_feature_len[0] = valid;
        in->input_features = f->input_features;
        in->n_feature_frames = f->n_mel_frames;
    }
    in->use_audio_in_video = p->use_audio_in_video;
    if ((rc = avl_seq_expand(sp, chat_ids, n_chat, m, p->use_audio_in_video, &pr->ids, &pr->n))) goto fail;
    for (int64_t i = 0; i < pr->n; i++) {
        pr->n_video_tokens += pr->ids[i] == sp->video_token_id;
        pr->n_audio_tokens += pr->ids[i] == sp->audio_token_id;
    }
    in->input_ids = pr->ids;
    in->n = pr->n;
    avl__free(json);
    avl_tokenizer_free_mem(chat);
    avl_tokenizer_free_mem(chat_ids);
    *out = pr;
    return AVL_OK;
fail:
    avl__free(json);
    avl_tokenizer_free_mem(chat);
    avl_tokenizer_free_mem(chat_ids);
    avl_prompt_free(pr);
    return rc;
}
