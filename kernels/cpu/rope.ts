// CPU reference kernels (the oracle every GPU kernel is tested against: simple and obviously right), family: rope.
// Plain TypeScript over Float32Array storage, sums in f64 (JS numbers).
import { qkvOffsets } from '../ops.js';
import type { CpuOp } from './common.js';

type F32 = Float32Array;

/** RoPE on one head vector at position pos (spec §7.1 interleaved pairs, §7.2 half-split). */
export function ropeHead(
  x: F32,
  off: number,
  pos: number,
  freqs: F32,
  d: number,
  convention: 'interleaved' | 'half',
): void {
  for (let m = 0; m < d / 2; m++) {
    const ang = pos * freqs[m]!,
      cs = Math.cos(ang),
      sn = Math.sin(ang);
    const a = convention === 'interleaved' ? off + 2 * m : off + m;
    const b = convention === 'interleaved' ? off + 2 * m + 1 : off + m + d / 2;
    const xa = x[a]!,
      xb = x[b]!;
    x[a] = xa * cs - xb * sn;
    x[b] = xb * cs + xa * sn;
  }
}

/** RoPE in place on every Q and K head of each row, at the row's position. */
export const ropeOp: CpuOp<'rope'> = (b, op, step, rows) => {
  const x = b.f32(op.qkv),
    freqs = b.f32(op.freqs),
    off = qkvOffsets(op.layout),
    d = op.layout.headDim;
  let r = 0;
  for (const s of step.seqs) {
    for (let t = 0; t < s.rows; t++, r++) {
      const base = r * off.width;
      for (let h = 0; h < op.layout.heads; h++) ropeHead(x, base + off.q(h), s.pos + t, freqs, d, op.convention);
      for (let g = 0; g < op.layout.kvHeads; g++) ropeHead(x, base + off.k(g), s.pos + t, freqs, d, op.convention);
    }
  }
};
