#!/usr/bin/env bash
# tests/cli/test_dataset_runs.sh: the data-set commands end to end on a tiny checkpoint and a
# manifest of made clips in the authors' JSON format: dominance -> sinks (+ mds) -> trace ->
# report; the records' schema fields; resuming (a run stopped after one sample, a sharded run)
# gives the same merged records as one uninterrupted run; bad samples become error records.
set -euo pipefail
. "$AVL_SOURCE_DIR/tests/cli/lib.sh"
cd "$work"

# the records of analysis $2 in results folder $1, merged (one per id, sorted), without their
# timestamps (to compare runs)
norm() {
  rm -rf norm.tmp && "$cli" merge --in "$1" --out norm.tmp >/dev/null
  sed 's/,"written_at":"[^"]*"//' norm.tmp/"$2"/shard-0-of-1.jsonl
}

"$cli" mkmodel --out m --seed 3 >/dev/null
mkdir -p clips
# each clip as the authors' manifests give it: a folder of frames (small: the frame-list route's
# lower pixel bound keeps the token count low) and a separate audio file
clip() { # name shape colour tone
  "$cli" mkclip --out "clips/$1.mp4" --seconds 1 --size 64x48 --shape "$2" --color "$3" --tone "$4" >/dev/null
  "$cli" mkclip --out "clips/$1.wav" --seconds 1 --size 64x48 --shape "$2" --color "$3" --tone "$4" >/dev/null
  mkdir -p "clips/$1"
  ffmpeg -hide_banner -loglevel error -nostdin -y -i "clips/$1.mp4" -vf fps=4,scale=56:56 -frames:v 4 "clips/$1/%03d.png"
}
clip red_000000 square red 440
clip blue_000000 circle blue noise
clip green_000000 square green 880
Q='Classify the sounding object into one of the categories below:\n\nA. red square\nB. blue circle\nC. green square\n\nRespond ONLY with a single label letter (A–C).'
row() {
  local d=clips/${1%.mp4}
  printf '[{"role":"system","content":[{"type":"text","text":"You are a helpful assistant."}]},{"role":"user","content":[{"type":"video","video":["%s/001.png","%s/002.png","%s/003.png","%s/004.png"]},{"type":"audio","audio":"%s.wav"},{"type":"text","text":"%s"}],"label":"%s","label_name":"%s"}]' "$d" "$d" "$d" "$d" "$d" "$Q" "$2" "$3"
}
# three good clips and one whose files are missing (an error record, the run goes on)
{ echo "["; row red_000000.mp4 A "red square"; echo ","; row blue_000000.mp4 B "blue circle"; echo ",";
  row green_000000.mp4 C "green square"; echo ","; row gone_000000.mp4 A "red square"; echo "]"; } >man.json
common=(--manifest man.json --model m --media-root "$work" --threads 1 --max-new-tokens 2)

"$cli" dominance --help | grep -q -- "--retry-errors" && ok || bad "dominance --help"
"$cli" sinks --manifest x --help | grep -q -- "--mds-divide" && ok || bad "sinks --manifest --help"

# ---- dominance: one uninterrupted run ----
"$cli" dominance "${common[@]}" --out full 2>err
grep -q "3 done, 0 skipped, 1 failed" err && ok || bad "dominance summary: $(cat err)"
f=full/dominance/shard-0-of-1.jsonl
[ "$(wc -l <"$f")" = 4 ] && ok || bad "dominance: $(wc -l <"$f") records"
for k in '"id":"red_000000"' '"analysis":"dominance"' '"status":"ok"' '"model":"m"' '"label":"A"' \
         '"label_name":"red square"' '"answers":{"av":' '"probs":{"av":' '"case":' '"written_at":'; do
  grep -qF -- "$k" "$f" && ok || bad "dominance record lacks $k"
done
grep -F '"id":"gone_000000"' "$f" | grep -q '"status":"error".*gone_000000' && ok || bad "error record for the missing clip"
# a second run skips everything, a retry redoes only the failed sample
"$cli" dominance "${common[@]}" --out full 2>err
grep -q "0 done, 4 skipped, 0 failed" err && ok || bad "rerun: $(cat err)"
"$cli" dominance "${common[@]}" --out full --retry-errors 2>err
grep -q "0 done, 3 skipped, 1 failed" err && ok || bad "--retry-errors: $(cat err)"

# ---- a stopped run resumes: one sample, then the rest ----
"$cli" dominance "${common[@]}" --out stop --limit 1 2>err
[ "$(wc -l <stop/dominance/shard-0-of-1.jsonl)" = 1 ] && ok || bad "--limit 1"
first=$(head -1 stop/dominance/shard-0-of-1.jsonl)
"$cli" dominance "${common[@]}" --out stop 2>err
grep -q "1 skipped" err && ok || bad "resume: $(cat err)"
[ "$(head -1 stop/dominance/shard-0-of-1.jsonl)" = "$first" ] && ok || bad "resume rewrote the first record"
[ "$(norm full dominance | wc -l)" = 4 ] && ok || bad "merged full run does not hold 4 records"
[ "$(norm stop dominance)" = "$(norm full dominance)" ] && ok || bad "stopped + resumed differs from uninterrupted"
# a torn last line (kill -9 while writing) is cut and the sample redone
head -c 50 full/dominance/shard-0-of-1.jsonl >>stop/dominance/shard-0-of-1.jsonl
"$cli" dominance "${common[@]}" --out stop 2>err
grep -q "4 skipped" err && ok || bad "after a torn line: $(cat err)"
[ "$(norm stop dominance)" = "$(norm full dominance)" ] && ok || bad "torn line left a trace"

# ---- sharded: 0/2 then 1/2, merged, equals the unsharded run ----
"$cli" dominance "${common[@]}" --out sh --shard 0/2 2>/dev/null
"$cli" dominance "${common[@]}" --out sh --shard 1/2 2>/dev/null
"$cli" merge --in sh --out shm >/dev/null
[ "$(norm shm dominance)" = "$(norm full dominance)" ] && ok || bad "sharded + merged differs from unsharded"

# ---- sinks and mds ----
"$cli" sinks "${common[@]}" --out full --dims 0,1 --tau 1.5 --k-divide 2,3 2>err
grep -q "3 done, 0 skipped, 1 failed" err && ok || bad "sinks summary: $(cat err)"
for k in '"analysis":"sinks"' '"n_tokens":' '"n_layers":2' '"tau":1.5' '"dims":[0,1]' '"segments":[{"modality":"text","start":0' \
         '"layer_counts":' '"freq":' '"global":{"2":' ',"3":'; do
  grep -qF -- "$k" full/sinks/shard-0-of-1.jsonl && ok || bad "sinks record lacks $k"
done
for k in '"analysis":"mds"' '"n_divide":2' '"sinks":[{"pos":' '"modality":' '"mds":[' '"a_v":[' '"a_a":[' \
         '"split":{"video":{"unimodal":' '"crossmodal":'; do
  grep -qF -- "$k" full/mds/shard-0-of-1.jsonl && ok || bad "mds record lacks $k"
done
"$cli" sinks "${common[@]}" --out sh --dims 0,1 --tau 1.5 --shard 1/2 2>/dev/null
"$cli" sinks "${common[@]}" --out sh --dims 0,1 --tau 1.5 --shard 0/2 2>/dev/null
"$cli" merge --in sh --out shm2 >/dev/null
[ "$(norm shm2 sinks)" = "$(norm full sinks)" ] && [ "$(norm shm2 mds)" = "$(norm full mds)" ] && ok ||
  bad "sharded sinks/mds differ from unsharded"

# ---- trace ----
"$cli" trace --help | grep -q -- "--layer-window" && ok || bad "trace --help"
# the made model answers the same in every run: no sample is audio- or video-dominant
"$cli" trace "${common[@]}" --out full --dims 0,1 --tau 1.5 2>err
grep -q "0 done, 0 skipped, 0 failed" err && ok || bad "trace of no dominant sample: $(cat err)"
# forced video-dominant (video corrupted, audio tokens restored, which follow the video in a 1 s clip)
targs=(--dims 0,1 --tau 1.5 --force-dominance video --sets all,object,sink2,random2,unimodal2,crossmodal2 --layer-window 1)
"$cli" trace "${common[@]}" --out full "${targs[@]}" 2>err
grep -q "3 done, 0 skipped, 1 failed" err && ok || bad "trace summary: $(cat err)"
t=full/trace/shard-0-of-1.jsonl
for k in '"analysis":"trace"' '"dominance":"video"' '"site":"before_attn"' '"corruption":"zero"' '"n_layers":2' \
         '"seed":0' '"clean":' '"corrupt":' '"p_clean_clean":' '"p_clean_corr":' '"p_corr_clean":' '"p_corr_corr":' \
         '"results":[{"set":"all","n":null,"layer_start":0,"layer_end":2,"n_tokens":25,' '"restored":' \
         '"p_rest_clean":' '"p_rest_corr":' '"ie_clean":' '"ie_corr":' '"set":"sink","n":2' '"set":"random","n":2' \
         '"set":"unimodal_sink"' '"set":"crossmodal_sink"' '"layer_start":1,"layer_end":2' \
         '"skipped":[{"set":"object","reason":"no sound-event seconds'; do
  grep -qF -- "$k" "$t" && ok || bad "trace record lacks $k"
done
"$cli" trace "${common[@]}" --out full "${targs[@]}" 2>err
grep -q "0 done, 4 skipped, 0 failed" err && ok || bad "trace rerun: $(cat err)"
# the exact shortcuts (default) and --naive recomputation write the same records (ref backend:
# every GEMM row on its own, so bit for bit)
# (three sets, all layers: the library tests cover windows and sites)
nargs=(--dims 0,1 --tau 1.5 --force-dominance video --sets all,sink2,crossmodal2)
"$cli" trace "${common[@]}" --backend ref --out fast "${nargs[@]}" 2>/dev/null
"$cli" trace "${common[@]}" --backend ref --out naive --naive "${nargs[@]}" 2>/dev/null
[ "$(norm fast trace | wc -l)" = 4 ] && [ "$(norm fast trace)" = "$(norm naive trace)" ] && ok ||
  bad "trace --naive differs from the shortcuts"
"$cli" trace --help | grep -q -- "--naive" && ok || bad "trace --help lacks --naive"
# sharded = unsharded (a cheaper setting in its own folder)
sargs=(--dims 0,1 --tau 1.5 --force-dominance video --sets all,sink2 --site mlp_out)
"$cli" trace "${common[@]}" --out full "${sargs[@]}" 2>/dev/null
"$cli" trace "${common[@]}" --out sh "${sargs[@]}" --shard 0/2 2>/dev/null
"$cli" trace "${common[@]}" --out sh "${sargs[@]}" --shard 1/2 2>/dev/null
[ "$(norm sh trace.after_mlp_zero | wc -l)" = 4 ] && [ "$(norm sh trace.after_mlp_zero)" = "$(norm full trace.after_mlp_zero)" ] &&
  ok || bad "sharded trace differs from unsharded"
"$cli" trace "${common[@]}" --out full --force-dominance audio --sets all --site attn_out --corrupt noise 2>/dev/null
grep -q '"site":"after_attn","corruption":"noise"' full/trace.after_attn_noise/shard-0-of-1.jsonl && ok ||
  bad "another setting goes to its own folder"
# Object sets: a white mask (all video tokens of its grid index), a mask of the wrong size (an
# error record naming it), sound-event blocks from an object_important_seconds file
{ printf 'P6\n56 56\n255\n'; head -c $((56 * 56 * 3)) /dev/zero | tr '\0' '\377'; } >white.ppm
{ printf 'P6\n28 56\n255\n'; head -c $((28 * 56 * 3)) /dev/zero | tr '\0' '\377'; } >narrow.ppm
sed 's/"label_name":"red square"}/"label_name":"red square","masks":["white.ppm",null]}/;
     s/"label_name":"green square"}/"label_name":"green square","masks":["narrow.ppm"]}/' man.json >man_masks.json
echo '[{"audio":"clips/red_000000.wav","important_blocks":[0]}]' >events.json
margs=(--manifest man_masks.json --model m --media-root "$work" --threads 1 --max-new-tokens 2 --sets object)
"$cli" trace "${margs[@]}" --out obj_v --force-dominance audio 2>/dev/null
grep -F '"id":"red_000000"' obj_v/trace/shard-0-of-1.jsonl | grep -qF '"set":"object","n":null,"layer_start":0,"layer_end":2,"n_tokens":4,' &&
  ok || bad "video Object set from a white mask"
grep -F '"id":"green_000000"' obj_v/trace/shard-0-of-1.jsonl | grep -qF 'narrow.ppm: mask is 28x56 but its frame is 56x56' &&
  ok || bad "mask size mismatch is an error record naming the mask"
grep -F '"id":"blue_000000"' obj_v/trace/shard-0-of-1.jsonl | grep -qF 'no object masks' && ok || bad "no masks: a note"
"$cli" trace "${margs[@]}" --out obj_a --force-dominance video --events events.json 2>/dev/null
grep -F '"id":"red_000000"' obj_a/trace/shard-0-of-1.jsonl | grep -qF '"set":"object","n":null,"layer_start":0,"layer_end":2,"n_tokens":25,' &&
  ok || bad "audio Object set from sound-event blocks"
code=0; "$cli" trace "${common[@]}" --out x --sets sinkx 2>err || code=$?
[ "$code" = 2 ] && grep -q -- "--sets" err && ok || bad "trace --sets sinkx"
code=0; "$cli" trace "${common[@]}" --out x --site nowhere 2>err || code=$?
[ "$code" = 2 ] && grep -q -- "--site" err && ok || bad "trace --site nowhere"

# ---- report ----
"$cli" report --in full --out rep >/dev/null
for t in dominance.csv sinks.csv mds.csv trace.csv trace_table_1.csv report.html; do [ -s "rep/$t" ] && ok || bad "report lacks $t"; done
grep -q "Failures" rep/report.html && ok || bad "report lists no failures"

# ---- usage errors ----
code=0; "$cli" dominance --model m --out x 2>err || code=$?
[ "$code" = 2 ] && grep -q "required" err && ok || bad "dominance without --manifest"
code=0; "$cli" dominance "${common[@]}" --out x --shard 2/2 2>err || code=$?
[ "$code" = 2 ] && grep -q -- "--shard" err && ok || bad "dominance --shard 2/2"
code=0; "$cli" dominance --manifest missing.json --model m --out x 2>err || code=$?
[ "$code" = 1 ] && grep -q "missing.json" err && [ "$(wc -l <err)" = 1 ] && ok || bad "missing manifest: $(cat err)"
code=0; "$cli" sinks "${common[@]}" --out x 2>err || code=$?
[ "$code" = 1 ] && grep -q "no known sink dimensions" err && ok || bad "sinks --manifest without dims"

finish
