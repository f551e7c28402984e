// config.json → ModelSpec. fury's checkpoint format is the paper's: Hugging Face Llama keys plus
// `attention_type` (spec/2mamba.md §10.4). Plain LlamaForCausalLM configs load as softmax models.

export type Arch = '2mamba' | '2mamba-e' | 'softmax';

/** The paper's `attention_type` strings (keys of its `configs` dict). */
export const ATTENTION_TYPES: Record<Arch, string> = {
  '2mamba': 'squared__sm_norm__A_mask_type_neg_softplus__in_conv_k_2',
  '2mamba-e': 'exp__sm_norm__A_mask_type_neg_softplus__in_conv_k_2',
  softmax: 'softmax',
};

export type RopeConvention = 'interleaved' | 'half';

export interface ModelSpec {
  arch: Arch;
  hidden: number; // E
  intermediate: number; // F
  heads: number; // H
  kvHeads: number; // Hkv (GQA; = H for the paper's models)
  headDim: number; // d
  layers: number; // L
  vocab: number; // V
  eps: number;
  tieEmbeddings: boolean;
  maxPositions: number;
  bosId: number | null;
  eosIds: number[];
  /** softmax only: interleaved pairs (paper) or half-split (HF Llama); theta for computed frequencies. */
  rope: { convention: RopeConvention; theta: number } | null;
  /** Tensor naming: the paper's fused qkv_proj or HF Llama's q/k/v_proj. */
  naming: 'paper' | 'hf';
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Accepts the paper's strings and the aliases 2mamba, 2mamba-e, softmax (case-insensitive). */
export function parseArch(s: string): Arch {
  const low = s.toLowerCase();
  for (const [arch, full] of Object.entries(ATTENTION_TYPES) as [Arch, string][]) {
    if (low === arch || s === full) return arch;
  }
  throw new ConfigError(
    `unsupported attention_type "${s}": expected one of ` +
      Object.entries(ATTENTION_TYPES)
        .map(([a, f]) => (a === f ? a : `${f} (${a})`))
        .join(', '),
  );
}

function int(cfg: Record<string, unknown>, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (!Number.isSafeInteger(v) || (v as number) <= 0) {
    throw new ConfigError(`config.json: "${key}" must be a positive integer, got ${JSON.stringify(cfg[key])}`);
  }
  return v as number;
}

function idList(v: unknown, key: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => Number.isSafeInteger(x) && x >= 0)) {
    throw new ConfigError(`config.json: "${key}" must be a token id or a list of ids, got ${JSON.stringify(v)}`);
  }
  return list as number[];
}

/** Parse a config.json object. `tensorNames` (when known) decides the naming and cross-checks the arch. */
export function parseConfig(cfg: Record<string, unknown>, tensorNames?: ReadonlySet<string>): ModelSpec {
  const has = (suffix: string) => tensorNames?.has(`model.layers.0.self_attn.${suffix}`) ?? false;
  const hfNames = has('q_proj.weight');
  let arch: Arch;
  if (typeof cfg.attention_type === 'string') arch = parseArch(cfg.attention_type);
  else if (cfg.attention_type !== undefined) throw new ConfigError('config.json: "attention_type" must be a string');
  else {
    const archs = Array.isArray(cfg.architectures) ? cfg.architectures : [];
    if (cfg.model_type !== 'llama' && !archs.includes('LlamaForCausalLM')) {
      throw new ConfigError(
        'config.json has no "attention_type" and is not a LlamaForCausalLM config: ' +
          'set "attention_type" to 2mamba, 2mamba-e or softmax',
      );
    }
    arch = 'softmax';
  }
  if (tensorNames) {
    const mambaTensors = has('A_mask_proj.weight') && has('conv1d.weight');
    if (arch !== 'softmax' && !mambaTensors) {
      throw new ConfigError(`attention_type is ${arch} but layer 0 has no self_attn.A_mask_proj / conv1d tensors`);
    }
    if (arch === 'softmax' && mambaTensors) {
      throw new ConfigError(
        'attention_type is softmax but the checkpoint has 2Mamba tensors (A_mask_proj, conv1d): ' +
          'set attention_type to 2mamba or 2mamba-e (they have identical tensors; fury will not guess)',
      );
    }
  }
  const hidden = int(cfg, 'hidden_size');
  const heads = int(cfg, 'num_attention_heads');
  const headDim = int(cfg, 'head_dim', Math.floor(hidden / heads));
  const kvHeads = int(cfg, 'num_key_value_heads', heads);
  const naming =
    hfNames || (arch === 'softmax' && cfg.attention_type === undefined && !has('qkv_proj.weight')) ? 'hf' : 'paper';
  if (heads % kvHeads !== 0)
    throw new ConfigError(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  if (arch !== 'softmax' && (kvHeads !== heads || headDim * heads !== hidden)) {
    throw new ConfigError(`${arch} needs num_key_value_heads = num_attention_heads and hidden_size = heads × head_dim`);
  }
  if (headDim % 2 !== 0) throw new ConfigError(`head_dim ${headDim} must be even`);
  if (cfg.rope_scaling !== undefined && cfg.rope_scaling !== null) {
    throw new ConfigError(
      `config.json: rope_scaling ${JSON.stringify(cfg.rope_scaling)} is not supported; ` +
        'remove it only if the checkpoint was trained without it',
    );
  }
  const eps = cfg.rms_norm_eps ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0))
    throw new ConfigError('config.json: "rms_norm_eps" must be a positive number');
  const theta = cfg.rope_theta ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0))
    throw new ConfigError('config.json: "rope_theta" must be a positive number');
  const bos = idList(cfg.bos_token_id, 'bos_token_id');
  return {
    arch,
    hidden,
    intermediate: int(cfg, 'intermediate_size'),
    heads,
    kvHeads,
    headDim,
    layers: int(cfg, 'num_hidden_layers'),
    vocab: int(cfg, 'vocab_size'),
    eps,
    tieEmbeddings: cfg.tie_word_embeddings === true,
    maxPositions: int(cfg, 'max_position_embeddings', 2048),
    bosId: bos[0] ?? null,
    eosIds: idList(cfg.eos_token_id, 'eos_token_id'),
    rope: arch === 'softmax' ? { convention: naming === 'paper' ? 'interleaved' : 'half', theta } : null,
    naming,
  };
}

/** The config.json fury writes: HF Llama keys + attention_type, loadable by the paper's code. */
export function toConfigJson(spec: ModelSpec): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    attention_type: ATTENTION_TYPES[spec.arch],
    hidden_size: spec.hidden,
    intermediate_size: spec.intermediate,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    head_dim: spec.headDim,
    num_hidden_layers: spec.layers,
    vocab_size: spec.vocab,
    rms_norm_eps: spec.eps,
    tie_word_embeddings: spec.tieEmbeddings,
    max_position_embeddings: spec.maxPositions,
    bos_token_id: spec.bosId,
    eos_token_id: spec.eosIds.length === 1 ? spec.eosIds[0] : spec.eosIds,
    ...(spec.rope ? { rope_theta: spec.rope.theta } : {}),
    hidden_act: 'silu',
    attention_bias: false,
    torch_dtype: 'float32',
  };
}
