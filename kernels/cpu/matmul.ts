// CPU reference kernels (the oracle every GPU kernel is tested against: simple and obviously right), family: matmul.
// Plain TypeScript over Float32Array storage, sums in f64 (JS numbers).
import type { CpuOp } from './common.js';

type F32 = Float32Array;

export function rmsnorm(x: F32, w: F32, out: F32, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i]! * x[o + i]!;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[o + i] = w[i]! * (x[o + i]! * inv);
  }
}

/** out[r, :n] (+)= x[r, :k] · wᵀ, w row-major [n, k]. Rows go four at a time so each weight row is read once per four. */
export function matmul(x: F32, w: F32, out: F32, rows: number, k: number, n: number, add = false): void {
  const put = (i: number, v: number) => {
    out[i] = add ? out[i]! + v : v;
  };
  let r = 0;
  for (; r + 3 < rows; r += 4) {
    const x0 = r * k,
      x1 = x0 + k,
      x2 = x1 + k,
      x3 = x2 + k;
    for (let c = 0; c < n; c++) {
      const wo = c * k;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let i = 0; i < k; i++) {
        const wv = w[wo + i]!;
        s0 += x[x0 + i]! * wv;
        s1 += x[x1 + i]! * wv;
        s2 += x[x2 + i]! * wv;
        s3 += x[x3 + i]! * wv;
      }
      put(r * n + c, s0);
      put((r + 1) * n + c, s1);
      put((r + 2) * n + c, s2);
      put((r + 3) * n + c, s3);
    }
  }
  for (; r < rows; r++) {
    const xo = r * k;
    for (let c = 0; c < n; c++) {
      const wo = c * k;
      let s0 = 0,
        s1 = 0,
        i = 0;
      for (; i + 1 < k; i += 2) {
        s0 += x[xo + i]! * w[wo + i]!;
        s1 += x[xo + i + 1]! * w[wo + i + 1]!;
      }
      if (i < k) s0 += x[xo + i]! * w[wo + i]!;
      put(r * n + c, s0 + s1);
    }
  }
}

export function siluMul(x: F32, out: F32, rows: number, n: number): void {
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      const g = x[r * 2 * n + i]!,
        u = x[r * 2 * n + n + i]!;
      out[r * n + i] = (g / (1 + Math.exp(-g))) * u;
    }
  }
}

/** The matmul op: the rmsnorm or silu·mul prologue into a scratch block, then the product (and residual add). */
export const matmulOp: CpuOp<'matmul'> = (b, op, step, rows) => {
  const R = op.perSeq ? step.seqs.length : rows;
  let x = b.f32(op.x);
  if (op.norm) {
    const xn = b.temp(R * op.k);
    rmsnorm(x, b.f32(op.norm.weight), xn, R, op.k, op.norm.eps);
    x = xn;
  } else if (op.act === 'silu_mul') {
    const xa = b.temp(R * op.k);
    siluMul(x, xa, R, op.k);
    x = xa;
  }
  matmul(x, b.f32(op.w), b.f32(op.out), R, op.k, op.n, op.add);
};
