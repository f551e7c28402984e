// Token sampling on host logits: penalties, then greedy or temperature with top-k / top-p / min-p, drawn from a
// per-request seeded RNG (same seed → same tokens). Parameters are validated, never clamped.
import { randomInt } from 'node:crypto';
import { Rng } from '../lib/rng.js';
import { allows, maskWords } from '../kernels/ops.js';
import type { DeviceSample } from './model/model.js';

export interface SamplingParams {
  /** 0 = greedy. OpenAI range 0 … 2. */
  temperature: number;
  /** ≤ 0 = off. */
  top_k: number;
  /** (0, 1]; 1 = off. */
  top_p: number;
  /** [0, 1]; 0 = off: drop tokens with p < min_p · p_max. */
  min_p: number;
  seed: number | null;
  /** OpenAI penalties over generated tokens, −2 … 2. */
  presence_penalty: number;
  frequency_penalty: number;
  /** HF/vLLM multiplicative penalty over prompt and generated tokens, > 0; 1 = off. */
  repetition_penalty: number;
  /** How many alternatives to report with each token's logprob (0 … 20); null = no logprobs. */
  logprobs: number | null;
  /** OpenAI's logit_bias: added to these tokens' logits before sampling (−100 … 100; ±100 bans or forces). */
  logit_bias: Readonly<Record<number, number>> | null;
}

export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 1,
  top_k: 0,
  top_p: 1,
  min_p: 0,
  seed: null,
  presence_penalty: 0,
  frequency_penalty: 0,
  repetition_penalty: 1,
  logprobs: null,
  logit_bias: null,
};

export const MAX_TOP_LOGPROBS = 20;

export class SamplingParamError extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
    this.name = 'SamplingParamError';
  }
}

/** Fill defaults and check every field; throws SamplingParamError naming the field. */
export function samplingParams(p: Partial<SamplingParams>): SamplingParams {
  const out = {
    ...DEFAULT_SAMPLING,
    ...Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)),
  } as SamplingParams;
  const num = (k: keyof SamplingParams, ok: (v: number) => boolean, range: string) => {
    const v = out[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
      throw new SamplingParamError(k, `${k} must be ${range}, got ${JSON.stringify(v)}`);
  };
  num('temperature', (v) => v >= 0 && v <= 2, 'a number from 0 to 2 (0 = greedy)');
  num('top_k', (v) => Number.isInteger(v) && v >= -1, 'an integer ≥ 1, or 0 / -1 to disable');
  num('top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  num('min_p', (v) => v >= 0 && v <= 1, 'a number from 0 to 1');
  num('presence_penalty', (v) => v >= -2 && v <= 2, 'a number from -2 to 2');
  num('frequency_penalty', (v) => v >= -2 && v <= 2, 'a number from -2 to 2');
  num('repetition_penalty', (v) => v > 0 && v <= 10, 'a number in (0, 10] (1 = off)');
  if (out.seed !== null)
    num('seed', (v) => Number.isSafeInteger(v), `an integer (|seed| ≤ ${Number.MAX_SAFE_INTEGER})`);
  for (const [id, v] of Object.entries(out.logit_bias ?? {}))
    if (!/^\d+$/.test(id) || typeof v !== 'number' || !Number.isFinite(v) || v < -100 || v > 100)
      throw new SamplingParamError(
        'logit_bias',
        `logit_bias must map token ids to numbers from -100 to 100, got ${id}: ${v}`,
      );
  if (out.logprobs !== null)
    num(
      'logprobs',
      (v) => Number.isInteger(v) && v >= 0 && v <= MAX_TOP_LOGPROBS,
      `an integer from 0 to ${MAX_TOP_LOGPROBS}`,
    );
  return out;
}

export interface TokenLogprob {
  id: number;
  logprob: number;
}

export interface SampledToken extends TokenLogprob {
  /** The `logprobs` most likely tokens with their logprobs (when logprobs were asked for). */
  top?: TokenLogprob[];
}

/** log-softmax of the raw logits at one id and the top-n alternatives (the model's own distribution). */
export function logprobsOf(logits: Float32Array, id: number, n: number): { logprob: number; top: TokenLogprob[] } {
  let mx = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > mx) mx = logits[i]!;
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i]! - mx);
  const lse = mx + Math.log(z);
  return { logprob: logits[id]! - lse, top: topIds(logits, n).map((i) => ({ id: i, logprob: logits[i]! - lse })) };
}

/** Ids of the n largest values, largest first (ties: lower id first). */
function topIds(values: ArrayLike<number>, n: number): number[] {
  if (n > 64) {
    return Array.from({ length: values.length }, (_, i) => i)
      .sort((a, b) => values[b]! - values[a]! || a - b)
      .slice(0, n);
  }
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (out.length === n && values[i]! <= values[out[n - 1]!]!) continue;
    let j = out.length < n ? out.length : n - 1;
    while (j > 0 && values[out[j - 1]!]! < values[i]!) j--;
    out.splice(j, 0, i);
    if (out.length > n) out.pop();
  }
  return out;
}

export class Sampler {
  readonly params: SamplingParams;
  private readonly rng: Rng;
  /** Generated-token counts (presence / frequency) and every token seen (repetition penalty). */
  private readonly counts = new Map<number, number>();
  private readonly seen: Set<number>;
  private readonly seed: number;
  private drawn = 0;

  constructor(params: Partial<SamplingParams>, promptIds: readonly number[] = []) {
    this.params = samplingParams(params);
    this.seed = this.params.seed ?? randomInt(2 ** 47);
    this.rng = new Rng(this.seed, 0x5a3);
    this.seen = new Set(promptIds);
  }

  /**
   * The next draw as one the device makes itself (argmax, or temperature sampling by Gumbel-max keyed by the seed and
   * the draw index), so that only the token id comes back; null when it needs the host: top-k / top-p / min-p,
   * penalties, logprobs or logit_bias. Seeded draws repeat on the same seed on either backend. `ahead`: for the draw
   * that many tokens after the next one (a step submitted before the previous one's token came back). `banned` ids
   * (EOS before min_tokens) and the ids outside `allowed` (a grammar's bitmask over `vocab` ids) go to the device as
   * the draw's mask.
   */
  device({
    vocab,
    banned,
    ahead = 0,
    allowed = null,
  }: {
    vocab: number;
    banned?: ReadonlySet<number> | undefined;
    ahead?: number;
    allowed?: Int32Array | null;
  }): DeviceSample | null {
    const p = this.params;
    if (
      p.top_p < 1 ||
      p.top_k > 1 ||
      p.min_p > 0 ||
      p.presence_penalty !== 0 ||
      p.frequency_penalty !== 0 ||
      p.repetition_penalty !== 1 ||
      p.logprobs !== null ||
      (p.logit_bias && Object.keys(p.logit_bias).length)
    )
      return null;
    const d: DeviceSample = {
      temperature: p.top_k === 1 ? 0 : p.temperature,
      seed: this.seed,
      draw: this.drawn + ahead,
    };
    if (banned?.size) {
      const mask = allowed ? Int32Array.from(allowed) : new Int32Array(maskWords(vocab)).fill(-1);
      for (const id of banned) mask[id >> 5]! &= ~(1 << (id & 31));
      d.mask = mask;
    } else if (allowed) d.mask = allowed;
    return d;
  }

  /** Pick the next token. `banned` ids (e.g. EOS before min_tokens) get probability 0, and with `allowed` (a bitmask:
   *  bit i of word i >> 5, from a grammar) every id whose bit is clear. */
  sample(
    logits: Float32Array,
    banned: ReadonlySet<number> = new Set(),
    allowed: Int32Array | null = null,
  ): SampledToken {
    const p = this.params;
    const x = Float64Array.from(logits);
    if (p.repetition_penalty !== 1)
      for (const id of this.seen) x[id] = x[id]! > 0 ? x[id]! / p.repetition_penalty : x[id]! * p.repetition_penalty;
    for (const [id, c] of this.counts) x[id]! -= p.presence_penalty + p.frequency_penalty * c;
    for (const [id, b] of Object.entries(p.logit_bias ?? {})) x[Number(id)]! += b;
    for (const id of banned) x[id] = -Infinity;
    if (allowed) for (let i = 0; i < x.length; i++) if (!allows(allowed, i)) x[i] = -Infinity;
    const id = p.temperature === 0 ? topIds(x, 1)[0]! : this.draw(x);
    if (!(x[id]! > -Infinity)) throw new Error('sampler: every token is banned');
    const out: SampledToken = { id, logprob: 0 };
    if (p.logprobs !== null) Object.assign(out, logprobsOf(logits, id, p.logprobs));
    return out;
  }

  /** Record a generated token (penalties). */
  accept(id: number): void {
    this.drawn++;
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    this.seen.add(id);
  }

  private draw(x: Float64Array): number {
    const p = this.params;
    let ids = topIds(x, p.top_k > 0 ? Math.min(p.top_k, x.length) : x.length).filter((i) => x[i]! > -Infinity);
    const mx = x[ids[0]!]!;
    let probs = ids.map((i) => Math.exp((x[i]! - mx) / p.temperature));
    let z = probs.reduce((a, b) => a + b, 0);
    if (p.top_p < 1) {
      let cum = 0,
        keep = 0;
      while (keep < ids.length && cum < p.top_p * z) cum += probs[keep++]!;
      ids = ids.slice(0, Math.max(1, keep));
      probs = probs.slice(0, ids.length);
    }
    if (p.min_p > 0) {
      const cut = p.min_p * probs[0]!;
      const keep = probs.findIndex((q) => q < cut);
      if (keep > 0) {
        ids = ids.slice(0, keep);
        probs = probs.slice(0, keep);
      }
    }
    z = probs.reduce((a, b) => a + b, 0);
    let u = this.rng.next() * z;
    for (let i = 0; i < ids.length; i++) if ((u -= probs[i]!) < 0) return ids[i]!;
    return ids[ids.length - 1]!;
  }
}
