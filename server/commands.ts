// `fury init`, `fury generate` and `fury start`.
import { access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArch, type Arch } from '../weights/config.js';
import { PRESETS, presetSpec, type PresetName } from '../weights/presets.js';
import { writeRandomCheckpoint } from '../weights/init.js';
import type { FloatDType } from '../weights/dtype.js';
import { BACKENDS, WEIGHTS_DTYPES, openModel } from '../engine/open.js';
import { generate, type FinishReason } from '../engine/generate.js';
import { IncrementalDetokenizer } from '../engine/detokenizer.js';
import { SamplingParamError } from '../engine/sampler.js';
import { int, num, oneOf, parse, required, UsageError } from './args.js';

export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<void>;
}

const log = (line: string) => process.stderr.write(`fury: ${line}\n`);

export const init: Command = {
  summary: 'write a deterministic random checkpoint',
  help: `Usage: fury init --arch 2mamba|2mamba-e|softmax --preset tiny|small|medium --out DIR [options]

Writes config.json, model.safetensors, tokenizer.json and tokenizer_config.json. The same arch, preset, seed and
dtype always give the same bytes. The format is the paper's, so the checkpoint also loads in its PyTorch code.

Options:
  --arch A          2mamba, 2mamba-e or softmax (the paper's attention_type strings are accepted too)
  --preset P        tiny (hidden 128, 2 heads of 64, 2 layers, MLP 256, vocab 512), small, medium (paper sizes)
  --out DIR         output directory (created if missing)
  --seed N          random seed (default 0)
  --dtype D         f32 (default), f16 or bf16
  --tokenizer FILE  ship this tokenizer.json (and the tokenizer_config.json beside it) instead of the
                    byte-level default`,
  async run(argv) {
    const a = parse('init', argv, {
      arch: { type: 'string' }, preset: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' },
      dtype: { type: 'string' }, tokenizer: { type: 'string' },
    });
    if (a.help) return void console.log(this.help);
    let arch: Arch;
    try {
      arch = parseArch(required(a.arch, 'arch', 'init'));
    } catch (e) {
      throw new UsageError(`--arch: ${(e as Error).message}`);
    }
    const preset = oneOf<PresetName>(required(a.preset, 'preset', 'init'), 'preset', PRESETS, 'tiny');
    const out = required(a.out, 'out', 'init');
    const seed = int(a.seed, 'seed', 0);
    const dtype = oneOf(a.dtype, 'dtype', ['f32', 'f16', 'bf16'], 'f32').toUpperCase() as FloatDType;
    const tokenizer = typeof a.tokenizer === 'string' ? a.tokenizer : undefined;
    if (tokenizer) await access(tokenizer).catch(() => { throw new UsageError(`--tokenizer: ${tokenizer} does not exist`); });
    const t0 = performance.now();
    await writeRandomCheckpoint(presetSpec(arch, preset), out, { seed, dtype, tokenizer });
    log(`wrote ${arch} ${preset} (seed ${seed}, ${dtype}) to ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  },
};

const GENERATE_OPTIONS = {
  model: { type: 'string' }, prompt: { type: 'string' }, 'prompt-ids': { type: 'string' }, 'max-tokens': { type: 'string' },
  temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, 'min-p': { type: 'string' },
  seed: { type: 'string' }, backend: { type: 'string' }, arch: { type: 'string' }, json: { type: 'boolean' },
  'ignore-eos': { type: 'boolean' }, 'weights-dtype': { type: 'string' },
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
    if (a.prompt !== undefined && a['prompt-ids'] !== undefined) throw new UsageError('give --prompt or --prompt-ids, not both');
    if (a.prompt === undefined && a['prompt-ids'] === undefined) throw new UsageError('--prompt or --prompt-ids is required (see fury generate --help)');
    const maxTokens = int(a['max-tokens'], 'max-tokens', 32);
    const backend = oneOf(a.backend, 'backend', BACKENDS, 'auto');
    let promptIds: number[] | null = null;
    if (typeof a['prompt-ids'] === 'string') {
      const parts = a['prompt-ids'].split(',').map((s) => s.trim());
      if (!parts.every((s) => /^\d+$/.test(s))) throw new UsageError(`--prompt-ids must be comma-separated non-negative integers, got ${JSON.stringify(a['prompt-ids'])}`);
      promptIds = parts.map(Number);
    }
    await access(join(dir, 'config.json')).catch(() => { throw new UsageError(`--model: ${dir} is not a checkpoint directory (no config.json)`); });
    const sampling = {
      temperature: num(a.temperature, 'temperature') ?? 0, top_k: num(a['top-k'], 'top-k'), top_p: num(a['top-p'], 'top-p'),
      min_p: num(a['min-p'], 'min-p'), seed: a.seed === undefined ? null : int(a.seed, 'seed', 0, -Number.MAX_SAFE_INTEGER),
    };
    const m = await openModel(dir, {
      backend, slots: 1, arch: typeof a.arch === 'string' ? a.arch : undefined,
      weightsDType: oneOf(a['weights-dtype'], 'weights-dtype', WEIGHTS_DTYPES, 'checkpoint'),
      kvTokens: (promptIds?.length ?? (typeof a.prompt === 'string' ? a.prompt.length * 4 + 8 : 0)) + maxTokens,
      onProgress: (msg) => { if (!a.json && process.stderr.isTTY) process.stderr.write(`\rfury: ${msg}`); },
    });
    if (!a.json && process.stderr.isTTY) process.stderr.write('\n');
    try {
      const ids = promptIds ?? m.tokenizer.encode(a.prompt as string);
      const spec = m.model.spec;
      const bad = ids.find((id) => id >= spec.vocab);
      if (bad !== undefined) throw new UsageError(`--prompt-ids: token id ${bad} is outside the vocabulary (0 … ${spec.vocab - 1})`);
      if (ids.length + maxTokens > spec.maxPositions && spec.arch !== '2mamba') {
        throw new UsageError(`prompt (${ids.length} tokens) + --max-tokens ${maxTokens} exceeds the model's context of ${spec.maxPositions}`);
      }
      const detok = new IncrementalDetokenizer(m.tokenizer, ids);
      const out: number[] = [];
      let text = '';
      const t0 = performance.now();
      let tFirst = 0;
      const it = generate(m.pool, ids, { maxTokens, sampling, ignoreEos: a['ignore-eos'] === true });
      let finish: FinishReason;
      for (;;) {
        const r = await it.next();
        if (r.done) { finish = r.value; break; }
        if (!out.length) tFirst = performance.now();
        out.push(r.value.id);
        const piece = detok.push(r.value.id);
        text += piece;
        if (!a.json) process.stdout.write(piece);
      }
      const tail = detok.flush();
      text += tail;
      const t1 = performance.now();
      const decodeTps = out.length > 1 ? (out.length - 1) / ((t1 - tFirst) / 1000) : 0;
      const prefillTps = ids.length / ((tFirst - t0) / 1000 || Infinity);
      if (a.json) {
        console.log(JSON.stringify({
          prompt_ids: ids, ids: out, text, finish_reason: finish, backend: m.backend.name, arch: spec.arch,
          prefill_tokens_per_s: prefillTps, decode_tokens_per_s: decodeTps,
        }));
      } else {
        process.stdout.write(tail + '\n');
        log(`${out.length} tokens (${finish}) · prefill ${ids.length} tokens at ${prefillTps.toFixed(1)} tokens/s · ` +
            `decode ${decodeTps.toFixed(1)} tokens/s · ${m.backend.name} backend`);
      }
    } finally {
      await m.close();
    }
  },
};

/** The shipped default model, relative to the package root (where npm start runs). */
export const DEFAULT_MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'fury-2mamba-tiny');

export const start: Command = {
  summary: 'what `npm start` runs: serve the default model on 127.0.0.1:8080',
  help: `Usage: fury start [serve options]

Serves the shipped default model, models/fury-2mamba-tiny (a 7.5M-parameter 2Mamba trained on the project's
corpus), as "fury-2mamba-tiny". Options are those of fury serve; --model replaces the default.`,
  async run(argv) {
    if (argv.includes('--help') || argv.includes('-h')) return void console.log(this.help);
    const { runServe } = await import('./serve.js');
    await runServe(argv, { models: [`fury-2mamba-tiny=${DEFAULT_MODEL}`] });
  },
};

/** Errors a user can fix from the command line: one line, exit code 2. */
export function isUsageProblem(e: unknown): boolean {
  const name = (e as Error)?.name;
  return e instanceof UsageError || e instanceof SamplingParamError ||
    ['CheckpointError', 'SafetensorsError', 'ConfigError', 'ChatTemplateError', 'WebGpuUnavailableError'].includes(name) ||
    (e as NodeJS.ErrnoException)?.code === 'ENOENT';
}
