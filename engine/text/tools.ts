// Tool calling (issue 15): the request's function tools go into the prompt — as the `tools` variable of a checkpoint's
// own chat template (Hugging Face templates render it), or, for the ChatML default, as a Hermes-style system preamble
// with calls written `<tool_call>{"name": …, "arguments": …}</tool_call>` and results as `<tool_response>` turns —
// and the model's calls are held to the tools' schemas by the grammar engine (grammar.ts): with tool_choice
// "required" or a named function the whole output is one call (a JSON object), with "auto" free text in which every
// `<tool_call>` must complete a call to a known tool (XGrammar's structural tags). The calls are then parsed back out.
import type { ChatMessage } from './chat.js';
import type { GrammarSpec } from './grammar.js';

export interface ToolSpec {
  name: string;
  description?: string;
  /** A JSON Schema of the arguments object (an empty object schema when the tool gave none). */
  parameters: Record<string, unknown>;
}

/** none: no call; auto: text or calls; required: one call to any tool; a name: one call to that tool. */
export type ToolChoice = 'none' | 'auto' | 'required' | { name: string };

export interface ToolCall {
  name: string;
  /** The arguments as a JSON string (OpenAI's wire form). */
  arguments: string;
}

const OPEN = '<tool_call>',
  CLOSE = '</tool_call>';

/** The ChatML default's rendering: a system preamble listing the tools; assistant calls and tool results as text. */
export function withToolPrompt(messages: readonly ChatMessage[], tools: readonly ToolSpec[]): ChatMessage[] {
  const list = tools
    .map((t) =>
      JSON.stringify({
        type: 'function',
        function: { name: t.name, description: t.description ?? '', parameters: t.parameters },
      }),
    )
    .join('\n');
  const preamble =
    'You may call one or more functions to assist with the user query. The functions are:\n<tools>\n' +
    `${list}\n</tools>\nFor each call, reply with ${OPEN}{"name": <function-name>, "arguments": <args-json-object>}${CLOSE}.`;
  const first = messages[0],
    hasSystem = first !== undefined && (first.role === 'system' || first.role === 'developer');
  const out: ChatMessage[] = [
    hasSystem
      ? { ...first, role: 'system', content: `${first.content}\n\n${preamble}` }
      : { role: 'system', content: preamble },
  ];
  for (const m of messages.slice(hasSystem ? 1 : 0)) {
    const calls = (m.tool_calls as { function?: { name?: string; arguments?: unknown } }[] | undefined) ?? [];
    if (m.role === 'assistant' && calls.length) {
      const text = calls
        .map((c) => {
          const args =
            typeof c.function?.arguments === 'string'
              ? c.function.arguments
              : JSON.stringify(c.function?.arguments ?? {});
          return `${OPEN}{"name": ${JSON.stringify(c.function?.name ?? '')}, "arguments": ${args}}${CLOSE}`;
        })
        .join('\n');
      out.push({ role: 'assistant', content: m.content ? `${m.content}\n${text}` : text });
    } else if (m.role === 'tool')
      out.push({ role: 'tool', content: `<tool_response>\n${m.content}\n</tool_response>` });
    else out.push(m);
  }
  return out;
}

/** The grammar a tool choice puts on the output; null for "none". */
export function toolGrammar(tools: readonly ToolSpec[], choice: ToolChoice): GrammarSpec | null {
  if (choice === 'none') return null;
  const call = (t: ToolSpec) => ({
    type: 'object',
    properties: { name: { const: t.name }, arguments: t.parameters },
    required: ['name', 'arguments'],
    additionalProperties: false,
  });
  if (choice === 'auto')
    return {
      kind: 'tags',
      triggers: [OPEN],
      tags: tools.map((t) => ({
        begin: `${OPEN}{"name": ${JSON.stringify(t.name)}, "arguments": `,
        schema: t.parameters,
        end: `}${CLOSE}`,
      })),
    };
  const chosen = choice === 'required' ? tools : tools.filter((t) => t.name === choice.name);
  return {
    kind: 'json_schema',
    schema: chosen.length === 1 ? call(chosen[0]!) : { anyOf: chosen.map(call) },
    strict: true,
  };
}

/** The calls in a generated text and the text around them (null when only calls): with "required" or a named tool
 *  the whole text is one call; with "auto" every complete `<tool_call>` block is one. A block that does not parse
 *  stays text. */
export function parseToolCalls(text: string, choice: ToolChoice): { content: string | null; calls: ToolCall[] } {
  const asCall = (json: string): ToolCall | null => {
    try {
      const v = JSON.parse(json) as { name?: unknown; arguments?: unknown };
      return typeof v.name === 'string' ? { name: v.name, arguments: JSON.stringify(v.arguments ?? {}) } : null;
    } catch {
      return null;
    }
  };
  if (choice === 'none') return { content: text, calls: [] };
  if (choice !== 'auto') {
    const c = asCall(text);
    return c ? { content: null, calls: [c] } : { content: text, calls: [] };
  }
  const calls: ToolCall[] = [];
  const rest = text.replace(/<tool_call>([\s\S]*?)<\/tool_call>/g, (whole, json: string) => {
    const c = asCall(json);
    if (!c) return whole;
    calls.push(c);
    return '';
  });
  const content = rest.trim();
  return { content: calls.length && !content ? null : calls.length ? content : text, calls };
}

/** What a streamed reply is made of, as it is generated: text, the start of a call (its name), argument text. */
export type ToolStreamEvent =
  | { kind: 'text'; text: string }
  | { kind: 'call'; index: number; name: string }
  | { kind: 'args'; index: number; text: string };

/** The start of a call as the grammar writes it: `{"name": "N", "arguments": ` (any JSON whitespace). */
const CALL_HEAD = /^\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*/;
/** A head longer than this that still does not match is not a call (auto mode: it stays text). */
const MAX_HEAD = 1024;

/** The longest end of `s` that begins `marker` (held back: the next delta may complete it). */
function partialEnd(s: string, marker: string): number {
  for (let n = Math.min(s.length, marker.length - 1); n > 0; n--) if (marker.startsWith(s.slice(-n))) return n;
  return 0;
}

/**
 * Splits a reply into text and tool calls while it is generated, so a stream can send OpenAI's tool_calls deltas (a
 * call's name as soon as it is written, then its arguments as they are written) instead of waiting for the end. The
 * grammar fixes the framing (toolGrammar): with "auto", text in which each call is `<tool_call>` + head + arguments +
 * `}</tool_call>`; with "required" or a named tool, one JSON object: head + arguments + `}`. Feeding the whole reply in
 * any pieces gives the calls and text parseToolCalls finds in it.
 */
export class ToolCallStream {
  private buf = '';
  private state: 'text' | 'head' | 'args';
  private calls = 0;

  constructor(private readonly choice: ToolChoice) {
    this.state = choice === 'auto' ? 'text' : 'head';
  }

  push(delta: string): ToolStreamEvent[] {
    this.buf += delta;
    const out: ToolStreamEvent[] = [];
    for (;;) {
      if (this.state === 'text') {
        const at = this.buf.indexOf(OPEN);
        const upto = at >= 0 ? at : this.buf.length - partialEnd(this.buf, OPEN);
        if (upto > 0) out.push({ kind: 'text', text: this.buf.slice(0, upto) });
        if (at < 0) {
          this.buf = this.buf.slice(upto);
          return out;
        }
        this.buf = this.buf.slice(at + OPEN.length);
        this.state = 'head';
      } else if (this.state === 'head') {
        const m = CALL_HEAD.exec(this.buf);
        if (!m) {
          if (this.choice === 'auto' && this.buf.length > MAX_HEAD) {
            out.push({ kind: 'text', text: OPEN + this.buf }); // not a call after all
            this.buf = '';
            this.state = 'text';
          }
          return out;
        }
        out.push({ kind: 'call', index: this.calls, name: JSON.parse(m[1]!) as string });
        this.buf = this.buf.slice(m[0].length);
        this.state = 'args';
      } else {
        // the arguments run to `}</tool_call>` (auto) or to the object's last `}` (required / named: held back)
        const close = `}${CLOSE}`;
        const at = this.choice === 'auto' ? this.buf.indexOf(close) : -1;
        const hold = this.choice === 'auto' ? partialEnd(this.buf, close) : (/\}\s*$/.exec(this.buf)?.[0].length ?? 0);
        const upto = at >= 0 ? at : this.buf.length - hold;
        if (upto > 0) out.push({ kind: 'args', index: this.calls, text: this.buf.slice(0, upto) });
        if (at < 0) {
          this.buf = this.buf.slice(upto);
          return out;
        }
        this.buf = this.buf.slice(at + close.length);
        this.calls++;
        this.state = 'text';
      }
    }
  }

  /** The rest, at the end of the reply. */
  end(): ToolStreamEvent[] {
    const rest = this.buf;
    this.buf = '';
    if (!rest) return [];
    if (this.state === 'text') return [{ kind: 'text', text: rest }];
    if (this.state === 'head') return this.choice === 'auto' ? [{ kind: 'text', text: OPEN + rest }] : [];
    // required / named: the held-back end is the object's closing brace
    const args = this.choice === 'auto' ? rest : rest.replace(/\}\s*$/, '');
    return args ? [{ kind: 'args', index: this.calls, text: args }] : [];
  }
}
