/* tools/avlens/cmd_inspect.c: `avlens inspect DIR`: what a checkpoint holds, and whether its
 * thinker tensors match its config. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(void)
{
    printf("usage: avlens inspect DIR [--json] [--backend]\n"
           "       avlens inspect --backend\n\n"
           "Reads DIR/config.json and the safetensors (model.safetensors or the index and shards),\n"
           "prints the sizes of each component, parameter counts (audio tower, vision, LLM,\n"
           "lm_head), dtypes, bytes and shards, and checks every thinker tensor against the config.\n"
           "A problem is reported on one line and the exit status is 1.\n\n"
           "  --json      print one JSON object instead of text\n"
           "  --backend   also say which matrix-product backend and instruction set this machine\n"
           "              gets (the run-time choice of `auto`: oneDNN where it has bf16, else OpenBLAS)\n");
}

/* "8.93B", "635.0M", "12.3K", "17" */
static void human_count(char *b, size_t n, int64_t v)
{
    if (v >= 1000000000) snprintf(b, n, "%.2fB", (double)v / 1e9);
    else if (v >= 1000000) snprintf(b, n, "%.1fM", (double)v / 1e6);
    else if (v >= 1000) snprintf(b, n, "%.1fK", (double)v / 1e3);
    else snprintf(b, n, "%lld", (long long)v);
}

static void human_bytes(char *b, size_t n, double v)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    if (i == 0) snprintf(b, n, "%.0f B", v);
    else snprintf(b, n, "%.2f %s", v, u[i]);
}

typedef struct {
    int64_t thinker, other, shards;
    int64_t by_dtype[AVL_DTYPE_COUNT];
    int64_t params[AVL_PART_COUNT]; /* counted from the stored thinker tensors */
    double bytes;                   /* thinker tensors */
} stats;

static avl_part part_of(const char *name_after_prefix)
{
    if (!strncmp(name_after_prefix, "audio_tower.", 12)) return AVL_PART_AUDIO;
    if (!strncmp(name_after_prefix, "visual.", 7)) return AVL_PART_VISION;
    if (!strncmp(name_after_prefix, "lm_head.", 8)) return AVL_PART_LM_HEAD;
    return AVL_PART_LLM;
}

static avl_status gather(const avl_config *c, const avl_st_set *set, stats *s)
{
    memset(s, 0, sizeof *s);
    const char *files[4096];
    int nfiles = 0;
    size_t plen = strlen(c->tensor_prefix);
    for (int64_t i = 0; i < avl_st_count(set); i++) {
        avl_tensor_view v;
        avl_status rc = avl_st_at(set, i, &v);
        if (rc) return rc;
        bool seen = false;
        for (int f = 0; f < nfiles && !seen; f++) seen = !strcmp(files[f], v.file);
        if (!seen && nfiles < 4096) files[nfiles++] = v.file;
        bool thinker = plen ? !strncmp(v.name, c->tensor_prefix, plen)
                            : strncmp(v.name, "talker.", 7) && strncmp(v.name, "token2wav.", 10);
        if (!thinker) {
            s->other++;
            continue;
        }
        s->thinker++;
        if ((unsigned)v.dtype < AVL_DTYPE_COUNT) s->by_dtype[v.dtype]++;
        s->params[part_of(v.name + plen)] += v.numel;
        s->bytes += (double)v.nbytes;
    }
    s->shards = nfiles;
    return AVL_OK;
}

static int print_json(const char *dir, const avl_config *c, const stats *s)
{
    const avl_text_config *t = &c->text;
    const avl_audio_config *a = &c->audio;
    const avl_vision_config *v = &c->vision;
    json_t *fa = json_array();
    for (int i = 0; i < v->n_fullatt; i++) json_array_append_new(fa, json_integer(v->fullatt_block_indexes[i]));
    json_t *dt = json_object();
    for (int i = 0; i < AVL_DTYPE_COUNT; i++)
        if (s->by_dtype[i]) json_object_set_new(dt, avl_dtype_name((avl_dtype)i), json_integer(s->by_dtype[i]));
    int64_t total = 0;
    json_t *pp = json_object();
    for (int p = 0; p < AVL_PART_COUNT; p++) {
        json_object_set_new(pp, avl_part_name((avl_part)p), json_integer(s->params[p]));
        total += s->params[p];
    }
    json_object_set_new(pp, "total", json_integer(total));
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:[I,I,I], s:f, s:b}, "
        "s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}, "
        "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:I, s:I, s:I, s:f, s:s}",
        "checkpoint", dir, "model_type", c->model_type, "full_model", c->full_model, "llm", "hidden_size",
        (json_int_t)t->hidden_size, "num_hidden_layers", (json_int_t)t->num_hidden_layers, "num_attention_heads",
        (json_int_t)t->num_attention_heads, "num_key_value_heads", (json_int_t)t->num_key_value_heads, "head_dim",
        (json_int_t)t->head_dim, "intermediate_size", (json_int_t)t->intermediate_size, "vocab_size",
        (json_int_t)t->vocab_size, "max_position_embeddings", (json_int_t)t->max_position_embeddings,
        "mrope_section", (json_int_t)t->mrope_section[0], (json_int_t)t->mrope_section[1],
        (json_int_t)t->mrope_section[2], "rope_theta", t->rope_theta, "tie_word_embeddings",
        t->tie_word_embeddings, "audio", "d_model", (json_int_t)a->d_model, "encoder_layers",
        (json_int_t)a->encoder_layers, "encoder_attention_heads", (json_int_t)a->encoder_attention_heads,
        "encoder_ffn_dim", (json_int_t)a->encoder_ffn_dim, "num_mel_bins", (json_int_t)a->num_mel_bins,
        "n_window", (json_int_t)a->n_window, "vision", "hidden_size", (json_int_t)v->hidden_size, "depth",
        (json_int_t)v->depth, "num_heads", (json_int_t)v->num_heads, "intermediate_size",
        (json_int_t)v->intermediate_size, "patch_size", (json_int_t)v->patch_size, "temporal_patch_size",
        (json_int_t)v->temporal_patch_size, "spatial_merge_size", (json_int_t)v->spatial_merge_size,
        "window_size", (json_int_t)v->window_size, "fullatt_block_indexes", fa, "token_ids", "audio",
        (json_int_t)c->audio_token_id, "image", (json_int_t)c->image_token_id, "video",
        (json_int_t)c->video_token_id, "vision_start", (json_int_t)c->vision_start_token_id, "vision_end",
        (json_int_t)c->vision_end_token_id, "audio_start", (json_int_t)c->audio_start_token_id, "audio_end",
        (json_int_t)c->audio_end_token_id, "user", (json_int_t)c->user_token_id, "params", pp, "dtypes", dt,
        "thinker_tensors", (json_int_t)s->thinker, "other_tensors", (json_int_t)s->other, "shards",
        (json_int_t)s->shards, "thinker_bytes", s->bytes, "verify", "ok");
    if (!o) {
        fprintf(stderr, "avlens inspect: out of memory\n");
        return 1;
    }
    char *txt = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (!txt) return 1;
    puts(txt);
    free(txt);
    return 0;
}

static void print_text(const char *dir, const avl_config *c, const stats *s)
{
    const avl_text_config *t = &c->text;
    const avl_audio_config *a = &c->audio;
    const avl_vision_config *v = &c->vision;
    printf("checkpoint  %s\n", dir);
    printf("model_type  %s (%s)\n", c->model_type,
           c->full_model ? "full model; only thinker.* tensors are used" : "bare thinker");
    printf("llm         hidden %lld, %lld layers, %lld heads / %lld kv heads, head_dim %lld, ffn %lld, vocab %lld,\n"
           "            mrope_section [%lld,%lld,%lld], rope_theta %g, max positions %lld%s\n",
           (long long)t->hidden_size, (long long)t->num_hidden_layers, (long long)t->num_attention_heads,
           (long long)t->num_key_value_heads, (long long)t->head_dim, (long long)t->intermediate_size,
           (long long)t->vocab_size, (long long)t->mrope_section[0], (long long)t->mrope_section[1],
           (long long)t->mrope_section[2], t->rope_theta, (long long)t->max_position_embeddings,
           t->tie_word_embeddings ? ", tied lm_head" : "");
    printf("audio       d_model %lld, %lld layers, %lld heads, ffn %lld, %lld mel bins, n_window %lld, %s\n",
           (long long)a->d_model, (long long)a->encoder_layers, (long long)a->encoder_attention_heads,
           (long long)a->encoder_ffn_dim, (long long)a->num_mel_bins, (long long)a->n_window, a->activation_function);
    printf("vision      hidden %lld, depth %lld, %lld heads, ffn %lld, patch %lldx%lld x%lld frames, merge %lld, "
           "window %lld px, full attention",
           (long long)v->hidden_size, (long long)v->depth, (long long)v->num_heads, (long long)v->intermediate_size,
           (long long)v->patch_size, (long long)v->patch_size, (long long)v->temporal_patch_size,
           (long long)v->spatial_merge_size, (long long)v->window_size);
    for (int i = 0; i < v->n_fullatt; i++) printf("%s%lld", i ? "," : " ", (long long)v->fullatt_block_indexes[i]);
    printf("%s\n", v->n_fullatt ? "" : " none");
    printf("token ids   audio %lld, image %lld, video %lld, vision bos/eos %lld/%lld, audio bos/eos %lld/%lld, user %lld\n",
           (long long)c->audio_token_id, (long long)c->image_token_id, (long long)c->video_token_id,
           (long long)c->vision_start_token_id, (long long)c->vision_end_token_id,
           (long long)c->audio_start_token_id, (long long)c->audio_end_token_id, (long long)c->user_token_id);
    char b[5][32];
    int64_t total = 0;
    for (int p = 0; p < AVL_PART_COUNT; p++) {
        human_count(b[p], sizeof b[p], s->params[p]);
        total += s->params[p];
    }
    human_count(b[4], sizeof b[4], total);
    printf("params      audio %s, vision %s, llm %s, lm_head %s, total %s (%lld)\n", b[0], b[1], b[2], b[3], b[4],
           (long long)total);
    printf("tensors     %lld thinker tensors", (long long)s->thinker);
    if (s->other) printf(" (%lld others ignored)", (long long)s->other);
    printf(" in %lld file%s; dtypes", (long long)s->shards, s->shards == 1 ? "" : "s");
    for (int i = 0; i < AVL_DTYPE_COUNT; i++)
        if (s->by_dtype[i]) printf(" %s %lld", avl_dtype_name((avl_dtype)i), (long long)s->by_dtype[i]);
    human_bytes(b[0], sizeof b[0], s->bytes);
    printf("; %s\n", b[0]);
    printf("verify      ok\n");
}

int avl_cmd_inspect(int argc, char **argv)
{
    const char *cmd = "inspect";
    if (cli_wants_help(argc, argv)) {
        usage();
        return 0;
    }
    const char *dir = NULL;
    bool json = false, backend = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--backend")) backend = true;
        else if (argv[i][0] == '-') return cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        else if (dir) return cli_usage_error(cmd, "one checkpoint folder, please (got '%s' and '%s')", dir, argv[i]);
        else dir = argv[i];
    }
    if (backend) {
        char desc[512];
        avl_status brc = avl_backend_describe(NULL, desc, sizeof desc);
        if (brc) return cli_fail(cmd, brc);
        if (json && !dir) printf("{\"backend\": \"%s\"}\n", desc);
        else if (!json) printf("backend: %s\n", desc);
        if (!dir) return 0;
    }
    if (!dir) return cli_usage_error(cmd, "which checkpoint folder?");
    avl_checkpoint *ck;
    avl_status rc = avl_checkpoint_open(dir, &ck);
    if (rc) return cli_fail(cmd, rc);
    stats s;
    rc = gather(avl_checkpoint_config(ck), avl_checkpoint_tensors(ck), &s);
    if (rc) {
        avl_checkpoint_close(ck);
        return cli_fail(cmd, rc);
    }
    int code = 0;
    if (json) code = print_json(dir, avl_checkpoint_config(ck), &s);
    else print_text(dir, avl_checkpoint_config(ck), &s);
    avl_checkpoint_close(ck);
    return code;
}
