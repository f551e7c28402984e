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
        structured_outputs: { grammar: 'root ::= ("ab" | "cd")+ "!"' },
      } as never);
      assert.match((ebnf as any).choices[0].message.content, /^(ab|cd)+!$/);
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
