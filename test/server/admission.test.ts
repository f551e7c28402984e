// Admission at the limits and requests that can never be served: a clear 400 or a normal answer, never a 429 for a
// request that fits, a 500, or an engine taken down by one request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, post, startServer } from './harness.js';

test('--max-queue 0 admits while places are free; n beyond what the server can ever hold is a 400', async () => {
  const srv = await startServer([{ name: 'm', arch: '2mamba' }], {}, { maxBatch: 4, maxQueue: 0 });
  try {
    const burst = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        post(srv.url, '/v1/completions', { model: 'm', prompt: `b${i}`, max_tokens: 3 }),
      ),
    );
    assert.deepEqual(
      burst.map((r) => r.status),
      [200, 200, 200, 200],
    );
    const big = await post(srv.url, '/v1/completions', { model: 'm', prompt: 'x', n: 5, max_tokens: 1 });
    assert.equal(big.status, 400);
    assert.equal(big.json.error.param, 'n');
    assert.match(big.json.error.message, /at most 4 requests at once/);
    assert.equal((await fetch(`${srv.url}/health?fail_if_full=1`)).status, 200);
  } finally {
    await srv.close();
  }
});

test('requests that can never be served are 400s and leave the engine healthy', async () => {
  const srv = await startServer([{ name: 'm', arch: '2mamba' }]);
  try {
    const vocab = 512; // the tiny preset
    const banned = await post(srv.url, '/v1/completions', {
      model: 'm',
      prompt: 'x',
      max_tokens: 3,
      min_tokens: 2,
      stop_token_ids: Array.from({ length: vocab }, (_, i) => i),
    });
    assert.equal(banned.status, 400, banned.text);
    assert.equal(banned.json.error.param, 'stop_token_ids');
    const empty = await post(srv.url, '/v1/completions', { model: 'm', prompt: [[]] });
    assert.equal(empty.status, 400, empty.text);
    assert.match(empty.json.error.message, /prompt 0 is empty/);
    const many = await post(srv.url, '/v1/completions', {
      model: 'm',
      prompt: Array.from({ length: 150_000 }, () => 7),
      max_tokens: 1,
    });
    assert.equal(many.status, 400, many.text.slice(0, 200));
    assert.equal(many.json.error.code, 'context_length_exceeded');
    assert.equal((await fetch(`${srv.url}/health`)).status, 200);
    const ok = await post(srv.url, '/v1/completions', { model: 'm', prompt: 'x', max_tokens: 2, ignore_eos: true });
    assert.equal(ok.status, 200);
    assert.equal((await getJson(srv.url, '/v1/requests')).data.length, 0);
  } finally {
    await srv.close();
  }
});
