// Element-wise kernels whose grid passes 65535 workgroups (wgFor splits it over x and y): every element exactly once.
// rope and kv_append read only global_invocation_id.x until 2026-11-27, so a 4096-row softmax step of the small preset
// (4096 rows × 32 heads × 32 pairs = 65536 workgroups of 64) rotated almost all of its q and k twice.
import { test } from 'node:test';
import { freshRng } from '../helpers.js';
import { gpuHarness } from './gpu-harness.js';

const { skip, compare } = await gpuHarness({ matrices: 'off' });
const layout = { heads: 16, kvHeads: 16, headDim: 64 },
  width = (16 + 2 * 16) * 64,
  rows = 4100;

test(
  'rope past 65535 workgroups: each pair of q and k rotated once (4100 rows × 32 heads of 64)',
  { skip },
  async () => {
    const { rng, seed } = freshRng();
    await compare(
      'rope over 65600 workgroups',
      [{ op: 'rope', qkv: 'q', freqs: 'f', layout, convention: 'half' }],
      [
        { name: 'q', init: rng.normals(rows * width, 1) },
        { name: 'f', init: Float32Array.from({ length: 32 }, (_, m) => 10000 ** (-m / 32)) },
      ],
      { seqs: [{ slot: 0, pos: 3, rows, pages: [] }] },
      ['q'],
      // the angle pos·freq is an f32 product on the GPU: at positions to 4105 it is off by up to 4105·2⁻²⁴ ≈ 2.4e-4
      // rad, which moves an output by that much of |x| (the CPU's angle is exact); a pair rotated twice is off by O(1)
      5e-4,
      seed,
    );
  },
);

test('kv_append past 65535 workgroups: every key and value of a 4100-row step in the cache', { skip }, async () => {
  const { rng, seed } = freshRng();
  const P = 16,
    pages = Math.ceil((rows + 5) / P);
  await compare(
    'kv_append over 65600 workgroups',
    [{ op: 'kv_append', qkv: 'x', k: 'kc', v: 'vc', layout, pageSize: P }],
    [
      { name: 'x', init: rng.normals(rows * width, 1) },
      { name: 'kc', init: rng.normals(pages * P * 16 * 64, 1) },
      { name: 'vc', init: rng.normals(pages * P * 16 * 64, 1) },
    ],
    // pages in reverse, so a key written twice or at the wrong slot shows
    { seqs: [{ slot: 0, pos: 5, rows, pages: Array.from({ length: pages }, (_, j) => pages - 1 - j) }] },
    ['kc', 'vc'],
    1e-6,
    seed,
  );
});
