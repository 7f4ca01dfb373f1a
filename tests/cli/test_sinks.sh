#!/usr/bin/env bash
# tests/cli/test_sinks.sh: `avlens sinks` and `avlens sinkdims` end to end on tiny checkpoints:
# the JSON they print, repeatability, and every usage and input error with its exit status.
set -euo pipefail
. "$AVL_SOURCE_DIR/tests/cli/lib.sh"
data=${AVL_TEST_DATA:?}

"$cli" sinks --help | grep -q -- "--k-divide" && ok || bad "sinks --help"
"$cli" sinkdims --help | grep -q -- "--ratio" && ok || bad "sinkdims --help"

# the golden audio-in-video case: 101 positions, 6 video and 62 audio tokens, 2 layers
g=$data/golden/audio_in_video
args=(--model "$g/model" --inputs "$g/inputs.safetensors" --use-audio-in-video --dims 0,1 --tau 2)
"$cli" sinks "${args[@]}" >"$work/a.json"
"$cli" sinks "${args[@]}" >"$work/b.json"
cmp -s "$work/a.json" "$work/b.json" && ok || bad "sinks output differs between two runs"
# avlens mds is the same run under the name the paper uses
"$cli" mds "${args[@]}" >"$work/mds.json"
cmp -s "$work/a.json" "$work/mds.json" && ok || bad "avlens mds differs from avlens sinks"
"$cli" mds --help | grep -q "is avlens sinks" && ok || bad "mds --help"
for want in '"L": 101' '"n_video": 6' '"n_audio": 62' '"K": 50' '"k_divide": 2' '"layer_counts"' \
            '"mds_mean"' '"video_split"' '"audio_split"' '"unimodal"' '"cross_modal"'; do
  grep -qF -- "$want" "$work/a.json" && ok || bad "sinks JSON lacks $want"
done
n_sinks=$(grep -c '"rank"' "$work/a.json")
[ "$n_sinks" -ge 1 ] && [ "$n_sinks" -le 50 ] && ok || bad "$n_sinks sinks"
"$cli" sinks "${args[@]}" --k-divide 101 >"$work/c.json"
[ "$(grep -c '"rank"' "$work/c.json")" = 1 ] && ok || bad "--k-divide 101 keeps one sink"
"$cli" sinks "${args[@]}" --tau 1000 >"$work/d.json"
[ "$(grep -c '"rank"' "$work/d.json" || true)" = 0 ] && ok || bad "--tau 1000 leaves no sink"

# sinkdims on a made checkpoint (it needs the tokenizer)
"$cli" mkmodel --out "$work/m" --seed 2 >/dev/null
"$cli" sinkdims --model "$work/m" >"$work/dims.json"
grep -q '"dims"' "$work/dims.json" && grep -q '"layers"' "$work/dims.json" && ok || bad "sinkdims JSON"
"$cli" sinkdims --model "$work/m" --ratio 0 --floor 0 --max 3 >"$work/dims0.json"
grep -q '"dims": \[$' "$work/dims0.json" && ok || bad "sinkdims with no bar keeps some dimensions"

# the clip route: a 2 s video with its audio track through the made checkpoint's towers
ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i testsrc2=s=64x48:r=25:d=2 \
  -f lavfi -i sine=f=440:r=48000:d=2 -ac 2 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac \
  -shortest "$work/av.mp4"
"$cli" sinks --model "$work/m" --video "$work/av.mp4" --dims 0,1 --tau 1.5 --threads 1 >"$work/v.json"
grep -q '"n_video": 280' "$work/v.json" && grep -q '"n_audio": 50' "$work/v.json" && ok || bad "sinks --video"
expect 1 "missing.mp4" "$cli" sinks --model "$work/m" --video "$work/missing.mp4" --dims 0

# errors
expect 2 "required" "$cli" sinks --inputs "$g/inputs.safetensors"
expect 2 "one of --inputs or --video" "$cli" sinks --model "$g/model"
expect 2 "one of --inputs or --video" "$cli" sinks --model "$g/model" --inputs a --video b
expect 2 "--dims" "$cli" sinks "${args[@]}" --dims 1,x
expect 2 "--k-divide" "$cli" sinks "${args[@]}" --k-divide 0
expect 2 "--tau" "$cli" sinks "${args[@]}" --tau -1
expect 1 "no known sink dimensions" "$cli" sinks --model "$g/model" --inputs "$g/inputs.safetensors"
expect 1 "missing.safetensors" "$cli" sinks --model "$g/model" --inputs "$work/missing.safetensors" --dims 0
expect 1 "dimension 999" "$cli" sinks --model "$g/model" --inputs "$g/inputs.safetensors" --use-audio-in-video --dims 999
expect 2 "--model is required" "$cli" sinkdims
expect 1 "vocab.json" "$cli" sinkdims --model "$g/model"

finish
