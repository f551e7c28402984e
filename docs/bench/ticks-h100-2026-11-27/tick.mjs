// Experiment (node --import tick.mjs …): pace dawn.node's AsyncRunner. While any map or work-done promise is pending
// it calls globalThis.setImmediate(a new native function) every event-loop turn, which calls device.Tick() and queues
// the next. TICK_US > 0: a native no-argument callback runs only once TICK_US have passed since the last one (a plain
// JS closure spins meanwhile). Prints how many such ticks ran at exit.
const orig = globalThis.setImmediate;
const T = Number(process.env.TICK_US ?? 0) / 1000;
let dawnTicks = 0, other = 0, last = 0;
const isDawn = (fn) => fn.name === '' && Function.prototype.toString.call(fn).includes('[native code]');
globalThis.setImmediate = function (fn, ...args) {
  if (args.length === 0 && typeof fn === 'function' && isDawn(fn)) {
    dawnTicks++;
    if (T > 0) {
      const wait = () => (performance.now() - last >= T ? (last = performance.now(), fn()) : orig(wait));
      return orig(wait);
    }
  } else other++;
  return orig(fn, ...args);
};
process.on('exit', () => console.error(JSON.stringify({ dawnTicks, other, T })));
