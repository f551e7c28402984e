// `fury eval`: held-out loss / perplexity (and optionally passkey retrieval accuracy) of a checkpoint on a corpus file.
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BACKENDS, WEIGHTS_DTYPES, openModel } from '../engine/open.js';
import { chatLoss, heldOutLoss, passkeyAccuracy, tokenStream, type ChatItem } from '../tools/eval.js';
import { readCorpus, readText } from '../lib/corpus.js';
import { int, oneOf, parse, required, UsageError } from './args.js';
import { DEFAULT_CORPUS, type Command } from './command.js';

/** A one-line progress bar on a terminal; on a pipe, a line every 10%. */
export function progress(label: string) {
  const t0 = performance.now();
  let lastDecile = -1;
  return (done: number, total: number, unit = 'tokens') => {
    const f = total ? done / total : 1,
      s = (performance.now() - t0) / 1000;
    const rate = done / Math.max(s, 1e-9),
      eta = rate > 0 ? (total - done) / rate : 0;
    const text =
      `${label} [${'#'.repeat(Math.round(f * 30)).padEnd(30, '.')}] ${(100 * f).toFixed(0).padStart(3)}% ` +
      `${done}/${total} ${unit} · ${rate.toFixed(1)} ${unit}/s · ETA ${eta.toFixed(0)} s`;
    if (process.stderr.isTTY) process.stderr.write(`\r${text}${done >= total ? '\n' : ''}`);
    else if (Math.floor(f * 10) > lastDecile) {
      lastDecile = Math.floor(f * 10);
      process.stderr.write(`${text}\n`);
    }
  };
}

/** The length a checkpoint was trained at: its config's max_position_embeddings. */
async function trainingLength(dir: string): Promise<number> {
  const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { max_position_embeddings?: number };
  if (!cfg.max_position_embeddings) throw new UsageError('--passkey sweep: the config has no max_position_embeddings');
  return cfg.max_position_embeddings;
}

export const evalCmd: Command = {
  summary: 'held-out loss, perplexity and passkey retrieval on a corpus file',
  help: `Usage: fury eval --model DIR [--data FILE.txt[.xz]] [options]

Mean next-token loss and perplexity over non-overlapping windows of the data (documents separated by a line holding
only U+001E, as data/valid.txt.xz; each document is <s> text </s>), with a progress bar on stderr.

Options:
  --model DIR          checkpoint directory
  --data FILE          corpus file, plain or .xz (default data/valid.txt.xz, the shipped held-out split)
  --context N          window length in tokens (default 1024)
  --max-tokens N       evaluate only the first N tokens' windows (default: all)
  --passkey L1,L2,…    also measure passkey retrieval at these prompt lengths (tokens); "sweep": 1×, 2× and 4× the
                       model's training length (config max_position_embeddings)
  --chat FILE          also the loss on the reference answers of a held-out instruction set (JSON lines {"q", "a"},
                       plain or .xz; data/instruct-valid.jsonl.xz is the shipped models'), each asked as one user turn
                       through the model's chat template; --chat-max N the first N items (default 500)
  --trials N           passkey prompts per length (default 20); --seed S their seed (default 0)
  --backend B          auto (default), cpu or webgpu; --weights-dtype D checkpoint (default), f32, f16, bf16
  --json               print one JSON object`,
  async run(argv) {
    const a = parse('eval', argv, {
      model: { type: 'string' },
      data: { type: 'string' },
      context: { type: 'string' },
      'max-tokens': { type: 'string' },
      passkey: { type: 'string' },
      chat: { type: 'string' },
      'chat-max': { type: 'string' },
      trials: { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' },
      json: { type: 'boolean' },
      'weights-dtype': { type: 'string' },
    });
    if (a.help) return void console.log(this.help);
    const dir = required(a.model, 'model', 'eval'),
      data = typeof a.data === 'string' ? a.data : DEFAULT_CORPUS;
    await access(join(dir, 'config.json')).catch(() => {
      throw new UsageError(`--model: ${dir} is not a checkpoint directory (no config.json)`);
    });
    await access(data).catch(() => {
      throw new UsageError(`--data: ${data} does not exist`);
    });
    const context = int(a.context, 'context', 1024, 2);
    const maxTokens = a['max-tokens'] === undefined ? Infinity : int(a['max-tokens'], 'max-tokens', 0, 1);
    const chatFile = typeof a.chat === 'string' ? a.chat : null;
    if (chatFile)
      await access(chatFile).catch(() => {
        throw new UsageError(`--chat: ${chatFile} does not exist`);
      });
    const chatMax = int(a['chat-max'], 'chat-max', 500, 1);
    const sweep = a.passkey === 'sweep',
      trained = sweep ? await trainingLength(dir) : 0;
    const lengths = sweep
      ? [trained, 2 * trained, 4 * trained]
      : typeof a.passkey === 'string'
        ? a.passkey.split(',').map((s) => int(s.trim(), 'passkey', 0, 64))
        : [];
    const trials = int(a.trials, 'trials', 20, 1),
      seed = int(a.seed, 'seed', 0);
    const m = await openModel(dir, {
      backend: oneOf(a.backend, 'backend', BACKENDS, 'auto'),
      slots: 1,
      weightsDType: oneOf(a['weights-dtype'], 'weights-dtype', WEIGHTS_DTYPES, 'checkpoint'),
      kvTokens: Math.max(context, ...lengths.map((l) => l + 16)),
    });
    try {
      const t0 = performance.now();
      const stream = tokenStream(m.tokenizer, await readCorpus(data), m.model.spec.eosIds[0] ?? 2);
      const res = await heldOutLoss(m.pool, stream, context, maxTokens, progress('loss'));
      const passkey: Record<string, number> = {};
      for (const L of lengths) {
        const bar = progress(`passkey ${L}`);
        passkey[L] = await passkeyAccuracy(m.pool, m.tokenizer, stream, L, trials, seed, (d) =>
          bar(d, trials, 'prompts'),
        );
      }
      let chat: { chat_loss: number; chat_tokens: number; chat_items: number } | null = null;
      if (chatFile) {
        const items = (await readText(chatFile))
          .split('\n')
          .filter((l) => l.trim())
          .slice(0, chatMax)
          .map((l) => JSON.parse(l) as ChatItem);
        const bar = progress('chat'),
          r = await chatLoss(
            m.pool,
            m.tokenizer,
            (q) => m.chat.render([{ role: 'user', content: q }], true),
            '<|im_end|>',
            items,
            (d, t) => bar(d, t, 'items'),
          );
        chat = { chat_loss: r.loss, chat_tokens: r.tokens, chat_items: items.length };
      }
      const out = {
        model: m.name,
        arch: m.model.spec.arch,
        data,
        context,
        loss: res.loss,
        perplexity: res.perplexity,
        tokens: res.tokens,
        windows: res.windows,
        ...(lengths.length ? { passkey, passkey_trials: trials } : {}),
        ...(chat ?? {}),
        backend: m.backend.name,
        seconds: (performance.now() - t0) / 1000,
      };
      if (a.json) console.log(JSON.stringify(out));
      else {
        console.log(
          `${m.name} (${out.arch}): loss ${res.loss.toFixed(4)} · perplexity ${res.perplexity.toFixed(2)} · ` +
            `${res.tokens} tokens in ${res.windows} windows of ${context}`,
        );
        for (const L of lengths)
          console.log(`  passkey at ${L} tokens: ${(100 * passkey[L]!).toFixed(0)}% of ${trials}`);
        if (chat)
          console.log(
            `  held-out answers: loss ${chat.chat_loss.toFixed(4)} over ${chat.chat_tokens} tokens of ${chat.chat_items} items`,
          );
      }
    } finally {
      await m.close();
    }
  },
};
