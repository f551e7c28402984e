// A real fury server on 127.0.0.1 (random port) for the tests, and small HTTP helpers.
import OpenAI from 'openai';
import { buildApp } from '../../server/app.js';
import { Engine, type EngineOptions } from '../../engine/engine.js';
import { DEFAULT_SERVE_OPTIONS, ServerState, type ServeOptions } from '../../server/state.js';
import { tinyCheckpoint } from '../helpers.js';
import type { Arch } from '../../weights/config.js';

export interface TestServer {
  url: string;
  state: ServerState;
  client: OpenAI;
  close(): Promise<void>;
}

export async function startServer(
  models: { name: string; arch: Arch; seed?: number }[],
  serve: Partial<ServeOptions> = {},
  host: Partial<EngineOptions> = {},
): Promise<TestServer> {
  const state = new ServerState({ ...DEFAULT_SERVE_OPTIONS, ...serve });
  const app = buildApp(state);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  try {
    for (const m of models) {
      const dir = await tinyCheckpoint(m.arch, m.seed ?? 1);
      state.models.set(
        m.name,
        await Engine.open(dir, m.name, {
          backend: 'cpu',
          maxBatch: 8,
          maxQueue: 64,
          memoryBudget: null,
          maxModelLen: 4096,
          tokenBudget: 256,
          prefillChunk: 64,
          ...host,
        }),
      );
    }
  } catch (e) {
    // a model that does not open: free the ones that did and the listening socket
    for (const m of state.models.values()) await m.close();
    await app.close();
    throw e;
  }
  state.loading = false;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    state,
    client: new OpenAI({ baseURL: `${url}/v1`, apiKey: serve.apiKey ?? 'none', maxRetries: 0 }),
    close: async () => {
      // a keep-alive socket that was busy when closing began would hold app.close() for the keep-alive timeout
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
      for (const m of state.models.values()) await m.close();
    },
  };
}

export async function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* SSE or empty */
  }
  return { status: res.status, headers: res.headers, text, json };
}

export async function getJson(url: string, path: string): Promise<any> {
  return (await fetch(url + path)).json();
}

/** Poll until the condition holds (or fail after `ms`). */
export async function until(cond: () => Promise<boolean> | boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
