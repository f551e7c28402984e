// What every WGSL kernel family shares: the kernel and dispatch types, the declared parameter struct (one declaration
// gives the WGSL struct and the TypeScript packer), binding helpers and 16-bit weight readers.
import type { BufferKind, Step, WeightDType } from '../../backend.js';
import type { Op } from '../../ops.js';
import { STEP_META_WGSL } from './meta.js';

export const WG = 64; // threads per workgroup of the row/column kernels

export type Access = 'ro' | 'rw';

/** A family's kernel parameters: named u32 / f32 fields of a uniform struct `prm` (at most 16, in declaration order). */
export interface Params<F extends string> {
  readonly fields: Readonly<Record<F, 'u32' | 'f32'>>;
  /** `struct Params {…}` and its uniform binding 0 as `prm`. */
  readonly wgsl: string;
  /** The uniform block of one dispatch (64 bytes; unnamed fields are 0). */
  pack(values: Partial<Record<F, number>>): Uint32Array;
}

export const PARAMS_BYTES = 64;

export function defineParams<F extends string>(fields: Record<F, 'u32' | 'f32'>): Params<F> {
  const names = Object.keys(fields) as F[];
  if (names.length > PARAMS_BYTES / 4) throw new Error(`a params struct holds at most ${PARAMS_BYTES / 4} fields`);
  const wgsl =
    `struct Params { ${names.map((n) => `${n}: ${fields[n]}`).join(', ')} }\n` +
    '@group(0) @binding(0) var<uniform> prm: Params;';
  return {
    fields,
    wgsl,
    pack(values) {
      const out = new Uint32Array(PARAMS_BYTES / 4),
        f = new Float32Array(out.buffer);
      names.forEach((n, i) => {
        const v = values[n] ?? 0;
        if (fields[n] === 'f32') f[i] = v;
        else out[i] = v;
      });
      return out;
    },
  };
}

/** The opening of every kernel: its family's params, the step meta (binding 1) and its accessors. */
export const header = (p: Params<string>) => `${p.wgsl}\n${STEP_META_WGSL}`;

export const rw = (b: number, name: string, t = 'f32') =>
  `@group(0) @binding(${b}) var<storage, read_write> ${name}: array<${t}>;`;
export const ro = (b: number, name: string, t = 'f32') =>
  `@group(0) @binding(${b}) var<storage, read> ${name}: array<${t}>;`;

/** A weight reader `fn W(i: u32) -> f32` over binding `b` for a storage dtype (16-bit: two per u32, low half first). */
export function weightReader(b: number, dtype: WeightDType): string {
  if (dtype === 'f32')
    return `@group(0) @binding(${b}) var<storage, read> w: array<f32>;\nfn W(i: u32) -> f32 { return w[i]; }`;
  const get =
    dtype === 'f16'
      ? 'let h = unpack2x16float(word); return select(h.x, h.y, (i & 1u) == 1u);'
      : 'return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (i & 1u) == 1u));';
  return `@group(0) @binding(${b}) var<storage, read> w: array<u32>;\nfn W(i: u32) -> f32 { let word = w[i >> 1u]; ${get} }`;
}

/** One compute kernel: a WGSL entry point `main` whose bindings 2… are buffers, generated per typed variant. */
export interface Kernel<V> {
  readonly name: string;
  readonly params: Params<string>;
  /** Access of bindings 2, 3, … */
  bindings(v: V): Access[];
  source(v: V): string;
}

/** One kernel launch of a step: a kernel variant over named buffers with packed params and a workgroup grid. */
export interface Dispatch {
  kernel: Kernel<never>;
  variant: unknown;
  buffers: string[];
  params: Uint32Array;
  /** Workgroups along x, y (and z: 1 when left out). */
  groups: [number, number] | [number, number, number];
}

export function dispatch<V, F extends string>(
  kernel: Kernel<V> & { params: Params<F> },
  variant: V,
  buffers: string[],
  params: Partial<Record<F, number>>,
  groups: Dispatch['groups'],
): Dispatch {
  return { kernel: kernel as Kernel<never>, variant, buffers, params: kernel.params.pack(params), groups };
}

/** What a family may ask of the backend while it turns an op into dispatches (and what the device runs: Caps). */
export interface DispatchContext extends Caps {
  step: Step;
  /** Rows of the step, sequences, and the most rows one sequence has. */
  rows: number;
  seqs: number;
  maxRows: number;
  /** The storage dtype of a weight buffer. */
  storage(name: string): WeightDType;
  /** A backend-owned scratch buffer of at least `elements` (grown, never shrunk); returns its name. */
  scratch(name: string, elements: number, kind?: BufferKind): string;
  /** The most bytes one scratch buffer may hold (the device's storage binding limit, or less where the backend was
   *  opened with a smaller one): a family whose scratch grows with the step splits its work to stay under it. */
  scratchBytes: number;
  /** A constant i32 table the backend creates once; returns its name. */
  table(name: string, values: () => number[]): string;
}

export type Matrices = 'on' | 'emulated' | 'off';

/** What a device can run, as the families' variant lists need it. */
export interface Caps {
  /** Tensor cores for prefill (GEMMs, tiled attention): 'on' (subgroup matrices), 'emulated' (the same tile walks in
   *  plain WGSL, for testing on adapters without them), 'off' (the FMA kernels). */
  matrices: Matrices;
  /** The device's workgroup memory per workgroup (bytes): kernels whose larger tiles need more take smaller ones. */
  workgroupBytes: number;
}

/** A kernel family: the ops it runs, how one op becomes dispatches, and every variant to compile ahead. */
export interface Family {
  readonly ops: readonly Op['op'][];
  dispatch(op: Op, ctx: DispatchContext): Dispatch[];
  /** Every (kernel, variant) this family may dispatch, for models of these head dimensions. */
  variants(headDims: readonly number[], caps: Caps): [Kernel<never>, unknown][];
  /** What of a step besides each sequence's rows shapes this family's grids (a recording is reused only while it
   *  stays the same); absent when nothing else does. */
  shapeKey?(step: Step): string;
  /** Run `op` and the op after it as these dispatches (fused: fewer than apart), or null. */
  fuse?(op: Op, next: Op | undefined, ctx: DispatchContext): Dispatch[] | null;
}

/** Split a 1-D workgroup count over x and y (65535 per dimension). */
export const grid1 = (n: number): [number, number] =>
  n <= 65535 ? [Math.max(1, n), 1] : [65535, Math.ceil(n / 65535)];
/** silu on a vec4 (the matmul prologues). */
export const SILU4 = /* wgsl */ `fn silu4(g: vec4<f32>) -> vec4<f32> { return g / (vec4<f32>(1.0) + exp(-g)); }`;

/** The enables of a tensor-core kernel: f16, and subgroup matrices unless it runs its emulated twin. */
export const tcEnables = (emulate: boolean) =>
  `enable f16;\n${emulate ? '' : 'enable subgroups;\nenable chromium_experimental_subgroup_matrix;\n'}`;

/** f16 values held 8 to a vec4<u32> (the tensor-core kernels' tiles): pack8 rounds two vec4<f32> into one (no clamp),
 *  half8 reads the i-th of the 8 as f32. */
export const HALVES8 = /* wgsl */ `fn pack8(lo: vec4<f32>, hi: vec4<f32>) -> vec4<u32> {
  return vec4<u32>(pack2x16float(lo.xy), pack2x16float(lo.zw), pack2x16float(hi.xy), pack2x16float(hi.zw));
}
fn half8(v: vec4<u32>, i: u32) -> f32 { return unpack2x16float(v[i / 2u])[i % 2u]; }`;

/** A running sum over n rows by a workgroup of 256 threads (thread l takes ⌈n/256⌉ consecutive rows; a scan of the
 *  threads' sums): `value(t)` is row t's addend, `emit(t, run)` gets `carry` + the sum through row t. Needs
 *  `var<workgroup> tot: array<f32, 256>` and the local id `l`; every thread of the workgroup must reach it (barriers). */
export const workgroupCumsum = (
  n: string,
  value: (t: string) => string,
  emit: (t: string, run: string) => string,
  carry = '0.0',
) => /* wgsl */ `  {
    let per = (${n} + 255u) / 256u; let a = min(l.x * per, ${n}); let b = min(a + per, ${n});
    var acc = 0.0;
    for (var t = a; t < b; t++) { acc += ${value('t')}; }
    tot[l.x] = acc;
    for (var o = 1u; o < 256u; o <<= 1u) { // inclusive scan of the threads' sums (Hillis–Steele)
      workgroupBarrier();
      let v = select(0.0, tot[max(l.x, o) - o], l.x >= o);
      workgroupBarrier();
      tot[l.x] += v;
    }
    workgroupBarrier();
    var run = ${carry} + select(0.0, tot[max(l.x, 1u) - 1u], l.x > 0u);
    for (var t = a; t < b; t++) { run += ${value('t')}; ${emit('t', 'run')} }
  }`;

/** Workgroups of WG threads for n threads. */
export const wgFor = (n: number) => grid1(Math.ceil(n / WG));
/** A wgFor kernel's thread index from its global_invocation_id `g` (past 65535 workgroups the grid has rows in y). */
export const WG_INDEX = `g.x + g.y * 65535u * ${WG}u`;

export const variant = <V>(k: Kernel<V>, v: V): [Kernel<never>, unknown] => [k as Kernel<never>, v];
