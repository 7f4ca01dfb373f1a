/* src/decode/avcd.c: Audio-Visual Contrastive Decoding (Jung et al., NeurIPS 2025), as
 * /work/shared/spec/baselines.md reads it from kaistmm/AVCD (videollama2/__init__.py mm_infer's
 * forward loop; videollama2/model/qwen.py Qwen2SdpaAttention and Qwen2Model.forward). Contract in
 * include/avlens/decode.h; constants and the departures from the released code in
 * docs/decoding.md.
 *
 * Per step: the original pass (its own KV cache, one new position per step) with an observer
 * that keeps the current query's probability row in each target layer and head; its head and
 * layer mean gives the dominant modality, the threshold and the three masked key sets
 * (avl_avcd_analyse). Unless the entropy gate passes the original logits through, three masked
 * passes follow. Their edit (zero the masked keys' probabilities, renormalise) applies to every
 * query, prompt ones included, and the key sets change from step to step, so no masked pass can
 * keep a cache from one step to the next: each recomputes the sequence from its first masked key
 * on, and the positions before that key (whose queries see no masked key) are the original
 * pass's cache, copied. The three masked passes run one after the other in one scratch run.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "avlens/decode.h"
#include "avlens/interp.h"
#include "base/internal.h"
#include "decode/decode_internal.h"

/* ---- the sequence ---- */

avl_status avl__dseq_init(avl__dseq *s, const float *embeds, const avl_token_map *map, int64_t T, int64_t H)
{
    memset(s, 0, sizeof *s);
    s->embeds = embeds;
    s->map = map;
    s->T = T;
    s->H = H;
    s->gen = avl__malloc((size_t)(T * H) * sizeof *s->gen);
    s->gen_pos = avl__malloc((size_t)(3 * T) * sizeof *s->gen_pos);
    if (!s->gen || !s->gen_pos) {
        avl__dseq_free(s);
        return avl__err(AVL_E_NOMEM, "decode: cannot allocate the generated rows");
    }
    for (int64_t i = 0; i < T; i++)
        for (int a = 0; a < 3; a++) s->gen_pos[a * T + i] = map->n + i + map->rope_delta;
    return AVL_OK;
}

void avl__dseq_free(avl__dseq *s)
{
    avl__free(s->gen);
    avl__free(s->gen_pos);
    s->gen = NULL;
    s->gen_pos = NULL;
}

avl_status avl__dseq_forward(avl_run *r, const avl__dseq *s, const float *prompt_rows, int64_t from, int64_t to,
                             const avl_hooks *hooks, float *logits)
{
    const int64_t n = s->map->n, H = s->H;
    const float *pr = prompt_rows ? prompt_rows : s->embeds;
    avl_status rc;
    int64_t p1 = to < n ? to : n;
    if (from < p1) {
        bool last = p1 == to;
        if ((rc = avl_run_forward(r, pr + from * H, s->map->pos + from, n, p1 - from, hooks, last ? logits : NULL,
                                  last && logits ? 1 : 0)))
            return rc;
    }
    int64_t g0 = from > n ? from : n;
    if (g0 < to &&
        (rc = avl_run_forward(r, s->gen + (g0 - n) * H, s->gen_pos + (g0 - n), s->T, to - g0, hooks, logits,
                              logits ? 1 : 0)))
        return rc;
    return AVL_OK;
}

int32_t avl__argmax_d(const double *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

/* ---- the analysis ---- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void avl_avcd_step_clear(avl_avcd_step *s)
{
    if (!s) return;
    for (int i = 0; i < 3; i++) avl_tokset_free(&s->masked[i]);
    memset(s, 0, sizeof *s);
}

/* the modality of position k (avl_qgroup), -1: none (system prompt, delimiters, images) */
static int modality(const avl_token_map *map, int64_t first_media, int64_t k)
{
    if (k >= map->n) return AVL_QG_TEXT;
    int kind = map->tok[k].kind;
    if (kind == AVL_TOK_VIDEO) return AVL_QG_VIDEO;
    if (kind == AVL_TOK_AUDIO) return AVL_QG_AUDIO;
    if (kind == AVL_TOK_TEXT && k >= first_media) return AVL_QG_TEXT;
    return -1;
}

avl_status avl_avcd_analyse(const avl_token_map *map, int64_t N, const double *attn, avl_avcd_step *out)
{
    memset(out, 0, sizeof *out);
    if (!map || !attn || N < map->n || N < 1)
        return avl__err(AVL_E_ARG, "avcd: %lld positions for a prompt of %lld", (long long)N,
                        (long long)(map ? map->n : 0));
    int64_t first = map->n;
    for (int64_t k = 0; k < map->n; k++)
        if (map->tok[k].kind == AVL_TOK_VIDEO || map->tok[k].kind == AVL_TOK_AUDIO) {
            first = k;
            break;
        }
    double sum[3] = {0};
    int64_t cnt[3] = {0};
    for (int64_t k = 0; k < N; k++) {
        int g = modality(map, first, k);
        if (g < 0) continue;
        sum[g] += attn[k];
        cnt[g]++;
    }
    for (int g = 0; g < 3; g++) out->mean[g] = cnt[g] ? sum[g] / (double)cnt[g] : 0.0;
    /* the released code sorts (text, video, audio) by mean, stable: ties keep that order */
    const int pref[3] = {AVL_QG_TEXT, AVL_QG_VIDEO, AVL_QG_AUDIO};
    int best = -1;
    for (int i = 0; i < 3; i++)
        if (cnt[pref[i]] && (best < 0 || out->mean[pref[i]] > out->mean[best])) best = pref[i];
    out->dominant = best < 0 ? AVL_QG_TEXT : best;

    double *tmp = avl__malloc((size_t)N * sizeof *tmp);
    int64_t *buf = avl__malloc((size_t)N * sizeof *buf);
    if (!tmp || !buf) {
        avl__free(tmp);
        avl__free(buf);
        return avl__err(AVL_E_NOMEM, "avcd: cannot allocate the step analysis of %lld positions", (long long)N);
    }
    memcpy(tmp, attn, (size_t)N * sizeof *tmp);
    qsort(tmp, (size_t)N, sizeof *tmp, cmp_d);
    out->threshold = N % 2 ? tmp[N / 2] : 0.5 * (tmp[N / 2 - 1] + tmp[N / 2]); /* torch.quantile(0.5) */
    avl__free(tmp);

    /* the three passes' modality sets (bit g = avl_qgroup g) */
    const int V_ = 1 << AVL_QG_VIDEO, A_ = 1 << AVL_QG_AUDIO, T_ = 1 << AVL_QG_TEXT;
    int sets[3];
    if (out->dominant == AVL_QG_TEXT) sets[0] = V_ | A_, sets[1] = A_, sets[2] = V_;
    else if (out->dominant == AVL_QG_VIDEO) sets[0] = T_ | A_, sets[1] = A_, sets[2] = T_;
    else sets[0] = T_ | V_, sets[1] = V_, sets[2] = T_;
    avl_status rc = AVL_OK;
    for (int i = 0; i < 3 && !rc; i++) {
        int64_t nb = 0;
        for (int64_t k = 0; k < N; k++) {
            int g = modality(map, first, k);
            if (g >= 0 && (sets[i] >> g & 1) && attn[k] > out->threshold) buf[nb++] = k;
        }
        rc = avl_tokset_from_list(buf, nb, &out->masked[i]);
    }
    avl__free(buf);
    if (rc) avl_avcd_step_clear(out);
    return rc;
}

avl_status avl_decode_add_avcd_mask(avl_plan *plan, const avl_decode_params *p, const avl_token_map *map,
                                    const avl_tokset *keys)
{
    if (p->edit_layer1 <= p->edit_layer0 || keys->n == 0) return AVL_OK;
    avl_attn_edit e = {.kind = AVL_EDIT_POST_RENORM, .c = 0.0, .layer0 = p->edit_layer0, .layer1 = p->edit_layer1,
                       .queries = NULL, .queries_from = map->n, .keys = keys};
    return avl_plan_edit_attn(plan, &e);
}

/* ---- the observer of the current query ---- */

typedef struct {
    int l0, l1;
    int64_t nh, cap;
    int64_t target; /* the query position whose rows are kept */
    float *slot;    /* (l1 - l0, nh, cap) */
} last_obs;

static bool lo_wants_attn(void *u, int layer)
{
    const last_obs *o = u;
    return layer >= o->l0 && layer < o->l1;
}

static void lo_attn(void *u, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                    const float *scores)
{
    (void)scores;
    last_obs *o = u;
    if (o->target < q0 || o->target >= q0 + nq) return; /* another block of queries */
    /* each (layer, head) has its own slot and one block holds the target: no two calls collide */
    float *dst = o->slot + ((int64_t)(layer - o->l0) * o->nh + head) * o->cap;
    int64_t n = o->target + 1 < nk ? o->target + 1 : nk;
    memcpy(dst, probs + (o->target - q0) * nk, (size_t)n * sizeof *dst);
    for (int64_t k = n; k <= o->target; k++) dst[k] = 0.0f;
}

/* attn (N) = mean over the observed layers and heads of the kept rows, in a fixed order */
static void lo_mean(const last_obs *o, int64_t N, double *attn)
{
    for (int64_t k = 0; k < N; k++) attn[k] = 0.0;
    for (int64_t lh = 0; lh < (int64_t)(o->l1 - o->l0) * o->nh; lh++) {
        const float *s = o->slot + lh * o->cap;
        for (int64_t k = 0; k < N; k++) attn[k] += s[k];
    }
    double inv = 1.0 / ((double)(o->l1 - o->l0) * (double)o->nh);
    for (int64_t k = 0; k < N; k++) attn[k] *= inv;
}

/* entropy (nats) of softmax(z) */
static double entropy(const float *z, int64_t V)
{
    double mx = -INFINITY, s = 0, e = 0;
    for (int64_t i = 0; i < V; i++) mx = fmax(mx, z[i]);
    for (int64_t i = 0; i < V; i++) s += exp((double)z[i] - mx);
    double lz = log(s);
    for (int64_t i = 0; i < V; i++) {
        double lp = (double)z[i] - mx - lz, pr = exp(lp);
        if (pr > 0) e -= pr * lp;
    }
    return e;
}

/* ---- the decode ---- */

avl_status avl__decode_avcd(const avl_model *m, const avl_decode_input *in, const avl_decode_params *p,
                            avl_decode_result *out)
{
    const avl_config *cfg = avl_model_config(m);
    const int nl = (int)cfg->text.num_hidden_layers;
    const avl_token_map *map = in->map;
    const int64_t V = cfg->text.vocab_size, H = cfg->text.hidden_size, n = map->n, T = p->max_new_tokens;
    const bool shared = p->shared_prefix;
    memset(out, 0, sizeof *out);
    if (p->target_layer0 < 0 || p->target_layer1 > nl || p->target_layer0 >= p->target_layer1)
        return avl__err(AVL_E_ARG, "decode: avcd: target layers [%d, %d) outside the model's %d", p->target_layer0,
                        p->target_layer1, nl);
    if (!(p->beta > 0 && p->beta <= 1)) return avl__err(AVL_E_ARG, "decode: beta %g is outside (0, 1]", p->beta);
    if (!(p->entropy_gate >= 0)) return avl__err(AVL_E_ARG, "decode: avcd: entropy gate %g is negative", p->entropy_gate);

    avl_status rc = AVL_OK;
    avl_run *ro = NULL, *rm = NULL;
    avl_plan *plan = NULL;
    avl_avcd_step st = {0};
    avl__dseq seq = {0};
    last_obs obs = {.l0 = p->target_layer0, .l1 = p->target_layer1, .nh = cfg->text.num_attention_heads, .cap = n + T};
    float *z = avl__malloc((size_t)(4 * V) * sizeof *z); /* (4, V): z_o, z_1, z_2, z_3 */
    double *sc = avl__malloc((size_t)V * sizeof *sc), *attn = avl__malloc((size_t)(n + T) * sizeof *attn);
    obs.slot = avl__calloc((size_t)((obs.l1 - obs.l0) * obs.nh * obs.cap), sizeof *obs.slot);
    out->ids = avl__malloc((size_t)T * sizeof *out->ids);
    out->gamma = avl__calloc((size_t)T, sizeof *out->gamma);
    out->dominant = avl__malloc((size_t)T * sizeof *out->dominant);
    out->V = V;
    if (p->keep_logits) {
        out->scores = avl__malloc((size_t)(T * V) * sizeof *out->scores);
        out->pass_logits = avl__calloc((size_t)(T * 4 * V), sizeof *out->pass_logits);
    }
    if (!z || !sc || !attn || !obs.slot || !out->ids || !out->gamma || !out->dominant ||
        (p->keep_logits && (!out->scores || !out->pass_logits))) {
        rc = avl__err(AVL_E_NOMEM, "decode: avcd: cannot allocate");
        goto done;
    }
    if ((rc = avl__dseq_init(&seq, in->embeds, map, T, H)) || (rc = avl_run_new(m, n + T, &ro)) ||
        (rc = avl_run_new(m, n + T, &rm)))
        goto done;
    const avl_hooks oh = {.wants_attn = lo_wants_attn, .attn = lo_attn, .user = &obs};
    obs.target = n - 1;
    if ((rc = avl__dseq_forward(ro, &seq, NULL, 0, n, &oh, z))) goto done;

    const double lb = log(p->beta);
    int64_t k = 0;
    for (; k < T; k++) {
        const int64_t N = n + k; /* positions of the sequence whose next token is chosen */
        if (!shared && k > 0) { /* the reference: the original pass recomputed from position 0 */
            obs.target = N - 1;
            if ((rc = avl_run_truncate(ro, 0)) || (rc = avl__dseq_forward(ro, &seq, NULL, 0, N, &oh, z))) goto done;
        }
        const float *zo = z;
        int dom = -1;
        if (entropy(zo, V) < p->entropy_gate) {
            for (int64_t i = 0; i < V; i++) sc[i] = zo[i];
        } else {
            lo_mean(&obs, N, attn);
            if ((rc = avl_avcd_analyse(map, N, attn, &st))) goto done;
            dom = st.dominant;
            for (int j = 0; j < 3; j++) {
                float *zj = z + (j + 1) * V;
                const avl_tokset *keys = &st.masked[j];
                if (keys->n == 0 || p->edit_layer1 <= p->edit_layer0) { /* nothing masked: the original pass */
                    memcpy(zj, zo, (size_t)V * sizeof *zj);
                    continue;
                }
                /* queries before the first masked key see none: that prefix is the original's */
                int64_t from = shared ? keys->pos[0] : 0;
                if ((rc = avl_plan_new(m, map, &plan)) || (rc = avl_decode_add_avcd_mask(plan, p, map, keys)) ||
                    (rc = avl_run_copy_prefix(rm, ro, from)) ||
                    (rc = avl__dseq_forward(rm, &seq, NULL, from, N, avl_plan_hooks(plan), zj)))
                    goto done;
                avl_plan_free(plan);
                plan = NULL;
            }
            avl_avcd_step_clear(&st);
            double mx = -INFINITY, a = p->alpha;
            for (int64_t i = 0; i < V; i++) mx = fmax(mx, zo[i]);
            const float *z1 = z + V, *z2 = z + 2 * V, *z3 = z + 3 * V;
            for (int64_t i = 0; i < V; i++)
                sc[i] = zo[i] < lb + mx ? -INFINITY
                                        : (2.0 + 2.0 * a) * zo[i] - 2.0 * a * z1[i] + (double)z2[i] + (double)z3[i];
        }
        int32_t id = avl__argmax_d(sc, V);
        out->ids[k] = id;
        out->dominant[k] = (int8_t)dom;
        if (p->keep_logits) {
            for (int64_t i = 0; i < V; i++) out->scores[k * V + i] = (float)sc[i];
            memcpy(out->pass_logits + k * 4 * V, z, (size_t)(dom < 0 ? V : 4 * V) * sizeof *z);
        }
        bool stop = false;
        for (int s = 0; s < p->n_stop; s++) stop |= id == p->stop_ids[s];
        if (stop || k + 1 == T) {
            k++;
            break;
        }
        if ((rc = avl_run_embed_tokens(m, &id, 1, seq.gen + k * H))) goto done;
        if (shared) {
            obs.target = N;
            if ((rc = avl__dseq_forward(ro, &seq, NULL, N, N + 1, &oh, z))) goto done;
        }
    }
    out->n = k;
done:
    avl_plan_free(plan);
    avl_avcd_step_clear(&st);
    avl__dseq_free(&seq);
    avl_run_free(ro);
    avl_run_free(rm);
    avl__free(obs.slot);
    avl__free(z);
    avl__free(sc);
    avl__free(attn);
    if (rc) avl_decode_result_clear(out);
    return rc;
}
