// The three attention mixers (spec/2mamba.md §4–§7), each from A.h (normalised in the first projection's prologue) to A.y.
import type { Op } from '../../kernels/ops.js';
import type { Arch, ModelSpec } from '../../weights/config.js';
import { A, W, qkvLayout, qkvWidth, type Mixer } from './llama.js';

/** The input rmsnorm of layer i, fused into the mixer's first projection. */
const normIn = (spec: ModelSpec, i: number) => ({ weight: W.layer(i).normIn, eps: spec.eps });

/** 2Mamba and 2Mamba-E front end: one projection [qkv | A] → window-2 conv on the raw q, k, v rows, with
 *  A = −softplus(W_A x) taken from the last H columns in the same kernel. */
function convFrontEnd(spec: ModelSpec, i: number): Op[] {
  const w = W.layer(i),
    ch = qkvWidth(spec);
  return [
    { op: 'matmul', x: A.h, w: w.qkv, out: A.qkvRaw, k: spec.hidden, n: ch + spec.heads, norm: normIn(spec, i) },
    {
      op: 'conv2',
      x: A.qkvRaw,
      state: w.conv,
      weight: w.convW,
      bias: w.convB,
      out: A.qkv,
      ch,
      xStride: ch + spec.heads,
      decay: { out: A.logA, heads: spec.heads },
    },
  ];
}

/** 2Mamba: squared scores with decay, row-normalised; constant state S, n per head (§5). */
const twoMamba: Mixer = (spec, i) => [
  ...convFrontEnd(spec, i),
  {
    op: 'mamba2',
    qkv: A.qkv,
    logA: A.logA,
    S: W.layer(i).S,
    N: W.layer(i).N,
    out: A.y,
    heads: spec.heads,
    headDim: spec.headDim,
  },
];

/** 2Mamba-E: softmax with the forget-gate bias C_i − C_j over a KV cache of post-conv k, v and C_j (§6). */
const twoMambaE: Mixer = (spec, i, pageSize) => {
  const w = W.layer(i),
    layout = qkvLayout(spec);
  return [
    ...convFrontEnd(spec, i),
    { op: 'kv_append', qkv: A.qkv, k: w.k, v: w.v, layout, pageSize, logA: A.logA, c: w.c },
    { op: 'attention', qkv: A.qkv, k: w.k, v: w.v, c: w.c, out: A.y, layout, pageSize },
  ];
};

/** softmax: RoPE (interleaved for the paper's checkpoints, half-split for HF Llama), causal SDPA (§7). */
const softmax: Mixer = (spec, i, pageSize) => {
  const w = W.layer(i),
    layout = qkvLayout(spec);
  return [
    { op: 'matmul', x: A.h, w: w.qkv, out: A.qkvRaw, k: spec.hidden, n: qkvWidth(spec), norm: normIn(spec, i) },
    { op: 'rope', qkv: A.qkvRaw, freqs: w.freqs, layout, convention: spec.rope!.convention },
    { op: 'kv_append', qkv: A.qkvRaw, k: w.k, v: w.v, layout, pageSize },
    { op: 'attention', qkv: A.qkvRaw, k: w.k, v: w.v, out: A.y, layout, pageSize },
  ];
};

export const MIXERS: Record<Arch, Mixer> = { '2mamba': twoMamba, '2mamba-e': twoMambaE, softmax };
