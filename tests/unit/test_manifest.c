/* tests/unit/test_manifest.c: manifests -> samples: every shape of the authors' files (copies
 * in tests/data/manifests/), VGGSound CSV with and without a class list, and each kind of bad
 * record (listed with file, index and id while the good ones load). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avl_test.h"
#include "base/internal.h"

#define M AVL_TEST_DATA "/manifests/"

static avl_dataset *load(const char *path, const avl_dataset_params *p)
{
    avl_dataset *ds = NULL;
    int rc = avl_dataset_load(path, p, &ds);
    if (rc != AVL_OK) fail_msg("%s: %s", path, avl_last_error());
    return ds;
}

static avl_dataset *load_text(const char *text, const avl_dataset_params *p)
{
    avl_dataset *ds = NULL;
    int rc = avl_dataset_load_memory(text, strlen(text), "t.json", p, &ds);
    if (rc != AVL_OK) fail_msg("t.json: %s", avl_last_error());
    return ds;
}

static void step1_people_frames(void **state)
{
    avl_dataset_params p = avl_dataset_default_params();
    p.media_root = "/data/vgg";
    avl_dataset *ds = load(M "causal_tracing_step1_people_case_2_small.json", &p);
    assert_int_equal(avl_dataset_format(ds), AVL_MANIFEST_CONVERSATIONS);
    assert_int_equal(avl_dataset_count(ds), 10);
    assert_int_equal(avl_dataset_error_count(ds), 0);
    const avl_sample *s = avl_dataset_at(ds, 0);
    assert_string_equal(s->id, "--U7joUcTCo_000000");
    assert_int_equal(s->index, 0);
    assert_string_equal(s->system_prompt, "You are a helpful assistant.");
    assert_null(s->video_path);
    assert_int_equal(s->n_frames, 20);
    assert_string_equal(s->frames[0], "/data/vgg/vggsound_with_mask/sam2_mask_black/--U7joUcTCo_000000/001_raw.jpg");
    assert_null(s->audio_path);
    assert_int_equal(s->n_options, 20);
    assert_string_equal(s->options[0], "people eating");
    assert_string_equal(s->options[19], "people whistling");
    assert_int_equal(s->label, 'K');
    assert_string_equal(s->label_name, "people coughing");
    assert_true(strncmp(s->question, "Classify the sounding object", 28) == 0);
    /* answers of step 1 stay as extra fields */
    assert_non_null(strstr(s->extra_json, "\"av\":\"K\""));
    assert_non_null(strstr(s->extra_json, "\"v\":\"R\""));
    assert_null(strstr(s->extra_json, "choices"));
    assert_int_equal(avl_dataset_find(ds, "--U7joUcTCo_000000"), 0);
    assert_int_equal(avl_dataset_find(ds, "nope"), -1);
    assert_null(avl_dataset_at(ds, 10));
    avl_dataset_free(ds);
}

static void step1_sports_video_file(void **state)
{
    avl_dataset *ds = load(M "causal_tracing_step1_sports_case_1_small.json", NULL);
    assert_int_equal(avl_dataset_count(ds), 10);
    const avl_sample *s = avl_dataset_at(ds, 0);
    assert_string_equal(s->id, "-86gl1hp1Aw_000105");
    assert_string_equal(s->video_path, "vggsound_with_mask/video/-86gl1hp1Aw_000105.mp4");
    assert_int_equal(s->n_frames, 0);
    assert_int_equal(s->label, 'M');
    assert_string_equal(s->label_name, "parrot talking");
    assert_string_equal(s->options[3], "shot football"); /* as the authors spelled it */
    avl_dataset_free(ds);
}

static void step2_probabilities(void **state)
{
    const char *files[2] = {M "causal_tracing_step2_people_small.json", M "causal_tracing_step2_sports_small.json"};
    for (int f = 0; f < 2; f++) {
        avl_dataset *ds = load(files[f], NULL);
        assert_int_equal(avl_dataset_count(ds), 10);
        assert_int_equal(avl_dataset_error_count(ds), 0);
        for (int64_t i = 0; i < 10; i++) {
            const avl_sample *s = avl_dataset_at(ds, i);
            assert_int_equal(s->n_options, 20);
            assert_true(s->label >= 'A' && s->label <= 'T');
            assert_non_null(strstr(s->extra_json, "\"correct_correct_word_prob\":"));
            assert_non_null(strstr(s->question, "\n\nRespond ONLY with a single label letter (A\xe2\x80\x93T)."));
        }
        avl_dataset_free(ds);
    }
}

static void asd_captioning(void **state)
{
    avl_dataset *ds = load(M "asd_vggsound_animal_head.json", NULL);
    assert_int_equal(avl_dataset_count(ds), 6);
    const avl_sample *s = avl_dataset_at(ds, 0);
    assert_string_equal(s->id, "pI2gLesgVes_000009");
    assert_string_equal(s->question, "Describe what you see and hear in a single sentence. ");
    assert_int_equal(s->n_options, 0);
    assert_int_equal(s->label, 0);
    assert_string_equal(s->original_label, "alligators, crocodiles hissing");
    assert_string_equal(s->objects, "alligator/crocodile");
    assert_string_equal(s->extra_json, "{}");
    avl_dataset_free(ds);
}

static void result_lines(void **state)
{
    /* the authors' step-1 output: JSON lines, "video" is the bare id, no prompt text */
    avl_dataset *ds = load(M "results_causal_tracing_step1_people_av_people_case_2_small.json", NULL);
    assert_int_equal(avl_dataset_format(ds), AVL_MANIFEST_ITEMS);
    assert_int_equal(avl_dataset_count(ds), 10);
    const avl_sample *s = avl_dataset_at(ds, 0);
    assert_string_equal(s->id, "--U7joUcTCo_000000");
    assert_null(s->video_path);
    assert_string_equal(s->audio_path, "vggsound_with_mask/audio/--U7joUcTCo_000000.wav");
    assert_int_equal(s->n_options, 20);
    assert_int_equal(s->label, 'K');
    /* the prompt is rebuilt from "choices" */
    static const char head[] = "Classify the sounding object into one of the categories below:\n\nA. people eating\n";
    assert_true(strncmp(s->question, head, sizeof head - 1) == 0);
    assert_non_null(strstr(s->extra_json, "\"id\":0"));
    assert_non_null(strstr(s->extra_json, "\"av_prob\":"));
    avl_dataset_free(ds);

    /* step-2 output: frame lists and the "unknown_audio" placeholder */
    ds = load(M "results_step2_people_cross_modal_small.jsonl", NULL);
    assert_int_equal(avl_dataset_count(ds), 10);
    s = avl_dataset_at(ds, 0);
    assert_string_equal(s->id, "--U7joUcTCo_000000");
    assert_int_equal(s->n_frames, 20);
    assert_null(s->audio_path);
    assert_int_equal(s->label, 'K');
    assert_string_equal(s->label_name, "people coughing");
    assert_non_null(strstr(s->extra_json, "\"layerlist_len\":8624"));
    avl_dataset_free(ds);
}

static void audio_event_seconds(void **state)
{
    avl_dataset *ds = load(M "object_important_seconds_flam_qwen_head.json", NULL);
    assert_int_equal(avl_dataset_count(ds), 20);
    const avl_sample *s = avl_dataset_at(ds, 0);
    assert_string_equal(s->id, "6jiO0tPLK7U_000090");
    assert_string_equal(s->audio_path, "vggsound_with_mask/audio/6jiO0tPLK7U_000090.wav");
    assert_null(s->question);
    assert_string_equal(s->extra_json, "{\"important_blocks\":[0,3]}");
    avl_dataset_free(ds);
}

static void history_is_not_a_manifest(void **state)
{
    avl_dataset *ds = NULL;
    int rc = avl_dataset_load(M "history_head.json", NULL, &ds);
    AVL_EXPECT_ERROR(rc, AVL_E_FORMAT, "history_head.json", "keyed by '26'", "not a manifest");
    assert_null(ds);
}

static void vggsound_csv(void **state)
{
    avl_dataset_params p = avl_dataset_default_params();
    p.media_root = "clips/";
    avl_dataset *ds = load(M "vggsound_head.csv", &p);
    assert_int_equal(avl_dataset_format(ds), AVL_MANIFEST_CSV);
    assert_int_equal(avl_dataset_count(ds), 16);
    const avl_sample *s = avl_dataset_at(ds, 0);
    assert_string_equal(s->id, "glLQrEijrKg_000300");
    assert_string_equal(s->video_path, "clips/glLQrEijrKg_000300.mp4");
    assert_string_equal(s->label_name, "playing hammond organ");
    assert_int_equal(s->n_options, 0);
    assert_string_equal(s->system_prompt, "You are a helpful assistant.");
    s = avl_dataset_at(ds, 12);
    assert_string_equal(s->label_name, "heart sounds, heartbeat"); /* quoted field with a comma */
    assert_string_equal(s->original_label, "heart sounds, heartbeat");
    avl_dataset_free(ds);
}

static void csv_class_list(void **state)
{
    avl_dataset_params p = avl_dataset_default_params();
    p.class_list = M "classes_small.txt";
    avl_dataset *ds = load(M "vggsound_head.csv", &p);
    /* 5 rows have a label in the list; the others are filtered, not errors */
    assert_int_equal(avl_dataset_count(ds), 5);
    assert_int_equal(avl_dataset_filtered_count(ds), 11);
    assert_int_equal(avl_dataset_error_count(ds), 0);
    for (int64_t i = 0; i < 5; i++) {
        const avl_sample *s = avl_dataset_at(ds, i);
        assert_int_equal(s->n_options, 5);
        assert_true(s->label >= 'A' && s->label <= 'E');
        assert_string_equal(s->options[s->label - 'A'], s->label_name);
        assert_string_equal(s->label_name, s->original_label);
        assert_non_null(strstr(s->question, "(A\xe2\x80\x93" "E)."));
    }
    /* the option order depends on the id (and seed) only: same order when loaded again */
    avl_dataset *ds2 = load(M "vggsound_head.csv", &p);
    assert_string_equal(avl_dataset_at(ds, 1)->question, avl_dataset_at(ds2, 1)->question);
    avl_dataset_free(ds2);
    /* more classes than options: label + distractors */
    p.max_options = 3;
    ds2 = load(M "vggsound_head.csv", &p);
    for (int64_t i = 0; i < 5; i++) {
        const avl_sample *s = avl_dataset_at(ds2, i);
        assert_int_equal(s->n_options, 3);
        assert_string_equal(s->options[s->label - 'A'], s->original_label);
    }
    avl_dataset_free(ds2);
    avl_dataset_free(ds);

    /* vggsounder-classes.csv layout (index,mid,display_name) */
    p = avl_dataset_default_params();
    p.class_list = M "vggsounder_classes_head.csv";
    ds = load(M "vggsound_head.csv", &p);
    /* of its 14 classes, three label rows of the CSV head (one of them quoted, with commas) */
    assert_int_equal(avl_dataset_count(ds), 3);
    assert_string_equal(avl_dataset_at(ds, 1)->label_name, "male singing");
    assert_string_equal(avl_dataset_at(ds, 2)->label_name, "engine accelerating, revving, vroom");
    assert_int_equal(avl_dataset_at(ds, 0)->n_options, 14);
    avl_dataset_free(ds);
}

static void csv_quoting_and_crlf(void **state)
{
    const char *text = "a_000001.mp4,\"x, \"\"quoted\"\"\"\r\nb_000002.mp4,plain\r\n\r\nc_000003.mp4\r\n";
    avl_dataset *ds = NULL;
    assert_int_equal(avl_dataset_load_memory(text, strlen(text), "q.csv", NULL, &ds), AVL_OK);
    assert_int_equal(avl_dataset_count(ds), 2);
    assert_string_equal(avl_dataset_at(ds, 0)->label_name, "x, \"quoted\"");
    assert_string_equal(avl_dataset_at(ds, 1)->label_name, "plain");
    assert_int_equal(avl_dataset_error_count(ds), 1);
    assert_non_null(strstr(avl_dataset_error_at(ds, 0)->message, "q.csv: row 2 (c_000003.mp4): wants a file name and a label"));
    avl_dataset_free(ds);

    /* vggsounder.csv's layout: a header, one row per (clip, label) */
    text = "video_id,label,modality\n--i-y1v8Hy8_000000,child singing,AV\n-0BIyqJj9ZU_000030,baby laughter,A\n"
           "--i-y1v8Hy8_000000,\"child speech, kid speaking\",V\n";
    assert_int_equal(avl_dataset_load_memory(text, strlen(text), "h.csv", NULL, &ds), AVL_OK);
    assert_int_equal(avl_dataset_count(ds), 2);
    assert_int_equal(avl_dataset_error_count(ds), 0);
    assert_string_equal(avl_dataset_at(ds, 0)->id, "--i-y1v8Hy8_000000");
    assert_string_equal(avl_dataset_at(ds, 0)->video_path, "--i-y1v8Hy8_000000.mp4");
    assert_string_equal(avl_dataset_at(ds, 0)->label_name, "child singing");
    assert_string_equal(avl_dataset_at(ds, 0)->extra_json,
                        "{\"modality\":\"AV\",\"more_labels\":[{\"modality\":\"V\",\"label\":\"child speech, kid speaking\"}]}");
    assert_string_equal(avl_dataset_at(ds, 1)->extra_json, "{\"modality\":\"A\"}");
    avl_dataset_free(ds);
    /* without a header a repeated id is a duplicate */
    text = "a_1.mp4,x\na_1.mp4,y\n";
    assert_int_equal(avl_dataset_load_memory(text, strlen(text), "d.csv", NULL, &ds), AVL_OK);
    assert_int_equal(avl_dataset_count(ds), 1);
    assert_non_null(strstr(avl_dataset_error_at(ds, 0)->message, "d.csv: row 1 (a_1): duplicate id (first at row 0)"));
    avl_dataset_free(ds);

    text = "a_1.mp4,x\nb_2.mp4,\"unterminated\n";
    assert_int_equal(avl_dataset_load_memory(text, strlen(text), "u.csv", NULL, &ds), AVL_OK);
    assert_int_equal(avl_dataset_count(ds), 1);
    assert_int_equal(avl_dataset_error_count(ds), 1);
    assert_non_null(strstr(avl_dataset_error_at(ds, 0)->message, "unterminated quote"));
    avl_dataset_free(ds);
}

/* A conversation with the given user-message extras and text. */
static char *conv(const char *video, const char *text, const char *extra)
{
    static char buf[16][2048];
    static int k;
    char *b = buf[k++ % 16];
    snprintf(b, 2048,
             "[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"You are a helpful assistant.\"}]},"
             "{\"role\":\"user\",\"content\":[%s%s%s{\"type\":\"text\",\"text\":\"%s\"}]%s}]",
             video ? "{\"type\":\"video\",\"video\":" : "", video ? video : "", video ? "}," : "", text, extra);
    return b;
}

static const char *const Q3 = "Classify:\\n\\nA. cat\\nB. dog\\nC. cow\\n\\nRespond ONLY with a single label letter (A-C).";

static void bad_records(void **state)
{
    char text[16384];
    snprintf(text, sizeof text, "[%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s]",
             conv("\"v/ok_1.mp4\"", Q3, ",\"label\":\"B\",\"label_name\":\"dog\""),     /* 0 ok */
             conv("\"v/bad_2.mp4\"", Q3, ",\"label\":\"K\""),                           /* 1 label not an option */
             conv("\"v/bad_3.mp4\"", Q3, ",\"label\":\"B\",\"label_name\":\"cow\""),     /* 2 name differs */
             conv(NULL, Q3, ""),                                                         /* 3 no media */
             conv("\"v/ok_1.mp4\"", Q3, ",\"label\":\"A\""),                            /* 4 duplicate id */
             conv("\"v/bad_6.mp4\"", Q3, ",\"label_name\":\"horse\""),                  /* 5 list lacks label */
             conv("[]", Q3, ""),                                                         /* 6 empty frame list */
             conv("\"v/bad_8.mp4\"", "A. x\\nC. y", ""),                                 /* 7 options jump */
             conv("\"v/bad_9.mp4\"", Q3, ",\"choices\":{\"A\":\"cat\",\"B\":\"dog\",\"C\":\"pig\"}"),  /* 8 choices differ */
             "{\"role\":\"user\"}",                                                      /* 9 not a conversation */
             conv("\"v/ok_11.mp4\"", Q3, ",\"label\":\"C\""),                           /* 10 ok */
             conv("[\"f1.jpg\"]", Q3, ""));                                              /* 11 frame without folder */
    avl_dataset *ds = load_text(text, NULL);
    assert_int_equal(avl_dataset_count(ds), 2);
    assert_string_equal(avl_dataset_at(ds, 0)->id, "ok_1");
    assert_string_equal(avl_dataset_at(ds, 1)->id, "ok_11");
    assert_int_equal(avl_dataset_at(ds, 1)->label, 'C');
    assert_string_equal(avl_dataset_at(ds, 1)->label_name, "cow");
    const char *want[][2] = {
        {"t.json: record 1 (bad_2): ", "label 'K' is not among the 3 options (A-C)"},
        {"t.json: record 2 (bad_3): ", "label_name 'cow' differs from option B 'dog'"},
        {"t.json: record 3: ", "no video or audio item"},
        {"t.json: record 4 (ok_1): ", "duplicate id (first at record 0)"},
        {"t.json: record 5 (bad_6): ", "the option list lacks the label 'horse'"},
        {"t.json: record 6: ", "frame list is empty"},
        {"t.json: record 7 (bad_8): ", "options in the prompt jump from A to C"},
        {"t.json: record 8 (bad_9): ", "option C in the prompt ('cow') differs from \"choices\" ('pig')"},
        {"t.json: record 9: ", "not a conversation"},
        {"t.json: record 11: ", "frame 'f1.jpg' is not inside a folder"},
    };
    assert_int_equal(avl_dataset_error_count(ds), 10);
    for (int i = 0; i < 10; i++) {
        const avl_dataset_error *e = avl_dataset_error_at(ds, i);
        if (!strstr(e->message, want[i][0]) || !strstr(e->message, want[i][1]))
            fail_msg("error %d: got '%s', want '%s...%s'", i, e->message, want[i][0], want[i][1]);
        assert_int_not_equal(e->status, AVL_OK);
    }
    assert_string_equal(avl_dataset_error_at(ds, 3)->id, "ok_1");
    assert_null(avl_dataset_error_at(ds, 2)->id);
    avl_dataset_free(ds);
}

static void bad_files(void **state)
{
    avl_dataset *ds = NULL;
    int rc = avl_dataset_load(M "no_such_manifest.json", NULL, &ds);
    AVL_EXPECT_ERROR(rc, AVL_E_IO, "no_such_manifest.json", "cannot open");
    assert_null(ds);
    const char *bad = "[[{\"role\":\"user\", ]]";
    rc = avl_dataset_load_memory(bad, strlen(bad), "b.json", NULL, &ds);
    AVL_EXPECT_ERROR(rc, AVL_E_FORMAT, "b.json: line 1 column");
    rc = avl_dataset_load_memory("  \n", 3, "e.json", NULL, &ds);
    AVL_EXPECT_ERROR(rc, AVL_E_FORMAT, "e.json: empty manifest");
    /* neither '[' nor '{': read as CSV, where a lone field is a bad row */
    assert_int_equal(avl_dataset_load_memory("42", 2, "n.txt", NULL, &ds), AVL_OK);
    assert_int_equal(avl_dataset_count(ds), 0);
    assert_int_equal(avl_dataset_error_count(ds), 1);
    avl_dataset_free(ds);
}

static void bad_json_lines(void **state)
{
    /* JSON lines: a broken line is that record's error, the others load */
    const char *text = "{\"video\":\"a_1\",\"label\":\"x\"}\n{\"video\": oops}\n\n{\"audio\":\"w/b_2.wav\"}\n{\"label\":\"z\"}\n";
    avl_dataset *ds = load_text(text, NULL);
    assert_int_equal(avl_dataset_count(ds), 2);
    assert_string_equal(avl_dataset_at(ds, 0)->id, "a_1");
    assert_string_equal(avl_dataset_at(ds, 0)->label_name, "x");
    assert_string_equal(avl_dataset_at(ds, 1)->id, "b_2");
    assert_int_equal(avl_dataset_at(ds, 1)->index, 2);
    assert_int_equal(avl_dataset_error_count(ds), 2);
    assert_non_null(strstr(avl_dataset_error_at(ds, 0)->message, "t.json: record 1: line 2 is not JSON"));
    assert_non_null(strstr(avl_dataset_error_at(ds, 1)->message, "t.json: record 3: cannot derive an id"));
    avl_dataset_free(ds);
}

static void check_media_and_root(void **state)
{
    const char *dir = avl_test_dir("manifest_media");
    char path[1024];
    snprintf(path, sizeof path, "%s/have_1.mp4", dir);
    avl_test_write_file(path, "x", 1);
    char text[4096];
    snprintf(text, sizeof text, "[%s,%s]", conv("\"have_1.mp4\"", "Describe.", ""), conv("\"miss_2.mp4\"", "Describe.", ""));
    avl_dataset_params p = avl_dataset_default_params();
    p.media_root = dir;
    p.check_media = true;
    avl_dataset *ds = load_text(text, &p);
    assert_int_equal(avl_dataset_count(ds), 1);
    assert_string_equal(avl_dataset_at(ds, 0)->video_path, path);
    assert_int_equal(avl_dataset_error_count(ds), 1);
    assert_non_null(strstr(avl_dataset_error_at(ds, 0)->message, "record 1 (miss_2): media file"));
    assert_int_equal(avl_dataset_error_at(ds, 0)->status, AVL_E_IO);
    avl_dataset_free(ds);
}

static void prompt_builder(void **state)
{
    const char *opts[3] = {"cat", "dog", "cow"};
    char *q = avl_classification_prompt(opts, 3);
    assert_string_equal(q, "Classify the sounding object into one of the categories below:\n\nA. cat\nB. dog\nC. cow\n\n"
                           "Respond ONLY with a single label letter (A\xe2\x80\x93" "C).");
    avl_free_string(q);
    assert_null(avl_classification_prompt(opts, 0));
    assert_null(avl_classification_prompt(opts, 27));
}

static void alloc_failures(void **state)
{
    /* every allocation failure gives AVL_E_NOMEM (or a clean partial result), never a crash or leak */
    char *buf;
    size_t len;
    assert_int_equal(avl__read_file(M "causal_tracing_step1_people_case_2_small.json", &buf, &len), AVL_OK);
    for (int64_t n = 1; n < 400; n++) {
        avl__alloc_fail_after(n);
        avl_dataset *ds = NULL;
        int rc = avl_dataset_load_memory(buf, len, "f.json", NULL, &ds);
        int64_t used = avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            assert_int_equal(avl_dataset_count(ds), 10);
            avl_dataset_free(ds);
            if (used < n) break;
        } else {
            assert_int_equal(rc, AVL_E_NOMEM);
            assert_null(ds);
        }
    }
    avl__free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(step1_people_frames), cmocka_unit_test(step1_sports_video_file),
        cmocka_unit_test(step2_probabilities), cmocka_unit_test(asd_captioning),
        cmocka_unit_test(result_lines),        cmocka_unit_test(audio_event_seconds),
        cmocka_unit_test(history_is_not_a_manifest), cmocka_unit_test(vggsound_csv),
        cmocka_unit_test(csv_class_list),      cmocka_unit_test(csv_quoting_and_crlf),
        cmocka_unit_test(bad_records),         cmocka_unit_test(bad_files),
        cmocka_unit_test(bad_json_lines),      cmocka_unit_test(check_media_and_root),
        cmocka_unit_test(prompt_builder),      cmocka_unit_test(alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
