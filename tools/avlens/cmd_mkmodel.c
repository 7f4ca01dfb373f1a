/* tools/avlens/cmd_mkmodel.c: `avlens mkmodel`: write a tiny Qwen2.5-Omni checkpoint folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(void)
{
    avl_mkmodel_params d = avl_mkmodel_default_params();
    printf("usage: avlens mkmodel --out DIR [options]\n\n"
           "Writes a tiny Qwen2.5-Omni checkpoint in the Hugging Face layout: config.json,\n"
           "model.safetensors (or shards + index) with every thinker tensor, seeded random weights,\n"
           "preprocessor_config.json and a byte-level BPE tokenizer in Qwen's formats.\n"
           "Same options -> byte-identical files.\n\n"
           "options (defaults in brackets):\n"
           "  --out DIR            folder to write (created if missing)\n"
           "  --seed N             random seed [%llu]\n"
           "  --hidden N           LLM hidden size [%lld]\n"
           "  --layers N           LLM layers [%lld]\n"
           "  --heads N            LLM attention heads [%lld]\n"
           "  --kv-heads N         LLM key/value heads [%lld]\n"
           "  --ffn N              LLM MLP width [%lld]\n"
           "  --vocab N            vocabulary rows (0: tokenizer size rounded up to 64) [%lld]\n"
           "  --merges N           BPE merges to learn [%lld]\n"
           "  --audio-layers N     audio encoder layers [%lld]\n"
           "  --audio-d N          audio encoder width [%lld]\n"
           "  --audio-heads N      audio encoder heads [%lld]\n"
           "  --audio-ffn N        audio encoder MLP width [%lld]\n"
           "  --mel-bins N         mel bins [%lld]\n"
           "  --vision-depth N     vision blocks [%lld]\n"
           "  --vision-hidden N    vision width [%lld]\n"
           "  --vision-heads N     vision heads [%lld]\n"
           "  --vision-ffn N       vision MLP width [%lld]\n"
           "  --fullatt LIST       full-attention vision blocks, e.g. 1,3 (default: every other from 1)\n"
           "  --dtype T            bf16 | f16 | f32 [bf16]\n"
           "  --shards N           write N shards + model.safetensors.index.json (0: one file) [0]\n"
           "  --full               full-model config (thinker_config + talker/token2wav) [default]\n"
           "  --thinker-only       bare thinker config, tensor names without 'thinker.'\n"
           "  --tie                tie lm_head to embed_tokens (no lm_head.weight)\n"
           "  --planted            the planted-mechanism model of avlens demo (docs/demo.md): a clip's\n"
           "                       answer is A when its loudness wins, B when its brightness wins, through\n"
           "                       planted sinks in dimensions %lld (video) and %lld (audio); implies\n"
           "                       --layers 4 --dtype f32 unless given after it\n"
           "  --audio-gain X       planted: weight of the loudness evidence [1]\n",
           (unsigned long long)d.seed, (long long)d.hidden, (long long)d.layers, (long long)d.heads,
           (long long)d.kv_heads, (long long)d.ffn, (long long)d.vocab, (long long)d.merges,
           (long long)d.audio_layers, (long long)d.audio_d, (long long)d.audio_heads, (long long)d.audio_ffn,
           (long long)d.mel_bins, (long long)d.vision_depth, (long long)d.vision_hidden,
           (long long)d.vision_heads, (long long)d.vision_ffn, (long long)avl_mkmodel_planted_sink_dim(true),
           (long long)avl_mkmodel_planted_sink_dim(false));
}

typedef struct {
    const char *flag;
    int64_t *dst;
} int_flag;

int avl_cmd_mkmodel(int argc, char **argv)
{
    const char *cmd = "mkmodel";
    if (cli_wants_help(argc, argv)) {
        usage();
        return 0;
    }
    avl_mkmodel_params p = avl_mkmodel_default_params();
    const char *out = NULL;
    int_flag ints[] = {
        {"--hidden", &p.hidden},       {"--layers", &p.layers},           {"--heads", &p.heads},
        {"--kv-heads", &p.kv_heads},   {"--ffn", &p.ffn},                 {"--vocab", &p.vocab},
        {"--merges", &p.merges},       {"--audio-layers", &p.audio_layers}, {"--audio-d", &p.audio_d},
        {"--audio-heads", &p.audio_heads}, {"--audio-ffn", &p.audio_ffn}, {"--mel-bins", &p.mel_bins},
        {"--vision-depth", &p.vision_depth}, {"--vision-hidden", &p.vision_hidden},
        {"--vision-heads", &p.vision_heads}, {"--vision-ffn", &p.vision_ffn},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool takes = strcmp(a, "--full") && strcmp(a, "--thinker-only") && strcmp(a, "--tie") && strcmp(a, "--planted");
        if (a[0] != '-' || a[1] != '-') return cli_usage_error(cmd, "unexpected argument '%s'", a);
        bool known = !takes || !strcmp(a, "--out") || !strcmp(a, "--seed") || !strcmp(a, "--shards") ||
                     !strcmp(a, "--dtype") || !strcmp(a, "--fullatt") || !strcmp(a, "--audio-gain");
        for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) known |= !strcmp(a, ints[k].flag);
        if (!known) return cli_usage_error(cmd, "unknown option '%s'", a);
        if (takes && i + 1 >= argc) return cli_usage_error(cmd, "%s needs a value", a);
        const char *v = takes ? argv[i + 1] : NULL;
        long long n;
        bool done = false;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0] && !done; k++)
            if (!strcmp(a, ints[k].flag)) {
                if (!cli_parse_int(cmd, a, v, &n)) return 2;
                *ints[k].dst = n;
                done = true;
            }
        if (done) {
            i++;
            continue;
        }
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--seed")) {
            if (!cli_parse_int(cmd, a, v, &n)) return 2;
            p.seed = (uint64_t)n;
        } else if (!strcmp(a, "--shards")) {
            if (!cli_parse_int(cmd, a, v, &n) ) return 2;
            if (n > 99999) return cli_usage_error(cmd, "--shards %lld is too many", n);
            p.shards = (int)n;
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "bf16")) p.dtype = AVL_DTYPE_BF16;
            else if (!strcmp(v, "f16")) p.dtype = AVL_DTYPE_F16;
            else if (!strcmp(v, "f32")) p.dtype = AVL_DTYPE_F32;
            else return cli_usage_error(cmd, "--dtype wants bf16, f16 or f32, got '%s'", v);
        } else if (!strcmp(a, "--fullatt")) {
            p.n_fullatt = 0;
            for (const char *s = v; *s;) {
                char *end;
                long long x = strtoll(s, &end, 10);
                if (end == s || x < 0 || (*end && *end != ',') || p.n_fullatt >= AVL_CONFIG_MAX_FULLATT)
                    return cli_usage_error(cmd, "--fullatt wants block numbers like 1,3, got '%s'", v);
                p.fullatt[p.n_fullatt++] = x;
                s = *end ? end + 1 : end;
            }
        } else if (!strcmp(a, "--full")) p.thinker_only = false;
        else if (!strcmp(a, "--thinker-only")) p.thinker_only = true;
        else if (!strcmp(a, "--tie")) p.tie_word_embeddings = true;
        else if (!strcmp(a, "--planted")) {
            p.planted = true;
            p.layers = 4;
            p.dtype = AVL_DTYPE_F32;
        } else if (!strcmp(a, "--audio-gain")) {
            if (!cli_parse_positive(v, &p.planted_audio_gain))
                return cli_usage_error(cmd, "--audio-gain wants a number > 0, got '%s'", v);
        }
        if (takes) i++;
    }
    if (!out) return cli_usage_error(cmd, "--out DIR is required");
    avl_status rc = avl_mkmodel_write(&p, out);
    if (rc) return cli_fail(cmd, rc);
    printf("wrote %s\n", out);
    return 0;
}
