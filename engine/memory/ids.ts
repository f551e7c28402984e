// Pools of per-request memory: fixed-size state slots and fixed-size KV pages. Ids only; the buffers live in
// the backend, sized by the model. Slot and page accounting is the one place request memory is counted.

export class PoolExhausted extends Error {
  constructor(what: string) {
    super(what);
    this.name = 'PoolExhausted';
  }
}

/** A free list of integer ids 0 … capacity−1 (lowest id first, so allocation is deterministic), each id counted by
 *  its holders: `acquire` takes a free one (one holder), `retain` adds a holder (KV pages shared by the prefix cache
 *  and the sequences that reuse them), `release` drops one and frees the id with its last holder. */
export class IdPool {
  private free: number[];
  private refs = new Map<number, number>();

  constructor(
    readonly capacity: number,
    private readonly what: string,
  ) {
    this.free = Array.from({ length: capacity }, (_, i) => capacity - 1 - i);
  }

  get available(): number {
    return this.free.length;
  }

  get inUse(): number {
    return this.refs.size;
  }

  /** Holders of an id (0: free). */
  holders(id: number): number {
    return this.refs.get(id) ?? 0;
  }

  acquire(): number {
    const id = this.free.pop();
    if (id === undefined) throw new PoolExhausted(`no free ${this.what} (all ${this.capacity} in use)`);
    this.refs.set(id, 1);
    return id;
  }

  acquireMany(n: number): number[] {
    if (n > this.free.length)
      throw new PoolExhausted(`${n} ${this.what}(s) requested, ${this.free.length} free of ${this.capacity}`);
    return Array.from({ length: n }, () => this.acquire());
  }

  retain(id: number): void {
    const n = this.refs.get(id);
    if (!n) throw new Error(`${this.what} ${id} is not in use`);
    this.refs.set(id, n + 1);
  }

  release(id: number): void {
    const n = this.refs.get(id);
    if (!n) throw new Error(`${this.what} ${id} is not in use`);
    if (n > 1) return void this.refs.set(id, n - 1);
    this.refs.delete(id);
    this.free.push(id);
    this.free.sort((a, b) => b - a);
  }
}
