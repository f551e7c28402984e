// The fast CPU backend (kernels/wasm/) against the reference one: its WebAssembly SIMD kernels op by op on fresh
// random inputs (outputs poisoned with NaN first), chunked prefill against recurrent decode, whole-model logits, the
// ordering of calls around a run in flight, and a failing run that leaves the backend usable.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../../kernels/cpu/backend.js';
import { WasmBackend } from '../../kernels/wasm/backend.js';
import type { Backend, BufferKind, Step } from '../../kernels/backend.js';
import { phiDim, type Op } from '../../kernels/ops.js';
import { phi } from '../../kernels/cpu/mamba2.js';
import type { Rng } from '../../lib/rng.js';
import { loadCheckpoint } from '../../weights/checkpoint.js';
import { Model } from '../../engine/model/model.js';
import { SequencePool } from '../../engine/memory/sequences.js';
import type { Arch } from '../../weights/config.js';
import { freshRng, relErr, tinyCheckpoint } from '../helpers.js';
import { attentionCases, scenario } from './gpu-harness.js';

const two = await WasmBackend.open({ threads: 2 });
const one = await WasmBackend.open({ threads: 1 });
after(() => Promise.all([two.destroy(), one.destroy()]));

interface Buf {
  name: string;
  init: ArrayLike<number>;
  kind?: BufferKind;
  /** Compared after the run; poisoned with NaN first unless `inout` (a state the op reads and updates). */
  out?: boolean;
  inout?: boolean;
}

/** Run ops on the reference and on the fast backend; every output within tol (max |Δ| / max |reference|). */
async function compare(
  fast: WasmBackend,
  label: string,
  ops: Op[],
  bufs: Buf[],
  step: Step,
  tol: number,
  seed: number,
) {
  const ref = new CpuBackend();
  for (const b of bufs) {
    ref.create(b.name, b.init.length, { kind: b.kind ?? 'f32', init: b.init });
    fast.create(b.name, b.init.length, {
      kind: b.kind ?? 'f32',
      init: b.out && !b.inout ? new Float32Array(b.init.length).fill(NaN) : b.init,
    });
  }
  await ref.run({ ops }, step);
  await fast.run({ ops }, step);
  for (const b of bufs.filter((b) => b.out)) {
    const want = await ref.read(b.name),
      got = await fast.read(b.name);
    const bad = got.findIndex((x) => !Number.isFinite(x));
    assert.equal(bad, -1, `${label}: ${b.name}[${bad}] was not written (seed ${seed})`);
    assert.ok(relErr(got, want) <= tol, `${label}: ${b.name} rel ${relErr(got, want)} > ${tol} (seed ${seed})`);
  }
}

const normals = (rng: Rng, n: number, std = 1) => rng.normals(n, std);

test('matmul: plain, residual add, rmsnorm and silu·mul prologues, per-sequence rows; odd shapes; 1 and 2 threads', async () => {
  const { rng, seed } = freshRng();
  // f32 sums vs f64: relative 1e-5 for k ≤ 300 (measured ≤ 3.4e-7 over 10 seeds).
  for (const fast of [one, two])
    for (const [rows, k, n] of [
      [1, 64, 96],
      [5, 37, 29],
      [76, 128, 70],
      [3, 300, 8],
    ] as const) {
      const step: Step = { seqs: [{ slot: 0, pos: 0, rows, pages: [] }] };
      const x = normals(rng, rows * 2 * k),
        w = normals(rng, n * k, 0.1),
        g = normals(rng, k);
      const bufs = (): Buf[] => [
        { name: 'x', init: x },
        { name: 'w', init: w },
        { name: 'g', init: g },
        { name: 'out', init: normals(rng, rows * n), out: true },
      ];
      const cases: [string, Op][] = [
        ['plain', { op: 'matmul', x: 'x', w: 'w', out: 'out', k, n }],
        ['add', { op: 'matmul', x: 'x', w: 'w', out: 'out', k, n, add: true }],
        ['norm', { op: 'matmul', x: 'x', w: 'w', out: 'out', k, n, norm: { weight: 'g', eps: 1e-5 } }],
        ['silu_mul', { op: 'matmul', x: 'x', w: 'w', out: 'out', k, n, act: 'silu_mul' }],
      ];
      for (const [name, op] of cases) {
        const ref = new CpuBackend();
        const b = bufs();
        // `add` accumulates into out: both sides start from the same values
        if (name !== 'add') await compare(fast, `${name} ${rows}×${k}×${n}`, [op], b, step, 1e-5, seed);
        else {
          for (const x of b) {
            ref.create(x.name, x.init.length, { init: x.init });
            fast.create(x.name, x.init.length, { init: x.init });
          }
          await ref.run({ ops: [op] }, step);
          await fast.run({ ops: [op] }, step);
          const e = relErr(await fast.read('out'), await ref.read('out'));
          assert.ok(e <= 1e-5, `add ${rows}×${k}×${n}: rel ${e} (seed ${seed})`);
        }
      }
    }
  // perSeq: one row per sequence (after gather_last)
  const step: Step = {
    seqs: [
      { slot: 0, pos: 0, rows: 4, pages: [] },
      { slot: 1, pos: 9, rows: 1, pages: [] },
    ],
  };
  await compare(
    two,
    'perSeq',
    [{ op: 'matmul', x: 'x', w: 'w', out: 'out', k: 64, n: 40, perSeq: true, norm: { weight: 'g', eps: 1e-5 } }],
    [
      { name: 'x', init: normals(rng, 2 * 64) },
      { name: 'w', init: normals(rng, 40 * 64, 0.1) },
      { name: 'g', init: normals(rng, 64) },
      { name: 'out', init: new Float32Array(2 * 40), out: true },
    ],
    step,
    1e-5,
    seed,
  );
});

/** Inputs of the mamba2 op; every slot's carried state is a real one: φ(s·k)vᵀ and φ(s·k) summed over 12 earlier
 *  random tokens (so φ(q)ᵀn > 0, as in a model). */
function mamba2Bufs(rng: Rng, rows: number, slots: number, H: number, d: number, out = true): Buf[] {
  const D = phiDim(d),
    s = 1 / Math.sqrt(d);
  const S = new Float32Array(slots * H * D * d),
    N = new Float32Array(slots * H * D);
  for (let sh = 0; sh < slots * H; sh++)
    for (let t = 0; t < 12; t++) {
      const f = phi(normals(rng, d).map((x) => s * x)),
        v = normals(rng, d);
      for (let p = 0; p < D; p++) {
        N[sh * D + p]! += f[p]!;
        for (let m = 0; m < d; m++) S[(sh * D + p) * d + m]! += f[p]! * v[m]!;
      }
    }
  return [
    { name: 'qkv', init: normals(rng, rows * 3 * H * d) },
    { name: 'logA', init: normals(rng, rows * H).map((z) => -Math.log1p(Math.exp(z * 2 - 3))) },
    { name: 'S', init: S, out, inout: true },
    { name: 'N', init: N, out, inout: true },
    { name: 'y', init: new Float32Array(rows * H * d), out },
  ];
}

test('mamba2: recurrent step and chunked prefill (fresh, carried state, 70 rows = two chunks) match the reference', async () => {
  const { rng, seed } = freshRng();
  const { step, rows, slots } = scenario();
  // f32 sums over D = 2080 φ rows vs f64: relative 2e-5 (measured ≤ 1.3e-6 over 10 seeds)
  for (const [H, d] of [
    [2, 64],
    [3, 8],
    [1, 12], // d % 8 ≠ 0: the reference code, run on the team's leader
  ] as const) {
    const op: Op = { op: 'mamba2', qkv: 'qkv', logA: 'logA', S: 'S', N: 'N', out: 'y', heads: H, headDim: d };
    for (const fast of [one, two])
      await compare(fast, `mamba2 H=${H} d=${d}`, [op], mamba2Bufs(rng, rows, slots, H, d), step, 2e-5, seed);
  }
});

test('mamba2 on the fast backend: chunked prefill of 150 rows == 150 recurrent steps (y and final state)', async () => {
  const { rng, seed } = freshRng();
  const H = 2,
    d = 64,
    T = 150,
    E = H * d;
  const b = mamba2Bufs(rng, T, 1, H, d);
  const op = (qkv: string, logA: string): Op => ({
    op: 'mamba2',
    qkv,
    logA,
    S: 'S',
    N: 'N',
    out: 'y',
    heads: H,
    headDim: d,
  });
  two.create('qkv', T * 3 * E, { init: b[0]!.init });
  two.create('logA', T * H, { init: b[1]!.init });
  for (const n of ['S', 'N']) two.create(n, b.find((x) => x.name === n)!.init.length);
  two.create('y', T * E);
  await two.run({ ops: [op('qkv', 'logA')] }, { seqs: [{ slot: 0, pos: 0, rows: T, pages: [] }] });
  const [yc, Sc, Nc] = [await two.read('y'), await two.read('S'), await two.read('N')];
  const yr = new Float32Array(T * E);
  two.create('q1', 3 * E);
  two.create('a1', H);
  const plan = { ops: [op('q1', 'a1')] };
  for (let t = 0; t < T; t++) {
    two.write('q1', (b[0]!.init as Float32Array).subarray(t * 3 * E, (t + 1) * 3 * E));
    two.write('a1', (b[1]!.init as Float32Array).subarray(t * H, (t + 1) * H));
    await two.run(plan, { seqs: [{ slot: 0, pos: t, rows: 1, pages: [] }] });
    yr.set(await two.read('y', 0, E), t * E);
  }
  // f32 sums in two orders (chunks vs one token at a time) through D = 2080 state rows: y measured at most 1.5e-5 over
  // 25 random seeds, and seed 82549047543067 reached 2.4e-5 (failing a CI run at the old 2e-5; rows whose denominator
  // cancels): bound 1e-4. The state itself agrees to ~2e-7.
  assert.ok(relErr(yc, yr) < 1e-4, `y: rel ${relErr(yc, yr)} (seed ${seed})`);
  assert.ok(relErr(Sc, await two.read('S')) < 2e-5, `S: rel ${relErr(Sc, await two.read('S'))} (seed ${seed})`);
  assert.ok(relErr(Nc, await two.read('N')) < 2e-5, `N (seed ${seed})`);
});

test('attention: paged KV (softmax with GQA; 2Mamba-E with cumulative decays), rows at several positions', async () => {
  const { rng, seed } = freshRng();
  // f32 logits and sums vs f64: relative 2e-5 (as the WGSL kernels)
  for (const fast of [one, two])
    for (const c of attentionCases(rng)) {
      const bufs = c.bufs.map((b) => ({ ...b, out: c.outputs.includes(b.name), inout: b.name !== 'y' }));
      await compare(fast, c.label, c.ops, bufs, scenario().step, 2e-5, seed);
    }
});

/** Whole-model logits, fast CPU (f32) against the reference (f64 sums): see the test below. */
const TOL_F32_MODEL = 2e-3;

async function loadBoth(dir: string, fast: Backend): Promise<[SequencePool, SequencePool]> {
  const out: SequencePool[] = [];
  for (const be of [new CpuBackend(), fast]) {
    const ck = await loadCheckpoint(dir);
    out.push(new SequencePool(await Model.load(ck, be, { slots: 4, kvPages: 64, pageSize: 16 })));
    await ck.close();
  }
  return out as [SequencePool, SequencePool];
}

for (const arch of ['2mamba', '2mamba-e', 'softmax'] as Arch[]) {
  test(`${arch}: fast CPU logits == reference after prefill and over 32 decode steps at batch 1 and 3`, async () => {
    const { rng, seed } = freshRng();
    const fast = await WasmBackend.open({ threads: 2 });
    try {
      const [ref, fa] = await loadBoth(await tinyCheckpoint(arch, seed % 1000), fast);
      const ids = (n: number) => Array.from({ length: n }, () => 3 + Math.floor(rng.next() * 256));
      const [a, b] = [ref.open(), fa.open()];
      const prompt = ids(90);
      const e0 = relErr(
        await fa.step([{ seq: b, ids: prompt }], true),
        await ref.step([{ seq: a, ids: prompt }], true),
      );
      // f32 sums against f64. How much the rounding grows depends on the random checkpoint: over 8 of them the
      // 2Mamba error after this prefill and 32 steps ranged 1e-6 … 6.1e-4 (seed 116359745888450: 1.04e-4, then 6.1e-4;
      // its readout divides by denominators near their floor). The bound allows 3× the worst seen.
      assert.ok(e0 < TOL_F32_MODEL, `prefill: rel ${e0} (seed ${seed})`);
      const prompts = [ids(3), ids(77), ids(20)];
      const seqs = [ref, fa].map((p) => [p.open(), p.open(), p.open()]);
      for (let t = 0; t < 32; t++) {
        const single = [{ seq: a, ids: [prompt[t]!] }],
          one = [{ seq: b, ids: [prompt[t]!] }];
        const items = (k: number) =>
          prompts.map((pr, i) => ({ seq: seqs[k]![i]!, ids: t === 0 ? pr : [pr[t % pr.length]!] }));
        // f32 everywhere vs f64 sums: 2Mamba's state carries the difference (the bound above)
        const e1 = relErr(await fa.step(one), await ref.step(single));
        const e3 = relErr(await fa.step(items(1)), await ref.step(items(0)));
        assert.ok(
          e1 < TOL_F32_MODEL && e3 < TOL_F32_MODEL,
          `${arch} step ${t}: rel ${e1}, batch 3 ${e3} (seed ${seed})`,
        );
      }
    } finally {
      await fast.destroy();
    }
  });
}

test('calls keep their order around a run in flight; a failing run rejects with its message and the backend goes on', async () => {
  const be = await WasmBackend.open({ threads: 2 });
  try {
    be.create('x', 4, { init: [1, 2, 3, 4] });
    be.create('w', 4, { init: [1, 1, 1, 1] });
    be.create('out', 1);
    const plan = { ops: [{ op: 'matmul', x: 'x', w: 'w', out: 'out', k: 4, n: 1 } as Op] };
    const step: Step = { seqs: [{ slot: 0, pos: 0, rows: 1, pages: [] }] };
    const first = be.run(plan, step);
    const r1 = be.read('out');
    be.write('x', [10, 20, 30, 40]); // issued while the run is in flight: applies after it
    const second = be.run(plan, step);
    const r2 = be.read('out');
    await Promise.all([first, second]);
    assert.deepEqual([...(await r1), ...(await r2)], [10, 100]);
    // a KV page outside the sequence's table: the reference kv_append throws inside the worker
    be.create('qkv', 3 * 8);
    be.create('k', 16 * 8);
    be.create('v', 16 * 8);
    const bad: Op = {
      op: 'kv_append',
      qkv: 'qkv',
      k: 'k',
      v: 'v',
      layout: { heads: 1, kvHeads: 1, headDim: 8 },
      pageSize: 16,
    };
    await assert.rejects(
      be.run({ ops: [bad] }, { seqs: [{ slot: 0, pos: 40, rows: 1, pages: [0] }] }),
      /KV position 40/,
    );
    await be.run(plan, step);
    assert.deepEqual([...(await be.read('out'))], [100]);
  } finally {
    await be.destroy();
  }
});
