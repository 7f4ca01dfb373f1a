#!/usr/bin/env bash
# avlens demo end to end: it makes its own checkpoint, three synthetic clips, runs each through
# features -> prompt -> thinker, and writes a report and a summary; the summary's option
# probabilities are what `avlens run` gives on the same clip; a rerun gives the same summary;
# a bad --out is a one-line error with a non-zero exit.
set -euo pipefail
rm -rf "$AVL_TEST_WORK" && mkdir -p "$AVL_TEST_WORK" && cd "$AVL_TEST_WORK"
pass=0
ok() { pass=$((pass + 1)); }
fail() { echo "FAIL: $*"; echo "$pass passed, 1 failed"; exit 1; }

"$AVL_CLI" demo --out d >log.txt 2>&1 || fail "demo exited $?: $(cat log.txt)"
for f in d/model/config.json d/model/model.safetensors d/model/tokenizer.json d/report.html d/summary.json; do
  [ -s "$f" ] || fail "missing $f"
done
ok
grep -q "<table>" d/report.html && grep -q "Describe what you see and hear" d/report.html || fail "report lacks table or prompt"
ok
# the prompt tokens in summary.json are what `avlens tokenize --chat` gives for the same messages
grep -q '"prompt_tokens": \[' d/summary.json || fail "summary lacks prompt tokens"
ok
# three clips, each with its grid, token counts, answers and option probabilities
for c in red_square_tone green_circle_noise blue_square_silence; do
  [ -s "d/clips/$c.mp4" ] || fail "missing clip $c"
  line=$(grep "\"clip\": \"d/clips/$c.mp4\"" d/summary.json) || fail "summary lacks $c"
  grep -q '"grid_thw": \[2, 20, 28\], "sequence_tokens": [0-9]*, "video_tokens": 280, "audio_tokens": 51, "caption": ' <<<"$line" \
    || fail "$c: shapes: $line"
  sum=$(sed -n 's/.*"first_step": {"A": \([-0-9.e]*\), "B": \([-0-9.e]*\), "C": \([-0-9.e]*\)}.*/\1 \2 \3/p' <<<"$line" |
    awk '{ print $1 + $2 + $3 }')
  awk -v s="$sum" 'BEGIN { exit !(s > 0 && s <= 1) }' || fail "$c: probabilities sum to '$sum'"
done
ok
grep -q "Three synthetic clips" d/report.html && grep -q "<svg" d/report.html && grep -q "green_circle_noise" d/report.html \
  || fail "report lacks the clips table"
ok
# the demo's numbers are `avlens run`'s on the same clip and prompt
Q=$'Classify the moving object into one of the categories below:\n\nA. red square\nB. green circle\nC. blue square\n\nRespond ONLY with a single label letter (A\xe2\x80\x93C).'
OMP_WAIT_POLICY=passive "$AVL_CLI" run --model d/model --video d/clips/green_circle_noise.mp4 --use-audio-in-video \
  --prompt "$Q" --max-new-tokens 3 --score A,B,C 2>/dev/null | tail -1 >run.json
want=$(grep '"clip": "d/clips/green_circle_noise.mp4"' d/summary.json | sed -n 's/.*"first_step": {"A": \([-0-9.e]*\),.*/\1/p')
got=$(sed -n 's/.*"first_step": {"A": \([-0-9.e]*\),.*/\1/p' run.json)
awk -v a="$want" -v b="$got" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 1e-5 * b) }' \
  || fail "p(A): demo $want, run $got"
label=$(grep '"clip": "d/clips/green_circle_noise.mp4"' d/summary.json | sed -n 's/.*"label": \("[^"]*"\).*/\1/p')
grep -q "^{\"answer\": $label," run.json || fail "label: demo $label, run $(cat run.json)"
ok
cp d/summary.json first.json
"$AVL_CLI" demo --out d >/dev/null 2>&1 || fail "rerun failed"
cmp -s first.json d/summary.json || fail "a rerun with the same seed changed the summary"
ok
"$AVL_CLI" inspect d/model >/dev/null || fail "inspect rejects the demo checkpoint"
ok
touch not-a-dir
if "$AVL_CLI" demo --out not-a-dir/x 2>err.txt; then fail "demo into a file's subfolder succeeded"; fi
grep -q "not-a-dir/x" err.txt || fail "error does not name the folder: $(cat err.txt)"
[ "$(wc -l <err.txt)" -eq 1 ] || fail "error is not one line: $(cat err.txt)"
ok
echo "$pass passed, 0 failed"
