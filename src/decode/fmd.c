/* src/decode/fmd.c: Fork-Merge Decoding (Jung et al. 2025, arXiv 2505.20873), contract in
 * include/avlens/decode.h. No official code exists; what was read of the paper and what was
 * chosen here is in docs/decoding.md ("FMD").
 *
 * Three runs, each with its own KV cache:
 *   A  the input with the audio rows zeroed (video kept), N  the input with the video rows
 *      zeroed (audio kept): every layer runs, but only the residual stream at the input of
 *      layer L = fork_layers is used (captured by a site hook);
 *   M  the merged run: at the input of layer L its residual stream is replaced by the merge
 *      (video rows from A, audio rows from N, every other row w a + (1 - w) b, in double);
 *      layers >= L see only merged rows, so M's logits are FMD's. M's own layers < L run on
 *      the original input and their output is overwritten (wasted work: the decoder has no
 *      entry point that starts at a layer; that would cut the cost from 3 to about
 *      1 + 2 L / n_layers forwards).
 * w is taken once, from the branches' prefill: the last prompt query's attention, mean over
 * heads and layers [0, L): A_v = its mass on video keys in A, A_a = its mass on audio keys in N;
 * w = A_v / (A_v + A_a) (0.5 when both are 0). merge_weight >= 0 fixes it instead.
 * Generated tokens are text: both branches and the merge see them, with the prompt's w, so the
 * merged rows of every position are final once computed and the three caches stay exact.
 * Positions before the first audio or video token are the same in all three runs (the masks do
 * not reach them and the merge of two equal rows is the row): prefilled once, copied twice.
 */
#include <math.h>
#include <string.h>

#include "avlens/decode.h"
#include "base/internal.h"
#include "decode/decode_internal.h"

enum { K_OTHER = 0, K_VIDEO, K_AUDIO };

typedef struct {
    int lf;          /* the merge is at the input of this layer */
    int64_t H, n;    /* width, prompt length */
    const int8_t *cls; /* (n) K_* per prompt position */
    float *cap;      /* (n + T, H) branch: the captured rows; merged run: unused */
    const float *a, *b; /* merged run: the branches' captures */
    double w;
    /* the weight's observation (branches, prefill only) */
    bool observe;
    int cls_keys;    /* K_VIDEO for A, K_AUDIO for N */
    int64_t nh, target;
    double *mass;    /* (lf, nh) */
} fork_hook;

static bool fh_wants(void *u, int layer, avl_site s)
{
    const fork_hook *f = u;
    return s == AVL_SITE_RESID && layer == f->lf;
}

static void fh_capture(void *u, int layer, avl_site s, int64_t p0, int64_t n, int64_t dim, float *x)
{
    (void)layer;
    (void)s;
    fork_hook *f = u;
    memcpy(f->cap + p0 * dim, x, (size_t)(n * dim) * sizeof *x);
}

static void fh_merge(void *u, int layer, avl_site s, int64_t p0, int64_t n, int64_t dim, float *x)
{
    (void)layer;
    (void)s;
    const fork_hook *f = u;
    for (int64_t r = 0; r < n; r++) {
        int64_t q = p0 + r;
        int c = q < f->n ? f->cls[q] : K_OTHER;
        const float *a = f->a + q * dim, *b = f->b + q * dim;
        float *d = x + r * dim;
        if (c == K_VIDEO) memcpy(d, a, (size_t)dim * sizeof *d);
        else if (c == K_AUDIO) memcpy(d, b, (size_t)dim * sizeof *d);
        else
            for (int64_t j = 0; j < dim; j++) d[j] = (float)(f->w * a[j] + (1.0 - f->w) * b[j]);
    }
}

static bool fh_wants_attn(void *u, int layer)
{
    const fork_hook *f = u;
    return f->observe && layer < f->lf;
}

static void fh_attn(void *u, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                    const float *scores)
{
    (void)scores;
    fork_hook *f = u;
    if (f->target < q0 || f->target >= q0 + nq) return;
    const float *row = probs + (f->target - q0) * nk;
    double s = 0;
    for (int64_t k = 0; k < nk && k < f->n; k++)
        if (f->cls[k] == f->cls_keys) s += row[k];
    f->mass[layer * f->nh + head] = s; /* one slot per (layer, head): no two calls collide */
}

static double mass_mean(const fork_hook *f)
{
    double s = 0;
    for (int64_t i = 0; i < (int64_t)f->lf * f->nh; i++) s += f->mass[i];
    return f->lf ? s / ((double)f->lf * (double)f->nh) : 0.0;
}

avl_status avl__decode_fmd(const avl_model *m, const avl_decode_input *in, const avl_decode_params *p,
                           avl_decode_result *out)
{
    const avl_config *cfg = avl_model_config(m);
    const int nl = (int)cfg->text.num_hidden_layers;
    const avl_token_map *map = in->map;
    const int64_t V = cfg->text.vocab_size, H = cfg->text.hidden_size, n = map->n, T = p->max_new_tokens;
    const bool shared = p->shared_prefix;
    memset(out, 0, sizeof *out);
    if (p->fork_layers < 0 || p->fork_layers >= nl)
        return avl__err(AVL_E_ARG, "decode: fmd: fork layers %d outside 0..%d (the model has %d layers)", p->fork_layers,
                        nl - 1, nl);
    if (!(p->merge_weight <= 1)) return avl__err(AVL_E_ARG, "decode: fmd: merge weight %g is above 1", p->merge_weight);

    avl_status rc = AVL_OK;
    avl_run *ra = NULL, *rn = NULL, *rm = NULL;
    avl__dseq seq = {0};
    int8_t *cls = avl__malloc((size_t)n);
    float *ea = avl__malloc((size_t)(n * H) * sizeof *ea), *en = avl__malloc((size_t)(n * H) * sizeof *en);
    float *ca = avl__malloc((size_t)((n + T) * H) * sizeof *ca), *cn = avl__malloc((size_t)((n + T) * H) * sizeof *cn);
    float *z = avl__malloc((size_t)V * sizeof *z);
    double *sc = avl__malloc((size_t)V * sizeof *sc);
    const int64_t nh = cfg->text.num_attention_heads;
    double *mass = avl__calloc((size_t)(2 * (p->fork_layers ? p->fork_layers : 1) * nh), sizeof *mass);
    out->ids = avl__malloc((size_t)T * sizeof *out->ids);
    out->gamma = avl__calloc((size_t)T, sizeof *out->gamma);
    out->V = V;
    if (p->keep_logits) out->scores = avl__malloc((size_t)(T * V) * sizeof *out->scores);
    if (!cls || !ea || !en || !ca || !cn || !z || !sc || !mass || !out->ids || !out->gamma ||
        (p->keep_logits && !out->scores)) {
        rc = avl__err(AVL_E_NOMEM, "decode: fmd: cannot allocate");
        goto done;
    }
    int64_t first = n;
    for (int64_t i = 0; i < n; i++) {
        int kind = map->tok[i].kind;
        cls[i] = kind == AVL_TOK_VIDEO ? K_VIDEO : kind == AVL_TOK_AUDIO ? K_AUDIO : K_OTHER;
        if (cls[i] != K_OTHER && first == n) first = i;
    }
    /* the fork's inputs: one modality's rows zeroed (the paper's masking), the question kept */
    memcpy(ea, in->embeds, (size_t)(n * H) * sizeof *ea);
    memcpy(en, in->embeds, (size_t)(n * H) * sizeof *en);
    for (int64_t i = 0; i < n; i++) {
        if (cls[i] == K_AUDIO) memset(ea + i * H, 0, (size_t)H * sizeof *ea);
        if (cls[i] == K_VIDEO) memset(en + i * H, 0, (size_t)H * sizeof *en);
    }
    if ((rc = avl__dseq_init(&seq, in->embeds, map, T, H)) || (rc = avl_run_new(m, n + T, &ra)) ||
        (rc = avl_run_new(m, n + T, &rn)) || (rc = avl_run_new(m, n + T, &rm)))
        goto done;

    fork_hook fa = {.lf = p->fork_layers, .H = H, .n = n, .cls = cls, .cap = ca, .observe = true, .cls_keys = K_VIDEO,
                    .nh = nh, .target = n - 1, .mass = mass};
    fork_hook fn = fa;
    fn.cap = cn;
    fn.cls_keys = K_AUDIO;
    fn.mass = mass + (p->fork_layers ? p->fork_layers : 1) * nh;
    fork_hook fm = {.lf = p->fork_layers, .H = H, .n = n, .cls = cls, .a = ca, .b = cn};
    const avl_hooks ha = {.wants = fh_wants, .at_site = fh_capture, .wants_attn = fh_wants_attn, .attn = fh_attn, .user = &fa};
    const avl_hooks hn = {.wants = fh_wants, .at_site = fh_capture, .wants_attn = fh_wants_attn, .attn = fh_attn, .user = &fn};
    const avl_hooks hm = {.wants = fh_wants, .at_site = fh_merge, .user = &fm};

    /* ---- prefill ---- */
    int64_t share = shared ? (first < n - 1 ? first : n - 1) : 0;
    if (share > 0 && ((rc = avl__dseq_forward(ra, &seq, ea, 0, share, &ha, NULL)) ||
                      (rc = avl_run_copy_prefix(rn, ra, share)) || (rc = avl_run_copy_prefix(rm, ra, share))))
        goto done;
    if ((rc = avl__dseq_forward(ra, &seq, ea, share, n, &ha, NULL)) ||
        (rc = avl__dseq_forward(rn, &seq, en, share, n, &hn, NULL)))
        goto done;
    if (p->merge_weight >= 0) {
        fm.w = p->merge_weight;
    } else {
        double av = mass_mean(&fa), aa = mass_mean(&fn);
        fm.w = av + aa > 0 ? av / (av + aa) : 0.5;
    }
    fa.observe = fn.observe = false;
    out->merge_weight = fm.w;
    if ((rc = avl__dseq_forward(rm, &seq, NULL, share, n, &hm, z))) goto done;

    /* ---- steps ---- */
    int64_t k = 0;
    for (; k < T; k++) {
        const int64_t N = n + k;
        if (!shared && k > 0) { /* the reference: all three runs recomputed from position 0 */
            if ((rc = avl_run_truncate(ra, 0)) || (rc = avl_run_truncate(rn, 0)) || (rc = avl_run_truncate(rm, 0)) ||
                (rc = avl__dseq_forward(ra, &seq, ea, 0, N, &ha, NULL)) ||
                (rc = avl__dseq_forward(rn, &seq, en, 0, N, &hn, NULL)) ||
                (rc = avl__dseq_forward(rm, &seq, NULL, 0, N, &hm, z)))
                goto done;
        }
        for (int64_t i = 0; i < V; i++) sc[i] = z[i];
        int32_t id = avl__argmax_d(sc, V);
        out->ids[k] = id;
        if (out->scores) memcpy(out->scores + k * V, z, (size_t)V * sizeof *z);
        bool stop = false;
        for (int s = 0; s < p->n_stop; s++) stop |= id == p->stop_ids[s];
        if (stop || k + 1 == T) {
            k++;
            break;
        }
        if ((rc = avl_run_embed_tokens(m, &id, 1, seq.gen + k * H))) goto done;
        if (shared && ((rc = avl__dseq_forward(ra, &seq, ea, N, N + 1, &ha, NULL)) ||
                       (rc = avl__dseq_forward(rn, &seq, en, N, N + 1, &hn, NULL)) ||
                       (rc = avl__dseq_forward(rm, &seq, NULL, N, N + 1, &hm, z))))
            goto done;
    }
    out->n = k;
done:
    avl__dseq_free(&seq);
    avl_run_free(ra);
    avl_run_free(rn);
    avl_run_free(rm);
    avl__free(cls);
    avl__free(ea);
    avl__free(en);
    avl__free(ca);
    avl__free(cn);
    avl__free(z);
    avl__free(sc);
    avl__free(mass);
    if (rc) avl_decode_result_clear(out);
    return rc;
}
