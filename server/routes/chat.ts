// POST /v1/chat/completions: the body is checked against the ChatCompletionRequest schema before the handler runs.
import type { FastifyInstance } from 'fastify';
import { generationHandler } from '../generation.js';
import type { ServerState } from '../state.js';

export function chatRoute(app: FastifyInstance, state: ServerState): void {
  app.post(
    '/v1/chat/completions',
    { schema: { body: { $ref: 'ChatCompletionRequest#' } } },
    generationHandler(state, 'chat'),
  );
}
