// Pools of per-request memory: fixed-size state slots and fixed-size KV pages. Ids only; the buffers live in
// the backend, sized by the model. Slot and page accounting is the one place request memory is counted.

export class PoolExhausted extends Error {
  constructor(what: string) {
    super(what);
    this.name = 'PoolExhausted';
  }
}

/** A free list of integer ids 0 … capacity−1 (lowest id first, so allocation is deterministic). */
export class IdPool {
  private free: number[];
  private used = new Set<number>();

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
    return this.used.size;
  }

  acquire(): number {
    const id = this.free.pop();
    if (id === undefined) throw new PoolExhausted(`no free ${this.what} (all ${this.capacity} in use)`);
    this.used.add(id);
    return id;
  }

  acquireMany(n: number): number[] {
    if (n > this.free.length)
      throw new PoolExhausted(`${n} ${this.what}(s) requested, ${this.free.length} free of ${this.capacity}`);
    return Array.from({ length: n }, () => this.acquire());
  }

  release(id: number): void {
    if (!this.used.delete(id)) throw new Error(`${this.what} ${id} is not in use`);
    this.free.push(id);
    this.free.sort((a, b) => b - a);
  }
}
