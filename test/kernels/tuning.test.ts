// The WebGPU tuning knobs (kernels/webgpu/tuning.ts): a bad value stops the process at once with a message naming the
// variable and what it takes; good values load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
    ['FURY_MATRICES', 'yes', 'on, off or emulated'],
  ]) {
    const r = load({ [name!]: value! });
    assert.notEqual(r.status, 0, `${name}=${value} loaded`);
    assert.match(r.stderr, new RegExp(`${name}[^\\n]*${says!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), r.stderr);
  }
  const ok = load({ FURY_SKINNY_SHAPE: '8,2,1', FURY_SKINNY_MIN_ROWS: '0', FURY_M2_SEGMENT: '2048' });
  assert.equal(ok.status, 0, ok.stderr);
});
