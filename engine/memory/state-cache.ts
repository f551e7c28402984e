// 2Mamba state snapshots (issue 14): the whole history of a sequence is its fixed-size state (S, n and the conv state
// of every layer), so a request whose prompt begins with tokens another request already processed starts from a copy
// of that state and prefills only the rest. A snapshot is keyed by its exact token ids (a prefix hash finds candidates,
// the ids are compared in full, so a hash collision is a miss, never a wrong state). Two tiers: state slots no request
// holds (device memory already inside the budget: a snapshot is a device-to-device copy, and a request that needs the
// slot demotes it to host RAM first), and host RAM, LRU under a byte cap (and, attached, a directory: state-disk.ts).
import type { SlotSnapshot } from '../model/model.js';
import type { Sequence, SequencePool } from './sequences.js';
import type { StateDisk } from './state-disk.js';
import type { StateRedis, StateRedisStats } from './state-redis.js';
import { PrefixLengths, prefixKeys, sameAt } from './token-keys.js';

interface Entry {
  tokens: Int32Array;
  data: SlotSnapshot;
  bytes: number;
}

export interface StateCacheStats {
  /** Prompt tokens looked up, and those found in a snapshot (vLLM's prefix_cache_queries / prefix_cache_hits). */
  queriedTokens: number;
  hitTokens: number;
  /** Snapshots held, in every tier (device slots included). */
  entries: number;
  /** Host bytes. */
  bytes: number;
  /** Snapshots held in state slots no request uses, and their bytes (device memory inside the budget). */
  deviceEntries?: number;
  deviceBytes?: number;
  /** Bytes of snapshot files in the attached directory. */
  diskBytes?: number;
  capacityBytes: number;
  evictions: number;
  /** The Redis tier, when one is attached. */
  redis?: StateRedisStats;
}

export class StateCache {
  /** Insertion order is recency order: a hit re-inserts its entry. */
  private readonly entries = new Map<string, Entry>();
  /** Snapshots in free state slots of the serving pool, least recently used first. */
  private readonly device = new Map<string, { tokens: Int32Array; slot: number }>();
  private bound: SequencePool | null = null;
  /** Snapshot lengths present (lookups try only these). */
  private readonly lengths = new PrefixLengths();
  private readonly counters = { queriedTokens: 0, hitTokens: 0, evictions: 0, bytes: 0 };

  /** The disk tier, when one is attached: every snapshot is also written there. */
  private disk: StateDisk | null = null;
  /** The Redis tier, when one is attached: every snapshot is also written there, and a prompt with no local snapshot
   *  of its history looks there first (fetchRemote). */
  private remote: StateRedis | null = null;

  /** `pool`: the pool serving now (an engine that restarts loads a new one: host snapshots stay valid for it, device
   *  ones are dropped with the old pool). `useDevice`: keep snapshots in free state slots first. `minHostTokens`:
   *  the fewest tokens a snapshot must cover to be read back from the device (to host RAM, a file or Redis): shorter
   *  ones cost more to move than to prefill again (defaultMinHostTokens). */
  constructor(
    private readonly pool: () => SequencePool,
    readonly capacityBytes: number,
    private readonly useDevice = true,
    readonly minHostTokens = 0,
  ) {}

  /** Whether a snapshot of `tokens` tokens may be read back from the device (host RAM, a file, Redis). A checkpoint
   *  may only where reading back costs nothing (minHostTokens 0: a CPU backend's slots are host memory). */
  private worthReadingBack(tokens: number, checkpoint = false): boolean {
    return tokens >= this.minHostTokens && !(checkpoint && this.minHostTokens > 0);
  }

  /** The serving pool, with this cache as its slot holder. */
  private bind(): SequencePool {
    const p = this.pool();
    if (p !== this.bound) {
      for (const e of this.device.values()) this.lengths.add(e.tokens.length, -1);
      this.device.clear();
      this.bound = p;
      p.slotCache = this;
    }
    return p;
  }

  /** Write the snapshots held in device slots to the attached directory (at shutdown: host ones are there already). */
  async flush(): Promise<void> {
    const disk = this.disk;
    if (!disk || this.bound !== this.pool()) return;
    const model = this.bound.model;
    for (const e of [...this.device.values()])
      if (this.worthReadingBack(e.tokens.length))
        await disk.save({ tokens: e.tokens, data: await model.saveSlot(e.slot) });
  }

  /** State slots holding snapshots (free for any request that needs one). */
  get held(): number {
    return this.bound === this.pool() ? this.device.size : 0;
  }

  /** Give back `n` slots: their snapshots move to host RAM (the copy is ordered before the slot's next use). */
  evict(n: number): number {
    const pool = this.bind();
    let freed = 0;
    for (const [key, e] of this.device) {
      if (freed >= n) break;
      this.device.delete(key);
      this.lengths.add(e.tokens.length, -1);
      if (!this.worthReadingBack(e.tokens.length)) {
        pool.slots.release(e.slot); // cheaper to prefill again than to read back
        freed++;
        continue;
      }
      void pool.model.saveSlot(e.slot).then(
        (data) => this.insert(key, e.tokens, data, true, false), // Redis got it when it was taken
        () => {},
      );
      pool.slots.release(e.slot);
      freed++;
    }
    return freed;
  }

  /** Write every new snapshot to `disk` too, and read back (newest first, up to this tier's size) what it holds from
   *  earlier runs; resolves with how many were read back. */
  async attach(disk: StateDisk): Promise<number> {
    this.disk = disk;
    let n = 0;
    for await (const s of disk.load(this.capacityBytes)) {
      this.insert(prefixKeys(s.tokens, [s.tokens.length])[0]!, s.tokens, s.data, false);
      n++;
    }
    return n;
  }

  /** Write every new snapshot (device ones too) to Redis as well. */
  attachRemote(remote: StateRedis): void {
    this.remote = remote;
  }

  /** Before a request is queued: when Redis holds a longer snapshot of the prompt's history than this replica, bring
   *  it into host RAM (restore() then finds it). Never rejects; resolves with the tokens it brought (0: none). */
  async fetchRemote(ids: readonly number[]): Promise<number> {
    if (!this.remote || this.capacityBytes <= 0) return 0;
    const s = await this.remote.fetch(ids, this.find(ids)?.n ?? 0);
    if (!s) return 0;
    this.insert(prefixKeys(s.tokens, [s.tokens.length])[0]!, s.tokens, s.data, false);
    return s.tokens.length;
  }

  stats(): StateCacheStats {
    return {
      ...this.counters,
      entries: this.entries.size + this.device.size,
      deviceEntries: this.device.size,
      deviceBytes:
        this.bound === this.pool()
          ? this.device.size * this.bound.model.slotBuffers().reduce((s, [, n]) => s + 4 * n, 0)
          : 0,
      diskBytes: this.disk?.bytes ?? 0,
      capacityBytes: this.capacityBytes,
      ...(this.remote ? { redis: this.remote.stats() } : {}),
    };
  }

  /**
   * Restore the longest snapshot whose tokens are a proper prefix of `ids` into the sequence's slot (its position
   * becomes that length) and return the length; 0 when none. At least the last prompt token is always left to feed:
   * its logits give the first new token.
   */
  restore(seq: Sequence, ids: readonly number[]): number {
    const pool = this.bind();
    this.counters.queriedTokens += ids.length;
    const hit = this.find(ids);
    if (!hit) return 0;
    const { n, key, d, e } = hit;
    if (d) {
      this.device.delete(key);
      this.device.set(key, d);
      pool.model.copySlot(d.slot, seq.slot);
    } else {
      this.entries.delete(key);
      this.entries.set(key, e!);
      pool.model.restoreSlot(seq.slot, e!.data);
    }
    seq.pos = n;
    this.counters.hitTokens += n;
    return n;
  }

  /** The longest snapshot held (a device slot first, then host RAM) of a proper prefix of `ids`. */
  private find(ids: readonly number[]) {
    this.bind();
    for (const [n, key] of this.lengths.candidates(ids, ids.length)) {
      const d = this.device.get(key),
        e = this.entries.get(key);
      if (d && sameAt(d.tokens, ids)) return { n, key, d };
      if (e && sameAt(e.tokens, ids)) return { n, key, e };
    }
    return null;
  }

  /** Snapshot the sequence's state after `tokens` (its first seq.pos fed ids). The copy is ordered now, before any
   *  later step; it is stored when it arrives, so the step loop never waits for it. A `checkpoint` (the middle of a
   *  long prefill) on a GPU takes a free state slot or nothing: reading it back would hold the prefill up (its copy
   *  into host memory runs on this thread: 173 MB, ~70 ms for the small preset, while 4096 tokens prefill in ~110 ms
   *  on an H100; a 32k prompt's time to first token went from 1.0 to 1.5–1.7 s, docs/bench/ttft-h100-2026-11-26). */
  save(seq: Sequence, tokens: readonly number[], shared = true, checkpoint = false): void {
    const n = tokens.length;
    if (n === 0 || n !== seq.pos || this.capacityBytes <= 0) return;
    const pool = this.bind(),
      key = prefixKeys(tokens, [n])[0]!;
    const have = this.device.get(key) ?? this.entries.get(key);
    if (have && sameAt(have.tokens, tokens)) return;
    if (this.useDevice && pool.slots.available > 0) {
      const slot = pool.slots.acquire(),
        ids = Int32Array.from(tokens);
      pool.model.copySlot(seq.slot, slot);
      this.device.set(key, { tokens: ids, slot });
      this.lengths.add(n);
      // other replicas cannot read a device slot: Redis gets a host copy (read back without waiting)
      const remote = shared && this.worthReadingBack(n, checkpoint) ? this.remote : null;
      if (remote)
        void pool.model.saveSlot(seq.slot).then(
          (data) => remote.save({ tokens: ids, data }),
          () => {},
        );
      return;
    }
    if (!this.worthReadingBack(n, checkpoint)) return;
    void pool.model.saveSlot(seq.slot).then(
      (data) => this.insert(key, Int32Array.from(tokens), data, true, shared),
      () => {}, // a failed read is a snapshot not taken; the engine reports the failure through its step loop
    );
  }

  /** `persist`: also write it to the disk tier; `share`: and to Redis. */
  private insert(key: string, tokens: Int32Array, data: SlotSnapshot, persist: boolean, share = false): void {
    let bytes = tokens.byteLength;
    for (const v of data.values()) bytes += v.byteLength;
    if (persist && this.disk) void this.disk.save({ tokens, data }).catch(() => {}); // not written: a later miss
    if (share && this.remote) void this.remote.save({ tokens, data });
    if (bytes > this.capacityBytes) return;
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    this.entries.set(key, { tokens, data, bytes });
    this.lengths.add(tokens.length);
    this.counters.bytes += bytes;
    for (const [k, e] of this.entries) {
      if (this.counters.bytes <= this.capacityBytes) break;
      this.remove(k, e);
      this.counters.evictions++;
    }
  }

  private remove(key: string, e: Entry): void {
    this.entries.delete(key);
    this.counters.bytes -= e.bytes;
    this.lengths.add(e.tokens.length, -1);
  }
}

/** Tokens a snapshot must cover before it is worth reading back from a GPU. With prefill on FMAs, one per 256 KiB of
 *  state: on an H200 (docs/bench/snapshot-restore-h200-2026-11-26) moving the small preset's 173 MB state between host
 *  and device cost ~69 ms, what prefilling ~1,000 tokens did then, and a snapshot may be restored more than once (662
 *  for the small preset). With prefill on tensor cores, one per 16 KiB (10,578): on an H100 the restore from host took
 *  145–191 ms against a 512-token prompt prefilled at 80k tokens/s, long ones at ~150k (docs/perf.md, "A real server
 *  under 32 streams"): ~12–29k tokens, and the read-back itself ~70 ms of copying on the host. A CPU backend's
 *  "device" is host memory (a copy costs little next to its prefill): 0. */
export const defaultMinHostTokens = (stateBytes: number, backend: { name: string; fastPrefill?: boolean }) =>
  backend.name === 'webgpu' ? Math.ceil(stateBytes / (backend.fastPrefill ? 16384 : 262144)) : 0;
