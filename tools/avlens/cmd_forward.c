/* tools/avlens/cmd_forward.c: `avlens forward`: one forward pass on the Hugging Face
 * processor's tensors, writing what transformers would return, so that any reference can be
 * compared with avlens tensor by tensor.
 *
 * IN tensors (any sensible subset): input_ids (1, L) or (L); attention_mask (all ones: padding
 * is not supported); input_features (n_audios, n_mels, T) with feature_attention_mask
 * (n_audios, T); pixel_values_videos (N, D) with video_grid_thw (n_videos, 3) and
 * video_second_per_grid (n_videos); pixel_values (N, D) with image_grid_thw (n_images, 3).
 * OUT tensors: logits (1, L, V) fp32; position_ids (3, 1, L) I64; with --hidden
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

/* Reads a tensor of any integer dtype into int64 values; on failure prints why, returns false. */
static bool read_ints(const avl_st_set *in, const char *name, int64_t **out, avl_tensor_view *tv)
{
    avl_status rc = avl_st_get(in, name, tv);
    if (rc) return cli_fail("forward", rc), false;
    int64_t *v = malloc((size_t)(tv->numel ? tv->numel : 1) * sizeof *v);
    if (!v) return cli_fail("forward", AVL_E_NOMEM), false;
    for (int64_t i = 0; i < tv->numel; i++) {
        const uint8_t *p = tv->data;
        switch (tv->dtype) {
        case AVL_DTYPE_I64: memcpy(&v[i], p + 8 * i, 8); break;
        case AVL_DTYPE_I32: { int32_t x; memcpy(&x, p + 4 * i, 4); v[i] = x; break; }
        case AVL_DTYPE_U8: v[i] = p[i]; break;
        default:
            free(v);
            fprintf(stderr, "avlens forward: %s: tensor '%s' is %s, wanted an integer type\n", tv->file, name,
                    avl_dtype_name(tv->dtype));
            return false;
        }
    }
    *out = v;
    return true;
}

static bool read_floats(const avl_st_set *in, const char *name, float **out, avl_tensor_view *tv)
{
    avl_status rc = avl_st_get(in, name, tv);
    if (rc) return cli_fail("forward", rc), false;
    float *v = malloc((size_t)(tv->numel ? tv->numel : 1) * sizeof *v);
    if (!v) return cli_fail("forward", AVL_E_NOMEM), false;
    if (avl_convert_to_f32(tv->dtype, tv->data, v, tv->numel)) {
        free(v);
        fprintf(stderr, "avlens forward: %s: tensor '%s' is %s, wanted a float type\n", tv->file, name,
                avl_dtype_name(tv->dtype));
        return false;
    }
    *out = v;
    return true;
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
    avl_st_set *in = NULL;
    avl_st_writer *w = NULL;
    avl_token_map *map = NULL;
    avl_run *run = NULL;
    avl_encoder_outputs enc = {0};
    float *embeds = NULL, *logits = NULL, *feat = NULL, *pixv = NULL, *pixi = NULL, *spg = NULL;
    int64_t *ids64 = NULL, *fmask = NULL, *vgrid = NULL, *igrid = NULL;
    int32_t *ids = NULL;
    capture cap = {0};
    int exit_code = 1;
    avl_status rc;
    avl_tensor_view tv;

    if ((rc = avl_model_load(model, &mp, &m))) goto fail;
    if ((rc = avl_st_open_dir(inputs, &in))) goto fail;
    const avl_config *cfg = avl_model_config(m);

    avl_thinker_inputs ti = {0};
    ti.use_audio_in_video = aiv;
    if (!read_ints(in, "input_ids", &ids64, &tv)) goto done;
    ti.n = tv.numel;
    ids = malloc((size_t)(ti.n ? ti.n : 1) * sizeof *ids);
    if (!ids) { rc = AVL_E_NOMEM; goto fail; }
    for (int64_t i = 0; i < ti.n; i++) ids[i] = (int32_t)ids64[i];
    ti.input_ids = ids;
    if (avl_st_has(in, "attention_mask")) {
        int64_t *am = NULL;
        if (!read_ints(in, "attention_mask", &am, &tv)) goto done;
        for (int64_t i = 0; i < tv.numel; i++)
            if (am[i] != 1) {
                free(am);
                fprintf(stderr, "avlens forward: %s: attention_mask has a 0 at %lld: padding is not supported\n",
                        inputs, (long long)i);
                goto done;
            }
        free(am);
    }
    if (avl_st_has(in, "input_features")) {
        if (!read_floats(in, "input_features", &feat, &tv)) goto done;
        if (tv.ndim != 3 || tv.shape[1] != cfg->audio.num_mel_bins) {
            fprintf(stderr, "avlens forward: %s: input_features must be (n_audios, %lld, T)\n", inputs,
                    (long long)cfg->audio.num_mel_bins);
            goto done;
        }
        ti.input_features = feat;
        ti.media.n_audios = (int)tv.shape[0];
        ti.n_feature_frames = tv.shape[2];
        if (ti.media.n_audios > AVL_MAX_MEDIA) { fprintf(stderr, "avlens forward: too many audios\n"); goto done; }
        if (avl_st_has(in, "feature_attention_mask")) {
            avl_tensor_view mv;
            if (!read_ints(in, "feature_attention_mask", &fmask, &mv)) goto done;
            if (mv.numel != tv.shape[0] * tv.shape[2]) {
                fprintf(stderr, "avlens forward: %s: feature_attention_mask does not match input_features\n", inputs);
                goto done;
            }
            for (int a = 0; a < ti.media.n_audios; a++) {
                int64_t s = 0;
                for (int64_t j = 0; j < tv.shape[2]; j++) s += fmask[a * tv.shape[2] + j] != 0;
                ti.media.audio_feature_len[a] = s;
            }
        } else {
            for (int a = 0; a < ti.media.n_audios; a++) ti.media.audio_feature_len[a] = tv.shape[2];
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *pix_name = pass ? "pixel_values" : "pixel_values_videos";
        const char *grid_name = pass ? "image_grid_thw" : "video_grid_thw";
        if (!avl_st_has(in, pix_name)) continue;
        float **pix = pass ? &pixi : &pixv;
        int64_t **grid = pass ? &igrid : &vgrid;
        if (!read_floats(in, pix_name, pix, &tv)) goto done;
        if (!read_ints(in, grid_name, grid, &tv)) goto done;
        int n = (int)(tv.numel / 3);
        if (tv.numel % 3 || n > AVL_MAX_MEDIA) {
            fprintf(stderr, "avlens forward: %s: %s must be (n, 3) with n <= %d\n", inputs, grid_name, AVL_MAX_MEDIA);
            goto done;
        }
        for (int v = 0; v < n; v++)
            for (int k = 0; k < 3; k++) {
                if (pass) ti.media.image_grid_thw[v][k] = (*grid)[3 * v + k];
                else ti.media.video_grid_thw[v][k] = (*grid)[3 * v + k];
            }
        if (pass) {
            ti.media.n_images = n;
            ti.pixel_values = pixi;
        } else {
            ti.media.n_videos = n;
            ti.pixel_values_videos = pixv;
            for (int v = 0; v < n; v++) ti.media.video_second_per_grid[v] = 1.0;
            if (avl_st_has(in, "video_second_per_grid")) {
                if (!read_floats(in, "video_second_per_grid", &spg, &tv)) goto done;
                if (tv.numel != n) {
                    fprintf(stderr, "avlens forward: %s: video_second_per_grid has %lld values for %d videos\n", inputs,
                            (long long)tv.numel, n);
                    goto done;
                }
                for (int v = 0; v < n; v++) ti.media.video_second_per_grid[v] = spg[v];
            }
        }
    }

    if ((rc = avl_thinker_embed(m, &ti, &embeds, &map, &enc))) goto fail;
    int64_t L = ti.n, H = cfg->text.hidden_size, V = cfg->text.vocab_size;
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
    free(feat);
    free(pixv);
    free(pixi);
    free(spg);
    free(ids64);
    free(ids);
    free(fmask);
    free(vgrid);
    free(igrid);
    avl_st_close(in);
    avl_model_free(m);
    return exit_code;
}
