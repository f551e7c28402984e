// Incremental detokenisation for streaming (spec/serving.md §5.2): the prefix/read-offset method. Text is
// emitted only once it is stable: never a broken UTF-8 character (U+FFFD at the end), never a lost leading space.
import type { TextTokenizer } from './tokenizer.js';

/** Prompt tokens kept as left context so the first generated token decodes with its leading space. */
export const DETOK_CONTEXT = 5;

export class IncrementalDetokenizer {
  private ids: number[];
  private prefixOffset = 0;
  private readOffset: number;

  constructor(
    private readonly tok: TextTokenizer,
    promptIds: readonly number[] = [],
  ) {
    this.ids = promptIds.slice(-DETOK_CONTEXT);
    this.readOffset = this.ids.length;
  }

  /** Add one token; returns the newly stable text ('' while a character is incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.tok.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tok.decode(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length && !full.endsWith('\uFFFD')) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return full.slice(prefix.length);
    }
    return '';
  }

  /** At the end: whatever is still held back (a dangling U+FFFD is emitted as is). */
  flush(): string {
    const prefix = this.tok.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tok.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.length > prefix.length ? full.slice(prefix.length) : '';
  }
}
