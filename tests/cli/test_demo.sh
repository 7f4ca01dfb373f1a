#!/usr/bin/env bash
# avlens demo end to end: it makes its own checkpoint, report and summary; a rerun overwrites;
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
