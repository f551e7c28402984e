// POST /v1/responses (OpenAI's Responses API, stateless): the body is translated into a chat completion request (input
// items → messages, instructions → a system message, function tools, text.format → response_format) and runs on the
// same path; its result comes back as a Response object, or as the Responses event sequence when streamed.
import { randomUUID } from 'node:crypto';
import type { ChoiceResult } from '../../engine/output.js';
import { badRequest } from '../errors.js';
import { preview } from '../../lib/preview.js';
import type { GenRequest } from './requests.js';
import { chatReply, usage } from './responses.js';
import type { SseStream } from './sse.js';

type Body = Record<string, unknown>;

/** Text of a message's content: a string, or input_text / output_text / text parts. */
function text(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw badRequest(`${where}.content must be a string or an array of text parts`, 'input');
  return content
    .map((p: Body, i) => {
      if (['input_text', 'output_text', 'text'].includes(p?.type as string) && typeof p.text === 'string')
        return p.text;
      throw badRequest(
        `${where}.content[${i}] of type ${preview(p?.type)} is not supported (text parts only)`,
        'input',
      );
    })
    .join('');
}

/** The Responses request as a chat completion request (400s name the Responses field). */
export function responsesToChat(b: Body): Body {
  if (typeof b !== 'object' || b === null || Array.isArray(b))
    throw badRequest('the request body must be a JSON object', null);
  if (b.previous_response_id != null)
    throw badRequest(
      "'previous_response_id' is not supported (responses are not stored): send the whole conversation as 'input'",
      'previous_response_id',
    );
  const messages: Body[] = [];
  if (typeof b.instructions === 'string' && b.instructions) messages.push({ role: 'system', content: b.instructions });
  const input = b.input;
  if (typeof input === 'string') messages.push({ role: 'user', content: input });
  else if (Array.isArray(input))
    input.forEach((item: Body, i) => {
      const where = `input[${i}]`;
      if (item?.type === 'function_call') {
        const call = {
          id: item.call_id,
          type: 'function',
          function: { name: item.name, arguments: item.arguments ?? '{}' },
        };
        const last = messages[messages.length - 1];
        if (last?.role === 'assistant' && Array.isArray(last.tool_calls) && !last.content)
          (last.tool_calls as unknown[]).push(call);
        else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
      } else if (item?.type === 'function_call_output')
        messages.push({
          role: 'tool',
          tool_call_id: item.call_id,
          content: typeof item.output === 'string' ? item.output : JSON.stringify(item.output),
        });
      else if (item?.type === undefined || item.type === 'message') {
        if (typeof item?.role !== 'string') throw badRequest(`${where} needs a role`, 'input');
        messages.push({ role: item.role === 'developer' ? 'system' : item.role, content: text(item.content, where) });
      } else throw badRequest(`${where} of type ${preview(item.type)} is not supported`, 'input');
    });
  else throw badRequest("'input' must be a string or an array of input items", 'input');
  if (!messages.length) throw badRequest("'input' holds no message", 'input');
  if (typeof b.model !== 'string' || !b.model) throw badRequest("'model' is required", 'model');
  const mot = b.max_output_tokens;
  if (mot != null && !(Number.isInteger(mot) && (mot as number) >= 1))
    throw badRequest("'max_output_tokens' must be a positive integer", 'max_output_tokens');
  for (const k of ['temperature', 'top_p'] as const)
    if (b[k] != null && typeof b[k] !== 'number') throw badRequest(`'${k}' must be a number`, k);
  const out: Body = {
    model: b.model,
    messages,
    stream: b.stream ?? false,
    ...(b.max_output_tokens != null ? { max_tokens: b.max_output_tokens } : {}),
  };
  for (const k of ['temperature', 'top_p', 'seed', 'user', 'parallel_tool_calls'] as const)
    if (b[k] != null) out[k] = b[k];
  if (Array.isArray(b.tools) && b.tools.length)
    out.tools = b.tools.map((t: Body, i) => {
      if (t?.type !== 'function')
        throw badRequest(`tools[${i}] of type ${preview(t?.type)} is not supported (function tools only)`, 'tools');
      return { type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } };
    });
  const tc = b.tool_choice as Body | string | undefined;
  if (tc !== undefined)
    out.tool_choice =
      typeof tc === 'string' ? tc : tc?.type === 'function' ? { type: 'function', function: { name: tc.name } } : tc;
  const format = (b.text as Body | undefined)?.format as Body | undefined;
  if (format && format.type !== 'text')
    out.response_format =
      format.type === 'json_schema'
        ? { type: 'json_schema', json_schema: { name: format.name, schema: format.schema, strict: format.strict } }
        : format;
  return out;
}

/** A Response object's output items and status for finished choices (the first: the Responses API has one). */
function outputOf(req: GenRequest, r: ChoiceResult) {
  const reply = chatReply(req, r);
  const items: Body[] = [];
  if (reply.content)
    items.push({
      type: 'message',
      id: `msg_${randomUUID().replace(/-/g, '')}`,
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: reply.content, annotations: [] }],
    });
  for (const c of reply.toolCalls)
    items.push({
      type: 'function_call',
      id: `fc_${randomUUID().replace(/-/g, '')}`,
      call_id: c.id,
      name: c.function.name,
      arguments: c.function.arguments,
      status: 'completed',
    });
  return { items, incomplete: reply.finish === 'length' };
}

export interface ResponseHeadLike {
  id: string;
  created: number;
  model: string;
}

function responseUsage(promptTokens: number, results: ChoiceResult[]) {
  const u = usage(promptTokens, results);
  return {
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: u.prompt_tokens_details.cached_tokens },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.total_tokens,
  };
}

/** The Response object (status in_progress while streaming, before the results). */
export function responseObject(
  h: ResponseHeadLike,
  req: GenRequest,
  results: ChoiceResult[] | null,
  promptTokens: number,
): Body {
  const out = results?.[0] ? outputOf(req, results[0]) : null;
  return {
    id: h.id,
    object: 'response',
    created_at: h.created,
    status: !out ? 'in_progress' : out.incomplete ? 'incomplete' : 'completed',
    incomplete_details: out?.incomplete ? { reason: 'max_output_tokens' } : null,
    error: null,
    model: h.model,
    output: out?.items ?? [],
    parallel_tool_calls: true,
    tool_choice: req.tools
      ? typeof req.toolChoice === 'string'
        ? req.toolChoice
        : { type: 'function', ...req.toolChoice }
      : 'none',
    tools: (req.tools ?? []).map((t) => ({ type: 'function', ...t, strict: false })),
    temperature: req.sampling.temperature,
    top_p: req.sampling.top_p,
    max_output_tokens: req.maxTokens,
    usage: results ? responseUsage(promptTokens, results) : null,
  };
}

/** The Responses event sequence of one streamed response: created / in_progress, a message item whose text streams as
 *  output_text deltas (with tools: the text and the calls at the end), then completed. */
export class ResponsesStream {
  private seq = 0;
  private readonly msgId = `msg_${randomUUID().replace(/-/g, '')}`;
  private opened = false;

  constructor(
    private readonly s: SseStream,
    private readonly h: ResponseHeadLike,
    private readonly req: GenRequest,
    private readonly buffered: boolean,
  ) {}

  private send(type: string, data: Body): Promise<void> {
    return this.s.sendEvent(type, { type, sequence_number: this.seq++, ...data });
  }

  start(): void {
    const r = responseObject(this.h, this.req, null, 0);
    void this.send('response.created', { response: r });
    void this.send('response.in_progress', { response: r });
  }

  private openMessage(): void {
    if (this.opened) return;
    this.opened = true;
    void this.send('response.output_item.added', {
      output_index: 0,
      item: { type: 'message', id: this.msgId, status: 'in_progress', role: 'assistant', content: [] },
    });
    void this.send('response.content_part.added', {
      item_id: this.msgId,
      output_index: 0,
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [] },
    });
  }

  delta(piece: string): void {
    if (this.buffered || !piece) return;
    this.openMessage();
    void this.send('response.output_text.delta', {
      item_id: this.msgId,
      output_index: 0,
      content_index: 0,
      delta: piece,
    });
  }

  async finish(results: ChoiceResult[], promptTokens: number): Promise<void> {
    const final = responseObject(this.h, this.req, results, promptTokens);
    const items = final.output as Body[];
    let index = 0;
    for (const item of items) {
      if (item.type === 'message') {
        const t = (item.content as { text: string }[])[0]!.text;
        if (this.buffered) {
          this.openMessage();
          await this.send('response.output_text.delta', {
            item_id: this.msgId,
            output_index: index,
            content_index: 0,
            delta: t,
          });
        }
        item.id = this.msgId;
        await this.send('response.output_text.done', {
          item_id: this.msgId,
          output_index: index,
          content_index: 0,
          text: t,
        });
        await this.send('response.content_part.done', {
          item_id: this.msgId,
          output_index: index,
          content_index: 0,
          part: { type: 'output_text', text: t, annotations: [] },
        });
      } else {
        await this.send('response.output_item.added', {
          output_index: index,
          item: { ...item, arguments: '', status: 'in_progress' },
        });
        await this.send('response.function_call_arguments.delta', {
          item_id: item.id,
          output_index: index,
          delta: item.arguments,
        });
        await this.send('response.function_call_arguments.done', {
          item_id: item.id,
          output_index: index,
          arguments: item.arguments,
        });
      }
      await this.send('response.output_item.done', { output_index: index, item });
      index++;
    }
    await this.send(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final });
  }
}
