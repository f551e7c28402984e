// The Llama block shared by all three architectures (spec/2mamba.md §3): pre-norm attention and SwiGLU MLP,
// residual adds fused into the output projections. The attention mixer is the architecture's.
import type { Op, QkvLayout } from '../../kernels/backend.js';
import type { ModelSpec } from '../../weights/config.js';

/** Activation buffer names of one step (sized by the model for the step's rows). */
export const A = {
  ids: 'act.ids', h: 'act.h', x: 'act.x', qkvRaw: 'act.qkv_raw', qkv: 'act.qkv', z: 'act.z', logA: 'act.logA',
  y: 'act.y', gu: 'act.gate_up', mlp: 'act.mlp', last: 'act.last', xf: 'act.final', logits: 'act.logits',
} as const;

/** Weight and per-layer state buffer names. */
export const W = {
  embed: 'w.embed', norm: 'w.norm', lmHead: 'w.lm_head',
  layer: (i: number) => ({
    normIn: `w.${i}.norm_in`, qkv: `w.${i}.qkv`, o: `w.${i}.o`, A: `w.${i}.A`, convW: `w.${i}.conv_w`,
    convB: `w.${i}.conv_b`, freqs: `w.${i}.freqs`, normPost: `w.${i}.norm_post`, gateUp: `w.${i}.gate_up`,
    down: `w.${i}.down`,
    // per-request state, indexed by slot (S, N, conv) or by KV page (k, v, c)
    S: `s.${i}.S`, N: `s.${i}.N`, conv: `s.${i}.conv`, k: `kv.${i}.k`, v: `kv.${i}.v`, c: `kv.${i}.c`,
  }),
};

export const qkvLayout = (spec: ModelSpec): QkvLayout => ({ heads: spec.heads, kvHeads: spec.kvHeads, headDim: spec.headDim });
export const qkvWidth = (spec: ModelSpec) => (spec.heads + 2 * spec.kvHeads) * spec.headDim;

/** An attention mixer: ops from the normed hidden state A.x to the concatenated head outputs A.y. */
export type Mixer = (spec: ModelSpec, layer: number, pageSize: number) => Op[];

export function buildPlanOps(spec: ModelSpec, mixer: Mixer, pageSize: number, allLogits: boolean): Op[] {
  const E = spec.hidden, F = spec.intermediate, hd = spec.heads * spec.headDim;
  const ops: Op[] = [{ op: 'embed', table: W.embed, ids: A.ids, out: A.h, dim: E }];
  for (let i = 0; i < spec.layers; i++) {
    const w = W.layer(i);
    ops.push(
      { op: 'rmsnorm', x: A.h, weight: w.normIn, out: A.x, dim: E, eps: spec.eps },
      ...mixer(spec, i, pageSize),
      { op: 'matmul', x: A.y, w: w.o, out: A.h, k: hd, n: E, add: true },
      { op: 'rmsnorm', x: A.h, weight: w.normPost, out: A.x, dim: E, eps: spec.eps },
      { op: 'matmul', x: A.x, w: w.gateUp, out: A.gu, k: E, n: 2 * F },
      { op: 'silu_mul', x: A.gu, out: A.mlp, n: F },
      { op: 'matmul', x: A.mlp, w: w.down, out: A.h, k: F, n: E, add: true },
    );
  }
  const head = spec.tieEmbeddings ? W.embed : W.lmHead;
  if (allLogits) {
    ops.push({ op: 'rmsnorm', x: A.h, weight: W.norm, out: A.xf, dim: E, eps: spec.eps },
             { op: 'matmul', x: A.xf, w: head, out: A.logits, k: E, n: spec.vocab });
  } else {
    ops.push({ op: 'gather_last', x: A.h, out: A.last, dim: E },
             { op: 'rmsnorm', x: A.last, weight: W.norm, out: A.xf, dim: E, eps: spec.eps, perSeq: true },
             { op: 'matmul', x: A.xf, w: head, out: A.logits, k: E, n: spec.vocab, perSeq: true });
  }
  return ops;
}
