#!/usr/bin/env bash
# tests/cli/test_manifest.sh: `avlens manifest` on the authors' files and a VGGSound CSV:
# counts, shards that cover every sample once, the sample listing, bad records as warnings.
set -euo pipefail
W=${AVL_TEST_WORK:?}
M=$AVL_TEST_DATA/manifests
rm -rf "$W"
mkdir -p "$W"
pass=0
ok() { pass=$((pass + 1)); }
die() { echo "FAIL: $*" >&2; exit 1; }

out=$("$AVL_CLI" manifest "$M/causal_tracing_step2_people_small.json")
[ "$out" = "$M/causal_tracing_step2_people_small.json: conversations, 10 samples (10 in shard 0/1), 0 bad records, 0 rows outside the class list" ] || die "summary: $out"
ok
for f in "$M"/*.json "$M"/*.jsonl "$M"/*.csv; do
  case "$f" in *history_head.json|*classes*) continue ;; esac
  "$AVL_CLI" manifest "$f" > /dev/null || die "$f does not load cleanly"
done
ok

# shards: the listed ids of 4 shards are the whole set, each once
"$AVL_CLI" manifest "$M/vggsound_head.csv" --list 2> /dev/null | sed 's/^{"id":"\([^"]*\)".*/\1/' | sort > "$W/all.txt"
for i in 0 1 2 3; do "$AVL_CLI" manifest "$M/vggsound_head.csv" --list --shard $i/4 2> /dev/null; done |
  sed 's/^{"id":"\([^"]*\)".*/\1/' | sort > "$W/shards.txt"
[ "$(wc -l < "$W/all.txt")" -eq 16 ] || die "16 samples expected"
cmp "$W/all.txt" "$W/shards.txt" || die "shards do not cover every sample exactly once"
ok

# listing: media joined to the root, options and label of a classification sample
"$AVL_CLI" manifest "$M/causal_tracing_step1_sports_case_1_small.json" --media-root /data --list > "$W/list.txt" 2> /dev/null
line=$(head -1 "$W/list.txt")
case "$line" in
  '{"id":"-86gl1hp1Aw_000105","index":0,"shard":0,"video":"/data/vggsound_with_mask/video/-86gl1hp1Aw_000105.mp4",'*'"label":"M","label_name":"parrot talking"'*) ;;
  *) die "listing: $line" ;;
esac
ok

# a class list builds the prompt; rows outside it are counted
out=$("$AVL_CLI" manifest "$M/vggsound_head.csv" --classes "$M/classes_small.txt")
case "$out" in *"5 samples"*"11 rows outside the class list") ;; *) die "classes: $out" ;; esac
ok

# bad records: warnings naming file and record, exit status 1, the good ones still counted
printf '[[{"role":"user","content":[{"type":"video","video":"v/a_1.mp4"},{"type":"text","text":"A. x\\nB. y"}],"label":"C"}],\n [{"role":"user","content":[{"type":"video","video":"v/b_2.mp4"},{"type":"text","text":"Q"}]}]]' > "$W/bad.json"
set +e
"$AVL_CLI" manifest "$W/bad.json" > "$W/o.txt" 2> "$W/e.txt"
rc=$?
set -e
[ $rc -eq 1 ] || die "exit status $rc for a manifest with bad records"
grep -q "^avlens manifest: warning: $W/bad.json: record 0 (a_1): label 'C' is not among the 2 options (A-B)$" "$W/e.txt" || die "warning: $(cat "$W/e.txt")"
grep -q "1 samples (1 in shard 0/1), 1 bad records" "$W/o.txt" || die "bad summary: $(cat "$W/o.txt")"
ok
set +e
"$AVL_CLI" manifest "$W/none.json" 2> "$W/e2.txt"; rc=$?
"$AVL_CLI" manifest "$M/vggsound_head.csv" --shard 4/4 > /dev/null 2>&1; rc2=$?
set -e
[ $rc -eq 1 ] && grep -q "^avlens manifest: $W/none.json: cannot open" "$W/e2.txt" || die "missing file: $(cat "$W/e2.txt")"
[ $rc2 -eq 2 ] || die "--shard 4/4 should be a usage error"
ok
"$AVL_CLI" manifest --help | grep -q "usage: avlens manifest" || die "--help"
ok
echo "$pass passed, 0 failed"
