// What a chain of dependent dispatches costs on this GPU through Dawn, in one compute pass (timestamps at the pass's
// ends): an empty kernel, a pure read of B bytes (the shape of a one-row GEMV's weight stream: 16 bytes a load, a
// workgroup sum written), and a read + write of B bytes each (the shape of the 2Mamba state pass).
//   node probe.mjs DIST   → one JSON line per case: µs a dispatch (best of 5 passes of 100 dispatches)
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const dist = path.resolve(process.argv[2] ?? 'dist');
const { openGpu } = await import(pathToFileURL(path.join(dist, 'kernels/webgpu/device.js')).href);
const { device } = await openGpu();
const N = 100, PASSES = 5;
const buf = (bytes) =>
  device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
const src = buf(64 << 20), dst = buf(64 << 20), sums = buf(1 << 20);
device.queue.writeBuffer(src, 0, new Float32Array(16 << 20).fill(1));
const qs = device.createQuerySet({ type: 'timestamp', count: 2 });
const qb = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
const rb = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const kernel = (code) => {
  const p = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
  return p;
};
const WGSL = {
  empty: `@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x == 1u << 30u) { o[0] = 1.0; } }`,
  // each thread U loads of 16 bytes, strided by the grid (coalesced), summed; one float a workgroup
  read: (U) => `@group(0) @binding(0) var<storage, read> s: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let T = nw.x * 256u; let t = wg.x * 256u + l.x;
  var v: array<vec4<u32>, ${U}>;
  for (var u = 0u; u < ${U}u; u++) { v[u] = s[t + u * T]; }
  var a = 0.0;
  for (var u = 0u; u < ${U}u; u++) { a += f32(v[u].x ^ v[u].y ^ v[u].z ^ v[u].w); }
  red[l.x] = a; workgroupBarrier();
  if (l.x == 0u) { var b = 0.0; for (var i = 0u; i < 256u; i++) { b += red[i]; } o[wg.x] = b; }
}`,
  copy: (U) => `@group(0) @binding(0) var<storage, read> s: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> o: array<vec4<f32>>;
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let T = nw.x * 256u; let t = wg.x * 256u + l.x;
  var v: array<vec4<f32>, ${U}>;
  for (var u = 0u; u < ${U}u; u++) { v[u] = s[t + u * T]; }
  for (var u = 0u; u < ${U}u; u++) { o[t + u * T] = v[u] * 0.999; }
}`,
};
async function time(name, pipeline, entries, groups) {
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: entries.map((b, i) => ({ binding: i, resource: { buffer: b } })) });
  let best = Infinity;
  for (let p = 0; p < PASSES + 1; p++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    for (let i = 0; i < N; i++) pass.dispatchWorkgroups(groups);
    pass.end();
    enc.resolveQuerySet(qs, 0, 2, qb, 0);
    enc.copyBufferToBuffer(qb, 0, rb, 0, 16);
    device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const t = new BigInt64Array(rb.getMappedRange().slice(0));
    rb.unmap();
    if (p > 0) best = Math.min(best, Number(t[1] - t[0]) / 1e3 / N);
  }
  console.log(JSON.stringify({ case: name, groups, us_per_dispatch: +best.toFixed(3) }));
  return best;
}
await time('empty 1 wg', kernel(WGSL.empty), [dst], 1);
await time('empty 528 wg', kernel(WGSL.empty), [dst], 528);
for (const MB of [1, 2, 4, 8, 16]) {
  for (const U of [1, 4, 8]) {
    const groups = (MB << 20) / 16 / 256 / U;
    const us = await time(`read ${MB} MB U${U}`, kernel(WGSL.read(U)), [src, sums], groups);
    console.log(JSON.stringify({ case: `read ${MB} MB U${U}`, GBps: +((MB * 1.048576e6) / us / 1e3).toFixed(0) }));
  }
}
for (const MB of [4, 8.5, 17]) {
  for (const U of [1, 4]) {
    const groups = Math.ceil((MB * 1048576) / 16 / 256 / U);
    const us = await time(`copy ${MB}+${MB} MB U${U}`, kernel(WGSL.copy(U)), [src, dst], groups);
    console.log(JSON.stringify({ case: `copy ${MB} MB U${U}`, GBps: +((2 * MB * 1.048576e6) / us / 1e3).toFixed(0) }));
  }
}
device.destroy();
