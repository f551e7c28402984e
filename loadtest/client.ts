// A streaming completions client that timestamps every SSE event (as vLLM's backend_request_func does), and the
// helpers the load test needs from the server: /tokenize, /v1/models, /metrics.
import { performance } from 'node:perf_hooks';
import type { RequestRecord } from './stats.js';

/** Load goes to loopback addresses only. */
export function assertLoopback(url: string): void {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (!(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    throw new Error(
      `refusing to load ${host}: fury loadtest sends traffic only to loopback addresses (127.0.0.0/8, ::1, localhost)`,
    );
  }
}

/** Stream one request to /v1/completions (or `path`: /v1/chat/completions) and time every event. */
export async function streamCompletion(
  url: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  timeoutMs = 600_000,
  path = '/v1/completions',
): Promise<RequestRecord> {
  const t0 = performance.now();
  const rec: RequestRecord = {
    ok: false,
    status: 0,
    ttft: 0,
    itl: [],
    e2e: 0,
    outputTokens: 0,
    promptTokens: 0,
    cachedTokens: 0,
    text: '',
    memory: null,
  };
  try {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    rec.status = res.status;
    rec.replica = res.headers.get('x-fury-replica') ?? undefined;
    if (!res.ok || !res.body) {
      rec.error = (await res.text()).slice(0, 200);
      rec.e2e = performance.now() - t0;
      return rec;
    }
    const decoder = new TextDecoder();
    let buf = '',
      last = 0,
      done = false;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!event.startsWith('data: ')) continue; // comments (pings)
        const data = event.slice(6);
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const j = JSON.parse(data);
        if (j.error) {
          rec.error = j.error.code ?? j.error.message;
          continue;
        }
        const now = performance.now() - t0;
        const piece: string | undefined = j.choices?.[0]?.text ?? j.choices?.[0]?.delta?.content;
        if (j.choices?.length && (piece || !path.includes('chat'))) {
          // a chat stream opens with a role-only delta: the first token is the first content
          rec.text += piece ?? '';
          if (!rec.ttft) rec.ttft = now;
          else rec.itl.push(now - last);
          last = now;
        }
        if (j.usage) {
          rec.outputTokens = j.usage.completion_tokens;
          rec.promptTokens = j.usage.prompt_tokens;
          rec.cachedTokens = j.usage.prompt_tokens_details?.cached_tokens ?? 0;
          rec.memory = j.usage.memory ?? null;
        }
      }
    }
    rec.e2e = performance.now() - t0;
    rec.ok = done && !rec.error && rec.ttft > 0;
  } catch (e) {
    rec.error = (e as Error).name === 'TimeoutError' ? 'timeout' : (e as Error).message;
    rec.e2e = performance.now() - t0;
  }
  return rec;
}

export async function getJson(url: string, path: string, headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(url + path, { headers });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return res.json();
}

/** The token ids of a text, or of chat messages as the model's template renders them (no generation prompt). */
export async function tokenize(
  url: string,
  model: string,
  input: string | { role: string; content: string }[],
  headers: Record<string, string> = {},
): Promise<number[]> {
  const res = await fetch(`${url}/tokenize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(
      typeof input === 'string' ? { model, prompt: input } : { model, messages: input, add_generation_prompt: false },
    ),
  });
  if (!res.ok) throw new Error(`POST /tokenize: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()).tokens;
}

/** Sum of a Prometheus metric's samples whose labels match. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([^{ ]+)(\{[^}]*\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
