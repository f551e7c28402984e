// The memory budget → how many requests (state slots) and KV pages a model gets (spec/serving.md §7).
import { totalmem } from 'node:os';
import type { ModelSpec } from '../../weights/config.js';
import { DEFAULT_PAGE_SIZE, memoryModel } from './prices.js';

export interface PlanOptions {
  maxBatch: number;
  /** Bytes for state + KV; null = enough for max-batch requests of max-model-len tokens, capped at 25% of memory. */
  memoryBudget: number | null;
  /** Context limit; null = the config's max_position_embeddings (KV models) or 1,048,576 (2Mamba: a policy value). */
  maxModelLen: number | null;
}

export const TWO_MAMBA_DEFAULT_MAX_LEN = 1 << 20;

export interface PoolPlan {
  slots: number;
  kvPages: number;
  pageSize: number;
  maxModelLen: number;
  budgetBytes: number;
}

/** How many requests (state slots) and KV pages a budget buys for this model. */
export function planPools(spec: ModelSpec, o: PlanOptions): PoolPlan {
  const m = memoryModel(spec),
    pageSize = DEFAULT_PAGE_SIZE;
  const maxModelLen =
    o.maxModelLen ??
    (spec.arch === '2mamba' ? Math.max(spec.maxPositions, TWO_MAMBA_DEFAULT_MAX_LEN) : spec.maxPositions);
  const pageBytes = pageSize * m.kvBytesPerToken;
  const wanted = o.maxBatch * (m.stateBytes + Math.ceil(maxModelLen / pageSize) * pageBytes);
  const budgetBytes = o.memoryBudget ?? Math.min(wanted, Math.floor(totalmem() / 4));
  if (spec.arch === '2mamba') {
    const slots = Math.min(o.maxBatch, Math.floor(budgetBytes / m.stateBytes));
    if (slots < 1)
      throw new Error(`the memory budget of ${budgetBytes} bytes holds no 2Mamba state of ${m.stateBytes} bytes`);
    return { slots, kvPages: 0, pageSize, maxModelLen, budgetBytes };
  }
  const slots = o.maxBatch;
  const kvPages = Math.floor((budgetBytes - slots * m.stateBytes) / pageBytes);
  if (kvPages < 1) throw new Error(`the memory budget of ${budgetBytes} bytes holds no KV page of ${pageBytes} bytes`);
  return { slots, kvPages, pageSize, maxModelLen, budgetBytes };
}
