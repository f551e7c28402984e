// Every command in the README's ```sh blocks runs as written, in order, from the repository root (issue 13: the first
// run works on a fresh clone). Servers (`npm start`, `fury serve`) are started in the background, waited for on
// /health, used by the commands after them in their block, then stopped with SIGTERM (exit 0 expected). A command no
// rule below covers fails the test, so a new README command must say here how it is checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PORT = 8080;

/** The README's shell commands in order (backslash continuations joined), with the block each came from. */
export function readmeCommands(text: string): { block: number; cmd: string }[] {
  const out: { block: number; cmd: string }[] = [];
  let block = 0,
    inside = false,
    pending = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) {
      inside = !inside && line.trim() === '```sh';
      if (inside) block++;
      continue;
    }
    if (!inside || !line.trim()) continue;
    pending += line.endsWith('\\') ? line.slice(0, -1) : line;
    if (!line.endsWith('\\')) {
      out.push({ block, cmd: pending.trim() });
      pending = '';
    }
  }
  return out;
}

type How = { run: 'plain' } | { run: 'server' } | { run: 'with-start' } | { skip: string };

/** How each README command is checked: the first matching rule. */
const RULES: [RegExp, How][] = [
  [/^npm ci && npm start/, { run: 'server' }], // npm ci ran before the tests (CI runs it first): the test starts the server
  [/^npm test\b/, { skip: 'this test runs inside npm test' }],
  [/# on a GPU host/, { skip: 'needs an NVIDIA GPU host (docs/gpu-host.md)' }],
  [/^npx fury serve\b/, { run: 'server' }],
  [/^bash deploy\/local-cluster\.sh$/, { run: 'server' }], // the balancer answers /health on 8080
  [/^npx fury loadtest --url /, { run: 'with-start' }],
  [/^(npx fury|curl) /, { run: 'plain' }],
];

const how = (cmd: string): How | undefined => RULES.find(([re]) => re.test(cmd))?.[1];

function sh(cmd: string, detached = false): ChildProcess {
  return spawn('bash', ['-o', 'pipefail', '-c', cmd], { cwd: ROOT, detached, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function run(cmd: string, timeoutMs = 600_000): Promise<void> {
  const p = sh(cmd);
  let out = '';
  p.stdout!.on('data', (d) => (out = (out + d).slice(-4000)));
  p.stderr!.on('data', (d) => (out = (out + d).slice(-4000)));
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  clearTimeout(timer);
  assert.equal(code, 0, `README command failed (exit ${code}): ${cmd}\n${out}`);
}

async function startServer(cmd: string): Promise<{ stop(): Promise<void> }> {
  const taken = await fetch(`http://127.0.0.1:${PORT}/health`).then(
    () => true,
    () => false,
  );
  assert.ok(!taken, `port ${PORT} is already in use: stop what listens there to run the README's commands`);
  const p = sh(`exec ${cmd.replace(/^npm ci && /, '')}`, true);
  let out = '';
  p.stdout!.on('data', (d) => (out = (out + d).slice(-4000)));
  p.stderr!.on('data', (d) => (out = (out + d).slice(-4000)));
  let exited: number | null | undefined;
  const exit = new Promise<{ code: number | null; signal: string | null }>((r) =>
    p.on('exit', (code, signal) => r({ code: (exited = code), signal })),
  );
  const end = Date.now() + 180_000;
  for (;;) {
    assert.equal(exited, undefined, `README server exited (${exited}): ${cmd}\n${out}`);
    const ok = await fetch(`http://127.0.0.1:${PORT}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    assert.ok(Date.now() < end, `README server not healthy after 180 s: ${cmd}\n${out}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    stop: async () => {
      // SIGTERM to the process group, as a terminal's Ctrl-C or an orchestrator reaches it: npm start exits with the
      // server's code (npm forwards the signal too: the server counts the two as one); npx dies of the signal while
      // the server drains and closes its port on its own
      if (exited === undefined) process.kill(-p.pid!, 'SIGTERM');
      const { code, signal } = await exit;
      const stopped = async () =>
        fetch(`http://127.0.0.1:${PORT}/health`).then(
          () => false,
          () => true,
        );
      for (let i = 0; i < 120 && !(await stopped()); i++) await new Promise((r) => setTimeout(r, 250));
      const closed = await stopped();
      try {
        process.kill(-p.pid!, 'SIGKILL'); // anything of the group left behind
      } catch {
        // none: the group is gone
      }
      assert.ok(code === 0 || signal === 'SIGTERM', `README server: exit ${code} ${signal} on SIGTERM: ${cmd}\n${out}`);
      assert.ok(closed, `README server still answers after SIGTERM: ${cmd}\n${out}`);
    },
  };
}

const commands = readmeCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'));

test('every README command is covered by a rule of this test', () => {
  assert.ok(commands.length >= 10, `${commands.length} commands found`);
  assert.deepEqual(
    commands.filter((c) => !how(c.cmd)).map((c) => c.cmd),
    [],
  );
});

test('the README commands run as written on this checkout', { timeout: 1_800_000 }, async (t) => {
  // the paths the README's own commands write
  await Promise.all(
    ['/tmp/tiny-2mamba', '/tmp/small-softmax', '/tmp/lt'].map((d) => rm(d, { recursive: true, force: true })),
  );
  let server: { stop(): Promise<void> } | null = null,
    serverBlock = 0;
  try {
    for (const { block, cmd } of commands) {
      const h = how(cmd)!;
      if (server && block !== serverBlock) {
        await server.stop();
        server = null;
      }
      if ('skip' in h) {
        t.diagnostic(`skipped (${h.skip}): ${cmd}`);
        continue;
      }
      t.diagnostic(`running: ${cmd}`);
      if (h.run === 'server') {
        server = await startServer(cmd);
        serverBlock = block;
      } else if (h.run === 'with-start') {
        const s = await startServer('npm start');
        try {
          await run(cmd);
        } finally {
          await s.stop();
        }
      } else await run(cmd);
    }
  } finally {
    await server?.stop();
    await rm('/tmp/small-softmax', { recursive: true, force: true }); // 550 MB of bf16 weights
  }
});
