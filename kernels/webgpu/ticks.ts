// Paces dawn.node's device ticks. While any WebGPU promise is pending (every decode step's token readback is),
// dawn.node's AsyncRunner calls `globalThis.setImmediate(f)` with a new native function f every event-loop turn; f
// ticks the device and queues the next (src/dawn/node/binding/AsyncRunner.cpp, "TODO: Create once, reuse"). On the
// H100 host that was ~450k functions over a 300-step decode run, each with a finalizer: they outlive scavenges, and the
// mark-compacts that follow stalled the batch-32 decode loop by 17–39 ms at a time (docs/perf.md, "Pacing dawn.node's
// ticks"). Here such a native callback runs only once `us` microseconds have passed since the last one; a plain JS
// closure (no finalizer) spins the event loop meanwhile, so I/O is served as before and a finished readback is seen at
// most `us` later.
let installed: { us: number } | null = null;
let last = 0;
/** Native callbacks paced so far (dawn.node's ticks): tests check that they are recognised at all. */
export let dawnTicks = 0;

/** A function a native addon made from a template (dawn.node's tick: no name, no parameters, a prototype). JS closures
 *  and bound functions never match, nor V8's own anonymous built-ins such as a promise's resolve function (one
 *  parameter, no prototype), which `await new Promise((r) => setImmediate(r))` passes. */
const isNative = (f: unknown): f is () => void =>
  typeof f === 'function' &&
  f.name === '' &&
  f.length === 0 &&
  Object.hasOwn(f, 'prototype') &&
  Function.prototype.toString.call(f).includes('[native code]');

/** Pace dawn.node's ticks to at most one per `us` microseconds, process-wide (0: leave setImmediate alone). Once. */
export function paceDawnTicks(us: number): void {
  if (installed || us <= 0) return;
  installed = { us };
  const orig = globalThis.setImmediate,
    ms = us / 1000;
  const paced = function (this: unknown, f: (...a: unknown[]) => void, ...args: unknown[]) {
    if (args.length > 0 || !isNative(f)) return orig(f, ...args);
    dawnTicks++;
    const wait = (): void => {
      const now = performance.now();
      if (now - last >= ms) {
        last = now;
        f();
      } else orig(wait);
    };
    return orig(wait);
  } as typeof setImmediate;
  // keep what hangs off the original (util.promisify's custom form among it)
  for (const k of Reflect.ownKeys(orig)) {
    if (k !== 'length' && k !== 'name' && k !== 'prototype')
      Object.defineProperty(paced, k, Object.getOwnPropertyDescriptor(orig, k)!);
  }
  globalThis.setImmediate = paced;
}

/** The pacing in force (null: none). */
export const dawnTickPacing = (): { us: number } | null => installed;
