// GPU timing for the bench: timestamps around a step's one pass, or one pass per op (kernels.md §6). Used only when the
// backend's profile or stepTimes is set; a step otherwise runs in one pass with no queries.
import type { Plan } from '../backend.js';

export interface OpTimes {
  /** When set, every op runs in a pass of its own and its GPU ms are added here (keyed by op, matmuls by weight). */
  profile: Map<string, { ms: number; count: number }> | null;
  /** When set (and profile is not), the GPU ms of each whole step are appended here. */
  stepTimes: number[] | null;
}

/** The timestamp queries of one step; `pass(opIndex)` opens the pass an op runs in. */
export class StepTimer {
  private readonly qs: GPUQuerySet;
  private readonly queries: number;

  private constructor(
    private readonly device: GPUDevice,
    private readonly plan: Plan,
    private readonly perOp: boolean,
  ) {
    this.queries = perOp ? 2 * plan.ops.length : 2;
    this.qs = device.createQuerySet({ type: 'timestamp', count: this.queries });
  }

  /** A timer when the backend was asked for times and the device can take timestamps, else null. */
  static for(device: GPUDevice, plan: Plan, t: OpTimes): StepTimer | null {
    if ((!t.profile && !t.stepTimes) || !device.features.has('timestamp-query')) return null;
    return new StepTimer(device, plan, t.profile !== null);
  }

  /** The timestampWrites of the pass that starts at op `opIndex` (the whole step when not per op). */
  writes(opIndex: number): GPUComputePassTimestampWrites {
    const i = this.perOp ? opIndex : 0;
    return { querySet: this.qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Whether op `opIndex` needs a pass of its own. */
  splits(opIndex: number, current: number): boolean {
    return this.perOp && opIndex !== current;
  }

  /** Resolve the queries after the step's passes; read and record them once the GPU is done. */
  async finish(enc: GPUCommandEncoder, submit: () => void, t: OpTimes): Promise<void> {
    const bytes = 8 * this.queries;
    const resolve = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const read = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.resolveQuerySet(this.qs, 0, this.queries, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, read, 0, bytes);
    submit();
    await read.mapAsync(GPUMapMode.READ);
    const ts = new BigUint64Array(read.getMappedRange());
    const ms = (i: number) => Number(ts[2 * i + 1]! - ts[2 * i]!) / 1e6;
    if (this.perOp) {
      this.plan.ops.forEach((op, i) => {
        const key = op.op === 'matmul' ? `matmul ${op.w.replace(/^w\.\d+\./, '')}` : op.op;
        const e = t.profile!.get(key) ?? { ms: 0, count: 0 };
        e.ms += ms(i);
        e.count++;
        t.profile!.set(key, e);
      });
    } else t.stepTimes?.push(ms(0));
    read.unmap();
    read.destroy();
    resolve.destroy();
    this.qs.destroy();
  }
}
