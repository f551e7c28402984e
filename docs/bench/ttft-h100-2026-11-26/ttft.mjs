// Server time to first token of one long prompt alone (issue 12's target: a 32k-token 2Mamba prompt ≤ 0.3 s).
// node ttft.mjs URL TOKENS ROUNDS [PAUSE_MS]: each round a fresh random prompt of TOKENS ids (no cached prefix),
// max_tokens 1, PAUSE_MS after the previous response; prints the server's usage.timings and the client's wall time.
// Node 20's fetch, no dependencies.
const [url, tokens = '32768', rounds = '3', pause = '0'] = process.argv.slice(2);
for (let t = 0; t < 200; t++) {
  try {
    if ((await fetch(url + '/health')).ok) break;
  } catch {}
  await new Promise((r) => setTimeout(r, 500));
}
const out = [];
for (let i = 0; i < +rounds; i++) {
  if (i) await new Promise((r) => setTimeout(r, +pause));
  const prompt = Array.from({ length: +tokens }, () => 300 + Math.floor(Math.random() * 30000));
  const t0 = performance.now();
  const r = await fetch(url + '/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', prompt, max_tokens: 1, temperature: 0 }),
  });
  const b = await r.json();
  const wall = performance.now() - t0;
  out.push({ status: r.status, prompt_tokens: b.usage?.prompt_tokens, wall_ms: wall, timings: b.usage?.timings, error: b.error });
  console.error(JSON.stringify(out.at(-1)));
}
console.log(JSON.stringify(out, null, 1));
