// KV prefix caching for softmax (issue 14): full KV pages are kept after their request ends, keyed by their token
// prefix (token-keys.ts), and a new request whose prompt begins with the same pages takes them by reference instead of
// prefilling them. Only full pages are shared, and a sequence writes only at its own position and after, so a shared
// page is never written again (no copy on write). A page's entry holds its 16 token ids and its parent entry: a match
// compares both, so a hash collision is a miss. The cache holds one reference on each page; a page only it holds is
// evictable, least recently used first, whenever a request needs pages.
import type { Sequence, SequencePool } from './sequences.js';
import type { StateCacheStats } from './state-cache.js';
import { prefixKeys, sameAt } from './token-keys.js';

interface Entry {
  key: string;
  page: number;
  tokens: Int32Array;
  parent: Entry | null;
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

  /** The keys of the first `pages` whole pages of `ids` (each the key of the prefix that page ends). */
  private pageKeys(ids: ArrayLike<number>, pages: number): string[] {
    return prefixKeys(
      ids,
      Array.from({ length: pages }, (_, i) => (i + 1) * this.P),
    );
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
    const keys = this.pageKeys(ids, Math.floor((ids.length - 1) / P));
    let parent: Entry | null = null;
    for (const [i, key] of keys.entries()) {
      const e = this.entries.get(key);
      if (!e || e.parent !== parent || !sameAt(e.tokens, ids, i * P)) break;
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
    const P = this.P,
      keys = this.pageKeys(tokens, Math.floor(Math.min(seq.pos, tokens.length) / P));
    let parent: Entry | null = null;
    for (const [i, key] of keys.entries()) {
      let e = this.entries.get(key);
      if (e && (e.parent !== parent || !sameAt(e.tokens, tokens, i * P))) return; // a collision
      if (!e) {
        e = { key, page: seq.pages[i]!, tokens: Int32Array.from(tokens.slice(i * P, (i + 1) * P)), parent };
        this.pool.pages.retain(e.page);
        this.entries.set(key, e);
      }
      parent = e;
    }
  }
}
