// Engine self-restart (issue 13): when the device is lost (here: a worker thread of the fast CPU backend dies), the
// request that was running ends with an in-band engine_restarted error, the model reloads on a fresh backend, the
// request that was only waiting runs there, /health is 200 again and new requests are served.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { startServer, post, until, getJson } from './harness.js';

const srv = await startServer([{ name: 'm', arch: '2mamba' }], {}, { maxBatch: 1, tokenBudget: 64, prefillChunk: 64 });
after(() => srv.close());

test('a lost device: the running request gets engine_restarted, the engine reloads, the waiting one completes', async () => {
  const engine = srv.state.models.get('m')!;
  const first = engine.backend;
  let streamed = '';
  const running = fetch(`${srv.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', prompt: 'a long one', max_tokens: 3000, ignore_eos: true, stream: true }),
  }).then(async (r) => {
    const dec = new TextDecoder();
    for await (const chunk of r.body!) streamed += dec.decode(chunk as Uint8Array);
    return r.status;
  });
  await until(() => streamed.includes('"text"'), 10_000, 'the first tokens');
  const waiting = post(srv.url, '/v1/completions', { model: 'm', prompt: 'next', max_tokens: 5, ignore_eos: true });
  await until(() => engine.stats().waiting === 1, 10_000, 'the second request to wait');

  // the device is lost: one of the backend's worker threads exits
  await (first as unknown as { workers: Worker[] }).workers[0]!.terminate();

  assert.equal(await running, 200);
  const events = streamed.split('\n\n').filter((e) => e.startsWith('data: '));
  assert.equal(events.at(-1), 'data: [DONE]');
  assert.equal(JSON.parse(events.at(-2)!.slice(6)).error.code, 'engine_restarted');
  const w = await waiting;
  assert.equal(w.status, 200, w.text);
  assert.equal(w.json.usage.completion_tokens, 5);
  assert.notEqual(engine.backend, first, 'a fresh backend');
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);
  const again = await post(srv.url, '/v1/completions', { model: 'm', prompt: 'after', max_tokens: 3 });
  assert.equal(again.status, 200);
  assert.match(await (await fetch(`${srv.url}/metrics`)).text(), /fury_engine_restarts\{model_name="m"\} 1/);
  assert.equal((await getJson(srv.url, '/v1/requests')).data.length, 0);
});

test('WebGPU (lavapipe): a device destroyed under a running request restarts the engine, which then serves', async () => {
  const gpu = await startServer([{ name: 'g', arch: 'softmax' }], {}, { backend: 'webgpu', maxBatch: 1 });
  try {
    const engine = gpu.state.models.get('g')!;
    const first = engine.backend as unknown as { device: GPUDevice };
    const running = post(gpu.url, '/v1/completions', {
      model: 'g',
      prompt: 'long',
      max_tokens: 3000,
      ignore_eos: true,
    });
    await until(() => engine.stats().running === 1, 10_000, 'the request to run');
    first.device.destroy();
    const r = await running;
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, 'engine_restarted');
    assert.match(r.json.error.message, /device was lost/, 'says what failed');
    await until(() => !engine.isRestarting && (engine.backend as unknown) !== first, 20_000, 'the reload');
    const again = await post(gpu.url, '/v1/completions', {
      model: 'g',
      prompt: 'after',
      max_tokens: 4,
      ignore_eos: true,
    });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.usage.completion_tokens, 4);
  } finally {
    await gpu.close();
  }
});
