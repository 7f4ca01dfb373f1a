/* avlens/decode.h: captioning with Adaptive Sink-Guided Decoding (ASD, paper Sec. 6.2) and the
 * baselines (vanilla greedy, reverse ASD, PAI, VCD). Every constant and its source:
 * docs/decoding.md, /work/shared/spec/paper-spec.md sections 7-8 and baselines.md.
 *
 *   avl_decode_params dp;
 *   avl_decode_default_params(m, AVL_DECODE_ASD, &dp);     // alpha 0.6, layers 6.., targets 18-25
 *   dp.max_new_tokens = 64; dp.stop_ids = stops; dp.n_stop = 2;
 *   avl_decode_input di = {0};
 *   avl_decode_prepare(m, &prompt->inputs, &dp, &di);        // embeds, map (+ VCD's / PAI's extra input)
 *   avl_decode_result res;
 *   if (avl_decode(m, &di, &dp, &res)) { fprintf(stderr, "%s\n", avl_last_error()); ... }
 *   ... res.ids (res.n), res.gamma (res.n) ...
 *   avl_decode_result_clear(&res); avl_decode_input_clear(&di);
 *
 * A method is a set of passes, each with its own run (KV cache) and its own attention edits,
 * stepped together on the same chosen token, and a rule that combines their logits into one
 * choice (greedy: argmax, lowest id on ties):
 *   vanilla      one pass.
 *   asd          original + calibrated pass (pre-softmax a += alpha|a| on cross-modal sink keys,
 *                a -= alpha|a| on unimodal sink keys, in layers [edit_layer0, edit_layer1), all
 *                heads, text-tail queries of the prompt and every generated query);
 *                log p~ = log p_orig + gamma_t (log p_cal - log p_orig), gamma_t adaptive from
 *                the original pass's attention of the current query (Eqs. 9, 14-16).
 *   reverse-asd  the edit's signs swapped; w_t = the cross-modal share.
 *   pai          the original pass with a += alpha|a| on every audio and video key for the last
 *                prompt query and every generated query in the edit layers, and an
 *                unconditional pass on the prompt without its media tokens:
 *                out = gamma (l - l_u) + l_u on log-probabilities, cut where l < log(beta) + max l.
 *   vcd          original + distorted pass (media noised by the diffusion schedule at step t):
 *                z = (1 + alpha) z_o - alpha z_d, cut where z_o < log(beta) + max z_o.
 * The ASD calibrated pass shares every position before the text tail with the original pass, so
 * that prefix is computed once and its KV cache copied (avl_run_copy_prefix); shared_prefix =
 * false computes two full prefills instead (the test's reference). Every method with more than
 * one pass runs each step's passes as one batch (avl_run_forward_batch: the weights are read
 * once per step for all passes); batched_steps = false steps them one by one (the reference).
 */
#ifndef AVLENS_DECODE_H
#define AVLENS_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "avlens/analysis.h"
#include "avlens/model.h"
#include "avlens/sequence.h"
#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AVL_DECODE_VANILLA = 0,
    AVL_DECODE_ASD,
    AVL_DECODE_REVERSE_ASD,
    AVL_DECODE_PAI,
    AVL_DECODE_VCD,
    AVL_DECODE_COUNT
} avl_decode_method;

/* "vanilla", "asd", "reverse-asd", "pai", "vcd"; NULL for an unknown value. */
const char *avl_decode_method_name(avl_decode_method m);
/* AVL_E_ARG naming the word when it is none of the above. */
avl_status avl_decode_method_parse(const char *name, avl_decode_method *out);

/* The adaptive guidance strength (Eqs. 9, 14-16) as a pure function, one step at a time. */
typedef struct {
    double gamma_base;   /* 0.5 */
    double gamma_max;    /* 0.6: gamma_target = min(gamma_max, gamma_base * w_t) */
    double text_mass;    /* 0.4: above it the cosine gate applies */
    double gate;         /* 0.2: the cosine gate falls to 0 over (text_mass, text_mass + gate) */
    double w_floor;      /* 0.6: below it gamma_target *= (w_t / w_floor)^2 */
    double momentum;     /* 0.5: gamma_t = m gamma_{t-1} + (1 - m) gamma_target */
    bool cross_share;    /* w_t = A_cross / (...) (released code, reverse ASD) instead of A_uni / (...) */
} avl_gamma_params;

avl_gamma_params avl_gamma_default_params(void);

/* w_t from the step's A_uni and A_cross (+1e-8 in the denominator). */
double avl_gamma_share(const avl_gamma_params *p, double a_uni, double a_cross);
/* gamma_target of one step from A_text, A_uni, A_cross (Eqs. 14-15). */
double avl_gamma_target(const avl_gamma_params *p, double a_text, double a_uni, double a_cross);
/* gamma_t = momentum * gamma_prev + (1 - momentum) * gamma_target (Eq. 16). */
double avl_gamma_step(const avl_gamma_params *p, double gamma_prev, double a_text, double a_uni, double a_cross);

typedef struct {
    avl_decode_method method;
    int64_t max_new_tokens;   /* 64 */
    const int32_t *stop_ids;  /* generation ends after emitting one of these (kept) */
    int n_stop;
    /* attention edits (ASD, reverse ASD, PAI): layers [edit_layer0, edit_layer1) */
    double alpha;             /* ASD 0.6, PAI 0.2, VCD 1.0 */
    int edit_layer0, edit_layer1; /* 6 ("after layer 5") .. n_layers */
    /* ASD prompt time */
    int64_t sink_n;           /* 3: K = floor(L / N) global sinks */
    avl_sink_params sinks;    /* D and tau (avl_sink_default_params) */
    /* ASD step time */
    avl_gamma_params gamma;
    int target_layer0, target_layer1; /* layers [18, 26) clamped to the depth */
    bool shared_prefix;       /* true: the audio-visual prefix once (see above) */
    bool batched_steps;       /* true: each step's passes in one batched forward (see above) */
    /* PAI and VCD */
    double pai_gamma;         /* 1.1 */
    double beta;              /* plausibility cut-off: PAI 0.1, VCD 0.1 */
    int noise_step;           /* VCD: 500 of T = 1000 */
    uint64_t seed;            /* VCD noise */
    bool keep_logits;         /* fill avl_decode_result.scores */
} avl_decode_params;

/* The defaults of method for model m (layer ranges clamped to its depth). AVL_OK always. */
avl_status avl_decode_default_params(const avl_model *m, avl_decode_method method, avl_decode_params *out);

/* What the passes read. embeds (map->n, H) and map are required; distorted_embeds (same map)
 * for VCD; uncond_embeds with uncond_map for PAI. Owned by whoever filled it:
 * avl_decode_input_clear frees what avl_decode_prepare allocated (owned = true). */
typedef struct {
    const float *embeds;
    const avl_token_map *map;
    const float *distorted_embeds;
    const float *uncond_embeds;
    const avl_token_map *uncond_map;
    bool owned;
} avl_decode_input;

/* Builds the input of p->method from the processor's tensors: avl_thinker_embed for the
 * original; VCD: the pixels and log-mel noised (avl_decode_diffuse with p->noise_step, seeded)
 * and embedded again; PAI: the prompt with every audio, video and image placeholder removed. */
avl_status avl_decode_prepare(const avl_model *m, const avl_thinker_inputs *in, const avl_decode_params *p,
                              avl_decode_input *out);
void avl_decode_input_clear(avl_decode_input *in);

/* VCD's forward diffusion in place: x <- sqrt(abar_t) x + sqrt(1 - abar_t) eps, eps ~ N(0, 1)
 * from a seeded stream, with beta_s = sigmoid(linspace(-6, 6, 1000)) (0.5e-2 - 1e-5) + 1e-5
 * and abar = cumprod(1 - beta). step in [0, 999] (AVL_E_ARG otherwise). */
avl_status avl_decode_diffuse(float *x, int64_t n, int step, uint64_t seed);

typedef struct {
    int32_t *ids;    /* (n) */
    int64_t n;
    double *gamma;   /* (n) ASD: gamma_t used at step t; others: 0 */
    /* ASD: the prompt-time sets */
    int64_t n_uni, n_cross;
    int64_t *uni;         /* (n_uni + n_cross): unimodal, then cross-modal; video before audio */
    const int64_t *cross; /* uni + n_uni */
    /* keep_logits: each step's scores the choice was made on, (n, V): ASD's log p~, PAI's and
     * VCD's cut scores (-inf where cut), vanilla's logits */
    float *scores;
    int64_t V;
} avl_decode_result;

void avl_decode_result_clear(avl_decode_result *r);

/* The ASD calibrated pass's edits (Eqs. 6-7) added to plan: PRE_ABS with c = +alpha on the
 * cross-modal keys and c = -alpha on the unimodal keys (reverse ASD: signs swapped) in layers
 * [edit_layer0, edit_layer1), all heads, for the queries of tail and every generated query. */
avl_status avl_decode_add_asd_edits(avl_plan *plan, const avl_decode_params *p, const avl_token_map *map,
                                    const avl_tokset *tail, const avl_tokset *uni, const avl_tokset *cross);

avl_status avl_decode(const avl_model *m, const avl_decode_input *in, const avl_decode_params *p,
                      avl_decode_result *out);

#ifdef __cplusplus
}
#endif
#endif
