// OpenAI surface pieces clients rely on: GET /v1/models/{id}, logit_bias (both ±100 extremes and range checks), CORS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NotFoundError } from 'openai';
import { startServer, post } from './harness.js';

test('GET /v1/models/{id}: the model card; an unknown id is a 404 the SDK raises as NotFoundError', async () => {
  const srv = await startServer([{ name: 'm', arch: '2mamba' }]);
  try {
    const card = (await srv.client.models.retrieve('m')) as any;
    assert.equal(card.id, 'm');
    assert.equal(card.object, 'model');
    assert.equal(card.architecture, '2mamba');
    assert.deepEqual(card, (await srv.client.models.list()).data[0]);
    await assert.rejects(srv.client.models.retrieve('nope'), NotFoundError);
  } finally {
    await srv.close();
  }
});

test('logit_bias: +100 forces a token, -100 bans one; out-of-range ids and values are 400s naming logit_bias', async () => {
  const srv = await startServer([{ name: 'm', arch: '2mamba' }]);
  try {
    const ask = (extra: Record<string, unknown>) =>
      post(srv.url, '/v1/completions', {
        model: 'm',
        prompt: 'Call me Ishmael.',
        max_tokens: 5,
        temperature: 0,
        ignore_eos: true,
        ...extra,
      });
    const forced = await ask({ logit_bias: { '70': 100 } });
    assert.equal(forced.status, 200, forced.text);
    const want = await post(srv.url, '/detokenize', { model: 'm', tokens: [70, 70, 70, 70, 70] });
    assert.equal(JSON.parse(forced.text).choices[0].text, JSON.parse(want.text).prompt);
    // the unbiased greedy first token, banned: another one comes first
    const plain = JSON.parse((await ask({ max_tokens: 1, logprobs: 0 })).text);
    // the token's id: a reserved token's text names it (the tiny tokenizer's `<reserved_N>`); any other text encodes to it
    const text: string = plain.choices[0].text;
    const named = /^<reserved_(\d+)>$/.exec(text);
    const id = named
      ? Number(named[1])
      : JSON.parse((await post(srv.url, '/tokenize', { model: 'm', prompt: text, add_special_tokens: false })).text)
          .tokens[0];
    assert.equal(JSON.parse((await post(srv.url, '/detokenize', { model: 'm', tokens: [id] })).text).prompt, text);
    const banned = JSON.parse((await ask({ max_tokens: 1, logit_bias: { [String(id)]: -100 } })).text);
    assert.notEqual(banned.choices[0].text, plain.choices[0].text);
    for (const bad of [{ '999999': 1 }, { '5': 101 }, { x: 1 }]) {
      const r = await ask({ logit_bias: bad });
      assert.equal(r.status, 400, r.text);
      assert.equal(JSON.parse(r.text).error.param, 'logit_bias', r.text);
    }
  } finally {
    await srv.close();
  }
});

test('CORS: --allowed-origins answers preflights and marks responses; without it a browser gets no CORS headers', async () => {
  const open = await startServer([{ name: 'm', arch: '2mamba' }], { allowedOrigins: ['http://app.test'] });
  const closed = await startServer([{ name: 'm', arch: '2mamba' }]);
  try {
    const preflight = (url: string, origin: string) =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,authorization',
        },
      });
    const ok = await preflight(open.url, 'http://app.test');
    assert.ok(ok.status === 204 || ok.status === 200, String(ok.status));
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://app.test');
    assert.match(ok.headers.get('access-control-allow-methods') ?? '', /POST/);
    const other = await preflight(open.url, 'http://evil.test');
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const r = await fetch(`${open.url}/v1/models`, { headers: { origin: 'http://app.test' } });
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://app.test');
    const none = await fetch(`${closed.url}/v1/models`, { headers: { origin: 'http://app.test' } });
    assert.equal(none.status, 200);
    assert.equal(none.headers.get('access-control-allow-origin'), null);
    assert.equal((await preflight(closed.url, 'http://app.test')).headers.get('access-control-allow-origin'), null);
  } finally {
    await open.close();
    await closed.close();
  }
});

test('inter-token latency is observed per token (vLLM semantics), not once per request', async () => {
  const srv = await startServer([{ name: 'm', arch: '2mamba' }]);
  try {
    const r = await post(srv.url, '/v1/completions', {
      model: 'm',
      prompt: 'Hello',
      max_tokens: 6,
      temperature: 0,
      ignore_eos: true,
    });
    assert.equal(r.status, 200, r.text);
    const m = await (await fetch(`${srv.url}/metrics`)).text();
    const count = (name: string) => Number(new RegExp(`^${name}\\{model_name="m"\\} (\\S+)$`, 'm').exec(m)?.[1]);
    assert.equal(count('fury_inter_token_latency_seconds_count'), 5);
    assert.equal(count('vllm:inter_token_latency_seconds_count'), 5);
  } finally {
    await srv.close();
  }
});

test('chat_template_kwargs: accepted by chat completions and /tokenize; a non-object is a 400 naming it', async () => {
  const srv = await startServer([{ name: 'm', arch: '2mamba' }]);
  try {
    const messages = [{ role: 'user', content: 'hi' }];
    const ok = await post(srv.url, '/v1/chat/completions', {
      model: 'm',
      messages,
      max_tokens: 2,
      chat_template_kwargs: { enable_thinking: false },
    });
    assert.equal(ok.status, 200, ok.text);
    const t = await post(srv.url, '/tokenize', { model: 'm', messages, chat_template_kwargs: { x: 1 } });
    assert.equal(t.status, 200, t.text);
    const bad = await post(srv.url, '/v1/chat/completions', { model: 'm', messages, chat_template_kwargs: 'yes' });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.text).error.param, 'chat_template_kwargs', bad.text);
  } finally {
    await srv.close();
  }
});
