// AssemblyScript (compiled to WebAssembly SIMD by `npm run build:wasm`), family: matmul. Pointers are byte offsets
// into the one shared memory; every array is f32. The oracle is kernels/cpu/matmul.ts.
import { hsum } from './common';

function put(out: usize, v: f32, add: bool): void {
  store<f32>(out, add ? load<f32>(out) + v : v);
}

/** Σ_i x[i]·w[i]: lane j sums the i ≡ j (mod 4) products in order, then (l0 + l1) + (l2 + l3), then the scalar tail —
 *  the order of every path of gemm, so a row's result never depends on the rows or columns computed beside it. */
function dot(x: usize, w: usize, k: i32): f32 {
  let a = f32x4.splat(0),
    i = 0;
  for (; i + 3 < k; i += 4) {
    const o = (<usize>i) << 2;
    a = f32x4.add(a, f32x4.mul(v128.load(x + o), v128.load(w + o)));
  }
  let s = hsum(a);
  for (; i < k; i++) s += load<f32>(x + ((<usize>i) << 2)) * load<f32>(w + ((<usize>i) << 2));
  return s;
}

/**
 * out[r, c] (+)= Σ_i x[r, i]·w[c, i] for every row r < rows and the columns c0 ≤ c < c1 (w row-major [n, k]).
 * Blocks of 4 rows × 2 columns keep 8 vector sums in registers, so each weight row is read once per four rows;
 * a single row (decode) goes 4 columns at a time.
 */
export function gemm(x: usize, w: usize, out: usize, rows: i32, k: i32, n: i32, c0: i32, c1: i32, add: bool): void {
  const kb = (<usize>k) << 2,
    nb = (<usize>n) << 2;
  const vk = k & ~3;
  let r = 0;
  for (; r + 3 < rows; r += 4) {
    const x0 = x + <usize>r * kb,
      x1 = x0 + kb,
      x2 = x1 + kb,
      x3 = x2 + kb;
    let c = c0;
    for (; c + 1 < c1; c += 2) {
      const w0 = w + <usize>c * kb,
        w1 = w0 + kb;
      let a00 = f32x4.splat(0),
        a01 = f32x4.splat(0),
        a10 = f32x4.splat(0),
        a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0),
        a21 = f32x4.splat(0),
        a30 = f32x4.splat(0),
        a31 = f32x4.splat(0);
      for (let i = 0; i < vk; i += 4) {
        const o = (<usize>i) << 2;
        const wa = v128.load(w0 + o),
          wb = v128.load(w1 + o);
        const xa = v128.load(x0 + o),
          xb = v128.load(x1 + o),
          xc = v128.load(x2 + o),
          xd = v128.load(x3 + o);
        a00 = f32x4.add(a00, f32x4.mul(xa, wa));
        a01 = f32x4.add(a01, f32x4.mul(xa, wb));
        a10 = f32x4.add(a10, f32x4.mul(xb, wa));
        a11 = f32x4.add(a11, f32x4.mul(xb, wb));
        a20 = f32x4.add(a20, f32x4.mul(xc, wa));
        a21 = f32x4.add(a21, f32x4.mul(xc, wb));
        a30 = f32x4.add(a30, f32x4.mul(xd, wa));
        a31 = f32x4.add(a31, f32x4.mul(xd, wb));
      }
      let s00 = hsum(a00),
        s01 = hsum(a01),
        s10 = hsum(a10),
        s11 = hsum(a11),
        s20 = hsum(a20),
        s21 = hsum(a21),
        s30 = hsum(a30),
        s31 = hsum(a31);
      for (let i = vk; i < k; i++) {
        const o = (<usize>i) << 2;
        const wa = load<f32>(w0 + o),
          wb = load<f32>(w1 + o);
        s00 += load<f32>(x0 + o) * wa;
        s01 += load<f32>(x0 + o) * wb;
        s10 += load<f32>(x1 + o) * wa;
        s11 += load<f32>(x1 + o) * wb;
        s20 += load<f32>(x2 + o) * wa;
        s21 += load<f32>(x2 + o) * wb;
        s30 += load<f32>(x3 + o) * wa;
        s31 += load<f32>(x3 + o) * wb;
      }
      const o0 = out + <usize>r * nb + ((<usize>c) << 2);
      put(o0, s00, add);
      put(o0 + 4, s01, add);
      put(o0 + nb, s10, add);
      put(o0 + nb + 4, s11, add);
      put(o0 + 2 * nb, s20, add);
      put(o0 + 2 * nb + 4, s21, add);
      put(o0 + 3 * nb, s30, add);
      put(o0 + 3 * nb + 4, s31, add);
    }
    for (; c < c1; c++) {
      const wc = w + <usize>c * kb,
        o0 = out + <usize>r * nb + ((<usize>c) << 2);
      put(o0, dot(x0, wc, k), add);
      put(o0 + nb, dot(x1, wc, k), add);
      put(o0 + 2 * nb, dot(x2, wc, k), add);
      put(o0 + 3 * nb, dot(x3, wc, k), add);
    }
  }
  for (; r < rows; r++) {
    const xr = x + <usize>r * kb;
    let c = c0;
    for (; c + 3 < c1; c += 4) {
      const w0 = w + <usize>c * kb,
        w1 = w0 + kb,
        w2 = w1 + kb,
        w3 = w2 + kb;
      let a0 = f32x4.splat(0),
        a1 = f32x4.splat(0),
        a2 = f32x4.splat(0),
        a3 = f32x4.splat(0);
      for (let i = 0; i < vk; i += 4) {
        const o = (<usize>i) << 2;
        const xv = v128.load(xr + o);
        a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(w0 + o)));
        a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(w1 + o)));
        a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(w2 + o)));
        a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(w3 + o)));
      }
      let s0 = hsum(a0),
        s1 = hsum(a1),
        s2 = hsum(a2),
        s3 = hsum(a3);
      for (let i = vk; i < k; i++) {
        const o = (<usize>i) << 2,
          xv = load<f32>(xr + o);
        s0 += xv * load<f32>(w0 + o);
        s1 += xv * load<f32>(w1 + o);
        s2 += xv * load<f32>(w2 + o);
        s3 += xv * load<f32>(w3 + o);
      }
      const o0 = out + <usize>r * nb + ((<usize>c) << 2);
      put(o0, s0, add);
      put(o0 + 4, s1, add);
      put(o0 + 8, s2, add);
      put(o0 + 12, s3, add);
    }
    for (; c < c1; c++) put(out + <usize>r * nb + ((<usize>c) << 2), dot(xr, w + <usize>c * kb, k), add);
  }
}
