// The state cache through the API: a chat's next turn restores the previous turn's 2Mamba state (cached_tokens in
// usage, streamed usage, /v1/requests and /metrics) and answers exactly as a server without the cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, until } from './harness.js';

test('a chat turn resumes from the previous turn: cached_tokens reported, the same answer as without the cache', async () => {
  const on = await startServer([{ name: 'm', arch: '2mamba' }]);
  const off = await startServer([{ name: 'm', arch: '2mamba' }], {}, { stateCacheHostBytes: 0 });
  try {
    const ask = (c: typeof on.client, messages: { role: 'user' | 'assistant'; content: string }[]) =>
      c.chat.completions.create({
        model: 'm',
        messages,
        max_tokens: 12,
        temperature: 0,
        prompt_cache_key: 'conv-1',
      } as any);
    const turn1 = [{ role: 'user' as const, content: 'Call me Ishmael. Some years ago, never mind how long.' }];
    const a = await ask(on.client, turn1);
    assert.equal((a.usage as any).prompt_tokens_details.cached_tokens, 0);
    const a0 = await ask(off.client, turn1);
    assert.equal(a.choices[0]!.message.content, a0.choices[0]!.message.content);
    await until(
      async () => {
        const m = await (await fetch(`${on.url}/metrics`)).text();
        return /fury_state_cache_entries\{model_name="m"\} 3/.test(m);
      },
      5000,
      'three snapshots of the first turn: its prompt, its end, the conversation as the next turn renders it',
    );
    const turn2 = [
      ...turn1,
      { role: 'assistant' as const, content: a.choices[0]!.message.content! },
      { role: 'user' as const, content: 'And then?' },
    ];
    const b = await ask(on.client, turn2);
    const cached = (b.usage as any).prompt_tokens_details.cached_tokens;
    // the whole first turn (prompt and reply, as the template renders them again) is restored: only the new user
    // message is prefilled
    const host = on.state.models.get('m')!;
    const history = host.tokenizer.encode(host.chat.render(turn2.slice(0, 2), false), false);
    assert.equal(cached, history.length, `${cached} of ${b.usage!.prompt_tokens}`);
    assert.ok(cached > a.usage!.prompt_tokens && cached < b.usage!.prompt_tokens);
    const b0 = await ask(off.client, turn2);
    assert.equal((b0.usage as any).prompt_tokens_details.cached_tokens, 0);
    assert.equal(b.choices[0]!.message.content, b0.choices[0]!.message.content);
    // streamed: the usage chunk says the same
    const stream = await on.client.chat.completions.create({
      model: 'm',
      messages: turn2,
      max_tokens: 4,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: any = null;
    for await (const ch of stream) if (ch.usage) usage = ch.usage;
    assert.ok(usage.prompt_tokens_details.cached_tokens >= cached, JSON.stringify(usage));
    const metrics = await (await fetch(`${on.url}/metrics`)).text();
    const hits = Number(/fury_prefix_cache_hits\{model_name="m"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(hits >= cached + usage.prompt_tokens_details.cached_tokens, metrics);
  } finally {
    await on.close();
    await off.close();
  }
});

for (const arch of ['softmax', '2mamba-e'] as const)
  test(`${arch}: a completion whose prompt begins with an earlier one reuses its KV pages (and the exact end)`, async () => {
    const on = await startServer([{ name: 'sm', arch }]);
    const off = await startServer([{ name: 'sm', arch }], {}, { kvPrefixCache: false });
    try {
      const prompt = 'It was the best of times, it was the worst of times, it was the age of wisdom.';
      const ask = (c: typeof on.client, p: string) =>
        c.completions.create({ model: 'sm', prompt: p, max_tokens: 8, temperature: 0 });
      const a = await ask(on.client, prompt);
      const longer = prompt + a.choices[0]!.text + ' And so on.';
      const b = await ask(on.client, longer);
      const cached = (b.usage as any).prompt_tokens_details.cached_tokens;
      // whole pages, then the exact end of the first request (a tail: its partial page copied)
      assert.ok(cached >= 16 && cached <= a.usage!.prompt_tokens + 8, `cached ${cached}`);
      const b0 = await ask(off.client, longer);
      assert.equal((b0.usage as any).prompt_tokens_details.cached_tokens, 0);
      assert.equal(b.choices[0]!.text, b0.choices[0]!.text);
      const reqs = await (await fetch(`${on.url}/v1/requests`)).json();
      assert.equal(reqs.models[0].kv_blocks.used, 0, 'no request holds a page');
      assert.ok(reqs.models[0].kv_blocks.cached >= Math.ceil(cached / 16), JSON.stringify(reqs.models[0]));
    } finally {
      await on.close();
      await off.close();
    }
  });

test('--state-cache-dir: snapshots survive a restart; a damaged file or another model’s is skipped, never used', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fury-snap-'));
  const metric = async (url: string) =>
    Number(/fury_state_cache_entries\{model_name="m"\} (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())?.[1]);
  const snaps = async () => (await readdir(dir)).filter((f) => f.endsWith('.snap'));
  const turn1 = [{ role: 'user' as const, content: 'Call me Ishmael. Some years ago, never mind how long.' }];
  const ask = (c: any, messages: unknown[]) =>
    c.chat.completions.create({ model: 'm', messages, max_tokens: 8, temperature: 0 });
  try {
    const first = await startServer([{ name: 'm', arch: '2mamba' }], {}, { stateCacheDir: dir });
    let a: any;
    try {
      a = await ask(first.client, turn1);
      await until(async () => (await metric(first.url)) === 3, 5000, 'three snapshots');
    } finally {
      await first.close(); // snapshots still in free state slots are written out at shutdown
    }
    assert.equal((await snaps()).length, 3);
    // damage the file of the shortest snapshot (the first prompt's), and leave a stray file
    const sizes = await Promise.all((await snaps()).map(async (f) => [f, (await stat(join(dir, f))).size] as const));
    const [victim] = sizes.sort((x, y) => x[1] - y[1])[0]!;
    const buf = await readFile(join(dir, victim));
    buf[buf.length - 5] ^= 0xff;
    await writeFile(join(dir, victim), buf);
    await writeFile(join(dir, 'stray.snap'), 'not a snapshot');
    const second = await startServer([{ name: 'm', arch: '2mamba' }], {}, { stateCacheDir: dir });
    try {
      await until(async () => (await metric(second.url)) === 2, 5000, 'two snapshots read back');
      const files = (await snaps()).filter((f) => f !== 'stray.snap');
      const onDisk = (await Promise.all(files.map(async (f) => (await stat(join(dir, f))).size))).reduce(
        (x, y) => x + y,
      );
      const text = await (await fetch(`${second.url}/metrics`)).text();
      assert.ok(
        Number(/fury_state_cache_disk_bytes\{model_name="m"\} (\d+)/.exec(text)?.[1]) >= onDisk,
        'the disk tier reports its bytes',
      );
      const turn2 = [
        ...turn1,
        { role: 'assistant', content: a.choices[0].message.content },
        { role: 'user', content: 'And?' },
      ];
      const host = second.state.models.get('m')!;
      const history = host.tokenizer.encode(host.chat.render(turn2.slice(0, 2) as any, false), false);
      const b = await ask(second.client, turn2);
      assert.equal(b.usage.prompt_tokens_details.cached_tokens, history.length, 'restored from disk after a restart');
    } finally {
      await second.close();
    }
    // other weights (another seed): nothing read back, nothing restored
    const other = await startServer([{ name: 'm', arch: '2mamba', seed: 2 }], {}, { stateCacheDir: dir });
    try {
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await metric(other.url), 0);
      const c = await ask(other.client, [...turn1, { role: 'assistant', content: a.choices[0].message.content }]);
      assert.equal(c.usage.prompt_tokens_details.cached_tokens, 0);
    } finally {
      await other.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
