// Tiled (flash) prefill attention on tensor cores (issue 12): the work and outputs of attn_tile (attention.ts) — one
// workgroup per (key range of `splitK` keys, tile of TILE_ROWS query rows, head), writing the range's partial (max,
// sum, Σ e^{ℓ−max}·v) per row for attn_reduce — with QKᵀ and PV as 16 × 16 × 16 f16 products (f32 accumulation).
// 4 subgroups of 32, each 16 query rows. Per tile of 64 keys (32 emulated):
//   stage K and V as f16 (16-byte loads at cache slots found once per key, a tile ahead; f32 caches rounded) → S = Q·Kᵀ on tensor cores into
//   workgroup memory → online softmax in f32 by threads (two per row, half the keys each: ℓ = S (+ C_pos − C_j), causal and
//   range masks, the running max and the rescale factor) writing P = e^{ℓ−max} as f16 → P·V on tensor cores, 32 value
//   columns at a time through the same workgroup memory, added into the threads' f32 accumulators (each thread holds
//   its row's d/2 columns, rescaled by the row's factor when the max moves).
// Rounding: q·s (s = 1/√d), k, v and p in f16 (relative 2⁻¹¹ each), sums in f32. `emulate`: the same staging and walk
// with the two products as loops over the same workgroup arrays (lavapipe in CI). Requires d = 32 or 64.
import type { KvDType } from '../../backend.js';
import { HALVES8, tcEnables } from './common.js';
import { TILE_ROWS, tileRange } from './meta.js';

const range = (n: number) => [...Array(n).keys()];

/** Head dims attn_mma runs (its tiles hold d/32 column groups of P·V; workgroup memory bounds d at 64). */
export const attnMmaFits = (d: number) => d === 32 || d === 64;

/** Where attn_mma's keys come from: the KV cache (softmax, 2Mamba-E), or the step's own rows (2Mamba's intra-segment
 *  scores, mamba2.ts: weights (s·q·k)²·e^{G_i − G_j} over the keys of the row's segment of `segment` rows, as the
 *  logit ℓ = ln (s·q·k)² + G_i − G_j; k, v from x; G (binding 5) the segment-local cumulative log-decay per row). */
export type AttnKeys = { kind: 'cache'; kv: KvDType } | { kind: 'rows'; segment: number };

/** `head`: ATTN_PARAMS and the step meta; `bindings`: x, kc, vc, cc, po, pml as attn_tile binds them (keys from rows:
 *  x, x, x, G, po, pml, dispatched splits × (sequences × heads) × row tiles of the longest sequence). */
export const attnMmaSource = (head: string, d: number, keys: AttnKeys, emulate: boolean, splitK: number) => {
  if (!attnMmaFits(d)) throw new Error(`attn_mma: head dim ${d} must be 32 or 64`);
  const rows = keys.kind === 'rows',
    kv = rows ? 'f32' : keys.kv;
  if (rows && keys.segment % splitK)
    throw new Error(`attn_mma: segment ${keys.segment} must be a multiple of ${splitK}`);
  /** The cache slot of key position j (keys from rows: its row of the step). */
  const slot = (j: string) => (rows ? `seqRow0(s) + ${j}` : `seqPage(s, (${j}) / P) * P + (${j}) % P`);
  // keys from rows: the workgroup's tile is row tile wg.z of sequence wg.y / H; positions count rows of the step, and
  // range sp covers keys segment start + sp·splitK …
  const opening = rows
    ? `  let H = prm.heads; let Hkv = H; let useC = true; let splits = prm.splits;
  let sp = wg.x; let s = wg.y / H; let h = wg.y % H; let n = seqRows(s); let t0 = wg.z * ${TILE_ROWS}u; let p0 = 0u;
  if (t0 >= n) { return; }
  let lastRow = min(t0 + ${TILE_ROWS}u, n) - 1u;
  let j0 = (t0 / ${keys.segment}u) * ${keys.segment}u + sp * ${splitK}u; let j1 = min(lastRow + 1u, j0 + ${splitK}u);
  if (j0 >= j1) { return; }`
    : tileRange(splitK);
  // keys per tile: 64 on subgroup matrices (46 KiB of workgroup memory at d = 64), 32 emulated (27 KiB: lavapipe
  // allows 32)
  const TK = emulate ? 32 : 64,
    KH = TK / 2, // keys per thread in the softmax
    D8 = d / 8, // 16-byte f16 units per key or query row
    LK = D8 + 1, // staged K / V row length in 16-byte units of 8 halves (padding spreads fragment rows over banks)
    LS = TK + 4, // S row length (f32)
    LP = Math.max(TK / 8 + 1, D8), // P row length in units; q·s is staged here first, rows of D8 units
    DF = d / 16, // fragments along d
    OC = d / 2; // accumulator columns per thread
  // this subgroup's 16 rows: S = Q·Kᵀ (TK / 16 key fragments), then P·V for value columns c0 … c0 + 31 (2 fragments)
  const scores = emulate
    ? `    for (var kk = 0u; kk < ${KH}u; kk++) {
      let k = half * ${KH}u + kk; var s = 0.0;
      for (var m = 0u; m < ${d}u; m++) { s += qv[m] * half8(Ks[k * ${LK}u + m / 8u], m % 8u); }
      Ss[row * ${LS}u + k] = s;
    }`
    : [
        ...range(TK / 16).map((j) => `    var s${j} = subgroup_matrix_result<f32, 16, 16>();`),
        ...range(DF).flatMap((f) =>
          range(TK / 16).map(
            (j) =>
              `    s${j} = subgroupMatrixMultiplyAccumulate(q${f}, subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&Ks, ${16 * j * LK + 2 * f}u, ${LK}u), s${j});`,
          ),
        ),
        ...range(TK / 16).map(
          (j) => `    subgroupMatrixStore<row_major>(&Ss, sg * ${16 * LS}u + ${16 * j}u, s${j}, ${LS}u);`,
        ),
      ].join('\n');
  const pv = emulate
    ? `      for (var cc2 = 0u; cc2 < 16u; cc2++) {
        let c = half * 16u + cc2; var s = 0.0;
        for (var k = 0u; k < ${TK}u; k++) {
          s += half8(Ps[row * ${LP}u + k / 8u], k % 8u) * half8(Vs[k * ${LK}u + (c0 + c) / 8u], (c0 + c) % 8u);
        }
        Ss[row * ${LS}u + c] = s;
      }`
    : [
        '      var o0 = subgroup_matrix_result<f32, 16, 16>(); var o1 = subgroup_matrix_result<f32, 16, 16>();',
        ...range(TK / 16).map(
          (kk) => `      {
        let p = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&Ps, sg * ${16 * LP}u + ${2 * kk}u, ${LP}u);
        o0 = subgroupMatrixMultiplyAccumulate(p, subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&Vs, ${16 * kk * LK}u + c0 / 8u, ${LK}u), o0);
        o1 = subgroupMatrixMultiplyAccumulate(p, subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&Vs, ${16 * kk * LK}u + c0 / 8u + 2u, ${LK}u), o1);
      }`,
        ),
        `      subgroupMatrixStore<row_major>(&Ss, sg * ${16 * LS}u, o0, ${LS}u);`,
        `      subgroupMatrixStore<row_major>(&Ss, sg * ${16 * LS}u + 16u, o1, ${LS}u);`,
      ].join('\n');
  const qLoad = emulate
    ? `  var qv: array<f32, ${d}>; // this row's q·s
  for (var m = 0u; m < ${d}u; m++) { qv[m] = half8(Ps[row * ${D8}u + m / 8u], m % 8u); }`
    : range(DF)
        .map(
          (f) =>
            `  let q${f} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&Ps, sg * ${16 * D8}u + ${2 * f}u, ${D8}u);`,
        )
        .join('\n');
  // one 16-byte unit of K or V (8 values) as f16 words
  const unit =
    kv === 'f16'
      ? (a: string, i: string) => `${a}[${i}]`
      : (a: string, i: string) => `pack8(${a}[2u * (${i})], ${a}[2u * (${i}) + 1u])`;
  // this thread's K and V units of key j at slot sl: from the cache, or from row sl of x (k after H·d q columns)
  const kvLoad = rows
    ? `let u = sl[par * ${TK}u + e / ${D8}u] * width4 + (H + g) * ${d / 4}u + (e % ${D8}u) * 2u;
        ku = pack8(x[u], x[u + 1u]); vu = pack8(x[u + H * ${d / 4}u], x[u + H * ${d / 4}u + 1u]);`
    : `let u = (sl[par * ${TK}u + e / ${D8}u] * Hkv + g) * ${D8}u + e % ${D8}u;
        ku = ${unit('kc', 'u')}; vu = ${unit('vc', 'u')};`;
  // the logit of score S (s·q·k) for a key at slot sl[…] (C or G: cs) when it is in range
  const logit = rows
    ? `select(-3.0e38, log(sc * sc) + cNow - cs[k], j <= pos && j < j1 && sc != 0.0)`
    : `select(-3.0e38, sc + cNow - cs[k], j <= pos && j < j1)`;
  return `${tcEnables(emulate)}${head}
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> kc: array<${kv === 'f16' ? 'vec4<u32>' : 'vec4<f32>'}>;
@group(0) @binding(4) var<storage, read> vc: array<${kv === 'f16' ? 'vec4<u32>' : 'vec4<f32>'}>;
@group(0) @binding(5) var<storage, read> cc: array<f32>;
@group(0) @binding(6) var<storage, read_write> po: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> pml: array<f32>;
var<workgroup> Ks: array<vec4<u32>, ${TK * LK}>; // [key][dim], 8 halves per element
var<workgroup> Vs: array<vec4<u32>, ${TK * LK}>; // [key][dim]
var<workgroup> Ss: array<f32, ${TILE_ROWS * LS}>; // scores, then 32 columns of P·V [row][·]
var<workgroup> Ps: array<vec4<u32>, ${TILE_ROWS * LP}>; // q·s [row][dim] before the first tile, then e^{ℓ−max} [row][key]
var<workgroup> cs: array<f32, ${TK}>; // C_j of the tile's keys (2Mamba-E)
var<workgroup> sl: array<u32, ${2 * TK}>; // cache slots (page · P + offset) of this tile's keys and the next one's
var<workgroup> xm: array<f32, ${2 * TILE_ROWS}>; // each thread's tile max, for its partner
${HALVES8}
@compute @workgroup_size(${2 * TILE_ROWS}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32${
    emulate ? '' : ', @builtin(subgroup_id) sg: u32'
  }) {
${opening}
  let g = h / (H / Hkv); let width4 = (H + 2u * Hkv) * ${d / 4}u;
  let row = t / 2u; let half = t % 2u; // softmax and accumulators: two threads per query row
  let i = min(t0 + row, lastRow); let pos = p0 + i;
  // q·s as f16 into Ps: ${TILE_ROWS} rows × ${D8} units
  let scale = 1.0 / sqrt(${d}.0);
  for (var e = t; e < ${TILE_ROWS * D8}u; e += ${2 * TILE_ROWS}u) {
    let qr = seqRow0(s) + min(t0 + e / ${D8}u, lastRow);
    let o = qr * width4 + h * ${d / 4}u + (e % ${D8}u) * 2u;
    Ps[e] = pack8(x[o] * scale, x[o + 1u] * scale);
  }
  // cache slots of the first tile's keys (each tile computes the next one's during its softmax)
  if (t < ${TK}u && j0 + t < j1) { let j = j0 + t; sl[t] = ${slot('j')}; }
  workgroupBarrier();
${qLoad}
  var cNow = 0.0;
  if (useC) { cNow = cc[(${slot('pos')}) * H + h]; }
  var mx = -3.0e38; var z = 0.0; // this row's running max; this thread's share of the sum
  var acc: array<f32, ${OC}>; // columns (c / 16)·32 + half·16 + c % 16 of this row's Σ e·v
  for (var jt = j0; jt < j1; jt += ${TK}u) {
    workgroupBarrier(); // the previous tile's products (and the q loads) are done
    let par = ((jt - j0) / ${TK}u) % 2u; // which half of sl holds this tile's slots
    for (var e = t; e < ${TK * D8}u; e += ${2 * TILE_ROWS}u) {
      let j = jt + e / ${D8}u;
      var ku = vec4<u32>(0u); var vu = vec4<u32>(0u);
      if (j < j1) {
        ${kvLoad}
      }
      let o = (e / ${D8}u) * ${LK}u + e % ${D8}u;
      Ks[o] = ku; Vs[o] = vu;
    }
    if (t < ${TK}u) {
      let j = jt + t;
      var c = 0.0;
      if (useC && j < j1) { c = cc[sl[par * ${TK}u + t] * H + h]; }
      cs[t] = c;
    }
    workgroupBarrier();
${scores}
    workgroupBarrier();
    // the next tile's cache slots, into the other half of sl (read after the next tile's first barrier)
    if (t < ${TK}u && jt + ${TK}u + t < j1) { let j = jt + ${TK}u + t; sl[(1u - par) * ${TK}u + t] = ${slot('j')}; }
    // online softmax: this thread's ${KH} keys of its row
    var lg: array<f32, ${KH}>;
    var tm = -3.0e38;
    for (var kk = 0u; kk < ${KH}u; kk++) {
      let k = half * ${KH}u + kk; let j = jt + k;
      let sc = Ss[row * ${LS}u + k];
      lg[kk] = ${logit};
      tm = max(tm, lg[kk]);
    }
    xm[t] = tm;
    workgroupBarrier();
    let nm = max(mx, max(tm, xm[t ^ 1u])); let f = exp(mx - nm);
    mx = nm;
    z *= f;
    for (var c = 0u; c < ${OC}u; c++) { acc[c] *= f; }
    for (var kk = 0u; kk < ${KH}u; kk++) {
      lg[kk] = select(0.0, exp(lg[kk] - nm), lg[kk] > -1.0e38);
      z += lg[kk];
    }
    for (var q = 0u; q < ${KH / 8}u; q++) {
      let b = 8u * q;
      Ps[row * ${LP}u + half * ${KH / 8}u + q] = pack8(vec4<f32>(lg[b], lg[b + 1u], lg[b + 2u], lg[b + 3u]), vec4<f32>(lg[b + 4u], lg[b + 5u], lg[b + 6u], lg[b + 7u]));
    }
    for (var c0 = 0u; c0 < ${d}u; c0 += 32u) {
      workgroupBarrier(); // P is written; Ss is free
${pv}
      workgroupBarrier();
      for (var cc2 = 0u; cc2 < 16u; cc2++) { acc[c0 / 2u + cc2] += Ss[row * ${LS}u + half * 16u + cc2]; }
    }
  }
  // the row's sum: this thread's share and its partner's
  workgroupBarrier();
  xm[t] = z;
  workgroupBarrier();
  // rows of the tile past the sequence's rows, or whose position precedes this range, write nothing
  if (t0 + row > lastRow || pos < j0) { return; }
  let r = seqRow0(s) + i;
  let k = (r * H + h) * splits + sp;
  for (var c0 = 0u; c0 < ${d}u; c0 += 32u) {
    let b = (k * ${d}u + c0 + half * 16u) / 4u;
    for (var q = 0u; q < 4u; q++) {
      let a = c0 / 2u + 4u * q;
      po[b + q] = vec4<f32>(acc[a], acc[a + 1u], acc[a + 2u], acc[a + 3u]);
    }
  }
  if (half == 0u) { pml[2u * k] = mx; pml[2u * k + 1u] = xm[t] + xm[t + 1u]; }
}`;
};
