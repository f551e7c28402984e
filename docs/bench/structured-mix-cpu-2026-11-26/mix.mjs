// free requests' tokens/s alone vs beside constrained ones (same server, same prompts)
import OpenAI from 'openai';
const url = process.argv[2];
const c = new OpenAI({ baseURL: url + '/v1', apiKey: 'x' });
const schema = { type: 'object', properties: { color: { enum: ['red', 'green', 'blue'] }, ok: { type: 'boolean' } }, required: ['color', 'ok'], additionalProperties: false };
const free = (i) => c.completions.create({ model: 'm', prompt: `Story ${i}:`, max_tokens: 64, temperature: 0, ignore_eos: true });
const constrained = (i) => c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `JSON ${i}` }], max_tokens: 64, temperature: 1, response_format: { type: 'json_schema', json_schema: { name: 's', schema } } });
async function run(withConstrained) {
  const t0 = performance.now();
  const jobs = [0, 1, 2, 3].map(async (i) => { const r = await free(i); return r.usage.completion_tokens / ((performance.now() - t0) / 1000); });
  const others = withConstrained ? [0, 1, 2, 3].map(async (i) => { for (let k = 0; k < 20; k++) await constrained(i * 100 + k); }) : [];
  const tps = await Promise.all(jobs);
  await Promise.race([Promise.all(others), new Promise((r) => setTimeout(r, 1))]);
  return tps.reduce((a, b) => a + b) / tps.length;
}
await run(false); // warm
const a = [], b = [];
for (let k = 0; k < 3; k++) { a.push(await run(false)); b.push(await run(true)); }
const med = (x) => x.sort((p, q) => p - q)[1];
console.log(JSON.stringify({ free_alone_tok_s: med(a), free_beside_constrained_tok_s: med(b), ratio: med(b) / med(a) }));
process.exit(0);
