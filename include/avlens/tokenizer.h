/* avlens/tokenizer.h: Qwen's byte-level BPE tokenizer (Hugging Face tokenizer.json) and the
 * Qwen2.5-Omni chat template, in C.
 *
 *   avl_tokenizer *tok;
 *   if (avl_tokenizer_load("Qwen2.5-Omni-7B", &tok)) {          // a folder or a tokenizer.json
 *       fprintf(stderr, "%s\n", avl_last_error());
 *       return 1;
 *   }
 *   const char *text = "<|im_start|>user\nhello";
 *   int32_t *ids; int64_t n;
 *   avl_tokenizer_encode(tok, text, strlen(text), &ids, &n);     // ids[0] is <|im_start|>
 *   int32_t im_end;
 *   avl_tokenizer_token_id(tok, "<|im_end|>", &im_end);        // never assume Qwen's ids
 *   avl_tokenizer_free_mem(ids);
 *   avl_tokenizer_free(tok);
 *
 * Pipeline (docs/tokenizer.md): invalid UTF-8 becomes U+FFFD (WHATWG rule, as a browser's or
 * Node's TextDecoder does) -> added tokens are cut out of the raw text (leftmost-longest; lstrip,
 * rstrip, single_word honoured) -> NFC (utf8proc) -> added tokens flagged "normalized" are cut
 * out of the normalised text -> the Split regex read from tokenizer.json (PCRE2, UTF + UCP) ->
 * bytes to the GPT-2 alphabet -> BPE by merge rank -> ids.
 *
 * A loaded tokenizer is read-only apart from an internal cache guarded by a mutex, so one
 * tokenizer may be shared by threads.
 */
#ifndef AVLENS_TOKENIZER_H
#define AVLENS_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avl_tokenizer avl_tokenizer;

/* Loads a tokenizer. path_or_dir is a tokenizer.json file, or a folder holding tokenizer.json,
 * or (when that is absent) vocab.json + merges.txt with added tokens from tokenizer_config.json
 * "added_tokens_decoder" or added_tokens.json; that second form uses Qwen2's normaliser and
 * pre-tokeniser. Fails with AVL_E_IO (missing file), AVL_E_FORMAT (not JSON, model.vocab missing,
 * a merge naming an unknown token, a regex that does not compile), AVL_E_UNSUPPORTED (a
 * normaliser, pre-tokeniser or model type other than the ones Qwen uses), AVL_E_NOMEM. */
avl_status avl_tokenizer_load(const char *path_or_dir, avl_tokenizer **out);

/* NULL-safe. */
void avl_tokenizer_free(avl_tokenizer *tok);

/* Encodes len bytes of text (UTF-8; invalid sequences are read as U+FFFD) into *ids (n of
 * them; free with avl_tokenizer_free_mem). Added and special tokens written in the text are
 * recognised. No BOS/EOS is added (Qwen adds none). Fails only with AVL_E_NOMEM or AVL_E_ARG. */
avl_status avl_tokenizer_encode(const avl_tokenizer *tok, const char *utf8, size_t len,
                                int32_t **ids, int64_t *n);

/* Decodes ids into text (*out is NUL-terminated, *len excludes the NUL; free with
 * avl_tokenizer_free_mem). skip_special drops added tokens marked "special". Bytes that do not
 * form valid UTF-8 come out as U+FFFD. AVL_E_ARG (detail names the position) for an id that
 * is not in the vocabulary. */
avl_status avl_tokenizer_decode(const avl_tokenizer *tok, const int32_t *ids, int64_t n,
                                bool skip_special, char **out, size_t *len);

/* The id of a token given by its vocabulary string (an added token's content, or a model token
 * in its byte-level spelling such as "Ġthe"). AVL_E_NOTFOUND when absent. */
avl_status avl_tokenizer_token_id(const avl_tokenizer *tok, const char *token, int32_t *id);

/* The vocabulary string of id (borrowed, valid while tok lives), NULL when id is unused. */
const char *avl_tokenizer_id_to_token(const avl_tokenizer *tok, int32_t id);

/* Number of ids: one more than the largest id of the model vocabulary and the added tokens
 * (Hugging Face's len(tokenizer) when ids have no gaps). */
int64_t avl_tokenizer_vocab_size(const avl_tokenizer *tok);

/* True when id is an added token (special or not). */
bool avl_tokenizer_is_added(const avl_tokenizer *tok, int32_t id);

/* Frees a buffer returned by this module (ids, decoded text, rendered chat). NULL-safe. */
void avl_tokenizer_free_mem(void *p);

/* ---- chat template (Qwen2.5-Omni, see docs/tokenizer.md for the exact Jinja text) ---- */

typedef struct {
    bool add_generation_prompt; /* end with "<|im_start|>assistant\n" (default true) */
    bool add_vision_id;         /* "Picture k: " / "Video k: " before each image / video (false) */
    bool add_audio_id;          /* "Audio k: " before each audio (false) */
} avl_chat_params;

avl_chat_params avl_chat_default_params(void);

/* Renders a Hugging Face messages list (JSON text, len bytes) with Qwen2.5-Omni's chat
 * template: [{"role":"system","content":"..."},{"role":"user","content":[{"type":"video",
 * "video":"a.mp4"},{"type":"audio","audio":"a.wav"},{"type":"text","text":"..."}]}].
 * Images, audio and video become their placeholder tokens (one <|IMAGE|>/<|AUDIO|>/<|VIDEO|>
 * each, between their bos/eos tokens); expanding them to N tokens is not done here. p may be
 * NULL (defaults). *out is NUL-terminated; free with avl_tokenizer_free_mem. AVL_E_FORMAT
 * (detail names the message index and key) for JSON the template cannot render. */
avl_status avl_chat_render(const char *messages_json, size_t len, const avl_chat_params *p,
                           char **out, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
