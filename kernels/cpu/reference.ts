// Parallel (quadratic, f64) forms of the three attentions for one head (spec/2mamba.md §5.1, §6.1, §7):
// the reference that the recurrent, chunked and KV-cache forms are tested against.
import { DEN_FLOOR } from '../ops.js';

export type Rows = ArrayLike<number>[];

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function cumsum(A: ArrayLike<number>): number[] {
  const C: number[] = [];
  let acc = 0;
  for (let i = 0; i < A.length; i++) C.push((acc += A[i]!));
  return C;
}

/** y_i = Σ_{j ≤ i} w_j v_j / floor(Σ_j w_j) for one query row i, given its weights w_0 … w_i. */
function rowAverage(v: Rows, w: number[], floor: number): number[] {
  const num = new Array<number>(v[0]!.length).fill(0);
  let den = 0;
  w.forEach((wj, j) => {
    den += wj;
    for (let m = 0; m < num.length; m++) num[m]! += wj * v[j]![m]!;
  });
  return num.map((x) => x / Math.max(den, floor));
}

const causal = (i: number, f: (j: number) => number) => Array.from({ length: i + 1 }, (_, j) => f(j));

/** 2Mamba: w_ij = (s q_i·k_j)² exp(C_i − C_j), row-normalised; A_t = log-decay per token. */
export function twoMambaParallel(q: Rows, k: Rows, v: Rows, A: ArrayLike<number>): number[][] {
  const s = 1 / Math.sqrt(q[0]!.length),
    C = cumsum(A);
  return q.map((qi, i) =>
    rowAverage(
      v,
      causal(i, (j) => (s * dot(qi, k[j]!)) ** 2 * Math.exp(C[i]! - C[j]!)),
      DEN_FLOOR,
    ),
  );
}

/** 2Mamba-E: softmax_j(s q_i·k_j + C_i − C_j). */
export function twoMambaEParallel(q: Rows, k: Rows, v: Rows, A: ArrayLike<number>): number[][] {
  const s = 1 / Math.sqrt(q[0]!.length),
    C = cumsum(A);
  return q.map((qi, i) => {
    const l = causal(i, (j) => s * dot(qi, k[j]!) + C[i]! - C[j]!);
    const mx = Math.max(...l);
    return rowAverage(
      v,
      l.map((x) => Math.exp(x - mx)),
      0,
    );
  });
}

/** Causal softmax attention with scale 1/√d. */
export function softmaxParallel(q: Rows, k: Rows, v: Rows): number[][] {
  return twoMambaEParallel(q, k, v, new Array(q.length).fill(0));
}
