// POST /v1/responses (OpenAI's Responses API, stateless): the body is translated into a chat completion request (input
// items → messages, instructions → a system message, function tools, text.format → response_format) and runs on the
// same path; its result comes back as a Response object, or as the Responses event sequence when streamed.
import { randomUUID } from 'node:crypto';
import { ToolCallStream, type ToolStreamEvent } from '../../engine/text/tools.js';
import type { ChoiceResult } from '../../engine/output.js';
import { badRequest } from '../errors.js';
import { preview } from '../../lib/preview.js';
import type { GenRequest } from './requests.js';
import { callId, chatReply, usage } from './responses.js';
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
    parallel_tool_calls: req.parallelToolCalls,
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

/** The Responses event sequence of one streamed response: created / in_progress, then each output item as it is
 *  generated — the message's text as output_text deltas; with tools, each function call as soon as its name is written
 *  and its arguments as function_call_arguments deltas (ToolCallStream) — then each item's done events and completed. */
export class ResponsesStream {
  private seq = 0;
  private next = 0;
  private readonly split: ToolCallStream | null;
  private message: { index: number; id: string; text: string } | null = null;
  /** With tools: whitespace before any content, held (a reply of calls only has no message item). */
  private space = '';
  private readonly calls: { index: number; id: string; callId: string; name: string; args: string }[] = [];

  constructor(
    private readonly s: SseStream,
    private readonly h: ResponseHeadLike,
    private readonly req: GenRequest,
    tools: boolean,
  ) {
    this.split = tools ? new ToolCallStream(req.toolChoice) : null;
  }

  private send(type: string, data: Body): Promise<void> {
    return this.s.sendEvent(type, { type, sequence_number: this.seq++, ...data });
  }

  start(): void {
    const r = responseObject(this.h, this.req, null, 0);
    void this.send('response.created', { response: r });
    void this.send('response.in_progress', { response: r });
  }

  delta(piece: string): void {
    if (!piece) return;
    if (!this.split) return this.text(piece);
    for (const e of this.split.push(piece)) this.event(e);
  }

  private event(e: ToolStreamEvent): void {
    if (e.kind === 'text') return this.text(e.text);
    if (e.kind === 'call') {
      const c = {
        index: this.next++,
        id: `fc_${randomUUID().replace(/-/g, '')}`,
        callId: callId(),
        name: e.name,
        args: '',
      };
      this.calls[e.index] = c;
      void this.send('response.output_item.added', { output_index: c.index, item: this.callItem(c, 'in_progress') });
      return;
    }
    const c = this.calls[e.index]!;
    c.args += e.text;
    void this.send('response.function_call_arguments.delta', { item_id: c.id, output_index: c.index, delta: e.text });
  }

  private text(t: string): void {
    if (!this.message) {
      if (this.split && !t.trim()) {
        this.space += t;
        return;
      }
      t = this.space + t;
      this.message = { index: this.next++, id: `msg_${randomUUID().replace(/-/g, '')}`, text: '' };
      const m = { item_id: this.message.id, output_index: this.message.index, content_index: 0 };
      void this.send('response.output_item.added', {
        output_index: this.message.index,
        item: { type: 'message', id: this.message.id, status: 'in_progress', role: 'assistant', content: [] },
      });
      void this.send('response.content_part.added', { ...m, part: { type: 'output_text', text: '', annotations: [] } });
    }
    this.message.text += t;
    void this.send('response.output_text.delta', {
      item_id: this.message.id,
      output_index: this.message.index,
      content_index: 0,
      delta: t,
    });
  }

  private callItem(c: ResponsesStream['calls'][number], status: string): Body {
    return { type: 'function_call', id: c.id, call_id: c.callId, name: c.name, arguments: c.args, status };
  }

  async finish(results: ChoiceResult[], promptTokens: number): Promise<void> {
    if (this.split) for (const e of this.split.end()) this.event(e);
    const final = responseObject(this.h, this.req, results, promptTokens);
    // the output is what was streamed, item by item in order (their ids and text as sent)
    const items: [number, () => Promise<Body>][] = this.calls.map((c) => [
      c.index,
      async () => {
        await this.send('response.function_call_arguments.done', {
          item_id: c.id,
          output_index: c.index,
          arguments: c.args,
        });
        return this.callItem(c, 'completed');
      },
    ]);
    const msg = this.message;
    if (msg)
      items.push([
        msg.index,
        async () => {
          const m = { item_id: msg.id, output_index: msg.index, content_index: 0 },
            part = { type: 'output_text', text: msg.text, annotations: [] };
          await this.send('response.output_text.done', { ...m, text: msg.text });
          await this.send('response.content_part.done', { ...m, part });
          return { type: 'message', id: msg.id, status: 'completed', role: 'assistant', content: [part] };
        },
      ]);
    const output: Body[] = [];
    for (const [index, done] of items.sort((x, y) => x[0] - y[0])) {
      const item = await done();
      await this.send('response.output_item.done', { output_index: index, item });
      output.push(item);
    }
    final.output = output;
    await this.send(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final });
  }
}
