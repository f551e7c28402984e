// `fury init`: a deterministic random checkpoint (same spec and seed → same bytes) in fury's (= the paper's) format.
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, toConfigJson, type ModelSpec } from './config.js';
import { expectedTensors, TENSOR, type TensorSpec } from './names.js';
import { writeSafetensors } from './safetensors.js';
import { encodeFloats, type FloatDType } from './dtype.js';
import { Rng, hashString } from '../lib/rng.js';
import { byteTokenizerJson, byteTokenizerConfig } from './byte-tokenizer.js';

export interface InitOptions {
  seed: number;
  dtype?: FloatDType;
  /** A tokenizer.json to ship instead of the byte-level default (its vocab must fit the model). */
  tokenizer?: string;
  /** Called as each tensor is generated (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** Initial values of one tensor: PyTorch-like (normal 0.02 for projections, ones for norms, conv uniform). */
export function initTensor(spec: ModelSpec, t: TensorSpec, seed: number): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed, hashString(t.name));
  if (t.name.endsWith('layernorm.weight') || t.name === TENSOR.norm) return new Float32Array(n).fill(1);
  if (t.name.endsWith('rotary_emb.freqs')) {
    const theta = spec.rope?.theta ?? 10000;
    return Float32Array.from({ length: n }, (_, m) => theta ** (-(2 * m) / spec.headDim));
  }
  // nn.Conv1d(groups = channels, kernel 2): fan_in = 2, weight and bias ~ U(−1/√2, 1/√2).
  if (t.name.includes('conv1d.')) {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = rng.uniform(-Math.SQRT1_2, Math.SQRT1_2);
    return out;
  }
  return rng.normals(n, 0.02);
}

export async function writeRandomCheckpoint(spec: ModelSpec, outDir: string, opts: InitOptions): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  await mkdir(outDir, { recursive: true });
  let tokenizerJson: Record<string, unknown>;
  let tokenizerConfig: Record<string, unknown> = byteTokenizerConfig;
  if (opts.tokenizer) {
    tokenizerJson = JSON.parse(await readFile(opts.tokenizer, 'utf8'));
    const ids = Object.values((tokenizerJson.model as { vocab?: Record<string, number> })?.vocab ?? {});
    const added = ((tokenizerJson.added_tokens as { id: number }[] | undefined) ?? []).map((t) => t.id);
    const maxId = [...ids, ...added].reduce((m, id) => Math.max(m, id), -1); // no spread: vocabularies can be large
    if (maxId >= spec.vocab)
      throw new ConfigError(`${opts.tokenizer}: token id ${maxId} does not fit the model's vocab of ${spec.vocab}`);
    const cfgPath = join(opts.tokenizer, '..', 'tokenizer_config.json');
    tokenizerConfig = await readFile(cfgPath, 'utf8').then(JSON.parse, () => ({}));
  } else {
    tokenizerJson = byteTokenizerJson(spec.vocab);
  }
  await writeSafetensors(
    join(outDir, 'model.safetensors'),
    expectedTensors(spec).map((t, i, all) => ({
      name: t.name,
      dtype: t.name.endsWith('rotary_emb.freqs') ? 'F32' : dtype,
      shape: t.shape,
      data: () => {
        opts.onProgress?.(i + 1, all.length);
        return encodeFloats(initTensor(spec, t, opts.seed), t.name.endsWith('rotary_emb.freqs') ? 'F32' : dtype);
      },
    })),
    { format: 'pt', fury_seed: String(opts.seed) },
  );
  await writeFile(join(outDir, 'config.json'), JSON.stringify(toConfigJson(spec), null, 2) + '\n');
  await writeFile(join(outDir, 'tokenizer.json'), JSON.stringify(tokenizerJson) + '\n');
  await writeFile(join(outDir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2) + '\n');
}

/** A checkpoint of deterministic random weights held in memory (benchmarks): the same values `fury init` writes. */
export function randomCheckpoint(spec: ModelSpec, seed: number, fast = false): import('./checkpoint.js').Checkpoint {
  const tensors = new Map(
    expectedTensors(spec).map((t) => [
      t.name,
      {
        name: t.name,
        dtype: 'F32',
        shape: t.shape,
        begin: 0,
        end: 0,
        file: '(random)',
      },
    ]),
  );
  return {
    dir: '(random)',
    spec,
    tensors,
    skipped: [],
    tokenizerJson: byteTokenizerJson(spec.vocab),
    tokenizerConfig: byteTokenizerConfig,
    read: async (name) => (fast ? fastTensor : initTensor)(spec, { name, shape: [...tensors.get(name)!.shape] }, seed),
    close: async () => {},
  };
}

/** Cheap uniform weights (±0.035, std ≈ 0.02) for speed benchmarks, where values do not matter: ~50× faster than normals. */
function fastTensor(spec: ModelSpec, t: TensorSpec, seed: number): Float32Array {
  if (
    t.name.endsWith('layernorm.weight') ||
    t.name === TENSOR.norm ||
    t.name.endsWith('rotary_emb.freqs') ||
    t.name.includes('conv1d.')
  ) {
    return initTensor(spec, t, seed);
  }
  const n = t.shape.reduce((a, b) => a * b, 1),
    out = new Float32Array(n);
  let h = (hashString(t.name) ^ seed) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    h ^= h << 13;
    h ^= h >>> 17;
    h ^= h << 5;
    out[i] = ((h >>> 0) / 4294967296 - 0.5) * 0.07;
  }
  return out;
}
