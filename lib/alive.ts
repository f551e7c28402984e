// Awaiting a worker thread's exit: Worker.terminate()'s promise does not keep the event loop alive by itself (node 20:
// the loop may empty — a test run "cancelled", a CLI exiting early — before the worker's exit is reported).

/** Await `work` with a timer holding the event loop open until it settles. */
export async function keepAlive<T>(work: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1 << 30);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
