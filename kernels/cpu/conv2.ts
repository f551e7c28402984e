// CPU reference kernels (the oracle every GPU kernel is tested against: simple and obviously right), family: conv2.
// Plain TypeScript over Float32Array storage, sums in f64 (JS numbers).
import type { CpuOp } from './common.js';

type F32 = Float32Array;

/** Stable softplus: max(z, 0) + log1p(exp(−|z|)). */
export const softplus = (z: number) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));

/** One window-2 conv row: out = b + w0 ⊙ prev + w1 ⊙ cur (weight [ch, 2]). `prev` null means the zero token. */
export function conv2Row(prev: F32 | null, cur: F32, w: F32, b: F32, out: F32, ch: number): void {
  for (let c = 0; c < ch; c++) out[c] = b[c]! + (prev ? w[2 * c]! * prev[c]! : 0) + w[2 * c + 1]! * cur[c]!;
}

/** conv2 over each sequence's rows, carrying the last raw row in the slot's state; with decay, −softplus(z). */
export const conv2Op: CpuOp<'conv2'> = (bufs, op, step, rows) => {
  const x = bufs.f32(op.x),
    st = bufs.f32(op.state),
    w = bufs.f32(op.weight),
    b = bufs.f32(op.bias),
    out = bufs.f32(op.out);
  const ch = op.ch,
    xs = op.xStride ?? ch,
    row = (r: number) => x.subarray(r * xs, r * xs + ch);
  let r = 0;
  for (const s of step.seqs) {
    const slot = st.subarray(s.slot * ch, (s.slot + 1) * ch);
    for (let t = 0; t < s.rows; t++, r++) {
      const prev = t > 0 ? row(r - 1) : s.pos > 0 ? slot : null;
      conv2Row(prev, row(r), w, b, out.subarray(r * ch, (r + 1) * ch), ch);
    }
    if (s.rows > 0) slot.set(row(r - 1));
  }
  if (op.decay) {
    const H = op.decay.heads,
      la = bufs.f32(op.decay.out);
    for (let i = 0; i < rows; i++) for (let h = 0; h < H; h++) la[i * H + h] = -softplus(x[i * xs + ch + h]!);
  }
};
