// The CPU kernels against the spec's test vectors (spec/2mamba.md §15) and against the parallel forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { phi, phiIndex, mamba2Step, mamba2Chunked } from '../../kernels/cpu/mamba2.js';
import { conv2Row, softplus } from '../../kernels/cpu/conv2.js';
import { ropeHead } from '../../kernels/cpu/rope.js';
import { phiDim } from '../../kernels/ops.js';
import { twoMambaParallel, twoMambaEParallel, softmaxParallel } from '../../kernels/cpu/reference.js';
import { CpuBackend } from '../../kernels/cpu/backend.js';
import { freshRng, randRows, relErr, maxAbs } from '../helpers.js';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) =>
  assert.ok(maxAbs(a, b) <= tol, `${what}: max |Δ| ${maxAbs(a, b)} > ${tol}\n got ${Array.from(a)}\nwant ${Array.from(b)}`);

test('φ: values, index order and φ(u)·φ(w) = (u·w)²', () => {
  close(phi([1, 2, 3]), [1, 2 * Math.SQRT2, 3 * Math.SQRT2, 4, 6 * Math.SQRT2, 9], 1e-12, 'φ([1,2,3])');
  assert.equal(phiIndex(0, 0, 64), 0);
  assert.equal(phiIndex(1, 1, 64), 64);
  assert.equal(phiIndex(63, 63, 64), 2079);
  assert.equal(phiDim(64), 2080);
  const { rng, seed } = freshRng();
  for (let t = 0; t < 20; t++) {
    const u = rng.normals(64), w = rng.normals(64);
    const fu = phi(u), fw = phi(w);
    let dot = 0, lhs = 0;
    for (let i = 0; i < 64; i++) dot += u[i]! * w[i]!;
    for (let p = 0; p < fu.length; p++) lhs += fu[p]! * fw[p]!;
    assert.ok(Math.abs(lhs - dot * dot) <= 1e-9 * Math.max(1, dot * dot), `φ·φ ${lhs} vs ${dot * dot} (seed ${seed})`);
  }
});

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
  await be.run({ ops: [{ op: 'conv2', x: 'x', state: 'state', weight: 'w', bias: 'b', out: 'out', ch: 3 }] },
               { seqs: [{ slot: 1, pos: 0, rows: 3, pages: [] }] });
  close(await be.read('out'), [1.1, 0.7, -1.2, 4.6, -0.55, 3.3, 9.1, -2.8, 7.8], 1e-6, 'conv outputs');
  close(await be.read('state', 3, 3), [7, 8, 9], 0, 'conv state keeps the last RAW row');
  // a continuation uses the stored raw row as its previous token
  be.write('x', [1, 1, 1]);
  await be.run({ ops: [{ op: 'conv2', x: 'x', state: 'state', weight: 'w', bias: 'b', out: 'out', ch: 3 }] },
               { seqs: [{ slot: 1, pos: 3, rows: 1, pages: [] }] });
  const out = await be.read('out', 0, 3);
  close(out, [0.1 + 0.5 * 7 + 1, 0.2 - 8 + 0.25, 0.3 + 18 - 0.5], 1e-5, 'continued conv');
  const c = new Float32Array(3);
  conv2Row(null, Float32Array.from([1, 2, 3]), Float32Array.from([0.5, 1, -1, 0.25, 2, -0.5]), Float32Array.from([0.1, 0.2, 0.3]), c, 3);
  close(c, [1.1, 0.7, -1.2], 1e-6, 'conv2Row at t = 0');
});

// spec §15.3: one head, d = 2, T = 4
const V3 = {
  q: [[1, 0.5], [0, 1], [-1, 2], [0.5, -0.5]], k: [[0.5, 1], [1, -1], [2, 0], [-0.5, 1.5]], v: [[1, 2], [-1, 0], [0.5, 0.5], [3, -2]],
  z: [0, 1, -2, 0.5],
  y2: [[1, 2], [-0.5761168848, 0.4238831152], [-0.4329147734, 0.2460620627], [1.6680528727, -1.0491841444]],
  yE: [[1, 2], [0.0504331132, 1.0504331132], [0.6778666385, 1.4424900208], [0.6287310585, -0.2257851997]],
  S: [[0.5974514220, 0.1498988932], [-1.3242319853, 1.1238987801], [3.2534480898, -2.1605671024]],
  n: [1.0575288087, -0.7338497499, 1.3359848077],
};
const A3 = V3.z.map((z) => -softplus(z));

test('attention core test vector: 2Mamba parallel, recurrent and chunked forms and the final state (spec §15.3)', () => {
  close(A3, [-0.6931471806, -1.3132616875, -0.1269280110, -0.9740769842], 1e-9, 'A');
  close(twoMambaParallel(V3.q, V3.k, V3.v, A3).flat(), V3.y2.flat(), 1e-9, '2Mamba parallel');
  const S = new Float32Array(3 * 2), N = new Float32Array(3), y = new Float32Array(2), rec: number[] = [];
  V3.q.forEach((_, t) => {
    mamba2Step(Float32Array.from(V3.q[t]!), Float32Array.from(V3.k[t]!), Float32Array.from(V3.v[t]!), Math.exp(A3[t]!), S, N, y, 2);
    rec.push(...y);
  });
  close(rec, V3.y2.flat(), 1e-6, '2Mamba recurrent');
  close(S, V3.S.flat(), 1e-6, 'final S (reference √2 layout)');
  close(N, V3.n, 1e-6, 'final n');
  for (const chunk of [1, 2, 3, 4, 64]) {
    const src = Float32Array.from(V3.q.flatMap((_, t) => [...V3.q[t]!, ...V3.k[t]!, ...V3.v[t]!]));
    const S2 = new Float32Array(6), N2 = new Float32Array(3), y2 = new Float32Array(8);
    mamba2Chunked(src, 0, 2, 4, 6, A3, 1, 4, S2, N2, y2, 2, 2, chunk);
    close(y2, V3.y2.flat(), 1e-6, `chunked (chunk ${chunk}) outputs`);
    close(S2, V3.S.flat(), 1e-6, `chunked (chunk ${chunk}) final S`);
  }
});

test('attention core test vector: 2Mamba-E (spec §15.3)', () => {
  close(twoMambaEParallel(V3.q, V3.k, V3.v, A3).flat(), V3.yE.flat(), 1e-9, '2Mamba-E parallel');
});

/** Run the backend's 2Mamba op over T rows of one sequence, either as one prefill or token by token. */
async function mamba2Op(q: Float32Array[], k: Float32Array[], v: Float32Array[], A: number[][], H: number, d: number,
                        split: number[]): Promise<{ y: Float32Array; S: Float32Array; N: Float32Array }> {
  const T = q.length, E = H * d, D = phiDim(d), be = new CpuBackend();
  be.create('qkv', T * 3 * E);
  be.create('logA', T * H, { kind: 'f32', init: A.flat() });
  be.create('S', H * D * d); be.create('N', H * D); be.create('y', T * E);
  for (let t = 0; t < T; t++) be.write('qkv', [...q[t]!, ...k[t]!, ...v[t]!], t * 3 * E);
  const ys = new Float32Array(T * E);
  let pos = 0;
  for (const rows of split) {
    be.create('qkv_step', rows * 3 * E, { kind: 'f32', init: await be.read('qkv', pos * 3 * E, rows * 3 * E) });
    be.create('logA_step', rows * H, { kind: 'f32', init: await be.read('logA', pos * H, rows * H) });
    await be.run({ ops: [{ op: 'mamba2', qkv: 'qkv_step', logA: 'logA_step', S: 'S', N: 'N', out: 'y', heads: H, headDim: d }] },
                 { seqs: [{ slot: 0, pos, rows, pages: [] }] });
    ys.set(await be.read('y', 0, rows * E), pos * E);
    pos += rows;
  }
  return { y: ys, S: await be.read('S'), N: await be.read('N') };
}

test('2Mamba: recurrent decode == chunked prefill == parallel form over 300 tokens, 2 heads of 64', async () => {
  const { rng, seed } = freshRng();
  const T = 300, H = 2, d = 64;
  const q = randRows(rng, T, H * d), k = randRows(rng, T, H * d), v = randRows(rng, T, H * d);
  const A = Array.from({ length: T }, () => Array.from({ length: H }, () => -softplus(rng.normal() * 2 - 3)));
  const ref = new Float32Array(T * H * d);
  for (let h = 0; h < H; h++) {
    const sl = (r: Float32Array[]) => r.map((x) => x.subarray(h * d, (h + 1) * d));
    twoMambaParallel(sl(q), sl(k), sl(v), A.map((a) => a[h]!)).forEach((row, t) => ref.set(row, t * H * d + h * d));
  }
  const rec = await mamba2Op(q, k, v, A, H, d, new Array(T).fill(1));
  // Tolerance 1e-5 (f64 reference vs fp32 state). Measured worst over 60 seeds: 8e-7. Reading out the current token
  // through φ instead of in score space gave up to 8e-5 here: where q ⊥ k the D = 2080 fp32 products cancel.
  assert.ok(relErr(rec.y, ref) < 1e-5, `recurrent vs parallel: rel ${relErr(rec.y, ref)} (seed ${seed})`);
  for (const split of [[T], [64, 64, 64, 64, 44], [100, 1, 1, 198], [37, 263]]) {
    const ch = await mamba2Op(q, k, v, A, H, d, split);
    assert.ok(relErr(ch.y, ref) < 1e-5, `chunked ${split}: rel ${relErr(ch.y, ref)} (seed ${seed})`);
    assert.ok(relErr(ch.S, rec.S) < 2e-5, `final S, chunked ${split} vs recurrent: rel ${relErr(ch.S, rec.S)} (seed ${seed})`);
    assert.ok(relErr(ch.N, rec.N) < 1e-5, `final n, chunked ${split}: rel ${relErr(ch.N, rec.N)} (seed ${seed})`);
  }
});

test('2Mamba readout guard: a zero query gives y = 0, not NaN, in every path', async () => {
  const H = 1, d = 4, T = 3;
  const q = [new Float32Array(4), new Float32Array(4), new Float32Array(4)];
  const k = [Float32Array.from([1, 2, 3, 4]), Float32Array.from([1, 0, 0, 1]), Float32Array.from([2, 2, 0, 0])];
  const A = [[-0.5], [-0.5], [-0.5]];
  for (const split of [[1, 1, 1], [3]]) {
    const { y } = await mamba2Op(q, k, k, A, H, d, split);
    assert.ok(y.every((x) => x === 0), `split ${split}: ${y}`);
  }
  assert.deepEqual(twoMambaParallel(q, k, k, [-0.5, -0.5, -0.5]).flat(), new Array(T * d).fill(0));
});

/** Run the KV attention ops (kv_append + attention) of one sequence, in the given row splits. */
async function kvAttention(q: Float32Array[], k: Float32Array[], v: Float32Array[], A: number[][] | null, H: number, d: number,
                           split: number[], pageSize: number, pages: number[]): Promise<Float32Array> {
  const T = q.length, E = H * d, be = new CpuBackend(), layout = { heads: H, kvHeads: H, headDim: d };
  const tokens = (Math.max(...pages) + 1) * pageSize;
  be.create('k', tokens * E); be.create('v', tokens * E); be.create('c', tokens * H, { kind: 'cumsum' });
  const ys = new Float32Array(T * E);
  let pos = 0;
  for (const rows of split) {
    be.create('qkv', rows * 3 * E, { kind: 'f32', init: Array.from({ length: rows }, (_, r) => [...q[pos + r]!, ...k[pos + r]!, ...v[pos + r]!]).flat() });
    be.create('logA', rows * H, { kind: 'f32', init: A ? A.slice(pos, pos + rows).flat() : new Array(rows * H).fill(0) });
    be.create('y', rows * E);
    const c = A ? { c: 'c', logA: 'logA' } : {};
    await be.run({ ops: [{ op: 'kv_append', qkv: 'qkv', k: 'k', v: 'v', layout, pageSize, ...c },
                         { op: 'attention', qkv: 'qkv', k: 'k', v: 'v', out: 'y', layout, pageSize, ...(A ? { c: 'c' } : {}) }] },
                 { seqs: [{ slot: 0, pos, rows, pages }] });
    ys.set(await be.read('y'), pos * E);
    pos += rows;
  }
  return ys;
}


test('2Mamba-E: KV-cache decode (paged, scattered pages) == parallel form; → softmax as the decay → 0', async () => {
  const { rng, seed } = freshRng();
  const T = 150, H = 2, d = 64, P = 16;
  const q = randRows(rng, T, H * d, 2), k = randRows(rng, T, H * d, 2), v = randRows(rng, T, H * d);
  const A = Array.from({ length: T }, () => Array.from({ length: H }, () => -softplus(rng.normal() * 2 - 2)));
  const pages = Array.from({ length: Math.ceil(T / P) }, (_, i) => (i * 7) % 13 + 13 * (i >= 13 ? 1 : 0)); // scattered, distinct
  const sl = (r: Float32Array[], h: number) => r.map((x) => x.subarray(h * d, (h + 1) * d));
  const ref = new Float32Array(T * H * d);
  for (let h = 0; h < H; h++) twoMambaEParallel(sl(q, h), sl(k, h), sl(v, h), A.map((a) => a[h]!)).forEach((row, t) => ref.set(row, t * H * d + h * d));
  for (const split of [new Array(T).fill(1), [T], [50, 1, 99]]) {
    const y = await kvAttention(q, k, v, A, H, d, split, P, pages);
    assert.ok(relErr(y, ref) < 1e-5, `2Mamba-E split ${split.length}: rel ${relErr(y, ref)} (seed ${seed})`);
  }
  // z = −30 → A ≈ −e^−30: 2Mamba-E becomes plain causal softmax
  const tiny = Array.from({ length: T }, () => [-softplus(-30), -softplus(-30)]);
  const yE = await kvAttention(q, k, v, tiny, H, d, [T], P, pages);
  const ySm = new Float32Array(T * H * d);
  for (let h = 0; h < H; h++) softmaxParallel(sl(q, h), sl(k, h), sl(v, h)).forEach((row, t) => ySm.set(row, t * H * d + h * d));
  assert.ok(relErr(yE, ySm) < 1e-5, `2Mamba-E (decay → 0) vs softmax: rel ${relErr(yE, ySm)} (seed ${seed})`);
  // and the softmax path of the op (no C) is the same softmax
  const ySmOp = await kvAttention(q, k, v, null, H, d, new Array(T).fill(1), P, pages);
  assert.ok(relErr(ySmOp, ySm) < 1e-5, `softmax KV decode vs parallel: rel ${relErr(ySmOp, ySm)} (seed ${seed})`);
});

test('RoPE test vectors: interleaved, half-split and the permutation equivalence (spec §7.3)', () => {
  const theta = Float32Array.from([1, 0.01]);
  const inter = Float32Array.from([1, 2, 3, 4]);
  ropeHead(inter, 0, 1, theta, 4, 'interleaved');
  close(inter, [-1.1426396637, 1.9220755965, 2.9598506679, 4.0297995017], 1e-6, 'interleaved');
  const half = Float32Array.from([1, 2, 3, 4]);
  ropeHead(half, 0, 1, theta, 4, 'half');
  close(half, [-1.9841106486, 1.9599006675, 2.4623779024, 4.0197996683], 1e-6, 'half-split');
  const perm = Float32Array.from([1, 3, 2, 4]);
  ropeHead(perm, 0, 1, theta, 4, 'half');
  close(perm, [inter[0]!, inter[2]!, inter[1]!, inter[3]!], 1e-6, 'half-split of the permuted x = permuted interleaved');
  // position 0 is the identity
  const x = Float32Array.from([0.3, -1, 2, 5]);
  ropeHead(x, 0, 0, theta, 4, 'interleaved');
  close(x, [0.3, -1, 2, 5], 1e-7, 'position 0');
});
