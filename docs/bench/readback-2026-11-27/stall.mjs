// How long a large readback holds the event loop: the small preset's 2Mamba state snapshot (173,301,760 bytes) read
// back by readMany five times while an event-loop ticker records the longest gap between its turns; the data checked.
//   FURY_READBACK_CHUNK_BYTES=0 node stall.mjs DIST   (one copy)  ·  node stall.mjs DIST   (the default pieces)
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const dist = path.resolve(process.argv[2] ?? 'dist');
const { WebGpuBackend } = await import(pathToFileURL(path.join(dist, 'kernels/webgpu/backend.js')).href);
const be = await WebGpuBackend.open({ matrices: 'off' });
// two buffers of half the bytes each (lavapipe binds at most 128 MiB; a snapshot is several buffers' slices anyway)
const n = 173301760 / 8;
const v = new Float32Array(n);
for (let i = 0; i < n; i++) v[i] = (i % 1000003) * 0.5;
for (const b of ['s0', 's1']) {
  be.create(b, n, { role: 'state' });
  be.write(b, v, 0);
}
await be.read('s0', 0, 4);
let gap = 0, last = performance.now(), on = true;
const tick = () => {
  const now = performance.now();
  gap = Math.max(gap, now - last);
  last = now;
  if (on) setImmediate(tick);
};
const out = [];
for (let r = 0; r < 5; r++) {
  gap = 0;
  last = performance.now();
  on = true;
  setImmediate(tick);
  const t0 = performance.now();
  const got = await be.readMany(['s0', 's1'].map((name) => ({ name, offset: 0, count: n })));
  const ms = performance.now() - t0;
  await new Promise((res) => setImmediate(res)); // the ticker's turn after the read (a gap that ends with it counts)
  on = false;
  let ok = got.every((g) => g.length === n);
  for (let i = 0; ok && i < n; i += 9973) ok = got[0][i] === v[i] && got[1][i] === v[i];
  out.push({ read_ms: +ms.toFixed(1), longest_event_loop_gap_ms: +gap.toFixed(1), ok });
}
console.log(JSON.stringify({ adapter: be.info.description, chunk: process.env.FURY_READBACK_CHUNK_BYTES ?? 'default', runs: out, yields: be.readbackYields }));
await be.destroy();
