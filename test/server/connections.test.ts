// Connections the server does not owe anything to: a client that sends its body too slowly is cut off with 408, and
// connections beyond --max-connections are closed at once, while everyone else is served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { buildApp } from '../../server/app.js';
import { DEFAULT_SERVE_OPTIONS, ServerState, type ServeOptions } from '../../server/state.js';

async function listen(opts: Partial<ServeOptions>) {
  const state = new ServerState({ ...DEFAULT_SERVE_OPTIONS, ...opts });
  state.loading = false;
  const app = buildApp(state);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as { port: number }).port };
}

/** What a raw socket receives until the server closes it (or `ms` pass). */
function readUntilClosed(sock: Socket, ms: number): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    let data = '';
    const t = setTimeout(() => resolve({ data, closed: false }), ms);
    sock.on('data', (d) => (data += d));
    sock.on('close', () => {
      clearTimeout(t);
      resolve({ data, closed: true });
    });
    sock.on('error', () => {});
  });
}

test('a slow body is cut off with 408 after --receive-timeout; a prompt client is still served', async () => {
  const { app, port } = await listen({ receiveTimeout: 1 });
  try {
    const sock = connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(
      'POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"mo',
    );
    const t0 = Date.now();
    const got = await readUntilClosed(sock, 8000);
    assert.ok(got.closed, 'the server closed the slow connection');
    assert.match(got.data, /^HTTP\/1\.1 408/);
    assert.match(got.data, /"code":"request_timeout"/);
    assert.ok(Date.now() - t0 < 6000, `closed after ${Date.now() - t0} ms`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
  } finally {
    await app.close();
  }
});

test('connections beyond --max-connections are closed at once; the ones inside are served', async () => {
  const { app, port } = await listen({ maxConnections: 2 });
  const socks: Socket[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const s = connect(port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      socks.push(s);
    }
    const extra = connect(port, '127.0.0.1');
    socks.push(extra);
    const got = await readUntilClosed(extra, 3000);
    assert.ok(got.closed, 'the third connection was closed');
    socks[0]!.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const first = await new Promise<string>((r) => socks[0]!.once('data', (d) => r(String(d))));
    assert.match(first, /^HTTP\/1\.1 200/);
  } finally {
    for (const s of socks) s.destroy();
    await app.close();
  }
});
