/* src/model/generate.c: greedy and sampled generation with stop tokens, on one run.
 *
 * Positions of generated tokens follow the thinker's generation step in transformers
 * (modeling_qwen2_5_omni.py, prepare_inputs_for_generation / forward with rope_deltas): after a
 * prefill of n positions, token i gets position n + i + rope_delta on all three axes.
 * Sampling: temperature, then top-k, then top-p (nucleus, smallest set with mass >= p), drawn
 * from a seeded xoshiro stream, so a seed reproduces a caption exactly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "base/rng.h"
#include "model/model_internal.h"

avl_gen_params avl_gen_default_params(void)
{
    avl_gen_params p = {.max_new_tokens = 64, .temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .seed = 0};
    return p;
}

void avl_softmax_at(const float *logits, int64_t V, const int32_t *ids, int n, double *probs)
{
    double mx = -INFINITY, z = 0.0;
    for (int64_t i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    for (int64_t i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    for (int i = 0; i < n; i++)
        probs[i] = (ids[i] >= 0 && ids[i] < V) ? exp((double)logits[ids[i]] - mx) / z : 0.0;
}

static int32_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

typedef struct {
    float p;
    int32_t id;
} cand;

static int cand_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

static avl_status sample(const float *logits, int64_t V, const avl_gen_params *gp, avl__rng *rng, int32_t *out)
{
    cand *c = avl__malloc((size_t)V * sizeof *c);
    if (!c) return avl__err(AVL_E_NOMEM, "generate: cannot allocate %lld candidates", (long long)V);
    double mx = -INFINITY;
    for (int64_t i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    double z = 0;
    for (int64_t i = 0; i < V; i++) {
        c[i].p = (float)exp(((double)logits[i] - mx) / gp->temperature);
        c[i].id = (int32_t)i;
        z += c[i].p;
    }
    qsort(c, (size_t)V, sizeof *c, cand_desc);
    int64_t keep = V;
    if (gp->top_k > 0 && gp->top_k < keep) keep = gp->top_k;
    double kept = 0;
    for (int64_t i = 0; i < keep; i++) kept += c[i].p;
    if (gp->top_p < 1.0f) {
        double acc = 0;
        for (int64_t i = 0; i < keep; i++) {
            acc += c[i].p;
            if (acc >= gp->top_p * kept) {
                keep = i + 1;
                break;
            }
        }
        kept = acc;
    }
    (void)z;
    double u = avl__rng_uniform(rng) * kept, acc = 0;
    *out = c[keep - 1].id;
    for (int64_t i = 0; i < keep; i++) {
        acc += c[i].p;
        if (u < acc) {
            *out = c[i].id;
            break;
        }
    }
    avl__free(c);
    return AVL_OK;
}

avl_status avl_generate(avl_run *r, const float *embeds, const avl_token_map *map, const avl_gen_params *gp,
                        const avl_hooks *hooks, int32_t **out, int64_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (avl_run_length(r) != 0) return avl__err(AVL_E_ARG, "generate: the run must start empty");
    if (map->n <= 0) return avl__err(AVL_E_ARG, "generate: empty prompt");
    float *logits = avl__malloc((size_t)r->m->V * sizeof *logits);
    if (!logits) return avl__err(AVL_E_NOMEM, "generate: cannot allocate");
    avl_status rc = avl_run_forward(r, embeds, map->pos, map->n, map->n, hooks, logits, 1);
    if (!rc) rc = avl__generate_continue(r, logits, map, gp, hooks, out, n_out);
    avl__free(logits);
    return rc;
}

avl_status avl__generate_continue(avl_run *r, float *logits, const avl_token_map *map, const avl_gen_params *gp,
                                  const avl_hooks *hooks, int32_t **out, int64_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    const avl_model *m = r->m;
    avl_gen_params dp = avl_gen_default_params();
    if (!gp) gp = &dp;
    int64_t V = m->V, H = m->H;
    float *e = avl__malloc((size_t)H * sizeof *e);
    int32_t *ids = avl__malloc((size_t)(gp->max_new_tokens > 0 ? gp->max_new_tokens : 1) * sizeof *ids);
    avl_status rc = AVL_OK;
    if (!e || !ids) {
        rc = avl__err(AVL_E_NOMEM, "generate: cannot allocate");
        goto done;
    }
    avl__rng rng;
    avl__rng_seed(&rng, gp->seed);
    int64_t k = 0;
    for (; k < gp->max_new_tokens; k++) {
        if (gp->on_logits) gp->on_logits(gp->user, k, logits, V);
        int32_t id;
        if (gp->temperature > 0.0f) {
            if ((rc = sample(logits, V, gp, &rng, &id))) goto done;
        } else {
            id = argmax(logits, V);
        }
        ids[k] = id;
        bool stop = false;
        for (int s = 0; s < gp->n_stop; s++) stop |= id == gp->stop_ids[s];
        if (stop || k + 1 == gp->max_new_tokens) {
            k++;
            break;
        }
        int64_t p = avl_run_length(r) + map->rope_delta;
        int64_t pos[3] = {p, p, p};
        if ((rc = avl_run_embed_tokens(m, &id, 1, e))) goto done;
        if ((rc = avl_run_forward(r, e, pos, 1, 1, hooks, logits, 1))) goto done;
    }
    *out = ids;
    *n_out = k;
    ids = NULL;
done:
    avl__free(e);
    avl__free(ids);
    return rc;
}

void avl__keep_logits_cb(void *keeper, int64_t step, float *logits, int64_t V)
{
    avl__logits_keeper *k = keeper;
    if (step < k->cap) memcpy(k->logits + step * V, logits, (size_t)V * sizeof(float));
    if (k->user->on_logits) k->user->on_logits(k->user->user, step, logits, V);
}
