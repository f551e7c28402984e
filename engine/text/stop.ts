// Stop strings on streamed text (spec/serving.md §5.2): hold back the longest suffix of the pending text that is a
// prefix of a stop string; on a full match, cut before it and stop. The stop string itself is never emitted
// (unless `includeStop`, vLLM's include_stop_str_in_output).

export class StopStrings {
  private pending = '';
  stopped = false;

  constructor(
    private readonly stops: readonly string[],
    private readonly includeStop = false,
  ) {}

  /** Add text; returns what can be emitted now. */
  push(text: string): string {
    if (this.stopped) return '';
    this.pending += text;
    let cut = -1,
      stop = '';
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) {
        cut = i;
        stop = s;
      }
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.pending.slice(0, cut) + (this.includeStop ? stop : '');
      this.pending = '';
      return out;
    }
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.pending.length); k > hold; k--) {
        if (this.pending.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    const out = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return out;
  }

  /** At the end (no stop matched): release what was held back. */
  flush(): string {
    const out = this.stopped ? '' : this.pending;
    this.pending = '';
    return out;
  }
}
