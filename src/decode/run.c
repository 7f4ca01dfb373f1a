/* src/decode/run.c: avl_decode: the passes of a method, their prefills, the step loop and the
 * combination rules (include/avlens/decode.h; constants in docs/decoding.md).
 *
 * ASD's step statistics (paper-spec.md section 7) come from an attention observer on the
 * ORIGINAL pass's generated queries: per target layer and head, the probability mass of the
 * current query on the text tail (every position after the last audio or video token, the
 * generated ones included) and its mean probability on each of the four sink classes
 * (unimodal video, unimodal audio, cross-modal video, cross-modal audio). The hook is called
 * once per (layer, head) from several threads, so each call writes its own slot; the head mean
 * is taken afterwards in a fixed order, so the numbers do not depend on the thread count.
 */
#include <math.h>
#include <string.h>

#include "avlens/decode.h"
#include "avlens/interp.h"
#include "base/internal.h"

enum { C_UNI_V = 0, C_UNI_A, C_CROSS_V, C_CROSS_A, C_TEXT, C_N };

typedef struct {
    int l0, l1;
    int64_t nh;
    int64_t tail0;   /* first text-tail position */
    int8_t *cls;     /* (n_cls) sink class of each prompt position, -1: none */
    int64_t n_cls;
    int64_t count[4]; /* sinks per class */
    double *slot;    /* (l1 - l0, nh, C_N) */
} step_obs;

static bool obs_wants_attn(void *user, int layer)
{
    step_obs *o = user;
    return layer >= o->l0 && layer < o->l1;
}

static void obs_attn(void *user, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                     const float *scores)
{
    (void)q0;
    (void)scores;
    step_obs *o = user;
    const float *row = probs + (nq - 1) * nk; /* the current (last) query */
    double *s = o->slot + ((layer - o->l0) * o->nh + head) * C_N;
    double acc[C_N] = {0};
    for (int64_t k = 0; k < nk; k++) {
        if (k >= o->tail0) acc[C_TEXT] += row[k];
        if (k < o->n_cls && o->cls[k] >= 0) acc[o->cls[k]] += row[k];
    }
    memcpy(s, acc, sizeof acc);
}

/* A_text, A_uni, A_cross of the last observed step (paper-spec.md section 7). */
static void obs_stats(const step_obs *o, double *a_text, double *a_uni, double *a_cross)
{
    double text = 0, uni = 0, cross = 0;
    for (int l = 0; l < o->l1 - o->l0; l++) {
        double c[C_N] = {0};
        for (int64_t h = 0; h < o->nh; h++)
            for (int j = 0; j < C_N; j++) c[j] += o->slot[(l * o->nh + h) * C_N + j];
        for (int j = 0; j < C_N; j++) c[j] /= (double)o->nh;
        text += c[C_TEXT];
        for (int j = 0; j < 4; j++) {
            double mean = o->count[j] ? c[j] / (double)o->count[j] : 0.0;
            if (j == C_UNI_V || j == C_UNI_A) uni += mean;
            else cross += mean;
        }
    }
    *a_text = text / (double)(o->l1 - o->l0);
    *a_uni = uni;
    *a_cross = cross;
}

/* ---- passes ---- */

typedef struct {
    avl_run *run;
    const float *embeds;
    const avl_token_map *map;
    const avl_hooks *hooks; /* prefill and steps */
    const avl_hooks *step_hooks; /* steps only, when different (ASD's observer) */
    float *logits;          /* (V) of the last forward */
} pass;

static avl_status pass_step(const avl_model *m, pass *ps, int32_t id, float *e)
{
    avl_status rc = avl_run_embed_tokens(m, &id, 1, e);
    if (rc) return rc;
    int64_t p = avl_run_length(ps->run) + ps->map->rope_delta;
    int64_t pos[3] = {p, p, p};
    return avl_run_forward(ps->run, e, pos, 1, 1, ps->step_hooks ? ps->step_hooks : ps->hooks, ps->logits, 1);
}

/* One decode step of every pass with the token just chosen. batched: their rows go through one
 * avl_run_forward_batch (each product reads the weights once for all passes); otherwise one
 * forward per pass (the reference the test compares with). e: (np, H) scratch. */
static avl_status step_all(const avl_model *m, pass *ps, int np, int32_t id, float *e, bool batched)
{
    enum { MAX_PASSES = 8 };
    if (!batched || np == 1 || np > MAX_PASSES) {
        for (int i = 0; i < np; i++) {
            avl_status rc = pass_step(m, &ps[i], id, e);
            if (rc) return rc;
        }
        return AVL_OK;
    }
    avl_status rc = avl_run_embed_tokens(m, &id, 1, e);
    if (rc) return rc;
    avl_batch_item it[MAX_PASSES];
    int64_t pos[MAX_PASSES][3];
    for (int i = 0; i < np; i++) {
        int64_t q = avl_run_length(ps[i].run) + ps[i].map->rope_delta;
        pos[i][0] = pos[i][1] = pos[i][2] = q;
        it[i] = (avl_batch_item){.run = ps[i].run, .embeds = e, .pos = pos[i], .ld_pos = 1, .n = 1,
                                 .hooks = ps[i].step_hooks ? ps[i].step_hooks : ps[i].hooks,
                                 .logits = ps[i].logits, .n_logits = 1};
    }
    return avl_run_forward_batch(it, np);
}

static int32_t argmax_d(const double *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

/* out (V) = log_softmax(z) in double */
static void log_softmax(const float *z, int64_t V, double *out)
{
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < V; i++)
        if (z[i] > mx) mx = z[i];
    for (int64_t i = 0; i < V; i++) s += exp((double)z[i] - mx);
    double lz = mx + log(s);
    for (int64_t i = 0; i < V; i++) out[i] = (double)z[i] - lz;
}

/* ---- ASD prompt time: sinks, MDS, the split ---- */

typedef struct {
    avl_plan *orig, *cal;
    avl_phi_table *phi;
    avl_received *rx;
    avl_sinks *sinks;
    avl_mds *mv, *ma;
    avl_tokset s_uni, s_cross, tail;
    step_obs obs;
    avl_hooks obs_hooks;
} asd_state;

static void asd_free(asd_state *a)
{
    avl_plan_free(a->orig);
    avl_plan_free(a->cal);
    avl_phi_free(a->phi);
    avl_sinks_free(a->sinks);
    avl_mds_free(a->mv);
    avl_mds_free(a->ma);
    avl_tokset_free(&a->s_uni);
    avl_tokset_free(&a->s_cross);
    avl_tokset_free(&a->tail);
    avl__free(a->obs.cls);
    avl__free(a->obs.slot);
}

/* The split of one modality's sinks into r->uni (unimodal first half) and cross (rest). */
static avl_status split(const avl_received *rx, const int64_t *sinks, int64_t n, bool video, avl_mds **md,
                        int64_t *uni, int64_t *n_uni, int64_t *cross, int64_t *n_cross)
{
    *n_uni = *n_cross = 0;
    if (n == 0) return AVL_OK;
    avl_status rc = avl_mds_compute(rx, sinks, n, md);
    if (rc) return rc;
    int64_t *order = avl__malloc((size_t)n * sizeof *order), nu = 0;
    if (!order) return avl__err(AVL_E_NOMEM, "decode: cannot allocate the sink split");
    if ((rc = avl_mds_split(*md, video, order, &nu))) {
        avl__free(order);
        return rc;
    }
    memcpy(uni, order, (size_t)nu * sizeof *uni);
    memcpy(cross, order + nu, (size_t)(n - nu) * sizeof *cross);
    *n_uni = nu;
    *n_cross = n - nu;
    avl__free(order);
    return AVL_OK;
}

/* After the original prefill: the sets, the calibrated plan and the step observer. */
static avl_status asd_prepare(const avl_model *m, const avl_decode_params *p, const avl_token_map *map, int64_t tail0,
                              asd_state *a, avl_decode_result *res)
{
    const avl_config *cfg = avl_model_config(m);
    int nl = (int)cfg->text.num_hidden_layers;
    avl_status rc = avl_sinks_find(a->phi, p->sinks.tau, map, p->sink_n, &a->sinks);
    if (rc) return rc;
    const avl_sinks *s = a->sinks;
    int64_t n = s->n_video + s->n_audio;
    int64_t *buf = avl__malloc((size_t)(2 * n + 2) * sizeof *buf);
    if (!buf) return avl__err(AVL_E_NOMEM, "decode: cannot allocate the sink sets");
    /* each modality's list is split into uni (first) and cross parts: 2 n_video + 2 n_audio slots */
    int64_t *uv = buf, *cv = buf + s->n_video, *ua = buf + 2 * s->n_video, *ca = ua + s->n_audio;
    int64_t nuv, ncv, nua, nca;
    if ((rc = split(a->rx, s->video, s->n_video, true, &a->mv, uv, &nuv, cv, &ncv)) ||
        (rc = split(a->rx, s->audio, s->n_audio, false, &a->ma, ua, &nua, ca, &nca))) {
        avl__free(buf);
        return rc;
    }
    /* result: unimodal video, unimodal audio, cross video, cross audio */
    res->uni = avl__malloc((size_t)(n + 1) * sizeof *res->uni);
    a->obs.n_cls = map->n;
    a->obs.cls = avl__malloc((size_t)map->n * sizeof *a->obs.cls);
    if (!res->uni || !a->obs.cls) {
        avl__free(buf);
        return avl__err(AVL_E_NOMEM, "decode: cannot allocate the sink sets");
    }
    memset(a->obs.cls, -1, (size_t)map->n);
    int64_t k = 0;
    const int64_t *parts[4] = {uv, ua, cv, ca};
    int64_t counts[4] = {nuv, nua, ncv, nca};
    for (int c = 0; c < 4; c++) {
        for (int64_t i = 0; i < counts[c]; i++) {
            res->uni[k++] = parts[c][i];
            a->obs.cls[parts[c][i]] = (int8_t)c;
        }
        a->obs.count[c] = counts[c];
    }
    res->n_uni = nuv + nua;
    res->n_cross = ncv + nca;
    res->cross = res->uni + res->n_uni;
    avl__free(buf);
    if ((rc = avl_tokset_from_list(res->uni, res->n_uni, &a->s_uni)) ||
        (rc = avl_tokset_from_list(res->cross, res->n_cross, &a->s_cross)))
        return rc;
    int64_t nt = map->n - tail0;
    int64_t *tp = avl__malloc((size_t)(nt > 0 ? nt : 1) * sizeof *tp);
    if (!tp) return avl__err(AVL_E_NOMEM, "decode: cannot allocate the text tail");
    for (int64_t i = 0; i < nt; i++) tp[i] = tail0 + i;
    rc = avl_tokset_from_list(tp, nt, &a->tail);
    avl__free(tp);
    if (rc) return rc;

    if ((rc = avl_plan_new(m, map, &a->cal)) ||
        (rc = avl_decode_add_asd_edits(a->cal, p, map, &a->tail, &a->s_uni, &a->s_cross)))
        return rc;

    a->obs.l0 = p->target_layer0;
    a->obs.l1 = p->target_layer1;
    a->obs.nh = cfg->text.num_attention_heads;
    a->obs.tail0 = tail0;
    a->obs.slot = avl__calloc((size_t)((a->obs.l1 - a->obs.l0) * a->obs.nh * C_N), sizeof *a->obs.slot);
    if (!a->obs.slot) return avl__err(AVL_E_NOMEM, "decode: cannot allocate the step observer");
    a->obs_hooks = (avl_hooks){.wants_attn = obs_wants_attn, .attn = obs_attn, .user = &a->obs};
    (void)nl;
    return AVL_OK;
}

avl_status avl_decode_add_asd_edits(avl_plan *plan, const avl_decode_params *p, const avl_token_map *map,
                                    const avl_tokset *tail, const avl_tokset *uni, const avl_tokset *cross)
{
    /* Eqs. 6-7: cross-modal sinks raised, unimodal sinks lowered (reverse: the opposite) */
    double sign = p->method == AVL_DECODE_REVERSE_ASD ? -1.0 : 1.0;
    avl_attn_edit e = {.kind = AVL_EDIT_PRE_ABS, .layer0 = p->edit_layer0, .layer1 = p->edit_layer1,
                       .queries = tail, .queries_from = map->n};
    avl_status rc;
    if (p->edit_layer1 <= p->edit_layer0) return AVL_OK;
    if (cross->n > 0) {
        e.c = sign * p->alpha;
        e.keys = cross;
        if ((rc = avl_plan_edit_attn(plan, &e))) return rc;
    }
    if (uni->n > 0) {
        e.c = -sign * p->alpha;
        e.keys = uni;
        if ((rc = avl_plan_edit_attn(plan, &e))) return rc;
    }
    return AVL_OK;
}

/* ---- the decode ---- */

static avl_status check(const avl_model *m, const avl_decode_input *in, const avl_decode_params *p)
{
    int nl = (int)avl_model_config(m)->text.num_hidden_layers;
    if (!in->embeds || !in->map || in->map->n <= 0) return avl__err(AVL_E_ARG, "decode: no input");
    if (avl_decode_method_name(p->method) == NULL) return avl__err(AVL_E_ARG, "decode: unknown method %d", p->method);
    if (p->max_new_tokens < 1) return avl__err(AVL_E_ARG, "decode: max_new_tokens must be >= 1");
    if (p->edit_layer0 < 0 || p->edit_layer1 > nl || p->edit_layer0 > p->edit_layer1)
        return avl__err(AVL_E_ARG, "decode: edit layers [%d, %d) outside the model's %d", p->edit_layer0,
                        p->edit_layer1, nl);
    bool asd = p->method == AVL_DECODE_ASD || p->method == AVL_DECODE_REVERSE_ASD;
    if (asd) {
        if (p->target_layer0 < 0 || p->target_layer1 > nl || p->target_layer0 >= p->target_layer1)
            return avl__err(AVL_E_ARG, "decode: target layers [%d, %d) outside the model's %d", p->target_layer0,
                            p->target_layer1, nl);
        if (p->sinks.n_dims < 1) return avl__err(AVL_E_ARG, "decode: no sink dimensions for this model (give them)");
        if (p->sink_n < 1) return avl__err(AVL_E_ARG, "decode: sink N must be >= 1");
    }
    if (p->method == AVL_DECODE_VCD && !in->distorted_embeds)
        return avl__err(AVL_E_ARG, "decode: vcd needs the distorted input");
    if (p->method == AVL_DECODE_PAI && (!in->uncond_embeds || !in->uncond_map || in->uncond_map->n <= 0))
        return avl__err(AVL_E_ARG, "decode: pai needs the unconditional input");
    if ((p->method == AVL_DECODE_VCD || p->method == AVL_DECODE_PAI) && !(p->beta > 0 && p->beta <= 1))
        return avl__err(AVL_E_ARG, "decode: beta %g is outside (0, 1]", p->beta);
    return AVL_OK;
}

avl_status avl_decode(const avl_model *m, const avl_decode_input *in, const avl_decode_params *p,
                      avl_decode_result *out)
{
    memset(out, 0, sizeof *out);
    avl_status rc = check(m, in, p);
    if (rc) return rc;
    const avl_config *cfg = avl_model_config(m);
    const avl_token_map *map = in->map;
    const int64_t V = cfg->text.vocab_size, H = cfg->text.hidden_size, n = map->n, T = p->max_new_tokens;
    const bool asd = p->method == AVL_DECODE_ASD || p->method == AVL_DECODE_REVERSE_ASD;
    pass ps[2] = {{0}};
    int np = p->method == AVL_DECODE_VANILLA ? 1 : 2;
    asd_state a = {0};
    avl_plan *pai_plan = NULL;
    avl_tokset media = {0}, last = {0};
    double *lp0 = avl__malloc((size_t)V * sizeof *lp0), *lp1 = avl__malloc((size_t)V * sizeof *lp1);
    float *e = avl__malloc((size_t)H * sizeof *e);
    out->ids = avl__malloc((size_t)T * sizeof *out->ids);
    out->gamma = avl__calloc((size_t)T, sizeof *out->gamma);
    if (p->keep_logits) out->scores = avl__malloc((size_t)(T * V) * sizeof *out->scores);
    out->V = V;
    if (!lp0 || !lp1 || !e || !out->ids || !out->gamma || (p->keep_logits && !out->scores)) {
        rc = avl__err(AVL_E_NOMEM, "decode: cannot allocate");
        goto done;
    }
    for (int i = 0; i < np; i++) {
        ps[i].embeds = in->embeds;
        ps[i].map = map;
        if (!(ps[i].logits = avl__malloc((size_t)V * sizeof *ps[i].logits))) {
            rc = avl__err(AVL_E_NOMEM, "decode: cannot allocate");
            goto done;
        }
    }
    if (p->method == AVL_DECODE_VCD) ps[1].embeds = in->distorted_embeds;
    if (p->method == AVL_DECODE_PAI) {
        ps[1].embeds = in->uncond_embeds;
        ps[1].map = in->uncond_map;
    }
    for (int i = 0; i < np; i++)
        if ((rc = avl_run_new(m, ps[i].map->n + T, &ps[i].run))) goto done;

    /* ---- prefills ---- */
    if (asd) {
        /* text tail: positions after the last audio or video token */
        int64_t tail0 = 0;
        for (int64_t i = 0; i < n; i++)
            if (map->tok[i].kind == AVL_TOK_AUDIO || map->tok[i].kind == AVL_TOK_VIDEO) tail0 = i + 1;
        /* the shared prefix must leave at least one position for the calibrated run's logits */
        int64_t share = tail0 < n ? tail0 : n - 1;
        if ((rc = avl_plan_new(m, map, &a.orig)) || (rc = avl_sinks_observe(a.orig, &p->sinks, &a.phi)) ||
            (rc = avl_plan_observe_received(a.orig, 0, (int)cfg->text.num_hidden_layers, &a.rx)))
            goto done;
        const avl_hooks *oh = avl_plan_hooks(a.orig);
        if (p->shared_prefix && share > 0) {
            if ((rc = avl_run_forward(ps[0].run, in->embeds, map->pos, n, share, oh, NULL, 0)) ||
                (rc = avl_run_forward(ps[0].run, in->embeds + share * H, map->pos + share, n, n - share, oh,
                                      ps[0].logits, 1)))
                goto done;
        } else if ((rc = avl_run_forward(ps[0].run, in->embeds, map->pos, n, n, oh, ps[0].logits, 1))) {
            goto done;
        }
        if ((rc = asd_prepare(m, p, map, tail0, &a, out))) goto done;
        ps[1].hooks = avl_plan_hooks(a.cal);
        ps[0].step_hooks = &a.obs_hooks;
        if (p->shared_prefix && share > 0) {
            if ((rc = avl_run_copy_prefix(ps[1].run, ps[0].run, share)) ||
                (rc = avl_run_forward(ps[1].run, in->embeds + share * H, map->pos + share, n, n - share, ps[1].hooks,
                                      ps[1].logits, 1)))
                goto done;
        } else if ((rc = avl_run_forward(ps[1].run, in->embeds, map->pos, n, n, ps[1].hooks, ps[1].logits, 1))) {
            goto done;
        }
    } else {
        if (p->method == AVL_DECODE_PAI && p->edit_layer1 > p->edit_layer0) {
            /* PAI: audio and video keys raised for the last prompt query and every generated one */
            int64_t *mp = avl__malloc((size_t)(map->n_audio + map->n_video + 1) * sizeof *mp), k = 0;
            if (!mp) {
                rc = avl__err(AVL_E_NOMEM, "decode: cannot allocate");
                goto done;
            }
            for (int64_t i = 0; i < n; i++)
                if (map->tok[i].kind == AVL_TOK_AUDIO || map->tok[i].kind == AVL_TOK_VIDEO) mp[k++] = i;
            int64_t lq = n - 1;
            rc = avl_tokset_from_list(mp, k, &media);
            avl__free(mp);
            if (rc || (rc = avl_tokset_from_list(&lq, 1, &last)) || (rc = avl_plan_new(m, map, &pai_plan))) goto done;
            avl_attn_edit ed = {.kind = AVL_EDIT_PRE_ABS, .c = p->alpha, .layer0 = p->edit_layer0,
                                .layer1 = p->edit_layer1, .queries = &last, .queries_from = n, .keys = &media};
            if (media.n > 0 && (rc = avl_plan_edit_attn(pai_plan, &ed))) goto done;
            ps[0].hooks = avl_plan_hooks(pai_plan);
        }
        for (int i = 0; i < np; i++)
            if ((rc = avl_run_forward(ps[i].run, ps[i].embeds, ps[i].map->pos, ps[i].map->n, ps[i].map->n, ps[i].hooks,
                                      ps[i].logits, 1)))
                goto done;
    }

    /* ---- steps ---- */
    double gamma = 0.0;
    int64_t k = 0;
    const double lb = log(p->beta > 0 ? p->beta : 1.0);
    for (; k < T; k++) {
        const float *z0 = ps[0].logits, *z1 = np > 1 ? ps[1].logits : NULL;
        switch (p->method) {
        case AVL_DECODE_VANILLA:
            for (int64_t i = 0; i < V; i++) lp0[i] = z0[i];
            break;
        case AVL_DECODE_ASD:
        case AVL_DECODE_REVERSE_ASD:
            if (k > 0) { /* gamma_0 = 0; later steps from the original pass's current query */
                double at, au, ac;
                obs_stats(&a.obs, &at, &au, &ac);
                gamma = avl_gamma_step(&p->gamma, gamma, at, au, ac);
            }
            log_softmax(z0, V, lp0);
            log_softmax(z1, V, lp1);
            for (int64_t i = 0; i < V; i++) lp0[i] += gamma * (lp1[i] - lp0[i]);
            break;
        case AVL_DECODE_PAI: {
            log_softmax(z0, V, lp0);
            log_softmax(z1, V, lp1);
            double mx = -INFINITY;
            for (int64_t i = 0; i < V; i++) mx = fmax(mx, lp0[i]);
            for (int64_t i = 0; i < V; i++)
                lp0[i] = lp0[i] < lb + mx ? -INFINITY : p->pai_gamma * (lp0[i] - lp1[i]) + lp1[i];
            break;
        }
        case AVL_DECODE_VCD: {
            double mx = -INFINITY;
            for (int64_t i = 0; i < V; i++) mx = fmax(mx, z0[i]);
            for (int64_t i = 0; i < V; i++)
                lp0[i] = z0[i] < lb + mx ? -INFINITY : (1.0 + p->alpha) * z0[i] - p->alpha * z1[i];
            break;
        }
        default:
            break;
        }
        int32_t id = argmax_d(lp0, V);
        out->ids[k] = id;
        out->gamma[k] = gamma;
        if (out->scores)
            for (int64_t i = 0; i < V; i++) out->scores[k * V + i] = (float)lp0[i];
        bool stop = false;
        for (int s = 0; s < p->n_stop; s++) stop |= id == p->stop_ids[s];
        if (stop || k + 1 == T) {
            k++;
            break;
        }
        if ((rc = step_all(m, ps, np, id, e, p->batched_steps))) goto done;
    }
    out->n = k;
done:
    for (int i = 0; i < 2; i++) {
        avl_run_free(ps[i].run);
        avl__free(ps[i].logits);
    }
    asd_free(&a);
    avl_plan_free(pai_plan);
    avl_tokset_free(&media);
    avl_tokset_free(&last);
    avl__free(lp0);
    avl__free(lp1);
    avl__free(e);
    if (rc) avl_decode_result_clear(out);
    return rc;
}
