// The HTTP side of a generation (POST /v1/completions and /v1/chat/completions). All validation, tokenisation and the context check happen before
// the first response byte; after the stream has started, failures go in-band (spec/serving.md §0).
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QueueFullError, RequestTooLargeError } from '../engine/scheduler.js';
import { ApiError, badRequest, modelNotFound, toApiError, unavailable } from './errors.js';
import {
  callId,
  chatBody,
  chatReply,
  chunk,
  completionBody,
  finishReason,
  toolsActive,
  usage,
  type ResponseHead,
} from './openai/responses.js';
import { runGeneration, type ChoiceResult, type GenerationSink } from '../engine/output.js';
import type { Engine } from '../engine/engine.js';
import { GrammarError, type TokenConstraint } from '../engine/text/grammar.js';
import { ToolCallStream, withToolPrompt, type ToolStreamEvent } from '../engine/text/tools.js';
import { responseObject, responsesToChat, ResponsesStream } from './openai/responses-api.js';
import { SseStream } from './openai/sse.js';
import type { ServerState } from './state.js';
import { genRequest, type GenRequest } from './openai/requests.js';

interface Prepared {
  host: Engine;
  prompts: number[][];
  echoes: string[];
  maxTokens: number;
}

/** context_length_exceeded in OpenAI's wording; `detail` says what the request asked for. */
const contextExceeded = (limit: number, detail: string, param: string, extra: Record<string, unknown> = {}) =>
  badRequest(
    `This model's maximum context length is ${limit} tokens. However, ${detail}`,
    param,
    'context_length_exceeded',
    {
      ...extra,
      n_ctx: limit,
    },
  );

/** Tokenise one text, first rejecting without encoding a text whose bytes alone prove it is over the context (unless
 *  the request truncates its prompt: then any length is fine). */
async function encode(host: Engine, req: GenRequest, text: string, special: boolean): Promise<number[]> {
  const param = req.kind === 'chat' ? 'messages' : 'prompt',
    limit = host.plan.maxModelLen,
    atLeast = host.tokenizer.minTokens(text);
  if (atLeast > limit && req.truncatePromptTokens === null) {
    const detail = `the ${param} alone is at least ${atLeast} tokens (${Buffer.byteLength(text)} bytes). Please reduce the length of the ${param}.`;
    throw contextExceeded(limit, detail, param);
  }
  return host.tokenizer.encodeAsync(text, special);
}

/** After a chat turn with one choice, have the engine prefill the conversation as the next turn will render it
 *  (Engine.warmTurn), once the response is on its way. */
function warmNextTurn(host: Engine, req: GenRequest, prompt: readonly number[], results: ChoiceResult[] | null): void {
  const r = results?.length === 1 ? results[0]! : null;
  if (req.kind !== 'chat' || !r || r.end === 'abort' || r.end === 'deadline' || !r.text) return;
  setImmediate(() => {
    const text = host.chat.render(
      [...req.messages!, { role: 'assistant', content: r.text }],
      false,
      req.chatTemplateKwargs,
    );
    host.tokenizer.encodeAsync(text, false).then(
      (ids) => host.warmTurn(prompt, ids),
      () => {}, // a turn not warmed is a later partial hit
    );
  });
}

/** Structured outputs and tool calls: the request's grammar compiled against the model's tokenizer (cached per
 *  grammar) and one matcher per choice; a grammar the engine rejects is a 400 naming the field that gave it. */
async function grammarConstraints(
  host: Engine,
  req: GenRequest,
  count: number,
): Promise<TokenConstraint[] | undefined> {
  const g = req.grammar;
  if (!g) return undefined;
  try {
    const compiled = await host.grammars.compile(g.spec, g.param);
    return await Promise.all(Array.from({ length: count }, () => host.grammars.constraint(compiled)));
  } catch (e) {
    if (e instanceof GrammarError) throw badRequest(e.message, e.param);
    throw e;
  }
}

/** Resolve the model, tokenise, and check the context and capacity: everything that can fail with a status. */
async function prepare(state: ServerState, req: GenRequest): Promise<Prepared> {
  const host = state.engine(req.model);
  if (!host) throw modelNotFound(req.model);
  if (host.isRestarting)
    throw unavailable(
      `the model ${req.model} is reloading after an engine failure: retry shortly`,
      'engine_restarting',
      2,
    );
  const tok = host.tokenizer,
    V = host.spec.vocab;
  const biased = Object.keys(req.sampling.logit_bias ?? {}).find((id) => Number(id) >= V);
  if (biased !== undefined)
    throw badRequest(`logit_bias: token id ${biased} is outside the vocabulary (0 … ${V - 1})`, 'logit_bias');
  let prompts: number[][], echoes: string[];
  if (req.kind === 'chat') {
    // tools: a template that renders them gets them as `tools`; otherwise (ChatML default, or a template without tools)
    // fury writes a preamble and reads the calls back out of the text
    const tools = req.tools;
    const text = !tools
      ? host.chat.render(req.messages!, req.addGenerationPrompt, req.chatTemplateKwargs)
      : host.chat.handlesTools
        ? host.chat.render(req.messages!, req.addGenerationPrompt, {
            ...req.chatTemplateKwargs,
            tools: tools.map((t) => ({ type: 'function', function: t })),
          })
        : host.chat.render(withToolPrompt(req.messages!, tools), req.addGenerationPrompt, req.chatTemplateKwargs);
    prompts = [await encode(host, req, text, false)];
    echoes = [text];
  } else {
    prompts = [];
    for (const [i, p] of req.prompts.entries()) {
      if ('ids' in p) {
        const bad = p.ids.find((id) => id >= V);
        if (bad !== undefined)
          throw badRequest(`prompt ${i}: token id ${bad} is outside the vocabulary (0 … ${V - 1})`, 'prompt');
        prompts.push(p.ids);
      } else prompts.push(await encode(host, req, p.text, true));
    }
    prompts.forEach((p, i) => {
      if (!p.length) throw badRequest(`prompt ${i} is empty: send at least one token`, 'prompt');
    });
    echoes = req.prompts.map((p) => ('ids' in p ? tok.decode(p.ids) : p.text));
  }
  if (req.truncatePromptTokens !== null) prompts = prompts.map((p) => p.slice(-req.truncatePromptTokens!));
  prompts.forEach((p, i) => {
    if (!p.length)
      throw badRequest(`prompt ${i} is empty: send at least one token`, req.kind === 'chat' ? 'messages' : 'prompt');
  });
  const limit = host.plan.maxModelLen,
    longest = longestPrompt(prompts);
  const maxTokens = req.maxTokens ?? Math.max(0, Math.min(state.opts.defaultMaxTokens, limit - longest));
  for (const p of prompts) {
    if (p.length + maxTokens > limit) {
      const param = req.kind === 'chat' ? 'messages' : 'prompt';
      throw contextExceeded(
        limit,
        `you requested ${p.length + maxTokens} tokens (${p.length} in the ${param}, ${maxTokens} in the completion). ` +
          'Please reduce the length of the messages or completion.',
        param,
        { n_prompt_tokens: p.length, n_completion_tokens: maxTokens },
      );
    }
  }
  if (req.minTokens > 0 && maxTokens > 0) {
    // min_tokens bans the stop ids until it is reached: a request that bans every token can never sample one
    const banned = [...host.scheduler.stopIds(req)].filter((id) => id < V);
    if (banned.length >= V) {
      throw badRequest(
        'stop_token_ids (with the end-of-sequence token) cover the whole vocabulary, so no token can be ' +
          'sampled before min_tokens: remove some stop ids or set min_tokens to 0',
        'stop_token_ids',
      );
    }
  }
  const choices = prompts.length * req.n;
  if (choices > host.scheduler.capacity) {
    throw badRequest(
      `the request has ${choices} choices (prompts × n) but this server holds at most ` +
        `${host.scheduler.capacity} requests at once (running + --max-queue): lower n or send fewer prompts`,
      'n',
    );
  }
  const tooLarge = host.scheduler.tooLarge(longest + maxTokens);
  if (tooLarge) throw badRequest(`${tooLarge}: lower max_tokens or the prompt`, 'max_tokens', 'request_too_large');
  return { host, prompts, echoes, maxTokens };
}

/** Retry-After estimate in seconds: one per round of `slots` requests ahead in the queue (1 … 30). */
function retryAfter(host: Engine): number {
  return Math.min(30, Math.max(1, Math.ceil((host.scheduler.numWaiting + 1) / Math.max(1, host.plan.slots))));
}

/** What ended the request early, as the error the client gets (null: it finished, or the client left). */
function endError(state: ServerState, host: Engine, results: ChoiceResult[] | null): ApiError | null {
  const ends = new Set(results?.map((r) => r.end) ?? []);
  if (state.shutdown.signal.aborted && ends.has('abort'))
    return unavailable('the server shut down before the request finished', 'shutdown');
  if (ends.has('deadline'))
    return new ApiError(
      408,
      `the request ran past the server's ${state.opts.requestTimeout} s limit`,
      'server_error',
      'deadline_exceeded',
    );
  if (ends.has('queue_timeout'))
    return unavailable('the request waited too long in the queue; retry later', 'queue_timeout', retryAfter(host));
  return null;
}

interface Outcome {
  req: GenRequest;
  head: ResponseHead;
  host: Engine;
  promptTokens: number;
  results: ChoiceResult[] | null;
  error: ApiError | null;
  clientGone: boolean;
  e2e: number;
}

/** Metrics and the one log line of a finished request. */
function observe(state: ServerState, request: FastifyRequest, o: Outcome): ReturnType<typeof usage> | null {
  const { metrics } = state,
    model_name = o.host.name,
    { error, results } = o;
  if (error) {
    if (error.code === 'deadline_exceeded') metrics.deadlines.inc({ model_name });
    metrics.rejected.inc({ model_name, reason: error.code ?? 'error' });
  }
  for (const r of results ?? []) {
    metrics.generationTokens.inc({ model_name }, r.ids.length);
    if (r.ids.length) metrics.ttft.observe({ model_name }, r.timings.time_to_first_token_ms / 1000);
    for (const gap of r.timings.itl_ms) metrics.itl.observe({ model_name }, gap / 1000);
    metrics.queueTime.observe({ model_name }, r.timings.queue_time_ms / 1000);
    metrics.requestMemory.observe({ model_name, kind: r.peak.kind }, r.peak.state_bytes + r.peak.kv_bytes);
    const f = finishReason(r);
    if (f && !error) metrics.success.inc({ model_name, finished_reason: f });
  }
  metrics.promptTokens.inc({ model_name }, o.promptTokens);
  if (o.clientGone) metrics.disconnected.inc({ model_name });
  else metrics.e2e.observe({ model_name }, o.e2e);
  const u = results ? usage(o.promptTokens, results) : null;
  request.log.info(
    {
      request_id: o.head.id,
      model: o.req.model,
      prompt_tokens: o.promptTokens,
      completion_tokens: u?.completion_tokens ?? 0,
      finish_reasons: results?.map((r) => r.end),
      error: error?.code ?? null,
      disconnected: o.clientGone,
      e2e_ms: Math.round(o.e2e * 1000),
      timings: u?.timings,
      memory: u?.memory,
    },
    'request finished',
  );
  return u;
}

/** The end of a stream: each choice's finish chunk, then the in-band error or the usage chunk, then [DONE]. */
async function endStream(
  s: SseStream,
  reply: FastifyReply,
  o: Outcome,
  u: ReturnType<typeof usage> | null,
  tools: ToolDeltas | null,
): Promise<void> {
  const { error, head, req } = o,
    kind = req.kind;
  if (!openEnd(s, reply, o)) return;
  for (const r of o.results ?? []) {
    let f = finishReason(r);
    if (!error && tools) {
      await tools.end(r.index); // what the split held back (a possible marker's beginning, a closing brace)
      f = chatReply(req, r).finish;
    }
    if (f) await s.send(chunk(head, kind, r.index, { finish: f }));
  }
  if (error) await s.send(error.body());
  else if (req.includeUsage && u)
    await s.send({
      id: head.id,
      object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      created: head.created,
      model: head.model,
      choices: [],
      usage: u,
    });
  await s.end();
}

/** The start of a stream's end: nothing when the client is gone; an error before any event is a plain JSON error
 *  response; else the stream is open (returns true) for the closing events. */
function openEnd(s: SseStream, reply: FastifyReply, o: Outcome): boolean {
  if (o.clientGone) {
    s.stopPings();
    return false;
  }
  if (o.error && !s.headersSent) {
    s.stopPings();
    reply.raw.writeHead(o.error.status, { 'content-type': 'application/json', ...o.error.headers() });
    reply.raw.end(JSON.stringify(o.error.body()));
    return false;
  }
  s.open({ 'x-request-id': o.head.id });
  return true;
}

/** The end of a streamed Response: its items and `response.completed` (or an error event), without [DONE]. */
async function endResponses(s: SseStream, reply: FastifyReply, o: Outcome, events: ResponsesStream): Promise<void> {
  if (!openEnd(s, reply, o)) return;
  if (o.error) await s.sendEvent('error', { type: 'error', ...o.error.body().error });
  else await events.finish(o.results ?? [], o.promptTokens);
  await s.end(false);
}

/** A chat stream with tools: each choice's reply split into text and tool calls as it is generated (ToolCallStream)
 *  and sent as OpenAI frames them: content deltas, then per call a delta with its id, type and name, then its arguments
 *  in pieces. */
class ToolDeltas {
  private readonly choices = new Map<number, ToolCallStream>();
  constructor(
    private readonly s: SseStream,
    private readonly head: ResponseHead,
    private readonly req: GenRequest,
  ) {}

  private of(i: number): ToolCallStream {
    let c = this.choices.get(i);
    if (!c) this.choices.set(i, (c = new ToolCallStream(this.req.toolChoice)));
    return c;
  }

  push(i: number, text: string): Promise<void> {
    return this.send(i, this.of(i).push(text));
  }

  end(i: number): Promise<void> {
    return this.send(i, this.of(i).end());
  }

  /** Every event's chunk queued now, in order (SseStream writes in the order of its calls). */
  private async send(i: number, events: ToolStreamEvent[]): Promise<void> {
    await Promise.all(events.map((e) => this.s.send(this.frame(i, e))));
  }

  private frame(i: number, e: ToolStreamEvent) {
    const kind = this.req.kind;
    if (e.kind === 'text') return chunk(this.head, kind, i, { text: e.text });
    if (e.kind === 'args')
      return chunk(this.head, kind, i, { toolCalls: [{ index: e.index, function: { arguments: e.text } }] });
    return chunk(this.head, kind, i, {
      toolCalls: [{ index: e.index, id: callId(), type: 'function', function: { name: e.name, arguments: '' } }],
    });
  }
}

/** A stream's sink: headers (and the chat role delta, the echo) when the first choice starts, then text deltas (with
 *  tools: text and tool-call deltas, `tools`). */
function streamSink(
  s: SseStream,
  req: GenRequest,
  head: ResponseHead,
  echoes: string[],
  tools: ToolDeltas | null,
): GenerationSink {
  const kind = req.kind,
    offsets = new Map<number, number>();
  return {
    onStart: (i) => {
      s.open({ 'x-request-id': head.id });
      if (kind === 'chat') void s.send(chunk(head, kind, i, { role: true }));
      // the echo goes first; with prompt logprobs it waits for them (onPrompt)
      if (req.echo && req.promptLogprobs == null) {
        const e = echoes[Math.floor(i / req.n)]!;
        offsets.set(i, e.length);
        if (e) void s.send(chunk(head, kind, i, { text: e }));
      }
    },
    onPrompt: (i, lps) => {
      const e = echoes[Math.floor(i / req.n)]!;
      offsets.set(
        i,
        lps.reduce((a, l) => a + l.token.length, 0),
      );
      void s.send(chunk(head, kind, i, { text: e, logprobs: lps, offset: 0 }));
    },
    onDelta: (i, text, lps) => {
      if (tools) return void tools.push(i, text);
      const offset = offsets.get(i) ?? 0;
      offsets.set(i, offset + lps.reduce((a, l) => a + l.token.length, 0));
      void s.send(chunk(head, kind, i, { text, logprobs: req.logprobs === null ? null : lps, offset }));
    },
  };
}

const longestPrompt = (prompts: number[][]) => prompts.reduce((m, p) => Math.max(m, p.length), 0);

/** 429 when the queue cannot take the request's choices now. */
function checkQueue(state: ServerState, host: Engine, choices: number, tokens: number): void {
  if (host.scheduler.canQueue(choices, tokens)) return;
  state.metrics.rejected.inc({ model_name: host.name, reason: 'queue_full' });
  const { numWaiting, opts } = host.scheduler;
  const message = `the server is busy: ${numWaiting} requests are waiting (limit ${opts.maxQueue}); retry later`;
  throw queueFull(state, message, host);
}

function responseHead(request: FastifyRequest, req: GenRequest, prefix?: string): ResponseHead {
  const header = request.headers['x-request-id'];
  const id =
    typeof header === 'string' && header
      ? header
      : `${prefix ?? (req.kind === 'chat' ? 'chatcmpl' : 'cmpl')}-${randomUUID().replace(/-/g, '')}`;
  return { id, created: Math.floor(Date.now() / 1000), model: req.model };
}

/** A request's abort signal (the client going away, or the server giving up on a drain) and its deadlines. */
function controls(state: ServerState, reply: FastifyReply, req: GenRequest, head: ResponseHead) {
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one listener per choice (n up to 16)
  const c = { abort, clientGone: false, release: () => state.shutdown.signal.removeEventListener('abort', onShutdown) };
  // a client that goes away (streaming or not) aborts the request at the next scheduler step
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) {
      c.clientGone = true;
      abort.abort();
    }
  });
  const onShutdown = () => abort.abort();
  state.shutdown.signal.addEventListener('abort', onShutdown, { once: true });
  const now = performance.now();
  const opts = {
    requestId: head.id,
    signal: abort.signal,
    deadline: state.opts.requestTimeout ? now + state.opts.requestTimeout * 1000 : undefined,
    queueDeadline: now + Math.min(req.maxQueueTime ?? Infinity, state.opts.maxQueueTime) * 1000,
  };
  return { c, opts };
}

/** A full queue, refused with --overload-status: 429 (clients back off and retry), or 503 behind a load balancer that
 *  retries a 503 on another replica. */
function queueFull(state: ServerState, message: string, host: Engine): ApiError {
  return state.opts.overloadStatus === 503
    ? new ApiError(503, message, 'service_unavailable_error', 'queue_full', null, {}, retryAfter(host))
    : new ApiError(429, message, 'rate_limit_error', 'queue_full', null, {}, retryAfter(host));
}

/** What the scheduler threw, as the client's error. */
function submitError(e: unknown, state: ServerState, host: Engine): ApiError {
  if (e instanceof QueueFullError) return queueFull(state, e.message, host);
  if (e instanceof RequestTooLargeError) return badRequest(e.message, 'max_tokens', 'request_too_large');
  return toApiError(e);
}

export function generationHandler(state: ServerState, api: 'completion' | 'chat' | 'responses') {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const t0 = performance.now();
    const req =
      api === 'responses'
        ? genRequest('chat', responsesToChat(request.body as Record<string, unknown>))
        : genRequest(api, request.body);
    if (req.unknownFields.length) {
      request.log.info({ fields: req.unknownFields }, 'The following fields were present in the request but ignored');
    }
    const { host, prompts, echoes, maxTokens } = await prepare(state, req);
    checkQueue(state, host, prompts.length * req.n, longestPrompt(prompts) + maxTokens);
    const head = responseHead(request, req, api === 'responses' ? 'resp' : undefined);
    const constraints = await grammarConstraints(host, req, prompts.length * req.n);
    // a conversation that was served by another replica: its history's state from the shared tier (a miss is cheap)
    await Promise.all(prompts.map((p) => host.fetchState(p)));
    const { c, opts: base } = controls(state, reply, req, head);
    const opts = { ...base, constraints };
    let sse: SseStream | null = null;
    let tools: ToolDeltas | null = null;
    let results: ChoiceResult[] | null = null;
    let events: ResponsesStream | null = null;
    let error: ApiError | null = null;
    try {
      if (req.stream) {
        reply.hijack();
        sse = new SseStream(reply.raw, state.opts.pingInterval * 1000, () => state.metrics.pings.inc());
        if (api === 'responses') {
          const rs = new ResponsesStream(sse, head, req, toolsActive(req));
          events = rs;
          results = await runGeneration(host, req, prompts, maxTokens, opts, {
            onStart: () => {
              sse!.open({ 'x-request-id': head.id });
              rs.start();
            },
            onDelta: (_i, text) => rs.delta(text),
          });
        } else {
          tools = toolsActive(req) ? new ToolDeltas(sse, head, req) : null;
          results = await runGeneration(host, req, prompts, maxTokens, opts, streamSink(sse, req, head, echoes, tools));
        }
      } else {
        results = await runGeneration(host, req, prompts, maxTokens, opts);
      }
    } catch (e) {
      error = submitError(e, state, host);
      c.abort.abort();
    } finally {
      c.release();
    }
    if (!error && !c.clientGone) error = endError(state, host, results);
    const promptTokens = prompts.reduce((s, p) => s + p.length, 0);
    const e2e = (performance.now() - t0) / 1000;
    const o: Outcome = { req, head, host, promptTokens, results, error, clientGone: c.clientGone, e2e };
    const u = observe(state, request, o);
    if (!error) warmNextTurn(host, req, prompts[0]!, results);
    if (req.stream && events) return endResponses(sse!, reply, o, events);
    if (req.stream) return endStream(sse!, reply, o, u, tools);
    if (c.clientGone) return;
    reply.header('x-request-id', head.id);
    if (error) throw error;
    if (api === 'responses') return responseObject(head, req, results, promptTokens);
    if (req.kind === 'chat') return chatBody(head, req, results!, promptTokens);
    return completionBody(head, req, results!, echoes, promptTokens);
  };
}
