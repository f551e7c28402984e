// --backend auto: a hardware WebGPU adapter when there is one; otherwise the CPU backend, since a software adapter
// (lavapipe, as in CI) is slower than it on a CPU. --backend webgpu still takes the software adapter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../engine/open.js';

test('auto prefers a hardware adapter, then the CPU backend; webgpu takes whatever adapter exists', async () => {
  const lines: string[] = [];
  const explicit = await createBackend('webgpu', (l) => lines.push(l)).catch(() => null);
  if (!explicit) return void assert.ok(!process.env.CI, 'CI has lavapipe: --backend webgpu must open it');
  const software = (explicit as unknown as { info: { software: boolean; description: string } }).info.software;
  await explicit.destroy();
  const auto = await createBackend('auto', (l) => lines.push(l));
  assert.equal(auto.name, software ? 'cpu' : 'webgpu');
  assert.ok(
    lines.some((l) => (software ? /backend: cpu \(the only WebGPU adapter is software/ : /backend: webgpu on/).test(l)),
    lines.join('\n'),
  );
  await auto.destroy();
});
