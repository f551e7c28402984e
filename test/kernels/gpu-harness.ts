// The WebGPU side of the kernel family tests: the adapter (a missing one fails in CI, skips elsewhere) and compare(),
// which runs ops on the CPU oracle and the GPU and checks every output. No work at import: each test file calls it.
import assert from 'node:assert/strict';
import { CpuBackend } from '../../kernels/cpu/backend.js';
import { WebGpuBackend } from '../../kernels/webgpu/backend.js';
import type { Matrices } from '../../kernels/webgpu/wgsl/common.js';
import type { BufferKind, Step, WeightDType } from '../../kernels/backend.js';
import type { Op } from '../../kernels/ops.js';
import { f16ToF32, f32ToF16, bf16ToF32, f32ToBF16 } from '../../lib/f16.js';
import { relErr } from '../helpers.js';
import type { Rng } from '../../lib/rng.js';

export interface BufSpec {
  name: string;
  init: ArrayLike<number>;
  kind?: BufferKind;
  storage?: WeightDType;
  out?: boolean;
}

export const round = (v: Float32Array, dt: WeightDType) =>
  dt === 'f32' ? v : v.map((x) => (dt === 'f16' ? f16ToF32(f32ToF16(x)) : bf16ToF32(f32ToBF16(x))));

export async function gpuHarness(opts: { matrices?: Matrices; scratchBytes?: number } = {}) {
  let gpu: WebGpuBackend | null = null,
    why = '';
  try {
    gpu = await WebGpuBackend.open(opts);
  } catch (e) {
    why = (e as Error).message;
    if (process.env.CI) throw e; // in CI a missing adapter is a failure, not a skip
  }
  const skip = gpu ? false : `no WebGPU adapter: ${why}`;
  /** Run ops on both backends; compare the outputs (max |Δ| / max |cpu| ≤ tol); GPU outputs start as NaN. */
  async function compare(
    label: string,
    ops: Op[],
    bufs: BufSpec[],
    step: Step,
    outputs: string[],
    tol: number,
    seed: number,
  ) {
    const cpu = new CpuBackend();
    for (const b of bufs) {
      cpu.create(b.name, b.init.length, { kind: b.kind ?? 'f32', init: b.init, storage: b.storage });
      gpu!.create(b.name, b.init.length, {
        kind: b.kind ?? 'f32',
        init: b.out ? new Float32Array(b.init.length).fill(NaN) : b.init,
        storage: b.storage,
      });
    }
    await cpu.run({ ops }, step);
    await gpu!.run({ ops }, step);
    for (const o of outputs) {
      const want = await cpu.read(o),
        got = await gpu!.read(o);
      const bad = got.findIndex((x) => !Number.isFinite(x));
      assert.equal(bad, -1, `${label}: ${o}[${bad}] was not written (seed ${seed})`);
      assert.ok(relErr(got, want) <= tol, `${label}: ${o} rel ${relErr(got, want)} > ${tol} (seed ${seed})`);
    }
  }
  return { gpu, skip, compare };
}

/** Three sequences: fresh (pos 0, 5 rows), one decode row at pos 17, and 70 rows (two 2Mamba chunks) at pos 3. */
export function scenario() {
  const P = 16;
  const step: Step = {
    seqs: [
      { slot: 2, pos: 0, rows: 5, pages: [7] },
      { slot: 0, pos: 17, rows: 1, pages: [3, 9] },
      { slot: 1, pos: 3, rows: 70, pages: [0, 5, 1, 8, 2] },
    ],
  };
  return { step, P, rows: 76, slots: 3, pages: 10 };
}

/** The paged-attention cases of the scenario: softmax with 4 query heads over 2 KV heads (the cache holds earlier
 *  positions of the continuing sequences), and 2Mamba-E with cumulative decays. Every backend is checked on these. */
export function attentionCases(rng: Rng) {
  const { rows, P, pages } = scenario();
  const r = (n: number, std = 1) => rng.normals(n, std);
  const gl = { heads: 4, kvHeads: 2, headDim: 64 },
    el = { heads: 2, kvHeads: 2, headDim: 64 };
  const cInit = new Float64Array(pages * P * 2).map(() => -Math.abs(rng.normal()) * 3); // earlier C_j
  return [
    {
      label: 'attention softmax GQA',
      ops: [
        { op: 'kv_append', qkv: 'x', k: 'kc', v: 'vc', layout: gl, pageSize: P },
        { op: 'attention', qkv: 'x', k: 'kc', v: 'vc', out: 'y', layout: gl, pageSize: P },
      ] as Op[],
      bufs: [
        { name: 'x', init: r(rows * 8 * 64, 2) },
        { name: 'kc', init: r(pages * P * 2 * 64) },
        { name: 'vc', init: r(pages * P * 2 * 64) },
        { name: 'y', init: new Float32Array(rows * 4 * 64), out: true },
      ] as BufSpec[],
      outputs: ['y', 'kc', 'vc'],
    },
    {
      label: 'attention 2Mamba-E',
      ops: [
        { op: 'kv_append', qkv: 'x', k: 'kc', v: 'vc', layout: el, pageSize: P, logA: 'la', c: 'cc' },
        { op: 'attention', qkv: 'x', k: 'kc', v: 'vc', c: 'cc', out: 'y', layout: el, pageSize: P },
      ] as Op[],
      bufs: [
        { name: 'x', init: r(rows * 6 * 64, 2) },
        { name: 'kc', init: r(pages * P * 128) },
        { name: 'vc', init: r(pages * P * 128) },
        { name: 'la', init: Array.from({ length: rows * 2 }, () => -Math.abs(rng.normal()) * 0.5) },
        { name: 'cc', kind: 'cumsum', init: cInit },
        { name: 'y', init: new Float32Array(rows * 128), out: true },
      ] as BufSpec[],
      outputs: ['y'],
    },
  ];
}

/** The 2Mamba front end over x rows [raw q, k, v | decay logits z] (ch + H wide): the window-2 conv with the slot's
 *  state into y, −softplus(z) into la. */
export const frontEndOp = (ch: number, H: number): Op => ({
  op: 'conv2',
  x: 'x',
  state: 'st',
  weight: 'cw',
  bias: 'cb',
  out: 'y',
  ch,
  xStride: ch + H,
  decay: { out: 'la', heads: H },
});

/** A decode step of S sequences (one row each): the [qkv | A] projection of h (K wide, with its rmsnorm; f16 weights
 *  drawn with std wStd) into x, then the front end reading x, which the WebGPU backend runs as one dispatch. */
export function frontEndCase(
  r: (n: number, std?: number) => Float32Array,
  S: number,
  K: number,
  ch: number,
  H: number,
  wStd = 1,
) {
  const ops: Op[] = [
    { op: 'matmul', x: 'h', w: 'w', out: 'x', k: K, n: ch + H, norm: { weight: 'g', eps: 1e-5 } },
    frontEndOp(ch, H),
  ];
  const bufs: BufSpec[] = [
    { name: 'h', init: r(S * K, 2) },
    { name: 'w', init: round(r((ch + H) * K, wStd), 'f16'), storage: 'f16' },
    { name: 'g', init: r(K) },
    { name: 'x', init: new Float32Array(S * (ch + H)), out: true },
    { name: 'st', init: r(S * ch) },
    { name: 'cw', init: r(2 * ch) },
    { name: 'cb', init: r(ch) },
    { name: 'y', init: new Float32Array(S * ch), out: true },
    { name: 'la', init: new Float32Array(S * H), out: true },
  ];
  return { ops, bufs, outputs: ['x', 'y', 'st', 'la'] };
}
