// Tool calls parsed back out of generated text (engine/text/tools.ts), and the ChatML rendering of tools and calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseToolCalls, toolGrammar, withToolPrompt } from '../../engine/text/tools.js';

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
