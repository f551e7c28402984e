// Per-request state: each open sequence holds one state slot and (KV models) a list of KV pages. The
// model holds no request state; this is where every byte a request holds is counted.
import { memoryModel } from './prices.js';
import { IdPool } from './ids.js';
import type { DeviceSample, Model, SampledStep } from '../model/model.js';
import type { SeqStep } from '../../kernels/backend.js';

export interface Sequence {
  readonly id: number;
  readonly slot: number;
  readonly pages: number[];
  /** Tokens processed so far (the position of the next token). */
  pos: number;
}

export interface SequenceMemory {
  kind: 'recurrent_state' | 'kv_cache';
  state_bytes: number;
  kv_bytes: number;
  kv_tokens: number;
  kv_blocks: number;
  /** How the KV cache holds K and V (null: 2Mamba, no KV cache). The state is always f32. */
  kv_dtype: 'f32' | 'f16' | null;
}

let nextId = 1;

export class SequencePool {
  readonly slots: IdPool;
  readonly pages: IdPool;
  private readonly open_ = new Set<Sequence>();
  /** The state cache's device tier, when it holds slots: they count as free and are given back on demand. */
  slotCache: { readonly held: number; evict(n: number): number } | null = null;
  /** The KV prefix cache, when the model has one: its unheld pages count as free and are evicted on demand. */
  pageCache: { readonly evictable: number; evict(n: number): number } | null = null;

  constructor(readonly model: Model) {
    this.slots = new IdPool(model.pools.slots, 'state slot');
    this.pages = new IdPool(model.spec.arch === '2mamba' ? 0 : model.pools.kvPages, 'KV page');
  }

  get pageSize(): number {
    return this.model.pools.pageSize;
  }

  /** Pages needed to hold `tokens` tokens (0 for 2Mamba). */
  pagesFor(tokens: number): number {
    return this.model.spec.arch === '2mamba' ? 0 : Math.ceil(tokens / this.pageSize);
  }

  /** State slots a request can get now: the free ones and those holding cached snapshots. */
  get freeSlots(): number {
    return this.slots.available + (this.slotCache?.held ?? 0);
  }

  open(): Sequence {
    if (this.slots.available === 0) this.slotCache?.evict(1);
    const seq: Sequence = { id: nextId++, slot: this.slots.acquire(), pages: [], pos: 0 };
    this.open_.add(seq);
    return seq;
  }

  /** KV pages a request can get now: the free ones and those only the prefix cache holds. */
  get freePages(): number {
    return this.pages.available + (this.pageCache?.evictable ?? 0);
  }

  /** Make sure the sequence's pages cover `tokens` tokens (the scheduler reserves prompt + max_tokens up front). */
  reserve(seq: Sequence, tokens: number): void {
    const need = this.pagesFor(tokens) - seq.pages.length;
    if (need > this.pages.available) this.pageCache?.evict(need - this.pages.available);
    if (need > 0) seq.pages.push(...this.pages.acquireMany(need));
  }

  close(seq: Sequence): void {
    if (!this.open_.delete(seq)) return;
    for (const p of seq.pages) this.pages.release(p);
    seq.pages.length = 0;
    this.slots.release(seq.slot);
  }

  /** A new sequence with a copy of `src`'s state and KV (n > 1 siblings, snapshots). */
  fork(src: Sequence): Sequence {
    const seq = this.open();
    try {
      this.reserve(seq, src.pos);
    } catch (e) {
      this.close(seq);
      throw e;
    }
    this.model.copySlot(src.slot, seq.slot);
    this.model.copyPages(src.pages, seq.pages, src.pos);
    seq.pos = src.pos;
    return seq;
  }

  /** Bytes this sequence holds now: the fixed state plus whole KV pages. */
  memory(seq: Sequence): SequenceMemory {
    const m = memoryModel(this.model.spec, this.model.kvDtype);
    const kvTokens = seq.pages.length * this.pageSize;
    return {
      kind: this.model.spec.arch === '2mamba' ? 'recurrent_state' : 'kv_cache',
      state_bytes: m.stateBytes,
      kv_bytes: kvTokens * m.kvBytesPerToken,
      kv_tokens: this.model.spec.arch === '2mamba' ? 0 : seq.pos,
      kv_blocks: seq.pages.length,
      kv_dtype: this.model.spec.arch === '2mamba' ? null : this.model.kvDtype,
    };
  }

  /** Feed each sequence its new tokens (pages grow as needed) and advance it. Logits as Model.forward. */
  async step(items: readonly { seq: Sequence; ids: readonly number[] }[], allLogits = false): Promise<Float32Array> {
    const logits = await this.model.forward(
      this.seqSteps(items),
      items.flatMap((it) => it.ids),
      allLogits,
    );
    for (const { seq, ids } of items) seq.pos += ids.length;
    return logits;
  }

  /** As step, sampling on the device where a DeviceSample is given (Model.submitSampled; `ids` null: one token per
   *  sequence, the one the device sampled for it in the previous step). Positions advance at submission. */
  submitSampled(
    items: readonly { seq: Sequence; ids: readonly number[] | null }[],
    sampling: readonly (DeviceSample | null)[],
  ): Promise<SampledStep> {
    const fromDevice = items.every((it) => it.ids === null);
    if (!fromDevice && items.some((it) => it.ids === null))
      throw new Error('submitSampled: either every sequence or none is fed from the device');
    const steps = this.seqSteps(items.map(({ seq, ids }) => ({ seq, ids: ids ?? [0] })));
    const out = this.model.submitSampled(steps, fromDevice ? null : items.flatMap((it) => it.ids!), sampling);
    for (const { seq, ids } of items) seq.pos += ids ? ids.length : 1;
    return out;
  }

  /** A step fed from the device whose draws come later (Model.submitForward): the forward is submitted now and
   *  positions advance; the returned function submits the draws (Model.sampleAfter) once they are known. */
  submitForward(seqs: readonly Sequence[]): (sampling: readonly (DeviceSample | null)[]) => Promise<SampledStep> {
    const steps = this.seqSteps(seqs.map((seq) => ({ seq, ids: [0] })));
    this.model.submitForward(steps);
    for (const seq of seqs) seq.pos += 1;
    return (sampling) => this.model.sampleAfter(steps, sampling);
  }

  private seqSteps(items: readonly { seq: Sequence; ids: readonly number[] }[]): SeqStep[] {
    for (const { seq, ids } of items) this.reserve(seq, seq.pos + ids.length);
    return items.map(({ seq, ids }) => ({ slot: seq.slot, pos: seq.pos, rows: ids.length, pages: seq.pages }));
  }
}
