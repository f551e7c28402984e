// Multi-turn chat against a running fury server: each conversation sends its whole history every turn (as chat
// clients do); prints per turn the prompt tokens, cached_tokens and time to first token (streamed), as JSON lines.
//   node scripts/multiturn.mjs URL MODEL [conversations=4] [turns=6] [max_tokens=48]
const [url, model, convs = '4', turns = '6', maxTokens = '48'] = process.argv.slice(2);
if (!url || !model) throw new Error('usage: node scripts/multiturn.mjs URL MODEL [conversations] [turns] [max_tokens]');
const questions = [
  'Tell me about the sea.',
  'What happened next?',
  'Why did the captain do that?',
  'Describe the ship.',
  'Who else was aboard?',
  'How did it end?',
  'What would you do?',
  'Say more.',
];
async function turn(messages) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      messages,
      max_tokens: Number(maxTokens),
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  let ttft = null,
    text = '',
    usage = null,
    buf = '';
  for await (const chunk of res.body) {
    buf += Buffer.from(chunk).toString();
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) usage = j.usage;
      const d = j.choices?.[0]?.delta?.content;
      if (d) {
        ttft ??= performance.now() - t0;
        text += d;
      }
    }
  }
  return { ttft_ms: ttft, text, usage };
}
const rows = [];
await Promise.all(
  Array.from({ length: Number(convs) }, async (_, c) => {
    const messages = [];
    for (let t = 0; t < Number(turns); t++) {
      messages.push({ role: 'user', content: `${questions[(c + t) % questions.length]}` });
      const r = await turn(messages);
      messages.push({ role: 'assistant', content: r.text });
      rows.push({
        conversation: c,
        turn: t + 1,
        prompt_tokens: r.usage.prompt_tokens,
        cached_tokens: r.usage.prompt_tokens_details?.cached_tokens ?? 0,
        ttft_ms: Math.round(r.ttft_ms * 10) / 10,
      });
      await new Promise((r) => setTimeout(r, 300)); // a user reading the answer (the server warms the next turn)
    }
  }),
);
for (const r of rows.sort((a, b) => a.turn - b.turn || a.conversation - b.conversation)) console.log(JSON.stringify(r));
const later = rows.filter((r) => r.turn > 1);
const sum = (f) => later.reduce((s, r) => s + f(r), 0);
console.log(
  JSON.stringify({
    turns_2_plus: later.length,
    prompt_tokens: sum((r) => r.prompt_tokens),
    cached_tokens: sum((r) => r.cached_tokens),
    hit_rate: sum((r) => r.cached_tokens) / sum((r) => r.prompt_tokens),
    mean_ttft_ms: sum((r) => r.ttft_ms) / later.length,
  }),
);
