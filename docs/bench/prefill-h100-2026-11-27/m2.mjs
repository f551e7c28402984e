// Times one 2Mamba prefill op (mamba2: segment scores, the carried state's readout, the state update, the combine) on
// the WebGPU backend of a fury build, with parts of its tensor-core kernels removed (what each costs):
//   FURY_PROFILE_KERNELS=1 [ABL=read:nophi|read:nos|read:nomma|read:rowa|upd:nophi|upd:noload|upd:nomma] node m2.mjs DIST ROWS POS [REPS]
// ROWS rows at positions POS … of one sequence (its state carried in when POS > 0), 16 heads of 64; prints GPU ms per
// kernel (mean of REPS runs after 3 s of warm-up) and a checksum of y.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const [dist, rowsS, posS, repsS = '5'] = process.argv.slice(2);
const { WebGpuBackend } = await import(pathToFileURL(path.resolve(dist, 'kernels/webgpu/backend.js')).href);
const rows = Number(rowsS), pos = Number(posS), reps = Number(repsS), H = 16, d = 64, D = (d * (d + 1)) / 2;
const gpu = await WebGpuBackend.open();
const ABL = process.env.ABL ?? '';
const cuts = {
  'read:nophi': ['m2_read_mma', /f\[(\d+)\] = cf \* qs\[o \+ a\] \* qs\[o \+ b\]; dp\[\d+\] \+= f\[\d+\] \* nv;/g, 'f[$1] = cf;'],
  'read:nos': ['m2_read_mma', /sv\[(\d)\] = S\[so( \+ 1u)?\];/g, 'sv[$1] = vec4<f32>(0.5);'],
  'read:nomma': ['m2_read_mma', /^ *m\d = subgroupMatrixMultiplyAccumulate\(a,.*$/gm, ''],
  // the left operand loaded row-major from the same tile (wrong values: what a column-major load costs)
  'read:rowa': ['m2_read_mma', /subgroup_matrix_left<f16, 16, 16>, col_major>/g, 'subgroup_matrix_left<f16, 16, 16>, row_major>'],
  'upd:nophi': ['m2_update_mma', /f\[(\d+)\] = cf \* wt\[t\] \* ks\[[^;]*; nacc \+= f\[\d+\];/g, 'f[$1] = cf;'],
  'upd:noload': ['m2_update_mma', /(kr\[\d\]|vr\[\d\]) = x\[[^;]*;/g, '$1 = vec4<f32>(0.5);'],
  'upd:nomma': ['m2_update_mma', /^ *m\d = subgroupMatrixMultiplyAccumulate\(a,.*$/gm, ''],
};
const cut = cuts[ABL];
if (ABL && !cut) throw new Error(`ABL ${ABL}: one of ${Object.keys(cuts)}`);
if (cut) {
  const make = gpu.device.createShaderModule.bind(gpu.device);
  gpu.device.createShaderModule = (desc) => {
    if (!desc.label?.startsWith(cut[0])) return make(desc);
    const code = desc.code.replace(cut[1], cut[2]);
    if (code === desc.code) throw new Error(`ABL ${ABL}: nothing matched in ${desc.label}`);
    return make({ ...desc, code });
  };
}
let seed = 12345;
const rnd = (n, std = 1) => Float32Array.from({ length: n }, () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return ((seed / 2 ** 32) * 2 - 1) * std * 1.7;
});
gpu.create('x', rows * 3 * H * d, { init: rnd(rows * 3 * H * d, 1) });
gpu.create('la', rows * H, { init: rnd(rows * H, 0.1).map((v) => -Math.abs(v)) });
gpu.create('S', H * D * d, { init: rnd(H * D * d, 0.3) });
gpu.create('N', H * D, { init: rnd(H * D, 1).map(Math.abs) });
gpu.create('y', rows * H * d, {});
const step = { seqs: [{ slot: 0, pos, rows, pages: [] }] };
const ops = [{ op: 'mamba2', qkv: 'x', logA: 'la', S: 'S', N: 'N', out: 'y', heads: H, headDim: d }];
const warm = performance.now();
do await gpu.run({ ops }, step), await gpu.read('y', 0, 1); // ≥ 3 s of load (each run waited for): an idle H100 sits at 345 MHz
while (performance.now() - warm < 3000);
gpu.profile = new Map();
for (let i = 0; i < reps; i++) await gpu.run({ ops }, step);
const out = {};
for (const [k, v] of gpu.profile) out[k] = +(v.ms / reps).toFixed(3);
const y = await gpu.read('y');
let sum = 0;
for (const v of y) sum += Math.abs(v);
console.log(JSON.stringify({ dist, abl: ABL, rows, pos, ms: out, ysum: +sum.toFixed(3) }));
process.exit(0);
