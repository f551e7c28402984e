// Whole-model properties of the three architectures on the reference backend (f64 sums: the graphs' math to 1e-4;
// the fast CPU and WebGPU backends are held to the reference in test/kernels/), tiny preset, random weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Arch } from '../../weights/config.js';
import { W } from '../../engine/model/llama.js';
import { memoryModel } from '../../engine/memory/prices.js';
import { freshRng, openTiny, relErr } from '../helpers.js';

const ARCHS: Arch[] = ['2mamba', '2mamba-e', 'softmax'];
const V = 512;
const randomIds = (rng: { next(): number }, n: number) =>
  Array.from({ length: n }, () => 3 + Math.floor(rng.next() * 256));

for (const arch of ARCHS) {
  test(`${arch}: prefill of a prompt then decode == prefill of the longer prompt; token-by-token == one prefill`, async () => {
    const { rng, seed } = freshRng();
    const m = await openTiny(arch, seed % 997, { backend: 'reference' });
    const ids = randomIds(rng, 160);
    // one prefill over all 160 tokens, logits at every position (parallel / chunked form)
    const full = await m.pool.step([{ seq: m.pool.open(), ids }], true);
    // a 100-token prompt, then 60 decode steps
    const s = m.pool.open();
    const parts = [await m.pool.step([{ seq: s, ids: ids.slice(0, 100) }], true)];
    for (let t = 100; t < 160; t++) parts.push(await m.pool.step([{ seq: s, ids: [ids[t]!] }]));
    const pieced = Float32Array.from(parts.flatMap((p) => [...p]));
    // fp32 activations through two layers; measured worst over 40 seeds: 3e-5 (2Mamba), less for the KV models
    assert.ok(
      relErr(pieced, full) < 2e-4,
      `${arch}: prefill+decode vs prefill: rel ${relErr(pieced, full)} (seed ${seed})`,
    );
    // all 160 tokens one at a time (the recurrent / KV decode form from position 0)
    const r = m.pool.open();
    const steps: number[] = [];
    for (const id of ids) steps.push(...(await m.pool.step([{ seq: r, ids: [id] }])));
    assert.ok(relErr(steps, full) < 2e-4, `${arch}: decode-only vs prefill: rel ${relErr(steps, full)} (seed ${seed})`);
    await m.close();
  });

  test(`${arch}: a batch of 3 sequences at different positions gives each the logits it gets alone`, async () => {
    const { rng, seed } = freshRng();
    const m = await openTiny(arch, seed % 991, { backend: 'reference' });
    const prompts = [randomIds(rng, 37), randomIds(rng, 5), randomIds(rng, 90)];
    const next = [randomIds(rng, 4), randomIds(rng, 4), randomIds(rng, 4)];
    // alone
    const alone: Float32Array[][] = [];
    for (let i = 0; i < 3; i++) {
      const s = m.pool.open(),
        out: Float32Array[] = [await m.pool.step([{ seq: s, ids: prompts[i]! }])];
      for (const id of next[i]!) out.push(await m.pool.step([{ seq: s, ids: [id] }]));
      alone.push(out);
      m.pool.close(s);
    }
    // batched: a slot taken first so the batch uses other slots than the solo runs; mixed prefill + decode steps
    const hog = m.pool.open();
    const seqs = [m.pool.open(), m.pool.open(), m.pool.open()];
    const got: Float32Array[][] = [[], [], []];
    let l = await m.pool.step([
      { seq: seqs[0]!, ids: prompts[0]! },
      { seq: seqs[2]!, ids: prompts[2]! },
    ]);
    got[0]!.push(l.slice(0, V));
    got[2]!.push(l.slice(V, 2 * V));
    l = await m.pool.step([
      { seq: seqs[1]!, ids: prompts[1]! },
      { seq: seqs[0]!, ids: [next[0]![0]!] },
      { seq: seqs[2]!, ids: [next[2]![0]!] },
    ]);
    got[1]!.push(l.slice(0, V));
    got[0]!.push(l.slice(V, 2 * V));
    got[2]!.push(l.slice(2 * V));
    for (let t = 0; t < 4; t++) {
      const items = [0, 1, 2]
        .filter((i) => (i === 1 ? t : t + 1) < 4)
        .map((i) => ({ i, id: next[i]![i === 1 ? t : t + 1]! }));
      l = await m.pool.step(items.map(({ i, id }) => ({ seq: seqs[i]!, ids: [id] })));
      items.forEach(({ i }, j) => got[i]!.push(l.slice(j * V, (j + 1) * V)));
    }
    for (let i = 0; i < 3; i++) {
      assert.equal(got[i]!.length, alone[i]!.length);
      got[i]!.forEach((g, t) =>
        assert.ok(
          relErr(g, alone[i]![t]!) < 1e-5,
          `${arch} seq ${i} step ${t}: rel ${relErr(g, alone[i]![t]!)} (seed ${seed})`,
        ),
      );
    }
    m.pool.close(hog);
    await m.close();
  });
}

test('2Mamba state memory is identical after 10 and 1000 tokens; softmax KV grows with the tokens held', async () => {
  const { rng, seed } = freshRng();
  const mb = await openTiny('2mamba', seed % 983, { slots: 2 });
  const stateBytes = () => mb.backend.bytes('state') + mb.backend.bytes('kv');
  const before = stateBytes();
  const s = mb.pool.open();
  await mb.pool.step([{ seq: s, ids: randomIds(rng, 10) }]);
  const at10 = { ...mb.pool.memory(s) },
    bytes10 = stateBytes();
  await mb.pool.step([{ seq: s, ids: randomIds(rng, 990) }]);
  const at1000 = mb.pool.memory(s);
  assert.deepEqual(at1000, at10);
  assert.equal(at10.state_bytes, memoryModel(mb.model.spec).stateBytes);
  assert.equal(at10.kv_bytes, 0);
  assert.equal(stateBytes(), bytes10);
  assert.equal(stateBytes(), before);
  await mb.close();

  const sm = await openTiny('softmax', seed % 983, { slots: 2, kvTokens: 1024 });
  const q = sm.pool.open();
  await sm.pool.step([{ seq: q, ids: randomIds(rng, 10) }]);
  const k10 = sm.pool.memory(q);
  await sm.pool.step([{ seq: q, ids: randomIds(rng, 990) }]);
  const k1000 = sm.pool.memory(q);
  const perToken = memoryModel(sm.model.spec).kvBytesPerToken;
  assert.equal(k10.kv_bytes, 16 * perToken); // one page of 16 tokens
  assert.equal(k1000.kv_bytes, Math.ceil(1000 / 16) * 16 * perToken);
  assert.equal(k1000.kv_tokens, 1000);
  sm.pool.close(q);
  assert.equal(sm.pool.pages.inUse, 0);
  await sm.close();
});

for (const arch of ARCHS) {
  test(`${arch}: slots copy, save and restore: a fork continues exactly like its source`, async () => {
    const { rng, seed } = freshRng();
    const m = await openTiny(arch, seed % 977);
    const prompt = randomIds(rng, 70),
      cont = randomIds(rng, 6);
    const a = m.pool.open();
    await m.pool.step([{ seq: a, ids: prompt }]);
    const snap = await m.model.saveSlot(a.slot);
    const b = m.pool.fork(a);
    assert.notEqual(b.slot, a.slot);
    assert.equal(b.pos, a.pos);
    const la = await m.pool.step([{ seq: a, ids: cont }], true);
    const lb = await m.pool.step([{ seq: b, ids: cont }], true);
    assert.deepEqual(lb, la, `${arch}: fork diverged (seed ${seed})`);
    // restore the saved state into a third slot (KV models also need the prompt's pages: fork from a snapshot of
    // a fresh run instead)
    if (arch === '2mamba') {
      const c = m.pool.open();
      m.model.restoreSlot(c.slot, snap);
      c.pos = prompt.length;
      const lc = await m.pool.step([{ seq: c, ids: cont }], true);
      assert.deepEqual(lc, la, `restored slot diverged (seed ${seed})`);
      // the snapshot is a copy: a's later steps did not change it
      assert.ok(
        (await m.backend.read(W.layer(0).S, a.slot * snap.get(W.layer(0).S)!.length, 8)).some(
          (x, i) => x !== snap.get(W.layer(0).S)![i],
        ),
      );
    }
    await m.close();
  });
}

test('a step that reads only the last rows keeps one row of logits per sequence; one that reads every row, per row', async () => {
  const { rng, seed } = freshRng();
  const m = await openTiny('softmax', seed % 971, { slots: 2, kvTokens: 1024 });
  const V = m.model.spec.vocab,
    logits = 'act.logits';
  const a = m.pool.open(),
    b = m.pool.open();
  await m.pool.step([
    { seq: a, ids: randomIds(rng, 300) },
    { seq: b, ids: randomIds(rng, 200) },
  ]);
  // 500 rows of vocabulary-wide logits would be 500 × V (a 4096-row step of a 128k vocabulary: 2 GiB)
  assert.equal(m.model.backend.size(logits), 2 * V);
  const all = await m.pool.step([{ seq: a, ids: randomIds(rng, 40) }], true);
  assert.equal(all.length, 40 * V);
  assert.ok(m.model.backend.size(logits) >= 40 * V);
  await m.close();
});
