// 2Mamba attention (spec/2mamba.md §5): the decode state step (one pass over S per token) with its readout, and the
// chunked prefill form: in segments of M2_SEGMENT rows where tensor cores run (the scores by attn_mma over the step's
// rows, the readout and update in mamba2-tc.ts), else chunk by chunk as register-tiled FMA products over the state.
// Head dims: multiples of 32 up to 128 (every preset's is 64). CPU twin: kernels/cpu/mamba2.ts.
import { DEN_FLOOR, PHI_OFF_DIAGONAL, phiDim, type Op } from '../../ops.js';
import {
  M2_CHUNK,
  m2BoundaryBytes,
  M2_READ_SPLITS,
  M2_READ_SPLITS_TC,
  m2Rpt,
  M2_RPT,
  M2_SEGMENT,
  m2ScanBlocks,
  SCALE_BLOCKS,
} from '../tuning.js';
import { SPLIT_K } from './attention.js';
import { attnMmaFits, attnMmaSource } from './attention-tc.js';
import { TILE_ROWS } from './meta.js';
import { gemmInput, mmaDispatch, mmaStep, skinnyDispatches } from './matmul.js';
import { M2_OUT_COLS, m2Out1, m2OutFits } from './mamba2-out.js';
import {
  m2ReadMmaSource,
  m2ScaleSource,
  m2ScanSource,
  m2UpdateMmaSource,
  READ_ROWS,
  TC_HEAD_DIM,
  UPDATE_ROWS,
} from './mamba2-tc.js';
import {
  type Caps,
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
  workgroupCumsum,
} from './common.js';

/** Whether prefill runs in segments (tensor cores on or emulated, a head dim attn_mma takes): the scores within a
 *  segment on tensor cores, the carried state's readout for all its rows at once, one state update per segment.
 *  Otherwise chunk by chunk on FMAs. */
const bySegments = (caps: Pick<Caps, 'matrices'>, d: number) => caps.matrices !== 'off' && attnMmaFits(d);
/** Whether the segments' readout and update run on tensor cores too (mamba2-tc.ts: head dim 64); only then may a
 *  step's segments run at once (m2BoundaryBytes: the memory plan asks too). */
export const stateOnTc = (caps: Pick<Caps, 'matrices'>, d: number) => bySegments(caps, d) && d === TC_HEAD_DIM;

/** chunk: the prefill chunk index (the readout's first row tile); splits: ranges of the readout; blocks: state-row
 *  blocks of the decode step (key ranges per row in m2_combine); fresh: the readout's row tiles from a sequence's
 *  start that see a new sequence's zero state (a chunk's or a segment's); segs: boundary slots per sequence and head
 *  where every segment runs at once (m2_scan). */
export const M2_PARAMS = defineParams({
  heads: 'u32',
  chunk: 'u32',
  splits: 'u32',
  blocks: 'u32',
  fresh: 'u32',
  segs: 'u32',
});

/** φ's coefficient for the pair (a, b), a ≤ b, of a head's dimensions (spec §5): φ(x)_p = c·x_a·x_b with c = √2 off the
 *  diagonal, so φ(q)·φ(k) = (q·k)². The `pairs` tables hold a | b << 16 per state row p. */
const PHI = /* wgsl */ `fn phiCoef(a: u32, b: u32) -> f32 { return select(${PHI_OFF_DIAGONAL}, 1.0, a == b); }`;

/** Threads along the column (vec4 lanes) and along the state rows of the decode state kernel for head dim d. */
export function m2DecodeShape(d: number) {
  const lanes = d / 4,
    groups = Math.max(1, Math.floor(256 / lanes));
  return { lanes, groups };
}

// 2Mamba chunked form (spec §5.4), chunk c of every sequence.
// Intra-chunk, score space: G_i (chunk-local cumsum), Σ_{j ≤ i} exp(G_i − G_j)(s q_i·k_j)² v_j and its denominator.
// One workgroup per (sequence, head) and chunk (prm.chunk + wg.y); thread i owns row i (q and its sums in registers);
// the chunk's k, v rows come through workgroup memory in tiles of 32. The weights are ≥ 0 and exp(G_i − G_j) ≤ 1: no
// running max, so the sums leave as m2_combine's partials of one key range per row with max 0: (0, Σ w, Σ w·v).
const m2IntraSource = (d: number, CHUNK: number) => `${header(M2_PARAMS)}
${ro(2, 'x', 'vec4<f32>')}
${ro(3, 'logA')}
${rw(4, 'G')}
${rw(5, 'po', 'vec4<f32>')}
${rw(6, 'pml')}
const D4 = ${d / 4}u;
var<workgroup> gs: array<f32, ${CHUNK}>;
var<workgroup> ks: array<vec4<f32>, ${32 * (d / 4)}>;
var<workgroup> vs: array<vec4<f32>, ${32 * (d / 4)}>;
@compute @workgroup_size(${CHUNK}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let c = prm.chunk + wg.y; let s = wg.x / H; let h = wg.x % H; // wg.x < sequences × heads
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
  pml[2u * k] = 0.0; pml[2u * k + 1u] = den;
  for (var m = 0u; m < D4; m++) { po[k * D4 + m] = num[m]; }
}`;

/** Rows per readout workgroup, state rows per update workgroup, and the K tile (state rows or rows) of both. */
const RT = 64;
const PT = 64;
const KT = 16;
/** The readout and update keep 8 × d/8 results per thread of 64 (8 rows or state rows × d/8 columns). */
const m2Fits = (d: number) => d % 32 === 0 && d <= 128;

/** `store(r, c)` of acc[r·CV + c] for the thread's 8 rows r where `keep(r)`, unrolled: constant indices keep acc in
 *  registers (a loop over it would put it in local memory). */
const unrolled8 = (CV: number, store: (r: number, c: number) => string, keep: (r: number) => string) =>
  Array.from(
    { length: 8 },
    (_, r) => `if (${keep(r)}) { ${Array.from({ length: CV }, (_, c) => store(r, c)).join(' ')} }`,
  ).join('\n  ');

/** acc[r·CV + c] += f[r] · v for the 8 entries of f0, f1 (rows or state rows) and the CV vec4s v (columns). */
const outer8 = (CV: number, f0: string, f1: string, v: (c: number) => string) =>
  Array.from({ length: CV }, (_, c) => {
    const comp = ['x', 'y', 'z', 'w'];
    return `{ let v = ${v(c)}; ${Array.from({ length: 8 }, (_, r) => `acc[${r * CV + c}] += ${r < 4 ? f0 : f1}.${comp[r % 4]} * v;`).join(' ')} }`;
  }).join('\n        ');

// The readout of the state carried in (spec §5.4): Σ_p φ(q_t)_p S[p, :] and Σ_p φ(q_t)_p n[p] for the RT rows t of row
// tile prm.chunk + wg.z over one of `splits` ranges of state rows p, a [rows × p]·[p × d] product per (sequence,
// head). 64 threads, each 8 rows × d/8 columns in registers; per K tile of KT state rows, thread l forms φ(q_t)_p for
// p = p0 + l % KT (its pair (a, b) from the table) and rows t = l / KT + 4j straight from x (a warp reads two rows at a
// time: few cache lines), and S's and n's rows are staged. A new sequence's first prm.fresh row tiles read zeros (its
// state is not written yet). Workgroup memory stays small (8 KiB), leaving the SM's L1 to the rows of x.
const m2ReadSource = (d: number) => {
  const CV = d / 32;
  return `${header(M2_PARAMS)}${PHI}
${ro(2, 'x')}
${ro(3, 'pairs', 'u32')}
${ro(4, 'S', 'vec4<f32>')}
${ro(5, 'N')}
${rw(6, 'pnum', 'vec4<f32>')}
${rw(7, 'pden')}
const D = ${d}u;
const D4 = ${d / 4}u;
const DD = ${phiDim(d)}u;
const KT = ${KT}u;
var<workgroup> fs: array<vec4<f32>, ${(KT * RT) / 4}>; // φ(q_t)_p [k][t / 4]
var<workgroup> ss: array<vec4<f32>, ${(KT * d) / 4}>; // S [k][m / 4]
var<workgroup> ns: array<f32, ${KT}>; // n [k]
@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let splits = prm.splits; let tile = prm.chunk + wg.z;
  let sp = wg.x; let s = wg.y / H; let h = wg.y % H;
  let n = seqRows(s); let start = tile * ${RT}u;
  if (start >= n) { return; }
  let L = min(${RT}u, n - start); let width = 3u * H * D;
  let r0 = seqRow0(s) + start; let base = (seqSlot(s) * H + h) * DD;
  let per = (DD + splits * KT - 1u) / (splits * KT) * KT; let pa = sp * per; let pb = min(DD, pa + per);
  let rg = l.x / 8u; let cg = l.x % 8u; // rows rg·8 … + 8, vec4 columns cg·${CV} … + ${CV}
  let kf = l.x % KT; let tf = l.x / KT; // φ: state row p0 + kf, rows tf + ${64 / KT}j
  var acc: array<vec4<f32>, ${8 * CV}>;
  var den0 = vec4<f32>(0.0); var den1 = vec4<f32>(0.0); // rows rg·8 … + 8 (column group 0)
  if (!(seqPos(s) == 0u && tile < prm.fresh)) {
    for (var p0 = pa; p0 < pb; p0 += KT) {
      workgroupBarrier(); // the previous tile's products are done
      {
        let p = p0 + kf; let pr = pairs[min(p, DD - 1u)]; let a = pr & 0xffffu; let b = pr >> 16u;
        let cf = select(0.0, phiCoef(a, b), p < pb);
        for (var j = 0u; j < ${RT}u; j += ${64 / KT}u) {
          let t = tf + j; let qo = (r0 + min(t, L - 1u)) * width + h * D;
          fs[kf * ${RT / 4}u + t / 4u][t % 4u] = cf * x[qo + a] * x[qo + b];
        }
        if (l.x < KT) { ns[l.x] = select(0.0, N[base + min(p, DD - 1u)], p < pb); }
      }
      for (var e = l.x; e < KT * D4; e += 64u) {
        let p = p0 + e / D4;
        ss[e] = select(vec4<f32>(0.0), S[(base + min(p, DD - 1u)) * D4 + e % D4], p < pb);
      }
      workgroupBarrier();
      for (var k = 0u; k < KT; k++) {
        let f0 = fs[k * ${RT / 4}u + 2u * rg]; let f1 = fs[k * ${RT / 4}u + 2u * rg + 1u];
        ${outer8(CV, 'f0', 'f1', (c) => `ss[k * D4 + cg * ${CV}u + ${c}u]`)}
        if (cg == 0u) { den0 += f0 * ns[k]; den1 += f1 * ns[k]; }
      }
    }
  }
  ${unrolled8(
    CV,
    (r, c) => `pnum[(((r0 + rg * 8u + ${r}u) * H + h) * splits + sp) * D4 + cg * ${CV}u + ${c}u] = acc[${r * CV + c}];`,
    (r) => `rg * 8u + ${r}u < L`,
  )}
  if (cg == 0u) {
    ${Array.from({ length: 8 }, (_, r) => `if (rg * 8u + ${r}u < L) { pden[((r0 + rg * 8u + ${r}u) * H + h) * splits + sp] = den${r >> 2}.${'xyzw'[r & 3]}; }`).join('\n    ')}
  }
}`;
};

// The state update over a chunk (or segment) of CHUNK rows (spec §5.4): S ← e^{G_e} S + Σ_t φ(s·k_t) e^{G_e − G_t} v_tᵀ
// and n likewise, for a block of PT state rows p: a [p × rows]·[rows × d] product. 64 threads, each 8 state rows ×
// d/8 columns in registers; thread l owns state row pBase + l's pair (a, b) and forms its φ(s·k_t)·e^{G_e − G_t} for
// the K tile's rows straight from x (the threads read one or two k rows' entries: broadcast and consecutive), summing
// n's update as it goes; the tile's v rows are staged. Runs after the readout, which reads the old S.
const m2UpdateSource = (d: number, CHUNK: number) => {
  const CV = d / 32;
  return `${header(M2_PARAMS)}${PHI}
${ro(2, 'x', 'vec4<f32>')}
${ro(3, 'G')}
${ro(4, 'pairs', 'u32')}
${rw(5, 'S', 'vec4<f32>')}
${rw(6, 'N')}
const D = ${d}u;
const D4 = ${d / 4}u;
const DD = ${phiDim(d)}u;
const KT = ${KT}u;
var<workgroup> fk: array<vec4<f32>, ${(KT * PT) / 4}>; // φ(s·k_t)_p·e^{G_e − G_t} [t][p / 4]
var<workgroup> vs: array<vec4<f32>, ${(KT * d) / 4}>; // v_t [t][m / 4]
@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let c = prm.chunk;
  let blk = wg.x; let s = wg.y / H; let h = wg.y % H;
  let n = seqRows(s); let start = c * ${CHUNK}u;
  if (start >= n) { return; }
  let L = min(${CHUNK}u, n - start); let E4 = H * D4; let width4 = 3u * E4;
  let r0 = seqRow0(s) + start; let base = (seqSlot(s) * H + h) * DD;
  let Ge = G[(r0 + L - 1u) * H + h]; let pBase = blk * ${PT}u;
  let pr = pairs[min(pBase + l.x, DD - 1u)]; let a = pr & 0xffffu; let b = pr >> 16u;
  let cf = select(0.0, phiCoef(a, b) / f32(D), pBase + l.x < DD); // φ(s·k) = φ(k)/d (s = 1/√d)
  let pg = l.x / 8u; let cg = l.x % 8u; // state rows pBase + pg·8 … + 8, vec4 columns cg·${CV} … + ${CV}
  var acc: array<vec4<f32>, ${8 * CV}>;
  var nacc = 0.0; // state row pBase + l's
  for (var t0 = 0u; t0 < L; t0 += KT) {
    workgroupBarrier(); // the previous tile's products are done
    for (var t = 0u; t < KT; t++) {
      let r = r0 + min(t0 + t, L - 1u); let ko = r * width4 + E4 + h * D4;
      let w = select(0.0, exp(Ge - G[r * H + h]), t0 + t < L);
      let f = cf * x[ko + a / 4u][a % 4u] * x[ko + b / 4u][b % 4u] * w;
      fk[t * ${PT / 4}u + l.x / 4u][l.x % 4u] = f;
      nacc += f;
    }
    for (var e = l.x; e < KT * D4; e += 64u) {
      vs[e] = x[(r0 + min(t0 + e / D4, L - 1u)) * width4 + 2u * E4 + h * D4 + e % D4];
    }
    workgroupBarrier();
    for (var t = 0u; t < KT; t++) {
      let f0 = fk[t * ${PT / 4}u + 2u * pg]; let f1 = fk[t * ${PT / 4}u + 2u * pg + 1u];
      ${outer8(CV, 'f0', 'f1', (c) => `vs[t * D4 + cg * ${CV}u + ${c}u]`)}
    }
  }
  let eg = exp(Ge); let fresh = seqPos(s) == 0u && c == 0u;
  ${unrolled8(
    CV,
    (r, c) =>
      `{ let si = (base + pBase + pg * 8u + ${r}u) * D4 + cg * ${CV}u + ${c}u; S[si] = select(eg * S[si], vec4<f32>(0.0), fresh) + acc[${r * CV + c}]; }`,
    (r) => `pBase + pg * 8u + ${r}u < DD`,
  )}
  if (pBase + l.x < DD) { N[base + pBase + l.x] = select(eg * N[base + pBase + l.x], 0.0, fresh) + nacc; }
}`;
};

// Segment-local cumulative log-decay: G_i = Σ_{segment start ≤ τ ≤ i} logA_τ for every row of segment wg.x of a
// sequence (one workgroup of 256 per (segment, sequence-head)).
const m2CumsumSource = (seg: number) => `${header(M2_PARAMS)}
${ro(2, 'logA')}
${rw(3, 'G')}
var<workgroup> tot: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let s = wg.y / H; let h = wg.y % H;
  let n = seqRows(s); let start = wg.x * ${seg}u;
  if (start >= n) { return; }
  let r0 = seqRow0(s) + start; let L = min(${seg}u, n - start);
${workgroupCumsum(
  'L',
  (t) => `logA[(r0 + ${t}) * H + h]`,
  (t, run) => `G[(r0 + ${t}) * H + h] = ${run};`,
)}
}`;

// Every row of every chunk or segment: y_i = (e^{G_i}·Σ_splits φ(q_i)ᵀS_prev + Σ_ranges e^{m}·o) / max(e^{G_i}·Σ
// φ(q_i)ᵀn_prev + Σ e^{m}·z, floor), the chunked form of spec §5.4, where (m, z, o) are the partials of the row's scores
// per key range: attn_mma's max, Σ e^{ℓ−m} and Σ e^{ℓ−m}·v with ℓ = ln (s·q·k)² + G_i − G_j over segments of `seg`
// rows (ranges of SPLIT_K), or m2_intra's one range with m = 0 (chunks of seg ≤ SPLIT_K rows). e^{m} is (s·q·k)² of the
// range's largest weight at most: no overflow for |s·q·k| < 10¹⁹. A workgroup takes combineRows(d) rows of one
// (sequence, head), a thread per (row, column): with one row a workgroup, a 4096-row step launched 65536 workgroups of
// 64 threads a layer, bound by how fast the GPU starts them (0.053 ms a layer on an H100, run93).
/** Rows of one m2_combine workgroup (up to 256 threads). */
const combineRows = (d: number) => Math.floor(256 / d);
const m2CombineSource = (d: number, seg: number, half: boolean) => `${half ? 'enable f16;\n' : ''}${header(M2_PARAMS)}
${ro(2, 'G')}
${ro(3, 'po')}
${ro(4, 'pml')}
${ro(5, 'pnum')}
${ro(6, 'pden')}
${rw(7, 'outp', half ? 'f16' : 'f32')}
const D = ${d}u;
@compute @workgroup_size(${combineRows(d) * d}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let splits = prm.splits; let ranges = prm.blocks;
  let i = wg.x * ${combineRows(d)}u + l.x / D; let s = wg.y / H; let h = wg.y % H;
  if (i >= seqRows(s)) { return; }
  let r = seqRow0(s) + i; let m = l.x % D; let k = r * H + h;
  var num = 0.0; var den = 0.0;
  for (var b = 0u; b < splits; b++) { num += pnum[(k * splits + b) * D + m]; den += pden[k * splits + b]; }
  let eg = exp(G[k]); num *= eg; den *= eg;
  for (var sp = 0u; sp <= (i % ${seg}u) / ${SPLIT_K}u; sp++) {
    let q = k * ranges + sp; let f = exp(pml[2u * q]);
    num += f * po[q * D + m]; den += f * pml[2u * q + 1u];
  }
  let y = num / max(den, ${DEN_FLOOR});
  outp[r * H * D + h * D + m] = ${half ? 'f16(clamp(y, -65504.0, 65504.0))' : 'y'};
}`;

// Decode (one row per sequence, spec §5.3): S ← a·S + φ(s·k)vᵀ, n ← a·n + φ(s·k) and the partial readouts
// Σ_p φ(q)_p S_prev[p], Σ_p φ(q)_p n_prev[p] of a block of PB state rows, in one pass over S. First each of PB
// threads takes one row p: φ(q)_p, φ(s·k)_p into workgroup memory, and that row of n (coalesced, no branch in the
// S loop). Then d/4 vec4 lanes across the columns × 256/(d/4) row groups stream S: each thread issues its RPT row
// loads first, then updates them. Partials meet in workgroup memory; m2_combine1 adds the blocks (for one sequence,
// m2_out1 in mamba2-out.ts, with the o projection). a = exp(A_t) from logA.
const m2State1Source = (d: number, rpt: number) => {
  const { lanes, groups } = m2DecodeShape(d),
    WGS = lanes * groups,
    PB = groups * rpt;
  return `${header(M2_PARAMS)}${PHI}
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
  let H = prm.heads; let blocks = prm.blocks;
  let blk = wg.x; let s = wg.y / H; let h = wg.y % H; // dispatched with exactly blocks × (sequences × heads) workgroups
  let lane = l.x % LANES; let grp = l.x / LANES;
  let E = H * D; let r = s; let qo = r * 3u * E + h * D; let ko = qo + E; // a decode step: sequence s's row is row s
  let a = exp(logA[r * H + h]); let fresh = seqPos(s) == 0u;
  let base = (seqSlot(s) * H + h) * DD; let pBlk = blk * PB;
  let vo = ko + E + 4u * lane; let v4 = vec4<f32>(x[vo], x[vo + 1u], x[vo + 2u], x[vo + 3u]);
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
};

// Decode readout: y = (a·Σ_blocks φ(q)ᵀS_prev + w·v) / max(a·Σ φ(q)ᵀn_prev + w, floor), w = (s·q·k)²: the current
// token's term in score space (spec §5.3, as the CPU's mamba2Step). `half`: y also as f16 (clamped to ±65504, as
// gemm_in16 forms it) for the o projection's skinny tensor-core product.
const m2Combine1Source = (d: number, half: boolean) => `${half ? 'enable f16;\n' : ''}${header(M2_PARAMS)}
${ro(2, 'x')}
${ro(3, 'logA')}
${ro(4, 'pnum')}
${ro(5, 'pden')}
${rw(6, 'outp')}
${half ? rw(7, 'xh', 'f16') : ''}
const D = ${d}u;
var<workgroup> rnum: array<f32, ${4 * d}>;
var<workgroup> rden: array<f32, ${4 * d}>;
@compute @workgroup_size(${4 * d}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let blocks = prm.blocks;
  let s = wg.y / H; let h = wg.y % H; let m = l.x % D; let part = l.x / D; // 4 threads per column split the blocks
  let E = H * D; let r = s; let qo = r * 3u * E + h * D; let ko = qo + E; let k = r * H + h; // decode: row s
  // the current token's inputs are loaded before the partials' sums wait on theirs (every load is in flight at once:
  // eight blocks a round, a loop of constant trip count)
  var qk = 0.0;
  if (part == 0u) { for (var i = 0u; i < D; i++) { qk += x[qo + i] * x[ko + i]; } }
  let vm = x[ko + E + m]; let a = exp(logA[k]);
  var num = 0.0; var den = 0.0;
  for (var b0 = part; b0 < blocks; b0 += 32u) {
    for (var u = 0u; u < 8u; u++) {
      let b = min(b0 + 4u * u, blocks - 1u); let on = b0 + 4u * u < blocks;
      num += select(0.0, pnum[(k * blocks + b) * D + m], on); den += select(0.0, pden[k * blocks + b], on);
    }
  }
  rnum[l.x] = num; rden[l.x] = den;
  workgroupBarrier();
  if (part != 0u) { return; }
  num = rnum[m] + rnum[m + D] + rnum[m + 2u * D] + rnum[m + 3u * D];
  den = rden[m] + rden[m + D] + rden[m + 2u * D] + rden[m + 3u * D];
  let w = qk * qk / f32(D);
  let y = (a * num + w * vm) / max(a * den + w, ${DEN_FLOOR});
  outp[r * E + h * D + m] = y;
${half ? '  xh[r * E + h * D + m] = f16(clamp(y, -65504.0, 65504.0));' : ''}
}`;

type D = { d: number; chunk: number };
const kernel = (
  name: string,
  bindings: ('ro' | 'rw')[],
  source: (d: number, chunk: number) => string,
): Kernel<D> & { params: typeof M2_PARAMS } => ({
  name,
  params: M2_PARAMS,
  bindings: () => bindings,
  source: (v) => source(v.d, v.chunk),
});
const intra = kernel('m2_intra', ['ro', 'ro', 'rw', 'rw', 'rw'], m2IntraSource);
const read: Kernel<{ d: number }> & { params: typeof M2_PARAMS } = {
  name: 'm2_read',
  params: M2_PARAMS,
  bindings: () => ['ro', 'ro', 'ro', 'ro', 'rw', 'rw'],
  source: (v) => m2ReadSource(v.d),
};
const update = kernel('m2_update', ['ro', 'ro', 'ro', 'rw', 'rw'], m2UpdateSource);
const combine1: Kernel<{ d: number; half: boolean }> & { params: typeof M2_PARAMS } = {
  name: 'm2_combine1',
  params: M2_PARAMS,
  bindings: (v) => ['ro', 'ro', 'ro', 'ro', 'rw', ...(v.half ? ['rw' as const] : [])],
  source: (v) => m2Combine1Source(v.d, v.half),
};
const state1: Kernel<{ d: number; rpt: number }> & { params: typeof M2_PARAMS } = {
  name: 'm2_state1',
  params: M2_PARAMS,
  bindings: () => ['ro', 'ro', 'ro', 'rw', 'rw', 'rw', 'rw'],
  source: (v) => m2State1Source(v.d, v.rpt),
};

// the segments' scores on tensor cores (attention-tc.ts, keys from the step's rows), their prologue and epilogue
const scores: Kernel<{ d: number; seg: number; emulate: boolean }> & { params: typeof M2_PARAMS } = {
  name: 'm2_scores',
  params: M2_PARAMS,
  bindings: () => ['ro', 'ro', 'ro', 'ro', 'rw', 'rw'],
  source: (v) => attnMmaSource(header(M2_PARAMS), v.d, { kind: 'rows', segment: v.seg }, v.emulate, SPLIT_K),
};
// the segments' readout and update on tensor cores, and the readout's scale of S (mamba2-tc.ts)
type Emu = { emulate: boolean };
// (seg / delta: every segment at once, through the boundary slots m2_scan fills)
const readMma: Kernel<Emu & { seg: number }> & { params: typeof M2_PARAMS } = {
  name: 'm2_read_mma',
  params: M2_PARAMS,
  bindings: () => ['ro', 'ro', 'ro', 'ro', 'ro', 'rw', 'rw'],
  source: (v) => m2ReadMmaSource(header(M2_PARAMS), TC_HEAD_DIM, v.emulate, v.seg),
};
const updateMma: Kernel<Emu & { chunk: number; delta: boolean }> & { params: typeof M2_PARAMS } = {
  name: 'm2_update_mma',
  params: M2_PARAMS,
  bindings: () => ['ro', 'ro', 'ro', 'rw', 'rw'],
  source: (v) => m2UpdateMmaSource(header(M2_PARAMS), TC_HEAD_DIM, v.chunk, v.emulate, v.delta),
};
const scan: Kernel<{ seg: number }> & { params: typeof M2_PARAMS } = {
  name: 'm2_scan',
  params: M2_PARAMS,
  bindings: () => ['ro', 'rw', 'rw', 'rw', 'rw', 'rw'],
  source: (v) => m2ScanSource(header(M2_PARAMS), TC_HEAD_DIM, v.seg),
};
const scale: Kernel<object> & { params: typeof M2_PARAMS } = {
  name: 'm2_scale',
  params: M2_PARAMS,
  bindings: () => ['ro', 'rw'],
  source: () => m2ScaleSource(header(M2_PARAMS), TC_HEAD_DIM),
};
const cumsum: Kernel<{ seg: number }> & { params: typeof M2_PARAMS } = {
  name: 'm2_cumsum',
  params: M2_PARAMS,
  bindings: () => ['ro', 'rw'],
  source: (v) => m2CumsumSource(v.seg),
};
const combine: Kernel<{ d: number; seg: number; half: boolean }> & { params: typeof M2_PARAMS } = {
  name: 'm2_combine',
  params: M2_PARAMS,
  bindings: () => ['ro', 'ro', 'ro', 'ro', 'ro', 'rw'],
  source: (v) => m2CombineSource(v.d, v.seg, v.half),
};

/** The (a, b) pair of every state row p of head dim d, as a | b << 16. */
const pairs = (d: number) => {
  const out: number[] = [];
  for (let i = 0; i < d; i++) for (let j = i; j < d; j++) out.push(i | (j << 16));
  return out;
};
/** The backend's table of φ's index pairs for head dim d. */
const pairsTable = (c: DispatchContext, d: number) => c.table(`_m2.pairs.${d}`, () => pairs(d));

/** Chunk after chunk (or segment after segment) of `size` rows: the readout of the state carried into chunk k's rows
 *  of each sequence (row tiles of RT; a new sequence's first chunk reads zeros), then the state update over it. */
function chunkByChunk(
  op: Extract<Op, { op: 'mamba2' }>,
  c: DispatchContext,
  bufs: { pairs: string; G: string; pnum: string; pden: string; splits: number },
  size: number,
): Dispatch[] {
  const heads = op.heads,
    d = op.headDim,
    grid = c.seqs * heads,
    tc = stateOnTc(c, d), // segments on tensor cores (the FMA path's chunks run only where tensor cores are off)
    emulate = c.matrices === 'emulated',
    sc = tc ? c.scratch('_m2.smax', grid * SCALE_BLOCKS) : '';
  return Array.from({ length: Math.ceil(c.maxRows / size) }, (_, k) => {
    const rt = tc ? READ_ROWS : RT, // rows per readout workgroup
      at = { heads, chunk: (k * size) / rt, splits: bufs.splits, fresh: size / rt },
      tiles = [bufs.splits, grid, Math.ceil(Math.min(size, c.maxRows - k * size) / rt)] as const;
    return tc
      ? [
          dispatch(scale, {}, [op.S, sc], { heads }, [SCALE_BLOCKS, grid]),
          dispatch(readMma, { emulate, seg: 0 }, [op.qkv, bufs.pairs, op.S, op.N, sc, bufs.pnum, bufs.pden], at, [
            ...tiles,
          ]),
          dispatch(
            updateMma,
            { emulate, chunk: size, delta: false },
            [op.qkv, bufs.G, bufs.pairs, op.S, op.N],
            { heads, chunk: k },
            [Math.ceil(phiDim(d) / UPDATE_ROWS), grid],
          ),
        ]
      : [
          dispatch(read, { d }, [op.qkv, bufs.pairs, op.S, op.N, bufs.pnum, bufs.pden], at, [...tiles]),
          dispatch(update, { d, chunk: size }, [op.qkv, bufs.G, bufs.pairs, op.S, op.N], { heads, chunk: k }, [
            Math.ceil(phiDim(d) / PT),
            grid,
          ]),
        ];
  }).flat();
}

/** A pure decode step's pass over S (one row per sequence): S and n updated, each block's partial readouts. */
function decodeState(op: Extract<Op, { op: 'mamba2' }>, c: DispatchContext) {
  const heads = op.heads,
    d = op.headDim,
    grid = c.seqs * heads,
    { groups } = m2DecodeShape(d),
    rpt = m2Rpt(grid),
    blocks = Math.ceil(phiDim(d) / (groups * rpt));
  const pnum = c.scratch('_m2.pnum', c.rows * heads * blocks * d),
    pden = c.scratch('_m2.pden', c.rows * heads * blocks),
    bufs = [op.qkv, op.logA, pairsTable(c, d), op.S, op.N, pnum, pden];
  return { blocks, pnum, pden, state: dispatch(state1, { d, rpt }, bufs, { heads, blocks }, [blocks, grid]) };
}

/** A pure decode step (one row per sequence): one pass over S updates it and takes the partial readouts, then the
 *  readout combine (also writing y as f16 into `xh` when given). */
function decodeDispatches(op: Extract<Op, { op: 'mamba2' }>, c: DispatchContext, xh: string | null): Dispatch[] {
  const heads = op.heads,
    d = op.headDim,
    grid = c.seqs * heads,
    { blocks, pnum, pden, state } = decodeState(op, c);
  return [
    state,
    dispatch(
      combine1,
      { d, half: xh !== null },
      [op.qkv, op.logA, pnum, pden, op.out, ...(xh ? [xh] : [])],
      { heads, blocks },
      [1, grid], // 4·d threads
    ),
  ];
}

/** 2Mamba prefill in segments of M2_SEGMENT rows: G (segment-local), the scores of every segment at once (tensor
 *  cores), then segment by segment the readout of the state carried in (all the segment's rows at once) and the
 *  state update over the segment, then every row's sum (`xh`: written there as f16 instead, the x' of the o
 *  projection's gemm_mma). */
function segmentDispatches(
  op: Extract<Op, { op: 'mamba2' }>,
  c: DispatchContext,
  pairsBuf: string,
  xh: string | null = null,
): Dispatch[] {
  const heads = op.heads,
    d = op.headDim,
    rows = c.rows,
    grid = c.seqs * heads,
    seg = M2_SEGMENT,
    ranges = seg / SPLIT_K,
    splits = stateOnTc(c, d) ? M2_READ_SPLITS_TC : M2_READ_SPLITS;
  const bufs = {
    splits,
    pairs: pairsBuf,
    G: c.scratch('_m2.G', rows * heads),
    pnum: c.scratch('_m2.pnum', rows * heads * splits * d),
    pden: c.scratch('_m2.pden', rows * heads * splits),
  };
  const po = c.scratch('_m2.po', rows * heads * ranges * d),
    pml = c.scratch('_m2.pml', rows * heads * ranges * 2);
  const segs = Math.ceil(c.maxRows / seg);
  const out: Dispatch[] = [
    dispatch(cumsum, { seg }, [op.logA, bufs.G], { heads }, [segs, grid]),
    dispatch(
      scores,
      { d, seg, emulate: c.matrices === 'emulated' },
      [op.qkv, op.qkv, op.qkv, bufs.G, po, pml],
      { heads, splits: ranges },
      [ranges, grid, Math.ceil(c.maxRows / TILE_ROWS)],
    ),
  ];
  const boundary = stateOnTc(c, d) ? m2BoundaryBytes(c.seqs, c.maxRows, heads, d, c.scratchBytes) : 0;
  if (boundary) {
    // every segment's update at once into its slot, the scan to each segment's starting state, every readout at once
    const emulate = c.matrices === 'emulated',
      slots = c.seqs * segs * heads,
      B = c.scratch('_m2.B', slots * phiDim(d) * d),
      BN = c.scratch('_m2.BN', slots * phiDim(d)),
      sm = c.scratch('_m2.smax', slots * m2ScanBlocks(d));
    out.push(
      dispatch(updateMma, { emulate, chunk: seg, delta: true }, [op.qkv, bufs.G, bufs.pairs, B, BN], { heads, segs }, [
        Math.ceil(phiDim(d) / UPDATE_ROWS),
        grid,
        segs,
      ]),
      dispatch(scan, { seg }, [bufs.G, op.S, op.N, B, BN, sm], { heads, segs }, [m2ScanBlocks(d), grid]),
      dispatch(
        readMma,
        { emulate, seg },
        [op.qkv, bufs.pairs, B, BN, sm, bufs.pnum, bufs.pden],
        { heads, splits, fresh: seg / READ_ROWS, segs },
        [splits, grid, Math.ceil(c.maxRows / READ_ROWS)],
      ),
    );
  } else out.push(...chunkByChunk(op, c, bufs, seg));
  out.push(
    dispatch(
      combine,
      { d, seg, half: xh !== null },
      [bufs.G, po, pml, bufs.pnum, bufs.pden, xh ?? op.out],
      { heads, splits, blocks: ranges },
      [Math.ceil(c.maxRows / combineRows(d)), grid],
    ),
  );
  return out;
}

export const mamba2Family: Family = {
  ops: ['mamba2'],
  dispatch(op: Op, c: DispatchContext): Dispatch[] {
    if (op.op !== 'mamba2') throw new Error(`mamba2 family: no op ${op.op}`);
    const heads = op.heads,
      d = op.headDim,
      rows = c.rows,
      pairsBuf = pairsTable(c, d);
    if (!m2Fits(d)) throw new Error(`mamba2 on WebGPU: head dim ${d} must be a multiple of 32, at most 128`);
    const grid = c.seqs * heads;
    if (c.maxRows === 1) return decodeDispatches(op, c, null);
    if (bySegments(c, d)) return segmentDispatches(op, c, pairsBuf);
    // on FMAs: the intra-chunk scores of every chunk (independent), then chunk by chunk the readout of the carried
    // state and its update, then the sum of every row
    const v = { d, chunk: M2_CHUNK },
      splits = M2_READ_SPLITS;
    const bufs = {
      splits,
      pairs: pairsBuf,
      G: c.scratch('_m2.G', rows * heads),
      pnum: c.scratch('_m2.pnum', rows * heads * splits * d),
      pden: c.scratch('_m2.pden', rows * heads * splits),
    };
    const po = c.scratch('_m2.po', rows * heads * d),
      pml = c.scratch('_m2.pml', rows * heads * 2);
    const out: Dispatch[] = [
      dispatch(intra, v, [op.qkv, op.logA, bufs.G, po, pml], { heads, chunk: 0 }, [
        grid,
        Math.ceil(c.maxRows / M2_CHUNK),
      ]),
      ...chunkByChunk(op, c, bufs, M2_CHUNK),
    ];
    // every row of every chunk at once (a row's partials and intra-chunk sums are its own)
    out.push(
      dispatch(
        combine,
        { d, seg: M2_CHUNK, half: false },
        [bufs.G, po, pml, bufs.pnum, bufs.pden, op.out],
        { heads, splits, blocks: 1 },
        [Math.ceil(c.maxRows / combineRows(d)), grid],
      ),
    );
    return out;
  },
  /** A decode step's readout and the o projection that reads it, one dispatch less per layer: for one sequence the
   *  combine and the projection are one kernel (mamba2-out.ts); where the projection takes the skinny tensor-core
   *  product (matmul.ts), the readout combine writes y as f16 too, gemm_in16's work. A prefill step's combine, where
   *  the projection takes gemm_mma, writes only the f16 rows (no f32 y). */
  fuse(op: Op, next: Op | undefined, c: DispatchContext): Dispatch[] | null {
    if (op.op !== 'mamba2' || next?.op !== 'matmul' || next.x !== op.out) return null;
    if (next.norm || next.act || next.perSeq || !m2Fits(op.headDim)) return null;
    const E = op.heads * op.headDim;
    if (c.maxRows > 1) {
      // prefill: the rows' sum is written as f16 for the o projection's gemm_mma (no gemm_in16, no f32 y)
      const bk = mmaStep(next, c);
      if (!bySegments(c, op.headDim) || !bk) return null;
      const xh = gemmInput(c, c.rows, next.k);
      return [...segmentDispatches(op, c, pairsTable(c, op.headDim), xh), mmaDispatch(next, c, bk, xh)];
    }
    if (c.seqs === 1 && next.k === E && m2OutFits(E)) {
      const { blocks, pnum, pden, state } = decodeState(op, c),
        bufs = [next.w, op.qkv, op.logA, pnum, pden, next.out, op.out],
        p = { heads: op.heads, blocks, N: next.n, add: next.add ? 1 : 0 };
      const dtype = c.storage(next.w);
      return [state, dispatch(m2Out1, { dtype, d: op.headDim }, bufs, p, [Math.ceil(next.n / M2_OUT_COLS), 1])];
    }
    const sk = skinnyDispatches(next, c);
    return sk && [...decodeDispatches(op, c, sk.xh), sk.product]; // the combine writes the product's x' itself
  },
  variants: (headDims, caps) =>
    headDims.filter(m2Fits).flatMap((d) => {
      const seg = M2_SEGMENT;
      return [
        ...[intra, update].map((k) => variant(k, { d, chunk: M2_CHUNK })),
        variant(combine1, { d, half: false }),
        ...(['f32', 'f16', 'bf16'] as const).map((dtype) => variant(m2Out1, { dtype, d })),
        ...(caps.matrices !== 'off' ? [variant(combine1, { d, half: true })] : []),
        variant(combine, { d, seg: M2_CHUNK, half: false }),
        variant(read, { d }),
        ...M2_RPT.map((rpt) => variant(state1, { d, rpt })),
        ...(bySegments(caps, d)
          ? [
              variant(cumsum, { seg }),
              variant(scores, { d, seg, emulate: caps.matrices === 'emulated' }),
              ...[true, false].map((half) => variant(combine, { d, seg, half })), // bySegments: tensor cores run
              ...(stateOnTc(caps, d)
                ? [
                    variant(scale, {}),
                    variant(scan, { seg }),
                    ...[0, seg].map((s) => variant(readMma, { emulate: caps.matrices === 'emulated', seg: s })),
                    ...[false, true].map((delta) =>
                      variant(updateMma, { emulate: caps.matrices === 'emulated', chunk: seg, delta }),
                    ),
                  ]
                : [variant(update, { d, chunk: seg })]),
            ]
          : []),
      ];
    }),
};
