// WGSL for every operation of the CPU backend (kernels/cpu/ops.ts is the reference). Each kernel reads its scalars
// from a 64-byte uniform block (dynamic offset) and the step's layout from `meta`:
//   stepMeta[0] sequences, stepMeta[1] rows, stepMeta[2] row table base, stepMeta[3] page table base,
//   stepMeta[8 + 6s …] per sequence: slot, pos, rows, first row, page-table offset, pages;
//   stepMeta[rowBase + 2r …] per row: its sequence, its index in the sequence;
//   stepMeta[4] / stepMeta[5] the bases of two attention work lists: rows of the sequences under TILE_MIN_ROWS rows
//   (split-K) and (sequence, first row) of every TILE_ROWS-row tile of the others (tiled); [6], [7] their lengths.
// Reductions use workgroup memory only, so results do not depend on the subgroup size (8 on lavapipe, 32 on NVIDIA).
import type { WeightDType } from '../backend.js';

export const WG = 64;        // threads per workgroup for row/column kernels
export const CHUNK = 64;     // 2Mamba prefill chunk (rows)
export const PBLOCK = 32;    // 2Mamba prefill: state rows (p) per workgroup of the state update
export const M2_READ_SPLITS = 8; // 2Mamba prefill: ranges of state rows the readout is split over (partials)
export const SPLIT_K = 256;  // keys per attention workgroup (flash-decoding split)
export const TILE_ROWS = 64; // query rows per workgroup of the tiled (prefill) attention
export const TILE_KEYS = 32; // keys per tile it loads into workgroup memory
/** A sequence with at least this many rows in a step takes the tiled attention; fewer (decode) the split-K kernel. */
export const TILE_MIN_ROWS = 5;

/** A matmul workgroup: R rows × (CG column groups × C columns), K split over TK lanes per column group. */
export interface MatmulShape { R: number; C: number; TK: number; CG: number }
/** The input prologue of a matmul: none, rmsnorm (x·rsqrt(mean x² + eps)·w_norm), or silu(gate)·up. */
export type MatmulPrologue = 'none' | 'norm' | 'silu';

/** −softplus(z) = −(max(z, 0) + log1p(exp(−|z|))), log1p without cancellation for small arguments. */
const LOGDECAY = /* wgsl */ `fn logdecay(z: f32) -> f32 {
  let e = exp(-abs(z));
  let l1p = select(log(1.0 + e), e * (1.0 - e * (0.5 - e / 3.0)), e < 1e-4);
  return -(max(z, 0.0) + l1p);
}`;

/** φ's coefficient for the pair (a, b), a ≤ b, of a head's dimensions (spec §5): φ(x)_p = c·x_a·x_b with c = √2 off the
 *  diagonal, so φ(q)·φ(k) = (q·k)². The `pairs` tables hold a | b << 16 per state row p. */
const PHI = /* wgsl */ `fn phiCoef(a: u32, b: u32) -> f32 { return select(1.41421356237309515, 1.0, a == b); }`;

/** Threads along the column (vec4 lanes) and along the state rows of the decode state kernel for head dim d. */
export function m2DecodeShape(d: number) {
  const lanes = d / 4, groups = Math.max(1, Math.floor(256 / lanes));
  return { lanes, groups };
}

const HEADER = /* wgsl */ `
struct Params { v: array<vec4<u32>, 4> }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> stepMeta: array<u32>;
fn pu(i: u32) -> u32 { return P.v[i / 4u][i % 4u]; }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }
fn nSeqs() -> u32 { return stepMeta[0]; }
fn nRows() -> u32 { return stepMeta[1]; }
fn seqSlot(s: u32) -> u32 { return stepMeta[8u + s * 6u]; }
fn seqPos(s: u32) -> u32 { return stepMeta[8u + s * 6u + 1u]; }
fn seqRows(s: u32) -> u32 { return stepMeta[8u + s * 6u + 2u]; }
fn seqRow0(s: u32) -> u32 { return stepMeta[8u + s * 6u + 3u]; }
fn seqPage(s: u32, j: u32) -> u32 { return stepMeta[stepMeta[3] + stepMeta[8u + s * 6u + 4u] + j]; }
fn rowSeq(r: u32) -> u32 { return stepMeta[stepMeta[2] + 2u * r]; }
fn rowT(r: u32) -> u32 { return stepMeta[stepMeta[2] + 2u * r + 1u]; }
fn splitRow(i: u32) -> u32 { return stepMeta[stepMeta[4] + i]; }
fn tileSeq(i: u32) -> u32 { return stepMeta[stepMeta[5] + 2u * i]; }
fn tileRow(i: u32) -> u32 { return stepMeta[stepMeta[5] + 2u * i + 1u]; }
`;

/** A weight reader `fn W(i: u32) -> f32` over binding `b` for a storage dtype (16-bit: two per u32, low half first). */
function weightReader(b: number, dtype: WeightDType): string {
  if (dtype === 'f32') return `@group(0) @binding(${b}) var<storage, read> w: array<f32>;\nfn W(i: u32) -> f32 { return w[i]; }`;
  const get = dtype === 'f16'
    ? 'let h = unpack2x16float(word); return select(h.x, h.y, (i & 1u) == 1u);'
    : 'return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (i & 1u) == 1u));';
  return `@group(0) @binding(${b}) var<storage, read> w: array<u32>;\nfn W(i: u32) -> f32 { let word = w[i >> 1u]; ${get} }`;
}

const rw = (b: number, name: string, t = 'f32') => `@group(0) @binding(${b}) var<storage, read_write> ${name}: array<${t}>;`;
const ro = (b: number, name: string, t = 'f32') => `@group(0) @binding(${b}) var<storage, read> ${name}: array<${t}>;`;

/** Rows an op covers: every row of the step, or one per sequence (params slot `i` holds the flag). */
const ROWS = (i: number) => `fn rows() -> u32 { return select(nRows(), nSeqs(), pu(${i}u) == 1u); }`;

/** Body of w8(): the 8 weights of column c at k = 8·k8 … 8·k8 + 7, as two vec4<f32>. */
const W8: Record<WeightDType, string> = {
  f32: `  return W8v(w[(c * K8 + k8) * 2u], w[(c * K8 + k8) * 2u + 1u]);`,
  f16: `  let q = w[c * K8 + k8];
  return W8v(vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y)), vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w)));`,
  bf16: `  let q = w[c * K8 + k8];
  return W8v(vec4<f32>(bitcast<f32>(q.x << 16u), bitcast<f32>(q.x & 0xffff0000u), bitcast<f32>(q.y << 16u), bitcast<f32>(q.y & 0xffff0000u)),
             vec4<f32>(bitcast<f32>(q.z << 16u), bitcast<f32>(q.z & 0xffff0000u), bitcast<f32>(q.w << 16u), bitcast<f32>(q.w & 0xffff0000u)));`,
};

/** w8(c, k8, K8): the 8 weights of column c at k = 8·k8 …, and silu on a vec4 (the matmul kernels' helpers). */
const weights8 = (dtype: WeightDType) => `struct W8 { lo: vec4<f32>, hi: vec4<f32> }
fn W8v(lo: vec4<f32>, hi: vec4<f32>) -> W8 { return W8(lo, hi); }
fn w8(c: u32, k8: u32, K8: u32) -> W8 {
${W8[dtype]}
}
fn silu4(g: vec4<f32>) -> vec4<f32> { return g / (vec4<f32>(1.0) + exp(-g)); }`;

/** Tiled GEMM: rows × columns per workgroup, and the K step of its workgroup-memory tiles. */
export const GEMM = { rows: 64, cols: 64, k: 32 };

export const shaders = {
  // params: dim | ids → out[r, :] = table[ids[r], :]
  embed: (dtype: WeightDType) => `${HEADER}${weightReader(2, dtype)}
${ro(3, 'ids', 'i32')}
${rw(4, 'outp')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let dim = pu(0u); let i = g.x + g.y * 65535u * ${WG}u;
  if (i >= nRows() * dim) { return; }
  let r = i / dim; let c = i % dim;
  outp[i] = W(u32(ids[r]) * dim + c);
}`,

  // params: K, N, add, perSeq, eps. out[r, n] (+)= Σ_k x'[r, k] W[n, k] with x' = x, rmsnorm(x)·w_norm or silu(g)·u
  // (the prologue). A workgroup covers R rows × CG·C columns; each column group splits K over TK lanes in steps of 8
  // (16-bit weights: one vec4<u32> = 8 halves; f32: two vec4<f32>), then the lanes' sums meet in workgroup memory.
  // With the norm prologue Σ x² is accumulated in the same loop: rsqrt(mean + eps) factors out of the dot product.
  // Requires K % 8 == 0.
  //
  // The conv epilogue (decode steps: one row per sequence) fuses the 2Mamba front end that follows the [qkv | A]
  // projection: columns c < ch get the window-2 conv with the slot's conv state (conv2), the rest −softplus (logdecay).
  // params 5, 6: ch, heads.
  matmul: (dtype: WeightDType, pro: MatmulPrologue, m: MatmulShape, conv = false) => {
    const { R, C, TK, CG } = m, WGS = TK * CG, e = pro === 'norm' ? 6 : 5;
    return `${HEADER}
@group(0) @binding(2) var<storage, read> w: array<${dtype === 'f32' ? 'vec4<f32>' : 'vec4<u32>'}>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
${rw(4, 'outp')}
${pro === 'norm' ? ro(5, 'nw', 'vec4<f32>') : ''}
${conv ? `${rw(e, 'cst')}
${ro(e + 1, 'cw')}
${ro(e + 2, 'cb')}
${rw(e + 3, 'cout')}
${rw(e + 4, 'la')}
${LOGDECAY}` : ''}
${ROWS(3)}
${weights8(dtype)}
var<workgroup> red: array<f32, ${WGS * R * C}>;
${pro === 'norm' ? `var<workgroup> redss: array<f32, ${TK * R}>;` : ''}
@compute @workgroup_size(${WGS}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let K = pu(0u); let N = pu(1u); let Rt = rows(); let K8 = K / 8u;
  let lane = l.x % ${TK}u; let cg = l.x / ${TK}u;
  let c0 = wg.x * ${CG * C}u + cg * ${C}u; let r0 = wg.y * ${R}u;
  let XS = ${pro === 'silu' ? '4u' : '2u'} * K8; // vec4s per x row (silu: the row holds gate and up, 2K wide)
  var acc: array<f32, ${R * C}>;
  var ss: array<f32, ${R}>;
  for (var k8 = lane; k8 < K8; k8 += ${TK}u) {
    var wl: array<vec4<f32>, ${C}>; var wh: array<vec4<f32>, ${C}>;
    for (var b = 0u; b < ${C}u; b++) { let wv = w8(min(c0 + b, N - 1u), k8, K8); wl[b] = wv.lo; wh[b] = wv.hi; }
${pro === 'norm' ? '    let nlo = nw[2u * k8]; let nhi = nw[2u * k8 + 1u];' : ''}
    for (var a = 0u; a < ${R}u; a++) {
      let xo = min(r0 + a, Rt - 1u) * XS + 2u * k8;
      var lo = x[xo]; var hi = x[xo + 1u];
${pro === 'silu' ? '      lo = silu4(lo) * x[xo + 2u * K8]; hi = silu4(hi) * x[xo + 2u * K8 + 1u];' : ''}
${pro === 'norm' ? '      ss[a] += dot(lo, lo) + dot(hi, hi); lo *= nlo; hi *= nhi;' : ''}
      for (var b = 0u; b < ${C}u; b++) { acc[a * ${C}u + b] += dot(lo, wl[b]) + dot(hi, wh[b]); }
    }
  }
  for (var i = 0u; i < ${R * C}u; i++) { red[i * ${WGS}u + l.x] = acc[i]; }
${pro === 'norm' ? `  if (cg == 0u) { for (var a = 0u; a < ${R}u; a++) { redss[a * ${TK}u + lane] = ss[a]; } }` : ''}
  workgroupBarrier();
  for (var o = l.x; o < ${CG * R * C}u; o += ${WGS}u) {
    let g = o / ${R * C}u; let i = o % ${R * C}u; let a = i / ${C}u; let b = i % ${C}u;
    var v = 0.0;
    for (var t = 0u; t < ${TK}u; t++) { v += red[i * ${WGS}u + g * ${TK}u + t]; }
${pro === 'norm' ? `    var s2 = 0.0;
    for (var t = 0u; t < ${TK}u; t++) { s2 += redss[a * ${TK}u + t]; }
    v *= 1.0 / sqrt(s2 / f32(K) + pf(4u));` : ''}
    let r = r0 + a; let c = wg.x * ${CG * C}u + g * ${C}u + b;
    if (r < Rt && c < N) {
      let oi = r * N + c; outp[oi] = select(v, outp[oi] + v, pu(2u) == 1u);
${conv ? `      let ch = pu(5u); let sq = rowSeq(r);
      if (c < ch) {
        let si = seqSlot(sq) * ch + c;
        let prev = select(0.0, cst[si], seqPos(sq) > 0u);
        cout[r * ch + c] = cb[c] + cw[2u * c] * prev + cw[2u * c + 1u] * v;
        cst[si] = v;
      } else { la[r * pu(6u) + c - ch] = logdecay(v); }` : ''}
    }
  }
}`;
  },

  // The matmul of many rows (prefill): the same params, prologues and add as matmul, as a register-tiled GEMM.
  // A workgroup of 256 threads computes a ${GEMM.rows} × ${GEMM.cols} block of out, 4 × 4 per thread; each K step of
  // ${GEMM.k} loads an x tile (prologue applied) and a weight tile into workgroup memory, k-major, so a thread reads
  // 4 rows and 4 columns as two vec4 per k. rmsnorm: Σ x² of each row accumulates from the x tiles (8 partials per
  // row), and rsqrt(mean + eps) scales the finished dot products. Requires K % ${GEMM.k} == 0.
  gemm: (dtype: WeightDType, pro: MatmulPrologue) => `${HEADER}
@group(0) @binding(2) var<storage, read> w: array<${dtype === 'f32' ? 'vec4<f32>' : 'vec4<u32>'}>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
${rw(4, 'outp')}
${pro === 'norm' ? ro(5, 'nw', 'vec4<f32>') : ''}
${weights8(dtype)}
const BK = ${GEMM.k}u;
var<workgroup> As: array<vec4<f32>, ${GEMM.k * GEMM.rows / 4}>; // [k][row / 4]
var<workgroup> Bs: array<vec4<f32>, ${GEMM.k * GEMM.cols / 4}>; // [k][column / 4]
${pro === 'norm' ? `var<workgroup> ssp: array<f32, ${GEMM.rows * 8}>;` : ''}
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let K = pu(0u); let N = pu(1u); let Rt = nRows(); let K8 = K / 8u;
  let tx = l.x % 16u; let ty = l.x / 16u;
  let c0 = wg.x * ${GEMM.cols}u; let r0 = wg.y * ${GEMM.rows}u;
  let XS = ${pro === 'silu' ? '2u' : '1u'} * K / 4u; // vec4s per x row (silu: the row holds gate and up, 2K wide)
  // loads: x — rows l.x / 8 and 32 + l.x / 8, k quad l.x % 8; weights — column l.x / 4, k8 l.x % 4
  let lq = l.x % 8u; let wc = min(c0 + l.x / 4u, N - 1u); let wk = l.x % 4u;
  var acc: array<vec4<f32>, 4>;
  var ss = vec2<f32>(0.0);
  for (var k0 = 0u; k0 < K; k0 += BK) {
    for (var h = 0u; h < 2u; h++) {
      let lr = l.x / 8u + 32u * h;
      let xo = min(r0 + lr, Rt - 1u) * XS + k0 / 4u + lq;
      var a = x[xo];
${pro === 'silu' ? '      a = silu4(a) * x[xo + K / 4u];' : ''}
${pro === 'norm' ? '      ss[h] += dot(a, a); a *= nw[k0 / 4u + lq];' : ''}
      for (var j = 0u; j < 4u; j++) { As[(4u * lq + j) * ${GEMM.rows / 4}u + lr / 4u][lr % 4u] = a[j]; }
    }
    let wv = w8(wc, k0 / 8u + wk, K8);
    let bc = l.x / 4u;
    for (var j = 0u; j < 4u; j++) {
      Bs[(8u * wk + j) * ${GEMM.cols / 4}u + bc / 4u][bc % 4u] = wv.lo[j];
      Bs[(8u * wk + 4u + j) * ${GEMM.cols / 4}u + bc / 4u][bc % 4u] = wv.hi[j];
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let a = As[k * ${GEMM.rows / 4}u + ty]; let b = Bs[k * ${GEMM.cols / 4}u + tx];
      acc[0] += a.x * b; acc[1] += a.y * b; acc[2] += a.z * b; acc[3] += a.w * b;
    }
    workgroupBarrier();
  }
${pro === 'norm' ? `  ssp[(l.x / 8u) * 8u + lq] = ss[0]; ssp[(32u + l.x / 8u) * 8u + lq] = ss[1];
  workgroupBarrier();` : ''}
  for (var i = 0u; i < 4u; i++) {
    let lr = ty * 4u + i; let r = r0 + lr;
    if (r >= Rt) { break; }
    var v = acc[i];
${pro === 'norm' ? `    var s2 = 0.0;
    for (var t = 0u; t < 8u; t++) { s2 += ssp[lr * 8u + t]; }
    v *= 1.0 / sqrt(s2 / f32(K) + pf(4u));` : ''}
    for (var j = 0u; j < 4u; j++) {
      let c = c0 + tx * 4u + j;
      if (c < N) { let oi = r * N + c; outp[oi] = select(v[j], outp[oi] + v[j], pu(2u) == 1u); }
    }
  }
}`,

  // params: dim. out[s] = x[last row of s]
  gather_last: () => `${HEADER}
${ro(2, 'x')}
${rw(3, 'outp')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let dim = pu(0u); let i = g.x;
  if (i >= nSeqs() * dim) { return; }
  let s = i / dim; let c = i % dim;
  outp[i] = x[(seqRow0(s) + seqRows(s) - 1u) * dim + c];
}`,

  // params: ch, xStride, heads (decay variant). One thread per (row, channel): out[t] = b + w0·x[t−1] + w1·x[t], with
  // x[−1] from state[slot] (zero for a fresh sequence). The thread of a sequence's first row is the only one that
  // reads the state, so it also writes the new one (the sequence's last raw row): no race between rows. The decay
  // variant's extra threads (channels ch … ch+heads−1) write −softplus(z) of the decay logits after the conv channels.
  conv2: (decay: boolean) => `${HEADER}
${ro(2, 'x')}
${rw(3, 'st')}
${ro(4, 'wt')}
${ro(5, 'bias')}
${rw(6, 'outp')}
${decay ? rw(7, 'la') : ''}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let ch = pu(0u); let xs = pu(1u); let H = ${decay ? 'pu(2u)' : '0u'}; let i = g.x + g.y * 65535u * ${WG}u;
  if (i >= nRows() * (ch + H)) { return; }
  let r = i / (ch + H); let c = i % (ch + H);
${decay ? `  if (c >= ch) { la[r * H + c - ch] = logdecay(x[r * xs + c]); return; }` : ''}
  let s = rowSeq(r); let t = rowT(r); let si = seqSlot(s) * ch + c;
  var prev: f32;
  if (t == 0u) {
    prev = select(0.0, st[si], seqPos(s) > 0u);
    st[si] = x[(r + seqRows(s) - 1u) * xs + c];
  } else { prev = x[(r - 1u) * xs + c]; }
  outp[r * ch + c] = bias[c] + wt[2u * c] * prev + wt[2u * c + 1u] * x[r * xs + c];
}
${decay ? LOGDECAY : ''}`,

  // params: heads, kvHeads, d, interleaved. RoPE in place on the Q and K heads of each row at its position.
  rope: () => `${HEADER}
${rw(2, 'x')}
${ro(3, 'freqs')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let H = pu(0u); let Hkv = pu(1u); let d = pu(2u); let half = d / 2u;
  let per = (H + Hkv) * half; let i = g.x;
  if (i >= nRows() * per) { return; }
  let r = i / per; let k = i % per; let head = k / half; let m = k % half;
  let width = (H + 2u * Hkv) * d; let base = r * width + head * d;
  let pos = f32(seqPos(rowSeq(r)) + rowT(r));
  let ang = pos * freqs[m]; let cs = cos(ang); let sn = sin(ang);
  var a = base + m; var b = base + m + half;
  if (pu(3u) == 1u) { a = base + 2u * m; b = a + 1u; }
  let xa = x[a]; let xb = x[b];
  x[a] = xa * cs - xb * sn;
  x[b] = xb * cs + xa * sn;
}`,

  // params: heads, kvHeads, d, pageSize. K and V of each row into its page slot.
  kv_append: () => `${HEADER}
${ro(2, 'x')}
${rw(3, 'kc')}
${rw(4, 'vc')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let H = pu(0u); let Hkv = pu(1u); let d = pu(2u); let P = pu(3u);
  let i = g.x;
  if (i >= nRows() * Hkv * d) { return; }
  let r = i / (Hkv * d); let e = i % (Hkv * d);
  let s = rowSeq(r); let pos = seqPos(s) + rowT(r);
  let at = (seqPage(s, pos / P) * P + pos % P) * Hkv * d + e;
  let width = (H + 2u * Hkv) * d;
  kc[at] = x[r * width + H * d + e];
  vc[at] = x[r * width + (H + Hkv) * d + e];
}`,

  // params: heads, pageSize. C_pos = C_{pos−1} + A_pos per (sequence, head), walking the sequence's rows.
  kv_cumsum: () => `${HEADER}
${ro(2, 'logA')}
${rw(3, 'cc')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let H = pu(0u); let P = pu(1u); let i = g.x;
  if (i >= nSeqs() * H) { return; }
  let s = i / H; let h = i % H; let p0 = seqPos(s);
  var c = 0.0;
  if (p0 > 0u) { c = cc[(seqPage(s, (p0 - 1u) / P) * P + (p0 - 1u) % P) * H + h]; }
  for (var t = 0u; t < seqRows(s); t++) {
    let pos = p0 + t;
    c += logA[(seqRow0(s) + t) * H + h];
    cc[(seqPage(s, pos / P) * P + pos % P) * H + h] = c;
  }
}`,

  // params: vocab. One workgroup per sequence: argmax of its logits row, or with temperature T > 0 of
  // logits / T + Gumbel noise (the same hash as kernels/backend.ts sampleNoise). Ties go to the lower id.
  sample: () => `${HEADER}
${ro(2, 'logits')}
${ro(3, 'sp', 'u32')}
${rw(4, 'outp', 'i32')}
var<workgroup> bs: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;
fn hash32(v: u32) -> u32 {
  var x = v; x ^= x >> 16u; x *= 0x7feb352du; x ^= x >> 15u; x *= 0x846ca68bu; x ^= x >> 16u; return x;
}
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let V = pu(0u); let s = wg.x; // dispatched with exactly one workgroup per sequence
  let T = bitcast<f32>(sp[4u * s]);
  let key = hash32(sp[4u * s + 1u] ^ hash32(sp[4u * s + 2u] ^ hash32(sp[4u * s + 3u] ^ 0x9e3779b9u)));
  var best = 0.0; var arg = 0xffffffffu;
  for (var i = l.x; i < V; i += 256u) {
    var sc = logits[s * V + i];
    if (T > 0.0) { sc = sc / T - log(-log((f32(hash32(key ^ hash32(i)) >> 8u) + 0.5) / 16777216.0)); }
    if (arg == 0xffffffffu || sc > best) { best = sc; arg = i; }
  }
  bs[l.x] = best; bi[l.x] = arg;
  workgroupBarrier();
  for (var st = 128u; st > 0u; st >>= 1u) {
    if (l.x < st) {
      let ob = bs[l.x + st]; let oi = bi[l.x + st];
      if (oi != 0xffffffffu && (bi[l.x] == 0xffffffffu || ob > bs[l.x] || (ob == bs[l.x] && oi < bi[l.x]))) { bs[l.x] = ob; bi[l.x] = oi; }
    }
    workgroupBarrier();
  }
  if (l.x == 0u) { outp[s] = i32(bi[0]); }
}`,

  // Split-K (flash-decoding) attention, pass 1. params: heads, kvHeads, pageSize, useC, splits. One workgroup per
  // (key range of ${SPLIT_K}, row, head); each thread an online softmax over its keys j ≡ thread (mod ${WG}) of the range,
  // then a max-rescaled combine in workgroup memory → the range's (max, sum, Σ e^{ℓ−max}·v). ℓ_j = s·q·k_j (+ C_pos − C_j).
  attention: (d: number) => `${HEADER}
${ro(2, 'x')}
${ro(3, 'kc')}
${ro(4, 'vc')}
${ro(5, 'cc')}
${rw(6, 'po')}
${rw(7, 'pml')}
const D = ${d}u;
var<workgroup> wm: array<f32, ${WG}>;
var<workgroup> wl: array<f32, ${WG}>;
var<workgroup> wacc: array<f32, ${WG * d}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let Hkv = pu(1u); let P = pu(2u); let useC = pu(3u) == 1u; let splits = pu(4u);
  let sp = wg.x; let r = splitRow(wg.y / H); let h = wg.y % H; // splits × (split-K rows × heads) workgroups
  let s = rowSeq(r); let pos = seqPos(s) + rowT(r);
  let j0 = sp * ${SPLIT_K}u; let j1 = min(pos + 1u, j0 + ${SPLIT_K}u);
  let g = h / (H / Hkv); let width = (H + 2u * Hkv) * D;
  let sc = 1.0 / sqrt(f32(D));
  var q: array<f32, ${d}>;
  for (var m = 0u; m < D; m++) { q[m] = x[r * width + h * D + m]; }
  var cNow = 0.0;
  if (useC) { cNow = cc[(seqPage(s, pos / P) * P + pos % P) * H + h]; }
  var mx = -3.0e38; var z = 0.0;
  var acc: array<f32, ${d}>;
  for (var j = j0 + l.x; j < j1; j += ${WG}u) {
    let slot = seqPage(s, j / P) * P + j % P;
    let ko = (slot * Hkv + g) * D;
    var dot = 0.0;
    for (var m = 0u; m < D; m++) { dot += q[m] * kc[ko + m]; }
    var lg = sc * dot;
    if (useC) { lg += cNow - cc[slot * H + h]; }
    let nm = max(mx, lg); let f = exp(mx - nm); let e = exp(lg - nm);
    z = z * f + e;
    for (var m = 0u; m < D; m++) { acc[m] = acc[m] * f + e * vc[ko + m]; }
    mx = nm;
  }
  wm[l.x] = mx; wl[l.x] = z;
  for (var m = 0u; m < D; m++) { wacc[l.x * D + m] = acc[m]; }
  workgroupBarrier();
  if (j0 >= j1) { return; } // a range past this row's position: the reduce skips it
  var M = -3.0e38;
  for (var t = 0u; t < ${WG}u; t++) { M = max(M, wm[t]); }
  var Z = 0.0;
  for (var t = 0u; t < ${WG}u; t++) { Z += wl[t] * exp(wm[t] - M); }
  let k = (r * H + h) * splits + sp;
  for (var m = l.x; m < D; m += ${WG}u) {
    var o = 0.0;
    for (var t = 0u; t < ${WG}u; t++) { o += wacc[t * D + m] * exp(wm[t] - M); }
    po[k * D + m] = o;
  }
  if (l.x == 0u) { pml[2u * k] = M; pml[2u * k + 1u] = Z; }
}`,

  // Tiled (flash-attention) prefill, pass 1 (kernels.md §5.11): one workgroup per (key range of ${SPLIT_K}, tile of ${TILE_ROWS}
  // rows of one sequence, head); thread i owns query row i (q and its running output in registers). Key tiles of
  // ${TILE_KEYS} are loaded coalesced into workgroup memory and read by every row (K/V come from memory once per tile
  // of rows, not once per row). Online softmax per row; writes the same (max, sum, Σ e^{ℓ−max}·v) partials as the
  // split-K kernel, so attn_reduce finishes both. params: heads, kvHeads, pageSize, useC, splits.
  attn_tile: (d: number) => `${HEADER}
${ro(2, 'x', 'vec4<f32>')}
${ro(3, 'kc', 'vec4<f32>')}
${ro(4, 'vc', 'vec4<f32>')}
${ro(5, 'cc')}
${rw(6, 'po', 'vec4<f32>')}
${rw(7, 'pml')}
const D4 = ${d / 4}u;
const BC = ${TILE_KEYS}u;
var<workgroup> ks: array<vec4<f32>, ${TILE_KEYS * (d / 4)}>;
var<workgroup> vs: array<vec4<f32>, ${TILE_KEYS * (d / 4)}>;
var<workgroup> cs: array<f32, ${TILE_KEYS}>;
@compute @workgroup_size(${TILE_ROWS}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let Hkv = pu(1u); let P = pu(2u); let useC = pu(3u) == 1u; let splits = pu(4u);
  let sp = wg.x; let ti = wg.y / H; let h = wg.y % H; // dispatched with splits × (tiles × heads) workgroups
  let s = tileSeq(ti); let t0 = tileRow(ti); let n = seqRows(s); let p0 = seqPos(s);
  let lastRow = min(t0 + ${TILE_ROWS}u, n) - 1u;
  let j0 = sp * ${SPLIT_K}u; let j1 = min(p0 + lastRow + 1u, j0 + ${SPLIT_K}u);
  if (j0 >= j1) { return; } // a range past the tile's last position (uniform over the workgroup)
  let i = min(t0 + l.x, lastRow); let pos = p0 + i; let r = seqRow0(s) + i;
  let g = h / (H / Hkv); let width4 = (H + 2u * Hkv) * D4;
  let scale = 1.0 / sqrt(f32(D4 * 4u));
  var q: array<vec4<f32>, ${d / 4}>;
  for (var m = 0u; m < D4; m++) { q[m] = x[r * width4 + h * D4 + m] * scale; }
  var cNow = 0.0;
  if (useC) { cNow = cc[(seqPage(s, pos / P) * P + pos % P) * H + h]; }
  var mx = -3.0e38; var z = 0.0;
  var acc: array<vec4<f32>, ${d / 4}>;
  for (var jt = j0; jt < j1; jt += BC) {
    workgroupBarrier(); // every row is done with the previous tile
    for (var e = l.x; e < BC * D4; e += ${TILE_ROWS}u) {
      let j = jt + e / D4;
      var kv = vec4<f32>(0.0); var vv = vec4<f32>(0.0);
      if (j < j1) {
        let o = ((seqPage(s, j / P) * P + j % P) * Hkv + g) * D4 + e % D4;
        kv = kc[o]; vv = vc[o];
      }
      ks[e] = kv; vs[e] = vv;
    }
    if (l.x < BC) {
      let j = jt + l.x;
      var c = 0.0;
      if (useC && j < j1) { c = cc[(seqPage(s, j / P) * P + j % P) * H + h]; }
      cs[l.x] = c;
    }
    workgroupBarrier();
    var lg: array<f32, ${TILE_KEYS}>;
    var tm = -3.0e38;
    for (var k = 0u; k < BC; k++) {
      var dt = 0.0;
      for (var m = 0u; m < D4; m++) { dt += dot(q[m], ks[k * D4 + m]); }
      let ok = jt + k <= pos && jt + k < j1; // causal, and inside the range
      lg[k] = select(-3.0e38, dt + cNow - cs[k], ok);
      tm = max(tm, lg[k]);
    }
    let nm = max(mx, tm); let f = exp(mx - nm);
    z *= f;
    for (var m = 0u; m < D4; m++) { acc[m] *= f; }
    for (var k = 0u; k < BC; k++) {
      let e = select(0.0, exp(lg[k] - nm), lg[k] > -1.0e38);
      z += e;
      for (var m = 0u; m < D4; m++) { acc[m] += e * vs[k * D4 + m]; }
    }
    mx = nm;
  }
  // rows of the tile past the sequence's rows, or whose position precedes this range, write nothing
  if (t0 + l.x > lastRow || pos < j0) { return; }
  let k = (r * H + h) * splits + sp;
  for (var m = 0u; m < D4; m++) { po[k * D4 + m] = acc[m]; }
  pml[2u * k] = mx; pml[2u * k + 1u] = z;
}`,

  // Split-K attention, pass 2: y = Σ_s e^{m_s − M} o_s / Σ_s e^{m_s − M} l_s over the row's ranges. params: heads, splits.
  attn_reduce: (d: number) => `${HEADER}
${ro(2, 'po')}
${ro(3, 'pml')}
${rw(4, 'outp')}
const D = ${d}u;
@compute @workgroup_size(${d}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let splits = pu(1u);
  let r = wg.x; let h = wg.y; let m = l.x;
  let pos = seqPos(rowSeq(r)) + rowT(r);
  let n = pos / ${SPLIT_K}u + 1u;
  let k0 = (r * H + h) * splits;
  var M = -3.0e38;
  for (var sp = 0u; sp < n; sp++) { M = max(M, pml[2u * (k0 + sp)]); }
  var Z = 0.0; var o = 0.0;
  for (var sp = 0u; sp < n; sp++) {
    let f = exp(pml[2u * (k0 + sp)] - M);
    Z += f * pml[2u * (k0 + sp) + 1u];
    o += f * po[(k0 + sp) * D + m];
  }
  outp[r * H * D + h * D + m] = o / Z;
}`,

  // 2Mamba chunked form (spec §5.4), chunk c of every sequence. params: heads, chunk index.
  // Intra-chunk, score space: G_i (chunk-local cumsum), Σ_{j ≤ i} exp(G_i − G_j)(s q_i·k_j)² v_j and its denominator.
  // One workgroup per (sequence, head); thread i owns row i (q and its sums in registers); the chunk's k, v rows come
  // through workgroup memory in tiles of 32. The weights are ≥ 0 and exp(G_i − G_j) ≤ 1: no running max.
  m2_intra: (d: number) => `${HEADER}
${ro(2, 'x', 'vec4<f32>')}
${ro(3, 'logA')}
${rw(4, 'G')}
${rw(5, 'inum', 'vec4<f32>')}
${rw(6, 'iden')}
const D4 = ${d / 4}u;
var<workgroup> gs: array<f32, ${CHUNK}>;
var<workgroup> ks: array<vec4<f32>, ${32 * (d / 4)}>;
var<workgroup> vs: array<vec4<f32>, ${32 * (d / 4)}>;
@compute @workgroup_size(${CHUNK}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let c = pu(1u); let s = wg.x / H; let h = wg.x % H; // wg.x < sequences × heads
  let n = seqRows(s); let start = c * ${CHUNK}u;
  if (start >= n) { return; } // uniform: this sequence has no rows in chunk c
  let L = min(${CHUNK}u, n - start); let i = min(l.x, L - 1u); let E4 = H * D4; let width4 = 3u * E4;
  let r0 = seqRow0(s) + start;
  if (l.x == 0u) {
    var acc = 0.0;
    for (var t = 0u; t < L; t++) { acc += logA[(r0 + t) * H + h]; gs[t] = acc; }
  }
  let sc = 1.0 / sqrt(f32(D4 * 4u));
  var q: array<vec4<f32>, ${d / 4}>;
  for (var m = 0u; m < D4; m++) { q[m] = x[(r0 + i) * width4 + h * D4 + m] * sc; }
  var num: array<vec4<f32>, ${d / 4}>;
  var den = 0.0;
  for (var j0 = 0u; j0 < L; j0 += 32u) {
    workgroupBarrier(); // gs is written; every row is done with the previous tile
    for (var e = l.x; e < 32u * D4; e += ${CHUNK}u) {
      let o = (r0 + min(j0 + e / D4, L - 1u)) * width4 + E4 + h * D4 + e % D4;
      ks[e] = x[o]; vs[e] = x[o + E4];
    }
    workgroupBarrier();
    let gi = gs[i];
    for (var k = 0u; k < 32u; k++) {
      let j = j0 + k;
      var dt = 0.0;
      for (var m = 0u; m < D4; m++) { dt += dot(q[m], ks[k * D4 + m]); }
      let w = select(0.0, exp(gi - gs[min(j, L - 1u)]) * dt * dt, j <= i);
      den += w;
      for (var m = 0u; m < D4; m++) { num[m] += w * vs[k * D4 + m]; }
    }
  }
  if (l.x >= L) { return; }
  let k = (r0 + i) * H + h;
  G[k] = gs[i];
  iden[k] = den;
  for (var m = 0u; m < D4; m++) { inum[k * D4 + m] = num[m]; }
}`,

  // Inter-chunk readout with the state carried in: Σ_p φ(q_t)_p S[p, :] and Σ_p φ(q_t)_p n[p] for the chunk's rows t
  // over one of `splits` ranges of state rows p (a [rows × p]·[p × d] product per (sequence, head)). A workgroup of
  // 16·d/4 threads owns 4 rows × 4 columns each; per tile of 32 state rows it stages S, n and φ(q) (formed from q on
  // the fly) in workgroup memory. A sequence's first chunk at position 0 reads zeros. params: heads, chunk, splits.
  m2_read: (d: number) => `${HEADER}${PHI}
${ro(2, 'x')}
${ro(3, 'pairs', 'u32')}
${ro(4, 'S', 'vec4<f32>')}
${ro(5, 'N')}
${rw(6, 'pnum', 'vec4<f32>')}
${rw(7, 'pden')}
const D = ${d}u;
const D4 = ${d / 4}u;
const DD = ${(d * (d + 1)) / 2}u;
const WGS = ${4 * d}u;
const PT = 32u;
var<workgroup> ssh: array<vec4<f32>, ${32 * (d / 4)}>;
var<workgroup> nsh: array<f32, 32>;
var<workgroup> fq: array<vec4<f32>, ${32 * (CHUNK / 4)}>; // φ(q)[p][t / 4]
@compute @workgroup_size(${4 * d}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let c = pu(1u); let splits = pu(2u);
  let sp = wg.x; let s = wg.y / H; let h = wg.y % H;
  let n = seqRows(s); let start = c * ${CHUNK}u;
  if (start >= n) { return; }
  let L = min(${CHUNK}u, n - start); let E = H * D; let width = 3u * E;
  let r0 = seqRow0(s) + start; let base = (seqSlot(s) * H + h) * DD;
  let per = (DD + splits - 1u) / splits; let pa = sp * per; let pb = min(DD, pa + per);
  let tq = l.x / D4; let mq = l.x % D4;
  var acc: array<vec4<f32>, 4>;
  var dacc = vec4<f32>(0.0);
  if (!(seqPos(s) == 0u && c == 0u)) {
    for (var p0 = pa; p0 < pb; p0 += PT) {
      workgroupBarrier();
      for (var e = l.x; e < PT * D4; e += WGS) {
        let p = p0 + e / D4;
        ssh[e] = select(vec4<f32>(0.0), S[(base + min(p, DD - 1u)) * D4 + e % D4], p < pb);
      }
      if (l.x < PT) { nsh[l.x] = select(0.0, N[base + min(p0 + l.x, DD - 1u)], p0 + l.x < pb); }
      for (var e = l.x; e < PT * ${CHUNK}u; e += WGS) {
        let pi = e / ${CHUNK}u; let t = e % ${CHUNK}u;
        let pr = pairs[min(p0 + pi, DD - 1u)]; let a = pr & 0xffffu; let b = pr >> 16u;
        let qo = (r0 + min(t, L - 1u)) * width + h * D;
        fq[pi * ${CHUNK / 4}u + t / 4u][t % 4u] = phiCoef(a, b) * x[qo + a] * x[qo + b];
      }
      workgroupBarrier();
      for (var k = 0u; k < PT; k++) {
        let f = fq[k * ${CHUNK / 4}u + tq]; let sv = ssh[k * D4 + mq];
        acc[0] += f.x * sv; acc[1] += f.y * sv; acc[2] += f.z * sv; acc[3] += f.w * sv;
        dacc += f * nsh[k];
      }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let t = tq * 4u + i;
    if (t < L) {
      let k = ((r0 + t) * H + h) * splits + sp;
      pnum[k * D4 + mq] = acc[i];
      if (mq == 0u) { pden[k] = dacc[i]; }
    }
  }
}`,

  // The state update over a chunk: S ← exp(G_e) S + Σ_t φ(s·k_t)ᵀ exp(G_e − G_t) v_t, n likewise, for a block of
  // ${PBLOCK} state rows p (a [p × rows]·[rows × d] product). 8·d/4 threads own 2 rows × 4 columns each; per tile of 32
  // rows t, φ(s·k_t)·exp(G_e − G_t) and v_t are staged in workgroup memory. Runs after m2_read, which reads the old S.
  // params: heads, chunk.
  m2_update: (d: number) => `${HEADER}${PHI}
${ro(2, 'x', 'vec4<f32>')}
${ro(3, 'G')}
${ro(4, 'pairs', 'u32')}
${rw(5, 'S', 'vec4<f32>')}
${rw(6, 'N')}
const D = ${d}u;
const D4 = ${d / 4}u;
const DD = ${(d * (d + 1)) / 2}u;
const WGS = ${(PBLOCK / 2) * (d / 4)}u;
var<workgroup> fk: array<vec2<f32>, ${32 * (PBLOCK / 2)}>; // φ(s·k_t)·decay [t][p / 2]
var<workgroup> vsh: array<vec4<f32>, ${32 * (d / 4)}>;
@compute @workgroup_size(${(PBLOCK / 2) * (d / 4)}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let c = pu(1u);
  let blk = wg.x; let s = wg.y / H; let h = wg.y % H;
  let n = seqRows(s); let start = c * ${CHUNK}u;
  if (start >= n) { return; }
  let L = min(${CHUNK}u, n - start); let E4 = H * D4; let width4 = 3u * E4;
  let r0 = seqRow0(s) + start; let base = (seqSlot(s) * H + h) * DD;
  let Ge = G[(r0 + L - 1u) * H + h]; let sc2 = 1.0 / f32(D);
  let pq = l.x / D4; let mq = l.x % D4; let pBase = blk * ${PBLOCK}u;
  var acc: array<vec4<f32>, 2>;
  var nacc = vec2<f32>(0.0);
  for (var t0 = 0u; t0 < L; t0 += 32u) {
    workgroupBarrier();
    for (var e = l.x; e < 32u * ${PBLOCK}u; e += WGS) {
      let ti = e / ${PBLOCK}u; let pi = e % ${PBLOCK}u; let t = t0 + ti;
      let pr = pairs[min(pBase + pi, DD - 1u)]; let a = pr & 0xffffu; let b = pr >> 16u;
      let ko = (r0 + min(t, L - 1u)) * width4 + E4 + h * D4;
      let ka = x[ko + a / 4u][a % 4u]; let kb = x[ko + b / 4u][b % 4u];
      let dec = select(0.0, sc2 * exp(Ge - G[(r0 + min(t, L - 1u)) * H + h]), t < L);
      fk[ti * ${PBLOCK / 2}u + pi / 2u][pi % 2u] = phiCoef(a, b) * ka * kb * dec;
    }
    for (var e = l.x; e < 32u * D4; e += WGS) {
      vsh[e] = x[(r0 + min(t0 + e / D4, L - 1u)) * width4 + 2u * E4 + h * D4 + e % D4];
    }
    workgroupBarrier();
    for (var t = 0u; t < 32u; t++) {
      let f = fk[t * ${PBLOCK / 2}u + pq]; let v = vsh[t * D4 + mq];
      acc[0] += f.x * v; acc[1] += f.y * v;
      nacc += f;
    }
  }
  let eg = exp(Ge); let fresh = seqPos(s) == 0u && c == 0u;
  for (var j = 0u; j < 2u; j++) {
    let p = pBase + 2u * pq + j;
    if (p < DD) {
      let si = (base + p) * D4 + mq;
      S[si] = select(eg * S[si], vec4<f32>(0.0), fresh) + acc[j];
      if (mq == 0u) { N[base + p] = select(eg * N[base + p], 0.0, fresh) + nacc[j]; }
    }
  }
}`,

  // Decode (one row per sequence, spec §5.3): S ← a·S + φ(s·k)vᵀ, n ← a·n + φ(s·k) and the partial readouts
  // Σ_p φ(q)_p S_prev[p], Σ_p φ(q)_p n_prev[p] of a block of PB state rows, in one pass over S. First each of PB
  // threads takes one row p: φ(q)_p, φ(s·k)_p into workgroup memory, and that row of n (coalesced, no branch in the
  // S loop). Then d/4 vec4 lanes across the columns × 256/(d/4) row groups stream S: each thread issues its RPT row
  // loads first, then updates them. Partials meet in workgroup memory; m2_combine1 adds the blocks.
  // params: heads, 0, blocks. a = exp(A_t) from logA.
  m2_state1: (d: number, rpt: number) => {
    const { lanes, groups } = m2DecodeShape(d), WGS = lanes * groups, PB = groups * rpt;
    return `${HEADER}${PHI}
${ro(2, 'x')}
${ro(3, 'logA')}
${ro(4, 'pairs', 'u32')}
${rw(5, 'S', 'vec4<f32>')}
${rw(6, 'N')}
${rw(7, 'pnum', 'vec4<f32>')}
${rw(8, 'pden')}
const D = ${d}u;
const DD = ${(d * (d + 1)) / 2}u;
const LANES = ${lanes}u;
const GROUPS = ${groups}u;
const RPT = ${rpt}u;
const PB = ${PB}u;
var<workgroup> fqs: array<f32, ${PB}>;
var<workgroup> fks: array<f32, ${PB}>;
var<workgroup> red: array<vec4<f32>, ${WGS}>;
var<workgroup> redn: array<f32, ${WGS}>;
@compute @workgroup_size(${WGS}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let blocks = pu(2u);
  let blk = wg.x; let s = wg.y / H; let h = wg.y % H; // dispatched with exactly blocks × (sequences × heads) workgroups
  let lane = l.x % LANES; let grp = l.x / LANES;
  let E = H * D; let r = seqRow0(s); let qo = r * 3u * E + h * D; let ko = qo + E;
  let a = exp(logA[r * H + h]); let fresh = seqPos(s) == 0u;
  let base = (seqSlot(s) * H + h) * DD; let pBlk = blk * PB;
  // S loads first, so they are in flight while the row coefficients are formed
  var sv: array<vec4<f32>, ${rpt}>;
  for (var u = 0u; u < RPT; u++) {
    let p = pBlk + grp + u * GROUPS;
    if (p < DD && !fresh) { sv[u] = S[(base + p) * LANES + lane]; }
  }
  var pd = 0.0;
  for (var t = l.x; t < PB; t += ${WGS}u) {
    let p = pBlk + t;
    var fq = 0.0; var fk = 0.0;
    if (p < DD) {
      let pr = pairs[p]; let i = pr & 0xffffu; let j = pr >> 16u;
      let cp = phiCoef(i, j);
      fq = cp * x[qo + i] * x[qo + j]; fk = cp * x[ko + i] * x[ko + j] / f32(D);
      let nOld = select(N[base + p], 0.0, fresh);
      pd += fq * nOld;
      N[base + p] = a * nOld + fk;
    }
    fqs[t] = fq; fks[t] = fk;
  }
  redn[l.x] = pd;
  workgroupBarrier();
  let vo = ko + E + 4u * lane; let v4 = vec4<f32>(x[vo], x[vo + 1u], x[vo + 2u], x[vo + 3u]);
  var part = vec4<f32>(0.0);
  for (var u = 0u; u < RPT; u++) {
    let t = grp + u * GROUPS; let p = pBlk + t;
    if (p < DD) {
      part += fqs[t] * sv[u];
      S[(base + p) * LANES + lane] = a * sv[u] + fks[t] * v4;
    }
  }
  red[l.x] = part;
  workgroupBarrier();
  let k = (r * H + h) * blocks + blk;
  if (grp == 0u) {
    var t = vec4<f32>(0.0);
    for (var g = 0u; g < GROUPS; g++) { t += red[g * LANES + lane]; }
    pnum[k * LANES + lane] = t;
  }
  if (l.x == 0u) {
    var t = 0.0;
    for (var g = 0u; g < ${Math.min(WGS, PB)}u; g++) { t += redn[g]; }
    pden[k] = t;
  }
}`;
  },

  // Decode readout: y = (a·Σ_blocks φ(q)ᵀS_prev + w·v) / max(a·Σ φ(q)ᵀn_prev + w, floor), w = (s·q·k)²: the current
  // token's term in score space (spec §5.3, as the CPU's mamba2Step). params: heads, 0, blocks.
  m2_combine1: (d: number) => `${HEADER}
${ro(2, 'x')}
${ro(3, 'logA')}
${ro(4, 'pnum')}
${ro(5, 'pden')}
${rw(6, 'outp')}
const D = ${d}u;
var<workgroup> rnum: array<f32, ${4 * d}>;
var<workgroup> rden: array<f32, ${4 * d}>;
@compute @workgroup_size(${4 * d}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let blocks = pu(2u);
  let s = wg.y / H; let h = wg.y % H; let m = l.x % D; let part = l.x / D; // 4 threads per column split the blocks
  let E = H * D; let r = seqRow0(s); let qo = r * 3u * E + h * D; let ko = qo + E; let k = r * H + h;
  var num = 0.0; var den = 0.0;
  for (var b = part; b < blocks; b += 4u) { num += pnum[(k * blocks + b) * D + m]; den += pden[k * blocks + b]; }
  rnum[l.x] = num; rden[l.x] = den;
  workgroupBarrier();
  if (part != 0u) { return; }
  num = rnum[m] + rnum[m + D] + rnum[m + 2u * D] + rnum[m + 3u * D];
  den = rden[m] + rden[m + D] + rden[m + 2u * D] + rden[m + 3u * D];
  var qk = 0.0;
  for (var i = 0u; i < D; i++) { qk += x[qo + i] * x[ko + i]; }
  let w = qk * qk / f32(D);
  let a = exp(logA[k]);
  outp[r * E + h * D + m] = (a * num + w * x[ko + E + m]) / max(a * den + w, 1e-30);
}`,

  // y_i = (exp(G_i)·Σ_blocks φ(q_i)ᵀS_prev + intra) / max(exp(G_i)·Σ φ(q_i)ᵀn_prev + intra_den, floor). params: heads, chunk, blocks.
  m2_combine: (d: number) => `${HEADER}
${ro(2, 'G')}
${ro(3, 'inum')}
${ro(4, 'iden')}
${ro(5, 'pnum')}
${ro(6, 'pden')}
${rw(7, 'outp')}
const D = ${d}u;
@compute @workgroup_size(${d}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let c = pu(1u); let blocks = pu(2u);
  let i = wg.x; let s = wg.y / H; let h = wg.y % H;
  if (s >= nSeqs()) { return; }
  let n = seqRows(s); let start = c * ${CHUNK}u;
  if (start + i >= n) { return; }
  let r = seqRow0(s) + start + i; let m = l.x; let k = r * H + h;
  var num = 0.0; var den = 0.0;
  for (var b = 0u; b < blocks; b++) { num += pnum[(k * blocks + b) * D + m]; den += pden[k * blocks + b]; }
  let eg = exp(G[k]);
  outp[r * H * D + h * D + m] = (eg * num + inum[k * D + m]) / max(eg * den + iden[k], 1e-30);
}`,
};
