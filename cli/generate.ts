// `fury generate`: one prompt, streamed to stdout.
import { access } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { BACKENDS, WEIGHTS_DTYPES } from '../engine/open.js';
import { Engine } from '../engine/engine.js';
import { DEFAULT_PREFILL_CHUNK } from '../engine/generate.js';
import { runGeneration } from '../engine/output.js';
import { samplingParams } from '../engine/sampler.js';
import { int, num, oneOf, parse, required, UsageError } from './args.js';
import { log, type Command } from './command.js';

const GENERATE_OPTIONS = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-ids': { type: 'string' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  seed: { type: 'string' },
  backend: { type: 'string' },
  arch: { type: 'string' },
  json: { type: 'boolean' },
  'ignore-eos': { type: 'boolean' },
  'weights-dtype': { type: 'string' },
} as const;

export const generateCmd: Command = {
  summary: 'generate text from a prompt',
  help: `Usage: fury generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [options]

Streams the generated text to stdout; the timing line (tokens/s) goes to stderr at the end.

Options:
  --model DIR          checkpoint directory (config.json, model.safetensors, tokenizer.json)
  --prompt TEXT        prompt text (encoded with the tokenizer's special tokens, e.g. BOS)
  --prompt-ids LIST    comma-separated token ids, used as they are (no BOS added)
  --max-tokens N       tokens to generate (default 32)
  --temperature T      0 = greedy (default 0), up to 2
  --top-k K, --top-p P, --min-p P, --seed S
                       sampling controls; the same seed gives the same tokens
  --ignore-eos         keep generating past the end-of-sequence token
  --backend B          auto (default: WebGPU when an adapter exists, else CPU), cpu or webgpu
  --weights-dtype D    checkpoint (default: keep the checkpoint's), f32, f16 or bf16
  --arch A             override the checkpoint's attention_type (2mamba or 2mamba-e share their tensors)
  --json               print one JSON object {prompt_ids, ids, text, finish_reason, ...} instead of streaming`,
  async run(argv) {
    const a = parse('generate', argv, GENERATE_OPTIONS);
    if (a.help) return void console.log(this.help);
    const dir = required(a.model, 'model', 'generate');
    if (a.prompt !== undefined && a['prompt-ids'] !== undefined)
      throw new UsageError('give --prompt or --prompt-ids, not both');
    if (a.prompt === undefined && a['prompt-ids'] === undefined)
      throw new UsageError('--prompt or --prompt-ids is required (see fury generate --help)');
    const maxTokens = int(a['max-tokens'], 'max-tokens', 32);
    const backend = oneOf(a.backend, 'backend', BACKENDS, 'auto');
    let promptIds: number[] | null = null;
    if (typeof a['prompt-ids'] === 'string') {
      const parts = a['prompt-ids'].split(',').map((s) => s.trim());
      if (!parts.every((s) => /^\d+$/.test(s)))
        throw new UsageError(
          `--prompt-ids must be comma-separated non-negative integers, got ${JSON.stringify(a['prompt-ids'])}`,
        );
      promptIds = parts.map(Number);
    }
    await access(join(dir, 'config.json')).catch(() => {
      throw new UsageError(`--model: ${dir} is not a checkpoint directory (no config.json)`);
    });
    const sampling = samplingParams({
      temperature: num(a.temperature, 'temperature') ?? 0,
      top_k: num(a['top-k'], 'top-k'),
      top_p: num(a['top-p'], 'top-p'),
      min_p: num(a['min-p'], 'min-p'),
      seed: a.seed === undefined ? null : int(a.seed, 'seed', 0, -Number.MAX_SAFE_INTEGER),
    });
    // one request: a pool of one slot and the KV it needs (the prompt's length estimated before tokenising)
    const tokens = (promptIds?.length ?? (typeof a.prompt === 'string' ? a.prompt.length * 4 + 8 : 0)) + maxTokens;
    const engine = await Engine.open(
      dir,
      basename(dir),
      {
        backend,
        arch: typeof a.arch === 'string' ? a.arch : undefined,
        weightsDType: oneOf(a['weights-dtype'], 'weights-dtype', WEIGHTS_DTYPES, 'checkpoint'),
        maxBatch: 1,
        maxQueue: 1,
        memoryBudget: null,
        maxModelLen: tokens,
        tokenBudget: DEFAULT_PREFILL_CHUNK,
        prefillChunk: DEFAULT_PREFILL_CHUNK,
      },
      (msg) => {
        if (!a.json && process.stderr.isTTY) process.stderr.write(`\rfury: ${msg}`);
      },
    );
    if (!a.json && process.stderr.isTTY) process.stderr.write('\n');
    try {
      const ids = promptIds ?? engine.tokenizer.encode(a.prompt as string);
      const spec = engine.spec;
      const bad = ids.find((id) => id >= spec.vocab);
      if (bad !== undefined)
        throw new UsageError(`--prompt-ids: token id ${bad} is outside the vocabulary (0 … ${spec.vocab - 1})`);
      if (ids.length + maxTokens > spec.maxPositions && spec.arch !== '2mamba') {
        throw new UsageError(
          `prompt (${ids.length} tokens) + --max-tokens ${maxTokens} exceeds the model's context of ${spec.maxPositions}`,
        );
      }
      const req = {
        n: 1,
        sampling,
        stop: [],
        includeStopStr: false,
        stopTokenIds: [],
        ignoreEos: a['ignore-eos'] === true,
        minTokens: 0,
        logprobs: null,
      };
      const [r] = await runGeneration(
        engine,
        req,
        [ids],
        maxTokens,
        { requestId: 'cli', signal: new AbortController().signal },
        {
          onDelta: (_i, text) => {
            if (!a.json) process.stdout.write(text);
          },
        },
      );
      const { text, ids: out, end: finish, timings: t } = r!;
      const prefillTps = t.time_to_first_token_ms ? ids.length / (t.time_to_first_token_ms / 1000) : 0;
      if (a.json) {
        console.log(
          JSON.stringify({
            prompt_ids: ids,
            ids: out,
            text,
            finish_reason: finish,
            backend: engine.backend.name,
            arch: spec.arch,
            prefill_tokens_per_s: prefillTps,
            decode_tokens_per_s: t.tokens_per_second,
          }),
        );
      } else {
        process.stdout.write('\n');
        log(
          `${out.length} tokens (${finish}) · prefill ${ids.length} tokens at ${prefillTps.toFixed(1)} tokens/s · ` +
            `decode ${t.tokens_per_second.toFixed(1)} tokens/s · ${engine.backend.name} backend`,
        );
      }
    } finally {
      await engine.close();
    }
  },
};
