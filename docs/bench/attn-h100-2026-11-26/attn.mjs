// Times one prefill attention op (softmax or 2Mamba-E, f16 KV) on the WebGPU backend of a fury build:
//   FURY_PROFILE_KERNELS=1 [ABL=…] node attn.mjs DIST ROWS POS [REPS] [e]
// DIST: a build's dist folder (variants of the kernel are patched copies); ROWS query rows at positions POS …
// POS + ROWS − 1 of one sequence, 16 heads of 64, pages of 16; prints GPU ms per kernel (mean of REPS runs after 3 s
// of warm-up) and TFLOP/s of the causal products (4·d per query-key pair and head).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const [dist, rowsS, posS, repsS = '5', arch = 'softmax'] = process.argv.slice(2);
const { WebGpuBackend } = await import(pathToFileURL(path.resolve(dist, 'kernels/webgpu/backend.js')).href);
const rows = Number(rowsS), pos = Number(posS), reps = Number(repsS), H = 16, d = 64, P = 16;
const ctx = pos + rows, pages = Math.ceil(ctx / P);
const gpu = await WebGpuBackend.open();
// ABL=nopv|noscore|noload|nosoft|noexp|nopage|noc|krow|norescale: attn_mma's WGSL without its P·V products, its Q·Kᵀ products, its K/V
// loads, the softmax's reads of S, its exponentials or its page-table walks (what each costs)
const ABL = process.env.ABL ?? '';
const cut = {
  nopv: [/^ *o\d = subgroupMatrixMultiplyAccumulate\(p,.*$/gm, ''],
  noscore: [/^ *s\d = subgroupMatrixMultiplyAccumulate\(q.*$/gm, ''],
  noload: [/[kv]r\d = [kv]c\[u\];/g, ''],
  nosoft: [/(let sv\d+ = )Ss\[[^\]]*\];/g, '$1vec4<f32>(f32(t) * 0.01);'],
  noexp: [/exp2\(lg\[/g, '(lg['],
  nopage: [/seqPage\(s, \(j\) \/ P\) \* P \+ \(j\) % P/g, 'j'], // v3's loads: slot = key (the probe's pages are 0, 1, …)
  krow: [/subgroup_matrix_right<f16, 16, 16>, col_major>/g, 'subgroup_matrix_right<f16, 16, 16>, row_major>'], // K loaded row-major (wrong values: what the column-major load costs; added 2026-11-27)
  norescale: [/workgroupUniformLoad\(&flag\) != 0u/g, 'workgroupUniformLoad(&flag) == 7u'], // O never rescaled (wrong values: what the rescales cost; added 2026-11-27)
  noc: [/ \+ cNow - c(s\[k\]|k)/g, ''], // 2Mamba-E without the forget-gate bias's reads in the logits (added 2026-11-27)
}[ABL];
if (cut) {
  const make = gpu.device.createShaderModule.bind(gpu.device);
  gpu.device.createShaderModule = (desc) =>
    make(desc.label?.startsWith('attn_mma') ? { ...desc, code: desc.code.replace(cut[0], cut[1]) } : desc);
}
let seed = 12345;
const rnd = (n, std = 1) => Float32Array.from({ length: n }, () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return ((seed / 2 ** 32) * 2 - 1) * std * 1.7;
});
const layout = { heads: H, kvHeads: H, headDim: d };
const e = arch === 'e';
gpu.create('x', rows * 3 * H * d, { init: rnd(rows * 3 * H * d, 1) });
gpu.create('kc', pages * P * H * d, { init: rnd(pages * P * H * d), storage: 'f16' });
gpu.create('vc', pages * P * H * d, { init: rnd(pages * P * H * d), storage: 'f16' });
gpu.create('y', rows * H * d, {});
if (e) {
  gpu.create('la', rows * H, { init: rnd(rows * H, 0.01).map((v) => -Math.abs(v)) });
  gpu.create('cc', pages * P * H, { kind: 'cumsum', init: new Float64Array(pages * P * H) });
}
const step = { seqs: [{ slot: 0, pos, rows, pages: [...Array(pages).keys()] }] };
const ops = [
  ...(e ? [{ op: 'kv_append', qkv: 'x', k: 'kc', v: 'vc', layout, pageSize: P, logA: 'la', c: 'cc' }] : []),
  { op: 'attention', qkv: 'x', k: 'kc', v: 'vc', ...(e ? { c: 'cc' } : {}), out: 'y', layout, pageSize: P },
];
const warm = performance.now();
while (performance.now() - warm < 3000) await gpu.run({ ops }, step); // ≥ 3 s of load: an idle H100 sits at 345 MHz
gpu.profile = new Map();
for (let i = 0; i < reps; i++) await gpu.run({ ops }, step);
const flop = 4 * d * H * (rows * pos + (rows * (rows + 1)) / 2);
const out = {};
for (const [k, v] of gpu.profile) out[k] = +(v.ms / reps).toFixed(3);
const att = Object.entries(out).filter(([k]) => /attn_mma|attn_tile/.test(k)).reduce((a, [, v]) => a + v, 0);
const y = await gpu.read('y');
let sum = 0;
for (const v of y) sum += Math.abs(v);
console.log(JSON.stringify({ dist, abl: ABL, rows, pos, arch, ms: out, tflops: +(flop / att / 1e9).toFixed(1), ysum: +sum.toFixed(3) }));
process.exit(0);
