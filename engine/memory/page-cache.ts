// KV prefix caching for softmax and 2Mamba-E (issue 14): full KV pages are kept after their request ends, keyed by
// their token prefix (token-keys.ts), and a new request whose prompt begins with the same pages takes them by
// reference instead of prefilling them. A sequence writes only at its own position and after, so a shared full page is
// never written again. A page's entry holds its 16 token ids and its parent entry: a match compares both, so a hash
// collision is a miss. The cache holds one reference on each page; a page only it holds is evictable, least recently
// used first, whenever a request needs pages.
//
// A *tail* is the exact end of a kept sequence (end of a prompt, of a request, a long prefill's checkpoint): its ids,
// a reference on its partly filled last page, and for 2Mamba-E the conv state of every layer after those ids (host
// RAM, read back without waiting). A prompt that begins with a tail's ids takes the tail's full pages by reference,
// gets a copy of its partial page (copy on write: the next tokens go into the copy) and its conv state, and prefills
// only the rest. 2Mamba-E resumes only from tails (its width-2 conv needs the input before the resume point);
// softmax from whichever of a tail and the whole pages covers more. 2Mamba-E's cumulative decays C_j live in the pages
// (absolute from position 0), so they travel with them.
import type { SlotSnapshot } from '../model/model.js';
import type { Sequence, SequencePool } from './sequences.js';
import type { StateCacheStats } from './state-cache.js';
import { PrefixLengths, prefixKeys, sameAt } from './token-keys.js';

interface Entry {
  key: string;
  page: number;
  tokens: Int32Array;
  parent: Entry | null;
}

interface Tail {
  key: string;
  tokens: Int32Array;
  /** The partly filled last page (a reference the tail holds), null when the ids end on a page boundary. */
  page: number | null;
  /** 2Mamba-E: the conv state after the ids, once read back (null until then: the tail is not used yet). */
  conv: SlotSnapshot | null;
  bytes: number;
}

export class PageCache {
  /** Insertion order is recency order (a match re-inserts what it used). */
  private readonly entries = new Map<string, Entry>();
  private readonly tails = new Map<string, Tail>();
  /** Tail lengths present (lookups try only these). */
  private readonly tailLengths = new PrefixLengths();
  private readonly counters = { queriedTokens: 0, hitTokens: 0, evictions: 0, tailBytes: 0 };
  /** 2Mamba-E: a resume point needs the conv state (slot state) too. */
  private readonly needsConv: boolean;

  /** `hostBytes`: host RAM for the tails' conv states (2Mamba-E). */
  constructor(
    private readonly pool: SequencePool,
    private readonly pageBytes: number,
    private readonly hostBytes = 256 * 2 ** 20,
  ) {
    pool.pageCache = this;
    this.needsConv = pool.model.spec.arch === '2mamba-e';
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

  /** The pages the cache holds a reference on (whole pages and tails' partial pages). */
  heldPages(): number[] {
    return [
      ...[...this.entries.values()].map((e) => e.page),
      ...[...this.tails.values()].flatMap((t) => (t.page === null ? [] : [t.page])),
    ];
  }

  /** Tails a prompt can resume from now (2Mamba-E: those whose conv state has arrived). */
  get readyTails(): number {
    let n = 0;
    for (const t of this.tails.values()) if (!this.needsConv || t.conv) n++;
    return n;
  }

  /** The cache's references on each page it holds (a whole page's entry, and tails ending in it). */
  private refs(): Map<number, number> {
    const r = new Map<number, number>();
    for (const p of this.heldPages()) r.set(p, (r.get(p) ?? 0) + 1);
    return r;
  }

  /** Cached pages no sequence holds: they can be freed for a request. */
  get evictable(): number {
    let n = 0;
    for (const [p, c] of this.refs()) if (this.pool.pages.holders(p) === c) n++;
    return n;
  }

  stats(): StateCacheStats {
    const tailPages = [...this.tails.values()].filter((t) => t.page !== null).length;
    return {
      queriedTokens: this.counters.queriedTokens,
      hitTokens: this.counters.hitTokens,
      evictions: this.counters.evictions,
      entries: this.entries.size + this.tails.size,
      bytes: (this.entries.size + tailPages) * this.pageBytes + this.counters.tailBytes,
      capacityBytes: this.pool.pages.capacity * this.pageBytes + this.hostBytes,
    };
  }

  /** Free up to `n` evictable pages, least recently used first (tails' partial pages, then whole pages); returns how
   *  many were freed. */
  evict(n: number): number {
    const refs = this.refs(),
      order = [
        ...[...this.tails.values()].flatMap((t) => (t.page === null ? [] : [t.page])),
        ...[...this.entries.values()].map((e) => e.page),
      ];
    let freed = 0;
    for (const p of order) {
      if (freed >= n) break;
      if (!refs.has(p) || this.pool.pages.holders(p) !== refs.get(p)) continue;
      // every cached reference on the page goes: the tails ending in it and its whole-page entry
      for (const t of [...this.tails.values()]) if (t.page === p) this.dropTail(t);
      for (const e of [...this.entries.values()])
        if (e.page === p) {
          this.entries.delete(e.key);
          this.pool.pages.release(p);
        }
      refs.delete(p);
      this.counters.evictions++;
      freed++;
    }
    return freed;
  }

  /** Drop the least recently used tails while their host bytes exceed the cap. */
  private trim(): void {
    for (const t of [...this.tails.values()]) {
      if (this.counters.tailBytes <= this.hostBytes) break;
      this.dropTail(t);
      this.counters.evictions++;
    }
  }

  private dropTail(t: Tail): void {
    this.tails.delete(t.key);
    if (t.page !== null) this.pool.pages.release(t.page);
    this.counters.tailBytes -= t.bytes;
    this.tailLengths.add(t.tokens.length, -1);
  }

  /** The longest run of cached whole pages that begins `ids` (at most `pages` of them). */
  private wholePages(ids: readonly number[], pages: number): Entry[] {
    const used: Entry[] = [];
    let parent: Entry | null = null;
    for (const [i, key] of this.pageKeys(ids, pages).entries()) {
      const e = this.entries.get(key);
      if (!e || e.parent !== parent || !sameAt(e.tokens, ids, i * this.P)) break;
      used.push(e);
      parent = e;
    }
    return used;
  }

  /** The longest usable tail whose ids are a proper prefix of `ids`, given the whole pages that begin `ids`. */
  private findTail(ids: readonly number[], whole: number): Tail | null {
    for (const [n, key] of this.tailLengths.candidates(ids, ids.length)) {
      const t = this.tails.get(key);
      if (!t || !sameAt(t.tokens, ids) || Math.floor(n / this.P) > whole) continue;
      if (this.needsConv && !t.conv) continue;
      return t;
    }
    return null;
  }

  /** Give a new sequence (no pages yet) the longest cached beginning of `ids`, within ids.length − 1 tokens (the last
   *  prompt token is always fed: its logits give the first new token); its pos becomes the tokens restored. */
  restore(seq: Sequence, ids: readonly number[]): number {
    this.counters.queriedTokens += ids.length;
    if (seq.pages.length) return 0;
    const P = this.P,
      whole = this.wholePages(ids, Math.floor((ids.length - 1) / P)),
      tail = this.findTail(ids, whole.length);
    const use = (entries: Entry[]) => {
      for (const e of entries) {
        this.pool.pages.retain(e.page);
        seq.pages.push(e.page);
        this.entries.delete(e.key);
        this.entries.set(e.key, e);
      }
    };
    let n = 0;
    if (tail && (this.needsConv || tail.tokens.length > whole.length * P)) {
      n = tail.tokens.length;
      use(whole.slice(0, Math.floor(n / P)));
      if (tail.page !== null) {
        // copy on write: the partial page's first n mod P tokens into a page of this sequence's own (the tail's page
        // held twice meanwhile, so the reservation cannot evict it)
        this.pool.pages.retain(tail.page);
        try {
          this.pool.reserve(seq, n);
          this.pool.model.copyPages([tail.page], [seq.pages[seq.pages.length - 1]!], n % P);
        } finally {
          this.pool.pages.release(tail.page);
        }
      }
      if (tail.conv) this.pool.model.restoreSlot(seq.slot, tail.conv);
      this.tails.delete(tail.key);
      this.tails.set(tail.key, tail);
    } else if (!this.needsConv && whole.length) {
      use(whole);
      n = whole.length * P;
    }
    seq.pos = n;
    this.counters.hitTokens += n;
    return n;
  }

  /** Keep the sequence's full pages and its exact end (a tail) after `tokens`, its first seq.pos fed ids. The conv
   *  state (2Mamba-E) is read back without waiting: the tail is usable once it arrives. */
  save(seq: Sequence, tokens: readonly number[]): void {
    const P = this.P,
      T = tokens.length;
    if (T === 0 || T !== seq.pos) return;
    const keys = this.pageKeys(tokens, Math.floor(T / P));
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
    if (T % P === 0 && !this.needsConv) return; // whole pages say it all
    const key = prefixKeys(tokens, [T])[0]!,
      old = this.tails.get(key);
    if (old && sameAt(old.tokens, tokens)) return;
    if (old) this.dropTail(old);
    const page = T % P ? seq.pages[Math.floor(T / P)]! : null;
    if (page !== null) this.pool.pages.retain(page);
    const tail: Tail = { key, tokens: Int32Array.from(tokens), page, conv: null, bytes: 4 * T };
    this.tails.set(key, tail);
    this.tailLengths.add(T);
    this.counters.tailBytes += tail.bytes;
    this.trim();
    if (this.needsConv)
      void this.pool.model.saveSlot(seq.slot).then(
        (conv) => {
          if (this.tails.get(key) !== tail) return;
          tail.conv = conv;
          let b = 0;
          for (const v of conv.values()) b += v.byteLength;
          tail.bytes += b;
          this.counters.tailBytes += b;
          this.trim();
        },
        () => {}, // not read back: the tail stays unused until evicted
      );
  }
}
