// WGSL for every operation of the CPU backend (kernels/cpu/ops.ts is the reference). Each kernel reads its scalars
// from a 64-byte uniform block (dynamic offset) and the step's layout from `meta`:
//   stepMeta[0] sequences, stepMeta[1] rows, stepMeta[2] row table base, stepMeta[3] page table base,
//   stepMeta[8 + 6s …] per sequence: slot, pos, rows, first row, page-table offset, pages;
//   stepMeta[rowBase + 2r …] per row: its sequence, its index in the sequence.
// Reductions use workgroup memory only, so results do not depend on the subgroup size (8 on lavapipe, 32 on NVIDIA).
import type { WeightDType } from '../backend.js';

export const WG = 64;        // threads per workgroup for row/column kernels
export const NORM_WG = 256;  // threads per workgroup for reductions over a row
export const CHUNK = 64;     // 2Mamba prefill chunk (rows)
export const PBLOCK = 32;    // 2Mamba state rows (p) per workgroup
export const MM_R = 4;       // matmul rows per workgroup
export const MM_C = 4;       // matmul columns per workgroup
export const SPLIT_K = 256;  // keys per attention workgroup (flash-decoding split)

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

/** Body of w8(): the 8 weights of column c at k = 8·k8 … 8·k8 + 7. */
const W8: Record<WeightDType, string> = {
  f32: `  let a = w[(c * K8 + k8) * 2u]; let b = w[(c * K8 + k8) * 2u + 1u];
  o[0] = a.x; o[1] = a.y; o[2] = a.z; o[3] = a.w; o[4] = b.x; o[5] = b.y; o[6] = b.z; o[7] = b.w;`,
  f16: `  let q = w[c * K8 + k8];
  for (var i = 0u; i < 4u; i++) { let h = unpack2x16float(q[i]); o[2u * i] = h.x; o[2u * i + 1u] = h.y; }`,
  bf16: `  let q = w[c * K8 + k8];
  for (var i = 0u; i < 4u; i++) { o[2u * i] = bitcast<f32>(q[i] << 16u); o[2u * i + 1u] = bitcast<f32>(q[i] & 0xffff0000u); }`,
};

/** Bindings shared by the two 2Mamba state-update kernels (chunked and decode). */
const m2StateBindings = (d: number) => `${ro(2, 'x')}
${ro(3, 'G')}
${ro(4, 'pairs', 'u32')}
${rw(5, 'S')}
${rw(6, 'N')}
${rw(7, 'pnum')}
${rw(8, 'pden')}
const D = ${d}u;
const DD = ${(d * (d + 1)) / 2}u;`;

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

  // params: dim, eps, perSeq
  rmsnorm: () => `${HEADER}
${ro(2, 'x')}
${ro(3, 'wt')}
${rw(4, 'outp')}
var<workgroup> red: array<f32, ${NORM_WG}>;
@compute @workgroup_size(${NORM_WG}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let r = wg.x; let dim = pu(0u); // dispatched with exactly rows() workgroups (no early return before the barrier)
  var ss = 0.0;
  for (var i = l.x; i < dim; i += ${NORM_WG}u) { let v = x[r * dim + i]; ss += v * v; }
  red[l.x] = ss;
  workgroupBarrier();
  for (var s = ${NORM_WG / 2}u; s > 0u; s >>= 1u) { if (l.x < s) { red[l.x] += red[l.x + s]; } workgroupBarrier(); }
  let inv = 1.0 / sqrt(red[0] / f32(dim) + pf(1u));
  for (var i = l.x; i < dim; i += ${NORM_WG}u) { outp[r * dim + i] = wt[i] * (x[r * dim + i] * inv); }
}`,

  // params: K, N, add, perSeq. out[r, n] (+)= Σ_k x[r, k] W[n, k]; a workgroup: ${MM_R} rows × ${MM_C} columns, K split over
  // threads in groups of 8 (16-bit weights: one vec4<u32> load = 8 halves; f32: two vec4<f32>). Requires K % 8 == 0.
  matmul: (dtype: WeightDType) => `${HEADER}
@group(0) @binding(2) var<storage, read> w: array<${dtype === 'f32' ? 'vec4<f32>' : 'vec4<u32>'}>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
${rw(4, 'outp')}
${ROWS(3)}
fn w8(c: u32, k8: u32, K8: u32) -> array<f32, 8> {
  var o: array<f32, 8>;
${W8[dtype]}
  return o;
}
var<workgroup> red: array<f32, ${WG * MM_R * MM_C}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let K = pu(0u); let N = pu(1u); let R = rows(); let K8 = K / 8u;
  let c0 = wg.x * ${MM_C}u; let r0 = wg.y * ${MM_R}u;
  var acc: array<f32, ${MM_R * MM_C}>;
  for (var k8 = l.x; k8 < K8; k8 += ${WG}u) {
    var xs: array<array<f32, 8>, ${MM_R}>;
    for (var a = 0u; a < ${MM_R}u; a++) {
      let rr = min(r0 + a, R - 1u);
      let lo = x[(rr * K8 + k8) * 2u]; let hi = x[(rr * K8 + k8) * 2u + 1u];
      let live = select(0.0, 1.0, r0 + a < R);
      xs[a] = array<f32, 8>(lo.x * live, lo.y * live, lo.z * live, lo.w * live, hi.x * live, hi.y * live, hi.z * live, hi.w * live);
    }
    for (var b = 0u; b < ${MM_C}u; b++) {
      if (c0 + b < N) {
        let wv = w8(c0 + b, k8, K8);
        for (var a = 0u; a < ${MM_R}u; a++) {
          var sum = 0.0;
          for (var i = 0u; i < 8u; i++) { sum += xs[a][i] * wv[i]; }
          acc[a * ${MM_C}u + b] += sum;
        }
      }
    }
  }
  for (var i = 0u; i < ${MM_R * MM_C}u; i++) { red[i * ${WG}u + l.x] = acc[i]; }
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (l.x < s) { for (var i = 0u; i < ${MM_R * MM_C}u; i++) { red[i * ${WG}u + l.x] += red[i * ${WG}u + l.x + s]; } }
    workgroupBarrier();
  }
  if (l.x < ${MM_R * MM_C}u) {
    let a = l.x / ${MM_C}u; let b = l.x % ${MM_C}u;
    if (r0 + a < R && c0 + b < N) {
      let o = (r0 + a) * N + c0 + b; let v = red[l.x * ${WG}u];
      outp[o] = select(v, outp[o] + v, pu(2u) == 1u);
    }
  }
}`,

  // params: n. out[r, i] = silu(x[r, i]) · x[r, n + i]
  silu_mul: () => `${HEADER}
${ro(2, 'x')}
${rw(3, 'outp')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let n = pu(0u); let i = g.x + g.y * 65535u * ${WG}u;
  if (i >= nRows() * n) { return; }
  let r = i / n; let c = i % n;
  let gt = x[r * 2u * n + c];
  outp[i] = gt / (1.0 + exp(-gt)) * x[r * 2u * n + n + c];
}`,

  // params: n. out = −softplus(x) = −(max(x, 0) + log1p(exp(−|x|)))
  logdecay: () => `${HEADER}
${ro(2, 'x')}
${rw(3, 'outp')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= nRows() * pu(0u)) { return; }
  let z = x[i]; let e = exp(-abs(z));
  // log1p(e) for small e without cancellation
  let l1p = select(log(1.0 + e), e * (1.0 - e * (0.5 - e / 3.0)), e < 1e-4);
  outp[i] = -(max(z, 0.0) + l1p);
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

  // params: ch. One thread per (sequence, channel) walks the sequence's rows; state[slot] keeps the last raw row.
  conv2: () => `${HEADER}
${ro(2, 'x')}
${rw(3, 'st')}
${ro(4, 'wt')}
${ro(5, 'bias')}
${rw(6, 'outp')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let ch = pu(0u); let i = g.x;
  if (i >= nSeqs() * ch) { return; }
  let s = i / ch; let c = i % ch; let slot = seqSlot(s);
  var prev = select(0.0, st[slot * ch + c], seqPos(s) > 0u);
  let w0 = wt[2u * c]; let w1 = wt[2u * c + 1u]; let b = bias[c];
  let r0 = seqRow0(s); let n = seqRows(s);
  for (var t = 0u; t < n; t++) {
    let cur = x[(r0 + t) * ch + c];
    outp[(r0 + t) * ch + c] = b + w0 * prev + w1 * cur;
    prev = cur;
  }
  if (n > 0u) { st[slot * ch + c] = prev; }
}`,

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
  let sp = wg.x; let r = wg.y / H; let h = wg.y % H; // dispatched with exactly splits × (rows × heads) workgroups
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
  m2_intra: (d: number) => `${HEADER}
${ro(2, 'x')}
${ro(3, 'logA')}
${rw(4, 'G')}
${rw(5, 'inum')}
${rw(6, 'iden')}
const D = ${d}u;
var<workgroup> gs: array<f32, ${CHUNK}>;
@compute @workgroup_size(${CHUNK}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let c = pu(1u); let s = wg.x / H; let h = wg.x % H; // wg.x < sequences × heads
  let n = seqRows(s); let start = c * ${CHUNK}u;
  let L = select(0u, min(${CHUNK}u, n - start), start < n); let i = l.x; let E = H * D; let width = 3u * E;
  let r0 = seqRow0(s) + start;
  if (i == 0u) {
    var acc = 0.0;
    for (var t = 0u; t < L; t++) { acc += logA[(r0 + t) * H + h]; gs[t] = acc; }
  }
  workgroupBarrier();
  if (i >= L) { return; }
  let sc = 1.0 / sqrt(f32(D));
  let qo = (r0 + i) * width + h * D;
  var num: array<f32, ${d}>;
  var den = 0.0;
  for (var j = 0u; j <= i; j++) {
    let ko = (r0 + j) * width + E + h * D;
    var dot = 0.0;
    for (var m = 0u; m < D; m++) { dot += x[qo + m] * x[ko + m]; }
    let w = exp(gs[i] - gs[j]) * (sc * dot) * (sc * dot);
    den += w;
    for (var m = 0u; m < D; m++) { num[m] += w * x[ko + E + m]; }
  }
  G[(r0 + i) * H + h] = gs[i];
  iden[(r0 + i) * H + h] = den;
  for (var m = 0u; m < D; m++) { inum[((r0 + i) * H + h) * D + m] = num[m]; }
}`,

  // Inter-chunk readout with the state carried in, then the state update, for a block of ${PBLOCK} state rows p.
  // params: heads, chunk index, blocks. Thread m owns column m; thread 0 also carries n. A sequence at pos 0 starts from 0.
  m2_state: (d: number) => `${HEADER}
${m2StateBindings(d)}
@compute @workgroup_size(${d}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let c = pu(1u); let blocks = pu(2u);
  let blk = wg.x; let s = wg.y / H; let h = wg.y % H;
  if (s >= nSeqs()) { return; }
  let n = seqRows(s); let start = c * ${CHUNK}u;
  if (start >= n) { return; }
  let L = min(${CHUNK}u, n - start); let m = l.x; let E = H * D; let width = 3u * E;
  let r0 = seqRow0(s) + start; let sc = 1.0 / sqrt(f32(D));
  let fresh = seqPos(s) == 0u && c == 0u;
  let base = (seqSlot(s) * H + h) * DD;
  let Ge = G[(r0 + L - 1u) * H + h]; let eg = exp(Ge);
  var part: array<f32, ${CHUNK}>;
  var pd: array<f32, ${CHUNK}>;
  var dec: array<f32, ${CHUNK}>; // exp(G_e − G_t), once per row t instead of once per (p, t)
  for (var t = 0u; t < L; t++) { dec[t] = sc * sc * exp(Ge - G[(r0 + t) * H + h]); }
  for (var p = blk * ${PBLOCK}u; p < min(DD, (blk + 1u) * ${PBLOCK}u); p++) {
    let pr = pairs[p]; let a = pr & 0xffffu; let b = pr >> 16u;
    let cp = select(1.41421356237309515, 1.0, a == b);
    let sOld = select(S[(base + p) * D + m], 0.0, fresh);
    let nOld = select(N[base + p], 0.0, fresh);
    var upd = 0.0; var updn = 0.0;
    for (var t = 0u; t < L; t++) {
      let qo = (r0 + t) * width + h * D; let ko = qo + E;
      let fq = cp * x[qo + a] * x[qo + b];
      part[t] += fq * sOld;
      pd[t] += fq * nOld;
      let fk = cp * x[ko + a] * x[ko + b] * dec[t];
      upd += fk * x[ko + E + m];
      updn += fk;
    }
    S[(base + p) * D + m] = eg * sOld + upd;
    if (m == 0u) { N[base + p] = eg * nOld + updn; }
  }
  for (var t = 0u; t < L; t++) {
    pnum[(((r0 + t) * H + h) * blocks + blk) * D + m] = part[t];
    if (m == 0u) { pden[((r0 + t) * H + h) * blocks + blk] = pd[t]; }
  }
}`,

  // Decode (one row per sequence): the same update with scalar accumulators (no per-row arrays in private memory).
  // y's feature-space part a·φ(q)ᵀS_prev, n likewise; a = exp(G) = exp(A_t). params: heads, chunk (0), blocks.
  m2_state1: (d: number) => `${HEADER}
${m2StateBindings(d)}
@compute @workgroup_size(${d}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = pu(0u); let blocks = pu(2u);
  let blk = wg.x; let s = wg.y / H; let h = wg.y % H;
  if (s >= nSeqs()) { return; }
  let m = l.x; let E = H * D; let r = seqRow0(s);
  let qo = r * 3u * E + h * D; let ko = qo + E;
  let sc2 = 1.0 / f32(D);
  let fresh = seqPos(s) == 0u;
  let base = (seqSlot(s) * H + h) * DD;
  let a = exp(G[r * H + h]); let vm = x[ko + E + m];
  var part = 0.0; var pd = 0.0;
  for (var p = blk * ${PBLOCK}u; p < min(DD, (blk + 1u) * ${PBLOCK}u); p++) {
    let pr = pairs[p]; let i = pr & 0xffffu; let j = pr >> 16u;
    let cp = select(1.41421356237309515, 1.0, i == j);
    let fq = cp * x[qo + i] * x[qo + j];
    let fk = cp * x[ko + i] * x[ko + j] * sc2;
    let si = (base + p) * D + m;
    let sOld = select(S[si], 0.0, fresh);
    part += fq * sOld;
    S[si] = a * sOld + fk * vm;
    if (m == 0u) {
      let nOld = select(N[base + p], 0.0, fresh);
      pd += fq * nOld;
      N[base + p] = a * nOld + fk;
    }
  }
  pnum[((r * H + h) * blocks + blk) * D + m] = part;
  if (m == 0u) { pden[(r * H + h) * blocks + blk] = pd; }
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
