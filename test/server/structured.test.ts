// Structured outputs through the API (engine/text/grammar.ts, XGrammar): with the official openai SDK, every output of
// a JSON Schema request parses and validates against the schema (Ajv), streamed and not, for 2Mamba and softmax;
// choice lists and EBNF grammars hold; bad grammars are 400s naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { startServer } from './harness.js';

// bounded by construction (enums, booleans), so a random tiny model finishes it within max_tokens
const schema = {
  type: 'object',
  properties: {
    color: { enum: ['red', 'green', 'blue'] },
    ok: { type: 'boolean' },
    size: { enum: [1, 2, 3] },
    tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 2 },
  },
  required: ['color', 'ok', 'size', 'tags'],
  additionalProperties: false,
};
const valid = new Ajv().compile(schema);

for (const arch of ['2mamba', 'softmax'] as const)
  test(`${arch}: response_format json_schema and vLLM's guided fields, streamed and not`, async () => {
    const s = await startServer([{ name: 'm', arch }]);
    try {
      const messages = [{ role: 'user' as const, content: 'Describe the sky as JSON.' }];
      const response_format = { type: 'json_schema' as const, json_schema: { name: 'sky', schema, strict: true } };
      for (const temperature of [0, 1]) {
        const r = await s.client.chat.completions.create({
          model: 'm',
          messages,
          max_tokens: 80,
          temperature,
          seed: 7,
          n: 2,
          response_format,
        });
        for (const ch of r.choices) {
          assert.equal(ch.finish_reason, 'stop', ch.message.content ?? '');
          const v = JSON.parse(ch.message.content!);
          assert.ok(valid(v), `${ch.message.content} ${JSON.stringify(valid.errors)}`);
        }
      }
      const stream = await s.client.chat.completions.create({
        model: 'm',
        messages,
        max_tokens: 80,
        temperature: 1,
        stream: true,
        response_format,
      });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
      assert.ok(valid(JSON.parse(text)), text);
      // vLLM's fields, on completions too
      const choice = await s.client.completions.create({
        model: 'm',
        prompt: 'Yes or no?',
        max_tokens: 20, // a string may be sampled as one token per character
        temperature: 1,
        guided_choice: ['yes', 'no', 'maybe not'],
      } as never);
      assert.ok(['yes', 'no', 'maybe not'].includes((choice as any).choices[0].text), (choice as any).choices[0].text);
      const ebnf = await s.client.chat.completions.create({
        model: 'm',
        messages,
        max_tokens: 20,
        temperature: 1,
        structured_outputs: { grammar: 'root ::= ("ab" | "cd") ("ab" | "cd")? "!"' },
      } as never);
      assert.match((ebnf as any).choices[0].message.content, /^(ab|cd){1,2}!$/);
    } finally {
      await s.close();
    }
  });

test('structured outputs: bad requests are 400s naming the field; the engine keeps serving', async () => {
  const s = await startServer([{ name: 'm', arch: '2mamba' }]);
  try {
    const base = { model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 4 };
    const bad = async (extra: Record<string, unknown>, param: string, what: RegExp) => {
      const r = await fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...base, ...extra }),
      });
      const body = (await r.json()) as { error: { param: string; message: string } };
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(body.error.param, param);
      assert.match(body.error.message, what);
    };
    const fmt = (schema: unknown) => ({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } });
    await bad(fmt({ type: 'object', properties: { a: { type: 'nonsense' } } }), 'response_format', /valid JSON Schema/);
    await bad(fmt([1]), 'response_format', /JSON Schema object/);
    await bad({ response_format: { type: 'xml' } }, 'response_format', /not supported/);
    await bad({ guided_json: '{not json' }, 'guided_json', /JSON Schema/);
    await bad({ guided_choice: [] }, 'guided_choice', /non-empty array/);
    await bad({ guided_regex: '[a-z]+' }, 'guided_regex', /regular expressions are not supported/);
    await bad({ functions: [{ name: 'f' }] }, 'functions', /send 'tools'/);
    await bad({ modalities: ['text', 'audio'] }, 'modalities', /only text output/);
    await bad({ guided_grammar: 'root ::= (' }, 'guided_grammar', /grammar engine rejected/);
    await bad(
      { response_format: { type: 'json_object' }, guided_choice: ['a'] },
      'guided_choice',
      /only one structured output/,
    );
    const ok = await s.client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: 8,
      guided_choice: ['fine'],
    } as never);
    assert.equal((ok as any).choices[0].message.content, 'fine');
  } finally {
    await s.close();
  }
});

const tools = [
  {
    type: 'function' as const,
    function: {
      name: 'get_weather',
      description: 'The weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { enum: ['Paris', 'Rome'] }, unit: { enum: ['C', 'F'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function' as const,
    function: { name: 'now', parameters: { type: 'object', properties: {}, additionalProperties: false } },
  },
];
const weatherArgs = new Ajv().compile(tools[0]!.function.parameters);

for (const arch of ['2mamba', 'softmax'] as const)
  test(`${arch}: tool calls (tool_choice required and named, streamed and not) parse and match their schemas`, async () => {
    const s = await startServer([{ name: 'm', arch }]);
    try {
      const messages = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];
      // every call names a tool and matches its schema: one call for a named tool, one or more for "required"
      // (parallel_tool_calls defaults to true)
      const check = (calls: { function: { name: string; arguments: string } }[] | undefined, name?: string) => {
        assert.ok(calls?.length && (!name || calls.length === 1), `${calls?.length} calls`);
        for (const { function: f } of calls!) {
          if (name) assert.equal(f.name, name);
          const args = JSON.parse(f.arguments);
          assert.ok(f.name === 'now' ? Object.keys(args).length === 0 : weatherArgs(args), f.arguments);
        }
      };
      const named = { type: 'function', function: { name: 'get_weather' } } as const;
      for (const [tool_choice, parallel, one] of [
        ['required', false, true],
        [named, true, true],
        ['required', true, false], // one or more calls (at most MAX_PARALLEL_CALLS)
      ] as const) {
        const r = await s.client.chat.completions.create({
          model: 'm',
          messages,
          tools,
          tool_choice,
          parallel_tool_calls: parallel,
          max_tokens: one ? 160 : 1200,
          temperature: 1,
        });
        const ch = r.choices[0]!;
        assert.equal(ch.finish_reason, 'tool_calls');
        assert.equal(ch.message.content, null);
        assert.ok(ch.message.tool_calls![0]!.id.startsWith('call_'));
        if (one) assert.equal(ch.message.tool_calls!.length, 1);
        check(ch.message.tool_calls as never, typeof tool_choice === 'object' ? 'get_weather' : undefined);
      }
      const stream = await s.client.chat.completions.create({
        model: 'm',
        messages,
        tools,
        tool_choice: 'required',
        parallel_tool_calls: true, // one or more calls, streamed as a JSON array
        max_tokens: 1200, // a string may be sampled as one token per character
        stream: true,
      });
      const deltas: any[] = [];
      let finish: string | null = null;
      for await (const c of stream) {
        deltas.push(...(c.choices[0]?.delta.tool_calls ?? []));
        finish = c.choices[0]?.finish_reason ?? finish;
      }
      assert.equal(finish, 'tool_calls');
      // OpenAI's framing: the first delta of a call has its id, type and name, then its arguments come in pieces
      assert.ok(deltas[0].id.startsWith('call_') && deltas[0].type === 'function' && deltas[0].function.name);
      assert.equal(deltas[0].function.arguments, '');
      assert.ok(deltas.length > 2, `${deltas.length} tool_calls deltas: the arguments were not streamed`);
      const calls: { function: { name: string; arguments: string } }[] = [];
      for (const d of deltas) {
        calls[d.index] ??= { function: { name: d.function.name, arguments: '' } };
        calls[d.index]!.function.arguments += d.function.arguments ?? '';
      }
      check(calls);
      // the call and its result in the history: the next turn renders and runs
      const next = await s.client.chat.completions.create({
        model: 'm',
        tools,
        max_tokens: 8,
        messages: [
          ...messages,
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"C"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: '21 C' },
        ],
      });
      assert.ok(next.choices[0]!.finish_reason);
    } finally {
      await s.close();
    }
  });

test('tool calls: a missing tool named, an unknown function in the history, tools beside a structured output: 400s', async () => {
  const s = await startServer([{ name: 'm', arch: '2mamba' }]);
  try {
    const post = async (body: Record<string, unknown>) => {
      const r = await fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', max_tokens: 4, messages: [{ role: 'user', content: 'x' }], ...body }),
      });
      return { status: r.status, error: ((await r.json()) as { error: { param: string } }).error };
    };
    let r = await post({ tools, tool_choice: { type: 'function', function: { name: 'nope' } } });
    assert.deepEqual([r.status, r.error.param], [400, 'tool_choice']);
    r = await post({ tool_choice: 'required' });
    assert.deepEqual([r.status, r.error.param], [400, 'tool_choice']);
    r = await post({ tools: [{ type: 'function', function: { name: 'bad name!' } }] });
    assert.deepEqual([r.status, r.error.param], [400, 'tools']);
    r = await post({
      tools,
      messages: [
        { role: 'user', content: 'x' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c', type: 'function', function: { name: 'ghost', arguments: '{}' } }],
        },
      ],
    });
    assert.deepEqual([r.status, r.error.param], [400, 'messages']);
    r = await post({ tools, response_format: { type: 'json_object' } });
    assert.deepEqual([r.status, r.error.param], [400, 'response_format']);
  } finally {
    await s.close();
  }
});
