// What the fast CPU backend's main side and its workers say to each other (kernels/wasm/backend.ts, worker.ts).
import type { BufferKind, Step } from '../backend.js';
import type { Op } from '../ops.js';

/** A buffer in the shared memory: byte offset, element count, element kind. */
export interface Slot {
  offset: number;
  length: number;
  kind: BufferKind;
}

/** Bytes of a buffer. */
export const slotBytes = (s: Slot) => s.length * (s.kind === 'cumsum' ? 8 : 4);

/** A typed view of a buffer over the memory's current buffer. */
export function viewOf(buf: ArrayBufferLike, s: Slot): Int32Array | Float64Array | Float32Array {
  return s.kind === 'i32'
    ? new Int32Array(buf, s.offset, s.length)
    : s.kind === 'cumsum'
      ? new Float64Array(buf, s.offset, s.length)
      : new Float32Array(buf, s.offset, s.length);
}

/** Per-run scratch: the shared prologue block (rmsnorm / silu·mul rows) and one private block per worker. */
export interface Scratch {
  temp: number;
  tempBytes: number;
  workers: number[];
  workerBytes: number;
}

export type ToWorker =
  | { type: 'init'; module: WebAssembly.Module; memory: WebAssembly.Memory; index: number; size: number }
  /** `ops` comes with a plan's first run, `table` whenever buffers changed since the last run. */
  | { type: 'run'; id: number; plan: number; ops?: Op[]; table?: Record<string, Slot>; step: Step; scratch: Scratch };

export type FromWorker =
  { type: 'ready' } | { type: 'done'; id: number; failed: boolean } | { type: 'error'; id: number; message: string };

/** The WebAssembly module's exports (kernels/wasm/as/index.ts); pointers are byte offsets. */
export interface Kernels {
  gemm(
    x: number,
    w: number,
    out: number,
    rows: number,
    k: number,
    n: number,
    c0: number,
    c1: number,
    add: boolean,
  ): void;
  step(q: number, k: number, v: number, a: number, S: number, N: number, y: number, d: number, num: number): void;
  chunked(
    src: number,
    qOff: number,
    kOff: number,
    vOff: number,
    stride: number,
    logA: number,
    aStride: number,
    T: number,
    S: number,
    N: number,
    y: number,
    yStride: number,
    d: number,
    chunk: number,
    fresh: boolean,
    scratch: number,
  ): void;
  chunkScratch(d: number, chunk: number): number;
  attend(
    q: number,
    K: number,
    V: number,
    pages: number,
    P: number,
    kvHeads: number,
    g: number,
    heads: number,
    h: number,
    n: number,
    d: number,
    C: number,
    out: number,
    logits: number,
  ): void;
}
