// The Backend seam: named device buffers and a Plan (a flat list of kernel invocations over those names),
// run once per step with a Step describing which rows belong to which sequence. A backend knows no model.
// The ops themselves (what each computes) are the contract of ops.ts.
import type { Op } from './ops.js';

/** f32 values; i32 ids; `cumsum`: cumulative log-decays C_j (held at whatever precision the backend guarantees). */
export type BufferKind = 'f32' | 'i32' | 'cumsum';

/** How a weight buffer is stored: values are given as f32 (already representable in this dtype); a backend may
 *  keep 16-bit weights packed (two per u32 word, element 2i in the low half). Only matmul and embed tables use it. */
export type WeightDType = 'f32' | 'f16' | 'bf16';

/** How a KV cache holds K and V (created with that `storage`): f32, or f16 (the WebGPU backend packs it two per u32;
 *  the CPU backends hold f32 only). 2Mamba-E's C_j and every recurrent state stay f32. */
export type KvDType = 'f32' | 'f16';

/** What a buffer holds, so memory is counted by role: model weights, per-request state (2Mamba S/n, conv state),
 *  the KV cache, per-step activations, or a backend's own scratch. */
export type BufferRole = 'weight' | 'state' | 'kv' | 'act' | 'scratch';

export interface BufferOptions {
  kind?: BufferKind;
  /** Initial values (weights); new buffers hold zeros. */
  init?: ArrayLike<number>;
  storage?: WeightDType;
  /** Default 'act'. */
  role?: BufferRole;
}

/** One sequence's rows in a step: `rows` new tokens at positions pos … pos+rows−1. */
export interface SeqStep {
  /** State slot: 2Mamba S/n and every architecture's conv state. */
  slot: number;
  /** Tokens this sequence has already processed (position of its first new row). */
  pos: number;
  rows: number;
  /** KV block table (softmax, 2Mamba-E): page ids covering positions 0 … pos+rows−1. */
  pages: readonly number[];
}

export interface Step {
  seqs: readonly SeqStep[];
}

export const totalRows = (step: Step) => step.seqs.reduce((s, q) => s + q.rows, 0);

export interface Plan {
  readonly ops: readonly Op[];
}

/** What one backend can hold: the largest single buffer (a WebGPU storage binding) and all buffers together (a 32-bit
 *  WebAssembly memory), and the bytes it keeps per weight value. The memory planner fits the pools into these. */
export interface BackendLimits {
  bufferBytes: number;
  totalBytes: number;
  weightBytesPerValue: number;
}

export interface Backend {
  readonly name: string;
  readonly limits?: BackendLimits;
  /** Prefill runs on a GPU's matrix units (tensor cores): recomputing a state is cheap next to moving it between host
   *  and device (engine/memory/state-cache.ts, defaultMinHostTokens). */
  readonly fastPrefill?: boolean;
  /** Create (or replace) a buffer of `elements` values, optionally initialised (weights). New buffers hold zeros. */
  create(name: string, elements: number, options?: BufferOptions): void;
  has(name: string): boolean;
  /** Element count of a buffer. */
  size(name: string): number;
  write(name: string, data: ArrayLike<number>, offset?: number): void;
  /** Values of a buffer (i32 ids as numbers). The copy is ordered after every run() / write() called before it and
   *  before every one called after it, even though the promise resolves later. */
  read(name: string, offset?: number, count?: number): Promise<Float32Array>;
  /** Several f32 ranges at once, ordered as read() (state snapshots: one transfer instead of one per buffer). */
  readMany?(parts: readonly { name: string; offset: number; count: number }[]): Promise<Float32Array[]>;
  /** Copy `count` elements within one buffer (state slots: forks, snapshots). */
  copyWithin(name: string, srcOffset: number, dstOffset: number, count: number): void;
  /** Bytes held by the buffers of one role (all buffers without one). */
  bytes(role?: BufferRole): number;
  /** Bytes held by one buffer. */
  bufferBytes(name: string): number;
  /** Optionally build ahead of the first step what a model of these head dimensions and weight dtypes will run
   *  (GPU pipelines); returns how many things were built. */
  warm?(headDims: number[], dtypes: WeightDType[], onProgress?: (done: number, total: number) => void): Promise<number>;
  /** Run a Plan. Its work is ordered after every earlier run / write / read and before every later one. */
  run(plan: Plan, step: Step): Promise<void>;
  destroy(): Promise<void>;
}
