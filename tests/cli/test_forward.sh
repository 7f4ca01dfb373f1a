#!/usr/bin/env bash
# tests/cli/test_forward.sh: `avlens forward` on a golden case writes the tensors transformers
# returns (names, dtypes, shapes in the header), and input errors come out as one line naming
# the file and the tensor. The numbers themselves are checked by tests/golden/test_thinker_golden.c.
set -euo pipefail
pass=0
ok() { pass=$((pass + 1)); }
fail() { echo "FAIL: $*"; exit 1; }
G="$AVL_TEST_DATA/golden/text_only"
mkdir -p "$AVL_TEST_WORK"
out="$AVL_TEST_WORK/out.safetensors"

"$AVL_CLI" forward --help | grep -q "usage: avlens forward" && ok
"$AVL_CLI" forward --model "$G/model" --inputs "$G/inputs.safetensors" --out "$out" --hidden --attn 1 --backend ref
hdr=$(head -c 4096 "$out" | tr -d '\0')
for want in '"logits":{"dtype":"F32","shape":[1,33,192]' '"position_ids":{"dtype":"I64","shape":[3,1,33]' \
            '"rope_deltas":{"dtype":"I64","shape":[1,1]' '"hidden_states.0":{"dtype":"F32","shape":[1,33,64]' \
            '"hidden_states.2":{"dtype":"F32","shape":[1,33,64]' '"attn.1":{"dtype":"F32","shape":[33,33]'; do
  case "$hdr" in *"$want"*) ok ;; *) fail "header lacks $want" ;; esac
done
case "$hdr" in *hidden_states.3*|*audio_embeds*) fail "unexpected tensor in $hdr" ;; *) ok ;; esac

# A hand-made inputs file (safetensors: 8-byte little-endian header length, JSON, data) with
# a padded attention mask: input_ids [[1, 2]], attention_mask [[1, 0]].
json='{"attention_mask":{"dtype":"I64","shape":[1,2],"data_offsets":[0,16]},"input_ids":{"dtype":"I64","shape":[1,2],"data_offsets":[16,32]}}'
bad="$AVL_TEST_WORK/padded.safetensors"
{
  printf "\\x$(printf %02x ${#json})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"
  printf '%s' "$json"
  printf '\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
  printf '\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00'
} >"$bad"
set +e
err=$("$AVL_CLI" forward --model "$G/model" --inputs "$bad" --out "$out" 2>&1 >/dev/null); rc=$?
set -e
[ $rc -eq 1 ] || fail "exit $rc for a padded mask"
[ "$err" = "avlens forward: $bad: tensor 'attention_mask' has 0 at position 1: it must be all ones (padding is not supported)" ] \
  && ok || fail "message: $err"
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && ok

set +e
err=$("$AVL_CLI" forward --model "$G/model" --inputs "$AVL_TEST_WORK/none.safetensors" --out "$out" 2>&1 >/dev/null); rc=$?
set -e
[ $rc -eq 1 ] && case "$err" in "avlens forward: "*none.safetensors*) ok ;; *) fail "message: $err" ;; esac
set +e
"$AVL_CLI" forward --model "$G/model" >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 2 ] && ok
echo "$pass passed, 0 failed"
