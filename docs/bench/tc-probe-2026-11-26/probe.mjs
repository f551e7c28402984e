// Issue 12: how fast can WGSL subgroup matrices (Dawn → Vulkan VK_KHR_cooperative_matrix) go on this GPU?
// Standalone (no fury code): times a raw multiply-accumulate loop (no memory traffic) and GEMM variants, each checked
// against the CPU on sampled outputs. usage: node probe.mjs [variant ...]   (env DAWN_TOGGLES adds Dawn toggles)
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const toggles = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia', 'use_vulkan_memory_model'];
if (process.env.DAWN_TOGGLES) toggles.push(...process.env.DAWN_TOGGLES.split(','));
const gpu = create([`enable-dawn-features=${toggles.join(',')}`]);
// keep the instance reachable: once it is collected, dawn.node's threads crash (futex / mutex errors, segfaults)
globalThis.__gpu = gpu;
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
const SGM = 'chromium-experimental-subgroup-matrix';
if (!adapter?.features.has(SGM)) throw new Error(`no ${SGM}`);
console.log('adapter', adapter.info.vendor, adapter.info.architecture, adapter.info.description, 'toggles', toggles.join(','));
console.log('configs', JSON.stringify(adapter.info.subgroupMatrixConfigs));
const L = adapter.limits;
const device = await adapter.requestDevice({
  requiredFeatures: ['shader-f16', 'subgroups', SGM, 'timestamp-query'],
  requiredLimits: {
    maxBufferSize: L.maxBufferSize,
    maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
  },
});
device.addEventListener('uncapturederror', (e) => console.log('GPU ERROR', e.error.message.slice(0, 800)));
const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const f16 = (x) => {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  const s = (u >>> 16) & 0x8000, e = ((u >>> 23) & 0xff) - 112, m = u & 0x7fffff;
  return e <= 0 ? s : s | (e << 10) | (m >>> 13);
};
async function read(b, n) {
  const r = device.createBuffer({ size: n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const e = device.createCommandEncoder();
  e.copyBufferToBuffer(b, 0, r, 0, n);
  device.queue.submit([e.finish()]);
  await r.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(r.getMappedRange().slice(0));
  r.unmap();
  return out;
}
async function pipe(code) {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code });
  const p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const err = await device.popErrorScope();
  if (err) throw new Error(err.message.slice(0, 2000));
  return p;
}
const HEAD = 'enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\n';
const L16 = 'subgroup_matrix_left<f16, 16, 16>', R16 = 'subgroup_matrix_right<f16, 16, 16>';
const ACC = 'subgroup_matrix_result<f32, 16, 16>';
const range = (n) => [...Array(n).keys()];

// Raw multiply-accumulate throughput: each subgroup multiplies register-resident fragments `iter` times into `ni` × `nj`
// accumulators. Every fragment and accumulator starts from its own memory (a compiler cannot merge equal chains).
const mmaOnly = (sgs, ni, nj, iter) => `${HEAD}
@group(0) @binding(0) var<storage, read> A: array<f16>;
@group(0) @binding(1) var<storage, read> B: array<f16>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(${32 * sgs}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_id) sg: u32) {
  let base = (wid.x * ${sgs}u + sg) * ${256 * ni * nj}u;
${range(ni).map((i) => `  let a${i} = subgroupMatrixLoad<${L16}>(&A, ${256 * i}u + sg * 16u, false, 16u);`).join('\n')}
${range(nj).map((j) => `  let b${j} = subgroupMatrixLoad<${R16}>(&B, ${256 * j}u + sg * 16u, false, 16u);`).join('\n')}
${range(ni).flatMap((i) => range(nj).map((j) => `  var c${i}${j} = subgroupMatrixLoad<${ACC}>(&C, base + ${256 * (i * nj + j)}u, false, 16u);`)).join('\n')}
  for (var i = 0u; i < ${iter}u; i++) {
${range(ni).flatMap((i) => range(nj).map((j) => `    c${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}${j});`)).join('\n')}
  }
${range(ni).flatMap((i) => range(nj).map((j) => `  subgroupMatrixStore(&C, base + ${256 * (i * nj + j)}u, c${i}${j}, false, 16u);`)).join('\n')}
}`;

// GEMM C[M][N] = A[M][K] · W[N][K]ᵀ (W as our weights: [out][in], the right side column-major with stride K).
// `global`: fragments straight from the storage buffers; each subgroup a (16 fi) × (16 fj) block, `sr` × `sc` subgroups.
const gemmGlobal = (fi, fj, sr, sc) => ({
  wg: [sc * fj * 16, sr * fi * 16],
  code: (M, N, K) => `${HEAD}
@group(0) @binding(0) var<storage, read> A: array<f16>;
@group(0) @binding(1) var<storage, read> W: array<f16>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(${32 * sr * sc}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_id) sg: u32) {
  let r0 = wid.y * ${sr * fi * 16}u + (sg / ${sc}u) * ${fi * 16}u;
  let c0 = wid.x * ${sc * fj * 16}u + (sg % ${sc}u) * ${fj * 16}u;
${range(fi).flatMap((i) => range(fj).map((j) => `  var m${i}${j} = ${ACC}();`)).join('\n')}
  for (var k = 0u; k < ${K}u; k += 16u) {
${range(fi).map((i) => `    let a${i} = subgroupMatrixLoad<${L16}>(&A, (r0 + ${16 * i}u) * ${K}u + k, false, ${K}u);`).join('\n')}
${range(fj).map((j) => `    let b${j} = subgroupMatrixLoad<${R16}>(&W, (c0 + ${16 * j}u) * ${K}u + k, true, ${K}u);`).join('\n')}
${range(fi).flatMap((i) => range(fj).map((j) => `    m${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, m${i}${j});`)).join('\n')}
  }
${range(fi).flatMap((i) => range(fj).map((j) => `  subgroupMatrixStore(&C, (r0 + ${16 * i}u) * ${N}u + c0 + ${16 * j}u, m${i}${j}, false, ${N}u);`)).join('\n')}
}`,
});

// Staged: a BM × BN tile per workgroup, K steps of BK staged as f16 in workgroup memory (16-byte global loads, the
// next step's loaded into registers while this one multiplies; rows padded by 8 halves), `sr` × `sc` subgroups each
// a (BM/sr) × (BN/sc) block. `wdirect`: the weight fragments straight from the buffer (only A staged).
const gemmStaged = (BM, BN, BK, sr, sc, wdirect = false) => {
  const T = 32 * sr * sc, LD = BK + 8, fi = BM / sr / 16, fj = BN / sc / 16, per = BK / 8;
  const la = (BM * per) / T, lb = (BN * per) / T; // 16-byte loads per thread per step
  return {
    wg: [BN, BM],
    code: (M, N, K) => `${HEAD}
@group(0) @binding(0) var<storage, read> Av: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> Wv: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> W: array<f16>;
var<workgroup> As: array<f16, ${BM * LD}>;
${wdirect ? '' : `var<workgroup> Bs: array<f16, ${BN * LD}>;`}
fn put(o: u32, v: vec4<u32>, b: bool) {
  let h0 = bitcast<vec2<f16>>(v.x); let h1 = bitcast<vec2<f16>>(v.y);
  let h2 = bitcast<vec2<f16>>(v.z); let h3 = bitcast<vec2<f16>>(v.w);
  if (b) {${wdirect ? '' : ' Bs[o] = h0.x; Bs[o + 1u] = h0.y; Bs[o + 2u] = h1.x; Bs[o + 3u] = h1.y; Bs[o + 4u] = h2.x; Bs[o + 5u] = h2.y; Bs[o + 6u] = h3.x; Bs[o + 7u] = h3.y;'} }
  else { As[o] = h0.x; As[o + 1u] = h0.y; As[o + 2u] = h1.x; As[o + 3u] = h1.y; As[o + 4u] = h2.x; As[o + 5u] = h2.y; As[o + 6u] = h3.x; As[o + 7u] = h3.y; }
}
@compute @workgroup_size(${T}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32, @builtin(subgroup_id) sg: u32) {
  let r0 = wid.y * ${BM}u; let c0 = wid.x * ${BN}u;
  let sr0 = (sg / ${sc}u) * ${BM / sr}u; let sc0 = (sg % ${sc}u) * ${BN / sc}u;
${range(fi).flatMap((i) => range(fj).map((j) => `  var m${i}${j} = ${ACC}();`)).join('\n')}
${range(la).map((u) => `  var pa${u} = Av[(r0 + (t + ${u * T}u) / ${per}u) * ${K / 8}u + (t + ${u * T}u) % ${per}u];`).join('\n')}
${wdirect ? '' : range(lb).map((u) => `  var pb${u} = Wv[(c0 + (t + ${u * T}u) / ${per}u) * ${K / 8}u + (t + ${u * T}u) % ${per}u];`).join('\n')}
  for (var k0 = 0u; k0 < ${K}u; k0 += ${BK}u) {
    workgroupBarrier();
${range(la).map((u) => `    put(((t + ${u * T}u) / ${per}u) * ${LD}u + ((t + ${u * T}u) % ${per}u) * 8u, pa${u}, false);`).join('\n')}
${wdirect ? '' : range(lb).map((u) => `    put(((t + ${u * T}u) / ${per}u) * ${LD}u + ((t + ${u * T}u) % ${per}u) * 8u, pb${u}, true);`).join('\n')}
    workgroupBarrier();
    if (k0 + ${BK}u < ${K}u) {
      let kn = (k0 + ${BK}u) / 8u;
${range(la).map((u) => `      pa${u} = Av[(r0 + (t + ${u * T}u) / ${per}u) * ${K / 8}u + kn + (t + ${u * T}u) % ${per}u];`).join('\n')}
${wdirect ? '' : range(lb).map((u) => `      pb${u} = Wv[(c0 + (t + ${u * T}u) / ${per}u) * ${K / 8}u + kn + (t + ${u * T}u) % ${per}u];`).join('\n')}
    }
${range(BK / 16)
  .map(
    (kk) => `    {
${range(fj)
  .map((j) =>
    wdirect
      ? `      let b${j} = subgroupMatrixLoad<${R16}>(&W, (c0 + sc0 + ${16 * j}u) * ${K}u + k0 + ${16 * kk}u, true, ${K}u);`
      : `      let b${j} = subgroupMatrixLoad<${R16}>(&Bs, (sc0 + ${16 * j}u) * ${LD}u + ${16 * kk}u, true, ${LD}u);`,
  )
  .join('\n')}
${range(fi).map((i) => `      let a${i} = subgroupMatrixLoad<${L16}>(&As, (sr0 + ${16 * i}u) * ${LD}u + ${16 * kk}u, false, ${LD}u);`).join('\n')}
${range(fi).flatMap((i) => range(fj).map((j) => `      m${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, m${i}${j});`)).join('\n')}
    }`,
  )
  .join('\n')}
  }
${range(fi).flatMap((i) => range(fj).map((j) => `  subgroupMatrixStore(&C, (r0 + sr0 + ${16 * i}u) * ${N}u + c0 + sc0 + ${16 * j}u, m${i}${j}, false, ${N}u);`)).join('\n')}
}`,
  };
};

// Double-buffered staging: two copies of each tile; step s multiplies from copy s % 2 while the next step's values
// go into the other; one barrier per step.
const gemmStagedDb = (BM, BN, BK, sr, sc) => {
  const T = 32 * sr * sc, LD = BK + 8, fi = BM / sr / 16, fj = BN / sc / 16, per = BK / 8;
  const la = (BM * per) / T, lb = (BN * per) / T;
  const loads = (kexpr) =>
    range(la).map((u) => `pa${u} = Av[(r0 + (t + ${u * T}u) / ${per}u) * ${K8}u + ${kexpr} + (t + ${u * T}u) % ${per}u];`).join(' ') +
    ' ' +
    range(lb).map((u) => `pb${u} = Wv[(c0 + (t + ${u * T}u) / ${per}u) * ${K8}u + ${kexpr} + (t + ${u * T}u) % ${per}u];`).join(' ');
  let K8 = 0;
  const puts = (base) =>
    range(la).map((u) => `put(${base}u * ${BM * LD}u + ((t + ${u * T}u) / ${per}u) * ${LD}u + ((t + ${u * T}u) % ${per}u) * 8u, pa${u}, false);`).join(' ') +
    ' ' +
    range(lb).map((u) => `put(${base}u * ${BN * LD}u + ((t + ${u * T}u) / ${per}u) * ${LD}u + ((t + ${u * T}u) % ${per}u) * 8u, pb${u}, true);`).join(' ');
  return {
    wg: [BN, BM],
    code: (M, N, K) => {
      K8 = K / 8;
      return `${HEAD}
@group(0) @binding(0) var<storage, read> Av: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> Wv: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
var<workgroup> As: array<f16, ${2 * BM * LD}>;
var<workgroup> Bs: array<f16, ${2 * BN * LD}>;
fn put(o: u32, v: vec4<u32>, b: bool) {
  let h0 = bitcast<vec2<f16>>(v.x); let h1 = bitcast<vec2<f16>>(v.y);
  let h2 = bitcast<vec2<f16>>(v.z); let h3 = bitcast<vec2<f16>>(v.w);
  if (b) { Bs[o] = h0.x; Bs[o + 1u] = h0.y; Bs[o + 2u] = h1.x; Bs[o + 3u] = h1.y; Bs[o + 4u] = h2.x; Bs[o + 5u] = h2.y; Bs[o + 6u] = h3.x; Bs[o + 7u] = h3.y; }
  else { As[o] = h0.x; As[o + 1u] = h0.y; As[o + 2u] = h1.x; As[o + 3u] = h1.y; As[o + 4u] = h2.x; As[o + 5u] = h2.y; As[o + 6u] = h3.x; As[o + 7u] = h3.y; }
}
@compute @workgroup_size(${T}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32, @builtin(subgroup_id) sg: u32) {
  let r0 = wid.y * ${BM}u; let c0 = wid.x * ${BN}u;
  let sr0 = (sg / ${sc}u) * ${BM / sr}u; let sc0 = (sg % ${sc}u) * ${BN / sc}u;
${range(fi).flatMap((i) => range(fj).map((j) => `  var m${i}${j} = ${ACC}();`)).join('\n')}
${range(la).map((u) => `  var pa${u}: vec4<u32>;`).join('\n')}
${range(lb).map((u) => `  var pb${u}: vec4<u32>;`).join('\n')}
  ${loads('0u')}
  ${puts(0)}
  if (${BK}u < ${K}u) { ${loads(`${BK / 8}u`)} }
  workgroupBarrier();
  for (var k0 = 0u; k0 < ${K}u; k0 += ${BK}u) {
    let cur = (k0 / ${BK}u) % 2u;
    if (k0 + ${BK}u < ${K}u) {
      if (cur == 0u) { ${puts(1)} } else { ${puts(0)} }
      if (k0 + ${2 * BK}u < ${K}u) { let kn = (k0 + ${2 * BK}u) / 8u; ${loads('kn')} }
    }
    let ab = cur * ${BM * LD}u; let bb = cur * ${BN * LD}u;
${range(BK / 16)
  .map(
    (kk) => `    {
${range(fj).map((j) => `      let b${j} = subgroupMatrixLoad<${R16}>(&Bs, bb + (sc0 + ${16 * j}u) * ${LD}u + ${16 * kk}u, true, ${LD}u);`).join('\n')}
${range(fi).map((i) => `      let a${i} = subgroupMatrixLoad<${L16}>(&As, ab + (sr0 + ${16 * i}u) * ${LD}u + ${16 * kk}u, false, ${LD}u);`).join('\n')}
${range(fi).flatMap((i) => range(fj).map((j) => `      m${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, m${i}${j});`)).join('\n')}
    }`,
  )
  .join('\n')}
    workgroupBarrier();
  }
${range(fi).flatMap((i) => range(fj).map((j) => `  subgroupMatrixStore(&C, (r0 + sr0 + ${16 * i}u) * ${N}u + c0 + sc0 + ${16 * j}u, m${i}${j}, false, ${N}u);`)).join('\n')}
}`;
    },
  };
};

const variants = {
  'global32-1sg': gemmGlobal(2, 2, 1, 1),
  'global32-4sg': gemmGlobal(2, 2, 2, 2),
  'global64-4sg': gemmGlobal(4, 4, 2, 2),
  'staged128x128k32-8sg': gemmStaged(128, 128, 32, 2, 4),
  'staged128x128k64-8sg': gemmStaged(128, 128, 64, 2, 4),
  'staged128x128k32-4sg': gemmStaged(128, 128, 32, 2, 2),
  'staged64x128k32-4sg': gemmStaged(64, 128, 32, 2, 2),
  'staged128x64k64-4sg-wdirect': gemmStaged(128, 64, 64, 2, 2, true),
  'db128x128k32-8sg': gemmStagedDb(128, 128, 32, 2, 4),
  'db128x128k32-4sg': gemmStagedDb(128, 128, 32, 2, 2),
  'db128x256k32-8sg': gemmStagedDb(128, 256, 32, 2, 4),
  'db64x128k64-4sg': gemmStagedDb(64, 128, 64, 2, 2),
};
const shapes = (process.env.SHAPES || '4096x4096x4096,1024x4096x1024').split(',').map((s) => s.split('x').map(Number));
const want = process.argv.slice(2);
const pick = (name) => want.length === 0 || want.some((w) => name === w || (w.endsWith('*') && name.startsWith(w.slice(0, -1))));

// GPU time of one dispatch from timestamps around a pass of `n` dispatches (n chosen so a pass takes ~4 ms); best of 3
const qs = device.createQuerySet({ type: 'timestamp', count: 2 });
const qbuf = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
async function passMs(p, bg, wg, n) {
  const e = device.createCommandEncoder();
  const c = e.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
  c.setPipeline(p);
  c.setBindGroup(0, bg);
  for (let i = 0; i < n; i++) c.dispatchWorkgroups(...wg);
  c.end();
  e.resolveQuerySet(qs, 0, 2, qbuf, 0);
  const r = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  e.copyBufferToBuffer(qbuf, 0, r, 0, 16);
  device.queue.submit([e.finish()]);
  await r.mapAsync(GPUMapMode.READ);
  const [t0, t1] = new BigInt64Array(r.getMappedRange());
  r.unmap();
  r.destroy();
  return Number(t1 - t0) / 1e6 / n;
}
async function gpuMs(p, bg, wg) {
  const one = await passMs(p, bg, wg, 1);
  const n = Math.max(1, Math.min(50, Math.round(4 / Math.max(one, 1e-3))));
  let best = Infinity;
  for (let i = 0; i < 3; i++) best = Math.min(best, await passMs(p, bg, wg, n));
  return best;
}
// ~1.5 s of load first: an idle H100 sits at 345 MHz
async function warm() {
  const b = device.createBuffer({ size: 1 << 26, usage: S });
  const p = await pipe('@group(0) @binding(0) var<storage, read_write> x: array<vec4f>;\n@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u) { for (var i = 0u; i < 64u; i++) { x[g.x] = x[g.x] * 1.0001 + 0.5; } }');
  const bg = device.createBindGroup({ layout: p.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: b } }] });
  const t0 = performance.now();
  while (performance.now() - t0 < 1500) await passMs(p, bg, [16384, 1, 1], 4);
  b.destroy();
}
const results = [];
// raw MMA throughput
if (pick('mma')) {
  const big = device.createBuffer({ size: 1 << 28, usage: S });
  const small = device.createBuffer({ size: 4096, usage: S });
  await warm();
  device.queue.writeBuffer(small, 0, new Uint16Array(range(2048).map(() => f16(Math.random() - 0.5))));
  device.queue.writeBuffer(big, 0, new Float32Array(1 << 25).map(() => Math.random()));
  for (const [sgs, ni, nj] of [[4, 1, 1], [4, 2, 1], [4, 2, 2], [4, 4, 2], [8, 2, 2], [4, 4, 4]]) {
    const iter = 512, wgs = 1056;
    let p;
    try {
      p = await pipe(mmaOnly(sgs, ni, nj, iter));
    } catch (e) {
      console.log(`mma-only ${sgs}x${ni}x${nj}: FAILED ${String(e.message ?? e).slice(0, 1500)}`);
      continue;
    }
    const bg = device.createBindGroup({ layout: p.getBindGroupLayout(0), entries: [small, small, big].map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const ms = await gpuMs(p, bg, [wgs, 1, 1]);
    const tf = (wgs * sgs * ni * nj * iter * 2 * 4096) / ms / 1e9;
    console.log(`mma-only ${sgs} subgroups × ${ni}×${nj} accumulators: ${ms.toFixed(4)} ms = ${tf.toFixed(1)} TFLOP/s`);
    results.push({ variant: `mma-${sgs}sg-${ni}x${nj}`, ms, tflops: tf });
  }
}
for (const [M, N, K] of shapes) {
  const [Ah, Af] = [new Uint16Array(M * K), new Float32Array(M * K)];
  const [Wh, Wf] = [new Uint16Array(N * K), new Float32Array(N * K)];
  const tab = range(129).map((i) => f16((i - 64) / 64));
  for (const [h, f] of [[Ah, Af], [Wh, Wf]])
    for (let i = 0; i < h.length; i++) {
      const q = (Math.random() * 129) | 0;
      f[i] = (q - 64) / 64;
      h[i] = tab[q];
    }
  await warm();
  const Ab = device.createBuffer({ size: Ah.byteLength, usage: S });
  const Wb = device.createBuffer({ size: Wh.byteLength, usage: S });
  const Cb = device.createBuffer({ size: M * N * 4, usage: S });
  device.queue.writeBuffer(Ab, 0, Ah);
  device.queue.writeBuffer(Wb, 0, Wh);
  for (const [name, v] of Object.entries(variants)) {
    if (!pick(name)) continue;
    const tag = `${name} ${M}x${N}x${K}`;
    try {
      const p = await pipe(v.code(M, N, K));
      const used = name.includes('wdirect') ? [0, 2, 3] : [0, 1, 2];
      if (process.env.PRINT) console.log(v.code(M, N, K));
      const bufs = [Ab, Wb, Cb, Wb];
      const bg = device.createBindGroup({
        layout: p.getBindGroupLayout(0),
        entries: used.map((binding) => ({ binding, resource: { buffer: bufs[binding] } })),
      });
      device.queue.writeBuffer(Cb, 0, new Float32Array(M * N));
      const ms = await gpuMs(p, bg, [N / v.wg[0], M / v.wg[1], 1]);
      const C = await read(Cb, M * N * 4);
      let err = 0;
      for (let t = 0; t < 64; t++) {
        const i = (Math.random() * M) | 0, j = (Math.random() * N) | 0;
        let s = 0;
        for (let k = 0; k < K; k++) s += Af[i * K + k] * Wf[j * K + k];
        err = Math.max(err, Math.abs(s - C[i * N + j]));
      }
      const tf = (2 * M * N * K) / ms / 1e9;
      console.log(`${tag}: ${ms.toFixed(3)} ms = ${tf.toFixed(1)} TFLOP/s, max abs err ${err.toExponential(2)}`);
      results.push({ variant: name, M, N, K, ms, tflops: tf, maxAbsErr: err });
    } catch (e) {
      console.log(`${tag}: FAILED ${String(e.message ?? e).slice(0, 1500)}`);
      results.push({ variant: name, M, N, K, failed: String(e.message ?? e).slice(0, 1500) });
    }
  }
}
if (process.env.OUT_JSON) (await import('node:fs')).writeFileSync(process.env.OUT_JSON, JSON.stringify({ toggles, results }, null, 1));
process.exit(0);
