// Every error as OpenAI's {"error": {message, type, param, code}}: schema violations mapped from Ajv (the field as
// `param`), thrown ApiErrors as they are, anything else a 500 that is logged; unknown routes a 404.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { clip } from '../../lib/preview.js';
import { ApiError, toApiError } from '../errors.js';
import { SCHEMAS } from '../openai/schemas.js';
import { fromFastifyValidation } from '../openai/validation.js';

const METHODS = ['GET', 'POST'] as const;
const BY_ID = new Map(SCHEMAS.map((s) => [String(s.$id), s]));

export const errorsPlugin = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((err, request, reply) => {
      const e = fromFastifyValidation(err, BY_ID, request.body) ?? toApiError(err);
      if (e.status >= 500) request.log.error({ err }, 'request failed');
      void reply.code(e.status).headers(e.headers()).send(e.body());
    });
    app.setNotFoundHandler((request, reply) => {
      const url = request.url.split('?')[0]!;
      const allow = METHODS.filter((method) => app.hasRoute({ method, url }));
      if (allow.length) {
        const message = `${request.method} is not allowed on ${url}: use ${allow.join(' or ')}`;
        const e = new ApiError(405, message, 'invalid_request_error', 'method_not_allowed');
        return void reply.code(405).header('allow', allow.join(', ')).send(e.body());
      }
      const e = new ApiError(404, `no route ${request.method} ${clip(url, 200)}`, 'not_found_error', 'route_not_found');
      void reply.code(404).send(e.body());
    });
  },
  { name: 'fury-errors' },
);

/** Errors on a connection before a request exists (a body too slow for --receive-timeout, malformed HTTP): an
 *  OpenAI-shaped answer where the socket can still take one, then the connection closes. */
export function clientErrorHandler(err: Error, socket: Duplex): void {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  const timeout = code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const status = timeout ? 408 : code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const message = timeout
    ? 'the request did not arrive within the server’s --receive-timeout: send it whole, faster'
    : `malformed HTTP request (${code || err.message})`;
  const body = JSON.stringify(
    new ApiError(status, message, 'invalid_request_error', timeout ? 'request_timeout' : 'bad_http_request').body(),
  );
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
