/* tools/avlens/cmd_dominance.c: `avlens dominance`: unimodal dominance (Sec. 3.1, Eqs. 1-2) over a
 * data set: for each sample the joint, audio-only and video-only runs on the manifest's
 * classification prompt, one "dominance" record per sample (docs/records.md), resumable and
 * shardable (the loop is cli_dataset.c's). */
#include <ctype.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_dataset.h"

static const char USAGE[] =
    "usage: avlens dominance --manifest FILE --model DIR --out DIR [--media-root DIR] [--shard i/n]\n"
    "                        [--retry-errors] [options]\n\n"
    "For each sample of the manifest runs its classification prompt three times: on the clip\n"
    "(joint), with the video frames zeroed (audio-only) and with the waveform zeroed (video-only),\n"
    "and writes one record per sample to OUT/dominance/: the three answers, the probability of\n"
    "each run's own answer word and the case (audio: av = a != v, video: av = v != a, else none).\n"
    "Samples already on file are skipped, so a killed run continues where it stopped; a sample\n"
    "that fails becomes an error record and the run goes on.\n\n" CLI_DS_OPTIONS_HELP;

/* the answer's first word, white space trimmed (a letter for a classification prompt) */
static void first_word(const char *text, char *out, size_t cap)
{
    while (*text && isspace((unsigned char)*text)) text++;
    size_t n = 0;
    while (text[n] && !isspace((unsigned char)text[n]) && n + 1 < cap) n++;
    memcpy(out, text, n);
    out[n] = 0;
}

static double own_prob(const avl_tokenizer *tok, const avl_gen_answer *a, const char *word)
{
    int32_t ids[2];
    if (!word[0] || avl_word_ids(tok, word, ids) != AVL_OK) return 0;
    return avl_word_prob(a->logits, a->n, a->V, ids, false);
}

static avl_status one_sample(void *user, const cli_ds *d, const avl_sample *s, char **json)
{
    (void)user;
    cli_inputs in;
    avl_status rc = cli_ds_sample_inputs(d, s, &in);
    if (rc) return rc;
    avl_gen_params gp = cli_ds_gen_params(d);
    avl_dominance_result r;
    memset(&r, 0, sizeof r);
    rc = avl_dominance_run(d->m, d->tok, &in.ti, &gp, d->fast_processor ? AVL_NORM_FAST : AVL_NORM_SLOW, &r);
    if (!rc) {
        json_t *o = cli_ds_record_new(d, s);
        if (s->label) {
            char l[2] = {s->label, 0};
            json_object_set_new(o, "label", json_string(l));
        }
        if (s->label_name) json_object_set_new(o, "label_name", json_string(s->label_name));
        const avl_gen_answer *runs[3] = {&r.av, &r.a, &r.v};
        static const char *const key[3] = {"av", "a", "v"};
        json_t *ans = json_object(), *probs = json_object();
        char w[3][64];
        for (int k = 0; k < 3; k++) {
            first_word(runs[k]->text ? runs[k]->text : "", w[k], sizeof w[k]);
            json_object_set_new(ans, key[k], json_string(w[k]));
            json_object_set_new(probs, key[k], json_real(own_prob(d->tok, runs[k], w[k])));
        }
        json_object_set_new(o, "answers", ans);
        json_object_set_new(o, "probs", probs);
        /* the case of the answer words as recorded (the library compares whole answers, which
         * may differ after the letter) */
        json_object_set_new(o, "case", json_string(avl_dominance_name(avl_dominance_classify(w[0], w[1], w[2]))));
        if (!(json[0] = cli_ds_record_dump(o))) rc = AVL_E_NOMEM;
    }
    avl_dominance_result_clear(&r);
    cli_inputs_free(&in);
    return rc;
}

int avl_cmd_dominance(int argc, char **argv)
{
    cli_ds d;
    cli_ds_init(&d, "dominance");
    static const struct option opts[] = {CLI_DS_LONG_OPTIONS, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (c == 'h') {
            fputs(USAGE, stdout);
            return 0;
        }
        int t = cli_ds_option(&d, c, optarg);
        if (t == 1) return cli_usage_error("dominance", "unknown option");
        if (t) return t;
    }
    if (optind < argc) return cli_usage_error("dominance", "unexpected argument '%s'", argv[optind]);
    int code = cli_ds_open(&d);
    if (!code) {
        static const char *const names[] = {"dominance"};
        code = cli_ds_run(&d, names, 1, one_sample, NULL);
    }
    cli_ds_close(&d);
    return code;
}
