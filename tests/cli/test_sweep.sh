#!/usr/bin/env bash
# tests/cli/test_sweep.sh: `avlens trace --sweep` (the bottom-up per-token sweep, App. B.1.1) on a
# tiny checkpoint and two made clips: the records' fields, --top-k / --sweep-limit, resume (a run
# stopped after one sample skips it when restarted and leaves its record alone), another site's
# folder, shards merged equal the unsharded run, the report's Tab. 6 / Tab. 7 tables, and the usage errors.
set -euo pipefail
. "$AVL_SOURCE_DIR/tests/cli/lib.sh"
cd "$work"

"$cli" trace --help | grep -q -- "--sweep-limit" && ok || bad "trace --help lacks --sweep-limit"
"$cli" mkmodel --out m --seed 3 >/dev/null
"$cli" mkclip --out c1.mp4 --seconds 2 --size 64x48 >/dev/null
"$cli" mkclip --out c2.mp4 --seconds 2 --size 64x48 --color blue --tone noise >/dev/null
printf '[{"id":"c1","video":"c1.mp4","text":"Which one? A or B"},{"id":"c2","video":"c2.mp4","text":"Which one? A or B"}]' >man.json
common=(--sweep --manifest man.json --model m --media-root "$work" --threads 1 --max-new-tokens 1 --dims 0,1 --tau 2
        --force-dominance audio --top-k 1,3 --sweep-limit 7)

expect 2 "--top-k" "$cli" trace "${common[@]}" --out bad --top-k 0
expect 2 "--top-k" "$cli" trace "${common[@]}" --out bad --top-k 5,x
expect 2 "--sweep-limit" "$cli" trace "${common[@]}" --out bad --sweep-limit -1
expect 2 "--sweep-batch" "$cli" trace "${common[@]}" --out bad --sweep-batch 17

# a run stopped after one sample, then resumed
"$cli" trace "${common[@]}" --out r --limit 1 2>err
f=r/sweep/shard-0-of-1.jsonl
[ "$(wc -l <"$f")" = 1 ] && ok || bad "--limit 1 wrote $(wc -l <"$f") records"
first=$(head -1 "$f")
"$cli" trace "${common[@]}" --out r 2>err
grep -q "1 done, 1 skipped, 0 failed" err && ok || bad "resume: $(cat err)"
[ "$(head -1 "$f")" = "$first" ] && ok || bad "resume rewrote the first record"
"$cli" trace "${common[@]}" --out r 2>err
grep -q "0 done, 2 skipped, 0 failed" err && ok || bad "rerun: $(cat err)"
[ "$(grep -c '"status":"ok"' "$f")" = 2 ] && ok || bad "want 2 ok records: $(cat "$f")"
for k in '"analysis":"sweep"' '"dominance":"audio"' '"modality":"video"' '"top_k":[1,3]' '"n_swept":7' '"object":false' \
         '"tokens":[{"pos":' '"ie_clean":' '"ie_corr":' '"sink2":' '"sink3":' '"chunk":' '"group":"all"' \
         '"group":"sink_object","n":2' '"group":"neither","n":3'; do
  grep -qF -- "$k" "$f" && ok || bad "sweep record lacks $k"
done
# 7 swept tokens per record
[ "$(head -1 "$f" | grep -o '"pos":' | wc -l)" = 7 ] && ok || bad "want 7 swept tokens"

# shards 0/2 + 1/2, merged, equal the unsharded run (without the timestamps)
"$cli" trace "${common[@]}" --out sh --shard 0/2 2>/dev/null
"$cli" trace "${common[@]}" --out sh --shard 1/2 2>/dev/null
"$cli" merge --in sh --out shm >/dev/null && "$cli" merge --in r --out rm >/dev/null
[ "$(sed 's/,"written_at":"[^"]*"//' shm/sweep/shard-0-of-1.jsonl)" = "$(sed 's/,"written_at":"[^"]*"//' rm/sweep/shard-0-of-1.jsonl)" ] &&
  ok || bad "sharded + merged sweep differs from the unsharded run"

# another site: its own folder
"$cli" trace "${common[@]}" --out r --site attn_out --limit 1 2>/dev/null
[ -s r/sweep.after_attn_zero/shard-0-of-1.jsonl ] && ok || bad "--site attn_out folder"

# the report: Tab. 6 with the records' k, Tab. 7, and report.html
"$cli" report --in r --out rep >/dev/null
head -1 rep/sweep_topk.csv | grep -qF "group,top-1,top-3,samples" && ok || bad "sweep_topk.csv: $(head -1 rep/sweep_topk.csv)"
grep -qF "m | before_attn | zero,audio,S u O (N=2)," rep/sweep_topk.csv && ok || bad "sweep_topk.csv rows"
grep -qF "m | before_attn | zero,audio,All,1.00,1.00," rep/sweep_share.csv ||
  grep -qF "m | before_attn | zero,audio,All,n/a,n/a," rep/sweep_share.csv && ok || bad "sweep_share.csv: $(cat rep/sweep_share.csv)"
grep -q "Tab. 6 layout" rep/report.html && grep -q "Tab. 7 layout" rep/report.html && ok || bad "report.html lacks the sweep tables"
finish
