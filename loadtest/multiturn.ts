// `fury loadtest --turns T`: chat conversations that send their whole history every turn (as chat clients do), each
// with its own prompt_cache_key. Per turn: time to first token, prompt tokens and the tokens the server restored from
// its prefix cache — whether a conversation's later turns cost only their new tokens.
import { writeFile, mkdir } from 'node:fs/promises';
import { lineChart } from './svg.js';
import { join, relative } from 'node:path';
import { readCorpus } from '../lib/corpus.js';
import { Rng } from '../lib/rng.js';
import { assertLoopback, streamCompletion, tokenize } from './client.js';
import { summarize, type Summary } from './stats.js';

export interface MultiTurnOptions {
  url: string;
  models: string[];
  conversations: number;
  turns: number;
  maxTokens: number;
  /** Characters of corpus text in each user message. */
  messageChars: number;
  /** Pause between a reply and the next turn (a user reading it), ms. */
  thinkMs: number;
  data: string;
  apiKey: string | null;
  seed: number;
  out: string | null;
  /** Times a failed turn (an error status, a broken stream) is sent again before its conversation gives up. */
  retries: number;
  /** Called as each turn ends (progress; a test acting in the middle of a run). */
  onTurn?: (row: TurnRow) => void;
}

export interface TurnRow {
  model: string;
  conversation: number;
  turn: number;
  ok: boolean;
  /** Why the request failed (the server's error code or message). */
  error?: string;
  prompt_tokens: number;
  cached_tokens: number;
  ttft_ms: number;
  /** Tokens of the conversation before this turn's message (turns 2+: the history the template renders, with the last
   *  reply): what a prefix cache can hold at best. */
  history_tokens: number;
  /** When the turn's last try ended, ms since the run began. */
  ended_ms: number;
  /** When the turn was first sent, ms since the run began. */
  sent_ms: number;
  /** The replica that answered (x-fury-replica; behind a load balancer). */
  replica?: string;
  /** Failed tries before this one (each failure's error in `failures`). */
  retried: number;
  failures?: string[];
}

export async function runMultiTurn(o: MultiTurnOptions) {
  assertLoopback(o.url);
  const headers: Record<string, string> = o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {};
  const text = (await readCorpus(o.data)).join('\n\n');
  const rng = new Rng(o.seed, 11);
  const message = () => {
    const s = Math.floor(rng.next() * (text.length - o.messageChars));
    return text.slice(s, s + o.messageChars);
  };
  const rows: TurnRow[] = [];
  const t0 = performance.now(),
    seed = o.seed;
  for (const model of o.models) {
    process.stderr.write(`fury loadtest: ${model}: ${o.conversations} conversations × ${o.turns} turns\n`);
    await Promise.all(
      Array.from({ length: o.conversations }, async (_, c) => {
        const messages: { role: string; content: string }[] = [];
        for (let t = 1; t <= o.turns; t++) {
          const history = t > 1 ? (await tokenize(o.url, model, messages, headers)).length : 0;
          messages.push({ role: 'user', content: message() });
          const sent = performance.now() - t0,
            failures: string[] = [];
          let r;
          for (;;) {
            r = await streamCompletion(
              o.url,
              { model, messages, max_tokens: o.maxTokens, temperature: 0, prompt_cache_key: `loadtest-${seed}-${c}` },
              headers,
              600_000,
              '/v1/chat/completions',
            );
            if (r.ok || failures.length >= o.retries) break;
            failures.push(`${r.status} ${r.error ?? 'stream ended early'}`);
          }
          const row: TurnRow = {
            model,
            conversation: c,
            turn: t,
            ok: r.ok,
            ...(r.ok ? {} : { error: `${r.status} ${r.error ?? 'stream ended early'}` }),
            prompt_tokens: r.promptTokens,
            cached_tokens: r.cachedTokens,
            ttft_ms: r.ttft,
            history_tokens: history,
            sent_ms: sent,
            ended_ms: performance.now() - t0,
            ...(r.replica ? { replica: r.replica } : {}),
            retried: failures.length,
            ...(failures.length ? { failures } : {}),
          };
          rows.push(row);
          o.onTurn?.(row);
          if (!r.ok) return; // the conversation cannot go on without its reply
          messages.push({ role: 'assistant', content: r.text });
          await new Promise((res) => setTimeout(res, o.thinkMs));
        }
      }),
    );
  }
  const report = {
    date: new Date().toISOString(),
    // what was run, without this machine's paths or the key
    options: { ...o, apiKey: undefined, out: undefined, data: relative(process.cwd(), o.data) },
    models: o.models.map((model) =>
      summary(
        rows.filter((r) => r.model === model),
        o.turns,
        model,
      ),
    ),
    rows,
  };
  if (o.out) {
    await mkdir(o.out, { recursive: true });
    await writeFile(join(o.out, 'multiturn.json'), JSON.stringify(report, null, 1) + '\n');
    await writeFile(join(o.out, 'multiturn.md'), markdown(report.models));
    // the curve that should stay flat with the prefix cache
    await writeFile(
      join(o.out, 'ttft-vs-turn.svg'),
      lineChart({
        title: 'TTFT p50 vs turn',
        x: 'turn',
        y: 'TTFT p50 (ms)',
        series: report.models.map((m) => ({
          name: m.model,
          points: m.per_turn.map((t) => [t.turn, t.ttft_ms.p50] as [number, number]),
        })),
      }),
    );
  }
  return report;
}

function summary(rows: TurnRow[], turns: number, model: string) {
  const ok = rows.filter((r) => r.ok),
    later = ok.filter((r) => r.turn > 1);
  const sum = (xs: TurnRow[], f: (r: TurnRow) => number) => xs.reduce((s, r) => s + f(r), 0);
  const perTurn: { turn: number; prompt_tokens: number; cached_tokens: number; ttft_ms: Summary }[] = [];
  for (let t = 1; t <= turns; t++) {
    const at = ok.filter((r) => r.turn === t);
    if (!at.length) continue;
    perTurn.push({
      turn: t,
      prompt_tokens: sum(at, (r) => r.prompt_tokens) / at.length,
      cached_tokens: sum(at, (r) => r.cached_tokens) / at.length,
      ttft_ms: summarize(at.map((r) => r.ttft_ms)),
    });
  }
  const prompt = sum(later, (r) => r.prompt_tokens),
    history = sum(later, (r) => r.history_tokens);
  return {
    model,
    requests: rows.length,
    errors: rows.length - ok.length,
    /** Turns that failed at first and succeeded when sent again (--retries). */
    retried_ok: ok.filter((r) => r.retried > 0).length,
    /** Share of the prompt tokens of turns 2 and later that the server restored instead of prefilling. */
    hit_rate: prompt ? sum(later, (r) => r.cached_tokens) / prompt : 0,
    /** Share of the history of turns 2 and later (the tokens before each new message) restored: 1 when every turn
     *  found its whole conversation so far in the cache; the rest of hit_rate's gap is the new messages. */
    history_hit_rate: history ? Math.min(1, sum(later, (r) => r.cached_tokens) / history) : 0,
    per_turn: perTurn,
  };
}

function markdown(models: ReturnType<typeof summary>[]): string {
  const out = ['# fury loadtest: multi-turn chat', ''];
  for (const m of models) {
    out.push(
      `## ${m.model}`,
      '',
      `${m.requests} requests, ${m.errors} errors, ${m.retried_ok} succeeded when retried; turns 2+: ${(100 * m.hit_rate).toFixed(1)}% of prompt tokens restored from the prefix cache (${(100 * m.history_hit_rate).toFixed(1)}% of their history)`,
      '',
      '| turn | prompt tokens | cached tokens | TTFT p50 ms | TTFT p90 ms |',
      '|---|---|---|---|---|',
      ...m.per_turn.map(
        (t) =>
          `| ${t.turn} | ${t.prompt_tokens.toFixed(0)} | ${t.cached_tokens.toFixed(0)} | ${t.ttft_ms.p50.toFixed(1)} | ${t.ttft_ms.p90.toFixed(1)} |`,
      ),
      '',
    );
  }
  return out.join('\n');
}
