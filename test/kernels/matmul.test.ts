// The matmul family (the GEMV/GEMM kernels): the CPU oracle (kernels/cpu/matmul.ts) against the spec,
// and the WebGPU kernels (kernels/webgpu/wgsl/matmul.ts) against the CPU on fresh random inputs, outputs poisoned with NaN first.
import { test } from 'node:test';
import type { Step, WeightDType } from '../../kernels/backend.js';
import { freshRng } from '../helpers.js';
import { gpuHarness, round, scenario } from './gpu-harness.js';

const { skip, compare } = await gpuHarness();

test(
  'matmul (f32, f16, bf16 weights; rmsnorm / silu·mul prologues; add; 1, 3 and 76 rows; tiled GEMM), embed, gather_last',
  { skip },
  async () => {
    const { rng, seed } = freshRng();
    const { step, rows } = scenario();
    const one: Step = { seqs: [{ slot: 1, pos: 9, rows: 1, pages: [] }] };
    const r = (n: number, std = 1) => rng.normals(n, std);
    // K = 104: the matmul kernel at every row count; K = 96 (a multiple of the GEMM's K step): 76 rows take the tiled
    // GEMM (two row tiles and two column tiles, both partial)
    for (const dt of ['f32', 'f16', 'bf16'] as WeightDType[])
      for (const [K, N] of [
        [104, 37],
        [96, 70],
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
            const extra =
              pro === 'norm'
                ? { norm: { weight: 'g', eps: 1e-5 } }
                : pro === 'silu'
                  ? { act: 'silu_mul' as const }
                  : {};
            await compare(
              `matmul ${dt} ${pro} add=${add} perSeq=${perSeq} rows=${R} K=${K}`,
              [{ op: 'matmul', x: 'x', w: 'w', out: 'y', k: K, n: N, add, perSeq, ...extra }],
              [
                { name: 'w', init: w, storage: dt },
                { name: 'x', init: r(rows * K * (pro === 'silu' ? 2 : 1), pro === 'norm' ? 3 : 1) },
                { name: 'g', init: r(K) },
                { name: 'y', init: r(R * N), out: !add },
              ],
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
  },
);
