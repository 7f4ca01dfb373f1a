#!/usr/bin/env bash
# tests/cli/test_mkmodel.sh: `avlens mkmodel` and `avlens inspect` end to end: files written,
# determinism, inspect text and JSON, every error case with its exit status and one-line message.
set -euo pipefail
. "$AVL_SOURCE_DIR/tests/cli/lib.sh"

# --help
"$cli" mkmodel --help | grep -q -- "--thinker-only" && ok || bad "mkmodel --help"
"$cli" inspect --help | grep -q -- "--json" && ok || bad "inspect --help"

# a default tiny checkpoint: every file, well under 5 MB
"$cli" mkmodel --out "$work/a" --seed 3 >/dev/null
for f in config.json model.safetensors preprocessor_config.json tokenizer.json vocab.json merges.txt \
         tokenizer_config.json chat_template.json added_tokens.json special_tokens_map.json; do
  [ -s "$work/a/$f" ] && ok || bad "missing $f"
done
size=$(du -sk "$work/a" | cut -f1)
[ "$size" -lt 5000 ] && ok || bad "checkpoint is ${size} KiB"
grep -q '"model_type": "qwen2_5_omni"' "$work/a/config.json" && ok || bad "config model_type"
grep -q '"thinker_config"' "$work/a/config.json" && grep -q '"talker_config"' "$work/a/config.json" && ok || bad "full form"
grep -q '"type": "BPE"' "$work/a/tokenizer.json" && grep -q '"<|AUDIO|>"' "$work/a/tokenizer.json" && ok || bad "tokenizer.json"
head -1 "$work/a/merges.txt" | grep -q '^#version: 0.2$' && ok || bad "merges.txt header"
grep -q 'audio_bos' "$work/a/tokenizer_config.json" && grep -q 'add_generation_prompt' "$work/a/tokenizer_config.json" && ok || bad "chat template"

# determinism: the same options write the same bytes; another seed changes only the weights
"$cli" mkmodel --out "$work/b" --seed 3 >/dev/null
diff -r "$work/a" "$work/b" >/dev/null && ok || bad "two writes differ"
"$cli" mkmodel --out "$work/c" --seed 4 >/dev/null
cmp -s "$work/a/model.safetensors" "$work/c/model.safetensors" && bad "seed ignored" || ok
cmp -s "$work/a/config.json" "$work/c/config.json" && ok || bad "config depends on the seed"

# inspect: text and JSON
"$cli" inspect "$work/a" >"$work/out"
grep -q '^verify      ok$' "$work/out" && ok || bad "inspect verify line"
grep -q 'heads / 2 kv heads' "$work/out" && ok || bad "inspect llm line"
grep -q 'full attention 1,3' "$work/out" && ok || bad "inspect vision line"
grep -q 'dtypes BF16' "$work/out" && ok || bad "inspect dtypes"
"$cli" inspect --json "$work/a" >"$work/json"
grep -q '"verify": "ok"' "$work/json" && grep -q '"num_key_value_heads": 2' "$work/json" && ok || bad "inspect --json"

# other forms: shards, dtypes, bare thinker, sizes from the command line
"$cli" mkmodel --out "$work/s" --shards 2 --dtype f16 --hidden 48 --heads 6 --kv-heads 3 --layers 3 \
  --audio-layers 3 --vision-depth 5 --fullatt 2,4 >/dev/null
[ -f "$work/s/model.safetensors.index.json" ] && [ -f "$work/s/model-00002-of-00002.safetensors" ] && ok || bad "shards"
"$cli" inspect "$work/s" >"$work/out"
grep -q 'in 2 files; dtypes F16' "$work/out" && ok || bad "sharded inspect: $(grep tensors "$work/out")"
grep -q 'hidden 48, 3 layers, 6 heads / 3 kv heads' "$work/out" && ok || bad "sizes from flags"
"$cli" mkmodel --out "$work/t" --thinker-only --dtype f32 --tie >/dev/null
"$cli" inspect "$work/t" | grep -q 'bare thinker' && ok || bad "thinker-only"
grep -q '"model_type": "qwen2_5_omni_thinker"' "$work/t/config.json" && ok || bad "thinker-only config"

# errors: usage (2) and checkpoint problems (1), one line each
expect 2 "--out DIR is required" "$cli" mkmodel
expect 2 "unknown option '--bogus'" "$cli" mkmodel --out "$work/x" --bogus
expect 2 "--dtype wants bf16, f16 or f32" "$cli" mkmodel --out "$work/x" --dtype q4
expect 2 "--hidden wants a non-negative integer" "$cli" mkmodel --out "$work/x" --hidden -5
expect 2 "--fullatt wants block numbers" "$cli" mkmodel --out "$work/x" --fullatt 1,x
expect 1 "num_key_value_heads = 3 does not divide num_attention_heads 4" "$cli" mkmodel --out "$work/x" --kv-heads 3
expect 1 "fullatt_block_indexes[0] = 9 is not a block (depth 4)" "$cli" mkmodel --out "$work/x" --fullatt 9
expect 2 "which checkpoint folder?" "$cli" inspect
expect 1 "nothing: cannot open" "$cli" inspect "$work/nothing"

# a config.json that contradicts the tensors
mkdir -p "$work/e" && cp "$work/a"/* "$work/e/"
sed -i 's/"intermediate_size": 128,/"intermediate_size": 96,/' "$work/e/config.json"
expect 1 "model.safetensors: tensor 'thinker.model.layers.0.mlp.gate_proj.weight' has shape [128,64], config needs [96,64]" \
  "$cli" inspect "$work/e"
# an impossible config value
cp "$work/a/config.json" "$work/e/config.json"
sed -i 's/"num_attention_heads": 4,/"num_attention_heads": 5,/' "$work/e/config.json"
expect 1 "config.json: thinker_config.text_config.num_attention_heads = 5 does not divide hidden_size 64" "$cli" inspect "$work/e"
# a missing tensor (a model.safetensors from a checkpoint without lm_head)
cp "$work/a/config.json" "$work/e/config.json"
cp "$work/t/model.safetensors" "$work/e/model.safetensors"
expect 1 "no tensor 'thinker." "$cli" inspect "$work/e"
# a truncated shard
mkdir -p "$work/u" && cp "$work/s"/* "$work/u/"
truncate -s -64 "$work/u/model-00002-of-00002.safetensors"
expect 1 "model-00002-of-00002.safetensors" "$cli" inspect "$work/u"
# not JSON
printf '{"model_type": ' >"$work/e/config.json"
expect 1 "config.json: not valid JSON" "$cli" inspect "$work/e"

finish
