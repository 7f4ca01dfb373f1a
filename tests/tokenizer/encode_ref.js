// tests/tokenizer/encode_ref.js: the reference side of the tokenizer check.
// Encodes every line of a corpus JSONL with the JavaScript port of Hugging Face tokenizers
// (@lenml/tokenizers, fetched by tests/cli/test_tokenizer_ref.sh with `npm pack`, never
// committed) and prints one JSON id array per line.
//   node encode_ref.js NODE_MODULES_DIR TOKENIZER_JSON CORPUS_JSONL [TOKENIZER_CONFIG_JSON]
// Corpus lines are {"text": "..."} or {"b64": "..."}; b64 holds raw bytes that may be invalid
// UTF-8, turned into a JS string the way a browser or Node does it: TextDecoder, which puts
// U+FFFD for every maximal invalid subsequence. The C side does the same repair.
"use strict";
const fs = require("fs");
const path = require("path");

const [modDir, tokPath, corpusPath, cfgPath] = process.argv.slice(2);
if (!modDir || !tokPath || !corpusPath) {
  console.error("usage: node encode_ref.js NODE_MODULES_DIR TOKENIZER_JSON CORPUS_JSONL [TOKENIZER_CONFIG_JSON]");
  process.exit(2);
}
const { TokenizerLoader } = require(path.join(path.resolve(modDir), "@lenml", "tokenizers"));
const tokenizerJSON = JSON.parse(fs.readFileSync(tokPath, "utf8"));
const tokenizerConfig = cfgPath
  ? JSON.parse(fs.readFileSync(cfgPath, "utf8"))
  : { tokenizer_class: "Qwen2Tokenizer" };
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
const dec = new TextDecoder("utf-8");

const out = [];
const lines = fs.readFileSync(corpusPath, "utf8").split("\n");
if (lines[lines.length - 1] === "") lines.pop();
for (const line of lines) {
  const rec = JSON.parse(line);
  const text = rec.b64 !== undefined ? dec.decode(Buffer.from(rec.b64, "base64")) : rec.text;
  out.push(JSON.stringify(tok.encode(text, { add_special_tokens: false })));
}
process.stdout.write(out.join("\n") + "\n");
