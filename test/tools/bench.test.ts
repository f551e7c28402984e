// fury bench's arithmetic (tools/bench.ts): the decode loop's step statistics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stepStats } from '../../tools/bench.js';

test('decode step statistics: mean over the span, p90, and the stalls (over twice the median) with their excess', () => {
  const gaps = [1, 1, 1, 1, 5, 1, 1, 1, 1, 3];
  const s = stepStats(gaps, 16);
  assert.equal(s.ms, 1.6);
  assert.equal(s.median, 1);
  assert.equal(s.p90, 3);
  assert.equal(s.stalls, 2, 'the 5 and the 3');
  assert.equal(s.stallMs, 4 + 2);
  // a steady loop has none: an interval at exactly twice the median is not a stall
  assert.deepEqual(stepStats([2, 2, 4, 2], 10).stalls, 0);
});
