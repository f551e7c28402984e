// How long a readback sleeps before it starts waiting on the GPU. dawn.node settles a map by polling: while any
// operation is pending, its AsyncRunner re-arms setImmediate with a newly created native function every event-loop
// turn (its source: "TODO: Create once, reuse"), megabytes of garbage in a 5 ms step and the GC pauses that follow
// (docs/perf.md). A readback behind a step of a shape seen before first sleeps on a timer (no polling meanwhile) for
// most of what that shape's readbacks took, then maps. FURY_READ_NAP=0 turns it off.
export const READ_NAP = process.env.FURY_READ_NAP !== '0';
if (process.env.FURY_READ_NAP !== undefined && !['0', '1'].includes(process.env.FURY_READ_NAP))
  throw new Error(`FURY_READ_NAP must be 0 or 1, got ${JSON.stringify(process.env.FURY_READ_NAP)}`);

/** The share of a shape's readback time slept, and the shortest nap worth a timer (ms; Node's timers are in ms). */
const SHARE = 0.7,
  MIN_MS = 1;

/** Per step shape, a running estimate of a readback's time from its submit to its data (ms). */
export class ReadNaps {
  private est = new Map<string, number>();

  constructor(private readonly enabled = READ_NAP) {}

  /** Whole ms to sleep before mapping a readback behind a step of shape `key` (0: map at once). */
  napMs(key: string): number {
    const e = this.est.get(key);
    if (!this.enabled || e === undefined) return 0;
    const ms = Math.floor(SHARE * e - MIN_MS);
    return ms >= MIN_MS ? ms : 0;
  }

  /** A readback behind shape `key` took `ms` from its submit to its data (its nap included: a nap that overslept
   *  pulls the estimate down, so the next nap is shorter). */
  took(key: string, ms: number): void {
    const e = this.est.get(key);
    this.est.set(key, e === undefined ? ms : 0.8 * e + 0.2 * ms);
  }
}
