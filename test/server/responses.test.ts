// POST /v1/responses (OpenAI's Responses API, stateless) with the official openai SDK and the Vercel AI SDK's default
// provider (which calls /v1/responses): text, instructions, streaming events, structured text.format, function tools.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { createOpenAI } from '@ai-sdk/openai';
import { generateObject, generateText } from 'ai';
import { startServer } from './harness.js';

test('the openai SDK: responses.create (text, instructions, max_output_tokens), streamed events, text.format, tools', async () => {
  const s = await startServer([{ name: 'm', arch: '2mamba' }]);
  try {
    const r = await s.client.responses.create({
      model: 'm',
      instructions: 'Be brief.',
      input: 'Hello there',
      max_output_tokens: 6,
      temperature: 0, // greedy: the same 6 tokens (no early EOS for this checkpoint and prompt) every run
    });
    assert.equal(r.object, 'response');
    assert.ok(r.id.startsWith('resp'));
    assert.equal(r.status, 'incomplete');
    assert.equal(r.incomplete_details?.reason, 'max_output_tokens');
    assert.equal(r.usage?.output_tokens, 6);
    assert.ok(r.output_text.length > 0);
    // streamed: the event sequence, and the deltas add up to the final text
    const stream = await s.client.responses.create({
      model: 'm',
      input: [{ role: 'user', content: 'Hi' }],
      max_output_tokens: 8,
      stream: true,
    });
    const types: string[] = [];
    let deltas = '',
      final: any = null;
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === 'response.output_text.delta') deltas += e.delta;
      if (e.type === 'response.incomplete' || e.type === 'response.completed') final = e.response;
    }
    assert.equal(types[0], 'response.created');
    assert.equal(types[1], 'response.in_progress');
    assert.ok(types.includes('response.output_item.added') && types.includes('response.output_item.done'));
    assert.equal(final.output[0].content[0].text, deltas);
    // structured output
    const schema = {
      type: 'object',
      properties: { ok: { type: 'boolean' } },
      required: ['ok'],
      additionalProperties: false,
    };
    const j = await s.client.responses.create({
      model: 'm',
      input: 'ok?',
      max_output_tokens: 40,
      text: { format: { type: 'json_schema', name: 'ok', schema, strict: true } },
    });
    assert.equal(typeof JSON.parse(j.output_text).ok, 'boolean');
    // a required function tool, then its output in the next request's input
    const tools = [
      {
        type: 'function' as const,
        name: 'get_weather',
        parameters: {
          type: 'object',
          properties: { city: { enum: ['Paris', 'Rome'] } },
          required: ['city'],
          additionalProperties: false,
        },
        strict: true,
      },
    ];
    const t = await s.client.responses.create({
      model: 'm',
      input: 'Weather?',
      tools,
      tool_choice: 'required',
      max_output_tokens: 80,
    });
    const call = t.output.find((o) => o.type === 'function_call') as any;
    assert.equal(call?.name, 'get_weather');
    assert.ok(['Paris', 'Rome'].includes(JSON.parse(call.arguments).city));
    // streamed: the call's item as soon as its name is written, its arguments in deltas that add up to the final ones
    const ts = await s.client.responses.create({
      model: 'm',
      input: 'Weather?',
      tools,
      tool_choice: 'required',
      max_output_tokens: 80,
      stream: true,
    });
    const args = new Map<string, string>();
    let pieces = 0,
      done: any = null,
      added: any = null;
    for await (const e of ts as AsyncIterable<any>) {
      if (e.type === 'response.output_item.added' && e.item.type === 'function_call') added = e.item;
      if (e.type === 'response.function_call_arguments.delta') {
        args.set(e.item_id, (args.get(e.item_id) ?? '') + e.delta);
        pieces++;
      }
      if (e.type === 'response.completed') done = e.response;
    }
    const streamed = done.output.find((o: any) => o.type === 'function_call');
    assert.equal(added?.name, 'get_weather');
    assert.equal(streamed.id, added.id);
    assert.equal(streamed.arguments, args.get(streamed.id));
    assert.ok(['Paris', 'Rome'].includes(JSON.parse(streamed.arguments).city));
    assert.ok(pieces >= 2, `${pieces} argument deltas`);
    const next = await s.client.responses.create({
      model: 'm',
      tools,
      max_output_tokens: 4,
      input: [
        { role: 'user', content: 'Weather?' },
        { type: 'function_call', call_id: call.call_id, name: 'get_weather', arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: 'sunny' },
      ],
    });
    assert.equal(next.object, 'response');
    // stateless: previous_response_id is a 400 naming the field
    const bad = await fetch(`${s.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', input: 'x', previous_response_id: r.id }),
    });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).error.param, 'previous_response_id');
  } finally {
    await s.close();
  }
});

test("the Vercel AI SDK's default provider (/v1/responses): generateText and generateObject", async () => {
  const s = await startServer([{ name: 'm', arch: 'softmax' }]);
  try {
    const openai = createOpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x' });
    const { text } = await generateText({ model: openai('m'), prompt: 'Hello', maxOutputTokens: 8, temperature: 0 });
    assert.ok(text.length > 0);
    const Sky = z.object({ clear: z.boolean(), color: z.enum(['red', 'blue']) });
    const { object } = await generateObject({ model: openai('m'), schema: Sky, prompt: 'Sky?', maxOutputTokens: 80 });
    assert.ok(Sky.safeParse(object).success, JSON.stringify(object));
  } finally {
    await s.close();
  }
});
