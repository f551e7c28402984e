// The WebGPU backend: named GPU buffers, the WGSL kernels of shaders.ts, and a Plan encoded as one compute pass and one
// submit per step. Pipelines and bind groups are built once and cached (a bind group is rebuilt only when one of its
// buffers was re-created); per-step scalars go in one params write and one meta write.
import { type Backend, type BufferKind, type Op, type Plan, type Step, type WeightDType, totalRows } from '../backend.js';
import { CHUNK, GEMM, M2_READ_SPLITS, PBLOCK, SPLIT_K, TILE_MIN_ROWS, TILE_ROWS, WG, m2DecodeShape, shaders, type MatmulPrologue, type MatmulShape } from './shaders.js';
import { openGpu, type GpuInfo } from './device.js';
import { f32ToF16 } from '../../weights/dtype.js'; // a dependency-free leaf shared with the checkpoint code

interface Buf {
  buf: GPUBuffer;
  elements: number;
  kind: BufferKind;
  storage: WeightDType;
  gen: number;
}

type Access = 'ro' | 'rw';

/** Binding access of each kernel's buffers after (params, meta); `variant` is the pipeline variant string. */
function bindings(kernel: string, variant: string): Access[] {
  switch (kernel) {
    case 'matmul': {
      const v = variant.split(':');
      return ['ro', 'ro', 'rw', ...(v[1] === 'norm' ? ['ro' as const] : []), ...(v[6] === 'conv' ? ['rw', 'ro', 'ro', 'rw', 'rw'] as const : [])];
    }
    case 'gemm': return ['ro', 'ro', 'rw', ...(variant.endsWith(':norm') ? ['ro' as const] : [])];
    case 'conv2': return variant === 'decay' ? ['ro', 'rw', 'ro', 'ro', 'rw', 'rw'] : ['ro', 'rw', 'ro', 'ro', 'rw'];
    default: return BINDINGS[kernel]!;
  }
}
const BINDINGS: Record<string, Access[]> = {
  embed: ['ro', 'ro', 'rw'], gather_last: ['ro', 'rw'], rope: ['rw', 'ro'], sample: ['ro', 'ro', 'rw'],
  kv_append: ['ro', 'rw', 'rw'], kv_cumsum: ['ro', 'rw'], attention: ['ro', 'ro', 'ro', 'ro', 'rw', 'rw'], attn_tile: ['ro', 'ro', 'ro', 'ro', 'rw', 'rw'],
  attn_reduce: ['ro', 'ro', 'rw'],
  m2_intra: ['ro', 'ro', 'rw', 'rw', 'rw'], m2_read: ['ro', 'ro', 'ro', 'ro', 'rw', 'rw'], m2_update: ['ro', 'ro', 'ro', 'rw', 'rw'],
  m2_state1: ['ro', 'ro', 'ro', 'rw', 'rw', 'rw', 'rw'],
  m2_combine: ['ro', 'ro', 'ro', 'ro', 'ro', 'rw'], m2_combine1: ['ro', 'ro', 'ro', 'ro', 'rw'],
};

/**
 * Matmul workgroup shapes by the rows a step multiplies: one row (decode at batch 1, the LM head), a few, many
 * (batched decode, prefill): R rows share every weight load. FURY_MATMUL_SHAPES="one;few;many", each "R,C,TK,CG",
 * overrides them (tuning runs on the GPU host).
 */
const MATMUL_SHAPES: MatmulShape[] = (() => {
  // chosen from a sweep on the H100 (docs/perf.md "Tuning"): GPU ms per decode step of the small 2Mamba model
  const def: MatmulShape[] = [{ R: 1, C: 2, TK: 64, CG: 2 }, { R: 4, C: 4, TK: 64, CG: 1 }, { R: 8, C: 4, TK: 16, CG: 4 }];
  const env = process.env.FURY_MATMUL_SHAPES;
  if (!env) return def;
  const parsed = env.split(';').map((t) => t.split(',').map(Number));
  if (parsed.length !== 3 || parsed.some((v) => v.length !== 4 || v.some((n) => !Number.isInteger(n) || n < 1))) {
    throw new Error(`FURY_MATMUL_SHAPES must be three "R,C,TK,CG" groups separated by ";", got ${JSON.stringify(env)}`);
  }
  return parsed.map(([R, C, TK, CG]) => ({ R: R!, C: C!, TK: TK!, CG: CG! }));
})();
const matmulShape = (rows: number) => MATMUL_SHAPES[rows <= 1 ? 0 : rows <= 4 ? 1 : 2]!;

/** From this many rows a matmul runs as the tiled GEMM (prefill chunks, large batches); FURY_GEMM_MIN_ROWS overrides. */
const GEMM_MIN_ROWS = Number(process.env.FURY_GEMM_MIN_ROWS ?? 64);
if (!Number.isInteger(GEMM_MIN_ROWS) || GEMM_MIN_ROWS < 1) {
  throw new Error(`FURY_GEMM_MIN_ROWS must be a positive integer, got ${JSON.stringify(process.env.FURY_GEMM_MIN_ROWS)}`);
}

/** State rows per thread of the decode state kernel: few (a wide grid) when few (sequence, head) pairs run.
 *  FURY_M2_RPT="few,many" overrides them (tuning runs). */
const M2_RPT = (process.env.FURY_M2_RPT ?? '4,8').split(',').map(Number);
if (M2_RPT.length !== 2 || M2_RPT.some((n) => !Number.isInteger(n) || n < 1 || n > 32)) {
  throw new Error(`FURY_M2_RPT must be two integers from 1 to 32 ("few,many"), got ${JSON.stringify(process.env.FURY_M2_RPT)}`);
}
const m2Rpt = (pairs: number) => M2_RPT[pairs >= 128 ? 1 : 0]!;

const PARAM_STRIDE = 256;
const f32bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]!;

interface Dispatch {
  kernel: string;
  variant: string;
  buffers: string[];
  params: number[];
  groups: [number, number];
}

/** Key ranges of SPLIT_K the longest row of the step attends over. A decode step rounds them up to a power of two
 *  (ranges past a row's position exit at once), so its recording is reused while contexts grow; a step with prefill
 *  tiles keeps the exact count (its partials scale with rows × ranges). */
function attentionSplits(step: Step): number {
  const n = Math.max(1, ...step.seqs.map((s) => Math.ceil((s.pos + s.rows) / SPLIT_K)));
  return step.seqs.some((s) => s.rows >= TILE_MIN_ROWS) ? n : 2 ** Math.ceil(Math.log2(n));
}

/** The step's attention work: rows of short (decode) sequences for the split-K kernel, tiles of the others. */
function attentionWork(step: Step): { splitRows: number[]; tiles: [number, number][] } {
  const splitRows: number[] = [], tiles: [number, number][] = [];
  let r = 0;
  step.seqs.forEach((s, i) => {
    if (s.rows < TILE_MIN_ROWS) for (let t = 0; t < s.rows; t++) splitRows.push(r + t);
    else for (let t = 0; t < s.rows; t += TILE_ROWS) tiles.push([i, t]);
    r += s.rows;
  });
  return { splitRows, tiles };
}

/** Split a 1-D workgroup count over x and y (65535 per dimension). */
const grid1 = (n: number): [number, number] => (n <= 65535 ? [Math.max(1, n), 1] : [65535, Math.ceil(n / 65535)]);

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  private bufs = new Map<string, Buf>();
  private pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
  private gen = 0;
  private meta: GPUBuffer | null = null;
  private staging: GPUBuffer[] = [];
  private error: Error | null = null;
  /** When set, run() times every op on the GPU (one pass each, timestamps at the pass boundaries). */
  profile: Map<string, { ms: number; count: number }> | null = null;
  /** When set (and profile is not), run() times its whole single pass on the GPU and appends the ms here. */
  stepTimes: number[] | null = null;
  /** JS time spent building and encoding steps (ms), for the bench. */
  encodeMs = 0;

  private constructor(readonly device: GPUDevice, readonly info: GpuInfo) {
    device.addEventListener('uncapturederror', (e) => { this.error ??= new Error(`WebGPU: ${(e as GPUUncapturedErrorEvent).error.message}`); });
    void device.lost.then((i) => { if (i.reason !== 'destroyed') this.error ??= new Error(`WebGPU device lost: ${i.message}`); });
  }

  static async open(): Promise<WebGpuBackend> {
    const g = await openGpu();
    return new WebGpuBackend(g.device, g.info);
  }

  private throwIfFailed(): void {
    if (this.error) throw this.error;
  }

  create(name: string, elements: number, kind: BufferKind = 'f32', init?: ArrayLike<number>, storage: WeightDType = 'f32'): void {
    const packed = storage !== 'f32' && kind === 'f32';
    const bytes = Math.max(16, Math.ceil((packed ? Math.ceil(elements / 2) * 4 : elements * 4) / 16) * 16);
    if (bytes > this.info.maxStorageBufferBindingSize) {
      throw new Error(`buffer "${name}" needs ${bytes} bytes, above this adapter's ${this.info.maxStorageBufferBindingSize}-byte ` +
        'storage binding limit (lavapipe: 128 MiB): use a smaller model, batch or KV pool on this adapter');
    }
    this.bufs.get(name)?.buf.destroy();
    const buf = this.device.createBuffer({
      label: name, size: bytes, mappedAtCreation: init !== undefined,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    if (init) {
      if (init.length !== elements) throw new RangeError(`create ${name}: ${init.length} initial values for ${elements} elements`);
      const range = buf.getMappedRange();
      if (kind === 'i32') new Int32Array(range).set(init);
      else if (!packed) new Float32Array(range).set(init);
      else {
        const u16 = new Uint16Array(range), f = new Float32Array(1), u = new Uint32Array(f.buffer);
        for (let i = 0; i < elements; i++) {
          f[0] = init[i]!;
          // values were rounded to the dtype by the caller: f16 via the IEEE conversion, bf16 by truncation (exact)
          u16[i] = storage === 'bf16' ? u[0]! >>> 16 : f32ToF16(init[i]!);
        }
      }
      buf.unmap();
    }
    this.bufs.set(name, { buf, elements, kind, storage: packed ? storage : 'f32', gen: ++this.gen });
  }

  has(name: string): boolean {
    return this.bufs.has(name);
  }

  private get(name: string): Buf {
    const b = this.bufs.get(name);
    if (!b) throw new Error(`webgpu backend: no buffer "${name}"`);
    return b;
  }

  size(name: string): number {
    return this.get(name).elements;
  }

  write(name: string, data: ArrayLike<number>, offset = 0): void {
    const b = this.get(name);
    if (b.storage !== 'f32') throw new Error(`write ${name}: packed 16-bit weights are written only at creation`);
    if (offset + data.length > b.elements) throw new RangeError(`write ${name}: ${offset}+${data.length} exceeds ${b.elements}`);
    const arr = b.kind === 'i32' ? Int32Array.from(data) : Float32Array.from(data);
    this.device.queue.writeBuffer(b.buf, offset * 4, arr.buffer, 0, arr.byteLength);
  }

  async read(name: string, offset = 0, count?: number): Promise<Float32Array> {
    const b = this.get(name);
    if (b.storage !== 'f32') throw new Error(`read ${name}: packed 16-bit weights cannot be read back`);
    const n = count ?? b.elements - offset;
    const bytes = Math.max(4, n * 4); // f32 values: always a multiple of the 4-byte copy alignment
    const i = this.staging.findIndex((s) => s.size >= bytes);
    const staging = i >= 0 ? this.staging.splice(i, 1)[0]! : this.device.createBuffer({
      label: 'staging', size: Math.max(256, 2 ** Math.ceil(Math.log2(bytes))), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(b.buf, offset * 4, staging, 0, n * 4);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ, 0, bytes);
    this.throwIfFailed();
    const range = staging.getMappedRange(0, bytes).slice(0, n * 4);
    const out = b.kind === 'i32' ? Float32Array.from(new Int32Array(range)) : new Float32Array(range);
    staging.unmap();
    this.staging.push(staging);
    return out;
  }

  copyWithin(name: string, src: number, dst: number, count: number): void {
    const b = this.get(name);
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(b.buf, src * 4, b.buf, dst * 4, count * 4);
    this.device.queue.submit([enc.finish()]);
  }

  bytes(filter: (name: string) => boolean = () => true): number {
    let n = 0;
    for (const [name, b] of this.bufs) if (filter(name)) n += b.buf.size;
    return n;
  }

  async destroy(): Promise<void> {
    for (const b of this.bufs.values()) b.buf.destroy();
    this.bufs.clear();
    this.device.destroy();
  }

  /** Device copy bandwidth (bytes read + written per second) of a vec4 WGSL copy over `bytes`, `reps` times. */
  async copyBandwidth(bytes: number, reps = 20): Promise<number> {
    const size = Math.min(bytes, this.info.maxStorageBufferBindingSize - 4) & ~255;
    const mk = (label: string) => this.device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE });
    const [a, b] = [mk('bw.src'), mk('bw.dst')];
    const module = this.device.createShaderModule({ code: `@group(0) @binding(0) var<storage, read> s: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> d: array<vec4<f32>>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let total = arrayLength(&s); let stride = n.x * 256u;
  for (var i = g.x; i < total; i += stride) { d[i] = s[i]; }
}` });
    const pipeline = this.device.createComputePipeline({ label: 'bandwidth', layout: 'auto', compute: { module, entryPoint: 'main' } });
    const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: a } }, { binding: 1, resource: { buffer: b } }] });
    const run = async (n: number) => {
      const enc = this.device.createCommandEncoder(), pass = enc.beginComputePass();
      pass.setPipeline(pipeline); pass.setBindGroup(0, group);
      for (let i = 0; i < n; i++) pass.dispatchWorkgroups(Math.min(65535, Math.ceil(size / 16 / 256 / 4)));
      pass.end();
      this.device.queue.submit([enc.finish()]);
      await this.device.queue.onSubmittedWorkDone();
    };
    const warm = performance.now();
    while (performance.now() - warm < 3000) await run(reps); // ≥ 3 s of load: an idle H100 sits at 345 MHz
    const t0 = performance.now();
    await run(reps);
    const s = (performance.now() - t0) / 1000;
    a.destroy(); b.destroy();
    return (2 * size * reps) / s;
  }

  // ---- kernels ----

  private source(kernel: string, variant: string): string {
    const v = variant.split(':');
    switch (kernel) {
      case 'embed': return shaders.embed(v[0] as WeightDType);
      case 'gemm': return shaders.gemm(v[0] as WeightDType, v[1] as MatmulPrologue);
      case 'matmul': return shaders.matmul(v[0] as WeightDType, v[1] as MatmulPrologue, { R: +v[2]!, C: +v[3]!, TK: +v[4]!, CG: +v[5]! }, v[6] === 'conv');
      case 'conv2': return shaders.conv2(variant === 'decay');
      case 'm2_state1': return shaders.m2_state1(+v[0]!, +v[1]!);
      case 'attention': case 'attn_tile': case 'attn_reduce': case 'm2_intra': case 'm2_read': case 'm2_update': case 'm2_combine': case 'm2_combine1':
        return shaders[kernel](+v[0]!);
      case 'gather_last': case 'rope': case 'kv_append': case 'kv_cumsum': case 'sample':
        return shaders[kernel]();
      default: throw new Error(`webgpu: no kernel "${kernel}"`);
    }
  }

  private pipeline(kernel: string, variant: string) {
    const key = `${kernel}:${variant}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const layout = this.device.createBindGroupLayout({
      label: key,
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: 64 } },
        { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } },
        ...bindings(kernel, variant).map((a, i) => ({
          binding: i + 2, visibility: GPUShaderStage.COMPUTE,
          buffer: { type: a === 'ro' ? 'read-only-storage' as const : 'storage' as const },
        })),
      ],
    });
    const module = this.device.createShaderModule({ label: key, code: this.source(kernel, variant) });
    const pipeline = this.device.createComputePipeline({
      label: key, layout: this.device.createPipelineLayout({ label: key, bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' },
    });
    p = { pipeline, layout };
    this.pipelines.set(key, p);
    return p;
  }

  /** Check every kernel compiles (WGSL errors surface here, naming the kernel). */
  async compileAll(headDims: number[]): Promise<void> {
    const jobs: [string, string][] = [];
    for (const k of ['gather_last', 'rope', 'kv_append', 'kv_cumsum', 'sample']) jobs.push([k, '']);
    jobs.push(['conv2', ''], ['conv2', 'decay']);
    for (const dt of ['f32', 'f16', 'bf16']) {
      jobs.push(['embed', dt]);
      for (const pro of ['none', 'norm', 'silu']) for (const m of MATMUL_SHAPES) jobs.push(['matmul', `${dt}:${pro}:${m.R}:${m.C}:${m.TK}:${m.CG}:`]);
      for (const m of MATMUL_SHAPES) jobs.push(['matmul', `${dt}:norm:${m.R}:${m.C}:${m.TK}:${m.CG}:conv`]);
      for (const pro of ['none', 'norm', 'silu']) jobs.push(['gemm', `${dt}:${pro}`]);
    }
    for (const d of headDims) {
      for (const k of ['attention', 'attn_tile', 'attn_reduce', 'm2_intra', 'm2_read', 'm2_update', 'm2_combine', 'm2_combine1']) jobs.push([k, String(d)]);
      jobs.push(['m2_state1', `${d}:${m2Rpt(0)}`], ['m2_state1', `${d}:${m2Rpt(1e9)}`]);
    }
    for (const [k, v] of jobs) {
      this.device.pushErrorScope('validation');
      this.pipeline(k, v);
      const err = await this.device.popErrorScope();
      if (err) throw new Error(`WGSL kernel ${k}${v ? `:${v}` : ''}: ${err.message}`);
    }
  }

  private scratch(name: string, elements: number, kind: BufferKind = 'f32'): string {
    const b = this.bufs.get(name);
    if (!b || b.elements < elements) this.create(name, Math.max(elements, 2 * (b?.elements ?? 0)), kind);
    return name;
  }

  private pairsFor(d: number): string {
    const name = `_m2.pairs.${d}`;
    if (!this.bufs.has(name)) {
      const pairs: number[] = [];
      for (let i = 0; i < d; i++) for (let j = i; j < d; j++) pairs.push(i | (j << 16));
      this.create(name, pairs.length, 'i32', pairs);
    }
    return name;
  }

  /** The dispatches of one op for this step. */
  private dispatches(op: Op, step: Step, rows: number): Dispatch[] {
    const nSeqs = step.seqs.length, wg = (n: number) => grid1(Math.ceil(n / WG));
    const maxRows = Math.max(0, ...step.seqs.map((s) => s.rows));
    const one = (kernel: string, buffers: string[], params: number[], groups: [number, number], variant = ''): Dispatch[] =>
      [{ kernel, variant, buffers, params, groups }];
    switch (op.op) {
      case 'embed':
        return one('embed', [op.table, op.ids, op.out], [op.dim], wg(rows * op.dim), this.get(op.table).storage);
      case 'matmul': {
        const R = op.perSeq ? nSeqs : rows, m = matmulShape(R);
        if (op.k % 8 !== 0) throw new Error(`webgpu matmul ${op.w}: K = ${op.k} must be a multiple of 8`);
        const pro: MatmulPrologue = op.norm ? 'norm' : op.act === 'silu_mul' ? 'silu' : 'none';
        const params = [op.k, op.n, op.add ? 1 : 0, op.perSeq ? 1 : 0, op.norm ? f32bits(op.norm.eps) : 0];
        if (!op.perSeq && R >= GEMM_MIN_ROWS && op.k % GEMM.k === 0) {
          return one('gemm', [op.w, op.x, op.out, ...(op.norm ? [op.norm.weight] : [])], params,
            [Math.ceil(op.n / GEMM.cols), Math.ceil(R / GEMM.rows)], `${this.get(op.w).storage}:${pro}`);
        }
        return one('matmul', [op.w, op.x, op.out, ...(op.norm ? [op.norm.weight] : [])],
          params, [Math.ceil(op.n / (m.CG * m.C)), Math.ceil(R / m.R)], `${this.get(op.w).storage}:${pro}:${m.R}:${m.C}:${m.TK}:${m.CG}:`);
      }
      case 'gather_last':
        return one('gather_last', [op.x, op.out], [op.dim], wg(nSeqs * op.dim));
      case 'sample':
        return one('sample', [op.logits, op.params, op.out], [op.vocab], [nSeqs, 1]);
      case 'conv2': {
        const H = op.decay?.heads ?? 0;
        return one('conv2', [op.x, op.state, op.weight, op.bias, op.out, ...(op.decay ? [op.decay.out] : [])],
          [op.ch, op.xStride ?? op.ch, H], wg(rows * (op.ch + H)), op.decay ? 'decay' : '');
      }
      case 'rope': {
        const { heads: H, kvHeads: Hkv, headDim: d } = op.layout;
        return one('rope', [op.qkv, op.freqs], [H, Hkv, d, op.convention === 'interleaved' ? 1 : 0], wg((rows * (H + Hkv) * d) / 2));
      }
      case 'kv_append': {
        const { heads: H, kvHeads: Hkv, headDim: d } = op.layout;
        const out = one('kv_append', [op.qkv, op.k, op.v], [H, Hkv, d, op.pageSize], wg(rows * Hkv * d));
        if (op.c && op.logA) out.push(...one('kv_cumsum', [op.logA, op.c], [H, op.pageSize], wg(nSeqs * H)));
        return out;
      }
      case 'attention': {
        const { heads: H, kvHeads: Hkv, headDim: d } = op.layout;
        const splits = attentionSplits(step), { splitRows, tiles } = attentionWork(step);
        const po = this.scratch('_attn.o', rows * H * splits * d), pml = this.scratch('_attn.ml', rows * H * splits * 2);
        const bufs = [op.qkv, op.k, op.v, op.c ?? op.k, po, pml], params = [H, Hkv, op.pageSize, op.c ? 1 : 0, splits];
        return [
          ...(splitRows.length ? one('attention', bufs, params, [splits, splitRows.length * H], String(d)) : []),
          ...(tiles.length ? one('attn_tile', bufs, params, [splits, tiles.length * H], String(d)) : []),
          ...one('attn_reduce', [po, pml, op.out], [H, splits], [rows, H], String(d)),
        ];
      }
      case 'mamba2': {
        const H = op.heads, d = op.headDim, D = (d * (d + 1)) / 2, v = String(d), pairs = this.pairsFor(d);
        if (maxRows === 1) {
          // a pure decode step (one row per sequence): one pass over S updates it and takes the partial readouts
          const { groups } = m2DecodeShape(d), rpt = m2Rpt(nSeqs * H), blocks = Math.ceil(D / (groups * rpt));
          const pnum = this.scratch('_m2.pnum', rows * H * blocks * d), pden = this.scratch('_m2.pden', rows * H * blocks);
          return [
            { kernel: 'm2_state1', variant: `${d}:${rpt}`, buffers: [op.qkv, op.logA, pairs, op.S, op.N, pnum, pden], params: [H, 0, blocks], groups: [blocks, nSeqs * H] },
            { kernel: 'm2_combine1', variant: v, buffers: [op.qkv, op.logA, pnum, pden, op.out], params: [H, 0, blocks], groups: [1, nSeqs * H] }, // 4·d threads
          ];
        }
        // chunks in order: intra-chunk scores, the readout of the carried state, its update, then the sum
        const splits = M2_READ_SPLITS, blocks = Math.ceil(D / PBLOCK);
        const G = this.scratch('_m2.G', rows * H), inum = this.scratch('_m2.inum', rows * H * d), iden = this.scratch('_m2.iden', rows * H);
        const pnum = this.scratch('_m2.pnum', rows * H * splits * d), pden = this.scratch('_m2.pden', rows * H * splits);
        const out: Dispatch[] = [];
        for (let c = 0; c * CHUNK < maxRows; c++) {
          out.push(
            { kernel: 'm2_intra', variant: v, buffers: [op.qkv, op.logA, G, inum, iden], params: [H, c], groups: [nSeqs * H, 1] },
            { kernel: 'm2_read', variant: v, buffers: [op.qkv, pairs, op.S, op.N, pnum, pden], params: [H, c, splits], groups: [splits, nSeqs * H] },
            { kernel: 'm2_update', variant: v, buffers: [op.qkv, G, pairs, op.S, op.N], params: [H, c], groups: [blocks, nSeqs * H] },
            { kernel: 'm2_combine', variant: v, buffers: [G, inum, iden, pnum, pden, op.out], params: [H, c, splits], groups: [Math.min(CHUNK, maxRows), nSeqs * H] },
          );
        }
        return out;
      }
    }
  }

  /** A decode step's [qkv | A] projection and the conv2 + logdecay front end that reads it, as one dispatch (the
   *  matmul's conv epilogue); null when the pair does not match or a sequence has several rows (conv2 walks them). */
  private fuseConv(op: Op, next: Op | undefined, step: Step, rows: number): Dispatch | null {
    if (op.op !== 'matmul' || next?.op !== 'conv2' || !next.decay || next.x !== op.out || op.add || op.perSeq || op.act ||
        (next.xStride ?? next.ch) !== op.n || step.seqs.some((s) => s.rows !== 1)) return null;
    const d = this.dispatches(op, step, rows)[0]!;
    if (d.kernel !== 'matmul') return null; // a batch large enough for the GEMM: conv2 runs on its own
    return { ...d, variant: `${d.variant}conv`, buffers: [...d.buffers, next.state, next.weight, next.bias, next.out, next.decay.out],
             params: [...d.params, next.ch, next.decay.heads] };
  }

  private metaFor(step: Step): Uint32Array {
    const rows = totalRows(step), n = step.seqs.length;
    const { splitRows, tiles } = attentionWork(step);
    const rowBase = 8 + 6 * n, splitBase = rowBase + 2 * rows, tileBase = splitBase + splitRows.length;
    const pageBase = tileBase + 2 * tiles.length;
    const pages = step.seqs.reduce((s, q) => s + q.pages.length, 0);
    const m = new Uint32Array(pageBase + Math.max(1, pages));
    m.set([n, rows, rowBase, pageBase, splitBase, tileBase, splitRows.length, tiles.length]);
    m.set(splitRows, splitBase);
    m.set(tiles.flat(), tileBase);
    let r = 0, pg = 0;
    step.seqs.forEach((s, i) => {
      m.set([s.slot, s.pos, s.rows, r, pg, s.pages.length], 8 + 6 * i);
      for (let t = 0; t < s.rows; t++, r++) { m[rowBase + 2 * r] = i; m[rowBase + 2 * r + 1] = t; }
      m.set(s.pages, pageBase + pg);
      pg += s.pages.length;
    });
    return m;
  }

  /**
   * A step's dispatch list is recorded once per (plan, rows of each sequence) — pipelines, bind groups, workgroup
   * counts and a params buffer of its own — and replayed: later steps of that shape only write `meta` (positions,
   * slots, page tables) and encode. A recording is dropped when any of its buffers was re-created.
   */
  private recordings = new Map<string, { epoch: number; params: GPUBuffer; entries: { opIndex: number; pipeline: GPUComputePipeline; group: GPUBindGroup; offset: number; x: number; y: number }[] }>();
  private planIds = new WeakMap<Plan, number>();
  private nextPlanId = 0;
  private record(plan: Plan, step: Step, rows: number) {
    let id = this.planIds.get(plan);
    if (id === undefined) { id = ++this.nextPlanId; this.planIds.set(plan, id); }
    // the attention grid depends on how many key ranges the longest row spans
    const splits = plan.ops.some((o) => o.op === 'attention') ? attentionSplits(step) : 0;
    const key = `${id}|${splits}|${step.seqs.map((q) => q.rows).join(',')}`;
    const old = this.recordings.get(key);
    if (old && old.epoch === this.gen) return old;
    if (old) old.params.destroy();
    const list: { d: Dispatch; opIndex: number }[] = [];
    for (let i = 0; i < plan.ops.length; i++) {
      const fused = this.fuseConv(plan.ops[i]!, plan.ops[i + 1], step, rows);
      if (fused) { list.push({ d: fused, opIndex: i++ }); continue; }
      this.dispatches(plan.ops[i]!, step, rows).forEach((d) => list.push({ d, opIndex: i }));
    }
    const params = this.device.createBuffer({ label: 'params', size: Math.max(256, list.length * PARAM_STRIDE), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const blob = new Uint32Array((list.length * PARAM_STRIDE) / 4);
    list.forEach(({ d }, i) => blob.set(d.params, (i * PARAM_STRIDE) / 4));
    this.device.queue.writeBuffer(params, 0, blob.buffer, 0, blob.byteLength);
    const entries = list.map(({ d, opIndex }, i) => {
      const { pipeline, layout } = this.pipeline(d.kernel, d.variant);
      const group = this.device.createBindGroup({
        label: `${d.kernel} (${d.buffers.join(', ')})`, layout,
        entries: [
          { binding: 0, resource: { buffer: params, offset: 0, size: 64 } },
          { binding: 1, resource: { buffer: this.meta! } },
          ...d.buffers.map((n, j) => ({ binding: j + 2, resource: { buffer: this.get(n).buf } })),
        ],
      });
      return { opIndex, pipeline, group, offset: i * PARAM_STRIDE, x: d.groups[0], y: d.groups[1] };
    });
    if (this.recordings.size >= 64) {
      const [k, r] = this.recordings.entries().next().value as [string, { params: GPUBuffer }];
      r.params.destroy();
      this.recordings.delete(k);
    }
    const rec = { epoch: this.gen, params, entries };
    this.recordings.set(key, rec);
    return rec;
  }

  async run(plan: Plan, step: Step): Promise<void> {
    this.throwIfFailed();
    const tEnc = performance.now();
    const rows = totalRows(step);
    const meta = this.metaFor(step);
    if (!this.meta || this.meta.size < meta.byteLength) {
      this.meta?.destroy();
      this.meta = this.device.createBuffer({ label: 'meta', size: Math.max(4096, 2 ** Math.ceil(Math.log2(meta.byteLength))), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      this.gen++; // recorded bind groups point at the old meta buffer
    }
    const rec = this.record(plan, step, rows);
    this.device.queue.writeBuffer(this.meta, 0, meta.buffer, 0, meta.byteLength);
    const enc = this.device.createCommandEncoder({ label: 'step' });
    const timed = (this.profile || this.stepTimes) && this.device.features.has('timestamp-query');
    const perOp = timed && this.profile !== null, queries = perOp ? 2 * plan.ops.length : 2;
    const qs = timed ? this.device.createQuerySet({ type: 'timestamp', count: queries }) : null;
    let pass = enc.beginComputePass({ label: 'step', ...(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {}) });
    let passOp = 0, last: GPUComputePipeline | null = null;
    for (const e of rec.entries) {
      if (qs && perOp && e.opIndex !== passOp) {
        pass.end();
        passOp = e.opIndex;
        last = null;
        pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * e.opIndex, endOfPassWriteIndex: 2 * e.opIndex + 1 } });
      }
      if (e.pipeline !== last) { pass.setPipeline(e.pipeline); last = e.pipeline; }
      pass.setBindGroup(0, e.group, [e.offset]);
      pass.dispatchWorkgroups(e.x, e.y);
    }
    pass.end();
    let resolve: GPUBuffer | null = null, readQ: GPUBuffer | null = null;
    if (qs) {
      resolve = this.device.createBuffer({ size: 8 * queries, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      readQ = this.device.createBuffer({ size: 8 * queries, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      enc.resolveQuerySet(qs, 0, queries, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, readQ, 0, 8 * queries);
    }
    this.device.queue.submit([enc.finish()]);
    this.encodeMs += performance.now() - tEnc;
    if (readQ) {
      await readQ.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(readQ.getMappedRange());
      if (perOp) {
        plan.ops.forEach((op, i) => {
          const key = op.op === 'matmul' ? `matmul ${op.w.replace(/^w\.\d+\./, '')}` : op.op;
          const e = this.profile!.get(key) ?? { ms: 0, count: 0 };
          e.ms += Number(t[2 * i + 1]! - t[2 * i]!) / 1e6;
          e.count++;
          this.profile!.set(key, e);
        });
      } else this.stepTimes?.push(Number(t[1]! - t[0]!) / 1e6);
      readQ.unmap(); readQ.destroy(); resolve!.destroy(); qs!.destroy();
    }
  }
}
