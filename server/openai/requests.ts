// A request body that passed its JSON Schema (schemas.ts) → one normalised GenRequest for the engine. Only the rules
// that join fields, or need the engine, are checked here; nothing is coerced or clamped. Unknown fields are accepted
// and reported to the log, as real clients send many.
import { samplingParams, type SamplingParams } from '../../engine/sampler.js';
import type { ChatMessage } from '../../engine/text/chat.js';
import type { OutputRequest } from '../../engine/output.js';
import { badRequest } from '../errors.js';
import { ChatCompletionRequest, CompletionRequest, knownFields } from './schemas.js';
import { preview } from '../../lib/preview.js';
import type { GrammarSpec } from '../../engine/text/grammar.js';
import { toolGrammar, type ToolChoice, type ToolSpec } from '../../engine/text/tools.js';

export type Prompt = { text: string } | { ids: number[] };

export interface GenRequest extends OutputRequest {
  kind: 'completion' | 'chat';
  model: string;
  /** completions: one choice set per prompt; chat: the messages (rendered later). */
  prompts: Prompt[];
  messages: ChatMessage[] | null;
  maxTokens: number | null;
  stream: boolean;
  includeUsage: boolean;
  stop: string[];
  stopTokenIds: number[];
  echo: boolean;
  truncatePromptTokens: number | null;
  addGenerationPrompt: boolean;
  /** Extra chat-template variables (vLLM's chat_template_kwargs). */
  chatTemplateKwargs: Record<string, unknown>;
  /** The grammar the output must follow (a structured output, or the tool choice's calls) and the field that asked
   *  for it; null for free text. */
  grammar: { spec: GrammarSpec; param: string } | null;
  /** Function tools (chat; null: none) and how the model may call them. */
  tools: ToolSpec[] | null;
  toolChoice: ToolChoice;
  /** Several calls allowed under "required" (parallel_tool_calls: true; unset means one). */
  parallelToolCalls: boolean;
  /** Per-request override of the server's queue deadline (seconds). */
  maxQueueTime: number | null;
  unknownFields: string[];
}

type Body = Record<string, unknown>;
type Part = { type: 'text'; text: string };

const KNOWN = { completion: knownFields(CompletionRequest), chat: knownFields(ChatCompletionRequest) };

/** null and absent are the same to every field. */
const get = <T>(b: Body, k: string): T | undefined => (b[k] === null ? undefined : (b[k] as T | undefined));

function prompts(p: unknown): Prompt[] {
  if (typeof p === 'string') return [{ text: p }];
  const a = p as unknown[];
  if (a.every((x) => typeof x === 'string')) return (a as string[]).map((text) => ({ text }));
  if (a.every((x) => typeof x === 'number')) return [{ ids: a as number[] }];
  return (a as number[][]).map((ids) => ({ ids }));
}

/** Messages with their content as one string (text parts joined). */
export function chatMessages(m: unknown): ChatMessage[] {
  return (m as Body[]).map((msg) => {
    const c = msg.content as string | Part[] | null | undefined;
    return {
      ...msg,
      role: msg.role as string,
      content: typeof c === 'string' ? c : Array.isArray(c) ? c.map((p) => p.text).join('') : '',
    };
  });
}

/** Rules between fields, each a 400 naming the field the client should change. */
function crossFieldRules(kind: GenRequest['kind'], b: Body, stream: boolean): void {
  if (get(b, 'stream_options') !== undefined && !stream)
    throw badRequest('Stream options can only be defined when `stream=True`.', 'stream_options');
  if (kind === 'chat') {
    const modalities = get<unknown>(b, 'modalities');
    if (modalities !== undefined && !(Array.isArray(modalities) && modalities.every((m) => m === 'text')))
      throw badRequest('only text output is supported: \'modalities\' must be ["text"]', 'modalities');
    if (get(b, 'functions') !== undefined)
      throw badRequest("legacy 'functions' are not supported: send 'tools'", 'functions');
    if (get(b, 'function_call') !== undefined)
      throw badRequest("legacy 'function_call' is not supported: send 'tool_choice'", 'function_call');
    if (get(b, 'top_logprobs') !== undefined && get(b, 'logprobs') !== true) {
      throw badRequest('when using `top_logprobs`, `logprobs` must be set to true', 'top_logprobs');
    }
  } else {
    const suffix = get(b, 'suffix');
    if (suffix !== undefined && suffix !== '') throw badRequest("'suffix' is not supported", 'suffix');
  }
  const n = get<number>(b, 'n') ?? 1,
    bestOf = get(b, 'best_of');
  if (bestOf !== undefined && bestOf !== 1 && bestOf !== n)
    throw badRequest("'best_of' other than n is not supported", 'best_of');
}

/** Function tools and the tool choice (chat): validated here, so a bad one is a 400 naming its field. */
function toolsOf(b: Body, messages: ChatMessage[] | null): { tools: ToolSpec[] | null; toolChoice: ToolChoice } {
  const raw = get<unknown>(b, 'tools');
  const tc = get<unknown>(b, 'tool_choice');
  if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) {
    if (tc !== undefined && tc !== 'none' && tc !== 'auto')
      throw badRequest("'tool_choice' needs 'tools' to choose from", 'tool_choice');
    return { tools: null, toolChoice: 'none' };
  }
  if (!Array.isArray(raw)) throw badRequest("'tools' must be an array of function tools", 'tools');
  const tools = raw.map((t, i): ToolSpec => {
    const f = (t as Body)?.function as Body | undefined;
    if ((t as Body)?.type !== 'function' || typeof f !== 'object' || f === null)
      throw badRequest(`tools[${i}] must be {"type": "function", "function": {…}}`, 'tools');
    if (typeof f.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(f.name))
      throw badRequest(`tools[${i}].function.name must be 1–64 letters, digits, _ or -`, 'tools');
    const p = f.parameters ?? { type: 'object', properties: {} };
    if (typeof p !== 'object' || p === null || Array.isArray(p))
      throw badRequest(`tools[${i}].function.parameters must be a JSON Schema object`, 'tools');
    return {
      name: f.name,
      ...(typeof f.description === 'string' ? { description: f.description } : {}),
      parameters: p as Record<string, unknown>,
    };
  });
  const names = new Set(tools.map((t) => t.name));
  if (names.size !== tools.length) throw badRequest('two tools have the same name', 'tools');
  let toolChoice: ToolChoice;
  if (tc === undefined || tc === 'auto') toolChoice = 'auto';
  else if (tc === 'none' || tc === 'required') toolChoice = tc;
  else {
    const name = ((tc as Body)?.function as Body | undefined)?.name;
    if ((tc as Body)?.type !== 'function' || typeof name !== 'string')
      throw badRequest(
        `'tool_choice' must be "none", "auto", "required" or {"type": "function", "function": {"name": …}}`,
        'tool_choice',
      );
    if (!names.has(name))
      throw badRequest(`'tool_choice' names the function ${preview(name)}, which is not in 'tools'`, 'tool_choice');
    toolChoice = { name };
  }
  for (const [i, m] of (messages ?? []).entries())
    for (const c of (m.tool_calls as { function?: { name?: unknown } }[] | undefined) ?? []) {
      const name = c?.function?.name;
      if (typeof name !== 'string' || !names.has(name))
        throw badRequest(`messages[${i}] calls the function ${preview(name)}, which is not in 'tools'`, 'messages');
    }
  return { tools, toolChoice };
}

/** The grammar a request constrains its output to: OpenAI's response_format (chat), vLLM's structured_outputs and
 *  guided_* fields; at most one. */
function structured(kind: GenRequest['kind'], b: Body): GenRequest['grammar'] {
  const found: { spec: GrammarSpec; param: string }[] = [];
  const rf = kind === 'chat' ? get<Body>(b, 'response_format') : undefined;
  if (rf && rf.type !== undefined && rf.type !== 'text') {
    if (rf.type === 'json_object') found.push({ spec: { kind: 'json' }, param: 'response_format' });
    else if (rf.type === 'json_schema') {
      const js = rf.json_schema as Body | undefined;
      const schema = js?.schema;
      if (typeof schema !== 'object' || schema === null || Array.isArray(schema))
        throw badRequest("'response_format.json_schema.schema' must be a JSON Schema object", 'response_format');
      found.push({ spec: { kind: 'json_schema', schema, strict: js!.strict === true }, param: 'response_format' });
    } else
      throw badRequest(
        `response_format type ${preview(rf.type)} is not supported ("text", "json_object" or "json_schema")`,
        'response_format',
      );
  }
  const so = get<Body>(b, 'structured_outputs') ?? {};
  const pick = (field: string, key: string) => {
    const v = get<unknown>(b, field);
    if (v !== undefined) return { v, param: field };
    return so[key] != null ? { v: so[key], param: `structured_outputs.${key}` } : null;
  };
  const json = pick('guided_json', 'json');
  if (json) {
    const bad = () =>
      badRequest(`'${json.param}' must be a JSON Schema (an object, or a string holding one)`, json.param);
    let schema = json.v;
    if (typeof schema === 'string')
      try {
        schema = JSON.parse(schema);
      } catch {
        throw bad();
      }
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw bad();
    found.push({ spec: { kind: 'json_schema', schema, strict: false }, param: json.param });
  }
  const choice = pick('guided_choice', 'choice');
  if (choice) {
    const c = choice.v;
    if (!Array.isArray(c) || !c.length || !c.every((x) => typeof x === 'string' && x.length))
      throw badRequest(`'${choice.param}' must be a non-empty array of non-empty strings`, choice.param);
    found.push({ spec: { kind: 'choice', choices: c as string[] }, param: choice.param });
  }
  const grammar = pick('guided_grammar', 'grammar');
  if (grammar) {
    if (typeof grammar.v !== 'string' || !grammar.v.trim())
      throw badRequest(`'${grammar.param}' must be a grammar in EBNF (XGrammar's, with a root rule)`, grammar.param);
    found.push({ spec: { kind: 'ebnf', grammar: grammar.v }, param: grammar.param });
  }
  if (so.json_object === true) found.push({ spec: { kind: 'json' }, param: 'structured_outputs.json_object' });
  const regex = pick('guided_regex', 'regex');
  if (regex)
    throw badRequest(
      `'${regex.param}': regular expressions are not supported; use a JSON Schema, a choice list or an EBNF grammar`,
      regex.param,
    );
  if (found.length > 1)
    throw badRequest(
      `only one structured output per request: ${found.map((f) => f.param).join(' and ')} were both given`,
      found[1]!.param,
    );
  return found[0] ?? null;
}

/** The sampling fields, range-checked once here (the scheduler's sampler takes them as they are). */
function sampling(b: Body, logprobs: number | null): SamplingParams {
  try {
    return samplingParams({
      temperature: get(b, 'temperature'),
      top_p: get(b, 'top_p'),
      top_k: get(b, 'top_k'),
      min_p: get(b, 'min_p'),
      presence_penalty: get(b, 'presence_penalty'),
      frequency_penalty: get(b, 'frequency_penalty'),
      repetition_penalty: get(b, 'repetition_penalty'),
      seed: get<number>(b, 'seed') ?? null,
      logit_bias: get<Record<number, number>>(b, 'logit_bias') ?? null,
      logprobs,
    });
  } catch (e) {
    throw badRequest((e as Error).message, (e as { param?: string }).param ?? null);
  }
}

/** The output's grammar: a structured output, or the tools' calls (at most one of the two). */
function toolsAndGrammar(kind: GenRequest['kind'], b: Body, messages: ChatMessage[] | null) {
  const grammar = structured(kind, b);
  const t = kind === 'chat' ? toolsOf(b, messages) : { tools: null, toolChoice: 'none' as const };
  if (grammar && t.toolChoice !== 'none')
    throw badRequest(
      `'${grammar.param}' and tool calls cannot constrain one output together: set tool_choice "none"`,
      grammar.param,
    );
  const parallelToolCalls = b.parallel_tool_calls === true;
  const calls =
    t.tools && t.toolChoice !== 'none'
      ? { spec: toolGrammar(t.tools, t.toolChoice, parallelToolCalls)!, param: 'tools' }
      : null;
  return { grammar: grammar ?? calls, ...t, parallelToolCalls };
}

export function genRequest(kind: GenRequest['kind'], body: unknown): GenRequest {
  const b = body as Body;
  const stream = get<boolean>(b, 'stream') ?? false;
  crossFieldRules(kind, b, stream);
  const messages = kind === 'chat' ? chatMessages(b.messages) : null;
  const logprobs =
    kind === 'chat'
      ? get(b, 'logprobs') === true
        ? (get<number>(b, 'top_logprobs') ?? 0)
        : null
      : (get<number>(b, 'logprobs') ?? null);
  const stop = get<string | string[]>(b, 'stop');
  const maxTokens =
    kind === 'chat'
      ? (get<number>(b, 'max_completion_tokens') ?? get<number>(b, 'max_tokens'))
      : (get<number>(b, 'max_tokens') ?? 16);
  return {
    kind,
    model: b.model as string,
    prompts: kind === 'completion' ? prompts(b.prompt) : [],
    messages,
    maxTokens: maxTokens ?? null,
    n: get<number>(b, 'n') ?? 1,
    stream,
    includeUsage: get<Body>(b, 'stream_options')?.include_usage === true,
    stop: stop === undefined ? [] : typeof stop === 'string' ? [stop] : stop,
    stopTokenIds: get<number[]>(b, 'stop_token_ids') ?? [],
    includeStopStr: get<boolean>(b, 'include_stop_str_in_output') ?? false,
    sampling: sampling(b, logprobs),
    ...toolsAndGrammar(kind, b, messages),
    logprobs,
    echo: kind === 'completion' ? (get<boolean>(b, 'echo') ?? false) : false,
    promptLogprobs: kind === 'completion' && get<boolean>(b, 'echo') === true ? logprobs : null,
    ignoreEos: get<boolean>(b, 'ignore_eos') ?? false,
    minTokens: get<number>(b, 'min_tokens') ?? 0,
    truncatePromptTokens: get<number>(b, 'truncate_prompt_tokens') ?? null,
    addGenerationPrompt: get<boolean>(b, 'add_generation_prompt') ?? true,
    chatTemplateKwargs: get<Record<string, unknown>>(b, 'chat_template_kwargs') ?? {},
    maxQueueTime: get<number>(b, 'max_queue_time') ?? null,
    unknownFields: Object.keys(b).filter((k) => !KNOWN[kind].has(k)),
  };
}
