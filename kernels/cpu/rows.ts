// CPU reference kernels (the oracle every GPU kernel is tested against: simple and obviously right), family: rows (embedding, gathers, sampling).
// Plain TypeScript over Float32Array storage, sums in f64 (JS numbers).
import { allows, maskWords, readSampleParams, sampleNoise } from '../ops.js';
import type { CpuOp } from './common.js';

type F32 = Float32Array;

export function embed(table: F32, ids: Int32Array, out: F32, rows: number, dim: number, vocab: number): void {
  for (let r = 0; r < rows; r++) {
    const id = ids[r]!;
    if (id < 0 || id >= vocab)
      throw new RangeError(`embed: token id ${id} is outside the vocabulary (0 … ${vocab - 1})`);
    out.set(table.subarray(id * dim, (id + 1) * dim), r * dim);
  }
}

/** out[r] = table[ids[r]] */
export const embedOp: CpuOp<'embed'> = (b, op, step, rows) => {
  const table = b.f32(op.table);
  const ids = b.get(op.ids);
  if (!(ids instanceof Int32Array)) throw new Error(`embed: ids buffer "${op.ids}" is not i32`);
  embed(table, ids, b.f32(op.out), rows, op.dim, table.length / op.dim);
};

/** out[s] = x[last row of sequence s] */
export const gatherLastOp: CpuOp<'gather_last'> = (b, op, step, rows) => {
  const x = b.f32(op.x),
    out = b.f32(op.out);
  let r = 0,
    i = 0;
  for (const s of step.seqs) {
    r += s.rows;
    if (s.rows > 0) out.set(x.subarray((r - 1) * op.dim, r * op.dim), i * op.dim);
    i++;
  }
};

/** Argmax, or Gumbel-max over logits / T with noise keyed by (seed, draw) (kernels/ops.ts), among the ids a masked
 *  row allows (-1 when it allows none). */
export const sampleOp: CpuOp<'sample'> = (b, op, step, rows) => {
  const x = b.f32(op.logits),
    prm = b.get(op.params),
    out = b.get(op.out),
    V = op.vocab,
    Wm = maskWords(V);
  for (let s = 0; s < step.seqs.length; s++) {
    const { temperature: T, key, masked } = readSampleParams(prm, s);
    const mask = masked ? b.get(op.mask).subarray(s * Wm, (s + 1) * Wm) : null;
    let best = -Infinity,
      arg = -1;
    for (let i = 0; i < V; i++) {
      if (mask && !allows(mask, i)) continue;
      const v = T > 0 ? x[s * V + i]! / T + sampleNoise(key, i) : x[s * V + i]!;
      if (arg < 0 || v > best) {
        best = v;
        arg = i;
      }
    }
    out[s] = arg;
  }
};
