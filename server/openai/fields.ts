// Every request field the protocol module knows (schemas.ts), with what fury does with it: the README's field table is
// generated from here (`fieldTable()`; test/server/fields.test.ts fails when the README, this list or the schemas
// disagree), so the documentation cannot drift from the code.
import { ChatCompletionRequest, CompletionRequest, knownFields } from './schemas.js';

type Status = 'supported' | 'ignored' | 'rejected';

/** What each field does; a field missing here fails the test. */
export const FIELD_NOTES: Record<string, [Status, string]> = {
  model: ['supported', 'a served name or alias (`--served-model-name`)'],
  prompt: ['supported', 'a string, strings, token ids or lists of ids'],
  messages: ['supported', 'system / developer / user / assistant (with `tool_calls`) / tool; text parts'],
  max_tokens: ['supported', 'completions default 16; chat: min(`--default-max-tokens`, context − prompt)'],
  max_completion_tokens: ['supported', 'as max_tokens'],
  temperature: ['supported', '0 is greedy'],
  top_p: ['supported', ''],
  n: ['supported', '1–16 choices per prompt'],
  stream: ['supported', 'SSE'],
  stream_options: ['supported', '`include_usage`'],
  stop: ['supported', '≤ 4 strings, cut from the text'],
  seed: ['supported', 'repeatable on either backend (choice i uses seed + i)'],
  presence_penalty: ['supported', 'host sampling'],
  frequency_penalty: ['supported', 'host sampling'],
  logit_bias: ['supported', 'token id → −100 … 100; host sampling'],
  logprobs: ['supported', 'completions 0–5; chat `true` with `top_logprobs`'],
  top_logprobs: ['supported', '0–20'],
  echo: [
    'supported',
    'the prompt before the completion; with `logprobs`, prompt logprobs too (streamed: in the first chunk)',
  ],
  suffix: ['rejected', 'a non-empty suffix is a 400'],
  best_of: ['rejected', 'other than n is a 400'],
  user: ['ignored', 'logged'],
  prompt_cache_key: ['ignored', 'a routing hint for several replicas'],
  top_k: ['supported', 'vLLM'],
  min_p: ['supported', 'vLLM'],
  repetition_penalty: ['supported', 'vLLM; host sampling'],
  ignore_eos: ['supported', 'vLLM'],
  min_tokens: ['supported', 'vLLM: EOS and stop ids banned until then'],
  stop_token_ids: ['supported', 'vLLM'],
  include_stop_str_in_output: ['supported', 'vLLM'],
  skip_special_tokens: ['ignored', 'special tokens are always skipped in text'],
  truncate_prompt_tokens: ['supported', 'vLLM: keep the last N prompt tokens'],
  request_id: ['ignored', 'use the `x-request-id` header'],
  priority: ['ignored', 'requests run first come, first served'],
  metadata: ['ignored', ''],
  store: ['ignored', 'nothing is stored'],
  service_tier: ['ignored', ''],
  max_queue_time: ['supported', 'seconds; then 503'],
  add_generation_prompt: ['supported', 'vLLM'],
  chat_template_kwargs: ['supported', 'extra chat-template variables'],
  tools: ['supported', 'function tools'],
  tool_choice: ['supported', '"none", "auto", "required" or a named function'],
  parallel_tool_calls: [
    'supported',
    'with "required": true allows one or more calls, unset or false exactly one (a small model held to an array repeats calls); "auto" may call several either way; a named tool is one call',
  ],
  response_format: ['supported', 'text, json_object, json_schema (XGrammar)'],
  guided_json: ['supported', 'vLLM (XGrammar)'],
  guided_choice: ['supported', 'vLLM (XGrammar)'],
  guided_grammar: ['supported', 'vLLM: EBNF (XGrammar)'],
  guided_regex: ['rejected', 'regular expressions are not supported'],
  structured_outputs: ['supported', 'vLLM: json, choice, grammar, json_object'],
  reasoning_effort: ['ignored', 'no reasoning models'],
  modalities: ['rejected', 'anything but ["text"] is a 400'],
  functions: ['rejected', 'legacy function calling is a 400: use `tools`'],
  function_call: ['rejected', 'legacy function calling is a 400: use `tool_choice`'],
};

/** The README table: one row per field, its status on completions and chat, and the note. */
export function fieldTable(): string {
  const completion = knownFields(CompletionRequest),
    chat = knownFields(ChatCompletionRequest);
  const names = [...new Set([...completion, ...chat])];
  const rows = names.map((f) => {
    const [status, note] = FIELD_NOTES[f] ?? ['?', 'undocumented'];
    return `| \`${f}\` | ${completion.has(f) ? status : '—'} | ${chat.has(f) ? status : '—'} | ${note} |`;
  });
  return ['| field | completions | chat | notes |', '|---|---|---|---|', ...rows].join('\n');
}
