import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scheduler,
  QueueFullError,
  RequestTooLargeError,
  type RequestSpec,
  type EndReason,
} from '../../engine/scheduler.js';
import type { Arch } from '../../weights/config.js';
import { freshRng, openTiny } from '../helpers.js';
import { defaultPrefillAlone } from '../../engine/engine.js';

interface Result {
  ids: number[];
  reason: EndReason;
  steps: number[];
}

function submit(s: Scheduler, spec: RequestSpec, onFirstToken?: () => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const ids: number[] = [],
      steps: number[] = [];
    s.submit(spec, {
      onToken: (t) => {
        ids.push(t.id);
        steps.push(s.steps);
        if (ids.length === 1) onFirstToken?.();
      },
      onEnd: (reason) => resolve({ ids, reason, steps }),
      onError: reject,
    });
  });
}

for (const arch of ['2mamba', '2mamba-e', 'softmax'] as Arch[]) {
  test(`${arch}: 16 concurrent requests, each equal to the same request run alone; memory back to idle`, async () => {
    const { rng, seed } = freshRng();
    // the reference backend (f64 sums): a prompt prefilled in chunks of 16 equals it prefilled whole to the last bit
    // that matters; in f32 (the fast CPU backend, GPUs) 2Mamba's chunk boundaries move the logits by ~1e-6
    const m = await openTiny(arch, seed % 101, { slots: 6, kvTokens: 1600, backend: 'reference' });
    const specs: RequestSpec[] = Array.from({ length: 16 }, () => ({
      promptIds: [
        1,
        ...Array.from({ length: 1 + Math.floor(rng.next() * 80) }, () => 3 + Math.floor(rng.next() * 256)),
      ],
      maxTokens: 1 + Math.floor(rng.next() * 12),
      sampling: { temperature: 0 },
      ignoreEos: true,
    }));
    const alone: Result[] = [];
    for (const spec of specs) {
      const solo = new Scheduler(m.pool, { maxBatch: 1, maxQueue: 1, tokenBudget: 1024, prefillChunk: 1024 });
      alone.push(await submit(solo, spec));
    }
    const s = new Scheduler(m.pool, { maxBatch: 6, maxQueue: 16, tokenBudget: 48, prefillChunk: 16 });
    const together = await Promise.all(specs.map((spec) => submit(s, spec)));
    together.forEach((r, i) => {
      assert.deepEqual(r.ids, alone[i]!.ids, `${arch} request ${i} (seed ${seed})`);
      assert.equal(r.reason, 'length');
    });
    assert.ok(s.steps < alone.reduce((n, r) => n + r.ids.length, 0), 'requests shared steps');
    await s.idle();
    assert.equal(m.pool.slots.inUse, 0);
    assert.equal(m.pool.pages.inUse, 0);
    await m.close();
  });
}

for (const arch of ['2mamba', 'softmax'] as Arch[]) {
  test(`${arch}: pipelined decode (steps submitted before the tokens return) == one step at a time == a plain forward loop`, async () => {
    const { seed } = freshRng();
    const m = await openTiny(arch, seed % 89, { slots: 4, kvTokens: 512 });
    const prompt = [1, 7, 9, 11, 200, 13],
      n = 20;
    // reference: greedy from Model.forward logits, one step at a time
    const seq = m.pool.open(),
      want: number[] = [];
    let logits = await m.pool.step([{ seq, ids: prompt }]);
    for (let i = 0; i < n; i++) {
      want.push(logits.indexOf(Math.max(...logits)));
      logits = await m.pool.step([{ seq, ids: [want[i]!] }]);
    }
    m.pool.close(seq);
    const opts = { maxBatch: 4, maxQueue: 8, tokenBudget: 256, prefillChunk: 256 };
    const run = async (pipeline: boolean, spec: RequestSpec) => {
      const s = new Scheduler(m.pool, { ...opts, pipeline });
      const out = await Promise.all([submit(s, spec), submit(s, { ...spec, promptIds: [1, 5, 6] })]);
      await s.idle();
      return { out, ahead: s.aheadSteps };
    };
    const greedy: RequestSpec = { promptIds: prompt, maxTokens: n, sampling: { temperature: 0 }, ignoreEos: true };
    const on = await run(true, greedy),
      off = await run(false, greedy);
    assert.deepEqual(on.out[0]!.ids, want, `pipelined greedy == forward loop (seed ${seed})`);
    assert.deepEqual(off.out[0]!.ids, want, `one step at a time == forward loop (seed ${seed})`);
    assert.deepEqual(on.out[1]!.ids, off.out[1]!.ids);
    assert.ok(on.ahead >= n - 3 && off.ahead === 0, `steps submitted ahead: ${on.ahead} / ${off.ahead}`);
    // seeded temperature draws are the same either way
    const warm: RequestSpec = {
      promptIds: prompt,
      maxTokens: n,
      sampling: { temperature: 0.9, seed },
      ignoreEos: true,
    };
    const a = await run(true, warm),
      b = await run(false, warm);
    assert.deepEqual(a.out[0]!.ids, b.out[0]!.ids);
    assert.deepEqual(a.out[1]!.ids, b.out[1]!.ids);
    // a stop token met mid-stream ends the request there: the token computed ahead is discarded, nothing leaks
    const stopAt = want.findIndex((t, i) => i >= 3 && !want.slice(0, i).includes(t));
    if (stopAt > 0) {
      const st = await run(true, { ...greedy, stopTokenIds: [want[stopAt]!] });
      assert.deepEqual(st.out[0]!.ids, want.slice(0, stopAt + 1));
      assert.equal(st.out[0]!.reason, 'stop');
    }
    assert.equal(m.pool.slots.inUse, 0);
    assert.equal(m.pool.pages.inUse, 0);
    await m.close();
  });
}

for (const arch of ['2mamba', 'softmax'] as Arch[]) {
  test(`${arch}: a lone prompt's prefill chunks are submitted ahead (each before the last one returns): same tokens as one step at a time; an abort mid-prefill leaks nothing`, async () => {
    const { rng, seed } = freshRng();
    const m = await openTiny(arch, seed % 83, { slots: 2, kvTokens: 512 });
    const prompt = [1, ...Array.from({ length: 149 }, () => 3 + Math.floor(rng.next() * 250))];
    const opts = { maxBatch: 2, maxQueue: 4, tokenBudget: 16, prefillChunk: 16 };
    const spec: RequestSpec = { promptIds: prompt, maxTokens: 5, sampling: { temperature: 0 }, ignoreEos: true };
    const run = async (pipeline: boolean) => {
      const s = new Scheduler(m.pool, { ...opts, pipeline });
      const out = await submit(s, spec);
      await s.idle();
      return { out, ahead: s.aheadSteps, steps: s.steps };
    };
    const on = await run(true),
      off = await run(false);
    assert.deepEqual(on.out.ids, off.out.ids, `seed ${seed}`);
    // 10 chunks of 16: the 2nd to the 10th go ahead (the last draws the first token on the device), then 4 decodes
    assert.equal(on.ahead, 9 + 4, `steps submitted ahead (seed ${seed})`);
    assert.equal(off.ahead, 0);
    assert.equal(on.steps, off.steps);
    const s = new Scheduler(m.pool, { ...opts, pipeline: true }),
      ac = new AbortController();
    const aborted = new Promise<EndReason>((resolve, reject) =>
      s.submit(
        { ...spec, promptIds: [...prompt, ...prompt, ...prompt], signal: ac.signal }, // 29 chunks
        { onToken: () => reject(new Error('a token after the abort')), onEnd: resolve, onError: reject },
      ),
    );
    while (s.steps < 3) await new Promise((r) => setTimeout(r, 1));
    ac.abort();
    assert.equal(await aborted, 'abort');
    await s.idle();
    assert.equal(m.pool.slots.inUse, 0);
    assert.equal(m.pool.pages.inUse, 0);
    await m.close();
  });
}

test('a running stream gets one token every step while a long prompt is prefilled in chunks', async () => {
  const m = await openTiny('2mamba', 5, { slots: 2 });
  const s = new Scheduler(m.pool, { maxBatch: 2, maxQueue: 4, tokenBudget: 17, prefillChunk: 16 });
  const stream = submit(s, { promptIds: [1, 5, 6], maxTokens: 30, ignoreEos: true });
  await new Promise((r) => setTimeout(r, 5));
  const long = submit(s, {
    promptIds: Array.from({ length: 200 }, (_, i) => 3 + (i % 200)),
    maxTokens: 2,
    ignoreEos: true,
  });
  const [a, b] = await Promise.all([stream, long]);
  for (let i = 1; i < a.steps.length; i++)
    assert.equal(a.steps[i]! - a.steps[i - 1]!, 1, `token ${i} waited ${a.steps[i]! - a.steps[i - 1]!} steps`);
  assert.ok(b.steps[0]! >= Math.ceil(200 / 16), 'the long prompt took several chunked steps');
  await m.close();
});

test('--prefill-alone: a prompt prefills in larger steps while nothing decodes, in --prefill-chunk steps while a stream does', async () => {
  const m = await openTiny('2mamba', 6, { slots: 2 });
  const s = new Scheduler(m.pool, { maxBatch: 2, maxQueue: 4, tokenBudget: 17, prefillChunk: 16, prefillAlone: 64 });
  const prompt = Array.from({ length: 200 }, (_, i) => 3 + (i % 200));
  // alone: ⌈200 / 64⌉ = 4 steps to the first token (the first step samples it)
  const alone = await submit(s, { promptIds: prompt, maxTokens: 1, ignoreEos: true });
  assert.equal(alone.steps[0], 4, `alone: first token after ${alone.steps[0]} steps`);
  // beside a decoding stream: chunks of 16 again (⌈200 / 16⌉ = 13 steps), and the stream gets a token every step
  const before = s.steps;
  const stream = submit(s, { promptIds: [1, 5, 6], maxTokens: 30, ignoreEos: true });
  await new Promise((r) => setTimeout(r, 5));
  const beside = submit(s, { promptIds: prompt, maxTokens: 1, ignoreEos: true });
  const [a, b] = await Promise.all([stream, beside]);
  for (let i = 1; i < a.steps.length; i++) assert.equal(a.steps[i]! - a.steps[i - 1]!, 1);
  assert.ok(b.steps[0]! - before >= 13, `beside a stream: first token after ${b.steps[0]! - before} steps`);
  await m.close();
});

test('--prefill-alone by default: 4096 on a GPU for 2Mamba and on tensor cores for every model, else 1024', () => {
  assert.equal(defaultPrefillAlone('2mamba', 'webgpu'), 4096);
  for (const arch of ['softmax', '2mamba-e', '2mamba']) assert.equal(defaultPrefillAlone(arch, 'webgpu', true), 4096);
  for (const [arch, backend] of [
    ['2mamba', 'reference'],
    ['2mamba', 'cpu'],
    ['softmax', 'webgpu'],
    ['2mamba-e', 'webgpu'],
  ])
    assert.equal(defaultPrefillAlone(arch!, backend!), 1024, `${arch} on ${backend}`);
});

test('bounded queue, requests that can never fit, aborts in the queue and while running, deadlines', async () => {
  const m = await openTiny('softmax', 9, { slots: 1, kvTokens: 64 });
  const s = new Scheduler(m.pool, { maxBatch: 1, maxQueue: 2, tokenBudget: 64, prefillChunk: 64 });
  assert.throws(() => s.submit({ promptIds: [1, 2], maxTokens: 100 }, { onEnd() {} }), RequestTooLargeError);
  const running = new AbortController(),
    queued = new AbortController();
  let streaming = () => {};
  const started = new Promise<void>((r) => {
    streaming = r;
  });
  const a = submit(s, { promptIds: [1, 2, 3], maxTokens: 40, ignoreEos: true, signal: running.signal }, () =>
    streaming(),
  );
  const b = submit(s, { promptIds: [1, 2, 3], maxTokens: 5, ignoreEos: true, signal: queued.signal });
  const c = submit(s, { promptIds: [1, 2, 3], maxTokens: 3, ignoreEos: true, deadline: performance.now() - 1 });
  assert.throws(() => s.submit({ promptIds: [1], maxTokens: 1 }, { onEnd() {} }), QueueFullError);
  queued.abort();
  await started;
  running.abort();
  const [ra, rb, rc] = await Promise.all([a, b, c]);
  assert.equal(ra.reason, 'abort');
  assert.ok(ra.ids.length > 0 && ra.ids.length < 40);
  assert.deepEqual([rb.reason, rb.ids.length], ['abort', 0]);
  assert.deepEqual([rc.reason, rc.ids.length], ['deadline', 0]);
  await s.idle();
  assert.equal(m.pool.slots.inUse, 0);
  assert.equal(m.pool.pages.inUse, 0);
  await m.close();
});

test('one request whose own work throws ends alone: the others finish, the engine stays healthy', async () => {
  const m = await openTiny('2mamba', 12, { slots: 3 });
  const s = new Scheduler(m.pool, { maxBatch: 3, maxQueue: 4, tokenBudget: 64, prefillChunk: 64 });
  const alone = await submit(s, { promptIds: [1, 5, 9], maxTokens: 6, ignoreEos: true, sampling: { temperature: 0 } });
  // a callback that throws on its request's third token (as a failing detokenizer or grammar would)
  const bad = new Promise<Error>((resolve, reject) => {
    let n = 0;
    s.submit(
      { promptIds: [1, 7], maxTokens: 20, ignoreEos: true },
      {
        onToken: () => {
          if (++n === 3) throw new Error('boom in one request');
        },
        onEnd: () => reject(new Error('the failing request ended normally')),
        onError: resolve,
      },
    );
  });
  const good = submit(s, { promptIds: [1, 5, 9], maxTokens: 6, ignoreEos: true, sampling: { temperature: 0 } });
  assert.match((await bad).message, /boom in one request/);
  assert.deepEqual((await good).ids, alone.ids, 'the bystander got the same tokens as alone');
  await s.idle();
  assert.equal(s.failure, null);
  assert.equal(m.pool.slots.inUse, 0);
  // and the scheduler keeps serving
  assert.deepEqual(
    (await submit(s, { promptIds: [1, 5, 9], maxTokens: 6, ignoreEos: true, sampling: { temperature: 0 } })).ids,
    alone.ids,
  );
  await m.close();
});

test('--max-queue counts only requests that must wait: with free places, max-queue 0 still admits', async () => {
  const m = await openTiny('2mamba', 13, { slots: 2 });
  const s = new Scheduler(m.pool, { maxBatch: 2, maxQueue: 0, tokenBudget: 64, prefillChunk: 64 });
  assert.equal(s.canQueue(2), true);
  assert.equal(s.canQueue(3), false);
  const a = submit(s, { promptIds: [1, 2], maxTokens: 3, ignoreEos: true });
  const b = submit(s, { promptIds: [1, 3], maxTokens: 3, ignoreEos: true });
  assert.throws(() => s.submit({ promptIds: [1], maxTokens: 1 }, { onEnd() {} }), QueueFullError);
  assert.equal(s.capacity, 2);
  await Promise.all([a, b]);
  await s.idle();
  assert.equal(s.canQueue(2), true, 'free again');
  await m.close();
});
