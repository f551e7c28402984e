// Decode and prefill throughput against the memory-bandwidth floor (shared/spec/kernels.md §6.1):
//   bytes/step = weights read once (the embedding table only for the batch's rows) + per request the state read and
//   written (2Mamba) or the KV read (softmax, 2Mamba-E); floor = bytes / the copy bandwidth measured in the same run.
// A decode step is timed as the server runs it for greedy requests: sampled on the device, token ids read back.
import { performance, PerformanceObserver } from 'node:perf_hooks';
import type { Backend, KvDType, SeqStep } from '../kernels/backend.js';
import type { ModelSpec } from '../weights/config.js';
import { memoryModel, F32_BYTES, KV_BYTES } from '../engine/memory/prices.js';
import { phiDim } from '../kernels/ops.js';
import type { DeviceSample, Model } from '../engine/model/model.js';
import { W } from '../engine/model/llama.js';

export interface BenchRow {
  arch: string;
  batch: number;
  context: number;
  fits: boolean;
  note?: string;
  decode_ms_per_step?: number;
  /** 90th percentile of the intervals between steps' tokens. */
  decode_ms_p90?: number;
  /** JS time to build and encode one step (WebGPU backend). */
  host_encode_ms_per_step?: number;
  /** Kernel launches (dispatches) of one decode step (WebGPU backend). */
  dispatches_per_step?: number;
  /** The timed decode steps whose interval was over twice the median (stalls), and what they took beyond the median
   *  in all, ms: the mean's excess over a steady loop. */
  decode_stall_steps?: number;
  decode_stall_excess_ms?: number;
  /** JS garbage collection during the timed decode steps: total and longest pause, ms. */
  decode_gc_ms?: number;
  decode_gc_max_ms?: number;
  decode_tokens_per_s?: number;
  prefill_tokens?: number;
  prefill_tokens_per_s?: number;
  /** The median pass's steps: ms from the previous step's result (or the pass's start) to this one's. */
  prefill_step_ms?: number[];
  /** Every timed pass in the order run: tokens/s and its steps' ms. */
  prefill_passes?: PrefillPass[];
  /** 2Mamba: restoring a state snapshot into a slot (device-to-device, and from host RAM) against prefilling 64 tokens
   *  (issue 14: a restore must cost less), ms. */
  snapshot_restore_device_ms?: number;
  snapshot_restore_host_ms?: number;
  prefill_64_ms?: number;
  weight_bytes?: number;
  request_bytes?: number;
  bytes_per_step?: number;
  achieved_GBps?: number;
  ceiling_GBps: number;
  floor_ms?: number;
  /** achieved / ceiling = floor / measured time. */
  ratio?: number;
}

/** Bytes a decode step must move per request (f32 state; KV in its dtype, C_j in f32). */
export function requestTrafficBytes(spec: ModelSpec, context: number, kvDtype: KvDType = 'f32'): number {
  const { layers: L, heads: H, headDim: d } = spec,
    D = phiDim(d);
  if (spec.arch === '2mamba') return 2 * L * H * (D * d + D) * F32_BYTES; // S and n read and written
  return context * memoryModel(spec, kvDtype).kvBytesPerToken; // the KV (and C_j) read
}

/** Weight bytes one decode step reads: every weight buffer, the embedding table only for `batch` rows. */
export function weightTrafficBytes(backend: Backend, spec: ModelSpec, batch: number): number {
  const all = backend.bytes('weight');
  const embed = backend.bufferBytes(W.embed);
  return all - embed + (embed / spec.vocab) * batch;
}

export interface BenchOptions {
  steps: number;
  warmupSeconds: number;
  prefillCap: number;
  prefillChunk: number;
  /** Skip configurations whose state + KV would exceed this many bytes. */
  maxPoolBytes: number;
  maxBinding: number;
  ceilingBytesPerSecond: number;
  /** Decode steps in flight (default 1, as the scheduler runs). */
  depth?: number;
  log?: (line: string) => void;
}

/** A greedy draw on the device (decode steps and prefill chunks alike). */
const GREEDY: DeviceSample = { temperature: 0, seed: 0, draw: 0 };

/** Time decode steps as the server runs greedy requests: the device samples, only token ids come back, and each
 *  step is submitted before the previous one's tokens arrive (it embeds the tokens the device sampled); `depth`
 *  steps are in flight (the scheduler keeps 1). Returns the mean and the 90th-percentile interval between tokens. */
async function timeSteps(
  model: Model,
  seqs: SeqStep[],
  ids: number[],
  minSeconds: number,
  minSteps: number,
  depth = 1,
) {
  const greedy = seqs.map(() => GREEDY);
  const gc = gcWatch();
  const inFlight = [model.submitSampled(seqs, ids, greedy)];
  const gaps: number[] = [];
  const t0 = performance.now();
  let last = t0;
  while (gaps.length < minSteps || performance.now() - t0 < minSeconds * 1000) {
    while (inFlight.length <= depth) inFlight.push(model.submitSampled(seqs, null, greedy));
    await inFlight.shift();
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }
  await Promise.all(inFlight);
  const { ms: gcMs, maxMs: gcMaxMs } = gc.stop(t0, last);
  return { ...stepStats(gaps, last - t0), gcMs, gcMaxMs };
}

/** JS garbage-collection pauses from now on (perf_hooks' gc entries): `stop(from, to)` ends the watch and returns the
 *  pauses that began in [from, to), in all and the longest, ms. */
function gcWatch() {
  const gc: { start: number; ms: number }[] = [];
  const take = (entries: readonly { startTime: number; duration: number }[]) =>
    entries.forEach((e) => gc.push({ start: e.startTime, ms: e.duration }));
  const obs = new PerformanceObserver((l) => take(l.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  return {
    stop(from: number, to: number) {
      take(obs.takeRecords());
      obs.disconnect();
      const pauses = gc.filter((g) => g.start >= from && g.start < to).map((g) => g.ms);
      return { ms: pauses.reduce((t, g) => t + g, 0), maxMs: Math.max(0, ...pauses) };
    },
  };
}

/** A decode loop's intervals between steps (`span` ms in all): mean, p90, median, and the stalls — intervals over
 *  twice the median — with what they took beyond the median in all (the mean's excess over a steady loop). */
export function stepStats(gaps: readonly number[], span: number) {
  const s = [...gaps].sort((a, b) => a - b),
    median = s[(s.length - 1) >> 1]!,
    stalls = gaps.filter((g) => g > 2 * median);
  return {
    ms: span / gaps.length,
    p90: s[Math.floor(0.9 * (s.length - 1))]!,
    median,
    stalls: stalls.length,
    stallMs: stalls.reduce((t, g) => t + g - median, 0),
  };
}

/** A decode step of `batch` requests, each at position `context` (its KV pages hold `context` tokens) feeding one new
 *  token; the model's pools are sized for it. */
export function decodeBatch(model: Model, batch: number, context: number, pageSize: number) {
  const kv = model.spec.arch !== '2mamba',
    pagesPerSeq = Math.ceil((context + 1) / pageSize);
  model.resizePools({ slots: batch, kvPages: kv ? batch * pagesPerSeq : 0, pageSize });
  const seqs: SeqStep[] = Array.from({ length: batch }, (_, i) => ({
    slot: i,
    pos: context,
    rows: 1,
    pages: kv ? Array.from({ length: pagesPerSeq }, (_, j) => i * pagesPerSeq + j) : [],
  }));
  return { seqs, ids: seqs.map((_, i) => 3 + i), pagesPerSeq };
}

/** One timed pass over the prefill prompt: tokens/s, and each step's ms from the previous step's result (or the
 *  pass's start) to its own. */
interface PrefillPass {
  tokens_per_s: number;
  step_ms: number[];
  /** JS garbage collection during the pass: total and longest pause, ms. */
  gc_ms: number;
  gc_max_ms: number;
}

/** Timed passes over the prefill prompt; the median is reported. */
const PREFILL_RUNS = 3;

/** 2Mamba: mean ms of restoring a slot's state from another slot (device copy) and from host RAM, and of prefilling 64
 *  tokens, each waited for (5 runs after one untimed). Leaves the pools at 2 slots. */
async function timeRestore(
  model: Model,
  P: number,
): Promise<{ snapshot_restore_device_ms: number; snapshot_restore_host_ms: number; prefill_64_ms: number }> {
  model.resizePools({ slots: 2, kvPages: 0, pageSize: P });
  const [first] = model.slotBuffers()[0]!,
    sync = () => model.backend.read(first, 0, 1);
  const time = async (f: () => Promise<unknown>) => {
    await f();
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await f();
    return (performance.now() - t0) / 5;
  };
  const ids = Array.from({ length: 64 }, (_, k) => 3 + k);
  const prefill_64_ms = await time(() => model.forward([{ slot: 0, pos: 0, rows: 64, pages: [] }], ids));
  const snapshot_restore_device_ms = await time(() => (model.copySlot(0, 1), sync()));
  const snap = await model.saveSlot(0);
  const snapshot_restore_host_ms = await time(() => (model.restoreSlot(1, snap), sync()));
  return { snapshot_restore_device_ms, snapshot_restore_host_ms, prefill_64_ms };
}

export async function benchModel(
  model: Model,
  batches: number[],
  contexts: number[],
  o: BenchOptions,
): Promise<BenchRow[]> {
  const spec = model.spec,
    P = 16,
    rows: BenchRow[] = [];
  const mem = memoryModel(spec, model.kvDtype),
    ceilingGB = o.ceilingBytesPerSecond / 1e9;
  let warmed = false;
  for (const context of contexts) {
    let prefill: { tokens: number; median: PrefillPass; passes: PrefillPass[] } | null = null;
    let restore: Awaited<ReturnType<typeof timeRestore>> | null = null;
    for (const batch of batches) {
      const kvTokens = spec.arch === '2mamba' ? 0 : batch * (context + 1);
      const pool = batch * mem.stateBytes + kvTokens * mem.kvBytesPerToken;
      const perLayerKv = kvTokens * spec.kvHeads * spec.headDim * KV_BYTES[model.kvDtype];
      const perLayerState = batch * spec.heads * phiDim(spec.headDim) * spec.headDim * F32_BYTES;
      const base: BenchRow = { arch: spec.arch, batch, context, fits: false, ceiling_GBps: ceilingGB };
      if (pool > o.maxPoolBytes) {
        rows.push({
          ...base,
          note: `state + KV ${(pool / 2 ** 30).toFixed(1)} GiB > the ${(o.maxPoolBytes / 2 ** 30).toFixed(0)} GiB allowed`,
        });
        continue;
      }
      if (Math.max(perLayerKv, perLayerState) > o.maxBinding) {
        rows.push({
          ...base,
          note: `one layer's ${spec.arch === '2mamba' ? 'state' : 'K'} buffer (${(Math.max(perLayerKv, perLayerState) / 2 ** 30).toFixed(2)} GiB) exceeds the binding limit`,
        });
        continue;
      }
      const { seqs, ids, pagesPerSeq } = decodeBatch(model, batch, context, P);
      if (!warmed) {
        await timeSteps(model, seqs, ids, o.warmupSeconds, 3, o.depth);
        warmed = true;
      } else await timeSteps(model, seqs, ids, 0.3, 3, o.depth);
      const gpu = model.backend as { encodeMs?: number; launches?: number };
      const enc0 = gpu.encodeMs,
        launch0 = gpu.launches;
      const { ms, p90, stalls, stallMs, gcMs, gcMaxMs } = await timeSteps(model, seqs, ids, 0, o.steps, o.depth);
      const stepsRun = o.steps + (o.depth ?? 1),
        encodeMs = enc0 === undefined ? undefined : (gpu.encodeMs! - enc0) / stepsRun,
        launches = launch0 === undefined ? undefined : (gpu.launches! - launch0) / stepsRun;
      if (!prefill) {
        // prefill of one prompt (capped) in scheduler-sized chunks
        const tokens = Math.min(context, o.prefillCap);
        model.resizePools({
          slots: batch,
          kvPages: spec.arch === '2mamba' ? 0 : Math.max(batch * pagesPerSeq, Math.ceil(tokens / P)),
          pageSize: P,
        });
        const pages = spec.arch === '2mamba' ? [] : Array.from({ length: Math.ceil(tokens / P) }, (_, j) => j);
        const chunk = (c: number) => {
          const n = Math.min(o.prefillChunk, tokens - c);
          return model.submitSampled(
            [{ slot: 0, pos: c, rows: n, pages }],
            Array.from({ length: n }, (_, k) => 3 + ((c + k) % 200)),
            [GREEDY],
          );
        };
        // as the server prefills a lone prompt (scheduler.ts, prefillAhead): each chunk is submitted before the
        // previous one's step returns (the last draws the first token on the device)
        const prompt = async () => {
          const done: number[] = [performance.now()],
            timed = (p: Promise<unknown>) => p.then(() => done.push(performance.now()));
          let running = timed(chunk(0));
          for (let c = o.prefillChunk; c < tokens; c += o.prefillChunk) {
            const next = chunk(c);
            await running;
            running = timed(next);
          }
          await running;
          return done.slice(1).map((t, i) => t - done[i]!);
        };
        // untimed passes for warmupSeconds (at least one): the first builds the prefill kernels' pipelines and
        // recordings, and the GPU's clocks take a few hundred ms of prefill to climb back after the decode loop
        // (run63 on an H100: a 4096-row step 84, 89, 36, then 27 ms)
        const warmUntil = performance.now() + o.warmupSeconds * 1000;
        do await prompt();
        while (performance.now() < warmUntil);
        // the median of three passes over the prompt: one pass of a few hundred ms swings with the host
        const passes: PrefillPass[] = [];
        for (let rep = 0; rep < PREFILL_RUNS; rep++) {
          const gc = gcWatch(),
            t0 = performance.now();
          const step_ms = await prompt(),
            t1 = performance.now();
          const { ms: gc_ms, maxMs: gc_max_ms } = gc.stop(t0, t1);
          passes.push({ tokens_per_s: tokens / ((t1 - t0) / 1000), step_ms, gc_ms, gc_max_ms });
        }
        const median = [...passes].sort((x, y) => x.tokens_per_s - y.tokens_per_s)[PREFILL_RUNS >> 1]!;
        prefill = { tokens, median, passes };
        if (spec.arch === '2mamba') restore = await timeRestore(model, P);
      }
      const wBytes = weightTrafficBytes(model.backend, spec, batch),
        rBytes = requestTrafficBytes(spec, context, model.kvDtype);
      const bytes = wBytes + batch * rBytes,
        achieved = bytes / (ms / 1000) / 1e9;
      const row: BenchRow = {
        ...base,
        fits: true,
        decode_ms_per_step: ms,
        decode_ms_p90: p90,
        ...(encodeMs === undefined ? {} : { host_encode_ms_per_step: encodeMs }),
        ...(launches === undefined ? {} : { dispatches_per_step: launches }),
        decode_stall_steps: stalls,
        decode_stall_excess_ms: stallMs,
        decode_gc_ms: gcMs,
        decode_gc_max_ms: gcMaxMs,
        decode_tokens_per_s: (batch * 1000) / ms,
        prefill_tokens: prefill.tokens,
        prefill_tokens_per_s: prefill.median.tokens_per_s,
        prefill_step_ms: prefill.median.step_ms,
        prefill_passes: prefill.passes,
        ...(restore ?? {}),
        weight_bytes: wBytes,
        request_bytes: rBytes,
        bytes_per_step: bytes,
        achieved_GBps: achieved,
        floor_ms: (bytes / o.ceilingBytesPerSecond) * 1000,
        ratio: achieved / ceilingGB,
      };
      rows.push(row);
      o.log?.(
        `${spec.arch} B=${batch} T=${context}: ${ms.toFixed(2)} ms/step (p90 ${p90.toFixed(2)}` +
          `${encodeMs === undefined ? '' : `, encode ${encodeMs.toFixed(2)}`}` +
          `${launches === undefined ? '' : `, ${launches.toFixed(0)} dispatches`}` +
          `${stalls ? `, ${stalls} stalls +${stallMs.toFixed(1)} ms` : ''}${gcMs ? `, GC ${gcMs.toFixed(1)} ms` : ''}), ` +
          `${row.decode_tokens_per_s!.toFixed(0)} tok/s, ` +
          `${achieved.toFixed(0)} GB/s = ${(100 * row.ratio!).toFixed(0)}% of ${ceilingGB.toFixed(0)} GB/s; prefill ${prefill.median.tokens_per_s.toFixed(0)} tok/s` +
          (prefill.median.step_ms.length <= 8
            ? ` (steps ${prefill.median.step_ms.map((t) => t.toFixed(1)).join(', ')} ms)`
            : '') +
          (restore
            ? `; snapshot restore ${restore.snapshot_restore_device_ms.toFixed(2)} ms (device copy), ` +
              `${restore.snapshot_restore_host_ms.toFixed(2)} ms (from host RAM) vs prefilling 64 tokens ${restore.prefill_64_ms.toFixed(2)} ms`
            : ''),
      );
    }
  }
  return rows;
}
