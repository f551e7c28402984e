// One request's generation loop on a SequencePool: chunked prefill, then decode until max_tokens, EOS or a stop id.
// (The server's scheduler batches many of these; the CLI runs one.)
import { Sampler, type SampledToken, type SamplingParams } from './sampler.js';
import type { SequencePool } from './sequences.js';

export type FinishReason = 'stop' | 'length';

export interface GenerateOptions {
  maxTokens: number;
  sampling?: Partial<SamplingParams>;
  /** Token ids that end generation (with finish_reason "stop"); the model's EOS ids are added unless ignoreEos. */
  stopTokenIds?: readonly number[];
  ignoreEos?: boolean;
  /** Stop ids are banned until this many tokens were generated. */
  minTokens?: number;
  /** Prompt tokens per prefill step. */
  prefillChunk?: number;
}

export const DEFAULT_PREFILL_CHUNK = 256;

/** Yields each generated token; returns why generation ended. The sequence is closed when the generator ends. */
export async function* generate(pool: SequencePool, promptIds: readonly number[], opts: GenerateOptions): AsyncGenerator<SampledToken, FinishReason> {
  if (!promptIds.length) throw new RangeError('the prompt must hold at least one token');
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) throw new RangeError(`max tokens must be an integer ≥ 0, got ${opts.maxTokens}`);
  const sampler = new Sampler(opts.sampling ?? {}, promptIds);
  const stops = new Set([...(opts.stopTokenIds ?? []), ...(opts.ignoreEos ? [] : pool.model.spec.eosIds)]);
  const chunk = opts.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  const seq = pool.open();
  try {
    if (opts.maxTokens === 0) return 'length';
    pool.reserve(seq, promptIds.length + opts.maxTokens);
    let logits: Float32Array | null = null;
    for (let i = 0; i < promptIds.length; i += chunk) logits = await pool.step([{ seq, ids: promptIds.slice(i, i + chunk) }]);
    for (let n = 0; ; n++) {
      const tok = sampler.sample(logits!, n < (opts.minTokens ?? 0) ? stops : undefined);
      sampler.accept(tok.id);
      yield tok;
      if (stops.has(tok.id)) return 'stop';
      if (n + 1 >= opts.maxTokens) return 'length';
      logits = await pool.step([{ seq, ids: [tok.id] }]);
    }
  } finally {
    pool.close(seq);
  }
}
