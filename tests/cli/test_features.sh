#!/usr/bin/env bash
# tests/cli/test_features.sh: `avlens features` end to end on clips synthesised by ffmpeg:
# tensor names, dtypes and shapes in the written safetensors header, and one clear error line
# naming the file (non-zero exit) for each kind of bad input.
set -euo pipefail
. "$AVL_SOURCE_DIR/tests/cli/lib.sh"
cd "$work"

# the JSON header of a safetensors file
header() { local n; n=$(od -An -t u8 -N 8 "$1" | tr -d ' '); dd if="$1" bs=1 skip=8 count="$n" status=none; }
# expect_tensor FILE NAME DTYPE SHAPE: the header has "NAME":{"dtype":"DTYPE","shape":[SHAPE]
expect_tensor() {
  local h; h=$(header "$1" | tr -d ' ')
  if grep -q "\"$2\":{\"dtype\":\"$3\",\"shape\":\[$4\]" <<<"$h"; then ok
  else bad "$1: no $2 $3 [$4] in $h"; fi
}
# expect_fail EXIT SUBSTRING -- ARGS: exit status and one stderr line containing SUBSTRING
expect_fail() {
  local want=$1 sub=$2; shift 3
  set +e; "$cli" features "$@" >out.txt 2>err.txt; local rc=$?; set -e
  if [ "$rc" -ne "$want" ]; then bad "features $* exited $rc, wanted $want: $(cat err.txt)"; return; fi
  if ! grep -q -- "$sub" err.txt; then bad "features $*: stderr lacks '$sub': $(cat err.txt)"; return; fi
  if [ "$want" -eq 1 ] && [ "$(wc -l <err.txt)" -ne 1 ]; then bad "features $*: not one line: $(cat err.txt)"; return; fi
  ok
}

ff -f lavfi -i testsrc2=s=64x48:r=25:d=2 -f lavfi -i sine=f=440:r=48000:d=2 -ac 2 -c:v libx264 -preset ultrafast \
   -pix_fmt yuv420p -c:a aac -shortest av.mp4
ff -f lavfi -i testsrc2=s=48x64:r=7:d=3 -c:v mpeg4 noaudio.mp4
ff -f lavfi -i sine=f=440:r=44100:d=1.5 -c:a pcm_s16le a.wav
ff -f lavfi -i testsrc2=s=100x80:r=2:d=10 f%02d.jpg

"$cli" features --help | grep -q "pixel_values_videos" && ok || bad "--help"

# a video with its own audio
"$cli" features --video av.mp4 --use-audio-in-video --out av.safetensors >/dev/null
expect_tensor av.safetensors pixel_values_videos F32 "1120,1176"   # 4 frames of 280x392 -> 2x20x28
expect_tensor av.safetensors video_grid_thw I64 "1,3"
expect_tensor av.safetensors video_second_per_grid F32 "1"
expect_tensor av.safetensors input_features F32 "1,128,30000"
expect_tensor av.safetensors feature_attention_mask I32 "1,30000"

# portrait, no audio, the authors' pixel cap, 1 fps
"$cli" features --video noaudio.mp4 --fps 1 --max-pixels 100352 --out p.safetensors >p.txt
grep -q "grid 2x" p.txt && ok || bad "noaudio grid: $(cat p.txt)"
if grep -q input_features <<<"$(header p.safetensors)"; then bad "audio written for a silent video"; else ok; fi

# 29.97 fps, 30 frames: 4 sampled, sample_fps 3.996 -> 0.5005 s per grid; the paper's infer.py gives 1
ff -f lavfi -i testsrc2=s=32x32:r=30000/1001:d=1 -c:v mpeg4 ntsc.mp4
"$cli" features --video ntsc.mp4 --out n1.safetensors >n1.txt
grep -q "0.5005 s per grid" n1.txt && ok || bad "ntsc second per grid: $(cat n1.txt)"
"$cli" features --video ntsc.mp4 --processor-fps 2 --fast-processor --out n2.safetensors >n2.txt
grep -q " 1 s per grid" n2.txt && ok || bad "--processor-fps: $(cat n2.txt)"
cmp -s n1.safetensors n2.safetensors && bad "--fast-processor changed nothing" || ok

# the paper's layout: 20 JPGs for 10 s at 2 fps, with a separate audio file
list=$(ls f*.jpg | head -20 | paste -sd, -)
"$cli" features --frames "$list" --audio a.wav --out fr.safetensors >fr.txt
expect_tensor fr.safetensors pixel_values_videos F32 "$((10 * 6 * 8)),1176"  # 100x80 -> 112x84
expect_tensor fr.safetensors video_grid_thw I64 "1,3"
expect_tensor fr.safetensors input_features F32 "1,128,30000"
grep -q "1 s per grid" fr.txt && ok || bad "frames second per grid: $(cat fr.txt)"

# audio only
"$cli" features --audio a.wav --out a.safetensors >a.txt
grep -q "150 of 30000" a.txt && ok || bad "audio mask: $(cat a.txt)"

# bad input: each a clear line naming the file, exit 1
head -c 3000 av.mp4 > truncated.mp4
echo "this is not a video" > text.mp4
: > empty.mp4
expect_fail 1 "truncated.mp4" -- --video truncated.mp4 --out x.safetensors
expect_fail 1 "text.mp4" -- --video text.mp4 --out x.safetensors
expect_fail 1 "empty.mp4: empty file" -- --video empty.mp4 --out x.safetensors
expect_fail 1 "missing.mp4: cannot open" -- --video missing.mp4 --out x.safetensors
expect_fail 1 "f99.jpg" -- --frames f01.jpg,f99.jpg --out x.safetensors
expect_fail 1 "noaudio.mp4: no audio stream" -- --video noaudio.mp4 --use-audio-in-video --out x.safetensors
expect_fail 1 "missing.wav" -- --video noaudio.mp4 --audio missing.wav --out x.safetensors
expect_fail 1 "a.wav: no video stream" -- --video a.wav --out x.safetensors
expect_fail 1 "nodir/x.safetensors" -- --audio a.wav --out nodir/x.safetensors
# --prompt: the expanded ids as the processor makes them, and `avlens forward` consumes the file
"$AVL_CLI" mkmodel --out tiny >/dev/null
"$AVL_CLI" features --video av.mp4 --use-audio-in-video --prompt "What is it?" --model tiny --out p.safetensors >p.txt \
  && ok || bad "features --prompt failed: $(cat p.txt)"
grep -q "tokens after expansion" p.txt && ok || bad "no prompt line: $(cat p.txt)"
"$AVL_CLI" forward --model tiny --inputs p.safetensors --out o.safetensors --use-audio-in-video >/dev/null 2>fw.txt \
  && ok || bad "forward on features --prompt output: $(cat fw.txt)"
expect_fail 1 "nomodel" -- --video av.mp4 --prompt "x" --model nomodel --out x.safetensors
expect_fail 2 "go together" -- --video av.mp4 --prompt "x" --out x.safetensors
# usage errors, exit 2
expect_fail 2 "--out is required" -- --video av.mp4
expect_fail 2 "not both" -- --video av.mp4 --frames f01.jpg --out x.safetensors
expect_fail 2 "empty name at position 2" -- --frames f01.jpg,,f02.jpg --out x.safetensors
expect_fail 2 "--fps" -- --video av.mp4 --fps zero --out x.safetensors
expect_fail 2 "unknown option" -- --video av.mp4 --colour --out x.safetensors
expect_fail 2 "needs --video" -- --audio a.wav --use-audio-in-video --out x.safetensors

finish
