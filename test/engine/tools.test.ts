// Tool calls parsed back out of generated text (engine/text/tools.ts), and the ChatML rendering of tools and calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseToolCalls,
  toolGrammar,
  ToolCallStream,
  withToolPrompt,
  type ToolChoice,
} from '../../engine/text/tools.js';
import { freshRng } from '../helpers.js';
import type { Rng } from '../../lib/rng.js';

test('parseToolCalls: auto mode keeps the text around complete calls; required mode reads one JSON call', () => {
  const t =
    'Let me check.<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call> <tool_call>{"name": "g", "arguments": {}}</tool_call>';
  assert.deepEqual(parseToolCalls(t, 'auto'), {
    content: 'Let me check.',
    calls: [
      { name: 'f', arguments: '{"a":1}' },
      { name: 'g', arguments: '{}' },
    ],
  });
  assert.deepEqual(parseToolCalls('<tool_call>{"name": "f", "arguments": {}}</tool_call>', 'auto').content, null);
  assert.deepEqual(parseToolCalls('<tool_call>not json</tool_call>', 'auto'), {
    content: '<tool_call>not json</tool_call>',
    calls: [],
  });
  assert.deepEqual(parseToolCalls('{"name":"f","arguments":{"x":"y"}}', 'required'), {
    content: null,
    calls: [{ name: 'f', arguments: '{"x":"y"}' }],
  });
  assert.deepEqual(parseToolCalls('{"name":"f"', { name: 'f' }), { content: '{"name":"f"', calls: [] });
  assert.equal(toolGrammar([{ name: 'f', parameters: {} }], 'none'), null);
});

test('withToolPrompt: tools in a system preamble (after the client system message), calls and results as text', () => {
  const out = withToolPrompt(
    [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: '{"a":1}' } }] },
      { role: 'tool', content: '42' },
    ],
    [{ name: 'f', description: 'adds', parameters: { type: 'object' } }],
  );
  assert.equal(out.length, 4);
  assert.match(out[0]!.content, /^Be brief\.\n\n.*<tools>\n\{"type":"function","function":\{"name":"f"/s);
  assert.equal(out[2]!.content, '<tool_call>{"name": "f", "arguments": {"a":1}}</tool_call>');
  assert.equal(out[3]!.content, '<tool_response>\n42\n</tool_response>');
});

/** Feed `text` to a ToolCallStream in random pieces (single characters among them); what the stream says. */
function streamed(text: string, choice: ToolChoice, rng: Rng) {
  const split = new ToolCallStream(choice),
    events = [];
  for (let at = 0; at < text.length;) {
    const n = rng.next() < 0.3 ? 1 : 1 + Math.floor(rng.next() * 9);
    events.push(...split.push(text.slice(at, at + n)));
    at += n;
  }
  events.push(...split.end());
  let content = '';
  const calls: { name: string; args: string }[] = [];
  for (const e of events) {
    if (e.kind === 'text') content += e.text;
    else if (e.kind === 'call') calls[e.index] = { name: e.name, args: '' };
    else calls[e.index]!.args += e.text;
  }
  return { content, calls };
}

test('ToolCallStream: any piecing of a reply streams the text and calls parseToolCalls finds in it', () => {
  const { rng, seed } = freshRng();
  const cases: [string, ToolChoice][] = [
    [
      'Let me look.\n<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "note": "a } and a <tool_call>"}}</tool_call>\n<tool_call>{"name": "b", "arguments": {}}</tool_call> done',
      'auto',
    ],
    ['No call here, only a <tool_ prefix at the end <tool_', 'auto'],
    ['<tool_call>not json at all, so text', 'auto'],
    ['{"name": "a", "arguments": {"x": [1, {"y": "}"}]}}', 'required'],
    ['{"name": "b", "arguments": {}}', { name: 'b' }],
    ['[{"name": "a", "arguments": {"x": "]}, {"}}, {"name": "b", "arguments": {"y": [1, 2]}} ]', 'required'],
    [' [ {"name":"a","arguments":{}} ]', 'required'],
  ];
  for (const [text, choice] of cases)
    for (let k = 0; k < 20; k++) {
      const got = streamed(text, choice, rng),
        want = parseToolCalls(text, choice);
      const msg = `seed ${seed}: ${text}`;
      assert.deepEqual(
        got.calls.map((c) => [c.name, JSON.parse(c.args)]),
        want.calls.map((c) => [c.name, JSON.parse(c.arguments)]),
        msg,
      );
      assert.equal(got.content.trim(), (want.content ?? '').trim(), msg);
    }
});

test('toolGrammar with parallel calls: "required" takes an array of calls, a named tool stays one call', () => {
  const tools = [{ name: 'a', parameters: { type: 'object' } }];
  const g = toolGrammar(tools, 'required', true) as { schema: { type?: string; minItems?: number } };
  assert.equal(g.schema.type, 'array');
  assert.equal(g.schema.minItems, 1);
  assert.notEqual((toolGrammar(tools, 'required', false) as { schema: { type?: string } }).schema.type, 'array');
  assert.notEqual((toolGrammar(tools, { name: 'a' }, true) as { schema: { type?: string } }).schema.type, 'array');
  assert.deepEqual(
    parseToolCalls('[{"name": "a", "arguments": {"k": 1}}, {"name": "a", "arguments": {}}]', 'required').calls,
    [
      { name: 'a', arguments: '{"k":1}' },
      { name: 'a', arguments: '{}' },
    ],
  );
  assert.equal(parseToolCalls('[{"name": "a"}, 3]', 'required').calls.length, 0, 'an array with a non-call is text');
});
