#!/usr/bin/env bash
# tests/cli/test_caption.sh: `avlens caption` end to end on a made checkpoint and a made clip:
# every method runs and repeats itself, ASD with alpha 0 prints the vanilla caption, the
# manifest route writes records `avlens chair --captions` reads, resumes and shards, and usage
# errors exit 2 with one line.
set -euo pipefail
. "$AVL_SOURCE_DIR/tests/cli/lib.sh"

"$cli" caption --help | grep -q -- "--gamma-base" && ok || bad "caption --help"
"$cli" mkmodel --out "$work/m" --seed 2 >/dev/null
"$cli" mkclip --out "$work/c.mp4" --size 64x48 >/dev/null
"$cli" mkclip --out "$work/d.mp4" --size 64x48 --color blue --tone noise >/dev/null
base=(--model "$work/m" --video "$work/c.mp4" --use-audio-in-video --max-new-tokens 4 --threads 1 --dims 0,1 --tau 1.5)

for d in vanilla asd reverse-asd pai vcd; do
  "$cli" caption "${base[@]}" --decode "$d" >"$work/$d.1" 2>/dev/null && ok || bad "caption --decode $d failed"
done
# repeatable (VCD draws noise: seeded)
for d in asd vcd; do
  "$cli" caption "${base[@]}" --decode "$d" >"$work/$d.2" 2>/dev/null
  cmp -s "$work/$d.1" "$work/$d.2" && ok || bad "caption --decode $d differs between two runs"
done
"$cli" caption "${base[@]}" --decode asd --alpha 0 --edit-layers 0-1 --target-layers 0-1 >"$work/asd0" 2>/dev/null
cmp -s "$work/asd0" "$work/vanilla.1" && ok || bad "asd --alpha 0 is not the vanilla caption"
"$cli" caption "${base[@]}" --decode asd --edit-layers 0-1 --target-layers 0-1 --no-shared-prefix >"$work/asd2" 2>/dev/null
"$cli" caption "${base[@]}" --decode asd --edit-layers 0-1 --target-layers 0-1 >"$work/asd1" 2>/dev/null
cmp -s "$work/asd1" "$work/asd2" && ok || bad "asd with and without the shared prefix differ"
"$cli" caption "${base[@]}" --decode vcd --alpha 0 >"$work/vcd0" 2>/dev/null
cmp -s "$work/vcd0" "$work/vanilla.1" && ok || bad "vcd --alpha 0 is not the vanilla caption"
"$cli" caption "${base[@]}" --decode pai --alpha 0 --pai-gamma 1 >"$work/pai0" 2>/dev/null
cmp -s "$work/pai0" "$work/vanilla.1" && ok || bad "pai --alpha 0 --pai-gamma 1 is not the vanilla caption"

# the manifest route: records, resume, shards, and chair reading them
printf '{"id":"c1","video":"c.mp4"}\n{"id":"d2","video":"d.mp4"}\n' >"$work/clips.jsonl"
man=(--model "$work/m" --manifest "$work/clips.jsonl" --media-root "$work" --use-audio-in-video --max-new-tokens 4
     --threads 1 --dims 0,1 --tau 1.5 --decode asd --dataset toy)
"$cli" caption "${man[@]}" --out "$work/res" 2>/dev/null && ok || bad "caption --manifest failed"
f=$work/res/caption.asd/shard-0-of-1.jsonl
[ "$(wc -l <"$f")" = 2 ] && ok || bad "two records wanted: $(cat "$f")"
grep -q '"id":"c1".*"caption":.*"method":"asd","dataset":"toy"' "$f" && ok || bad "record fields: $(cat "$f")"
"$cli" caption "${man[@]}" --out "$work/res" 2>"$work/err2"
grep -q "2 skipped" "$work/err2" && [ "$(wc -l <"$f")" = 2 ] && ok || bad "resume: $(cat "$work/err2")"
"$cli" caption "${man[@]}" --out "$work/sh" --shard 1/2 2>/dev/null
n1=$(wc -l <"$work"/sh/caption.asd/shard-1-of-2.jsonl)
want=$("$cli" manifest "$work/clips.jsonl" --list --shard 1/2 2>/dev/null | wc -l)
[ "$n1" = "$want" ] && ok || bad "shard 1/2 holds $n1 records, avlens manifest selects $want"
echo '{"c1":["dog"],"d2":["cat"]}' >"$work/truth.json"
"$cli" chair --captions "$f" --truth "$work/truth.json" >"$work/chair.txt"
grep -q "^asd  *toy  *2 " "$work/chair.txt" && ok || bad "chair reads the records: $(cat "$work/chair.txt")"

# errors
expect 2 "--model is required" "$cli" caption --video "$work/c.mp4"
expect 2 "one of --video, --frames or --manifest" "$cli" caption --model "$work/m"
expect 2 "one of --video, --frames or --manifest" "$cli" caption --model "$work/m" --video a --manifest b
expect 2 "--decode wants" "$cli" caption --model "$work/m" --video "$work/c.mp4" --decode opera
expect 2 "--manifest needs --out" "$cli" caption --model "$work/m" --manifest "$work/clips.jsonl"
expect 2 "--alpha" "$cli" caption --model "$work/m" --video "$work/c.mp4" --alpha x
expect 2 "--edit-layers" "$cli" caption --model "$work/m" --video "$work/c.mp4" --edit-layers 3
expect 2 "the model has" "$cli" caption --model "$work/m" --video "$work/c.mp4" --target-layers 0-40
expect 2 "needs a value" "$cli" caption --model "$work/m" --video "$work/c.mp4" --decode
expect 1 "no known sink dimensions" "$cli" caption --model "$work/m" --video "$work/c.mp4" --decode asd
expect 1 "missing.mp4" "$cli" caption --model "$work/m" --video "$work/missing.mp4"

finish
