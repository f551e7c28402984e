// GET /health, /metrics, /v1/models and /v1/requests: what orchestrators, dashboards and clients read, all from
// each engine's stats().
import type { FastifyInstance } from 'fastify';
import type { ServerState } from '../state.js';

export function registerInfoRoutes(app: FastifyInstance, state: ServerState): void {
  app.get('/health', async (request, reply) => {
    const failure = [...state.models.values()].map((m) => m.stats().failure).find((f) => f !== null);
    const why = state.loading
      ? 'Loading model'
      : state.draining
        ? 'Shutting down'
        : failure
          ? `Engine failed: ${failure}`
          : null;
    if (why)
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ error: { code: 503, message: why, type: 'unavailable_error' } });
    const full = (request.query as Record<string, string>).fail_if_full;
    if (full && full !== '0' && [...state.models.values()].every((m) => m.full)) {
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ error: { code: 503, message: 'No slot and no queue space left', type: 'unavailable_error' } });
    }
    return { status: 'ok' };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', state.metrics.registry.contentType);
    return state.metrics.registry.metrics();
  });

  app.get('/v1/models', async () => ({
    object: 'list',
    data: [...state.models.values()].map((m) => {
      const mem = m.prices;
      return {
        id: m.name,
        object: 'model',
        created: m.created,
        owned_by: 'local',
        root: m.name,
        parent: null,
        max_model_len: m.plan.maxModelLen,
        architecture: m.spec.arch,
        state_bytes_per_request: mem.stateBytes,
        kv_bytes_per_token: mem.kvBytesPerToken,
        max_concurrent_requests: m.plan.slots,
        kv_cache_tokens: m.kvCacheTokens,
        memory_budget_bytes: m.plan.budgetBytes,
      };
    }),
  }));

  app.get('/v1/requests', async () => {
    const engines = [...state.models.values()].map((m) => ({ m, s: m.stats() }));
    return {
      object: 'list',
      models: engines.map(({ m, s }) => ({
        model: m.name,
        running: s.running,
        waiting: s.waiting,
        state_slots: { total: s.slots.total, used: s.slots.used },
        kv_blocks: { total: s.kvBlocks.total, used: s.kvBlocks.used, block_tokens: s.kvBlocks.blockTokens },
      })),
      data: engines.flatMap(({ m, s }) =>
        s.requests.map((r) => ({
          id: r.tag ?? null,
          model: m.name,
          state: r.state,
          prompt_tokens: r.promptTokens,
          prefilled_tokens: r.prefilled,
          completion_tokens: r.generated,
          max_tokens: r.maxTokens,
          memory: r.memory ? { ...r.memory, peak_bytes: r.memory.state_bytes + r.memory.kv_bytes, dtype: 'f32' } : null,
        })),
      ),
    };
  });
}
