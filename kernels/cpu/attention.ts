// CPU reference kernels (the oracle every GPU kernel is tested against: simple and obviously right), family: attention.
// Plain TypeScript over Float32Array storage, sums in f64 (JS numbers).
import type { SeqStep } from '../backend.js';
import { qkvOffsets, type Op } from '../ops.js';
import { pageOf, type CpuBuffers, type CpuOp } from './common.js';

type F32 = Float32Array;

/**
 * Causal attention of one query row over cached keys 0 … pos (softmax; with C, 2Mamba-E: ℓ_j = s·q·k_j + C_pos − C_j).
 * Max-subtracted log-sum-exp in f64. `key(j)`/`val(j)` return element offsets into K/V; `cum(j)` the C_j values.
 */
export function attendRow(
  qv: F32,
  qo: number,
  K: F32,
  V: F32,
  key: (j: number) => number,
  n: number,
  d: number,
  cum: ((j: number) => number) | null,
  out: F32,
  oo: number,
): void {
  const s = 1 / Math.sqrt(d);
  const logits = new Float64Array(n);
  const cNow = cum ? cum(n - 1) : 0;
  let mx = -Infinity;
  for (let j = 0; j < n; j++) {
    const ko = key(j);
    let dot = 0;
    for (let m = 0; m < d; m++) dot += qv[qo + m]! * K[ko + m]!;
    logits[j] = s * dot + (cum ? cNow - cum(j) : 0);
    if (logits[j]! > mx) mx = logits[j]!;
  }
  const acc = new Float64Array(d);
  let z = 0;
  for (let j = 0; j < n; j++) {
    const e = Math.exp(logits[j]! - mx),
      vo = key(j);
    z += e;
    for (let m = 0; m < d; m++) acc[m]! += e * V[vo + m]!;
  }
  for (let m = 0; m < d; m++) out[oo + m] = acc[m]! / z;
}

/** Write each row's K, V (and 2Mamba-E's cumulative decay) into the paged cache. */
export const kvAppendOp: CpuOp<'kv_append'> = (b, op, step, rows) => {
  const x = b.f32(op.qkv),
    K = b.f32(op.k),
    V = b.f32(op.v),
    off = qkvOffsets(op.layout);
  const { kvHeads, headDim: d, heads } = op.layout,
    P = op.pageSize;
  const C = op.c ? b.get(op.c) : null,
    logA = op.logA ? b.f32(op.logA) : null;
  let r = 0;
  for (const s of step.seqs) {
    for (let t = 0; t < s.rows; t++, r++) {
      const pos = s.pos + t,
        page = pageOf(s.pages, pos, P),
        slotBase = page * P + (pos % P);
      for (let g = 0; g < kvHeads; g++) {
        K.set(x.subarray(r * off.width + off.k(g), r * off.width + off.k(g) + d), (slotBase * kvHeads + g) * d);
        V.set(x.subarray(r * off.width + off.v(g), r * off.width + off.v(g) + d), (slotBase * kvHeads + g) * d);
      }
      if (C && logA) {
        // C_pos = C_{pos−1} + A_pos, C_{−1} = 0 (spec §6.2).
        const prevBase = pos > 0 ? pageOf(s.pages, pos - 1, P) * P + ((pos - 1) % P) : -1;
        for (let h = 0; h < heads; h++)
          C[slotBase * heads + h] = (prevBase >= 0 ? C[prevBase * heads + h]! : 0) + logA[r * heads + h]!;
      }
    }
  }
};

/** Attention of one row (token t of sequence s, row r of the step) over its cached positions, every head. */
export function attentionRow(
  b: CpuBuffers,
  op: Extract<Op, { op: 'attention' }>,
  s: SeqStep,
  t: number,
  r: number,
): void {
  const x = b.f32(op.qkv),
    K = b.f32(op.k),
    V = b.f32(op.v),
    out = b.f32(op.out);
  const C = op.c ? b.get(op.c) : null,
    off = qkvOffsets(op.layout);
  const { heads, kvHeads, headDim: d } = op.layout,
    P = op.pageSize;
  const pos = s.pos + t;
  const at = (j: number) => pageOf(s.pages, j, P) * P + (j % P);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / off.group);
    attendRow(
      x,
      r * off.width + off.q(h),
      K,
      V,
      (j) => (at(j) * kvHeads + g) * d,
      pos + 1,
      d,
      C ? (j) => C[at(j) * heads + h]! : null,
      out,
      r * heads * d + h * d,
    );
  }
}

/** Causal attention of each row over its sequence's cached positions. */
export const attentionOp: CpuOp<'attention'> = (b, op, step) => {
  let r = 0;
  for (const s of step.seqs) for (let t = 0; t < s.rows; t++) attentionRow(b, op, s, t, r++);
};
