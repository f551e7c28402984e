// Open a checkpoint directory for serving: weights on a backend, state pools, tokenizer, chat template.
import { CpuBackend } from '../kernels/cpu/backend.js';
import type { Backend, KvDType } from '../kernels/backend.js';
import { WasmBackend } from '../kernels/wasm/backend.js';
import { loadCheckpoint, type LoadOptions } from '../weights/checkpoint.js';
import type { ModelSpec } from '../weights/config.js';
import { ChatTemplate } from './text/chat.js';
import { Model, type WeightsDType } from './model/model.js';
import { DEFAULT_PAGE_SIZE } from './memory/prices.js';
import { SequencePool } from './memory/sequences.js';
import { TextTokenizer } from './text/tokenizer.js';

/** cpu: the fast CPU backend (WebAssembly SIMD on worker threads); reference: the plain TypeScript oracle. */
export type BackendChoice = 'auto' | 'cpu' | 'reference' | 'webgpu';
export const BACKENDS: readonly BackendChoice[] = ['auto', 'cpu', 'reference', 'webgpu'];
export const WEIGHTS_DTYPES: readonly WeightsDType[] = ['checkpoint', 'f32', 'f16', 'bf16'];
/** auto: f16 on WebGPU (half the bytes a decode step reads), f32 on the CPU backends (which hold f32 only). */
export type KvChoice = 'auto' | KvDType;
export const KV_DTYPES: readonly KvChoice[] = ['auto', 'f16', 'f32'];

/** The KV dtype a backend gets for a choice; f16 needs the WebGPU backend. */
export function kvDtypeFor(choice: KvChoice, backend: Backend): KvDType {
  if (choice === 'auto') return backend.name === 'webgpu' ? 'f16' : 'f32';
  if (choice === 'f16' && backend.name !== 'webgpu')
    throw new Error(`--kv-dtype f16 needs the webgpu backend; the ${backend.name} backend holds its KV cache in f32`);
  return choice;
}

export interface OpenOptions extends LoadOptions {
  backend?: BackendChoice;
  /** Weights on the device: the checkpoint's dtype (default) or converted at load. */
  weightsDType?: WeightsDType;
  /** WebGPU tensor cores: on, emulated (the same tile walks in plain WGSL) or off (default: FURY_MATRICES, else on
   *  where the adapter has them). */
  matrices?: 'on' | 'emulated' | 'off';
  /** How the KV cache holds K and V (default auto: f16 on WebGPU, f32 on a CPU). */
  kvDtype?: KvChoice;
  /** Sequences open at once. */
  slots?: number;
  /** KV tokens for the whole pool (softmax, 2Mamba-E). */
  kvTokens?: number;
  pageSize?: number;
  /** Size the pools from the checkpoint's spec (overrides slots, kvTokens, pageSize): the server's memory budget. */
  sizePools?: (
    spec: ModelSpec,
    backend: Backend,
    weightValues: number,
    kvDtype: KvDType,
  ) => { slots: number; kvTokens: number; pageSize: number };
  onProgress?: (message: string) => void;
  /** Where backend choices are reported (default: one stderr line). */
  log?: (line: string) => void;
}

export interface OpenModel {
  name: string;
  model: Model;
  pool: SequencePool;
  tokenizer: TextTokenizer;
  chat: ChatTemplate;
  backend: Backend;
  close(): Promise<void>;
}

let autoWarned = false;

/** auto: WebGPU on a hardware adapter (logging which); else the CPU backend, with one line saying why. A software
 *  adapter (Mesa's lavapipe) is used only when asked for (--backend webgpu): on a CPU it is slower than the CPU backend. */
export async function createBackend(
  choice: BackendChoice,
  log: (line: string) => void = (l) => process.stderr.write(`fury: ${l}\n`),
  matrices?: OpenOptions['matrices'],
): Promise<Backend> {
  if (choice === 'reference') return new CpuBackend();
  if (choice === 'cpu') return WasmBackend.open();
  const { WebGpuBackend } = await import('../kernels/webgpu/backend.js');
  let be: Awaited<ReturnType<typeof WebGpuBackend.open>>;
  try {
    be = await WebGpuBackend.open({ matrices });
  } catch (e) {
    if (choice === 'webgpu') throw e;
    if (!autoWarned) log(`warning: ${(e as Error).message.split(':')[0]}; using the CPU backend`);
    autoWarned = true;
    return WasmBackend.open();
  }
  if (choice === 'auto' && be.info.software) {
    if (!autoWarned)
      log(`backend: cpu (the only WebGPU adapter is software: ${be.info.description}; --backend webgpu uses it)`);
    autoWarned = true;
    await be.destroy();
    return WasmBackend.open();
  }
  if (choice === 'auto' || be.matrices !== 'off' || be.info.subgroupMatrices)
    log(
      `backend: webgpu on ${be.info.description} (dawn.node ${be.info.dawnVersion}); tensor cores ${be.matrices}` +
        (be.matrices === 'off' && be.info.subgroupMatrices ? ' (the adapter has them: unset FURY_MATRICES)' : '') +
        `; device ticks ${be.info.tickUs ? `at most one per ${be.info.tickUs} µs` : 'unpaced'} (FURY_DAWN_TICK_US)`,
    );
  return be;
}

/** Build the backend's kernels for this model before the first request (GPU pipelines), saying how long it took. */
async function warm(backend: Backend, model: Model, opts: OpenOptions): Promise<void> {
  if (!backend.warm) return;
  const t0 = performance.now();
  const n = await backend.warm([model.spec.headDim], [model.weightDType], (done, total) =>
    opts.onProgress?.(`compiling kernels: ${done}/${total}`),
  );
  (opts.log ?? ((l: string) => process.stderr.write(`fury: ${l}\n`)))(
    `compiled ${n} kernels in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

export async function openModel(dir: string, opts: OpenOptions = {}): Promise<OpenModel> {
  const ckpt = await loadCheckpoint(dir, opts);
  try {
    const tokenizer = new TextTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfig);
    if (tokenizer.size > ckpt.spec.vocab) {
      throw new Error(
        `${dir}: the tokenizer has ${tokenizer.size} ids but the model's vocab_size is ${ckpt.spec.vocab}`,
      );
    }
    const backend = await createBackend(opts.backend ?? 'auto', opts.log, opts.matrices);
    let weightValues = 0;
    for (const t of ckpt.tensors.values()) weightValues += t.shape.reduce((a, b) => a * b, 1);
    let sized: ReturnType<NonNullable<OpenOptions['sizePools']>> | undefined;
    let kvDtype: KvDType;
    try {
      kvDtype = kvDtypeFor(opts.kvDtype ?? 'auto', backend);
      sized = opts.sizePools?.(ckpt.spec, backend, weightValues, kvDtype);
    } catch (e) {
      await backend.destroy();
      throw e;
    }
    const pageSize = sized?.pageSize ?? opts.pageSize ?? DEFAULT_PAGE_SIZE;
    const slots = sized?.slots ?? opts.slots ?? 4;
    const kvTokens = sized?.kvTokens ?? opts.kvTokens ?? slots * ckpt.spec.maxPositions;
    const kvPages = ckpt.spec.arch === '2mamba' ? 0 : Math.ceil(kvTokens / pageSize);
    try {
      const model = await Model.load(
        ckpt,
        backend,
        { slots, kvPages, pageSize, kvDtype },
        (done, total) => opts.onProgress?.(`loading weights: layer ${done}/${total}`),
        opts.weightsDType,
      );
      await warm(backend, model, opts);
      const chat = ChatTemplate.forTokenizer(ckpt.tokenizerConfig, {
        bos_token: tokenizer.bosToken,
        eos_token: tokenizer.eosToken,
      });
      return {
        name: dir.replace(/\/+$/, '').split('/').pop() ?? dir,
        model,
        pool: new SequencePool(model),
        tokenizer,
        chat,
        backend,
        close: async () => {
          await backend.destroy();
        },
      };
    } catch (e) {
      await backend.destroy();
      throw e;
    }
  } finally {
    await ckpt.close();
  }
}
