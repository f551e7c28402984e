// The WebGPU backend: named GPU buffers, the kernel families of wgsl/, and a Plan encoded as one compute pass and one
// submit per step. It knows no op: each family turns its ops into dispatches (kernel variant, buffers, params, grid).
// Pipelines and bind groups are built once and cached (a bind group is rebuilt only when one of its buffers was
// re-created); per-step scalars go in one params write and one meta write.
import {
  type Backend,
  type BufferOptions,
  type BufferRole,
  type Plan,
  type Step,
  type WeightDType,
  totalRows,
} from '../backend.js';
import type { BufferKind } from '../backend.js';
import type { Op } from '../ops.js';
import { f16ToF32, f32ToF16 } from '../../lib/f16.js';
import { openGpu, type GpuInfo } from './device.js';
import { StepTimer, type OpTimes } from './profile.js';
import { MATRICES, READBACK_CHUNK_BYTES } from './tuning.js';
import { attentionFamily } from './wgsl/attention.js';
import {
  type Dispatch,
  type DispatchContext,
  type Family,
  type Kernel,
  type Matrices,
  PARAMS_BYTES,
} from './wgsl/common.js';
import { conv2Family } from './wgsl/conv2.js';
import { mamba2Family } from './wgsl/mamba2.js';
import { matmulFamily } from './wgsl/matmul.js';
import { stepMeta } from './wgsl/meta.js';
import { ropeFamily } from './wgsl/rope.js';
import { rowsFamily } from './wgsl/rows.js';

export const FAMILIES: readonly Family[] = [
  rowsFamily,
  matmulFamily,
  conv2Family,
  ropeFamily,
  attentionFamily,
  mamba2Family,
];
const FAMILY_OF = new Map<Op['op'], Family>(FAMILIES.flatMap((f) => f.ops.map((o) => [o, f] as const)));

interface Buf {
  buf: GPUBuffer;
  elements: number;
  kind: BufferKind;
  storage: WeightDType;
  role: BufferRole;
  gen: number;
}

const PARAM_STRIDE = 256; // each dispatch's params at its own offset, which minUniformBufferOffsetAlignment (≤ 256) allows

export class WebGpuBackend implements Backend, OpTimes {
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
  /** Kernel launches (dispatches) of the steps run so far, for the bench and tests. */
  launches = 0;
  /** Event-loop turns given back in the middle of readbacks' host copies (copyOut), for tests. */
  readbackYields = 0;
  get fastPrefill(): boolean {
    return this.matrices === 'on';
  }

  /** Tensor cores for prefill (the projection GEMMs, the tiled attention and 2Mamba's scores): the option, else
   *  FURY_MATRICES (tuning.ts), else on where the adapter has them. 'on' needs a device with subgroup matrices;
   *  'emulated' runs the same tile walks in plain WGSL, for testing without them. */
  readonly matrices: Matrices;

  /** The most bytes one scratch buffer may hold (DispatchContext.scratchBytes). */
  readonly scratchBytes: number;
  /** The device's workgroup memory per workgroup (Caps.workgroupBytes). */
  get workgroupBytes(): number {
    return this.info.maxWorkgroupBytes;
  }

  private constructor(
    readonly device: GPUDevice,
    readonly info: GpuInfo,
    matrices?: Matrices,
    scratchBytes?: number,
  ) {
    this.scratchBytes = Math.min(info.maxStorageBufferBindingSize, scratchBytes ?? Infinity);
    const want = matrices ?? MATRICES ?? (info.subgroupMatrices ? 'on' : 'off');
    if (want === 'on' && !info.subgroupMatrices)
      throw new Error(
        `tensor cores asked for, but ${info.description} has no 16×16 f16 subgroup matrices with subgroups of 32`,
      );
    if (want === 'emulated' && !device.features.has('shader-f16'))
      throw new Error(`emulated tensor cores need f16 in shaders, and ${info.description} has no shader-f16`);
    this.matrices = want;
    device.addEventListener('uncapturederror', (e) => {
      this.error ??= new Error(`WebGPU: ${(e as GPUUncapturedErrorEvent).error.message}`);
    });
    void device.lost.then((i) => {
      if (i.reason !== 'destroyed') this.error ??= new Error(`WebGPU device lost: ${i.message}`);
    });
  }

  /** `scratchBytes`: a smaller limit for scratch buffers than the device's (tests use it to split work). */
  static async open({
    matrices,
    scratchBytes,
  }: { matrices?: Matrices; scratchBytes?: number } = {}): Promise<WebGpuBackend> {
    const g = await openGpu();
    return new WebGpuBackend(g.device, g.info, matrices, scratchBytes);
  }

  get limits() {
    return { bufferBytes: this.info.maxStorageBufferBindingSize, totalBytes: Infinity, weightBytesPerValue: 2 };
  }

  private throwIfFailed(): void {
    if (this.error) throw this.error;
  }

  create(
    name: string,
    elements: number,
    { kind = 'f32', init, storage = 'f32', role = 'act' }: BufferOptions = {},
  ): void {
    const packed = storage !== 'f32' && kind === 'f32';
    const bytes = Math.max(16, Math.ceil((packed ? Math.ceil(elements / 2) * 4 : elements * 4) / 16) * 16);
    if (bytes > this.info.maxStorageBufferBindingSize) {
      throw new Error(
        `buffer "${name}" needs ${bytes} bytes, above this adapter's ${this.info.maxStorageBufferBindingSize}-byte ` +
          'storage binding limit (lavapipe: 128 MiB): use a smaller model, batch or KV pool on this adapter',
      );
    }
    this.bufs.get(name)?.buf.destroy();
    const buf = this.device.createBuffer({
      label: name,
      size: bytes,
      mappedAtCreation: init !== undefined,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    if (init) {
      if (init.length !== elements)
        throw new RangeError(`create ${name}: ${init.length} initial values for ${elements} elements`);
      const range = buf.getMappedRange();
      if (kind === 'i32') new Int32Array(range).set(init);
      else if (!packed) new Float32Array(range).set(init);
      else new Uint16Array(range).set(toHalves(init, storage));
      buf.unmap();
    }
    this.bufs.set(name, { buf, elements, kind, storage: packed ? storage : 'f32', role, gen: ++this.gen });
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
    this.submitCopies();
    const b = this.get(name);
    if (offset + data.length > b.elements)
      throw new RangeError(`write ${name}: ${offset}+${data.length} exceeds ${b.elements}`);
    const at = this.byteRange(b, 'write', offset, data.length)[0];
    // (an f32 array goes as it is: a 2Mamba snapshot is hundreds of MB)
    const arr =
      b.kind === 'i32'
        ? Int32Array.from(data)
        : b.storage === 'f32'
          ? data instanceof Float32Array
            ? data
            : Float32Array.from(data)
          : toHalves(data, b.storage);
    this.device.queue.writeBuffer(b.buf, at, arr.buffer, arr.byteOffset, arr.byteLength);
  }

  /** Byte offset and length of `count` elements at `offset`; 16-bit buffers move whole 4-byte words (even counts). */
  private byteRange(b: Buf, what: string, offset: number, count: number): [number, number] {
    if (b.storage === 'f32') return [offset * 4, count * 4];
    if (offset % 2 || count % 2)
      throw new RangeError(`${what} ${b.buf.label}: a 16-bit buffer moves pairs of values (${offset}, ${count})`);
    return [offset * 2, count * 2];
  }

  async read(name: string, offset = 0, count?: number): Promise<Float32Array> {
    const b = this.get(name);
    const n = count ?? b.elements - offset;
    const [at, len] = this.byteRange(b, 'read', offset, n);
    const range = await this.copyOut([{ buf: b.buf, at, len }]);
    return b.kind === 'i32'
      ? Float32Array.from(new Int32Array(range))
      : b.storage === 'f32'
        ? new Float32Array(range)
        : fromHalves(new Uint16Array(range), b.storage);
  }

  async readMany(parts: readonly { name: string; offset: number; count: number }[]): Promise<Float32Array[]> {
    const bufs = parts.map((p) => {
      const b = this.get(p.name);
      if (b.storage !== 'f32' || b.kind !== 'f32') throw new Error(`readMany ${p.name}: f32 buffers only`);
      return { buf: b.buf, at: p.offset * 4, len: p.count * 4 };
    });
    const range = await this.copyOut(bufs);
    let off = 0;
    return parts.map((p) => {
      const v = new Float32Array(range, off, p.count);
      off += p.count * 4;
      return v;
    });
  }

  /** Copy byte ranges of buffers, back to back, into one staging buffer (one submit, one map) and return them. */
  private async copyOut(ranges: readonly { buf: GPUBuffer; at: number; len: number }[]): Promise<ArrayBuffer> {
    this.submitCopies();
    const total = ranges.reduce((s, r) => s + r.len, 0),
      bytes = Math.max(4, total); // always a multiple of the 4-byte copy alignment
    const i = this.staging.findIndex((s) => s.size >= bytes);
    const staging =
      i >= 0
        ? this.staging.splice(i, 1)[0]!
        : this.device.createBuffer({
            label: 'staging',
            size: Math.max(256, 2 ** Math.ceil(Math.log2(bytes))),
            usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
          });
    const enc = this.device.createCommandEncoder();
    let off = 0;
    for (const r of ranges) {
      enc.copyBufferToBuffer(r.buf, r.at, staging, off, r.len);
      off += r.len;
    }
    this.device.queue.submit([enc.finish()]);
    // a failed map leaves it unmapped: still reusable. Dawn rejects with an empty message (an AbortError when the
    // device is gone): say what failed, or the cause the device already reported
    await staging.mapAsync(GPUMapMode.READ, 0, bytes).catch((e: Error) => {
      this.throwIfFailed();
      const lost = e.name === 'AbortError' ? ': the device was lost' : '';
      throw new Error(`WebGPU readback failed: ${e.name}${e.message ? ` (${e.message})` : ''}${lost}`);
    });
    try {
      this.throwIfFailed();
      const mapped = staging.getMappedRange(0, bytes);
      if (READBACK_CHUNK_BYTES === 0 || total <= READBACK_CHUNK_BYTES) return mapped.slice(0, total);
      // A large readback (a 2Mamba state snapshot: 173 MB for the small preset, ~70 ms to copy) is copied out a piece
      // per event-loop turn, so that the step loop and HTTP go on meanwhile; the staging buffer stays mapped, its
      // contents fixed when the copy was submitted.
      const out = new Uint8Array(total);
      for (let off = 0; off < total; off += READBACK_CHUNK_BYTES) {
        if (off > 0) {
          await new Promise((res) => setImmediate(res));
          this.readbackYields++;
          this.throwIfFailed();
          if (mapped.byteLength === 0) throw new Error('WebGPU readback failed: its staging buffer went away');
        }
        const n = Math.min(READBACK_CHUNK_BYTES, total - off);
        out.set(new Uint8Array(mapped, off, n), off);
      }
      return out.buffer;
    } finally {
      staging.unmap();
      this.staging.push(staging);
    }
  }

  copyWithin(name: string, src: number, dst: number, count: number): void {
    const b = this.get(name);
    const [from, len] = this.byteRange(b, 'copy', src, count),
      to = this.byteRange(b, 'copy', dst, count)[0];
    // WebGPU copies between two buffers only: through a device-side bounce buffer (grown, never shrunk; the copies
    // recorded so far, which use the old one, go first)
    if (!this.bounce || this.bounce.size < len) {
      this.submitCopies();
      this.bounce?.destroy();
      this.bounce = this.device.createBuffer({
        label: 'bounce',
        size: Math.max(256, 2 ** Math.ceil(Math.log2(len))),
        usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
    }
    this.copies ??= this.device.createCommandEncoder({ label: 'copies' });
    this.copies.copyBufferToBuffer(b.buf, from, this.bounce, 0, len);
    this.copies.copyBufferToBuffer(this.bounce, 0, b.buf, to, len);
  }
  private bounce: GPUBuffer | null = null;
  /** Copies recorded since the last submit (a slot snapshot is dozens of them): submitted together before anything
   *  else reaches the queue, so their order with writes, reads and steps is the order they were asked for. */
  private copies: GPUCommandEncoder | null = null;

  private submitCopies(): void {
    if (!this.copies) return;
    this.device.queue.submit([this.copies.finish()]);
    this.copies = null;
  }

  bytes(role?: BufferRole): number {
    let n = 0;
    for (const b of this.bufs.values()) if (role === undefined || b.role === role) n += b.buf.size;
    return n;
  }

  bufferBytes(name: string): number {
    return this.get(name).buf.size;
  }

  async destroy(): Promise<void> {
    this.copies = null;
    for (const b of this.bufs.values()) b.buf.destroy();
    this.bufs.clear();
    this.device.destroy();
  }

  /** Device copy bandwidth (bytes read + written per second) of a vec4 WGSL copy over `bytes`, `reps` times. */
  async copyBandwidth(bytes: number, reps = 20): Promise<number> {
    const size = Math.min(bytes, this.info.maxStorageBufferBindingSize - 4) & ~255;
    const mk = (label: string) => this.device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE });
    const [a, b] = [mk('bw.src'), mk('bw.dst')];
    const module = this.device.createShaderModule({
      code: `@group(0) @binding(0) var<storage, read> s: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> d: array<vec4<f32>>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let total = arrayLength(&s); let stride = n.x * 256u;
  for (var i = g.x; i < total; i += stride) { d[i] = s[i]; }
}`,
    });
    const pipeline = this.device.createComputePipeline({
      label: 'bandwidth',
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
    });
    const group = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: a } },
        { binding: 1, resource: { buffer: b } },
      ],
    });
    const run = async (n: number) => {
      const enc = this.device.createCommandEncoder(),
        pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
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
    a.destroy();
    b.destroy();
    return (2 * size * reps) / s;
  }

  // ---- kernels ----

  private layout(key: string, kernel: Kernel<never>, variant: unknown): GPUBindGroupLayout {
    return this.device.createBindGroupLayout({
      label: key,
      entries: [
        {
          binding: 0,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: 'uniform', minBindingSize: PARAMS_BYTES },
        },
        { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } },
        ...kernel.bindings(variant as never).map((a, i) => ({
          binding: i + 2,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: a === 'ro' ? ('read-only-storage' as const) : ('storage' as const) },
        })),
      ],
    });
  }

  private descriptor(key: string, kernel: Kernel<never>, variant: unknown, layout: GPUBindGroupLayout) {
    const module = this.device.createShaderModule({ label: key, code: kernel.source(variant as never) });
    return {
      label: key,
      layout: this.device.createPipelineLayout({ label: key, bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    };
  }

  private pipeline(kernel: Kernel<never>, variant: unknown) {
    const key = `${kernel.name}:${JSON.stringify(variant)}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const layout = this.layout(key, kernel, variant);
    p = { pipeline: this.device.createComputePipeline(this.descriptor(key, kernel, variant, layout)), layout };
    this.pipelines.set(key, p);
    return p;
  }

  /**
   * Build, ahead of the first request, the pipelines a model with these head dimensions and weight dtypes can use
   * (asynchronously: the event loop stays free while the driver compiles). Returns how many were built.
   */
  async warm(
    headDims: number[],
    dtypes: WeightDType[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<number> {
    const jobs = FAMILIES.flatMap((f) => f.variants(headDims, this)).filter(([, v]) => {
      const dt = (v as { dtype?: WeightDType }).dtype;
      return dt === undefined || dtypes.includes(dt);
    });
    let done = 0;
    await Promise.all(
      jobs.map(async ([kernel, variant]) => {
        const key = `${kernel.name}:${JSON.stringify(variant)}`;
        if (this.pipelines.has(key)) return;
        const layout = this.layout(key, kernel, variant);
        const pipeline = await this.device.createComputePipelineAsync(this.descriptor(key, kernel, variant, layout));
        this.pipelines.set(key, { pipeline, layout });
        onProgress?.(++done, jobs.length);
      }),
    );
    return jobs.length;
  }

  /** Check every kernel variant of every family compiles (WGSL errors surface here, naming the kernel). */
  async compileAll(headDims: number[]): Promise<void> {
    for (const [k, v] of FAMILIES.flatMap((f) => f.variants(headDims, this))) {
      this.device.pushErrorScope('validation');
      this.pipeline(k, v);
      const err = await this.device.popErrorScope();
      if (err) throw new Error(`WGSL kernel ${k.name} ${JSON.stringify(v)}: ${err.message}`);
    }
  }

  /** What a family may ask of the backend while it turns one step's op into dispatches. */
  private context(step: Step): DispatchContext {
    return {
      step,
      rows: totalRows(step),
      seqs: step.seqs.length,
      maxRows: Math.max(0, ...step.seqs.map((s) => s.rows)),
      storage: (name) => this.get(name).storage,
      matrices: this.matrices,
      workgroupBytes: this.workgroupBytes,
      scratchBytes: this.scratchBytes,
      scratch: (name, elements, kind: BufferKind = 'f32') => {
        const b = this.bufs.get(name);
        // doubling (so a growing step does not re-create it every time), but never past what a binding may hold
        if (!b || b.elements < elements)
          this.create(name, Math.max(elements, Math.min(2 * (b?.elements ?? 0), Math.floor(this.scratchBytes / 4))), {
            kind,
            role: 'scratch',
          });
        return name;
      },
      table: (name, values) => {
        if (!this.bufs.has(name)) {
          const v = values();
          this.create(name, v.length, { kind: 'i32', init: v, role: 'scratch' });
        }
        return name;
      },
    };
  }

  /** The step's dispatch list: each op through its family, fusing an op with the next where a family can. */
  private dispatches(plan: Plan, step: Step): { d: Dispatch; opIndex: number }[] {
    const ctx = this.context(step),
      list: { d: Dispatch; opIndex: number }[] = [];
    for (let i = 0; i < plan.ops.length; i++) {
      const op = plan.ops[i]!,
        family = FAMILY_OF.get(op.op);
      if (!family) throw new Error(`webgpu: no kernel family runs op "${op.op}"`);
      const fused = family.fuse?.(op, plan.ops[i + 1], ctx);
      if (fused) {
        for (const d of fused) list.push({ d, opIndex: i });
        i++;
        continue;
      }
      for (const d of family.dispatch(op, ctx)) list.push({ d, opIndex: i });
    }
    return list;
  }

  /**
   * A step's dispatch list is recorded once per (plan, rows of each sequence) — pipelines, bind groups, workgroup
   * counts and a params buffer of its own — and replayed: later steps of that shape only write `meta` (positions,
   * slots, page tables) and encode. A recording is dropped when any of its buffers was re-created.
   */
  private recordings = new Map<
    string,
    {
      epoch: number;
      params: GPUBuffer;
      entries: {
        opIndex: number;
        kernel: string;
        pipeline: GPUComputePipeline;
        group: GPUBindGroup;
        x: number;
        y: number;
        z: number;
      }[];
    }
  >();
  private planIds = new WeakMap<Plan, number>();
  private planShaped = new WeakMap<Plan, Family[]>();
  /** The families of a plan whose grids depend on more than each sequence's rows (looked up once per plan). */
  private shaped(plan: Plan): Family[] {
    let f = this.planShaped.get(plan);
    if (!f) {
      f = FAMILIES.filter((x) => x.shapeKey && plan.ops.some((o) => x.ops.includes(o.op)));
      this.planShaped.set(plan, f);
    }
    return f;
  }
  private nextPlanId = 0;
  private record(plan: Plan, step: Step) {
    let id = this.planIds.get(plan);
    if (id === undefined) {
      id = ++this.nextPlanId;
      this.planIds.set(plan, id);
    }
    // a recording fits steps whose sequences have the same rows and whose families' grids are the same
    const grids = this.shaped(plan).map((f) => f.shapeKey!(step));
    const key = `${id}|${grids.join('|')}|${step.seqs.map((q) => q.rows).join(',')}`;
    const old = this.recordings.get(key);
    if (old && old.epoch === this.gen) return old;
    if (old) old.params.destroy();
    const list = this.dispatches(plan, step);
    const params = this.device.createBuffer({
      label: 'params',
      size: Math.max(256, list.length * PARAM_STRIDE),
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    const blob = new Uint32Array((list.length * PARAM_STRIDE) / 4);
    list.forEach(({ d }, i) => blob.set(d.params, (i * PARAM_STRIDE) / 4));
    this.device.queue.writeBuffer(params, 0, blob.buffer, 0, blob.byteLength);
    const entries = list.map(({ d, opIndex }, i) => {
      const { pipeline, layout } = this.pipeline(d.kernel, d.variant);
      const group = this.device.createBindGroup({
        label: `${d.kernel.name} (${d.buffers.join(', ')})`,
        layout,
        entries: [
          { binding: 0, resource: { buffer: params, offset: i * PARAM_STRIDE, size: PARAMS_BYTES } },
          { binding: 1, resource: { buffer: this.meta! } },
          ...d.buffers.map((n, j) => ({ binding: j + 2, resource: { buffer: this.get(n).buf } })),
        ],
      });
      return {
        opIndex,
        kernel: d.kernel.name,
        pipeline,
        group,
        x: d.groups[0],
        y: d.groups[1],
        z: d.groups[2] ?? 1,
      };
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

  /** Write the step's meta, growing its buffer (which invalidates the recordings that bind it). */
  private writeMeta(step: Step): void {
    const meta = stepMeta(step);
    if (!this.meta || this.meta.size < meta.byteLength) {
      this.meta?.destroy();
      this.meta = this.device.createBuffer({
        label: 'meta',
        size: Math.max(4096, 2 ** Math.ceil(Math.log2(meta.byteLength))),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      });
      this.gen++; // recorded bind groups point at the old meta buffer
    }
    this.device.queue.writeBuffer(this.meta, 0, meta.buffer, 0, meta.byteLength);
  }

  async run(plan: Plan, step: Step): Promise<void> {
    this.throwIfFailed();
    this.submitCopies();
    const tEnc = performance.now();
    this.writeMeta(step);
    const rec = this.record(plan, step);
    let enc = this.device.createCommandEncoder({ label: 'step' });
    const timer = StepTimer.for(this.device, plan, rec.entries, this);
    let pass = enc.beginComputePass({ label: 'step', ...(timer ? { timestampWrites: timer.writes(0) } : {}) });
    let last: GPUComputePipeline | null = null;
    const entries = rec.entries;
    // A step of many rows goes to the queue in pieces of EARLY_FIRST, ×4, ×16 … launches, so the GPU starts on the
    // first while the host encodes the rest (a 4096-row step's ~300 launches take ~2 ms to encode; docs/perf.md).
    let early = !timer && totalRows(step) >= EARLY_ROWS ? EARLY_FIRST : Infinity;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (i === early) {
        pass.end();
        this.device.queue.submit([enc.finish()]);
        enc = this.device.createCommandEncoder({ label: 'step' });
        pass = enc.beginComputePass({ label: 'step' });
        last = null;
        early *= 4;
      }
      if (timer?.splits(i)) {
        pass.end();
        last = null;
        pass = enc.beginComputePass({ timestampWrites: timer.writes(i) });
      }
      if (e.pipeline !== last) {
        pass.setPipeline(e.pipeline);
        last = e.pipeline;
      }
      pass.setBindGroup(0, e.group);
      pass.dispatchWorkgroups(e.x, e.y, e.z);
    }
    pass.end();
    const submit = () => this.device.queue.submit([enc.finish()]);
    if (!timer) submit();
    this.encodeMs += performance.now() - tEnc;
    this.launches += entries.length;
    if (timer) await timer.finish(enc, submit, this);
  }
}

/** Steps of at least EARLY_ROWS rows are submitted in pieces, the first of EARLY_FIRST launches (run()). */
const EARLY_ROWS = 64,
  EARLY_FIRST = 8;

/** f32 values as 16-bit words: f16 rounded to nearest even; bf16 truncated (weights arrive already rounded to it). */
function toHalves(v: ArrayLike<number>, dt: WeightDType): Uint16Array {
  const out = new Uint16Array(v.length),
    f = new Float32Array(1),
    u = new Uint32Array(f.buffer);
  for (let i = 0; i < v.length; i++) {
    f[0] = v[i]!;
    out[i] = dt === 'bf16' ? u[0]! >>> 16 : f32ToF16(v[i]!);
  }
  return out;
}

function fromHalves(h: Uint16Array, dt: WeightDType): Float32Array {
  if (dt === 'bf16') {
    const u = new Uint32Array(h.length);
    for (let i = 0; i < h.length; i++) u[i] = h[i]! << 16;
    return new Float32Array(u.buffer);
  }
  return Float32Array.from(h, f16ToF32);
}
