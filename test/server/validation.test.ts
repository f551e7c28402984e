// The schema-first edge: request bodies are checked by the JSON Schemas of server/openai/schemas.ts (fastify's Ajv) and
// every violation reaches the client as an OpenAI error naming the field. No model is needed: validation runs first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp } from '../../server/app.js';
import { DEFAULT_SERVE_OPTIONS, ServerState } from '../../server/state.js';
import { preview } from '../../lib/preview.js';

const state = new ServerState({ ...DEFAULT_SERVE_OPTIONS });
state.loading = false;
const app = buildApp(state);

async function post(url: string, payload: string | object) {
  const r = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload });
  return {
    status: r.statusCode,
    error: r.json().error as { message: string; param: string | null; code: string | null; type: string },
  };
}

const deep = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;
const chat = (extra: object) => ({ model: 'm', messages: [{ role: 'user', content: 'x' }], ...extra });

test('schema violations: the message names the field, the value and what it must be; param is the field', async () => {
  const cases: [string, string | object, RegExp, string | null][] = [
    [
      '/v1/completions',
      { model: 'm', prompt: 'x', max_tokens: 2.5 },
      /^'max_tokens' must be an integer from 0 to 2147483648, got 2.5$/,
      'max_tokens',
    ],
    ['/v1/completions', { model: 'm', prompt: 'x', seed: 'a' }, /^'seed' must be an integer, got "a"$/, 'seed'],
    ['/v1/completions', { model: 'm', prompt: 'x', stream: 'yes' }, /^'stream' must be a boolean/, 'stream'],
    [
      '/v1/completions',
      { model: 'm', prompt: 'x', stop: ['a', 3] },
      /^'stop' must be a string or an array of strings$/,
      'stop',
    ],
    ['/v1/completions', { model: 'm', prompt: 'x', stop: '' }, /must not be empty/, 'stop'],
    [
      '/v1/completions',
      { model: 'm', prompt: 'x', stop_token_ids: [1, -1] },
      /'stop_token_ids' must be an array of token ids/,
      'stop_token_ids',
    ],
    [
      '/v1/completions',
      { model: 'm', prompt: 'x', max_queue_time: 0 },
      /'max_queue_time' must be a positive number of seconds, got 0/,
      'max_queue_time',
    ],
    ['/v1/completions', { model: 'm', prompt: [] }, /^'prompt' must be a string, an array of strings/, 'prompt'],
    ['/v1/completions', { model: 'm' }, /^'prompt' is required$/, 'prompt'],
    ['/v1/completions', { prompt: 'x' }, /^'model' is required and must be a string$/, 'model'],
    ['/v1/completions', '[1]', /must be a JSON object/, null],
    [
      '/v1/chat/completions',
      { model: 'm', messages: [{ content: 'x' }] },
      /^messages\[0\]\.role must be a string$/,
      'messages[0].role',
    ],
    [
      '/v1/chat/completions',
      { model: 'm', messages: [{ role: 'user', content: 'x' }, 'hi'] },
      /^messages\[1\] must be an object$/,
      'messages[1]',
    ],
    [
      '/v1/chat/completions',
      { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url' }] }] },
      /^messages\[0\]\.content\[1\]: only text parts/,
      'messages[0].content',
    ],
    [
      '/v1/chat/completions',
      { model: 'm', messages: [{ role: 'user', content: 5 }] },
      /^messages\[0\]\.content must be a string or an array of text parts$/,
      'messages[0].content',
    ],
    ['/v1/chat/completions', { model: 'm', messages: [] }, /at least one message/, 'messages'],
    [
      '/v1/chat/completions',
      chat({ top_logprobs: 21, logprobs: true }),
      /'top_logprobs' must be an integer from 0 to 20/,
      'top_logprobs',
    ],
    ['/v1/chat/completions', chat({ logprobs: 1 }), /'logprobs' must be a boolean/, 'logprobs'],
    ['/tokenize', { prompt: 5 }, /'prompt' must be a string, got 5/, 'prompt'],
    ['/detokenize', { tokens: 'abc' }, /'tokens' must be an array of token ids/, 'tokens'],
  ];
  for (const [url, body, message, param] of cases) {
    const r = await post(url, body);
    assert.equal(r.status, 400, `${url} ${JSON.stringify(body)}`);
    assert.match(r.error.message, message, `${url} ${JSON.stringify(body)}`);
    assert.equal(r.error.param, param, `${url} ${JSON.stringify(body)}: param`);
    assert.equal(r.error.type, 'invalid_request_error');
  }
});

test('nothing is coerced: a number in a string, a boolean as 1, null means absent', async () => {
  assert.equal((await post('/v1/completions', { model: 'm', prompt: 'x', n: '2' })).error.param, 'n');
  assert.equal((await post('/v1/completions', { model: 'm', prompt: 'x', echo: 1 })).error.param, 'echo');
  // null fields pass validation; the request then fails only because model "m" is not served
  const r = await app.inject({
    method: 'POST',
    url: '/v1/completions',
    payload: { model: 'm', prompt: 'x', n: null, stop: null, seed: null },
  });
  assert.equal(r.statusCode, 404);
  assert.equal(r.json().error.code, 'model_not_found');
});

test('deeply nested values in any field are a 400 with a bounded message, not a 500 (stack depth)', async () => {
  for (const [url, body] of [
    ['/v1/completions', `{"model": "m", "prompt": "x", "max_tokens": ${deep(20000)}}`],
    [
      '/v1/chat/completions',
      `{"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": ${deep(20000)}}}`,
    ],
    [
      '/v1/chat/completions',
      `{"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": ${deep(20000)}}`,
    ],
  ] as const) {
    const r = await post(url, body);
    assert.equal(r.status, 400, body.slice(0, 80));
    assert.ok(r.error.message.length < 200, r.error.message);
  }
  assert.equal(preview(JSON.parse(deep(20000))), '[…]');
  assert.equal(preview('y'.repeat(1000)).length <= 82, true);
});

test('edges of the protocol: 1e999 quoted as Infinity, 405 with Allow for a known path, long names cut in a 404', async () => {
  const inf = await post('/v1/completions', '{"model": "m", "prompt": "x", "temperature": 1e999}');
  assert.equal(inf.status, 400);
  assert.match(inf.error.message, /got Infinity/);
  const wrong = await app.inject({ method: 'GET', url: '/v1/completions' });
  assert.equal(wrong.statusCode, 405);
  assert.equal(wrong.headers.allow, 'POST');
  assert.equal(wrong.json().error.code, 'method_not_allowed');
  const long = await post('/v1/completions', { model: 'q'.repeat(1_000_000), prompt: 'x' });
  assert.equal(long.status, 404);
  assert.ok(long.error.message.length < 300, `${long.error.message.length} characters`);
});
