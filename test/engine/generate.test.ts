import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, type GenerateOptions } from '../../engine/generate.js';
import type { SequencePool } from '../../engine/memory/sequences.js';
import { openTiny } from '../helpers.js';

async function collect(pool: SequencePool, prompt: number[], opts: GenerateOptions) {
  const ids: number[] = [];
  const it = generate(pool, prompt, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return { ids, finish: r.value };
    ids.push(r.value.id);
  }
}

test('generation: max tokens, stop token ids, min_tokens, ignore_eos, and the slot is freed', async () => {
  const m = await openTiny('2mamba', 21, { slots: 2 });
  const prompt = [1, 40, 41, 42];
  const free = m.pool.slots.available;
  const base = await collect(m.pool, prompt, { maxTokens: 12, sampling: { temperature: 0 }, ignoreEos: true });
  assert.deepEqual([base.ids.length, base.finish], [12, 'length']);
  assert.equal(m.pool.slots.available, free, 'slot returned');
  // stop on the 4th greedy token: generation ends there with "stop", the stop token included in ids
  const stopAt = base.ids[3]!;
  const first = base.ids.indexOf(stopAt);
  const stopped = await collect(m.pool, prompt, {
    maxTokens: 12,
    sampling: { temperature: 0 },
    stopTokenIds: [stopAt],
  });
  assert.deepEqual(stopped, { ids: base.ids.slice(0, first + 1), finish: 'stop' });
  // min_tokens bans the stop id for the first tokens
  const min = await collect(m.pool, prompt, {
    maxTokens: 6,
    sampling: { temperature: 0 },
    stopTokenIds: [base.ids[0]!],
    minTokens: 3,
  });
  assert.ok(
    min.ids.slice(0, 3).every((id) => id !== base.ids[0]),
    `${min.ids}`,
  );
  // EOS stops unless ignore_eos: make EOS the stop by declaring the first greedy token EOS
  m.model.spec.eosIds.splice(0, m.model.spec.eosIds.length, base.ids[0]!);
  assert.deepEqual(await collect(m.pool, prompt, { maxTokens: 5, sampling: { temperature: 0 } }), {
    ids: [base.ids[0]!],
    finish: 'stop',
  });
  assert.equal(
    (await collect(m.pool, prompt, { maxTokens: 5, sampling: { temperature: 0 }, ignoreEos: true })).ids.length,
    5,
  );
  assert.deepEqual(await collect(m.pool, prompt, { maxTokens: 0 }), { ids: [], finish: 'length' });
  // an early break (client gone) still frees the slot
  const it = generate(m.pool, prompt, { maxTokens: 50, ignoreEos: true });
  await it.next();
  await it.return('length');
  assert.equal(m.pool.slots.available, free);
  await assert.rejects(collect(m.pool, [], { maxTokens: 1 }), /at least one token/);
  await m.close();
});
