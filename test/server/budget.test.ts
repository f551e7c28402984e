// --memory-budget: how many requests each architecture admits under the same bytes, and what happens past it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planPools } from '../../engine/memory/plan.js';
import { parseBytes } from '../../lib/bytes.js';
import { presetSpec } from '../../weights/presets.js';
import { memoryModel } from '../../engine/memory/prices.js';
import { startServer, post, getJson, until } from './harness.js';

test('byte counts and percentages', () => {
  assert.equal(parseBytes('1073741824'), 2 ** 30);
  assert.equal(parseBytes('2GiB'), 2 * 2 ** 30);
  assert.equal(parseBytes('512MB'), 512e6);
  assert.equal(parseBytes('1.5k'), 1500);
  assert.ok(parseBytes('50%') > 0);
  assert.throws(() => parseBytes('lots'), /not a byte count/);
  assert.throws(() => parseBytes('150%'), /must be in \(0, 100\]/);
});

test('a budget buys 2Mamba state slots or KV pages', () => {
  const mb = presetSpec('2mamba', 'tiny'),
    sm = presetSpec('softmax', 'tiny');
  const state = memoryModel(mb).stateBytes,
    perTok = memoryModel(sm).kvBytesPerToken;
  const budget = 10 * state + 123;
  assert.equal(planPools(mb, { maxBatch: 64, memoryBudget: budget, maxModelLen: null }).slots, 10);
  assert.equal(planPools(mb, { maxBatch: 4, memoryBudget: budget, maxModelLen: null }).slots, 4, 'capped by max-batch');
  const p = planPools(sm, { maxBatch: 64, memoryBudget: budget, maxModelLen: 2048 });
  assert.equal(p.kvPages, Math.floor(budget / (16 * perTok)));
  assert.throws(
    () => planPools(mb, { maxBatch: 1, memoryBudget: state - 1, maxModelLen: null }),
    /holds no 2Mamba state/,
  );
});

test('the same budget admits more 2Mamba requests than softmax ones at a long context; past it they queue, then 429', async () => {
  const mb = presetSpec('2mamba', 'tiny');
  const budget = 6 * memoryModel(mb).stateBytes; // 6 2Mamba states ≈ 13 MB ≈ 6.3k softmax tokens of the tiny model
  const srv = await startServer(
    [
      { name: 'mamba', arch: '2mamba' },
      { name: 'sm', arch: 'softmax' },
    ],
    {},
    { maxBatch: 16, maxQueue: 2, memoryBudget: budget, maxModelLen: 4096 },
  );
  try {
    const models = Object.fromEntries((await srv.client.models.list()).data.map((m: any) => [m.id, m]));
    assert.equal((models.mamba as any).max_concurrent_requests, 6);
    const smTokens = (models.sm as any).kv_cache_tokens;
    assert.ok(smTokens < 2 * 4096, `softmax KV tokens under the budget: ${smTokens}`);
    // long requests (3000 prompt + 1000 generated tokens): how many run at once?
    const prompt = [Array.from({ length: 3000 }, (_, i) => 3 + (i % 250))];
    for (const [model, expected] of [
      ['mamba', 6],
      ['sm', Math.floor(smTokens / 4000)],
    ] as const) {
      const acs = Array.from({ length: 10 }, () => new AbortController());
      let rejected = 0;
      const reqs = acs.map((ac) =>
        fetch(`${srv.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          signal: ac.signal,
          body: JSON.stringify({ model, prompt, max_tokens: 1000, ignore_eos: true }),
        }).then(
          (r) => {
            if (r.status === 429) rejected++;
            return r.status;
          },
          () => 'aborted',
        ),
      );
      await until(
        async () => {
          const q = (await getJson(srv.url, '/v1/requests')).models.find((m: any) => m.model === model);
          return q.running === expected && q.waiting === 2 && rejected === 10 - expected - 2;
        },
        20000,
        `${model}: ${expected} running, 2 waiting, the rest refused with 429`,
      );
      acs.forEach((ac) => ac.abort());
      const got = await Promise.all(reqs);
      assert.equal(got.filter((s) => s === 429).length, 10 - expected - 2, `${model}: ${got}`);
      assert.ok(!got.includes(500), 'no request failed');
      await until(async () => (await getJson(srv.url, '/v1/requests')).data.length === 0, 20000, 'all freed');
    }
  } finally {
    await srv.close();
  }
});

test('a non-streaming client that disconnects during prefill frees its slot', async () => {
  const srv = await startServer([{ name: 'm', arch: 'softmax' }], {}, { maxBatch: 2, tokenBudget: 8, prefillChunk: 8 });
  try {
    const ac = new AbortController();
    const req = fetch(`${srv.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      signal: ac.signal,
      body: JSON.stringify({
        model: 'm',
        prompt: [Array.from({ length: 2000 }, (_, i) => 3 + (i % 250))],
        max_tokens: 5,
      }),
    }).catch(() => null);
    await until(
      async () =>
        (await getJson(srv.url, '/v1/requests')).data.some((r: any) => r.state === 'prefill' && r.prefilled_tokens > 0),
      10000,
      'prefill to start',
    );
    ac.abort();
    await req;
    await until(
      async () => (await getJson(srv.url, '/v1/requests')).models[0].kv_blocks.used === 0,
      5000,
      'pages freed',
    );
    const done = (await getJson(srv.url, '/v1/requests')).data;
    assert.deepEqual(done, []);
    const ok = await post(srv.url, '/v1/completions', { model: 'm', prompt: 'still serving', max_tokens: 2 });
    assert.equal(ok.status, 200);
  } finally {
    await srv.close();
  }
});
