// tools/gen_tiny_tokenizer.mjs: writes the tiny byte-level BPE tokenizer used by the unit and
// fuzz tests, in exactly Qwen2's tokenizer.json layout (NFC, Split with Qwen's regex then
// ByteLevel, BPE, ByteLevel decoder) but with a small vocabulary and the added tokens at the
// lowest ids, so that no test can pass by assuming Qwen's real ids.
//   node tools/gen_tiny_tokenizer.mjs tests/data/tokenizer/tiny
// Writes DIR/tokenizer.json (merges as "a b" strings, the pre-0.20 spelling) and the same
// tokenizer as DIR/vm/{vocab.json, merges.txt, tokenizer_config.json} for the second loader.
// Deterministic: merges are learnt from the fixed text below, ties broken by the pair's text.
import fs from "fs";
import path from "path";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node tools/gen_tiny_tokenizer.mjs OUT_DIR");
  process.exit(2);
}
const N_MERGES = 320;

const QWEN_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const jsRegex = new RegExp(
  QWEN_REGEX.replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))"),
  "gu"
);

const added = [
  ["<|endoftext|>", true], ["<|im_start|>", true], ["<|im_end|>", true],
  ["<|AUDIO|>", true], ["<|audio_bos|>", true], ["<|audio_eos|>", true],
  ["<|IMAGE|>", true], ["<|VIDEO|>", true], ["<|vision_bos|>", true], ["<|vision_eos|>", true],
  ["<think>", false], ["</think>", false],
];

// GPT-2 bytes_to_unicode
const bs = [];
for (let b = 33; b <= 126; b++) bs.push(b);
for (let b = 161; b <= 172; b++) bs.push(b);
for (let b = 174; b <= 255; b++) bs.push(b);
const byteChar = new Array(256);
let extra = 0;
for (let b = 0; b < 256; b++) byteChar[b] = bs.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);

const training = `
The quick brown fox jumps over the lazy dog. It's the model's turn; they're sure we've seen
it, I'm told you'll find he'd agree. Hello world! Hello again, world. The thinker reads audio
and video: the audio tokens and the video tokens share one sequence, and attention moves
between them. Numbers 0 1 2 3 4 5 6 7 8 9 10 100 2024 stay as single digits.
    def main():
        return attention(query, key, value)  # comment
你好世界，今天天气很好。模型注意力。 Привет, мир! Мир модели. こんにちは世界。
안녕하세요 세계. مرحبا بالعالم. नमस्ते दुनिया। สวัสดีชาวโลก
the the the and and and of of to to in in is is that that with with for for on on
`.repeat(3);

const counts = new Map();
for (const m of training.normalize("NFC").matchAll(jsRegex)) {
  const w = [...Buffer.from(m[0], "utf8")].map((b) => byteChar[b]);
  const k = w.join("\u0000");
  counts.set(k, (counts.get(k) || 0) + 1);
}
let words = [...counts.entries()].map(([k, c]) => ({ syms: k.split("\u0000"), c }));

const vocab = {};
let next = 0;
for (const [content] of added) next++; // ids 0..added-1 are the added tokens
for (let b = 0; b < 256; b++) vocab[byteChar[b]] = next++;
const merges = [];
for (let i = 0; i < N_MERGES; i++) {
  const pairs = new Map();
  for (const w of words)
    for (let j = 0; j + 1 < w.syms.length; j++) {
      const k = w.syms[j] + " " + w.syms[j + 1];
      pairs.set(k, (pairs.get(k) || 0) + w.c);
    }
  if (!pairs.size) break;
  let best = null, bestC = -1;
  for (const [k, c] of pairs) if (c > bestC || (c === bestC && k < best)) { best = k; bestC = c; }
  const [a, b] = best.split(" ");
  merges.push(best);
  vocab[a + b] = next++;
  for (const w of words) {
    const s = [];
    for (let j = 0; j < w.syms.length; j++) {
      if (j + 1 < w.syms.length && w.syms[j] === a && w.syms[j + 1] === b) { s.push(a + b); j++; }
      else s.push(w.syms[j]);
    }
    w.syms = s;
  }
}

const addedTokens = added.map(([content, special], id) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special,
}));
const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
const tokJson = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: addedTokens,
  normalizer: { type: "NFC" },
  pre_tokenizer: {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: QWEN_REGEX }, behavior: "Isolated", invert: false },
      byteLevel,
    ],
  },
  post_processor: byteLevel,
  decoder: byteLevel,
  model: {
    type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
    fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
  },
};
fs.mkdirSync(path.join(dir, "vm"), { recursive: true });
fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tokJson, null, 1) + "\n");
fs.writeFileSync(path.join(dir, "vm", "vocab.json"), JSON.stringify(vocab) + "\n");
fs.writeFileSync(path.join(dir, "vm", "merges.txt"), "#version: 0.2\n" + merges.join("\n") + "\n");
const decoder = {};
for (const t of addedTokens) {
  const { id, ...rest } = t;
  decoder[String(id)] = rest;
}
fs.writeFileSync(
  path.join(dir, "vm", "tokenizer_config.json"),
  JSON.stringify({ tokenizer_class: "Qwen2Tokenizer", added_tokens_decoder: decoder }, null, 1) + "\n"
);
console.error(`tiny tokenizer: ${Object.keys(vocab).length} model tokens, ${merges.length} merges, ${added.length} added`);
