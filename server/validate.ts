// Request bodies of /v1/completions and /v1/chat/completions → one normalised GenRequest. Wrong types and
// out-of-range values are 400s naming the field (`param`); nothing is coerced or clamped. Unknown fields are
// accepted (and reported to the log), as real clients send many.
import { samplingParams, MAX_TOP_LOGPROBS, type SamplingParams } from '../engine/sampler.js';
import type { ChatMessage } from '../engine/text/chat.js';
import { badRequest } from './errors.js';

export type Prompt = { text: string } | { ids: number[] };

export interface GenRequest {
  kind: 'completion' | 'chat';
  model: string;
  /** completions: one choice set per prompt; chat: the messages (rendered later). */
  prompts: Prompt[];
  messages: ChatMessage[] | null;
  maxTokens: number | null;
  n: number;
  stream: boolean;
  includeUsage: boolean;
  stop: string[];
  stopTokenIds: number[];
  includeStopStr: boolean;
  sampling: SamplingParams;
  /** Alternatives per token (completions' logprobs, chat's top_logprobs); null = no logprobs. */
  logprobs: number | null;
  echo: boolean;
  ignoreEos: boolean;
  minTokens: number;
  truncatePromptTokens: number | null;
  addGenerationPrompt: boolean;
  /** Per-request overrides of the server's deadlines (seconds). */
  maxQueueTime: number | null;
  unknownFields: string[];
}

type Body = Record<string, unknown>;

const KNOWN_COMMON = ['model', 'max_tokens', 'temperature', 'top_p', 'n', 'stream', 'stream_options', 'stop', 'seed',
  'presence_penalty', 'frequency_penalty', 'logprobs', 'user', 'logit_bias', 'top_k', 'min_p', 'repetition_penalty',
  'ignore_eos', 'min_tokens', 'stop_token_ids', 'include_stop_str_in_output', 'skip_special_tokens',
  'truncate_prompt_tokens', 'request_id', 'priority', 'max_queue_time', 'best_of', 'metadata', 'store', 'service_tier'];
const KNOWN_COMPLETION = ['prompt', 'echo', 'suffix'];
const KNOWN_CHAT = ['messages', 'max_completion_tokens', 'top_logprobs', 'add_generation_prompt', 'chat_template_kwargs',
  'response_format', 'tools', 'tool_choice', 'parallel_tool_calls', 'reasoning_effort', 'prompt_cache_key', 'modalities',
  'functions', 'function_call', 'stream_options'];

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function opt<T>(b: Body, key: string, check: (v: unknown) => v is T, what: string): T | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (!check(v)) throw badRequest(`'${key}' must be ${what}, got ${JSON.stringify(v)?.slice(0, 80)}`, key);
  return v;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isStr = (v: unknown): v is string => typeof v === 'string';

function intIn(b: Body, key: string, lo: number, hi: number): number | undefined {
  return opt(b, key, (v): v is number => isInt(v) && v >= lo && v <= hi, `an integer from ${lo} to ${hi}`);
}

function tokenIds(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => isInt(x) && x >= 0);
}

function parsePrompts(p: unknown): Prompt[] {
  const fail = () => badRequest("'prompt' must be a string, an array of strings, an array of token ids or an array of token-id arrays", 'prompt');
  if (typeof p === 'string') return [{ text: p }];
  if (!Array.isArray(p) || p.length === 0) throw p === undefined ? badRequest("'prompt' is required", 'prompt') : fail();
  if (p.every(isStr)) return p.map((text) => ({ text }));
  if (tokenIds(p)) return [{ ids: p }];
  if (p.every(tokenIds)) return (p as number[][]).map((ids) => ({ ids }));
  throw fail();
}

function parseMessages(m: unknown): ChatMessage[] {
  if (!Array.isArray(m)) throw badRequest("'messages' is required and must be an array of messages", 'messages');
  if (!m.length) throw badRequest("'messages' must hold at least one message", 'messages');
  return m.map((msg, i) => {
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw badRequest(`messages[${i}] must be an object`, `messages[${i}]`);
    const { role, content } = msg as Body;
    if (!isStr(role)) throw badRequest(`messages[${i}].role must be a string`, `messages[${i}].role`);
    let text: string;
    if (isStr(content)) text = content;
    else if (content === null || content === undefined) text = '';
    else if (Array.isArray(content)) {
      text = content.map((part, j) => {
        const pt = part as Body;
        if (pt?.type !== 'text' || !isStr(pt.text)) {
          throw badRequest(`messages[${i}].content[${j}]: only text parts ({"type": "text", "text": …}) are supported`, `messages[${i}].content`);
        }
        return pt.text;
      }).join('');
    } else throw badRequest(`messages[${i}].content must be a string or an array of text parts`, `messages[${i}].content`);
    return { ...(msg as Body), role, content: text };
  });
}

export function parseGenRequest(kind: 'completion' | 'chat', body: unknown): GenRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the request body must be a JSON object', null, 'invalid_json');
  const b = body as Body;
  const model = b.model;
  if (!isStr(model) || !model) throw badRequest("'model' is required and must be a string", 'model');
  const known = new Set([...KNOWN_COMMON, ...(kind === 'chat' ? KNOWN_CHAT : KNOWN_COMPLETION)]);
  const stream = opt(b, 'stream', isBool, 'a boolean') ?? false;
  const so = b.stream_options;
  if (so !== undefined && so !== null) {
    if (!stream) throw badRequest('Stream options can only be defined when `stream=True`.', 'stream_options');
    if (typeof so !== 'object' || Array.isArray(so)) throw badRequest("'stream_options' must be an object", 'stream_options');
  }
  const includeUsage = (so as Body | undefined)?.include_usage === true;
  let stop: string[] = [];
  if (isStr(b.stop)) stop = [b.stop];
  else if (Array.isArray(b.stop) && b.stop.every(isStr)) stop = b.stop;
  else if (b.stop !== undefined && b.stop !== null) throw badRequest("'stop' must be a string or an array of strings", 'stop');
  if (stop.length > 4) throw badRequest("'stop' may hold at most 4 sequences", 'stop');
  if (stop.some((s) => s === '')) throw badRequest("'stop' sequences must not be empty", 'stop');
  const n = intIn(b, 'n', 1, 16) ?? 1;

  let logprobs: number | null = null;
  let maxTokens: number | undefined;
  if (kind === 'chat') {
    const lp = opt(b, 'logprobs', isBool, 'a boolean') ?? false;
    const top = intIn(b, 'top_logprobs', 0, MAX_TOP_LOGPROBS);
    if (top !== undefined && !lp) throw badRequest('when using `top_logprobs`, `logprobs` must be set to true', 'top_logprobs');
    logprobs = lp ? top ?? 0 : null;
    maxTokens = intIn(b, 'max_completion_tokens', 0, 2 ** 31) ?? intIn(b, 'max_tokens', 0, 2 ** 31);
    const rf = b.response_format as Body | undefined;
    if (rf && rf.type !== undefined && rf.type !== 'text') throw badRequest(`response_format type "${String(rf.type)}" is not supported (only "text")`, 'response_format');
    if (b.tools && (b.tool_choice === 'required' || (typeof b.tool_choice === 'object' && b.tool_choice !== null))) {
      throw badRequest('tool calling is not supported: tool_choice must be "none" or "auto"', 'tool_choice');
    }
  } else {
    logprobs = intIn(b, 'logprobs', 0, 5) ?? null;
    maxTokens = intIn(b, 'max_tokens', 0, 2 ** 31) ?? 16;
  }
  const echo = kind === 'completion' ? opt(b, 'echo', isBool, 'a boolean') ?? false : false;
  if (echo && logprobs !== null) throw badRequest('echo with logprobs (prompt logprobs) is not supported', 'echo');
  if (b.best_of !== undefined && b.best_of !== null && b.best_of !== 1 && b.best_of !== n) throw badRequest("'best_of' other than n is not supported", 'best_of');
  if (b.suffix !== undefined && b.suffix !== null && b.suffix !== '') throw badRequest("'suffix' is not supported", 'suffix');
  const stopTokenIds = opt(b, 'stop_token_ids', tokenIds, 'an array of token ids') ?? [];
  const seed = opt(b, 'seed', isInt, 'an integer');
  let sampling: SamplingParams;
  try {
    sampling = samplingParams({
      temperature: opt(b, 'temperature', isNum, 'a number'), top_p: opt(b, 'top_p', isNum, 'a number'),
      top_k: opt(b, 'top_k', isInt, 'an integer'), min_p: opt(b, 'min_p', isNum, 'a number'),
      presence_penalty: opt(b, 'presence_penalty', isNum, 'a number'), frequency_penalty: opt(b, 'frequency_penalty', isNum, 'a number'),
      repetition_penalty: opt(b, 'repetition_penalty', isNum, 'a number'), seed: seed ?? null, logprobs,
    });
  } catch (e) {
    throw badRequest((e as Error).message, (e as { param?: string }).param ?? null);
  }
  return {
    kind, model,
    prompts: kind === 'completion' ? parsePrompts(b.prompt) : [],
    messages: kind === 'chat' ? parseMessages(b.messages) : null,
    maxTokens: maxTokens ?? null, n, stream, includeUsage, stop, stopTokenIds,
    includeStopStr: opt(b, 'include_stop_str_in_output', isBool, 'a boolean') ?? false,
    sampling, logprobs, echo,
    ignoreEos: opt(b, 'ignore_eos', isBool, 'a boolean') ?? false,
    minTokens: intIn(b, 'min_tokens', 0, 2 ** 31) ?? 0,
    truncatePromptTokens: intIn(b, 'truncate_prompt_tokens', 1, 2 ** 31) ?? null,
    addGenerationPrompt: opt(b, 'add_generation_prompt', isBool, 'a boolean') ?? true,
    maxQueueTime: opt(b, 'max_queue_time', (v): v is number => isNum(v) && v > 0, 'a positive number of seconds') ?? null,
    unknownFields: Object.keys(b).filter((k) => !known.has(k)),
  };
}
