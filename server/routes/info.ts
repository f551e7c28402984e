// GET /health, /metrics, /v1/models and /v1/requests: what orchestrators, dashboards and clients read, all from
// each engine's stats().
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, modelNotFound } from '../errors.js';
import type { Engine } from '../../engine/engine.js';
import type { ServerState } from '../state.js';

export function registerInfoRoutes(app: FastifyInstance, state: ServerState): void {
  /** 503 + Retry-After in the OpenAI error shape, with a code an orchestrator can act on. */
  const unhealthy = (reply: FastifyReply, message: string, code: string) =>
    reply
      .code(503)
      .header('retry-after', '5')
      .send(new ApiError(503, message, 'service_unavailable_error', code).body());

  app.get('/health', async (request, reply) => {
    const failure = [...state.models.values()].map((m) => m.stats().failure).find((f) => f !== null);
    if (state.loading) return unhealthy(reply, 'Loading model', 'loading');
    if (state.draining) return unhealthy(reply, 'Shutting down', 'shutdown');
    if (failure) return unhealthy(reply, `Engine failed: ${failure}`, 'engine_failed');
    if ([...state.models.values()].some((m) => m.isRestarting))
      return unhealthy(reply, 'Engine restarting after a failure', 'engine_restarting');
    const full = [...state.models.values()].every((m) => m.full),
      failIfFull = (request.query as Record<string, string>).fail_if_full;
    if (full && failIfFull && failIfFull !== '0') return unhealthy(reply, 'No slot and no queue space left', 'full');
    // a load balancer routes to a 200; `state` says whether new requests would be queued (ready) or refused (full)
    return { status: 'ok', state: full ? 'full' : 'ready', replica: state.opts.replica };
  });

  // liveness: the process answers, and no engine is beyond repair (a failed reload); loading, draining and a reload
  // in progress are alive (restarting the process would not help them)
  app.get('/health/live', async (_request, reply) => {
    const failure = [...state.models.values()].map((m) => m.stats().failure).find((f) => f !== null);
    if (failure) return unhealthy(reply, `Engine failed: ${failure}`, 'engine_failed');
    return { status: 'ok' };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', state.metrics.registry.contentType);
    return state.metrics.registry.metrics();
  });

  /** One model as OpenAI's Model object, with fury's memory prices. */
  const card = (m: Engine, id = m.name) => {
    const mem = m.prices;
    return {
      id,
      object: 'model',
      created: m.created,
      owned_by: 'local',
      root: m.name,
      parent: null,
      max_model_len: m.plan.maxModelLen,
      architecture: m.spec.arch,
      state_bytes_per_request: mem.stateBytes,
      kv_bytes_per_token: mem.kvBytesPerToken,
      kv_dtype: m.spec.arch === '2mamba' ? null : m.plan.kvDtype,
      max_concurrent_requests: m.plan.slots,
      kv_cache_tokens: m.kvCacheTokens,
      memory_budget_bytes: m.plan.budgetBytes,
    };
  };

  app.get('/v1/models', async () => ({
    object: 'list',
    data: [
      ...[...state.models.values()].map((m) => card(m)),
      ...[...state.aliases].map(([alias, name]) => card(state.models.get(name)!, alias)),
    ],
  }));

  // a wildcard: model names may hold slashes (org/name)
  app.get('/v1/models/*', async (request) => {
    const id = (request.params as { '*': string })['*'],
      m = state.engine(id);
    if (!m) throw modelNotFound(id);
    return card(m, id);
  });

  app.get('/v1/requests', async () => {
    const engines = [...state.models.values()].map((m) => ({ m, s: m.stats() }));
    return {
      object: 'list',
      models: engines.map(({ m, s }) => ({
        model: m.name,
        running: s.running,
        waiting: s.waiting,
        state_slots: { total: s.slots.total, used: s.slots.used },
        kv_blocks: {
          total: s.kvBlocks.total,
          used: s.kvBlocks.used,
          cached: s.kvBlocks.cached,
          block_tokens: s.kvBlocks.blockTokens,
        },
      })),
      data: engines.flatMap(({ m, s }) =>
        s.requests.map((r) => ({
          id: r.tag ?? null,
          model: m.name,
          state: r.state,
          prompt_tokens: r.promptTokens,
          prefilled_tokens: r.prefilled,
          cached_tokens: r.cachedTokens,
          completion_tokens: r.generated,
          max_tokens: r.maxTokens,
          memory: r.memory ? { ...r.memory, peak_bytes: r.memory.state_bytes + r.memory.kv_bytes, dtype: 'f32' } : null,
        })),
      ),
    };
  });
}
