// Continuous batching (spec/serving.md §7): requests join and leave at step boundaries. Every step is one forward
// over one decode token of each running request plus prefill chunks of new ones, under a per-step token budget,
// so running streams keep a steady inter-token latency while long prompts are prefilled.
// Admission is memory-aware: a 2Mamba request takes one state slot; a KV request reserves pages for
// prompt + max_tokens up front (no preemption). Requests that do not fit wait in a bounded queue.
import { logprobsOf, Sampler, type SampledToken, type SamplingParams } from './sampler.js';
import type { Sequence, SequenceMemory, SequencePool } from './memory/sequences.js';
import type { DeviceSample, SampledStep } from './model/model.js';
import type { TokenConstraint } from './text/grammar.js';

export interface RequestSpec {
  promptIds: readonly number[];
  maxTokens: number;
  sampling?: Partial<SamplingParams>;
  stopTokenIds?: readonly number[];
  ignoreEos?: boolean;
  minTokens?: number;
  /** Aborting ends the request at the next step boundary (finish "abort") and frees its memory. */
  signal?: AbortSignal;
  /** Absolute time (ms, performance.now()) after which the request ends with finish "deadline". */
  deadline?: number;
  /** Absolute time (ms) by which the request must have left the queue, else it ends with "queue_timeout". */
  queueDeadline?: number;
  /** Opaque label returned by snapshot() (e.g. the HTTP request id). */
  tag?: string;
  /** Feed the whole prompt, keep its state in the prefix cache, generate nothing (ends with "length"). */
  prefillOnly?: boolean;
  /** Prompt logprobs (completions' echo with logprobs): each prompt token's logprob given the tokens before it, with
   *  this many alternatives, through RequestEvents.onPromptLogprobs. Such a request never starts from the prefix cache
   *  (every prompt row must run) and its prefill steps read back every row's logits. */
  promptLogprobs?: number;
  /** A grammar the output must follow (structured outputs): each draw gets its next-token mask (on the device, or on
   *  the host when the request samples there). The scheduler owns it from submit on and disposes of it when the
   *  request ends. */
  constraint?: TokenConstraint;
}

/** How long a step waits for the grammar engine's token masks (a mask takes microseconds to a few ms). */
const MASK_WAIT_MS = 5000;

/** The draw of a row whose token nobody takes (a prefill chunk's end before the prompt's, a request that ended). */
const NO_DRAW: DeviceSample = { temperature: 0, seed: 0, draw: 0 };

/** stop: EOS or a stop id; length: max_tokens; abort: cancelled; deadline: past its deadline. */
export type EndReason = 'stop' | 'length' | 'abort' | 'deadline' | 'queue_timeout';

export interface RequestEvents {
  /** Admitted: memory is reserved and prefill starts with the next step. */
  onStart?(memory: SequenceMemory): void;
  /** A new token; `stop`: it is one of the request's stop ids (EOS unless ignore_eos, stop_token_ids), which ends it. */
  onToken?(tok: SampledToken, stop: boolean): void;
  /** Prompt logprobs of the tokens a prefill step covered (RequestSpec.promptLogprobs), in prompt order, from the
   *  second prompt token on. */
  onPromptLogprobs?(tokens: SampledToken[]): void;
  /** Called once, after the request's memory was freed. `cachedTokens`: prompt tokens restored from a snapshot. */
  onEnd(
    reason: EndReason,
    info: { promptTokens: number; completionTokens: number; cachedTokens: number; peak: SequenceMemory },
  ): void;
  onError?(err: Error): void;
}

export interface SchedulerOptions {
  /** Most requests running at once (also capped by state slots). */
  maxBatch: number;
  /** Most requests waiting; beyond it submit() throws QueueFullError. */
  maxQueue: number;
  /** Tokens per step (decodes + prefill chunks). */
  tokenBudget: number;
  /** Largest prefill chunk of one request in one step. */
  prefillChunk: number;
  /** Tokens per step, and per request, while no request is decoding (nobody's inter-token latency to keep): long
   *  prompts then prefill in larger steps, which run faster per token (default: the budget and chunk above). */
  prefillAlone?: number;
  /** Submit a decode step before the previous step's tokens are back when its shape is known (default true). */
  pipeline?: boolean;
  /** Called when the step loop itself fails (device loss, a broken invariant) instead of failing every request with
   *  the error: `started` requests had begun (their state is lost), `waiting` ones had not (they can run elsewhere).
   *  The scheduler has freed their memory and holds none of them any more. */
  onFailure?: (err: Error, started: Submitted[], waiting: Submitted[]) => void;
  /** Where a prompt's longest known prefix is restored from and finished sequences are kept (2Mamba states). */
  prefixCache?: PrefixCache;
  /** Also keep a prompt's state each time its prefill passes a multiple of this many tokens (0: never). */
  checkpointTokens?: number;
}

/** A store of sequence states by the exact tokens that produced them (engine/memory/state-cache.ts). */
export interface PrefixCache {
  /** Restore the longest stored proper prefix of `ids` into the sequence (its pos becomes that length); 0: none. */
  restore(seq: Sequence, ids: readonly number[]): number;
  /** Keep the sequence's state after `tokens` (seq.pos of them); never waits. `shared`: worth offering to other
   *  replicas too (a prompt's end or checkpoint; not a request's end, whose generated ids a next turn rarely repeats).
   *  `checkpoint`: a snapshot in the middle of a long prefill, kept only where that costs next to nothing. */
  save(seq: Sequence, tokens: readonly number[], shared: boolean, checkpoint?: boolean): void;
}

/** A request as it was submitted (what another scheduler needs to run it). */
export interface Submitted {
  spec: RequestSpec;
  events: RequestEvents;
}

export interface RequestSnapshot {
  tag: string | undefined;
  state: 'waiting' | 'prefill' | 'decode';
  promptTokens: number;
  prefilled: number;
  /** Prompt tokens restored from a snapshot instead of prefilled. */
  cachedTokens: number;
  generated: number;
  maxTokens: number;
  memory: SequenceMemory | null;
}

export class QueueFullError extends Error {
  constructor(readonly waiting: number) {
    super(`the queue is full (${waiting} requests waiting)`);
    this.name = 'QueueFullError';
  }
}

export class RequestTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestTooLargeError';
  }
}

interface Live {
  spec: RequestSpec;
  events: RequestEvents;
  sampler: Sampler;
  stops: Set<number>;
  seq: Sequence | null;
  /** Prompt tokens fed so far (restored ones included). */
  fed: number;
  /** Prompt tokens restored from a snapshot. */
  cached: number;
  generated: number;
  /** The generated ids (what the sequence is fed after its prompt). */
  ids: number[];
  /** The token to feed next step (after prefill). */
  next: number | null;
  peak: SequenceMemory | null;
}

interface StepItem {
  r: Live;
  ids: readonly number[];
  /** The row that ends the request's input so far: its token gets sampled. */
  last: boolean;
}

export class Scheduler {
  private waiting: Live[] = [];
  private running: Live[] = [];
  /** A decode step submitted before the previous step's tokens came back (launchAhead): with its draws, or (a grammar
   *  constrains one of its requests) its forward alone, whose draws go once the previous tokens are accepted. */
  private ahead:
    | { items: StepItem[]; sampling: (DeviceSample | null)[]; result: Promise<SampledStep> }
    | { items: StepItem[]; draws: (sampling: readonly (DeviceSample | null)[]) => Promise<SampledStep> }
    | null = null;
  private loop: Promise<void> | null = null;
  steps = 0;
  /** Steps submitted ahead of the previous step's tokens (pipelined). */
  aheadSteps = 0;

  constructor(
    readonly pool: SequencePool,
    readonly opts: SchedulerOptions,
  ) {}

  get numWaiting(): number {
    return this.waiting.length;
  }

  get numRunning(): number {
    return this.running.length;
  }

  /** Every request the scheduler holds, for /v1/requests and metrics. */
  snapshot(): RequestSnapshot[] {
    const row = (r: Live, state: 'waiting' | 'prefill' | 'decode'): RequestSnapshot => ({
      tag: r.spec.tag,
      state,
      promptTokens: r.spec.promptIds.length,
      prefilled: r.fed,
      cachedTokens: r.cached,
      generated: r.generated,
      maxTokens: r.spec.maxTokens,
      memory: r.seq ? this.pool.memory(r.seq) : null,
    });
    return [
      ...this.running.map((r) => row(r, r.next === null ? 'prefill' : 'decode')),
      ...this.waiting.map((r) => row(r, 'waiting')),
    ];
  }

  /** The token ids that end a request: its stop_token_ids, and EOS unless ignore_eos (min_tokens bans them). */
  stopIds(spec: Pick<RequestSpec, 'stopTokenIds' | 'ignoreEos'>): Set<number> {
    return new Set([...(spec.stopTokenIds ?? []), ...(spec.ignoreEos ? [] : this.pool.model.spec.eosIds)]);
  }

  /**
   * Whether `n` more requests of `tokens` tokens each (prompt + max_tokens) can be taken now. Admission is in order:
   * the waiting requests, then these, each starting at the next step while a batch place, a state slot and its KV
   * pages are free; those that cannot start must fit in --max-queue.
   */
  canQueue(n: number, tokens = 0): boolean {
    let places = Math.min(this.opts.maxBatch - this.running.length, this.pool.freeSlots);
    let pages = this.pool.freePages,
      mustWait = 0;
    const take = (need: number) => {
      if (mustWait === 0 && places > 0 && need <= pages) {
        places--;
        pages -= need;
      } else mustWait++;
    };
    for (const r of this.waiting) take(this.pagesNeeded(r.spec));
    const need = this.pool.pagesFor(tokens);
    for (let i = 0; i < n; i++) take(need);
    return mustWait <= this.opts.maxQueue;
  }

  /** The most requests one API call may hold at once (its choices): what can run plus what can wait. */
  get capacity(): number {
    return Math.min(this.opts.maxBatch, this.pool.slots.capacity) + this.opts.maxQueue;
  }

  /** Pages a request needs for prompt + max_tokens (0 for 2Mamba). */
  private pagesNeeded(spec: RequestSpec): number {
    return this.pool.pagesFor(spec.promptIds.length + spec.maxTokens);
  }

  /** Why a request of `tokens` (prompt + max_tokens) could never be admitted, or null when it fits the KV pool. */
  tooLarge(tokens: number): string | null {
    return this.pool.pagesFor(tokens) > this.pool.pages.capacity
      ? `the request needs ${tokens} tokens of KV cache but the server's memory budget holds ${this.pool.pages.capacity * this.pool.pageSize}`
      : null;
  }

  /** Queue a request. Throws RequestTooLargeError if it could never be admitted, QueueFullError if the queue is full. */
  submit(spec: RequestSpec, events: RequestEvents): void {
    if (!spec.promptIds.length) throw new RangeError('the prompt must hold at least one token');
    const why = this.tooLarge(spec.promptIds.length + spec.maxTokens);
    if (why) throw new RequestTooLargeError(why);
    if (!this.canQueue(1, spec.promptIds.length + spec.maxTokens)) throw new QueueFullError(this.waiting.length);
    const stops = this.stopIds(spec);
    this.waiting.push({
      spec,
      events,
      sampler: new Sampler(spec.sampling ?? {}, spec.promptIds),
      stops,
      seq: null,
      fed: 0,
      cached: 0,
      generated: 0,
      ids: [],
      next: null,
      peak: null,
    });
    this.kick();
  }

  /** Resolves when no request is waiting or running. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  private kick(): void {
    if (!this.loop) {
      this.loop = this.run()
        .catch((e) => this.failAll(e as Error))
        .finally(() => {
          this.loop = null;
        });
    }
  }

  private async run(): Promise<void> {
    while (this.waiting.length || this.running.length || this.ahead) {
      await this.step();
      await new Promise((r) => setImmediate(r)); // let HTTP events (disconnects, new requests) in between steps
    }
  }

  private end(r: Live, reason: EndReason): void {
    r.spec.constraint?.dispose();
    const peak = r.peak ?? {
      kind: 'recurrent_state',
      state_bytes: 0,
      kv_bytes: 0,
      kv_tokens: 0,
      kv_blocks: 0,
      kv_dtype: null,
    };
    if (r.seq) {
      this.keep(r, false);
      this.pool.close(r.seq);
    }
    r.seq = null;
    try {
      r.events.onEnd(reason, {
        promptTokens: r.spec.promptIds.length,
        completionTokens: r.generated,
        cachedTokens: r.cached,
        peak,
      });
    } catch {
      // the request is over and its memory freed; a failing callback cannot take the step loop down with it
    }
  }

  /** After a step's submission: a prompt fed to its end, or past a checkpoint of a long prefill (the item's rows start at
   *  prompt token `from`), keeps its state. */
  private checkpoint({ r, ids, last }: StepItem, from: number): void {
    const every = this.opts.checkpointTokens ?? 0;
    const crossed = every > 0 && r.next === null && Math.floor(from / every) < Math.floor((from + ids.length) / every);
    if (last && r.next === null) this.keep(r, true);
    else if (crossed) this.keep(r, true, true);
  }

  /** Snapshot a request's state after every token it was fed (prompt, then its generated ids) for later prompts. */
  private keep(r: Live, shared: boolean, checkpoint = false): void {
    const cache = this.opts.prefixCache,
      seq = r.seq;
    if (!cache || !seq || seq.pos === 0 || seq.pos > r.spec.promptIds.length + r.ids.length) return;
    try {
      cache.save(seq, [...r.spec.promptIds, ...r.ids].slice(0, seq.pos), shared, checkpoint);
    } catch {
      // a snapshot not taken is only a later miss
    }
  }

  /** End one request with an error of its own (its sampler, detokenizer or callbacks threw): it alone stops, its
   *  memory is freed, and the step loop and every other request go on. */
  private drop(r: Live, err: unknown): void {
    r.spec.constraint?.dispose();
    for (const list of [this.running, this.waiting]) if (list.includes(r)) list.splice(list.indexOf(r), 1);
    if (r.seq) this.pool.close(r.seq);
    r.seq = null;
    try {
      r.events.onError?.(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // as in end()
    }
  }

  /** Run a request's own work; an exception there drops that request only. */
  private guard<T>(r: Live, work: () => T): T | undefined {
    try {
      return work();
    } catch (e) {
      this.drop(r, e);
      return undefined;
    }
  }

  /** The engine error that ended every request, if one did (the model is then unhealthy). */
  failure: Error | null = null;

  private failAll(err: Error): void {
    this.ahead = null; // a step submitted ahead fails with the same cause
    const started = [...this.running, ...this.waiting.filter((r) => r.fed > 0)],
      waiting = this.waiting.filter((r) => r.fed === 0);
    for (const r of [...this.running, ...this.waiting]) {
      if (r.seq) this.pool.close(r.seq);
      r.seq = null;
    }
    this.running = [];
    this.waiting = [];
    const plain = (list: Live[]) => list.map(({ spec, events }) => ({ spec, events }));
    if (this.opts.onFailure) return this.opts.onFailure(err, plain(started), plain(waiting));
    this.failure = err;
    for (const r of [...started, ...waiting]) r.events.onError?.(err);
  }

  /** One scheduler step (§7.1). */
  async step(): Promise<void> {
    const now = performance.now();
    // 1. drop cancelled and expired requests, waiting or running
    const expired = (r: Live): EndReason | null =>
      r.spec.signal?.aborted
        ? 'abort'
        : r.spec.deadline !== undefined && now > r.spec.deadline
          ? 'deadline'
          : r.seq === null && r.spec.queueDeadline !== undefined && now > r.spec.queueDeadline
            ? 'queue_timeout'
            : null;
    for (const list of [this.running, this.waiting]) {
      for (const r of [...list]) {
        const why = expired(r);
        if (why) {
          list.splice(list.indexOf(r), 1);
          this.end(r, why);
        }
      }
    }
    // 2. a request waiting for a place ends background prefills (prefillOnly: they keep what they have fed so far)
    if (
      this.waiting.some((r) => !r.spec.prefillOnly) &&
      (this.pool.freeSlots === 0 || this.running.length >= this.opts.maxBatch)
    ) {
      for (const r of this.running.filter((q) => q.spec.prefillOnly)) {
        this.running.splice(this.running.indexOf(r), 1);
        this.end(r, 'abort');
      }
    }
    // 3. admit waiting requests in order while a slot, the pages and the batch cap allow
    while (
      this.waiting.length &&
      this.running.length < this.opts.maxBatch &&
      this.pool.freeSlots > 0 &&
      this.pagesNeeded(this.waiting[0]!.spec) <= this.pool.freePages
    ) {
      const r = this.waiting.shift()!;
      r.seq = this.pool.open();
      r.cached = r.fed = r.spec.promptLogprobs !== undefined ? 0 : this.restore(r.seq, r.spec.promptIds);
      this.pool.reserve(r.seq, r.spec.promptIds.length + r.spec.maxTokens);
      r.peak = this.pool.memory(r.seq);
      const peak = r.peak;
      if (this.guard(r, () => (r.events.onStart?.(peak), true)) === undefined) continue;
      if (r.spec.maxTokens === 0 && !r.spec.prefillOnly) {
        this.end(r, 'length');
        continue;
      }
      this.running.push(r);
    }
    // a step submitted ahead (below) runs first: its sequences and rows were fixed when it was submitted
    if (this.ahead) {
      const a = 'draws' in this.ahead ? await this.drawAhead(this.ahead) : this.ahead;
      this.ahead = null;
      this.launchAhead(a.items, a.sampling);
      return this.finish(a.items, a.sampling, await a.result);
    }
    // 4. one decode token per running request, then prefill chunks under the remaining budget
    const items: StepItem[] = [];
    let budget = this.opts.tokenBudget;
    for (const r of this.running)
      if (r.next !== null) {
        items.push({ r, ids: [r.next], last: true });
        budget--;
      }
    const alone = !items.length && this.opts.prefillAlone !== undefined;
    if (alone) budget = Math.max(budget, this.opts.prefillAlone!);
    const chunk = alone ? Math.max(this.opts.prefillChunk, this.opts.prefillAlone!) : this.opts.prefillChunk;
    for (const r of this.running) {
      if (r.next !== null || budget <= 0) continue;
      const n = Math.min(chunk, budget, r.spec.promptIds.length - r.fed);
      items.push({ r, ids: r.spec.promptIds.slice(r.fed, r.fed + n), last: r.fed + n === r.spec.promptIds.length });
      budget -= n;
    }
    // sample on the device where the request allows it: then only token ids come back (constrained requests: with
    // their grammar's mask, computed since their last token)
    await this.masks(items.flatMap((it) => (it.last ? [it.r] : [])));
    const sampling: (DeviceSample | null)[] = [];
    for (const it of [...items]) {
      const d = this.guard(it.r, () => (it.last ? this.draw(it.r, 0) : NO_DRAW));
      if (d === undefined) items.splice(items.indexOf(it), 1);
      else sampling.push(d);
    }
    if (!items.length) return;
    // prompt logprobs: this step reads back every row's logits and samples every request on the host
    const allRows = items.some((it) => it.r.next === null && it.r.spec.promptLogprobs !== undefined);
    if (allRows) sampling.fill(null);
    const result = allRows
      ? this.stepAllRows(items)
      : this.pool.submitSampled(
          items.map(({ r, ids }) => ({ seq: r.seq!, ids })),
          sampling,
        );
    // (ordered before the step submitted ahead below)
    for (const it of items) this.checkpoint(it, it.r.fed);
    this.launchAhead(items, sampling);
    this.finish(items, sampling, await result);
  }

  /** Wait for the next-token masks of the constrained ones of these requests; a grammar engine that does not answer
   *  in MASK_WAIT_MS fails those requests alone (draw finds no mask), never the step. */
  private async masks(rs: readonly Live[]): Promise<void> {
    const pending = rs.flatMap((r) =>
      r.spec.constraint && !r.spec.constraint.mask ? [r.spec.constraint.ready()] : [],
    );
    if (!pending.length) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending),
      new Promise((resolve) => (timer = setTimeout(resolve, MASK_WAIT_MS))),
    ]).finally(() => clearTimeout(timer));
  }

  /** A request's draw `ahead` tokens after its next one, on the device (null: it samples on the host). A constrained
   *  request's draw carries its grammar's mask of the next token (which must be known: ahead 0). */
  private draw(r: Live, ahead: number): DeviceSample | null {
    const c = r.spec.constraint;
    if (c && !c.mask) throw new Error(c.error ?? 'the grammar engine gave no mask for the next token');
    return r.sampler.device({
      vocab: this.pool.model.spec.vocab,
      banned: this.banned(r, ahead),
      ahead,
      allowed: c?.mask ?? null,
    });
  }

  /** The draws of a step whose forward went ahead: the previous step's tokens are accepted by now, so the masks of
   *  its constrained requests are (being) computed while that forward runs. Requests that ended meanwhile draw
   *  anything (their token is discarded). */
  private async drawAhead(a: {
    items: StepItem[];
    draws: (sampling: readonly (DeviceSample | null)[]) => Promise<SampledStep>;
  }): Promise<{ items: StepItem[]; sampling: (DeviceSample | null)[]; result: Promise<SampledStep> }> {
    const live = a.items.flatMap(({ r }) => (this.running.includes(r) ? [r] : []));
    await this.masks(live);
    const sampling = a.items.map(({ r }) => {
      if (!this.running.includes(r)) return NO_DRAW;
      return (
        this.guard(r, () => {
          const d = this.draw(r, 0);
          if (!d) throw new Error('a request stepped ahead must sample on the device');
          return d;
        }) ?? NO_DRAW
      );
    });
    const result = a.draws(sampling);
    result.catch(() => {}); // awaited by the caller's finish
    return { items: a.items, sampling, result };
  }

  /** A step that returns every row's logits: prompt logprobs go to the requests that asked for them, and each item's
   *  last row is what the host samples from (as a sampled step's logits). */
  private async stepAllRows(items: readonly StepItem[]): Promise<SampledStep> {
    const V = this.pool.model.spec.vocab;
    const all = await this.pool.step(
      items.map(({ r, ids }) => ({ seq: r.seq!, ids })),
      true,
    );
    const last = new Float32Array(items.length * V);
    let row = 0;
    // (r.fed is still where each item's rows begin: finish() moves it on)
    items.forEach(({ r, ids }, i) => {
      const k = r.spec.promptLogprobs;
      if (k !== undefined && r.next === null) {
        const out: SampledToken[] = [];
        for (let j = 0; j < ids.length; j++) {
          const target = r.fed + j + 1;
          if (target >= r.spec.promptIds.length) break;
          const id = r.spec.promptIds[target]!;
          out.push({ id, ...logprobsOf(all.subarray((row + j) * V, (row + j + 1) * V), id, k) });
        }
        if (out.length) this.guard(r, () => (r.events.onPromptLogprobs?.(out), true));
      }
      last.set(all.subarray((row + ids.length - 1) * V, (row + ids.length) * V), i * V);
      row += ids.length;
    });
    return { tokens: new Float32Array(items.length), logits: last };
  }

  /** Start a new sequence from the longest stored prefix of its prompt; a failed restore is a miss. */
  private restore(seq: Sequence, ids: readonly number[]): number {
    try {
      return this.opts.prefixCache?.restore(seq, ids) ?? 0;
    } catch {
      seq.pos = 0;
      return 0;
    }
  }

  /** Stop tokens banned from the draw `ahead` steps from now (min_tokens not reached yet). */
  private banned(r: Live, ahead: number): Set<number> | undefined {
    return r.generated + ahead < (r.spec.minTokens ?? 0) ? r.stops : undefined;
  }

  /**
   * Pipelining (kernels.md §5.3): right after a step is submitted, submit the next one before the tokens come back,
   * when its shape is already known — every request of the step samples on the device, none can reach max_tokens,
   * nothing waits for admission. That step embeds the tokens the device just sampled, so the host's work for one
   * step (readback, detokenisation, HTTP) overlaps the GPU's work on the next. A request that stops on EOS, a stop
   * string or an abort meanwhile has one extra token computed and discarded.
   */
  private launchAhead(items: readonly StepItem[], sampling: readonly (DeviceSample | null)[]): void {
    if (this.opts.pipeline === false || this.waiting.length || items.length !== this.running.length) return;
    if (items.length === 1 && items[0]!.r.next === null && !items[0]!.last) return this.prefillAhead(items[0]!);
    // a grammar's mask for the next draw needs this step's token: such a step goes ahead without its draws
    const deferred = items.some(({ r }) => r.spec.constraint);
    const next: (DeviceSample | null)[] = [];
    for (const [i, { r, last }] of items.entries()) {
      // (a prefill-only request has max_tokens 0, so it never steps ahead)
      if (!last || !sampling[i] || !this.running.includes(r) || r.generated + 2 > r.spec.maxTokens) return;
      try {
        const vocab = this.pool.model.spec.vocab;
        next.push(r.sampler.device(deferred ? { vocab } : { vocab, banned: this.banned(r, 1), ahead: 1 }));
      } catch {
        return; // the request's own step will surface the error
      }
    }
    if (next.some((d) => d === null)) return;
    const ahead = items.map(({ r }) => ({ r, ids: [] as number[], last: true }));
    this.aheadSteps++;
    if (deferred) {
      this.ahead = { items: ahead, draws: this.pool.submitForward(ahead.map(({ r }) => r.seq!)) };
      return;
    }
    const result = this.pool.submitSampled(
      ahead.map(({ r }) => ({ seq: r.seq!, ids: null })),
      next,
    );
    // awaited by the next step, not now: a failure before then (the backend closed under it) is that step's, not an
    // unhandled rejection
    result.catch(() => {});
    this.ahead = { items: ahead, sampling: next, result };
  }

  /**
   * A lone prompt's prefill: its next chunk is known, so it is submitted before this chunk's step returns, and the
   * host's work between steps (readback, scheduling, encoding) overlaps the GPU's. Its last chunk samples the first
   * token: it goes ahead too where the device draws that token with what is known now (not under a grammar, whose
   * mask waits for its engine; not where the host samples). Not a prompt whose logprobs are read back.
   */
  private prefillAhead({ r, ids }: StepItem): void {
    if (r.spec.promptLogprobs !== undefined || !this.running.includes(r)) return;
    const from = r.fed + ids.length, // where this chunk ends (r.fed moves when it comes back)
      n = Math.min(ids.length, r.spec.promptIds.length - from);
    if (n <= 0) return;
    const last = from + n >= r.spec.promptIds.length;
    let draw: DeviceSample | null = NO_DRAW;
    if (last) {
      if (r.spec.constraint) return;
      try {
        draw = this.draw(r, 0);
      } catch {
        return; // the request's own step will surface the error
      }
      if (!draw) return;
    }
    const next: StepItem = { r, ids: r.spec.promptIds.slice(from, from + n), last };
    this.aheadSteps++;
    const result = this.pool.submitSampled([{ seq: r.seq!, ids: next.ids }], [draw]);
    result.catch(() => {}); // awaited by the next step, as launchAhead's
    this.checkpoint(next, from);
    this.ahead = { items: [next], sampling: [draw], result };
  }

  /** Take a step's tokens: sample on the host where needed, emit, and end finished requests. */
  private finish(
    items: readonly StepItem[],
    sampling: readonly (DeviceSample | null)[],
    { tokens, logits }: SampledStep,
  ): void {
    this.steps++;
    // constrained requests first: their next masks start on the grammar threads while the others are emitted
    const order = items.map((_, i) => i);
    order.sort((a, b) => Number(!!items[b]!.r.spec.constraint) - Number(!!items[a]!.r.spec.constraint));
    for (const i of order) this.take(items[i]!, i, sampling, tokens, logits);
  }

  /** One item of a finished step: move its request on, and emit its token when the step sampled one. */
  private take(
    { r, ids, last }: StepItem,
    i: number,
    sampling: readonly (DeviceSample | null)[],
    tokens: Float32Array,
    logits: Float32Array | null,
  ): void {
    if (!this.running.includes(r)) return; // ended while the step ran (abort, deadline, a stop in the step before)
    if (r.next === null) r.fed += ids.length;
    r.peak = this.pool.memory(r.seq!);
    if (last && r.spec.prefillOnly) {
      this.running.splice(this.running.indexOf(r), 1);
      return this.end(r, 'length');
    }
    if (last) this.guard(r, () => this.emit(r, sampling[i] ? { id: tokens[i]!, logprob: 0 } : null, logits, i));
  }

  /** A request's new token (sampled on the device, or now on the host from its logits row): emit it, end the request
   *  on a stop id or at max_tokens. */
  private emit(r: Live, fromDevice: SampledToken | null, logits: Float32Array | null, row: number): void {
    const V = this.pool.model.spec.vocab;
    const c = r.spec.constraint;
    if (c && !fromDevice && !c.mask) throw new Error(c.error ?? 'the grammar engine gave no mask for the next token');
    if (fromDevice && fromDevice.id < 0) throw new Error('sampler: every token is banned');
    const tok =
      fromDevice ?? r.sampler.sample(logits!.subarray(row * V, (row + 1) * V), this.banned(r, 0), c?.mask ?? null);
    c?.accept(tok.id); // (a token the grammar rejects fails the next draw)
    r.sampler.accept(tok.id);
    r.generated++;
    r.ids.push(tok.id);
    r.next = tok.id;
    const stop = r.stops.has(tok.id);
    r.events.onToken?.(tok, stop);
    const finish: EndReason | null = stop ? 'stop' : r.generated >= r.spec.maxTokens ? 'length' : null;
    if (finish) {
      this.running.splice(this.running.indexOf(r), 1);
      this.end(r, finish);
    }
  }
}
