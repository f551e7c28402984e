// What a CPU family's op function sees: the backend's buffers by name, and the step.
import type { Step } from '../backend.js';
import type { Op } from '../ops.js';

export type Arr = Float32Array | Int32Array | Float64Array;

export interface CpuBuffers {
  get(name: string): Arr;
  f32(name: string): Float32Array;
  /** A scratch block of n values (fused prologues); valid until the next call. */
  temp(n: number): Float32Array;
}

/** The CPU twin of one op: runs it over the step's rows. */
export type CpuOp<K extends Op['op']> = (b: CpuBuffers, op: Extract<Op, { op: K }>, step: Step, rows: number) => void;

/** The cache slot of KV position `pos` in a sequence's page table. */
export function pageOf(pages: readonly number[], pos: number, pageSize: number): number {
  const p = pages[Math.floor(pos / pageSize)];
  if (p === undefined)
    throw new RangeError(`KV position ${pos} is beyond the sequence's ${pages.length} page(s) of ${pageSize}`);
  return p;
}
