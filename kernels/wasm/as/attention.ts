// AssemblyScript (compiled to WebAssembly SIMD by `npm run build:wasm`), family: attention. Pointers are byte offsets
// into the one shared memory. The oracle is kernels/cpu/attention.ts attendRow (f64 there, f32 sums here).
import { hsum } from './common';

/** Byte offset of KV position j's row for kv head g in a paged cache [page, P, kvHeads, d]. */
function kvRow(pages: usize, P: i32, kvHeads: i32, g: i32, d: i32, j: i32): usize {
  const page = load<i32>(pages + ((<usize>(j / P)) << 2));
  return (<usize>(((page * P + (j % P)) * kvHeads + g) * d)) << 2;
}

/**
 * One query row of one head over cached positions 0 … n−1 (d % 4 = 0): ℓ_j = s·q·k_j (+ C_{n−1} − C_j when `C` is not
 * 0: 2Mamba-E, C an f64 array [slot, heads]), out = Σ_j softmax(ℓ)_j v_j. `pages` holds the sequence's page ids (i32),
 * `logits` is scratch for n f32 values.
 */
export function attend(
  q: usize,
  K: usize,
  V: usize,
  pages: usize,
  P: i32,
  kvHeads: i32,
  g: i32,
  heads: i32,
  h: i32,
  n: i32,
  d: i32,
  C: usize,
  out: usize,
  logits: usize,
): void {
  const s: f32 = 1 / Mathf.sqrt(<f32>d);
  let cNow: f64 = 0;
  if (C) {
    const last = n - 1,
      slot = load<i32>(pages + ((<usize>(last / P)) << 2)) * P + (last % P);
    cNow = load<f64>(C + ((<usize>(slot * heads + h)) << 3));
  }
  let mx: f32 = -Infinity;
  for (let j = 0; j < n; j++) {
    const kr = K + kvRow(pages, P, kvHeads, g, d, j);
    let a = f32x4.splat(0);
    for (let m = 0; m < d; m += 4) {
      const o = (<usize>m) << 2;
      a = f32x4.add(a, f32x4.mul(v128.load(q + o), v128.load(kr + o)));
    }
    let l = s * hsum(a);
    if (C) {
      const slot = load<i32>(pages + ((<usize>(j / P)) << 2)) * P + (j % P);
      l += <f32>(cNow - load<f64>(C + ((<usize>(slot * heads + h)) << 3)));
    }
    store<f32>(logits + ((<usize>j) << 2), l);
    mx = max(mx, l);
  }
  // out starts as the accumulator: Σ_j e_j v_j, then divided by Σ_j e_j
  for (let m = 0; m < d; m += 4) v128.store(out + ((<usize>m) << 2), f32x4.splat(0));
  let z: f64 = 0;
  for (let j = 0; j < n; j++) {
    const e = Mathf.exp(load<f32>(logits + ((<usize>j) << 2)) - mx),
      ev = f32x4.splat(e),
      vr = V + kvRow(pages, P, kvHeads, g, d, j);
    z += e;
    for (let m = 0; m < d; m += 4) {
      const o = (<usize>m) << 2;
      v128.store(out + o, f32x4.add(v128.load(out + o), f32x4.mul(ev, v128.load(vr + o))));
    }
  }
  const iv = f32x4.splat(<f32>(1 / z));
  for (let m = 0; m < d; m += 4) v128.store(out + ((<usize>m) << 2), f32x4.mul(iv, v128.load(out + ((<usize>m) << 2))));
}
