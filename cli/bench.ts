// `fury bench`: decode and prefill speed of random-weight models against the bandwidth the same run measures.
import { execFileSync } from 'node:child_process';
import { totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { writeFile } from 'node:fs/promises';
import { createBackend, kvDtypeFor, BACKENDS, KV_DTYPES, WEIGHTS_DTYPES } from '../engine/open.js';
import { Model, type WeightsDType } from '../engine/model/model.js';
import { benchModel, decodeBatch, type BenchRow } from '../tools/bench.js';
import { parseArch, type Arch } from '../weights/config.js';
import { PRESETS, presetSpec, type PresetName } from '../weights/presets.js';
import { randomCheckpoint } from '../weights/init.js';
import { parseBytes } from '../lib/bytes.js';
import { int, oneOf, parse, UsageError } from './args.js';
import type { Command } from './command.js';

const list = (v: unknown, flag: string, fallback: number[]) =>
  v === undefined
    ? fallback
    : String(v)
        .split(',')
        .map((s) => int(s.trim(), flag, 0, 1));

function nvidiaClocks(): string | null {
  try {
    return execFileSync(
      'nvidia-smi',
      ['--query-gpu=name,clocks.sm,clocks.mem,clocks.max.sm,power.draw', '--format=csv,noheader'],
      { encoding: 'utf8', timeout: 5000 },
    ).trim();
  } catch {
    return null;
  }
}

/** Bandwidth of a plain JS copy (the CPU backend's ceiling), bytes read + written per second. */
function cpuCopyBandwidth(): number {
  const a = new Float32Array(32 * 2 ** 20),
    b = new Float32Array(a.length);
  b.set(a);
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) b.set(a);
  return (2 * a.byteLength * 10) / ((performance.now() - t0) / 1000);
}

export const benchCmd: Command = {
  summary: 'decode / prefill throughput against the measured memory-bandwidth ceiling',
  help: `Usage: fury bench [--arch 2mamba,2mamba-e,softmax] [--preset small] [--batch 1,8,32] [--context 1024,8192,32768] [options]

Random weights (nothing is written to disk). For each architecture, batch and context: the decode loop's ms/step and
tokens/s (every request at position CONTEXT, one token each, logits read back), prefill tokens/s (one prompt of
min(CONTEXT, --prefill-cap) tokens in chunks of --prefill-chunk, each submitted before the previous one returns, as
\`fury serve\` prefills a lone prompt; the median of three passes after 2 s of untimed ones), the bytes one decode step must move (weights once + per request
the fp32 state read and written, or the KV read), the achieved GB/s, and the device's copy bandwidth measured by the
same run: ratio = achieved / ceiling (1.0 = at the bandwidth floor). Warms up for 2 s first.

Options:
  --arch LIST            architectures (default all three)
  --preset P             tiny, small (default), medium
  --batch LIST           batch sizes (default 1,8,32)
  --context LIST         context lengths (default 1024,8192,32768)
  --steps N              timed decode steps per configuration (default 30)
  --in-flight N          decode steps submitted ahead of the tokens they wait for (default 1, as the server runs)
  --backend B            webgpu (default), cpu or auto
  --weights-dtype D      f16 (default), bf16, f32
  --kv-dtype D           auto (default: f16 on webgpu, f32 on a CPU), f16, f32
  --prefill-cap N        longest prefill measured (default 8192)
  --prefill-chunk N      rows of one prefill step (default 256, as \`fury serve\`)
  --max-memory B         skip configurations whose state + KV exceed this (default 60GiB on WebGPU, 25% of RAM on CPU)
  --profile              also time each kernel on the GPU (timestamp queries, one pass per op) and the JS encode
                         time per step: decode at every batch size and one prefill chunk after the first
                         context's tokens
  --json                 print the result as JSON; --out FILE also writes it`,
  async run(argv) {
    const a = parse('bench', argv, {
      arch: { type: 'string' },
      preset: { type: 'string' },
      batch: { type: 'string' },
      context: { type: 'string' },
      steps: { type: 'string' },
      'in-flight': { type: 'string' },
      backend: { type: 'string' },
      'weights-dtype': { type: 'string' },
      'kv-dtype': { type: 'string' },
      'prefill-cap': { type: 'string' },
      'prefill-chunk': { type: 'string' },
      'max-memory': { type: 'string' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      profile: { type: 'boolean' },
    });
    if (a.help) return void console.log(this.help);
    let archs: Arch[];
    try {
      archs =
        typeof a.arch === 'string'
          ? a.arch.split(',').map((s) => parseArch(s.trim()))
          : ['2mamba', '2mamba-e', 'softmax'];
    } catch (e) {
      throw new UsageError(`--arch: ${(e as Error).message}`);
    }
    const preset = oneOf<PresetName>(a.preset, 'preset', PRESETS, 'small');
    const batches = list(a.batch, 'batch', [1, 8, 32]),
      contexts = list(a.context, 'context', [1024, 8192, 32768]);
    const steps = int(a.steps, 'steps', 30, 1),
      depth = int(a['in-flight'] as string | undefined, 'in-flight', 1, 1),
      backendChoice = oneOf(a.backend, 'backend', BACKENDS, 'webgpu');
    const dtype = oneOf<WeightsDType>(a['weights-dtype'], 'weights-dtype', WEIGHTS_DTYPES, 'f16');
    const kvChoice = oneOf(a['kv-dtype'], 'kv-dtype', KV_DTYPES, 'auto');
    let kvDtype = 'f32';
    const prefillCap = int(a['prefill-cap'], 'prefill-cap', 8192, 1);
    const prefillChunk = int(a['prefill-chunk'], 'prefill-chunk', 256, 1);
    const log = (l: string) => process.stderr.write(`fury bench: ${l}\n`);
    const clocksBefore = nvidiaClocks();
    const rows: BenchRow[] = [];
    const profiles: KernelProfile[] = [];
    let adapter = 'cpu',
      dawn = '',
      ceiling = 0,
      maxBinding = Infinity;
    const result = () => ({
      date: new Date().toISOString(),
      preset,
      weights_dtype: dtype,
      state_dtype: 'f32',
      kv_dtype: kvDtype,
      backend: backendChoice,
      adapter,
      dawn_node: dawn,
      node: process.version,
      clocks_before: clocksBefore,
      clocks_after: nvidiaClocks(),
      ceiling_GBps: ceiling / 1e9,
      rows,
      ...(profiles.length ? { profiles } : {}),
    });
    for (const arch of archs) {
      const backend = await createBackend(backendChoice, log);
      try {
        const gpu =
          backend.name === 'webgpu' ? (backend as import('../kernels/webgpu/backend.js').WebGpuBackend) : null;
        if (gpu) {
          adapter = gpu.info.description;
          dawn = gpu.info.dawnVersion;
          maxBinding = gpu.info.maxStorageBufferBindingSize;
        }
        const spec = presetSpec(arch, preset);
        const t0 = performance.now();
        const model = await Model.load(
          randomCheckpoint(spec, 0, true),
          backend,
          { slots: 1, kvPages: 1, pageSize: 16, kvDtype: (kvDtype = kvDtypeFor(kvChoice, backend)) },
          undefined,
          dtype,
        );
        log(`${arch} ${preset}: weights ready in ${((performance.now() - t0) / 1000).toFixed(1)} s (${dtype})`);
        if (!ceiling) {
          // warm the clocks first, then measure the copy bandwidth this run compares against
          ceiling = gpu ? await gpu.copyBandwidth(2 ** 30, 60) : cpuCopyBandwidth(); // measured after 3 s of load
          log(`copy bandwidth (read + write): ${(ceiling / 1e9).toFixed(0)} GB/s on ${adapter}`);
        }
        const maxPool =
          a['max-memory'] !== undefined ? parseBytes(String(a['max-memory'])) : gpu ? 60 * 2 ** 30 : totalmem() / 4;
        rows.push(
          ...(await benchModel(model, batches, contexts, {
            steps,
            depth,
            warmupSeconds: 2,
            prefillCap,
            prefillChunk,
            maxPoolBytes: maxPool,
            maxBinding,
            ceilingBytesPerSecond: ceiling,
            log,
          })),
        );
        if (a.profile && gpu)
          profiles.push(...(await profileModel(model, gpu, batches, contexts[0]!, prefillChunk, log)));
      } finally {
        await backend.destroy();
      }
      if (typeof a.out === 'string') await writeFile(a.out, JSON.stringify(result(), null, 1) + '\n'); // after each arch
    }
    if (a.json) return void console.log(JSON.stringify(result()));
    console.log(
      `adapter: ${adapter} · dawn.node ${dawn || '-'} · node ${process.version} · clocks: ${clocksBefore ?? 'n/a (no nvidia-smi)'}`,
    );
    console.log(
      `ceiling (copy, read + write): ${(ceiling / 1e9).toFixed(0)} GB/s · weights ${dtype}, state f32, KV ${kvDtype}`,
    );
    console.log(
      '| arch | batch | context | decode ms/step | decode tok/s | prefill tok/s | MB/step | GB/s | % of ceiling |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        r.fits
          ? `| ${r.arch} | ${r.batch} | ${r.context} | ${r.decode_ms_per_step!.toFixed(2)} | ${r.decode_tokens_per_s!.toFixed(0)} | ${r.prefill_tokens_per_s!.toFixed(0)} (${r.prefill_tokens}) | ${(r.bytes_per_step! / 1e6).toFixed(0)} | ${r.achieved_GBps!.toFixed(0)} | ${(100 * r.ratio!).toFixed(0)}% |`
          : `| ${r.arch} | ${r.batch} | ${r.context} | — | — | — | — | — | ${r.note} |`,
      );
    }
  },
};

interface KernelProfile {
  arch: string;
  phase: 'decode' | 'prefill';
  batch: number;
  rows: number;
  context: number;
  encode_ms_per_step: number;
  gpu_ms_per_step: number;
  gpu_ms_per_step_op_passes: number;
  kernels: Record<string, number>;
}

/** GPU time per kernel kind (ms per step) and JS encode time per step: decode at each batch size, then one prefill
 *  chunk (--prefill-chunk rows) of one request at position `context`. */
async function profileModel(
  model: Model,
  gpu: import('../kernels/webgpu/backend.js').WebGpuBackend,
  batches: number[],
  context: number,
  chunk: number,
  log: (l: string) => void,
): Promise<KernelProfile[]> {
  const out: KernelProfile[] = [];
  const spec = model.spec,
    P = 16,
    kv = spec.arch !== '2mamba';
  const profile = async (phase: 'decode' | 'prefill', batch: number, step: () => Promise<unknown>) => {
    for (let i = 0; i < 5; i++) await step();
    // the whole step in its one pass (no per-op pass overhead), then every op in a pass of its own
    gpu.stepTimes = [];
    for (let i = 0; i < 10; i++) await step();
    const stepGpu = gpu.stepTimes.reduce((s, v) => s + v, 0) / gpu.stepTimes.length;
    gpu.stepTimes = null;
    gpu.encodeMs = 0;
    gpu.profile = new Map();
    const n = 10;
    for (let i = 0; i < n; i++) await step();
    const kernels: Record<string, number> = Object.fromEntries(
      [...gpu.profile].map(([k, v]) => [k, v.ms / n] as [string, number]).sort((x, y) => y[1] - x[1]),
    );
    gpu.profile = null;
    const total = Object.values(kernels).reduce((s, v) => s + v, 0);
    out.push({
      arch: spec.arch,
      phase,
      batch,
      rows: phase === 'decode' ? batch : chunk,
      context,
      encode_ms_per_step: gpu.encodeMs / n,
      gpu_ms_per_step: stepGpu,
      gpu_ms_per_step_op_passes: total,
      kernels,
    });
    log(
      `profile ${spec.arch} ${phase} B=${batch}${phase === 'prefill' ? ` (${chunk} rows after ${context} tokens)` : ''} T=${context}: GPU ${stepGpu.toFixed(2)} ms/step in one pass ` +
        `(${total.toFixed(2)} in per-op passes), JS encode ${(gpu.encodeMs / n).toFixed(2)} ms; ` +
        Object.entries(kernels)
          .slice(0, 6)
          .map(([k, v]) => `${k} ${v.toFixed(3)}`)
          .join(', '),
    );
  };
  for (const batch of batches) {
    const { seqs, ids } = decodeBatch(model, batch, context, P);
    const greedy = seqs.map(() => ({ temperature: 0, seed: 0, draw: 0 }));
    await profile('decode', batch, () => model.submitSampled(seqs, ids, greedy));
  }
  const pages = Math.ceil((context + chunk) / P);
  model.resizePools({ slots: 1, kvPages: kv ? pages : 0, pageSize: P });
  const seq = { slot: 0, pos: context, rows: chunk, pages: kv ? Array.from({ length: pages }, (_, j) => j) : [] };
  await profile('prefill', 1, () =>
    model.forward(
      [seq],
      Array.from({ length: chunk }, (_, k) => 3 + (k % 200)),
    ),
  );
  return out;
}
