// Runs a fury command with one kernel's WGSL patched (what a part of it costs; wrong results):
//   ABL_KERNEL=gemm_mma ABL_RE='col_major>' ABL_TO='row_major>' node abl.mjs DIST bench --preset small …
// Every device's createShaderModule (one prototype) replaces ABL_RE (a global regex) by ABL_TO in the modules whose
// label starts with ABL_KERNEL, and fails when nothing matched.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const [dist, ...args] = process.argv.slice(2);
const { ABL_KERNEL: kernel, ABL_RE: re, ABL_TO: to = '' } = process.env;
const webgpu = await import('webgpu');
const gpu = webgpu.create([]);
const device = await (await gpu.requestAdapter()).requestDevice();
const proto = Object.getPrototypeOf(device);
const make = proto.createShaderModule;
proto.createShaderModule = function (desc) {
  if (!kernel || !desc.label?.startsWith(kernel)) return make.call(this, desc);
  const code = desc.code.replace(new RegExp(re, 'g'), to);
  if (code === desc.code) throw new Error(`abl: ${re} matched nothing in ${desc.label}`);
  return make.call(this, { ...desc, code });
};
device.destroy();
process.argv = [process.argv[0], path.resolve(dist, 'cli/fury.js'), ...args];
await import(pathToFileURL(path.resolve(dist, 'cli/fury.js')).href);
