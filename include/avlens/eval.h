/* avlens/eval.h: object-hallucination scores of captions: CHAIR_s, CHAIR_i, precision, recall
 * and F1 (paper Sec. 6.3 and App. A.2.2; the CHAIR of Rohrbach et al. 2018 as the PAI/OPERA-era
 * papers run it, see docs/eval.md).
 *
 *   avl_vocab *v;  avl_truth *t;  avl_chair *c;
 *   avl_vocab_new(&v);
 *   avl_vocab_add_file(v, "data/vocab/vggsound.txt");      // repeatable; later files extend
 *   avl_truth_new(&t);
 *   avl_truth_add_file(t, v, "vggsounder.csv");             // JSON {id: [objects]} or CSV
 *   avl_chair_new(v, t, &c);
 *   avl_chair_add_jsonl(c, "captions.jsonl");               // {"id","caption","method","dataset"}
 *   avl_chair_scores s;  avl_chair_group(c, 0, &s);         // s.chair_s, s.chair_i, s.f1 (x100)
 *   avl_chair_write_csv(c, "out/chair.csv");
 *   avl_chair_free(c);  avl_truth_free(t);  avl_vocab_free(v);
 *
 * Words are normalised the same way in captions, ground truth and vocabulary files: ASCII
 * lower-case, tokens of letters/digits (hyphens and other punctuation split, a possessive 's is
 * dropped), every token singularised by avl_eval_singular (a rule-based English lemmatiser).
 * Object mentions are found by longest match over the vocabulary's phrases, so "teddy bear" is one
 * mention of "teddy bear" and never also one of "bear".
 */
#ifndef AVLENS_EVAL_H
#define AVLENS_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avlens/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the lemmatiser ---- */

/* Writes the singular of one lower-case word into out (cap bytes, NUL-terminated): irregular
 * plurals from a table (people -> person, mice -> mouse, wolves -> wolf, ...), invariant words
 * (species, series, bus, glass, ...) unchanged, then the -ies / -ves / -es / -s rules (see
 * docs/eval.md). Words that are not plurals come back unchanged. Returns the length written, or
 * (size_t)-1 when cap is too small (out is then ""). */
size_t avl_eval_singular(const char *word, char *out, size_t cap);

/* ---- vocabulary ---- */

/* A set of object classes, each a canonical word with synonyms (phrases of one or more words),
 * plus the "animal" mark (for "baby X" / "adult X") and ignored phrases. */
typedef struct avl_vocab avl_vocab;

avl_status avl_vocab_new(avl_vocab **out);
void avl_vocab_free(avl_vocab *v);

/* Adds the lines of a vocabulary file (format in docs/eval.md):
 *   # comment
 *   canonical, synonym, multi word synonym, ...
 *   @animal dog, cat, ...          (classes that "baby X" / "adult X" reduce to)
 *   @ignore hot water, guinea pig  (phrases that mention no object and hide their words)
 * A synonym written "=phrase" is label-only: it maps ground-truth labels ("=dog barking",
 * "=swimming") but is not looked for in captions. A line that names an existing class adds synonyms to it. Within one file a phrase given to two
 * classes is an error; a later file may move a phrase to another class (its line wins).
 * Errors name the file and line; the lines before a bad one stay added. After AVL_E_NOMEM the
 * vocabulary may be inconsistent: free it. */
avl_status avl_vocab_add_file(avl_vocab *v, const char *path);
/* Same, from memory; label names the text in messages. */
avl_status avl_vocab_add_text(avl_vocab *v, const char *text, size_t len, const char *label);

int64_t avl_vocab_class_count(const avl_vocab *v);
/* Canonical name of class i (NULL when out of range). */
const char *avl_vocab_class_name(const avl_vocab *v, int64_t i);
/* Class of a phrase after normalisation ("Puppies" -> dog; label-only phrases too), or -1 when
 * it is not a vocabulary phrase or is an ignored one. */
int64_t avl_vocab_lookup(const avl_vocab *v, const char *phrase);

/* One object mention found in a text. */
typedef struct {
    int64_t cls;      /* class index */
    size_t start, end; /* byte span in the text */
} avl_mention;

/* Finds the object mentions of a caption, in order, with repetition (label-only phrases are not
 * looked for). *out is an array the caller
 * frees with avl_mentions_free (NULL when *n == 0). */
avl_status avl_vocab_mentions(const avl_vocab *v, const char *text, avl_mention **out, int64_t *n);
void avl_mentions_free(avl_mention *m);

/* ---- ground truth ---- */

/* Per clip id, a set of classes. Ids are normalised: a leading path and a media extension
 * (.mp4 .mkv .webm .avi .mov .wav .flac .mp3 .ogg .m4a .jpg .jpeg .png) are dropped, so
 * "video/abc_000010.mp4" and "abc_000010" are the same clip. */
typedef struct avl_truth avl_truth;

avl_status avl_truth_new(avl_truth **out);
void avl_truth_free(avl_truth *t);

/* Adds one object (any text: "alligator/crocodile", "dog barking", "Puppies") to a clip. The
 * text's mentions, label-only phrases included, give the classes; a text without any vocabulary phrase becomes a new class of
 * the vocabulary named by its normalised words (counted by avl_truth_added_classes). */
avl_status avl_truth_add(avl_truth *t, avl_vocab *v, const char *id, const char *object);

/* Reads a ground-truth file; the format is told by the first non-blank byte ('{' or '[': JSON,
 * else CSV):
 *   JSON  {"id": ["obj", ...] | "obj" | [{"label": "obj", "score": 0.9}, ...], ...}
 *         or, for one clip per file (detector output), a bare list; the id is then the file name
 *         without its extension
 *   CSV   rows id,object (an optional header "id,object"), or VGGSounder's vggsounder.csv
 *         (header video_id,label,...), or VGGSound's test.csv (no header; <id>.mp4,<label>);
 *         fields may be double-quoted.
 * Objects are added as by avl_truth_add. Detector files are read by the same function: their
 * labels are merged (set union) into the clip's ground truth. Errors name the file and line. */
avl_status avl_truth_add_file(avl_truth *t, avl_vocab *v, const char *path);
/* Same, from memory; label names the text in messages and gives the id of a bare list. */
avl_status avl_truth_add_text(avl_truth *t, avl_vocab *v, const char *text, size_t len, const char *label);

int64_t avl_truth_clip_count(const avl_truth *t);
/* Classes added to the vocabulary because a ground-truth object named no vocabulary phrase. */
int64_t avl_truth_added_classes(const avl_truth *t);
/* The classes of a clip (sorted ascending; a view valid until the next add); false when the clip
 * is unknown. */
bool avl_truth_get(const avl_truth *t, const char *id, const int64_t **cls, int64_t *n);

/* ---- scoring ---- */

typedef struct avl_chair avl_chair;

/* Corpus totals of one (method, data set) group and the scores, in percent (x100). */
typedef struct {
    const char *method, *dataset;
    int64_t n_captions;
    int64_t n_captions_hallucinated; /* captions with at least one hallucinated mention */
    int64_t n_mentions;              /* object mentions, with repetition */
    int64_t n_mentions_hallucinated;
    int64_t n_generated;             /* sum over captions of |set(generated)| */
    int64_t n_generated_correct;     /* sum of |set(generated) & truth| */
    int64_t n_truth;                 /* sum of |truth| */
    int64_t n_truth_covered;         /* sum of |truth & set(generated)| */
    double chair_s;   /* 100 * n_captions_hallucinated / n_captions (0 when no captions) */
    double chair_i;   /* 100 * n_mentions_hallucinated / n_mentions (0 when no mentions) */
    double precision; /* 100 * n_generated_correct / n_generated (0 when nothing generated) */
    double recall;    /* 100 * n_truth_covered / n_truth (0 when no truth) */
    double f1;        /* 2PR/(P+R) (0 when P+R == 0) */
} avl_chair_scores;

/* One mention in a caption. */
typedef struct {
    const char *text;   /* the words as written in the caption */
    const char *object; /* canonical class name */
    bool hallucinated;  /* the class is not in the clip's ground truth */
} avl_chair_mention;

/* Details of one scored caption; pointers stay valid until avl_chair_free. */
typedef struct {
    const char *id, *method, *dataset, *caption;
    int64_t n_mentions;
    const avl_chair_mention *mentions;
    int64_t n_generated, n_truth, n_hallucinated, n_covered;
    const char *const *generated;    /* set of classes mentioned, in order of first mention */
    const char *const *truth;        /* ground-truth classes */
    const char *const *hallucinated; /* generated \ truth */
    const char *const *covered;      /* truth & generated */
} avl_chair_caption;

/* The vocabulary and truth must outlive the evaluator and not change while it is used. */
avl_status avl_chair_new(const avl_vocab *v, const avl_truth *t, avl_chair **out);
void avl_chair_free(avl_chair *c);

/* Method and data set of the records of avl_chair_add_jsonl that name none (default "-"). */
avl_status avl_chair_set_defaults(avl_chair *c, const char *method, const char *dataset);

/* Scores one caption into the group (method, dataset); NULL method or dataset mean "-".
 * AVL_E_NOTFOUND when the clip has no ground truth. */
avl_status avl_chair_add(avl_chair *c, const char *id, const char *caption, const char *method,
                         const char *dataset);
/* Reads captions as JSONL, one object per line: {"id": str|int, "caption": str, "method": str?,
 * "dataset": str?, ...}; other keys are ignored (room for e.g. an ALOHa score), blank lines
 * skipped. Errors name file and line; records before the bad line stay scored. */
avl_status avl_chair_add_jsonl(avl_chair *c, const char *path);
avl_status avl_chair_add_jsonl_text(avl_chair *c, const char *text, size_t len, const char *label);

/* Groups in order of first appearance. */
int64_t avl_chair_group_count(const avl_chair *c);
avl_status avl_chair_group(const avl_chair *c, int64_t i, avl_chair_scores *out);
int64_t avl_chair_caption_count(const avl_chair *c);
avl_status avl_chair_get_caption(const avl_chair *c, int64_t i, avl_chair_caption *out);

/* Tab. 3 layout, one row per (method, data set): CSV with header
 * method,dataset,captions,chair_s,chair_i,precision,recall,f1,mentions,hallucinated_mentions;
 * Markdown the same as a table; details one JSON object per caption. */
avl_status avl_chair_write_csv(const avl_chair *c, const char *path);
avl_status avl_chair_write_markdown(const avl_chair *c, const char *path);
avl_status avl_chair_write_details(const avl_chair *c, const char *path);

#ifdef __cplusplus
}
#endif
#endif
