// Open a checkpoint directory for serving: weights on a backend, state pools, tokenizer, chat template.
import { CpuBackend } from '../kernels/cpu/backend.js';
import type { Backend } from '../kernels/backend.js';
import { loadCheckpoint, type LoadOptions } from '../weights/checkpoint.js';
import { ChatTemplate } from './chat.js';
import { DEFAULT_PAGE_SIZE, Model } from './models/model.js';
import { SequencePool } from './sequences.js';
import { TextTokenizer } from './tokenizer.js';

export type BackendChoice = 'auto' | 'cpu' | 'webgpu';
export const BACKENDS: readonly BackendChoice[] = ['auto', 'cpu', 'webgpu'];

export interface OpenOptions extends LoadOptions {
  backend?: BackendChoice;
  /** Sequences open at once. */
  slots?: number;
  /** KV tokens for the whole pool (softmax, 2Mamba-E). */
  kvTokens?: number;
  pageSize?: number;
  onProgress?: (message: string) => void;
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

export function createBackend(choice: BackendChoice): Backend {
  if (choice === 'webgpu') {
    throw new Error('the WebGPU backend is not part of this build yet: use --backend cpu (or auto)');
  }
  return new CpuBackend();
}

export async function openModel(dir: string, opts: OpenOptions = {}): Promise<OpenModel> {
  const ckpt = await loadCheckpoint(dir, opts);
  try {
    const tokenizer = new TextTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfig);
    if (tokenizer.size > ckpt.spec.vocab) {
      throw new Error(`${dir}: the tokenizer has ${tokenizer.size} ids but the model's vocab_size is ${ckpt.spec.vocab}`);
    }
    const backend = createBackend(opts.backend ?? 'auto');
    const pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
    const slots = opts.slots ?? 4;
    const kvPages = ckpt.spec.arch === '2mamba' ? 0 : Math.ceil((opts.kvTokens ?? slots * ckpt.spec.maxPositions) / pageSize);
    const model = await Model.load(ckpt, backend, { slots, kvPages, pageSize },
      (done, total) => opts.onProgress?.(`loading weights: layer ${done}/${total}`));
    const chat = ChatTemplate.forTokenizer(ckpt.tokenizerConfig, { bos_token: tokenizer.bosToken, eos_token: tokenizer.eosToken });
    return {
      name: dir.replace(/\/+$/, '').split('/').pop() ?? dir,
      model, pool: new SequencePool(model), tokenizer, chat, backend,
      close: async () => { await backend.destroy(); },
    };
  } finally {
    await ckpt.close();
  }
}
