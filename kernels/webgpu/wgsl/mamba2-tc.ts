// 2Mamba chunked prefill on tensor cores (spec/2mamba.md §5.4; issue 12): the two products over the state, the readout
// of the carried state Σ_p φ(q_t)_p S[p, :] ([rows × DD]·[DD × d]) and the state update Σ_t φ(k_t)ᵀ w_t v_t
// ([DD × rows]·[rows × d]), as 16×16×16 f16 subgroup-matrix products with f32 accumulation. The FMA twins and the
// rest of the chunked form (intra-chunk scores, the combine) are in mamba2.ts; the outputs are the same buffers.
//
// Numerics (f16 has 11 significant bits and a range of ±65504; the state is f32 and stays f32 in memory):
// - φ is formed from rows scaled by a power of two m_t ≥ max_a |x_t,a| (exact), so |φ| ≤ √2, and rounded once to f16
//   (relative error ≤ 2⁻¹¹ per entry); the scale comes back exactly on the output row (readout) or moves into the
//   row's weight w_t (update).
// - The right-hand matrices (S for the readout, w_t·v_t for the update) are scaled per column by a power of two that
//   puts the column's largest |value| below 2¹⁴ and split into hi + lo f16 halves (two products into one
//   accumulator): about 22 significant bits, so the right side adds next to nothing to φ's rounding.
// - The denominators (Σ φ·n, Σ φ·w) are summed in f32 from the unrounded φ.
// One workgroup = 4 subgroups of 32 over a 64 × 64 output (each subgroup a 32 × 32 quarter: 2 × 2 blocks of 16 × 16);
// K tiles of 32 staged in workgroup memory. `emulate`: the same staging and tile walk with the products in plain WGSL
// over the same f16 tiles, so adapters without subgroup matrices (lavapipe in CI) test the indexing and numerics.
// Requires d = 64 (the head dim of every preset); other head dims take the FMA kernels. `head`: the kernel header
// (params and step meta), `chunk`: the prefill chunk (rows), both from mamba2.ts.
import { PHI_OFF_DIAGONAL } from '../../ops.js';
import { ro, rw } from './common.js';

export const TC_HEAD_DIM = 64;
const KT = 32; // K tile (state rows for the readout, chunk rows for the update)

const enables = (emulate: boolean) =>
  `enable f16;\n${emulate ? '' : 'enable subgroups;\nenable chromium_experimental_subgroup_matrix;\n'}`;

/** Largest power of two m with m ≥ |v| for every |v| ≤ mx (1 for 0): x / m is exact and in [−1, 1]. */
const POW2 = /* wgsl */ `fn pow2Above(mx: f32) -> f32 { return ldexp(1.0, frexp(mx).exp); }
fn pow2Below14(mx: f32) -> f32 { return ldexp(1.0, 14 - frexp(mx).exp); }
fn phiCoef(a: u32, b: u32) -> f32 { return select(${PHI_OFF_DIAGONAL}, 1.0, a == b); }`;

/** Stage 64 rows of a head's q (part 0) or k (part 1) into xs scaled by a power of two per row (m_t, into msq as m_t²):
 *  thread l takes row l / 2, half l % 2 (32 dims). Rows past L repeat row L − 1. */
const stageRows = (part: number) => /* wgsl */ `
  {
    let t = l.x / 2u; let hf = l.x % 2u;
    let xo = ((r0 + min(t, L - 1u)) * width + ${part}u * E + h * D) / 4u + hf * 8u;
    var v: array<vec4<f32>, 8>;
    var mx = vec4<f32>(0.0);
    for (var j = 0u; j < 8u; j++) { v[j] = x[xo + j]; mx = max(mx, abs(v[j])); }
    red[l.x] = max(max(mx.x, mx.y), max(mx.z, mx.w));
    workgroupBarrier();
    let m = pow2Above(max(red[2u * t], red[2u * t + 1u]));
    for (var j = 0u; j < 8u; j++) {
      let b = t * 64u + hf * 32u + 4u * j;
      xs[b] = v[j].x / m; xs[b + 1u] = v[j].y / m; xs[b + 2u] = v[j].z / m; xs[b + 3u] = v[j].w / m;
    }
    if (hf == 0u) { msq[t] = m * m; }
  }`;

/** The K-tile product into the 64 × 64 result: left [64 × KT] (stride KT), right hi and lo [KT × 64] (stride 64).
 *  Subgroup matrices: subgroup g owns rows (g % 2)·32, columns (g / 2)·32. Emulated: thread l owns row l / 2,
 *  columns (l % 2)·32 … + 32 (the epilogue's ownership). */
const product = (emulate: boolean) =>
  emulate
    ? /* wgsl */ `
    for (var k = 0u; k < ${KT}u; k++) {
      let a = f32(As[(l.x / 2u) * ${KT}u + k]);
      for (var j = 0u; j < 32u; j++) {
        let c = k * 64u + (l.x % 2u) * 32u + j;
        acc[j] += a * f32(Bh[c]) + a * f32(Bl[c]);
      }
    }`
    : /* wgsl */ `
    for (var kk = 0u; kk < ${KT}u; kk += 16u) {
      let a0 = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&As, qr * ${KT}u + kk, false, ${KT}u);
      let a1 = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&As, (qr + 16u) * ${KT}u + kk, false, ${KT}u);
      let h0 = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&Bh, kk * 64u + qc, false, 64u);
      let h1 = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&Bh, kk * 64u + qc + 16u, false, 64u);
      let l0 = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&Bl, kk * 64u + qc, false, 64u);
      let l1 = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&Bl, kk * 64u + qc + 16u, false, 64u);
      m00 = subgroupMatrixMultiplyAccumulate(a0, h0, m00); m00 = subgroupMatrixMultiplyAccumulate(a0, l0, m00);
      m01 = subgroupMatrixMultiplyAccumulate(a0, h1, m01); m01 = subgroupMatrixMultiplyAccumulate(a0, l1, m01);
      m10 = subgroupMatrixMultiplyAccumulate(a1, h0, m10); m10 = subgroupMatrixMultiplyAccumulate(a1, l0, m10);
      m11 = subgroupMatrixMultiplyAccumulate(a1, h1, m11); m11 = subgroupMatrixMultiplyAccumulate(a1, l1, m11);
    }`;

/** Accumulators, and (tensor cores) their store into xs as the 64 × 64 f32 result Cs, after a barrier. */
const accumulators = (emulate: boolean) =>
  emulate
    ? '  var acc: array<f32, 32>;'
    : `  let qr = (sg % 2u) * 32u; let qc = (sg / 2u) * 32u;
${[0, 1].flatMap((i) => [0, 1].map((j) => `  var m${i}${j} = subgroup_matrix_result<f32, 16, 16>();`)).join('\n')}`;
const result = (emulate: boolean) =>
  emulate
    ? '  workgroupBarrier();'
    : `  workgroupBarrier();
  subgroupMatrixStore(&xs, qr * 64u + qc, m00, false, 64u); subgroupMatrixStore(&xs, qr * 64u + qc + 16u, m01, false, 64u);
  subgroupMatrixStore(&xs, (qr + 16u) * 64u + qc, m10, false, 64u);
  subgroupMatrixStore(&xs, (qr + 16u) * 64u + qc + 16u, m11, false, 64u);
  workgroupBarrier();`;
/** Element j of this thread's 32 result columns (row l / 2, columns (l % 2)·32 + j). */
const res = (emulate: boolean, j: string) => (emulate ? `acc[${j}]` : `xs[(l.x / 2u) * 64u + (l.x % 2u) * 32u + ${j}]`);
/** This thread's result columns 4j … 4j + 3 as a vec4. */
const resVec = (emulate: boolean) =>
  `vec4<f32>(${['4u * j', '4u * j + 1u', '4u * j + 2u', '4u * j + 3u'].map((j) => res(emulate, j)).join(', ')})`;

const entry = (emulate: boolean) =>
  `@compute @workgroup_size(128) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>${
    emulate ? '' : ', @builtin(subgroup_id) sg: u32'
  })`;

const shared = /* wgsl */ `
const D = ${TC_HEAD_DIM}u;
const DD = ${(TC_HEAD_DIM * (TC_HEAD_DIM + 1)) / 2}u;
var<workgroup> xs: array<f32, 4096>; // the chunk's scaled q or k rows [t][a]; then the f32 result [row][column]
var<workgroup> msq: array<f32, 64>; // m_t² of each row
var<workgroup> red: array<f32, 128>;
var<workgroup> cs: array<vec4<f32>, 16>; // the right side's column scales
var<workgroup> As: array<f16, ${64 * KT}>; // left K tile [row][k]
var<workgroup> Bh: array<f16, ${KT * 64}>; // right K tile [k][column], hi
var<workgroup> Bl: array<f16, ${KT * 64}>; // … lo
var<workgroup> red4: array<vec4<f32>, 128>;`;

/** cs from each thread's vec4 column maxima mx (thread l: vec4 column l % 16, row group l / 16). */
const columnScales = /* wgsl */ `  red4[l.x] = mx;
  workgroupBarrier();
  if (l.x < 16u) {
    var m4 = vec4<f32>(0.0);
    for (var g = 0u; g < 8u; g++) { m4 = max(m4, red4[g * 16u + l.x]); }
    cs[l.x] = vec4<f32>(pow2Below14(m4.x), pow2Below14(m4.y), pow2Below14(m4.z), pow2Below14(m4.w));
  }`;

/** Split v (scaled into ±2¹⁴) into f16 hi and lo at [i]. */
const split = (i: string, v: string) =>
  `{ let sv = ${v}; let hi = f16(sv); Bh[${i}] = hi; Bl[${i}] = f16(sv - f32(hi)); }`;

/** Stage the right K tile: thread l takes row l / 4, vec4 columns m4 = (l % 4)·4 … + 4; `value` (WGSL over m4) is the
 *  scaled vec4, split into the hi and lo tiles. */
const stageRight = (value: string) => /* wgsl */ `
    for (var j = 0u; j < 4u; j++) {
      let m4 = (l.x % 4u) * 4u + j;
      let v = ${value};
      let o = (l.x / 4u) * 64u + 4u * m4;
      ${split('o', 'v.x')} ${split('o + 1u', 'v.y')} ${split('o + 2u', 'v.z')} ${split('o + 3u', 'v.w')}
    }`;

// Readout of the carried state over one of `splits` ranges of state rows (M2_TC_ROWS each), for the
// rows of chunk prm.chunk + wg.z: pnum = Σ_p φ(q_t)_p S[p, :], pden = Σ_p φ(q_t)_p n[p]; a new sequence's first
// prm.fresh chunks read 0.
export const m2ReadTcSource = (head: string, chunk: number, emulate: boolean) => `${enables(emulate)}${head}
${ro(2, 'x', 'vec4<f32>')}
${ro(3, 'pairs', 'u32')}
${ro(4, 'S', 'vec4<f32>')}
${ro(5, 'N')}
${rw(6, 'pnum', 'vec4<f32>')}
${rw(7, 'pden')}
${POW2}${shared}
${entry(emulate)} {
  let H = prm.heads; let c = prm.chunk + wg.z; let splits = prm.splits;
  let sp = wg.x; let s = wg.y / H; let h = wg.y % H;
  let n = seqRows(s); let start = c * ${chunk}u;
  if (start >= n) { return; }
  let L = min(${chunk}u, n - start); let E = H * D; let width = 3u * E;
  let r0 = seqRow0(s) + start; let base = (seqSlot(s) * H + h) * DD;
  let pa = sp * prm.blocks; let pb = min(DD, pa + prm.blocks); // prm.blocks: state rows per split, a multiple of ${KT}
${stageRows(0)}
  // the column scales of S over [pa, pb): thread l reads vec4 column l % 16 of rows pa + l / 16 + 8i
  var mx = vec4<f32>(0.0);
  for (var p = pa + l.x / 16u; p < pb; p += 8u) { mx = max(mx, abs(S[(base + p) * 16u + l.x % 16u])); }
${columnScales}
${accumulators(emulate)}
  var den = 0.0;
  let t = l.x / 2u; let hf = l.x % 2u;
  if (!(seqPos(s) == 0u && c < prm.fresh)) {
    for (var p0 = pa; p0 < pb; p0 += ${KT}u) {
      workgroupBarrier(); // xs, cs are ready; the previous tile's products are done
      // φ(q_t) for p0 + hf·16 … + 16, and its share of the denominator in f32
      for (var j = 0u; j < 16u; j++) {
        let p = p0 + hf * 16u + j; let pc = min(p, DD - 1u);
        let pr = pairs[pc]; let a = pr & 0xffffu; let b = pr >> 16u;
        let f = select(0.0, phiCoef(a, b) * xs[t * 64u + a] * xs[t * 64u + b], p < pb);
        As[t * ${KT}u + hf * 16u + j] = f16(f);
        den += f * N[base + pc];
      }
      // S rows p0 + l / 4, scaled and split
      let p = p0 + l.x / 4u;
${stageRight('select(vec4<f32>(0.0), S[(base + min(p, DD - 1u)) * 16u + m4] * cs[m4], p < pb)')}
      workgroupBarrier();
${product(emulate)}
    }
  }
${result(emulate)}
  red[l.x] = den;
  workgroupBarrier();
  if (t < L) {
    let k = ((r0 + t) * H + h) * splits + sp; let ms = msq[t];
    for (var j = 0u; j < 8u; j++) {
      let m4 = hf * 8u + j;
      let v = ${resVec(emulate)};
      pnum[k * 16u + m4] = v * ms / cs[m4];
    }
    if (hf == 0u) { pden[k] = (red[l.x] + red[l.x + 1u]) * ms; }
  }
}`;
