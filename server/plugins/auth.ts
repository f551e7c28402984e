// Who may call and when: the API key on every route but /health and /metrics, 503 while the models load, and 503 for
// new generations while the server drains.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError, unavailable } from '../errors.js';
import type { ServerState } from '../state.js';

/** Routes that need no API key and answer while loading. */
const PUBLIC = new Set(['/health', '/metrics']);
const GENERATION = new Set(['/v1/completions', '/v1/chat/completions']);

export const authPlugin = fp(
  async (app: FastifyInstance, { state }: { state: ServerState }) => {
    app.addHook('onRequest', async (request) => {
      const path = request.url.split('?')[0]!;
      if (PUBLIC.has(path)) return;
      if (state.opts.apiKey && request.headers.authorization !== `Bearer ${state.opts.apiKey}`) {
        throw new ApiError(
          401,
          'invalid or missing API key: send Authorization: Bearer <key>',
          'authentication_error',
          'invalid_api_key',
        );
      }
      if (state.loading) throw unavailable('the model is loading', 'loading');
      if (state.draining && GENERATION.has(path)) throw unavailable('the server is shutting down', 'shutdown');
    });
  },
  { name: 'fury-auth' },
);
