// JSON request bodies, strictly: invalid UTF-8, an empty body and malformed JSON are 400s that say what is wrong.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { badRequest } from '../errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export const bodyPlugin = fp(
  async (app: FastifyInstance) => {
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
      let text: string;
      try {
        text = utf8.decode(body as Buffer);
      } catch {
        return done(badRequest('the request body is not valid UTF-8', null, 'invalid_utf8'), undefined);
      }
      if (!text.trim())
        return done(badRequest('the request body is empty: send a JSON object', null, 'invalid_json'), undefined);
      try {
        done(null, JSON.parse(text));
      } catch (e) {
        done(
          badRequest(`the request body is not valid JSON: ${(e as Error).message}`, null, 'invalid_json'),
          undefined,
        );
      }
    });
  },
  { name: 'fury-body' },
);
