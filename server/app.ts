// The fastify app: OpenAI-compatible routes, health, metrics, tokenizer access, live request memory.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { ApiError, badRequest, toApiError, unavailable } from './errors.js';
import { Metrics } from './metrics.js';
import { generationHandler } from './routes/generate.js';
import { registerInfoRoutes } from './routes/info.js';
import { registerTokenizerRoutes } from './routes/tokenizer.js';
import type { ServerState } from './state.js';

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

  registerInfoRoutes(app, state);
  registerTokenizerRoutes(app, state);

  app.post('/v1/completions', generationHandler(state, 'completion'));
  app.post('/v1/chat/completions', generationHandler(state, 'chat'));
  return app;
}
