// tests/tokenizer/chat_ref.js: checks `avlens tokenize --chat` against the JavaScript port's
// apply_chat_template, which renders the Jinja text of Qwen2.5-Omni's template (committed as
// tests/data/tokenizer/qwen25_omni_chat_template.jinja) with a real Jinja engine
// (@huggingface/jinja, bundled in @lenml/tokenizers; trim_blocks and lstrip_blocks on, as in
// transformers).
//   node chat_ref.js NODE_MODULES_DIR AVLENS TOKENIZER_JSON TEMPLATE CHATS_JSONL
// Each chats line: {"messages": [...], "add_generation_prompt": bool (default true),
// "add_vision_id": bool, "add_audio_id": bool}. Both the rendered text and the ids must agree.
// Exits non-zero on any mismatch, naming the conversation.
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");

const [modDir, avlens, tokPath, tmplPath, chatsPath] = process.argv.slice(2);
const { TokenizerLoader } = require(path.join(path.resolve(modDir), "@lenml", "tokenizers"));
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(tokPath, "utf8")),
  tokenizerConfig: { tokenizer_class: "Qwen2Tokenizer" },
});
// The Jinja engine bundled in @lenml/tokenizers 3.7 predates the "string" test; on it,
// "x.upper is defined" (strings have an upper method, lists and objects do not) asks the same
// question. Nothing else in the template is changed.
const template = fs.readFileSync(tmplPath, "utf8").replace(
  "message['content'] is string", "message['content'].upper is defined");
if (!template.includes("message['content'].upper is defined")) {
  console.error("chat_ref.js: the template no longer has the \"is string\" test this script adapts");
  process.exit(1);
}
const lines = fs.readFileSync(chatsPath, "utf8").split("\n").filter((l) => l.length);
// Group the conversations by their flags: one avlens run per group and mode.
const groups = new Map();
lines.forEach((line, i) => {
  const c = JSON.parse(line);
  const gen = c.add_generation_prompt ?? true;
  const flags = [gen ? "--add-generation-prompt" : "--no-generation-prompt"];
  if (c.add_vision_id) flags.push("--add-vision-id");
  if (c.add_audio_id) flags.push("--add-audio-id");
  const key = flags.join(" ");
  if (!groups.has(key)) groups.set(key, { flags, items: [] });
  groups.get(key).items.push({ i, c, gen });
});
let passed = 0, failed = 0;
for (const { flags, items } of groups.values()) {
  const input = items.map(({ c }) => JSON.stringify(c.messages)).join("\n") + "\n";
  const run = (args) => execFileSync(avlens, ["tokenize", "--chat", "--jsonl", ...args, ...flags], { input })
    .toString("utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l));
  const texts = run(["--text"]);
  const idss = run(["--tokenizer", tokPath]);
  items.forEach(({ i, c, gen }, k) => {
    const opts = { chat_template: template, add_generation_prompt: gen,
                   add_vision_id: !!c.add_vision_id, add_audio_id: !!c.add_audio_id };
    let want, wantIds;
    try {
      want = tok.apply_chat_template(c.messages, { ...opts, tokenize: false });
      wantIds = Array.from(tok.apply_chat_template(c.messages, { ...opts, tokenize: true }));
    } catch (e) {
      failed++;
      console.error(`chat ${i}: the reference cannot render it: ${String(e.message).slice(0, 200)}`);
      return;
    }
    if (texts[k] !== want) {
      failed++;
      console.error(`chat ${i}: rendered text differs\n  want ${JSON.stringify(want)}\n  got  ${JSON.stringify(texts[k])}`);
    } else if (JSON.stringify(idss[k]) !== JSON.stringify(wantIds)) {
      failed++;
      console.error(`chat ${i}: ids differ\n  want ${JSON.stringify(wantIds)}\n  got  ${JSON.stringify(idss[k])}`);
    } else passed++;
  });
}
console.log(failed ? `FAIL chat ${path.basename(path.dirname(tokPath))}: ${failed} of ${lines.length} conversations differ`
                   : `ok chat (${path.basename(path.dirname(tokPath))}): ${passed} conversations, identical text and ids`);
process.exit(failed ? 1 : 0);
