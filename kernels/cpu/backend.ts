// The CPU backend: buffers are typed arrays, a Plan runs op by op. Cumulative log-decays are held in f64.
import { type Backend, type BufferKind, type Op, type Plan, type Step, type WeightDType, drawKey, sampleNoise, totalRows } from '../backend.js';
import * as k from './ops.js';

type Arr = Float32Array | Int32Array | Float64Array;

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  private bufs = new Map<string, Arr>();

  /** Weights are held in f32 whatever their storage dtype (the values given are already representable in it). */
  create(name: string, elements: number, kind: BufferKind = 'f32', init?: ArrayLike<number>, _storage?: WeightDType): void {
    const a = kind === 'i32' ? new Int32Array(elements) : kind === 'cumsum' ? new Float64Array(elements) : new Float32Array(elements);
    if (init) {
      if (init.length !== elements) throw new RangeError(`create ${name}: ${init.length} initial values for ${elements} elements`);
      a.set(init);
    }
    this.bufs.set(name, a);
  }

  has(name: string): boolean {
    return this.bufs.has(name);
  }

  private get(name: string): Arr {
    const b = this.bufs.get(name);
    if (!b) throw new Error(`cpu backend: no buffer "${name}"`);
    return b;
  }

  private scratch = new Float32Array(0);
  /** A scratch row block for fused prologues (rmsnorm / silu·mul before a matmul). */
  private temp(n: number): Float32Array {
    if (this.scratch.length < n) this.scratch = new Float32Array(n);
    return this.scratch.subarray(0, n);
  }

  private f32(name: string): Float32Array {
    const b = this.get(name);
    if (!(b instanceof Float32Array)) throw new Error(`cpu backend: buffer "${name}" is not f32`);
    return b;
  }

  size(name: string): number {
    return this.get(name).length;
  }

  write(name: string, data: ArrayLike<number>, offset = 0): void {
    const b = this.get(name);
    if (offset + data.length > b.length) throw new RangeError(`write ${name}: ${offset}+${data.length} exceeds ${b.length}`);
    b.set(data, offset);
  }

  async read(name: string, offset = 0, count?: number): Promise<Float32Array> {
    const b = this.get(name);
    return Float32Array.from(b.subarray(offset, count === undefined ? b.length : offset + count));
  }

  copyWithin(name: string, src: number, dst: number, count: number): void {
    this.get(name).copyWithin(dst, src, src + count);
  }

  bytes(filter: (name: string) => boolean = () => true): number {
    let n = 0;
    for (const [name, b] of this.bufs) if (filter(name)) n += b.byteLength;
    return n;
  }

  async run(plan: Plan, step: Step): Promise<void> {
    const rows = totalRows(step);
    for (const op of plan.ops) this.exec(op, step, rows);
  }

  async destroy(): Promise<void> {
    this.bufs.clear();
  }

  private exec(op: Op, step: Step, rows: number): void {
    switch (op.op) {
      case 'embed': {
        const table = this.f32(op.table);
        const ids = this.get(op.ids);
        if (!(ids instanceof Int32Array)) throw new Error(`embed: ids buffer "${op.ids}" is not i32`);
        return k.embed(table, ids, this.f32(op.out), rows, op.dim, table.length / op.dim);
      }
      case 'matmul': {
        const R = op.perSeq ? step.seqs.length : rows;
        let x = this.f32(op.x);
        if (op.norm) {
          const xn = this.temp(R * op.k);
          k.rmsnorm(x, this.f32(op.norm.weight), xn, R, op.k, op.norm.eps);
          x = xn;
        } else if (op.act === 'silu_mul') {
          const xa = this.temp(R * op.k);
          k.siluMul(x, xa, R, op.k);
          x = xa;
        }
        return k.matmul(x, this.f32(op.w), this.f32(op.out), R, op.k, op.n, op.add);
      }
      case 'conv2': {
        const x = this.f32(op.x), st = this.f32(op.state), w = this.f32(op.weight), b = this.f32(op.bias), out = this.f32(op.out);
        const ch = op.ch, xs = op.xStride ?? ch, row = (r: number) => x.subarray(r * xs, r * xs + ch);
        let r = 0;
        for (const s of step.seqs) {
          const slot = st.subarray(s.slot * ch, (s.slot + 1) * ch);
          for (let t = 0; t < s.rows; t++, r++) {
            const prev = t > 0 ? row(r - 1) : s.pos > 0 ? slot : null;
            k.conv2Row(prev, row(r), w, b, out.subarray(r * ch, (r + 1) * ch), ch);
          }
          if (s.rows > 0) slot.set(row(r - 1));
        }
        if (op.decay) {
          const H = op.decay.heads, la = this.f32(op.decay.out);
          for (let i = 0; i < rows; i++) for (let h = 0; h < H; h++) la[i * H + h] = -k.softplus(x[i * xs + ch + h]!);
        }
        return;
      }
      case 'mamba2': {
        const src = this.f32(op.qkv), logA = this.f32(op.logA), S = this.f32(op.S), N = this.f32(op.N), y = this.f32(op.out);
        const H = op.heads, d = op.headDim, D = k.phiDim(d), E = H * d, width = 3 * E;
        let r0 = 0;
        for (const s of step.seqs) {
          for (let h = 0; h < H; h++) {
            const Sh = S.subarray((s.slot * H + h) * D * d, (s.slot * H + h + 1) * D * d);
            const Nh = N.subarray((s.slot * H + h) * D, (s.slot * H + h + 1) * D);
            if (s.pos === 0) { Sh.fill(0); Nh.fill(0); }
            if (s.rows === 1) {
              const o = r0 * width;
              k.mamba2Step(src.subarray(o + h * d, o + (h + 1) * d), src.subarray(o + E + h * d, o + E + (h + 1) * d),
                src.subarray(o + 2 * E + h * d, o + 2 * E + (h + 1) * d), Math.exp(logA[r0 * H + h]!), Sh, Nh,
                y.subarray(r0 * E + h * d, r0 * E + (h + 1) * d), d);
            } else if (s.rows > 1) {
              k.mamba2Chunked(src.subarray(r0 * width), h * d, E + h * d, 2 * E + h * d, width,
                logA.subarray(r0 * H + h), H, s.rows, Sh, Nh, y.subarray(r0 * E + h * d), E, d);
            }
          }
          r0 += s.rows;
        }
        return;
      }
      case 'rope': {
        const x = this.f32(op.qkv), freqs = this.f32(op.freqs), off = k.qkvOffsets(op.layout), d = op.layout.headDim;
        let r = 0;
        for (const s of step.seqs) {
          for (let t = 0; t < s.rows; t++, r++) {
            const base = r * off.width;
            for (let h = 0; h < op.layout.heads; h++) k.ropeHead(x, base + off.q(h), s.pos + t, freqs, d, op.convention);
            for (let g = 0; g < op.layout.kvHeads; g++) k.ropeHead(x, base + off.k(g), s.pos + t, freqs, d, op.convention);
          }
        }
        return;
      }
      case 'kv_append': {
        const x = this.f32(op.qkv), K = this.f32(op.k), V = this.f32(op.v), off = k.qkvOffsets(op.layout);
        const { kvHeads, headDim: d, heads } = op.layout, P = op.pageSize;
        const C = op.c ? this.get(op.c) : null, logA = op.logA ? this.f32(op.logA) : null;
        let r = 0;
        for (const s of step.seqs) {
          for (let t = 0; t < s.rows; t++, r++) {
            const pos = s.pos + t, page = pageOf(s.pages, pos, P), slotBase = page * P + (pos % P);
            for (let g = 0; g < kvHeads; g++) {
              K.set(x.subarray(r * off.width + off.k(g), r * off.width + off.k(g) + d), (slotBase * kvHeads + g) * d);
              V.set(x.subarray(r * off.width + off.v(g), r * off.width + off.v(g) + d), (slotBase * kvHeads + g) * d);
            }
            if (C && logA) {
              // C_pos = C_{pos−1} + A_pos, C_{−1} = 0 (spec §6.2).
              const prevBase = pos > 0 ? pageOf(s.pages, pos - 1, P) * P + ((pos - 1) % P) : -1;
              for (let h = 0; h < heads; h++) C[slotBase * heads + h] = (prevBase >= 0 ? C[prevBase * heads + h]! : 0) + logA[r * heads + h]!;
            }
          }
        }
        return;
      }
      case 'attention': {
        const x = this.f32(op.qkv), K = this.f32(op.k), V = this.f32(op.v), out = this.f32(op.out);
        const C = op.c ? this.get(op.c) : null, off = k.qkvOffsets(op.layout);
        const { heads, kvHeads, headDim: d } = op.layout, P = op.pageSize;
        let r = 0;
        for (const s of step.seqs) {
          for (let t = 0; t < s.rows; t++, r++) {
            const pos = s.pos + t;
            const at = (j: number) => pageOf(s.pages, j, P) * P + (j % P);
            for (let h = 0; h < heads; h++) {
              const g = Math.floor(h / off.group);
              k.attendRow(x, r * off.width + off.q(h), K, V, (j) => (at(j) * kvHeads + g) * d, pos + 1, d,
                C ? (j) => C[at(j) * heads + h]! : null, out, r * heads * d + h * d);
            }
          }
        }
        return;
      }
      case 'sample': {
        const x = this.f32(op.logits), prm = this.get(op.params), out = this.get(op.out), V = op.vocab;
        const bits = new Int32Array(1), temp = new Float32Array(bits.buffer);
        for (let s = 0; s < step.seqs.length; s++) {
          bits[0] = prm[4 * s]!;
          const T = temp[0]!, key = drawKey(prm[4 * s + 1]!, prm[4 * s + 2]!, prm[4 * s + 3]!);
          const score = (i: number) => (T > 0 ? x[s * V + i]! / T + sampleNoise(key, i) : x[s * V + i]!);
          let best = score(0), arg = 0;
          for (let i = 1; i < V; i++) { const v = score(i); if (v > best) { best = v; arg = i; } }
          out[s] = arg;
        }
        return;
      }
      case 'gather_last': {
        const x = this.f32(op.x), out = this.f32(op.out);
        let r = 0, i = 0;
        for (const s of step.seqs) {
          r += s.rows;
          if (s.rows > 0) out.set(x.subarray((r - 1) * op.dim, r * op.dim), i * op.dim);
          i++;
        }
        return;
      }
    }
  }
}

function pageOf(pages: readonly number[], pos: number, pageSize: number): number {
  const p = pages[Math.floor(pos / pageSize)];
  if (p === undefined) throw new RangeError(`KV position ${pos} is beyond the sequence's ${pages.length} page(s) of ${pageSize}`);
  return p;
}
