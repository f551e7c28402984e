// 2Mamba state snapshots (engine/memory/state-cache.ts): a prompt that begins with tokens another request processed
// starts from that request's state, and its tokens equal the same request prefilled from scratch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, type RequestSpec } from '../../engine/scheduler.js';
import { defaultMinHostTokens, StateCache } from '../../engine/memory/state-cache.js';
import { PageCache } from '../../engine/memory/page-cache.js';
import type { OpenModel } from '../../engine/open.js';
import { freshRng, openTiny } from '../helpers.js';
import { until } from '../server/harness.js';

interface Run {
  ids: number[];
  cached: number;
}

function run(s: Scheduler, spec: RequestSpec): Promise<Run> {
  return new Promise((resolve, reject) => {
    const ids: number[] = [];
    s.submit(spec, {
      onToken: (t) => void ids.push(t.id),
      onEnd: (_, info) => resolve({ ids, cached: info.cachedTokens }),
      onError: reject,
    });
  });
}

const greedy = (promptIds: number[], maxTokens: number): RequestSpec => ({
  promptIds,
  maxTokens,
  sampling: { temperature: 0 },
  ignoreEos: true,
});

function schedulers(m: OpenModel, capacity: number, useDevice = true, minHostTokens = 0) {
  const cache = new StateCache(() => m.pool, capacity, useDevice, minHostTokens);
  const opts = { maxBatch: 2, maxQueue: 8, tokenBudget: 64, prefillChunk: 16 };
  return { cache, cached: new Scheduler(m.pool, { ...opts, prefixCache: cache }), plain: new Scheduler(m.pool, opts) };
}

test('a prompt that continues an earlier request restores its state: same tokens as a full prefill', async () => {
  const { rng, seed } = freshRng();
  // the reference backend (f64 sums): a state restored mid-sequence continues exactly as the uninterrupted one
  const m = await openTiny('2mamba', seed % 97, { slots: 2, backend: 'reference' });
  try {
    const { cache, cached, plain } = schedulers(m, 2 ** 30);
    const tok = () => 3 + Math.floor(rng.next() * 250);
    const P = [1, ...Array.from({ length: 30 + Math.floor(rng.next() * 30) }, tok)];
    const a = await run(cached, greedy(P, 6));
    assert.equal(a.cached, 0);
    // two snapshots: the prompt, and the prompt + the 5 generated tokens the sequence was fed
    await until(() => cache.stats().entries === 2, 5000, 'two snapshots');
    const turn2 = [...P, ...a.ids, ...Array.from({ length: 9 }, tok)];
    const b = await run(cached, greedy(turn2, 8));
    assert.equal(b.cached, P.length + a.ids.length - 1, `seed ${seed}`);
    assert.deepEqual(b.ids, (await run(plain, greedy(turn2, 8))).ids, `seed ${seed}`);
    // the same prompt again: its own end-of-prompt snapshot covers all of it, and the last prompt token must be fed
    // for the first token's logits, so the longest usable one is still the first request's
    await until(() => cache.stats().entries === 4, 5000, 'four snapshots');
    const again = await run(cached, greedy(turn2, 8));
    assert.equal(again.cached, b.cached);
    assert.deepEqual(again.ids, b.ids);
    // a prompt that leaves the cached path at its last token hits only a shorter snapshot
    const fork = [...P.slice(0, -1), P.at(-1)! + 1, ...a.ids];
    const f = await run(cached, greedy(fork, 5));
    assert.equal(f.cached, 0, 'no stored sequence is a prefix of the fork');
    assert.deepEqual(f.ids, (await run(plain, greedy(fork, 5))).ids);
    const st = cache.stats();
    assert.equal(st.hitTokens, b.cached + again.cached);
    assert.equal(st.evictions, 0);
  } finally {
    await m.close();
  }
});

test('snapshots shorter than minHostTokens stay on the device while a slot is free and are never read back', async () => {
  const { rng, seed } = freshRng();
  const m = await openTiny('2mamba', seed % 83, { slots: 3 });
  try {
    const tok = () => 3 + Math.floor(rng.next() * 250);
    const short = [1, ...Array.from({ length: 8 }, tok)],
      long = [1, ...Array.from({ length: 30 }, tok)];
    // host RAM only: the short prompt's snapshot is not taken, the long one's is
    const host = schedulers(m, 2 ** 30, false, 20);
    await run(host.cached, greedy(short, 1));
    await run(host.cached, greedy(long, 1));
    await until(() => host.cache.stats().entries === 1, 5000, 'one snapshot');
    assert.equal((await run(host.cached, greedy([...short, 9], 1))).cached, 0, `seed ${seed}`);
    assert.equal((await run(host.cached, greedy([...long, 9], 1))).cached, long.length, `seed ${seed}`);
    // with free slots the short one is kept there (a device copy is cheap) and dropped when a request needs the slot
    const dev = schedulers(m, 2 ** 30, true, 20);
    await run(dev.cached, greedy(short, 1));
    assert.equal(dev.cache.stats().deviceEntries, 1);
    assert.equal((await run(dev.cached, greedy([...short, 9], 1))).cached, short.length);
    assert.equal(dev.cache.evict(3), 2, 'both device snapshots give their slots back');
    assert.equal(dev.cache.stats().entries, 0, 'neither was read back to host RAM');
    await until(() => dev.cache.stats().entries === 0 && m.pool.slots.inUse === 0, 5000, 'slots free');
  } finally {
    await m.close();
  }
});

test('a snapshot is read back from a GPU from one token per 256 KiB of state, per 16 KiB with tensor cores; always on a CPU', () => {
  const small = 173301760; // the small preset's 2Mamba state
  assert.equal(defaultMinHostTokens(small, { name: 'webgpu' }), 662);
  assert.equal(defaultMinHostTokens(small, { name: 'webgpu', fastPrefill: false }), 662);
  assert.equal(defaultMinHostTokens(small, { name: 'webgpu', fastPrefill: true }), 10578);
  assert.equal(defaultMinHostTokens(small, { name: 'cpu' }), 0);
});

test('the snapshot store stays under its byte cap, evicting the least recently used', async () => {
  const { rng, seed } = freshRng();
  const m = await openTiny('2mamba', seed % 89, { slots: 2 });
  try {
    // host RAM only (free slots would hold the snapshots first)
    const probe = schedulers(m, 2 ** 30, false);
    await run(probe.cached, greedy([1, 5, 6, 7], 1));
    await until(() => probe.cache.stats().entries === 1, 5000, 'a snapshot');
    const one = probe.cache.stats().bytes;
    const { cache, cached } = schedulers(m, Math.floor(2.5 * one), false);
    const prompts = [0, 1, 2].map(() => [1, ...Array.from({ length: 12 }, () => 3 + Math.floor(rng.next() * 250))]);
    for (const [i, p] of prompts.entries()) {
      await run(cached, greedy(p, 1)); // one snapshot each: the prompt (a request of one token feeds nothing more)
      await until(() => cache.stats().entries + cache.stats().evictions === i + 1, 5000, `snapshot ${i}`);
    }
    const st = cache.stats();
    assert.equal(st.entries, 2);
    assert.equal(st.evictions, 1);
    assert.ok(st.bytes <= st.capacityBytes, `${st.bytes} > ${st.capacityBytes}`);
    // the oldest prompt was evicted; the newest is still there
    assert.equal((await run(cached, greedy([...prompts[0]!, 9], 1))).cached, 0);
    assert.equal((await run(cached, greedy([...prompts[2]!, 9], 1))).cached, prompts[2]!.length);
  } finally {
    await m.close();
  }
});

test('a background prefill gives way to a request that waits for its place, keeping what it fed', async () => {
  const { rng, seed } = freshRng();
  const m = await openTiny('2mamba', seed % 83, { slots: 1 });
  try {
    const cache = new StateCache(() => m.pool, 2 ** 30);
    const s = new Scheduler(m.pool, {
      maxBatch: 1,
      maxQueue: 4,
      tokenBudget: 16,
      prefillChunk: 16,
      prefixCache: cache,
    });
    const long = [1, ...Array.from({ length: 400 }, () => 3 + Math.floor(rng.next() * 250))];
    const warm = new Promise<string>((resolve, reject) =>
      s.submit({ ...greedy(long, 0), prefillOnly: true }, { onEnd: (why) => resolve(why), onError: reject }),
    );
    await until(() => s.snapshot()[0]?.prefilled! >= 32, 5000, 'the background prefill under way');
    const user = run(s, greedy([1, 7, 8, 9], 3));
    assert.equal(await warm, 'abort', 'the background prefill ended for the waiting request');
    assert.equal((await user).ids.length, 3);
    // what it had fed (whole 16-token chunks) is a snapshot a later prompt can start from
    await until(() => cache.stats().entries >= 1, 5000, 'the partial snapshot');
    const r = await run(s, greedy([...long, 5], 2));
    assert.ok(r.cached >= 32 && r.cached % 16 === 0 && r.cached < long.length, `cached ${r.cached} (seed ${seed})`);
  } finally {
    await m.close();
  }
});

// the reference backend (f64 sums), and WebGPU (f16 KV pages, their partial copy on the device)
for (const [arch, backend] of [
  ['softmax', 'reference'],
  ['2mamba-e', 'reference'],
  ['2mamba-e', 'webgpu'],
] as const)
  test(`${arch} (${backend}): a prompt that begins with a cached prefix takes its KV pages by reference (the partial page copied${
    arch === '2mamba-e' ? ', the conv state restored' : ''
  }); same tokens; shared pages never written; pages freed on demand`, async () => {
    const { rng, seed } = freshRng();
    // 12 pages of 16 tokens: enough for the first requests, then one that needs every page
    const m = await openTiny(arch, seed % 79, { slots: 2, kvTokens: 192, backend });
    try {
      const pages = new PageCache(m.pool, 1);
      const opts = { maxBatch: 2, maxQueue: 8, tokenBudget: 64, prefillChunk: 16 };
      const cached = new Scheduler(m.pool, { ...opts, prefixCache: pages }),
        plain = new Scheduler(m.pool, opts);
      const tok = () => 3 + Math.floor(rng.next() * 250);
      const P = [1, ...Array.from({ length: 39 }, tok)];
      const a = await run(cached, greedy(P, 6)); // fed 45 tokens: pages 0 and 1 are full, page 2 holds 13
      assert.equal(a.cached, 0);
      // kept: the two whole pages, and two tails (the prompt's end at 40 and the request's at 45) on page 2
      await until(() => pages.readyTails === 2, 5000, 'two tails');
      assert.equal(pages.stats().entries, 4);
      assert.equal(m.pool.pages.inUse, 3, 'only the cached pages stay');
      assert.equal(m.pool.freePages, m.pool.pages.capacity, 'and they count as free');
      const turn2 = [...P, ...a.ids, ...Array.from({ length: 9 }, tok)];
      // every layer's K, V (and 2Mamba-E's C) of the pages the cache holds, before the request that shares them
      const held = pages.heldPages(),
        perPage = (name: string) => m.backend.size(name) / m.pool.pages.capacity;
      const kvNames = Array.from({ length: m.model.spec.layers }, (_, i) => [
        `kv.${i}.k`,
        `kv.${i}.v`,
        ...(arch === '2mamba-e' ? [`kv.${i}.c`] : []),
      ]).flat();
      const snap = async () =>
        Promise.all(kvNames.flatMap((n) => held.map((pg) => m.backend.read(n, pg * perPage(n), perPage(n)))));
      const before = await snap();
      const b = await run(cached, greedy(turn2, 8));
      // from the request's tail: pages 0 and 1 shared, page 2's 13 tokens copied into a page of its own
      assert.equal(b.cached, 45, `seed ${seed}`);
      assert.deepEqual(await snap(), before, 'the pages the cache held were not written');
      assert.deepEqual(b.ids, (await run(plain, greedy(turn2, 8))).ids, `seed ${seed}`);
      // a request that needs every page evicts the cached ones (least recently used first) and runs
      const big = [1, ...Array.from({ length: 180 }, tok)];
      const c = await run(cached, greedy(big, 11));
      assert.equal(c.ids.length, 11);
      assert.ok(pages.stats().evictions >= 1);
      assert.equal(m.pool.freePages, m.pool.pages.capacity);
    } finally {
      await m.close();
    }
  });

test('a long prefill keeps a snapshot every checkpoint: a prompt that shares only its beginning still hits', async () => {
  const { rng, seed } = freshRng();
  const m = await openTiny('2mamba', seed % 73, { slots: 2, backend: 'reference' });
  try {
    const cache = new StateCache(() => m.pool, 2 ** 30);
    const opts = { maxBatch: 2, maxQueue: 8, tokenBudget: 16, prefillChunk: 16 };
    const s = new Scheduler(m.pool, { ...opts, prefixCache: cache, checkpointTokens: 32 }),
      plain = new Scheduler(m.pool, opts);
    const tok = () => 3 + Math.floor(rng.next() * 250);
    const doc = [1, ...Array.from({ length: 99 }, tok)];
    await run(s, greedy(doc, 1));
    // snapshots at 32, 64 and 96 prefilled tokens, and the whole prompt
    await until(() => cache.stats().entries === 4, 5000, 'four snapshots');
    const other = [...doc.slice(0, 70), ...Array.from({ length: 20 }, tok)];
    const r = await run(s, greedy(other, 6));
    assert.equal(r.cached, 64, `seed ${seed}`);
    assert.deepEqual(r.ids, (await run(plain, greedy(other, 6))).ids, `seed ${seed}`);
  } finally {
    await m.close();
  }
});

test('where reading back costs (a GPU), a checkpoint without a free slot is not taken; the prompt end still is', async () => {
  const { rng, seed } = freshRng();
  // one slot: the request's own, so no snapshot finds a free one; minHostTokens > 0 marks reads as costly
  const m = await openTiny('2mamba', seed % 71, { slots: 1, backend: 'reference' });
  try {
    const tok = () => 3 + Math.floor(rng.next() * 250);
    const doc = [1, ...Array.from({ length: 99 }, tok)];
    const opts = { maxBatch: 1, maxQueue: 8, tokenBudget: 16, prefillChunk: 16, checkpointTokens: 32 };
    const gpuLike = new StateCache(() => m.pool, 2 ** 30, true, 8);
    await run(new Scheduler(m.pool, { ...opts, prefixCache: gpuLike }), greedy(doc, 1));
    await until(() => gpuLike.stats().entries >= 1, 5000, 'the prompt end read back');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(gpuLike.stats().entries, 1, `only the prompt's end (no checkpoints at 32, 64, 96), seed ${seed}`);
    // reads that cost nothing (minHostTokens 0: a CPU backend) keep every checkpoint
    const cpuLike = new StateCache(() => m.pool, 2 ** 30, true, 0);
    await run(new Scheduler(m.pool, { ...opts, prefixCache: cpuLike }), greedy(doc, 1));
    await until(() => cpuLike.stats().entries === 4, 5000, 'four snapshots');
  } finally {
    await m.close();
  }
});

test('on WebGPU too: a snapshot read back in one transfer restores the state exactly', async () => {
  const { rng, seed } = freshRng();
  const m = await openTiny('2mamba', seed % 71, { slots: 2, backend: 'webgpu' });
  try {
    const { cache, cached, plain } = schedulers(m, 2 ** 30);
    const P = [1, ...Array.from({ length: 40 }, () => 3 + Math.floor(rng.next() * 250))];
    const a = await run(cached, greedy(P, 5));
    await until(() => cache.stats().entries === 2, 5000, 'two snapshots');
    const next = [...P, ...a.ids, 7, 8, 9];
    const b = await run(cached, greedy(next, 6));
    assert.equal(b.cached, P.length + a.ids.length - 1);
    assert.deepEqual(b.ids, (await run(plain, greedy(next, 6))).ids, `seed ${seed}`);
  } finally {
    await m.close();
  }
});
