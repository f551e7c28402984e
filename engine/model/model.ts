// A loaded model on a backend: weights uploaded under the names of llama.ts, the per-request state pools
// (state slots, KV pages) allocated once, and one Plan per logits mode, replayed every step.
import type { Backend, KvDType, Plan, SeqStep, WeightDType } from '../../kernels/backend.js';
import { maskWords, packSampleParams, SAMPLE_PARAMS, type DeviceSample, type Op } from '../../kernels/ops.js';
export type { DeviceSample };
import { f16ToF32, f32ToF16, bf16ToF32, f32ToBF16 } from '../../lib/f16.js';
import type { Checkpoint } from '../../weights/checkpoint.js';
import type { ModelSpec } from '../../weights/config.js';
import { TENSOR } from '../../weights/names.js';
import { phiDim } from '../../kernels/ops.js';
import { A, W, buildPlanOps, qkvWidth } from './llama.js';
import { MIXERS } from './mixers.js';

/** The weights' storage dtype on the device: the checkpoint's (default) or a conversion. */
export type WeightsDType = 'checkpoint' | WeightDType;

export interface PoolOptions {
  /** State slots: the most sequences that can be open at once. */
  slots: number;
  /** KV pages (softmax, 2Mamba-E) and tokens per page. */
  kvPages: number;
  pageSize: number;
  /** How the KV cache holds K and V (default f32). */
  kvDtype?: KvDType;
}

/** A sampled step's result: token ids for the device-sampled sequences, logits [seqs, V] when any needs the host. */
export interface SampledStep {
  tokens: Float32Array;
  logits: Float32Array | null;
}

/** A snapshot of one slot's state (2Mamba S, n and conv state; the conv state of 2Mamba-E). */
export type SlotSnapshot = Map<string, Float32Array>;

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export class Model {
  private plans = new Map<string, Plan>();
  /** Sequences the last sampled step had (a step fed from the device must have as many). */
  private lastSampled = -1;
  /** A forward submitted without its draws (submitForward), until sampleAfter submits them. */
  private unsampled: { seqs: number; ran: Promise<void> } | null = null;
  private capacity = new Map<string, number>();
  /** How the weight matrices are stored on the device. */
  weightDType: WeightDType = 'f32';

  private constructor(
    readonly spec: ModelSpec,
    readonly backend: Backend,
    readonly pools: PoolOptions,
  ) {}

  /** Upload a checkpoint's weights (fusing q/k/v and gate/up) and allocate the state pools. */
  static async load(
    ckpt: Checkpoint,
    backend: Backend,
    pools: PoolOptions,
    onProgress?: (done: number, total: number) => void,
    weightsDType: WeightsDType = 'checkpoint',
  ): Promise<Model> {
    const spec = ckpt.spec,
      m = new Model(spec, backend, pools);
    /** Matrices keep the checkpoint's 16-bit dtype (or convert to the requested one); norms and small vectors are f32. */
    const storageOf = (tensors: string[]): WeightDType => {
      if (weightsDType !== 'checkpoint') return weightsDType;
      const d = ckpt.tensors.get(tensors[0]!)?.dtype;
      return d === 'F16' ? 'f16' : d === 'BF16' ? 'bf16' : 'f32';
    };
    const up = async (name: string, tensors: string[], matrix = false) => {
      const data = concat(await Promise.all(tensors.map((t) => ckpt.read(t))));
      const storage = matrix ? storageOf(tensors) : 'f32';
      // values a 16-bit storage cannot hold exactly are rounded here (a checkpoint of that dtype holds none)
      const exact = tensors.every((t) => ckpt.tensors.get(t)?.dtype === storage.toUpperCase());
      if (storage === 'f16' && !exact) for (let i = 0; i < data.length; i++) data[i] = f16ToF32(f32ToF16(data[i]!));
      if (storage === 'bf16' && !exact) for (let i = 0; i < data.length; i++) data[i] = bf16ToF32(f32ToBF16(data[i]!));
      backend.create(name, data.length, { init: data, storage, role: 'weight' });
    };
    await up(W.embed, [TENSOR.embed], true);
    for (let i = 0; i < spec.layers; i++) {
      const t = TENSOR.layer(i),
        w = W.layer(i);
      await up(w.normIn, [t.normIn]);
      const qkv = spec.naming === 'hf' ? [t.q, t.k, t.v] : [t.qkv];
      // 2Mamba / 2Mamba-E: the decay projection's H rows ride at the end of the qkv matrix (one GEMV for both)
      await up(w.qkv, spec.arch === 'softmax' ? qkv : [...qkv, t.decay], true);
      await up(w.o, [t.o], true);
      if (spec.arch === 'softmax') {
        if (spec.naming === 'paper') await up(w.freqs, [t.freqs]);
        else {
          const { theta } = spec.rope!,
            d = spec.headDim;
          backend.create(w.freqs, d / 2, {
            role: 'weight',
            init: Float32Array.from({ length: d / 2 }, (_, j) => theta ** (-(2 * j) / d)),
          });
        }
      } else {
        await up(w.convW, [t.convW]); // [3E, 1, 2] = [3E, 2]: (previous, current) per channel
        await up(w.convB, [t.convB]);
      }
      await up(w.normPost, [t.normPost]);
      await up(w.gateUp, [t.gate, t.up], true);
      await up(w.down, [t.down], true);
      onProgress?.(i + 1, spec.layers);
    }
    await up(W.norm, [TENSOR.norm]);
    if (!spec.tieEmbeddings) await up(W.lmHead, [TENSOR.lmHead], true);
    m.weightDType = storageOf([TENSOR.layer(0).o]);
    m.allocatePools();
    return m;
  }

  /** Re-create the state and KV pools with other sizes (benchmarks); every open sequence is lost. */
  resizePools(pools: PoolOptions): void {
    (this as { pools: PoolOptions }).pools = { kvDtype: this.kvDtype, ...pools };
    this.plans.clear();
    this.allocatePools();
  }

  private allocatePools(): void {
    const { spec, backend, pools } = this;
    const { layers, heads: H, kvHeads, headDim: d } = spec,
      D = phiDim(d);
    for (let i = 0; i < layers; i++) {
      const w = W.layer(i);
      if (spec.arch !== 'softmax') backend.create(w.conv, pools.slots * qkvWidth(spec), { role: 'state' });
      if (spec.arch === '2mamba') {
        backend.create(w.S, pools.slots * H * D * d, { role: 'state' });
        backend.create(w.N, pools.slots * H * D, { role: 'state' });
      } else {
        const tokens = pools.kvPages * pools.pageSize;
        backend.create(w.k, tokens * kvHeads * d, { role: 'kv', storage: this.kvDtype });
        backend.create(w.v, tokens * kvHeads * d, { role: 'kv', storage: this.kvDtype });
        if (spec.arch === '2mamba-e') backend.create(w.c, tokens * H, { kind: 'cumsum', role: 'kv' });
      }
    }
  }

  get kvDtype(): KvDType {
    return this.pools.kvDtype ?? 'f32';
  }

  /** Names of the per-slot state buffers and their elements per slot (state snapshots carry exactly these). */
  slotBuffers(): [string, number][] {
    const { spec } = this,
      D = phiDim(spec.headDim),
      out: [string, number][] = [];
    for (let i = 0; i < spec.layers; i++) {
      const w = W.layer(i);
      if (spec.arch === '2mamba') out.push([w.S, spec.heads * D * spec.headDim], [w.N, spec.heads * D]);
      if (spec.arch !== 'softmax') out.push([w.conv, qkvWidth(spec)]);
    }
    return out;
  }

  /** Copy one slot's state into another (forks for n > 1, prefix snapshots). */
  copySlot(src: number, dst: number): void {
    for (const [name, n] of this.slotBuffers()) this.backend.copyWithin(name, src * n, dst * n, n);
  }

  /** Copy the first `tokens` tokens of KV from one page list to another (every layer's k, v and c). */
  copyPages(src: readonly number[], dst: readonly number[], tokens: number): void {
    const { spec } = this,
      P = this.pools.pageSize;
    for (let i = 0; i < spec.layers; i++) {
      const w = W.layer(i);
      const bufs: [string, number][] =
        spec.arch === '2mamba'
          ? []
          : [
              [w.k, spec.kvHeads * spec.headDim],
              [w.v, spec.kvHeads * spec.headDim],
            ];
      if (spec.arch === '2mamba-e') bufs.push([w.c, spec.heads]);
      for (const [name, perToken] of bufs) {
        for (let p = 0; p * P < tokens; p++) {
          const n = Math.min(P, tokens - p * P) * perToken;
          this.backend.copyWithin(name, src[p]! * P * perToken, dst[p]! * P * perToken, n);
        }
      }
    }
  }

  /** A copy of one slot's state. Every read is issued before this returns, so the copy is of the state as it is now
   *  (ordered before any later step), whenever the promise resolves. */
  async saveSlot(slot: number): Promise<SlotSnapshot> {
    const bufs = this.slotBuffers(),
      be = this.backend;
    const data = be.readMany
      ? await be.readMany(bufs.map(([name, n]) => ({ name, offset: slot * n, count: n })))
      : await Promise.all(bufs.map(([name, n]) => be.read(name, slot * n, n)));
    return new Map(bufs.map(([name], i) => [name, data[i]!]));
  }

  restoreSlot(slot: number, snap: SlotSnapshot): void {
    for (const [name, n] of this.slotBuffers()) {
      const data = snap.get(name);
      if (!data || data.length !== n) throw new Error(`slot snapshot lacks ${name}`);
      this.backend.write(name, data, slot * n);
    }
  }

  /** The step's Plan: logits of every row, of each sequence's last row, or those plus the device's sample op
   *  ('ahead': the embedding reads the tokens the previous step sampled, act.next, instead of act.ids;
   *  'ahead_forward': that step without its sample op; 'draws': the sample op alone). */
  private plan(mode: 'all' | 'last' | 'sample' | 'ahead' | 'ahead_forward' | 'draws'): Plan {
    let p = this.plans.get(mode);
    if (!p) {
      const sample: Op = {
        op: 'sample',
        logits: A.logits,
        params: A.sampleParams,
        mask: A.sampleMask,
        out: A.next,
        vocab: this.spec.vocab,
      };
      const ops =
        mode === 'draws' ? [] : buildPlanOps(this.spec, MIXERS[this.spec.arch], this.pools.pageSize, mode === 'all');
      if (mode === 'ahead' || mode === 'ahead_forward')
        ops[0] = { ...(ops[0] as Extract<Op, { op: 'embed' }>), ids: A.next };
      if (mode === 'sample' || mode === 'ahead' || mode === 'draws') ops.push(sample);
      p = { ops };
      this.plans.set(mode, p);
    }
    return p;
  }

  /** Grow the step's activation buffers to hold `rows` rows (never shrinks). Logits: one row per sequence, or per row
   *  for a step that reads every row's (`allRows`): a 4096-row step of a 128k vocabulary would need 2 GiB. */
  private ensureActivations(rows: number, seqs: number, allRows: boolean): void {
    const { spec } = this,
      E = spec.hidden,
      qkv = qkvWidth(spec),
      decay = spec.arch === 'softmax' ? 0 : spec.heads;
    const perRow: [string, number, 'f32' | 'i32'][] = [
      [A.ids, 1, 'i32'],
      [A.h, E, 'f32'],
      [A.qkvRaw, qkv + decay, 'f32'],
      [A.qkv, qkv, 'f32'],
      [A.logA, spec.heads, 'f32'],
      [A.y, spec.heads * spec.headDim, 'f32'],
      [A.gu, 2 * spec.intermediate, 'f32'],
      [A.last, E, 'f32'],
      [A.logits, spec.vocab, 'f32'],
      [A.sampleParams, SAMPLE_PARAMS, 'i32'],
      [A.sampleMask, maskWords(spec.vocab), 'i32'],
      [A.next, 1, 'i32'],
    ];
    const perSeq: string[] = [A.last, A.sampleParams, A.sampleMask, A.next, ...(allRows ? [] : [A.logits])];
    for (const [name, width, kind] of perRow) {
      const n = (perSeq.includes(name) ? seqs : rows) * width;
      if ((this.capacity.get(name) ?? -1) < n) {
        const cap = Math.max(n, 2 * (this.capacity.get(name) ?? 0));
        this.backend.create(name, cap, { kind });
        this.capacity.set(name, cap);
      }
    }
  }

  /** Check a step's shape and write its token ids. */
  private prepare(seqs: readonly SeqStep[], ids: ArrayLike<number> | null, allRows = false): number {
    if (this.unsampled) throw new Error('a forward is waiting for its draws (sampleAfter)');
    const rows = seqs.reduce((s, q) => s + q.rows, 0);
    if (ids && rows !== ids.length) throw new Error(`forward: ${ids.length} ids for ${rows} rows`);
    if (seqs.some((s) => s.rows < 1)) throw new Error('forward: every sequence needs at least one new token');
    for (const s of seqs) {
      if (s.slot < 0 || s.slot >= this.pools.slots)
        throw new RangeError(`forward: slot ${s.slot} outside 0 … ${this.pools.slots - 1}`);
      if (this.spec.arch !== '2mamba' && s.pages.length * this.pools.pageSize < s.pos + s.rows) {
        throw new RangeError(`forward: ${s.pages.length} KV page(s) cannot hold ${s.pos + s.rows} tokens`);
      }
    }
    for (let i = 0; ids && i < ids.length; i++) {
      if (!Number.isInteger(ids[i]) || ids[i]! < 0 || ids[i]! >= this.spec.vocab) {
        throw new RangeError(`token id ${ids[i]} is outside the vocabulary (0 … ${this.spec.vocab - 1})`);
      }
    }
    this.ensureActivations(rows, seqs.length, allRows);
    if (ids) this.backend.write(A.ids, ids);
    return rows;
  }

  /**
   * One forward step over several sequences: `ids` holds each sequence's new tokens back to back, in the order
   * of `seqs`. Returns logits [seqs, V] for each sequence's last row, or [rows, V] for every row.
   */
  async forward(seqs: readonly SeqStep[], ids: ArrayLike<number>, allLogits = false): Promise<Float32Array> {
    const rows = this.prepare(seqs, ids, allLogits);
    await this.backend.run(this.plan(allLogits ? 'all' : 'last'), { seqs });
    return this.backend.read(A.logits, 0, (allLogits ? rows : seqs.length) * this.spec.vocab);
  }

  /**
   * A step that samples on the device: each sequence with a DeviceSample gets its next token from the Plan's sample
   * op, and only the token ids come back (4 bytes per sequence); when any sequence is null (its sampling needs the
   * host: penalties, top-p, logprobs …) the logits come back too. `ids` null: every sequence feeds one token, the one
   * the device sampled for it in the previous step (same sequences in the same order), so the step can be submitted
   * before that step's tokens reach the host. The step and its readbacks are submitted before this returns; the
   * promise resolves when the results arrive.
   */
  submitSampled(
    seqs: readonly SeqStep[],
    ids: ArrayLike<number> | null,
    sampling: readonly (DeviceSample | null)[],
  ): Promise<SampledStep> {
    if (sampling.length !== seqs.length)
      throw new Error(`submitSampled: ${sampling.length} samplers for ${seqs.length} sequences`);
    this.feed(seqs, ids);
    this.writeDraws(sampling);
    return this.results(
      seqs.length,
      sampling,
      this.backend.run(this.plan(ids === null ? 'ahead' : 'sample'), { seqs }),
    );
  }

  /**
   * The forward of a step fed from the device (as submitSampled with `ids` null) without its draws, which
   * sampleAfter submits later with the same sequences: a grammar's mask for these draws needs the previous step's
   * tokens on the host, and the forward runs meanwhile. Nothing else may be submitted in between.
   */
  submitForward(seqs: readonly SeqStep[]): void {
    if (this.unsampled) throw new Error('submitForward: the previous forward has not been sampled');
    this.feed(seqs, null);
    const ran = this.backend.run(this.plan('ahead_forward'), { seqs });
    ran.catch(() => {}); // sampleAfter's promise carries the failure
    this.unsampled = { seqs: seqs.length, ran };
  }

  /** The draws of the forward submitForward submitted (same sequences, same order). */
  sampleAfter(seqs: readonly SeqStep[], sampling: readonly (DeviceSample | null)[]): Promise<SampledStep> {
    const u = this.unsampled;
    if (!u || u.seqs !== seqs.length || sampling.length !== seqs.length)
      throw new Error(`sampleAfter: no forward of ${seqs.length} sequences to sample`);
    this.unsampled = null;
    this.writeDraws(sampling);
    const ran = this.backend.run(this.plan('draws'), { seqs });
    return this.results(seqs.length, sampling, Promise.all([u.ran, ran]));
  }

  /** Check a step's sequences (one row each when fed from the device: the tokens the last draws left in act.next). */
  private feed(seqs: readonly SeqStep[], ids: ArrayLike<number> | null): void {
    if (ids === null) {
      if (seqs.some((s) => s.rows !== 1))
        throw new Error('submitSampled: a step fed from the device has one row per sequence');
      if (seqs.length !== this.lastSampled)
        throw new Error(`submitSampled: the previous step sampled ${this.lastSampled} sequences, not ${seqs.length}`);
    }
    this.prepare(seqs, ids);
  }

  /** The draws' params and the masks of the masked ones. */
  private writeDraws(sampling: readonly (DeviceSample | null)[]): void {
    this.backend.write(A.sampleParams, packSampleParams(sampling));
    const Wm = maskWords(this.spec.vocab);
    sampling.forEach((d, i) => {
      if (!d?.mask) return;
      if (d.mask.length !== Wm) throw new Error(`a sampling mask has ${d.mask.length} words, not ${Wm}`);
      this.backend.write(A.sampleMask, d.mask, i * Wm);
    });
  }

  /** The sampled tokens (and the logits when a draw needs the host), read behind the step that makes them. */
  private results(
    seqs: number,
    sampling: readonly (DeviceSample | null)[],
    ran: Promise<unknown>,
  ): Promise<SampledStep> {
    this.lastSampled = seqs;
    // enqueued now, behind the step and ahead of any later one (which overwrites act.next)
    const tokens = this.backend.read(A.next, 0, seqs);
    const logits = sampling.some((d) => d === null) ? this.backend.read(A.logits, 0, seqs * this.spec.vocab) : null;
    return (async () => {
      await ran;
      return { tokens: await tokens, logits: logits && (await logits) };
    })();
  }
}
