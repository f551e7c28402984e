// The fastify app: the protocol's schemas, the cross-cutting plugins (JSON body, auth, OpenAI-shaped errors) and one
// registration per route file.
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Metrics } from './metrics.js';
import { ANNOTATIONS, SCHEMAS } from './openai/schemas.js';
import { authPlugin } from './plugins/auth.js';
import { bodyPlugin } from './plugins/body.js';
import { clientErrorHandler, errorsPlugin } from './plugins/errors.js';
import { chatRoute } from './routes/chat.js';
import { responsesRoute } from './routes/responses.js';
import { completionsRoute } from './routes/completions.js';
import cors from '@fastify/cors';
import { registerInfoRoutes } from './routes/info.js';
import { registerTokenizerRoutes } from './routes/tokenizer.js';
import type { ServerState } from './state.js';

/** Ajv as the protocol needs it: a wrong type is an error, never coerced; nothing added or removed; the first error
 *  only (allErrors is a denial-of-service risk); the schemas' message annotations are known keywords. */
const AJV = {
  customOptions: {
    coerceTypes: false,
    useDefaults: false,
    removeAdditional: false,
    allErrors: false,
    allowUnionTypes: true,
    keywords: ANNOTATIONS,
  },
};

export function buildApp(state: ServerState, logger: FastifyServerOptions['logger'] = false): FastifyInstance {
  const app = Fastify({
    logger,
    bodyLimit: state.opts.bodyLimit,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    ajv: AJV,
    // the whole request must arrive within --receive-timeout (responses, streams included, are not limited by it);
    // timeouts are checked every second
    requestTimeout: state.opts.receiveTimeout * 1000,
    clientErrorHandler,
    http: { connectionsCheckingInterval: 1000, headersTimeout: Math.min(60_000, state.opts.receiveTimeout * 1000) },
    keepAliveTimeout: 75_000,
    genReqId: () => Math.random().toString(36).slice(2, 10),
  });
  app.server.maxConnections = state.opts.maxConnections;
  state.metrics ??= new Metrics(() => [...state.models.values()]);
  for (const s of SCHEMAS) app.addSchema(s);
  const origins = state.opts.allowedOrigins;
  void app.register(cors, {
    origin: origins.includes('*') ? true : origins.length ? origins : false,
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
    exposedHeaders: ['retry-after', 'x-request-id', 'x-fury-replica'],
    maxAge: 600,
  });
  // a client's x-request-id comes back on every response, errors included (a generation without one gets its id)
  app.addHook('onSend', async (request, reply) => {
    const id = request.headers['x-request-id'];
    if (typeof id === 'string' && id && !reply.hasHeader('x-request-id')) reply.header('x-request-id', id);
  });
  // the replica's name on every response, streams included (set on the raw response, which a hijacked SSE reply
  // writes its head through too)
  app.addHook('onRequest', async (_request, reply) => {
    if (state.opts.replica) reply.raw.setHeader('x-fury-replica', state.opts.replica);
  });
  void app.register(bodyPlugin);
  void app.register(errorsPlugin);
  void app.register(authPlugin, { state });
  registerInfoRoutes(app, state);
  registerTokenizerRoutes(app, state);
  completionsRoute(app, state);
  chatRoute(app, state);
  responsesRoute(app, state);
  return app;
}
