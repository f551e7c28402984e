// The WebGPU tuning knobs (kernels/webgpu/tuning.ts): a bad value stops the process at once with a message naming the
// variable and what it takes; good values load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { phiDim } from '../../kernels/ops.js';
import { M2_BOUNDARY_BYTES, m2BoundaryBytes, m2ScanBlocks, M2_SEGMENT } from '../../kernels/webgpu/tuning.js';

const tuning = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'kernels', 'webgpu', 'tuning.js');
const load = (env: Record<string, string>) =>
  spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(tuning)})`], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });

test('a bad tuning knob fails with a message that names it; good values load', () => {
  for (const [name, value, says] of [
    ['FURY_SKINNY_SHAPE', '3,1,2', 'SG 1, 2, 4, 8 or 16'],
    ['FURY_SKINNY_SHAPE', '4,1', '"SG,NT,U"'],
    ['FURY_SKINNY_MIN_ROWS', '-1', 'non-negative integer'],
    ['FURY_M2_SEGMENT', '1000', 'multiple of 256'],
    ['FURY_M2_BOUNDARY_BYTES', '-5', 'byte count'],
    ['FURY_MATRICES', 'yes', 'on, off or emulated'],
    ['FURY_DAWN_TICK_US', 'fast', 'number of microseconds'],
    ['FURY_READBACK_CHUNK_BYTES', '1001', 'multiple of 4'],
  ]) {
    const r = load({ [name!]: value! });
    assert.notEqual(r.status, 0, `${name}=${value} loaded`);
    assert.match(r.stderr, new RegExp(`${name}[^\\n]*${says!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), r.stderr);
  }
  const ok = load({
    FURY_SKINNY_SHAPE: '8,2,1',
    FURY_SKINNY_MIN_ROWS: '0',
    FURY_M2_SEGMENT: '2048',
    FURY_DAWN_TICK_US: '0',
  });
  assert.equal(ok.status, 0, ok.stderr);
});

test("2Mamba's boundary slots: a step of several segments holds S, n and the scale's blocks per sequence, segment and head where they fit; one segment, or past the limit or a buffer, none", () => {
  const H = 16,
    d = 64,
    slot = (phiDim(d) * d + phiDim(d) + m2ScanBlocks(d)) * 4; // S, n, the scale's blocks
  assert.equal(m2ScanBlocks(d), 33); // 2080 × 64 / 4 vec4 over workgroups of 256 × 4
  assert.equal(m2BoundaryBytes(1, M2_SEGMENT, H, d, Infinity), 0); // one segment: segment after segment
  assert.equal(m2BoundaryBytes(1, 4096, H, d, Infinity), (4096 / M2_SEGMENT) * H * slot);
  assert.equal(m2BoundaryBytes(3, M2_SEGMENT + 1, H, d, Infinity), 3 * 2 * H * slot);
  const S = (n: number) => n * H * phiDim(d) * d * 4; // the limit is on S's bytes
  const most = Math.floor(M2_BOUNDARY_BYTES / S(2)); // sequences of two segments under the limit
  assert.ok(m2BoundaryBytes(most, M2_SEGMENT + 1, H, d, Infinity) > 0);
  assert.equal(m2BoundaryBytes(most + 1, M2_SEGMENT + 1, H, d, Infinity), 0);
  assert.equal(m2BoundaryBytes(1, 4096, H, d, S(4096 / M2_SEGMENT) - 1), 0); // past one buffer
});
