// `fury loadtest`: streaming requests at each (context, concurrency) with TTFT / ITL / TPOT / E2E, a capacity mode on
// autocannon, per-request memory from the server's own usage reports, and JSON / Markdown / SVG output.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { readCorpus } from '../lib/corpus.js';
import { Rng } from '../lib/rng.js';
import { assertLoopback, getJson, metricValue, streamCompletion, tokenize } from './client.js';
import { cell, type CellResult, type RequestRecord } from './stats.js';
import { lineChart } from './svg.js';

export interface LoadtestOptions {
  url: string;
  models: string[];
  contexts: number[];
  concurrency: number[];
  requests: number;
  durationS: number | null;
  maxTokens: number;
  data: string;
  out: string | null;
  apiKey: string | null;
  capacity: boolean;
  memorySweep: number[];
  maxSeconds: number;
  seed: number;
}

export interface ModelInfo {
  id: string;
  architecture: string;
  max_model_len: number;
  state_bytes_per_request: number;
  kv_bytes_per_token: number;
  max_concurrent_requests: number;
}

const log = (l: string) => process.stderr.write(`${l}\n`);

/** How often a cell probes GET /health (each probe waits for the previous answer). */
const HEALTH_PERIOD_MS = 20;

/** Random windows of real corpus text, as token ids of exactly `n` tokens (BOS + text), via the server's tokenizer. */
async function promptMaker(o: LoadtestOptions, model: string, headers: Record<string, string>) {
  const docs = await readCorpus(o.data);
  const text = docs.join('\n\n').slice(0, 600_000);
  const ids = await tokenize(o.url, model, text, headers);
  const bos = ids[0]!,
    body = ids.slice(1),
    rng = new Rng(o.seed, 7);
  return (n: number) => {
    if (n - 1 > body.length)
      throw new Error(`the corpus text holds ${body.length} tokens, fewer than a ${n}-token prompt`);
    const s = Math.floor(rng.next() * (body.length - (n - 1)));
    return [bos, ...body.slice(s, s + n - 1)];
  };
}

async function runCell(
  o: LoadtestOptions,
  model: string,
  make: (n: number) => number[],
  context: number,
  conc: number,
  headers: Record<string, string>,
  deadline: number,
): Promise<CellResult> {
  const recs: RequestRecord[] = [];
  const t0 = performance.now(),
    end = o.durationS ? t0 + o.durationS * 1000 : Infinity;
  let issued = 0;
  const bar = () =>
    process.stderr.write(
      `\r  ${model} context ${context} × ${conc}: ${recs.length}/${o.durationS ? '…' : o.requests} done, ` +
        `${recs.filter((r) => !r.ok).length} errors, ${((performance.now() - t0) / 1000).toFixed(0)} s `,
    );
  const timer = setInterval(bar, 1000);
  const health: number[] = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const t = performance.now();
      await fetch(`${o.url}/health`, { headers }).then(
        (r) => r.arrayBuffer(),
        () => null,
      );
      health.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, HEALTH_PERIOD_MS));
    }
  })();
  const worker = async () => {
    while ((o.durationS ? performance.now() < end : issued < o.requests) && performance.now() < deadline) {
      issued++;
      recs.push(
        await streamCompletion(
          o.url,
          { model, prompt: make(context), max_tokens: o.maxTokens, temperature: 0, ignore_eos: true },
          headers,
        ),
      );
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  probing = false;
  await probe;
  clearInterval(timer);
  bar();
  process.stderr.write('\n');
  return cell(context, conc, recs, (performance.now() - t0) / 1000, health);
}

async function capacityRun(
  o: LoadtestOptions,
  model: string,
  make: (n: number) => number[],
  context: number,
  conc: number,
  headers: Record<string, string>,
) {
  const r = await autocannon({
    url: o.url,
    connections: conc,
    amount: Math.max(conc, o.requests),
    timeout: 3600,
    requests: [
      {
        method: 'POST',
        path: '/v1/completions',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({
          model,
          prompt: make(context),
          max_tokens: o.maxTokens,
          temperature: 0,
          ignore_eos: true,
        }),
      },
    ],
  });
  return {
    context,
    concurrency: conc,
    requests_per_s: r.requests.average,
    latency_ms: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99 },
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    total: r.requests.total,
  };
}

export async function runLoadtest(o: LoadtestOptions) {
  assertLoopback(o.url);
  const headers: Record<string, string> = o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {};
  const deadline = performance.now() + o.maxSeconds * 1000;
  const models: ModelInfo[] = (await getJson(o.url, '/v1/models', headers)).data;
  const results: Record<string, unknown>[] = [];
  for (const name of o.models) {
    const info = models.find((m) => m.id === name);
    if (!info) throw new Error(`the server has no model "${name}" (it has ${models.map((m) => m.id).join(', ')})`);
    log(
      `${name}: ${info.architecture}, max_model_len ${info.max_model_len}, state ${info.state_bytes_per_request} B/request, KV ${info.kv_bytes_per_token} B/token`,
    );
    const make = await promptMaker(o, name, headers);
    const cells: CellResult[] = [];
    for (const context of o.contexts) {
      if (context + o.maxTokens > info.max_model_len) {
        log(
          `  skip context ${context}: context + --max-tokens ${o.maxTokens} = ${context + o.maxTokens} tokens is above ` +
            `max_model_len ${info.max_model_len} (lower --max-tokens or the context, or serve with a larger --max-model-len)`,
        );
        continue;
      }
      for (const conc of o.concurrency) cells.push(await runCell(o, name, make, context, conc, headers, deadline));
    }
    // memory per request against context, from the server's own usage reports (one request each, max_tokens 1)
    const memory = [];
    for (const context of [...new Set([...o.contexts, ...o.memorySweep])].sort((a, b) => a - b)) {
      if (context + 1 > info.max_model_len) continue;
      const res = await fetch(`${o.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: name, prompt: make(context), max_tokens: 1, temperature: 0 }),
      });
      const j = await res.json();
      if (!res.ok) {
        memory.push({ context, status: res.status, error: j.error?.message });
        continue;
      }
      const m = j.usage.memory;
      memory.push({ context, ...m, held_bytes: m.state_bytes + m.kv_tokens * info.kv_bytes_per_token });
    }
    const capacity = [];
    if (o.capacity)
      for (const conc of o.concurrency) capacity.push(await capacityRun(o, name, make, o.contexts[0]!, conc, headers));
    const metrics = await (await fetch(`${o.url}/metrics`)).text();
    results.push({
      model: name,
      info,
      cells,
      memory,
      capacity,
      server: {
        prompt_tokens_total: metricValue(metrics, 'fury_prompt_tokens_total', { model_name: name }),
        generation_tokens_total: metricValue(metrics, 'fury_generation_tokens_total', { model_name: name }),
        rejected_total: metricValue(metrics, 'fury_requests_rejected_total', { model_name: name }),
        weights_bytes: metricValue(metrics, 'fury_device_memory_bytes', { model_name: name, kind: 'weights' }),
      },
    });
  }
  const report = {
    date: new Date().toISOString(),
    url: o.url,
    max_tokens: o.maxTokens,
    requests_per_cell: o.durationS ? null : o.requests,
    duration_s: o.durationS,
    results,
  };
  if (o.out) await writeOutputs(o.out, report);
  return report;
}

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 1 : 0) : '—');

export async function writeOutputs(dir: string, report: any): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'loadtest.json'), JSON.stringify(report, null, 1) + '\n');
  const md: string[] = [
    `# Load test ${report.date.slice(0, 10)}`,
    '',
    `Server ${report.url}; ${report.requests_per_cell ?? `${report.duration_s} s of`} streaming requests per cell, ` +
      `max_tokens ${report.max_tokens}, ignore_eos, temperature 0, prompts of exactly \`context\` tokens of real corpus text.`,
    '',
  ];
  for (const r of report.results) {
    md.push(
      `## ${r.model} (${r.info.architecture})`,
      '',
      '| context | concurrency | ok / sent | req/s | out tok/s | TTFT p50 / p90 / p99 ms | TPOT p50 ms | ITL p50 / p99 ms | E2E p50 ms | /health p99 / max ms | errors |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const c of r.cells as CellResult[]) {
      md.push(
        `| ${c.context} | ${c.concurrency} | ${c.ok} / ${c.requests} | ${c.request_throughput.toFixed(2)} | ${c.output_token_throughput.toFixed(1)} | ` +
          `${ms(c.ttft_ms.p50)} / ${ms(c.ttft_ms.p90)} / ${ms(c.ttft_ms.p99)} | ${ms(c.tpot_ms.p50)} | ${ms(c.itl_ms.p50)} / ${ms(c.itl_ms.p99)} | ${ms(c.e2e_ms.p50)} | ` +
          `${ms(c.health_ms.p99)} / ${ms(c.health_ms.max)} | ${
            Object.entries(c.errors)
              .map(([k, v]) => `${k}: ${v}`)
              .join(', ') || '0'
          } |`,
      );
    }
    md.push(
      '',
      '| context | state bytes | KV bytes (allocated pages) | KV tokens | peak bytes | state + held tokens × KV B/token |',
      '|---|---|---|---|---|---|',
    );
    for (const m of r.memory)
      md.push(
        m.error
          ? `| ${m.context} | HTTP ${m.status}: ${m.error} | | | | |`
          : `| ${m.context} | ${m.state_bytes} | ${m.kv_bytes} | ${m.kv_tokens} | ${m.peak_bytes} | ${m.held_bytes} |`,
      );
    if (r.capacity.length) {
      md.push(
        '',
        'Capacity (autocannon, non-streaming): ',
        '',
        '| context | connections | req/s | latency p50 / p90 / p99 ms | non-2xx | errors |',
        '|---|---|---|---|---|---|',
      );
      for (const c of r.capacity)
        md.push(
          `| ${c.context} | ${c.concurrency} | ${c.requests_per_s.toFixed(2)} | ${c.latency_ms.p50} / ${c.latency_ms.p90} / ${c.latency_ms.p99} | ${c.non2xx} | ${c.errors} |`,
        );
    }
    md.push('');
  }
  await writeFile(join(dir, 'report.md'), md.join('\n') + '\n');
  const crossover = report.results.find((r: any) => r.info.kv_bytes_per_token > 0 && r.info.architecture === 'softmax');
  const mamba = report.results.find((r: any) => r.info.architecture === '2mamba');
  const x = crossover && mamba ? mamba.info.state_bytes_per_request / crossover.info.kv_bytes_per_token : null;
  await writeFile(
    join(dir, 'memory-vs-context.svg'),
    lineChart({
      title: 'Memory per request vs context (server-reported peak bytes)',
      x: 'context (tokens)',
      y: 'bytes per request',
      logX: true,
      series: report.results.map((r: any) => ({
        name: `${r.model}`,
        points: r.memory.filter((m: any) => !m.error).map((m: any) => [m.context, m.peak_bytes]),
      })),
      ...(x ? { vline: { x, label: `crossover ${x.toFixed(2)} tokens` } } : {}),
    }),
  );
  await writeFile(
    join(dir, 'ttft-vs-context.svg'),
    lineChart({
      title: 'TTFT p50 vs context (lowest concurrency)',
      x: 'context (tokens)',
      y: 'TTFT p50 (ms)',
      logX: true,
      series: report.results.map((r: any) => {
        const lo = Math.min(...r.cells.map((c: CellResult) => c.concurrency));
        return {
          name: r.model,
          points: r.cells
            .filter((c: CellResult) => c.concurrency === lo)
            .map((c: CellResult) => [c.context, c.ttft_ms.p50]),
        };
      }),
    }),
  );
  await writeFile(
    join(dir, 'throughput-vs-concurrency.svg'),
    lineChart({
      title: 'Output tokens/s vs concurrency (shortest context)',
      x: 'concurrency',
      y: 'output tokens/s',
      series: report.results.map((r: any) => {
        const c0 = Math.min(...r.cells.map((c: CellResult) => c.context));
        return {
          name: r.model,
          points: r.cells
            .filter((c: CellResult) => c.context === c0)
            .map((c: CellResult) => [c.concurrency, c.output_token_throughput]),
        };
      }),
    }),
  );
}

/** Start `fury serve` on 127.0.0.1 (a free port) with the given flags; resolves with its URL once it is ready. */
export async function spawnServer(
  cli: string,
  args: string[],
): Promise<{ url: string; proc: ChildProcess; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, [cli, 'serve', '--host', '127.0.0.1', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      const u = /"url":"([^"]+)"/.exec(out);
      if (u && /"msg":"ready"/.test(out)) resolve(u[1]!);
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) =>
      reject(new Error(`fury serve exited with ${code} before it was ready:\n${out.slice(-2000)}`)),
    );
  });
  return {
    url,
    proc,
    stop: () =>
      new Promise((r) => {
        proc.once('exit', () => r());
        proc.kill('SIGTERM');
      }),
  };
}
