// Text ↔ token ids on @huggingface/tokenizers. Served text is always decoded with
// clean_up_tokenization_spaces = false (spec/serving.md §5.1) and without special tokens. Long texts are encoded on a
// worker thread (encodeAsync), so a megabyte prompt does not stall the server's event loop.
import { Worker } from 'node:worker_threads';
import { Tokenizer } from '@huggingface/tokenizers';
import { keepAlive } from '../../lib/alive.js';

/** Texts longer than this (UTF-16 units) are encoded on the worker: ~10 ms of encoding on one core. */
const WORKER_CHARS = 16 * 1024;
/** Normalizers that never shrink a text by more than a small factor (composition, case, prefixes, ▁ for space). */
const GENTLE = new Set(['NFC', 'NFD', 'NFKC', 'NFKD', 'Lowercase', 'Prepend', 'Strip', 'Replace']);
/** The factor a gentle normalizer may shrink a text by, at most (NFC composing, stripping). */
const SHRINK = 4;

function gentle(n: unknown): boolean {
  if (n === null || n === undefined) return true;
  const o = n as { type?: string; normalizers?: unknown[]; pattern?: { String?: string }; content?: string };
  if (o.type === 'Sequence') return (o.normalizers ?? []).every(gentle);
  if (o.type === 'Replace')
    return typeof o.pattern?.String === 'string' && (o.content ?? '').length >= o.pattern.String.length;
  return GENTLE.has(o.type ?? '');
}

export class TextTokenizer {
  private readonly tok: Tokenizer;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly bosToken: string;
  readonly eosToken: string;
  /** The largest id the tokenizer knows + 1. */
  readonly size: number;

  constructor(
    /** tokenizer.json as loaded (the grammar engine reads its decoder type). */
    readonly json: Record<string, unknown>,
    readonly config: Record<string, unknown> | null,
  ) {
    this.tok = new Tokenizer(json, config ?? {});
    const name = (v: unknown) =>
      typeof v === 'string'
        ? v
        : typeof v === 'object' && v !== null && 'content' in v
          ? String((v as { content: unknown }).content)
          : '';
    this.bosToken = name(config?.bos_token);
    this.eosToken = name(config?.eos_token);
    this.bosId = this.bosToken ? (this.tok.token_to_id(this.bosToken) ?? null) : null;
    this.eosId = this.eosToken ? (this.tok.token_to_id(this.eosToken) ?? null) : null;
    let max = -1,
      longest = 1;
    for (const [token, id] of this.tok.get_vocab(true)) {
      if (id > max) max = id;
      longest = Math.max(longest, Buffer.byteLength(token));
    }
    this.size = max + 1;
    // a vocabulary string's UTF-8 bytes bound the input bytes its token covers (byte-level BPE writes a byte as one
    // char of 1–2 bytes, sentencepiece ▁ is 3 bytes for a space, byte fallback <0x41> 6 for one)
    this.bytesPerToken = gentle(json.normalizer) ? longest * SHRINK : Infinity;
  }

  /** Input bytes one token can cover at most (after the normalizer), or Infinity when the normalizer can shrink text. */
  private readonly bytesPerToken: number;

  /** A lower bound on the tokens `text` encodes to, without encoding it (0 when none is known). */
  minTokens(text: string): number {
    return Number.isFinite(this.bytesPerToken) ? Math.floor(Buffer.byteLength(text) / this.bytesPerToken) : 0;
  }

  private worker: Worker | null = null;
  private jobs = new Map<number, { resolve(ids: number[]): void; reject(e: Error): void }>();
  private nextJob = 0;

  /** encode() for a long text on a worker thread (a short one is encoded here: the hop would cost more). */
  async encodeAsync(text: string, addSpecialTokens = true): Promise<number[]> {
    if (text.length <= WORKER_CHARS) return this.encode(text, addSpecialTokens);
    const w = (this.worker ??= this.startWorker());
    const id = this.nextJob++;
    w.ref();
    try {
      return await new Promise<number[]>((resolve, reject) => {
        this.jobs.set(id, { resolve, reject });
        w.postMessage({ id, text, addSpecialTokens });
      });
    } finally {
      if (!this.jobs.size) w.unref();
    }
  }

  private startWorker(): Worker {
    const w = new Worker(new URL('./encode-worker.js', import.meta.url), {
      workerData: { json: this.json, config: this.config },
    });
    w.on('message', (m: { id: number; ids?: number[]; error?: string }) => {
      const job = this.jobs.get(m.id);
      this.jobs.delete(m.id);
      if (m.ids) job?.resolve(m.ids);
      else job?.reject(new Error(m.error));
    });
    const fail = (e: Error) => {
      for (const j of this.jobs.values()) j.reject(e);
      this.jobs.clear();
      if (this.worker === w) this.worker = null; // (a worker closed earlier must not drop its successor)
    };
    w.on('error', fail);
    w.on('exit', () => fail(new Error('the tokenizer worker exited')));
    w.unref();
    return w;
  }

  /** Stop the encoding worker, if one was started. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await keepAlive(w.terminate());
  }

  /** Encode text; `addSpecialTokens` applies the tokenizer's post-processor (e.g. prepends BOS). */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: readonly number[], skipSpecialTokens = true): string {
    return this.tok.decode(ids as number[], {
      skip_special_tokens: skipSpecialTokens,
      clean_up_tokenization_spaces: false,
    });
  }

  /** The vocabulary string of one id (for logprobs' `tokens`), or undefined. */
  tokenString(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }
}
