// Rows: the embedding lookup, the last row of each sequence, and sampling (argmax / Gumbel-max) on the device.
// CPU twin: kernels/cpu/rows.ts.
import type { WeightDType } from '../../backend.js';
import { SAMPLE_PARAMS, type Op } from '../../ops.js';
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
  weightReader,
  wgFor,
  WG,
  WG_INDEX,
} from './common.js';
import { matmulDispatch } from './matmul.js';

export const ROWS_PARAMS = defineParams({ dim: 'u32', vocab: 'u32' });

// out[r, :] = table[ids[r], :]
const embedSource = (dtype: WeightDType) => `${header(ROWS_PARAMS)}${weightReader(2, dtype)}
${ro(3, 'ids', 'i32')}
${rw(4, 'outp')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let dim = prm.dim; let i = ${WG_INDEX};
  if (i >= nRows() * dim) { return; }
  let r = i / dim; let c = i % dim;
  outp[i] = W(u32(ids[r]) * dim + c);
}`;

// out[s] = x[last row of s]
const gatherLastSource = () => `${header(ROWS_PARAMS)}
${ro(2, 'x')}
${rw(3, 'outp')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let dim = prm.dim; let i = ${WG_INDEX};
  if (i >= nSeqs() * dim) { return; }
  let s = i / dim; let c = i % dim;
  outp[i] = x[(seqRow0(s) + seqRows(s) - 1u) * dim + c];
}`;

// One workgroup per sequence: argmax of its logits row, or with temperature T > 0 of
// logits / T + Gumbel noise (the same hash as kernels/ops.ts sampleNoise). Ties go to the lower id. A masked row
// (sp[5s + 4] = 1) skips every id whose bit is clear in its row of the mask; none allowed: -1.
const sampleSource = () => `${header(ROWS_PARAMS)}
${ro(2, 'logits')}
${ro(3, 'sp', 'u32')}
${ro(4, 'mask', 'u32')}
${rw(5, 'outp', 'i32')}
var<workgroup> bs: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;
fn hash32(v: u32) -> u32 {
  var x = v; x ^= x >> 16u; x *= 0x7feb352du; x ^= x >> 15u; x *= 0x846ca68bu; x ^= x >> 16u; return x;
}
// −log(−log u), u = (top 24 bits of h + ½) / 2²⁴. Where u is near 1 (the large noises, which decide a draw) −log u is
// the series w + w²/2 + … + w⁷/7 in w = 1 − u (exact there: under 2²⁰/2²⁴), not log(u): in f32 that loses the low bits
// of a small −log u, ~1e-3 of the noise, and the draw could differ from the CPU's (f64) in a near tie.
fn gumbel(h: u32) -> f32 {
  let k = h >> 8u; let w = (f32(0xffffffu - k) + 0.5) / 16777216.0;
  var e = -log((f32(k) + 0.5) / 16777216.0);
  if (w < 0.0625) {
    e = w * (1.0 + w * (1.0 / 2.0 + w * (1.0 / 3.0 + w * (1.0 / 4.0 + w * (1.0 / 5.0 + w * (1.0 / 6.0 + w / 7.0))))));
  }
  return -log(e);
}
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let V = prm.vocab; let s = wg.x; // dispatched with exactly one workgroup per sequence
  let T = bitcast<f32>(sp[${SAMPLE_PARAMS}u * s]);
  let key = hash32(sp[${SAMPLE_PARAMS}u * s + 1u] ^ hash32(sp[${SAMPLE_PARAMS}u * s + 2u] ^ hash32(sp[${SAMPLE_PARAMS}u * s + 3u] ^ 0x9e3779b9u)));
  let masked = sp[${SAMPLE_PARAMS}u * s + 4u] == 1u; let m0 = s * ((V + 31u) / 32u);
  var best = 0.0; var arg = 0xffffffffu;
  // eight ids a thread per round, their loads issued together (a loop of constant trip count), visited in id order
  for (var i0 = l.x; i0 < V; i0 += 2048u) {
    var v: array<f32, 8>; var ok: array<bool, 8>;
    for (var u = 0u; u < 8u; u++) {
      let i = i0 + 256u * u; let c = min(i, V - 1u);
      v[u] = logits[s * V + c];
      ok[u] = i < V && (!masked || ((mask[m0 + (c >> 5u)] >> (c & 31u)) & 1u) == 1u);
    }
    for (var u = 0u; u < 8u; u++) {
      let i = i0 + 256u * u; var sc = v[u];
      if (T > 0.0) { sc = sc / T + gumbel(hash32(key ^ hash32(i))); }
      if (ok[u] && (arg == 0xffffffffu || sc > best)) { best = sc; arg = i; }
    }
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
  if (l.x == 0u) { outp[s] = select(i32(bi[0]), -1, bi[0] == 0xffffffffu); }
}`;

const embed: Kernel<{ dtype: WeightDType }> & { params: typeof ROWS_PARAMS } = {
  name: 'embed',
  params: ROWS_PARAMS,
  bindings: () => ['ro', 'ro', 'rw'],
  source: (v) => embedSource(v.dtype),
};
const gatherLast: Kernel<object> & { params: typeof ROWS_PARAMS } = {
  name: 'gather_last',
  params: ROWS_PARAMS,
  bindings: () => ['ro', 'rw'],
  source: () => gatherLastSource(),
};
const sample: Kernel<object> & { params: typeof ROWS_PARAMS } = {
  name: 'sample',
  params: ROWS_PARAMS,
  bindings: () => ['ro', 'ro', 'ro', 'rw'],
  source: () => sampleSource(),
};

export const rowsFamily: Family = {
  ops: ['embed', 'gather_last', 'sample'],
  dispatch(op: Op, c: DispatchContext): Dispatch[] {
    switch (op.op) {
      case 'embed':
        return [
          dispatch(
            embed,
            { dtype: c.storage(op.table) },
            [op.table, op.ids, op.out],
            { dim: op.dim },
            wgFor(c.rows * op.dim),
          ),
        ];
      case 'gather_last':
        return [dispatch(gatherLast, {}, [op.x, op.out], { dim: op.dim }, wgFor(c.seqs * op.dim))];
      case 'sample':
        return [dispatch(sample, {}, [op.logits, op.params, op.mask, op.out], { vocab: op.vocab }, [c.seqs, 1])];
      default:
        throw new Error(`rows family: no op ${op.op}`);
    }
  },
  /** gather_last then the per-sequence matmul that reads it, in a step where every sequence has one row (decode): the
   *  last rows are all the rows, so the matmul reads x itself (one launch fewer). */
  fuse(op: Op, next: Op | undefined, c: DispatchContext): Dispatch[] | null {
    if (op.op !== 'gather_last' || next?.op !== 'matmul' || next.x !== op.out || !next.perSeq || c.rows !== c.seqs)
      return null;
    return matmulDispatch({ ...next, x: op.x }, c);
  },
  variants: () => [
    ...(['f32', 'f16', 'bf16'] as const).map((dtype) => variant(embed, { dtype })),
    variant(gatherLast, {}),
    variant(sample, {}),
  ],
};
