// The load tester against a real server on loopback: records, statistics, the memory report and the output files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runLoadtest } from '../../loadtest/run.js';
import { runMultiTurn } from '../../loadtest/multiturn.js';
import { assertLoopback, metricValue } from '../../loadtest/client.js';
import { summarize } from '../../loadtest/stats.js';
import { startServer } from './harness.js';
import { tempDir } from '../helpers.js';
import { writeFile } from 'node:fs/promises';

test('statistics, loopback guard and metric parsing', () => {
  assert.deepEqual(summarize([5, 1, 3, 2, 4]), { mean: 3, p50: 3, p90: 5, p99: 5, max: 5, n: 5 });
  assert.throws(() => assertLoopback('http://10.0.0.1:8080'), /only to loopback/);
  assert.throws(() => assertLoopback('http://example.com'), /only to loopback/);
  for (const u of ['http://127.0.0.1:1', 'http://localhost:2', 'http://[::1]:3']) assertLoopback(u);
  assert.equal(
    metricValue('a_total{model_name="m",kind="x"} 3\na_total{model_name="n"} 4\nab 9', 'a_total', { model_name: 'm' }),
    3,
  );
});

test('a load test of two architectures: every request succeeds, memory is flat for 2Mamba and grows for softmax', async () => {
  const srv = await startServer([
    { name: 'mamba', arch: '2mamba' },
    { name: 'sm', arch: 'softmax' },
  ]);
  const dir = await tempDir();
  const corpus = join(dir, 'corpus.txt');
  // real prose (a document of this repository's README would do too): a few documents in the corpus format
  const text = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
  await writeFile(corpus, [text, text.split('').reverse().join('')].join('\n\u001e\n') + '\n\u001e\n');
  try {
    const report = await runLoadtest({
      url: srv.url,
      models: ['mamba', 'sm'],
      contexts: [16, 128],
      concurrency: [1, 3],
      requests: 3,
      durationS: null,
      maxTokens: 4,
      data: corpus,
      out: join(dir, 'out'),
      apiKey: null,
      capacity: true,
      memorySweep: [300],
      maxSeconds: 120,
      seed: 1,
    });
    for (const r of report.results as any[]) {
      for (const c of r.cells) {
        assert.equal(c.ok, c.requests, `${r.model} ${c.context}×${c.concurrency}: ${JSON.stringify(c.errors)}`);
        assert.ok(c.ttft_ms.p50 > 0 && c.e2e_ms.p50 >= c.ttft_ms.p50);
        assert.equal(c.memory_per_request.kind, r.info.architecture === '2mamba' ? 'recurrent_state' : 'kv_cache');
      }
      const mem = r.memory.map((m: any) => m.peak_bytes);
      if (r.info.architecture === '2mamba') assert.equal(new Set(mem).size, 1, `flat: ${mem}`);
      else assert.ok(mem[0] < mem[1] && mem[1] < mem[2], `growing: ${mem}`);
      assert.equal(r.capacity.length, 2);
      assert.equal(r.capacity[0].non2xx, 0);
    }
    assert.deepEqual((await readdir(join(dir, 'out'))).sort(), [
      'loadtest.json',
      'memory-vs-context.svg',
      'report.md',
      'throughput-vs-concurrency.svg',
      'ttft-vs-context.svg',
    ]);
    assert.match(await readFile(join(dir, 'out', 'memory-vs-context.svg'), 'utf8'), /crossover 1057\.75 tokens/);
  } finally {
    await srv.close();
  }
});

test('multi-turn mode: conversations resend their history; later turns restore it from the prefix cache', async () => {
  const srv = await startServer([
    { name: 'mamba', arch: '2mamba' },
    { name: 'sm', arch: 'softmax' },
  ]);
  const dir = await tempDir();
  try {
    const report = await runMultiTurn({
      url: srv.url,
      models: ['mamba', 'sm'],
      conversations: 2,
      turns: 3,
      maxTokens: 8,
      messageChars: 120,
      thinkMs: 300,
      data: new URL('../../../data/valid.txt.xz', import.meta.url).pathname,
      apiKey: null,
      seed: 1,
      out: dir,
      retries: 0,
    });
    for (const m of report.models) {
      assert.equal(m.errors, 0, m.model);
      assert.equal(m.requests, 6);
      const [t1, t2, t3] = m.per_turn;
      assert.equal(t1!.cached_tokens, 0);
      assert.ok(t2!.cached_tokens > 0 && t3!.cached_tokens > t2!.cached_tokens, JSON.stringify(m.per_turn));
      assert.ok(m.hit_rate > 0.2, `${m.model}: ${m.hit_rate}`);
    }
    // 2Mamba restores the whole history (the turn as the next one renders it); softmax whole pages of it
    const [mamba, sm] = report.models;
    assert.ok(mamba!.hit_rate >= sm!.hit_rate, `${mamba!.hit_rate} vs ${sm!.hit_rate}`);
    assert.match(await readFile(join(dir, 'multiturn.md'), 'utf8'), /\| 3 \| \d+ \| \d+ \|/);
    // the TTFT-vs-turn plot: one line with a point per turn
    const svg = await readFile(join(dir, 'ttft-vs-turn.svg'), 'utf8');
    assert.match(svg, /^<svg/);
    assert.match(svg, /TTFT p50 vs turn/);
  } finally {
    await srv.close();
  }
});
