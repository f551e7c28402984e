// CPU reference kernels (the oracle every GPU kernel is tested against: simple and obviously right), family: mamba2.
// Plain TypeScript over Float32Array storage, sums in f64 (JS numbers).
import { DEN_FLOOR, PHI_OFF_DIAGONAL, phiDim } from '../ops.js';
import type { CpuOp } from './common.js';

type F32 = Float32Array;

/** Row-major upper-triangle index p(i, j), 0 ≤ i ≤ j < d (spec/2mamba.md §5.2). */
export const phiIndex = (i: number, j: number, d: number) => i * d - (i * (i - 1)) / 2 + (j - i);

/** φ(u)_p(i,j) = c_ij u_i u_j with c_ii = 1, c_ij = √2: φ(u)·φ(w) = (u·w)². */
export function phi(u: ArrayLike<number>, out = new Float64Array(phiDim(u.length))): Float64Array {
  const d = u.length;
  let p = 0;
  for (let i = 0; i < d; i++) {
    out[p++] = u[i]! * u[i]!;
    for (let j = i + 1; j < d; j++) out[p++] = PHI_OFF_DIAGONAL * u[i]! * u[j]!;
  }
  return out;
}

/**
 * One recurrent 2Mamba step for one head (spec §5.3): S ← a·S + φ(s·k) vᵀ, n ← a·n + φ(s·k), y = φ(q)ᵀS / φ(q)ᵀn.
 * The readout is taken as a·φ(q)ᵀS_prev + (s·q·k)²·v (and likewise for n): the same value, with the current token's
 * term computed exactly in score space instead of through D = d(d+1)/2 cancelling fp32 products.
 */
export function mamba2Step(q: F32, k: F32, v: F32, a: number, S: F32, N: F32, y: F32, d: number): void {
  const s = 1 / Math.sqrt(d);
  const num = new Float64Array(d);
  let den = 0,
    p = 0,
    qk = 0;
  for (let m = 0; m < d; m++) qk += q[m]! * k[m]!;
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++, p++) {
      const c = i === j ? 1 : PHI_OFF_DIAGONAL;
      const fk = c * (s * k[i]!) * (s * k[j]!),
        fq = c * q[i]! * q[j]!;
      const row = p * d;
      for (let m = 0; m < d; m++) {
        num[m]! += fq * S[row + m]!;
        S[row + m] = a * S[row + m]! + fk * v[m]!;
      }
      den += fq * N[p]!;
      N[p] = a * N[p]! + fk;
    }
  }
  const w = (s * qk) ** 2;
  const inv = 1 / Math.max(a * den + w, DEN_FLOOR);
  for (let m = 0; m < d; m++) y[m] = (a * num[m]! + w * v[m]!) * inv;
}

/**
 * Chunked 2Mamba for one head over T rows (spec §5.4, chunked form): intra-chunk in score space, inter-chunk
 * through the carried state. Chunk-local cumulative sums keep every exponent ≤ 0. Rows are strided views:
 * q/k/v of row t start at t·stride (+ the given offsets); y of row t at t·yStride.
 */
export function mamba2Chunked(
  src: F32,
  qOff: number,
  kOff: number,
  vOff: number,
  stride: number,
  logA: ArrayLike<number>,
  aStride: number,
  T: number,
  S: F32,
  N: F32,
  y: F32,
  yStride: number,
  d: number,
  chunk = 64,
): void {
  const s = 1 / Math.sqrt(d),
    D = phiDim(d);
  const fq = new Float64Array(D),
    fk = new Float64Array(D);
  for (let c0 = 0; c0 < T; c0 += chunk) {
    const L = Math.min(chunk, T - c0);
    const G = new Float64Array(L);
    for (let t = 0, acc = 0; t < L; t++) G[t] = acc += logA[(c0 + t) * aStride]!;
    for (let t = 0; t < L; t++) {
      const qo = (c0 + t) * stride + qOff;
      phi(src.subarray(qo, qo + d), fq);
      const decay = Math.exp(G[t]!);
      const num = new Float64Array(d);
      let den = 0;
      // Inter-chunk: exp(G_i) · φ(q_i)ᵀ S_prev, φ(q_i)ᵀ n_prev.
      for (let p = 0; p < D; p++) {
        const f = fq[p]!;
        if (f === 0) continue;
        for (let m = 0; m < d; m++) num[m]! += f * S[p * d + m]!;
        den += f * N[p]!;
      }
      for (let m = 0; m < d; m++) num[m]! *= decay;
      den *= decay;
      // Intra-chunk: Σ_{j ≤ i} exp(G_i − G_j) (s q_i·k_j)² v_j.
      for (let u = 0; u <= t; u++) {
        const ko = (c0 + u) * stride + kOff,
          vo = (c0 + u) * stride + vOff;
        let dot = 0;
        for (let m = 0; m < d; m++) dot += src[qo + m]! * src[ko + m]!;
        const w = Math.exp(G[t]! - G[u]!) * (s * dot) ** 2;
        for (let m = 0; m < d; m++) num[m]! += w * src[vo + m]!;
        den += w;
      }
      const inv = 1 / Math.max(den, DEN_FLOOR),
        yo = (c0 + t) * yStride;
      for (let m = 0; m < d; m++) y[yo + m] = num[m]! * inv;
    }
    // State: S_e = exp(G_e) S_prev + Σ_j exp(G_e − G_j) φ(s k_j) v_jᵀ  (n likewise).
    const Ge = G[L - 1]!,
      eg = Math.exp(Ge);
    const acc = new Float64Array(D * d),
      accN = new Float64Array(D);
    for (let u = 0; u < L; u++) {
      const ko = (c0 + u) * stride + kOff,
        vo = (c0 + u) * stride + vOff;
      const ks = new Float64Array(d);
      for (let m = 0; m < d; m++) ks[m] = s * src[ko + m]!;
      phi(ks, fk);
      const w = Math.exp(Ge - G[u]!);
      for (let p = 0; p < D; p++) {
        const f = w * fk[p]!;
        accN[p]! += f;
        for (let m = 0; m < d; m++) acc[p * d + m]! += f * src[vo + m]!;
      }
    }
    for (let p = 0; p < D; p++) {
      N[p] = eg * N[p]! + accN[p]!;
      for (let m = 0; m < d; m++) S[p * d + m] = eg * S[p * d + m]! + acc[p * d + m]!;
    }
  }
}

/** 2Mamba attention per sequence and head: the recurrent step for one row, the chunked form for several. */
export const mamba2Op: CpuOp<'mamba2'> = (b, op, step, rows) => {
  const src = b.f32(op.qkv),
    logA = b.f32(op.logA),
    S = b.f32(op.S),
    N = b.f32(op.N),
    y = b.f32(op.out);
  const H = op.heads,
    d = op.headDim,
    D = phiDim(d),
    E = H * d,
    width = 3 * E;
  let r0 = 0;
  for (const s of step.seqs) {
    for (let h = 0; h < H; h++) {
      const Sh = S.subarray((s.slot * H + h) * D * d, (s.slot * H + h + 1) * D * d);
      const Nh = N.subarray((s.slot * H + h) * D, (s.slot * H + h + 1) * D);
      if (s.pos === 0) {
        Sh.fill(0);
        Nh.fill(0);
      }
      if (s.rows === 1) {
        const o = r0 * width;
        mamba2Step(
          src.subarray(o + h * d, o + (h + 1) * d),
          src.subarray(o + E + h * d, o + E + (h + 1) * d),
          src.subarray(o + 2 * E + h * d, o + 2 * E + (h + 1) * d),
          Math.exp(logA[r0 * H + h]!),
          Sh,
          Nh,
          y.subarray(r0 * E + h * d, r0 * E + (h + 1) * d),
          d,
        );
      } else if (s.rows > 1) {
        mamba2Chunked(
          src.subarray(r0 * width),
          h * d,
          E + h * d,
          2 * E + h * d,
          width,
          logA.subarray(r0 * H + h),
          H,
          s.rows,
          Sh,
          Nh,
          y.subarray(r0 * E + h * d),
          E,
          d,
        );
      }
    }
    r0 += s.rows;
  }
};
