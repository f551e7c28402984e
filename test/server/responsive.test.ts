// The HTTP thread never waits on compute (issue 13): on the fast CPU backend a step runs on worker threads and long
// texts are tokenised on a worker, so /health is answered during a long prefill, an abort frees its slot at the next
// step boundary, and a prompt whose bytes alone prove it is too long is refused without being tokenised.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { startServer, post, until } from './harness.js';

// one step prefills the whole 16k-token prompt: on a backend that computed on the event loop nothing else would run
const srv = await startServer(
  [{ name: 'm', arch: '2mamba' }],
  {},
  {
    maxModelLen: 65536,
    tokenBudget: 16384,
    prefillChunk: 16384,
  },
);
const chunked = await startServer(
  [{ name: 'c', arch: '2mamba' }],
  {},
  {
    maxModelLen: 65536,
    tokenBudget: 256,
    prefillChunk: 256,
  },
);
after(() => Promise.all([srv.close(), chunked.close()]));

const ids = (n: number) => [1, ...Array.from({ length: n - 1 }, (_, i) => 3 + ((i * 7919) % 250))];

test('GET /health is answered while a 16k-token prompt prefills in one step', async () => {
  const sent = performance.now();
  let firstToken = Infinity;
  const gen = (async () => {
    const res = await fetch(`${srv.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', prompt: ids(16000), max_tokens: 1, stream: true }),
    });
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (value && firstToken === Infinity && new TextDecoder().decode(value).includes('"text"'))
        firstToken = performance.now();
      if (done) break;
    }
  })();
  const answers: number[] = [];
  while (firstToken === Infinity && performance.now() - sent < 60_000) {
    const res = await fetch(`${srv.url}/health`);
    assert.equal(res.status, 200);
    answers.push(performance.now());
    await new Promise((r) => setTimeout(r, 10));
  }
  await gen;
  const during = answers.filter((t) => t < firstToken).length;
  assert.ok(during >= 5, `${during} /health answers before the first token (${(firstToken - sent).toFixed(0)} ms)`);
});

test('an abort during a chunked prefill frees the slot at the next step boundary', async () => {
  const engine = chunked.state.models.get('c')!;
  const ac = new AbortController();
  const res = fetch(`${chunked.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'c', prompt: ids(30000), max_tokens: 4, stream: true }),
    signal: ac.signal,
  })
    .then(
      async (r) => {
        const reader = r.body!.getReader();
        while (!(await reader.read()).done);
      },
      () => null,
    )
    .catch(() => null); // the abort ends the read
  await until(() => engine.scheduler.steps >= 3, 30_000, 'three prefill steps');
  const at = engine.scheduler.steps;
  ac.abort();
  await res;
  await until(() => engine.scheduler.numRunning === 0, 30_000, 'the slot to be freed');
  // the step in flight when the abort arrived, and at most one submitted ahead of it
  assert.ok(engine.scheduler.steps - at <= 2, `${engine.scheduler.steps - at} steps ran after the abort`);
  assert.equal(engine.stats().slots.used, 0);
});

test('a prompt whose bytes prove it is over the context is refused without tokenising it', async () => {
  const small = await startServer([{ name: 's', arch: 'softmax' }], {}, { maxModelLen: 1024 });
  try {
    const t0 = performance.now();
    const r = await post(small.url, '/v1/completions', { model: 's', prompt: 'x'.repeat(4_000_000), max_tokens: 1 });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'context_length_exceeded');
    assert.match(r.json.error.message, /at least \d+ tokens \(4000000 bytes\)/);
    // a request that truncates its prompt is tokenised whatever its length, then cut to the last N tokens
    const cut = await post(small.url, '/v1/completions', {
      model: 's',
      prompt: 'y'.repeat(300_000),
      max_tokens: 1,
      truncate_prompt_tokens: 100,
    });
    assert.equal(cut.status, 200, cut.text);
    assert.equal(cut.json.usage.prompt_tokens, 100);
    // and a long text under the bound is tokenised on the worker: the same ids as /tokenize gives for it
    const text = 'Ünïcødé words and more words. '.repeat(1000);
    const tok = await post(small.url, '/tokenize', { model: 's', prompt: text });
    assert.equal(tok.status, 200);
    assert.deepEqual(tok.json.tokens, small.state.models.get('s')!.tokenizer.encode(text, true));
    console.log(`refused in ${(performance.now() - t0).toFixed(0)} ms`);
  } finally {
    await small.close();
  }
});
