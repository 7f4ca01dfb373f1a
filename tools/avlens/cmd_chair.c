/* tools/avlens/cmd_chair.c: `avlens chair`: object-hallucination scores (CHAIR_s, CHAIR_i,
 * precision, recall, F1) of captions against per-clip ground truth; docs/eval.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#ifndef AVL_DATA_DIR
#define AVL_DATA_DIR "data"
#endif

static const char *const default_vocabs[] = {"audioset", "coco", "vggsound"};

static void help(void)
{
    printf("usage: avlens chair --captions C.jsonl --truth T.json|T.csv [options]\n\n"
           "Scores object hallucination in captions: CHAIR_s, CHAIR_i, precision, recall and F1 (in percent,\n"
           "micro over the corpus), one row per (method, data set) as in the paper's Tab. 3.\n\n"
           "  --captions FILE    JSONL, one {\"id\", \"caption\", \"method\"?, \"dataset\"?} per line (repeatable)\n"
           "  --truth FILE       ground truth: JSON {id: [objects]} or CSV id,object (also vggsounder.csv and\n"
           "                     VGGSound's test.csv) (repeatable; merged)\n"
           "  --detections FILE  detector output merged into the ground truth: JSON {id: [labels or\n"
           "                     {\"label\": ...}]} or one clip's bare list (id = file name) (repeatable)\n"
           "  --vocab FILE|NAME  vocabulary file (\"canonical, synonym, ...\" per line); a NAME without '/' that is\n"
           "                     not a file means <vocab dir>/NAME.txt (repeatable; later files win). Default:\n"
           "                     audioset, coco, vggsound from the vocab dir\n"
           "  --vocab-dir DIR    where named vocabularies live (default $AVL_VOCAB_DIR or %s/vocab)\n"
           "  --method NAME      method of records that name none (default \"-\")\n"
           "  --dataset NAME     data set of records that name none (default \"-\")\n"
           "  --out DIR          write DIR/chair.csv, DIR/chair.md and DIR/chair_details.jsonl\n\n"
           "Words are lower-cased, tokenised and singularised; see docs/eval.md for the rules.\n",
           AVL_DATA_DIR);
}

typedef struct {
    const char **v;
    int n;
} list;

static bool push(list *l, const char *s)
{
    const char **g = realloc(l->v, (size_t)(l->n + 1) * sizeof *g);
    if (!g) return false;
    g[l->n++] = s;
    l->v = g;
    return true;
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static avl_status add_vocab(avl_vocab *v, const char *arg, const char *dir)
{
    if (is_file(arg) || strchr(arg, '/')) return avl_vocab_add_file(v, arg);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.txt", dir, arg);
    return avl_vocab_add_file(v, path);
}

static int mkdir_p(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return (mkdir(buf, 0777) != 0 && errno != EEXIST) ? -1 : 0;
}

int avl_cmd_chair(int argc, char **argv)
{
    const char *cmd = "chair";
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    list caps = {0}, truths = {0}, dets = {0}, vocabs = {0};
    const char *out = NULL, *method = NULL, *dataset = NULL;
    const char *vdir = getenv("AVL_VOCAB_DIR");
    if (!vdir || !*vdir) vdir = AVL_DATA_DIR "/vocab";
    int rcode = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            rcode = cli_usage_error(cmd, "unknown or incomplete option '%s'", a);
            goto done;
        }
        const char *val = argv[++i];
        bool ok = true;
        if (!strcmp(a, "--captions")) ok = push(&caps, val);
        else if (!strcmp(a, "--truth")) ok = push(&truths, val);
        else if (!strcmp(a, "--detections")) ok = push(&dets, val);
        else if (!strcmp(a, "--vocab")) ok = push(&vocabs, val);
        else if (!strcmp(a, "--vocab-dir")) vdir = val;
        else if (!strcmp(a, "--out")) out = val;
        else if (!strcmp(a, "--method")) method = val;
        else if (!strcmp(a, "--dataset")) dataset = val;
        else {
            rcode = cli_usage_error(cmd, "unknown option '%s'", a);
            goto done;
        }
        if (!ok) {
            fprintf(stderr, "avlens chair: out of memory\n");
            rcode = 1;
            goto done;
        }
    }
    if (!caps.n || !truths.n) {
        rcode = cli_usage_error(cmd, "--captions and --truth are required");
        goto done;
    }

    avl_vocab *v = NULL;
    avl_truth *t = NULL;
    avl_chair *c = NULL;
    avl_status rc = avl_vocab_new(&v);
    if (!vocabs.n)
        for (size_t k = 0; !rc && k < sizeof default_vocabs / sizeof *default_vocabs; k++)
            rc = add_vocab(v, default_vocabs[k], vdir);
    for (int k = 0; !rc && k < vocabs.n; k++) rc = add_vocab(v, vocabs.v[k], vdir);
    if (!rc) rc = avl_truth_new(&t);
    for (int k = 0; !rc && k < truths.n; k++) rc = avl_truth_add_file(t, v, truths.v[k]);
    for (int k = 0; !rc && k < dets.n; k++) rc = avl_truth_add_file(t, v, dets.v[k]);
    if (!rc) rc = avl_chair_new(v, t, &c);
    if (!rc) rc = avl_chair_set_defaults(c, method, dataset);
    for (int k = 0; !rc && k < caps.n; k++) rc = avl_chair_add_jsonl(c, caps.v[k]);
    if (rc) {
        rcode = cli_fail(cmd, rc);
        goto free_all;
    }
    if (avl_truth_added_classes(t))
        fprintf(stderr, "avlens chair: note: %lld ground-truth object(s) named no vocabulary phrase and became classes of their own\n",
                (long long)avl_truth_added_classes(t));

    printf("%-16s %-20s %8s %8s %8s %9s %8s %8s\n", "method", "dataset", "captions", "CHAIR_s", "CHAIR_i", "precision",
           "recall", "F1");
    for (int64_t g = 0; g < avl_chair_group_count(c); g++) {
        avl_chair_scores s;
        avl_chair_group(c, g, &s);
        printf("%-16s %-20s %8lld %8.1f %8.1f %9.1f %8.1f %8.1f\n", s.method, s.dataset, (long long)s.n_captions,
               s.chair_s, s.chair_i, s.precision, s.recall, s.f1);
    }
    if (out) {
        if (mkdir_p(out) != 0) {
            fprintf(stderr, "avlens chair: %s: cannot create folder: %s\n", out, strerror(errno));
            rcode = 1;
            goto free_all;
        }
        char p1[4096], p2[4096], p3[4096];
        snprintf(p1, sizeof p1, "%s/chair.csv", out);
        snprintf(p2, sizeof p2, "%s/chair.md", out);
        snprintf(p3, sizeof p3, "%s/chair_details.jsonl", out);
        rc = avl_chair_write_csv(c, p1);
        if (!rc) rc = avl_chair_write_markdown(c, p2);
        if (!rc) rc = avl_chair_write_details(c, p3);
        if (rc) rcode = cli_fail(cmd, rc);
    }
free_all:
    avl_chair_free(c);
    avl_truth_free(t);
    avl_vocab_free(v);
done:
    free(caps.v);
    free(truths.v);
    free(dets.v);
    free(vocabs.v);
    return rcode;
}
