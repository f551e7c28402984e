// `fury loadtest`: drive a fury server (or one it starts with --spawn) across context lengths and concurrencies.
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoadtest, spawnServer } from '../loadtest/run.js';
import { runMultiTurn } from '../loadtest/multiturn.js';
import { int, num, parse, required, UsageError } from './args.js';
import { DEFAULT_CORPUS, type Command } from './command.js';

const SERVE_FLAGS = [
  'backend',
  'memory-budget',
  'state-cache-host-bytes',
  'kv-prefix-cache',
  'state-checkpoint-tokens',
  'state-cache-dir',
  'state-cache-dir-bytes',
  'max-batch',
  'max-queue',
  'max-model-len',
  'token-budget',
  'prefill-chunk',
  'prefill-alone',
  'weights-dtype',
  'kv-dtype',
  'request-timeout',
  'max-queue-time',
] as const;

export const loadtestCmd: Command = {
  summary: 'load-test a server across context lengths (TTFT, ITL, TPOT, throughput, memory per request)',
  help: `Usage: fury loadtest --url URL --model NAME[,NAME…] [options]
       fury loadtest --spawn --model DIR [--model DIR …] [serve flags] [options]

For each context and concurrency, streaming /v1/completions requests whose prompts are exactly CONTEXT tokens of real
corpus text (random windows, tokenised by the server), recording TTFT, inter-token latency, TPOT and end-to-end time
(p50 / p90 / p99), request and output-token throughput, and errors by status; then one request per context to read
the server's own per-request memory report (usage.memory). Loopback addresses only. Progress on stderr.

Options:
  --url URL              the server (http://127.0.0.1:8080); with --spawn fury starts one on a free loopback port
  --model LIST           model names (with --spawn: checkpoint directories, repeatable)
  --contexts LIST        prompt lengths in tokens (default 256,1024,4096,16384)
  --concurrency LIST     concurrent streams (default 1,8,32)
  --requests N           requests per (context, concurrency) (default 16); or --duration S seconds per cell
  --max-tokens N         tokens generated per request (default 64; ignore_eos)
  --memory-sweep LIST    extra contexts for the memory report (e.g. 1040,1056,1058,1072)
  --capacity             also run autocannon (non-streaming) at the first context for each concurrency
  --data FILE            corpus for the prompts (default data/valid.txt.xz, shipped)
  --out DIR              write loadtest.json, report.md and SVG plots there
  --api-key KEY          sent as a Bearer token
  --max-seconds S        stop issuing requests after this long (default 3600)
  --turns T              multi-turn chat instead: --conversations N (default 8) conversations of T turns, each
                         resending its whole history with its own prompt_cache_key (user messages: --message-chars
                         characters of corpus text, default 200; --think-ms between turns, default 300); reports TTFT
                         per turn and the share of turn-2+ prompt tokens the server restored (multiturn.json / .md, ttft-vs-turn.svg);
                         prompt_cache_key is loadtest-SEED-N, so runs with different --seed are different sessions;
                         --retries N sends a failed turn again up to N times (default 0), counted in the report;
                         each turn records the replica that answered (x-fury-replica) behind a load balancer
  serve flags with --spawn: --backend --memory-budget --max-batch --max-queue --max-model-len --token-budget
                            --prefill-chunk --prefill-alone --weights-dtype --kv-dtype --request-timeout --max-queue-time`,
  async run(argv) {
    const opts: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
      url: { type: 'string' },
      model: { type: 'string', multiple: true },
      contexts: { type: 'string' },
      concurrency: { type: 'string' },
      requests: { type: 'string' },
      duration: { type: 'string' },
      'max-tokens': { type: 'string' },
      'memory-sweep': { type: 'string' },
      capacity: { type: 'boolean' },
      data: { type: 'string' },
      out: { type: 'string' },
      'api-key': { type: 'string' },
      'max-seconds': { type: 'string' },
      spawn: { type: 'boolean' },
      turns: { type: 'string' },
      conversations: { type: 'string' },
      'message-chars': { type: 'string' },
      'think-ms': { type: 'string' },
      seed: { type: 'string' },
      retries: { type: 'string' },
    };
    for (const f of SERVE_FLAGS) opts[f] = { type: 'string' };
    const a = parse('loadtest', argv, opts as never) as Record<string, string | string[] | boolean | undefined>;
    if (a.help) return void console.log(this.help);
    const list = (v: unknown, flag: string, d: number[]) =>
      v === undefined
        ? d
        : String(v)
            .split(',')
            .map((s) => int(s.trim(), flag, 0, 1));
    const models = ((a.model as string[] | undefined) ?? []).flatMap((m) => m.split(','));
    if (!models.length) throw new UsageError('--model is required (see fury loadtest --help)');
    let url = typeof a.url === 'string' ? a.url : '';
    let stop: (() => Promise<void>) | null = null,
      names = models;
    if (a.spawn) {
      const cli = join(dirname(fileURLToPath(import.meta.url)), 'fury.js');
      names = models.map((d) => basename(d.replace(/\/+$/, '')));
      const pass = SERVE_FLAGS.flatMap((f) => (typeof a[f] === 'string' ? [`--${f}`, a[f] as string] : []));
      process.stderr.write(`fury loadtest: starting fury serve ${pass.join(' ')} for ${names.join(', ')}\n`);
      const s = await spawnServer(cli, [...models.flatMap((d, i) => ['--model', `${names[i]}=${d}`]), ...pass]);
      url = s.url;
      stop = s.stop;
    } else if (!url) throw new UsageError('--url is required unless --spawn (see fury loadtest --help)');
    try {
      if (a.turns !== undefined) {
        const report = await runMultiTurn({
          url: url.replace(/\/+$/, ''),
          models: names,
          conversations: int(a.conversations as string | undefined, 'conversations', 8, 1),
          turns: int(a.turns as string, 'turns', 0, 1),
          maxTokens: int(a['max-tokens'] as string | undefined, 'max-tokens', 64, 1),
          messageChars: int(a['message-chars'] as string | undefined, 'message-chars', 200, 1),
          thinkMs: int(a['think-ms'] as string | undefined, 'think-ms', 300, 0),
          data: typeof a.data === 'string' ? a.data : DEFAULT_CORPUS,
          apiKey: typeof a['api-key'] === 'string' ? a['api-key'] : null,
          seed: int(a.seed as string | undefined, 'seed', 0),
          out: typeof a.out === 'string' ? a.out : null,
          retries: int(a.retries as string | undefined, 'retries', 0, 0),
        });
        if (!a.out) console.log(JSON.stringify(report.models));
        else process.stderr.write(`fury loadtest: wrote ${a.out}/multiturn.json, multiturn.md and ttft-vs-turn.svg\n`);
        return;
      }
      const report = await runLoadtest({
        url: url.replace(/\/+$/, ''),
        models: names,
        contexts: list(a.contexts, 'contexts', [256, 1024, 4096, 16384]),
        concurrency: list(a.concurrency, 'concurrency', [1, 8, 32]),
        requests: int(a.requests as string | undefined, 'requests', 16, 1),
        durationS: num(a.duration as string | undefined, 'duration') ?? null,
        maxTokens: int(a['max-tokens'] as string | undefined, 'max-tokens', 64, 1),
        data: typeof a.data === 'string' ? a.data : DEFAULT_CORPUS,
        out: typeof a.out === 'string' ? a.out : null,
        apiKey: typeof a['api-key'] === 'string' ? a['api-key'] : null,
        capacity: a.capacity === true,
        memorySweep: list(a['memory-sweep'], 'memory-sweep', []),
        maxSeconds: num(a['max-seconds'] as string | undefined, 'max-seconds') ?? 3600,
        seed: int(a.seed as string | undefined, 'seed', 0),
      });
      if (!a.out) console.log(JSON.stringify(report));
      else process.stderr.write(`fury loadtest: wrote ${a.out}/loadtest.json, report.md and 3 SVG plots\n`);
    } finally {
      await stop?.();
    }
  },
};
