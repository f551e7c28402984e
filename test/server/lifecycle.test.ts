// Overload, deadlines, keep-alive, auth, loading and drain: the behaviour around the happy path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startServer, post, getJson, until } from './harness.js';
import { buildApp } from '../../server/app.js';
import { DEFAULT_SERVE_OPTIONS, ServerState } from '../../server/state.js';
import { tinyCheckpoint } from '../helpers.js';

/** A streamed completion of model m that runs until aborted (3000 tokens). */
const longStream = (url: string, signal: AbortSignal) =>
  fetch(url + '/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', prompt: 'x', max_tokens: 3000, ignore_eos: true, stream: true }),
    signal,
  });

test('API key: 401 without it, /health and /metrics stay public', async () => {
  const srv = await startServer([{ name: 'm', arch: '2mamba' }], { apiKey: 'sekret' });
  try {
    const bad = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);
    assert.equal((await srv.client.models.list()).data.length, 1);
    assert.equal((await fetch(srv.url + '/health')).status, 200);
    assert.equal((await fetch(srv.url + '/metrics')).status, 200);
  } finally {
    await srv.close();
  }
});

test('a full queue is a 429 with Retry-After, an oversized body a 413; the server keeps serving', async () => {
  const srv = await startServer([{ name: 'm', arch: '2mamba' }], { bodyLimit: 4096 }, { maxBatch: 1, maxQueue: 1 });
  try {
    const ac = new AbortController();
    const busy = srv.client.completions
      .create({ model: 'm', prompt: 'x', max_tokens: 3000, ignore_eos: true } as any, { signal: ac.signal })
      .catch(() => null);
    await until(
      async () => (await getJson(srv.url, '/v1/requests')).data.length === 1,
      5000,
      'the first request to run',
    );
    const queued = post(srv.url, '/v1/completions', { model: 'm', prompt: 'y', max_tokens: 1 });
    await until(
      async () => (await getJson(srv.url, '/v1/requests')).models[0].waiting === 1,
      5000,
      'the second request to queue',
    );
    const r = await post(srv.url, '/v1/completions', { model: 'm', prompt: 'z', max_tokens: 1 });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.code, 'queue_full');
    assert.equal(r.json.error.type, 'rate_limit_error');
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra < 60, `Retry-After ${ra}`);
    assert.equal(r.headers.get('retry-after-ms'), String(ra * 1000));
    await assert.rejects(
      srv.client.completions.create({ model: 'm', prompt: 'z', max_tokens: 1 }),
      OpenAI.RateLimitError,
    );
    const big = await post(srv.url, '/v1/completions', { model: 'm', prompt: 'x'.repeat(5000) });
    assert.equal(big.status, 413);
    assert.match(big.json.error.message, /--body-limit/);
    ac.abort();
    assert.equal((await queued).status, 200);
    await busy;
    assert.match(
      await (await fetch(srv.url + '/metrics')).text(),
      /fury_requests_rejected_total\{model_name="m",reason="queue_full"\} 2/,
    );
  } finally {
    await srv.close();
  }
});

test('behind a balancer: --overload-status 503 for a full queue, x-fury-replica on every response, /health says ready or full', async () => {
  const srv = await startServer(
    [{ name: 'm', arch: '2mamba' }],
    { overloadStatus: 503, replica: 'r7' },
    { maxBatch: 1, maxQueue: 0 },
  );
  try {
    const h = await fetch(srv.url + '/health');
    assert.equal(h.headers.get('x-fury-replica'), 'r7');
    assert.deepEqual(await h.json(), { status: 'ok', state: 'ready', replica: 'r7' });
    assert.equal((await fetch(srv.url + '/health/live')).status, 200);
    // a stream (hijacked reply) carries it too
    const ac = new AbortController();
    const stream = await longStream(srv.url, ac.signal);
    assert.equal(stream.headers.get('x-fury-replica'), 'r7');
    await until(async () => (await getJson(srv.url, '/v1/requests')).data.length === 1, 5000, 'the stream to run');
    const r = await post(srv.url, '/v1/completions', { model: 'm', prompt: 'z', max_tokens: 1 });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'queue_full');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    assert.equal(r.headers.get('x-fury-replica'), 'r7');
    assert.equal((await (await fetch(srv.url + '/health')).json()).state, 'full');
    assert.equal((await fetch(srv.url + '/health?fail_if_full=1')).status, 503);
    ac.abort();
    await until(async () => (await getJson(srv.url, '/v1/requests')).data.length === 0, 5000, 'the stream to end');
  } finally {
    await srv.close();
  }
});

test('SSE pings during a long prefill; deadlines end requests in-band (stream) or with 408; queue timeouts are 503', async () => {
  const srv = await startServer(
    [{ name: 'm', arch: '2mamba' }],
    { pingInterval: 0.02, requestTimeout: 0.6, maxQueueTime: 0.3 },
    { maxBatch: 1, tokenBudget: 8, prefillChunk: 8 },
  );
  try {
    // 800 prompt tokens at 8 per step: a prefill long enough for pings before the first token
    const res = await fetch(srv.url + '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'm',
        prompt: [Array.from({ length: 800 }, (_, i) => 3 + (i % 250))],
        max_tokens: 2,
        stream: true,
      }),
    });
    const raw = await res.text();
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const firstData = raw.indexOf('data: ');
    assert.ok(raw.slice(0, firstData).includes(': ping\n\n'), 'pings before the first token');
    assert.ok(raw.endsWith('data: [DONE]\n\n'));
    // a stream past its deadline: text so far, then an in-band error, then [DONE]
    const s = await fetch(srv.url + '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', prompt: 'x', max_tokens: 3000, ignore_eos: true, stream: true }),
    });
    const events = (await s.text())
      .split('\n\n')
      .filter(Boolean)
      .filter((e) => e.startsWith('data: '));
    assert.equal(events.at(-1), 'data: [DONE]');
    assert.equal(JSON.parse(events.at(-2)!.slice(6)).error.code, 'deadline_exceeded');
    assert.ok(events.length > 3, 'tokens were streamed before the deadline');
    // non-streaming past its deadline
    const ns = await post(srv.url, '/v1/completions', { model: 'm', prompt: 'x', max_tokens: 3000, ignore_eos: true });
    assert.equal(ns.status, 408);
    assert.equal(ns.json.error.code, 'deadline_exceeded');
    // queue timeout: one request holds the only slot, the next waits past max_queue_time
    const hold = post(srv.url, '/v1/completions', { model: 'm', prompt: 'x', max_tokens: 3000, ignore_eos: true });
    await until(async () => (await getJson(srv.url, '/v1/requests')).data.length === 1, 5000, 'the holder');
    const late = await post(srv.url, '/v1/completions', { model: 'm', prompt: 'y', max_tokens: 1, stream: true });
    assert.equal(late.status, 503);
    assert.equal(late.json.error.code, 'queue_timeout');
    assert.ok(Number(late.headers.get('retry-after')) >= 1);
    await hold;
  } finally {
    await srv.close();
  }
});

test('/health is 503 while the model loads, and every API route says so', async () => {
  const state = new ServerState({ ...DEFAULT_SERVE_OPTIONS });
  const app = buildApp(state);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  try {
    const h = await fetch(url + '/health');
    assert.equal(h.status, 503);
    assert.deepEqual(await h.json(), {
      error: { message: 'Loading model', type: 'service_unavailable_error', param: null, code: 'loading' },
    });
    const r = await post(url, '/v1/completions', { model: 'm', prompt: 'x' });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'loading');
    state.loading = false;
    assert.equal((await fetch(url + '/health')).status, 200);
  } finally {
    await app.close();
  }
});

test('SIGTERM drains: running streams finish, new requests are refused, the process exits 0', async () => {
  const dir = await tinyCheckpoint('2mamba', 4);
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'fury.js');
  const proc = spawn(
    process.execPath,
    [cli, 'serve', '--model', `m=${dir}`, '--port', '0', '--backend', 'cpu', '--drain-timeout', '20'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  proc.stdout.on('data', (d) => {
    log += d;
  });
  proc.stderr.on('data', (d) => {
    log += d;
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  await until(() => /"msg":"ready"/.test(log), 20000, 'the server to be ready');
  const url = JSON.parse(log.split('\n').find((l) => l.includes('"url"'))!).url as string;
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
  const streams = [0, 1, 2].map(async () => {
    const s = (await client.completions.create({
      model: 'm',
      prompt: 'drain',
      max_tokens: 60,
      ignore_eos: true,
      stream: true,
    } as any)) as unknown as AsyncIterable<any>;
    let text = '',
      finish = null;
    for await (const c of s) {
      text += c.choices[0]?.text ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    return finish;
  });
  await until(async () => (await getJson(url, '/v1/requests')).data.length === 3, 10000, 'three running streams');
  proc.kill('SIGTERM');
  await until(
    async () =>
      (await fetch(url + '/health').then(
        (r) => r.status,
        () => 503,
      )) === 503,
    5000,
    'health to turn 503',
  );
  // the listener stays open while draining: a new request is refused with 503 + Retry-After, not a reset
  const refused = await post(url, '/v1/completions', { model: 'm', prompt: 'x' });
  assert.equal(refused.status, 503, `new request during drain: ${refused.status}`);
  assert.equal(refused.json.error.code, 'shutdown');
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  assert.deepEqual(await Promise.all(streams), ['length', 'length', 'length']);
  assert.equal(await exited, 0);
  assert.match(log, /draining/);
});

test('closing the server under a running stream ends it without an unhandled rejection (a step submitted ahead included)', async () => {
  const srv = await startServer([{ name: 'm', arch: '2mamba' }], {}, { maxBatch: 2 });
  const ac = new AbortController();
  const stream = await longStream(srv.url, ac.signal);
  assert.equal(stream.status, 200);
  await until(async () => (await getJson(srv.url, '/v1/requests')).data.length === 1, 5000, 'the stream to run');
  ac.abort();
  await srv.close(); // the engine closes its backend while the step loop may still hold a step in flight
  await new Promise((r) => setTimeout(r, 200)); // an unhandled rejection would fail this test
});
