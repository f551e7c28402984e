// The OpenAI protocol's request bodies as JSON Schemas: the one source of which fields fury knows and what each
// accepts. Fastify compiles them with Ajv (no coercion, no defaults, no removal: a wrong type is a 400, never a guess);
// `errors.ts` turns an Ajv error into the OpenAI error object with the field as `param`. Annotations for the messages:
//   x-expected  "'<field>' must be <x-expected>, got <value>"
//   x-error     the whole message, for every keyword of that schema (or x-errors: one per keyword)
//   x-param     the error's param when it is not the field's path; {0}, {1} stand for the array indices on the path
// Rules that join fields (top_logprobs needs logprobs, stream_options needs stream, …) are in requests.ts.
import { MAX_TOP_LOGPROBS } from '../../engine/sampler.js';

type Schema = Record<string, unknown>;

const INT_MAX = 2 ** 31;
const nullable = (type: string | string[]) => [...(Array.isArray(type) ? type : [type]), 'null'];
const int = (lo: number, hi: number): Schema => ({
  type: nullable('integer'),
  minimum: lo,
  maximum: hi,
  'x-expected': `an integer from ${lo} to ${hi}`,
});
const anyInt: Schema = { type: nullable('integer'), 'x-expected': 'an integer' };
const num: Schema = { type: nullable('number'), 'x-expected': 'a number' };
const bool: Schema = { type: nullable('boolean'), 'x-expected': 'a boolean' };
const tokenIds: Schema = { type: 'array', items: { type: 'integer', minimum: 0 } };

const model: Schema = { type: 'string', minLength: 1, 'x-error': "'model' is required and must be a string" };

const stop: Schema = {
  type: nullable(['string', 'array']),
  minLength: 1,
  maxItems: 4,
  items: {
    type: 'string',
    minLength: 1,
    'x-param': 'stop',
    'x-errors': {
      type: "'stop' must be a string or an array of strings",
      minLength: "'stop' sequences must not be empty",
    },
  },
  'x-errors': {
    type: "'stop' must be a string or an array of strings",
    minLength: "'stop' sequences must not be empty",
    maxItems: "'stop' may hold at most 4 sequences",
  },
};

/** Fields of both endpoints (vLLM's extensions included). */
const common: Record<string, Schema> = {
  model,
  // structured outputs (vLLM's fields; checked in requests.ts)
  guided_json: {},
  guided_choice: {},
  guided_grammar: {},
  guided_regex: {},
  structured_outputs: { type: nullable('object'), 'x-error': "'structured_outputs' must be an object" },
  max_tokens: int(0, INT_MAX),
  temperature: num,
  top_p: num,
  n: int(1, 16),
  stream: bool,
  stream_options: { type: nullable('object'), 'x-error': "'stream_options' must be an object" },
  stop,
  seed: anyInt,
  presence_penalty: num,
  frequency_penalty: num,
  user: {},
  prompt_cache_key: { type: nullable('string'), 'x-error': "'prompt_cache_key' must be a string" },
  logit_bias: {
    type: nullable('object'),
    propertyNames: { pattern: '^[0-9]+$' },
    additionalProperties: { type: 'number', minimum: -100, maximum: 100 },
    'x-error': "'logit_bias' must map token ids (as strings) to numbers from -100 to 100",
  },
  top_k: anyInt,
  min_p: num,
  repetition_penalty: num,
  ignore_eos: bool,
  min_tokens: int(0, INT_MAX),
  stop_token_ids: {
    type: nullable('array'),
    items: {
      type: 'integer',
      minimum: 0,
      'x-param': 'stop_token_ids',
      'x-error': "'stop_token_ids' must be an array of token ids",
    },
    'x-expected': 'an array of token ids',
  },
  include_stop_str_in_output: bool,
  skip_special_tokens: {},
  truncate_prompt_tokens: int(1, INT_MAX),
  request_id: {},
  priority: {},
  best_of: {},
  metadata: {},
  store: {},
  service_tier: {},
  max_queue_time: { type: nullable('number'), exclusiveMinimum: 0, 'x-expected': 'a positive number of seconds' },
};

const PROMPT_ERROR =
  "'prompt' must be a string, an array of strings, an array of token ids or an array of token-id arrays";

export const CompletionRequest: Schema = {
  $id: 'CompletionRequest',
  type: 'object',
  required: ['model', 'prompt'],
  'x-error': 'the request body must be a JSON object',
  properties: {
    ...common,
    prompt: {
      anyOf: [
        { type: 'string' },
        { type: 'array', minItems: 1, items: { type: 'string' } },
        { ...tokenIds, minItems: 1 },
        { type: 'array', minItems: 1, items: tokenIds },
      ],
      'x-error': PROMPT_ERROR,
      'x-required': "'prompt' is required",
    },
    logprobs: int(0, 5),
    echo: bool,
    suffix: {},
  },
};

/** One message: a role and text content (a string, null, or text parts). */
const message: Schema = {
  type: 'object',
  required: ['role'],
  'x-param': 'messages[{0}]',
  'x-error': 'messages[{0}] must be an object',
  properties: {
    role: {
      type: 'string',
      'x-param': 'messages[{0}].role',
      'x-error': 'messages[{0}].role must be a string',
      'x-required': 'messages[{0}].role must be a string',
    },
    content: {
      type: ['string', 'array', 'null'],
      'x-param': 'messages[{0}].content',
      'x-error': 'messages[{0}].content must be a string or an array of text parts',
      items: {
        type: 'object',
        required: ['type', 'text'],
        properties: { type: { const: 'text' }, text: { type: 'string' } },
        'x-param': 'messages[{0}].content',
        'x-error': 'messages[{0}].content[{1}]: only text parts ({"type": "text", "text": …}) are supported',
      },
    },
  },
};

/** A conversation: at least one message. */
const messages: Schema = {
  type: 'array',
  minItems: 1,
  items: message,
  'x-errors': {
    type: "'messages' is required and must be an array of messages",
    minItems: "'messages' must hold at least one message",
  },
  'x-required': "'messages' is required and must be an array of messages",
};

export const ChatCompletionRequest: Schema = {
  $id: 'ChatCompletionRequest',
  type: 'object',
  required: ['model', 'messages'],
  'x-error': 'the request body must be a JSON object',
  properties: {
    ...common,
    messages,
    max_completion_tokens: int(0, INT_MAX),
    logprobs: bool,
    top_logprobs: int(0, MAX_TOP_LOGPROBS),
    add_generation_prompt: bool,
    chat_template_kwargs: {
      type: nullable('object'),
      'x-error': "'chat_template_kwargs' must be an object of template variables",
    },
    tools: {},
    tool_choice: {},
    response_format: {
      type: nullable('object'),
      'x-expected': 'an object',
      properties: {
        type: { type: 'string', 'x-param': 'response_format', 'x-error': "'response_format.type' must be a string" },
        json_schema: {
          type: 'object',
          'x-param': 'response_format',
          'x-error': "'response_format.json_schema' must be an object with a 'schema'",
        },
      },
    },
    parallel_tool_calls: {},
    reasoning_effort: {},
    prompt_cache_key: {},
    modalities: {},
    functions: {},
    function_call: {},
  },
};

/** POST /tokenize (vLLM): `prompt` (or `content`) or `messages`; the model may be omitted when one is served. */
export const TokenizeRequest: Schema = {
  $id: 'TokenizeRequest',
  type: 'object',
  'x-error': 'the request body must be a JSON object',
  properties: {
    model,
    prompt: { type: 'string', 'x-expected': 'a string' },
    content: { type: 'string', 'x-expected': 'a string' },
    messages,
    add_special_tokens: bool,
    add_special: bool,
    add_generation_prompt: bool,
    chat_template_kwargs: { type: nullable('object'), 'x-error': "'chat_template_kwargs' must be an object" },
    return_token_strs: bool,
    with_pieces: bool,
  },
};

/** POST /detokenize (vLLM): token ids back to text (the vocabulary bound is checked per model). */
export const DetokenizeRequest: Schema = {
  $id: 'DetokenizeRequest',
  type: 'object',
  required: ['tokens'],
  'x-error': 'the request body must be a JSON object',
  properties: {
    model,
    tokens: {
      ...tokenIds,
      'x-error': "'tokens' must be an array of token ids",
      items: { type: 'integer', minimum: 0, 'x-param': 'tokens', 'x-error': "'tokens' must be an array of token ids" },
    },
  },
};

export const SCHEMAS: readonly Schema[] = [
  CompletionRequest,
  ChatCompletionRequest,
  TokenizeRequest,
  DetokenizeRequest,
];

/** The fields a request kind knows (the rest are accepted, logged and ignored). */
export const knownFields = (s: Schema) => new Set(Object.keys(s.properties as Record<string, Schema>));

/** The annotation keywords above, for Ajv's strict mode. */
export const ANNOTATIONS = ['x-expected', 'x-error', 'x-errors', 'x-param', 'x-required'];
