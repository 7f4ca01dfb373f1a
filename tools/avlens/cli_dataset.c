/* tools/avlens/cli_dataset.c: the common part of the data-set commands (contract in
 * cli_dataset.h). */
#include "cli_dataset.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/internal.h"
#include "cli.h"

void cli_ds_init(cli_ds *d, const char *cmd)
{
    memset(d, 0, sizeof *d);
    d->cmd = cmd;
    d->backend = "auto";
    d->shard_count = 1;
    d->max_new_tokens = 8; /* a letter answer and its end token fit easily */
}

int cli_ds_option(cli_ds *d, int c, const char *arg)
{
    switch (c) {
    case CLI_DS_MANIFEST: d->manifest = arg; return 0;
    case CLI_DS_MODEL: d->model_dir = arg; return 0;
    case CLI_DS_OUT: d->out = arg; return 0;
    case CLI_DS_MEDIA_ROOT: d->media_root = arg; return 0;
    case CLI_DS_MODEL_NAME: d->model_name = arg; return 0;
    case CLI_DS_BACKEND: d->backend = arg; return 0;
    case CLI_DS_RETRY: d->retry_errors = true; return 0;
    case CLI_DS_FAST: d->fast_processor = true; return 0;
    case CLI_DS_SHARD:
        if (avl_shard_parse(arg, &d->shard_index, &d->shard_count) != AVL_OK)
            return cli_usage_error(d->cmd, "--shard wants i/n with 0 <= i < n, got '%s'", arg);
        return 0;
    case CLI_DS_THREADS: return cli_parse_int(d->cmd, "--threads", arg, &d->threads) ? 0 : 2;
    case CLI_DS_LIMIT: return cli_parse_int(d->cmd, "--limit", arg, &d->limit) ? 0 : 2;
    case CLI_DS_MAX_NEW:
        if (!cli_parse_int(d->cmd, "--max-new-tokens", arg, &d->max_new_tokens)) return 2;
        if (d->max_new_tokens < 1) return cli_usage_error(d->cmd, "--max-new-tokens must be at least 1");
        return 0;
    default: return 1;
    }
}

int cli_ds_open(cli_ds *d)
{
    if (!d->manifest || !d->model_dir || !d->out)
        return cli_usage_error(d->cmd, "--manifest, --model and --out are required");
    avl_dataset_params dp = avl_dataset_default_params();
    dp.media_root = d->media_root;
    avl_status rc = avl_dataset_load(d->manifest, &dp, &d->ds);
    if (rc) return cli_fail(d->cmd, rc);
    cli_report_dataset_errors(d->cmd, d->ds);
    avl_model_params mp = avl_model_default_params();
    mp.backend = d->backend;
    mp.threads = (int)d->threads;
    if ((rc = avl_model_load(d->model_dir, &mp, &d->m))) return cli_fail(d->cmd, rc);
    if ((rc = avl_tokenizer_load(d->model_dir, &d->tok))) return cli_fail(d->cmd, rc);
    static const char *const stops[] = {"<|im_end|>", "<|endoftext|>"};
    for (int i = 0; i < 2; i++)
        if (avl_tokenizer_token_id(d->tok, stops[i], &d->stop_ids[d->n_stop]) == AVL_OK) d->n_stop++;
    if (!d->model_name) {
        /* the folder's last component, without trailing slashes */
        size_t n = strlen(d->model_dir);
        while (n > 1 && d->model_dir[n - 1] == '/') n--;
        size_t b = n;
        while (b > 0 && d->model_dir[b - 1] != '/') b--;
        if (!(d->name_buf = malloc(n - b + 1))) return cli_fail(d->cmd, AVL_E_NOMEM);
        memcpy(d->name_buf, d->model_dir + b, n - b);
        d->name_buf[n - b] = 0;
        d->model_name = d->name_buf;
    }
    return 0;
}

void cli_ds_close(cli_ds *d)
{
    avl_tokenizer_free(d->tok);
    avl_model_free(d->m);
    avl_dataset_free(d->ds);
    free(d->name_buf);
    d->tok = NULL;
    d->m = NULL;
    d->ds = NULL;
    d->name_buf = NULL;
}

avl_gen_params cli_ds_gen_params(const cli_ds *d)
{
    avl_gen_params gp = avl_gen_default_params();
    gp.max_new_tokens = d->max_new_tokens;
    gp.stop_ids = d->stop_ids;
    gp.n_stop = d->n_stop;
    return gp;
}

avl_status cli_ds_sample_inputs(const cli_ds *d, const avl_sample *s, cli_inputs *out)
{
    memset(out, 0, sizeof *out);
    avl_features_params fp = avl_features_default_params();
    fp.norm = d->fast_processor ? AVL_NORM_FAST : AVL_NORM_SLOW;
    avl_status rc;
    if (s->video_path) {
        /* a video file carries its own audio unless the sample names another file */
        fp.use_audio_in_video = true;
        rc = avl_features_from_video(s->video_path, s->audio_path, &fp, &out->f);
    } else if (s->n_frames > 0) {
        fp.use_audio_in_video = s->audio_path != NULL;
        rc = avl_features_from_frames(s->frames, s->n_frames, s->audio_path, &fp, &out->f);
    } else if (s->audio_path) {
        rc = avl_features_from_audio(s->audio_path, &fp, &out->f);
    } else {
        rc = avl__err(AVL_E_ARG, "%s: sample %s has no media", d->manifest, s->id);
    }
    if (!rc) {
        avl_seq_params sp = avl_model_seq_params(d->m);
        avl_prompt_params pp = avl_prompt_default_params();
        pp.system = s->system_prompt;
        pp.text = s->question;
        pp.use_audio_in_video = fp.use_audio_in_video;
        rc = avl_prompt_build(d->tok, &sp, out->f, &pp, &out->pr);
    }
    if (rc) {
        cli_inputs_free(out);
        return rc;
    }
    out->ti = out->pr->inputs;
    return AVL_OK;
}

void *cli_ds_record_new(const cli_ds *d, const avl_sample *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(s->id));
    json_object_set_new(o, "model", json_string(d->model_name));
    return o;
}

char *cli_ds_record_dump(void *obj)
{
    char *t = json_dumps((json_t *)obj, JSON_COMPACT);
    json_decref((json_t *)obj);
    return t;
}

#define CLI_DS_MAX_ANALYSES 8

int cli_ds_run(cli_ds *d, const char *const *analyses, int n_analyses, cli_ds_sample_fn fn, void *user)
{
    avl_records *rec[CLI_DS_MAX_ANALYSES] = {0};
    char *json[CLI_DS_MAX_ANALYSES] = {0};
    avl_progress *pg = NULL;
    int exit_code = 1;
    avl_status rc = AVL_OK;
    long long n_done = 0, n_skipped = 0, n_failed = 0, n_selected = 0;
    if (n_analyses < 1 || n_analyses > CLI_DS_MAX_ANALYSES) return cli_fail(d->cmd, AVL_E_ARG);
    for (int a = 0; a < n_analyses; a++) {
        avl_records_params rp = avl_records_default_params();
        rp.dir = d->out;
        rp.analysis = analyses[a];
        rp.shard_index = d->shard_index;
        rp.shard_count = d->shard_count;
        rp.retry_errors = d->retry_errors;
        if ((rc = avl_records_open(&rp, &rec[a]))) goto fail;
    }
    int64_t n = avl_dataset_count(d->ds);
    for (int64_t i = 0; i < n; i++) {
        const avl_sample *s = avl_dataset_at(d->ds, i);
        if (avl_shard_selects(s->id, d->shard_index, d->shard_count) && (!d->select || d->select(d->select_user, s)))
            n_selected++;
    }
    avl_progress_params pp = avl_progress_default_params();
    pp.label = d->cmd;
    pp.total = n_selected;
    pp.tty = isatty(2);
    pp.fn = cli_progress_show;
    if ((rc = avl_progress_new(&pp, &pg))) goto fail;
    for (int64_t i = 0; i < n; i++) {
        const avl_sample *s = avl_dataset_at(d->ds, i);
        if (!avl_shard_selects(s->id, d->shard_index, d->shard_count)) continue;
        if (d->select && !d->select(d->select_user, s)) continue;
        bool done = true;
        for (int a = 0; a < n_analyses; a++) done = done && avl_records_done(rec[a], s->id);
        if (done) {
            n_skipped++;
            avl_progress_skip(pg, 1);
            continue;
        }
        if (d->limit > 0 && n_done + n_failed >= d->limit) break;
        avl_status src = fn(user, d, s, json);
        if (src == AVL_OK) {
            for (int a = 0; a < n_analyses && !rc; a++) rc = avl_records_append(rec[a], json[a]);
            n_done++;
        } else {
            /* the detail names the file; the run goes on with the next sample */
            char *msg = strdup(avl_last_error());
            for (int a = 0; a < n_analyses && !rc; a++)
                rc = avl_records_append_error(rec[a], s->id, src, msg ? msg : avl_status_str(src));
            free(msg);
            n_failed++;
        }
        for (int a = 0; a < n_analyses; a++) {
            free(json[a]);
            json[a] = NULL;
        }
        if (rc) goto fail;
        avl_progress_step(pg, src != AVL_OK);
    }
    avl_progress_finish(pg);
    fprintf(stderr, "avlens %s: %lld done, %lld skipped, %lld failed\n", d->cmd, n_done, n_skipped, n_failed);
    exit_code = 0;
    goto done;
fail:
    exit_code = cli_fail(d->cmd, rc);
done:
    avl_progress_free(pg);
    for (int a = 0; a < n_analyses; a++) avl_records_close(rec[a]);
    return exit_code;
}

bool cli_parse_dims(const char *s, avl_sink_params *p)
{
    p->n_dims = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || p->n_dims == AVL_SINK_MAX_DIMS) return false;
        p->dims[p->n_dims++] = v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return false;
    }
    return p->n_dims > 0;
}
