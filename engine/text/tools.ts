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

/** Most calls in one reply under "required" with parallel calls (a model that never closes the array stops here). */
export const MAX_PARALLEL_CALLS = 8;

/** The grammar a tool choice puts on the output; null for "none". `parallel` (OpenAI's parallel_tool_calls): with
 *  "required", one or more calls as a JSON array, else exactly one. */
export function toolGrammar(tools: readonly ToolSpec[], choice: ToolChoice, parallel = false): GrammarSpec | null {
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
  const one = chosen.length === 1 ? call(chosen[0]!) : { anyOf: chosen.map(call) };
  return {
    kind: 'json_schema',
    schema:
      choice === 'required' && parallel
        ? { type: 'array', items: one, minItems: 1, maxItems: MAX_PARALLEL_CALLS }
        : one,
    strict: true,
  };
}

/** The calls in a generated text and the text around them (null when only calls): with "required" or a named tool
 *  the whole text is one call or an array of calls; with "auto" every complete `<tool_call>` block is one. A block that does not parse
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
    // one call, or (required with parallel_tool_calls) an array of them
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return { content: text, calls: [] };
    }
    const calls = (Array.isArray(v) ? v : [v]).map((x) => asCall(JSON.stringify(x)));
    return calls.length && calls.every((c) => c)
      ? { content: null, calls: calls as ToolCall[] }
      : { content: text, calls: [] };
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

/** Where a JSON value that starts at the beginning of the text fed so far ends: brackets counted outside strings. */
class JsonEnd {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private started = false;
  /** Whether the value has ended. */
  done = false;

  /** How many characters of `s` belong to the value (all of them while it has not ended; then `done`). */
  scan(s: string): number {
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') {
        this.depth++;
        this.started = true;
      } else if (c === '}' || c === ']') {
        this.depth--;
        if (this.started && this.depth === 0) {
          this.done = true;
          return i + 1;
        }
      }
    }
    return s.length;
  }
}

/**
 * Splits a reply into text and tool calls while it is generated, so a stream can send OpenAI's tool_calls deltas (a
 * call's name as soon as it is written, then its arguments as they are written) instead of waiting for the end. The
 * grammar fixes the framing (toolGrammar): with "auto", text in which each call is `<tool_call>` + head + arguments +
 * `}</tool_call>`; with "required" or a named tool, head + arguments + `}` (one call) or a JSON array of such calls.
 * The arguments' end is found by counting brackets outside strings. Feeding a whole reply in any pieces gives the
 * calls and the text parseToolCalls finds in it.
 */
export class ToolCallStream {
  private buf = '';
  private state: 'text' | 'head' | 'args' | 'tail' | 'done';
  private calls = 0;
  private args = new JsonEnd();
  /** required / named: null until the first character says whether the calls are an array. */
  private array: boolean | null = null;

  constructor(private readonly choice: ToolChoice) {
    this.state = choice === 'auto' ? 'text' : 'head';
  }

  push(delta: string): ToolStreamEvent[] {
    this.buf += delta;
    const out: ToolStreamEvent[] = [];
    while (this.step(out));
    return out;
  }

  /** One move of the state machine; false when it needs more text. */
  private step(out: ToolStreamEvent[]): boolean {
    const auto = this.choice === 'auto';
    switch (this.state) {
      case 'text': {
        const at = this.buf.indexOf(OPEN);
        const upto = at >= 0 ? at : this.buf.length - partialEnd(this.buf, OPEN);
        if (upto > 0) out.push({ kind: 'text', text: this.buf.slice(0, upto) });
        this.buf = this.buf.slice(at >= 0 ? at + OPEN.length : upto);
        if (at < 0) return false;
        this.state = 'head';
        return true;
      }
      case 'head': {
        if (!auto && this.array === null) {
          const lead = /^\s*(\S)/.exec(this.buf);
          if (!lead) return false;
          this.array = lead[1] === '[';
          if (this.array) this.buf = this.buf.slice(lead[0].length);
        }
        const m = CALL_HEAD.exec(this.buf);
        if (!m) {
          if (auto && this.buf.length > MAX_HEAD) {
            out.push({ kind: 'text', text: OPEN + this.buf }); // not a call after all
            this.buf = '';
            this.state = 'text';
            return true;
          }
          return false;
        }
        out.push({ kind: 'call', index: this.calls, name: JSON.parse(m[1]!) as string });
        this.buf = this.buf.slice(m[0].length);
        this.args = new JsonEnd();
        this.state = 'args';
        return true;
      }
      case 'args': {
        const n = this.args.scan(this.buf);
        if (n > 0) out.push({ kind: 'args', index: this.calls, text: this.buf.slice(0, n) });
        this.buf = this.buf.slice(n);
        if (!this.args.done) return false;
        this.state = 'tail';
        return true;
      }
      case 'tail': {
        // after the arguments: the call's closing brace, then `</tool_call>` (auto) or `,` / `]` (array) or the end
        const m = (auto ? /^\s*\}\s*<\/tool_call>/ : this.array ? /^\s*\}\s*([,\]])/ : /^\s*\}/).exec(this.buf);
        if (!m) return false;
        this.buf = this.buf.slice(m[0].length);
        this.calls++;
        this.state = auto ? 'text' : this.array && m[1] === ',' ? 'head' : 'done';
        return true;
      }
      default:
        return false;
    }
  }

  /** The rest, at the end of the reply. */
  end(): ToolStreamEvent[] {
    const rest = this.buf;
    this.buf = '';
    if (!rest) return [];
    if (this.state === 'text') return [{ kind: 'text', text: rest }];
    if (this.state === 'head' && this.choice === 'auto') return [{ kind: 'text', text: OPEN + rest }];
    return [];
  }
}
