// Tiled (flash) prefill attention on tensor cores (issue 12): the work and outputs of attn_tile (attention.ts) — one
// workgroup per (key range of `splitK` keys, tile of TILE_ROWS query rows, head), writing the range's partial (max,
// sum, Σ e^{ℓ−max}·v) per row for attn_reduce — with QKᵀ and PV as 16 × 16 × 16 f16 products (f32 accumulation).
// 4 subgroups of 32, each 16 query rows. Per tile of 64 keys (32 emulated):
//   the tile's K and V (loaded into registers during the previous tile: 16-byte loads at each key's cache slot, found
//   once per key two tiles ahead; f32 caches rounded to f16) stored to workgroup memory, the next tile's loads issued
//   → S = Q·Kᵀ on tensor cores into
//   workgroup memory → softmax in f32 by threads (two per row, half the keys each; base-2 logits ℓ·log₂e with causal
//   and range masks) writing P = 2^{ℓ−m} as f16 → O += P·V on tensor cores, O (16 rows × d per subgroup) kept in
//   subgroup matrices for the whole range.
// The range's key tiles are walked from the last (nearest the diagonal) back to the first: a row's forget-gate bias
// (2Mamba-E's C_i − C_j, the segment scores' G_i − G_j) falls with the key's age, so the newest keys set the row's
// stabilizer first. It is raised lazily: only when the tile's max passes it by more than TAU (so P ≤ 2^TAU, which f16
// holds), then every subgroup takes O through workgroup memory once to scale its rows by 2^{m_old − m_new} (decided
// for the whole workgroup, so the branch is uniform). Walked oldest first, a strong decay raised it at almost every
// tile (run79). The partial's max is m (in natural units), not the exact max: attn_reduce only needs one
// consistent stabilizer per partial.
// Rounding: q·s·log₂e (s = 1/√d; keys from rows: q), k, v and p in f16 (relative 2⁻¹¹ each), sums in f32.
// `emulate`: the same staging, walk and rescale rule with the two products as loops over the same workgroup arrays and
// O in each thread's registers (lavapipe in CI). Requires d = 32 or 64.
import type { KvDType } from '../../backend.js';
import { HALVES8, tcEnables } from './common.js';
import { TILE_ROWS, tileRange } from './meta.js';

const range = (n: number) => [...Array(n).keys()];

/** Head dims attn_mma runs (a subgroup's O is d/16 subgroup matrices; workgroup memory bounds d at 64). */
export const attnMmaFits = (d: number) => d === 32 || d === 64;

/** How far (log₂) a row's logits may pass its stabilizer before O is rescaled: P ≤ 2^TAU in f16 (max 65504). */
const TAU = 11;

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
  // keys per tile: 64 on subgroup matrices (45 KiB of workgroup memory at d = 64), 32 emulated (27 KiB: lavapipe
  // allows 32)
  const TK = emulate ? 32 : 64,
    T = 2 * TILE_ROWS, // threads
    KH = TK / 2, // keys per thread in the softmax
    D8 = d / 8, // 16-byte f16 units per key or query row
    UT = (TK * D8) / T, // K (and V) units each thread loads per tile
    LK = D8 + 1, // staged K / V row length in 16-byte units of 8 halves (padding spreads fragment rows over banks)
    LS = TK / 4 + 1, // S row length in vec4s (f32); O passes through the same rows when rescaled (d ≤ TK)
    LP = Math.max(TK / 8 + 1, D8), // P row length in units; q·s is staged here first, rows of D8 units
    DF = d / 16, // fragments along d
    OC = d / 2; // O columns per thread at the end (emulated: for the whole range)
  // this subgroup's 16 rows: S = Q·Kᵀ (TK / 16 key fragments)
  const scores = emulate
    ? `    for (var kk = 0u; kk < ${KH}u; kk++) {
      let k = half * ${KH}u + kk; var s = 0.0;
      for (var m = 0u; m < ${d}u; m++) { s += qv[m] * half8(Ks[k * ${LK}u + m / 8u], m % 8u); }
      Ss[row * ${LS}u + k / 4u][k % 4u] = s;
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
          (j) => `    subgroupMatrixStore<row_major>(&Ss, sg * ${16 * LS}u + ${4 * j}u, s${j}, ${LS}u);`,
        ),
      ].join('\n');
  // O += P·V: this subgroup's 16 rows × d (emulated: this thread's row, columns half·OC …)
  const pv = emulate
    ? `    for (var c = 0u; c < ${OC}u; c++) {
      let col = half * ${OC}u + c; var s = 0.0;
      for (var k = 0u; k < ${TK}u; k++) {
        s += half8(Ps[row * ${LP}u + k / 8u], k % 8u) * half8(Vs[k * ${LK}u + col / 8u], col % 8u);
      }
      acc[c] += s;
    }`
    : range(TK / 16)
        .map(
          (kk) => `    {
      let p = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&Ps, sg * ${16 * LP}u + ${2 * kk}u, ${LP}u);
${range(DF)
  .map(
    (c) =>
      `      o${c} = subgroupMatrixMultiplyAccumulate(p, subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&Vs, ${16 * kk * LK + 2 * c}u, ${LK}u), o${c});`,
  )
  .join('\n')}
    }`,
        )
        .join('\n');
  /** O's subgroup matrices into (or from) this subgroup's rows of Ss. */
  const oStore = range(DF)
    .map((c) => `subgroupMatrixStore<row_major>(&Ss, sg * ${16 * LS}u + ${4 * c}u, o${c}, ${LS}u);`)
    .join(' ');
  const oLoad = range(DF)
    .map(
      (c) =>
        `o${c} = subgroupMatrixLoad<subgroup_matrix_result<f32, 16, 16>, row_major>(&Ss, sg * ${16 * LS}u + ${4 * c}u, ${LS}u);`,
    )
    .join(' ');
  // scale O's rows by f (uniform over the workgroup: every subgroup reaches the barriers)
  const rescale = emulate
    ? `      for (var c = 0u; c < ${OC}u; c++) { acc[c] *= f; }`
    : `      ${oStore}
      workgroupBarrier();
      for (var c = 0u; c < ${OC / 4}u; c++) { Ss[row * ${LS}u + half * ${OC / 4}u + c] *= f; }
      workgroupBarrier();
      ${oLoad}`;
  const qLoad = emulate
    ? `  var qv: array<f32, ${d}>; // this row's q·s·log₂e
  for (var m = 0u; m < ${d}u; m++) { qv[m] = half8(Ps[row * ${D8}u + m / 8u], m % 8u); }`
    : range(DF)
        .map(
          (f) =>
            `  let q${f} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&Ps, sg * ${16 * D8}u + ${2 * f}u, ${D8}u);`,
        )
        .join('\n');
  const oInit = emulate
    ? `  var acc: array<f32, ${OC}>; // this row's Σ 2^{ℓ−m}·v, columns half·${OC} …`
    : `  ${range(DF)
        .map((c) => `var o${c} = subgroup_matrix_result<f32, 16, 16>();`)
        .join(' ')}`;
  // one 16-byte unit of K or V (8 values) as f16 words
  const unit =
    kv === 'f16'
      ? (a: string, i: string) => `${a}[${i}]`
      : (a: string, i: string) => `pack8(${a}[2u * (${i})], ${a}[2u * (${i}) + 1u])`;
  /** The cache slot of key jn + kk (kk < TK) of a tile whose slots are in part `part` of sl (keys from rows: direct). */
  const tileSlot = (jn: string, kk: string, part: string) =>
    rows ? slot(`${jn} + ${kk}`) : `sl[(${part}) * ${TK}u + ${kk}]`;
  /** This thread's loads of the tile of keys from jn (slots in part `part` of sl) into registers kr·, vr· (zeros past
   *  the range) and cr (C_j). */
  const loads = (jn: string, part: string) =>
    [
      ...range(UT).map((i) => {
        const e = `t + ${T * i}u`;
        const at = rows
          ? `let u = (${tileSlot(jn, `(${e}) / ${D8}u`, part)}) * width4 + (H + g) * ${d / 4}u + ((${e}) % ${D8}u) * 2u;
        kr${i} = pack8(x[u], x[u + 1u]); vr${i} = pack8(x[u + H * ${d / 4}u], x[u + H * ${d / 4}u + 1u]);`
          : `let u = ((${tileSlot(jn, `(${e}) / ${D8}u`, part)}) * Hkv + g) * ${D8}u + (${e}) % ${D8}u;
        kr${i} = ${unit('kc', 'u')}; vr${i} = ${unit('vc', 'u')};`;
        return `    { let j = ${jn} + (${e}) / ${D8}u; kr${i} = vec4<u32>(0u); vr${i} = vec4<u32>(0u);
      if (j < j1) {
        ${at}
      } }`;
      }),
      `    if (t < ${TK}u) { let j = ${jn} + t; cr = 0.0; if (useC && j < j1) { cr = cc[(${tileSlot(jn, 't', part)}) * H + h] * ${Math.LOG2E}; } }`,
    ].join('\n');
  // the base-2 logit of score sc (s·log₂e·q·k; keys from rows q·k, whose weight (s·q·k)² = (q·k)²/d) for key j when
  // it is in range
  const logit = rows
    ? `select(-3.0e38, log2(sc * sc) - ${Math.log2(d)}.0 + cNow - ck, j <= pos && j < j1 && sc != 0.0)`
    : `select(-3.0e38, sc + cNow - ck, j <= pos && j < j1)`;
  return `${tcEnables(emulate)}${head}
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> kc: array<${kv === 'f16' ? 'vec4<u32>' : 'vec4<f32>'}>;
@group(0) @binding(4) var<storage, read> vc: array<${kv === 'f16' ? 'vec4<u32>' : 'vec4<f32>'}>;
@group(0) @binding(5) var<storage, read> cc: array<f32>;
@group(0) @binding(6) var<storage, read_write> po: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> pml: array<f32>;
var<workgroup> Ks: array<vec4<u32>, ${TK * LK}>; // [key][dim], 8 halves per element
var<workgroup> Vs: array<vec4<u32>, ${TK * LK}>; // [key][dim]
var<workgroup> Ss: array<vec4<f32>, ${TILE_ROWS * LS}>; // scores [row][key]; O [row][column] when rescaled and at the end
var<workgroup> Ps: array<vec4<u32>, ${TILE_ROWS * LP}>; // q·s·log₂e [row][dim] before the first tile, then P [row][key]
var<workgroup> cs: array<vec4<f32>, ${TK / 4}>; // C_j·log₂e of the tile's keys (2Mamba-E; G_j for keys from rows)
var<workgroup> xm: array<f32, ${T}>; // each thread's tile max (then its sum), for its partner
var<workgroup> flag: u32; // whether some row's stabilizer moved this tile (O is rescaled)
var<workgroup> sl: array<u32, ${2 * TK}>; // cache slots (page · P + offset) of the next two tiles' keys
${HALVES8}
@compute @workgroup_size(${T}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32${
    emulate ? '' : ', @builtin(subgroup_id) sg: u32'
  }) {
${opening}
  let g = h / (H / Hkv); let width4 = (H + 2u * Hkv) * ${d / 4}u;
  // the range's key tiles from the last (nearest the diagonal) back to j0
  let tiles = (j1 - j0 + ${TK - 1}u) / ${TK}u; let jl = j0 + (tiles - 1u) * ${TK}u;
  // softmax: two threads per query row, lanes l and l + 16 of a subgroup (half of the keys each; a quarter-warp's 16-byte
  // reads of S then fall in distinct banks)
  let row = (t / 32u) * 16u + t % 16u; let half = (t / 16u) % 2u;
  let i = min(t0 + row, lastRow); let pos = p0 + i;
  // q·s·log₂e (the softmax's base-2 logits) as f16 into Ps: ${TILE_ROWS} rows × ${D8} units. Keys from rows: q as it
  // is (s is applied to the squared score in f32, so an f16-exact q stays exact at every d)
  let scale = ${rows ? '1.0' : `${Math.LOG2E} / sqrt(${d}.0)`};
  for (var e = t; e < ${TILE_ROWS * D8}u; e += ${T}u) {
    let qr = seqRow0(s) + min(t0 + e / ${D8}u, lastRow);
    let o = qr * width4 + h * ${d / 4}u + (e % ${D8}u) * 2u;
    Ps[e] = pack8(x[o] * scale, x[o + 1u] * scale);
  }
  ${range(UT)
    .map((i) => `var kr${i}: vec4<u32>; var vr${i}: vec4<u32>;`)
    .join(' ')} var cr = 0.0;
${
  rows
    ? ''
    : `  // the first two tiles' cache slots (keys from j1 on have none: the last tile may be short, and where the range is one
  // tile the second part's keys wrap past j1 or precede j0); each tile finds the slots of the one after next (one
  // page-table walk per key)
  if (t < ${2 * TK}u) { let j = jl - (t / ${TK}u) * ${TK}u + t % ${TK}u; if (j < j1) { sl[t] = ${slot('j')}; } }
  workgroupBarrier();
`
}${loads('jl', '0u')}
  workgroupBarrier();
${qLoad}
  var cNow = 0.0;
  if (useC) { cNow = cc[(${slot('pos')}) * H + h] * ${Math.LOG2E}; }
  var mx = -3.0e38; var z = 0.0; // this row's stabilizer (log₂); this thread's share of Σ 2^{ℓ−m}
${oInit}
  for (var n = 0u; n < tiles; n++) {
    let jt = jl - n * ${TK}u;
    workgroupBarrier(); // the previous tile's products and flag reads (and the q loads) are done
    ${range(UT)
      .map(
        (i) => `{ let e = t + ${T * i}u; let o = (e / ${D8}u) * ${LK}u + e % ${D8}u; Ks[o] = kr${i}; Vs[o] = vr${i}; }`,
      )
      .join('\n    ')}
    if (t < ${TK}u) { cs[t / 4u][t % 4u] = cr; }
    if (t == 0u) { flag = 0u; }
    let par = n % 2u; // the part of sl that held this tile's slots
    if (n + 1u < tiles) {
${loads(`jt - ${TK}u`, '1u - par')}
    }
    workgroupBarrier();
${
  rows
    ? ''
    : `    if (t < ${TK}u && n + 2u < tiles) { sl[par * ${TK}u + t] = ${slot(`jt - ${2 * TK}u + t`)}; }
`
}${scores}
    workgroupBarrier();
    // softmax: this thread's ${KH} keys of its row
    var lg: array<f32, ${KH}>;
    var tm = -3.0e38;
${range(KH / 4)
  .map(
    (q) => `    let sv${q} = Ss[row * ${LS}u + half * ${KH / 4}u + ${q}u]; let cv${q} = cs[half * ${KH / 4}u + ${q}u];
${range(4)
  .map(
    (c) => `    { let j = jt + half * ${KH}u + ${4 * q + c}u; let sc = sv${q}[${c}]; let ck = cv${q}[${c}];
      lg[${4 * q + c}] = ${logit}; tm = max(tm, lg[${4 * q + c}]); }`,
  )
  .join('\n')}`,
  )
  .join('\n')}
    xm[t] = tm;
    workgroupBarrier();
    let nm = max(tm, xm[t ^ 16u]); // the row's max over this tile
    var f = 1.0;
    if (nm > mx + ${TAU}.0) {
      f = exp2(mx - nm); mx = nm;
      if (n != 0u) { flag = 1u; } // O is still zero in the first tile
    }
    z *= f;
${range(KH)
  .map((kk) => `    lg[${kk}] = select(0.0, exp2(lg[${kk}] - mx), lg[${kk}] > -1.0e38); z += lg[${kk}];`)
  .join('\n')}
${range(KH / 8)
  .map(
    (q) =>
      `    Ps[row * ${LP}u + half * ${KH / 8}u + ${q}u] = pack8(vec4<f32>(lg[${8 * q}], lg[${8 * q + 1}], lg[${8 * q + 2}], lg[${8 * q + 3}]), vec4<f32>(lg[${8 * q + 4}], lg[${8 * q + 5}], lg[${8 * q + 6}], lg[${8 * q + 7}]));`,
  )
  .join('\n')}
    if (workgroupUniformLoad(&flag) != 0u) { // P is written and S read; some row's stabilizer moved
${rescale}
    }
${pv}
  }
  // O into Ss (each subgroup its rows), the row's sum from this thread's share and its partner's
  workgroupBarrier();
${emulate ? '' : `  ${oStore}\n`}  xm[t] = z;
  workgroupBarrier();
  // rows of the tile past the sequence's rows, or whose position precedes this range, write nothing
  if (t0 + row > lastRow || pos < j0) { return; }
  let r = seqRow0(s) + i;
  let k = (${rows ? 'r' : '(r - prm.rowBase)'} * H + h) * splits + sp; // the group's rows (keys from rows: the step's)
  let b = (k * ${d}u + half * ${OC}u) / 4u;
${range(OC / 4)
  .map(
    (q) =>
      `  po[b + ${q}u] = ${
        emulate
          ? `vec4<f32>(acc[${4 * q}], acc[${4 * q + 1}], acc[${4 * q + 2}], acc[${4 * q + 3}])`
          : `Ss[row * ${LS}u + half * ${OC / 4}u + ${q}u]`
      };`,
  )
  .join('\n')}
  if (half == 0u) { pml[2u * k] = mx * ${Math.LN2}; pml[2u * k + 1u] = xm[t] + xm[t + 16u]; }
}`;
};
