// The OpenAI-compatible API through the official `openai` npm client against a real server on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, post, getJson, until, type TestServer } from './harness.js';

let srv: TestServer;
before(async () => {
  srv = await startServer([
    { name: 'mamba', arch: '2mamba' },
    { name: 'sm', arch: 'softmax' },
    { name: 'mambae', arch: '2mamba-e' },
  ]);
});
after(async () => {
  await srv.close();
});

async function streamText(s: AsyncIterable<any>) {
  const chunks: any[] = [];
  for await (const c of s) chunks.push(c);
  return chunks;
}

for (const model of ['mamba', 'sm', 'mambae']) {
  test(`${model}: completions and chat, streaming equals non-streaming, usage with memory`, async () => {
    const c = srv.client;
    const full = await c.completions.create({
      model,
      prompt: 'The state of the union',
      max_tokens: 12,
      temperature: 0,
    });
    assert.equal(full.object, 'text_completion');
    assert.match(full.id, /^cmpl-/);
    assert.equal(full.choices[0]!.finish_reason, 'length');
    const u = full.usage as any;
    assert.equal(u.completion_tokens, 12);
    assert.equal(u.prompt_tokens, 1 + Buffer.byteLength('The state of the union'));
    assert.ok(u.memory.peak_bytes > 0);
    const chunks = await streamText(
      await c.completions.create({
        model,
        prompt: 'The state of the union',
        max_tokens: 12,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    assert.equal(
      chunks
        .filter((x) => x.choices.length)
        .map((x) => x.choices[0].text)
        .join(''),
      full.choices[0]!.text,
    );
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 12);
    assert.deepEqual(last.usage.memory, u.memory);
    assert.equal(new Set(chunks.map((x) => x.id)).size, 1);

    const msgs = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'Hello!' },
    ];
    const chat = await c.chat.completions.create({ model, messages: msgs, max_completion_tokens: 10, temperature: 0 });
    assert.equal(chat.object, 'chat.completion');
    assert.equal(chat.choices[0]!.message.role, 'assistant');
    const cs = await streamText(
      await c.chat.completions.create({ model, messages: msgs, max_tokens: 10, temperature: 0, stream: true }),
    );
    assert.deepEqual(cs[0].choices[0].delta, { role: 'assistant', content: '' }, 'role first');
    assert.equal(
      cs
        .slice(1)
        .map((x) => x.choices[0].delta.content ?? '')
        .join(''),
      chat.choices[0]!.message.content,
    );
    assert.equal(cs.at(-1).choices[0].finish_reason, 'length');
    assert.deepEqual(cs.at(-1).choices[0].delta, {});
  });
}

test('2Mamba memory per request is flat in the prompt length; softmax KV grows with it', async () => {
  const mem = async (model: string, n: number) =>
    (
      (
        await srv.client.completions.create({
          model,
          prompt: [Array.from({ length: n }, (_, i) => 3 + (i % 250))],
          max_tokens: 1,
        })
      ).usage as any
    ).memory;
  const [m10, m500] = [await mem('mamba', 10), await mem('mamba', 500)];
  assert.deepEqual(m10, { ...m500 });
  assert.equal(m10.kv_bytes, 0);
  const [s10, s500] = [await mem('sm', 10), await mem('sm', 500)];
  assert.equal(s10.state_bytes, 0);
  assert.ok(s500.kv_bytes > 20 * s10.kv_bytes, `${s10.kv_bytes} → ${s500.kv_bytes}`);
  assert.equal(s500.kv_tokens, 500, 'the one generated token is sampled, never fed');
  const models = await srv.client.models.list();
  const byId = Object.fromEntries(models.data.map((m: any) => [m.id, m]));
  assert.equal((byId.mamba as any).architecture, '2mamba');
  assert.equal((byId.mamba as any).state_bytes_per_request, m10.state_bytes);
  assert.equal((byId.sm as any).max_model_len, 4096);
  assert.equal((byId.sm as any).kv_bytes_per_token, 2 * 2 * 2 * 64 * 4);
});

test('n > 1, prompt lists, stop strings, logprobs, echo, seeds', async () => {
  const c = srv.client;
  const two = await c.completions.create({
    model: 'mamba',
    prompt: ['abc', 'xyz'],
    n: 2,
    max_tokens: 5,
    temperature: 0,
  });
  assert.deepEqual(
    two.choices.map((x) => x.index),
    [0, 1, 2, 3],
  );
  assert.equal(two.choices[0]!.text, two.choices[1]!.text, 'greedy siblings agree');
  assert.equal(two.usage!.prompt_tokens, 8);
  // seed: same seed → same text; the n siblings of a seeded request differ from each other
  const s1 = await c.completions.create({
    model: 'sm',
    prompt: 'Once',
    max_tokens: 16,
    temperature: 1,
    seed: 42,
    n: 2,
  });
  const s2 = await c.completions.create({
    model: 'sm',
    prompt: 'Once',
    max_tokens: 16,
    temperature: 1,
    seed: 42,
    n: 2,
  });
  assert.deepEqual(
    s1.choices.map((x) => x.text),
    s2.choices.map((x) => x.text),
  );
  assert.notEqual(s1.choices[0]!.text, s1.choices[1]!.text);
  // a stop string cut out of the greedy text
  const base = (await c.completions.create({ model: 'mamba', prompt: 'Stop here', max_tokens: 24, temperature: 0 }))
    .choices[0]!.text;
  const cut = [...base].slice(5, 7).join('');
  const stopped = await c.completions.create({
    model: 'mamba',
    prompt: 'Stop here',
    max_tokens: 24,
    temperature: 0,
    stop: [cut],
  });
  assert.equal(stopped.choices[0]!.text, base.slice(0, base.indexOf(cut)));
  assert.equal(stopped.choices[0]!.finish_reason, 'stop');
  const st = await streamText(
    await c.completions.create({
      model: 'mamba',
      prompt: 'Stop here',
      max_tokens: 24,
      temperature: 0,
      stop: cut,
      stream: true,
    }),
  );
  assert.equal(st.map((x) => x.choices[0]?.text ?? '').join(''), base.slice(0, base.indexOf(cut)));
  // logprobs
  const lp = await c.completions.create({ model: 'sm', prompt: 'Log', max_tokens: 4, temperature: 0, logprobs: 3 });
  const l = lp.choices[0]!.logprobs!;
  assert.equal(l.tokens!.length, 4);
  assert.equal(l.token_logprobs!.length, 4);
  assert.equal(Object.keys(l.top_logprobs![0]!).length <= 3, true);
  assert.ok(l.token_logprobs!.every((x) => x! <= 0));
  const cl = await c.chat.completions.create({
    model: 'sm',
    messages: [{ role: 'user', content: 'x' }],
    max_tokens: 3,
    temperature: 0,
    logprobs: true,
    top_logprobs: 2,
  });
  const content = cl.choices[0]!.logprobs!.content!;
  assert.equal(content.length, 3);
  assert.equal(content[0]!.top_logprobs.length, 2);
  assert.ok(content[0]!.top_logprobs[0]!.logprob >= content[0]!.top_logprobs[1]!.logprob);
  // echo with max_tokens 0 returns the prompt only
  const echo = await c.completions.create({ model: 'mamba', prompt: 'Echo me', max_tokens: 0, echo: true });
  assert.equal(echo.choices[0]!.text, 'Echo me');
  // vLLM extensions: ignore_eos, min_tokens, top_k through extra fields
  const ext = await c.completions.create({
    model: 'mamba',
    prompt: 'x',
    max_tokens: 6,
    temperature: 0.5,
    top_k: 3,
    min_p: 0.1,
    ignore_eos: true,
    min_tokens: 6,
  } as any);
  assert.equal(ext.usage!.completion_tokens, 6);
});

test('errors reach the SDK as the right exception classes', async () => {
  const c = srv.client;
  await assert.rejects(
    c.completions.create({ model: 'nope', prompt: 'x' }),
    (e: any) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
  );
  await assert.rejects(
    c.completions.create({ model: 'mamba', prompt: 'x', temperature: 3 }),
    (e: any) => e instanceof OpenAI.BadRequestError && e.param === 'temperature',
  );
  await assert.rejects(
    c.completions.create({ model: 'sm', prompt: 'x', max_tokens: 5000 }),
    (e: any) =>
      e instanceof OpenAI.BadRequestError &&
      e.code === 'context_length_exceeded' &&
      /maximum context length is 4096 tokens/.test(e.message),
  );
  await assert.rejects(
    c.chat.completions.create({ model: 'mamba', messages: [] }),
    (e: any) => e instanceof OpenAI.BadRequestError && e.param === 'messages',
  );
  await assert.rejects(
    c.chat.completions.create({ model: 'mamba', messages: [{ role: 'wizard' as any, content: 'x' }] }),
    OpenAI.BadRequestError,
  );
  await assert.rejects(
    c.completions.create({ model: 'mamba', prompt: 'x', stream_options: { include_usage: true } } as any),
    (e: any) => /only be defined when `stream=True`/.test(e.message),
  );
});

test('bad input gets a clear error and the server keeps serving', async () => {
  const u = srv.url;
  const cases: [string, unknown, number, RegExp][] = [
    ['/v1/completions', '{"model": "mamba", "prompt": ', 400, /not valid JSON/],
    ['/v1/completions', new Uint8Array([0x7b, 0x22, 0x6d, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), 400, /not valid UTF-8/],
    ['/v1/completions', '', 400, /empty/],
    ['/v1/completions', '[1,2]', 400, /must be a JSON object/],
    ['/v1/completions', { model: 'mamba' }, 400, /'prompt' is required/],
    ['/v1/completions', { model: 5, prompt: 'x' }, 400, /'model' is required and must be a string/],
    ['/v1/completions', { model: 'mamba', prompt: 'x', max_tokens: -1 }, 400, /'max_tokens' must be an integer from 0/],
    ['/v1/completions', { model: 'mamba', prompt: 'x', max_tokens: 1e12 }, 400, /'max_tokens' must be an integer/],
    ['/v1/completions', { model: 'mamba', prompt: 'x', n: 0 }, 400, /'n' must be an integer from 1 to 16/],
    ['/v1/completions', { model: 'mamba', prompt: 'x', top_p: '0.5' }, 400, /'top_p' must be a number/],
    ['/v1/completions', { model: 'mamba', prompt: [1, -2] }, 400, /'prompt' must be/],
    ['/v1/completions', { model: 'mamba', prompt: [[1, 99999]] }, 400, /token id 99999 is outside the vocabulary/],
    ['/v1/completions', { model: 'mamba', prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, 400, /at most 4/],
    ['/v1/completions', { model: 'mamba', prompt: 'x', logprobs: 9 }, 400, /'logprobs' must be an integer from 0 to 5/],
    [
      '/v1/chat/completions',
      { model: 'mamba', messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 },
      400,
      /`logprobs` must be set to true/,
    ],
    ['/v1/chat/completions', { model: 'mamba', messages: 'hi' }, 400, /'messages' is required and must be an array/],
    [
      '/v1/chat/completions',
      { model: 'mamba', messages: [{ role: 'user', content: [{ type: 'image_url' }] }] },
      400,
      /only text parts/,
    ],
    [
      '/v1/chat/completions',
      { model: 'mamba', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema' } },
      400,
      /must be a JSON Schema object/,
    ],
    ['/v1/chat/completions', { model: 'ghost', messages: [{ role: 'user', content: 'x' }] }, 404, /does not exist/],
    ['/v1/nothing', {}, 404, /no route/],
  ];
  for (const [path, body, status, msg] of cases) {
    const r = await post(u, path, body as any);
    assert.equal(r.status, status, `${path} ${String(body).slice(0, 40)} → ${r.status} ${r.text}`);
    assert.match(r.json.error.message, msg, r.text);
    assert.ok('type' in r.json.error && 'param' in r.json.error && 'code' in r.json.error);
  }
  // unknown fields are accepted
  const ok = await post(u, '/v1/completions', { model: 'mamba', prompt: 'x', max_tokens: 2, frobnicate: true });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.usage.completion_tokens, 2);
});

test('tokenize, detokenize, health and metrics', async () => {
  const t = await post(srv.url, '/tokenize', { model: 'mamba', prompt: 'hi', return_token_strs: true });
  assert.deepEqual(t.json.tokens, [1, 107, 108]);
  assert.equal(t.json.count, 3);
  assert.equal(t.json.max_model_len, 4096);
  const chatT = await post(srv.url, '/tokenize', { model: 'mamba', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(chatT.json.tokens[0], 1);
  const d = await post(srv.url, '/detokenize', { model: 'mamba', tokens: [1, 107, 108] });
  assert.equal(d.json.prompt, 'hi');
  assert.equal((await post(srv.url, '/detokenize', { model: 'mamba', tokens: [-1] })).status, 400);
  assert.deepEqual(await getJson(srv.url, '/health'), { status: 'ok', state: 'ready', replica: null });
  const m = await (await fetch(srv.url + '/metrics')).text();
  for (const name of [
    'fury_num_requests_running',
    'fury_num_requests_waiting',
    'fury_time_to_first_token_seconds_bucket',
    'fury_inter_token_latency_seconds_bucket',
    'fury_e2e_request_latency_seconds_bucket',
    'fury_prompt_tokens_total',
    'fury_generation_tokens_total',
    'fury_device_memory_bytes{model_name="mamba",kind="weights"}',
    'fury_state_slots_total',
    'fury_kv_blocks_used',
    'fury_request_memory_bytes_bucket',
    // the process's own (prom-client's default metrics)
    '# HELP fury_nodejs_gc_duration_seconds',
    'fury_nodejs_eventloop_lag_seconds',
    'fury_nodejs_heap_size_used_bytes',
  ])
    assert.ok(m.includes(name), name);
  // vLLM's names for the same series (dashboards, autoscalers and inference gateways scrape these), equal values
  const value = (name: string) => Number(new RegExp(`^${name}\\{model_name="mamba"\\} (\\S+)$`, 'm').exec(m)?.[1]);
  for (const [fury, vllm] of [
    ['fury_prompt_tokens_total', 'vllm:prompt_tokens_total'],
    ['fury_generation_tokens_total', 'vllm:generation_tokens_total'],
    ['fury_num_requests_waiting', 'vllm:num_requests_waiting'],
    ['fury_time_to_first_token_seconds_count', 'vllm:time_to_first_token_seconds_count'],
  ]) {
    assert.ok(Number.isFinite(value(vllm!)), `${vllm} missing`);
    assert.equal(value(vllm!), value(fury!), vllm);
  }
  assert.ok(value('fury_prompt_tokens_total') > 0);
  const usage = value('vllm:kv_cache_usage_perc');
  assert.ok(usage >= 0 && usage <= 1, String(usage));
  // vLLM's info series: the cache's shape (2Mamba: state slots) and no LoRA adapters
  assert.match(
    m,
    /^vllm:cache_config_info\{model_name="mamba",block_size="0",num_gpu_blocks="\d+",cache_dtype="f32",enable_prefix_caching="(true|false)"\} 1$/m,
  );
  assert.match(m, /^vllm:lora_requests_info\{max_lora="0",running_lora_adapters="",waiting_lora_adapters=""\} \d+/m);
});

test('an aborted stream frees its slot (checked through /v1/requests and /metrics)', async () => {
  const ac = new AbortController();
  const stream = (await srv.client.completions.create(
    { model: 'mamba', prompt: 'x', max_tokens: 4000, stream: true, ignore_eos: true } as any,
    { signal: ac.signal },
  )) as unknown as AsyncIterable<unknown>;
  let n = 0;
  await until(async () => (await getJson(srv.url, '/v1/requests')).data.length === 1, 5000, 'the request to show up');
  const live = (await getJson(srv.url, '/v1/requests')).data[0];
  assert.equal(live.model, 'mamba');
  assert.ok(live.memory.state_bytes > 0);
  try {
    for await (const _ of stream) if (++n === 5) ac.abort();
  } catch (e) {
    assert.ok((e as Error).name.includes('Abort') || /abort/i.test((e as Error).message), String(e));
  }
  await until(async () => (await getJson(srv.url, '/v1/requests')).data.length === 0, 5000, 'the slot to be freed');
  const m = await (await fetch(srv.url + '/metrics')).text();
  assert.match(m, /fury_state_slots_used\{model_name="mamba"\} 0/);
  assert.match(m, /fury_http_requests_client_disconnected_total\{model_name="mamba"\} [1-9]/);
});

test('16 concurrent streams: each equals the same request alone (greedy), and memory returns to idle', async () => {
  for (const model of ['mamba', 'sm']) {
    const reqs = Array.from({ length: 16 }, (_, i) => ({
      prompt: 'p'.repeat(1 + ((i * 37) % 90)) + String(i),
      max_tokens: 1 + ((i * 7) % 13),
    }));
    const alone: string[] = [];
    for (const r of reqs)
      alone.push((await srv.client.completions.create({ model, ...r, temperature: 0 })).choices[0]!.text);
    const together = await Promise.all(
      reqs.map(async (r) =>
        (await streamText(await srv.client.completions.create({ model, ...r, temperature: 0, stream: true })))
          .map((x) => x.choices[0]?.text ?? '')
          .join(''),
      ),
    );
    assert.deepEqual(together, alone, model);
    const q = await getJson(srv.url, '/v1/requests');
    const mine = q.models.find((x: any) => x.model === model);
    assert.deepEqual([mine.running, mine.waiting, mine.state_slots.used, mine.kv_blocks.used], [0, 0, 0, 0]);
  }
});

test('x-request-id: a client id comes back on every response (JSON, stream, errors, info); a generation without one gets its own', async () => {
  const send = (path: string, body?: unknown, id?: string) =>
    fetch(`${srv.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json', ...(id ? { 'x-request-id': id } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const chat = { model: 'mamba', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
  for (const [path, body] of [
    ['/v1/chat/completions', chat],
    ['/v1/chat/completions', { ...chat, stream: true }],
    ['/v1/chat/completions', { ...chat, model: 'ghost' }],
    ['/v1/models', undefined],
  ] as const) {
    const r = await send(path, body, 'trace-42');
    await r.arrayBuffer();
    assert.equal(r.headers.get('x-request-id'), 'trace-42', `${path} ${JSON.stringify(body)}`);
  }
  const r = await send('/v1/chat/completions', chat);
  const j = (await r.json()) as { id: string };
  assert.equal(r.headers.get('x-request-id'), j.id);
});

test('aliases (--served-model-name): one engine answers to several names, each listed in /v1/models', async () => {
  srv.state.aliases.set('mamba-alias', 'mamba');
  try {
    const list = (await getJson(srv.url, '/v1/models')) as { data: { id: string; root: string }[] };
    assert.deepEqual(
      list.data.filter((m) => m.root === 'mamba').map((m) => m.id),
      ['mamba', 'mamba-alias'],
    );
    const r = await srv.client.chat.completions.create({
      model: 'mamba-alias',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    });
    assert.equal(r.model, 'mamba-alias');
    assert.equal(((await getJson(srv.url, '/v1/models/mamba-alias')) as { id: string }).id, 'mamba-alias');
  } finally {
    srv.state.aliases.delete('mamba-alias');
  }
});

test('echo with logprobs: prompt logprobs (the first null) before the completion, equal to what a completion reports', async () => {
  const P = [1, 100, 200, 300, 400];
  const ask = { model: 'mamba', prompt: P, max_tokens: 2, temperature: 0, logprobs: 2, echo: true };
  const b = (await srv.client.completions.create(ask)) as any;
  const lp = b.choices[0].logprobs;
  assert.equal(lp.tokens.length, P.length + 2);
  assert.equal(lp.token_logprobs[0], null);
  assert.equal(lp.top_logprobs[0], null);
  for (const x of lp.token_logprobs.slice(1)) assert.ok(Number.isFinite(x) && x <= 0, String(x));
  assert.equal(Object.keys(lp.top_logprobs[1]).length, 2);
  // P's last token as a prompt token after P[0..4) has the logprob a completion of P[0..4) reports for it (forced by
  // logit_bias; logprobs are the model's own distribution)
  const c = (await srv.client.completions.create({
    model: 'mamba',
    prompt: P.slice(0, -1),
    max_tokens: 1,
    logprobs: 1,
    logit_bias: { [P.at(-1)!]: 100 },
  })) as any;
  const forced = c.choices[0].logprobs.token_logprobs[0];
  assert.ok(
    Math.abs(lp.token_logprobs[P.length - 1] - forced) < 1e-4,
    `${lp.token_logprobs[P.length - 1]} vs ${forced}`,
  );
  // streamed: the echo and its logprobs in the first chunk (the same values), then the completion's
  const st = (await srv.client.completions.create({ ...ask, stream: true })) as unknown as AsyncIterable<any>;
  const parts: any[] = [];
  for await (const c of st) if (c.choices[0]?.logprobs) parts.push(c.choices[0]);
  const first = parts[0].logprobs;
  assert.equal(first.tokens.length, P.length);
  assert.equal(first.token_logprobs[0], null);
  for (let k = 1; k < P.length; k++)
    assert.ok(Math.abs(first.token_logprobs[k] - lp.token_logprobs[k]) < 1e-6, `prompt token ${k}`);
  assert.equal(
    parts.slice(1).reduce((a, p) => a + p.logprobs.tokens.length, 0),
    2,
  );
  assert.equal(parts.map((p) => p.text).join(''), b.choices[0].text);
});
