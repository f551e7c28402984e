// The rows family (embedding, gathers and sampling): the CPU oracle (kernels/cpu/rows.ts) against the spec,
// and the WebGPU kernels (kernels/webgpu/wgsl/rows.ts) against the CPU on fresh random inputs, outputs poisoned with NaN first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBackend } from '../../kernels/cpu/backend.js';
import { freshRng, deviceDraws } from '../helpers.js';
import { gpuHarness } from './gpu-harness.js';

const { gpu, skip } = await gpuHarness();

test(
  'the sample op: GPU == CPU (argmax and seeded Gumbel-max draws), GPU frequencies follow softmax(logits / T)',
  { skip },
  async () => {
    const { rng, seed } = freshRng();
    const rows = Array.from({ length: 40 }, () => Float32Array.from(rng.normals(700, 2)));
    for (const temperature of [0, 0.7, 1.3]) {
      const draws = rows.map((_, i) => ({ temperature, seed: seed + i, draw: 3 * i }));
      const want = await deviceDraws(new CpuBackend(), rows, draws),
        got = await deviceDraws(gpu!, rows, draws);
      assert.deepEqual(got, want, `T = ${temperature} (seed ${seed})`);
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

/** GPU vs CPU logits over 64 decode steps (fp32 drift of the recurrent state; see the seed noted below). */
