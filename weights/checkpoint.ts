// A checkpoint directory: config.json, model.safetensors (or shards + model.safetensors.index.json),
// tokenizer.json (+ tokenizer_config.json). Tensors are validated against the architecture and read on demand.
import { readFile, access } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { parseArch, parseConfig, ConfigError, type Arch, type ModelSpec } from './config.js';
import { expectedTensors, isSkippedTensor } from './names.js';
import { SafetensorsFile, SafetensorsError, type TensorInfo } from './safetensors.js';
import { isFloatDType } from './dtype.js';

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export interface Checkpoint {
  readonly dir: string;
  readonly spec: ModelSpec;
  /** Every loadable tensor, over all shards (skipped ones excluded). */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** Tensors present in the files but not used (attn_mask buffers, unknown extras). */
  readonly skipped: readonly string[];
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown> | null;
  /** A float tensor as f32. */
  read(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface LoadOptions {
  /** Override the score function (2Mamba and 2Mamba-E checkpoints have identical tensors). */
  arch?: Arch | string;
  /** tokenizer.json to use instead of the directory's own. */
  tokenizer?: string;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

async function readJson(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new CheckpointError(`${path}: cannot read ${what}`);
  }
  try {
    const v = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (e) {
    throw new CheckpointError(`${path}: ${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Open the safetensors file(s) of a directory: a single model.safetensors or an index with shards. */
async function openWeights(dir: string): Promise<{ files: SafetensorsFile[]; owner: Map<string, SafetensorsFile> }> {
  const single = join(dir, 'model.safetensors');
  const indexPath = join(dir, 'model.safetensors.index.json');
  const files: SafetensorsFile[] = [];
  const owner = new Map<string, SafetensorsFile>();
  try {
    if (await exists(indexPath)) {
      const index = await readJson(indexPath, 'the shard index');
      const map = index.weight_map;
      if (typeof map !== 'object' || map === null) throw new CheckpointError(`${indexPath}: no "weight_map" object`);
      const shards = new Map<string, SafetensorsFile>();
      for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
        if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
          throw new CheckpointError(
            `${indexPath}: tensor "${name}" maps to an invalid shard name ${JSON.stringify(shard)}`,
          );
        }
        let f = shards.get(shard);
        if (!f) {
          f = await SafetensorsFile.open(join(dir, shard));
          shards.set(shard, f);
          files.push(f);
        }
        if (!f.tensors.has(name))
          throw new CheckpointError(`${shard}: tensor "${name}" is listed in the index but missing from the shard`);
        owner.set(name, f);
      }
    } else if (await exists(single)) {
      const f = await SafetensorsFile.open(single);
      files.push(f);
      for (const name of f.tensors.keys()) owner.set(name, f);
    } else {
      throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json`);
    }
  } catch (e) {
    await Promise.all(files.map((f) => f.close()));
    throw e;
  }
  return { files, owner };
}

export async function loadCheckpoint(dir: string, opts: LoadOptions = {}): Promise<Checkpoint> {
  const configPath = join(dir, 'config.json');
  if (!(await exists(configPath))) {
    throw new CheckpointError(
      `${dir}: no config.json (a checkpoint directory holds config.json, ` +
        'model.safetensors or its shards, and tokenizer.json)',
    );
  }
  const cfg = await readJson(configPath, 'config.json');
  if (opts.arch !== undefined) cfg.attention_type = parseArch(opts.arch);
  const tokPath = opts.tokenizer ?? join(dir, 'tokenizer.json');
  if (!(await exists(tokPath))) {
    throw new CheckpointError(
      `${tokPath}: no tokenizer.json (convert the tokenizer with Hugging Face ` +
        '`tokenizers`, or pass --tokenizer FILE)',
    );
  }
  const tokenizerJson = await readJson(tokPath, 'tokenizer.json');
  const tcPath = join(dir, 'tokenizer_config.json');
  const tokenizerConfig = (await exists(tcPath)) ? await readJson(tcPath, 'tokenizer_config.json') : null;

  const { files, owner } = await openWeights(dir);
  try {
    const names = new Set(owner.keys());
    let spec: ModelSpec;
    try {
      spec = parseConfig(cfg, names);
    } catch (e) {
      throw e instanceof ConfigError ? new CheckpointError(`${configPath}: ${e.message}`) : e;
    }
    const tensors = new Map<string, TensorInfo>();
    for (const t of expectedTensors(spec)) {
      const f = owner.get(t.name);
      if (!f)
        throw new CheckpointError(
          `${dir}: missing tensor "${t.name}" (expected shape [${t.shape.join(', ')}] for ${spec.arch})`,
        );
      const info = f.info(t.name);
      if (info.shape.length !== t.shape.length || info.shape.some((d, i) => d !== t.shape[i])) {
        throw new SafetensorsError(
          f.path,
          `shape [${info.shape.join(', ')}] does not match the config's [${t.shape.join(', ')}]`,
          t.name,
        );
      }
      if (!isFloatDType(info.dtype))
        throw new SafetensorsError(f.path, `dtype ${info.dtype} is not F32, F16 or BF16`, t.name);
      tensors.set(t.name, info);
    }
    const skipped = [...names].filter((n) => !tensors.has(n)).sort();
    const unknown = skipped.filter((n) => !isSkippedTensor(n));
    if (unknown.length && process.env.FURY_QUIET !== '1') {
      process.stderr.write(
        `fury: ${basename(dir)}: ignoring ${unknown.length} unknown tensor(s): ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', …' : ''}\n`,
      );
    }
    return {
      dir,
      spec,
      tensors,
      skipped,
      tokenizerJson,
      tokenizerConfig,
      read: (name) => {
        const f = tensors.has(name) ? owner.get(name) : undefined;
        if (!f) throw new CheckpointError(`${dir}: tensor "${name}" is not a loadable tensor of this checkpoint`);
        return f.readF32(name);
      },
      close: async () => {
        await Promise.all(files.map((f) => f.close()));
      },
    };
  } catch (e) {
    await Promise.all(files.map((f) => f.close()));
    throw e;
  }
}
