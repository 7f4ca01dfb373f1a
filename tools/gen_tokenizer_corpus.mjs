// tools/gen_tokenizer_corpus.mjs: writes tests/data/tokenizer/corpus.jsonl, the strings on
// which the C tokenizer must give the same ids as the JavaScript reference.
//   node tools/gen_tokenizer_corpus.mjs > tests/data/tokenizer/corpus.jsonl
// Deterministic (a fixed-seed PRNG). Each line is {"text": "..."} or, for bytes that are not
// valid UTF-8, {"b64": "..."}.
//
// Also covered: characters on which regex engines disagree about \s or case folding (U+FEFF,
// U+0085, U+180E, an apostrophe before U+017F; docs/tokenizer.md). Left out: code points
// assigned after Unicode 13 (utf8proc 2.6 and PCRE2 10.42 predate them; Node's ICU does not).

let seed = 0x5eed1234;
function rnd() {
  // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const ri = (n) => Math.floor(rnd() * n);
const pick = (a) => a[ri(a.length)];
const rep = (n, f) => Array.from({ length: n }, f).join("");

const out = [];
const text = (s) => out.push(JSON.stringify({ text: s }));
const bytes = (b) => out.push(JSON.stringify({ b64: Buffer.from(b).toString("base64") }));

const english = "the quick brown fox jumps over lazy dog and then it runs away from a tokenizer that splits words into pieces while numbers like 42 stay apart Hello World OpenAI Qwen Omni audio visual model token attention layer".split(" ");
const scripts = {
  chinese: "我们 今天 天气 很好 你好 世界 模型 注意力 视频 音频 中文 分词 测试 北京 上海 人工智能 的 了 是 在".split(" "),
  japanese: "こんにちは 世界 カタカナ ひらがな 東京 日本語 テスト です ます トークナイザー".split(" "),
  arabic: "مرحبا بالعالم اللغة العربية نموذج الصوت والصورة كتاب مدرسة".split(" "),
  hindi: "नमस्ते दुनिया भाषा हिन्दी मॉडल ध्वनि चित्र विद्यालय क्षत्रिय".split(" "),
  cyrillic: "Привет мир русский язык модель Съешь же ещё этих мягких французских булок".split(" "),
  thai: "สวัสดี ชาวโลก ภาษาไทย แบบจำลอง เสียง ภาพ กรุงเทพมหานคร".split(" "),
  korean: "안녕하세요 세계 한국어 모델 오디오 비디오 서울 토크나이저".split(" "),
  greek: "Γειά σου κόσμε ελληνικά μοντέλο ήχος".split(" "),
  hebrew: "שלום עולם עברית מודל".split(" "),
  mixed: "café naïve résumé Zürich Ångström façade jalapeño smørrebrød Łódź İstanbul ß ﬁ".split(" "),
};
const emoji = ["😀", "👍", "👍🏽", "👍🏿", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸", "❤️", "✌🏻", "1️⃣", "🧑🏾‍🚀", "🤷‍♀️", "🐈‍⬛", "🫠", "💯", "🔥"];
const punct = [".", ",", "!", "?", "...", "!!!", "?!", "—", "–", "-", "--", "(", ")", "[", "]", "{", "}", ":", ";", "\"", "'", "«", "»", "“", "”", "‘", "’", "…", "/", "\\", "@", "#", "$", "%", "^", "&", "*", "_", "+", "=", "<", ">", "|", "~", "`", "。", "，", "、", "！", "？", "：", "；", "《", "》"];
const ws = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", "\r\n\r\n", " \n", "\n ", " \t ", "\u00a0", "\u3000", "\u2009", "\u2028", "\v", "\f"];
const contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Re", "'rE", "'VE", "'Ve", "'M", "'LL", "'Ll", "'D", "’s", "'x", "''s", "'"];
const specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<think>", "</think>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|box_start|>"];
const nearSpecials = ["<|im_start", "im_start|>", "<|im_start|", "<|IM_START|>", "< |im_start|>", "<|im_start|>>", "<<|im_end|>", "<|im_end|>|>", "<|", "|>", "<think", "</think", "<|endoftext|><|endoftext|>"];
const nfc = ["e\u0301", "A\u030a", "\u212b", "\u2126", "o\u0308", "u\u0308\u0301", "a\u0323\u0302", "a\u0302\u0323", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab", "n\u0303", "\u0041\u0300\u0301", "\u00c5\u0301", "c\u0327", "\u0915\u093c", "\u0928\u093c", "\u0e01\u0e49\u0e33", "\u0340", "\u0344", "\u0374", "\u037e", "\u0387", "\u1e9b\u0323", "\u1f00\u0345", "\u30ab\u3099", "\u304b\u3099", "\u0627\u0653", "\u05d1\u05bc", "s\u0323\u0307", "q\u0307\u0323", "\u2000", "\u2001", "\ufb01", "\u00bd", "x\u0301\u0301\u0301\u0301"];
const code = [
  "int main(int argc, char **argv) {\n\treturn 0;\n}\n",
  "def f(x):\n    return x ** 2  # square\n\n\nprint(f(3))\n",
  "const a = [1, 2, 3].map((x) => x * 2);\nconsole.log(`${a}`);",
  "{\"key\": \"value\", \"n\": 123, \"list\": [true, false, null]}",
  "for (size_t i = 0; i < n; i++) { sum += a[i] * b[i]; }",
  "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
  "    if x != y:\n        raise ValueError(f\"bad {x!r}\")\n",
  "#include <stdio.h>\r\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\r\n",
  "git commit -m \"fix: don't crash\" && git push origin HEAD:refs/for/main",
  "x=1;y=2;z=x+y;// comment\n/* block\n   comment */",
  "<div class=\"a\"><span>Hi</span></div>",
  "$ ls -la /usr/local/bin | grep -E '^d' | wc -l",
  "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
  "\t\t\tdeeply\n\t\t\t\tindented\n\t\tcode",
];

// Pieces that make random strings; each call gives one short fragment.
const gens = [
  () => pick(english),
  () => pick(english).toUpperCase(),
  () => pick(english)[0].toUpperCase() + pick(english).slice(1),
  () => pick(scripts[pick(Object.keys(scripts))]),
  () => pick(emoji),
  () => pick(punct),
  () => pick(punct) + pick(punct) + pick(punct),
  () => pick(ws),
  () => pick(contractions),
  () => String(ri(1000)),
  () => rep(1 + ri(30), () => String(ri(10))),
  () => (rnd() * 1e6).toFixed(ri(5)),
  () => pick(nfc),
  () => pick(specials),
  () => pick(nearSpecials),
  () => pick(code).slice(0, 10 + ri(40)),
];
function mix(n) {
  let s = "";
  for (let i = 0; i < n; i++) {
    s += pick(gens)();
    if (rnd() < 0.6) s += " ";
  }
  return s;
}

// 1. fixed cases
[
  "", " ", "a", "Hello", "Hello world", " Hello", "Hello ", "  leading", "trailing  ", "\n", "\r\n", "\t",
  "it's", "It'S", "they're", "THEY'RE", "we've", "I'm", "you'll", "he'd", "don't", "DON'T", "o'clock", "rock'n'roll",
  "'s", "'ll'd", "x'", "'", "''", "a'sb", "don’t",
  "1", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "-42", "0x1F", "1e-9", "٣٤٥", "१२३", "ⅻ", "²³", "①②",
  "<|im_start|>", "<|im_start|>user\nHello<|im_end|>\n", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
  " <|im_start|> ", "x<|im_end|>y", "<|im_start|><|im_end|>", "<|im_start|><|im_start|>", "<think>\nok\n</think>\n\n",
  "<|vision_start|><|video_pad|><|vision_end|>", "<|endoftext|>", "text<|endoftext|>", "<|im_start",
  "😀", "👨‍👩‍👧‍👦", "👍🏽👍🏿", "🇯🇵🇺🇸", "\u200d", "a\u200db", "\u200b", "\u00ad", "\ufe0f",
  "     ", "\t\t", "\n\n\n", "\r\n\r\n", "a  b", "a   \n  b", " \n \n ", "a\r\nb\rc\nd", "\u3000\u3000", "\u00a0x",
  "e\u0301", "\u00e9", "\u212b", "\u1100\u1161\u11a8",
  "\ufeff", " \ufeff ", "\ufeff\ufeffa", "a \ufeff\ufeff", "x\ufeff\n", "\u0085", "\u0085\u0085a", "a\u0085\nb", " \u0085 ",
  "it'\u017f", "'\u017f", "'\u017fx", "\u180e", "a \u180e", "\u200b \u200b", "a\u1680b  \u1680", "\u2028\u2029x",
  "!!!", "...", "?!?!", "—", "***bold***", "~~~", "a.b.c", "(a)", "[[x]]",
].forEach(text);

// 2. per category, many random members
for (let i = 0; i < 150; i++) text(rep(1 + ri(12), () => pick(english) + pick(["", " ", " ", " ", ", ", ". ", "! ", "? ", "\n"])));
for (const k of Object.keys(scripts)) for (let i = 0; i < 30; i++) text(rep(1 + ri(8), () => pick(scripts[k]) + pick(["", " ", "，", "。", ", ", "\n", "! "])));
for (let i = 0; i < 80; i++) text(rep(1 + ri(6), () => pick(code)));
for (let i = 0; i < 80; i++) text(rep(1 + ri(5), () => pick([String(ri(1e9)), rep(1 + ri(60), () => String(ri(10))), (rnd() * 1e4).toFixed(3), " ", ", ", "-", "/", "x"])));
for (let i = 0; i < 80; i++) text(rep(1 + ri(8), () => pick(emoji) + pick(["", "", " ", "a", "\u200d", "!"])));
for (let i = 0; i < 100; i++) text(rep(1 + ri(10), () => pick(ws) + pick(["", "x", "word", "。", "1", "'s"])));
for (let i = 0; i < 100; i++) text(rep(1 + ri(6), () => pick(english) + pick(contractions) + pick(["", " ", "s", "x", "."])));
for (let i = 0; i < 80; i++) text(rep(1 + ri(12), () => pick(punct)) + pick(["", " ", "\n", "a"]));
for (let i = 0; i < 120; i++) text(rep(1 + ri(5), () => pick([pick(specials), pick(nearSpecials), pick(english), " ", "\n", pick(scripts.chinese)])));
for (let i = 0; i < 100; i++) text(rep(1 + ri(6), () => pick(nfc) + pick(["", " ", "x", pick(english)])));

// 3. random mixtures of everything
for (let i = 0; i < 900; i++) text(mix(1 + ri(25)));

// 4. a few long strings
for (let i = 0; i < 8; i++) text(mix(400 + ri(400)));
text(" ".repeat(3000));
text("\n".repeat(500) + "x");
text("a".repeat(2000));
text("9".repeat(1500));
text("😀".repeat(300));
text("你好".repeat(600));

// 5. bytes that are not valid UTF-8 (the reference sees them through TextDecoder)
const enc = (s) => [...Buffer.from(s, "utf8")];
const badSeqs = [
  [0xff], [0xfe], [0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc3],
  [0xe4, 0xbd], [0xf0, 0x9f], [0xc3, 0x28], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0xbc], [0x00], [0x00, 0x00],
];
badSeqs.forEach((b) => bytes(b));
for (let i = 0; i < 200; i++) {
  let b = [];
  const n = 1 + ri(6);
  for (let k = 0; k < n; k++) {
    const r = rnd();
    if (r < 0.4) b = b.concat(enc(pick(gens)()));
    else if (r < 0.7) b = b.concat(pick(badSeqs));
    else b = b.concat(rep(1 + ri(4), () => " ").split("").map(() => ri(256)));
  }
  bytes(b);
}

// 6. random code points from long-assigned ranges (Unicode <= 13)
const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff], [0x600, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x2190, 0x22ff], [0x3040, 0x30ff], [0x4e00, 0x9fa5], [0xac00, 0xd7a3], [0xff00, 0xffef], [0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x300, 0x36f]];
for (let i = 0; i < 150; i++) {
  let s = "";
  const n = 1 + ri(20);
  for (let k = 0; k < n; k++) {
    const [a, b] = pick(ranges);
    const cp = a + ri(b - a + 1);
    s += String.fromCodePoint(cp);
  }
  text(s);
}

process.stdout.write(out.join("\n") + "\n");
