// The CPU backend: buffers are typed arrays, a Plan runs op by op. Cumulative log-decays are held in f64.
import { type Backend, type BufferOptions, type BufferRole, type Plan, type Step, totalRows } from '../backend.js';
import type { Op } from '../ops.js';
import { attentionOp, kvAppendOp } from './attention.js';
import type { Arr, CpuBuffers, CpuOp } from './common.js';
import { conv2Op } from './conv2.js';
import { mamba2Op } from './mamba2.js';
import { matmulOp } from './matmul.js';
import { ropeOp } from './rope.js';
import { embedOp, gatherLastOp, sampleOp } from './rows.js';

/** Each op's CPU twin, one family file each (kernels/cpu/<family>.ts). */
export const OPS: { [K in Op['op']]: CpuOp<K> } = {
  embed: embedOp,
  matmul: matmulOp,
  conv2: conv2Op,
  mamba2: mamba2Op,
  rope: ropeOp,
  kv_append: kvAppendOp,
  attention: attentionOp,
  gather_last: gatherLastOp,
  sample: sampleOp,
};

export class CpuBackend implements Backend, CpuBuffers {
  readonly name = 'reference';
  private bufs = new Map<string, Arr>();
  private roles = new Map<string, BufferRole>();

  /** Weights are held in f32 whatever their storage dtype (the values given are already representable in it). */
  create(name: string, elements: number, { kind = 'f32', init, role = 'act' }: BufferOptions = {}): void {
    const a =
      kind === 'i32'
        ? new Int32Array(elements)
        : kind === 'cumsum'
          ? new Float64Array(elements)
          : new Float32Array(elements);
    if (init) {
      if (init.length !== elements)
        throw new RangeError(`create ${name}: ${init.length} initial values for ${elements} elements`);
      a.set(init);
    }
    this.bufs.set(name, a);
    this.roles.set(name, role);
  }

  has(name: string): boolean {
    return this.bufs.has(name);
  }

  get(name: string): Arr {
    const b = this.bufs.get(name);
    if (!b) throw new Error(`cpu backend: no buffer "${name}"`);
    return b;
  }

  private scratch = new Float32Array(0);
  /** A scratch row block for fused prologues (rmsnorm / silu·mul before a matmul). */
  temp(n: number): Float32Array {
    if (this.scratch.length < n) this.scratch = new Float32Array(n);
    return this.scratch.subarray(0, n);
  }

  f32(name: string): Float32Array {
    const b = this.get(name);
    if (!(b instanceof Float32Array)) throw new Error(`cpu backend: buffer "${name}" is not f32`);
    return b;
  }

  size(name: string): number {
    return this.get(name).length;
  }

  write(name: string, data: ArrayLike<number>, offset = 0): void {
    const b = this.get(name);
    if (offset + data.length > b.length)
      throw new RangeError(`write ${name}: ${offset}+${data.length} exceeds ${b.length}`);
    b.set(data, offset);
  }

  async read(name: string, offset = 0, count?: number): Promise<Float32Array> {
    const b = this.get(name);
    return Float32Array.from(b.subarray(offset, count === undefined ? b.length : offset + count));
  }

  copyWithin(name: string, src: number, dst: number, count: number): void {
    this.get(name).copyWithin(dst, src, src + count);
  }

  bytes(role?: BufferRole): number {
    let n = 0;
    for (const [name, b] of this.bufs) if (role === undefined || this.roles.get(name) === role) n += b.byteLength;
    return n;
  }

  bufferBytes(name: string): number {
    return this.get(name).byteLength;
  }

  async run(plan: Plan, step: Step): Promise<void> {
    const rows = totalRows(step);
    for (const op of plan.ops) (OPS[op.op] as CpuOp<Op['op']>)(this, op, step, rows);
  }

  async destroy(): Promise<void> {
    this.bufs.clear();
  }
}
