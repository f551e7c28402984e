// A model being served: its weights and pools (sized by the memory budget), its scheduler and its limits.
import { totalmem } from 'node:os';
import { openModel, type BackendChoice, type OpenModel } from '../engine/open.js';
import type { WeightsDType } from '../engine/models/model.js';
import { memoryModel } from '../engine/memory.js';
import { DEFAULT_PAGE_SIZE } from '../engine/models/model.js';
import { Scheduler } from '../engine/scheduler.js';
import type { ModelSpec } from '../weights/config.js';

export interface HostOptions {
  backend: BackendChoice;
  weightsDType?: WeightsDType;
  maxBatch: number;
  maxQueue: number;
  /** Bytes for state + KV; null = enough for max-batch requests of max-model-len tokens, capped at 25% of memory. */
  memoryBudget: number | null;
  /** Context limit; null = the config's max_position_embeddings (KV models) or 1,048,576 (2Mamba: a policy value). */
  maxModelLen: number | null;
  tokenBudget: number;
  prefillChunk: number;
}

export const TWO_MAMBA_DEFAULT_MAX_LEN = 1 << 20;

/** Parse "1073741824", "512MiB", "2GB" or "25%" (of this machine's memory) into bytes. */
export function parseBytes(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b?|b)?\s*$/i.exec(s);
  if (!m) throw new Error(`"${s}" is not a byte count (e.g. 4GiB, 512MB, 1073741824) or a percentage (e.g. 50%)`);
  const v = Number(m[1]), unit = (m[2] ?? 'b').toLowerCase();
  if (unit === '%') {
    if (v <= 0 || v > 100) throw new Error(`memory percentage ${s} must be in (0, 100]`);
    return Math.floor((totalmem() * v) / 100);
  }
  const pow = { b: 0, k: 1, m: 2, g: 3, t: 4 }[unit[0] as 'b' | 'k' | 'm' | 'g' | 't'];
  const base = unit.includes('i') ? 1024 : 1000;
  return Math.floor(v * base ** pow);
}

export interface PoolPlan {
  slots: number;
  kvPages: number;
  pageSize: number;
  maxModelLen: number;
  budgetBytes: number;
}

/** How many requests (state slots) and KV pages a budget buys for this model. */
export function planPools(spec: ModelSpec, o: Pick<HostOptions, 'maxBatch' | 'memoryBudget' | 'maxModelLen'>): PoolPlan {
  const m = memoryModel(spec), pageSize = DEFAULT_PAGE_SIZE;
  const maxModelLen = o.maxModelLen ?? (spec.arch === '2mamba' ? Math.max(spec.maxPositions, TWO_MAMBA_DEFAULT_MAX_LEN) : spec.maxPositions);
  const pageBytes = pageSize * m.kvBytesPerToken;
  const wanted = o.maxBatch * (m.stateBytes + Math.ceil(maxModelLen / pageSize) * pageBytes);
  const budgetBytes = o.memoryBudget ?? Math.min(wanted, Math.floor(totalmem() / 4));
  if (spec.arch === '2mamba') {
    const slots = Math.min(o.maxBatch, Math.floor(budgetBytes / m.stateBytes));
    if (slots < 1) throw new Error(`the memory budget of ${budgetBytes} bytes holds no 2Mamba state of ${m.stateBytes} bytes`);
    return { slots, kvPages: 0, pageSize, maxModelLen, budgetBytes };
  }
  const slots = o.maxBatch;
  const kvPages = Math.floor((budgetBytes - slots * m.stateBytes) / pageBytes);
  if (kvPages < 1) throw new Error(`the memory budget of ${budgetBytes} bytes holds no KV page of ${pageBytes} bytes`);
  return { slots, kvPages, pageSize, maxModelLen, budgetBytes };
}

export class ServedModel {
  readonly created = Math.floor(Date.now() / 1000);

  private constructor(readonly name: string, readonly om: OpenModel, readonly scheduler: Scheduler, readonly plan: PoolPlan) {}

  static async load(dir: string, name: string, o: HostOptions, onProgress?: (msg: string) => void,
                    log?: (line: string) => void): Promise<ServedModel> {
    let plan: PoolPlan | undefined;
    const om = await openModel(dir, {
      backend: o.backend, weightsDType: o.weightsDType, onProgress, log,
      sizePools: (spec) => {
        plan = planPools(spec, o);
        return { slots: plan.slots, kvTokens: plan.kvPages * plan.pageSize, pageSize: plan.pageSize };
      },
    });
    if (!plan) throw new Error('openModel did not size the pools');
    const scheduler = new Scheduler(om.pool, { maxBatch: plan.slots, maxQueue: o.maxQueue, tokenBudget: o.tokenBudget, prefillChunk: o.prefillChunk });
    return new ServedModel(name, om, scheduler, plan);
  }

  get spec(): ModelSpec {
    return this.om.model.spec;
  }

  /** Bytes of device memory by kind. */
  memoryBytes(): { weights: number; state: number; kv: number } {
    const b = this.om.backend;
    return {
      weights: b.bytes((n) => n.startsWith('w.')),
      state: b.bytes((n) => n.startsWith('s.')),
      kv: b.bytes((n) => n.startsWith('kv.')),
    };
  }
}
