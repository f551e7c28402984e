// The rows family (embedding, gathers and sampling): the CPU oracle (kernels/cpu/rows.ts) against the spec,
// and the WebGPU kernels (kernels/webgpu/wgsl/rows.ts) against the CPU on fresh random inputs, outputs poisoned with NaN first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../../kernels/cpu/backend.js';
import { allows, drawKey, packSampleParams as sampleParams, sampleNoise } from '../../kernels/ops.js';
import { freshRng, deviceDraws } from '../helpers.js';
import { gpuHarness } from './gpu-harness.js';

const { gpu, skip } = await gpuHarness();

test(
  'the sample op: GPU == CPU (argmax and seeded Gumbel-max draws), GPU frequencies follow softmax(logits / T)',
  { skip },
  async () => {
    const { rng, seed } = freshRng();
    // 4500 ids: each of the kernel's threads takes two full rounds of 8 and a partial one; some rows hold their
    // largest logit three times (ids 2·i + 5, the same thread's 2·i + 5 + 4096 two rounds later, and 4321 in another
    // thread): greedy takes the lowest id
    const rows = Array.from({ length: 40 }, (_, i) => {
      const row = Float32Array.from(rng.normals(4500, 2));
      if (i % 4 === 1) row[4321] = row[2 * i + 5 + 4096] = row[2 * i + 5] = 50;
      return row;
    });
    for (const temperature of [0, 0.7, 1.3]) {
      const draws = rows.map((_, i) => ({ temperature, seed: seed + i, draw: 3 * i }));
      const want = await deviceDraws(new CpuBackend(), rows, draws),
        got = await deviceDraws(gpu!, rows, draws);
      assert.deepEqual(got, want, `T = ${temperature} (seed ${seed})`);
      if (temperature === 0) rows.forEach((_, i) => i % 4 === 1 && assert.equal(got[i], 2 * i + 5, `row ${i}'s tie`));
    }
    const l = Float32Array.from(rng.normals(6)),
      T = 0.9,
      n = 4000;
    const got = await deviceDraws(
      gpu!,
      Array.from({ length: n }, () => l),
      Array.from({ length: n }, (_, i) => ({ temperature: T, seed, draw: i })),
    );
    const e = Array.from(l, (v) => Math.exp(v / T)),
      z = e.reduce((a, b) => a + b, 0);
    for (let k = 0; k < 6; k++) {
      const p = e[k]! / z,
        freq = got.filter((x) => x === k).length / n;
      assert.ok(
        Math.abs(freq - p) < 4.5 * Math.sqrt((p * (1 - p)) / n) + 1e-9,
        `token ${k}: ${freq} vs ${p} (seed ${seed})`,
      );
    }
  },
);

test(
  'the sample op in near ties of large Gumbel noises: the GPU draws the CPU’s id when their scores differ by 2e-5',
  { skip },
  async () => {
    const { rng, seed } = freshRng();
    const V = 4096,
      T = 0.7,
      gap = 2e-5;
    // per row: two ids with large noises (−log u < 1e-3, where a plain f32 log(u) loses ~1e-4 of the noise), every
    // other id far below; id a's logit set so that its score is the other's ± gap (f64 here, as the CPU samples)
    const rows: Float32Array[] = [],
      draws: { temperature: number; seed: number; draw: number }[] = [],
      winners: number[] = [];
    for (let r = 0; rows.length < 48; r++) {
      const d = { temperature: T, seed: seed + r, draw: r },
        p = sampleParams([d]),
        key = drawKey(p[1]!, p[2]!, p[3]!),
        Tf = new Float32Array(p.buffer)[0]!;
      const large = [];
      for (let i = 0; i < V && large.length < 2; i++) if (sampleNoise(key, i) > 7) large.push(i);
      if (large.length < 2) continue;
      const [a, b] = large as [number, number],
        sign = rng.next() < 0.5 ? 1 : -1,
        row = new Float32Array(V).fill(-1e4);
      row[b] = 0;
      row[a] = Tf * (sampleNoise(key, b) - sampleNoise(key, a) + sign * gap);
      rows.push(row);
      draws.push(d);
      winners.push(sign > 0 ? a : b);
    }
    const want = await deviceDraws(new CpuBackend(), rows, draws),
      got = await deviceDraws(gpu!, rows, draws);
    assert.deepEqual(want, winners, `the CPU's draws (seed ${seed})`);
    assert.deepEqual(got, want, `seed ${seed}`);
  },
);

test(
  'the sample op with masks: GPU == CPU, every draw inside its mask, greedy = the best allowed id, none allowed = -1',
  { skip },
  async () => {
    const { rng, seed } = freshRng();
    const V = 1000,
      Wm = Math.ceil(V / 32);
    const rows = Array.from({ length: 48 }, () => Float32Array.from(rng.normals(V, 2)));
    // masks of a few ids, of about half, of one id, of none, and rows without a mask
    const masks = rows.map((_, i) => {
      if (i % 6 === 5) return undefined;
      const m = new Int32Array(Wm),
        p = [0.01, 0.5, 0.9][i % 3]!;
      for (let id = 0; id < V; id++) if (rng.next() < p) m[id >> 5]! |= 1 << (id & 31);
      if (i % 6 === 3) {
        m.fill(0); // one id
        m[(i * 7) >> 5]! |= 1 << ((i * 7) & 31);
      }
      if (i % 12 === 4) m.fill(0);
      return m;
    });
    const ok = (m: Int32Array | undefined, id: number) => !m || allows(m, id);
    for (const temperature of [0, 0.8]) {
      const draws = rows.map((_, i) => ({ temperature, seed: seed + i, draw: i, mask: masks[i] }));
      const want = await deviceDraws(new CpuBackend(), rows, draws),
        got = await deviceDraws(gpu!, rows, draws);
      assert.deepEqual(got, want, `T = ${temperature} (seed ${seed})`);
      got.forEach((id, i) => {
        const none = masks[i] && masks[i]!.every((w) => w === 0);
        if (none) return assert.equal(id, -1, `row ${i}: an empty mask gives -1`);
        assert.ok(id >= 0 && ok(masks[i], id), `row ${i}: ${id} outside its mask (seed ${seed})`);
        if (temperature === 0) {
          const best = Array.from(rows[i]!.keys())
            .filter((j) => ok(masks[i], j))
            .reduce((a, b) => (rows[i]![b]! > rows[i]![a]! ? b : a));
          assert.equal(id, best, `row ${i}: greedy picks the best allowed id`);
        }
      });
    }
  },
);

/** GPU vs CPU logits over 64 decode steps (fp32 drift of the recurrent state; see the seed noted below). */
