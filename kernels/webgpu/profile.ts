// GPU timing for the bench: timestamps around a step's one pass, or one pass per op (kernels.md §6), or with
// FURY_PROFILE_KERNELS=1 one pass per kernel launch (keyed "op kernel"). Used only when the backend's profile or
// stepTimes is set; a step otherwise runs in one pass with no queries.
import type { Plan } from '../backend.js';

const PER_KERNEL = process.env.FURY_PROFILE_KERNELS === '1';

/** What the timer needs of a recorded launch: the op it belongs to and its kernel's name. */
export interface Launch {
  opIndex: number;
  kernel: string;
}

export interface OpTimes {
  /** When set, every op runs in a pass of its own and its GPU ms are added here (keyed by op, matmuls by weight). */
  profile: Map<string, { ms: number; count: number }> | null;
  /** When set (and profile is not), the GPU ms of each whole step are appended here. */
  stepTimes: number[] | null;
}

/** The timestamp queries of one step: one pair per pass (the step, each op, or each launch). */
export class StepTimer {
  private readonly qs: GPUQuerySet;
  /** The first launch of each timed pass, and each such launch's pass. */
  private readonly starts: number[];
  private readonly passAt: Map<number, number>;

  private constructor(
    private readonly device: GPUDevice,
    private readonly plan: Plan,
    private readonly launches: readonly Launch[],
    private readonly perOp: boolean,
  ) {
    this.starts = !perOp
      ? [0]
      : launches.flatMap((l, i) => (i === 0 || PER_KERNEL || l.opIndex !== launches[i - 1]!.opIndex ? [i] : []));
    this.passAt = new Map(this.starts.map((s, q) => [s, q]));
    this.qs = device.createQuerySet({ type: 'timestamp', count: 2 * Math.max(1, this.starts.length) });
  }

  /** A timer when the backend was asked for times and the device can take timestamps, else null. */
  static for(device: GPUDevice, plan: Plan, launches: readonly Launch[], t: OpTimes): StepTimer | null {
    if ((!t.profile && !t.stepTimes) || !device.features.has('timestamp-query')) return null;
    return new StepTimer(device, plan, launches, t.profile !== null);
  }

  /** The timestampWrites of the pass that starts at launch `i` (the whole step when not per op). */
  writes(i: number): GPUComputePassTimestampWrites {
    const q = this.passAt.get(i) ?? 0;
    return { querySet: this.qs, beginningOfPassWriteIndex: 2 * q, endOfPassWriteIndex: 2 * q + 1 };
  }

  /** Whether launch `i` (not the first) opens a pass of its own. */
  splits(i: number): boolean {
    return i > 0 && this.passAt.has(i);
  }

  /** Resolve the queries after the step's passes; read and record them once the GPU is done. */
  async finish(enc: GPUCommandEncoder, submit: () => void, t: OpTimes): Promise<void> {
    const queries = 2 * Math.max(1, this.starts.length),
      bytes = 8 * queries;
    const resolve = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const read = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.resolveQuerySet(this.qs, 0, queries, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, read, 0, bytes);
    submit();
    await read.mapAsync(GPUMapMode.READ);
    const ts = new BigUint64Array(read.getMappedRange());
    const ms = (i: number) => Number(ts[2 * i + 1]! - ts[2 * i]!) / 1e6;
    if (this.perOp) {
      this.starts.forEach((start, i) => {
        const l = this.launches[start]!,
          op = this.plan.ops[l.opIndex]!;
        const key =
          (op.op === 'matmul' ? `matmul ${op.w.replace(/^w\.\d+\./, '')}` : op.op) + (PER_KERNEL ? ` ${l.kernel}` : '');
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
