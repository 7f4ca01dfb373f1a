#!/usr/bin/env bash
# avlens demo --quick end to end: the planted checkpoint, the clips and manifests, every data-set
# command's records (dominance, trace with every token set, layer windows, sinks, mds, captions of
# each decoding method), CHAIR, and report.html; the planted answers are found (the dominance case
# of each clip, Sink > Random, only windows with layer 2 restore); a rerun skips every sample and
# leaves the records alone; a bad --out is a one-line error. Then report.html is opened in headless
# Chromium: the rendered DOM holds every table, every figure (inline SVG) and every token set's
# name, and a screenshot is made (skipped, with a message, only when chromium is not installed:
# scripts/install-deps.sh --render).
set -euo pipefail
rm -rf "$AVL_TEST_WORK" && mkdir -p "$AVL_TEST_WORK" && cd "$AVL_TEST_WORK"
pass=0
ok() { pass=$((pass + 1)); }
fail() { echo "FAIL: $*"; echo "$pass passed, 1 failed"; exit 1; }

# Under the sanitizers (-O0, ASan, UBSan) the demo's ~300 forward passes take many minutes: that
# build checks the argument errors only (its library code is covered by unit/test_report and the
# data-set commands' own tests); the release build runs everything.
if grep -q "AVL_SANITIZE:BOOL=ON" "$AVL_BINARY_DIR/CMakeCache.txt" 2>/dev/null; then
  touch not-a-dir
  if "$AVL_CLI" demo --out not-a-dir/x 2>err.txt >/dev/null; then fail "demo into a file's subfolder succeeded"; fi
  [ "$(wc -l <err.txt)" -eq 1 ] && grep -q "not-a-dir/x" err.txt || fail "error: $(cat err.txt)"
  "$AVL_CLI" demo --help | grep -q -- "--quick" || fail "demo --help"
  echo "SKIPPED: the demo run in the sanitizer build (too slow at -O0); the release build runs it"
  echo "2 passed, 0 failed"
  exit 0
fi
"$AVL_CLI" demo --out d --quick >log.txt 2>&1 || fail "demo exited $?: $(tail -5 log.txt)"
grep -q "2 of 2 clips have the planted dominance" log.txt || fail "planted dominance not found: $(tail -3 log.txt)"
ok
for f in d/model/config.json d/model/model.safetensors d/classify.json d/caption.json d/events.json d/report.html \
  d/chair/chair.csv d/trace_table_1.csv d/sweep_topk.csv d/sweep_share.csv d/clips/faint_tone_red_square.mp4 d/clips/faint_tone_red_square.mask0.ppm; do
  [ -s "$f" ] || fail "missing $f"
done
for a in dominance trace trace.windows sweep sinks mds caption.vanilla caption.asd caption.reverse-asd caption.pai caption.vcd caption.avcd caption.fmd; do
  [ "$(grep -c '"status":"ok"' "d/runs/$a/shard-0-of-1.jsonl")" -eq 2 ] || fail "$a: want 2 ok records"
done
ok
"$AVL_CLI" inspect d/model >/dev/null || fail "inspect rejects the demo checkpoint"
grep -q '^\$ avlens trace --manifest d/classify.json' log.txt || fail "the trace step is not printed as a command"
ok

# the planted answers
rec() { grep -F "\"id\":\"$2\"" "d/runs/$1/shard-0-of-1.jsonl"; }
rec dominance faint_tone_red_square | grep -qF '"answers":{"av":"A","a":"A","v":"B"}' || fail "faint tone: not audio-dominant"
rec dominance soft_tone_white_square | grep -qF '"answers":{"av":"B","a":"A","v":"B"}' || fail "soft tone: not video-dominant"
ok
# IE_clean of one result (set, n, layer_start, layer_end) of a clip's trace record
ie() {
  rec "$1" "$2" | tr '{' '\n' | grep -F "\"set\":\"$3\",\"n\":$4,\"layer_start\":$5,\"layer_end\":$6," |
    sed -n 's/.*"ie_clean":\([-0-9.e]*\).*/\1/p'
}
s=$(ie trace faint_tone_red_square sink 2 0 4) r=$(ie trace faint_tone_red_square random 2 0 4)
o=$(ie trace faint_tone_red_square object null 0 4)
awk -v s="$s" -v r="$r" -v o="$o" 'BEGIN { exit !(s > 0.8 && r < 0.1 && o > 0.8) }' ||
  fail "audio-dominant clip: Sink-2 $s, Random-2 $r, Object $o (want > 0.8, < 0.1, > 0.8)"
for set in all sink sink sink random random random unimodal_sink crossmodal_sink; do
  rec trace faint_tone_red_square | grep -qF "\"set\":\"$set\"" || fail "no $set result"
done
w0=$(ie trace.windows faint_tone_red_square sink 2 0 2) w1=$(ie trace.windows faint_tone_red_square sink 2 1 3)
awk -v a="$w0" -v b="$w1" 'BEGIN { exit !(a < 0.05 && b > 0.8) }' || fail "windows: layers 0-1 $w0, 1-2 $w1"
ok

# a rerun finds every sample on file and leaves the records as they were
cat d/runs/*/shard-0-of-1.jsonl >before.jsonl
"$AVL_CLI" demo --out d --quick >log2.txt 2>&1 || fail "rerun failed: $(tail -3 log2.txt)"
grep -q "avlens trace: 0 done, 2 skipped, 0 failed" log2.txt || fail "rerun did not skip: $(grep 'avlens trace' log2.txt)"
cat d/runs/*/shard-0-of-1.jsonl | cmp -s before.jsonl - || fail "a rerun changed the records"
ok

touch not-a-dir
if "$AVL_CLI" demo --out not-a-dir/x 2>err.txt >/dev/null; then fail "demo into a file's subfolder succeeded"; fi
grep -q "not-a-dir/x" err.txt || fail "error does not name the folder: $(cat err.txt)"
[ "$(wc -l <err.txt)" -eq 1 ] || fail "error is not one line: $(cat err.txt)"
ok

# ---- the rendered page ----
chrome=""
for c in chromium chromium-browser google-chrome; do command -v "$c" >/dev/null 2>&1 && { chrome=$c; break; }; done
if [ -z "$chrome" ]; then
  echo "SKIPPED: the render checks: chromium is not installed (scripts/install-deps.sh --render)"
  echo "$pass passed, 0 failed"
  exit 0
fi
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync)
page="file://$PWD/d/report.html"
timeout 120 "$chrome" "${flags[@]}" --user-data-dir="$PWD/prof1" --dump-dom "$page" >dom.html 2>chrome.log ||
  fail "chromium --dump-dom failed: $(tail -3 chrome.log)"
count() { grep -o "$1" dom.html | wc -l; }
# 1 known-answers + dominance + trace (Tab. 1/2) + MDS (Tab. 12) + sinks + captions + CHAIR (Tab. 3)
# + the folded settings table: 8 tables
[ "$(count '<table>')" -ge 8 ] || fail "rendered DOM has $(count '<table>') tables, want >= 8"
# 2 clip thumbnails + 4 layer-window curves + MDS per sink + sink strip + CHAIR bars
[ "$(count '<svg')" -ge 9 ] || fail "rendered DOM has $(count '<svg') svg elements, want >= 9"
ok
for name in '>All<' '>Object<' 'Sink (N=2)' 'Sink (N=3)' 'Sink (N=4)' 'Random (N=2)' 'Random (N=3)' 'Random (N=4)' \
  'Unimodal sink' 'Cross-modal sink' 'Tab. 3 layout' 'Tab. 12 layout' 'Tab. 1/2 layout' 'MDS per sink token' \
  'Sink frequency along the token timeline' 'CHAIR and F1 per decoding method' 'Known answers beside what was found'; do
  grep -qF "$name" dom.html || fail "rendered DOM lacks '$name'"
done
ok
timeout 120 "$chrome" "${flags[@]}" --user-data-dir="$PWD/prof2" --window-size=1200,2400 --screenshot="$PWD/shot.png" \
  "$page" >/dev/null 2>>chrome.log || fail "chromium --screenshot failed: $(tail -3 chrome.log)"
[ "$(head -c 8 shot.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "screenshot is not a PNG"
[ "$(stat -c %s shot.png)" -gt 50000 ] || fail "screenshot is nearly empty ($(stat -c %s shot.png) bytes)"
ok
echo "$pass passed, 0 failed"
