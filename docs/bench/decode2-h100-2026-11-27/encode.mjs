// What the host pays a dispatch in Dawn: 100 launches (setPipeline, setBindGroup of 4 buffers, dispatchWorkgroups)
// encoded into one pass, with and without the submit (Dawn turns its commands into Vulkan there).
//   node encode.mjs DIST
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const { openGpu } = await import(pathToFileURL(path.join(path.resolve(process.argv[2] ?? 'dist'), 'kernels/webgpu/device.js')).href);
const { device } = await openGpu();
const mk = () => device.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE });
const bufs = Array.from({ length: 8 }, mk);
const code = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<storage, read> d: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x == 0xffffffu) { a[0] = b[0] + c[0] + d[0]; } }`;
const pipes = Array.from({ length: 5 }, () => device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } }));
const groups = Array.from({ length: 100 }, (_, i) => device.createBindGroup({ layout: pipes[i % 5].getBindGroupLayout(0), entries: [0, 1, 2, 3].map((j) => ({ binding: j, resource: { buffer: bufs[(i + j) % 8] } })) }));
for (const mode of ['encode only', 'encode + submit']) {
  let best = Infinity;
  for (let rep = 0; rep < 30; rep++) {
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < 100; i++) { pass.setPipeline(pipes[i % 5]); pass.setBindGroup(0, groups[i]); pass.dispatchWorkgroups(1, 1, 1); }
    pass.end();
    const cb = enc.finish();
    if (mode !== 'encode only') device.queue.submit([cb]);
    best = Math.min(best, performance.now() - t0);
    if (mode !== 'encode only') await device.queue.onSubmittedWorkDone();
  }
  console.log(mode, (best * 1000 / 100).toFixed(2), 'µs a dispatch (best of 30)');
}
process.exit(0);
