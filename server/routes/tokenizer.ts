// POST /tokenize and /detokenize in vLLM's shapes.
import type { FastifyInstance } from 'fastify';
import { badRequest, modelNotFound } from '../errors.js';
import type { ServerState } from '../state.js';
import { chatMessages } from '../openai/requests.js';

export function registerTokenizerRoutes(app: FastifyInstance, state: ServerState): void {
  const host = (body: unknown) => {
    const model = (body as { model?: unknown })?.model;
    if (model === undefined && state.models.size === 1) return [...state.models.values()][0]!;
    if (typeof model !== 'string') throw badRequest("'model' must be a string", 'model');
    const m = state.engine(model);
    if (!m) throw modelNotFound(model);
    return m;
  };

  app.post('/tokenize', { schema: { body: { $ref: 'TokenizeRequest#' } } }, async (request) => {
    const b = (request.body ?? {}) as Record<string, unknown>;
    const m = host(b);
    const addSpecial = (b.add_special_tokens ?? b.add_special ?? true) !== false;
    let ids: number[];
    if (b.messages !== undefined && b.messages !== null) {
      ids = await m.tokenizer.encodeAsync(
        m.chat.render(
          chatMessages(b.messages),
          b.add_generation_prompt !== false,
          (b.chat_template_kwargs as Record<string, unknown> | null | undefined) ?? {},
        ),
        false,
      );
    } else {
      const text = b.prompt ?? b.content;
      if (typeof text !== 'string')
        throw badRequest("send 'prompt' (or 'content') as a string, or 'messages'", 'prompt');
      ids = await m.tokenizer.encodeAsync(text, addSpecial);
    }
    const strs = b.return_token_strs === true || b.with_pieces === true;
    return {
      count: ids.length,
      max_model_len: m.plan.maxModelLen,
      tokens: ids,
      ...(strs ? { token_strs: ids.map((id) => m.tokenizer.tokenString(id) ?? '') } : {}),
    };
  });

  app.post('/detokenize', { schema: { body: { $ref: 'DetokenizeRequest#' } } }, async (request) => {
    const b = (request.body ?? {}) as Record<string, unknown>;
    const m = host(b);
    const ids = b.tokens;
    if (!Array.isArray(ids) || !ids.every((x) => Number.isSafeInteger(x) && x >= 0 && x < m.spec.vocab)) {
      throw badRequest(`'tokens' must be an array of token ids from 0 to ${m.spec.vocab - 1}`, 'tokens');
    }
    return { prompt: m.tokenizer.decode(ids as number[]) };
  });
}
