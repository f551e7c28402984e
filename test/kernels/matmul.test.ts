// The matmul family (the GEMV/GEMM kernels): the CPU oracle (kernels/cpu/matmul.ts) against the spec,
// and the WebGPU kernels (kernels/webgpu/wgsl/matmul.ts) against the CPU on fresh random inputs, outputs poisoned with NaN first.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Step, WeightDType } from '../../kernels/backend.js';
import { freshRng } from '../helpers.js';
import type { Op } from '../../kernels/ops.js';
import { frontEndCase, gpuHarness, round, scenario, type BufSpec } from './gpu-harness.js';

// the FMA kernels, exact to 1e-5 (tensor cores off); the tensor-core GEMM has its own test below
/** One matmul case's op and buffers: weights w ([N, K], stored as dt), x of `xRows` rows (2K wide for silu·mul),
 *  the norm weight g, and y of R rows (poisoned unless the op adds into it). */
function matmulCase(
  r: (n: number, std?: number) => Float32Array,
  w: Float32Array,
  dt: WeightDType,
  pro: 'none' | 'norm' | 'silu',
  o: { K: number; N: number; R: number; xRows: number; add: boolean; perSeq?: boolean },
) {
  const extra =
    pro === 'norm' ? { norm: { weight: 'g', eps: 1e-5 } } : pro === 'silu' ? { act: 'silu_mul' as const } : {};
  const ops: Op[] = [
    { op: 'matmul', x: 'x', w: 'w', out: 'y', k: o.K, n: o.N, add: o.add, perSeq: o.perSeq, ...extra },
  ];
  const bufs: BufSpec[] = [
    { name: 'w', init: w, storage: dt },
    { name: 'x', init: r(o.xRows * o.K * (pro === 'silu' ? 2 : 1), pro === 'norm' ? 3 : 1) },
    { name: 'g', init: r(o.K) },
    { name: 'y', init: r(o.R * o.N), out: !o.add },
  ];
  return { ops, bufs };
}

const { gpu, skip, compare } = await gpuHarness({ matrices: 'off' });
// the tensor-core GEMM: on subgroup matrices where the adapter has them, else the same tile walk emulated
let tc = await gpuHarness();
if (tc.gpu?.matrices !== 'on') tc = await gpuHarness({ matrices: 'emulated' });

/** One weight matrix on the tensor-core kernels with every prologue, with and without the residual add (tol 3e-3: the
 *  f16 roundings' bound, derived in the tests below). */
async function tcPrologues(
  label: string,
  r: (n: number, std?: number) => Float32Array,
  w: Float32Array,
  dt: WeightDType,
  o: { K: number; N: number; R: number; perSeq?: boolean },
  st: Step,
  seed: number,
) {
  for (const add of [false, true])
    for (const pro of ['none', 'norm', 'silu'] as const) {
      const c = matmulCase(r, w, dt, pro, { ...o, xRows: o.R, add });
      await tc.compare(`${label} ${pro} add=${add}`, c.ops, c.bufs, st, ['y'], 3e-3, seed);
    }
}

test(
  `tensor-core GEMM (${tc.gpu?.matrices ?? 'no adapter'}): f32/f16/bf16 weights, prologues, add; partial 128-row and 128-column tiles and whole ones`,
  {
    skip: tc.skip,
  },
  async () => {
    const { rng, seed } = freshRng();
    const r = (n: number, std = 1) => rng.normals(n, std);
    // x' and w rounded to f16 (2⁻¹¹ relative each; f16 and bf16 weights exactly), f32 sums: |Δ| ≤ 2⁻¹¹ Σ_k |x'_k w_k| ≈ 2⁻¹¹ · 0.64 K σ² against
    // max |y| ≈ 3.5 √K σ²: 1.2e-3 at K = 192, 1.6e-3 at K = 320; tol 3e-3. Whole tiles (256 × 256) write their fragments
    // straight to out (on subgroup matrices; the emulated twin has one path). gemm_mma's step is 64 on an H100 where K
    // allows (32 emulated): an odd count of steps (192, 320), one step (64), and K = 96 in steps of 32 there too.
    for (const [dt, K, N, R] of [
      ['f16', 96, 70, 76],
      ['f16', 192, 70, 76],
      ['f16', 128, 200, 130],
      ['f16', 320, 256, 256],
      ['f16', 64, 3088, 140],
      ['bf16', 192, 70, 76],
      ['bf16', 128, 256, 256],
      ['f32', 192, 70, 76],
      ['f32', 128, 256, 256],
    ] as const) {
      const w = round(r(N * K, 0.2), dt);
      const st: Step = {
        seqs: [
          { slot: 0, pos: 0, rows: R - 5, pages: [] },
          { slot: 1, pos: 7, rows: 5, pages: [] },
        ],
      };
      await tcPrologues(`gemm_mma ${dt} rows=${R} K=${K} N=${N}`, r, w, dt, { K, N, R }, st, seed);
    }
  },
);

test(
  `tensor-core MLP (${tc.gpu?.matrices ?? 'no adapter'}): [gate | up] with its norm and the down projection with silu·mul and the residual add, fused (gemm_mma's glu epilogue writes silu(gate) ⊙ up as f16): f16/bf16/f32 weights, partial and whole row tiles`,
  { skip: tc.skip },
  async () => {
    const { rng, seed } = freshRng();
    const r = (n: number, std = 1) => rng.normals(n, std);
    // the GEMM's bound (above) twice, plus silu(gate) ⊙ up rounded to f16 (2⁻¹¹ relative): tol 3e-3
    for (const [dt, K, F, R] of [
      ['f16', 128, 64, 76],
      ['f16', 96, 192, 256],
      ['f16', 192, 128, 140],
      ['bf16', 128, 128, 76],
      ['f32', 64, 192, 130],
    ] as const) {
      const st: Step = {
        seqs: [
          { slot: 0, pos: 0, rows: R - 5, pages: [] },
          { slot: 1, pos: 7, rows: 5, pages: [] },
        ],
      };
      const ops: Op[] = [
        { op: 'matmul', x: 'x', w: 'wgu', out: 'gu', k: K, n: 2 * F, norm: { weight: 'g', eps: 1e-5 } },
        { op: 'matmul', x: 'gu', w: 'wd', out: 'x', k: F, n: K, add: true, act: 'silu_mul' },
      ];
      const bufs: BufSpec[] = [
        { name: 'wgu', init: round(r(2 * F * K, 0.2), dt), storage: dt },
        { name: 'wd', init: round(r(K * F, 0.2), dt), storage: dt },
        { name: 'g', init: r(K) },
        { name: 'gu', init: r(R * 2 * F) },
        { name: 'x', init: r(R * K, 3) },
      ];
      const n0 = tc.gpu!.launches;
      await tc.compare(`MLP ${dt} rows=${R} K=${K} F=${F}`, ops, bufs, st, ['x'], 3e-3, seed);
      // gemm_in16 (norm), gemm_mma (glu), gemm_mma (down): the down projection's gemm_in16 is gone
      assert.equal(tc.gpu!.launches - n0, 3, `MLP ${dt} rows=${R}: launches`);
    }
  },
);

test(
  `a prefill's [qkv | A] projection on tensor cores writes f16 for the conv front end (${tc.gpu?.matrices ?? 'no adapter'}): conv output, state and log-decay`,
  { skip: tc.skip },
  async () => {
    const { rng, seed } = freshRng();
    const r = (n: number, std = 1) => rng.normals(n, std);
    // the GEMM's bound (above) plus the raw projection rounded to f16 (2⁻¹¹ relative) before the conv and −softplus:
    // tol 3e-3. Two sequences, one fresh, one carrying its conv state; ch + H a multiple of 8
    for (const [K, ch, H, R] of [
      [128, 92, 4, 140],
      [64, 248, 8, 76],
    ] as const) {
      const st: Step = {
        seqs: [
          { slot: 0, pos: 0, rows: R - 9, pages: [] },
          { slot: 1, pos: 7, rows: 9, pages: [] },
        ],
      };
      const fe = frontEndCase(r, R, K, ch, H, 0.2);
      await tc.compare(`[qkv | A] + front end, ${R} rows, K=${K}`, fe.ops, fe.bufs, st, ['y', 'st', 'la'], 3e-3, seed);
      const raw = await tc.gpu!.read('x');
      assert.ok(
        raw.every((v) => Number.isNaN(v)),
        'the f32 projection rows were written: the f16 path did not run',
      );
    }
  },
);

test(
  `skinny tensor-core matmul (${tc.gpu?.matrices ?? 'no adapter'}): f16/bf16/f32 weights, 8–63 rows and per-sequence rows over two row blocks, prologues, add, the conv front end fused at decode`,
  { skip: tc.skip },
  async () => {
    const { rng, seed } = freshRng();
    const r = (n: number, std = 1) => rng.normals(n, std);
    const decode = (n: number): Step => ({
      seqs: Array.from({ length: n }, (_, i) => ({ slot: i, pos: i % 3 === 0 ? 0 : 5 + i, rows: 1, pages: [] })),
    });
    // as the GEMM's bound above (x' and f32 weights rounded to f16, 16-bit weights exact, f32 sums): ≈ 1e-3 at K = 128,
    // 1.8e-3 at K = 384; tol 3e-3.
    // 8 and 16 rows: one row fragment; 20: two (the second partial); 40 and 63: four; 70 per-sequence rows: two row
    // blocks of 64
    // K = 128 is one K step of 16·4·2 (two of 64 at 4 row fragments); K = 384 three (six): both register sets of
    // loads in flight, an odd and an even number of steps
    const N = 80;
    for (const [dt, R, perSeq, K] of [
      ['f16', 8, false, 384],
      ['f16', 16, false, 128],
      ['f16', 20, false, 384],
      ['f16', 40, false, 384],
      ['f16', 63, false, 128],
      ['f16', 70, true, 128],
      ['bf16', 20, false, 128],
      ['bf16', 40, false, 384],
      ['f32', 20, false, 384],
      ['f32', 40, false, 128],
    ] as const) {
      const st = decode(R),
        w = round(r(N * K, 0.2), dt);
      await tcPrologues(`gemm_skinny ${dt} rows=${R} K=${K} perSeq=${perSeq}`, r, w, dt, { K, N, R, perSeq }, st, seed);
    }
    // a decode step of 12 sequences (every third fresh): [qkv | A] with its norm, then the conv and −softplus front end
    const K = 128,
      ch = 91,
      H = 5,
      S = 12;
    const fe = frontEndCase(r, S, K, ch, H, 0.2);
    await tc.compare(
      'gemm_skinny + conv2 + logdecay, fused at decode',
      fe.ops,
      fe.bufs,
      decode(S),
      fe.outputs,
      3e-3,
      seed,
    );
  },
);

test(
  'matmul (f32, f16, bf16 weights; rmsnorm / silu·mul prologues; add; 1, 3 and 76 rows; tiled GEMM), embed, gather_last',
  { skip },
  async () => {
    const { rng, seed } = freshRng();
    const { step, rows } = scenario();
    const one: Step = { seqs: [{ slot: 1, pos: 9, rows: 1, pages: [] }] };
    const r = (n: number, std = 1) => rng.normals(n, std);
    // K = 104: the matmul kernel at every row count; K = 96 (a multiple of the GEMM's K step): 76 rows take the tiled
    // GEMM (two row tiles and two column tiles, both partial); K = 1096: one row runs a round of the GEMV's hoisted
    // loads (1024) and the remainder loop (72)
    for (const dt of ['f32', 'f16', 'bf16'] as WeightDType[])
      for (const [K, N] of [
        [104, 37],
        [96, 70],
        [1096, 37],
      ] as const) {
        const w = round(r(N * K), dt);
        // 76 rows (the batched shape), 3 per-sequence rows (the few-rows shape), one row (the GEMV shape)
        for (const [add, perSeq, st] of [
          [false, false, step],
          [true, false, step],
          [false, true, step],
          [true, false, one],
        ] as const) {
          const R = st === one ? 1 : perSeq ? 3 : rows;
          for (const pro of ['none', 'norm', 'silu'] as const) {
            const c = matmulCase(r, w, dt, pro, { K, N, R, xRows: rows, add, perSeq });
            await compare(
              `matmul ${dt} ${pro} add=${add} perSeq=${perSeq} rows=${R} K=${K}`,
              c.ops,
              c.bufs,
              st,
              ['y'],
              1e-5,
              seed,
            );
          }
        }
      }
    for (const dt of ['f32', 'f16', 'bf16'] as WeightDType[]) {
      const table = round(r(50 * 24), dt);
      await compare(
        `embed ${dt}`,
        [{ op: 'embed', table: 't', ids: 'ids', out: 'e', dim: 24 }],
        [
          { name: 't', init: table, storage: dt },
          { name: 'ids', kind: 'i32', init: Array.from({ length: rows }, () => Math.floor(rng.next() * 50)) },
          { name: 'e', init: new Float32Array(rows * 24), out: true },
        ],
        step,
        ['e'],
        0,
        seed,
      );
    }
    await compare(
      'gather_last',
      [{ op: 'gather_last', x: 'x', out: 'y', dim: 20 }],
      [
        { name: 'x', init: r(rows * 20) },
        { name: 'y', init: new Float32Array(3 * 20), out: true },
      ],
      step,
      ['y'],
      0,
      seed,
    );
    // the logits' pair: gather_last then the per-sequence projection; where every sequence has one row (decode) the
    // projection reads x itself, one launch (a sequence of several rows: both)
    const decode: Step = { seqs: [0, 1, 2].map((slot) => ({ slot, pos: 7 + slot, rows: 1, pages: [] })) };
    const wl = round(r(37 * 104), 'f16');
    for (const [st, R, launches] of [
      [decode, 3, 1],
      [step, rows, 2],
    ] as const) {
      const n0 = gpu!.launches;
      await compare(
        `gather_last + per-sequence matmul, ${R} rows`,
        [
          { op: 'gather_last', x: 'x', out: 'last', dim: 104 },
          { op: 'matmul', x: 'last', w: 'w', out: 'y', k: 104, n: 37, perSeq: true, norm: { weight: 'g', eps: 1e-5 } },
        ],
        [
          { name: 'x', init: r(R * 104) },
          { name: 'last', init: new Float32Array(3 * 104) },
          { name: 'w', init: wl, storage: 'f16' },
          { name: 'g', init: r(104) },
          { name: 'y', init: new Float32Array(3 * 37), out: true },
        ],
        st,
        ['y'],
        1e-5,
        seed,
      );
      assert.equal(gpu!.launches - n0, launches, `launches of the pair, ${R} rows`);
    }
  },
);
