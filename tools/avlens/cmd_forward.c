/* tools/avlens/cmd_forward.c: `avlens forward`: one forward pass on the Hugging Face
 * processor's tensors, writing what transformers would return, so that any reference can be
 * compared with avlens tensor by tensor.
 *
 * IN tensors (any sensible subset): input_ids (1, L) or (L); attention_mask (all ones: padding
 * is not supported); input_features (n_audios, n_mels, T) with feature_attention_mask
 * (n_audios, T); pixel_values_videos (N, D) with video_grid_thw (n_videos, 3) and
 * video_second_per_grid (n_videos); pixel_values (N, D) with image_grid_thw (n_images, 3).
 * The inputs are read and checked by avl_inputs_load (include/avlens/model.h).
 * OUT tensors: logits (1, L, V) fp32; position_ids (3, 1, L) I64; rope_deltas (1, 1) I64 (what
 * transformers keeps for generation: max position + 1 - L); with --hidden
 * hidden_states.N (1, L, H) for N = 0..n_layers (HF output_hidden_states: N < n_layers the input
 * of layer N, n_layers the final norm's output); with --attn LAYER attn.LAYER (L, L), the
 * attention probabilities of that layer averaged over heads; audio_embeds / video_embeds /
 * image_embeds (rows, H) when those encoders ran.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *USAGE =
    "usage: avlens forward --model DIR --inputs IN.safetensors --out OUT.safetensors\n"
    "                      [--hidden] [--attn LAYER] [--use-audio-in-video] [--backend NAME] [--threads N]\n\n"
    "Runs the thinker once on tensors named as the Hugging Face processor names them and writes\n"
    "logits, position_ids and (on request) every layer's input hidden state and one layer's\n"
    "head-averaged attention, named as transformers returns them.\n\n"
    "  --model DIR            a Qwen2.5-Omni checkpoint folder (config.json + safetensors)\n"
    "  --inputs FILE          input_ids, attention_mask, input_features, feature_attention_mask,\n"
    "                         pixel_values_videos, video_grid_thw, video_second_per_grid,\n"
    "                         pixel_values, image_grid_thw (any subset that makes sense)\n"
    "  --out FILE             where to write the outputs (.safetensors)\n"
    "  --hidden               also write hidden_states.0 .. hidden_states.<n_layers>\n"
    "  --attn LAYER           also write attn.LAYER: (L, L) attention probabilities, head mean\n"
    "  --use-audio-in-video   the audio belongs to the video (interleaved 2-second chunks)\n"
    "  --backend NAME         auto (default), ref, onednn, openblas\n"
    "  --threads N            worker threads (default: all cores)\n";

typedef struct {
    const avl_model *m;
    int64_t L, H, nh;
    int n_layers;
    float *hidden;   /* (n_layers + 1, L, H) or NULL */
    int attn_layer;  /* -1: none */
    float *attn;     /* (nh, L, L): per head, averaged at the end in head order */
} capture;

static bool cap_wants(void *u, int layer, avl_site s)
{
    capture *c = u;
    return c->hidden && (s == AVL_SITE_RESID || s == AVL_SITE_FINAL);
    (void)layer;
}

static void cap_site(void *u, int layer, avl_site s, int64_t p0, int64_t n, int64_t dim, float *x)
{
    capture *c = u;
    (void)s;
    memcpy(c->hidden + ((int64_t)layer * c->L + p0) * dim, x, (size_t)(n * dim) * sizeof(float));
}

static bool cap_wants_attn(void *u, int layer)
{
    capture *c = u;
    return layer == c->attn_layer;
}

static void cap_attn(void *u, int layer, int64_t head, int64_t q0, int64_t nq, int64_t nk, float *probs,
                     const float *scores)
{
    capture *c = u;
    (void)layer;
    (void)scores;
    for (int64_t i = 0; i < nq; i++)
        memcpy(c->attn + (head * c->L + q0 + i) * c->L, probs + i * nk, (size_t)nk * sizeof(float));
}

int avl_cmd_forward(int argc, char **argv)
{
    const char *model = NULL, *inputs = NULL, *outp = NULL, *backend = "auto";
    bool hidden = false, aiv = false;
    long long attn_layer = -1, threads = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"inputs", required_argument, 0, 'i'},
        {"out", required_argument, 0, 'o'},   {"hidden", no_argument, 0, 'H'},
        {"attn", required_argument, 0, 'a'},  {"use-audio-in-video", no_argument, 0, 'u'},
        {"backend", required_argument, 0, 'b'}, {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'i': inputs = optarg; break;
        case 'o': outp = optarg; break;
        case 'H': hidden = true; break;
        case 'u': aiv = true; break;
        case 'b': backend = optarg; break;
        case 'a': if (!cli_parse_int("forward", "--attn", optarg, &attn_layer)) return 2; break;
        case 't': if (!cli_parse_int("forward", "--threads", optarg, &threads)) return 2; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: return cli_usage_error("forward", "unknown option");
        }
    }
    if (!model || !inputs || !outp) return cli_usage_error("forward", "--model, --inputs and --out are required");

    avl_model_params mp = avl_model_default_params();
    mp.backend = backend;
    mp.threads = (int)threads;
    avl_model *m = NULL;
    avl_inputs *in = NULL;
    avl_st_writer *w = NULL;
    avl_token_map *map = NULL;
    avl_run *run = NULL;
    avl_encoder_outputs enc = {0};
    float *embeds = NULL, *logits = NULL;
    capture cap = {0};
    int exit_code = 1;
    avl_status rc;

    if ((rc = avl_model_load(model, &mp, &m))) goto fail;
    const avl_config *cfg = avl_model_config(m);
    if ((rc = avl_inputs_load(inputs, cfg, aiv, &in))) goto fail;
    const avl_thinker_inputs *ti = avl_inputs_get(in);

    if ((rc = avl_thinker_embed(m, ti, &embeds, &map, &enc))) goto fail;
    int64_t L = ti->n, H = cfg->text.hidden_size, V = cfg->text.vocab_size;
    cap.m = m;
    cap.L = L;
    cap.H = H;
    cap.nh = cfg->text.num_attention_heads;
    cap.n_layers = (int)cfg->text.num_hidden_layers;
    cap.attn_layer = (int)attn_layer;
    if (attn_layer >= cap.n_layers) {
        fprintf(stderr, "avlens forward: --attn %lld: the model has layers 0..%d\n", attn_layer, cap.n_layers - 1);
        goto done;
    }
    if (hidden && !(cap.hidden = malloc((size_t)((cap.n_layers + 1) * L * H) * sizeof(float)))) { rc = AVL_E_NOMEM; goto fail; }
    if (attn_layer >= 0 && !(cap.attn = calloc((size_t)(cap.nh * L * L), sizeof(float)))) { rc = AVL_E_NOMEM; goto fail; }
    avl_hooks hk = {.wants = cap_wants, .at_site = cap_site, .wants_attn = cap_wants_attn, .attn = cap_attn, .user = &cap};
    if (!(logits = malloc((size_t)(L * V) * sizeof(float)))) { rc = AVL_E_NOMEM; goto fail; }
    if ((rc = avl_run_new(m, L > 0 ? L : 1, &run))) goto fail;
    if ((rc = avl_run_forward(run, embeds, map->pos, L, L, &hk, logits, L))) goto fail;

    if ((rc = avl_st_writer_new(&w))) goto fail;
    int64_t sh3[3] = {1, L, V};
    if ((rc = avl_st_writer_add(w, "logits", AVL_DTYPE_F32, 3, sh3, logits))) goto fail;
    int64_t shp[3] = {3, 1, L};
    if ((rc = avl_st_writer_add(w, "position_ids", AVL_DTYPE_I64, 3, shp, map->pos))) goto fail;
    int64_t shd[2] = {1, 1};
    if ((rc = avl_st_writer_add(w, "rope_deltas", AVL_DTYPE_I64, 2, shd, &map->rope_delta))) goto fail;
    if (hidden) {
        for (int l = 0; l <= cap.n_layers; l++) {
            char name[64];
            snprintf(name, sizeof name, "hidden_states.%d", l);
            int64_t sh[3] = {1, L, H};
            if ((rc = avl_st_writer_add(w, name, AVL_DTYPE_F32, 3, sh, cap.hidden + (int64_t)l * L * H))) goto fail;
        }
    }
    if (attn_layer >= 0) {
        /* head mean in head order: deterministic whatever the thread count */
        for (int64_t h = 1; h < cap.nh; h++)
            for (int64_t i = 0; i < L * L; i++) cap.attn[i] += cap.attn[h * L * L + i];
        for (int64_t i = 0; i < L * L; i++) cap.attn[i] /= (float)cap.nh;
        char name[64];
        snprintf(name, sizeof name, "attn.%lld", attn_layer);
        int64_t sh[2] = {L, L};
        if ((rc = avl_st_writer_add(w, name, AVL_DTYPE_F32, 2, sh, cap.attn))) goto fail;
    }
    if (enc.n_audio) {
        int64_t sh[2] = {enc.n_audio, H};
        if ((rc = avl_st_writer_add(w, "audio_embeds", AVL_DTYPE_F32, 2, sh, enc.audio_embeds))) goto fail;
    }
    if (enc.n_video) {
        int64_t sh[2] = {enc.n_video, H};
        if ((rc = avl_st_writer_add(w, "video_embeds", AVL_DTYPE_F32, 2, sh, enc.video_embeds))) goto fail;
    }
    if (enc.n_image) {
        int64_t sh[2] = {enc.n_image, H};
        if ((rc = avl_st_writer_add(w, "image_embeds", AVL_DTYPE_F32, 2, sh, enc.image_embeds))) goto fail;
    }
    if ((rc = avl_st_writer_save(w, outp))) goto fail;
    exit_code = 0;
    goto done;
fail:
    exit_code = cli_fail("forward", rc);
done:
    avl_st_writer_free(w);
    avl_run_free(run);
    avl_token_map_free(map);
    avl_free(enc.audio_embeds);
    avl_free(enc.video_embeds);
    avl_free(enc.image_embeds);
    avl_free(embeds);
    free(logits);
    free(cap.hidden);
    free(cap.attn);
    avl_inputs_free(in);
    avl_model_free(m);
    return exit_code;
}
