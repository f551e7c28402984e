// The rope family: the CPU oracle (kernels/cpu/rope.ts) against the spec's test vectors; the WebGPU kernel
// (kernels/webgpu/wgsl/rope.ts) is checked against it beside conv2 in conv2.test.ts.
import { test } from 'node:test';
import { ropeHead } from '../../kernels/cpu/rope.js';
import { close } from './vectors.js';

// --- the CPU oracle against the spec (formerly cpu-ops.test.ts)

test('RoPE test vectors: interleaved, half-split and the permutation equivalence (spec §7.3)', () => {
  const theta = Float32Array.from([1, 0.01]);
  const inter = Float32Array.from([1, 2, 3, 4]);
  ropeHead(inter, 0, 1, theta, 4, 'interleaved');
  close(inter, [-1.1426396637, 1.9220755965, 2.9598506679, 4.0297995017], 1e-6, 'interleaved');
  const half = Float32Array.from([1, 2, 3, 4]);
  ropeHead(half, 0, 1, theta, 4, 'half');
  close(half, [-1.9841106486, 1.9599006675, 2.4623779024, 4.0197996683], 1e-6, 'half-split');
  const perm = Float32Array.from([1, 3, 2, 4]);
  ropeHead(perm, 0, 1, theta, 4, 'half');
  close(
    perm,
    [inter[0]!, inter[2]!, inter[1]!, inter[3]!],
    1e-6,
    'half-split of the permuted x = permuted interleaved',
  );
  // position 0 is the identity
  const x = Float32Array.from([0.3, -1, 2, 5]);
  ropeHead(x, 0, 0, theta, 4, 'interleaved');
  close(x, [0.3, -1, 2, 5], 1e-7, 'position 0');
});
