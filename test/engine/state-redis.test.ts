// The Redis tier of the state cache (engine/memory/state-redis.ts) against a real redis-server: a snapshot comes back
// bit for bit for a prompt that extends it; anything else (other ids, a damaged value, another model's entry) is a
// miss; the byte cap and the TTL hold; Redis gone is a quick miss, never an error thrown.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import type { SlotSnapshot } from '../../engine/model/model.js';
import { StateRedis, type StateRedisOptions } from '../../engine/memory/state-redis.js';
import { freshRng } from '../helpers.js';
import { freePort, redisReady, redisServer, requireTool, until, type Proc } from '../deploy/cluster.js';

const LAYOUT: [string, number][] = [
  ['S', 4096],
  ['n', 64],
  ['conv', 96],
];
let redis: Proc, port: number, url: string;
const { rng, seed } = freshRng();

before(async () => {
  requireTool('redis-server');
  port = await freePort();
  url = `redis://127.0.0.1:${port}`;
  redis = redisServer(port);
  await redisReady(redis);
});
after(async () => {
  redis.kill('SIGKILL');
  await redis.exited;
});

function snapshot(tokens: number[]): { tokens: Int32Array; data: SlotSnapshot } {
  const data: SlotSnapshot = new Map();
  for (const [name, n] of LAYOUT)
    data.set(
      name,
      Float32Array.from({ length: n }, () => rng.next() * 2 - 1),
    );
  return { tokens: Int32Array.from(tokens), data };
}

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => (from + i * 7919) % 1000);

async function open(identity: string, o: Partial<StateRedisOptions> = {}): Promise<StateRedis> {
  const r = new StateRedis(
    { url, ttlMs: 60_000, capacityBytes: 2 ** 30, timeoutMs: 500, ...o },
    identity,
    LAYOUT,
    () => {},
  );
  await until(() => r.stats().connected, 5000, 'the tier to connect');
  return r;
}

test(`a saved snapshot comes back bit for bit for a longer prompt; other prompts miss (seed ${seed})`, async () => {
  const r = await open('a'.repeat(64));
  try {
    const s = snapshot(ids(40));
    await r.save(s);
    const got = await r.fetch([...ids(40), 5, 6, 7], 0);
    assert.ok(got, 'a hit');
    assert.deepEqual([...got.tokens], [...s.tokens]);
    for (const [name] of LAYOUT) assert.deepEqual(got.data.get(name), s.data.get(name), name);
    // the snapshot must be a proper prefix: the same 40 ids (nothing left to feed), other ids, or a local one as long
    assert.equal(await r.fetch(ids(40), 0), null);
    assert.equal(await r.fetch([...ids(39), 999, 1, 2], 0), null);
    assert.equal(await r.fetch([...ids(40), 1], 40), null);
    const st = r.stats();
    assert.equal(st.hits, 1);
    assert.ok(st.bytes > 4 * (4096 + 64 + 96), `bytes ${st.bytes}`);
  } finally {
    await r.close();
  }
});

test('a damaged value or another model’s entry is a miss, counted as an error', async () => {
  const a = await open('b'.repeat(64)),
    b = await open('c'.repeat(64));
  const raw = new Redis(url);
  try {
    await a.save(snapshot(ids(30, 3)));
    const [key] = await raw.keys(`fury:${'b'.repeat(16)}:snap:*`);
    assert.ok(key);
    // flip one byte near the end of the payload: the checksum catches it
    const v = (await raw.getBuffer(key))!;
    v[v.length - 10] ^= 0x55;
    await raw.set(key, v, 'KEEPTTL');
    assert.equal(await a.fetch([...ids(30, 3), 1], 0), null);
    assert.equal(a.stats().errors, 1);
    // model b reads its own namespace: a's (restored) entry copied there is refused as another model's
    v[v.length - 10] ^= 0x55;
    await raw.set(key.replace('b'.repeat(16), 'c'.repeat(16)), v);
    await raw.zadd(`fury:${'c'.repeat(16)}:lengths`, Date.now(), '30');
    assert.equal(await b.fetch([...ids(30, 3), 1], 0), null);
    assert.equal(b.stats().errors, 1);
  } finally {
    raw.disconnect();
    await a.close();
    await b.close();
  }
});

test('the byte cap drops the least recently used snapshots; the TTL ends them', async () => {
  const one = 4 * (20 + 4096 + 64 + 96);
  const r = await open('d'.repeat(64), { capacityBytes: Math.floor(3.5 * one), ttlMs: 1500 });
  try {
    for (let k = 0; k < 5; k++) await r.save(snapshot(ids(20, 100 * k)));
    assert.ok(r.stats().bytes <= 3.5 * one, `bytes ${r.stats().bytes}`);
    // the two oldest are gone, the three newest are there
    assert.equal(await r.fetch([...ids(20, 0), 1], 0), null);
    assert.equal(await r.fetch([...ids(20, 100), 1], 0), null);
    for (const k of [2, 3, 4]) assert.ok(await r.fetch([...ids(20, 100 * k), 1], 0), `snapshot ${k}`);
    await new Promise((res) => setTimeout(res, 1700));
    assert.equal(await r.fetch([...ids(20, 400), 1], 0), null, 'expired');
  } finally {
    await r.close();
  }
});

test('Redis gone: lookups miss at once and saves are skipped, nothing throws', async () => {
  const deadPort = await freePort();
  const r = new StateRedis(
    { url: `redis://127.0.0.1:${deadPort}`, ttlMs: 60_000, capacityBytes: 2 ** 30, timeoutMs: 200 },
    'e'.repeat(64),
    LAYOUT,
    () => {},
  );
  try {
    const t0 = performance.now();
    await r.save(snapshot(ids(10)));
    assert.equal(await r.fetch([...ids(10), 1], 0), null);
    assert.ok(performance.now() - t0 < 200, `${performance.now() - t0} ms`);
    assert.equal(r.stats().connected, false);
  } finally {
    await r.close();
  }
});
