// KV prefix caching for softmax (issue 14): full KV pages are kept after their request ends, keyed by a hash chain
// over their tokens, and a new request whose prompt begins with the same pages takes them by reference instead of
// prefilling them. Only full pages are shared, and a sequence writes only at its own position and after, so a shared
// page is never written again (no copy on write). A page's entry holds its 16 token ids and its parent entry: a match
// compares both, so a hash collision is a miss. The cache holds one reference on each page; a page only it holds is
// evictable, least recently used first, whenever a request needs pages.
import type { Sequence, SequencePool } from './sequences.js';
import type { StateCacheStats } from './state-cache.js';

interface Entry {
  key: string;
  page: number;
  tokens: Int32Array;
  parent: Entry | null;
}

/** The key of a page after its parent's: two 32-bit hashes chained over the page's ids. */
function chainKey(parent: string, ids: ArrayLike<number>, from: number, n: number): string {
  let a = 0x811c9dc5,
    b = 0x1234567;
  for (let i = 0; i < parent.length; i++) {
    a = Math.imul(a ^ parent.charCodeAt(i), 0x01000193) >>> 0;
    b = (Math.imul(b, 31) + parent.charCodeAt(i)) >>> 0;
  }
  for (let i = from; i < from + n; i++) {
    a = Math.imul(a ^ (ids[i]! + 1), 0x01000193) >>> 0;
    b = (Math.imul(b, 0x5bd1e995) + ids[i]! + 1) >>> 0;
  }
  return `${a.toString(36)}:${b.toString(36)}`;
}

export class PageCache {
  /** Insertion order is recency order (a match re-inserts what it used). */
  private readonly entries = new Map<string, Entry>();
  private readonly counters = { queriedTokens: 0, hitTokens: 0, evictions: 0 };

  constructor(
    private readonly pool: SequencePool,
    private readonly pageBytes: number,
  ) {
    pool.pageCache = this;
  }

  private get P(): number {
    return this.pool.pageSize;
  }

  /** Cached pages no sequence holds: they can be freed for a request. */
  get evictable(): number {
    let n = 0;
    for (const e of this.entries.values()) if (this.pool.pages.holders(e.page) === 1) n++;
    return n;
  }

  stats(): StateCacheStats {
    return {
      ...this.counters,
      entries: this.entries.size,
      bytes: this.entries.size * this.pageBytes,
      capacityBytes: this.pool.pages.capacity * this.pageBytes,
    };
  }

  /** Free up to `n` evictable pages, least recently used first; returns how many were freed. */
  evict(n: number): number {
    let freed = 0;
    for (const e of [...this.entries.values()]) {
      if (freed >= n) break;
      if (this.pool.pages.holders(e.page) !== 1) continue;
      this.entries.delete(e.key);
      this.pool.pages.release(e.page);
      this.counters.evictions++;
      freed++;
    }
    return freed;
  }

  /** Give a new sequence (no pages yet) the cached pages that begin `ids`, whole pages within ids.length − 1 tokens
   *  (the last prompt token is always fed: its logits give the first new token); its pos becomes their tokens. */
  restore(seq: Sequence, ids: readonly number[]): number {
    this.counters.queriedTokens += ids.length;
    const P = this.P,
      used: Entry[] = [];
    let parent: Entry | null = null;
    for (let i = 0; (i + 1) * P <= ids.length - 1; i++) {
      const e = this.entries.get(chainKey(parent?.key ?? '', ids, i * P, P));
      if (!e || e.parent !== parent || !e.tokens.every((t, k) => t === ids[i * P + k])) break;
      used.push(e);
      parent = e;
    }
    if (!used.length || seq.pages.length) return 0;
    for (const e of used) {
      this.pool.pages.retain(e.page);
      seq.pages.push(e.page);
      this.entries.delete(e.key);
      this.entries.set(e.key, e);
    }
    seq.pos = used.length * P;
    this.counters.hitTokens += seq.pos;
    return seq.pos;
  }

  /** Keep the sequence's full pages (its first seq.pos fed ids are `tokens`) for later prompts. */
  save(seq: Sequence, tokens: readonly number[]): void {
    const P = this.P;
    let parent: Entry | null = null;
    for (let i = 0; (i + 1) * P <= Math.min(seq.pos, tokens.length); i++) {
      const key = chainKey(parent?.key ?? '', tokens, i * P, P);
      let e = this.entries.get(key);
      if (e && (e.parent !== parent || !e.tokens.every((t, k) => t === tokens[i * P + k]))) return; // a collision
      if (!e) {
        e = { key, page: seq.pages[i]!, tokens: Int32Array.from(tokens.slice(i * P, (i + 1) * P)), parent };
        this.pool.pages.retain(e.page);
        this.entries.set(key, e);
      }
      parent = e;
    }
  }
}
