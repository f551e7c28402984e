// `fury init`: a deterministic random checkpoint.
import { access } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { parseArch, type Arch } from '../weights/config.js';
import { PRESETS, presetSpec, type PresetName } from '../weights/presets.js';
import { writeRandomCheckpoint } from '../weights/init.js';
import type { FloatDType } from '../weights/dtype.js';
import { int, oneOf, parse, required, UsageError } from './args.js';
import { log, type Command } from './command.js';

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
      arch: { type: 'string' },
      preset: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      dtype: { type: 'string' },
      tokenizer: { type: 'string' },
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
    if (tokenizer)
      await access(tokenizer).catch(() => {
        throw new UsageError(`--tokenizer: ${tokenizer} does not exist`);
      });
    const t0 = performance.now();
    const tty = process.stderr.isTTY;
    let shown = -1;
    const onProgress = (done: number, total: number) => {
      const pct = Math.floor((100 * done) / total);
      if (tty) process.stderr.write(`\rfury: generating tensors ${done}/${total}`);
      else if (pct >= shown + 25) log(`generating tensors: ${(shown = pct)}%`);
    };
    await writeRandomCheckpoint(presetSpec(arch, preset), out, { seed, dtype, tokenizer, onProgress });
    if (tty) process.stderr.write('\n');
    log(
      `wrote ${arch} ${preset} (seed ${seed}, ${dtype}) to ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  },
};
