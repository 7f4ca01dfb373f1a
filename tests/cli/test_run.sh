#!/usr/bin/env bash
# tests/cli/test_run.sh: `avlens run` end to end on a tiny mkmodel checkpoint and clips made by
# `avlens mkclip` and by the ffmpeg program: deterministic answers (greedy, and sampled for a
# seed), --score probabilities (in [0, 1], summing to <= 1, equal to the softmax of the logits
# `avlens forward` computes on the inputs `--dump-inputs` wrote), --inputs giving the same answer
# as the clip, every media route, and one-line errors naming the file for bad inputs.
set -euo pipefail
. "$AVL_SOURCE_DIR/tests/cli/lib.sh"
cd "$work"
export OMP_WAIT_POLICY=passive
# expect_fail EXIT SUBSTRING -- ARGS: exit status and one stderr line containing SUBSTRING
expect_fail() {
  local want=$1 sub=$2; shift 3
  set +e; "$cli" run "$@" >out.txt 2>err.txt; local rc=$?; set -e
  if [ "$rc" -ne "$want" ]; then bad "run $* exited $rc, wanted $want: $(cat err.txt)"; return; fi
  if ! grep -q -- "$sub" err.txt; then bad "run $*: stderr lacks '$sub': $(cat err.txt)"; return; fi
  if [ "$want" -eq 1 ] && [ "$(wc -l <err.txt)" -ne 1 ]; then bad "run $*: not one line: $(cat err.txt)"; return; fi
  ok
}
# json_num FILE KEY1 KEY2: the number at "KEY1": {... "KEY2": N ...} of a one-line JSON object
json_num() { sed -n "s/.*\"$2\": {[^}]*\"$3\": \([-0-9.e]*\).*/\1/p" "$1"; }

"$cli" mkmodel --out m >/dev/null
"$cli" mkclip --out red.mp4 --seconds 2 --color red --tone 440 >/dev/null
"$cli" mkclip --out a.wav --seconds 1.5 --tone noise >/dev/null
ff -f lavfi -i testsrc2=s=96x64:r=8:d=2 -f lavfi -i sine=f=660:r=22050:d=2 -c:v mpeg4 -c:a aac -shortest ff.mp4
ff -f lavfi -i testsrc2=s=80x60:r=2:d=2 fr%d.jpg

"$cli" run --help | grep -q -- "--use-audio-in-video" && ok || bad "--help"

Q="What colour is the moving shape? Answer with A, B or C."
# greedy: the same answer twice; progress on stderr
"$cli" run --model m --video red.mp4 --use-audio-in-video --prompt "$Q" --max-new-tokens 6 >g1.txt 2>g1.err
"$cli" run --model m --video red.mp4 --use-audio-in-video --prompt "$Q" --max-new-tokens 6 >g2.txt 2>/dev/null
cmp -s g1.txt g2.txt && ok || bad "greedy answers differ: $(cat g1.txt) / $(cat g2.txt)"
grep -q "prompt .* tokens (280 video, 51 audio)" g1.err && grep -q "prefill done" g1.err && grep -q "encoders done in" g1.err \
  && ok || bad "progress lines: $(cat g1.err)"
[ "$(wc -l <g1.txt)" -eq 1 ] && ok || bad "answer is not one line: $(cat g1.txt)"

# sampling: a seed reproduces the answer
for s in 1 2; do
  "$cli" run --model m --video red.mp4 --use-audio-in-video --prompt "$Q" --max-new-tokens 6 --temperature 0.9 \
    --top-p 0.95 --top-k 40 --seed 7 >s$s.txt 2>/dev/null
done
cmp -s s1.txt s2.txt && ok || bad "sampled answers differ for one seed"

# --score: probabilities in [0, 1], summing to <= 1; the paper's max over steps >= the first step
"$cli" run --model m --video red.mp4 --use-audio-in-video --prompt "$Q" --max-new-tokens 4 --score A,B,C \
  --dump-inputs in.safetensors >sc.txt 2>/dev/null
tail -1 sc.txt >sc.json
grep -q '^{"answer": .*"first_step": {"A": .*"max_over_steps": {"A": ' sc.json && ok || bad "score JSON: $(cat sc.json)"
sum=0
for o in A B C; do
  f=$(json_num sc.json first_step $o); m=$(json_num sc.json max_over_steps $o)
  awk -v f="$f" -v m="$m" 'BEGIN { exit !(f >= 0 && f <= 1 && m >= f && m <= 1) }' && ok || bad "$o: first $f, max $m"
  sum=$(awk -v a="$sum" -v b="$f" 'BEGIN { print a + b }')
done
awk -v s="$sum" 'BEGIN { exit !(s > 0 && s <= 1) }' && ok || bad "first-step probabilities sum to $sum"

# the same number from `avlens forward` on the dumped inputs: softmax of the last row of logits
"$cli" forward --model m --inputs in.safetensors --use-audio-in-video --out fwd.safetensors
hlen=$(od -An -t u8 -N 8 fwd.safetensors | tr -d ' ')
hdr=$(dd if=fwd.safetensors bs=1 skip=8 count="$hlen" status=none | tr -d ' ')
shape=$(sed -n 's/.*"logits":{"dtype":"F32","shape":\[1,\([0-9]*\),\([0-9]*\)\],"data_offsets":\[\([0-9]*\),.*/\1 \2 \3/p' <<<"$hdr")
read -r L V off <<<"$shape"
idA=$(echo -n "A" | "$cli" tokenize --tokenizer m | tr -d '[] ' | cut -d, -f1)
pA=$(od -An -v -t f4 -j $((8 + hlen + off + (L - 1) * V * 4)) -N $((V * 4)) fwd.safetensors | tr -s ' ' '\n' | grep -v '^$' |
  awk -v id="$idA" '{ x[NR - 1] = $1; if (NR == 1 || $1 > mx) mx = $1 } END { for (i in x) z += exp(x[i] - mx); printf "%.9g", exp(x[id] - mx) / z }')
fA=$(json_num sc.json first_step A)
awk -v a="$pA" -v b="$fA" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * b + 1e-9) }' && ok \
  || bad "p(A) from forward $pA, from run --score $fA"
# --inputs reproduces the clip's answer and probabilities exactly
"$cli" run --model m --inputs in.safetensors --use-audio-in-video --max-new-tokens 4 --score A,B,C >si.txt 2>/dev/null
cmp -s sc.txt si.txt && ok || bad "--inputs differs: $(cat si.txt) vs $(cat sc.txt)"

# other routes: an ffmpeg-made clip with its own audio, the same clip with a separate audio file,
# frame images with an audio file as the video's audio, audio only, text only
"$cli" run --model m --video ff.mp4 --use-audio-in-video --prompt "$Q" --max-new-tokens 3 >/dev/null 2>r1.err \
  && grep -q "video: 4 frames 96x64" r1.err && ok || bad "ffmpeg clip: $(cat r1.err)"
"$cli" run --model m --video ff.mp4 --audio a.wav --prompt "$Q" --max-new-tokens 3 >/dev/null 2>r2.err \
  && grep -q "37 audio)" r2.err && ok || bad "video + separate audio: $(cat r2.err)"
"$cli" run --model m --frames fr1.jpg,fr2.jpg,fr3.jpg,fr4.jpg --audio a.wav --use-audio-in-video --prompt "$Q" \
  --max-new-tokens 3 >/dev/null 2>r3.err && ok || bad "frames: $(cat r3.err)"
"$cli" run --model m --audio a.wav --prompt "What do you hear?" --max-new-tokens 3 --system "Be brief." >/dev/null 2>r4.err \
  && grep -q "(0 video, 37 audio)" r4.err && ok || bad "audio only: $(cat r4.err)"
"$cli" run --model m --prompt "Hello" --max-new-tokens 3 >/dev/null 2>r5.err && ok || bad "text only: $(cat r5.err)"

# bad inputs: one line naming the file, exit 1
head -c 3000 red.mp4 >corrupt.mp4
mkdir -p notok && cp m/config.json m/model.safetensors notok/
expect_fail 1 "missing.mp4: cannot open" -- --model m --video missing.mp4 --prompt "$Q"
expect_fail 1 "corrupt.mp4" -- --model m --video corrupt.mp4 --prompt "$Q"
expect_fail 1 "notok: no usable tokenizer" -- --model notok --video red.mp4 --prompt "$Q"
expect_fail 1 "nomodel" -- --model nomodel --video red.mp4 --prompt "$Q"
expect_fail 1 "missing.safetensors" -- --model m --inputs missing.safetensors
"$cli" mkclip --out silent.mp4 --tone none >/dev/null
expect_fail 1 "silent.mp4: no audio stream" -- --model m --video silent.mp4 --use-audio-in-video --prompt "$Q"
# usage errors, exit 2
expect_fail 2 "--prompt is required" -- --model m --video red.mp4
expect_fail 2 "--model is required" -- --video red.mp4 --prompt "$Q"
expect_fail 2 "not both" -- --model m --video red.mp4 --frames fr1.jpg --prompt "$Q"
expect_fail 2 "--temperature" -- --model m --video red.mp4 --prompt "$Q" --temperature hot
expect_fail 2 "empty one" -- --model m --video red.mp4 --prompt "$Q" --score A,,B
expect_fail 2 "unknown option '--colour'" -- --model m --video red.mp4 --prompt "$Q" --colour
expect_fail 2 "--prompt needs a value" -- --model m --video red.mp4 --prompt

# mkclip: its own errors
set +e; "$cli" mkclip --out x.mp4 --size 101x80 2>err.txt; rc=$?; set -e
[ "$rc" -eq 1 ] && grep -q "x.mp4: size 101x80" err.txt && ok || bad "mkclip odd size: $rc $(cat err.txt)"
set +e; "$cli" mkclip --out x.mp4 --color mauve 2>err.txt; rc=$?; set -e
[ "$rc" -eq 2 ] && grep -q "mauve" err.txt && ok || bad "mkclip colour: $rc $(cat err.txt)"

finish
