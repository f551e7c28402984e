// The spec's attention core test vector (spec/2mamba.md §15.3: one head, d = 2, T = 4), and an element-wise check.
import assert from 'node:assert/strict';
import { softplus } from '../../kernels/cpu/conv2.js';
import { maxAbs } from '../helpers.js';

export const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) =>
  assert.ok(
    maxAbs(a, b) <= tol,
    `${what}: max |Δ| ${maxAbs(a, b)} > ${tol}\n got ${Array.from(a)}\nwant ${Array.from(b)}`,
  );

export const V3 = {
  q: [
    [1, 0.5],
    [0, 1],
    [-1, 2],
    [0.5, -0.5],
  ],
  k: [
    [0.5, 1],
    [1, -1],
    [2, 0],
    [-0.5, 1.5],
  ],
  v: [
    [1, 2],
    [-1, 0],
    [0.5, 0.5],
    [3, -2],
  ],
  z: [0, 1, -2, 0.5],
  y2: [
    [1, 2],
    [-0.5761168848, 0.4238831152],
    [-0.4329147734, 0.2460620627],
    [1.6680528727, -1.0491841444],
  ],
  yE: [
    [1, 2],
    [0.0504331132, 1.0504331132],
    [0.6778666385, 1.4424900208],
    [0.6287310585, -0.2257851997],
  ],
  S: [
    [0.597451422, 0.1498988932],
    [-1.3242319853, 1.1238987801],
    [3.2534480898, -2.1605671024],
  ],
  n: [1.0575288087, -0.7338497499, 1.3359848077],
};
export const A3 = V3.z.map((z) => -softplus(z));
