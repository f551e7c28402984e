// Keys for token prefixes, shared by the prefix caches (state-cache.ts, page-cache.ts): two 32-bit hashes over the
// ids, read off at the lengths asked for. A key only finds a candidate; the caches compare the ids themselves, so a
// collision is a miss, never a wrong state.

/** The key of ids[0..len) for each length in `lengths` (ascending), in one pass over the ids. */
export function prefixKeys(ids: ArrayLike<number>, lengths: readonly number[]): string[] {
  const out: string[] = [];
  let a = 0x811c9dc5,
    b = 0x1234567,
    k = 0;
  for (const len of lengths) {
    for (; k < len; k++) {
      const v = ids[k]! + 1;
      a = (Math.imul(a, 0x01000193) ^ v) >>> 0;
      b = (Math.imul(b, 0x5bd1e995) + v) >>> 0;
    }
    out.push(`${len}:${a.toString(36)}:${b.toString(36)}`);
  }
  return out;
}

/** Whether `ids` holds `tokens` from position `at`. */
export function sameAt(tokens: Int32Array, ids: ArrayLike<number>, at = 0): boolean {
  for (let i = 0; i < tokens.length; i++) if (tokens[i] !== ids[at + i]) return false;
  return true;
}

/** The lengths of the prefixes a cache holds, each with how many entries have it: a lookup hashes the ids once and
 *  tries only these lengths. */
export class PrefixLengths {
  private readonly counts = new Map<number, number>();

  add(len: number, d = 1): void {
    const c = (this.counts.get(len) ?? 0) + d;
    if (c > 0) this.counts.set(len, c);
    else this.counts.delete(len);
  }

  /** [length, key] of every held length below `below` that `ids` has, longest first. */
  candidates(ids: ArrayLike<number>, below: number): [number, string][] {
    const lens = [...this.counts.keys()].filter((n) => n < below).sort((x, y) => x - y);
    const keys = prefixKeys(ids, lens);
    return lens.map((n, i) => [n, keys[i]!] as [number, string]).reverse();
  }
}
