// CPU reference kernels: plain TypeScript over Float32Array storage, sums in f64 (JS numbers).
// These are the oracle every GPU kernel is tested against: keep them simple and obviously right.
import { DEN_FLOOR, type QkvLayout } from '../backend.js';

type F32 = Float32Array;

/** Row-major upper-triangle index p(i, j), 0 ≤ i ≤ j < d (spec/2mamba.md §5.2). */
export const phiIndex = (i: number, j: number, d: number) => i * d - (i * (i - 1)) / 2 + (j - i);
export const phiDim = (d: number) => (d * (d + 1)) / 2;

/** φ(u)_p(i,j) = c_ij u_i u_j with c_ii = 1, c_ij = √2: φ(u)·φ(w) = (u·w)². */
export function phi(u: ArrayLike<number>, out = new Float64Array(phiDim(u.length))): Float64Array {
  const d = u.length;
  let p = 0;
  for (let i = 0; i < d; i++) {
    out[p++] = u[i]! * u[i]!;
    for (let j = i + 1; j < d; j++) out[p++] = Math.SQRT2 * u[i]! * u[j]!;
  }
  return out;
}

/** Stable softplus: max(z, 0) + log1p(exp(−|z|)). */
export const softplus = (z: number) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));

export function embed(table: F32, ids: Int32Array, out: F32, rows: number, dim: number, vocab: number): void {
  for (let r = 0; r < rows; r++) {
    const id = ids[r]!;
    if (id < 0 || id >= vocab) throw new RangeError(`embed: token id ${id} is outside the vocabulary (0 … ${vocab - 1})`);
    out.set(table.subarray(id * dim, (id + 1) * dim), r * dim);
  }
}

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
  const put = (i: number, v: number) => { out[i] = add ? out[i]! + v : v; };
  let r = 0;
  for (; r + 3 < rows; r += 4) {
    const x0 = r * k, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
    for (let c = 0; c < n; c++) {
      const wo = c * k;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let i = 0; i < k; i++) {
        const wv = w[wo + i]!;
        s0 += x[x0 + i]! * wv;
        s1 += x[x1 + i]! * wv;
        s2 += x[x2 + i]! * wv;
        s3 += x[x3 + i]! * wv;
      }
      put(r * n + c, s0); put((r + 1) * n + c, s1); put((r + 2) * n + c, s2); put((r + 3) * n + c, s3);
    }
  }
  for (; r < rows; r++) {
    const xo = r * k;
    for (let c = 0; c < n; c++) {
      const wo = c * k;
      let s0 = 0, s1 = 0, i = 0;
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
      const g = x[r * 2 * n + i]!, u = x[r * 2 * n + n + i]!;
      out[r * n + i] = (g / (1 + Math.exp(-g))) * u;
    }
  }
}

/** One window-2 conv row: out = b + w0 ⊙ prev + w1 ⊙ cur (weight [ch, 2]). `prev` null means the zero token. */
export function conv2Row(prev: F32 | null, cur: F32, w: F32, b: F32, out: F32, ch: number): void {
  for (let c = 0; c < ch; c++) out[c] = b[c]! + (prev ? w[2 * c]! * prev[c]! : 0) + w[2 * c + 1]! * cur[c]!;
}

/**
 * One recurrent 2Mamba step for one head (spec §5.3): S ← a·S + φ(s·k) vᵀ, n ← a·n + φ(s·k), y = φ(q)ᵀS / φ(q)ᵀn.
 * The readout is taken as a·φ(q)ᵀS_prev + (s·q·k)²·v (and likewise for n): the same value, with the current token's
 * term computed exactly in score space instead of through D = d(d+1)/2 cancelling fp32 products.
 */
export function mamba2Step(q: F32, k: F32, v: F32, a: number, S: F32, N: F32, y: F32, d: number): void {
  const s = 1 / Math.sqrt(d);
  const num = new Float64Array(d);
  let den = 0, p = 0, qk = 0;
  for (let m = 0; m < d; m++) qk += q[m]! * k[m]!;
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++, p++) {
      const c = i === j ? 1 : Math.SQRT2;
      const fk = c * (s * k[i]!) * (s * k[j]!), fq = c * q[i]! * q[j]!;
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
export function mamba2Chunked(src: F32, qOff: number, kOff: number, vOff: number, stride: number,
                              logA: ArrayLike<number>, aStride: number, T: number,
                              S: F32, N: F32, y: F32, yStride: number, d: number, chunk = 64): void {
  const s = 1 / Math.sqrt(d), D = phiDim(d);
  const fq = new Float64Array(D), fk = new Float64Array(D);
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
        const ko = (c0 + u) * stride + kOff, vo = (c0 + u) * stride + vOff;
        let dot = 0;
        for (let m = 0; m < d; m++) dot += src[qo + m]! * src[ko + m]!;
        const w = Math.exp(G[t]! - G[u]!) * (s * dot) ** 2;
        for (let m = 0; m < d; m++) num[m]! += w * src[vo + m]!;
        den += w;
      }
      const inv = 1 / Math.max(den, DEN_FLOOR), yo = (c0 + t) * yStride;
      for (let m = 0; m < d; m++) y[yo + m] = num[m]! * inv;
    }
    // State: S_e = exp(G_e) S_prev + Σ_j exp(G_e − G_j) φ(s k_j) v_jᵀ  (n likewise).
    const Ge = G[L - 1]!, eg = Math.exp(Ge);
    const acc = new Float64Array(D * d), accN = new Float64Array(D);
    for (let u = 0; u < L; u++) {
      const ko = (c0 + u) * stride + kOff, vo = (c0 + u) * stride + vOff;
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

/** RoPE on one head vector at position pos (spec §7.1 interleaved pairs, §7.2 half-split). */
export function ropeHead(x: F32, off: number, pos: number, freqs: F32, d: number, convention: 'interleaved' | 'half'): void {
  for (let m = 0; m < d / 2; m++) {
    const ang = pos * freqs[m]!, cs = Math.cos(ang), sn = Math.sin(ang);
    const a = convention === 'interleaved' ? off + 2 * m : off + m;
    const b = convention === 'interleaved' ? off + 2 * m + 1 : off + m + d / 2;
    const xa = x[a]!, xb = x[b]!;
    x[a] = xa * cs - xb * sn;
    x[b] = xb * cs + xa * sn;
  }
}

/** Column offsets of the Q, K and V heads in a fused [Q | K | V] row. */
export function qkvOffsets(l: QkvLayout) {
  const { heads, kvHeads, headDim: d } = l;
  return { q: (h: number) => h * d, k: (g: number) => heads * d + g * d, v: (g: number) => (heads + kvHeads) * d + g * d,
           width: (heads + 2 * kvHeads) * d, group: heads / kvHeads };
}

/**
 * Causal attention of one query row over cached keys 0 … pos (softmax; with C, 2Mamba-E: ℓ_j = s·q·k_j + C_pos − C_j).
 * Max-subtracted log-sum-exp in f64. `key(j)`/`val(j)` return element offsets into K/V; `cum(j)` the C_j values.
 */
export function attendRow(qv: F32, qo: number, K: F32, V: F32, key: (j: number) => number, n: number, d: number,
                          cum: ((j: number) => number) | null, out: F32, oo: number): void {
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
    const e = Math.exp(logits[j]! - mx), vo = key(j);
    z += e;
    for (let m = 0; m < d; m++) acc[m]! += e * V[vo + m]!;
  }
  for (let m = 0; m < d; m++) out[oo + m] = acc[m]! / z;
}
