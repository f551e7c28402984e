// Where a prompt's prefill time goes, step by step (issue 12; run61–62: the first 4096-row step of an 8k softmax prompt
// took ~40 ms in the bench against 27 ms as a lone step). Random weights, as `fury bench`; each pass prefills one prompt
// as the server and the bench do (chunks ahead but the last); per step: wall ms (from the previous step's result),
// JS encode ms, and the backend's buffer generation (a recording is rebuilt when it moves) and recordings.
//   node docs/bench/prefill-h100-2026-11-27/prefill.mjs DIST ARCH TOKENS CHUNK [PASSES] [PAUSE_MS]
const [dist = 'dist', arch = 'softmax', tokensArg = '8192', chunkArg = '4096', passesArg = '6', pauseArg = '0'] =
  process.argv.slice(2);
const imp = (m) => import(`${process.cwd()}/${dist}/${m}`);
const { createBackend, kvDtypeFor } = await imp('engine/open.js');
const { Model } = await imp('engine/model/model.js');
const { presetSpec } = await imp('weights/presets.js');
const { randomCheckpoint } = await imp('weights/init.js');
const tokens = Number(tokensArg),
  K = Number(chunkArg),
  P = 16;
const backend = await createBackend('webgpu', () => {});
const spec = presetSpec(arch, 'small');
const kv = arch !== '2mamba';
const model = await Model.load(
  randomCheckpoint(spec, 0, true),
  backend,
  { slots: 1, kvPages: kv ? tokens / P : 0, pageSize: P, kvDtype: kvDtypeFor('auto', backend) },
  undefined,
  'f16',
);
const pages = kv ? Array.from({ length: tokens / P }, (_, j) => j) : [];
const G = { temperature: 0, seed: 0, draw: 0 };
const chunk = (c) => {
  const n = Math.min(K, tokens - c);
  return model.submitSampled([{ slot: 0, pos: c, rows: n, pages }], Array.from({ length: n }, (_, k) => 3 + ((c + k) % 200)), [G]);
};
const state = () => ({ enc: backend.encodeMs, gen: backend.gen, recs: backend.recordings.size });
await chunk(0);
for (let pass = 0; pass < Number(passesArg); pass++) {
  if (Number(pauseArg)) await new Promise((r) => setTimeout(r, Number(pauseArg)));
  const steps = [];
  let prev = performance.now();
  const t0 = prev;
  const timed = (p, s0) =>
    p.then(() => {
      const now = performance.now(), s = state();
      steps.push({ ms: +(now - prev).toFixed(2), enc: +(s.enc - s0.enc).toFixed(2), gen: s.gen, recs: s.recs });
      prev = now;
    });
  let s0 = state();
  let running = timed(chunk(0), s0);
  for (let c = K; c < tokens; c += K) {
    if (c + K >= tokens) await running;
    s0 = state();
    const next = chunk(c);
    await running;
    running = timed(next, s0);
  }
  await running;
  console.log(JSON.stringify({ arch, tokens, chunk: K, pass, ms: +(performance.now() - t0).toFixed(1), steps }));
}
await backend.destroy();
