/* src/decode/decode.c: decoding methods as passes stepped together plus a combination rule
 * (include/avlens/decode.h). ASD follows paper-spec.md section 7 (paper Sec. 6.2, Eqs. 6-9 and
 * 14-16; kaistmm/crossmodal-hub logic/adaptive_guidance_complex.py); PAI and VCD follow
 * baselines.md (LALBJ/PAI, DAMO-NLP-SG/VCD). docs/decoding.md lists every constant.
 */
#include <math.h>
#include <string.h>

#include "avlens/decode.h"
#include "avlens/interp.h"
#include "base/internal.h"
#include "base/rng.h"

static const char *const NAMES[AVL_DECODE_COUNT] = {"vanilla", "asd", "reverse-asd", "pai", "vcd"};

const char *avl_decode_method_name(avl_decode_method m)
{
    return (int)m >= 0 && m < AVL_DECODE_COUNT ? NAMES[m] : NULL;
}

avl_status avl_decode_method_parse(const char *name, avl_decode_method *out)
{
    for (int i = 0; i < AVL_DECODE_COUNT; i++)
        if (name && strcmp(name, NAMES[i]) == 0) {
            *out = (avl_decode_method)i;
            return AVL_OK;
        }
    return avl__err(AVL_E_ARG, "decode: unknown method '%s' (vanilla, asd, reverse-asd, pai, vcd)",
                    name ? name : "(null)");
}

/* ---- adaptive gamma (Eqs. 14-16) ---- */

avl_gamma_params avl_gamma_default_params(void)
{
    avl_gamma_params p = {.gamma_base = 0.5, .gamma_max = 0.6, .text_mass = 0.4, .gate = 0.2, .w_floor = 0.6,
                          .momentum = 0.5, .cross_share = false};
    return p;
}

double avl_gamma_share(const avl_gamma_params *p, double a_uni, double a_cross)
{
    return (p->cross_share ? a_cross : a_uni) / (a_uni + a_cross + 1e-8);
}

double avl_gamma_target(const avl_gamma_params *p, double a_text, double a_uni, double a_cross)
{
    double w = avl_gamma_share(p, a_uni, a_cross);
    double g = fmin(p->gamma_max, p->gamma_base * w);
    if (a_text > p->text_mass) {
        double u = (a_text - p->text_mass) / p->gate;
        g *= 0.5 * (1.0 + cos(M_PI * fmin(1.0, u)));
    }
    if (w < p->w_floor) g *= (w / p->w_floor) * (w / p->w_floor);
    return g;
}

double avl_gamma_step(const avl_gamma_params *p, double gamma_prev, double a_text, double a_uni, double a_cross)
{
    return p->momentum * gamma_prev + (1.0 - p->momentum) * avl_gamma_target(p, a_text, a_uni, a_cross);
}

/* ---- parameters ---- */

static int clampi(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }

avl_status avl_decode_default_params(const avl_model *m, avl_decode_method method, avl_decode_params *out)
{
    const avl_config *cfg = avl_model_config(m);
    int nl = (int)cfg->text.num_hidden_layers;
    memset(out, 0, sizeof *out);
    out->method = method;
    out->max_new_tokens = 64;
    out->alpha = method == AVL_DECODE_PAI ? 0.2 : method == AVL_DECODE_VCD ? 1.0 : 0.6;
    out->edit_layer0 = clampi(6, 0, nl);
    out->edit_layer1 = nl;
    out->sink_n = 3;
    avl_sink_default_params(cfg, &out->sinks);
    out->gamma = avl_gamma_default_params();
    out->gamma.cross_share = method == AVL_DECODE_REVERSE_ASD;
    out->target_layer0 = clampi(18, 0, nl - 1);
    out->target_layer1 = clampi(26, out->target_layer0 + 1, nl);
    out->shared_prefix = true;
    out->batched_steps = true;
    out->pai_gamma = 1.1;
    out->beta = 0.1;
    out->noise_step = 500;
    out->seed = 0;
    return AVL_OK;
}

/* ---- inputs ---- */

avl_status avl_decode_diffuse(float *x, int64_t n, int step, uint64_t seed)
{
    if (step < 0 || step > 999) return avl__err(AVL_E_ARG, "decode: noise step %d is outside [0, 999]", step);
    /* VCD's add_diffusion_noise: betas = sigmoid(linspace(-6, 6, 1000)) * (0.5e-2 - 1e-5) + 1e-5 */
    double abar = 1.0;
    for (int s = 0; s <= step; s++) {
        double t = -6.0 + 12.0 * (double)s / 999.0;
        double beta = 1.0 / (1.0 + exp(-t)) * (0.5e-2 - 1e-5) + 1e-5;
        abar *= 1.0 - beta;
    }
    double a = sqrt(abar), b = sqrt(1.0 - abar);
    avl__rng rng;
    avl__rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(a * x[i] + b * avl__rng_normal(&rng));
    return AVL_OK;
}

void avl_decode_input_clear(avl_decode_input *in)
{
    if (!in) return;
    if (in->owned) {
        avl__free((void *)in->embeds);
        avl_token_map_free((avl_token_map *)in->map);
        avl__free((void *)in->distorted_embeds);
        avl__free((void *)in->uncond_embeds);
        avl_token_map_free((avl_token_map *)in->uncond_map);
    }
    memset(in, 0, sizeof *in);
}

static avl_status prepare_vcd(const avl_model *m, const avl_thinker_inputs *in, const avl_decode_params *p,
                              avl_decode_input *out)
{
    const avl_config *cfg = avl_model_config(m);
    avl_thinker_inputs d = *in;
    float *feat = NULL, *pix = NULL, *emb = NULL;
    avl_token_map *map = NULL;
    avl_status rc = AVL_OK;
    if (in->input_features && in->media.n_audios > 0) {
        int64_t cnt = (int64_t)in->media.n_audios * cfg->audio.num_mel_bins * in->n_feature_frames;
        if (!(feat = avl__malloc((size_t)cnt * sizeof *feat))) {
            rc = avl__err(AVL_E_NOMEM, "decode: cannot allocate the distorted log-mel");
            goto done;
        }
        memcpy(feat, in->input_features, (size_t)cnt * sizeof *feat);
        /* audio gets its own stream so that adding a video does not change its noise */
        if ((rc = avl_decode_diffuse(feat, cnt, p->noise_step, p->seed ^ 0xa0d10ULL))) goto done;
        d.input_features = feat;
    }
    if (in->pixel_values_videos && in->media.n_videos > 0) {
        int64_t pd = cfg->vision.in_channels * cfg->vision.temporal_patch_size * cfg->vision.patch_size *
                     cfg->vision.patch_size,
                np = 0;
        for (int v = 0; v < in->media.n_videos; v++)
            np += in->media.video_grid_thw[v][0] * in->media.video_grid_thw[v][1] * in->media.video_grid_thw[v][2];
        if (!(pix = avl__malloc((size_t)(np * pd) * sizeof *pix))) {
            rc = avl__err(AVL_E_NOMEM, "decode: cannot allocate the distorted frames");
            goto done;
        }
        memcpy(pix, in->pixel_values_videos, (size_t)(np * pd) * sizeof *pix);
        if ((rc = avl_decode_diffuse(pix, np * pd, p->noise_step, p->seed))) goto done;
        d.pixel_values_videos = pix;
    }
    if ((rc = avl_thinker_embed(m, &d, &emb, &map, NULL))) goto done;
    out->distorted_embeds = emb;
    emb = NULL;
done:
    avl_token_map_free(map);
    avl__free(emb);
    avl__free(feat);
    avl__free(pix);
    return rc;
}

static avl_status prepare_pai(const avl_model *m, const avl_thinker_inputs *in, avl_decode_input *out)
{
    avl_seq_params sp = avl_model_seq_params(m);
    int32_t *ids = avl__malloc((size_t)(in->n > 0 ? in->n : 1) * sizeof *ids);
    if (!ids) return avl__err(AVL_E_NOMEM, "decode: cannot allocate the unconditional prompt");
    int64_t n = 0;
    for (int64_t i = 0; i < in->n; i++) {
        int32_t t = in->input_ids[i];
        if (t == sp.audio_token_id || t == sp.video_token_id || t == sp.image_token_id ||
            t == sp.vision_start_token_id || t == sp.vision_end_token_id || t == sp.audio_start_token_id ||
            t == sp.audio_end_token_id)
            continue;
        ids[n++] = t;
    }
    avl_thinker_inputs u = {.input_ids = ids, .n = n};
    float *emb = NULL;
    avl_token_map *map = NULL;
    avl_status rc = avl_thinker_embed(m, &u, &emb, &map, NULL);
    avl__free(ids);
    if (rc) return avl__err_wrap(rc, "decode: the unconditional prompt");
    out->uncond_embeds = emb;
    out->uncond_map = map;
    return AVL_OK;
}

avl_status avl_decode_prepare(const avl_model *m, const avl_thinker_inputs *in, const avl_decode_params *p,
                              avl_decode_input *out)
{
    memset(out, 0, sizeof *out);
    out->owned = true;
    float *emb = NULL;
    avl_token_map *map = NULL;
    avl_status rc = avl_thinker_embed(m, in, &emb, &map, NULL);
    if (rc) return rc;
    out->embeds = emb;
    out->map = map;
    if (p->method == AVL_DECODE_VCD) rc = prepare_vcd(m, in, p, out);
    if (p->method == AVL_DECODE_PAI) rc = prepare_pai(m, in, out);
    if (rc) avl_decode_input_clear(out);
    return rc;
}

void avl_decode_result_clear(avl_decode_result *r)
{
    if (!r) return;
    avl__free(r->ids);
    avl__free(r->gamma);
    avl__free(r->uni);
    avl__free(r->scores);
    memset(r, 0, sizeof *r);
}
