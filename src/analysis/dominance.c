/* src/analysis/dominance.c: unimodal dominance (paper Sec. 3.1, Eqs. 1-2; the authors'
 * infer_with_prob.py) and answer-word probabilities (utils/logit.py max_prob_for_word).
 *
 * Three greedy runs on the same prompt: joint; audio-only (video frames zeroed before the
 * processor, sequence layout unchanged); video-only (waveform zeroed). The answers are the
 * generated texts; Eq. 1 (audio-dominant): y_av = y_a and y_av != y_v; Eq. 2 (video-dominant):
 * y_av = y_v and y_av != y_a.
 * Word probability: first tokens of w and " " + w; at each generated step softmax of the raw
 * logits; the max over steps and over the two ids (or the first step only).
 */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "base/internal.h"
#include "model/model_internal.h"
#include "avlens/analysis.h"

/* s without leading and trailing white space: [*b, *b + *n) */
static void trim(const char *s, const char **b, size_t *n)
{
    while (*s && isspace((unsigned char)*s)) s++;
    size_t k = strlen(s);
    while (k && isspace((unsigned char)s[k - 1])) k--;
    *b = s;
    *n = k;
}

static bool same(const char *x, const char *y)
{
    const char *a, *b;
    size_t na, nb;
    trim(x ? x : "", &a, &na);
    trim(y ? y : "", &b, &nb);
    return na == nb && memcmp(a, b, na) == 0;
}

avl_dominance avl_dominance_classify(const char *y_av, const char *y_a, const char *y_v)
{
    if (same(y_av, y_a) && !same(y_av, y_v)) return AVL_DOM_AUDIO;
    if (same(y_av, y_v) && !same(y_av, y_a)) return AVL_DOM_VIDEO;
    return AVL_DOM_NONE;
}

const char *avl_dominance_name(avl_dominance d)
{
    switch (d) {
    case AVL_DOM_AUDIO: return "audio";
    case AVL_DOM_VIDEO: return "video";
    default: return "none";
    }
}

avl_status avl_word_ids(const avl_tokenizer *tok, const char *word, int32_t ids[2])
{
    ids[0] = ids[1] = -1;
    size_t n = strlen(word);
    char *sp = avl__malloc(n + 2);
    if (!sp) return avl__err(AVL_E_NOMEM, "word ids: cannot allocate");
    sp[0] = ' ';
    memcpy(sp + 1, word, n + 1);
    for (int k = 0; k < 2; k++) {
        int32_t *t = NULL;
        int64_t nt = 0;
        avl_status rc = avl_tokenizer_encode(tok, k ? sp : word, k ? n + 1 : n, &t, &nt);
        if (rc) {
            avl__free(sp);
            return rc;
        }
        if (nt > 0) ids[k] = t[0];
        avl_tokenizer_free_mem(t);
    }
    avl__free(sp);
    if (ids[0] < 0) { /* keep the valid one first */
        ids[0] = ids[1];
        ids[1] = -1;
    }
    return AVL_OK;
}

double avl_word_prob(const float *step_logits, int64_t n_steps, int64_t V, const int32_t ids[2], bool first_step_only)
{
    double best = 0.0;
    int n_ids = ids[1] >= 0 ? 2 : ids[0] >= 0 ? 1 : 0;
    if (n_ids == 0) return 0.0;
    int64_t steps = first_step_only && n_steps > 0 ? 1 : n_steps;
    for (int64_t s = 0; s < steps; s++) {
        double pr[2] = {0, 0};
        avl_softmax_at(step_logits + s * V, V, ids, n_ids, pr);
        for (int i = 0; i < n_ids; i++)
            if (pr[i] > best) best = pr[i];
    }
    return best;
}

void avl_gen_answer_clear(avl_gen_answer *a)
{
    if (!a) return;
    avl_free(a->ids);
    avl_tokenizer_free_mem(a->text);
    avl__free(a->logits);
    memset(a, 0, sizeof *a);
}

avl_status avl_gen_answer_run(const avl_model *m, const avl_tokenizer *tok, const float *embeds,
                               const avl_token_map *map, const avl_gen_params *gp, const avl_hooks *hooks,
                               avl_gen_answer *out)
{
    memset(out, 0, sizeof *out);
    avl_gen_params dp = avl_gen_default_params();
    if (!gp) gp = &dp;
    int64_t cap = gp->max_new_tokens > 0 ? gp->max_new_tokens : 1;
    avl__logits_keeper k = {.V = m->V, .cap = cap, .user = gp};
    k.logits = avl__malloc((size_t)(cap * m->V) * sizeof(float));
    if (!k.logits) return avl__err(AVL_E_NOMEM, "answer: cannot keep %lld steps of logits", (long long)cap);
    avl_gen_params g = *gp;
    g.on_logits = avl__keep_logits_cb;
    g.user = &k;
    avl_run *run = NULL;
    avl_status rc = avl_run_new(m, map->n + cap, &run);
    if (!rc) rc = avl_generate(run, embeds, map, &g, hooks, &out->ids, &out->n);
    if (!rc) {
        size_t len;
        rc = avl_tokenizer_decode(tok, out->ids, out->n, true, &out->text, &len);
    }
    avl_run_free(run);
    if (rc) {
        avl__free(k.logits);
        avl_gen_answer_clear(out);
        return rc;
    }
    out->logits = k.logits;
    out->V = m->V;
    return AVL_OK;
}

void avl_dominance_result_clear(avl_dominance_result *r)
{
    if (!r) return;
    avl_gen_answer_clear(&r->av);
    avl_gen_answer_clear(&r->a);
    avl_gen_answer_clear(&r->v);
}

/* One run on in with one modality (if any) zeroed in a copy of its processor tensor. */
static avl_status one_run(const avl_model *m, const avl_tokenizer *tok, const avl_thinker_inputs *in,
                          const avl_gen_params *gp, avl_norm_mode norm, int zero_kind, avl_gen_answer *out)
{
    avl_thinker_inputs ti = *in;
    float *copy = NULL, *embeds = NULL;
    avl_token_map *map = NULL;
    avl_status rc = AVL_OK;
    avl_corruption z = {.kind = AVL_CORRUPT_ZERO, .norm = norm};
    if (zero_kind == AVL_TOK_VIDEO && in->pixel_values_videos) {
        const avl_vision_config *vc = &m->cfg.vision;
        int64_t pd = vc->in_channels * vc->temporal_patch_size * vc->patch_size * vc->patch_size, np = 0;
        for (int v = 0; v < in->media.n_videos; v++)
            np += in->media.video_grid_thw[v][0] * in->media.video_grid_thw[v][1] * in->media.video_grid_thw[v][2];
        if (!(copy = avl__malloc((size_t)(np * pd + 1) * sizeof *copy)))
            return avl__err(AVL_E_NOMEM, "dominance: cannot copy the video tensor");
        rc = avl_corrupt_video_pixels(copy, np, pd, &z);
        ti.pixel_values_videos = copy;
    } else if (zero_kind == AVL_TOK_AUDIO && in->input_features) {
        int64_t cnt = (int64_t)in->media.n_audios * m->cfg.audio.num_mel_bins * in->n_feature_frames;
        if (!(copy = avl__malloc((size_t)(cnt + 1) * sizeof *copy)))
            return avl__err(AVL_E_NOMEM, "dominance: cannot copy the audio tensor");
        rc = avl_corrupt_audio_features(copy, cnt, &z);
        ti.input_features = copy;
    }
    if (!rc) rc = avl_thinker_embed(m, &ti, &embeds, &map, NULL);
    if (!rc) rc = avl_gen_answer_run(m, tok, embeds, map, gp, NULL, out);
    avl_free(embeds);
    avl_token_map_free(map);
    avl__free(copy);
    return rc;
}

avl_status avl_dominance_run(const avl_model *m, const avl_tokenizer *tok, const avl_thinker_inputs *in,
                             const avl_gen_params *gp, avl_norm_mode norm, avl_dominance_result *out)
{
    memset(out, 0, sizeof *out);
    avl_status rc = one_run(m, tok, in, gp, norm, -1, &out->av);
    if (!rc) rc = one_run(m, tok, in, gp, norm, AVL_TOK_VIDEO, &out->a);
    if (!rc) rc = one_run(m, tok, in, gp, norm, AVL_TOK_AUDIO, &out->v);
    if (rc) {
        avl_dominance_result_clear(out);
        return rc;
    }
    out->dominance = avl_dominance_classify(out->av.text, out->a.text, out->v.text);
    return AVL_OK;
}
