// The fastify app: OpenAI-compatible routes, health, metrics, tokenizer access, live request memory.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { memoryModel } from '../engine/memory/prices.js';
import { ApiError, badRequest, modelNotFound, toApiError, unavailable } from './errors.js';
import { Metrics } from './metrics.js';
import { generationHandler } from './routes/generate.js';
import type { ServerState } from './state.js';
import { parseGenRequest } from './validate.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Routes that need no API key. */
const PUBLIC = new Set(['/health', '/metrics']);

export function buildApp(state: ServerState, logger: FastifyServerOptions['logger'] = false): FastifyInstance {
  const app = Fastify({
    logger, bodyLimit: state.opts.bodyLimit, disableRequestLogging: true, return503OnClosing: true,
    requestTimeout: 0, keepAliveTimeout: 75_000, genReqId: () => Math.random().toString(36).slice(2, 10),
  });
  state.metrics ??= new Metrics(() => [...state.models.values()]);

  // JSON bodies: invalid UTF-8 and malformed JSON are 400s that say what is wrong
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      return done(badRequest('the request body is not valid UTF-8', null, 'invalid_utf8'), undefined);
    }
    if (!text.trim()) return done(badRequest('the request body is empty: send a JSON object', null, 'invalid_json'), undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(badRequest(`the request body is not valid JSON: ${(e as Error).message}`, null, 'invalid_json'), undefined);
    }
  });

  app.setErrorHandler((err, request, reply) => {
    const e = toApiError(err);
    if (e.status >= 500) request.log.error({ err }, 'request failed');
    void reply.code(e.status).headers(e.headers()).send(e.body());
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new ApiError(404, `no route ${request.method} ${request.url.split('?')[0]}`, 'not_found_error', 'route_not_found');
    void reply.code(404).send(e.body());
  });

  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]!;
    if (state.opts.apiKey && !PUBLIC.has(path)) {
      if (request.headers.authorization !== `Bearer ${state.opts.apiKey}`) {
        throw new ApiError(401, 'invalid or missing API key: send Authorization: Bearer <key>', 'authentication_error', 'invalid_api_key');
      }
    }
    if (state.loading && !PUBLIC.has(path)) throw unavailable('the model is loading', 'loading');
  });

  app.get('/health', async (request, reply) => {
    const failure = [...state.models.values()].map((m) => m.stats().failure).find((f) => f !== null);
    const why = state.loading ? 'Loading model' : state.draining ? 'Shutting down' : failure ? `Engine failed: ${failure}` : null;
    if (why) return reply.code(503).header('retry-after', '5').send({ error: { code: 503, message: why, type: 'unavailable_error' } });
    const full = (request.query as Record<string, string>).fail_if_full;
    if (full && full !== '0' && [...state.models.values()].every((m) => m.full)) {
      return reply.code(503).header('retry-after', '5').send({ error: { code: 503, message: 'No slot and no queue space left', type: 'unavailable_error' } });
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
      const mem = memoryModel(m.spec);
      return {
        id: m.name, object: 'model', created: m.created, owned_by: 'local', root: m.name, parent: null,
        max_model_len: m.plan.maxModelLen, architecture: m.spec.arch,
        state_bytes_per_request: mem.stateBytes, kv_bytes_per_token: mem.kvBytesPerToken,
        max_concurrent_requests: m.plan.slots, kv_cache_tokens: m.kvCacheTokens,
        memory_budget_bytes: m.plan.budgetBytes,
      };
    }),
  }));

  app.get('/v1/requests', async () => {
    const engines = [...state.models.values()].map((m) => ({ m, s: m.stats() }));
    return {
    object: 'list',
    models: engines.map(({ m, s }) => ({
      model: m.name, running: s.running, waiting: s.waiting,
      state_slots: { total: s.slots.total, used: s.slots.used },
      kv_blocks: { total: s.kvBlocks.total, used: s.kvBlocks.used, block_tokens: s.kvBlocks.blockTokens },
    })),
    data: engines.flatMap(({ m, s }) => s.requests.map((r) => ({
      id: r.tag ?? null, model: m.name, state: r.state, prompt_tokens: r.promptTokens, prefilled_tokens: r.prefilled,
      completion_tokens: r.generated, max_tokens: r.maxTokens,
      memory: r.memory ? { ...r.memory, peak_bytes: r.memory.state_bytes + r.memory.kv_bytes, dtype: 'f32' } : null,
    }))),
    };
  });

  const host = (body: unknown) => {
    const model = (body as { model?: unknown })?.model;
    if (model === undefined && state.models.size === 1) return [...state.models.values()][0]!;
    if (typeof model !== 'string') throw badRequest("'model' must be a string", 'model');
    const m = state.models.get(model);
    if (!m) throw modelNotFound(model);
    return m;
  };

  app.post('/tokenize', async (request) => {
    const b = (request.body ?? {}) as Record<string, unknown>;
    const m = host(b);
    const addSpecial = (b.add_special_tokens ?? b.add_special ?? true) !== false;
    let ids: number[];
    if (b.messages !== undefined) {
      const req = parseGenRequest('chat', { ...b, model: m.name });
      ids = m.tokenizer.encode(m.chat.render(req.messages!, req.addGenerationPrompt), false);
    } else {
      const text = b.prompt ?? b.content;
      if (typeof text !== 'string') throw badRequest("send 'prompt' (or 'content') as a string, or 'messages'", 'prompt');
      ids = m.tokenizer.encode(text, addSpecial);
    }
    const strs = b.return_token_strs === true || b.with_pieces === true;
    return { count: ids.length, max_model_len: m.plan.maxModelLen, tokens: ids, ...(strs ? { token_strs: ids.map((id) => m.tokenizer.tokenString(id) ?? '') } : {}) };
  });

  app.post('/detokenize', async (request) => {
    const b = (request.body ?? {}) as Record<string, unknown>;
    const m = host(b);
    const ids = b.tokens;
    if (!Array.isArray(ids) || !ids.every((x) => Number.isSafeInteger(x) && x >= 0 && x < m.spec.vocab)) {
      throw badRequest(`'tokens' must be an array of token ids from 0 to ${m.spec.vocab - 1}`, 'tokens');
    }
    return { prompt: m.tokenizer.decode(ids as number[]) };
  });

  app.post('/v1/completions', generationHandler(state, 'completion'));
  app.post('/v1/chat/completions', generationHandler(state, 'chat'));
  return app;
}
