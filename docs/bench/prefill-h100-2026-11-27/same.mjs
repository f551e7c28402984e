// A fixed long prompt's greedy continuation from a running server (to compare servers that prefill it differently):
//   node same.mjs URL TOKENS [MAX_TOKENS]   → one JSON line: status, the completion's text, TTFT
const [url, tokens = '10000', max = '16'] = process.argv.slice(2);
for (let t = 0; t < 200; t++) {
  try {
    if ((await fetch(url + '/health')).ok) break;
  } catch {}
  await new Promise((r) => setTimeout(r, 500));
}
let seed = 12345;
const prompt = Array.from({ length: +tokens }, () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return 300 + (seed % 30000);
});
const r = await fetch(url + '/v1/completions', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'm', prompt, max_tokens: +max, temperature: 0, ignore_eos: true }),
});
const b = await r.json();
console.log(JSON.stringify({ status: r.status, text: b.choices?.[0]?.text, ttft: b.usage?.timings?.time_to_first_token_ms, error: b.error }));
