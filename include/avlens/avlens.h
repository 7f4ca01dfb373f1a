/* avlens.h: the whole public API of avlens, a toolkit that looks inside audio-visual LLMs.
 *
 * Usage, in brief (each header opens with its own example):
 *
 *   #include <avlens/avlens.h>
 *   avl_st_set *ck;
 *   if (avl_st_open_dir("Qwen2.5-Omni-7B", &ck) != AVL_OK) {
 *       fprintf(stderr, "%s\n", avl_last_error());   // names the file and the problem
 *       return 1;
 *   }
 *   ...
 *   avl_st_close(ck);
 *
 * Conventions: functions return avl_status (0 ok, negative error) and put results in
 * out-parameters; objects are opaque, made by _open/_load/_new and released by a NULL-safe
 * _close/_free; the library never prints and never exits.
 */
#ifndef AVLENS_H
#define AVLENS_H

#include "avlens/status.h"
/* AVL_INCLUDES: one line per public header, kept sorted */
#include "avlens/checkpoint.h"
#include "avlens/config.h"
#include "avlens/mkmodel.h"
#include "avlens/answer.h"
#include "avlens/model.h"
#include "avlens/prompt.h"
#include "avlens/media.h"
#include "avlens/backend.h"
#include "avlens/eval.h"
#include "avlens/dataset.h"
#include "avlens/interp.h"
#include "avlens/analysis.h"
#include "avlens/decode.h"
#include "avlens/safetensors.h"
#include "avlens/sequence.h"
#include "avlens/synth.h"
#include "avlens/tokenizer.h"

#define AVLENS_VERSION "0.1.0"

#endif
