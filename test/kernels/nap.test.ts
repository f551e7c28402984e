// The readbacks' naps (kernels/webgpu/nap.ts): no nap for a shape never seen, most of a seen shape's readback time,
// none under a timer's worth, an oversleep pulling the estimate down, and off when disabled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadNaps } from '../../kernels/webgpu/nap.js';

test('a readback naps for most of what its step shape took before, per shape', () => {
  const n = new ReadNaps(true);
  assert.equal(n.napMs('decode'), 0, 'a shape never seen: no nap');
  n.took('decode', 10);
  assert.equal(n.napMs('decode'), 6, '0.7 × 10 − 1 ms');
  assert.equal(n.napMs('prefill'), 0, 'another shape keeps its own estimate');
  n.took('prefill', 40);
  assert.equal(n.napMs('prefill'), 27);
  assert.equal(n.napMs('decode'), 6);
  n.took('fast', 2.5);
  assert.equal(n.napMs('fast'), 0, 'under a timer’s worth (0.7 × 2.5 − 1 < 1): none');
  // readbacks that find their data as soon as they map (each took its nap): the estimate falls until no nap is taken
  let naps = 0;
  for (let i = 0; i < 40; i++) {
    const ms = n.napMs('decode');
    if (ms > 0) naps++;
    n.took('decode', ms + 0.05);
  }
  assert.equal(n.napMs('decode'), 0, 'oversleeping pulls the nap to none');
  assert.ok(naps > 0 && naps < 40, `naps taken: ${naps}`);
});

test('FURY_READ_NAP=0: no naps', () => {
  const n = new ReadNaps(false);
  n.took('decode', 50);
  assert.equal(n.napMs('decode'), 0);
});
