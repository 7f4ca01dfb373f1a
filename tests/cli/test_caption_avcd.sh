#!/usr/bin/env bash
# tests/cli/test_caption_avcd.sh: `avlens caption --decode avcd|fmd` end to end on a made
# checkpoint and a made clip: both run; AVCD with the entropy gate above log V and FMD with no
# fork layer print the vanilla caption; AVCD (gate 0: masked passes at every step) and FMD (one
# fork layer) give the same caption with and without the shared prefix; the new flags' errors.
# Kept apart from test_caption.sh so that each stays within its time limit under the sanitizers.
set -euo pipefail
. "$AVL_SOURCE_DIR/tests/cli/lib.sh"

for f in avcd fmd --entropy-gate --fork-layers --merge-weight; do
  "$cli" caption --help | grep -q -- "$f" && ok || bad "caption --help lacks $f"
done
"$cli" mkmodel --out "$work/m" --seed 2 >/dev/null
"$cli" mkclip --out "$work/c.mp4" --size 64x48 >/dev/null
base=(--model "$work/m" --video "$work/c.mp4" --use-audio-in-video --max-new-tokens 3 --threads 1)

"$cli" caption "${base[@]}" >"$work/vanilla" 2>/dev/null && ok || bad "caption (vanilla) failed"
for d in avcd fmd; do
  "$cli" caption "${base[@]}" --decode "$d" >"$work/$d" 2>/dev/null && ok || bad "caption --decode $d failed"
  [ -s "$work/$d" ] && ok || bad "caption --decode $d printed nothing"
done
"$cli" caption "${base[@]}" --decode avcd --entropy-gate 1000 >"$work/avcd-g" 2>/dev/null
cmp -s "$work/avcd-g" "$work/vanilla" && ok || bad "avcd --entropy-gate 1000 is not the vanilla caption"
"$cli" caption "${base[@]}" --decode fmd --fork-layers 0 >"$work/fmd0" 2>/dev/null
cmp -s "$work/fmd0" "$work/vanilla" && ok || bad "fmd --fork-layers 0 is not the vanilla caption"
short=(--model "$work/m" --video "$work/c.mp4" --use-audio-in-video --max-new-tokens 2 --threads 1)
for d in "avcd --entropy-gate 0 --alpha 2 --beta 0.5" "fmd --fork-layers 1"; do
  # shellcheck disable=SC2086
  "$cli" caption "${short[@]}" --decode $d >"$work/s1" 2>/dev/null
  # shellcheck disable=SC2086
  "$cli" caption "${short[@]}" --decode $d --no-shared-prefix >"$work/s2" 2>/dev/null
  cmp -s "$work/s1" "$work/s2" && ok || bad "$d with and without the shared prefix differ"
done

expect 2 "--fork-layers" "$cli" caption --model "$work/m" --video "$work/c.mp4" --decode fmd --fork-layers 99
expect 2 "--fork-layers wants" "$cli" caption --model "$work/m" --video "$work/c.mp4" --fork-layers -1
expect 2 "--merge-weight" "$cli" caption --model "$work/m" --video "$work/c.mp4" --merge-weight 2
expect 2 "--entropy-gate" "$cli" caption --model "$work/m" --video "$work/c.mp4" --entropy-gate x
expect 2 "--decode wants" "$cli" caption --model "$work/m" --video "$work/c.mp4" --decode fork

finish
