// Runs a fury command with some kernels' WGSL patched (what a part of the step costs; wrong results):
//   ABL_KERNEL=matmul,m2_state1 ABL_RE='(fn main\([^{]*?\)\s*\{)' ABL_TO='$1 return;' node abl.mjs DIST bench …
// ABL_KERNEL is a comma list of label prefixes, or * for every module. Every device's createShaderModule (one
// prototype) replaces ABL_RE (a global regex) by ABL_TO in the modules it names, and fails when nothing matched.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const [dist, ...args] = process.argv.slice(2);
const { ABL_KERNEL: kernels = '', ABL_RE: re, ABL_TO: to = '' } = process.env;
const names = kernels.split(',').filter(Boolean);
const hit = (label = '') => names.some((n) => n === '*' || label.startsWith(n));
const webgpu = await import('webgpu');
const gpu = webgpu.create([]);
const device = await (await gpu.requestAdapter()).requestDevice();
const proto = Object.getPrototypeOf(device);
const make = proto.createShaderModule;
proto.createShaderModule = function (desc) {
  if (!hit(desc.label)) return make.call(this, desc);
  const code = desc.code.replace(new RegExp(re, 'g'), to);
  if (code === desc.code) throw new Error(`abl: ${re} matched nothing in ${desc.label}`);
  return make.call(this, { ...desc, code });
};
device.destroy();
process.argv = [process.argv[0], path.resolve(dist, 'cli/fury.js'), ...args];
await import(pathToFileURL(path.resolve(dist, 'cli/fury.js')).href);
