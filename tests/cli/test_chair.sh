#!/usr/bin/env bash
# tests/cli/test_chair.sh: `avlens chair` end to end on tests/data/eval: the hand-scored corpus of
# tests/unit/test_eval.c (expected figures worked out there), truth as JSON and as
# VGGSounder-form CSV, merged detections, the committed vocabularies, and the errors.
set -euo pipefail
. "$AVL_SOURCE_DIR/tests/cli/lib.sh"
data=${AVL_TEST_DATA:?}/eval
# expect_line FILE LINE: FILE holds exactly that line
expect_line() { if grep -qxF -- "$2" "$1"; then ok; else bad "$1 lacks line: $2"; echo "--- $1:"; cat "$1"; fi; }

# 1. JSON truth: the figures of test_scores_by_hand
"$cli" chair --vocab "$data/vocab.txt" --captions "$data/captions.jsonl" --truth "$data/truth.json" \
  --dataset set1 --out "$work/json" >"$work/json.txt"
expect_line "$work/json/chair.csv" "A,set1,5,60.0000,33.3333,54.5455,85.7143,66.6667,15,5"
expect_line "$work/json/chair.csv" "B,other,1,100.0000,100.0000,0.0000,0.0000,0.0000,1,1"
expect_line "$work/json/chair.md" "| A | set1 | 5 | 60.0 | 33.3 | 54.5 | 85.7 | 66.7 |"
[ "$(wc -l <"$work/json/chair_details.jsonl")" -eq 6 ] && ok || bad "details: want 6 lines"
grep -q '"id":"c3".*"text":"baby elephant","object":"elephant","hallucinated":false' "$work/json/chair_details.jsonl" && ok || bad "details of c3"
grep -q '^A  *set1  *5  *60.0  *33.3  *54.5  *85.7  *66.7$' "$work/json.txt" && ok || bad "printed table: $(cat "$work/json.txt")"

# 2. The same truth as VGGSounder-form CSV (labels through the vocabulary): same figures
"$cli" chair --vocab "$data/vocab.txt" --captions "$data/captions.jsonl" --truth "$data/truth.csv" \
  --dataset set1 --out "$work/csv" >/dev/null
cmp -s "$work/json/chair.csv" "$work/csv/chair.csv" && ok || bad "CSV truth gives other scores: $(cat "$work/csv/chair.csv")"

# 3. Detections merged into the truth: c2's mice are no longer hallucinated.
#    c2: 4 mentions 1 H, gen 3 with 2 correct, truth {person, mouse} 2 covered.
#    CHAIR_s 3/5 = 60; CHAIR_i 4/15 = 26.6667; P 7/11 = 63.6364; R 7/8 = 87.5; F1 = 98/133 = 73.6842
"$cli" chair --vocab "$data/vocab.txt" --captions "$data/captions.jsonl" --truth "$data/truth.json" \
  --detections "$data/detections.json" --dataset set1 --out "$work/det" >/dev/null
expect_line "$work/det/chair.csv" "A,set1,5,60.0000,26.6667,63.6364,87.5000,73.6842,15,4"
# ... and as one clip's bare list, the id taken from the file name
"$cli" chair --vocab "$data/vocab.txt" --captions "$data/captions.jsonl" --truth "$data/truth.json" \
  --detections "$data/c2.json" --dataset set1 --out "$work/det1" >/dev/null
cmp -s "$work/det/chair.csv" "$work/det1/chair.csv" && ok || bad "bare-list detections differ"

# 4. Committed vocabularies (the default): VGGSound test.csv-form truth.
#    clip 1: alligator=crocodile, dog (H), river=stream (H): 3 mentions 2 H; gen 3, 1 correct; truth {crocodile}
#    clip 2: girl=person; "children swimming": children=person ("swimming" is label-only): 2 mentions 0 H;
#            gen {person} 1 correct; truth {person}
#    CHAIR_s 1/2 = 50; CHAIR_i 2/5 = 40; P 2/4 = 50; R 2/2 = 100; F1 = 2*50*100/150 = 66.6667
"$cli" chair --captions "$data/vgg_captions.jsonl" --truth "$data/vgg_truth.csv" --out "$work/vgg" >/dev/null
expect_line "$work/vgg/chair.csv" "greedy,vggsound-animal,2,50.0000,40.0000,50.0000,100.0000,66.6667,5,2"
# named vocabularies resolve in the vocab dir
"$cli" chair --vocab coco --vocab vggsound --captions "$data/vgg_captions.jsonl" --truth "$data/vgg_truth.csv" \
  --out "$work/vgg2" >/dev/null
cmp -s "$work/vgg/chair.csv" "$work/vgg2/chair.csv" && ok || bad "named vocabularies differ"

# 5. Errors: one line naming the file and the line; usage errors exit 2
set +e
"$cli" chair --vocab "$data/vocab.txt" --captions "$data/captions_bad.jsonl" --truth "$data/truth.json" \
  >/dev/null 2>"$work/err1"
rc=$?
set -e
[ $rc -eq 1 ] && ok || bad "malformed captions: exit $rc"
grep -q "^avlens chair: .*captions_bad.jsonl:2: bad JSON" "$work/err1" && ok || bad "message: $(cat "$work/err1")"
[ "$(wc -l <"$work/err1")" -eq 1 ] && ok || bad "error is not one line"
set +e
"$cli" chair --vocab "$data/vocab.txt" --captions "$data/captions.jsonl" --truth "$data/vgg_truth.csv" \
  >/dev/null 2>"$work/err2"
rc=$?
set -e
[ $rc -eq 1 ] && ok || bad "missing truth: exit $rc"
grep -q "captions.jsonl:1: clip 'c1' has no ground truth" "$work/err2" && ok || bad "message: $(cat "$work/err2")"
set +e
"$cli" chair --captions "$data/captions.jsonl" >/dev/null 2>&1; rc1=$?
"$cli" chair --bogus x >/dev/null 2>&1; rc2=$?
"$cli" chair --vocab /nonexistent/v.txt --captions "$data/captions.jsonl" --truth "$data/truth.json" 2>"$work/err3" >/dev/null; rc3=$?
set -e
[ $rc1 -eq 2 ] && ok || bad "missing --truth: exit $rc1"
[ $rc2 -eq 2 ] && ok || bad "unknown option: exit $rc2"
[ $rc3 -eq 1 ] && grep -q "/nonexistent/v.txt" "$work/err3" && ok || bad "missing vocabulary: exit $rc3"
"$cli" chair --help | grep -q "CHAIR_s" && ok || bad "--help"

finish
