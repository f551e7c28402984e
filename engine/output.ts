// The output processor, used by the server and the CLI alike: every (prompt × n) choice of a request is a scheduler
// request whose tokens go through the incremental detokenizer and the stop strings; the caller gets text deltas as
// they become stable, then a result per choice with its finish reason, logprobs, memory and timings.
import { performance } from 'node:perf_hooks';
import { IncrementalDetokenizer } from './text/detokenizer.js';
import { StopStrings } from './text/stop.js';
import type { SampledToken, SamplingParams } from './sampler.js';
import type { EndReason } from './scheduler.js';
import type { SequenceMemory } from './memory/sequences.js';

import type { Engine } from './engine.js';
import type { TokenConstraint } from './text/grammar.js';

export interface TokenLogprobInfo {
  token: string;
  logprob: number;
  top: { token: string; logprob: number }[];
}

export interface ChoiceResult {
  index: number;
  text: string;
  ids: number[];
  /** stop | length, or why the choice ended early. */
  end: EndReason | 'stop_string';
  logprobs: TokenLogprobInfo[];
  /** Prompt logprobs (OutputRequest.promptLogprobs; the first token's logprob NaN: it has none), else empty. */
  promptLogprobs: TokenLogprobInfo[];
  promptTokens: number;
  /** Prompt tokens restored from a state snapshot instead of prefilled. */
  cachedTokens: number;
  peak: SequenceMemory;
  timings: {
    queue_time_ms: number;
    time_to_first_token_ms: number;
    generation_time_ms: number;
    mean_itl_ms: number;
    /** Every gap between consecutive tokens (ms), for the inter-token latency histogram. */
    itl_ms: number[];
    tokens_per_second: number;
  };
}

/** What the output processor needs of a request (the server's parsed request and the CLI's flags both are one). */
export interface OutputRequest {
  /** Choices per prompt. */
  n: number;
  sampling: SamplingParams;
  /** Stop strings, cut from the text (the matched string kept with includeStopStr). */
  stop: readonly string[];
  includeStopStr: boolean;
  stopTokenIds: readonly number[];
  ignoreEos: boolean;
  minTokens: number;
  /** Alternatives per token, or null for no logprobs. */
  logprobs: number | null;
  /** Prompt logprobs with this many alternatives (completions' echo with logprobs), or null. */
  promptLogprobs?: number | null;
}

export interface GenerationSink {
  /** A choice was admitted (memory reserved); the first call is when a stream's headers should go out. */
  onStart?(index: number): void;
  onDelta?(index: number, text: string, logprobs: TokenLogprobInfo[]): void;
  /** The prompt's logprobs (promptLogprobs requested), once they are all known: before the first delta. */
  onPrompt?(index: number, logprobs: TokenLogprobInfo[]): void;
}

export interface GenerationOptions {
  requestId: string;
  signal: AbortSignal;
  /** performance.now() deadlines. */
  deadline?: number;
  queueDeadline?: number;
  /** One grammar constraint per choice (structured outputs), in choice order; each is the scheduler's once submitted,
   *  and those of choices never submitted are disposed of here. */
  constraints?: TokenConstraint[];
}

/** The text of one token for logprobs: its decoded text, or its vocabulary string when it is a partial character. */
function tokenText(host: Engine, id: number): string {
  const t = host.tokenizer.decode([id], false);
  return t.includes('\uFFFD') ? (host.tokenizer.tokenString(id) ?? t) : t;
}

/** Submit every choice; resolves when all have ended. Throws (synchronously via the promise) QueueFullError etc. */
export function runGeneration(
  host: Engine,
  req: OutputRequest,
  prompts: number[][],
  maxTokens: number,
  opts: GenerationOptions,
  sink: GenerationSink = {},
): Promise<ChoiceResult[]> {
  const tok = host.tokenizer;
  const jobs: Promise<ChoiceResult>[] = [];
  let index = 0;
  for (const promptIds of prompts) {
    for (let k = 0; k < req.n; k++) {
      const i = index++;
      const abort = new AbortController();
      const onParentAbort = () => abort.abort();
      opts.signal.addEventListener('abort', onParentAbort, { once: true });
      const detok = new IncrementalDetokenizer(tok, promptIds);
      const stops = new StopStrings(req.stop, req.includeStopStr);
      const ids: number[] = [],
        lps: TokenLogprobInfo[] = [],
        // prompt logprobs: the first prompt token has none (NaN here, null on the wire)
        plps: TokenLogprobInfo[] =
          req.promptLogprobs != null ? [{ token: tokenText(host, promptIds[0]!), logprob: NaN, top: [] }] : [];
      let text = '';
      const t0 = performance.now();
      let tStart = t0,
        tFirst = 0,
        tLast = 0;
      const gaps: number[] = [];
      let promptSent = req.promptLogprobs == null;
      const prompt = () => {
        if (!promptSent) sink.onPrompt?.(i, plps);
        promptSent = true;
      };
      const emit = (piece: string, lp: TokenLogprobInfo[]) => {
        prompt(); // the prompt's logprobs are complete once a token was sampled
        if (!piece && !lp.length) return;
        text += piece;
        sink.onDelta?.(i, piece, lp);
      };
      jobs.push(
        new Promise<ChoiceResult>((resolve, reject) => {
          const constraint = opts.constraints?.[i];
          try {
            host.scheduler.submit(
              {
                promptIds,
                maxTokens,
                sampling: { ...req.sampling, seed: req.sampling.seed === null ? null : req.sampling.seed + i },
                stopTokenIds: req.stopTokenIds,
                ignoreEos: req.ignoreEos,
                minTokens: req.minTokens,
                signal: abort.signal,
                deadline: opts.deadline,
                queueDeadline: opts.queueDeadline,
                tag: opts.requestId,
                constraint,
                promptLogprobs: req.promptLogprobs ?? undefined,
              },
              {
                onStart: () => {
                  tStart = performance.now();
                  sink.onStart?.(i);
                },
                onPromptLogprobs: (toks: SampledToken[]) => {
                  for (const t of toks)
                    plps.push({
                      token: tokenText(host, t.id),
                      logprob: t.logprob,
                      top: (t.top ?? []).map((a) => ({ token: tokenText(host, a.id), logprob: a.logprob })),
                    });
                },
                onToken: (t: SampledToken, stop: boolean) => {
                  const now = performance.now();
                  if (!ids.length) tFirst = now;
                  else gaps.push(now - tLast);
                  tLast = now;
                  ids.push(t.id);
                  if (stops.stopped) return;
                  const lp =
                    req.logprobs === null
                      ? []
                      : [
                          {
                            token: tokenText(host, t.id),
                            logprob: t.logprob,
                            top: (t.top ?? []).map((a) => ({ token: tokenText(host, a.id), logprob: a.logprob })),
                          },
                        ];
                  lps.push(...lp);
                  // a stop id ends the choice without its text (EOS and other specials decode to nothing anyway)
                  const piece = stop ? '' : stops.push(detok.push(t.id));
                  emit(piece, lp);
                  if (stops.stopped) abort.abort();
                },
                onEnd: (reason, info) => {
                  opts.signal.removeEventListener('abort', onParentAbort);
                  prompt(); // max_tokens 0: the prompt alone
                  if (!stops.stopped) emit(stops.push(detok.flush()) + stops.flush(), []);
                  const end: ChoiceResult['end'] = stops.stopped ? 'stop_string' : reason;
                  const gen = tLast - tFirst,
                    n = ids.length;
                  resolve({
                    index: i,
                    text,
                    ids,
                    end,
                    logprobs: lps,
                    promptLogprobs: plps,
                    promptTokens: info.promptTokens,
                    cachedTokens: info.cachedTokens,
                    peak: info.peak,
                    timings: {
                      queue_time_ms: tStart - t0,
                      time_to_first_token_ms: n ? tFirst - t0 : 0,
                      generation_time_ms: n ? tLast - tStart : 0,
                      mean_itl_ms: n > 1 ? gen / (n - 1) : 0,
                      itl_ms: gaps,
                      tokens_per_second: n > 1 && gen > 0 ? (n - 1) / (gen / 1000) : 0,
                    },
                  });
                },
                onError: reject,
              },
            );
          } catch (e) {
            constraint?.dispose(); // never the scheduler's
            throw e;
          }
        }),
      );
    }
  }
  return Promise.all(jobs);
}
