// Prometheus metrics (spec/serving.md §9): vLLM's metric suffixes under the fury_ prefix, the main ones also under
// vLLM's own names (vllm:…, what vLLM dashboards, autoscalers and inference gateways scrape), plus what no reference
// server reports: memory by kind, slot and block occupancy, per-request memory.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Engine, EngineStats } from '../engine/engine.js';

const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560,
];
const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
const ITL_BUCKETS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];

export class Metrics {
  readonly registry = new Registry();
  readonly ttft: Histogram<'model_name'>;
  readonly itl: Histogram<'model_name'>;
  readonly e2e: Histogram<'model_name'>;
  readonly queueTime: Histogram<'model_name'>;
  readonly promptTokens: Counter<'model_name'>;
  readonly generationTokens: Counter<'model_name'>;
  readonly success: Counter<'model_name' | 'finished_reason'>;
  readonly rejected: Counter<'model_name' | 'reason'>;
  readonly disconnected: Counter<'model_name'>;
  readonly deadlines: Counter<'model_name'>;
  readonly pings: Counter;
  readonly requestMemory: Histogram<'model_name' | 'kind'>;

  constructor(models: () => Engine[]) {
    const r = this.registry,
      m = ['model_name'] as const;
    // the process's own: GC pauses (dawn.node's polling while a readback is pending makes garbage: README), event-loop
    // lag (the HTTP thread must never wait on compute), heap, CPU
    collectDefaultMetrics({ register: r, prefix: 'fury_' });
    // `vllm`: also record under vLLM's name (vllm: + the same suffix)
    const hist = <L extends string>(
      name: string,
      help: string,
      buckets: number[],
      labelNames: readonly L[],
      vllm = false,
    ) => {
      const h = new Histogram<L>({ name, help, buckets, labelNames, registers: [r] });
      if (!vllm) return h;
      const twin = new Histogram<L>({
        name: name.replace(/^fury_/, 'vllm:'),
        help,
        buckets,
        labelNames,
        registers: [r],
      });
      const observe = h.observe.bind(h);
      h.observe = ((...a: Parameters<typeof h.observe>) => {
        observe(...a);
        (twin.observe as (...x: unknown[]) => void)(...a);
      }) as typeof h.observe;
      return h;
    };
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], vllm = false) => {
      const c = new Counter<L>({ name, help, labelNames, registers: [r] });
      if (!vllm) return c;
      const twin = new Counter<L>({ name: name.replace(/^fury_/, 'vllm:'), help, labelNames, registers: [r] });
      const inc = c.inc.bind(c);
      c.inc = ((...a: Parameters<typeof c.inc>) => {
        inc(...a);
        (twin.inc as (...x: unknown[]) => void)(...a);
      }) as typeof c.inc;
      return c;
    };
    this.ttft = hist('fury_time_to_first_token_seconds', 'Time to first token.', TTFT_BUCKETS, m, true);
    this.itl = hist('fury_inter_token_latency_seconds', 'Time between consecutive tokens.', ITL_BUCKETS, m, true);
    this.e2e = hist('fury_e2e_request_latency_seconds', 'End-to-end request latency.', E2E_BUCKETS, m, true);
    this.queueTime = hist(
      'fury_request_queue_time_seconds',
      'Time spent waiting for admission.',
      TTFT_BUCKETS,
      m,
      true,
    );
    this.promptTokens = counter('fury_prompt_tokens_total', 'Prompt tokens processed.', m, true);
    this.generationTokens = counter('fury_generation_tokens_total', 'Tokens generated.', m, true);
    this.success = counter(
      'fury_request_success_total',
      'Finished requests by finish reason.',
      ['model_name', 'finished_reason'],
      true,
    );
    this.rejected = counter('fury_requests_rejected_total', 'Rejected requests by reason.', ['model_name', 'reason']);
    this.disconnected = counter('fury_http_requests_client_disconnected_total', 'Requests whose client went away.', m);
    this.deadlines = counter('fury_deadline_exceeded_total', 'Requests ended by a deadline.', m);
    this.pings = new Counter({ name: 'fury_sse_pings_total', help: 'SSE keep-alive comments sent.', registers: [r] });
    this.requestMemory = hist(
      'fury_request_memory_bytes',
      'Peak memory per finished request.',
      [1e4, 1e5, 1e6, 1e7, 5e7, 1e8, 2e8, 4e8, 1e9, 4e9, 1.6e10],
      ['model_name', 'kind'],
    );
    const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge) => void) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: [r],
        collect() {
          collect(this);
        },
      });
    // every gauge's collect() of one scrape runs in the same synchronous pass: read each engine's stats once for all
    let scrape: { name: string; s: EngineStats }[] | null = null;
    const stats = () => {
      if (!scrape) {
        scrape = models().map((e) => ({ name: e.name, s: e.stats() }));
        queueMicrotask(() => (scrape = null));
      }
      return scrape;
    };
    // `vllm`: also under vLLM's name, as hist() and counter() do
    const perModel = (name: string, help: string, value: (s: EngineStats) => number, vllm = false) => {
      for (const n of vllm ? [name, name.replace(/^fury_/, 'vllm:')] : [name])
        gauge(n, help, ['model_name'], (g) => {
          for (const { name: model_name, s } of stats()) g.set({ model_name }, value(s));
        });
    };
    perModel('fury_num_requests_running', 'Requests running (admitted).', (s) => s.running, true);
    perModel('fury_num_requests_waiting', 'Requests waiting in the queue.', (s) => s.waiting, true);
    perModel(
      'vllm:kv_cache_usage_perc',
      'Fraction of the request memory in use (KV pages; 2Mamba: state slots), 0 to 1.',
      (s) => (s.kvBlocks.total ? s.kvBlocks.used / s.kvBlocks.total : s.slots.total ? s.slots.used / s.slots.total : 0),
    );
    // vLLM's info series (label-carrying gauges that gateways and dashboards read): the cache's shape, and no LoRA
    gauge(
      'vllm:cache_config_info',
      'Information of the KV cache (2Mamba: state slots as blocks), value 1.',
      ['model_name', 'block_size', 'num_gpu_blocks', 'cache_dtype', 'enable_prefix_caching'],
      (g) => {
        for (const e of models()) {
          const st = e.stats(),
            kv = st.kvBlocks.total > 0;
          g.set(
            {
              model_name: e.name,
              block_size: String(kv ? st.kvBlocks.blockTokens : 0),
              num_gpu_blocks: String(kv ? st.kvBlocks.total : st.slots.total),
              cache_dtype: kv ? e.plan.kvDtype : 'f32',
              enable_prefix_caching: String(st.prefixCache !== null),
            },
            1,
          );
        }
      },
    );
    gauge(
      'vllm:lora_requests_info',
      'Running and waiting LoRA adapters (none: fury serves no adapters); value: the scrape time in seconds.',
      ['max_lora', 'running_lora_adapters', 'waiting_lora_adapters'],
      (g) => g.set({ max_lora: '0', running_lora_adapters: '', waiting_lora_adapters: '' }, Date.now() / 1000),
    );
    perModel('fury_state_slots_total', 'State slots.', (s) => s.slots.total);
    perModel('fury_state_slots_used', 'State slots in use.', (s) => s.slots.used);
    perModel('fury_kv_blocks_total', 'KV pages.', (s) => s.kvBlocks.total);
    perModel('fury_kv_blocks_used', 'KV pages held by requests.', (s) => s.kvBlocks.used);
    perModel(
      'fury_kv_blocks_cached',
      'KV pages kept only by the prefix cache (freed on demand).',
      (s) => s.kvBlocks.cached,
    );
    perModel('fury_engine_restarts', 'Times the engine reloaded itself after a failure.', (s) => s.restarts);
    const cache = (f: (c: NonNullable<EngineStats['prefixCache']>) => number) => (s: EngineStats) =>
      s.prefixCache ? f(s.prefixCache) : 0;
    perModel(
      'fury_prefix_cache_queries',
      'Prompt tokens looked up in the prefix cache (total).',
      cache((c) => c.queriedTokens),
      true,
    );
    perModel(
      'fury_prefix_cache_hits',
      'Prompt tokens restored from the prefix cache instead of prefilled (total).',
      cache((c) => c.hitTokens),
      true,
    );
    perModel(
      'fury_state_cache_entries',
      'State snapshots held (free state slots and host RAM).',
      cache((c) => c.entries),
    );
    perModel(
      'fury_state_cache_device_entries',
      'State snapshots held in free state slots (device memory inside the budget).',
      cache((c) => c.deviceEntries ?? 0),
    );
    perModel(
      'fury_state_cache_bytes',
      'Bytes of state snapshots held in host RAM (KV models: the pages the prefix cache holds, and tails in RAM).',
      cache((c) => c.bytes),
    );
    perModel(
      'fury_state_cache_device_bytes',
      'Bytes of state snapshots held in free state slots (device memory inside the budget).',
      cache((c) => c.deviceBytes ?? 0),
    );
    perModel(
      'fury_state_cache_disk_bytes',
      'Bytes of state snapshot files in --state-cache-dir.',
      cache((c) => c.diskBytes ?? 0),
    );
    const redis = (f: (r: NonNullable<NonNullable<EngineStats['prefixCache']>['redis']>) => number) =>
      cache((c) => (c.redis ? f(c.redis) : 0));
    perModel(
      'fury_state_cache_redis_bytes',
      "Bytes of this model's state snapshots in the shared Redis tier (--state-cache-redis), as of the last write.",
      redis((r) => r.bytes),
    );
    perModel(
      'fury_state_cache_redis_hits',
      'Prompts that found a longer snapshot of their history in Redis than this replica held (total).',
      redis((r) => r.hits),
    );
    perModel(
      'fury_state_cache_redis_misses',
      'Redis lookups that found no longer snapshot (total).',
      redis((r) => r.misses),
    );
    perModel(
      'fury_state_cache_redis_errors',
      'Redis commands that failed or timed out, and snapshots that did not validate (total; each one a miss).',
      redis((r) => r.errors),
    );
    perModel(
      'fury_state_cache_redis_connected',
      'Whether the Redis tier is connected (1) or not (0: lookups miss, writes are skipped; 0 too without one).',
      redis((r) => (r.connected ? 1 : 0)),
    );
    perModel(
      'fury_state_cache_evictions',
      'Snapshots (or KV pages) evicted to stay under the cap (total).',
      cache((c) => c.evictions),
    );
    gauge('fury_device_memory_bytes', 'Memory allocated by kind (weights, state, kv).', ['model_name', 'kind'], (g) => {
      for (const { name: model_name, s } of stats())
        for (const [kind, v] of Object.entries(s.memory)) g.set({ model_name, kind }, v);
    });
    gauge(
      'fury_requests_memory_bytes',
      'Memory held by running requests now (state, kv).',
      ['model_name', 'kind'],
      (g) => {
        for (const { name: model_name, s } of stats()) {
          g.set(
            { model_name, kind: 'state' },
            s.requests.reduce((a, q) => a + (q.memory?.state_bytes ?? 0), 0),
          );
          g.set(
            { model_name, kind: 'kv' },
            s.requests.reduce((a, q) => a + (q.memory?.kv_bytes ?? 0), 0),
          );
        }
      },
    );
  }
}
