/* avlens/safetensors.h: read and write Hugging Face safetensors files, zero-copy.
 *
 *   avl_st_set *ck;
 *   avl_status rc = avl_st_open_dir("Qwen2.5-Omni-7B", &ck);  // model.safetensors or the index
 *   if (rc) { fprintf(stderr, "%s\n", avl_last_error()); return 1; }
 *   avl_tensor_view w;
 *   rc = avl_st_get(ck, "thinker.model.embed_tokens.weight", &w);  // w.data points into the mmap
 *   avl_st_close(ck);
 *
 * Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
 * N bytes of JSON {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {"k": "v"}}, then the data; offsets are relative to the end of the header.
 * Every header is validated before anything is used: N against the file size (and a 100 MB cap),
 * well-formed JSON, known dtypes, shape x dtype size == byte span, spans inside the data and not
 * overlapping (gaps are allowed), no duplicate names, "__metadata__" an object of strings.
 * A sharded checkpoint is a model.safetensors.index.json whose "weight_map" maps each tensor
 * name to its shard file. docs/safetensors.md lists every check and its message.
 *
 * Files are memory-mapped read-only; tensor views stay valid until the file or set is closed.
 * Handles are not thread-safe to close while in use, but concurrent reads (at/get) are fine.
 */
#ifndef AVLENS_SAFETENSORS_H
#define AVLENS_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AVL_MAX_DIMS 8

typedef enum {
    AVL_DTYPE_F32 = 0,
    AVL_DTYPE_F16,
    AVL_DTYPE_BF16,
    AVL_DTYPE_I64,
    AVL_DTYPE_I32,
    AVL_DTYPE_U8,
    AVL_DTYPE_COUNT
} avl_dtype;

/* "F32", "BF16", ... (the safetensors spelling); "?" for an unknown value. */
const char *avl_dtype_name(avl_dtype t);
/* Bytes per element; 0 for an unknown value. */
size_t avl_dtype_size(avl_dtype t);
/* Parses the safetensors spelling; AVL_E_NOTFOUND when unknown (no error detail set). */
avl_status avl_dtype_parse(const char *name, avl_dtype *out);

/* A tensor inside a mapped file. Borrowed: valid while its file/set is open. */
typedef struct {
    const char *name;   /* Hugging Face name, e.g. "thinker.model.norm.weight" */
    const char *file;   /* the path of the file that holds it */
    avl_dtype dtype;
    int ndim;           /* 0 (scalar) .. AVL_MAX_DIMS */
    int64_t shape[AVL_MAX_DIMS];
    int64_t numel;      /* product of shape (1 for a scalar) */
    const void *data;   /* numel * dtype size bytes, little-endian, not necessarily aligned */
    size_t nbytes;
} avl_tensor_view;

/* ---- one file ---- */
typedef struct avl_st_file avl_st_file;

/* Maps and validates one .safetensors file. */
avl_status avl_st_file_open(const char *path, avl_st_file **out);
/* Validates an in-memory image of a file (what the fuzzer feeds); buf must outlive the file.
 * label names it in error messages. */
avl_status avl_st_file_open_memory(const void *buf, size_t len, const char *label, avl_st_file **out);
void avl_st_file_close(avl_st_file *f);
int64_t avl_st_file_count(const avl_st_file *f);
/* i-th tensor in data order (ascending offset). */
avl_status avl_st_file_at(const avl_st_file *f, int64_t i, avl_tensor_view *out);
/* AVL_E_NOTFOUND with detail "<path>: no tensor '<name>'" when absent. */
avl_status avl_st_file_get(const avl_st_file *f, const char *name, avl_tensor_view *out);
/* The "__metadata__" value for key, or NULL. */
const char *avl_st_file_metadata(const avl_st_file *f, const char *key);

/* ---- a checkpoint: one file, or shards named by an index ---- */
typedef struct avl_st_set avl_st_set;

/* dir holds model.safetensors.index.json (sharded) or model.safetensors (single); a path to
 * a .safetensors file or an index .json is accepted too. Every shard is validated, a missing
 * shard or a tensor the index names but its shard lacks is an error naming both. A tensor in a
 * shard but not in the index is included (transformers loads it too); a name in two shards is
 * an error. avl_st_at walks shards in file-name order, each in data order. */
avl_status avl_st_open_dir(const char *path, avl_st_set **out);
void avl_st_close(avl_st_set *s);
int64_t avl_st_count(const avl_st_set *s);
avl_status avl_st_at(const avl_st_set *s, int64_t i, avl_tensor_view *out);
avl_status avl_st_get(const avl_st_set *s, const char *name, avl_tensor_view *out);
bool avl_st_has(const avl_st_set *s, const char *name);

/* ---- writing ---- */
typedef struct avl_st_writer avl_st_writer;

/* Collects tensors, then writes one file. Data is copied at add time (see avl_st_stream_* below
 * to write without holding every tensor in memory). */
avl_status avl_st_writer_new(avl_st_writer **out);
avl_status avl_st_writer_add(avl_st_writer *w, const char *name, avl_dtype dtype, int ndim,
                             const int64_t *shape, const void *data);
avl_status avl_st_writer_set_metadata(avl_st_writer *w, const char *key, const char *value);
/* Writes the file byte for byte as the Python safetensors library does (tensors by dtype
 * alignment descending, then name; compact JSON header, "__metadata__" first, padded with
 * spaces to a multiple of 8). Metadata keys are written sorted. */
avl_status avl_st_writer_save(avl_st_writer *w, const char *path);
/* Writes shards of at most max_shard_bytes data each (a bigger tensor gets its own shard; split
 * as huggingface_hub does, in insertion order), named model-0000i-of-0000n.safetensors, plus
 * model.safetensors.index.json as transformers writes it, into dir (created if missing).
 * n = 1 still writes the index form. */
avl_status avl_st_writer_save_sharded(avl_st_writer *w, const char *dir, size_t max_shard_bytes);
void avl_st_writer_free(avl_st_writer *w);

/* ---- writing as a stream: one tensor in memory at a time ----
 *
 *   avl_st_stream *s;
 *   avl_st_stream_new(&s);
 *   avl_st_stream_set_metadata(s, "format", "pt");
 *   for (i = 0; i < n; i++) avl_st_stream_declare(s, name[i], AVL_DTYPE_BF16, 2, shape[i]);
 *   rc = avl_st_stream_begin(s, "model.safetensors");    // or _begin_sharded(s, dir, limit)
 *   for (int64_t i; !rc && (i = avl_st_stream_next(s)) >= 0;)
 *       rc = avl_st_stream_write(s, name[i], bytes_of(i), nbytes[i]);   // make, write, free
 *   if (!rc) rc = avl_st_stream_finish(s);
 *   avl_st_stream_free(s);                                // removes an unfinished .tmp file
 *
 * Declaring every tensor first fixes each file's header (offsets included), so the header is
 * written at begin and the data follow tensor by tensor, in header order: the reference layout
 * order (dtype alignment descending, then name) within a file, shard after shard. The files are
 * byte for byte those avl_st_writer_save / _save_sharded write for the same tensors (the
 * in-memory writer is a layer over this one). Each file is written as <file>.tmp and renamed
 * when its last tensor is in; the index is written by finish. Errors name the file: a tensor out
 * of order or not declared, a wrong byte count (AVL_E_ARG, nothing written, the stream stays
 * usable), an unwritable path or a failed write (AVL_E_IO; the .tmp file is removed and later
 * writes fail). After finish (or abort) the stream may declare more and begin again. */
typedef struct avl_st_stream avl_st_stream;

avl_status avl_st_stream_new(avl_st_stream **out);
/* The same checks and messages as avl_st_writer_add; only before begin. */
avl_status avl_st_stream_declare(avl_st_stream *s, const char *name, avl_dtype dtype, int ndim,
                                 const int64_t *shape);
avl_status avl_st_stream_set_metadata(avl_st_stream *s, const char *key, const char *value);
/* Tensors declared so far. */
int64_t avl_st_stream_count(const avl_st_stream *s);
/* The name of declaration i (0-based, declaration order), or NULL when out of range. */
const char *avl_st_stream_name(const avl_st_stream *s, int64_t i);
/* Plans one file at path, opens path.tmp and writes the header. */
avl_status avl_st_stream_begin(avl_st_stream *s, const char *path);
/* Plans the shards as avl_st_writer_save_sharded does (dir created if missing), opens the first. */
avl_status avl_st_stream_begin_sharded(avl_st_stream *s, const char *dir, size_t max_shard_bytes);
/* Declaration index of the tensor to write next; -1 when all are written (or not begun). */
int64_t avl_st_stream_next(const avl_st_stream *s);
/* Writes the next tensor's bytes: name must be the expected one, nbytes its exact size. */
avl_status avl_st_stream_write(avl_st_stream *s, const char *name, const void *data, size_t nbytes);
/* Checks that every tensor was written and writes model.safetensors.index.json (sharded). */
avl_status avl_st_stream_finish(avl_st_stream *s);
/* Abandons the file(s) being written (the open .tmp is removed); declarations are kept. */
void avl_st_stream_abort(avl_st_stream *s);
void avl_st_stream_free(avl_st_stream *s);

/* ---- numbers ---- */
/* Converts n elements of a float dtype (F32, F16, BF16) to fp32. */
avl_status avl_convert_to_f32(avl_dtype dtype, const void *src, float *dst, int64_t n);
/* fp32 -> bf16 with round-to-nearest-even (NaN kept quiet), as torch does. */
uint16_t avl_f32_to_bf16(float x);
float avl_bf16_to_f32(uint16_t x);
uint16_t avl_f32_to_f16(float x);
float avl_f16_to_f32(uint16_t x);

#ifdef __cplusplus
}
#endif
#endif
