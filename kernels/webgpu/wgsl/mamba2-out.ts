// Decode of one sequence (batch 1): 2Mamba's readout combine and the o projection in one dispatch, one fewer per
// layer than m2_combine1 then the GEMV. Every workgroup forms the row's y for all heads from m2_state1's block
// partials, as m2_combine1 does (spec §5.3: y = (a·Σ_b num_b + w·v) / max(a·Σ_b den_b + w, floor), w = (s·q·k)²),
// into workgroup memory, then its 32 columns of out (+)= W·y. The first round of its weights is loaded before y's
// partials, so both are in flight together. Workgroup 0 also writes y (the mamba2 op's output). CPU twin: the two
// ops in kernels/cpu/ (mamba2.ts, matmul.ts).
import type { WeightDType } from '../../backend.js';
import { DEN_FLOOR } from '../../ops.js';
import { type Kernel, defineParams, header, ro, rw } from './common.js';
import { weights8 } from './matmul.js';

export const M2_OUT_PARAMS = defineParams({ heads: 'u32', blocks: 'u32', N: 'u32', add: 'u32' });

/** Lanes along K, column groups, columns per thread, K steps of 8 per lane and round (a round spans 1024 of K). */
const TK = 32,
  CG = 8,
  C = 4,
  U = 4;
export const M2_OUT_COLS = CG * C;
/** The widths it takes: E = heads × head dim a multiple of 8 (a weight load), at most MAX_E (y's workgroup copy); a
 *  round spans 8·TK·U = 1024 of K, the last one's steps past E are loaded clamped and not added. */
const MAX_E = 4096;
export const m2OutFits = (E: number) => E % 8 === 0 && E <= MAX_E;

/** The weights of one round at K step `k0`: U steps of 8 for each of the thread's C columns, into wl / wh. */
const loadRound = (k0: string) => `for (var u = 0u; u < ${U}u; u++) {
    for (var b = 0u; b < ${C}u; b++) { let wv = w8(min(c0 + b, N - 1u), min(${k0} + lane + u * ${TK}u, K8 - 1u), K8); wl[u * ${C}u + b] = wv.lo; wh[u * ${C}u + b] = wv.hi; }
  }`;

const source = (dtype: WeightDType, d: number) => `${header(M2_OUT_PARAMS)}
@group(0) @binding(2) var<storage, read> w: array<${dtype === 'f32' ? 'vec4<f32>' : 'vec4<u32>'}>;
${ro(3, 'x', 'vec4<f32>')}
${ro(4, 'logA')}
${ro(5, 'pnum', 'vec4<f32>')}
${ro(6, 'pden')}
${rw(7, 'outp')}
${rw(8, 'yout', 'vec4<f32>')}
${weights8(dtype)}
const D4 = ${d / 4}u;
var<workgroup> ys: array<vec4<f32>, ${MAX_E / 4}>;
var<workgroup> qkp: array<f32, ${MAX_E / 4}>;
var<workgroup> dnp: array<f32, ${MAX_E / 4}>;
var<workgroup> red: array<f32, ${256 * C}>;
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let H = prm.heads; let blocks = prm.blocks; let N = prm.N;
  let E4 = H * D4; let K8 = E4 / 2u; let r = 0u; // a decode step of one sequence: its row is the step's only one
  let lane = l.x % ${TK}u; let cg = l.x / ${TK}u; let c0 = wg.x * ${CG * C}u + cg * ${C}u;
  var wl: array<vec4<f32>, ${C * U}>; var wh: array<vec4<f32>, ${C * U}>;
  ${loadRound('0u')}
  // y's sums, 4 values (one head's columns 4j … 4j + 3) a thread: num over every block; q·k and den split over the
  // head's D4 threads (den: blocks j, j + D4, …), added after the barrier
  let xo = r * 3u * E4;
  for (var e4 = l.x; e4 < E4; e4 += 256u) {
    let h = e4 / D4; let j = e4 % D4; let k = r * H + h;
    qkp[e4] = dot(x[xo + e4], x[xo + E4 + e4]);
    var num = vec4<f32>(0.0);
    for (var b0 = 0u; b0 < blocks; b0 += 8u) {
      for (var u = 0u; u < 8u; u++) {
        let b = min(b0 + u, blocks - 1u);
        num += select(vec4<f32>(0.0), pnum[(k * blocks + b) * D4 + j], b0 + u < blocks);
      }
    }
    var dn = 0.0;
    for (var b = j; b < blocks; b += D4) { dn += pden[k * blocks + b]; }
    dnp[e4] = dn; ys[e4] = num;
  }
  workgroupBarrier();
  for (var e4 = l.x; e4 < E4; e4 += 256u) {
    let h = e4 / D4; var qk = 0.0; var den = 0.0;
    for (var j = 0u; j < D4; j++) { qk += qkp[h * D4 + j]; den += dnp[h * D4 + j]; }
    let wt = qk * qk / f32(${d}u); let a = exp(logA[r * H + h]);
    let y = (a * ys[e4] + wt * x[xo + 2u * E4 + e4]) / max(a * den + wt, ${DEN_FLOOR});
    ys[e4] = y;
    if (wg.x == 0u) { yout[r * E4 + e4] = y; }
  }
  workgroupBarrier();
  var acc: array<f32, ${C}>;
  for (var rb = 0u; rb < K8; rb += ${TK * U}u) {
    if (rb > 0u) { ${loadRound('rb')} }
    for (var u = 0u; u < ${U}u; u++) {
      let k8 = rb + lane + u * ${TK}u;
      if (k8 < K8) {
        let lo = ys[2u * k8]; let hi = ys[2u * k8 + 1u];
        for (var b = 0u; b < ${C}u; b++) { acc[b] += dot(lo, wl[u * ${C}u + b]) + dot(hi, wh[u * ${C}u + b]); }
      }
    }
  }
  for (var b = 0u; b < ${C}u; b++) { red[b * 256u + l.x] = acc[b]; }
  workgroupBarrier();
  if (l.x < ${CG * C}u) {
    let g = l.x / ${C}u; let b = l.x % ${C}u; let c = wg.x * ${CG * C}u + l.x;
    var v = 0.0;
    for (var t = 0u; t < ${TK}u; t++) { v += red[b * 256u + g * ${TK}u + t]; }
    if (c < N) { let oi = r * N + c; outp[oi] = select(v, outp[oi] + v, prm.add == 1u); }
  }
}`;

/** The fused kernel for weights stored as `dtype` and head dim d; bindings: W, qkv, logA, pnum, pden, out, y. */
export const m2Out1: Kernel<{ dtype: WeightDType; d: number }> & { params: typeof M2_OUT_PARAMS } = {
  name: 'm2_out1',
  params: M2_OUT_PARAMS,
  bindings: () => ['ro', 'ro', 'ro', 'ro', 'ro', 'rw', 'rw'],
  source: (v) => source(v.dtype, v.d),
};
