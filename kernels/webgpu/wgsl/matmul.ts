// Matmuls: the GEMV-style kernel of few rows (decode) with its fused prologues (rmsnorm, silu·mul), residual add and
// the 2Mamba front-end epilogue, and the register-tiled GEMM of many rows (prefill); where tensor cores run, the GEMM
// of many rows and the skinny product of 8–63 rows in matmul-tc.ts. CPU twin: kernels/cpu/matmul.ts.
import type { WeightDType } from '../../backend.js';
import type { Op } from '../../ops.js';
import {
  GEMM_MIN_ROWS,
  MATMUL_SHAPES,
  matmulShape,
  type MatmulShape,
  SKINNY_MIN_ROWS,
  SKINNY_SHAPE,
} from '../tuning.js';
import {
  type Dispatch,
  type DispatchContext,
  type Family,
  type Kernel,
  defineParams,
  dispatch,
  grid1,
  header,
  ro,
  rw,
  SILU4,
  variant,
} from './common.js';
import { conv2Dispatch, conv2TakesHalf, convEpilogue } from './conv2.js';
import {
  gemmIn16Source,
  gemmMmaSource,
  gemmSkinnySource,
  type MatmulPrologue,
  type MmaOut,
  gemmMmaK,
  gemmMmaSteps,
  MMA_SHAPE,
  skinnyU,
} from './matmul-tc.js';

/** K, N; add: accumulate into out (residual); perSeq: one row per sequence; eps: rmsnorm's; ch, heads: the conv epilogue. */
export const MATMUL_PARAMS = defineParams({
  K: 'u32',
  N: 'u32',
  add: 'u32',
  perSeq: 'u32',
  eps: 'f32',
  ch: 'u32',
  heads: 'u32',
});

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
export const weights8 = (dtype: WeightDType) => `struct W8 { lo: vec4<f32>, hi: vec4<f32> }
fn W8v(lo: vec4<f32>, hi: vec4<f32>) -> W8 { return W8(lo, hi); }
fn w8(c: u32, k8: u32, K8: u32) -> W8 {
${W8[dtype]}
}
${SILU4}`;

/** Tiled GEMM: rows × columns per workgroup, and the K step of its workgroup-memory tiles. */
export const GEMM = { rows: 64, cols: 64, k: 32 };

// out[r, n] (+)= Σ_k x'[r, k] W[n, k] with x' = x, rmsnorm(x)·w_norm or silu(g)·u
// (the prologue). A workgroup covers R rows × CG·C columns; each column group splits K over TK lanes in steps of 8
// (16-bit weights: one vec4<u32> = 8 halves; f32: two vec4<f32>), then the lanes' sums meet in workgroup memory.
// With the norm prologue Σ x² is accumulated in the same loop: rsqrt(mean + eps) factors out of the dot product.
// Requires K % 8 == 0.
//
// The conv epilogue (decode steps: one row per sequence) fuses the 2Mamba front end that follows the [qkv | A]
// projection: columns c < ch get the window-2 conv with the slot's conv state (conv2), the rest −softplus (logdecay).
// One row (decode at batch 1): K steps of the lanes' loop a round, every weight and x load of a round issued before
// its products (a loop of constant trip count: the compiler keeps them in flight together, where a loop bounded by K
// waits a memory latency each step); the loop below takes what is left of K.
const ONE_ROW_U = 2;
const oneRowLoop = (pro: MatmulPrologue, C: number, TK: number) => {
  const U = ONE_ROW_U;
  return `  for (var rb = 0u; rb + ${U * TK}u <= K8; rb += ${U * TK}u) {
    let k0 = rb + lane;
    var wl: array<vec4<f32>, ${C * U}>; var wh: array<vec4<f32>, ${C * U}>;
    var xl: array<vec4<f32>, ${U}>; var xh: array<vec4<f32>, ${U}>;
${pro === 'silu' ? `    var ul: array<vec4<f32>, ${U}>; var uh: array<vec4<f32>, ${U}>;` : ''}
${pro === 'norm' ? `    var nl: array<vec4<f32>, ${U}>; var nh: array<vec4<f32>, ${U}>;` : ''}
    for (var u = 0u; u < ${U}u; u++) {
      let k8 = k0 + u * ${TK}u;
      for (var b = 0u; b < ${C}u; b++) { let wv = w8(min(c0 + b, N - 1u), k8, K8); wl[u * ${C}u + b] = wv.lo; wh[u * ${C}u + b] = wv.hi; }
      let xo = min(r0, Rt - 1u) * XS + 2u * k8;
      xl[u] = x[xo]; xh[u] = x[xo + 1u];
${pro === 'silu' ? '      ul[u] = x[xo + 2u * K8]; uh[u] = x[xo + 2u * K8 + 1u];' : ''}
${pro === 'norm' ? '      nl[u] = nw[2u * k8]; nh[u] = nw[2u * k8 + 1u];' : ''}
    }
    for (var u = 0u; u < ${U}u; u++) {
      var lo = xl[u]; var hi = xh[u];
${pro === 'silu' ? '      lo = silu4(lo) * ul[u]; hi = silu4(hi) * uh[u];' : ''}
${pro === 'norm' ? '      ss[0] += dot(lo, lo) + dot(hi, hi); lo *= nl[u]; hi *= nh[u];' : ''}
      for (var b = 0u; b < ${C}u; b++) { acc[b] += dot(lo, wl[u * ${C}u + b]) + dot(hi, wh[u * ${C}u + b]); }
    }
  }`;
};

const matmulSource = (dtype: WeightDType, pro: MatmulPrologue, m: MatmulShape, conv: boolean, one: boolean) => {
  const { R, C, TK, CG } = m,
    WGS = TK * CG,
    e = pro === 'norm' ? 6 : 5;
  return `${header(MATMUL_PARAMS)}
@group(0) @binding(2) var<storage, read> w: array<${dtype === 'f32' ? 'vec4<f32>' : 'vec4<u32>'}>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
${rw(4, 'outp')}
${pro === 'norm' ? ro(5, 'nw', 'vec4<f32>') : ''}
${conv ? convEpilogue.bindings(e) : ''}
fn rows() -> u32 { return select(nRows(), nSeqs(), prm.perSeq == 1u); }
${weights8(dtype)}
var<workgroup> red: array<f32, ${WGS * R * C}>;
${pro === 'norm' ? `var<workgroup> redss: array<f32, ${TK * R}>;` : ''}
@compute @workgroup_size(${WGS}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let K = prm.K; let N = prm.N; let Rt = ${one ? '1u' : 'rows()'}; let K8 = K / 8u;
  let lane = l.x % ${TK}u; let cg = l.x / ${TK}u;
  let c0 = wg.x * ${CG * C}u + cg * ${C}u; let r0 = wg.y * ${R}u;
  let XS = ${pro === 'silu' ? '4u' : '2u'} * K8; // vec4s per x row (silu: the row holds gate and up, 2K wide)
  var acc: array<f32, ${R * C}>;
  var ss: array<f32, ${R}>;
${R === 1 ? oneRowLoop(pro, C, TK) : ''}
  for (var k8 = lane + ${R === 1 ? `K8 / ${ONE_ROW_U * TK}u * ${ONE_ROW_U * TK}u` : '0u'}; k8 < K8; k8 += ${TK}u) {
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
${
  pro === 'norm'
    ? `    var s2 = 0.0;
    for (var t = 0u; t < ${TK}u; t++) { s2 += redss[a * ${TK}u + t]; }
    v *= 1.0 / sqrt(s2 / f32(K) + prm.eps);`
    : ''
}
    let r = r0 + a; let c = wg.x * ${CG * C}u + g * ${C}u + b;
    if (r < Rt && c < N) {
      let oi = r * N + c; outp[oi] = select(v, outp[oi] + v, prm.add == 1u);
${conv ? convEpilogue.body : ''}
    }
  }
}`;
};

// The matmul of many rows (prefill): the same params, prologues and add as matmul, as a register-tiled GEMM.
// A workgroup of 256 threads computes a ${GEMM.rows} × ${GEMM.cols} block of out, 4 × 4 per thread; each K step of
// ${GEMM.k} loads an x tile (prologue applied) and a weight tile into workgroup memory, k-major, so a thread reads
// 4 rows and 4 columns as two vec4 per k. rmsnorm: Σ x² of each row accumulates from the x tiles (8 partials per
// row), and rsqrt(mean + eps) scales the finished dot products. Requires K % ${GEMM.k} == 0.
const gemmSource = (dtype: WeightDType, pro: MatmulPrologue) => `${header(MATMUL_PARAMS)}
@group(0) @binding(2) var<storage, read> w: array<${dtype === 'f32' ? 'vec4<f32>' : 'vec4<u32>'}>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
${rw(4, 'outp')}
${pro === 'norm' ? ro(5, 'nw', 'vec4<f32>') : ''}
${weights8(dtype)}
const BK = ${GEMM.k}u;
var<workgroup> As: array<vec4<f32>, ${(GEMM.k * GEMM.rows) / 4}>; // [k][row / 4]
var<workgroup> Bs: array<vec4<f32>, ${(GEMM.k * GEMM.cols) / 4}>; // [k][column / 4]
${pro === 'norm' ? `var<workgroup> ssp: array<f32, ${GEMM.rows * 8}>;` : ''}
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let K = prm.K; let N = prm.N; let Rt = nRows(); let K8 = K / 8u;
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
${
  pro === 'norm'
    ? `  ssp[(l.x / 8u) * 8u + lq] = ss[0]; ssp[(32u + l.x / 8u) * 8u + lq] = ss[1];
  workgroupBarrier();`
    : ''
}
  for (var i = 0u; i < 4u; i++) {
    let lr = ty * 4u + i; let r = r0 + lr;
    if (r >= Rt) { break; }
    var v = acc[i];
${
  pro === 'norm'
    ? `    var s2 = 0.0;
    for (var t = 0u; t < 8u; t++) { s2 += ssp[lr * 8u + t]; }
    v *= 1.0 / sqrt(s2 / f32(K) + prm.eps);`
    : ''
}
    for (var j = 0u; j < 4u; j++) {
      let c = c0 + tx * 4u + j;
      if (c < N) { let oi = r * N + c; outp[oi] = select(v[j], outp[oi] + v[j], prm.add == 1u); }
    }
  }
}`;

/** The tensor-core GEMM (matmul-tc.ts): x' as f16 rows, then the product. */
const gemmIn16: Kernel<{ pro: MatmulPrologue }> & { params: typeof MATMUL_PARAMS } = {
  name: 'gemm_in16',
  params: MATMUL_PARAMS,
  bindings: (v) => ['ro', 'rw', ...(v.pro === 'norm' ? ['ro' as const] : [])],
  source: (v) => gemmIn16Source(header(MATMUL_PARAMS), v.pro),
};
type MmaVariant = { dtype: WeightDType; emulate: boolean; k: number; out: MmaOut };
const gemmMma: Kernel<MmaVariant> & { params: typeof MATMUL_PARAMS } = {
  name: 'gemm_mma',
  params: MATMUL_PARAMS,
  bindings: () => ['ro', 'ro', 'rw'],
  source: (v) => gemmMmaSource(header(MATMUL_PARAMS), v.dtype, v.emulate, v.k, v.out),
};

type SkinnyVariant = { dtype: WeightDType; MT: number; conv: boolean; emulate: boolean };
const gemmSkinny: Kernel<SkinnyVariant> & { params: typeof MATMUL_PARAMS } = {
  name: 'gemm_skinny',
  params: MATMUL_PARAMS,
  bindings: (v) => ['ro', 'ro', 'rw', ...(v.conv ? convEpilogue.access : [])],
  source: (v) =>
    gemmSkinnySource(header(MATMUL_PARAMS), v.dtype, v.MT, SKINNY_SHAPE, v.emulate, v.conv ? convEpilogue : null),
};
/** Row fragments of gemm_skinny for R rows (row blocks of 64 past that). */
const skinnyMT = (R: number) => (R <= 16 ? 1 : R <= 32 ? 2 : 4);

/** one: the step has exactly one row for the op (a decode step of one sequence): its row count is not read from the
 *  step meta, a load the kernel's x loads would wait for (0.65 µs of a 6.55 µs cold [gate | up] GEMV on the H100;
 *  docs/perf.md "Batch-1 decode: what a launch costs"). */
type MatmulVariant = { dtype: WeightDType; pro: MatmulPrologue; shape: MatmulShape; conv: boolean; one: boolean };
const matmul: Kernel<MatmulVariant> & { params: typeof MATMUL_PARAMS } = {
  name: 'matmul',
  params: MATMUL_PARAMS,
  bindings: (v) => [
    'ro',
    'ro',
    'rw',
    ...(v.pro === 'norm' ? ['ro' as const] : []),
    ...(v.conv ? convEpilogue.access : []),
  ],
  source: (v) => matmulSource(v.dtype, v.pro, v.shape, v.conv, v.one),
};
const gemm: Kernel<{ dtype: WeightDType; pro: MatmulPrologue }> & { params: typeof MATMUL_PARAMS } = {
  name: 'gemm',
  params: MATMUL_PARAMS,
  bindings: (v) => ['ro', 'ro', 'rw', ...(v.pro === 'norm' ? ['ro' as const] : [])],
  source: (v) => gemmSource(v.dtype, v.pro),
};

/** Whether a matmul of R rows runs as gemm_skinny (tuning.ts SKINNY_MIN_ROWS; its shape's divisibility). */
function skinnyFits(op: Extract<Op, { op: 'matmul' }>, R: number, c: DispatchContext): boolean {
  const { SG, NT } = SKINNY_SHAPE,
    U = skinnyU(skinnyMT(R), SKINNY_SHAPE);
  return (
    c.matrices !== 'off' &&
    SKINNY_MIN_ROWS > 0 &&
    R >= SKINNY_MIN_ROWS &&
    (op.perSeq || R < GEMM_MIN_ROWS) &&
    op.n % (16 * NT) === 0 &&
    op.k % (16 * SG * U) === 0
  );
}

type MatmulOp = Extract<Op, { op: 'matmul' }>;
const matmulParams = (op: MatmulOp) => ({
  K: op.k,
  N: op.n,
  add: op.add ? 1 : 0,
  perSeq: op.perSeq ? 1 : 0,
  eps: op.norm?.eps ?? 0,
});
const prologue = (op: MatmulOp): MatmulPrologue => (op.norm ? 'norm' : op.act === 'silu_mul' ? 'silu' : 'none');

/** The scratch of x' as f16 (gemm_in16's output, the tensor-core products' input) for `rows` rows of depth k. */
export const gemmInput = (c: DispatchContext, rows: number, k: number) => c.scratch('_gemm.xh', (rows * k) / 2);

/** gemm_in16 forming op's x' (its prologue) for R rows into `xh`. */
const in16Dispatch = (op: MatmulOp, R: number, xh: string) =>
  dispatch(
    gemmIn16,
    { pro: prologue(op) },
    [op.x, xh, ...(op.norm ? [op.norm.weight] : [])],
    matmulParams(op),
    grid1(R),
  );

/** The K step of gemm_mma where this step runs op as gemm_in16 + gemm_mma (not per sequence, GEMM_MIN_ROWS rows on
 *  tensor cores, K a multiple of a step), else 0. */
export const mmaStep = (op: MatmulOp, c: DispatchContext) =>
  !op.perSeq && c.rows >= GEMM_MIN_ROWS && c.matrices !== 'off' ? gemmMmaK(c, op.k) : 0;

/** gemm_mma for op with K steps of bk, x' read from `xh`, writing `out` (MmaOut) into `to`. A glu workgroup takes TN/2
 *  columns of each half: as many workgroups as N / TN. */
export const mmaDispatch = (
  op: MatmulOp,
  c: DispatchContext,
  bk: number,
  xh: string,
  out: MmaOut = 'f32',
  to = op.out,
) =>
  dispatch(
    gemmMma,
    { dtype: c.storage(op.w), emulate: c.matrices === 'emulated', k: bk, out },
    [op.w, xh, to],
    matmulParams(op),
    [Math.ceil(op.n / MMA_SHAPE.TN), Math.ceil(c.rows / MMA_SHAPE.TM)],
  );

/** The 2Mamba front end as a projection's epilogue (decode): the conv2 op's buffers after the product's (conv state,
 *  weight, bias, conv out, log-decay out), its channels and heads. */
interface ConvFront {
  buffers: string[];
  ch: number;
  heads: number;
}
const withConv = (p: ReturnType<typeof matmulParams>, conv?: ConvFront) =>
  conv ? { ...p, ch: conv.ch, heads: conv.heads } : p;

/** gemm_in16 forming op's x' as f16 into `xh` (whole row blocks) and gemm_skinny reading it, where the skinny product
 *  takes op's rows (else null); with `conv` the product's epilogue is the 2Mamba front end. The mamba2 family's decode
 *  combine writes `xh` itself in place of gemm_in16. */
export function skinnyDispatches(
  op: MatmulOp,
  c: DispatchContext,
  conv?: ConvFront,
): { xh: string; in16: Dispatch; product: Dispatch } | null {
  const R = op.perSeq ? c.seqs : c.rows;
  if (!skinnyFits(op, R, c)) return null;
  const MT = skinnyMT(R),
    xh = gemmInput(c, Math.ceil(R / (16 * MT)) * 16 * MT, op.k);
  const v = { dtype: c.storage(op.w), MT, conv: conv !== undefined, emulate: c.matrices === 'emulated' };
  const product = dispatch(
    gemmSkinny,
    v,
    [op.w, xh, op.out, ...(conv?.buffers ?? [])],
    withConv(matmulParams(op), conv),
    [op.n / (16 * SKINNY_SHAPE.NT), Math.ceil(R / (16 * MT))],
  );
  return { xh, in16: in16Dispatch(op, R, xh), product };
}

/** The FMA GEMV of few rows (decode) for op, with the 2Mamba front end as its epilogue where `conv` is given. */
function gemvDispatch(op: MatmulOp, c: DispatchContext, conv?: ConvFront): Dispatch {
  if (op.k % 8 !== 0) throw new Error(`webgpu matmul ${op.w}: K = ${op.k} must be a multiple of 8`);
  const R = op.perSeq ? c.seqs : c.rows,
    shape = matmulShape(R);
  const v = { dtype: c.storage(op.w), pro: prologue(op), shape, conv: conv !== undefined, one: R === 1 };
  const buffers = [op.w, op.x, op.out, ...(op.norm ? [op.norm.weight] : []), ...(conv?.buffers ?? [])];
  return dispatch(matmul, v, buffers, withConv(matmulParams(op), conv), [
    Math.ceil(op.n / (shape.CG * shape.C)),
    Math.ceil(R / shape.R),
  ]);
}

/** Whether op runs on the GEMMs of many rows this step (gemm_mma's K step, or the register-tiled GEMM), not on the
 *  skinny product or the GEMV. */
const gemmRoute = (op: MatmulOp, c: DispatchContext): { bk: number } | null => {
  const bk = mmaStep(op, c);
  return bk || (!op.perSeq && c.rows >= GEMM_MIN_ROWS && op.k % GEMM.k === 0) ? { bk } : null;
};

/** A matmul op's dispatches for this step. */
export function matmulDispatch(op: MatmulOp, c: DispatchContext): Dispatch[] {
  const sk = skinnyDispatches(op, c);
  if (sk) return [sk.in16, sk.product];
  const g = gemmRoute(op, c);
  if (g?.bk) {
    const xh = gemmInput(c, c.rows, op.k);
    return [in16Dispatch(op, c.rows, xh), mmaDispatch(op, c, g.bk, xh)];
  }
  if (g) {
    const buffers = [op.w, op.x, op.out, ...(op.norm ? [op.norm.weight] : [])];
    return [
      dispatch(gemm, { dtype: c.storage(op.w), pro: prologue(op) }, buffers, matmulParams(op), [
        Math.ceil(op.n / GEMM.cols),
        Math.ceil(c.rows / GEMM.rows),
      ]),
    ];
  }
  return [gemvDispatch(op, c)];
}

/** A [gate | up] projection and the down projection that takes silu(gate) ⊙ up, both on gemm_mma: the first writes
 *  silu(gate) ⊙ up as f16 (its glu epilogue), which the second reads as its x' — no f32 [gate | up] rows, no gemm_in16
 *  for the down projection (a 4096-row step's [gate | up] is 64 MB a layer as f32). Null where the pair does not match. */
function gluFuse(op: MatmulOp, next: MatmulOp, c: DispatchContext): Dispatch[] | null {
  if (
    next.act !== 'silu_mul' ||
    next.x !== op.out ||
    op.add ||
    op.act ||
    2 * next.k !== op.n ||
    next.k % (MMA_SHAPE.TN / 2) !== 0
  )
    return null;
  const up = mmaStep(op, c),
    down = mmaStep(next, c);
  if (!up || !down) return null;
  const xh = gemmInput(c, c.rows, op.k),
    xg = c.scratch('_gemm.xg', (c.rows * next.k) / 2); // silu(gate) ⊙ up as f16 pairs
  return [in16Dispatch(op, c.rows, xh), mmaDispatch(op, c, up, xh, 'glu', xg), mmaDispatch(next, c, down, xg)];
}

export const matmulFamily: Family = {
  ops: ['matmul'],
  dispatch(op: Op, c: DispatchContext): Dispatch[] {
    if (op.op !== 'matmul') throw new Error(`matmul family: no op ${op.op}`);
    return matmulDispatch(op, c);
  },
  /** A decode step's [qkv | A] projection and the conv2 + logdecay front end that reads it, as one dispatch (the
   *  conv epilogue; on tensor cores gemm_in16 before it); in a step where a sequence has several rows (conv2 walks
   *  them) and the projection takes gemm_mma, the projection written as f16 for conv2; the [gate | up] and down
   *  projections on gemm_mma (gluFuse). Null when the pair does not match. */
  fuse(op: Op, next: Op | undefined, c: DispatchContext): Dispatch[] | null {
    if (op.op === 'matmul' && next?.op === 'matmul') return gluFuse(op, next, c);
    if (
      op.op !== 'matmul' ||
      next?.op !== 'conv2' ||
      !next.decay ||
      next.x !== op.out ||
      op.add ||
      op.perSeq ||
      op.act ||
      (next.xStride ?? next.ch) !== op.n
    )
      return null;
    if (c.step.seqs.some((s) => s.rows !== 1)) {
      // prefill: on tensor cores the projection writes f16 for conv2 (half its bytes written and read)
      const bk = mmaStep(op, c);
      if (!bk || op.n % 8 !== 0 || !conv2TakesHalf(next)) return null;
      const xh = gemmInput(c, c.rows, op.k),
        raw = c.scratch('_gemm.x16', (c.rows * op.n) / 2); // f16 pairs
      return [in16Dispatch(op, c.rows, xh), mmaDispatch(op, c, bk, xh, 'f16', raw), conv2Dispatch(next, c, raw)];
    }
    const conv = {
      buffers: [next.state, next.weight, next.bias, next.out, next.decay.out],
      ch: next.ch,
      heads: next.decay.heads,
    };
    const sk = skinnyDispatches(op, c, conv);
    if (sk) return [sk.in16, sk.product];
    if (gemmRoute(op, c)) return null; // a batch large enough for the GEMM: conv2 runs on its own
    return [gemvDispatch(op, c, conv)];
  },
  variants(_headDims, caps) {
    const out = [];
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      MATMUL_SHAPES.forEach((shape, g) => {
        const one = g === 0; // the first group takes the steps of one row (matmulShape), and only those
        for (const pro of ['none', 'norm', 'silu'] as const)
          out.push(variant(matmul, { dtype, pro, shape, conv: false, one }));
        out.push(variant(matmul, { dtype, pro: 'norm', shape, conv: true, one }));
      });
      for (const pro of ['none', 'norm', 'silu'] as const) out.push(variant(gemm, { dtype, pro }));
    }
    if (caps.matrices !== 'off') {
      for (const pro of ['none', 'norm', 'silu'] as const) out.push(variant(gemmIn16, { pro }));
      for (const dtype of ['f32', 'f16', 'bf16'] as const)
        for (const k of gemmMmaSteps(caps))
          for (const o of ['f32', 'f16', 'glu'] as const)
            out.push(variant(gemmMma, { dtype, emulate: caps.matrices === 'emulated', k, out: o }));
      for (const dtype of ['f32', 'f16', 'bf16'] as const)
        for (const MT of [1, 2, 4])
          for (const conv of [false, true])
            out.push(variant(gemmSkinny, { dtype, MT, conv, emulate: caps.matrices === 'emulated' }));
    }
    return out;
  },
};
