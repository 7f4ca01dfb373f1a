// tests/tokenizer/decode_ref.js: checks `avlens tokenize --decode --jsonl` against the JS
// port's decode (skip_special_tokens false, clean_up_tokenization_spaces false, as Qwen's
// tokenizer_config.json has it).
//   node decode_ref.js NODE_MODULES_DIR TOKENIZER_JSON IDS_JSONL C_TEXTS_JSONL
// IDS_JSONL: one id array per line; C_TEXTS_JSONL: the C side's one JSON string per line.
// Exits non-zero at the first line whose texts differ, naming it.
"use strict";
const fs = require("fs");
const path = require("path");

const [modDir, tokPath, idsPath, cPath] = process.argv.slice(2);
const { TokenizerLoader } = require(path.join(path.resolve(modDir), "@lenml", "tokenizers"));
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(tokPath, "utf8")),
  tokenizerConfig: { tokenizer_class: "Qwen2Tokenizer", clean_up_tokenization_spaces: false },
});
const read = (p) => fs.readFileSync(p, "utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l));
const ids = read(idsPath), got = read(cPath);
if (ids.length !== got.length) {
  console.error(`FAIL decode: ${ids.length} id arrays but ${got.length} C texts`);
  process.exit(1);
}
for (let i = 0; i < ids.length; i++) {
  // (the JS decode refuses an empty list; its text is "")
  const want = ids[i].length ? tok.decode(ids[i], { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
  if (want !== got[i]) {
    console.error(`FAIL decode: first mismatch at corpus string ${i} (0-based)\n  js: ${JSON.stringify(want).slice(0, 300)}\n  c:  ${JSON.stringify(got[i]).slice(0, 300)}`);
    process.exit(1);
  }
}
console.log(`ok decode (${path.basename(path.dirname(tokPath))}): ${ids.length} id arrays, identical text`);
