// Tensor names and shapes of each architecture (spec/2mamba.md §10.2).
import type { ModelSpec } from './config.js';

export interface TensorSpec {
  name: string;
  shape: number[];
}

export const layerPrefix = (i: number) => `model.layers.${i}.`;

/** Tensors the loader skips without reading (the paper's junk causal-mask buffers). */
export const isSkippedTensor = (name: string) => /\.self_attn\.attn_mask$/.test(name);

export function expectedTensors(spec: ModelSpec): TensorSpec[] {
  const { hidden: E, intermediate: F, heads: H, kvHeads: Hkv, headDim: d, vocab: V } = spec;
  const out: TensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [V, E] }];
  for (let i = 0; i < spec.layers; i++) {
    const p = layerPrefix(i),
      a = `${p}self_attn.`;
    out.push({ name: `${p}input_layernorm.weight`, shape: [E] });
    if (spec.naming === 'hf') {
      out.push(
        { name: `${a}q_proj.weight`, shape: [H * d, E] },
        { name: `${a}k_proj.weight`, shape: [Hkv * d, E] },
        { name: `${a}v_proj.weight`, shape: [Hkv * d, E] },
      );
    } else {
      out.push({ name: `${a}qkv_proj.weight`, shape: [3 * H * d, E] });
    }
    out.push({ name: `${a}o_proj.weight`, shape: [E, H * d] });
    if (spec.arch === 'softmax') {
      if (spec.naming === 'paper') out.push({ name: `${a}rotary_emb.freqs`, shape: [d / 2] });
    } else {
      out.push(
        { name: `${a}A_mask_proj.weight`, shape: [H, E] },
        { name: `${a}conv1d.weight`, shape: [3 * E, 1, 2] },
        { name: `${a}conv1d.bias`, shape: [3 * E] },
      );
    }
    out.push(
      { name: `${p}post_attention_layernorm.weight`, shape: [E] },
      { name: `${p}mlp.gate_proj.weight`, shape: [F, E] },
      { name: `${p}mlp.up_proj.weight`, shape: [F, E] },
      { name: `${p}mlp.down_proj.weight`, shape: [E, F] },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [E] });
  if (!spec.tieEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, E] });
  return out;
}

export function parameterCount(spec: ModelSpec): number {
  return expectedTensors(spec).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
}
