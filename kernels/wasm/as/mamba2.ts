// AssemblyScript (compiled to WebAssembly SIMD by `npm run build:wasm`), family: mamba2 (spec/2mamba.md §5).
// Pointers are byte offsets into the one shared memory, arrays f32 unless named otherwise. The oracle is
// kernels/cpu/mamba2.ts; these follow its math (the same readout split, the same chunk-local decays) in f32.
import { hsum } from './common';

const SQRT2: f32 = 1.4142135623730951;
/** DEN_FLOOR of kernels/ops.ts. */
const DEN_FLOOR: f32 = 1e-30;

function at(p: usize, i: i32): usize {
  return p + ((<usize>i) << 2);
}

function dot(x: usize, w: usize, k: i32): f32 {
  let a = f32x4.splat(0);
  for (let i = 0; i < k; i += 4) a = f32x4.add(a, f32x4.mul(v128.load(at(x, i)), v128.load(at(w, i))));
  return hsum(a);
}

/**
 * One recurrent step for one head (d a multiple of 4): S ← a·S + φ(s·k) vᵀ, n ← a·n + φ(s·k), and
 * y = (a·φ(q)ᵀS_prev + (s·q·k)²·v) / max(a·φ(q)ᵀn_prev + (s·q·k)², floor). `num` is scratch for d values.
 * One pass over S: each row p = (i, j) is read once, used for the readout and written back updated.
 */
export function step(q: usize, k: usize, v: usize, a: f32, S: usize, N: usize, y: usize, d: i32, num: usize): void {
  const s: f32 = 1 / Mathf.sqrt(<f32>d);
  for (let m = 0; m < d; m += 4) v128.store(at(num, m), f32x4.splat(0));
  const av = f32x4.splat(a);
  let den: f32 = 0,
    p = 0,
    row = S;
  const rowBytes = (<usize>d) << 2;
  for (let i = 0; i < d; i++) {
    const qi = load<f32>(at(q, i)),
      ki = s * load<f32>(at(k, i));
    for (let j = i; j < d; j++, p++, row += rowBytes) {
      const c: f32 = i == j ? 1 : SQRT2;
      const fk = c * ki * (s * load<f32>(at(k, j))),
        fq = c * qi * load<f32>(at(q, j));
      const fqv = f32x4.splat(fq),
        fkv = f32x4.splat(fk);
      for (let m = 0; m < d; m += 4) {
        const sp = at(row, m),
          np = at(num, m);
        const sv = v128.load(sp);
        v128.store(np, f32x4.add(v128.load(np), f32x4.mul(fqv, sv)));
        v128.store(sp, f32x4.add(f32x4.mul(av, sv), f32x4.mul(fkv, v128.load(at(v, m)))));
      }
      const np = at(N, p),
        nv = load<f32>(np);
      den += fq * nv;
      store<f32>(np, a * nv + fk);
    }
  }
  const w = (s * dot(q, k, d)) ** 2;
  const inv: f32 = 1 / Mathf.max(a * den + w, DEN_FLOOR);
  const wv = f32x4.splat(w),
    iv = f32x4.splat(inv);
  for (let m = 0; m < d; m += 4)
    v128.store(
      at(y, m),
      f32x4.mul(f32x4.add(f32x4.mul(av, v128.load(at(num, m))), f32x4.mul(wv, v128.load(at(v, m)))), iv),
    );
}

/** Bytes of scratch `chunked` needs for head dim d and chunk rows (a multiple of 4). */
export function chunkScratch(d: i32, chunk: i32): i32 {
  const D = (d * (d + 1)) >> 1;
  return 8 * chunk + 4 * (3 * d * chunk + D * chunk + chunk * d + 2 * chunk) + 64;
}

/** rows[p, :L] = c_ij · a[i, :L] ⊙ b[j, :L] (⊙ w) over p = (i, j), i ≤ j: φ of L columns at once (a, b are [d, L]). */
function phiColumns(a: usize, w: usize, out: usize, d: i32, L: i32, weighted: bool): void {
  const lb = (<usize>L) << 2;
  let o = out;
  for (let i = 0; i < d; i++) {
    const ai = a + <usize>i * lb;
    for (let j = i; j < d; j++, o += lb) {
      const aj = a + <usize>j * lb,
        c = f32x4.splat(i == j ? 1 : SQRT2);
      for (let t = 0; t < L; t += 4) {
        let x = f32x4.mul(c, f32x4.mul(v128.load(at(ai, t)), v128.load(at(aj, t))));
        if (weighted) x = f32x4.mul(x, v128.load(at(w, t)));
        v128.store(at(o, t), x);
      }
    }
  }
}

/** num[t, m] = Σ_p P[p, t]·S[p, m], den[t] = Σ_p P[p, t]·n[p]  (P [D, L], S [D, d]; L % 4 = 0, d % 8 = 0). */
function readout(P: usize, S: usize, N: usize, num: usize, den: usize, D: i32, d: i32, L: i32): void {
  const lb = (<usize>L) << 2,
    db = (<usize>d) << 2;
  for (let t = 0; t < L; t += 4) {
    for (let m = 0; m < d; m += 8) {
      let a0 = f32x4.splat(0),
        a1 = f32x4.splat(0),
        b0 = f32x4.splat(0),
        b1 = f32x4.splat(0),
        c0 = f32x4.splat(0),
        c1 = f32x4.splat(0),
        e0 = f32x4.splat(0),
        e1 = f32x4.splat(0);
      let pp = at(P, t),
        sp = at(S, m);
      for (let p = 0; p < D; p++, pp += lb, sp += db) {
        const s0 = v128.load(sp),
          s1 = v128.load(sp, 16);
        const f0 = v128.load32_splat(pp),
          f1 = v128.load32_splat(pp, 4),
          f2 = v128.load32_splat(pp, 8),
          f3 = v128.load32_splat(pp, 12);
        a0 = f32x4.add(a0, f32x4.mul(f0, s0));
        a1 = f32x4.add(a1, f32x4.mul(f0, s1));
        b0 = f32x4.add(b0, f32x4.mul(f1, s0));
        b1 = f32x4.add(b1, f32x4.mul(f1, s1));
        c0 = f32x4.add(c0, f32x4.mul(f2, s0));
        c1 = f32x4.add(c1, f32x4.mul(f2, s1));
        e0 = f32x4.add(e0, f32x4.mul(f3, s0));
        e1 = f32x4.add(e1, f32x4.mul(f3, s1));
      }
      const o = at(num, t * d + m);
      v128.store(o, a0);
      v128.store(o, a1, 16);
      v128.store(o + db, b0);
      v128.store(o + db, b1, 16);
      v128.store(o + 2 * db, c0);
      v128.store(o + 2 * db, c1, 16);
      v128.store(o + 3 * db, e0);
      v128.store(o + 3 * db, e1, 16);
    }
    let dv = f32x4.splat(0),
      pp = at(P, t);
    for (let p = 0; p < D; p++, pp += lb) dv = f32x4.add(dv, f32x4.mul(v128.load(pp), v128.load32_splat(at(N, p))));
    v128.store(at(den, t), dv);
  }
}

/** S[p, :] = e·S[p, :] + Σ_u P[p, u]·V[u, :], n[p] = e·n[p] + Σ_u P[p, u]  (P [D, L], V [L, d]). */
function update(P: usize, V: usize, S: usize, N: usize, e: f32, D: i32, d: i32, L: i32): void {
  const lb = (<usize>L) << 2,
    db = (<usize>d) << 2,
    ev = f32x4.splat(e);
  for (let p = 0; p < D; p += 4) {
    const p0 = P + <usize>p * lb,
      p1 = p0 + lb,
      p2 = p1 + lb,
      p3 = p2 + lb;
    for (let m = 0; m < d; m += 8) {
      const s0 = S + <usize>p * db + ((<usize>m) << 2);
      let a0 = f32x4.mul(ev, v128.load(s0)),
        a1 = f32x4.mul(ev, v128.load(s0, 16)),
        b0 = f32x4.mul(ev, v128.load(s0 + db)),
        b1 = f32x4.mul(ev, v128.load(s0 + db, 16)),
        c0 = f32x4.mul(ev, v128.load(s0 + 2 * db)),
        c1 = f32x4.mul(ev, v128.load(s0 + 2 * db, 16)),
        e0 = f32x4.mul(ev, v128.load(s0 + 3 * db)),
        e1 = f32x4.mul(ev, v128.load(s0 + 3 * db, 16));
      let vp = at(V, m);
      for (let u = 0; u < L; u++, vp += db) {
        const v0 = v128.load(vp),
          v1 = v128.load(vp, 16);
        const uo = (<usize>u) << 2;
        const f0 = v128.load32_splat(p0 + uo),
          f1 = v128.load32_splat(p1 + uo),
          f2 = v128.load32_splat(p2 + uo),
          f3 = v128.load32_splat(p3 + uo);
        a0 = f32x4.add(a0, f32x4.mul(f0, v0));
        a1 = f32x4.add(a1, f32x4.mul(f0, v1));
        b0 = f32x4.add(b0, f32x4.mul(f1, v0));
        b1 = f32x4.add(b1, f32x4.mul(f1, v1));
        c0 = f32x4.add(c0, f32x4.mul(f2, v0));
        c1 = f32x4.add(c1, f32x4.mul(f2, v1));
        e0 = f32x4.add(e0, f32x4.mul(f3, v0));
        e1 = f32x4.add(e1, f32x4.mul(f3, v1));
      }
      v128.store(s0, a0);
      v128.store(s0, a1, 16);
      v128.store(s0 + db, b0);
      v128.store(s0 + db, b1, 16);
      v128.store(s0 + 2 * db, c0);
      v128.store(s0 + 2 * db, c1, 16);
      v128.store(s0 + 3 * db, e0);
      v128.store(s0 + 3 * db, e1, 16);
    }
    for (let i = 0; i < 4; i++) {
      const pi = p0 + <usize>i * lb;
      let acc = f32x4.splat(0);
      for (let u = 0; u < L; u += 4) acc = f32x4.add(acc, v128.load(at(pi, u)));
      const np = at(N, p + i);
      store<f32>(np, e * load<f32>(np) + hsum(acc));
    }
  }
}

/**
 * The chunked form for one head over T rows (spec §5.4), as kernels/cpu/mamba2.ts mamba2Chunked: per chunk of up
 * to `chunk` rows (a multiple of 4), the inter-chunk readout exp(G_t)·φ(q_t)ᵀ[S | n] and the state update as
 * products over φ's D rows, the intra-chunk part in score space. Rows are strided: q/k/v of row t at
 * src + t·stride (+ offsets, in elements), logA of row t at logA + t·aStride, y of row t at y + t·yStride.
 * `fresh`: the state is zero (a sequence's first rows), so the first chunk's readout is skipped. d % 8 = 0.
 */
export function chunked(
  src: usize,
  qOff: i32,
  kOff: i32,
  vOff: i32,
  stride: i32,
  logA: usize,
  aStride: i32,
  T: i32,
  S: usize,
  N: usize,
  y: usize,
  yStride: i32,
  d: i32,
  chunk: i32,
  fresh: bool,
  scratch: usize,
): void {
  const s: f32 = 1 / Mathf.sqrt(<f32>d),
    D = (d * (d + 1)) >> 1;
  const Lb = (<usize>chunk) << 2;
  // Scratch: G (f64) | QT [d, chunk] | KT [d, chunk] | VC [chunk, d] | W [chunk] | P [D, chunk] | num [chunk, d] | den.
  const G = (scratch + 7) & ~7,
    QT = G + ((<usize>chunk) << 3),
    KT = QT + <usize>d * Lb,
    VC = KT + <usize>d * Lb,
    W = VC + <usize>d * Lb,
    P = W + Lb,
    num = P + <usize>D * Lb,
    den = num + <usize>d * Lb;
  for (let c0 = 0; c0 < T; c0 += chunk) {
    const L = min(chunk, T - c0),
      Lp = (L + 3) & ~3,
      lb = (<usize>Lp) << 2;
    let acc: f64 = 0;
    for (let t = 0; t < L; t++) {
      acc += <f64>load<f32>(at(logA, (c0 + t) * aStride));
      store<f64>(G + ((<usize>t) << 3), acc);
    }
    // Transposed copies [d, Lp] of q and s·k, the chunk's v rows [Lp, d]; padding rows are zero.
    for (let t = 0; t < Lp; t++) {
      const row = at(src, (c0 + t) * stride),
        live = t < L;
      for (let i = 0; i < d; i++) {
        store<f32>(at(QT + <usize>i * lb, t), live ? load<f32>(at(row, qOff + i)) : 0);
        store<f32>(at(KT + <usize>i * lb, t), live ? s * load<f32>(at(row, kOff + i)) : 0);
        store<f32>(at(VC, t * d + i), live ? load<f32>(at(row, vOff + i)) : 0);
      }
    }
    // Inter-chunk: exp(G_t)·φ(q_t)ᵀ S_prev and φ(q_t)ᵀ n_prev.
    if (fresh && c0 == 0) {
      memory.fill(num, 0, <usize>Lp * d * 4);
      memory.fill(den, 0, lb);
    } else {
      phiColumns(QT, W, P, d, Lp, false);
      readout(P, S, N, num, den, D, d, Lp);
      for (let t = 0; t < L; t++) {
        const e = <f32>Math.exp(load<f64>(G + ((<usize>t) << 3))),
          ev = f32x4.splat(e);
        for (let m = 0; m < d; m += 4) v128.store(at(num, t * d + m), f32x4.mul(ev, v128.load(at(num, t * d + m))));
        store<f32>(at(den, t), e * load<f32>(at(den, t)));
      }
    }
    // Intra-chunk: Σ_{u ≤ t} exp(G_t − G_u)·(s q_t·k_u)²·v_u, then y = num / max(den, floor).
    for (let t = 0; t < L; t++) {
      const qt = at(src, (c0 + t) * stride + qOff),
        Gt = load<f64>(G + ((<usize>t) << 3)),
        nt = at(num, t * d);
      let dt = load<f32>(at(den, t));
      for (let u = 0; u <= t; u++) {
        const x = s * dot(qt, at(src, (c0 + u) * stride + kOff), d);
        const w = <f32>Math.exp(Gt - load<f64>(G + ((<usize>u) << 3))) * x * x,
          wv = f32x4.splat(w),
          vu = at(VC, u * d);
        for (let m = 0; m < d; m += 4)
          v128.store(at(nt, m), f32x4.add(v128.load(at(nt, m)), f32x4.mul(wv, v128.load(at(vu, m)))));
        dt += w;
      }
      const iv = f32x4.splat(<f32>1 / Mathf.max(dt, DEN_FLOOR)),
        yt = at(y, (c0 + t) * yStride);
      for (let m = 0; m < d; m += 4) v128.store(at(yt, m), f32x4.mul(iv, v128.load(at(nt, m))));
    }
    // State: S_e = exp(G_e)·S_prev + Σ_u exp(G_e − G_u)·φ(s k_u) v_uᵀ (n likewise).
    const Ge = load<f64>(G + ((<usize>(L - 1)) << 3));
    for (let u = 0; u < Lp; u++) store<f32>(at(W, u), u < L ? <f32>Math.exp(Ge - load<f64>(G + ((<usize>u) << 3))) : 0);
    phiColumns(KT, W, P, d, Lp, true);
    update(P, VC, S, N, <f32>Math.exp(Ge), D, d, Lp);
  }
}
