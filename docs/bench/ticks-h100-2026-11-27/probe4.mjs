// What a persistent kernel would save at batch-1 decode: a chain of L MLP blocks of one row (x → h = A·x, A: 4096 × 1024;
// g = silu(h[:2048]) · h[2048:]; x ← B·g + x, B: 1024 × 2048; f16 weights, every layer's own, 240 MB for L = 20: cold
// from DRAM), run (a) as 2L dependent dispatches in one pass, as fury runs a step today, and (b) as ONE dispatch of G
// workgroups that walk the same 2L phases, handing x and h from phase to phase through storage words that carry a tag.
// Every value crosses as two u32 words (high and low 16 bits of the f32, each with the phase's 16-bit tag above it),
// stored and loaded atomically: a reader spins until both words carry the phase's tag. That is sound under WGSL's
// memory model as far as it needs: it relies only on the coherence of each word, not on any order between words (WGSL
// has no device-scope fence). What it relies on beyond WGSL: that all G workgroups are resident at once (a reader gives
// up after SPIN_LIMIT polls and sets an error flag rather than hang). Both variants run the same tile code; the final x
// of both must be equal bit for bit.
//   node probe4.mjs DIST [L] [G,...]   → one JSON line per case: µs a phase (best and median of PASSES passes)
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const dist = path.resolve(process.argv[2] ?? 'dist');
const L = Number(process.argv[3] ?? 20);
const GS = (process.argv[4] ?? '132,264,528').split(',').map(Number);
const { openGpu } = await import(pathToFileURL(path.join(dist, 'kernels/webgpu/device.js')).href);
const { device, info } = await openGpu();
console.log(JSON.stringify({ adapter: info.description, L, GS }));
const PASSES = 7, H = 1024, F = 2048, SPIN_LIMIT = 1 << 20;
const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const buf = (bytes, usage = S) => device.createBuffer({ size: bytes, usage });
// weights: per layer A (2F × H) then B (H × F), f16 packed two a u32, row-major (a row's K contiguous)
const aWords = (2 * F * H) / 2, bWords = (H * F) / 2, layerWords = aWords + bWords;
const W = buf(L * layerWords * 4);
{
  const chunk = new Uint32Array(layerWords);
  const f16 = (v) => {
    // plain f32 → f16 bits for |v| < 1 (normal range only; enough for random weights)
    const f = new Float32Array([v]), u = new Uint32Array(f.buffer)[0];
    const s = (u >>> 16) & 0x8000, e = ((u >>> 23) & 0xff) - 127 + 15, m = (u >>> 13) & 0x3ff;
    return e <= 0 ? s : s | (e << 10) | m;
  };
  for (let l = 0; l < L; l++) {
    for (let i = 0; i < layerWords; i++) {
      const K = i < aWords ? H : F, sc = 1.5 / Math.sqrt(K);
      chunk[i] = f16((Math.random() * 2 - 1) * sc) | (f16((Math.random() * 2 - 1) * sc) << 16);
    }
    device.queue.writeBuffer(W, l * layerWords * 4, chunk);
  }
}
const x0 = Float32Array.from({ length: H }, () => Math.random() * 2 - 1);

// one tile: 8 output columns of W (rows n0..n0+7), K = KW*8; 256 threads = 4 column groups × 64 lanes, 2 columns a
// thread; the input vector already in xs (workgroup memory). Returns nothing: column sums land in red[] for thread 0..7.
const tile = `
fn tileDot(wOff: u32, KW: u32, n0: u32, lane: u32, cg: u32) -> vec2<f32> {
  // KW: the row's length in vec4<u32> (8 halves each); loads first, then the products
  var acc = vec2<f32>(0.0);
  let r0 = wOff / 4u + (n0 + cg * 2u) * KW;
  var w0: array<vec4<u32>, 4>; var w1: array<vec4<u32>, 4>;
  let it = KW / 64u;
  for (var i = 0u; i < it; i++) { w0[i] = Wt[r0 + lane + i * 64u]; w1[i] = Wt[r0 + KW + lane + i * 64u]; }
  for (var i = 0u; i < it; i++) {
    let k = (lane + i * 64u) * 8u;
    let a = vec4<f32>(xs[k], xs[k + 1u], xs[k + 2u], xs[k + 3u]);
    let b = vec4<f32>(xs[k + 4u], xs[k + 5u], xs[k + 6u], xs[k + 7u]);
    let p0 = w0[i]; let p1 = w1[i];
    acc.x += dot(vec4<f32>(unpack2x16float(p0.x), unpack2x16float(p0.y)), a) + dot(vec4<f32>(unpack2x16float(p0.z), unpack2x16float(p0.w)), b);
    acc.y += dot(vec4<f32>(unpack2x16float(p1.x), unpack2x16float(p1.y)), a) + dot(vec4<f32>(unpack2x16float(p1.z), unpack2x16float(p1.w)), b);
  }
  return acc;
}
// sum acc over the 64 lanes of each column group: red[t] → column (cg*2 + c) at red2[cg*2 + c]
fn reduce(acc: vec2<f32>, t: u32) {
  red[t] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if ((t & 63u) < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
}
fn silu(v: f32) -> f32 { return v / (1.0 + exp(-v)); }
`;
const decl = (xsLen) => `
@group(0) @binding(0) var<storage, read> Wt: array<vec4<u32>>;
var<workgroup> xs: array<f32, ${xsLen}>;
var<workgroup> red: array<vec2<f32>, 256>;
`;

// (a) one dispatch a phase: phase p = 2l (A) or 2l + 1 (B); x and h plain f32
const dispatchCode = `${decl(F)}
struct P { layer: u32, which: u32 }
@group(0) @binding(1) var<uniform> p: P;
@group(0) @binding(2) var<storage, read_write> xb: array<f32>;
@group(0) @binding(3) var<storage, read_write> hb: array<f32>;
${tile}
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) li: vec3<u32>) {
  let t = li.x; let lane = t & 63u; let cg = t >> 6u;
  let base = p.layer * ${layerWords}u;
  if (p.which == 0u) {
    for (var k = t; k < ${H}u; k += 256u) { xs[k] = xb[k]; }
    workgroupBarrier();
    let n0 = wg.x * 8u;
    reduce(tileDot(base, ${H / 8}u, n0, lane, cg), t);
    if (lane == 0u) { hb[n0 + cg * 2u] = red[t].x; hb[n0 + cg * 2u + 1u] = red[t].y; }
  } else {
    for (var k = t; k < ${F}u; k += 256u) { xs[k] = silu(hb[k]) * hb[k + ${F}u]; }
    workgroupBarrier();
    let n0 = wg.x * 8u;
    reduce(tileDot(base + ${aWords}u, ${F / 8}u, n0, lane, cg), t);
    if (lane == 0u) { xb[n0 + cg * 2u] += red[t].x; xb[n0 + cg * 2u + 1u] += red[t].y; }
  }
}`;

// (b) one dispatch for all phases, G workgroups, tiles dealt round-robin; x ping-pongs between two tagged buffers
const persistCode = (BATCH) => `${decl(F)}
struct P { tag0: u32 }
@group(0) @binding(1) var<uniform> p: P;
@group(0) @binding(2) var<storage, read_write> xa: array<atomic<u32>>; // 2 × H values × 2 words
@group(0) @binding(3) var<storage, read_write> ha: array<atomic<u32>>; // 2F values × 2 words
@group(0) @binding(4) var<storage, read_write> err: array<atomic<u32>>;
${tile}
fn tagOf(ph: u32) -> u32 { return (p.tag0 + ph) & 0xffffu; }
fn give(a: ptr<storage, array<atomic<u32>>, read_write>, i: u32, v: f32, tag: u32) {
  let b = bitcast<u32>(v);
  atomicStore(&(*a)[2u * i], (tag << 16u) | (b >> 16u));
  atomicStore(&(*a)[2u * i + 1u], (tag << 16u) | (b & 0xffffu));
}
fn take(a: ptr<storage, array<atomic<u32>>, read_write>, i: u32, tag: u32) -> f32 {
  var hi = 0u; var lo = 0u;
  for (var s = 0u; s < ${SPIN_LIMIT}u; s++) {
    hi = atomicLoad(&(*a)[2u * i]); lo = atomicLoad(&(*a)[2u * i + 1u]);
    if ((hi >> 16u) == tag && (lo >> 16u) == tag) { return bitcast<f32>((hi << 16u) | (lo & 0xffffu)); }
    if ((s & 1023u) == 1023u && atomicLoad(&err[0]) != 0u) { break; } // another reader gave up: do not wait again
  }
  atomicStore(&err[0], 1u);
  return bitcast<f32>((hi << 16u) | (lo & 0xffffu));
}
// BATCH=1: xs[k] for k = t, t + 256, … < n from word pairs at value index off + k, all loads of a thread issued in
// one round first (the spinning take() waits a round trip per value)
fn stage(a: ptr<storage, array<atomic<u32>>, read_write>, off: u32, n: u32, t: u32, tag: u32) {
  var w: array<u32, 32>;
  let m = n / 256u;
  for (var i = 0u; i < m; i++) { let v = off + t + i * 256u; w[2u * i] = atomicLoad(&(*a)[2u * v]); w[2u * i + 1u] = atomicLoad(&(*a)[2u * v + 1u]); }
  for (var i = 0u; i < m; i++) {
    var hi = w[2u * i]; var lo = w[2u * i + 1u];
    if ((hi >> 16u) != tag || (lo >> 16u) != tag) { let f = take(a, off + t + i * 256u, tag); hi = bitcast<u32>(f) >> 16u; lo = bitcast<u32>(f) & 0xffffu; }
    xs[t + i * 256u] = bitcast<f32>((hi << 16u) | (lo & 0xffffu));
  }
}
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>, @builtin(local_invocation_id) li: vec3<u32>) {
  let t = li.x; let lane = t & 63u; let cg = t >> 6u; let G = nw.x;
  for (var l = 0u; l < ${L}u; l++) {
    let base = l * ${layerWords}u;
    let xin = (l & 1u) * ${2 * H}u; let xout = ((l + 1u) & 1u) * ${2 * H}u;
    // phase 2l: h = A·x (x tagged 2l, from the host or phase 2l − 1)
    if (wg.x < ${(2 * F) / 8}u) {
      if (${BATCH}u == 1u) { stage(&xa, xin / 2u, ${H}u, t, tagOf(2u * l)); }
      else { for (var k = t; k < ${H}u; k += 256u) { xs[k] = take(&xa, xin / 2u + k, tagOf(2u * l)); } }
      workgroupBarrier();
      for (var tl = wg.x; tl < ${(2 * F) / 8}u; tl += G) {
        let n0 = tl * 8u;
        reduce(tileDot(base, ${H / 8}u, n0, lane, cg), t);
        if (lane == 0u) { give(&ha, n0 + cg * 2u, red[t].x, tagOf(2u * l + 1u)); give(&ha, n0 + cg * 2u + 1u, red[t].y, tagOf(2u * l + 1u)); }
        workgroupBarrier();
      }
    }
    // phase 2l + 1: x' = B·g + x
    if (wg.x < ${H / 8}u) {
      if (${BATCH}u == 1u) {
        // h staged whole (4096 values: xs is F = 2048 wide, so gate and up in two halves, the product formed in place)
        stage(&ha, ${F}u, ${F}u, t, tagOf(2u * l + 1u));
        var up: array<f32, 8>;
        for (var i = 0u; i < 8u; i++) { up[i] = xs[t + i * 256u]; }
        workgroupBarrier();
        stage(&ha, 0u, ${F}u, t, tagOf(2u * l + 1u));
        for (var i = 0u; i < 8u; i++) { let k = t + i * 256u; xs[k] = silu(xs[k]) * up[i]; }
      } else { for (var k = t; k < ${F}u; k += 256u) { xs[k] = silu(take(&ha, k, tagOf(2u * l + 1u))) * take(&ha, k + ${F}u, tagOf(2u * l + 1u)); } }
      workgroupBarrier();
      for (var tl = wg.x; tl < ${H / 8}u; tl += G) {
        let n0 = tl * 8u;
        reduce(tileDot(base + ${aWords}u, ${F / 8}u, n0, lane, cg), t);
        if (lane == 0u) {
          for (var c = 0u; c < 2u; c++) {
            let n = n0 + cg * 2u + c;
            give(&xa, xout / 2u + n, red[t][c] + take(&xa, xin / 2u + n, tagOf(2u * l)), tagOf(2u * l + 2u));
          }
        }
        workgroupBarrier();
      }
    }
  }
}`;

const qs = device.createQuerySet({ type: 'timestamp', count: 2 });
const qb = buf(16, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC);
const rb = buf(16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
const mk = (code) =>
  device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
const group = (pl, bufs) =>
  device.createBindGroup({
    layout: pl.getBindGroupLayout(0),
    entries: bufs.map((b, i) => ({ binding: i, resource: { buffer: b } })),
  });
async function timed(encodePass) {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
  const h0 = performance.now();
  encodePass(pass);
  pass.end();
  enc.resolveQuerySet(qs, 0, 2, qb, 0);
  enc.copyBufferToBuffer(qb, 0, rb, 0, 16);
  device.queue.submit([enc.finish()]);
  const host = performance.now() - h0;
  await rb.mapAsync(GPUMapMode.READ);
  const t = new BigInt64Array(rb.getMappedRange().slice(0));
  rb.unmap();
  return { gpu: Number(t[1] - t[0]) / 1e3, host: host * 1e3 };
}
async function read(b, bytes) {
  const r = buf(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(b, 0, r, 0, bytes);
  device.queue.submit([enc.finish()]);
  await r.mapAsync(GPUMapMode.READ);
  const out = r.getMappedRange().slice(0);
  r.unmap();
  r.destroy();
  return out;
}
const stats = (a) => {
  const s = [...a].sort((p, q) => p - q);
  return { best: +s[0].toFixed(2), median: +s[s.length >> 1].toFixed(2) };
};

// (a)
const dp = mk(dispatchCode);
const xb = buf(H * 4), hb = buf(2 * F * 4);
const params = buf(256 * 2 * L, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
for (let i = 0; i < 2 * L; i++) device.queue.writeBuffer(params, i * 256, new Uint32Array([i >> 1, i & 1]));
const dgroups = Array.from({ length: 2 * L }, (_, i) =>
  device.createBindGroup({
    layout: dp.getBindGroupLayout(0),
    entries: [W, params, xb, hb].map((b, j) => ({ binding: j, resource: j === 1 ? { buffer: b, offset: i * 256, size: 8 } : { buffer: b } })),
  }),
);
let ref;
{
  const g = [], h = [];
  for (let p = 0; p < PASSES + 1; p++) {
    device.queue.writeBuffer(xb, 0, x0);
    const r = await timed((pass) => {
      pass.setPipeline(dp);
      for (let i = 0; i < 2 * L; i++) {
        pass.setBindGroup(0, dgroups[i]);
        pass.dispatchWorkgroups(i & 1 ? H / 8 : (2 * F) / 8);
      }
    });
    if (p > 0) g.push(r.gpu / (2 * L)), h.push(r.host / (2 * L));
  }
  ref = new Float32Array(await read(xb, H * 4));
  console.log(JSON.stringify({ case: `dispatch chain, ${2 * L} launches`, us_per_phase: stats(g), host_us_per_phase: stats(h), finite: ref.every(Number.isFinite) }));
}

// (b)
const xa = buf(4 * H * 4), ha = buf(4 * F * 4), err = buf(16);
const pparams = buf(256, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
let tag0 = 1;
for (const BATCH of [0, 1]) {
const pp = mk(persistCode(BATCH));
for (const G of GS) {
  const bg = group(pp, [W, pparams, xa, ha, err]);
  const g = [];
  let same = true, errs = 0;
  for (let p = 0; p < PASSES + 1; p++) {
    tag0 = (tag0 + 2 * L + 2) & 0xffff;
    device.queue.writeBuffer(pparams, 0, new Uint32Array([tag0]));
    const words = new Uint32Array(4 * H), xv = new Uint32Array(x0.buffer);
    for (let i = 0; i < H; i++) words[2 * i] = (tag0 << 16) | (xv[i] >>> 16), words[2 * i + 1] = (tag0 << 16) | (xv[i] & 0xffff);
    device.queue.writeBuffer(xa, 0, words);
    device.queue.writeBuffer(err, 0, new Uint32Array(4));
    const r = await timed((pass) => {
      pass.setPipeline(pp);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(G);
    });
    if (p > 0) g.push(r.gpu / (2 * L));
    const e = new Uint32Array(await read(err, 16))[0];
    errs += e;
    const out = new Uint32Array(await read(xa, 4 * H * 4));
    const off = (L & 1) * 2 * H;
    for (let i = 0; i < H; i++) {
      const v = new Float32Array(new Uint32Array([((out[off + 2 * i] & 0xffff) << 16) | (out[off + 2 * i + 1] & 0xffff)]).buffer)[0];
      if (!Object.is(v, ref[i])) same = false;
    }
  }
  console.log(JSON.stringify({ case: `persistent, ${G} workgroups, ${BATCH ? 'loads in one round' : 'a spin a value'}`, us_per_phase: stats(g), equal_to_dispatch_chain: same, spin_timeouts: errs }));
  if (errs) break; // more workgroups than fit at once: larger G would not either
}
}
device.destroy();
