// The attention family (KV append, split-K and tiled attention): the CPU oracle (kernels/cpu/attention.ts) against the spec,
// and the WebGPU kernels (kernels/webgpu/wgsl/attention.ts) against the CPU on fresh random inputs, outputs poisoned with NaN first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Step } from '../../kernels/backend.js';
import { CpuBackend } from '../../kernels/cpu/backend.js';
import { softplus } from '../../kernels/cpu/conv2.js';
import { twoMambaEParallel, softmaxParallel } from '../../kernels/cpu/reference.js';
import { freshRng, randRows, relErr } from '../helpers.js';
import { attentionCases, gpuHarness, round, scenario } from './gpu-harness.js';
import { attentionGroups } from '../../kernels/webgpu/wgsl/meta.js';
import { close, V3, A3 } from './vectors.js';

// the f32 kernels (tensor cores off: their f16 roundings have their own test below)
const { skip, compare } = await gpuHarness({ matrices: 'off' });
// the tiled attention on tensor cores where the adapter has them, else the same tile walk emulated
let tc = await gpuHarness();
if (tc.gpu?.matrices !== 'on') tc = await gpuHarness({ matrices: 'emulated' });
// q·s, k, v and p rounded to f16 (2⁻¹¹ relative each): a score is off by ≤ 2⁻¹⁰ Σ_m |q_m k_m| s ≈ 2⁻¹⁰ · 64 · 0.16 ≈ 0.01
// for these inputs (q ~ N(0, 4), k ~ N(0, 1), s = 1/8), which moves y by ≲ 0.01 · E|v − y| against max |y| ≈ 3:
// ~3e-3 (measured on lavapipe's emulated walk: 0.9–1.5e-3); tol 5e-3
const TC_TOL = 5e-3;

test('paged KV append and attention: softmax with GQA, 2Mamba-E with cumulative decays', { skip }, async () => {
  const { rng, seed } = freshRng();
  for (const c of attentionCases(rng)) await compare(c.label, c.ops, c.bufs, scenario().step, c.outputs, 2e-5, seed);
});

test('an f16 KV cache: appends, reads and attention match the CPU on values f16 holds exactly', { skip }, async () => {
  // x and the earlier cache are rounded to f16 first, so the packed cache holds exactly what the CPU's f32 one does:
  // the only difference left is summation order (tol 2e-5, as the f32 cases).
  const { rng, seed } = freshRng();
  for (const c of attentionCases(rng)) {
    const bufs = c.bufs.map((b) =>
      b.name === 'x' || b.name === 'kc' || b.name === 'vc'
        ? {
            ...b,
            init: round(Float32Array.from(b.init), 'f16'),
            storage: b.name === 'x' ? undefined : ('f16' as const),
          }
        : b,
    );
    await compare(`${c.label} (f16 KV)`, c.ops, bufs, scenario().step, ['y', 'kc', 'vc'], 2e-5, seed);
  }
});

test(
  'attention across several 256-key ranges (split-K: decode at 530; tiled: a 20-row chunk crossing 256; a decode-only step rounding 3 ranges to 4; a 600-row chunk at 700: tiles over two ranges of 1024 keys, cumulative decays over more rows than the scan has threads)',
  { skip },
  async () => {
    const { rng, seed } = freshRng();
    const P = 16,
      pagesA = Array.from({ length: 34 }, (_, i) => 2 * i),
      pagesB = Array.from({ length: 18 }, (_, i) => 2 * i + 1);
    const mixed: Step = {
      seqs: [
        { slot: 0, pos: 530, rows: 1, pages: pagesA },
        { slot: 1, pos: 250, rows: 20, pages: pagesB },
      ],
    };
    const decode: Step = {
      seqs: [
        { slot: 0, pos: 530, rows: 1, pages: pagesA },
        { slot: 1, pos: 269, rows: 1, pages: pagesB },
      ],
    };
    const long: Step = {
      seqs: [{ slot: 1, pos: 700, rows: 600, pages: Array.from({ length: 82 }, (_, i) => 89 - i) }],
    };
    const r = (n: number, std = 1) => rng.normals(n, std),
      pages = 90;
    for (const [useC, step] of [
      [false, mixed],
      [true, mixed],
      [false, decode],
      [true, decode],
      [true, long],
    ] as const) {
      const rows = step.seqs.reduce((n, s) => n + s.rows, 0);
      const el = { heads: 2, kvHeads: 2, headDim: 64 };
      const cInit = Float64Array.from({ length: pages * P * 2 }, () => -Math.abs(rng.normal()) * 0.01);
      await compare(
        `attention useC=${useC} rows=${rows}`,
        [
          {
            op: 'kv_append',
            qkv: 'x',
            k: 'kc',
            v: 'vc',
            layout: el,
            pageSize: P,
            ...(useC ? { logA: 'la', c: 'cc' } : {}),
          },
          {
            op: 'attention',
            qkv: 'x',
            k: 'kc',
            v: 'vc',
            out: 'y',
            layout: el,
            pageSize: P,
            ...(useC ? { c: 'cc' } : {}),
          },
        ],
        [
          { name: 'x', init: r(rows * 6 * 64, 2) },
          { name: 'kc', init: r(pages * P * 128) },
          { name: 'vc', init: r(pages * P * 128) },
          { name: 'la', init: Array.from({ length: rows * 2 }, () => -Math.abs(rng.normal()) * 0.01) },
          { name: 'cc', kind: 'cumsum', init: cInit },
          { name: 'y', init: new Float32Array(rows * 128), out: true },
        ],
        step,
        useC ? ['y', 'cc'] : ['y'],
        2e-5,
        seed,
      );
    }
  },
);

/** Tiled attention in a mixed step: 4 rows at 40 and 1 at 530 take split-K; 5 rows at 0, and 130 rows at 1000 (three
 *  tiles, the last partial, over keys in two ranges of ATTN_TILE_RANGE = 1024) take the tiled kernel. */
function mixedStep() {
  const P = 16;
  // Pages interleave between the sequences.
  const lens = [44, 531, 5, 1130],
    pageLists: number[][] = [];
  let next = 0;
  for (const len of lens) pageLists.push(Array.from({ length: Math.ceil(len / P) }, () => next++));
  const shuffled = pageLists.flat().map((p) => (p * 37) % next); // a permutation of the page ids (37 is prime to next)
  assert.equal(new Set(shuffled).size, next);
  let k = 0;
  const perm = pageLists.map((l) => l.map(() => shuffled[k++]!));
  const step: Step = {
    seqs: [
      { slot: 0, pos: 40, rows: 4, pages: perm[0]! },
      { slot: 1, pos: 530, rows: 1, pages: perm[1]! },
      { slot: 2, pos: 0, rows: 5, pages: perm[2]! },
      { slot: 3, pos: 1000, rows: 130, pages: perm[3]! },
    ],
  };
  return { step, P, pages: next };
}

async function tiledMixed(cmp: typeof compare, tol: number, tag: string, kvF16 = false, d = 64) {
  const { rng, seed } = freshRng();
  const { step, P, pages } = mixedStep();
  const rows = 140,
    r = (n: number, std = 1) => rng.normals(n, std);
  for (const [label, layout, useC] of [
    ['softmax GQA', { heads: 4, kvHeads: 2, headDim: d }, false],
    ['2Mamba-E', { heads: 2, kvHeads: 2, headDim: d }, true],
  ] as const) {
    const H = layout.heads,
      Hkv = layout.kvHeads,
      width = (H + 2 * Hkv) * d;
    const cInit = Float64Array.from({ length: pages * P * H }, () => -Math.abs(rng.normal()) * 0.02);
    await cmp(
      `tiled attention ${label}${tag}`,
      [
        {
          op: 'kv_append',
          qkv: 'x',
          k: 'kc',
          v: 'vc',
          layout,
          pageSize: P,
          ...(useC ? { logA: 'la', c: 'cc' } : {}),
        },
        { op: 'attention', qkv: 'x', k: 'kc', v: 'vc', out: 'y', layout, pageSize: P, ...(useC ? { c: 'cc' } : {}) },
      ],
      [
        { name: 'x', init: r(rows * width, 2) },
        { name: 'kc', init: r(pages * P * Hkv * d), ...(kvF16 ? { storage: 'f16' as const } : {}) },
        { name: 'vc', init: r(pages * P * Hkv * d), ...(kvF16 ? { storage: 'f16' as const } : {}) },
        { name: 'la', init: Array.from({ length: rows * H }, () => -Math.abs(rng.normal()) * 0.02) },
        { name: 'cc', kind: 'cumsum', init: cInit },
        { name: 'y', init: new Float32Array(rows * H * d), out: true },
      ],
      step,
      ['y'],
      tol,
      seed,
    );
  }
}

test(
  'tiled prefill attention beside split-K decode rows in one step (GQA; 2Mamba-E decays; tiles across ranges)',
  { skip },
  () => tiledMixed(compare, 2e-5, ''),
);

test(
  `tiled prefill attention on tensor cores (${tc.gpu?.matrices ?? 'no adapter'}): the same mixed step, f32 and f16 KV caches, head dims 64 and 32`,
  { skip: tc.skip },
  async () => {
    await tiledMixed(tc.compare, TC_TOL, '');
    await tiledMixed(tc.compare, TC_TOL, ' (f16 KV)', true);
    await tiledMixed(tc.compare, TC_TOL, ' (head dim 32)', true, 32);
  },
);

// A scratch buffer of 320 KiB holds the partials (heads × 5 ranges of 256 keys × 64 floats a row) of 64 rows of the
// softmax case (4 heads) and 128 of the 2Mamba-E one (2 heads), so the mixed step's 140 rows run in groups: split-K rows
// and a tile together, then whole tiles (a long step at a long context on a GPU: partials past the binding limit).
const SMALL_SCRATCH = 320 * 1024;
const grouped = await gpuHarness({ matrices: 'off', scratchBytes: SMALL_SCRATCH });
const groupedTc = await gpuHarness({
  matrices: tc.gpu?.matrices === 'on' ? 'on' : 'emulated',
  scratchBytes: SMALL_SCRATCH,
});

test(
  'attention in groups of rows when the partials outgrow one scratch buffer (FMA and tensor-core kernels)',
  {
    skip: grouped.skip,
  },
  async () => {
    const { step } = mixedStep();
    for (const [heads, n] of [
      [4, 4],
      [2, 2],
    ])
      assert.equal(attentionGroups(step, Math.floor(SMALL_SCRATCH / 4 / (heads * 5 * 64))).length, n);
    await tiledMixed(grouped.compare, 2e-5, ' (groups)');
    await tiledMixed(groupedTc.compare, TC_TOL, ' (groups, tensor cores)', true);
  },
);

// --- the CPU oracle against the spec (formerly cpu-ops.test.ts)

test('attention core test vector: 2Mamba-E (spec §15.3)', () => {
  close(twoMambaEParallel(V3.q, V3.k, V3.v, A3).flat(), V3.yE.flat(), 1e-9, '2Mamba-E parallel');
});

/** Run the backend's 2Mamba op over T rows of one sequence, either as one prefill or token by token. */

async function kvAttention(
  q: Float32Array[],
  k: Float32Array[],
  v: Float32Array[],
  A: number[][] | null,
  H: number,
  d: number,
  split: number[],
  pageSize: number,
  pages: number[],
): Promise<Float32Array> {
  const T = q.length,
    E = H * d,
    be = new CpuBackend(),
    layout = { heads: H, kvHeads: H, headDim: d };
  const tokens = (Math.max(...pages) + 1) * pageSize;
  be.create('k', tokens * E);
  be.create('v', tokens * E);
  be.create('c', tokens * H, { kind: 'cumsum' });
  const ys = new Float32Array(T * E);
  let pos = 0;
  for (const rows of split) {
    be.create('qkv', rows * 3 * E, {
      kind: 'f32',
      init: Array.from({ length: rows }, (_, r) => [...q[pos + r]!, ...k[pos + r]!, ...v[pos + r]!]).flat(),
    });
    be.create('logA', rows * H, {
      kind: 'f32',
      init: A ? A.slice(pos, pos + rows).flat() : new Array(rows * H).fill(0),
    });
    be.create('y', rows * E);
    const c = A ? { c: 'c', logA: 'logA' } : {};
    await be.run(
      {
        ops: [
          { op: 'kv_append', qkv: 'qkv', k: 'k', v: 'v', layout, pageSize, ...c },
          { op: 'attention', qkv: 'qkv', k: 'k', v: 'v', out: 'y', layout, pageSize, ...(A ? { c: 'c' } : {}) },
        ],
      },
      { seqs: [{ slot: 0, pos, rows, pages }] },
    );
    ys.set(await be.read('y'), pos * E);
    pos += rows;
  }
  return ys;
}

test('2Mamba-E: KV-cache decode (paged, scattered pages) == parallel form; → softmax as the decay → 0', async () => {
  const { rng, seed } = freshRng();
  const T = 150,
    H = 2,
    d = 64,
    P = 16;
  const q = randRows(rng, T, H * d, 2),
    k = randRows(rng, T, H * d, 2),
    v = randRows(rng, T, H * d);
  const A = Array.from({ length: T }, () => Array.from({ length: H }, () => -softplus(rng.normal() * 2 - 2)));
  const pages = Array.from({ length: Math.ceil(T / P) }, (_, i) => ((i * 7) % 13) + 13 * (i >= 13 ? 1 : 0)); // scattered, distinct
  const sl = (r: Float32Array[], h: number) => r.map((x) => x.subarray(h * d, (h + 1) * d));
  const ref = new Float32Array(T * H * d);
  for (let h = 0; h < H; h++)
    twoMambaEParallel(
      sl(q, h),
      sl(k, h),
      sl(v, h),
      A.map((a) => a[h]!),
    ).forEach((row, t) => ref.set(row, t * H * d + h * d));
  for (const split of [new Array(T).fill(1), [T], [50, 1, 99]]) {
    const y = await kvAttention(q, k, v, A, H, d, split, P, pages);
    assert.ok(relErr(y, ref) < 1e-5, `2Mamba-E split ${split.length}: rel ${relErr(y, ref)} (seed ${seed})`);
  }
  // z = −30 → A ≈ −e^−30: 2Mamba-E becomes plain causal softmax
  const tiny = Array.from({ length: T }, () => [-softplus(-30), -softplus(-30)]);
  const yE = await kvAttention(q, k, v, tiny, H, d, [T], P, pages);
  const ySm = new Float32Array(T * H * d);
  for (let h = 0; h < H; h++)
    softmaxParallel(sl(q, h), sl(k, h), sl(v, h)).forEach((row, t) => ySm.set(row, t * H * d + h * d));
  assert.ok(relErr(yE, ySm) < 1e-5, `2Mamba-E (decay → 0) vs softmax: rel ${relErr(yE, ySm)} (seed ${seed})`);
  // and the softmax path of the op (no C) is the same softmax
  const ySmOp = await kvAttention(q, k, v, null, H, d, new Array(T).fill(1), P, pages);
  assert.ok(relErr(ySmOp, ySm) < 1e-5, `softmax KV decode vs parallel: rel ${relErr(ySmOp, ySm)} (seed ${seed})`);
});
