// Shared test helpers: fresh random inputs every run (the seed is printed on failure), temp dirs, tiny models.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { after } from 'node:test';
import { Rng } from '../lib/rng.js';
import { presetSpec } from '../weights/presets.js';
import { writeRandomCheckpoint } from '../weights/init.js';
import type { Arch, ModelSpec } from '../weights/config.js';
import { openModel, type BackendChoice, type OpenModel } from '../engine/open.js';
import type { Backend } from '../kernels/backend.js';
import { maskWords, packSampleParams as sampleParams, SAMPLE_PARAMS, type DeviceSample } from '../kernels/ops.js';

process.env.FURY_QUIET = '1';

/** A fresh random generator; its seed goes into assertion messages so a failure can be replayed. */
export function freshRng(): { rng: Rng; seed: number } {
  const seed = Number(process.env.FURY_TEST_SEED ?? randomInt(2 ** 47));
  return { rng: new Rng(seed), seed };
}

/** Random normal rows, never all zeros. */
export function randRows(rng: Rng, n: number, d: number, std = 1): Float32Array[] {
  return Array.from({ length: n }, () => rng.normals(d, std));
}

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

export async function tempDir(prefix = 'fury-test-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export async function tinyCheckpoint(arch: Arch, seed: number, mutate?: (s: ModelSpec) => void): Promise<string> {
  const dir = await tempDir(`fury-${arch}-`);
  const spec = presetSpec(arch, 'tiny');
  mutate?.(spec);
  await writeRandomCheckpoint(spec, dir, { seed });
  return dir;
}

export async function openTiny(
  arch: Arch,
  seed: number,
  opts: { slots?: number; kvTokens?: number; backend?: BackendChoice } = {},
): Promise<OpenModel> {
  return openModel(await tinyCheckpoint(arch, seed), {
    backend: opts.backend ?? 'cpu',
    slots: opts.slots ?? 4,
    kvTokens: opts.kvTokens ?? 4096,
  });
}

/** max |a − b| / (max |b| + tiny) over all elements. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  if (a.length !== b.length) return Infinity;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / (den + 1e-30);
}

export function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < Math.min(a.length, b.length); i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function argmax(x: ArrayLike<number>, from = 0, to = x.length): number {
  let best = from;
  for (let i = from; i < to; i++) if (x[i]! > x[best]!) best = i;
  return best - from;
}

/** Run the Plan's sample op on a backend: `rows` logit rows, one draw each. */
export async function deviceDraws(be: Backend, logits: Float32Array[], draws: DeviceSample[]): Promise<number[]> {
  const n = logits.length,
    Vn = logits[0]!.length;
  be.create('l', n * Vn, { kind: 'f32', init: Float32Array.from(logits.flatMap((l) => Array.from(l))) });
  const Wm = maskWords(Vn),
    masks = new Int32Array(n * Wm);
  draws.forEach((d, i) => d.mask && masks.set(d.mask, i * Wm));
  be.create('p', SAMPLE_PARAMS * n, { kind: 'i32', init: sampleParams(draws) });
  be.create('m', n * Wm, { kind: 'i32', init: masks });
  be.create('o', n, { kind: 'i32', init: new Int32Array(n).fill(-2) });
  await be.run(
    { ops: [{ op: 'sample', logits: 'l', params: 'p', mask: 'm', out: 'o', vocab: Vn }] },
    { seqs: logits.map((_, i) => ({ slot: i, pos: 0, rows: 1, pages: [] })) },
  );
  return Array.from(await be.read('o'));
}
