// Awaiting a worker thread's exit: Worker.terminate()'s promise does not keep the event loop alive by itself (node 20:
// the loop may empty — a test run "cancelled", a CLI exiting early — before the worker's exit is reported).

/** Await `work` with a timer holding the event loop open until it settles, or for at most `limitMs` (then resolve
 *  undefined: a worker that will not exit must not keep the process alive forever). */
export async function keepAlive<T>(work: Promise<T>, limitMs = 10_000): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), limitMs);
  });
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}
