// The Llama block shared by all three architectures (spec/2mamba.md §3): pre-norm attention and SwiGLU MLP,
// residual adds fused into the output projections. The attention mixer is the architecture's.
import type { Op, QkvLayout } from '../../kernels/ops.js';
import type { ModelSpec } from '../../weights/config.js';

/** Activation buffer names of one step (sized by the model for the step's rows). */
export const A = {
  ids: 'act.ids',
  h: 'act.h',
  qkvRaw: 'act.qkv_raw',
  qkv: 'act.qkv',
  logA: 'act.logA',
  y: 'act.y',
  gu: 'act.gate_up',
  last: 'act.last',
  logits: 'act.logits',
  sampleParams: 'act.sample_params',
  sampleMask: 'act.sample_mask',
  next: 'act.next',
} as const;

/** Weight and per-layer state buffer names. */
export const W = {
  embed: 'w.embed',
  norm: 'w.norm',
  lmHead: 'w.lm_head',
  layer: (i: number) => ({
    // qkv: the fused [Q | K | V] projection; 2Mamba and 2Mamba-E append the H rows of A_mask_proj ([3E + H, E])
    normIn: `w.${i}.norm_in`,
    qkv: `w.${i}.qkv`,
    o: `w.${i}.o`,
    convW: `w.${i}.conv_w`,
    convB: `w.${i}.conv_b`,
    freqs: `w.${i}.freqs`,
    normPost: `w.${i}.norm_post`,
    gateUp: `w.${i}.gate_up`,
    down: `w.${i}.down`,
    // per-request state, indexed by slot (S, N, conv) or by KV page (k, v, c)
    S: `s.${i}.S`,
    N: `s.${i}.N`,
    conv: `s.${i}.conv`,
    k: `kv.${i}.k`,
    v: `kv.${i}.v`,
    c: `kv.${i}.c`,
  }),
};

export const qkvLayout = (spec: ModelSpec): QkvLayout => ({
  heads: spec.heads,
  kvHeads: spec.kvHeads,
  headDim: spec.headDim,
});
export const qkvWidth = (spec: ModelSpec) => (spec.heads + 2 * spec.kvHeads) * spec.headDim;

/** An attention mixer: ops from the hidden state A.h (normalised by the rmsnorm fused into the mixer's first
 *  projection) to the concatenated head outputs A.y. */
export type Mixer = (spec: ModelSpec, layer: number, pageSize: number) => Op[];

export function buildPlanOps(spec: ModelSpec, mixer: Mixer, pageSize: number, allLogits: boolean): Op[] {
  const E = spec.hidden,
    F = spec.intermediate,
    hd = spec.heads * spec.headDim;
  const ops: Op[] = [{ op: 'embed', table: W.embed, ids: A.ids, out: A.h, dim: E }];
  for (let i = 0; i < spec.layers; i++) {
    const w = W.layer(i);
    // 2Mamba decode: 5 dispatches per layer on WebGPU for one sequence (kernels.md §5.4): the norms ride in the
    // projections' prologues, silu·mul in the down projection's, the residual adds in the o / down epilogues (and the
    // backend fuses the conv front end into the [qkv | A] projection at decode, the readout into the o projection).
    ops.push(
      ...mixer(spec, i, pageSize),
      { op: 'matmul', x: A.y, w: w.o, out: A.h, k: hd, n: E, add: true },
      { op: 'matmul', x: A.h, w: w.gateUp, out: A.gu, k: E, n: 2 * F, norm: { weight: w.normPost, eps: spec.eps } },
      { op: 'matmul', x: A.gu, w: w.down, out: A.h, k: F, n: E, add: true, act: 'silu_mul' },
    );
  }
  const head = spec.tieEmbeddings ? W.embed : W.lmHead;
  const norm = { weight: W.norm, eps: spec.eps };
  if (allLogits) ops.push({ op: 'matmul', x: A.h, w: head, out: A.logits, k: E, n: spec.vocab, norm });
  else {
    ops.push(
      { op: 'gather_last', x: A.h, out: A.last, dim: E },
      { op: 'matmul', x: A.last, w: head, out: A.logits, k: E, n: spec.vocab, perSeq: true, norm },
    );
  }
  return ops;
}
