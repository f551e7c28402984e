// Who may call and when: the Host allow-list, the API key on every route but /health and /metrics, 503 while the models load, and 503 for
// new generations while the server drains.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError, unavailable } from '../errors.js';
import type { ServerState } from '../state.js';

/** Routes that need no API key and answer while loading. */
const PUBLIC = new Set(['/health', '/health/live', '/metrics']);
const GENERATION = new Set(['/v1/completions', '/v1/chat/completions', '/v1/responses']);

const digest = (s: string) => createHash('sha256').update(s).digest();

/** `Authorization: Bearer <key>` with the scheme in any case, compared in constant time. */
export function keyMatches(header: string | undefined, key: string): boolean {
  const m = /^bearer\s+(.+)$/i.exec(header?.trim() ?? '');
  return m !== null && timingSafeEqual(digest(m[1]!), digest(key));
}

/** The Host header's name without its port ("[::1]:8080" → "[::1]", "localhost:80" → "localhost"). */
export function hostName(header: string | undefined): string {
  const h = (header ?? '').trim().toLowerCase();
  return h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.split(':')[0]!;
}

export const authPlugin = fp(
  async (app: FastifyInstance, { state }: { state: ServerState }) => {
    app.addHook('onRequest', async (request) => {
      const path = request.url.split('?')[0]!;
      const hosts = state.opts.allowedHosts;
      if (hosts && !hosts.includes(hostName(request.headers.host))) {
        throw new ApiError(
          403,
          `this server answers only requests to ${hosts.join(', ')} (the Host header names another): ` +
            'start it with --api-key, or --allowed-hosts with the name you use',
          'permission_error',
          'host_not_allowed',
        );
      }
      // a browser's CORS preflight carries no credentials (the request it announces does)
      if (PUBLIC.has(path) || request.method === 'OPTIONS') return;
      if (state.opts.apiKey && !keyMatches(request.headers.authorization, state.opts.apiKey)) {
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
