// The memory budget → how many requests (state slots) and KV pages a model gets (spec/serving.md §7).
import { totalmem } from 'node:os';
import type { ModelSpec } from '../../weights/config.js';
import type { BackendLimits, KvDType } from '../../kernels/backend.js';
import { phiDim } from '../../kernels/ops.js';
import { DEFAULT_PAGE_SIZE, KV_BYTES, memoryModel } from './prices.js';

export interface PlanOptions {
  maxBatch: number;
  /** Bytes for state + KV; null = enough for max-batch requests of max-model-len tokens, capped at 25% of memory. */
  memoryBudget: number | null;
  /** Context limit; null = the config's max_position_embeddings (KV models) or 1,048,576 (2Mamba: a policy value). */
  maxModelLen: number | null;
  /** How the KV cache holds K and V (default f32). */
  kvDtype?: KvDType;
}

export const TWO_MAMBA_DEFAULT_MAX_LEN = 1 << 20;

export interface PoolPlan {
  slots: number;
  kvPages: number;
  pageSize: number;
  maxModelLen: number;
  budgetBytes: number;
  kvDtype: KvDType;
}

/** How many requests (state slots) and KV pages a budget buys for this model. */
export function planPools(spec: ModelSpec, o: PlanOptions): PoolPlan {
  const kvDtype = o.kvDtype ?? 'f32',
    m = memoryModel(spec, kvDtype),
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
    return { slots, kvPages: 0, pageSize, maxModelLen, budgetBytes, kvDtype };
  }
  const slots = o.maxBatch;
  const kvPages = Math.floor((budgetBytes - slots * m.stateBytes) / pageBytes);
  if (kvPages < 1) throw new Error(`the memory budget of ${budgetBytes} bytes holds no KV page of ${pageBytes} bytes`);
  return { slots, kvPages, pageSize, maxModelLen, budgetBytes, kvDtype };
}

/** Bytes kept free of pools for activations and scratch within a backend's total (fitPools), at least. */
const WORKING_BYTES = 256 * 2 ** 20;

/**
 * About what a step of `rows` rows holds beside the pools and the weights: per row the f32 activations (the residual,
 * the qkv projection before and after the conv, the decays, the mixer's output, gate | up; 2Mamba's readout partial)
 * and an f16 copy of a GEMM's input, the f16 outputs of the tensor-core GEMMs (the [qkv | A] projection for the conv,
 * silu(gate)·up for the down projection), and the attention partials, (max, sum, d values) per row, head and range of
 * `keysPerRange` of the `keys` a row attends (the KV models: the longest context; 2Mamba: its segment's scores). On
 * WebGPU a prefill-only step's ranges are the tiled kernel's (ATTN_TILE_RANGE), a step with decode rows and 2Mamba's
 * scores stride them by SPLIT_K; 0: no partials. Partials past one buffer run in groups of rows that reuse it
 * (kernels/webgpu/wgsl/meta.ts, attentionGroups), so they never take more than one.
 */
export function stepWorkingBytes(
  spec: ModelSpec,
  rows: number,
  keys: number,
  bufferBytes: number,
  keysPerRange: number,
): number {
  const { hidden: E, heads: H, headDim: d, intermediate: I } = spec,
    qkv = (H + 2 * spec.kvHeads) * d;
  const perRow =
    4 * (2 * E + 2 * qkv + 2 * H + H * d + 2 * I + (spec.arch === '2mamba' ? H * d : 0)) +
    2 * (Math.max(E, I) + qkv + H + I);
  const partials = keysPerRange ? Math.min(bufferBytes, rows * H * Math.ceil(keys / keysPerRange) * (d + 2) * 4) : 0;
  return rows * perRow + partials;
}

/**
 * Fit a plan into what the backend can hold: the per-layer state and KV buffers under its largest buffer (a WebGPU
 * storage binding: lavapipe's is 128 MiB), everything under its total after the weights. Returns the plan, smaller
 * where it had to be, and a line saying why (null when it fit).
 */
export function fitPools(
  p: PoolPlan,
  spec: ModelSpec,
  limits: BackendLimits | undefined,
  weightValues: number,
  /** What the largest step holds beside the pools (stepWorkingBytes); at least WORKING_BYTES stays free. */
  stepBytes = 0,
): { plan: PoolPlan; clamped: string | null } {
  if (!limits) return { plan: p, clamped: null };
  const working = Math.max(WORKING_BYTES, stepBytes);
  const m = memoryModel(spec, p.kvDtype),
    { heads: H, kvHeads, headDim: d, layers: L } = spec;
  const slotBytesPerLayer = H * phiDim(d) * d * 4; // the largest state buffer per slot: 2Mamba's S
  // K (or V), or C in f64
  const tokenBytesPerBuffer = Math.max(kvHeads * d * KV_BYTES[p.kvDtype], spec.arch === '2mamba-e' ? H * 8 : 0);
  const room = limits.totalBytes - weightValues * limits.weightBytesPerValue - working;
  let { slots, kvPages } = p;
  const why: string[] = [];
  if (spec.arch === '2mamba') {
    const byBuffer = Math.floor(limits.bufferBytes / slotBytesPerLayer),
      byTotal = Math.floor(room / m.stateBytes);
    if (Math.min(byBuffer, byTotal) < slots) {
      slots = Math.max(0, Math.min(byBuffer, byTotal));
      why.push(`${slots} state slots`);
    }
  } else {
    const pageBytes = p.pageSize * m.kvBytesPerToken;
    const byBuffer = Math.floor(limits.bufferBytes / (p.pageSize * tokenBytesPerBuffer)),
      byTotal = Math.floor((room - slots * m.stateBytes) / pageBytes);
    if (Math.min(byBuffer, byTotal) < kvPages) {
      kvPages = Math.max(0, Math.min(byBuffer, byTotal));
      why.push(`${kvPages * p.pageSize} KV tokens`);
    }
  }
  if (!why.length) return { plan: p, clamped: null };
  if (slots < 1 || (spec.arch !== '2mamba' && kvPages < 1))
    throw new Error(
      `this backend cannot hold one request of this model: largest buffer ${limits.bufferBytes} bytes, ` +
        `${Math.max(0, room)} bytes left after ${L} layers of weights`,
    );
  const budgetBytes = slots * m.stateBytes + kvPages * p.pageSize * m.kvBytesPerToken;
  return {
    plan: { ...p, slots, kvPages, budgetBytes },
    clamped:
      `memory budget lowered to ${budgetBytes} bytes (${why.join(', ')}): this backend holds at most ` +
      `${limits.bufferBytes} bytes in one buffer` +
      (Number.isFinite(limits.totalBytes) ? ` and ${limits.totalBytes} bytes in all` : ''),
  };
}
