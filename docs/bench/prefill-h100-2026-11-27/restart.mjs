// Does the server survive an engine restart on this GPU? (run60 on an H100: after an engine failure the process was
// gone.) A real server on 127.0.0.1 (the test harness's composition) with a tiny random model on the WebGPU backend;
// each round: a completion, then the engine's own restart path (as a failed step loop calls it), then another.
//   node docs/bench/prefill-h100-2026-11-27/restart.mjs DIST [ARCH] [ROUNDS]     (node --expose-gc to also collect)
const [dist = 'dist', arch = 'softmax', rounds = '3'] = process.argv.slice(2);
const imp = (m) => import(`${process.cwd()}/${dist}/${m}`);
const { buildApp } = await imp('server/app.js');
const { Engine } = await imp('engine/engine.js');
const { DEFAULT_SERVE_OPTIONS, ServerState } = await imp('server/state.js');
const { tinyCheckpoint } = await imp('test/helpers.js');
const say = (o) => console.log(JSON.stringify(o));
process.on('exit', (code) => say({ exit: code }));
// the test harness's composition (test/server/harness.ts) without its OpenAI client (a dev dependency)
const state = new ServerState({ ...DEFAULT_SERVE_OPTIONS });
const app = buildApp(state);
await app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${app.server.address().port}`;
const opts = { backend: 'webgpu', maxBatch: 8, maxQueue: 64, memoryBudget: null, maxModelLen: 4096, tokenBudget: 256 };
state.models.set('m', await Engine.open(await tinyCheckpoint(arch, 1), 'm', { ...opts, prefillChunk: 64 }));
state.loading = false;
const post = async (path, body) => {
  const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch {}
  return { status: r.status, text, json };
};
const srv = { url, state, close: async () => { await app.close(); for (const m of state.models.values()) await m.close(); } };
const engine = srv.state.models.get('m');
const ask = async (round) => {
  const t0 = performance.now();
  const r = await post('/v1/completions', { model: 'm', prompt: 'hello there', max_tokens: 8, ignore_eos: true });
  say({ round, status: r.status, tokens: r.json?.usage?.completion_tokens, ms: Math.round(performance.now() - t0) });
};
await ask(0);
for (let i = 1; i <= Number(rounds); i++) {
  const before = engine.backend;
  await engine['restart'](new Error(`probe restart ${i}`), [], []);
  globalThis.gc?.();
  say({ round: i, restarted: engine.backend !== before, stats: engine.stats().restarts });
  await ask(i);
}
// a device lost under a running request: the step loop fails and restarts the engine itself
for (let i = 1; i <= Number(rounds); i++) {
  const before = engine.backend;
  const running = post('/v1/completions', { model: 'm', prompt: 'long', max_tokens: 2000, ignore_eos: true });
  while (engine.stats().running === 0) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 50));
  before.device.destroy();
  const r = await running;
  say({ lost: i, status: r.status, error: r.json?.error?.code ?? r.text?.slice(0, 200) });
  while (engine.backend === before || engine.isRestarting) await new Promise((r) => setTimeout(r, 20));
  globalThis.gc?.();
  await ask(`lost ${i}`);
}
await srv.close();
say({ done: true });
