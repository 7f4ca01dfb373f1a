/* tests/support/planted_sinks.h: the planted-sinks tiny model shared by the planted tests
 * (test_sinks_mds.c builds its checks on it; test_decode.c runs the decoding methods on it).
 * Header-only on purpose: each test is its own executable with its own fixture F. Define
 * PLANTED_SINKS_DIR (the scratch folder name) before including it. See test_sinks_mds.c for what
 * is planted and why. */
#ifndef AVL_PLANTED_SINKS_H
#define AVL_PLANTED_SINKS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avl_test.h"
#include "base/internal.h"

#ifndef PLANTED_SINKS_DIR
#error "define PLANTED_SINKS_DIR before including planted_sinks.h"
#endif

enum { HID = 128, NL = 4, NH = 4, NKV = 2, HD = 32, D0 = 10, D1 = 70, QA = 20, QV = 21, KA = 22, KV = 23, MK = 30 };
static const float G = 3.0f;

typedef struct {
    avl_model *m;
    avl_token_map *map;
    int32_t *ids;
    int64_t L;
    float *embeds;     /* (L, HID) */
    int64_t sv1, sv2, sa1, sa2, marker;
    char dir[512];
} fixture;

static fixture F;

static void edit_tensor(const char *name, float *w, const int64_t *shape)
{
    int l;
    char kind[64];
    if (sscanf(name, "model.layers.%d.self_attn.%63[^.]", &l, kind) == 2) {
        bool wgt = strstr(name, ".weight") != NULL;
        bool q = strcmp(kind, "q_proj") == 0, k = strcmp(kind, "k_proj") == 0;
        if (!q && !k) return;
        int64_t heads = q ? NH : NKV;
        for (int64_t h = 0; h < heads; h++) {
            for (int which = 0; which < 2; which++) {
                int64_t row = h * HD + (which ? HD - 2 : HD - 1);
                int col = q ? (which ? QV : QA) : (which ? KV : KA);
                if (wgt) {
                    for (int64_t c = 0; c < shape[1]; c++) w[row * shape[1] + c] = 0.0f;
                    w[row * shape[1] + col] = G;
                } else {
                    w[row] = 0.0f;
                }
            }
        }
        return;
    }
    if (sscanf(name, "model.layers.%d.mlp.%63[^.]", &l, kind) == 2 && l == 1) {
        int64_t n = shape[0] * shape[1];
        for (int64_t i = 0; i < n; i++) w[i] = 0.0f;
        if (strcmp(kind, "down_proj") == 0) {
            w[D0 * shape[1] + 0] = 1.0f;
            w[D1 * shape[1] + 0] = 1.0f;
        } else {
            w[0 * shape[1] + MK] = 1.0f; /* gate and up: row 0 reads M */
        }
    }
}

static void write_model(const char *dir)
{
    avl_mkmodel_params p = avl_mkmodel_default_params();
    p.seed = 11;
    p.hidden = HID;
    p.layers = NL;
    p.heads = NH;
    p.kv_heads = NKV;
    p.ffn = 64;
    p.dtype = AVL_DTYPE_F32;
    p.thinker_only = true;
    assert_int_equal(avl_mkmodel_write(&p, dir), AVL_OK);
    char path[600], tmp[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s/edited.tmp", dir);
    avl_st_set *s;
    assert_int_equal(avl_st_open_dir(path, &s), AVL_OK);
    avl_st_writer *w;
    assert_int_equal(avl_st_writer_new(&w), AVL_OK);
    for (int64_t i = 0; i < avl_st_count(s); i++) {
        avl_tensor_view tv;
        assert_int_equal(avl_st_at(s, i, &tv), AVL_OK);
        if (tv.dtype != AVL_DTYPE_F32) {
            assert_int_equal(avl_st_writer_add(w, tv.name, tv.dtype, tv.ndim, tv.shape, tv.data), AVL_OK);
            continue;
        }
        float *x = malloc((size_t)tv.numel * sizeof *x + 4);
        memcpy(x, tv.data, (size_t)tv.numel * sizeof *x);
        edit_tensor(tv.name, x, tv.shape);
        assert_int_equal(avl_st_writer_add(w, tv.name, tv.dtype, tv.ndim, tv.shape, x), AVL_OK);
        free(x);
    }
    assert_int_equal(avl_st_writer_save(w, tmp), AVL_OK);
    avl_st_writer_free(w);
    avl_st_close(s);
    assert_int_equal(rename(tmp, path), 0);
}

/* The sequence: 3 text tokens, <|vision_bos|><|VIDEO|><|vision_eos|> with audio in video
 * (video grid 4 x 4 x 4 patches at 1 s per grid: 2 chunks of 2 x 4 merged tokens; 400 mel
 * frames: 100 audio tokens), 3 text tokens. */
static void build_inputs(void)
{
    avl_seq_params sp = avl_model_seq_params(F.m);
    int32_t chat[9] = {40, 41, 42, sp.vision_start_token_id, sp.video_token_id, sp.vision_end_token_id, 43, 44, 45};
    avl_media_shape ms = {0};
    ms.n_videos = 1;
    ms.video_grid_thw[0][0] = 4;
    ms.video_grid_thw[0][1] = 4;
    ms.video_grid_thw[0][2] = 4;
    ms.video_second_per_grid[0] = 1.0;
    ms.n_audios = 1;
    ms.audio_feature_len[0] = 400;
    assert_int_equal(avl_seq_expand(&sp, chat, 9, &ms, true, &F.ids, &F.L), AVL_OK);
    assert_int_equal(avl_seq_positions(&sp, F.ids, F.L, &ms, true, &F.map), AVL_OK);
    F.embeds = malloc((size_t)(F.L * HID) * sizeof(float));
    assert_int_equal(avl_run_embed_tokens(F.m, F.ids, F.L, F.embeds), AVL_OK);
    int64_t nv = 0, na = 0;
    F.marker = F.L - 2;
    for (int64_t i = 0; i < F.L; i++) {
        float *e = F.embeds + i * HID;
        for (int j = 0; j < HID; j++) e[j] *= 50.0f; /* N(0, 0.02) -> unit size */
        e[QA] = e[QV] = e[KA] = e[KV] = e[MK] = 0.0f;
        int kind = F.map->tok[i].kind;
        if (kind == AVL_TOK_AUDIO) e[QA] = 20.0f;
        if (kind == AVL_TOK_VIDEO) e[QV] = 20.0f;
        if (kind == AVL_TOK_VIDEO && nv < 2) {
            *(nv == 0 ? &F.sv1 : &F.sv2) = i;
            e[nv == 0 ? KA : KV] = 20.0f;
        }
        if (kind == AVL_TOK_AUDIO && na < 2) {
            *(na == 0 ? &F.sa1 : &F.sa2) = i;
            e[na == 0 ? KV : KA] = 20.0f;
        }
        if ((kind == AVL_TOK_VIDEO && nv < 2) || (kind == AVL_TOK_AUDIO && na < 2)) e[D0] = e[D1] = 100.0f;
        if (kind == AVL_TOK_VIDEO) nv++;
        if (kind == AVL_TOK_AUDIO) na++;
        if (i == F.marker) e[MK] = 30.0f;
    }
    assert_int_equal(F.map->tok[F.marker].kind, AVL_TOK_TEXT);
    assert_true(F.sv1 < F.sv2 && F.sv2 < F.sa1 && F.sa1 < F.sa2);
}

static int setup(void **state)
{
    (void)state;
    snprintf(F.dir, sizeof F.dir, "%s", avl_test_dir(PLANTED_SINKS_DIR));
    write_model(F.dir);
    avl_model_params mp = avl_model_default_params();
    if (avl_model_load(F.dir, &mp, &F.m) != AVL_OK) {
        fprintf(stderr, "%s\n", avl_last_error());
        return -1;
    }
    build_inputs();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    avl_model_free(F.m);
    avl_token_map_free(F.map);
    avl_free(F.ids);
    free(F.embeds);
    return 0;
}

/* One prefill with hooks; logits of every position into a new buffer. */
static float *forward(const avl_hooks *hk)
{
    int64_t V = avl_model_config(F.m)->text.vocab_size;
    float *logits = malloc((size_t)(F.L * V) * sizeof(float));
    avl_run *r;
    assert_int_equal(avl_run_new(F.m, F.L, &r), AVL_OK);
    assert_int_equal(avl_run_forward(r, F.embeds, F.map->pos, F.L, F.L, hk, logits, F.L), AVL_OK);
    avl_run_free(r);
    return logits;
}

#endif
