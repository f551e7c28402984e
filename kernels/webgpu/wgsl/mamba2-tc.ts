// 2Mamba prefill in segments on tensor cores (spec/2mamba.md §5.4; issue 12): the readout of the state carried in,
// Σ_p φ(q_t)_p S[p, :] ([rows × DD]·[DD × d]), and the state update Σ_t φ(s·k_t)·e^{G_e − G_t} v_tᵀ ([DD × rows]·[rows ×
// d]), as 16 × 16 × 16 f16 subgroup-matrix products with f32 accumulation; the state stays f32 in memory. The FMA
// twins (chunk by chunk, where tensor cores are off) and the rest of the prefill are in mamba2.ts.
//
// One workgroup = 4 subgroups of 32. Readout: 128 rows as two row tiles of 64 × 64 outputs (subgroup g rows 16g … + 16
// of each, four 16 × 16 column blocks), both multiplied by each staged K tile of S (its right fragments loaded once);
// update: 128 × 64 (subgroup g state rows 32g … + 32). K tiles of 32 staged in workgroup memory as f16, 8 to a
// vec4<u32>, the next tile's loads from memory issued into registers while this one is formed. φ is formed per K tile
// from q rows staged in workgroup memory as f16 (readout: 128 rows × 64 fit lavapipe's 32 KiB only so) or k rows as
// f32 (update) by thread l for state row p0 + l % 32 (readout) or pBase + l % 64 and pBase + 64 + l % 64 (update) and
// 16 consecutive rows, so a warp reads one staged row at a time (one pair index common, the other consecutive) and the
// tiles hold φ along 8 rows (readout, loaded column-major) or 8 rows of the chunk (update) per unit; results leave a
// 16-column quarter at a time through workgroup memory. Where a step's segments run at once (mamba2.ts), the update
// writes each segment's own sum into a boundary slot, m2_scan forms each segment's starting state from them, and the
// readout reads its segment's. `emulate`: the same staging and tile walk with the products as loops over the same f16
// tiles (lavapipe in CI).
//
// Numerics (f16: 11 significant bits, range ±65504; sums in f32):
// - readout: each row t is scaled by a power of two m_t ≥ max_a |q_t,a| (exact) and staged as f16 (relative 2⁻¹¹), so
//   |φ(q_t / m_t)| ≤ √2, formed in f32 from the staged values (relative ≤ 2·2⁻¹¹) and rounded once more into the tile;
//   S is scaled per (sequence, head) by the power of two that puts max |S| in [2¹³, 2¹⁴) (m2_scale, m2_scan); both
//   scales come back exactly on the output. The denominators Σ φ·n are summed in f32 from φ before its last rounding.
// - update: φ(s·k_t)·e^{G_e − G_t} and v_t are rounded to f16 as they are: |k| < 2048 and |v| < 65504 (activations
//   of a normed model are far inside); n's update is summed in f32.
// See the tolerance in test/kernels/mamba2.test.ts.
import { PHI_OFF_DIAGONAL, phiDim } from '../../ops.js';
import { m2ScanBlocks, SCALE_BLOCKS, SCAN_EPT } from '../tuning.js';
import { HALVES8, ro, rw, tcEnables } from './common.js';

/** The head dim the tensor-core readout and update take (every preset's); others run the FMA kernels. */
export const TC_HEAD_DIM = 64;
const range = (n: number) => [...Array(n).keys()];
const KT = 32; // K tile: state rows (readout) or rows (update)
const U = 9; // staged row length in vec4<u32> units: 8 units of 8 halves (64 rows or columns) + 1 of padding
const CS = 17; // row length of a 16-column quarter of the f32 result (+ 1 of padding)

const entry = (emulate: boolean) =>
  `@compute @workgroup_size(128) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>${
    emulate ? '' : ', @builtin(subgroup_id) sg: u32'
  })`;
const PHI = /* wgsl */ `fn phiCoef(a: u32, b: u32) -> f32 { return select(${PHI_OFF_DIAGONAL}, 1.0, a == b); }`;

/** Thread l's 8 result values of a quarter in Cs (row l / 2, columns (l % 2)·8 … + 8) as two vec4. */
const quarter = ['lo', 'hi']
  .map(
    (n, i) =>
      `    let ${n} = vec4<f32>(${range(4)
        .map((j) => `Cs[(l.x / 2u) * ${CS}u + (l.x % 2u) * 8u + ${4 * i + j}u]`)
        .join(', ')});`,
  )
  .join('\n');

// The per-(sequence, head) scale of S for the readout is the power of two that puts max |S| in [2¹³, 2¹⁴) (1 for S = 0):
// m2_scale (or m2_scan) takes max |S| over SCALE_BLOCKS blocks of each (sequence, head)'s state, and m2_read_mma the
// max of the blocks.
/** Thread 0 writes the max of every thread's `v` over the workgroup of 256 (through `red`) to smax[at]; every thread
 *  must reach it (barriers). */
const blockMax = (v: string, at: string) => `red[l.x] = ${v};
  for (var w = 128u; w > 0u; w >>= 1u) {
    workgroupBarrier();
    if (l.x < w) { red[l.x] = max(red[l.x], red[l.x + w]); }
  }
  workgroupBarrier();
  if (l.x == 0u) { smax[${at}] = red[0]; }`;

export const m2ScaleSource = (head: string, d: number) => `${head}
${ro(2, 'S', 'vec4<f32>')}
${rw(3, 'smax')}
const DD4 = ${(phiDim(d) * d) / 4}u;
const PER = ${Math.ceil((phiDim(d) * d) / 4 / SCALE_BLOCKS)}u;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let s = wg.y / H; let h = wg.y % H;
  let base = (seqSlot(s) * H + h) * DD4; let e1 = min(DD4, (wg.x + 1u) * PER);
  var m = vec4<f32>(0.0);
  for (var e = wg.x * PER + l.x; e < e1; e += 256u) { m = max(m, abs(S[base + e])); }
  ${blockMax('max(max(m.x, m.y), max(m.z, m.w))', `wg.y * ${SCALE_BLOCKS}u + wg.x`)}
}`;

// The segments' starting states, where every segment's update ran at once into its boundary slot (m2_update_mma, delta):
// per (sequence, head) and element of S and n, run = the state carried in (0 for a new sequence); segment by segment the
// slot's sum is swapped for run and run ← e^{G_e} run + sum (G_e: the segment's total log-decay, its last row's
// segment-local G); S and n end as the step's final state. A workgroup of 256 takes SCAN_EPT vec4 of S per thread (a
// block of m2ScanBlocks(d) per (sequence, head); the first blocks one n entry per thread too), the next segment's sums
// loaded while this one's are stored (a segment's loads waited on the last one's stores: 0.10 ms a layer, run93), and
// writes each slot's block max for the readout's scale (as m2_scale) in two rounds through workgroup memory (16 × 16),
// its two buffers alternating by segment so that one barrier a round serves.
export const m2ScanSource = (head: string, d: number, seg: number) => {
  const DD = phiDim(d),
    ept = range(SCAN_EPT),
    guard = (i: number) => `let e${i} = eb + l.x + ${256 * i}u; let in${i} = e${i} < DD4;`,
    // this thread's sums (and n's) of segment `k` into `to`
    sums = (k: string, to: string) => `{
    let o = ((s * prm.segs + ${k}) * H + h) * DD4;
${ept.map((i) => `    if (in${i}) { ${to}[${i}] = B[o + e${i}]; }`).join('\n')}
    if (hasN) { ${to}n = BN[((s * prm.segs + ${k}) * H + h) * DD + pn]; }
  }`;
  return `${head}
${ro(2, 'G')}
${rw(3, 'S', 'vec4<f32>')}
${rw(4, 'N')}
${rw(5, 'B', 'vec4<f32>')}
${rw(6, 'BN')}
${rw(7, 'smax')}
const DD = ${DD}u;
const DD4 = ${(DD * d) / 4}u;
var<workgroup> red: array<f32, 512>; // the threads' maxima, two buffers (segment parity)
var<workgroup> red16: array<f32, 32>; // the 16 rows' maxima, two buffers
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let s = wg.y / H; let h = wg.y % H;
  let n = seqRows(s); let r0 = seqRow0(s); let segs = (n + ${seg - 1}u) / ${seg}u; let fresh = seqPos(s) == 0u;
  let own = seqSlot(s) * H + h; let eb = wg.x * ${256 * SCAN_EPT}u;
${ept.map((i) => `  ${guard(i)}`).join('\n')}
  var run: array<vec4<f32>, ${SCAN_EPT}>; var sum: array<vec4<f32>, ${SCAN_EPT}>; var nxt: array<vec4<f32>, ${SCAN_EPT}>;
  if (!fresh) {
${ept.map((i) => `    if (in${i}) { run[${i}] = S[own * DD4 + e${i}]; }`).join('\n')}
  }
  let pn = wg.x * 256u + l.x; let hasN = pn < DD;
  var rn = 0.0; var sumn = 0.0; var nxtn = 0.0;
  if (hasN && !fresh) { rn = N[own * DD + pn]; }
  ${sums('0u', 'nxt')}
  for (var k = 0u; k < segs; k++) {
    let slot = (s * prm.segs + k) * H + h; let o = slot * DD4; let p = (k % 2u) * 256u;
    let a = exp(G[(r0 + min(n, (k + 1u) * ${seg}u) - 1u) * H + h]);
    sum = nxt; sumn = nxtn;
    if (k + 1u < segs) ${sums('k + 1u', 'nxt')}
    var m = vec4<f32>(0.0);
${ept.map((i) => `    if (in${i}) { B[o + e${i}] = run[${i}]; m = max(m, abs(run[${i}])); run[${i}] = a * run[${i}] + sum[${i}]; }`).join('\n')}
    if (hasN) { BN[slot * DD + pn] = rn; rn = a * rn + sumn; }
    red[p + l.x] = max(max(m.x, m.y), max(m.z, m.w));
    workgroupBarrier();
    if (l.x < 16u) {
      var r = 0.0;
      for (var j = 0u; j < 16u; j++) { r = max(r, red[p + l.x * 16u + j]); }
      red16[p / 16u + l.x] = r;
    }
    workgroupBarrier();
    if (l.x == 0u) {
      var r = 0.0;
      for (var j = 0u; j < 16u; j++) { r = max(r, red16[p / 16u + j]); }
      smax[slot * ${m2ScanBlocks(d)}u + wg.x] = r;
    }
  }
${ept.map((i) => `  if (in${i}) { S[own * DD4 + e${i}] = run[${i}]; }`).join('\n')}
  if (hasN) { N[own * DD + pn] = rn; }
}`;
};

/** The readout's loads for the K tile at state row `p0`: this thread's pair and n (state row p0 + kf) and its two units
 *  of S rows (unit e = l + 128i: row p0 + e / 8, columns (e % 8)·8 … + 8), clamped into the head's state. */
const readoutLoads = (p0: string) => `    {
      let pn = ${p0}; let p = pn + kf; prv = pairs[min(p, DD - 1u)]; nvv = select(0.0, N[base + min(p, DD - 1u)], p < pb);
${range(2)
  .map(
    (i) => `      { let e = l.x + ${128 * i}u; let so = (base + min(pn + e / 8u, DD - 1u)) * 16u + (e % 8u) * 2u;
        sv[${2 * i}] = S[so]; sv[${2 * i + 1}] = S[so + 1u]; }`,
  )
  .join('\n')}
    }`;

// Readout of the state carried in for the READ_ROWS rows of tile prm.chunk + wg.z over one of `splits` ranges of state
// rows (as m2_read): pnum = Σ_p φ(q_t)_p S[p, :], pden = Σ_p φ(q_t)_p n[p]. The tile's q rows are staged once (scaled
// by m_t); per K tile S is staged once, then for each row tile of 64 thread l forms φ for state row p0 + l % 32 and rows
// (l / 32)·16 … + 16 (a warp reads one row at a time: one pair index is common, the other consecutive) and the
// subgroups multiply. A new sequence's first prm.fresh tiles read zeros.
// `seg` > 0: the tiles of every segment of `seg` rows at once, each reading its segment's starting state from the
// boundary slots m2_scan wrote (S, n and the scale's blocks of slot (sequence·prm.segs + segment)·heads + head); 0: the
// sequence's own state (its slot's).
/** Rows of one m2_read_mma workgroup: two row tiles of 64 share each staged K tile of S (and its fragments). */
export const READ_ROWS = 128;

export const m2ReadMmaSource = (head: string, d: number, emulate: boolean, seg: number) => {
  if (d !== TC_HEAD_DIM) throw new Error(`m2_read_mma: head dim ${d} must be ${TC_HEAD_DIM}`);
  const blocks = seg ? m2ScanBlocks(d) : SCALE_BLOCKS; // the scale's blocks: m2_scan's or m2_scale's
  const tiles = ['A', 'B'] as const;
  /** φ of row tile `t` (rows 64·t + tg·16 + j) for this thread's state row into As, its denominators' terms into d`t`. */
  const phi = (t: number) => `      {
        var f: array<f32, 16>;
${range(16)
  .map(
    (j) =>
      `        { let o = (${64 * t}u + tg * 16u + ${j}u) * 64u; f[${j}] = cf * f32(qs[o + a]) * f32(qs[o + b]); d${tiles[t]}[${j}] += f[${j}] * nv; }`,
  )
  .join('\n')}
        As[kf * ${U}u + tg * 2u] = pack8(vec4<f32>(f[0], f[1], f[2], f[3]), vec4<f32>(f[4], f[5], f[6], f[7]));
        As[kf * ${U}u + tg * 2u + 1u] = pack8(vec4<f32>(f[8], f[9], f[10], f[11]), vec4<f32>(f[12], f[13], f[14], f[15]));
      }`;
  /** Row tile t's product of the staged K tile; on tensor cores the right fragments are loaded once, for both tiles. */
  const products = (t: number) => {
    const T = tiles[t];
    if (emulate)
      return `      for (var k = 0u; k < ${KT}u; k++) {
        let r = l.x / 2u;
        let av = half8(As[k * ${U}u + r / 8u], r % 8u);
        for (var j = 0u; j < 32u; j++) {
          let c = (l.x % 2u) * 32u + j;
          acc${T}[j] += av * half8(Bs[k * ${U}u + c / 8u], c % 8u);
        }
      }`;
    return range(KT / 16)
      .map(
        (k) => `      {
        let a = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, col_major>(&As, ${16 * k * U}u + sg * 2u, ${U}u);
${range(4)
  .map((c) => `        m${T}${c} = subgroupMatrixMultiplyAccumulate(a, b${k}${c}, m${T}${c});`)
  .join('\n')}
      }`,
      )
      .join('\n');
  };
  const rightFragments = emulate
    ? ''
    : range(KT / 16)
        .flatMap((k) =>
          range(4).map(
            (c) =>
              `      let b${k}${c} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&Bs, ${16 * k * U + 2 * c}u, ${U}u);`,
          ),
        )
        .join('\n');
  const acc = tiles
    .map((T) =>
      emulate
        ? `  var acc${T}: array<f32, 32>;`
        : range(4)
            .map((c) => `  var m${T}${c} = subgroup_matrix_result<f32, 16, 16>();`)
            .join('\n'),
    )
    .join('\n');
  /** Row tile t's factor m_t² / sc for thread l's row l / 2 (of the tile) and its results, a quarter at a time. */
  const out = (t: number) => `  {
    let rt = ${64 * t}u + t2;
    let mt = rowScale(rt); let fo = mt * mt / sc;
    let k = ((r0 + rt) * H + h) * splits + sp;
${range(4)
  .map(
    (q) => `    workgroupBarrier();
${
  emulate
    ? `    if (l.x % 2u == ${q >> 1}u) { for (var j = 0u; j < 16u; j++) { Cs[(l.x / 2u) * ${CS}u + j] = acc${tiles[t]}[${(q & 1) * 16}u + j]; } }`
    : `    subgroupMatrixStore<row_major>(&Cs, sg * ${16 * CS}u, m${tiles[t]}${q}, ${CS}u);`
}
    workgroupBarrier();
    {
${quarter}
      if (rt < L) { pnum[k * 16u + ${4 * q}u + (l.x % 2u) * 2u] = lo * fo; pnum[k * 16u + ${4 * q}u + (l.x % 2u) * 2u + 1u] = hi * fo; }
    }`,
  )
  .join('\n')}
  }`;
  /** Row tile t's denominators: thread l's terms are its rows tg·16 + j over its state rows (lane kf); the 32 lanes of
   *  each 32 rows are added through Cs. */
  const den = (t: number) =>
    range(2)
      .map(
        (c) => `  workgroupBarrier();
  if (tg / 2u == ${c}u) {
${range(16)
  .map((j) => `    Cs[kf * 33u + (tg % 2u) * 16u + ${j}u] = d${tiles[t]}[${j}];`)
  .join('\n')}
  }
  workgroupBarrier();
  if (l.x < 32u) {
    let rt = ${64 * t + 32 * c}u + l.x;
    var sum = 0.0;
    for (var k = 0u; k < ${KT}u; k++) { sum += Cs[k * 33u + l.x]; }
    let m = rowScale(rt);
    if (rt < L) { pden[((r0 + rt) * H + h) * splits + sp] = sum * m * m; }
  }`,
      )
      .join('\n');
  return `${tcEnables(emulate)}${head}${PHI}
${HALVES8}
${ro(2, 'x', 'vec4<f32>')}
${ro(3, 'pairs', 'u32')}
${ro(4, 'S', 'vec4<f32>')}
${ro(5, 'N')}
${ro(6, 'smax')}
${rw(7, 'pnum', 'vec4<f32>')}
${rw(8, 'pden')}
const DD = ${phiDim(d)}u;
var<workgroup> qs: array<f16, ${READ_ROWS * 64}>; // q_t / m_t [t][a]
var<workgroup> As: array<vec4<u32>, ${KT * U}>; // φ(q_t / m_t)_p of one row tile [p][t / 8]
var<workgroup> Bs: array<vec4<u32>, ${KT * U}>; // S·scale [p][m / 8]
var<workgroup> Cs: array<f32, ${64 * CS}>; // a quarter of a row tile's result [t][m]; the denominators' terms
var<workgroup> rm: array<f32, ${2 * READ_ROWS}>; // row maxima (two halves per row)
// m_t of row t of the tile: the power of two above its largest |q|
fn rowScale(t: u32) -> f32 { return ldexp(1.0, frexp(max(rm[2u * t], rm[2u * t + 1u])).exp); }
${entry(emulate)} {
  let H = prm.heads; let splits = prm.splits; let tile = prm.chunk + wg.z;
  let sp = wg.x; let s = wg.y / H; let h = wg.y % H;
  let n = seqRows(s); let start = tile * ${READ_ROWS}u;
  if (start >= n) { return; }
  let L = min(${READ_ROWS}u, n - start); let width4 = 3u * H * 16u;
  let r0 = seqRow0(s) + start;
  ${seg ? `let slot = (s * prm.segs + start / ${seg}u) * H + h; let base = slot * DD;` : 'let slot = wg.y; let base = (seqSlot(s) * H + h) * DD;'}
  let per = (DD + splits * ${KT}u - 1u) / (splits * ${KT}u) * ${KT}u; let pa = sp * per; let pb = min(DD, pa + per);
  var sm = 0.0;
  for (var b = 0u; b < ${blocks}u; b++) { sm = max(sm, smax[slot * ${blocks}u + b]); }
  let sc = ldexp(1.0, 14 - frexp(sm).exp);
  // q of the tile's rows (rows past L repeat row L − 1), scaled by m_t, the power of two above the row's largest |q|:
  // thread l takes half l % 2 of row l / 2 of each row tile
  let t2 = l.x / 2u;
  var qv: array<vec4<f32>, 16>;
${range(2)
  .map(
    (t) => `  {
    let qo = (r0 + min(${64 * t}u + t2, L - 1u)) * width4 + h * 16u + (l.x % 2u) * 8u;
    var mx = vec4<f32>(0.0);
${range(8)
  .map((j) => `    qv[${8 * t + j}] = x[qo + ${j}u]; mx = max(mx, abs(qv[${8 * t + j}]));`)
  .join('\n')}
    rm[${128 * t}u + l.x] = max(max(mx.x, mx.y), max(mx.z, mx.w));
  }`,
  )
  .join('\n')}
  workgroupBarrier();
${range(2)
  .map(
    (t) => `  {
    let mi = 1.0 / rowScale(${64 * t}u + t2);
${range(8)
  .map(
    (j) =>
      `    { let v = qv[${8 * t + j}] * mi; let o = (${64 * t}u + t2) * 64u + (l.x % 2u) * 32u + ${4 * j}u; qs[o] = f16(v.x); qs[o + 1u] = f16(v.y); qs[o + 2u] = f16(v.z); qs[o + 3u] = f16(v.w); }`,
  )
  .join('\n')}
  }`,
  )
  .join('\n')}
  let kf = l.x % ${KT}u; let tg = l.x / ${KT}u; // φ: state row p0 + kf, rows tg·16 … + 16 of each row tile
  var dA: array<f32, 16>; var dB: array<f32, 16>; // Σ_p φ(q_t / m_t)_p n_p of those rows over this thread's state rows
${acc}
  if (!(seqPos(s) == 0u && tile < prm.fresh)) {
    // a K tile's loads from memory (its pair and n for this thread's state row, two units of S rows) are issued a
    // tile ahead, into registers
    var prv: u32; var nvv: f32; var sv: array<vec4<f32>, 4>;
${readoutLoads('pa')}
    for (var p0 = pa; p0 < pb; p0 += ${KT}u) {
      workgroupBarrier(); // qs is staged; the previous tile's products are done
${range(2)
  .map(
    (i) => `      { let e = l.x + ${128 * i}u; let keep = select(0.0, sc, p0 + e / 8u < pb);
        Bs[(e / 8u) * ${U}u + e % 8u] = pack8(sv[${2 * i}] * keep, sv[${2 * i + 1}] * keep); }`,
  )
  .join('\n')}
      let p = p0 + kf; let a = prv & 0xffffu; let b = prv >> 16u;
      let cf = select(0.0, phiCoef(a, b), p < pb); let nv = nvv;
${readoutLoads(`p0 + ${KT}u`)}
${phi(0)}
      workgroupBarrier();
${rightFragments}
${products(0)}
      workgroupBarrier(); // tile A's products have read As
${phi(1)}
      workgroupBarrier();
${products(1)}
    }
  }
${out(0)}
${out(1)}
${den(0)}
${den(1)}
}`;
};

/** The update's loads for the K tile at row `t0` of the chunk (clamped into its rows): k units e = l + 128i (row e / 16,
 *  vec4 e % 16), v units e = l + 128i (row e / 8, columns (e % 8)·8 … + 8), and G of row t0 + l (threads below KT). */
const updateLoads = (t0: string) => `  {
    let tn = ${t0};
${range(4)
  .map(
    (i) => `    kr[${i}] = x[(r0 + min(tn + (l.x + ${128 * i}u) / 16u, L - 1u)) * width4 + E4 + h * 16u + l.x % 16u];`,
  )
  .join('\n')}
${range(2)
  .map(
    (
      i,
    ) => `    { let e = l.x + ${128 * i}u; let vo = (r0 + min(tn + e / 8u, L - 1u)) * width4 + 2u * E4 + h * 16u + (e % 8u) * 2u;
      vr[${2 * i}] = x[vo]; vr[${2 * i + 1}] = x[vo + 1u]; }`,
  )
  .join('\n')}
    if (l.x < ${KT}u) { gv = G[(r0 + min(tn + l.x, L - 1u)) * H + h]; }
  }`;

/** State rows per workgroup of m2_update_mma: 128, so each k and v row of a segment is read by half as many workgroups
 *  as with 64 (run64: the update's loads of k and v were 40% of its time). Slower while segments ran one after another
 *  (run71: 272 workgroups a dispatch, 0.48 against 0.39 ms a layer); with every segment at once, faster (run81:
 *  0.269 against 0.334 ms a layer, a 4096-row step 31.6 against 33.0 ms). */
export const UPDATE_ROWS = 128;

// The state update over chunk prm.chunk + wg.z of `chunk` rows (a segment) for a block of UPDATE_ROWS state rows p (as
// m2_update): S ← e^{G_e} S + Σ_t φ(s·k_t)_p e^{G_e − G_t} v_tᵀ and n likewise. Per K tile the k rows and their weights
// are staged, then thread l forms φ for state rows pBase + l % 64 and pBase + 64 + l % 64 and rows (l / 64)·16 … + 16
// from them; subgroup g multiplies state rows 32g … + 32. The result leaves a 16-column quarter at a time through the
// k rows' memory (free after the last tile), thread l writing state row pBase + l. Runs after the readout, which reads
// the old S. `delta`: every segment at once, each writing only its own sum (Σ_t …, no e^{G_e} S) into its boundary
// slot (sequence·prm.segs + segment)·heads + head of S and n, for m2_scan.
export const m2UpdateMmaSource = (head: string, d: number, chunk: number, emulate: boolean, delta: boolean) => {
  if (d !== TC_HEAD_DIM) throw new Error(`m2_update_mma: head dim ${d} must be ${TC_HEAD_DIM}`);
  const BP = UPDATE_ROWS;
  // φ of state rows pBase + pl + 64·i (i = 0, 1) for this thread's 16 rows, into As; n's sums
  const phiRows = range(2)
    .map(
      (i) => `      {
        var f: array<f32, 16>;
${range(16)
  .map(
    (j) =>
      `        { let t = th * 16u + ${j}u; f[${j}] = cf${i} * wt[t] * ks[t * 16u + a${i} / 4u][a${i} % 4u] * ks[t * 16u + b${i} / 4u][b${i} % 4u]; nacc${i} += f[${j}]; }`,
  )
  .join('\n')}
        As[(${64 * i}u + pl) * 5u + th * 2u] = pack8(vec4<f32>(f[0], f[1], f[2], f[3]), vec4<f32>(f[4], f[5], f[6], f[7]));
        As[(${64 * i}u + pl) * 5u + th * 2u + 1u] = pack8(vec4<f32>(f[8], f[9], f[10], f[11]), vec4<f32>(f[12], f[13], f[14], f[15]));
      }`,
    )
    .join('\n');
  // As [p][t / 8] (row-major left) times Bs [t][m / 8]: emulated, thread l accumulates state row l, all 64 columns
  const product = emulate
    ? `    for (var k = 0u; k < ${KT}u; k++) {
      let a = half8(As[l.x * 5u + k / 8u], k % 8u);
      for (var j = 0u; j < 64u; j++) { acc[j] += a * half8(Bs[k * ${U}u + j / 8u], j % 8u); }
    }`
    : range(KT / 16)
        .map(
          (st) => `    {
${range(2)
  .map(
    (r) =>
      `      let a${r} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&As, sg * ${32 * 5}u + ${16 * r * 5 + 2 * st}u, 5u);`,
  )
  .join('\n')}
${range(4)
  .map(
    (
      c,
    ) => `      { let b = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&Bs, ${16 * st * U + 2 * c}u, ${U}u);
        m0${c} = subgroupMatrixMultiplyAccumulate(a0, b, m0${c}); m1${c} = subgroupMatrixMultiplyAccumulate(a1, b, m1${c}); }`,
  )
  .join('\n')}
    }`,
        )
        .join('\n');
  const accumulators = emulate
    ? '  var acc: array<f32, 64>;'
    : range(2)
        .flatMap((r) => range(4).map((c) => `  var m${r}${c} = subgroup_matrix_result<f32, 16, 16>();`))
        .join('\n');
  // quarter q of the result (columns 16q … + 16) into ks as [p][4 vec4], then thread l's state row
  const epilogue = range(4)
    .map(
      (q) => `  workgroupBarrier();
${
  emulate
    ? range(4)
        .map(
          (i) =>
            `  ks[l.x * 4u + ${i}u] = vec4<f32>(acc[${16 * q + 4 * i}], acc[${16 * q + 4 * i + 1}], acc[${16 * q + 4 * i + 2}], acc[${16 * q + 4 * i + 3}]);`,
        )
        .join('\n')
    : range(2)
        .map((r) => `  subgroupMatrixStore<row_major>(&ks, sg * ${32 * 4}u + ${16 * r * 4}u, m${r}${q}, 4u);`)
        .join('\n')
}
  workgroupBarrier();
  if (p < DD) {
    let si = (base + p) * 16u + ${4 * q}u;
${range(4)
  .map(
    (i) =>
      `    S[si + ${i}u] = ${delta ? '' : `select(eg * S[si + ${i}u], vec4<f32>(0.0), fresh) + `}ks[l.x * 4u + ${i}u];`,
  )
  .join('\n')}
  }`,
    )
    .join('\n');
  return `${tcEnables(emulate)}${head}${PHI}
${HALVES8}
${ro(2, 'x', 'vec4<f32>')}
${ro(3, 'G')}
${ro(4, 'pairs', 'u32')}
${rw(5, 'S', 'vec4<f32>')}
${rw(6, 'N')}
const D = 64u;
const DD = ${phiDim(d)}u;
var<workgroup> ks: array<vec4<f32>, ${KT * 16}>; // k_t [t][a / 4]; after the last tile a quarter of the result [p][m / 4]
var<workgroup> wt: array<f32, ${KT}>; // e^{G_e − G_t} / d (0 past the chunk's rows)
var<workgroup> As: array<vec4<u32>, ${BP * 5}>; // φ(s·k_t)_p·e^{G_e − G_t} [p][t / 8]
var<workgroup> Bs: array<vec4<u32>, ${KT * U}>; // v_t [t][m / 8]
var<workgroup> nr: array<f32, ${2 * BP}>; // n's sums: state row i (of the block) + ${BP}·(l / 64)
${entry(emulate)} {
  let H = prm.heads; let c = prm.chunk + wg.z;
  let blk = wg.x; let s = wg.y / H; let h = wg.y % H;
  let n = seqRows(s); let start = c * ${chunk}u;
  if (start >= n) { return; }
  let L = min(${chunk}u, n - start); let E4 = H * 16u; let width4 = 3u * E4;
  let r0 = seqRow0(s) + start; let base = ${delta ? '((s * prm.segs + c) * H + h) * DD' : '(seqSlot(s) * H + h) * DD'};
  let Ge = G[(r0 + L - 1u) * H + h]; let pBase = blk * ${BP}u;
  let pl = l.x % 64u; let th = l.x / 64u; // φ: state rows pBase + pl (+ 64), rows t0 + th·16 … + 16
${range(2)
  .map(
    (
      i,
    ) => `  let pr${i} = pairs[min(pBase + ${64 * i}u + pl, DD - 1u)]; let a${i} = pr${i} & 0xffffu; let b${i} = pr${i} >> 16u;
  let cf${i} = select(0.0, phiCoef(a${i}, b${i}), pBase + ${64 * i}u + pl < DD); var nacc${i} = 0.0;`,
  )
  .join('\n')}
${accumulators}
  // a K tile's loads from memory (4 vec4 of k rows, 2 units of v rows, a row's G) are issued a tile ahead, into registers
  var kr: array<vec4<f32>, 4>; var vr: array<vec4<f32>, 4>; var gv = 0.0;
${updateLoads('0u')}
  for (var t0 = 0u; t0 < L; t0 += ${KT}u) {
    workgroupBarrier(); // the previous tile's products are done
${range(4)
  .map((i) => `    ks[l.x + ${128 * i}u] = kr[${i}];`)
  .join('\n')}
    if (l.x < ${KT}u) { wt[l.x] = select(0.0, exp(Ge - gv) / f32(D), t0 + l.x < L); }
${range(2)
  .map(
    (i) => `    { let e = l.x + ${128 * i}u; let keep = select(0.0, 1.0, t0 + e / 8u < L);
      Bs[(e / 8u) * ${U}u + e % 8u] = pack8(vr[${2 * i}] * keep, vr[${2 * i + 1}] * keep); }`,
  )
  .join('\n')}
    workgroupBarrier();
${updateLoads(`t0 + ${KT}u`)}
${phiRows}
    workgroupBarrier();
${product}
  }
  nr[th * ${BP}u + pl] = nacc0; nr[th * ${BP}u + 64u + pl] = nacc1;
  let eg = exp(Ge); let fresh = seqPos(s) == 0u && c == 0u;
  let p = pBase + l.x;
${epilogue}
  if (p < DD) { N[base + p] = ${delta ? '' : 'select(eg * N[base + p], 0.0, fresh) + '}nr[l.x] + nr[l.x + ${BP}u]; }
}`;
};
