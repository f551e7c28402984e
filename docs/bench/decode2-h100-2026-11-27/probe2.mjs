// One-row GEMV designs on cold weights: out[n] = rsqrt(mean x² + eps) · Σ_k W[n, k] x[k] w_norm[k] (the [gate | up]
// projection's shape: N 4096, K 1024, f16 weights), 100 dispatches in one pass, each on the next of 20 weight buffers
// (160 MB: none left in L2), timestamps at the pass's ends. Cases: a pure read of the same bytes; fury's matmul
// kernel as it runs (and with its row count taken as 1, no step-meta read); candidate kernels (TL lanes along K per
// column, C columns a thread, WGS threads).   node probe2.mjs DIST → one JSON line per case
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const dist = path.resolve(process.argv[2] ?? 'dist');
const imp = (p) => import(pathToFileURL(path.join(dist, p)).href);
const { openGpu } = await imp('kernels/webgpu/device.js');
const { matmulFamily, MATMUL_PARAMS } = await imp('kernels/webgpu/wgsl/matmul.js');
const { device } = await openGpu();
const SHAPES = (process.env.SHAPES ?? '4096x1024,1024x2048,3088x1024,1024x1024').split(',').map((s) => s.split('x').map(Number));
const NB = 20, N_DISP = 100, PASSES = 4;
const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const mk = (bytes, usage = S) => device.createBuffer({ size: Math.max(16, bytes), usage });
const rnd = (n) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const qs = device.createQuerySet({ type: 'timestamp', count: 2 });
const qb = mk(16, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC);
const rb = mk(16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
const meta = mk(256);
device.queue.writeBuffer(meta, 0, Uint32Array.from([1, 1, 64, 64, 64, 64, 0, 0, 0, 8192, 1, 0, 0, 0]));

// a candidate: C columns a thread, TL lanes along K per column (loads of 8 halves), WGS threads; K baked in
const cand = (K, TL, C, WGS) => {
  const K8 = K / 8, J = K8 / TL, CPW = (WGS / TL) * C;
  return { cols: CPW, code: `struct P { K: u32, N: u32, add: u32, perSeq: u32, eps: f32 }
@group(0) @binding(0) var<uniform> prm: P;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> outp: array<f32>;
@group(0) @binding(5) var<storage, read> nw: array<vec4<f32>>;
var<workgroup> red: array<f32, ${WGS * C}>;
var<workgroup> redss: array<f32, ${TL}>;
fn h8(q: vec4<u32>, lo: vec4<f32>, hi: vec4<f32>) -> f32 {
  return dot(vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y)), lo) + dot(vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w)), hi);
}
@compute @workgroup_size(${WGS}) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let lane = l.x % ${TL}u; let g = l.x / ${TL}u; let N = prm.N;
  let c0 = wg.x * ${CPW}u + g * ${C}u;
  var wv: array<vec4<u32>, ${C * J}>;
  for (var b = 0u; b < ${C}u; b++) { for (var j = 0u; j < ${J}u; j++) { wv[b * ${J}u + j] = w[min(c0 + b, N - 1u) * ${K8}u + lane + j * ${TL}u]; } }
  var xl: array<vec4<f32>, ${J}>; var xh: array<vec4<f32>, ${J}>;
  var ss = 0.0;
  for (var j = 0u; j < ${J}u; j++) {
    let k8 = lane + j * ${TL}u;
    let lo = x[2u * k8]; let hi = x[2u * k8 + 1u];
    ss += dot(lo, lo) + dot(hi, hi);
    xl[j] = lo * nw[2u * k8]; xh[j] = hi * nw[2u * k8 + 1u];
  }
  for (var b = 0u; b < ${C}u; b++) {
    var a = 0.0;
    for (var j = 0u; j < ${J}u; j++) { a += h8(wv[b * ${J}u + j], xl[j], xh[j]); }
    red[b * ${WGS}u + l.x] = a;
  }
  if (g == 0u) { redss[lane] = ss; }
  workgroupBarrier();
  // tree over the TL lanes of each column
  for (var s = ${TL / 2}u; s > 0u; s >>= 1u) {
    if (lane < s) { for (var b = 0u; b < ${C}u; b++) { red[b * ${WGS}u + l.x] += red[b * ${WGS}u + l.x + s]; } if (g == 0u) { redss[lane] += redss[lane + s]; } }
    workgroupBarrier();
  }
  if (lane < ${C}u) {
    let c = c0 + lane;
    if (c < N) { outp[c] = red[lane * ${WGS}u + g * ${TL}u] / sqrt(redss[0] / f32(${K}u) + prm.eps); }
  }
}` };
};

async function time(name, code, N, K, cols, extra = {}) {
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const errs = info.messages.filter((m) => m.type === 'error');
  if (errs.length) { console.log(JSON.stringify({ case: name, error: errs[0].message })); return; }
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const params = mk(64, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(params, 0, MATMUL_PARAMS.pack({ K, N, add: 0, perSeq: 0, eps: 1e-5 }));
  const x = mk(K * 4), nw = mk(K * 4), out = mk(N * 4 * 2);
  device.queue.writeBuffer(x, 0, rnd(K)); device.queue.writeBuffer(nw, 0, rnd(K));
  const ws = Array.from({ length: NB }, () => mk(N * K * 2));
  for (const b of ws.slice(1)) device.queue.writeBuffer(b, 0, new Uint16Array(N * K).fill(0x3c00));
  device.queue.writeBuffer(ws[0], 0, W0.h.subarray(0, N * K));
  const layout = pipeline.getBindGroupLayout(0);
  const used = new Set([...code.matchAll(/@binding\((\d)\)/g)].map((m) => Number(m[1])));
  const bgs = ws.map((wb) => device.createBindGroup({ layout, entries: [[0, params], [1, meta], [2, wb], [3, x], [4, out], [5, nw]].filter(([i]) => used.has(i)).map(([binding, buffer]) => ({ binding, resource: { buffer } })) }));
  const groups = Math.ceil(N / cols);
  let err = null;
  if (!extra.noCheck) {
    const enc = device.createCommandEncoder(), pass = enc.beginComputePass();
    pass.setPipeline(pipeline); pass.setBindGroup(0, bgs[0]); pass.dispatchWorkgroups(groups); pass.end();
    const rd = mk(N * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    enc.copyBufferToBuffer(out, 0, rd, 0, N * 4); device.queue.submit([enc.finish()]);
    await rd.mapAsync(GPUMapMode.READ);
    const got = new Float32Array(rd.getMappedRange().slice(0)); rd.destroy();
    const xs = new Float32Array(K); await readInto(x, xs); const ns = new Float32Array(K); await readInto(nw, ns);
    let ss = 0; for (let k = 0; k < K; k++) ss += xs[k] * xs[k];
    const sc = 1 / Math.sqrt(ss / K + 1e-5);
    err = 0;
    for (let c = 0; c < N; c++) { let a = 0; for (let k = 0; k < K; k++) a += W0.f[c * K + k] * xs[k] * ns[k]; err = Math.max(err, Math.abs(a * sc - got[c]) / (1 + Math.abs(a * sc))); }
    err = +err.toExponential(2);
  }
  let best = Infinity;
  for (let p = 0; p < PASSES + 1; p++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    pass.setPipeline(pipeline);
    for (let i = 0; i < N_DISP; i++) { pass.setBindGroup(0, bgs[i % NB]); pass.dispatchWorkgroups(groups); }
    pass.end();
    enc.resolveQuerySet(qs, 0, 2, qb, 0);
    enc.copyBufferToBuffer(qb, 0, rb, 0, 16);
    device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const t = new BigInt64Array(rb.getMappedRange().slice(0));
    rb.unmap();
    if (p > 0) best = Math.min(best, Number(t[1] - t[0]) / 1e3 / N_DISP);
  }
  for (const b of [params, x, nw, out, ...ws]) b.destroy();
  console.log(JSON.stringify({ case: name, N, K, groups, us: +best.toFixed(2), err, GBps: Math.round((N * K * 2) / best / 1e3) }));
}

const { f16ToF32 } = await imp('lib/f16.js');
const MAXW = Math.max(...SHAPES.map(([N, K]) => N * K));
const W0 = { h: new Uint16Array(MAXW), f: new Float32Array(MAXW) };
for (let i = 0; i < MAXW; i++) { W0.h[i] = 0x3000 + Math.floor(Math.random() * 0x1000) + (Math.random() < 0.5 ? 0x8000 : 0); W0.f[i] = f16ToF32(W0.h[i]); }
async function readInto(buf, arr) {
  const rd = mk(arr.byteLength, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  const enc = device.createCommandEncoder(); enc.copyBufferToBuffer(buf, 0, rd, 0, arr.byteLength); device.queue.submit([enc.finish()]);
  await rd.mapAsync(GPUMapMode.READ); arr.set(new Float32Array(rd.getMappedRange().slice(0))); rd.destroy();
}
const fury = matmulFamily.variants([64], { matrices: 'off', workgroupBytes: 32768 })
  .find(([k, v]) => k.name === 'matmul' && v.dtype === 'f16' && v.pro === 'norm' && !v.conv && v.shape.R === 1);
const [fk, fv] = fury;
const furyCode = fk.source(fv);
const furyCols = fv.shape.C * fv.shape.CG;
const readCode = (U) => `@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> outp: array<f32>;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let T = nw.x * 256u; let t = wg.x * 256u + l.x;
  var v: array<vec4<u32>, ${U}>;
  for (var u = 0u; u < ${U}u; u++) { v[u] = w[t + u * T]; }
  var a = 0.0;
  for (var u = 0u; u < ${U}u; u++) { a += f32(v[u].x ^ v[u].y ^ v[u].z ^ v[u].w); }
  red[l.x] = a; workgroupBarrier();
  if (l.x == 0u) { var b = 0.0; for (var i = 0u; i < 256u; i++) { b += red[i]; } outp[wg.x] = b; }
}`;
for (const [N, K] of SHAPES) {
  const K8 = K / 8;
  for (const U of [4, 8]) await time(`read U${U}`, readCode(U), N, K, (256 * U * 8) / K, { noCheck: true });
  await time('fury matmul', furyCode, N, K, furyCols);
  await time('fury matmul, rows 1', furyCode.replace('let Rt = rows();', 'let Rt = 1u + 0u * arrayLength(&stepMeta);'), N, K, furyCols);
  for (const [TL, C, WGS] of [[32, 1, 256], [32, 2, 256], [32, 4, 256], [64, 1, 256], [64, 2, 256], [64, 2, 128], [128, 1, 256], [128, 2, 256], [16, 2, 256], [16, 4, 256]]) {
    if (K8 % TL) continue;
    const c = cand(K, TL, C, WGS);
    await time(`cand TL${TL} C${C} WGS${WGS}`, c.code, N, K, c.cols);
  }
}
device.destroy();
