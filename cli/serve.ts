// `fury serve`: listen at once (health 503 while loading), load each model, serve; SIGTERM drains.
import { access } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { hostname } from 'node:os';
import { BACKENDS, KV_DTYPES, WEIGHTS_DTYPES } from '../engine/open.js';
import { buildApp } from '../server/app.js';
import { int, num, oneOf, parse, UsageError } from './args.js';
import type { Command } from './command.js';
import { parseBytes } from '../lib/bytes.js';
import { Engine, type EngineOptions } from '../engine/engine.js';
import { DEFAULT_SERVE_OPTIONS, ServerState } from '../server/state.js';
import type { FastifyBaseLogger } from 'fastify';

/** Two signals closer than this are one delivered twice (npm forwards what the process group already got). */
const DUPLICATE_SIGNAL_MS = 1000;

export const SERVE_HELP = `Usage: fury serve --model DIR [--model NAME=DIR ...] [options]

An OpenAI-compatible server: POST /v1/completions, /v1/chat/completions (streaming with SSE), GET /v1/models,
POST /tokenize, /detokenize, GET /health, /metrics, /v1/requests. Several models may be served at once; clients
pick one with "model" (its name is NAME, or the directory's name).

Options:
  --model [NAME=]DIR        a checkpoint directory (repeatable)
  --served-model-name N[,N] the names one --model answers to: the first is its name (responses, metrics), the others
                            aliases served by the same weights (each listed in /v1/models)
  --host H, --port P        where to listen (default 127.0.0.1:8080; port 0 picks a free one)
  --backend B               auto (default: WebGPU when an adapter exists, else CPU), cpu or webgpu
  --weights-dtype D         checkpoint (default: keep the checkpoint's dtype), f32, f16 or bf16
  --kv-dtype D              auto (default: f16 on webgpu, f32 on a CPU), f16 (webgpu only) or f32: how the KV cache
                            holds K and V (softmax, 2Mamba-E); 2Mamba's state is always f32
  --api-key KEY             require Authorization: Bearer KEY (not for /health and /metrics)
  --max-batch N             most requests running at once per model (default 8)
  --max-queue N             most requests waiting per model; beyond it 429 (default 64)
  --memory-budget B|PCT     bytes for request state + KV per model (e.g. 2GiB, 25%); 2Mamba: state slots,
                            softmax / 2Mamba-E: KV pages (default: max-batch requests of the full context,
                            at most 25% of memory)
  --state-cache-host-bytes B  host RAM per 2Mamba model for state snapshots, so a prompt that begins with tokens
                            already processed (the next turn of a chat) prefills only the rest (default 2GiB; 0: off)
  --state-cache-dir DIR     also write 2Mamba snapshots to DIR and read them back at startup (each file checked
                            against the model, its layout, its tokens and a checksum); --state-cache-dir-bytes B caps it
                            (default 10GiB, oldest files first)
  --state-cache-redis URL   also share 2Mamba snapshots through Redis (redis://[:password@]host:port[/db]), so a
                            conversation whose next turn reaches another replica resumes from its history's state;
                            Redis down or slow is a miss, never a failed request. --state-cache-redis-bytes B caps
                            this model's snapshots there (default 4GiB, least recently used first),
                            --state-cache-redis-ttl S their life after the last use (default 3600),
                            --state-cache-redis-timeout MS a lookup (default 250)
  --state-cache-min-tokens N  the fewest tokens a 2Mamba snapshot must cover to be read back from a GPU into host RAM,
                            a file or Redis: a shorter one costs more to move than to prefill again (default: one
                            token per 16 KiB of a request's state with tensor cores, 10578 for the small preset;
                            per 256 KiB without them, 662; 0 on the CPU backend)
  --state-checkpoint-tokens N  also snapshot a long prompt's state (2Mamba) or register its KV pages (softmax) every N
                            prefilled tokens, so a prompt that shares only its beginning still hits (default 4096; 0: off)
  --kv-prefix-cache on|off  keep full KV pages of finished softmax requests for prompts that begin with them
                            (default on; they are freed whenever a request needs the pages)
  --max-model-len N         context limit (default: config's max_position_embeddings; 2Mamba: 1048576)
  --request-timeout S       end requests running longer (default: none)
  --max-queue-time S        503 for requests waiting longer (default 60)
  --drain-timeout S         on SIGTERM, let running requests finish this long (default 30)
  --replica-name NAME       this replica's name, sent as x-fury-replica on every response and in /health
                            (default HOSTNAME:PORT)
  --overload-status 429|503 the status of a request refused because the queue is full (default 429; 503 behind a
                            load balancer that retries it on another replica, deploy/haproxy)
  --token-budget N          tokens per scheduler step (default 512); --prefill-chunk N per request (default 256)
  --prefill-alone N         tokens per step, and per request, while no request is decoding: a long prompt on an idle
                            server prefills in larger, faster steps (default 4096 on a GPU for 2Mamba and, on tensor
                            cores, for every model; else 1024)
  --sse-ping-interval S     SSE keep-alive comments while silent (default 10; 0 = off)
  --body-limit B            largest request body (default 64MiB)
  --default-max-tokens N    chat max_tokens when the request sets none (default 1024)
  --receive-timeout S       seconds a client has to send a whole request (default 120; slow bodies get 408)
  --max-connections N       most open connections (default 1024)
  --allowed-origins O,O     origins browsers may call the API from (CORS), e.g. http://localhost:3000, or * for any
                            (default: none; with no --api-key, * lets any web page you visit use this server)
  --allowed-hosts H,H       Host header names to answer (default without --api-key on a loopback address:
                            localhost, 127.0.0.1, [::1]; else any)
  --log-level L             pino level (default info)`;

const OPTIONS = {
  model: { type: 'string', multiple: true },
  host: { type: 'string' },
  port: { type: 'string' },
  backend: { type: 'string' },
  'api-key': { type: 'string' },
  'max-batch': { type: 'string' },
  'max-queue': { type: 'string' },
  'memory-budget': { type: 'string' },
  'state-cache-host-bytes': { type: 'string' },
  'kv-prefix-cache': { type: 'string' },
  'state-checkpoint-tokens': { type: 'string' },
  'state-cache-min-tokens': { type: 'string' },
  'state-cache-dir': { type: 'string' },
  'state-cache-dir-bytes': { type: 'string' },
  'state-cache-redis': { type: 'string' },
  'state-cache-redis-bytes': { type: 'string' },
  'state-cache-redis-ttl': { type: 'string' },
  'state-cache-redis-timeout': { type: 'string' },
  'replica-name': { type: 'string' },
  'overload-status': { type: 'string' },
  'max-model-len': { type: 'string' },
  'request-timeout': { type: 'string' },
  'max-queue-time': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'token-budget': { type: 'string' },
  'prefill-chunk': { type: 'string' },
  'prefill-alone': { type: 'string' },
  'served-model-name': { type: 'string' },
  'sse-ping-interval': { type: 'string' },
  'body-limit': { type: 'string' },
  'default-max-tokens': { type: 'string' },
  'log-level': { type: 'string' },
  'allowed-hosts': { type: 'string' },
  'allowed-origins': { type: 'string' },
  'receive-timeout': { type: 'string' },
  'max-connections': { type: 'string' },
  'weights-dtype': { type: 'string' },
  'kv-dtype': { type: 'string' },
} as const;

function bytesFlag(v: unknown, flag: string): number | null {
  if (v === undefined) return null;
  try {
    return parseBytes(String(v));
  } catch (e) {
    throw new UsageError(`--${flag}: ${(e as Error).message}`);
  }
}

function seconds(v: unknown, flag: string): number | undefined {
  const s = num(v as string | undefined, flag);
  if (s !== undefined && s < 0) throw new UsageError(`--${flag} must be ≥ 0, got ${s}`);
  return s;
}

/** --state-cache-redis and its settings (undefined: no Redis tier). */
function redisOptions(a: Record<string, unknown>): EngineOptions['stateCacheRedis'] {
  const url = a['state-cache-redis'];
  if (typeof url !== 'string') return undefined;
  if (!/^rediss?:\/\//.test(url)) throw new UsageError(`--state-cache-redis: expected redis://host:port, got ${url}`);
  return {
    url,
    capacityBytes: bytesFlag(a['state-cache-redis-bytes'], 'state-cache-redis-bytes') ?? 4 * 2 ** 30,
    ttlMs: 1000 * int(a['state-cache-redis-ttl'] as string | undefined, 'state-cache-redis-ttl', 3600, 1),
    timeoutMs: int(a['state-cache-redis-timeout'] as string | undefined, 'state-cache-redis-timeout', 250, 1),
  };
}

const isLoopback = (h: string) => /^(localhost|127(\.\d+){3}|::1|\[::1\])$/i.test(h);

/** --allowed-hosts, or its default: loopback names for a keyless loopback bind (DNS rebinding), else any. */
function allowedHosts(flag: unknown, host: string, apiKey: string | null): string[] | null {
  if (typeof flag === 'string')
    return flag
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean);
  if (apiKey || !isLoopback(host)) return null;
  return [...new Set(['localhost', '127.0.0.1', '[::1]', host.toLowerCase()])];
}

export async function runServe(argv: string[], defaults: { models?: string[] } = {}): Promise<void> {
  const a = parse('serve', argv, OPTIONS) as Record<string, string | string[] | boolean | undefined>;
  if (a.help) return void console.log(SERVE_HELP);
  const specs = (a.model as string[] | undefined) ?? defaults.models ?? [];
  if (!specs.length) throw new UsageError('--model is required (see fury serve --help)');
  const models = specs.map((s) => {
    const eq = s.indexOf('=');
    const dir = eq > 0 ? s.slice(eq + 1) : s;
    return { name: eq > 0 ? s.slice(0, eq) : basename(dir.replace(/\/+$/, '')), dir };
  });
  if (new Set(models.map((m) => m.name)).size !== models.length)
    throw new UsageError('two --model entries have the same name: use NAME=DIR');
  const served =
    typeof a['served-model-name'] === 'string'
      ? a['served-model-name']
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
  if (served.length) {
    if (models.length !== 1) throw new UsageError('--served-model-name names one model: give exactly one --model');
    if (new Set(served).size !== served.length) throw new UsageError('--served-model-name repeats a name');
    models[0]!.name = served[0]!;
  }
  const aliases = served.slice(1);
  for (const m of models)
    await access(join(m.dir, 'config.json')).catch(() => {
      throw new UsageError(`--model: ${m.dir} is not a checkpoint directory (no config.json)`);
    });
  const host = typeof a.host === 'string' ? a.host : '127.0.0.1';
  const apiKey = typeof a['api-key'] === 'string' ? a['api-key'] : null;
  const port = int(a.port as string | undefined, 'port', 8080);
  const hostOpts: EngineOptions = {
    backend: oneOf(a.backend as string | undefined, 'backend', BACKENDS, 'auto'),
    weightsDType: oneOf(a['weights-dtype'] as string | undefined, 'weights-dtype', WEIGHTS_DTYPES, 'checkpoint'),
    kvDtype: oneOf(a['kv-dtype'] as string | undefined, 'kv-dtype', KV_DTYPES, 'auto'),
    maxBatch: int(a['max-batch'] as string | undefined, 'max-batch', 8, 1),
    maxQueue: int(a['max-queue'] as string | undefined, 'max-queue', 64, 0),
    memoryBudget: bytesFlag(a['memory-budget'], 'memory-budget'),
    stateCacheHostBytes: bytesFlag(a['state-cache-host-bytes'], 'state-cache-host-bytes') ?? undefined,
    stateCacheDir: typeof a['state-cache-dir'] === 'string' ? a['state-cache-dir'] : undefined,
    stateCacheDirBytes: bytesFlag(a['state-cache-dir-bytes'], 'state-cache-dir-bytes') ?? undefined,
    stateCacheRedis: redisOptions(a),
    stateCacheMinTokens:
      a['state-cache-min-tokens'] === undefined
        ? undefined
        : int(a['state-cache-min-tokens'] as string, 'state-cache-min-tokens', 0, 0),
    stateCheckpointTokens: int(a['state-checkpoint-tokens'] as string | undefined, 'state-checkpoint-tokens', 4096, 0),
    kvPrefixCache: oneOf(a['kv-prefix-cache'] as string | undefined, 'kv-prefix-cache', ['on', 'off'], 'on') === 'on',
    maxModelLen: a['max-model-len'] === undefined ? null : int(a['max-model-len'] as string, 'max-model-len', 0, 1),
    tokenBudget: int(a['token-budget'] as string | undefined, 'token-budget', 512, 1),
    prefillChunk: int(a['prefill-chunk'] as string | undefined, 'prefill-chunk', 256, 1),
    prefillAlone:
      a['prefill-alone'] === undefined ? ('auto' as const) : int(a['prefill-alone'] as string, 'prefill-alone', 0, 1),
  };
  const state = new ServerState({
    ...DEFAULT_SERVE_OPTIONS,
    apiKey,
    allowedHosts: allowedHosts(a['allowed-hosts'], host, apiKey),
    allowedOrigins:
      typeof a['allowed-origins'] === 'string'
        ? a['allowed-origins']
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : [],
    receiveTimeout: seconds(a['receive-timeout'], 'receive-timeout') ?? DEFAULT_SERVE_OPTIONS.receiveTimeout,
    overloadStatus: Number(
      oneOf(a['overload-status'] as string | undefined, 'overload-status', ['429', '503'], '429'),
    ) as 429 | 503,
    replica: typeof a['replica-name'] === 'string' ? a['replica-name'] : null, // after listen: HOSTNAME:PORT
    maxConnections: int(
      a['max-connections'] as string | undefined,
      'max-connections',
      DEFAULT_SERVE_OPTIONS.maxConnections,
      1,
    ),
    bodyLimit: bytesFlag(a['body-limit'], 'body-limit') ?? DEFAULT_SERVE_OPTIONS.bodyLimit,
    requestTimeout: seconds(a['request-timeout'], 'request-timeout') ?? null,
    maxQueueTime: seconds(a['max-queue-time'], 'max-queue-time') ?? DEFAULT_SERVE_OPTIONS.maxQueueTime,
    pingInterval: seconds(a['sse-ping-interval'], 'sse-ping-interval') ?? DEFAULT_SERVE_OPTIONS.pingInterval,
    defaultMaxTokens: int(
      a['default-max-tokens'] as string | undefined,
      'default-max-tokens',
      DEFAULT_SERVE_OPTIONS.defaultMaxTokens,
      1,
    ),
  });
  const drainTimeout = seconds(a['drain-timeout'], 'drain-timeout') ?? 30;
  const app = buildApp(state, { level: typeof a['log-level'] === 'string' ? a['log-level'] : 'info' });
  const log = app.log;
  if (!apiKey && !isLoopback(host)) {
    log.warn({ host }, 'listening on a non-loopback address without --api-key: anyone who can reach it can use it');
  }

  let draining: Promise<void> | null = null;
  /** Stop: new generations get 503 + Retry-After while the listener stays open (so clients and load balancers see a
   *  refusal, not a reset), running requests finish within --drain-timeout, then the listener closes. */
  const drain = async (signal: string) => {
    state.draining = true;
    log.info({ signal, drain_timeout_s: drainTimeout }, 'draining: new requests get 503; running ones may finish');
    const idle = Promise.all([...state.models.values()].map((m) => m.scheduler.idle()));
    const timedOut = await Promise.race([
      idle.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), drainTimeout * 1000).unref()),
    ]);
    if (timedOut) {
      log.warn('drain timeout: ending the requests still running with a shutdown error');
      state.shutdown.abort();
    }
    await Promise.race([app.close(), new Promise((r) => setTimeout(r, 5000).unref())]);
    for (const m of state.models.values()) await m.close();
    log.info('stopped');
  };
  let firstSignal = 0;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (draining) {
        // under `npm start` one Ctrl-C (or a kill of the process group) arrives twice: from the terminal and
        // forwarded by npm. Only a signal sent again later means "exit now".
        if (performance.now() - firstSignal < DUPLICATE_SIGNAL_MS) return;
        log.warn(`${sig} again: exiting now`);
        process.exit(1);
      }
      firstSignal = performance.now();
      draining = drain(sig).then(
        () => process.exit(0),
        (e) => {
          log.error(e);
          process.exit(1);
        },
      );
    });
  }

  await app.listen({ host, port });
  const address = app.server.address();
  state.opts.replica ??= `${hostname()}:${typeof address === 'object' && address ? address.port : port}`;
  log.info(
    { url: typeof address === 'object' && address ? `http://${host}:${address.port}` : String(address) },
    'listening (loading models: /health is 503 until ready)',
  );
  try {
    await loadModels(state, models, hostOpts, log);
    for (const alias of aliases) state.aliases.set(alias, models[0]!.name);
  } catch (e) {
    // a model that cannot load ends the process with its message and a non-zero exit, not a server stuck at 503
    log.error({ err: (e as Error).message }, 'loading failed: stopping');
    await app.close();
    for (const m of state.models.values()) await m.close();
    throw e;
  }
  state.loading = false;
  log.info('ready');
}

export const serve: Command = {
  summary: 'serve models over an OpenAI-compatible HTTP API',
  help: SERVE_HELP,
  run: (argv) => runServe(argv),
};

/** Open each model in turn and log what its budget buys. */
async function loadModels(
  state: ServerState,
  models: { name: string; dir: string }[],
  hostOpts: EngineOptions,
  log: FastifyBaseLogger,
): Promise<void> {
  for (const m of models) {
    const served = await Engine.open(
      m.dir,
      m.name,
      hostOpts,
      (msg) => log.debug(msg),
      (line) => log.info(line),
    );
    state.models.set(m.name, served);
    const mem = served.prices,
      p = served.plan;
    log.info(
      {
        model: m.name,
        arch: served.spec.arch,
        backend: served.backend.name,
        max_model_len: p.maxModelLen,
        memory_budget_bytes: p.budgetBytes,
        state_bytes_per_request: mem.stateBytes,
        kv_bytes_per_token: mem.kvBytesPerToken,
        max_concurrent_requests: p.slots,
        kv_cache_tokens: p.kvPages * p.pageSize,
        max_concurrency_at_full_context:
          served.spec.arch === '2mamba'
            ? p.slots
            : Math.min(p.slots, Math.floor((p.kvPages * p.pageSize) / p.maxModelLen)),
        chat_template: served.chat.origin,
      },
      `model ${m.name} ready`,
    );
  }
}
