// The engine facade: one served model = its weights on a backend, pools sized by the memory budget, the scheduler,
// the tokenizer and the chat template, created from a checkpoint and options. `stats()` is the one object that
// /health, /metrics and /v1/requests read.
import type { Backend } from '../kernels/backend.js';
import type { ModelSpec } from '../weights/config.js';
import { fitPools, planPools, stepWorkingBytes, type PlanOptions, type PoolPlan } from './memory/plan.js';
import { ATTN_TILE_RANGE, m2BoundaryBytes, M2_SEGMENT } from '../kernels/webgpu/tuning.js';
import { SPLIT_K } from '../kernels/webgpu/wgsl/attention.js';
import type { Matrices } from '../kernels/webgpu/wgsl/common.js';
import { stateOnTc } from '../kernels/webgpu/wgsl/mamba2.js';
import { memoryModel, type MemoryModel } from './memory/prices.js';
import type { SequencePool } from './memory/sequences.js';
import { defaultMinHostTokens, StateCache, type StateCacheStats } from './memory/state-cache.js';
import { PageCache } from './memory/page-cache.js';
import { StateDisk, modelIdentity } from './memory/state-disk.js';
import { StateRedis, type StateRedisOptions } from './memory/state-redis.js';
import { mkdir } from 'node:fs/promises';
import type { WeightsDType } from './model/model.js';
import { openModel, type BackendChoice, type KvChoice, type OpenModel } from './open.js';
import { Scheduler, type RequestSnapshot, type Submitted } from './scheduler.js';
import type { ChatTemplate } from './text/chat.js';
import type { TextTokenizer } from './text/tokenizer.js';
import { Grammars } from './text/grammar.js';

export interface EngineOptions extends Omit<PlanOptions, 'kvDtype'> {
  backend: BackendChoice;
  /** How the KV cache holds K and V (auto: f16 on WebGPU, f32 on a CPU). */
  kvDtype?: KvChoice;
  weightsDType?: WeightsDType;
  /** Override the checkpoint's attention_type (2mamba and 2mamba-e share their tensors). */
  arch?: string;
  maxQueue: number;
  tokenBudget: number;
  prefillChunk: number;
  /** Tokens per step while no request decodes (SchedulerOptions.prefillAlone; unset: no such steps; 'auto':
   *  defaultPrefillAlone for the model). */
  prefillAlone?: number | 'auto';
  /** Bytes of host RAM for 2Mamba state snapshots (0: none; default DEFAULT_STATE_CACHE_BYTES). */
  stateCacheHostBytes?: number;
  /** Keep full KV pages of finished requests for later prompts that begin with them (softmax; default true). */
  kvPrefixCache?: boolean;
  /** A directory where 2Mamba snapshots are also written, read back at startup (survives restarts). */
  stateCacheDir?: string;
  /** Bytes the directory may hold (default DEFAULT_STATE_DIR_BYTES; the oldest files go first). */
  stateCacheDirBytes?: number;
  /** A Redis tier every replica of this model shares (2Mamba snapshots; state-redis.ts). */
  stateCacheRedis?: StateRedisOptions;
  /** The fewest tokens a 2Mamba snapshot must cover to go to host RAM, a file or Redis (default: defaultMinHostTokens). */
  stateCacheMinTokens?: number;
  /** Snapshot a long prefill every this many tokens (default DEFAULT_CHECKPOINT_TOKENS; 0: only at its end). */
  stateCheckpointTokens?: number;
}

/** Tokens per step while nothing decodes, by default: 4096 on a GPU for 2Mamba (on an H100 a lone 32k prompt's first
 *  token came in 0.34–0.56 s against 0.45–0.60 s in steps of 1024) and, on tensor cores, for the KV models (a lone
 *  softmax prompt of 32k: 0.77–0.89 s against 0.85–1.15 s; their attention partials, which grow with rows × context,
 *  are in the memory plan: stepWorkingBytes), else 1024 (a CPU step of 4096 rows would hold a newly arrived request
 *  back for seconds). docs/perf.md. */
export const defaultPrefillAlone = (arch: string, backend: string, tensorCores = false) =>
  backend === 'webgpu' && (arch === '2mamba' || tensorCores) ? 4096 : 1024;

/** A backend's tensor-core mode (WebGPU: on with subgroup matrices, emulated or off; other backends: off). */
const matricesOf = (b: Backend): Matrices => (b as { matrices?: Matrices }).matrices ?? 'off';

/** A snapshot every 4096 prefilled tokens: it costs ≤ 3% of the prefill it saves (the small preset's 173 MB state
 *  reads back over PCIe in ~7 ms against 0.25–0.35 s to prefill 4096 tokens on an H200; the tiny model's 10.8 MB in
 *  ~3 ms against ~2 s on 2 cores), and a prompt that leaves a long document re-prefills fewer than 4096 of its tokens. */
export const DEFAULT_CHECKPOINT_TOKENS = 4096;

export const DEFAULT_STATE_DIR_BYTES = 10 * 2 ** 30;

/** 2 GiB: ~190 snapshots of the shipped tiny 2Mamba (10.8 MB), 12 of the paper's small one (173 MB). */
export const DEFAULT_STATE_CACHE_BYTES = 2 * 2 ** 30;

export interface EngineStats {
  running: number;
  waiting: number;
  slots: { total: number; used: number; available: number };
  /** KV pages: held by requests (`used`), kept by the prefix cache for later prompts only (`cached`). */
  kvBlocks: { total: number; used: number; cached: number; blockTokens: number };
  /** Bytes the backend holds, by buffer role. */
  memory: { weights: number; state: number; kv: number };
  /** Every running and waiting request with its live memory. */
  requests: RequestSnapshot[];
  /** The engine error that ended every request, if one did (the model is then unhealthy). */
  failure: string | null;
  /** Reloading the model after an engine failure (new requests get 503 engine_restarting meanwhile). */
  restarting: boolean;
  /** Times the engine reloaded itself after a failure. */
  restarts: number;
  /** The prefix cache: 2Mamba state snapshots or softmax KV pages (null: none for this model). */
  prefixCache: StateCacheStats | null;
}

/** The engine failed (device loss, a broken invariant) while this request ran; it reloaded itself. Retry the request. */
export class EngineRestartedError extends Error {
  constructor(cause: Error) {
    super(`the engine failed while this request ran (${cause.message}) and restarted: retry the request`);
    this.name = 'EngineRestartedError';
  }
}

/** What a (re)load gives: the backend with the weights, the pools and a scheduler over them. */
interface Loaded {
  backend: Backend;
  pool: SequencePool;
  pageCache?: PageCache;
  scheduler: Scheduler;
  close(): Promise<void>;
}

export class Engine {
  readonly created = Math.floor(Date.now() / 1000);
  /** Byte prices of this model's requests (spec/2mamba.md §11). */
  readonly prices: MemoryModel;

  private restarting: Promise<void> | null = null;
  private failure: Error | null = null;
  private restarts = 0;

  private constructor(
    readonly name: string,
    readonly spec: ModelSpec,
    private live: Loaded,
    readonly tokenizer: TextTokenizer,
    readonly chat: ChatTemplate,
    readonly plan: PoolPlan,
    private readonly reopen: () => Promise<Loaded>,
    private readonly log: (line: string) => void,
    private readonly cache?: StateCache,
    private readonly redis?: StateRedis,
  ) {
    this.prices = memoryModel(spec, plan.kvDtype);
    this.grammars = new Grammars(tokenizer, spec.eosIds);
    this.adopt(live);
  }

  /** Structured outputs: this model's grammars (XGrammar on worker threads, started on first use). */
  readonly grammars: Grammars;

  /** Serve from `live`; a failure of its step loop restarts the engine. */
  private adopt(live: Loaded): void {
    this.live = live;
    live.scheduler.opts.onFailure = (err, started, waiting) => void this.restart(err, started, waiting);
  }

  get backend(): Backend {
    return this.live.backend;
  }

  get scheduler(): Scheduler {
    return this.live.scheduler;
  }

  private get pool(): SequencePool {
    return this.live.pool;
  }

  /** Whether the engine is reloading after a failure: requests are refused meanwhile (503, retry shortly). */
  get isRestarting(): boolean {
    return this.restarting !== null;
  }

  /**
   * The step loop failed (device loss, a broken invariant): fail the requests that had started with
   * EngineRestartedError, reload the model on a fresh backend, then run the ones that were only waiting. If the reload
   * fails too, the engine stays failed (/health 503 engine_failed).
   */
  private restart(err: Error, started: Submitted[], waiting: Submitted[]): Promise<void> {
    if (this.closing) {
      // closed under a running step (a background warm-turn prefill): end what was there, reload nothing
      for (const r of [...started, ...waiting]) r.events.onError?.(err);
      return Promise.resolve();
    }
    this.log(`${this.name}: engine failed: ${err.message}; reloading`);
    const t0 = performance.now();
    for (const r of started) r.events.onError?.(new EngineRestartedError(err));
    const old = this.live;
    this.restarting = (async () => {
      try {
        await old.close().catch(() => {});
        this.adopt(await this.reopen());
        this.restarts++;
        this.log(`${this.name}: reloaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        for (const r of waiting) {
          try {
            this.live.scheduler.submit(r.spec, r.events);
          } catch (e) {
            r.events.onError?.(e as Error);
          }
        }
      } catch (e) {
        this.failure = new Error(`${err.message}; reloading failed: ${(e as Error).message}`);
        for (const r of waiting) r.events.onError?.(new EngineRestartedError(err));
      } finally {
        this.restarting = null;
      }
    })();
    return this.restarting;
  }

  static async open(
    dir: string,
    name: string,
    o: EngineOptions,
    onProgress?: (msg: string) => void,
    log?: (line: string) => void,
  ): Promise<Engine> {
    const say = log ?? ((l: string) => process.stderr.write(`fury: ${l}\n`));
    const base = { backend: o.backend, weightsDType: o.weightsDType, kvDtype: o.kvDtype, arch: o.arch, log };
    let plan: PoolPlan | undefined;
    let alone: number | undefined; // --prefill-alone, resolved for the backend
    const om = await openModel(dir, {
      ...base,
      onProgress,
      sizePools: (spec, backend, weightValues, kvDtype) => {
        alone =
          o.prefillAlone === 'auto'
            ? defaultPrefillAlone(spec.arch, backend.name, matricesOf(backend) === 'on')
            : o.prefillAlone;
        const planned = planPools(spec, { ...o, kvDtype });
        // the largest step: a lone prompt's (--prefill-alone rows), or one beside decodes (--token-budget rows, up to
        // --max-batch sequences); a 2Mamba row's scores attend to its segment's keys on WebGPU, where its segments'
        // starting states may be held too (m2BoundaryBytes)
        const gpu = backend.name === 'webgpu',
          m2 = spec.arch === '2mamba',
          bufferBytes = backend.limits?.bufferBytes ?? Infinity,
          step = (rows: number, keysPerRange: number, seqs: number) =>
            stepWorkingBytes(
              spec,
              rows,
              m2 ? M2_SEGMENT : planned.maxModelLen,
              bufferBytes,
              gpu ? (m2 ? SPLIT_K : keysPerRange) : 0,
            ) +
            (gpu && m2 && stateOnTc({ matrices: matricesOf(backend) }, spec.headDim)
              ? Math.max(
                  ...Array.from({ length: seqs }, (_, i) =>
                    m2BoundaryBytes(i + 1, rows, spec.heads, spec.headDim, bufferBytes),
                  ),
                )
              : 0);
        const working = Math.max(step(alone ?? 0, ATTN_TILE_RANGE, 1), step(o.tokenBudget, SPLIT_K, o.maxBatch));
        const fit = fitPools(planned, spec, backend.limits, weightValues, working);
        if (fit.clamped) say(`${name}: ${fit.clamped}`);
        plan = fit.plan;
        return { slots: plan.slots, kvTokens: plan.kvPages * plan.pageSize, pageSize: plan.pageSize };
      },
    });
    if (!plan) throw new Error('openModel did not size the pools');
    const p = plan;
    let currentPool = om.pool;
    const cacheBytes = o.stateCacheHostBytes ?? DEFAULT_STATE_CACHE_BYTES;
    const minHost =
      o.stateCacheMinTokens ?? defaultMinHostTokens(memoryModel(om.model.spec, p.kvDtype).stateBytes, om.model.backend);
    const cache =
      om.model.spec.arch === '2mamba' && cacheBytes > 0
        ? new StateCache(() => currentPool, cacheBytes, true, minHost)
        : undefined;
    if (cache)
      say(
        `${name}: state cache: up to ${cacheBytes} bytes of host RAM for 2Mamba state snapshots` +
          (minHost ? ` of at least ${minHost} tokens (shorter ones stay on the device while a slot is free)` : ''),
      );
    if (om.model.spec.arch !== '2mamba' && o.kvPrefixCache !== false)
      say(
        `${name}: KV prefix cache: finished requests' KV pages stay in the pool until a request needs them` +
          (om.model.spec.arch === '2mamba-e' ? `; up to ${cacheBytes} bytes of host RAM for conv states` : ''),
      );
    // the identity snapshots outside the device are checked against (disk and Redis tiers), read once
    const identity =
      cache && (o.stateCacheDir || o.stateCacheRedis)
        ? await modelIdentity(dir, `${om.model.spec.arch}/${om.model.weightDType}`)
        : '';
    if (cache && o.stateCacheDir) {
      const where = o.stateCacheDir,
        bytes = o.stateCacheDirBytes ?? DEFAULT_STATE_DIR_BYTES;
      await mkdir(where, { recursive: true });
      const disk = new StateDisk(where, identity, om.model.slotBuffers(), bytes, say);
      say(`${name}: state cache: up to ${bytes} bytes in ${where}`);
      void cache.attach(disk).then(
        (n) => say(`${name}: state cache: ${n} snapshots read back from ${where}`),
        (e: Error) => say(`${name}: state cache: reading ${where} failed: ${e.message}`),
      );
    }
    let redis: StateRedis | undefined;
    if (cache && o.stateCacheRedis) {
      redis = new StateRedis(o.stateCacheRedis, identity, om.model.slotBuffers(), say);
      cache.attachRemote(redis);
      say(`${name}: state cache: snapshots shared through redis (up to ${o.stateCacheRedis.capacityBytes} bytes)`);
    }
    const loaded = (m: OpenModel): Loaded => {
      currentPool = m.pool;
      // softmax and 2Mamba-E (its tails carry the conv state)
      const pageCache =
        m.model.spec.arch !== '2mamba' && o.kvPrefixCache !== false
          ? new PageCache(
              m.pool,
              m.pool.pageSize * memoryModel(m.model.spec, p.kvDtype).kvBytesPerToken,
              o.stateCacheHostBytes ?? DEFAULT_STATE_CACHE_BYTES,
            )
          : undefined;
      return {
        backend: m.backend,
        pool: m.pool,
        pageCache,
        scheduler: new Scheduler(m.pool, {
          maxBatch: p.slots,
          maxQueue: o.maxQueue,
          tokenBudget: o.tokenBudget,
          prefillChunk: o.prefillChunk,
          prefillAlone: alone,
          prefixCache: cache ?? pageCache,
          checkpointTokens: o.stateCheckpointTokens ?? DEFAULT_CHECKPOINT_TOKENS,
        }),
        close: async () => {
          await m.tokenizer.close();
          await m.close();
        },
      };
    };
    const reopen = async () =>
      loaded(
        await openModel(dir, {
          ...base,
          sizePools: () => ({ slots: p.slots, kvTokens: p.kvPages * p.pageSize, pageSize: p.pageSize }),
        }),
      );
    return new Engine(name, om.model.spec, loaded(om), om.tokenizer, om.chat, plan, reopen, say, cache, redis);
  }

  /**
   * After a chat turn: prefill, in the background, the conversation as the next turn will render it (the reply
   * re-tokenised from its text, the end-of-turn marker) from the snapshot of this turn's prompt, so the next turn's
   * prompt finds its whole history in the cache. Generated ids often differ from the reply's re-tokenisation, so the
   * end-of-request snapshot alone would miss. Runs only when the cache is on, `canonical` extends `prompt`, and a state
   * slot is free with nothing waiting; a request that then waits for a place ends it (what it fed so far is kept).
   */
  warmTurn(prompt: readonly number[], canonical: readonly number[]): boolean {
    const s = this.scheduler;
    if (!(this.cache || this.live.pageCache) || canonical.length <= prompt.length || s.numWaiting > 0) return false;
    // a free slot, and (KV models) room for the rendering twice over: a warm-up never takes what a request needs
    if (this.pool.freeSlots === 0 || this.pool.pagesFor(canonical.length) * 2 > this.pool.freePages) return false;
    for (let i = 0; i < prompt.length; i++) if (canonical[i] !== prompt[i]) return false;
    try {
      s.submit(
        { promptIds: canonical, maxTokens: 0, prefillOnly: true, sampling: { temperature: 0 }, tag: 'warm-turn' },
        { onEnd: () => {}, onError: () => {} },
      );
      return true;
    } catch {
      return false;
    }
  }

  /** Before queueing a prompt: bring the longest snapshot of its history from the shared Redis tier when this replica
   *  holds a shorter one (a conversation arriving from another replica). Never rejects; a miss costs one lookup. */
  fetchState(ids: readonly number[]): Promise<number> {
    return this.cache?.fetchRemote(ids) ?? Promise.resolve(0);
  }

  /** KV tokens the pool holds (0 for 2Mamba). */
  get kvCacheTokens(): number {
    return this.pool.pages.capacity * this.pool.pageSize;
  }

  /** Whether a new request could neither start nor wait now. */
  get full(): boolean {
    return this.pool.freeSlots === 0 && !this.scheduler.canQueue(1);
  }

  stats(): EngineStats {
    const { slots, pages } = this.pool,
      b = this.backend,
      cachedOnly = this.live.pageCache?.evictable ?? 0;
    return {
      running: this.scheduler.numRunning,
      waiting: this.scheduler.numWaiting,
      slots: {
        total: slots.capacity,
        used: slots.inUse - (this.pool.slotCache?.held ?? 0),
        available: this.pool.freeSlots,
      },
      kvBlocks: {
        total: pages.capacity,
        used: pages.inUse - cachedOnly,
        cached: cachedOnly,
        blockTokens: this.pool.pageSize,
      },
      memory: { weights: b.bytes('weight'), state: b.bytes('state'), kv: b.bytes('kv') },
      requests: this.scheduler.snapshot(),
      failure: (this.failure ?? this.scheduler.failure)?.message ?? null,
      restarting: this.isRestarting,
      restarts: this.restarts,
      prefixCache: this.cache?.stats() ?? this.live.pageCache?.stats() ?? null,
    };
  }

  /** Set by close(): a step failing under it ends its requests without a reload. */
  private closing = false;

  /** Free the device (the weights, pools and pipelines), after writing device snapshots to the state directory. */
  async close(): Promise<void> {
    this.closing = true;
    await this.restarting;
    await this.cache
      ?.flush()
      .catch((e: Error) => this.log(`${this.name}: state cache: writing snapshots failed: ${e.message}`));
    await this.redis?.close();
    await this.grammars.close();
    await this.tokenizer.close();
    await this.live.close();
  }
}
