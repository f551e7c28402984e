// The state cache through the API: a chat's next turn restores the previous turn's 2Mamba state (cached_tokens in
// usage, streamed usage, /v1/requests and /metrics) and answers exactly as a server without the cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
