// POST /v1/completions: the body is checked against the CompletionRequest schema before the handler runs.
import type { FastifyInstance } from 'fastify';
import { generationHandler } from '../generation.js';
import type { ServerState } from '../state.js';

export function completionsRoute(app: FastifyInstance, state: ServerState): void {
  app.post(
    '/v1/completions',
    { schema: { body: { $ref: 'CompletionRequest#' } } },
    generationHandler(state, 'completion'),
  );
}
