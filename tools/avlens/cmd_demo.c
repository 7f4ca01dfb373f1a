/* tools/avlens/cmd_demo.c: `avlens demo`: the README's first command. Makes a tiny Qwen2.5-Omni
 * checkpoint in the exact Hugging Face layout, loads and verifies it the way a real 7B
 * checkpoint is loaded, tokenizes the paper's captioning prompt with the checkpoint's own
 * tokenizer and chat template, and writes what it found to DIR/report.html and DIR/summary.json.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char *USAGE =
    "usage: avlens demo [--out DIR] [--seed N]\n\n"
    "Makes a tiny Qwen2.5-Omni checkpoint (DIR/model), loads and verifies it, tokenizes the paper's\n"
    "captioning prompt with its chat template, and writes DIR/report.html and DIR/summary.json.\n\n"
    "  --out DIR    where everything goes (default: demo)\n"
    "  --seed N     seed of the random weights (default: 0)\n";

static const char *PROMPT_JSON =
    "[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"You are a helpful assistant.\"}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"video\",\"video\":\"clip.mp4\"},"
    "{\"type\":\"text\",\"text\":\"Describe what you see and hear in a single sentence.\"}]}]";

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

int avl_cmd_demo(int argc, char **argv)
{
    const char *out = "demo";
    long long seed = 0;
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'}, {"seed", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's': if (!cli_parse_int("demo", "--seed", optarg, &seed)) return 2; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: return cli_usage_error("demo", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "avlens demo: %s: cannot create: %s\n", out, strerror(errno));
        return 1;
    }
    char model_dir[4096], path[4200];
    snprintf(model_dir, sizeof model_dir, "%s/model", out);

    avl_status rc;
    avl_checkpoint *ck = NULL;
    avl_tokenizer *tok = NULL;
    char *chat = NULL;
    size_t chat_len = 0;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    int exit_code = 1;

    printf("[1/3] writing a tiny Qwen2.5-Omni checkpoint to %s\n", model_dir);
    avl_mkmodel_params mp = avl_mkmodel_default_params();
    mp.seed = (uint64_t)seed;
    if ((rc = avl_mkmodel_write(&mp, model_dir))) goto fail;

    printf("[2/3] loading and verifying it as a real checkpoint is loaded\n");
    if ((rc = avl_checkpoint_open(model_dir, &ck))) goto fail;
    const avl_config *cfg = avl_checkpoint_config(ck);
    int64_t counts[AVL_PART_COUNT];
    int64_t total = avl_config_param_counts(cfg, counts);
    printf("      %s: LLM %lld layers x %lld wide (%lld heads, %lld KV heads), audio tower %lld layers, "
           "vision tower %lld blocks; %lld parameters\n",
           cfg->model_type, (long long)cfg->text.num_hidden_layers, (long long)cfg->text.hidden_size,
           (long long)cfg->text.num_attention_heads, (long long)cfg->text.num_key_value_heads,
           (long long)cfg->audio.encoder_layers, (long long)cfg->vision.depth, (long long)total);

    printf("[3/3] tokenizing the paper's captioning prompt with the checkpoint's chat template\n");
    if ((rc = avl_tokenizer_load(model_dir, &tok))) goto fail;
    avl_chat_params cp = avl_chat_default_params();
    if ((rc = avl_chat_render(PROMPT_JSON, strlen(PROMPT_JSON), &cp, &chat, &chat_len))) goto fail;
    if ((rc = avl_tokenizer_encode(tok, chat, chat_len, &ids, &n_ids))) goto fail;
    printf("      %lld tokens\n", (long long)n_ids);

    snprintf(path, sizeof path, "%s/summary.json", out);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "avlens demo: %s: cannot write: %s\n", path, strerror(errno));
        goto done;
    }
    fprintf(f, "{\"model\": \"%s\", \"parameters\": %lld, \"parts\": {", model_dir, (long long)total);
    for (int p = 0; p < AVL_PART_COUNT; p++)
        fprintf(f, "%s\"%s\": %lld", p ? ", " : "", avl_part_name((avl_part)p), (long long)counts[p]);
    fprintf(f, "}, \"prompt_tokens\": [");
    for (int64_t i = 0; i < n_ids; i++) fprintf(f, "%s%d", i ? ", " : "", ids[i]);
    fprintf(f, "]}\n");
    fclose(f);

    snprintf(path, sizeof path, "%s/report.html", out);
    f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "avlens demo: %s: cannot write: %s\n", path, strerror(errno));
        goto done;
    }
    fprintf(f, "<!doctype html><html><head><meta charset=\"utf-8\"><title>avlens demo</title>"
               "<style>body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}"
               "th{background:#f3f3f3}pre{background:#f7f7f7;padding:1em;white-space:pre-wrap}"
               ".tok{display:inline-block;border:1px solid #bbb;margin:1px;padding:0 3px;font-family:monospace}"
               ".sp{background:#ffe9b3}</style></head><body>\n");
    fprintf(f, "<h1>avlens demo</h1><p>A tiny checkpoint in the Hugging Face layout of Qwen2.5-Omni, written "
               "by <code>avlens mkmodel</code> (seed %lld) to <code>", seed);
    html_escape(f, model_dir);
    fprintf(f, "</code>, loaded and verified tensor by tensor.</p>\n<h2>Model</h2><table><tr><th>part</th><th>parameters</th></tr>\n");
    for (int p = 0; p < AVL_PART_COUNT; p++)
        fprintf(f, "<tr><td style=\"text-align:left\">%s</td><td>%lld</td></tr>\n", avl_part_name((avl_part)p),
                (long long)counts[p]);
    fprintf(f, "<tr><th style=\"text-align:left\">total</th><th>%lld</th></tr></table>\n", (long long)total);
    fprintf(f, "<p>LLM: %lld layers, hidden %lld, %lld heads / %lld KV heads, head_dim %lld, mrope_section "
               "[%lld, %lld, %lld]. Audio tower: %lld layers, d_model %lld. Vision tower: %lld blocks, hidden %lld.</p>\n",
            (long long)cfg->text.num_hidden_layers, (long long)cfg->text.hidden_size,
            (long long)cfg->text.num_attention_heads, (long long)cfg->text.num_key_value_heads,
            (long long)cfg->text.head_dim, (long long)cfg->text.mrope_section[0], (long long)cfg->text.mrope_section[1],
            (long long)cfg->text.mrope_section[2], (long long)cfg->audio.encoder_layers, (long long)cfg->audio.d_model,
            (long long)cfg->vision.depth, (long long)cfg->vision.hidden_size);
    fprintf(f, "<h2>The captioning prompt</h2><pre>");
    html_escape(f, chat);
    fprintf(f, "</pre><p>%lld tokens (special tokens shaded):</p><p>", (long long)n_ids);
    for (int64_t i = 0; i < n_ids; i++) {
        const char *t = avl_tokenizer_id_to_token(tok, ids[i]);
        fprintf(f, "<span class=\"tok%s\" title=\"%d\">", avl_tokenizer_is_added(tok, ids[i]) ? " sp" : "", ids[i]);
        html_escape(f, t ? t : "?");
        fprintf(f, "</span>");
    }
    fprintf(f, "</p></body></html>\n");
    fclose(f);
    printf("wrote %s/report.html and %s/summary.json\n", out, out);
    exit_code = 0;
    goto done;
fail:
    exit_code = cli_fail("demo", rc);
done:
    avl_tokenizer_free_mem(ids);
    avl_tokenizer_free_mem(chat);
    avl_tokenizer_free(tok);
    avl_checkpoint_close(ck);
    return exit_code;
}
