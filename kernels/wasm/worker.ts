// A worker of the fast CPU backend: instantiates the kernels over the shared memory and runs each Plan it is sent in
// lockstep with the other workers (kernels/wasm/team.ts); the leader (worker 0) reports the end of each run.
import { parentPort } from 'node:worker_threads';
import type { Step } from '../backend.js';
import type { Arr, CpuBuffers } from '../cpu/common.js';
import type { Op } from '../ops.js';
import { phases, type Ctx } from './ops.js';
import { viewOf, type FromWorker, type Kernels, type Scratch, type Slot, type ToWorker } from './protocol.js';
import { Team } from './team.js';

const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

let memory: WebAssembly.Memory;
let kernels: Kernels;
let team: Team;
const plans = new Map<number, Op[]>();
let table: Record<string, Slot> = {};
/** Typed views of the buffers, rebuilt when the table changes (a view stays valid when the memory grows). */
let views = new Map<string, Arr>();

function view(name: string): Arr {
  let v = views.get(name);
  if (v) return v;
  const s = table[name];
  if (!s) throw new Error(`cpu backend: no buffer "${name}"`);
  v = viewOf(memory.buffer, s);
  views.set(name, v);
  return v;
}

function buffers(scratch: Scratch): CpuBuffers {
  return {
    get: view,
    f32(name) {
      const v = view(name);
      if (!(v instanceof Float32Array)) throw new Error(`cpu backend: buffer "${name}" is not f32`);
      return v;
    },
    temp(n) {
      if (n * 4 > scratch.tempBytes)
        throw new RangeError(`cpu backend: ${n} scratch values, ${scratch.tempBytes} bytes`);
      return new Float32Array(memory.buffer, scratch.temp, n);
    },
  };
}

function rowStarts(step: Step): number[] {
  let r = 0;
  return step.seqs.map((s) => ((r += s.rows), r - s.rows));
}

/** Run one phase body, turning an exception into the team's failure flag and an error message to the main side. */
function guard(id: number, f: () => void): void {
  try {
    f();
  } catch (e) {
    team.fail();
    post({ type: 'error', id, message: (e as Error).message ?? String(e) });
  }
}

function run(m: Extract<ToWorker, { type: 'run' }>): void {
  if (m.ops) plans.set(m.plan, m.ops);
  if (m.table) table = m.table;
  if (m.table) views = new Map();
  const ops = plans.get(m.plan)!;
  const ctx: Ctx = {
    bufs: buffers(m.scratch),
    k: kernels,
    ptr: (name) => view(name).byteOffset,
    i32: (offset, length) => new Int32Array(memory.buffer, offset, length),
    temp: m.scratch.temp,
    scratch: m.scratch.workers[team.index]!,
    step: m.step,
    rows: m.step.seqs.reduce((s, q) => s + q.rows, 0),
    rowStart: rowStarts(m.step),
  };
  for (const op of ops) {
    let ph: ReturnType<typeof phases> | undefined;
    guard(m.id, () => (ph = phases(ctx, op)));
    if (ph?.serial) {
      if (team.leader) guard(m.id, ph.serial);
      team.barrier();
    }
    if (ph && !team.failed) {
      for (let i = team.claim(); i < ph.units; i = team.claim()) {
        guard(m.id, () => ph!.unit(i));
        if (team.failed) break;
      }
    }
    team.barrier();
    if (team.failed) break;
  }
  const failed = team.failed;
  team.finish();
  if (team.leader) post({ type: 'done', id: m.id, failed });
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'init') {
    memory = m.memory;
    kernels = new WebAssembly.Instance(m.module, { env: { memory } }).exports as unknown as Kernels;
    team = new Team(memory.buffer as unknown as SharedArrayBuffer, m.size, m.index);
    post({ type: 'ready' });
  } else run(m);
});
