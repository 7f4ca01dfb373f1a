#!/usr/bin/env bash
# tests/cli/test_tokenize.sh: `avlens tokenize` end to end on the tiny tokenizer: the four
# modes, and that every broken tokenizer file gives a non-zero exit and one line naming the
# file and the problem.
set -euo pipefail
tiny="$AVL_TEST_DATA/tokenizer/tiny/tokenizer.json"
w="$AVL_TEST_WORK"
rm -rf "$w" && mkdir -p "$w"
passed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; exit 1; }

# encode stdin; added tokens by name (ids 1 and 2 in the tiny tokenizer)
out=$(printf '<|im_start|>user\nHello<|im_end|>' | "$AVL_CLI" tokenize --tokenizer "$tiny")
[[ "$out" == "[1,"*",2]" ]] || fail "encode: $out"; ok
# decode gives the text back
back=$(printf '%s' "$out" | "$AVL_CLI" tokenize --tokenizer "$tiny" --decode)
[ "$back" = $'<|im_start|>user\nHello<|im_end|>' ] || fail "decode: $back"; ok
back=$(printf '%s' "$out" | "$AVL_CLI" tokenize --tokenizer "$tiny" --decode --skip-special)
[ "$back" = $'user\nHello' ] || fail "decode --skip-special: $back"; ok
# --jsonl: a string, {"text"}, {"b64"} (0xFF reads as U+FFFD)
printf '%s\n' '"a b"' '{"text": "a b"}' '{"b64": "/w=="}' '"\ufffd"' >"$w/in.jsonl"
"$AVL_CLI" tokenize --tokenizer "$tiny" --jsonl <"$w/in.jsonl" >"$w/out.jsonl"
[ "$(wc -l <"$w/out.jsonl")" -eq 4 ] || fail "jsonl line count"
[ "$(sed -n 1p "$w/out.jsonl")" = "$(sed -n 2p "$w/out.jsonl")" ] || fail "jsonl string vs text"
[ "$(sed -n 3p "$w/out.jsonl")" = "$(sed -n 4p "$w/out.jsonl")" ] || fail "jsonl b64 invalid byte vs U+FFFD"; ok
# --chat --text, and --chat ids start with <|im_start|>
msgs='[{"role":"user","content":[{"type":"video","video":"v.mp4"},{"type":"audio","audio":"a.wav"},{"type":"text","text":"Hi"}]}]'
text=$(printf '%s' "$msgs" | "$AVL_CLI" tokenize --chat --text)
want=$'<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_bos|><|VIDEO|><|vision_eos|><|audio_bos|><|AUDIO|><|audio_eos|>Hi<|im_end|>\n<|im_start|>assistant'
[ "$text" = "$want" ] || fail "chat text: $text"; ok
ids=$(printf '%s' "$msgs" | "$AVL_CLI" tokenize --tokenizer "$tiny" --chat)
[[ "$ids" == "[1,"* ]] || fail "chat ids: $ids"; ok
noprompt=$(printf '%s' "$msgs" | "$AVL_CLI" tokenize --chat --text --no-generation-prompt)
[[ "$noprompt" == *"Hi<|im_end|>" ]] || fail "--no-generation-prompt"; ok
# the folder form loads too
"$AVL_CLI" tokenize --tokenizer "$AVL_TEST_DATA/tokenizer/tiny/vm" </dev/null >/dev/null; ok
"$AVL_CLI" tokenize --help | grep -q -- "--jsonl" || fail "help"; ok

# errors: exit non-zero, one line, naming the file and the problem
expect_fail() { # FILE WORDS...
    local f=$1
    shift
    local err rc=0
    err=$(echo hi | "$AVL_CLI" tokenize --tokenizer "$f" 2>&1 >/dev/null) || rc=$?
    [ "$rc" -ne 0 ] || fail "$f: exit 0"
    [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "$f: more than one line: $err"
    [[ "$err" == *"$(basename "$f")"* ]] || fail "$f: message does not name the file: $err"
    for wd in "$@"; do [[ "$err" == *"$wd"* ]] || fail "$f: message lacks '$wd': $err"; done
    ok
}
printf '{"model": ' >"$w/notjson.json"
expect_fail "$w/notjson.json" "not JSON"
printf '{"model": {"type": "BPE", "merges": []}}' >"$w/novocab.json"
expect_fail "$w/novocab.json" "model.vocab is missing"
sed 's/"merges": \[/"merges": [\n  "Ġ nosuchtoken",/' "$tiny" >"$w/badmerge.json"
expect_fail "$w/badmerge.json" "merge 0" "nosuchtoken" "not in model.vocab"
sed 's/"Regex": "(?i:/"Regex": "((?i:/' "$tiny" >"$w/badregex.json"
expect_fail "$w/badregex.json" "regex does not compile"
expect_fail "$w/missing.json" "no such file"
rc=0; "$AVL_CLI" tokenize --bogus 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "unknown option exit $rc"; ok
rc=0; err=$(printf '[1,' | "$AVL_CLI" tokenize --tokenizer "$tiny" --decode 2>&1) || rc=$?
[ "$rc" -ne 0 ] && [[ "$err" == *"not a JSON array"* ]] || fail "decode bad input: $err"; ok
rc=0; err=$(printf '"a"\n{oops\n' | "$AVL_CLI" tokenize --tokenizer "$tiny" --jsonl 2>&1 >/dev/null) || rc=$?
[ "$rc" -ne 0 ] && [[ "$err" == *"line 2"* ]] || fail "jsonl bad line: $err"; ok

echo "$passed passed, 0 failed"
