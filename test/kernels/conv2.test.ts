// The conv2 family (the window-2 conv and decay front end, and RoPE beside it): the CPU oracle (kernels/cpu/conv2.ts) against the spec,
// and the WebGPU kernels (kernels/webgpu/wgsl/conv2.ts) against the CPU on fresh random inputs, outputs poisoned with NaN first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Step } from '../../kernels/backend.js';
import { CpuBackend } from '../../kernels/cpu/backend.js';
import { conv2Row, softplus } from '../../kernels/cpu/conv2.js';
import { freshRng } from '../helpers.js';
import { frontEndCase, frontEndOp, gpuHarness, scenario } from './gpu-harness.js';
import { close } from './vectors.js';

const { skip, compare } = await gpuHarness();

test(
  'conv2 with per-slot state (a fresh sequence ignores a stale slot), fused into the projection at decode, and RoPE in both conventions with GQA',
  { skip },
  async () => {
    const { rng, seed } = freshRng();
    const { step, rows } = scenario();
    const r = (n: number, std = 1) => rng.normals(n, std);
    // 90 channels: one per thread; 92 (and an x row stride of 96 below): four per thread
    for (const ch of [90, 92]) {
      await compare(
        `conv2 ch=${ch}`,
        [{ op: 'conv2', x: 'x', state: 'st', weight: 'cw', bias: 'cb', out: 'y', ch }],
        [
          { name: 'x', init: r(rows * ch) },
          { name: 'st', init: r(3 * ch) },
          { name: 'cw', init: r(2 * ch) },
          { name: 'cb', init: r(ch) },
          { name: 'y', init: new Float32Array(rows * ch), out: true },
        ],
        step,
        ['y', 'st'],
        1e-6,
        seed,
      );
      // the fused front end: x rows are [raw q, k, v | decay logits z] (ch + H wide); −softplus(z) goes to its own buffer
      const H = ch === 90 ? 5 : 4;
      await compare(
        `conv2 + logdecay ch=${ch}`,
        [frontEndOp(ch, H)],
        [
          { name: 'x', init: r(rows * (ch + H), 6) },
          { name: 'st', init: r(3 * ch) },
          { name: 'cw', init: r(2 * ch) },
          { name: 'cb', init: r(ch) },
          { name: 'y', init: new Float32Array(rows * ch), out: true },
          { name: 'la', init: new Float32Array(rows * H), out: true },
        ],
        step,
        ['y', 'st', 'la'],
        1e-6,
        seed,
      );
    }
    const ch = 90,
      H = 5;
    // a decode step (one row per sequence, one of them fresh): the projection and the front end run as one dispatch
    const dec: Step = {
      seqs: [
        { slot: 1, pos: 4, rows: 1, pages: [] },
        { slot: 0, pos: 0, rows: 1, pages: [] },
        { slot: 2, pos: 9, rows: 1, pages: [] },
      ],
    };
    const fe = frontEndCase(r, 3, 64, ch, H);
    await compare(
      '[qkv | A] projection + conv2 + logdecay, fused at decode',
      fe.ops,
      fe.bufs,
      dec,
      fe.outputs,
      1e-5,
      seed,
    );
    const layout = { heads: 4, kvHeads: 2, headDim: 64 },
      width = (4 + 4) * 64;
    for (const convention of ['interleaved', 'half'] as const) {
      await compare(
        `rope ${convention}`,
        [{ op: 'rope', qkv: 'q', freqs: 'f', layout, convention }],
        [
          { name: 'q', init: r(rows * width) },
          { name: 'f', init: Float32Array.from({ length: 32 }, (_, m) => 10000 ** (-m / 32)) },
        ],
        step,
        ['q'],
        1e-5,
        seed,
      );
    }
  },
);

// --- the CPU oracle against the spec (formerly cpu-ops.test.ts)

test('softplus and the decay reference values (spec §12.2)', () => {
  const a = (z: number) => Math.exp(-softplus(z));
  assert.equal(a(0), 0.5);
  assert.ok(Math.abs(a(5) - 0.0066928509) < 1e-9 && Math.abs(a(-5) - 0.9933071491) < 1e-9);
  assert.ok(Math.abs(a(20) - 2.0611536e-9) < 1e-15);
  assert.ok(Number.isFinite(softplus(1000)) && softplus(-1000) === 0);
});

test('conv window 2, including t = 0 with a zero previous token (spec §15.2), through the backend op', async () => {
  const be = new CpuBackend();
  be.create('x', 9, { kind: 'f32', init: [1, 2, 3, 4, 5, 6, 7, 8, 9] });
  be.create('state', 3 * 2);
  be.create('w', 6, { kind: 'f32', init: [0.5, 1, -1, 0.25, 2, -0.5] }); // [ch, (prev, cur)]
  be.create('b', 3, { kind: 'f32', init: [0.1, 0.2, 0.3] });
  be.create('out', 9);
  be.write('state', [100, 100, 100], 3); // stale slot contents must not leak into a sequence at pos 0
  await be.run(
    { ops: [{ op: 'conv2', x: 'x', state: 'state', weight: 'w', bias: 'b', out: 'out', ch: 3 }] },
    { seqs: [{ slot: 1, pos: 0, rows: 3, pages: [] }] },
  );
  close(await be.read('out'), [1.1, 0.7, -1.2, 4.6, -0.55, 3.3, 9.1, -2.8, 7.8], 1e-6, 'conv outputs');
  close(await be.read('state', 3, 3), [7, 8, 9], 0, 'conv state keeps the last RAW row');
  // a continuation uses the stored raw row as its previous token
  be.write('x', [1, 1, 1]);
  await be.run(
    { ops: [{ op: 'conv2', x: 'x', state: 'state', weight: 'w', bias: 'b', out: 'out', ch: 3 }] },
    { seqs: [{ slot: 1, pos: 3, rows: 1, pages: [] }] },
  );
  const out = await be.read('out', 0, 3);
  close(out, [0.1 + 0.5 * 7 + 1, 0.2 - 8 + 0.25, 0.3 + 18 - 0.5], 1e-5, 'continued conv');
  const c = new Float32Array(3);
  conv2Row(
    null,
    Float32Array.from([1, 2, 3]),
    Float32Array.from([0.5, 1, -1, 0.25, 2, -0.5]),
    Float32Array.from([0.1, 0.2, 0.3]),
    c,
    3,
  );
  close(c, [1.1, 0.7, -1.2], 1e-6, 'conv2Row at t = 0');
});
