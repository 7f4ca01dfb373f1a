#!/usr/bin/env bash
# tests/cli/test_merge_report.sh: `avlens merge` and `avlens report` end to end on synthetic
# records: four shards merge to the same bytes as one unsharded file, a torn last line is
# skipped, conflicts are counted, the report writes its tables, figures and page, and bad
# invocations fail with one line naming the problem.
set -euo pipefail
W=${AVL_TEST_WORK:?}
rm -rf "$W"
mkdir -p "$W"
pass=0
ok() { pass=$((pass + 1)); }
die() { echo "FAIL: $*" >&2; exit 1; }

rec() { # id dominance ie_clean ie_corr tokens
  printf '{"id":"%s","analysis":"trace","status":"ok","model":"tiny","dominance":"%s","site":"before_attn","corruption":"zero","n_layers":4,"results":[{"set":"sink","n":2,"layer_start":0,"layer_end":4,"n_tokens":%s,"ie_clean":%s,"ie_corr":%s}]}\n' \
    "$1" "$2" "$5" "$3" "$4"
}
mkdir -p "$W/one/trace" "$W/four/trace"
ids=(c_3 a_1 e_5 b_2 d_4 f_6 g_7 h_8)
for k in "${!ids[@]}"; do
  r=$(rec "${ids[$k]}" audio "0.$k" "0.0$k" $((k + 1)))
  echo "$r" >> "$W/one/trace/shard-0-of-1.jsonl"
  echo "$r" >> "$W/four/trace/shard-$((k % 4))-of-4.jsonl"
done
printf '{"id":"z_9","analysis":"tr' >> "$W/four/trace/shard-2-of-4.jsonl"   # a killed writer's torn line

"$AVL_CLI" merge --in "$W/one" --out "$W/m1" > "$W/m1.txt"
"$AVL_CLI" merge --in "$W/four" --out "$W/m4" > "$W/m4.txt"
cmp "$W/m1/trace/shard-0-of-1.jsonl" "$W/m4/trace/shard-0-of-1.jsonl" || die "sharded merge differs from unsharded"
ok
grep -q "4 shard files, 8 records -> 8 samples (0 duplicates, 0 conflicts, 1 torn lines skipped)" "$W/m4.txt" || die "merge summary: $(cat "$W/m4.txt")"
ok
[ "$(head -c 12 "$W/m4/trace/shard-0-of-1.jsonl")" = '{"id":"a_1",' ] || die "merged file not sorted by id"
ok

# a conflicting duplicate: counted and reported on stderr
rec a_1 audio 0.9 0.9 1 >> "$W/four/trace/shard-3-of-4.jsonl"
"$AVL_CLI" merge --in "$W/four" --out "$W/m4b" > "$W/m4b.txt" 2> "$W/m4b.err"
grep -q "1 conflicts" "$W/m4b.txt" || die "conflict not counted"
grep -q "trace: id a_1: .* differs from" "$W/m4b.err" || die "conflict not reported: $(cat "$W/m4b.err")"
ok

# report: tables by hand: sink N=2 over 8 samples: IE_clean mean(0..7)/10 = 0.35 -> 35.00,
# IE_corr 3.50, tokens mean(1..8) = 4.5
"$AVL_CLI" report --in "$W/m1" --out "$W/rep" --title "CLI test" > /dev/null
grep -q '^Sink (N=2),35.00,3.50,4.5,8,-,-,-,-$' "$W/rep/trace_table_1.csv" || die "trace table: $(cat "$W/rep/trace_table_1.csv")"
ok
for f in report.html report.md trace.csv; do [ -s "$W/rep/$f" ] || die "missing $f"; done
ok
if command -v xmllint > /dev/null; then
  xmllint --noout "$W/rep/report.html" || die "report.html not well-formed"
  ok
fi

# errors: one line naming the problem, non-zero exit
if "$AVL_CLI" report --in "$W/nothing" --out "$W/x" 2> "$W/e1"; then die "report on a missing folder succeeded"; fi
grep -q "^avlens report: $W/nothing: cannot open folder" "$W/e1" || die "report error: $(cat "$W/e1")"
ok
mkdir -p "$W/empty"
if "$AVL_CLI" report --in "$W/empty" --out "$W/x" 2> "$W/e2"; then die "report on no records succeeded"; fi
grep -q "no records" "$W/e2" || die "empty report error: $(cat "$W/e2")"
ok
mkdir -p "$W/bad/trace"
printf '{"id":"a"}\nnot json\n{"id":"b"}\n' > "$W/bad/trace/shard-0-of-1.jsonl"
if "$AVL_CLI" merge --in "$W/bad" --out "$W/x" 2> "$W/e3"; then die "merge of a bad file succeeded"; fi
grep -q "shard-0-of-1.jsonl: line 2: not JSON" "$W/e3" || die "merge error: $(cat "$W/e3")"
ok
set +e
"$AVL_CLI" merge > /dev/null 2>&1; [ $? -eq 2 ] || die "merge without --in should be a usage error"
"$AVL_CLI" report --in a --out b --strips 0 > /dev/null 2>&1; [ $? -eq 2 ] || die "--strips 0 should be a usage error"
set -e
ok
"$AVL_CLI" merge --help | grep -q "usage: avlens merge" || die "merge --help"
"$AVL_CLI" report --help | grep -q "usage: avlens report" || die "report --help"
ok

# in place: the shard files are replaced by the merged one
"$AVL_CLI" merge --in "$W/four" > /dev/null 2>&1
[ "$(ls "$W/four/trace")" = "shard-0-of-1.jsonl" ] || die "in-place merge left: $(ls "$W/four/trace")"
ok
echo "$pass passed, 0 failed"
