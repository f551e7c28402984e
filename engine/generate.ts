// One request as an async generator of tokens (the CLI's loop), run by the same Scheduler the server uses.
import type { SampledToken } from './sampler.js';
import type { SequencePool } from './memory/sequences.js';
import { Scheduler, type EndReason, type RequestSpec } from './scheduler.js';

export type FinishReason = 'stop' | 'length';

/** The scheduler's request fields, plus the prompt tokens per prefill step. */
export type GenerateOptions = Pick<
  RequestSpec,
  'maxTokens' | 'sampling' | 'stopTokenIds' | 'ignoreEos' | 'minTokens'
> & {
  prefillChunk?: number;
};

export const DEFAULT_PREFILL_CHUNK = 256;

/** Yields each generated token; returns why generation ended. Ending the generator early frees the sequence. */
export async function* generate(
  pool: SequencePool,
  promptIds: readonly number[],
  opts: GenerateOptions,
): AsyncGenerator<SampledToken, FinishReason> {
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0)
    throw new RangeError(`max tokens must be an integer ≥ 0, got ${opts.maxTokens}`);
  const chunk = opts.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  const scheduler = new Scheduler(pool, { maxBatch: 1, maxQueue: 1, tokenBudget: chunk, prefillChunk: chunk });
  const abort = new AbortController();
  const tokens: SampledToken[] = [];
  let end: EndReason | null = null,
    error: Error | null = null,
    wake = () => {};
  scheduler.submit(
    { ...opts, promptIds, signal: abort.signal },
    {
      onToken: (t) => {
        tokens.push(t);
        wake();
      },
      onEnd: (reason) => {
        end = reason;
        wake();
      },
      onError: (e) => {
        error = e;
        wake();
      },
    },
  );
  try {
    for (;;) {
      while (tokens.length) yield tokens.shift()!;
      if (error) throw error;
      if (end) return end as FinishReason;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  } finally {
    abort.abort();
    await scheduler.idle();
  }
}
