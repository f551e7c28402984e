// --memory-budget: how many requests each architecture admits under the same bytes, and what happens past it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitPools, planPools, stepWorkingBytes } from '../../engine/memory/plan.js';
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

test("the largest step's working set stays beside the pools: activations, and a KV model's attention partials up to one buffer", () => {
  const sm = presetSpec('softmax', 'small'),
    mb = presetSpec('2mamba', 'small');
  const gpu = { bufferBytes: 2 ** 31, totalBytes: 40 * 2 ** 30, weightBytesPerValue: 2 };
  const w = (spec: typeof sm, rows: number, len: number) => stepWorkingBytes(spec, rows, len, gpu.bufferBytes, 1024);
  // partials: rows × heads × key ranges of 1024 × (d + 2) f32
  assert.equal(w(sm, 4096, 32768) - w(sm, 4096, 1024), 4096 * 16 * 31 * 66 * 4);
  // 2Mamba's scores attend within a segment (the engine passes it as the keys), in ranges of 256
  const m2 = (keys: number) => stepWorkingBytes(mb, 4096, keys, gpu.bufferBytes, 256);
  assert.equal(m2(1024) - m2(0), 4096 * 16 * 4 * 66 * 4);
  assert.equal(w(sm, 4096, 2 ** 22) - w(sm, 4096, 0), gpu.bufferBytes, 'grouped past one buffer');
  assert.equal(stepWorkingBytes(sm, 4096, 32768, gpu.bufferBytes, 0), w(sm, 4096, 0), 'no partials (CPU)');
  assert.ok(
    w(sm, 4096, 1024) > 4 * w(sm, 1024, 1024) - 1e6 && w(sm, 1024, 1024) > 1024 * 30_000,
    'activations per row',
  );
  // fitted into a device: a step of 4096 rows at 32k leaves fewer KV pages than one of 2048, by its working set
  const plan = planPools(sm, { maxBatch: 8, memoryBudget: 64 * 2 ** 30, maxModelLen: 32768, kvDtype: 'f16' });
  const a = fitPools(plan, sm, gpu, 300e6, w(sm, 2048, 32768)),
    b = fitPools(plan, sm, gpu, 300e6, w(sm, 4096, 32768));
  const pageBytes = plan.pageSize * memoryModel(sm, 'f16').kvBytesPerToken;
  const freed = (a.plan.kvPages - b.plan.kvPages) * pageBytes,
    more = w(sm, 4096, 32768) - w(sm, 2048, 32768);
  // whole pages: within one page of the working bytes either way (floor(a / p) − floor(b / p) of a − b)
  assert.ok(
    freed > more - pageBytes && freed < more + pageBytes,
    `${freed} bytes of pages for ${more} more working bytes`,
  );
});

test('a budget larger than the backend can hold is fitted to it (one buffer, all buffers), with the reason', async () => {
  const sm = presetSpec('softmax', 'small'),
    mb = presetSpec('2mamba', 'small');
  const big = { maxBatch: 8, memoryBudget: 64 * 2 ** 30, maxModelLen: null };
  // lavapipe's storage binding: 128 MiB per buffer; a K (or V) buffer holds kvHeads × d f32 per token per layer
  const lava = { bufferBytes: 128 * 2 ** 20, totalBytes: Infinity, weightBytesPerValue: 2 };
  const f = fitPools(planPools(sm, big), sm, lava, 0);
  assert.ok(f.clamped && /one buffer/.test(f.clamped), String(f.clamped));
  assert.ok(f.plan.kvPages * f.plan.pageSize * sm.kvHeads * sm.headDim * 4 <= lava.bufferBytes);
  assert.ok(f.plan.kvPages > 0 && f.plan.budgetBytes < big.memoryBudget);
  // 2Mamba's state: one S buffer per layer holds every slot
  const g = fitPools(planPools(mb, big), mb, { ...lava, bufferBytes: 3 * 2 ** 20 * 8 }, 0);
  assert.ok(g.plan.slots >= 1 && g.plan.slots < 8, `${g.plan.slots} slots`);
  // the fast CPU backend: 4 GiB in all, weights first
  const cpu = { bufferBytes: 2 ** 32, totalBytes: 2 ** 32, weightBytesPerValue: 4 };
  const h = fitPools(planPools(sm, big), sm, cpu, 300e6);
  assert.ok(h.plan.budgetBytes <= 2 ** 32 - 1.2e9 && h.plan.budgetBytes > 2e9, String(h.plan.budgetBytes));
  // a budget that fits is left alone
  const small = planPools(sm, { maxBatch: 2, memoryBudget: 64 * 2 ** 20, maxModelLen: null });
  assert.deepEqual(fitPools(small, sm, lava, 0), { plan: small, clamped: null });
  // the README's two-model example on a software adapter: the softmax pool is fitted, the server starts
  // (and the KV cache is f16 there by default: half the bytes per token, in every report)
  const srv = await startServer([{ name: 'sm', arch: 'softmax' }], {}, { backend: 'webgpu', memoryBudget: 2 ** 31 });
  try {
    const r = await post(srv.url, '/v1/completions', { model: 'sm', prompt: 'Hello', max_tokens: 4 });
    assert.equal(r.status, 200, r.text);
    const info = (await srv.client.models.list()).data[0] as any;
    assert.equal(info.kv_dtype, 'f16');
    assert.equal(info.kv_bytes_per_token, memoryModel(presetSpec('softmax', 'tiny'), 'f16').kvBytesPerToken);
    assert.equal(info.kv_bytes_per_token * 2, memoryModel(presetSpec('softmax', 'tiny')).kvBytesPerToken);
    const usage = JSON.parse(r.text).usage;
    assert.equal(usage.memory.kv_dtype, 'f16');
    assert.equal(usage.memory.kv_bytes, usage.memory.kv_blocks * 16 * info.kv_bytes_per_token);
  } finally {
    await srv.close();
  }
  // the CPU backends hold f32 only: asking for f16 there is a clear error
  await assert.rejects(
    startServer([{ name: 'sm', arch: 'softmax' }], {}, { backend: 'cpu', kvDtype: 'f16' }),
    /--kv-dtype f16 needs the webgpu backend/,
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
