// Memory per request (spec/2mamba.md §11). Every byte figure fury reports comes from these functions
// (and the pools, which count whole KV pages): state in f32, K and V in the KV dtype (C_j in f32).
import type { KvDType } from '../../kernels/backend.js';
import type { ModelSpec } from '../../weights/config.js';
import { phiDim } from '../../kernels/ops.js';

export const F32_BYTES = 4;
/** Tokens per KV page. */
export const DEFAULT_PAGE_SIZE = 16;

export interface MemoryModel {
  /** Fixed bytes per request, whatever its length: 2Mamba S, n and conv state; 2Mamba-E conv state. */
  stateBytes: number;
  /** Bytes per token held: KV (+ C_j for 2Mamba-E); 0 for 2Mamba. */
  kvBytesPerToken: number;
}

/** 2Mamba per layer and head: S (D×d) + n (D) + conv state (3d raw values) = D·d + D + 3d values. */
export function twoMambaValuesPerHead(d: number): number {
  return phiDim(d) * d + phiDim(d) + 3 * d;
}

export const KV_BYTES: Readonly<Record<KvDType, number>> = { f32: 4, f16: 2 };

export function memoryModel(spec: ModelSpec, kvDtype: KvDType = 'f32'): MemoryModel {
  const { layers: L, heads: H, kvHeads: Hkv, headDim: d, hidden: E } = spec;
  const convState = L * 3 * E * F32_BYTES,
    B = KV_BYTES[kvDtype];
  switch (spec.arch) {
    case '2mamba':
      return { stateBytes: L * H * (phiDim(d) * d + phiDim(d)) * F32_BYTES + convState, kvBytesPerToken: 0 };
    case '2mamba-e':
      return { stateBytes: convState, kvBytesPerToken: L * H * (2 * d * B + F32_BYTES) };
    case 'softmax':
      return { stateBytes: 0, kvBytesPerToken: L * 2 * Hkv * d * B };
  }
}

/** Bytes one request holds after `tokens` tokens (KV counted per token; pools round up to whole pages). */
export function requestBytes(spec: ModelSpec, tokens: number, kvDtype: KvDType = 'f32'): number {
  const m = memoryModel(spec, kvDtype);
  return m.stateBytes + m.kvBytesPerToken * tokens;
}

/** Tokens beyond which a softmax KV cache (2d values per head per token) outgrows the 2Mamba state, in bytes (paper
 *  eq. 6 in values: 2·N·d > d(d+1)²/2 + 3d; the state is f32, K and V the KV dtype). Exact value; for d = 64: 1057.75
 *  with an f32 cache, 2115.5 with f16. */
export function crossoverTokensExact(d: number, kvDtype: KvDType = 'f32'): number {
  return (twoMambaValuesPerHead(d) * F32_BYTES) / (2 * d * KV_BYTES[kvDtype]);
}

export const crossoverTokens = (d: number, kvDtype: KvDType = 'f32') => Math.ceil(crossoverTokensExact(d, kvDtype));
