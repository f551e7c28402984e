// Free requests' decode tokens/s beside other requests that are constrained (JSON Schema chat requests) or the same
// requests unconstrained (same batch size), and alone; one server.
// node mix.mjs URL [free] [constrained] [max_tokens] [rounds]; Node 20's fetch, no dependencies.
const [url, nFree = '8', nCon = '8', maxTokens = '128', rounds = '3'] = process.argv.slice(2);
const schema = {
  type: 'object',
    // a note longer than max_tokens allows: every constrained request runs to max_tokens, as the unconstrained ones do
  properties: {
    color: { enum: ['red', 'green', 'blue'] },
    note: { type: 'string', minLength: 2000 },
    ok: { type: 'boolean' },
  },
  required: ['color', 'note', 'ok'],
  additionalProperties: false,
};
const post = async (path, body) => {
  const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  return r.json();
};
// decode rate of one request after its first token (the server's usage.timings)
const rate = (u) => u.timings.tokens_per_second;
const free = (i) =>
  post('/v1/completions', { model: 'm', prompt: `Story ${i}:`, max_tokens: +maxTokens, temperature: 0, ignore_eos: true });
const other = (i, constrained) =>
  post('/v1/chat/completions', {
    model: 'm',
    messages: [{ role: 'user', content: `JSON ${i}` }],
    max_tokens: +maxTokens,
    temperature: 1,
    ...(constrained ? {} : { ignore_eos: true }),
    ...(constrained ? { response_format: { type: 'json_schema', json_schema: { name: 's', schema, strict: true } } } : {}),
  });
async function run(others) {
  let stop = false,
    otherTokens = 0;
  const loops = others
    ? Array.from({ length: +nCon }, async (_, i) => {
        for (let k = 0; !stop; k++) otherTokens += (await other(i * 1000 + k, others === 'constrained')).usage.completion_tokens;
      })
    : [];
  if (others) await new Promise((r) => setTimeout(r, 300)); // the others decoding first
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: +nFree }, (_, i) => free(i)));
  const wall = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(loops);
  const rates = rs.map((r) => rate(r.usage));
  const ttft = rs.map((r) => r.usage.timings.time_to_first_token_ms).sort((a, b) => a - b);
  return {
    free_tok_s_each: rates.reduce((a, b) => a + b) / rates.length,
    free_wall_s: wall,
    free_ttft_ms_median: ttft[ttft.length >> 1],
    other_tokens: otherTokens,
  };
}
for (let i = 0; !(await fetch(url + '/health').then((r) => r.ok, () => false)); i++) {
  if (i === 300) throw new Error('the server did not become ready');
  await new Promise((r) => setTimeout(r, 1000));
}
for (const o of [null, 'free', 'constrained']) await run(o); // warm every shape
const runs = { alone: [], beside_free: [], beside_constrained: [] };
for (let k = 0; k < +rounds; k++) {
  runs.alone.push(await run(null));
  runs.beside_free.push(await run('free'));
  runs.beside_constrained.push(await run('constrained'));
}
const med = (xs) => xs.map((x) => x.free_tok_s_each).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, med(v)]));
console.log(
  JSON.stringify({
    free: +nFree,
    others: +nCon,
    max_tokens: +maxTokens,
    runs,
    median_tok_s_each: m,
    ratio_constrained_vs_free_others: m.beside_constrained / m.beside_free,
  }),
);
