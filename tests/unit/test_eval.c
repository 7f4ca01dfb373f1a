/* tests/unit/test_eval.c: CHAIR evaluation: the lemmatiser, vocabulary files and their errors,
 * ground-truth and caption readers, and scores computed by hand (in the comments) on small
 * hand-written corpora. */
#include "avl_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"

/* ---- lemmatiser ---- */

static void check_sing(const char *w, const char *want)
{
    char out[64];
    size_t n = avl_eval_singular(w, out, sizeof out);
    if (strcmp(out, want)) fail_msg("singular(%s) = '%s', want '%s'", w, out, want);
    assert_int_equal(n, strlen(want));
}

static void test_singular(void **state)
{
    (void)state;
    /* irregular table */
    check_sing("people", "person");
    check_sing("mice", "mouse");
    check_sing("geese", "goose");
    check_sing("children", "child");
    check_sing("feet", "foot");
    check_sing("teeth", "tooth");
    check_sing("women", "woman");
    check_sing("men", "man");
    check_sing("wolves", "wolf");
    check_sing("knives", "knife");
    check_sing("leaves", "leaf");
    check_sing("houses", "house");
    check_sing("buses", "bus");
    /* -men compounds, not omen */
    check_sing("firemen", "fireman");
    check_sing("policewomen", "policewoman");
    check_sing("omen", "omen");
    /* unchanged: invariant words, -ss, -us, -is, short words, verbs kept */
    check_sing("bus", "bus");
    check_sing("glass", "glass");
    check_sing("grass", "grass");
    check_sing("species", "species");
    check_sing("series", "series");
    check_sing("tennis", "tennis");
    check_sing("cactus", "cactus");
    check_sing("gas", "gas");
    check_sing("its", "its");
    check_sing("flies", "flies");
    check_sing("sheep", "sheep");
    check_sing("dog", "dog");
    /* -ies */
    check_sing("puppies", "puppy");
    check_sing("ponies", "pony");
    check_sing("movies", "movie");
    check_sing("collies", "collie");
    check_sing("pies", "pie");
    /* -ves without a table entry */
    check_sing("doves", "dove");
    check_sing("waves", "wave");
    /* -es */
    check_sing("glasses", "glass");
    check_sing("boxes", "box");
    check_sing("foxes", "fox");
    check_sing("buzzes", "buzz");
    check_sing("churches", "church");
    check_sing("dishes", "dish");
    check_sing("headaches", "headache");
    check_sing("potatoes", "potato");
    check_sing("shoes", "shoe");
    check_sing("canoes", "canoe");
    check_sing("horses", "horse");
    check_sing("noses", "nose");
    check_sing("octopuses", "octopus");
    /* -s */
    check_sing("dogs", "dog");
    check_sing("pianos", "piano");
    /* buffer too small */
    char small[3];
    assert_int_equal(avl_eval_singular("dogs", small, sizeof small), (size_t)-1);
    assert_string_equal(small, "");
}

/* ---- vocabulary ---- */

static const char *k_vocab = "# test vocabulary\n"
                             "person, man, woman, child, people\n"
                             "dog, puppy, hound, =dog barking\n"
                             "cat, kitten\n"
                             "bear\n"
                             "teddy bear, teddy\n"
                             "traffic light, stop light\n"
                             "fire hydrant, hydrant\n"
                             "airplane, plane, jet, passenger jet\n"
                             "cell phone, phone, mobile phone\n"
                             "bus\n"
                             "mouse\n"
                             "elephant\n"
                             "bench\n"
                             "\n"
                             "@animal dog, cat, bear, elephant\n"
                             "@ignore hot dog\n";

static avl_vocab *load_vocab(void)
{
    avl_vocab *v;
    assert_int_equal(avl_vocab_new(&v), AVL_OK);
    assert_int_equal(avl_vocab_add_text(v, k_vocab, strlen(k_vocab), "test.txt"), AVL_OK);
    return v;
}

static const char *cls_of(const avl_vocab *v, const char *phrase)
{
    return avl_vocab_class_name(v, avl_vocab_lookup(v, phrase));
}

static void test_vocab_lookup(void **state)
{
    (void)state;
    avl_vocab *v = load_vocab();
    assert_int_equal(avl_vocab_class_count(v), 13);
    assert_string_equal(cls_of(v, "Puppies"), "dog");
    assert_string_equal(cls_of(v, "women"), "person");
    assert_string_equal(cls_of(v, "Passenger-Jets"), "airplane");
    assert_string_equal(cls_of(v, "teddy bears"), "teddy bear");
    assert_string_equal(cls_of(v, "dogs barking"), "dog"); /* label-only phrases count in lookups */
    assert_int_equal(avl_vocab_lookup(v, "hot dog"), -1);   /* ignored */
    assert_int_equal(avl_vocab_lookup(v, "zebra"), -1);
    assert_null(avl_vocab_class_name(v, 99));
    avl_vocab_free(v);
}

static void expect_vocab_error(const char *text, const char *s1, const char *s2)
{
    avl_vocab *v;
    assert_int_equal(avl_vocab_new(&v), AVL_OK);
    AVL_EXPECT_ERROR(avl_vocab_add_text(v, text, strlen(text), "bad.txt"), AVL_E_FORMAT, s1, s2);
    avl_vocab_free(v);
}

static void test_vocab_errors(void **state)
{
    (void)state;
    expect_vocab_error("dog, puppy\n@anmial dog\n", "bad.txt:2:", "unknown directive '@anmial'");
    expect_vocab_error("dog, , puppy\n", "bad.txt:1:", "entry 2 has no words");
    expect_vocab_error("# c\ndog, puppy\ncat, pup, puppies\n", "bad.txt:3:", "'puppy' is already given to 'dog' on line 2");
    expect_vocab_error("dog\n@animal zebra\n", "bad.txt:2:", "@animal 'zebra' is not a class");
    expect_vocab_error("=dog, puppy\n", "bad.txt:1:", "label-only");
    expect_vocab_error("dog\n@ignore =hot dog\n", "bad.txt:2:", "label-only");
    expect_vocab_error("dog\n@ignore dog\n", "bad.txt:2:", "'dog' is already given to 'dog'");
    expect_vocab_error("dog\n!!!, cat\n", "bad.txt:2:", "entry 1 has no words");
    char longline[5000];
    memset(longline, 'a', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    expect_vocab_error(longline, "bad.txt:1:", "line longer than");
    /* missing file */
    avl_vocab *v;
    assert_int_equal(avl_vocab_new(&v), AVL_OK);
    AVL_EXPECT_ERROR(avl_vocab_add_file(v, "/nonexistent/v.txt"), AVL_E_IO, "/nonexistent/v.txt");
    avl_vocab_free(v);
}

static void test_vocab_later_file_wins(void **state)
{
    (void)state;
    avl_vocab *v = load_vocab();
    /* a second file may move "jet" to a class of its own and extend "dog" */
    const char *more = "jet, jet plane\ndog, doggo\n";
    assert_int_equal(avl_vocab_add_text(v, more, strlen(more), "more.txt"), AVL_OK);
    assert_string_equal(cls_of(v, "jets"), "jet");
    assert_string_equal(cls_of(v, "plane"), "airplane");
    assert_string_equal(cls_of(v, "doggo"), "dog");
    assert_int_equal(avl_vocab_class_count(v), 14);
    avl_vocab_free(v);
}

static void test_mentions(void **state)
{
    (void)state;
    avl_vocab *v = load_vocab();
    const char *text = "A Teddy-Bear, a bear, a hot dog and a baby elephant; the dog's puppies bark.";
    avl_mention *m;
    int64_t n;
    assert_int_equal(avl_vocab_mentions(v, text, &m, &n), AVL_OK);
    /* teddy bear | bear | (hot dog ignored) | baby elephant | dog ('s dropped) | puppies */
    assert_int_equal(n, 5);
    const char *want[] = {"teddy bear", "bear", "elephant", "dog", "dog"};
    const char *span[] = {"Teddy-Bear", "bear", "baby elephant", "dog", "puppies"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(avl_vocab_class_name(v, m[i].cls), want[i]);
        assert_int_equal(m[i].end - m[i].start, strlen(span[i]));
        assert_memory_equal(text + m[i].start, span[i], strlen(span[i]));
    }
    avl_mentions_free(m);
    /* label-only phrases are not caption phrases; "baby" alone is a person only via the vocabulary */
    assert_int_equal(avl_vocab_mentions(v, "barking, a baby, an adult", &m, &n), AVL_OK);
    assert_int_equal(n, 0);
    assert_null(m);
    avl_vocab_free(v);
}

/* ---- ground truth ---- */

static void test_truth_readers(void **state)
{
    (void)state;
    avl_vocab *v = load_vocab();
    avl_truth *t;
    assert_int_equal(avl_truth_new(&t), AVL_OK);
    const char *json = "{\"video/c1.mp4\": [\"dog\", \"Benches\"], \"c2\": \"man/woman\", \"c3\": [],\n"
                       " \"c4\": [{\"label\": \"cat\", \"score\": 0.9}]}";
    assert_int_equal(avl_truth_add_text(t, v, json, strlen(json), "t.json"), AVL_OK);
    const char *csv = "video_id,label,modality\nc5,\"dog barking, loud\",A\nc5,bus,AV\n\nc6,zebra,V\n";
    assert_int_equal(avl_truth_add_text(t, v, csv, strlen(csv), "t.csv"), AVL_OK);
    const char *plain = "c7.mp4,cat\nc7.mp4,\"kitten\"\n";
    assert_int_equal(avl_truth_add_text(t, v, plain, strlen(plain), "test.csv"), AVL_OK);
    const char *det = "[\"phone\", {\"label\": \"dog\"}]"; /* one clip's detections: the id is the file name */
    assert_int_equal(avl_truth_add_text(t, v, det, strlen(det), "dets/c3.json"), AVL_OK);

    const int64_t *c;
    int64_t n;
    assert_true(avl_truth_get(t, "c1", &c, &n));
    assert_int_equal(n, 2);
    assert_true(avl_truth_get(t, "x/c1.MP4", &c, &n)); /* path and extension dropped */
    assert_true(avl_truth_get(t, "c2", &c, &n));
    assert_int_equal(n, 1); /* man and woman are both person */
    assert_string_equal(avl_vocab_class_name(v, c[0]), "person");
    assert_true(avl_truth_get(t, "c3", &c, &n));
    assert_int_equal(n, 2); /* empty list, then merged detections: dog, cell phone */
    assert_true(avl_truth_get(t, "c5", &c, &n));
    assert_int_equal(n, 2); /* dog, bus */
    assert_true(avl_truth_get(t, "c6", &c, &n));
    assert_int_equal(n, 1); /* zebra: no vocabulary phrase, a class of its own */
    assert_string_equal(avl_vocab_class_name(v, c[0]), "zebra");
    assert_int_equal(avl_truth_added_classes(t), 1);
    assert_true(avl_truth_get(t, "c7", &c, &n));
    assert_int_equal(n, 1);
    assert_false(avl_truth_get(t, "c99", &c, &n));
    assert_int_equal(avl_truth_clip_count(t), 7);
    avl_truth_free(t);
    avl_vocab_free(v);
}

static void expect_truth_error(const char *text, const char *label, int code, const char *s1, const char *s2)
{
    avl_vocab *v = load_vocab();
    avl_truth *t;
    assert_int_equal(avl_truth_new(&t), AVL_OK);
    AVL_EXPECT_ERROR(avl_truth_add_text(t, v, text, strlen(text), label), code, s1, s2);
    avl_truth_free(t);
    avl_vocab_free(v);
}

static void test_truth_errors(void **state)
{
    (void)state;
    expect_truth_error("{\"a\": [\"dog\",\n \"cat\" \"x\"]}", "t.json", AVL_E_FORMAT, "t.json:2:", "bad JSON");
    expect_truth_error("{\"a\": [\"dog\", 3]}", "t.json", AVL_E_FORMAT, "t.json: clip 'a'", "object 1");
    expect_truth_error("{\"a\": 3}", "t.json", AVL_E_FORMAT, "t.json: clip 'a'", "list or a string");
    expect_truth_error("{\"a\": [\"!!!\"]}", "t.json", AVL_E_FORMAT, "t.json", "has no words");
    expect_truth_error("7", "t.json", AVL_E_FORMAT, "t.json:1:", "expected id,object"); /* not JSON: CSV */
    expect_truth_error("a,dog\nb,\"cat\n", "t.csv", AVL_E_FORMAT, "t.csv:2:", "unbalanced double quote");
    expect_truth_error("a,dog\nb,\"cat\"x\n", "t.csv", AVL_E_FORMAT, "t.csv:2:", "unbalanced");
    expect_truth_error("a,dog\nb\n", "t.csv", AVL_E_FORMAT, "t.csv:2:", "found 1 field");
    expect_truth_error("a,dog\n ,cat\n", "t.csv", AVL_E_FORMAT, "t.csv:2:", "empty clip id");
    expect_truth_error("video_id,modality\na,A\n", "t.csv", AVL_E_FORMAT, "t.csv:1:", "no 'label'");
    expect_truth_error("a,dog\nx/,cat\n", "t.csv", AVL_E_FORMAT, "t.csv:2:", "is empty");
}

/* ---- scores, by hand ---- */

/* Ground truth of the hand-scored corpus. */
static const char *k_truth = "{\"c1\": [\"dog\", \"bench\"], \"c2\": [\"person\"], \"c3\": [\"elephant\"],"
                             " \"c4\": [\"cat\"], \"c5\": [\"bus\", \"person\"]}";

/* Method A, five captions; mentions (H = hallucinated), generated set, covered truth:
 * c1 "Two puppies and a dog play near a bench; the dogs bark."
 *    puppies=dog, dog, bench, dogs=dog: 4 mentions, 0 H; gen {dog, bench} 2 correct of 2; truth 2, covered 2
 * c2 "A teddy bear sits beside a man and two women, with mice at their feet."
 *    teddy bear (H; never also "bear"), man=person, women=person, mice=mouse (H); "feet" is no class:
 *    4 mentions, 2 H; gen {teddy bear, person, mouse} 1 correct of 3; truth 1, covered 1
 * c3 "A baby elephant walks past a passenger jet and a traffic light."
 *    baby elephant=elephant, passenger jet=airplane (H), traffic light (H): 3 mentions, 2 H;
 *    gen 3, 1 correct; truth 1, covered 1
 * c4 "Silence, then wind over an empty field." no mentions; gen {}; truth {cat}, covered 0
 * c5 "People wait at the bus stop while a hot dog vendor talks on his phone; the buses arrive."
 *    People=person, bus, (hot dog ignored: no dog), phone=cell phone (H), buses=bus: 4 mentions, 1 H;
 *    gen {person, bus, cell phone} 2 correct of 3; truth 2, covered 2
 * Totals: captions 5, with H: c2 c3 c5 = 3           -> CHAIR_s = 3/5   = 60
 *         mentions 4+4+3+0+4 = 15, H 0+2+2+0+1 = 5   -> CHAIR_i = 5/15  = 33.333...
 *         gen 2+3+3+0+3 = 11, correct 2+1+1+0+2 = 6  -> P = 6/11        = 54.5454...
 *         truth 2+1+1+1+2 = 7, covered 6             -> R = 6/7         = 85.714...
 *         F1 = 2PR/(P+R) = 2(36/77)/(108/77) = 72/108 = 66.666...
 * Method B, one caption on another data set: c1 "A kitten." -> kitten=cat (H): CHAIR_s 100,
 * CHAIR_i 100, P 0/1 = 0, R 0/2 = 0, F1 0 (P+R = 0). */
static const char *k_captions =
    "{\"id\": \"c1\", \"caption\": \"Two puppies and a dog play near a bench; the dogs bark.\", \"method\": \"A\"}\n"
    "{\"id\": \"c2\", \"caption\": \"A teddy bear sits beside a man and two women, with mice at their feet.\", \"method\": \"A\"}\n"
    "\n"
    "{\"id\": \"video/c3.mp4\", \"caption\": \"A baby elephant walks past a passenger jet and a traffic light.\", \"method\": \"A\", \"extra\": 1}\n"
    "{\"id\": \"c4\", \"caption\": \"Silence, then wind over an empty field.\", \"method\": \"A\"}\n"
    "{\"id\": \"c5\", \"caption\": \"People wait at the bus stop while a hot dog vendor talks on his phone; the buses arrive.\", \"method\": \"A\"}\n"
    "{\"id\": \"c1\", \"caption\": \"A kitten.\", \"method\": \"B\", \"dataset\": \"other\"}\n";

static void load_corpus(avl_vocab **v, avl_truth **t, avl_chair **c)
{
    *v = load_vocab();
    assert_int_equal(avl_truth_new(t), AVL_OK);
    assert_int_equal(avl_truth_add_text(*t, *v, k_truth, strlen(k_truth), "truth.json"), AVL_OK);
    assert_int_equal(avl_chair_new(*v, *t, c), AVL_OK);
    assert_int_equal(avl_chair_set_defaults(*c, NULL, "set1"), AVL_OK);
    assert_int_equal(avl_chair_add_jsonl_text(*c, k_captions, strlen(k_captions), "caps.jsonl"), AVL_OK);
}

static void test_scores_by_hand(void **state)
{
    (void)state;
    avl_vocab *v;
    avl_truth *t;
    avl_chair *c;
    load_corpus(&v, &t, &c);
    assert_int_equal(avl_chair_group_count(c), 2);
    avl_chair_scores s;
    assert_int_equal(avl_chair_group(c, 0, &s), AVL_OK);
    assert_string_equal(s.method, "A");
    assert_string_equal(s.dataset, "set1");
    assert_int_equal(s.n_captions, 5);
    assert_int_equal(s.n_captions_hallucinated, 3);
    assert_int_equal(s.n_mentions, 15);
    assert_int_equal(s.n_mentions_hallucinated, 5);
    assert_int_equal(s.n_generated, 11);
    assert_int_equal(s.n_generated_correct, 6);
    assert_int_equal(s.n_truth, 7);
    assert_int_equal(s.n_truth_covered, 6);
    assert_true(fabs(s.chair_s - 60.0) < 1e-9);
    assert_true(fabs(s.chair_i - 100.0 / 3.0) < 1e-9);
    assert_true(fabs(s.precision - 600.0 / 11.0) < 1e-9);
    assert_true(fabs(s.recall - 600.0 / 7.0) < 1e-9);
    assert_true(fabs(s.f1 - 200.0 / 3.0) < 1e-9);

    assert_int_equal(avl_chair_group(c, 1, &s), AVL_OK);
    assert_string_equal(s.method, "B");
    assert_string_equal(s.dataset, "other");
    assert_int_equal(s.n_captions, 1);
    assert_true(s.chair_s == 100.0 && s.chair_i == 100.0 && s.precision == 0.0 && s.recall == 0.0 && s.f1 == 0.0);
    AVL_EXPECT_ERROR(avl_chair_group(c, 2, &s), AVL_E_ARG, "out of range");

    /* per-caption details of c2 */
    assert_int_equal(avl_chair_caption_count(c), 6);
    avl_chair_caption k;
    assert_int_equal(avl_chair_get_caption(c, 1, &k), AVL_OK);
    assert_string_equal(k.id, "c2");
    assert_int_equal(k.n_mentions, 4);
    assert_string_equal(k.mentions[0].text, "teddy bear");
    assert_string_equal(k.mentions[0].object, "teddy bear");
    assert_true(k.mentions[0].hallucinated);
    assert_string_equal(k.mentions[2].text, "women");
    assert_false(k.mentions[2].hallucinated);
    assert_int_equal(k.n_generated, 3);
    assert_string_equal(k.generated[0], "teddy bear");
    assert_string_equal(k.generated[1], "person");
    assert_string_equal(k.generated[2], "mouse");
    assert_int_equal(k.n_hallucinated, 2);
    assert_string_equal(k.hallucinated[1], "mouse");
    assert_int_equal(k.n_truth, 1);
    assert_string_equal(k.truth[0], "person");
    assert_int_equal(k.n_covered, 1);
    /* c3 was given with a path: stored under its clip id */
    assert_int_equal(avl_chair_get_caption(c, 2, &k), AVL_OK);
    assert_string_equal(k.id, "c3");
    assert_string_equal(k.mentions[0].text, "baby elephant");
    /* c4: no objects */
    assert_int_equal(avl_chair_get_caption(c, 3, &k), AVL_OK);
    assert_int_equal(k.n_mentions, 0);
    assert_int_equal(k.n_generated, 0);
    assert_int_equal(k.n_covered, 0);
    avl_chair_free(c);
    avl_truth_free(t);
    avl_vocab_free(v);
}

/* Metamorphic: scoring the captions one by one equals scoring the JSONL; the order of captions
 * does not change the group's totals. */
static void test_scores_order_free(void **state)
{
    (void)state;
    avl_vocab *v;
    avl_truth *t;
    avl_chair *c;
    load_corpus(&v, &t, &c);
    avl_chair *d;
    assert_int_equal(avl_chair_new(v, t, &d), AVL_OK);
    assert_int_equal(avl_chair_add(d, "c5", "People wait at the bus stop while a hot dog vendor talks on his phone; the buses arrive.", "A", "set1"), AVL_OK);
    assert_int_equal(avl_chair_add(d, "c4", "Silence, then wind over an empty field.", "A", "set1"), AVL_OK);
    assert_int_equal(avl_chair_add(d, "c3", "A baby elephant walks past a passenger jet and a traffic light.", "A", "set1"), AVL_OK);
    assert_int_equal(avl_chair_add(d, "c2", "A teddy bear sits beside a man and two women, with mice at their feet.", "A", "set1"), AVL_OK);
    assert_int_equal(avl_chair_add(d, "c1", "Two puppies and a dog play near a bench; the dogs bark.", "A", "set1"), AVL_OK);
    avl_chair_scores a, b;
    avl_chair_group(c, 0, &a);
    avl_chair_group(d, 0, &b);
    assert_true(a.chair_s == b.chair_s && a.chair_i == b.chair_i && a.precision == b.precision &&
                a.recall == b.recall && a.f1 == b.f1);
    avl_chair_free(d);
    avl_chair_free(c);
    avl_truth_free(t);
    avl_vocab_free(v);
}

static void test_caption_errors(void **state)
{
    (void)state;
    avl_vocab *v = load_vocab();
    avl_truth *t;
    assert_int_equal(avl_truth_new(&t), AVL_OK);
    assert_int_equal(avl_truth_add_text(t, v, k_truth, strlen(k_truth), "truth.json"), AVL_OK);
    avl_chair *c;
    assert_int_equal(avl_chair_new(v, t, &c), AVL_OK);
    const char *bad1 = "{\"id\": \"c1\", \"caption\": \"ok\"}\n{\"id\": \"c2\", \"caption\": \n";
    AVL_EXPECT_ERROR(avl_chair_add_jsonl_text(c, bad1, strlen(bad1), "caps.jsonl"), AVL_E_FORMAT, "caps.jsonl:2:", "bad JSON");
    const char *bad2 = "\n\n{\"id\": \"c1\"}\n";
    AVL_EXPECT_ERROR(avl_chair_add_jsonl_text(c, bad2, strlen(bad2), "caps.jsonl"), AVL_E_FORMAT, "caps.jsonl:3:", "\"caption\" missing");
    const char *bad3 = "{\"caption\": \"x\"}\n";
    AVL_EXPECT_ERROR(avl_chair_add_jsonl_text(c, bad3, strlen(bad3), "caps.jsonl"), AVL_E_FORMAT, "caps.jsonl:1:", "\"id\" missing");
    const char *bad4 = "{\"id\": \"zz\", \"caption\": \"a dog\"}\n";
    AVL_EXPECT_ERROR(avl_chair_add_jsonl_text(c, bad4, strlen(bad4), "caps.jsonl"), AVL_E_NOTFOUND, "caps.jsonl:1:", "clip 'zz' has no ground truth");
    const char *bad5 = "{\"id\": \"c1\", \"caption\": \"a dog\", \"method\": 3}\n";
    AVL_EXPECT_ERROR(avl_chair_add_jsonl_text(c, bad5, strlen(bad5), "caps.jsonl"), AVL_E_FORMAT, "caps.jsonl:1:", "\"method\" must be a string");
    const char *bad6 = "[1, 2]\n";
    AVL_EXPECT_ERROR(avl_chair_add_jsonl_text(c, bad6, strlen(bad6), "caps.jsonl"), AVL_E_FORMAT, "caps.jsonl:1:", "must be a JSON object");
    AVL_EXPECT_ERROR(avl_chair_add_jsonl(c, "/nonexistent/caps.jsonl"), AVL_E_IO, "/nonexistent/caps.jsonl");
    avl_chair_free(c);
    avl_truth_free(t);
    avl_vocab_free(v);
}

static void test_writers(void **state)
{
    (void)state;
    avl_vocab *v;
    avl_truth *t;
    avl_chair *c;
    load_corpus(&v, &t, &c);
    const char *dir = avl_test_dir("eval_writers");
    char p[4200];
    snprintf(p, sizeof p, "%s/chair.csv", dir);
    assert_int_equal(avl_chair_write_csv(c, p), AVL_OK);
    char *text;
    size_t n;
    assert_int_equal(avl__read_file(p, &text, &n), AVL_OK);
    assert_string_equal(text, "method,dataset,captions,chair_s,chair_i,precision,recall,f1,mentions,hallucinated_mentions\n"
                              "A,set1,5,60.0000,33.3333,54.5455,85.7143,66.6667,15,5\n"
                              "B,other,1,100.0000,100.0000,0.0000,0.0000,0.0000,1,1\n");
    avl__free(text);
    snprintf(p, sizeof p, "%s/chair.md", dir);
    assert_int_equal(avl_chair_write_markdown(c, p), AVL_OK);
    assert_int_equal(avl__read_file(p, &text, &n), AVL_OK);
    assert_non_null(strstr(text, "| A | set1 | 5 | 60.0 | 33.3 | 54.5 | 85.7 | 66.7 |\n"));
    avl__free(text);
    snprintf(p, sizeof p, "%s/details.jsonl", dir);
    assert_int_equal(avl_chair_write_details(c, p), AVL_OK);
    assert_int_equal(avl__read_file(p, &text, &n), AVL_OK);
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    assert_int_equal(lines, 6);
    assert_non_null(strstr(text, "\"hallucinated\":[\"teddy bear\",\"mouse\"]"));
    avl__free(text);
    AVL_EXPECT_ERROR(avl_chair_write_csv(c, "/nonexistent/dir/x.csv"), AVL_E_IO, "/nonexistent/dir/x.csv");
    avl_chair_free(c);
    avl_truth_free(t);
    avl_vocab_free(v);
}

/* The committed vocabularies load together, in the CLI's default order, and map the data sets'
 * labels to the objects docs/eval.md promises. */
static void test_shipped_vocabularies(void **state)
{
    (void)state;
    avl_vocab *v;
    assert_int_equal(avl_vocab_new(&v), AVL_OK);
    const char *names[] = {"audioset", "coco", "vggsound"};
    for (int i = 0; i < 3; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/data/vocab/%s.txt", AVL_SOURCE_DIR, names[i]);
        if (avl_vocab_add_file(v, p) != AVL_OK) fail_msg("%s", avl_last_error());
    }
    struct {
        const char *phrase, *cls;
    } want[] = {{"dog barking", "dog"},         {"people eating noodle", "person"}, {"playing bass guitar", "guitar"},
                {"alligators", "crocodile"},     {"playing table tennis", "table tennis"},
                {"male speech", "person"},       {"passenger jets", "airplane"},     {"cattle", "cow"},
                {"swimming", "person"},          {"Fixed-wing aircraft", "airplane"}, {"lions", "lion"},
                {"fire truck", "truck"},         {"teddy bears", "teddy bear"},      {"children shouting", "person"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *got = cls_of(v, want[i].phrase);
        if (!got || strcmp(got, want[i].cls)) fail_msg("'%s' -> '%s', want '%s'", want[i].phrase, got ? got : "(none)", want[i].cls);
    }
    /* "swimming" is label-only: a swimming dog mentions a dog, not a person */
    avl_mention *m;
    int64_t n;
    assert_int_equal(avl_vocab_mentions(v, "a dog swimming in a pool", &m, &n), AVL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(avl_vocab_class_name(v, m[0].cls), "dog");
    avl_mentions_free(m);
    avl_vocab_free(v);
}

/* Every allocation failure on the whole path returns AVL_E_NOMEM and leaks nothing (ASan). */
static void test_alloc_failures(void **state)
{
    (void)state;
    for (int64_t k = 1; k < 100000; k++) {
        avl__alloc_fail_after(k);
        avl_vocab *v = NULL;
        avl_truth *t = NULL;
        avl_chair *c = NULL;
        avl_status rc = avl_vocab_new(&v);
        if (!rc) rc = avl_vocab_add_text(v, k_vocab, strlen(k_vocab), "test.txt");
        if (!rc) rc = avl_truth_new(&t);
        if (!rc) rc = avl_truth_add_text(t, v, k_truth, strlen(k_truth), "truth.json");
        if (!rc) rc = avl_chair_new(v, t, &c);
        if (!rc) rc = avl_chair_add_jsonl_text(c, k_captions, strlen(k_captions), "caps.jsonl");
        avl__alloc_fail_after(0);
        avl_chair_free(c);
        avl_truth_free(t);
        avl_vocab_free(v);
        if (rc == AVL_OK) return;
        if (rc != AVL_E_NOMEM) fail_msg("allocation %lld: status %d (%s)", (long long)k, rc, avl_last_error());
    }
    fail_msg("never succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_singular),          cmocka_unit_test(test_vocab_lookup),
        cmocka_unit_test(test_vocab_errors),      cmocka_unit_test(test_vocab_later_file_wins),
        cmocka_unit_test(test_mentions),          cmocka_unit_test(test_truth_readers),
        cmocka_unit_test(test_truth_errors),      cmocka_unit_test(test_scores_by_hand),
        cmocka_unit_test(test_scores_order_free), cmocka_unit_test(test_caption_errors),
        cmocka_unit_test(test_writers),           cmocka_unit_test(test_shipped_vocabularies),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
