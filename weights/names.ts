// Tensor names and shapes of each architecture (spec/2mamba.md §10.2).
import type { ModelSpec } from './config.js';

export interface TensorSpec {
  name: string;
  shape: number[];
}

export const layerPrefix = (i: number) => `model.layers.${i}.`;

/** Every checkpoint tensor name, in one place (the paper's names; Hugging Face Llama's q/k/v_proj for `naming: 'hf'`). */
export const TENSOR = {
  embed: 'model.embed_tokens.weight',
  norm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
  layer(i: number) {
    const p = layerPrefix(i),
      a = `${p}self_attn.`;
    return {
      normIn: `${p}input_layernorm.weight`,
      qkv: `${a}qkv_proj.weight`,
      q: `${a}q_proj.weight`,
      k: `${a}k_proj.weight`,
      v: `${a}v_proj.weight`,
      o: `${a}o_proj.weight`,
      freqs: `${a}rotary_emb.freqs`,
      decay: `${a}A_mask_proj.weight`,
      convW: `${a}conv1d.weight`,
      convB: `${a}conv1d.bias`,
      normPost: `${p}post_attention_layernorm.weight`,
      gate: `${p}mlp.gate_proj.weight`,
      up: `${p}mlp.up_proj.weight`,
      down: `${p}mlp.down_proj.weight`,
    };
  },
};

/** Tensors the loader skips without reading (the paper's junk causal-mask buffers). */
export const isSkippedTensor = (name: string) => /\.self_attn\.attn_mask$/.test(name);

export function expectedTensors(spec: ModelSpec): TensorSpec[] {
  const { hidden: E, intermediate: F, heads: H, kvHeads: Hkv, headDim: d, vocab: V } = spec;
  const out: TensorSpec[] = [{ name: TENSOR.embed, shape: [V, E] }];
  for (let i = 0; i < spec.layers; i++) {
    const t = TENSOR.layer(i);
    out.push({ name: t.normIn, shape: [E] });
    if (spec.naming === 'hf') {
      out.push(
        { name: t.q, shape: [H * d, E] },
        { name: t.k, shape: [Hkv * d, E] },
        { name: t.v, shape: [Hkv * d, E] },
      );
    } else {
      out.push({ name: t.qkv, shape: [3 * H * d, E] });
    }
    out.push({ name: t.o, shape: [E, H * d] });
    if (spec.arch === 'softmax') {
      if (spec.naming === 'paper') out.push({ name: t.freqs, shape: [d / 2] });
    } else {
      out.push(
        { name: t.decay, shape: [H, E] },
        { name: t.convW, shape: [3 * E, 1, 2] },
        { name: t.convB, shape: [3 * E] },
      );
    }
    out.push(
      { name: t.normPost, shape: [E] },
      { name: t.gate, shape: [F, E] },
      { name: t.up, shape: [F, E] },
      { name: t.down, shape: [E, F] },
    );
  }
  out.push({ name: TENSOR.norm, shape: [E] });
  if (!spec.tieEmbeddings) out.push({ name: TENSOR.lmHead, shape: [V, E] });
  return out;
}

export function parameterCount(spec: ModelSpec): number {
  return expectedTensors(spec).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
}
