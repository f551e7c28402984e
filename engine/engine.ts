// The engine facade: one served model = its weights on a backend, pools sized by the memory budget, the scheduler,
// the tokenizer and the chat template, created from a checkpoint and options. `stats()` is the one object that
// /health, /metrics and /v1/requests read.
import type { Backend } from '../kernels/backend.js';
import type { ModelSpec } from '../weights/config.js';
import { planPools, type PlanOptions, type PoolPlan } from './memory/plan.js';
import { memoryModel, type MemoryModel } from './memory/prices.js';
import type { SequencePool } from './memory/sequences.js';
import type { WeightsDType } from './model/model.js';
import { openModel, type BackendChoice } from './open.js';
import { Scheduler, type RequestSnapshot } from './scheduler.js';
import type { ChatTemplate } from './text/chat.js';
import type { TextTokenizer } from './text/tokenizer.js';

export interface EngineOptions extends PlanOptions {
  backend: BackendChoice;
  weightsDType?: WeightsDType;
  /** Override the checkpoint's attention_type (2mamba and 2mamba-e share their tensors). */
  arch?: string;
  maxQueue: number;
  tokenBudget: number;
  prefillChunk: number;
}

export interface EngineStats {
  running: number;
  waiting: number;
  slots: { total: number; used: number; available: number };
  kvBlocks: { total: number; used: number; blockTokens: number };
  /** Bytes the backend holds, by buffer role. */
  memory: { weights: number; state: number; kv: number };
  /** Every running and waiting request with its live memory. */
  requests: RequestSnapshot[];
  /** The engine error that ended every request, if one did (the model is then unhealthy). */
  failure: string | null;
}

export class Engine {
  readonly created = Math.floor(Date.now() / 1000);
  /** Byte prices of this model's requests (spec/2mamba.md §11). */
  readonly prices: MemoryModel;

  private constructor(
    readonly name: string,
    readonly spec: ModelSpec,
    readonly backend: Backend,
    readonly tokenizer: TextTokenizer,
    readonly chat: ChatTemplate,
    private readonly pool: SequencePool,
    readonly scheduler: Scheduler,
    readonly plan: PoolPlan,
    private readonly closeModel: () => Promise<void>,
  ) {
    this.prices = memoryModel(spec);
  }

  static async open(
    dir: string,
    name: string,
    o: EngineOptions,
    onProgress?: (msg: string) => void,
    log?: (line: string) => void,
  ): Promise<Engine> {
    let plan: PoolPlan | undefined;
    const om = await openModel(dir, {
      backend: o.backend,
      weightsDType: o.weightsDType,
      arch: o.arch,
      onProgress,
      log,
      sizePools: (spec) => {
        plan = planPools(spec, o);
        return { slots: plan.slots, kvTokens: plan.kvPages * plan.pageSize, pageSize: plan.pageSize };
      },
    });
    if (!plan) throw new Error('openModel did not size the pools');
    const scheduler = new Scheduler(om.pool, {
      maxBatch: plan.slots,
      maxQueue: o.maxQueue,
      tokenBudget: o.tokenBudget,
      prefillChunk: o.prefillChunk,
    });
    return new Engine(name, om.model.spec, om.backend, om.tokenizer, om.chat, om.pool, scheduler, plan, om.close);
  }

  /** KV tokens the pool holds (0 for 2Mamba). */
  get kvCacheTokens(): number {
    return this.pool.pages.capacity * this.pool.pageSize;
  }

  /** Whether a new request could neither start nor wait now. */
  get full(): boolean {
    return this.pool.slots.available === 0 && !this.scheduler.canQueue(1);
  }

  stats(): EngineStats {
    const { slots, pages } = this.pool,
      b = this.backend;
    return {
      running: this.scheduler.numRunning,
      waiting: this.scheduler.numWaiting,
      slots: { total: slots.capacity, used: slots.inUse, available: slots.available },
      kvBlocks: { total: pages.capacity, used: pages.inUse, blockTokens: this.pool.pageSize },
      memory: { weights: b.bytes('weight'), state: b.bytes('state'), kv: b.bytes('kv') },
      requests: this.scheduler.snapshot(),
      failure: this.scheduler.failure?.message ?? null,
    };
  }

  /** Free the device (the weights, pools and pipelines). */
  async close(): Promise<void> {
    await this.tokenizer.close();
    await this.closeModel();
  }
}
