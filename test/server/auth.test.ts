// Who may call: the API key (any case of the Bearer scheme, compared in constant time) and the Host allow-list that
// keeps a keyless loopback server out of reach of DNS rebinding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp } from '../../server/app.js';
import { hostName, keyMatches } from '../../server/plugins/auth.js';
import { DEFAULT_SERVE_OPTIONS, ServerState, type ServeOptions } from '../../server/state.js';

function app(opts: Partial<ServeOptions>) {
  const state = new ServerState({ ...DEFAULT_SERVE_OPTIONS, ...opts });
  state.loading = false;
  return buildApp(state);
}

test('the API key: the Bearer scheme in any case; a wrong or missing key is a 401', async () => {
  const a = app({ apiKey: 'sekret' });
  const get = (authorization?: string) =>
    a.inject({ method: 'GET', url: '/v1/models', headers: authorization ? { authorization } : {} });
  assert.equal((await get('Bearer sekret')).statusCode, 200);
  assert.equal((await get('bearer sekret')).statusCode, 200);
  assert.equal((await get('BEARER  sekret')).statusCode, 200);
  for (const bad of [undefined, 'Bearer sekret2', 'Bearer sekre', 'Basic sekret', 'sekret']) {
    const r = await get(bad);
    assert.equal(r.statusCode, 401, String(bad));
    assert.equal(r.json().error.code, 'invalid_api_key');
  }
  assert.equal(keyMatches('Bearer x', 'x'), true);
  assert.equal(keyMatches('Bearer xx', 'x'), false);
  assert.equal((await a.inject({ method: 'GET', url: '/health' })).statusCode, 200, '/health stays public');
});

test('allowed hosts: a keyless loopback server answers only loopback Host names', async () => {
  const a = app({ allowedHosts: ['localhost', '127.0.0.1', '[::1]'] });
  const get = (host: string) => a.inject({ method: 'GET', url: '/v1/models', headers: { host } });
  for (const ok of ['localhost:8080', '127.0.0.1:9000', '[::1]:8080', 'LOCALHOST'])
    assert.equal((await get(ok)).statusCode, 200, ok);
  const r = await get('attacker.example:8080');
  assert.equal(r.statusCode, 403);
  assert.equal(r.json().error.code, 'host_not_allowed');
  assert.match(r.json().error.message, /--api-key|--allowed-hosts/);
  assert.equal(hostName('[::1]:80'), '[::1]');
  assert.equal(hostName('Example.COM:1'), 'example.com');
  // without a list, any Host is answered
  assert.equal(
    (await app({}).inject({ method: 'GET', url: '/v1/models', headers: { host: 'x.example' } })).statusCode,
    200,
  );
});
