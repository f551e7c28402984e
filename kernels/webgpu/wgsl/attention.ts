// Attention over the paged KV cache (softmax and 2Mamba-E, spec/2mamba.md §6): the KV append (and 2Mamba-E's
// cumulative decays), split-K decode attention, tiled (flash) prefill attention, and the reduce that finishes both.
// CPU twin: kernels/cpu/attention.ts.
import type { KvDType, Step } from '../../backend.js';
import { DEN_FLOOR, type Op } from '../../ops.js';
import {
  type Dispatch,
  type DispatchContext,
  type Family,
  type Kernel,
  defineParams,
  dispatch,
  header,
  ro,
  rw,
  variant,
  wgFor,
  WG,
  WG_INDEX,
  workgroupCumsum,
} from './common.js';
import { attnMmaFits, attnMmaSource } from './attention-tc.js';
import { attentionGroups, takesTiles, TILE_MIN_ROWS, TILE_ROWS, tileRange } from './meta.js';
import { ATTN_TILE_RANGE } from '../tuning.js';

export const SPLIT_K = 256; // keys per attention workgroup (flash-decoding split); also its threads
export const TILE_KEYS = 32; // keys per tile the tiled attention loads into workgroup memory

/** Values per 16-byte load of a KV cache: 4 f32 or 8 f16. */
const unitVec4s = (kv: KvDType) => (kv === 'f32' ? 1 : 2);

/** Bindings of the K and V caches with readers in f32: `K4(i)` / `V4(i)` the i-th 4 values, `KU(i)` / `VU(i)` the i-th
 *  16-byte unit as ${'`W`'} vec4s (W = 1 for f32, 2 for f16). */
function kvReaders(bk: number, bv: number, kv: KvDType): string {
  if (kv === 'f32')
    return `${ro(bk, 'kc', 'vec4<f32>')}
${ro(bv, 'vc', 'vec4<f32>')}
fn K4(i: u32) -> vec4<f32> { return kc[i]; }
fn V4(i: u32) -> vec4<f32> { return vc[i]; }
fn KU(i: u32) -> array<vec4<f32>, 1> { return array<vec4<f32>, 1>(kc[i]); }
fn VU(i: u32) -> array<vec4<f32>, 1> { return array<vec4<f32>, 1>(vc[i]); }`;
  const h4 = (w: string) => `vec4<f32>(unpack2x16float(${w}.x), unpack2x16float(${w}.y))`;
  const one = (a: string) => `let w = ${a}[i >> 1u]; return ${h4('select(w.xy, w.zw, (i & 1u) == 1u)')};`;
  const unit = (a: string) => `let w = ${a}[i]; return array<vec4<f32>, 2>(${h4('w.xy')}, ${h4('w.zw')});`;
  return `${ro(bk, 'kc', 'vec4<u32>')}
${ro(bv, 'vc', 'vec4<u32>')}
fn K4(i: u32) -> vec4<f32> { ${one('kc')} }
fn V4(i: u32) -> vec4<f32> { ${one('vc')} }
fn KU(i: u32) -> array<vec4<f32>, 2> { ${unit('kc')} }
fn VU(i: u32) -> array<vec4<f32>, 2> { ${unit('vc')} }`;
}

/** useC: 2Mamba-E (ℓ += C_pos − C_j); splits: the partials' stride per row (the most key ranges a row has); rowBase,
 *  splitBase, tileBase: the first row, split-K row and tile of this group of the step's rows (attentionGroups: the
 *  partials hold the group's rows from rowBase on). */
export const ATTN_PARAMS = defineParams({
  heads: 'u32',
  kvHeads: 'u32',
  headDim: 'u32',
  pageSize: 'u32',
  useC: 'u32',
  splits: 'u32',
  rowBase: 'u32',
  splitBase: 'u32',
  tileBase: 'u32',
});

// K and V of each row into its page slot: one thread per value (f32) or per pair of values (f16, packed).
const kvAppendSource = (kv: KvDType) => {
  const n = kv === 'f32' ? 1 : 2; // values per thread (and per stored word)
  const put = (a: string, off: string) =>
    kv === 'f32'
      ? `${a}[at] = x[r * width + ${off} + e];`
      : `${a}[at] = pack2x16float(vec2<f32>(x[r * width + ${off} + e], x[r * width + ${off} + e + 1u]));`;
  return `${header(ATTN_PARAMS)}
${ro(2, 'x')}
${rw(3, 'kc', kv === 'f32' ? 'f32' : 'u32')}
${rw(4, 'vc', kv === 'f32' ? 'f32' : 'u32')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let H = prm.heads; let Hkv = prm.kvHeads; let d = prm.headDim; let P = prm.pageSize;
  let i = (${WG_INDEX}) * ${n}u;
  if (i >= nRows() * Hkv * d) { return; }
  let r = i / (Hkv * d); let e = i % (Hkv * d);
  let s = rowSeq(r); let pos = seqPos(s) + rowT(r);
  let at = ((seqPage(s, pos / P) * P + pos % P) * Hkv * d + e) / ${n}u;
  let width = (H + 2u * Hkv) * d;
  ${put('kc', 'H * d')}
  ${put('vc', '(H + Hkv) * d')}
}`;
};

// C_pos = C_{pos−1} + A_pos per (sequence, head), walking the sequence's rows.
const kvCumsumSource = () => `${header(ATTN_PARAMS)}
${ro(2, 'logA')}
${rw(3, 'cc')}
var<workgroup> tot: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let P = prm.pageSize; let s = wg.x / H; let h = wg.x % H; let p0 = seqPos(s);
  var c0 = 0.0;
  if (p0 > 0u) { c0 = cc[(seqPage(s, (p0 - 1u) / P) * P + (p0 - 1u) % P) * H + h]; }
${workgroupCumsum(
  'seqRows(s)',
  (t) => `logA[(seqRow0(s) + ${t}) * H + h]`,
  (t, run) => `let pos = p0 + ${t}; cc[(seqPage(s, pos / P) * P + pos % P) * H + h] = ${run};`,
  'c0',
)}
}`;

// Split-K (flash-decoding) attention, pass 1: one workgroup of ${SPLIT_K} threads per (key range of ${SPLIT_K}, row,
// head), reading K and V coalesced (kernels.md §5.10). Thread t first finds key t's cache slot (one page-table walk
// per key, kept in workgroup memory; keys past the range reuse its last slot, so every loop below has a fixed trip
// count and no branch around its loads, and the loads of one thread are all in flight together). Scores: LK lanes per key, each a strided share of the key's vec4s (a warp's
// load covers whole 32-byte sectors), partial dots summed in workgroup memory. Max and sum in two levels (16 partial
// (max, Σe) pairs merged as in online softmax), so few barriers. Σ e^{ℓ−max}·v: D/4 lanes per key (one vec4 each),
// groups of keys summed in workgroup memory → the range's (max, sum, Σ e^{ℓ−max}·v). ℓ_j = s·q·k_j (+ C_pos − C_j).
const attentionSource = (d: number, kv: KvDType) => {
  const D4 = d / 4,
    W = unitVec4s(kv), // vec4s per 16-byte load
    DU = D4 / W, // loads per key
    LK = [4, 2, 1].find((n) => DU % n === 0)!,
    T = SPLIT_K,
    G = 16; // partial (max, sum) pairs of the two-level reduction, T / G keys each
  return `${header(ATTN_PARAMS)}
${ro(2, 'x', 'vec4<f32>')}
${kvReaders(3, 4, kv)}
${ro(5, 'cc')}
${rw(6, 'po', 'vec4<f32>')}
${rw(7, 'pml')}
const D4 = ${D4}u; const W = ${W}u; const DU = ${DU}u; const LK = ${LK}u; const PK = ${T / LK}u; const VG = ${T / DU}u;
var<workgroup> slot: array<u32, ${T}>;
var<workgroup> part: array<f32, ${T * LK}>;
var<workgroup> lgs: array<f32, ${T}>;
var<workgroup> gm: array<f32, ${G}>;
var<workgroup> gz: array<f32, ${G}>;
var<workgroup> vacc: array<vec4<f32>, ${T * W}>;
@compute @workgroup_size(${T}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let Hkv = prm.kvHeads; let P = prm.pageSize; let useC = prm.useC == 1u; let splits = prm.splits;
  let sp = wg.x; let r = splitRow(prm.splitBase + wg.y / H); let h = wg.y % H; // splits × (group's split-K rows × heads)
  let s = rowSeq(r); let pos = seqPos(s) + rowT(r);
  let j0 = sp * ${T}u; let j1 = min(pos + 1u, j0 + ${T}u);
  if (j0 >= j1) { return; } // a range past this row's position (uniform over the workgroup): the reduce skips it
  let g = h / (H / Hkv); let t = l.x; let j = j0 + t;
  let jc = min(j, j1 - 1u);
  slot[t] = seqPage(s, jc / P) * P + jc % P;
  let q0 = r * (H + 2u * Hkv) * D4 + h * D4; let scale = 1.0 / sqrt(f32(D4 * 4u));
  let c = t % LK; let kk = t / LK;
  var q: array<vec4<f32>, ${D4 / LK}>; // lane c's loads c + i·LK of the key, W vec4s each
  for (var i = 0u; i < DU / LK; i++) {
    for (var w = 0u; w < W; w++) { q[i * W + w] = x[q0 + (c + i * LK) * W + w] * scale; }
  }
  workgroupBarrier();
  // scores: thread t is lane t % LK of key t / LK (+ PK per pass)
  for (var p = 0u; p < LK; p++) {
    let k = p * PK + kk;
    let o = (slot[k] * Hkv + g) * DU + c;
    var dt = 0.0;
    for (var i = 0u; i < DU / LK; i++) {
      let u = KU(o + i * LK);
      for (var w = 0u; w < W; w++) { dt += dot(q[i * W + w], u[w]); }
    }
    part[k * LK + c] = dt; // keys past the range: masked below
  }
  workgroupBarrier();
  // thread t: key j
  var lg = -3.0e38;
  if (j < j1) {
    lg = 0.0;
    for (var i = 0u; i < LK; i++) { lg += part[t * LK + i]; }
    if (useC) { lg += cc[(seqPage(s, pos / P) * P + pos % P) * H + h] - cc[slot[t] * H + h]; }
  }
  lgs[t] = lg;
  workgroupBarrier();
  if (t < ${G}u) {
    var m = -3.0e38;
    for (var i = 0u; i < ${T / G}u; i++) { m = max(m, lgs[t * ${T / G}u + i]); }
    var z = 0.0;
    for (var i = 0u; i < ${T / G}u; i++) { let v = lgs[t * ${T / G}u + i]; z += select(0.0, exp(v - m), v > -1.0e38); }
    gm[t] = m; gz[t] = z;
  }
  workgroupBarrier();
  var M = -3.0e38;
  for (var i = 0u; i < ${G}u; i++) { M = max(M, gm[i]); }
  lgs[t] = select(0.0, exp(lg - M), j < j1); // now e_j
  workgroupBarrier();
  // Σ e·v: thread t is load t % DU of keys t / DU + VG·n
  let mu = t % DU;
  var a: array<vec4<f32>, ${W}>;
  for (var n = 0u; n < DU; n++) {
    let k = t / DU + n * VG; // e_k = 0 past the range
    let u = VU((slot[k] * Hkv + g) * DU + mu);
    for (var w = 0u; w < W; w++) { a[w] += lgs[k] * u[w]; }
  }
  for (var w = 0u; w < W; w++) { vacc[t * W + w] = a[w]; }
  workgroupBarrier();
  let o = ((r - prm.rowBase) * H + h) * splits + sp;
  if (t < D4) { // thread t: output vec4 t
    var sum = vec4<f32>(0.0);
    for (var i = 0u; i < VG; i++) { sum += vacc[i * D4 + t]; }
    po[o * D4 + t] = sum;
  }
  if (t == 0u) {
    var Z = 0.0;
    for (var i = 0u; i < ${G}u; i++) { Z += gz[i] * exp(gm[i] - M); }
    pml[2u * o] = M; pml[2u * o + 1u] = Z;
  }
}`;
};

// Tiled (flash-attention) prefill, pass 1 (kernels.md §5.11): one workgroup per (key range of ATTN_TILE_RANGE, tile of ${TILE_ROWS}
// rows of one sequence, head); thread i owns query row i (q and its running output in registers). Key tiles of
// ${TILE_KEYS} are loaded coalesced into workgroup memory and read by every row (K/V come from memory once per tile
// of rows, not once per row). Online softmax per row; writes the same (max, sum, Σ e^{ℓ−max}·v) partials as the
// split-K kernel, so attn_reduce finishes both.
const attnTileSource = (d: number, kv: KvDType) => `${header(ATTN_PARAMS)}
${ro(2, 'x', 'vec4<f32>')}
${kvReaders(3, 4, kv)}
${ro(5, 'cc')}
${rw(6, 'po', 'vec4<f32>')}
${rw(7, 'pml')}
const D4 = ${d / 4}u;
const BC = ${TILE_KEYS}u;
var<workgroup> ks: array<vec4<f32>, ${TILE_KEYS * (d / 4)}>;
var<workgroup> vs: array<vec4<f32>, ${TILE_KEYS * (d / 4)}>;
var<workgroup> cs: array<f32, ${TILE_KEYS}>;
@compute @workgroup_size(${TILE_ROWS}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
${tileRange(ATTN_TILE_RANGE)}
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
        kv = K4(o); vv = V4(o);
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
  let k = ((r - prm.rowBase) * H + h) * splits + sp;
  for (var m = 0u; m < D4; m++) { po[k * D4 + m] = acc[m]; }
  pml[2u * k] = mx; pml[2u * k + 1u] = z;
}`;

// Split-K attention, pass 2: y = Σ_s e^{m_s − M} o_s / Σ_s e^{m_s − M} l_s over the row's ranges.
const attnReduceSource = (d: number) => `${header(ATTN_PARAMS)}
${ro(2, 'po')}
${ro(3, 'pml')}
${rw(4, 'outp')}
const D = ${d}u;
@compute @workgroup_size(${d}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let splits = prm.splits;
  let r = prm.rowBase + wg.x; let h = wg.y; let m = l.x; // the group's rows
  let pos = seqPos(rowSeq(r)) + rowT(r);
  // the row's ranges: of ATTN_TILE_RANGE keys where its sequence took the tiled kernel, else of SPLIT_K
  let n = pos / select(${SPLIT_K}u, ${ATTN_TILE_RANGE}u, seqRows(rowSeq(r)) >= ${TILE_MIN_ROWS}u) + 1u;
  let k0 = (wg.x * H + h) * splits;
  var M = -3.0e38;
  for (var sp = 0u; sp < n; sp++) { M = max(M, pml[2u * (k0 + sp)]); }
  var Z = 0.0; var o = 0.0;
  for (var sp = 0u; sp < n; sp++) {
    let f = exp(pml[2u * (k0 + sp)] - M);
    Z += f * pml[2u * (k0 + sp) + 1u];
    o += f * po[(k0 + sp) * D + m];
  }
  outp[r * H * D + h * D + m] = o / Z;
}`;

type D = { d: number; kv: KvDType };
const kernel = (
  name: string,
  bindings: Kernel<D>['bindings'],
  source: (d: number, kv: KvDType) => string,
): Kernel<D> & { params: typeof ATTN_PARAMS } => ({
  name,
  params: ATTN_PARAMS,
  bindings,
  source: (v) => source(v.d, v.kv),
});
const kvAppend: Kernel<{ kv: KvDType }> & { params: typeof ATTN_PARAMS } = {
  name: 'kv_append',
  params: ATTN_PARAMS,
  bindings: () => ['ro', 'rw', 'rw'],
  source: (v) => kvAppendSource(v.kv),
};
const kvCumsum: Kernel<object> & { params: typeof ATTN_PARAMS } = {
  name: 'kv_cumsum',
  params: ATTN_PARAMS,
  bindings: () => ['ro', 'rw'],
  source: () => kvCumsumSource(),
};
const PARTIALS: ('ro' | 'rw')[] = ['ro', 'ro', 'ro', 'ro', 'rw', 'rw'];
const attnSplit = kernel('attention', () => PARTIALS, attentionSource);
const attnTile = kernel('attn_tile', () => PARTIALS, attnTileSource);
/** attn_tile on tensor cores (attention-tc.ts), for head dims 32 and 64. */
const attnMma: Kernel<D & { emulate: boolean }> & { params: typeof ATTN_PARAMS } = {
  name: 'attn_mma',
  params: ATTN_PARAMS,
  bindings: () => PARTIALS,
  source: (v) => attnMmaSource(header(ATTN_PARAMS), v.d, { kind: 'cache', kv: v.kv }, v.emulate, ATTN_TILE_RANGE),
};
const attnReduce: Kernel<{ d: number }> & { params: typeof ATTN_PARAMS } = {
  name: 'attn_reduce',
  params: ATTN_PARAMS,
  bindings: () => ['ro', 'ro', 'rw'],
  source: (v) => attnReduceSource(v.d),
};
const KV_DTYPES: readonly KvDType[] = ['f32', 'f16'];

/** The KV cache's dtype, from the K buffer's storage. */
function kvOf(c: DispatchContext, k: string): KvDType {
  const s = c.storage(k);
  if (s === 'bf16') throw new Error(`attention: the KV cache ${k} is bf16; f32 and f16 are supported`);
  return s;
}

/** Key ranges of SPLIT_K the longest row of the step attends over. A decode step rounds them up to a power of two
 *  (ranges past a row's position exit at once), so its recording is reused while contexts grow; a step with prefill
 *  tiles keeps the exact count (its partials scale with rows × ranges). */
export function attentionSplits(step: Step): number {
  const n = Math.max(1, ...step.seqs.map((s) => Math.ceil((s.pos + s.rows) / SPLIT_K)));
  return step.seqs.some(takesTiles) ? n : 2 ** Math.ceil(Math.log2(n));
}

export const attentionFamily: Family = {
  ops: ['kv_append', 'attention'],
  /** The grid depends on how many key ranges the longest row spans. */
  shapeKey: (step) => String(attentionSplits(step)),
  dispatch(op: Op, c: DispatchContext): Dispatch[] {
    if (op.op === 'kv_append') {
      const { heads, kvHeads, headDim } = op.layout,
        pageSize = op.pageSize,
        kv = kvOf(c, op.k);
      const out = [
        dispatch(
          kvAppend,
          { kv },
          [op.qkv, op.k, op.v],
          { heads, kvHeads, headDim, pageSize },
          wgFor((c.rows * kvHeads * headDim) / (kv === 'f16' ? 2 : 1)),
        ),
      ];
      if (op.c && op.logA) out.push(dispatch(kvCumsum, {}, [op.logA, op.c], { heads, pageSize }, [c.seqs * heads, 1]));
      return out;
    }
    if (op.op !== 'attention') throw new Error(`attention family: no op ${op.op}`);
    const { heads, kvHeads, headDim: d } = op.layout,
      v = { d, kv: kvOf(c, op.k) };
    if (d % 8 || SPLIT_K % (d / 4)) throw new Error(`attention: head dim ${d} must be 8·2^k, at most ${4 * SPLIT_K}`);
    const splits = attentionSplits(c.step),
      tileSplits = Math.ceil(
        Math.max(1, ...c.step.seqs.filter(takesTiles).map((s) => s.pos + s.rows)) / ATTN_TILE_RANGE,
      );
    // the partials' stride per row: the split-K ranges where the step has decode rows, else the tiled kernel's (a
    // quarter as many: a prefill step's partials and their reduce shrink 4×)
    const stride = c.step.seqs.every(takesTiles) ? tileSplits : splits;
    // the partials (heads × stride × d floats a row) of as many rows as one scratch buffer holds: a long step at a long
    // context runs in groups of rows, each reduced before the next reuses the buffer
    const perRow = heads * stride * d,
      groups = attentionGroups(c.step, Math.floor(c.scratchBytes / 4 / perRow)),
      most = Math.max(...groups.map((g) => g.rows));
    const po = c.scratch('_attn.o', most * perRow),
      pml = c.scratch('_attn.ml', most * heads * stride * 2);
    const bufs = [op.qkv, op.k, op.v, op.c ?? op.k, po, pml];
    const tiled =
      c.matrices !== 'off' && attnMmaFits(d)
        ? ([attnMma, { ...v, emulate: c.matrices === 'emulated' }] as const)
        : ([attnTile, v] as const);
    return groups.flatMap((g) => {
      const params = {
        heads,
        kvHeads,
        pageSize: op.pageSize,
        useC: op.c ? 1 : 0,
        splits: stride,
        rowBase: g.row0,
        splitBase: g.split0,
        tileBase: g.tile0,
      };
      return [
        ...(g.splitRows ? [dispatch(attnSplit, v, bufs, params, [splits, g.splitRows * heads])] : []),
        ...(g.tiles ? [dispatch(tiled[0], tiled[1], bufs, params, [tileSplits, g.tiles * heads])] : []),
        dispatch(attnReduce, { d }, [po, pml, op.out], { heads, splits: stride, rowBase: g.row0 }, [g.rows, heads]),
      ];
    });
  },
  variants: (headDims, caps) => [
    ...KV_DTYPES.map((kv) => variant(kvAppend, { kv })),
    variant(kvCumsum, {}),
    ...headDims.flatMap((d) => [
      ...KV_DTYPES.flatMap((kv) => [attnSplit, attnTile].map((k) => variant(k, { d, kv }))),
      variant(attnReduce, { d }),
      ...(caps.matrices !== 'off' && attnMmaFits(d)
        ? KV_DTYPES.map((kv) => variant(attnMma, { d, kv, emulate: caps.matrices === 'emulated' }))
        : []),
    ]),
  ],
};
