// POST /v1/responses: OpenAI's Responses API, stateless (server/openai/responses-api.ts translates it to a chat
// completion and back).
import type { FastifyInstance } from 'fastify';
import { generationHandler } from '../generation.js';
import type { ServerState } from '../state.js';

export function responsesRoute(app: FastifyInstance, state: ServerState): void {
  app.post('/v1/responses', generationHandler(state, 'responses'));
}
