// fury eval's held-out measures on the shipped default model (CPU backend): the answer loss of held-out instruction
// items counts the answer and its end marker only, agrees with a direct computation, and separates the trained model
// from chance; `fury eval --passkey sweep --chat` reports 1×, 2× and 4× the training length and the chat loss.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openModel } from '../../engine/open.js';
import { readText } from '../../lib/corpus.js';
import { chatLoss, type ChatItem } from '../../tools/eval.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MODEL = join(ROOT, 'models', 'fury-2mamba-tiny');
const CHAT = join(ROOT, 'data', 'instruct-valid.jsonl.xz');

async function items(n: number): Promise<ChatItem[]> {
  return (await readText(CHAT))
    .split('\n')
    .filter(Boolean)
    .slice(0, n)
    .map((l) => JSON.parse(l) as ChatItem);
}

test('chatLoss: answer tokens only, equal to a direct computation, well below chance on held-out questions', async () => {
  const m = await openModel(MODEL, { backend: 'cpu', slots: 1, kvTokens: 2048 });
  try {
    const its = await items(12),
      render = (q: string) => m.chat.render([{ role: 'user', content: q }], true);
    const r = await chatLoss(m.pool, m.tokenizer, render, '<|im_end|>', its, undefined, 7); // chunks of 7: many steps
    const end = m.tokenizer.encode('<|im_end|>', false);
    assert.equal(end.length, 1, 'the chat marker is one token');
    assert.equal(
      r.tokens,
      its.reduce((s, it) => s + m.tokenizer.encode(it.a, false).length + 1, 0),
    );
    // the first item by hand: one step over the whole sequence, mean NLL of the answer positions
    const it = its[0]!,
      prompt = m.tokenizer.encode(render(it.q), false),
      ids = [...prompt, ...m.tokenizer.encode(it.a, false), ...end];
    const seq = m.pool.open(),
      V = m.model.spec.vocab;
    let nll = 0;
    try {
      const logits = await m.pool.step([{ seq, ids: ids.slice(0, -1) }], true);
      for (let t = prompt.length - 1; t < ids.length - 1; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        const mx = Math.max(...row);
        nll += mx + Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0)) - row[ids[t + 1]!]!;
      }
    } finally {
      m.pool.close(seq);
    }
    const one = await chatLoss(m.pool, m.tokenizer, render, '<|im_end|>', [it], undefined, 5);
    const direct = nll / (ids.length - prompt.length);
    assert.ok(Math.abs(one.loss - direct) < 1e-4 * direct, `${one.loss} vs ${direct}`);
    // chance is ln(8192) = 9.01; the trained model's answers cost about 2.8 nats per token
    assert.ok(r.loss > 0.5 && r.loss < 4.5, `held-out answer loss ${r.loss}`);
  } finally {
    await m.close();
  }
});

test('fury eval --passkey sweep --chat: 1×, 2×, 4× the training length and the held-out answer loss', async () => {
  const cli = join(ROOT, 'dist', 'cli', 'fury.js');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      cli,
      'eval',
      '--model',
      MODEL,
      '--backend',
      'cpu',
      '--max-tokens',
      '1024',
      '--passkey',
      'sweep',
      '--trials',
      '1',
    ].concat(['--chat', CHAT, '--chat-max', '3', '--json']),
    { cwd: ROOT, maxBuffer: 1 << 20 },
  );
  const out = JSON.parse(stdout);
  assert.deepEqual(Object.keys(out.passkey), ['1024', '2048', '4096']);
  assert.equal(out.chat_items, 3);
  assert.ok(out.chat_loss > 0 && out.chat_loss < 6, `chat loss ${out.chat_loss}`);
});
