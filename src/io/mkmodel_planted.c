/* src/io/mkmodel_planted.c: the planted-mechanism checkpoint (avl_mkmodel_params.planted), the
 * model `avlens demo` and the CLI tests analyse. mkmodel's random weights are overwritten so that
 * the whole path, from a real clip through both encoders to the answer letter, computes a known
 * circuit; the analyses then have a right answer (docs/demo.md tells the story).
 *
 * Encoders (everything else in the towers outputs zero, so the residual passes straight through):
 *  - vision: patch_embed channel 0 = the patch's mean brightness (R+G+B in [0, 3]) minus the
 *    demo clips' dark background (20, 20, 28); block 0's MLP bias adds it back the processor's
 *    mean and puts a reference of 100 in channel 1, so ln_q (RMSNorm) stays linear in channel 0;
 *    the merger averages the 4 patches. Each video token leaves with VM = 1 (video marker) and
 *    FV = brightness above the background (0 on the background, about 0.9 on a red shape, -0.27
 *    for black frames: the zeroed video of the dominance and tracing runs).
 *  - audio: conv1 channel f = the mean log-mel of the frame (+1.5, so 0 for silence), scaled by
 *    100 in conv2; layer 0's fc2 bias puts a reference of -1000 in channel r, so ln_post is
 *    linear in channel f; f and r are the two slowest sine channels, which the sinusoidal
 *    positions leave nearly untouched. Each audio token leaves with AM = 1 and FA = loudness
 *    (0 for silence and for the zeroed waveform, about 1 for the demo's tone).
 * Decoder (every other weight zero; text tokens carry CONST = 1, <|im_start|> also ST = 1 and
 * the letters A, B, C also AN = 1):
 *  - layer 0, MLP: two neurons write a massive activation into the sink dimensions, S1 for video
 *    tokens brighter than THETA_V and S2 for audio tokens louder than THETA_A: the planted sinks
 *    are the object's tokens and the loud tokens.
 *  - layer 1, head 0: video sinks attend to audio sinks and copy their loudness into RA; head
 *    heads/kv_heads (the first of the second KV group): audio sinks attend to video sinks and copy
 *    their brightness into RV. Every other position attends to the <|im_start|> tokens (zero
 *    values): the cross-modal information lives in the sinks only.
 *  - layer 2, head 0: every position attends to the sinks and reads LA = mean of
 *    audio_gain * (FA + 2 RA) and LB = mean of FV + 2 RV.
 *  - lm_head: "A" = LA + 3 CONST, "B" = LB + 3 CONST, "C" = 2 CONST ("neither"), <|im_end|> =
 *    1000 AN (after a letter the answer ends); every other row zero.
 * So the answer is A (trust the ear) when the loudness evidence wins and B (trust the eye) when
 * the brightness evidence wins; zeroing one modality removes its evidence, which is what makes
 * a clip audio- or video-dominant. Restoring the video sinks (which carry RA) of an audio-
 * dominant clip brings A back; restoring random video tokens does not. The information is
 * read at layer 2, so only layer windows that include layer 2 restore it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "avlens/checkpoint.h"
#include "avlens/mkmodel.h"
#include "base/internal.h"
#include "io/mkmodel_internal.h"

/* residual-stream dimensions of the LLM (see the header) */
enum { D_ST = 0, D_CONST, D_AN, D_AM, D_VM, D_FA, D_FV, D_S1, D_S2, D_RA, D_RV, D_LA, D_LB, D_PLANTED };

#define THETA_V 0.35   /* brightness above the background that makes a video token a sink */
#define THETA_A 0.3    /* loudness that makes an audio token a sink */
#define SINK_K 4.0     /* steepness of the sink neurons' ramp */
#define SINK_DELTA 0.2 /* width of the ramp (in units of the marker) */
#define SINK_GAIN 0.15 /* down_proj of the sink neurons: a sink of about 5 against features of about 1 */
#define ROUTE_Q 2.0    /* layer 1: a sink's query for the other modality's sinks */
#define DUMP_Q 10.0    /* layer 1: everyone's query for <|im_start|> (beaten by ROUTE_Q at sinks) */
#define READ_Q 5.0     /* layer 2: everyone's query for the sinks */
#define REF_V 100.0    /* vision reference channel */
#define REF_A 1000.0   /* audio reference channel (negative) */
#define OFF_A 5.0      /* audio pass-through offset that keeps the GELUs linear */

int64_t avl_mkmodel_planted_sink_dim(bool video) { return video ? D_S1 : D_S2; }

avl_status avl__mkmodel_planted_check(const avl_mkmodel_params *p)
{
    int64_t hd = p->heads > 0 ? p->hidden / p->heads : 0;
    if (p->layers < 3) return avl__err(AVL_E_ARG, "mkmodel --planted: needs at least 3 layers, got %lld", (long long)p->layers);
    if (p->hidden < D_PLANTED + 1 || hd < 6)
        return avl__err(AVL_E_ARG, "mkmodel --planted: hidden %lld / %lld heads is too small (hidden >= %d, head_dim >= 6)",
                        (long long)p->hidden, (long long)p->heads, D_PLANTED + 1);
    if (p->kv_heads < 2 || p->heads % p->kv_heads)
        return avl__err(AVL_E_ARG, "mkmodel --planted: needs at least 2 KV heads dividing the heads");
    if (p->ffn < 4 || p->audio_d < 8 || p->vision_hidden < 2 || p->tie_word_embeddings)
        return avl__err(AVL_E_ARG, "mkmodel --planted: needs ffn >= 4, audio width >= 8, vision width >= 2, untied lm_head");
    return AVL_OK;
}

/* What ln_post makes of channel f at loudness 0 (the offset ln_post's bias removes), and the
 * slope per unit of loudness, for D channels with the positions of row 0 (sin 0, cos 1). */
static void audio_ln(int64_t D, double loud, double *y)
{
    int64_t half = D / 2, cf = half - 1, cr = half - 2;
    double sum = 0, sq = 0;
    for (int64_t c = 0; c < D; c++) {
        double v = c >= half ? 1.0 : 0.0;
        if (c == cf) v = 100.0 * loud + OFF_A;
        if (c == cr) v = -REF_A;
        sum += v;
        sq += v * v;
    }
    double mu = sum / (double)D, var = sq / (double)D - mu * mu;
    *y = (100.0 * loud + OFF_A - mu) / sqrt(var + 1e-5);
}

static void zero(float *x, int64_t n) { memset(x, 0, (size_t)n * sizeof *x); }

static bool is(const char *name, const char *want) { return !strcmp(name, want); }

/* name without "thinker."; layer in *l when the name is "<prefix><l>.<rest>" */
static bool layer_of(const char *name, const char *prefix, int *l, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n)) return false;
    char *end;
    long v = strtol(name + n, &end, 10);
    if (end == name + n || *end != '.') return false;
    *l = (int)v;
    *rest = end + 1;
    return true;
}

void avl__mkmodel_plant(const avl_mkmodel_params *p, const avl_config *c, const avl__tiny_tok *tok,
                        const avl_tensor_spec *s, float *x)
{
    const char *name = s->name;
    if (!strncmp(name, "thinker.", 8)) name += 8;
    const int64_t H = c->text.hidden_size, hd = c->text.head_dim, nh = c->text.num_attention_heads;
    const int64_t nkv = c->text.num_key_value_heads, g = nh / nkv;
    const int64_t qa = hd / 2 - 1, qb = hd - 1; /* the slowest rotary pair: RoPE leaves them alone */
    const int64_t D = c->audio.d_model, cf = D / 2 - 1, cr = D / 2 - 2, vh = c->vision.hidden_size;
    const int64_t V = s->shape[0];
    int l;
    const char *rest;
    (void)p;

    /* ---- audio tower ---- */
    if (!strncmp(name, "audio_tower.", 12)) {
        const char *a = name + 12;
        int64_t mels = c->audio.num_mel_bins;
        if (is(a, "conv1.weight")) { /* (D, mels, 3): the centre tap of channel f averages the bins */
            zero(x, s->numel);
            for (int64_t b = 0; b < mels; b++) x[(cf * mels + b) * 3 + 1] = (float)(1.0 / (double)mels);
        } else if (is(a, "conv1.bias")) {
            zero(x, s->numel);
            x[cf] = 1.5f + 5.0f; /* mean log-mel >= -1.5: the GELU sees >= 5 */
        } else if (is(a, "conv2.weight")) {
            zero(x, s->numel);
            x[(cf * D + cf) * 3 + 1] = 100.0f;
        } else if (is(a, "conv2.bias")) {
            zero(x, s->numel);
            x[cf] = (float)(-100.0 * 5.0 + OFF_A); /* gelu(100 * loudness + OFF_A) */
        } else if (layer_of(a, "layers.", &l, &rest)) {
            if (is(rest, "self_attn.out_proj.weight") || is(rest, "self_attn.out_proj.bias") || is(rest, "fc2.weight"))
                zero(x, s->numel);
            else if (is(rest, "fc2.bias")) {
                zero(x, s->numel);
                if (l == 0) x[cr] = (float)-REF_A;
            }
        } else if (is(a, "ln_post.weight")) {
            for (int64_t i = 0; i < s->numel; i++) x[i] = 1.0f;
        } else if (is(a, "ln_post.bias")) {
            double y0;
            audio_ln(D, 0.0, &y0);
            zero(x, s->numel);
            x[cf] = (float)-y0;
        } else if (is(a, "proj.weight")) { /* (H, D) */
            double y0, y1;
            audio_ln(D, 0.0, &y0);
            audio_ln(D, 1.0, &y1);
            zero(x, s->numel);
            x[D_FA * D + cf] = (float)(1.0 / (y1 - y0)); /* FA = loudness (1 at loudness 1) */
        } else if (is(a, "proj.bias")) {
            zero(x, s->numel);
            x[D_AM] = 1.0f;
        }
        return;
    }

    /* ---- vision tower ---- */
    if (!strncmp(name, "visual.", 7)) {
        const char *v = name + 7;
        static const double mean[3] = {0.48145466, 0.4578275, 0.40821073}, stdv[3] = {0.26862954, 0.26130258, 0.27577711};
        if (is(v, "patch_embed.proj.weight")) { /* (vh, 3, T, P, P) */
            zero(x, s->numel);
            int64_t per = s->numel / vh / 3;
            for (int ch = 0; ch < 3; ch++)
                for (int64_t i = 0; i < per; i++) x[ch * per + i] = (float)(stdv[ch] / (double)per);
        } else if (layer_of(v, "blocks.", &l, &rest)) {
            if (is(rest, "attn.proj.weight") || is(rest, "attn.proj.bias") || is(rest, "mlp.down_proj.weight"))
                zero(x, s->numel);
            else if (is(rest, "mlp.down_proj.bias")) {
                zero(x, s->numel);
                if (l == 0) {
                    x[0] = (float)(mean[0] + mean[1] + mean[2] - (20.0 + 20.0 + 28.0) / 255.0);
                    x[1] = (float)REF_V;
                }
            }
        } else if (is(v, "merger.ln_q.weight")) {
            for (int64_t i = 0; i < s->numel; i++) x[i] = 1.0f;
        } else if (is(v, "merger.mlp.0.weight")) { /* (4vh, 4vh) */
            int64_t n = s->shape[1], m = n / vh;
            zero(x, s->numel);
            for (int64_t j = 0; j < m; j++) x[0 * n + j * vh] = (float)(REF_V / sqrt((double)vh) / (double)m);
        } else if (is(v, "merger.mlp.0.bias")) {
            zero(x, s->numel);
            x[0] = x[1] = 10.0f; /* row 0: 10 + brightness, row 1: 10; the GELU is linear there */
        } else if (is(v, "merger.mlp.2.weight")) { /* (H, 4vh) */
            int64_t n = s->shape[1];
            zero(x, s->numel);
            x[D_FV * n + 0] = 1.0f;
            x[D_FV * n + 1] = -1.0f;
        } else if (is(v, "merger.mlp.2.bias")) {
            zero(x, s->numel);
            x[D_VM] = 1.0f;
        }
        return;
    }

    /* ---- LLM ---- */
    if (is(name, "model.embed_tokens.weight")) {
        int64_t ids[4] = {avl__tiny_tok_id(tok, "<|im_start|>"), avl__tiny_tok_id(tok, "A"), avl__tiny_tok_id(tok, "B"),
                          avl__tiny_tok_id(tok, "C")};
        for (int64_t r = 0; r < V; r++) {
            for (int d = 0; d < D_PLANTED; d++) x[r * H + d] = 0.0f;
            x[r * H + D_CONST] = 1.0f;
        }
        if (ids[0] >= 0) x[ids[0] * H + D_ST] = 1.0f;
        for (int k = 1; k < 4; k++)
            if (ids[k] >= 0) x[ids[k] * H + D_AN] = 1.0f;
        return;
    }
    if (is(name, "lm_head.weight")) {
        int64_t a = avl__tiny_tok_id(tok, "A"), b = avl__tiny_tok_id(tok, "B"), cc = avl__tiny_tok_id(tok, "C");
        int64_t end = avl__tiny_tok_id(tok, "<|im_end|>");
        zero(x, s->numel);
        if (a >= 0) x[a * H + D_LA] = 1.0f, x[a * H + D_CONST] = 1.0f;
        if (b >= 0) x[b * H + D_LB] = 1.0f, x[b * H + D_CONST] = 1.0f;
        if (cc >= 0) x[cc * H + D_CONST] = 2.0f;
        if (end >= 0) x[end * H + D_AN] = 1000.0f;
        return;
    }
    if (!layer_of(name, "model.layers.", &l, &rest)) return;
    if (strstr(rest, "layernorm")) return; /* RMSNorm weights stay 1 */
    zero(x, s->numel);
    const int64_t h2 = g; /* the first query head of KV group 1 */
    if (l == 0) {
        /* neurons 0/1 (video) and 2/3 (audio): silu(k (F - theta M)) - silu(k (F - (theta + delta) M)),
         * a ramp that saturates, so a sink's massive value hardly depends on how bright or loud it is */
        if (is(rest, "mlp.gate_proj.weight")) { /* (F, H) */
            x[0 * H + D_FV] = x[1 * H + D_FV] = (float)SINK_K;
            x[0 * H + D_VM] = (float)(-SINK_K * THETA_V), x[1 * H + D_VM] = (float)(-SINK_K * (THETA_V + SINK_DELTA));
            x[2 * H + D_FA] = x[3 * H + D_FA] = (float)SINK_K;
            x[2 * H + D_AM] = (float)(-SINK_K * THETA_A), x[3 * H + D_AM] = (float)(-SINK_K * (THETA_A + SINK_DELTA));
        } else if (is(rest, "mlp.up_proj.weight")) {
            x[0 * H + D_VM] = x[1 * H + D_VM] = 1.0f;
            x[2 * H + D_AM] = x[3 * H + D_AM] = 1.0f;
        } else if (is(rest, "mlp.down_proj.weight")) { /* (H, F) */
            int64_t F = s->shape[1];
            x[D_S1 * F + 0] = (float)SINK_GAIN, x[D_S1 * F + 1] = (float)-SINK_GAIN;
            x[D_S2 * F + 2] = (float)SINK_GAIN, x[D_S2 * F + 3] = (float)-SINK_GAIN;
        }
    } else if (l == 1) {
        if (is(rest, "self_attn.q_proj.weight")) { /* (nh*hd, H) */
            x[(0 * hd + qa) * H + D_S1] = (float)ROUTE_Q;
            x[(h2 * hd + qa) * H + D_S2] = (float)ROUTE_Q;
        } else if (is(rest, "self_attn.q_proj.bias")) {
            x[0 * hd + qb] = (float)DUMP_Q;
            x[h2 * hd + qb] = (float)DUMP_Q;
        } else if (is(rest, "self_attn.k_proj.weight")) { /* (nkv*hd, H) */
            x[(0 * hd + qa) * H + D_S2] = 1.0f; /* KV group 0 (head 0): keys of audio sinks */
            x[(0 * hd + qb) * H + D_ST] = 1.0f;
            x[(1 * hd + qa) * H + D_S1] = 1.0f; /* KV group 1 (head h2): keys of video sinks */
            x[(1 * hd + qb) * H + D_ST] = 1.0f;
        } else if (is(rest, "self_attn.v_proj.weight")) {
            x[(0 * hd + 0) * H + D_FA] = 1.0f;
            x[(1 * hd + 0) * H + D_FV] = 1.0f;
        } else if (is(rest, "self_attn.o_proj.weight")) { /* (H, nh*hd) */
            int64_t n = s->shape[1];
            x[D_RA * n + 0 * hd + 0] = 1.0f;
            x[D_RV * n + h2 * hd + 0] = 1.0f;
        }
    } else if (l == 2) {
        if (is(rest, "self_attn.q_proj.bias")) {
            x[0 * hd + qb] = (float)READ_Q;
        } else if (is(rest, "self_attn.k_proj.weight")) {
            x[(0 * hd + qb) * H + D_S1] = 1.0f;
            x[(0 * hd + qb) * H + D_S2] = 1.0f;
        } else if (is(rest, "self_attn.v_proj.weight")) {
            float ga = (float)(p->planted_audio_gain > 0 ? p->planted_audio_gain : 1.0);
            x[(0 * hd + 0) * H + D_FA] = ga, x[(0 * hd + 0) * H + D_RA] = 2.0f * ga;
            x[(0 * hd + 1) * H + D_FV] = 1.0f, x[(0 * hd + 1) * H + D_RV] = 2.0f;
        } else if (is(rest, "self_attn.o_proj.weight")) {
            int64_t n = s->shape[1];
            x[D_LA * n + 0] = 1.0f;
            x[D_LB * n + 1] = 1.0f;
        }
    }
}
