// The workers of the fast CPU backend run every Plan in lockstep: an op's optional serial part on the leader, then its
// units shared out by an atomic counter, then a barrier. The control words live in the shared memory (CONTROL_BYTES
// at CONTROL_OFFSET), so no message crosses threads inside a step.

/** Where the control words sit in the shared memory, below the first buffer (kernels/wasm/backend.ts). */
export const CONTROL_OFFSET = 16 * 1024;
export const CONTROL_BYTES = 64;

const ARRIVED = 0,
  GENERATION = 1,
  CLAIM = 2,
  FAILED = 3;

/** Spins this many polls before sleeping in Atomics.wait: a barrier is usually met within microseconds. */
const SPIN = 2000;

export class Team {
  private readonly ctl: Int32Array;

  constructor(
    buffer: SharedArrayBuffer,
    readonly size: number,
    readonly index: number,
  ) {
    this.ctl = new Int32Array(buffer, CONTROL_OFFSET, CONTROL_BYTES / 4);
  }

  get leader(): boolean {
    return this.index === 0;
  }

  /** The last barrier of a run: every worker has left the plan; the leader clears the failure flag for the next. */
  finish(): void {
    this.barrier();
    if (this.leader) Atomics.store(this.ctl, FAILED, 0);
  }

  /** The next unclaimed unit of the current phase (≥ the unit count when none is left). */
  claim(): number {
    return Atomics.add(this.ctl, CLAIM, 1);
  }

  fail(): void {
    Atomics.store(this.ctl, FAILED, 1);
  }

  get failed(): boolean {
    return Atomics.load(this.ctl, FAILED) !== 0;
  }

  /** Wait until every worker has arrived. The last to arrive resets the claim counter for the next phase. */
  barrier(): void {
    if (this.size === 1) return void Atomics.store(this.ctl, CLAIM, 0);
    const gen = Atomics.load(this.ctl, GENERATION);
    if (Atomics.add(this.ctl, ARRIVED, 1) === this.size - 1) {
      Atomics.store(this.ctl, ARRIVED, 0);
      Atomics.store(this.ctl, CLAIM, 0);
      Atomics.add(this.ctl, GENERATION, 1);
      Atomics.notify(this.ctl, GENERATION);
      return;
    }
    for (let i = 0; i < SPIN; i++) if (Atomics.load(this.ctl, GENERATION) !== gen) return;
    while (Atomics.load(this.ctl, GENERATION) === gen) Atomics.wait(this.ctl, GENERATION, gen);
  }
}
