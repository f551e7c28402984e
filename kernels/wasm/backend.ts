// The fast CPU backend: every buffer lives in one shared WebAssembly memory; a team of worker threads runs each Plan
// (matmul and mamba2 in WebAssembly SIMD, kernels/wasm/as/; the rest the reference code), so the calling thread —
// the server's event loop — never computes. Calls are applied in order: a write, read or copy issued while a run is
// in flight waits for it.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { keepAlive } from '../../lib/alive.js';
import { type Backend, type BufferOptions, type BufferRole, type Plan, type Step, totalRows } from '../backend.js';
import type { Op } from '../ops.js';
import { scratchNeeds } from './ops.js';
import {
  slotBytes,
  viewOf,
  type FromWorker,
  type Kernels,
  type Scratch,
  type Slot,
  type ToWorker,
} from './protocol.js';
import { CONTROL_BYTES, CONTROL_OFFSET } from './team.js';

const PAGE = 65536;
/** The first buffer's offset: below it the module's static data and the team's control words. */
const FIRST = 64 * 1024;
/** A 32-bit WebAssembly memory holds at most 4 GiB. */
export const MAX_BYTES = 65536 * PAGE;
const ALIGN = 64;

interface Pending {
  resolve(): void;
  reject(e: Error): void;
  failed?: boolean;
  message?: string;
}

export class WasmBackend implements Backend {
  readonly name = 'cpu';
  readonly limits = { bufferBytes: MAX_BYTES - FIRST, totalBytes: MAX_BYTES - FIRST, weightBytesPerValue: 4 };
  private slots = new Map<string, Slot & { role: BufferRole }>();
  private top = FIRST;
  private tableSent = false;
  private plans = new WeakMap<Plan, number>();
  private nextPlan = 0;
  private nextRun = 0;
  private pending = new Map<number, Pending>();
  /** Work queued behind the run in flight: writes, reads and copies keep their order with runs. */
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private broken: Error | null = null;
  private scratch: Scratch = { temp: 0, tempBytes: 0, workers: [], workerBytes: 0 };

  private constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly kernels: Kernels,
    private readonly workers: Worker[],
  ) {
    for (const w of workers) {
      w.on('message', (m: FromWorker) => this.onMessage(m));
      w.on('error', (e) => this.fail(new Error(`the CPU backend's worker failed: ${e.message}`)));
      w.on('exit', (code) => this.fail(new Error(`the CPU backend's worker exited (code ${code})`)));
      w.unref();
    }
  }

  /** Threads: one per core by default. */
  static async open({ threads = availableParallelism() }: { threads?: number } = {}): Promise<WasmBackend> {
    const module = await WebAssembly.compile(readFileSync(new URL('./kernels.wasm', import.meta.url)));
    const memory = new WebAssembly.Memory({ initial: FIRST / PAGE, maximum: MAX_BYTES / PAGE, shared: true });
    const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Kernels;
    new Int32Array(memory.buffer, CONTROL_OFFSET, CONTROL_BYTES / 4).fill(0);
    const size = Math.max(1, Math.floor(threads));
    const workers = await Promise.all(
      Array.from({ length: size }, async (_, index) => {
        const w = new Worker(new URL('./worker.js', import.meta.url));
        const ready = new Promise<void>((resolve, reject) => {
          w.once('message', () => resolve());
          w.once('error', reject);
        });
        w.postMessage({ type: 'init', module, memory, index, size } satisfies ToWorker);
        await ready;
        return w;
      }),
    );
    return new WasmBackend(memory, kernels, workers);
  }

  private alloc(bytes: number): number {
    const offset = Math.ceil(this.top / ALIGN) * ALIGN,
      end = offset + bytes;
    if (end > MAX_BYTES)
      throw new RangeError(
        `the CPU backend holds at most 4 GiB (a 32-bit WebAssembly memory); ${end} bytes asked: lower --memory-budget`,
      );
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return offset;
  }

  private view(s: Slot) {
    return viewOf(this.memory.buffer, s);
  }

  private slot(name: string) {
    const s = this.slots.get(name);
    if (!s) throw new Error(`cpu backend: no buffer "${name}"`);
    return s;
  }

  /** Weights are held in f32 whatever their storage dtype (the values given are already representable in it). */
  create(name: string, elements: number, { kind = 'f32', init, role = 'act' }: BufferOptions = {}): void {
    const s = { offset: 0, length: elements, kind, role };
    const old = this.slots.get(name);
    s.offset = old && slotBytes(old) >= slotBytes(s) ? old.offset : this.alloc(slotBytes(s));
    if (init && init.length !== elements)
      throw new RangeError(`create ${name}: ${init.length} initial values for ${elements} elements`);
    this.slots.set(name, s);
    this.tableSent = false;
    this.apply(() => {
      const v = this.view(s);
      if (init) v.set(init);
      else v.fill(0);
    });
  }

  has(name: string): boolean {
    return this.slots.has(name);
  }

  size(name: string): number {
    return this.slot(name).length;
  }

  bytes(role?: BufferRole): number {
    let n = 0;
    for (const s of this.slots.values()) if (role === undefined || s.role === role) n += slotBytes(s);
    return n;
  }

  bufferBytes(name: string): number {
    return slotBytes(this.slot(name));
  }

  /** Apply f now when nothing is in flight, else after what is queued (f must not read caller-owned data later). */
  private apply(f: () => void): void {
    if (this.queued === 0) return f();
    this.enqueue(async () => f());
  }

  private enqueue<T>(f: () => Promise<T>): Promise<T> {
    this.queued++;
    const p = this.tail.then(() => {
      if (this.broken) throw this.broken;
      return f();
    });
    this.tail = p.then(
      () => void this.queued--,
      () => void this.queued--,
    );
    // the caller may await a read issued ahead of time only later (pipelined steps): a failure meanwhile must not
    // count as unhandled and take the process down; the caller still gets the rejection when it awaits
    p.catch(() => {});
    return p;
  }

  write(name: string, data: ArrayLike<number>, offset = 0): void {
    const s = this.slot(name);
    if (offset + data.length > s.length)
      throw new RangeError(`write ${name}: ${offset}+${data.length} exceeds ${s.length}`);
    const copy = this.queued === 0 ? data : Array.from(data);
    this.apply(() => this.view(s).set(copy, offset));
  }

  read(name: string, offset = 0, count?: number): Promise<Float32Array> {
    const s = this.slot(name);
    return this.enqueue(async () =>
      Float32Array.from(this.view(s).subarray(offset, count === undefined ? s.length : offset + count)),
    );
  }

  copyWithin(name: string, src: number, dst: number, count: number): void {
    const s = this.slot(name);
    this.apply(() => this.view(s).copyWithin(dst, src, src + count));
  }

  /** Grow the shared prologue block and the per-worker blocks to what this run needs. */
  private ensureScratch(need: { temp: number; worker: number }): void {
    const sc = this.scratch;
    if (need.temp * 4 > sc.tempBytes) {
      sc.tempBytes = Math.max(need.temp * 4, 2 * sc.tempBytes);
      sc.temp = this.alloc(sc.tempBytes);
    }
    if (need.worker > sc.workerBytes) {
      sc.workerBytes = need.worker;
      sc.workers = this.workers.map(() => this.alloc(need.worker));
    }
  }

  /** The step is copied now: the caller may change its sequences' pages before the run starts. */
  run(plan: Plan, step: Step): Promise<void> {
    const now: Step = { seqs: step.seqs.map((s) => ({ ...s, pages: [...s.pages] })) };
    return this.enqueue(() => this.start(plan, now));
  }

  private start(plan: Plan, step: Step): Promise<void> {
    let planId = this.plans.get(plan),
      ops: Op[] | undefined;
    if (planId === undefined) {
      planId = this.nextPlan++;
      this.plans.set(plan, planId);
      ops = [...plan.ops];
    }
    this.ensureScratch(scratchNeeds(plan.ops, step, totalRows(step), this.kernels));
    const table = this.tableSent ? undefined : Object.fromEntries(this.slots);
    this.tableSent = true;
    const id = this.nextRun++;
    const msg: ToWorker = {
      type: 'run',
      id,
      plan: planId,
      ops,
      table,
      step,
      scratch: { ...this.scratch },
    };
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      for (const w of this.workers) {
        w.ref();
        w.postMessage(msg);
      }
    }).finally(() => {
      for (const w of this.workers) w.unref();
    });
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'ready') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'error') {
      p.message ??= m.message;
      if (p.failed) this.settle(m.id, new Error(p.message));
    } else if (!m.failed) this.settle(m.id);
    else if (p.message !== undefined) this.settle(m.id, new Error(p.message));
    else p.failed = true;
  }

  private settle(id: number, error?: Error): void {
    const p = this.pending.get(id)!;
    this.pending.delete(id);
    if (error) p.reject(error);
    else p.resolve();
  }

  private fail(e: Error): void {
    if (this.broken) return;
    this.broken = e;
    for (const id of [...this.pending.keys()]) this.settle(id, e);
  }

  async destroy(): Promise<void> {
    this.fail(new Error('the CPU backend was closed'));
    await keepAlive(Promise.all(this.workers.map((w) => w.terminate())));
    this.slots.clear();
  }
}
