// dawn.node's device ticks paced (kernels/webgpu/ticks.ts): readbacks still resolve, dawn.node's native tick callbacks
// are recognised (were they not, the pacing would be inert and this fails: a newer dawn.node may tick otherwise) and run
// at most once per FURY_DAWN_TICK_US (default 25 µs; unpaced they ran every ~5 µs on lavapipe), and every other
// setImmediate use behaves as Node's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import { openGpu, type Gpu } from '../../kernels/webgpu/device.js';
import { dawnTicks, dawnTickPacing } from '../../kernels/webgpu/ticks.js';
import { DAWN_TICK_US } from '../../kernels/webgpu/tuning.js';

let gpu: Gpu | null = null,
  why = '';
try {
  gpu = await openGpu();
} catch (e) {
  why = (e as Error).message;
  if (process.env.CI) throw e; // in CI a missing adapter is a failure, not a skip
}
const skip = gpu ? false : `no WebGPU adapter: ${why}`;

test(
  'readbacks resolve under paced ticks, and the ticks are paced',
  { skip: skip || (DAWN_TICK_US === 0 && 'FURY_DAWN_TICK_US=0') },
  async () => {
    assert.deepEqual(dawnTickPacing(), { us: DAWN_TICK_US });
    const { device } = gpu!;
    // each readback waits behind a 32 MiB copy (milliseconds on lavapipe): unpaced ticks would far outnumber paced
    const big = 32 << 20,
      src = device.createBuffer({ size: big, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }),
      mid = device.createBuffer({ size: big, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }),
      dst = device.createBuffer({ size: 256, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    const n = 12,
      t0 = performance.now(),
      k0 = dawnTicks;
    let waited = 0;
    for (let i = 0; i < n; i++) {
      const v = new Uint32Array(64).fill(i * 7919 + 1);
      device.queue.writeBuffer(src, 0, v);
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, mid, 0, big);
      enc.copyBufferToBuffer(mid, 0, dst, 0, 256);
      device.queue.submit([enc.finish()]);
      const w = performance.now();
      await dst.mapAsync(GPUMapMode.READ);
      waited += performance.now() - w;
      assert.deepEqual(new Uint32Array(dst.getMappedRange().slice(0)), v);
      dst.unmap();
    }
    const ms = performance.now() - t0,
      ticks = dawnTicks - k0;
    assert.ok(ticks > 0, 'no dawn.node tick was recognised: the pacing is inert');
    // one tick chain (two for a moment where a promise begins as the last one ends): at most one tick per us, plus
    // each readback's first
    const bound = (ms * 1000) / DAWN_TICK_US + 2 * n + 10;
    assert.ok(
      ticks <= bound,
      `${ticks} ticks in ${ms.toFixed(1)} ms (${waited.toFixed(1)} waiting), over ${bound.toFixed(0)}`,
    );
    for (const b of [src, mid, dst]) b.destroy();
  },
);

test("setImmediate's other uses are Node's own: arguments, clearImmediate, util.promisify", { skip }, async () => {
  const got = await new Promise((res) => setImmediate((a: number, b: string) => res([a, b]), 3, 'x'));
  assert.deepEqual(got, [3, 'x']);
  let ran = false;
  clearImmediate(setImmediate(() => (ran = true)));
  await new Promise((res) => setImmediate(res));
  assert.equal(ran, false);
  assert.equal(await promisify(setImmediate)('v'), 'v');
  // a promise's resolve function (anonymous and native too, as the step loop's yield passes it) is not a device tick
  const k0 = dawnTicks;
  for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
  assert.equal(dawnTicks - k0, 0, 'promise resolvers counted as dawn.node ticks');
});
