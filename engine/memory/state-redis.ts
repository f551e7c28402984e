// The network tier of the 2Mamba state cache (--state-cache-redis URL, issue 16): every snapshot a replica takes is
// also written to Redis, so a conversation whose next turn lands on another replica (its home one drained, died or
// full) resumes from its history's state instead of prefilling it all. A snapshot is the same bytes as a disk file
// (snapshot-codec.ts: model identity, layout, checksum, token ids), checked the same way when read back, and its token
// ids are compared in full with the prompt: a wrong or damaged entry is a miss, never a wrong state.
//
// Redis layout, all under `fury:<model identity>:` (standalone Redis; the scripts touch keys they are not given, so
// not Redis Cluster):
//   snap:<prefix key>  the encoded snapshot, with a TTL          lengths  ZSET: token length → last write time
//   lru                ZSET: snapshot key → last use time         sizes    HASH: snapshot key → bytes; total  bytes
// Writes run one Lua script (store, count, drop expired entries, then the least recently used while past the byte
// cap), reads another (the longest snapshot among the prompt's candidate prefixes, refreshing its TTL and recency).
// Redis down or slow is a miss and one log line: commands are not queued while disconnected and time out.
import { Redis } from 'ioredis';
import { decodeSnapshot, encodeSnapshot, type Snapshot, type StateLayout } from './snapshot-codec.js';
import { prefixKeys, sameAt } from './token-keys.js';

const SAVE = `
local key, lru, sizes, total, lengths = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- the time in ms, plus a thousandth per write in the same ms (a counter), so recency never ties
local ttl, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[4]) + (redis.call('INCR', lru .. ':seq') % 1000) / 1000
local sum = tonumber(redis.call('GET', total) or '0')
local function drop(k)
  local n = redis.call('HGET', sizes, k)
  if n then sum = sum - tonumber(n) end
  redis.call('HDEL', sizes, k)
  redis.call('ZREM', lru, k)
  redis.call('DEL', k)
end
drop(key)
redis.call('SET', key, ARGV[1], 'PX', ttl)
redis.call('HSET', sizes, key, string.len(ARGV[1]))
redis.call('ZADD', lru, now, key)
redis.call('ZADD', lengths, now, ARGV[5])
sum = sum + string.len(ARGV[1])
for _, k in ipairs(redis.call('ZRANGEBYSCORE', lru, '-inf', now - ttl)) do drop(k) end
while sum > cap do
  local oldest = redis.call('ZRANGE', lru, 0, 0)
  if #oldest == 0 then break end
  drop(oldest[1])
end
redis.call('ZREMRANGEBYSCORE', lengths, '-inf', now - ttl)
redis.call('SET', total, math.max(sum, 0))
for _, k in ipairs({lru, sizes, total, lengths, lru .. ':seq'}) do redis.call('PEXPIRE', k, 2 * ttl) end
return sum`;

const FETCH = `
local lru = KEYS[#KEYS]
for i = 1, #KEYS - 1 do
  local v = redis.call('GET', KEYS[i])
  if v then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    local now = tonumber(ARGV[2]) + (redis.call('INCR', lru .. ':seq') % 1000) / 1000
    redis.call('ZADD', lru, 'XX', now, KEYS[i])
    return {i, v}
  end
end
return false`;

interface FuryRedis extends Redis {
  furySave(...args: (string | Buffer | number)[]): Promise<number>;
  furyFetchBuffer(...args: (string | number)[]): Promise<[number, Buffer] | null>;
}

export interface StateRedisOptions {
  url: string;
  /** How long a snapshot lives after its last write or read, ms. */
  ttlMs: number;
  /** Bytes of snapshots this model may keep in Redis (the least recently used go first). */
  capacityBytes: number;
  /** A lookup slower than this is a miss, ms. */
  timeoutMs: number;
}

export interface StateRedisStats {
  /** Bytes of this model's snapshots in Redis (as of the last write). */
  bytes: number;
  hits: number;
  misses: number;
  /** Commands that failed or timed out, and snapshots read back that did not validate. */
  errors: number;
  /** Writes skipped because too many bytes were still on their way. */
  dropped: number;
  connected: boolean;
}

/** Most bytes of writes in flight; past it a write is skipped (a later miss), so a slow Redis never grows memory. */
const MAX_PENDING_BYTES = 512 * 2 ** 20;

export class StateRedis {
  /** Lookups and writes on two connections, so a lookup never waits behind megabytes of a write on the socket. */
  private readonly redis: FuryRedis;
  private readonly writer: FuryRedis;
  private readonly ns: string;
  private pending = 0;
  private readonly counters = { bytes: 0, hits: 0, misses: 0, errors: 0, dropped: 0 };
  /** Whether the last command failed: the next failure is not logged again until one succeeds. */
  private failing = false;

  constructor(
    private readonly o: StateRedisOptions,
    private readonly identity: string,
    private readonly layout: StateLayout,
    private readonly log: (line: string) => void,
  ) {
    this.ns = `fury:${identity.slice(0, 16)}:`;
    const connect = (timeoutMs: number) => {
      const r = new Redis(o.url, {
        lazyConnect: true,
        enableOfflineQueue: false, // disconnected: fail at once (a miss), never queue
        commandTimeout: timeoutMs,
        maxRetriesPerRequest: 0,
        connectTimeout: Math.max(1000, o.timeoutMs),
        retryStrategy: (n) => Math.min(200 * n, 2000), // keep trying to reconnect, at most every 2 s
      }) as FuryRedis;
      r.defineCommand('furySave', { numberOfKeys: 5, lua: SAVE });
      r.defineCommand('furyFetch', { lua: FETCH });
      r.on('error', (e: Error) => this.failed(e));
      r.connect().catch((e: Error) => this.failed(e));
      return r;
    };
    this.redis = connect(o.timeoutMs);
    // a write may take longer than a lookup may wait: it is never waited for
    this.writer = connect(Math.max(10_000, 10 * o.timeoutMs));
    this.redis.on('ready', () => {
      if (this.failing || !this.everReady) log(`state cache: redis ${redact(o.url)} connected`);
      this.everReady = true;
      this.failing = false;
    });
  }

  private everReady = false;

  private failed(e: Error): void {
    this.counters.errors++;
    if (!this.failing) this.log(`state cache: redis ${redact(this.o.url)}: ${e.message} (lookups miss meanwhile)`);
    this.failing = true;
  }

  private ok(): void {
    if (this.failing) this.log(`state cache: redis ${redact(this.o.url)} answers again`);
    this.failing = false;
  }

  stats(): StateRedisStats {
    return { ...this.counters, connected: this.redis.status === 'ready' };
  }

  /** Store a snapshot; resolves when written or skipped, never rejects (a failure is a later miss). */
  async save(s: Snapshot): Promise<void> {
    let bytes = s.tokens.byteLength;
    for (const v of s.data.values()) bytes += v.byteLength;
    if (bytes > this.o.capacityBytes || this.writer.status !== 'ready') return;
    if (this.pending + bytes > MAX_PENDING_BYTES) {
      this.counters.dropped++;
      return;
    }
    this.pending += bytes;
    try {
      const value = await encodeSnapshot(this.identity, this.layout, s);
      const n = s.tokens.length,
        key = this.key(prefixKeys(s.tokens, [n])[0]!);
      this.counters.bytes = await this.writer.furySave(
        key,
        this.ns + 'lru',
        this.ns + 'sizes',
        this.ns + 'total',
        this.ns + 'lengths',
        value,
        this.o.ttlMs,
        this.o.capacityBytes,
        Date.now(),
        n,
      );
      this.ok();
    } catch (e) {
      this.failed(e as Error);
    } finally {
      this.pending -= bytes;
    }
  }

  /** The longest snapshot of a proper prefix of `ids` longer than `longerThan` tokens, validated; null on a miss,
   *  an error or a timeout. */
  async fetch(ids: readonly number[], longerThan: number): Promise<Snapshot | null> {
    if (this.redis.status !== 'ready') return null;
    try {
      const now = Date.now();
      const lens = (await this.redis.zrangebyscore(this.ns + 'lengths', now - this.o.ttlMs, '+inf'))
        .map(Number)
        .filter((n) => n > longerThan && n < ids.length)
        .sort((a, b) => a - b);
      if (!lens.length) return this.miss();
      const keys = prefixKeys(ids, lens).map((k) => this.key(k));
      keys.reverse(); // longest first
      const got = await this.redis.furyFetchBuffer(keys.length + 1, ...keys, this.ns + 'lru', this.o.ttlMs, now);
      this.ok();
      if (!got) return this.miss();
      return await this.check(got[1], ids, lens[lens.length - Number(got[0])]!);
    } catch (e) {
      this.failed(e as Error);
      return null;
    }
  }

  /** A snapshot read back, decoded and checked (model, layout, checksum, its length and ids against the prompt's). */
  private async check(buf: Buffer, ids: readonly number[], length: number): Promise<Snapshot | null> {
    try {
      const s = await decodeSnapshot(buf, this.identity, this.layout);
      if (s.tokens.length !== length || !sameAt(s.tokens, ids)) throw new Error('its token ids are not the prompt’s');
      this.counters.hits++;
      return s;
    } catch (e) {
      this.counters.errors++;
      this.log(`state cache: skipped a redis snapshot: ${(e as Error).message}`);
      return this.miss();
    }
  }

  private miss(): null {
    this.counters.misses++;
    return null;
  }

  private key(prefixKey: string): string {
    return `${this.ns}snap:${prefixKey}`;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    this.writer.disconnect();
  }
}

/** A Redis URL without its password, for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'URL';
  }
}
