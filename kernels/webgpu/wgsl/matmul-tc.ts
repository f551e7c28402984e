// The matmuls on tensor cores (issue 12; chromium_experimental_subgroup_matrix → VK_KHR_cooperative_matrix):
// out[r, n] (+)= Σ_k x'[r, k] W[n, k], x' the prologue (none, rmsnorm, silu·mul) as in matmul.ts. Two dispatches,
// `gemm_in16` then `gemm_mma` (prefill: many rows) or `gemm_skinny` (3. below: 8–63 rows, batched decode):
// 1. `gemm_in16` forms x' once per row (rmsnorm's Σ x² over the whole row first) and writes it as f16 (clamped to
//    ±65504; relative error ≤ 2⁻¹¹ per element; f16 weights are used as they are, bf16 ones are exact in f16 within
//    its range, f32 ones are rounded like x'; the sums are f32).
// 2. `gemm_mma` multiplies: a workgroup computes a 128 × 128 block of out with 8 subgroups of 32, each 32 rows × 64
//    columns as 2 × 4 fragments of 16 × 16 (f32 accumulators; other tiles with FURY_MMA_SHAPE: 128 × 256 and 256 × 128
//    on 64 × 64 subgroups, 128 × 128 on four, 64 × 128 ran slower, docs/perf.md). Each K step of 64 (32 where the device's workgroup
//    memory is under 45 KiB, and emulated) stages both tiles in workgroup memory as f16 with 16-byte loads (rows padded
//    by 8 halves; bf16 and f32 weights converted as they are staged), the next step's loads in flight while this one
//    multiplies. 4 subgroups of 64 × 64 with steps of 32 (until 2026-11-27) measured standalone on an H100
//    (docs/bench/tc-probe-2026-11-26): 193 TFLOP/s at 1024 × 4096 × 1024, 217 at 4096³; fragments loaded straight
//    from the buffers ran 34–89. Rows past the step and columns past N are clamped on load and not written. A whole
//    tile writes its fragments straight to out (with the residual add: the accumulators start from out); a partial
//    tile goes through a 16 × 16 staging tile per subgroup, as do f16 and glu outputs (MmaOut below).
// `emulate`: the same staging and tile walks with the products in plain WGSL (lavapipe in CI tests the indexing).
// gemm_mma requires K to be a multiple of its step (gemmMmaK: 64 or 32).
import type { WeightDType } from '../../backend.js';
import { MMA_SHAPE, type MmaShape } from '../tuning.js';
import { type Caps, HALVES8, SILU4, tcEnables } from './common.js';

/** The input prologue of a matmul: none, rmsnorm (x·rsqrt(mean x² + eps)·w_norm), or silu(gate)·up. */
export type MatmulPrologue = 'none' | 'norm' | 'silu';

/** gemm_mma's tile (tuning.ts: FURY_MMA_SHAPE; 128 × 128 on 4 × 2 subgroups by default). */
export { MMA_SHAPE };
/** Bytes of gemm_mma's workgroup memory with K steps of bk: both staged tiles (rows padded by 8 halves) and a 16 × 16
 *  f32 staging tile per subgroup. */
const gemmMmaBytes = ({ TM, TN, SGM, SGN }: MmaShape, bk: number) => (TM + TN) * (bk / 8 + 1) * 16 + SGM * SGN * 1024;
/** gemm_mma's K steps on a device: 64 where its workgroup memory holds them (45 KiB with the default tile; an H100 has
 *  48), and 32 (emulated: lavapipe has 32 KiB). 64 halves the barriers a product crosses (docs/perf.md). */
export const gemmMmaSteps = (caps: Caps) =>
  caps.matrices === 'on' && caps.workgroupBytes >= gemmMmaBytes(MMA_SHAPE, 64) ? [64, 32] : [32];
/** The K step of a product of depth k (a multiple of it), or 0 where none divides k. */
export const gemmMmaK = (caps: Caps, k: number) => gemmMmaSteps(caps).find((bk) => k % bk === 0) ?? 0;
const range = (n: number) => [...Array(n).keys()];

/** `head`: the kernel header (MATMUL_PARAMS and the step meta, from matmul.ts), as for both kernels. */
export const gemmIn16Source = (head: string, pro: MatmulPrologue) => `${head}
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> xh: array<vec2<u32>>;
${pro === 'norm' ? '@group(0) @binding(4) var<storage, read> nw: array<vec4<f32>>;' : ''}
${SILU4}
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let r = wg.x + 65535u * wg.y;
  if (r >= select(nRows(), nSeqs(), prm.perSeq == 1u)) { return; }
  let K4 = prm.K / 4u; let XS = ${pro === 'silu' ? '2u' : '1u'} * K4; // vec4s per x row (silu: gate then up)
  var scale = 1.0;
${
  pro === 'norm'
    ? `  var s = 0.0;
  for (var k = t; k < K4; k += 256u) { let a = x[r * XS + k]; s += dot(a, a); }
  red[t] = s;
  for (var h = 128u; h > 0u; h /= 2u) {
    workgroupBarrier();
    if (t < h) { red[t] += red[t + h]; }
  }
  workgroupBarrier();
  scale = 1.0 / sqrt(red[0] / f32(prm.K) + prm.eps);`
    : ''
}
  for (var k = t; k < K4; k += 256u) {
    var a = x[r * XS + k];
${pro === 'silu' ? '    a = silu4(a) * x[r * XS + k + K4];' : ''}
${pro === 'norm' ? '    a = a * scale * nw[k];' : ''}
    a = clamp(a, vec4<f32>(-65504.0), vec4<f32>(65504.0));
    xh[r * K4 + k] = vec2<u32>(pack2x16float(a.xy), pack2x16float(a.zw));
  }
}`;

/** A weight row's 8 values at k = 8·k8 … as loaded (f16, bf16: one vec4<u32>; f32: two vec4<f32>), and their f16 pack. */
const WLOAD: Record<WeightDType, { type: string; load: (i: string) => string; pack: (v: string) => string }> = {
  f16: { type: 'vec4<u32>', load: (i) => `w[${i}]`, pack: (v) => v },
  bf16: {
    type: 'vec4<u32>',
    load: (i) => `w[${i}]`,
    pack: (
      v,
    ) => `packClamped8(vec4<f32>(bitcast<f32>(${v}.x << 16u), bitcast<f32>(${v}.x & 0xffff0000u), bitcast<f32>(${v}.y << 16u), bitcast<f32>(${v}.y & 0xffff0000u)),
      vec4<f32>(bitcast<f32>(${v}.z << 16u), bitcast<f32>(${v}.z & 0xffff0000u), bitcast<f32>(${v}.w << 16u), bitcast<f32>(${v}.w & 0xffff0000u)))`,
  },
  f32: {
    type: 'array<vec4<f32>, 2>',
    load: (i) => `array<vec4<f32>, 2>(w[2u * (${i})], w[2u * (${i}) + 1u])`,
    pack: (v) => `packClamped8(${v}[0], ${v}[1])`,
  },
};

/** What gemm_mma writes: out as f32 (with the residual add), out as f16 (no add; rounded, clamped to ±65504: a
 *  projection whose consumer takes f16, [qkv | A] for conv2), or `glu`: the product is [gate | up] (N = 2I columns of
 *  W) and the kernel writes silu(gate) ⊙ up as f16 rows of I — the down projection's x' (gemm_in16's silu prologue in
 *  the epilogue): a workgroup takes TN/2 columns of each half, the gate's in the left half of its subgroup columns and
 *  the up's in the right, each pair's fragments meeting in workgroup memory. */
export type MmaOut = 'f32' | 'f16' | 'glu';

export const gemmMmaSource = (
  head: string,
  dtype: WeightDType,
  emulate: boolean,
  BK: number,
  out: MmaOut = 'f32',
  shape: MmaShape = MMA_SHAPE,
) => {
  const glu = out === 'glu',
    half = out === 'f16';
  const { TM, TN, SGM, SGN } = shape,
    SG = SGM * SGN,
    G = BK / 8, // 16-byte units of a staged row
    LD8 = G + 1, // staged row length in 16-byte units of 8 halves (padding spreads a fragment's rows over banks)
    wl = WLOAD[dtype],
    W = 32 * SG, // threads
    SR = TM / SGM, // rows of out per subgroup
    SC = TN / SGN, // and columns
    FR = SR / 16, // its fragment rows
    FC = SC / 16, // and columns
    NA = (TM * G) / W, // 16-byte units each thread stages per step: of x'
    NB = (TN * G) / W, // of the weights
    TPR = W / TM, // emulated: threads per row of out
    CPT = TN / TPR; // emulated: columns per thread
  if (!Number.isInteger(NA) || !Number.isInteger(NB) || (glu && (TN / 2) % (W / G) !== 0))
    throw new Error(`gemm_mma: a ${TM} × ${TN} tile's steps of ${BK} do not split over ${W} threads`);
  if (emulate && TPR !== 1 && TPR !== 2) throw new Error(`gemm_mma emulated: ${TM} rows on ${W} threads`);
  const frags = range(FR).flatMap((i) => range(FC).map((j) => [i, j] as const));
  const m = (i: number, j: number) => `m${i}${j}`;
  // fragment (i, j) of this subgroup into its 16 × 16 slot of Cs (the epilogues that go through workgroup memory)
  const toCs = (i: number, j: number) => `  workgroupBarrier();
  subgroupMatrixStore<row_major>(&Cs, sg * 256u, ${m(i, j)}, 16u);
  workgroupBarrier();`;
  // offset of fragment (i, j) of this subgroup in out
  const outAt = (i: number, j: number) => `(r0 + sr0 + ${16 * i}u) * N + c0 + sc0 + ${16 * j}u`;
  const accum = emulate
    ? `  var acc: array<f32, ${CPT}>;`
    : [
        ...frags.map(([i, j]) => `  var ${m(i, j)} = subgroup_matrix_result<f32, 16, 16>();`),
        ...(glu || half
          ? []
          : [
              `  if (full && prm.add == 1u) {`,
              ...frags.map(
                ([i, j]) =>
                  `    ${m(i, j)} = subgroupMatrixLoad<subgroup_matrix_result<f32, 16, 16>, row_major>(&outp, ${outAt(i, j)}, N);`,
              ),
              `  }`,
            ]),
      ].join('\n');
  const products = emulate
    ? `    for (var k = 0u; k < ${BK}u; k++) {
      let a = half8(As[er * ${LD8}u + k / 8u], k % 8u);
      for (var j = 0u; j < ${CPT}u; j++) { acc[j] += a * half8(Bs[(ec + j) * ${LD8}u + k / 8u], k % 8u); }
    }`
    : range(BK / 16)
        .map(
          (kk) => `    {
${range(FC)
  .map(
    (j) =>
      `      let b${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&Bs, (sc0 + ${16 * j}u) * ${LD8}u + ${2 * kk}u, ${LD8}u);`,
  )
  .join('\n')}
${range(FR)
  .map(
    (i) =>
      `      let a${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&As, (sr0 + ${16 * i}u) * ${LD8}u + ${2 * kk}u, ${LD8}u);`,
  )
  .join('\n')}
${frags.map(([i, j]) => `      ${m(i, j)} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, ${m(i, j)});`).join('\n')}
    }`,
        )
        .join('\n');
  // glu: silu(gate) ⊙ up of 4 values from f32 v (gate) and u, rounded to f16 into row r, column c of xo
  const gluPut = (r: string, c: string, g: string, u: string) =>
    `xo[(${r} * I + ${c}) / 4u] = pack4(clamp(silu4(${g}) * ${u}, vec4<f32>(-65504.0), vec4<f32>(65504.0)));`;
  const cs4 = (i: string) => `vec4<f32>(Cs[${i}], Cs[${i} + 1u], Cs[${i} + 2u], Cs[${i} + 3u])`;
  const acc4 = (a: string) => `vec4<f32>(acc[${a}], acc[${a} + 1u], acc[${a} + 2u], acc[${a} + 3u])`;
  const gluEpilogue = !emulate
    ? `  let I = N / 2u; let hs = ${SGN / 2}u; let sn = sg % ${SGN}u; // the pair: subgroup columns sn % hs and hs + sn % hs
  let gs = (sg - sn + sn % hs) * 256u; let us = gs + hs * 256u; let e = ((sn / hs) * 32u + lane) * 4u;
${frags
  .map(
    ([i, j]) => `${toCs(i, j)}
  {
    let r = r0 + sr0 + ${16 * i}u + e / 16u;
    if (r < Rt) { ${gluPut('r', `c0 + (sn % hs) * ${SC}u + ${16 * j}u + e % 16u`, cs4('gs + e'), cs4('us + e'))} }
  }`,
  )
  .join('\n')}`
    : TPR === 1
      ? `  let I = N / 2u; let r = r0 + er; // the thread holds row er's gate and up columns
  if (r < Rt) {
    for (var a = 0u; a < ${TN / 2}u; a += 4u) { ${gluPut('r', 'c0 + a', acc4('a'), acc4(`a + ${TN / 2}u`))} }
  }`
      : `  let I = N / 2u; let r = r0 + er; // thread 2i holds row i's gate columns, 2i + 1 its up columns
  for (var q = 0u; q < ${TN / 32}u; q++) {
    workgroupBarrier();
    if (t % 2u == 1u) { for (var j = 0u; j < 16u; j++) { Cs[er * 16u + j] = acc[16u * q + j]; } }
    workgroupBarrier();
    if (t % 2u == 0u && r < Rt) {
      for (var j = 0u; j < 16u; j += 4u) {
        let a = 16u * q + j;
        ${gluPut('r', 'c0 + a', acc4('a'), cs4('er * 16u + j'))}
      }
    }
  }`;
  // f16: 8 values of row r from column c (a multiple of 8; N is) as one 16-byte store
  const halfPut = (r: string, c: string, lo: string, hi: string) =>
    `if (${r} < Rt && ${c} < N) { xo[(${r} * N + ${c}) / 8u] = packClamped8(${lo}, ${hi}); }`;
  const halfEpilogue = emulate
    ? `  let r = r0 + er;
  for (var j = 0u; j < ${CPT}u; j += 8u) { ${halfPut('r', 'c0 + ec + j', acc4('j'), acc4('j + 4u'))} }`
    : frags
        .map(
          ([i, j]) => `${toCs(i, j)}
  {
    let e = lane * 8u; let r = r0 + sr0 + ${16 * i}u + e / 16u; let c = c0 + sc0 + ${16 * j}u + e % 16u;
    ${halfPut('r', 'c', cs4('sg * 256u + e'), cs4('sg * 256u + e + 4u'))}
  }`,
        )
        .join('\n');
  const epilogue = half
    ? halfEpilogue
    : glu
      ? gluEpilogue
      : emulate
        ? `  let r = r0 + er;
  if (r < Rt) {
    for (var j = 0u; j < ${CPT}u; j++) { let c = c0 + ec + j; if (c < N) { put(r, c, acc[j]); } }
  }`
        : `  if (full) {
${frags.map(([i, j]) => `    subgroupMatrixStore<row_major>(&outp, ${outAt(i, j)}, ${m(i, j)}, N);`).join('\n')}
    return;
  }
${frags
  .map(
    ([i, j]) => `${toCs(i, j)}
  for (var u = 0u; u < 8u; u++) {
    let e = lane * 8u + u; let r = r0 + sr0 + ${16 * i}u + e / 16u; let c = c0 + sc0 + ${16 * j}u + e % 16u;
    if (r < Rt && c < N) { put(r, c, Cs[sg * 256u + e]); }
  }`,
  )
  .join('\n')}`;
  // staging: (row, 8-half group) pairs, G groups a row; thread t loads rows t / G + (W / G)·u, group t % G
  const row = (u: number) => `t / ${G}u + ${(W / G) * u}u`,
    // the weight row of tile column row(u); glu: rows TN/2 … of the tile are the up half's (u's rows all one side)
    col = (u: number) => (glu && (W / G) * u >= TN / 2 ? `c0 + ${row(u)} - ${TN / 2}u + N / 2u` : `c0 + ${row(u)}`);
  const loads = (k8: string) =>
    [
      ...range(NA).map((u) => `pa${u} = xh[min(r0 + ${row(u)}, Rt - 1u) * K8 + ${k8} + t % ${G}u];`),
      ...range(NB).map((u) => `pb${u} = ${wl.load(`min(${col(u)}, N - 1u) * K8 + ${k8} + t % ${G}u`)};`),
    ].join('\n    ');
  const puts = [
    ...range(NA).map((u) => `As[(${row(u)}) * ${LD8}u + t % ${G}u] = pa${u};`),
    ...range(NB).map((u) => `Bs[(${row(u)}) * ${LD8}u + t % ${G}u] = ${wl.pack(`pb${u}`)};`),
  ].join('\n    ');
  return `${tcEnables(emulate)}${head}
@group(0) @binding(2) var<storage, read> w: array<${dtype === 'f32' ? 'vec4<f32>' : 'vec4<u32>'}>;
@group(0) @binding(3) var<storage, read> xh: array<vec4<u32>>;
${
  glu
    ? `@group(0) @binding(4) var<storage, read_write> xo: array<vec2<u32>>; // silu(gate) ⊙ up, f16 [row][I]
${SILU4}
fn pack4(v: vec4<f32>) -> vec2<u32> { return vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw)); }`
    : half
      ? '@group(0) @binding(4) var<storage, read_write> xo: array<vec4<u32>>; // out as f16 [row][N], 8 a unit'
      : '@group(0) @binding(4) var<storage, read_write> outp: array<f32>;'
}
var<workgroup> As: array<vec4<u32>, ${TM * LD8}>; // x' tile [row][k], 8 halves per element
var<workgroup> Bs: array<vec4<u32>, ${TN * LD8}>; // weight tile [column][k]
${
  emulate && !(glu && TPR === 2)
    ? ''
    : `var<workgroup> Cs: array<f32, ${Math.max(SG * 256, emulate ? TM * 16 : 0)}>; // a 16 × 16 staging tile per subgroup (emulated glu: up's 16 columns)`
}
${HALVES8}
fn packClamped8(lo: vec4<f32>, hi: vec4<f32>) -> vec4<u32> { // 8 values as f16, clamped to ±65504
  return pack8(clamp(lo, vec4<f32>(-65504.0), vec4<f32>(65504.0)), clamp(hi, vec4<f32>(-65504.0), vec4<f32>(65504.0)));
}
${
  glu || half
    ? ''
    : `fn put(r: u32, c: u32, v: f32) {
  let oi = r * prm.N + c;
  outp[oi] = select(v, outp[oi] + v, prm.add == 1u);
}`
}
@compute @workgroup_size(${W}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32${
    emulate ? '' : ', @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32'
  }) {
  let K = prm.K; let N = prm.N; let Rt = nRows(); let K8 = K / 8u;
  let r0 = wg.y * ${TM}u; let c0 = wg.x * ${glu ? TN / 2 : TN}u;
${
  emulate
    ? `  let er = t / ${TPR}u; let ec = (t % ${TPR}u) * ${CPT}u; // this thread's row and first column of the tile`
    : `  let sr0 = (sg / ${SGN}u) * ${SR}u; let sc0 = (sg % ${SGN}u) * ${SC}u;\n  let full = r0 + ${TM}u <= Rt && c0 + ${TN}u <= N && N % 4u == 0u; // rows of out 16-byte aligned`
}
${accum}
${range(NA)
  .map((u) => `  var pa${u}: vec4<u32>;`)
  .join('\n')}
${range(NB)
  .map((u) => `  var pb${u}: ${wl.type};`)
  .join('\n')}
  ${loads('0u')}
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
    workgroupBarrier(); // the previous step's products are done
    ${puts}
    workgroupBarrier();
    if (k0 + ${BK}u < K) {
      let k8 = (k0 + ${BK}u) / 8u;
    ${loads('k8')}
    }
${products}
  }
${epilogue}
}`;
};

/** The skinny tensor-core matmul's shape: SG subgroups of 32, each taking U fragments of 16 along K per step (a step
 *  spans 16·SG·U of K); NT column fragments of 16 per workgroup. */
export interface SkinnyShape {
  SG: number;
  NT: number;
  U: number;
}

/** Bytes of gemm_skinny's workgroup memory: the x' and weight tiles of a step, each subgroup's result fragments. */
const skinnyBytes = (MT: number, { SG, NT, U }: SkinnyShape) =>
  16 * (MT + NT) * (2 * SG * U + 1) * 16 + SG * MT * NT * 256 * 4;
/** The U a workgroup of MT row fragments uses: the shape's, halved until its memory fits 30 KiB (lavapipe has 32). */
export function skinnyU(MT: number, shape: SkinnyShape): number {
  let U = shape.U;
  while (U > 1 && skinnyBytes(MT, { ...shape, U }) > 30 * 1024) U /= 2;
  return U;
}

// 3. `gemm_skinny`, the product of few rows (batched decode, the LM head of a batch): a 128 × 128 tile would leave most
//    of the GPU idle (N / 128 workgroups), so a workgroup takes all 16·MT rows of a row block and only 16·NT columns,
//    and each K step of 16·SG·U is split over its SG subgroups. Both tiles of a step are staged in workgroup memory
//    with 16-byte loads (weights converted to f16 as staged), the next two steps' loads in flight while this one
//    multiplies (a step's own work is short against a memory round trip); the SG partial sums meet in workgroup
//    memory, where the epilogue (residual add, the 2Mamba conv front end) runs per element. Rows past the step are computed from x' rows gemm_in16 did not write (the scratch holds
//    whole row blocks) and not stored. Requires N % (16·NT) == 0 and K % (16·SG·U) == 0.
export const gemmSkinnySource = (
  head: string,
  dtype: WeightDType,
  MT: number,
  shape: SkinnyShape,
  emulate: boolean,
  conv: { bindings: (b: number) => string; body: string } | null,
) => {
  const { SG, NT } = shape,
    U = skinnyU(MT, shape),
    wl = WLOAD[dtype],
    LD = 2 * SG * U + 1, // staged row length in 16-byte units (one of padding)
    T = SG * 32,
    XL = MT * U, // 16-byte x' loads per thread and step: 16·MT rows × 2·SG·U units over 32·SG threads
    WLN = NT * U; // and weight loads
  const frags = range(MT).flatMap((i) => range(NT).map((j) => [i, j] as const));
  const m = (i: number, j: number) => `m${i}${j}`;
  // where subgroup s keeps fragment (i, j) in Cs
  const slot = (i: string, j: string, s = 'sg') => `((${s} * ${MT}u + ${i}) * ${NT}u + ${j}) * 256u`;
  // thread t's u-th 16-byte unit of a tile: row e / (LD − 1), unit e % (LD − 1)
  const unit = (u: number) => `(t + ${u * T}u)`;
  // two register sets (a, b) hold the loads of the next two steps
  const loads = (k8: string, r: string) =>
    [
      ...range(XL).map(
        (u) => `px${r}${u} = xh[(r0 + ${unit(u)} / ${LD - 1}u) * K8 + ${k8} + ${unit(u)} % ${LD - 1}u];`,
      ),
      ...range(WLN).map(
        (u) => `pw${r}${u} = ${wl.load(`(c0 + ${unit(u)} / ${LD - 1}u) * K8 + ${k8} + ${unit(u)} % ${LD - 1}u`)};`,
      ),
    ].join('\n    ');
  const puts = (r: string) =>
    [
      ...range(XL).map((u) => `Xs[(${unit(u)} / ${LD - 1}u) * ${LD}u + ${unit(u)} % ${LD - 1}u] = px${r}${u};`),
      ...range(WLN).map(
        (u) => `Ws[(${unit(u)} / ${LD - 1}u) * ${LD}u + ${unit(u)} % ${LD - 1}u] = ${wl.pack(`pw${r}${u}`)};`,
      ),
    ].join('\n    ');
  // this subgroup's U fragments of the step start at 16-byte unit (sg·U + q)·2 of a staged row
  const products = emulate
    ? `    for (var q = 0u; q < ${16 * U}u; q++) {
      let k = sg * ${16 * U}u + q;
      for (var u = 0u; u < 8u; u++) {
        let e = lane * 8u + u;
${range(MT)
  .map((i) => `        let a${i} = half8(Xs[(${16 * i}u + e / 16u) * ${LD}u + k / 8u], k % 8u);`)
  .join('\n')}
${range(NT)
  .map((j) => `        let b${j} = half8(Ws[(${16 * j}u + e % 16u) * ${LD}u + k / 8u], k % 8u);`)
  .join('\n')}
${frags.map(([i, j]) => `        acc[${(i * NT + j) * 8}u + u] += a${i} * b${j};`).join('\n')}
      }
    }`
    : range(U)
        .map(
          (q) => `    {
      let o = (sg * ${U}u + ${q}u) * 2u;
${range(NT)
  .map(
    (j) =>
      `      let b${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&Ws, ${16 * j * LD}u + o, ${LD}u);`,
  )
  .join('\n')}
${range(MT)
  .map(
    (i) =>
      `      let a${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&Xs, ${16 * i * LD}u + o, ${LD}u);`,
  )
  .join('\n')}
${frags.map(([i, j]) => `      ${m(i, j)} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, ${m(i, j)});`).join('\n')}
    }`,
        )
        .join('\n');
  const KC = 16 * SG * U;
  // one step from register set r, whose next loads are for the step at k0 + ahead
  const step = (r: string, ahead: number) => `    workgroupBarrier(); // the previous step's products are done
    ${puts(r)}
    workgroupBarrier();
    if (k0 + ${ahead}u < K) {
      let k8 = (k0 + ${ahead}u) / 8u;
    ${loads('k8', r)}
    }
${products}`;
  const accum = emulate
    ? `  var acc: array<f32, ${MT * NT * 8}>;`
    : frags.map(([i, j]) => `  var ${m(i, j)} = subgroup_matrix_result<f32, 16, 16>();`).join('\n');
  const results = emulate
    ? frags
        .map(
          ([i, j]) =>
            `  for (var u = 0u; u < 8u; u++) { Cs[${slot(`${i}u`, `${j}u`)} + lane * 8u + u] = acc[${(i * NT + j) * 8}u + u]; }`,
        )
        .join('\n')
    : frags
        .map(([i, j]) => `  subgroupMatrixStore<row_major>(&Cs, ${slot(`${i}u`, `${j}u`)}, ${m(i, j)}, 16u);`)
        .join('\n');
  return `${tcEnables(emulate)}${head}
@group(0) @binding(2) var<storage, read> w: array<${dtype === 'f32' ? 'vec4<f32>' : 'vec4<u32>'}>;
@group(0) @binding(3) var<storage, read> xh: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> outp: array<f32>;
${conv ? conv.bindings(5) : ''}
var<workgroup> Xs: array<vec4<u32>, ${16 * MT * LD}>; // x' tile [row][k], 8 halves per element
var<workgroup> Ws: array<vec4<u32>, ${16 * NT * LD}>; // weight tile [column][k]
var<workgroup> Cs: array<f32, ${SG * MT * NT * 256}>; // each subgroup's fragments, row-major 16 × 16
${HALVES8}
fn packClamped8(lo: vec4<f32>, hi: vec4<f32>) -> vec4<u32> { // 8 values as f16, clamped to ±65504
  return pack8(clamp(lo, vec4<f32>(-65504.0), vec4<f32>(65504.0)), clamp(hi, vec4<f32>(-65504.0), vec4<f32>(65504.0)));
}
@compute @workgroup_size(${T}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32${
    emulate ? '' : ', @builtin(subgroup_id) sg: u32'
  }) {
${emulate ? `  let sg = t / 32u; let lane = t % 32u;` : ''}
  let N = prm.N; let K = prm.K; let K8 = K / 8u; let Rt = select(nRows(), nSeqs(), prm.perSeq == 1u);
  let c0 = wg.x * ${16 * NT}u; let r0 = wg.y * ${16 * MT}u;
${accum}
${['a', 'b']
  .flatMap((r) => [
    ...range(XL).map((u) => `  var px${r}${u}: vec4<u32>;`),
    ...range(WLN).map((u) => `  var pw${r}${u}: ${wl.type};`),
  ])
  .join('\n')}
  ${loads('0u', 'a')}
  if (${KC}u < K) {
    ${loads(`${KC / 8}u`, 'b')}
  }
  for (var k0 = 0u; k0 < K; k0 += ${2 * KC}u) {
${step('a', 2 * KC)}
    if (k0 + ${KC}u < K) {
${step('b', 3 * KC)}
    }
  }
${results}
  workgroupBarrier();
  for (var e = t; e < ${MT * NT * 256}u; e += ${T}u) {
    let f = e / 256u; let i = f / ${NT}u; let j = f % ${NT}u; let o = e % 256u;
    var v = 0.0;
    for (var s = 0u; s < ${SG}u; s++) { v += Cs[${slot('i', 'j', 's')} + o]; }
    let r = r0 + 16u * i + o / 16u; let c = c0 + 16u * j + o % 16u;
    if (r < Rt) {
      let oi = r * N + c;
      if (prm.add == 1u) { v += outp[oi]; }
      outp[oi] = v;
${conv ? conv.body : ''}
    }
  }
}`;
};
