// OpenAI response shapes (spec/serving.md §3, §4.2): completions and chat, whole and as stream chunks.
import type { ChoiceResult, TokenLogprobInfo } from '../../engine/output.js';
import type { GenRequest } from './requests.js';
import { randomUUID } from 'node:crypto';
import { parseToolCalls } from '../../engine/text/tools.js';

export type Finish = 'stop' | 'length' | 'tool_calls';

/** Whether a chat request's output may hold tool calls (they are parsed out of its text at the end). */
export const toolsActive = (req: GenRequest) => req.kind === 'chat' && req.tools !== null && req.toolChoice !== 'none';

/** A choice's reply with its tool calls parsed out: content (null when only calls), OpenAI's tool_calls, the finish
 *  ("tool_calls" when it called one). */
export function chatReply(req: GenRequest, r: ChoiceResult) {
  const finish = finishReason(r);
  if (!toolsActive(req)) return { content: r.text, toolCalls: [], finish };
  const { content, calls } = parseToolCalls(r.text, req.toolChoice);
  const toolCalls = calls.map((c) => ({
    id: callId(),
    type: 'function' as const,
    function: { name: c.name, arguments: c.arguments },
  }));
  return { content, toolCalls, finish: toolCalls.length && finish === 'stop' ? ('tool_calls' as const) : finish };
}

/** A tool call's id, as OpenAI spells them. */
export const callId = () => `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`;

export const finishReason = (r: ChoiceResult): Finish | null =>
  r.end === 'stop' || r.end === 'stop_string' ? 'stop' : r.end === 'length' ? 'length' : null;

const bytes = (s: string) => [...Buffer.from(s, 'utf8')];

export function chatLogprobs(lps: TokenLogprobInfo[]) {
  return {
    content: lps.map((l) => ({
      token: l.token,
      logprob: l.logprob,
      bytes: bytes(l.token),
      top_logprobs: l.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token) })),
    })),
    refusal: null,
  };
}

export function completionLogprobs(lps: TokenLogprobInfo[], offset: number) {
  const text_offset: number[] = [];
  for (const l of lps) {
    text_offset.push(offset);
    offset += l.token.length;
  }
  return {
    tokens: lps.map((l) => l.token),
    // (NaN: the first prompt token of an echo, which has no logprob)
    token_logprobs: lps.map((l) => (Number.isNaN(l.logprob) ? null : l.logprob)),
    top_logprobs: lps.map((l) =>
      Number.isNaN(l.logprob) ? null : Object.fromEntries(l.top.map((t) => [t.token, t.logprob])),
    ),
    text_offset,
  };
}

/** Prompt logprobs, then the completion's (echo with logprobs). */
function joinLogprobs(a: ReturnType<typeof completionLogprobs>, b: ReturnType<typeof completionLogprobs>) {
  return {
    tokens: [...a.tokens, ...b.tokens],
    token_logprobs: [...a.token_logprobs, ...b.token_logprobs],
    top_logprobs: [...a.top_logprobs, ...b.top_logprobs],
    text_offset: [...a.text_offset, ...b.text_offset],
  };
}

/** usage with fury's per-request memory (summed over the choices) and timings. */
export function usage(promptTokens: number, results: ChoiceResult[]) {
  const completion = results.reduce((s, r) => s + r.ids.length, 0);
  const sum = (f: (r: ChoiceResult) => number) => results.reduce((s, r) => s + f(r), 0);
  const withTokens = results.filter((r) => r.ids.length);
  // each choice ran its prompt as its own request: cached tokens per prompt token, scaled to the prompts counted once
  const ran = sum((r) => r.promptTokens),
    cached = ran ? Math.round((sum((r) => r.cachedTokens) * promptTokens) / ran) : 0;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    total_tokens: promptTokens + completion,
    prompt_tokens_details: { cached_tokens: cached },
    memory: {
      kind: results[0]?.peak.kind ?? 'recurrent_state',
      state_bytes: sum((r) => r.peak.state_bytes),
      kv_bytes: sum((r) => r.peak.kv_bytes),
      kv_tokens: sum((r) => r.peak.kv_tokens),
      kv_blocks: sum((r) => r.peak.kv_blocks),
      peak_bytes: sum((r) => r.peak.state_bytes + r.peak.kv_bytes),
      dtype: 'f32',
      kv_dtype: results[0]?.peak.kv_dtype ?? null,
    },
    timings: {
      queue_time_ms: Math.max(0, ...results.map((r) => r.timings.queue_time_ms)),
      time_to_first_token_ms: withTokens.length
        ? Math.min(...withTokens.map((r) => r.timings.time_to_first_token_ms))
        : 0,
      generation_time_ms: Math.max(0, ...results.map((r) => r.timings.generation_time_ms)),
      mean_itl_ms: withTokens.length ? sum((r) => r.timings.mean_itl_ms) / withTokens.length : 0,
      tokens_per_second: sum((r) => r.timings.tokens_per_second),
    },
  };
}

export interface ResponseHead {
  id: string;
  created: number;
  model: string;
}

export function completionBody(
  h: ResponseHead,
  req: GenRequest,
  results: ChoiceResult[],
  echoes: string[],
  promptTokens: number,
) {
  return {
    id: h.id,
    object: 'text_completion',
    created: h.created,
    model: h.model,
    choices: results.map((r) => {
      const echo = req.echo ? echoes[Math.floor(r.index / req.n)]! : '';
      return {
        index: r.index,
        text: echo + r.text,
        logprobs:
          req.logprobs === null
            ? null
            : r.promptLogprobs.length
              ? joinLogprobs(completionLogprobs(r.promptLogprobs, 0), completionLogprobs(r.logprobs, echo.length))
              : completionLogprobs(r.logprobs, echo.length),
        finish_reason: finishReason(r),
      };
    }),
    usage: usage(promptTokens, results),
  };
}

export function chatBody(h: ResponseHead, req: GenRequest, results: ChoiceResult[], promptTokens: number) {
  return {
    id: h.id,
    object: 'chat.completion',
    created: h.created,
    model: h.model,
    choices: results.map((r) => {
      const reply = chatReply(req, r);
      return {
        index: r.index,
        message: {
          role: 'assistant',
          content: reply.content,
          refusal: null,
          ...(reply.toolCalls.length ? { tool_calls: reply.toolCalls } : {}),
        },
        logprobs: req.logprobs === null ? null : chatLogprobs(r.logprobs),
        finish_reason: reply.finish,
      };
    }),
    usage: usage(promptTokens, results),
  };
}

/** One stream chunk: a content delta, a role delta, or a finish. */
export function chunk(
  h: ResponseHead,
  kind: 'completion' | 'chat',
  index: number,
  part: {
    role?: true;
    text?: string;
    logprobs?: TokenLogprobInfo[] | null;
    finish?: Finish;
    offset?: number;
    /** OpenAI's tool_calls delta entries ({index, id?, type?, function: {name?, arguments}}). */
    toolCalls?: object[];
  },
) {
  const finish_reason = part.finish ?? null;
  if (kind === 'completion') {
    return {
      id: h.id,
      object: 'text_completion',
      created: h.created,
      model: h.model,
      choices: [
        {
          index,
          text: part.text ?? '',
          logprobs: part.logprobs ? completionLogprobs(part.logprobs, part.offset ?? 0) : null,
          finish_reason,
        },
      ],
    };
  }
  const delta = part.role
    ? { role: 'assistant', content: '' }
    : part.toolCalls
      ? { tool_calls: part.toolCalls }
      : part.text !== undefined
        ? { content: part.text }
        : {};
  return {
    id: h.id,
    object: 'chat.completion.chunk',
    created: h.created,
    model: h.model,
    choices: [{ index, delta, logprobs: part.logprobs ? chatLogprobs(part.logprobs) : null, finish_reason }],
  };
}
