/* src/model/model_internal.h: the loaded thinker, shared by the files of src/model/. */
#ifndef AVLENS_MODEL_INTERNAL_H
#define AVLENS_MODEL_INTERNAL_H

#include "avlens/model.h"
#include "avlens/safetensors.h"
#include "kernels/gemm.h"

typedef struct avl__audio_enc avl__audio_enc;   /* src/model/audio_encoder.c */
typedef struct avl__vision_enc avl__vision_enc; /* src/model/vision_encoder.c */

/* One decoder layer's weights: matrices in place in the mapped checkpoint, norms in fp32. */
typedef struct {
    avl__weight q, k, v, o;          /* q: (nh*hd, H), k/v: (nkv*hd, H), o: (H, nh*hd) */
    avl__vec qb, kb, vb;             /* (nh*hd), (nkv*hd), (nkv*hd) */
    avl__weight gate, up, down;      /* gate/up: (F, H), down: (H, F) */
    float *in_norm, *post_norm;      /* (H) each */
} avl__dec_layer;

struct avl_model {
    avl_config cfg;
    avl_st_set *st;
    const avl__gemm_backend *be;
    char backend_desc[96];
    int threads;
    int64_t prefill_chunk;
    /* decoder */
    int64_t H, nh, nkv, hd, F, V, n_layers;
    avl__weight embed;               /* (V, H) */
    avl__weight lm_head;             /* (V, H); the embedding when tied */
    float *final_norm;               /* (H) */
    avl__dec_layer *layers;          /* (n_layers) */
    float *inv_freq;                 /* (hd/2): 1 / theta^(2i/hd), rounded to fp32 as torch does */
    int8_t *rope_axis;               /* (hd/2): which of t, h, w drives rotary pair i (mrope_section) */
    avl__audio_enc *audio;           /* NULL until loaded */
    avl__vision_enc *vision;
};

/* A run: the KV cache and scratch of one sequence (src/model/decoder.c). */
struct avl_run {
    const avl_model *m;
    int64_t max_pos, len;
    float **k, **v;        /* per layer: (max_pos, nkv*hd) */
    int64_t chunk;         /* scratch is sized for this many positions */
    float *x;              /* (chunk, H) residual stream */
    float *h;              /* (chunk, H) normed input of a sub-block */
    float *q;              /* (chunk, nh*hd) */
    float *kt, *vt;        /* (chunk, nkv*hd) keys and values before they go to their cache slots */
    float *ao;             /* (chunk, nh*hd) attention output before o_proj */
    float *t;              /* (chunk, H) sub-block output */
    float *g, *u;          /* (chunk, F) MLP gate and up */
    float *cos, *sin;      /* (chunk, hd) rotary tables of the chunk's positions */
};

/* Resolves "<prefix><name>" into a weight (2-D, a float dtype), checking its shape. */
avl_status avl__model_weight(const avl_model *m, const char *name, int64_t rows, int64_t cols, avl__weight *out);
/* A 1-D tensor of n elements as a vector view. */
avl_status avl__model_vec(const avl_model *m, const char *name, int64_t n, avl__vec *out);
/* A 1-D tensor of n elements converted to a new fp32 array. */
avl_status avl__model_vec_f32(const avl_model *m, const char *name, int64_t n, float **out);

/* Generation after a prefill the caller ran itself (src/model/generate.c): logits (V) hold the
 * last prefill row's logits on entry (scratch afterwards); the run holds exactly the prefill of
 * map (length map->n). Continues as avl_generate does after its prefill (same steps, same
 * arithmetic), so a prefill assembled another way (e.g. from copied caches) generates the same. */
/* Keeps every generated step's logits (up to cap steps) in logits (cap, V) and passes them on
 * to the caller's own on_logits, if any: set gen.on_logits = avl__keep_logits_cb and gen.user = &k. */
typedef struct {
    float *logits;
    int64_t V, cap;
    const avl_gen_params *user;
} avl__logits_keeper;
void avl__keep_logits_cb(void *keeper, int64_t step, float *logits, int64_t V);

avl_status avl__generate_continue(avl_run *r, float *logits, const avl_token_map *map, const avl_gen_params *gp,
                                  const avl_hooks *hooks, int32_t **out, int64_t *n_out);

/* ---- encoders (each in its own file; the model owns one of each) ---- */

/* Resolves the audio tower's tensors ("<prefix>audio_tower.*") and prepares its tables. */
avl_status avl__audio_encoder_load(const avl_model *m, avl__audio_enc **out);
void avl__audio_encoder_free(avl__audio_enc *e);
/* One audio item: features (n_mels, ld) fp32 with the first n_frames columns valid (the
 * feature_attention_mask's sum); writes (avl_audio_tokens_for_frames(n_frames), H) rows to out. */
avl_status avl__audio_encoder_forward(const avl_model *m, const avl__audio_enc *e, const float *features, int64_t ld,
                                      int64_t n_frames, float *out);

/* Resolves the vision tower's tensors ("<prefix>visual.*") and prepares its tables. */
avl_status avl__vision_encoder_load(const avl_model *m, avl__vision_enc **out);
void avl__vision_encoder_free(avl__vision_enc *e);
/* One video or image: patches (t*h*w, C*tp*p*p) fp32 in the processor's order, grid (t, h, w);
 * writes (t*h*w / merge^2, H) rows to out, in the order the LLM sequence takes them. */
avl_status avl__vision_encoder_forward(const avl_model *m, const avl__vision_enc *e, const float *patches,
                                       const int64_t grid_thw[3], float *out);

#endif
