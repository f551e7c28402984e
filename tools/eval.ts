// Held-out loss / perplexity and passkey retrieval on a corpus file (shared/corpus format: documents separated by a
// line holding only U+001E; .xz compressed or plain). Same protocol as train/export.py.
import { Rng } from '../lib/rng.js';
import type { SequencePool } from '../engine/memory/sequences.js';
import type { TextTokenizer } from '../engine/text/tokenizer.js';

/** <s> doc </s> <s> doc </s> …: the token stream the models were trained and evaluated on. */
export function tokenStream(tok: TextTokenizer, docs: readonly string[], eos: number): number[] {
  const out: number[] = [];
  for (const d of docs) {
    for (const id of tok.encode(d, true)) out.push(id);
    out.push(eos);
  }
  return out;
}

/** −log softmax(row)[target], with the max subtracted. */
function nllOf(row: Float32Array, target: number): number {
  let mx = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > mx) mx = row[i]!;
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i]! - mx);
  return mx + Math.log(z) - row[target]!;
}

export interface LossResult {
  loss: number;
  perplexity: number;
  tokens: number;
  windows: number;
}

/** Mean next-token cross-entropy over non-overlapping windows of `context` tokens (each predicted token counted once). */
export async function heldOutLoss(
  pool: SequencePool,
  stream: readonly number[],
  context: number,
  maxTokens = Infinity,
  onProgress?: (done: number, total: number) => void,
  chunk = 256,
): Promise<LossResult> {
  const V = pool.model.spec.vocab;
  const windows = Math.min(Math.floor((stream.length - 1) / context), Math.ceil(maxTokens / context));
  if (windows < 1) throw new RangeError(`the data holds ${stream.length} tokens: fewer than one window of ${context}`);
  let nll = 0,
    count = 0;
  for (let w = 0; w < windows; w++) {
    const ids = stream.slice(w * context, w * context + context + 1);
    const seq = pool.open();
    try {
      for (let c = 0; c < context; c += chunk) {
        const part = ids.slice(c, Math.min(context, c + chunk));
        const logits = await pool.step([{ seq, ids: part }], true);
        for (let r = 0; r < part.length; r++) {
          nll += nllOf(logits.subarray(r * V, (r + 1) * V), ids[c + r + 1]!);
          count++;
        }
        onProgress?.(w * context + c + part.length, windows * context);
      }
    } finally {
      pool.close(seq);
    }
  }
  const loss = nll / count;
  return { loss, perplexity: Math.exp(loss), tokens: count, windows };
}

/** One held-out question and its reference answer (train/build_data.py's instruction set: {"q", "a", …} per line). */
export interface ChatItem {
  q: string;
  a: string;
}

/**
 * Mean loss on the reference answers of a held-out instruction set, each asked as one user turn through the model's
 * chat template (as a chat request is rendered) and answered with the reference text and the template's end-of-turn
 * marker, as train/data.py's chat_example trains them: the loss counts the answer tokens and the marker only.
 */
export async function chatLoss(
  pool: SequencePool,
  tok: TextTokenizer,
  render: (q: string) => string,
  endMarker: string,
  items: readonly ChatItem[],
  onProgress?: (done: number, total: number) => void,
  chunk = 256,
): Promise<LossResult> {
  const V = pool.model.spec.vocab,
    end = tok.encode(endMarker, false);
  let nll = 0,
    count = 0;
  for (const [n, it] of items.entries()) {
    const prompt = tok.encode(render(it.q), false),
      answer = [...tok.encode(it.a, false), ...end];
    const ids = [...prompt, ...answer].slice(0, pool.model.spec.maxPositions * 4);
    const seq = pool.open();
    try {
      for (let c = 0; c < ids.length - 1; c += chunk) {
        const part = ids.slice(c, Math.min(ids.length - 1, c + chunk));
        const logits = await pool.step([{ seq, ids: part }], true);
        for (let r = 0; r < part.length; r++) {
          if (c + r + 1 < prompt.length) continue; // predicting a prompt token: not counted
          nll += nllOf(logits.subarray(r * V, (r + 1) * V), ids[c + r + 1]!);
          count++;
        }
      }
    } finally {
      pool.close(seq);
    }
    onProgress?.(n + 1, items.length);
  }
  const loss = nll / Math.max(count, 1);
  return { loss, perplexity: Math.exp(loss), tokens: count, windows: items.length };
}

export const PASSKEY_INTRO = 'There is a pass key hidden in the text below. Find it and remember it.\n';
export const passkeyNeedle = (key: string) => ` The pass key is ${key}. Remember it. ${key} is the pass key. `;
export const PASSKEY_QUESTION = '\nWhat is the pass key? The pass key is';

/** A prompt of exactly `length` tokens: intro, corpus filler with the needle at a random depth, the question. */
export function passkeyPrompt(
  tok: TextTokenizer,
  filler: readonly number[],
  length: number,
  rng: Rng,
  specials: ReadonlySet<number>,
) {
  const key = String(10000 + Math.floor(rng.next() * 90000));
  const intro = tok.encode(PASSKEY_INTRO, true),
    needle = tok.encode(passkeyNeedle(key), false),
    question = tok.encode(PASSKEY_QUESTION, false);
  const nFill = length - intro.length - needle.length - question.length;
  if (nFill < 0) throw new RangeError(`a passkey prompt needs more than ${length} tokens`);
  const start = Math.floor(rng.next() * (filler.length - 2 * nFill - 1));
  const fill = filler
    .slice(start, start + 2 * nFill)
    .filter((t) => !specials.has(t))
    .slice(0, nFill);
  const depth = Math.floor(rng.next() * (nFill + 1));
  return { ids: [...intro, ...fill.slice(0, depth), ...needle, ...fill.slice(depth), ...question], key };
}

/** Greedy-decode a few tokens after each passkey prompt; accuracy = share of answers that contain the key. */
export async function passkeyAccuracy(
  pool: SequencePool,
  tok: TextTokenizer,
  filler: readonly number[],
  length: number,
  trials: number,
  seed: number,
  onTrial?: (done: number) => void,
): Promise<number> {
  const { generate } = await import('../engine/generate.js');
  const rng = new Rng(seed, length);
  const specials = new Set([tok.bosId ?? -1, tok.eosId ?? -1]);
  let ok = 0;
  for (let t = 0; t < trials; t++) {
    const { ids, key } = passkeyPrompt(tok, filler, length, rng, specials);
    const out: number[] = [];
    for await (const s of generate(pool, ids, { maxTokens: 7, sampling: { temperature: 0 }, ignoreEos: true }))
      out.push(s.id);
    if (tok.decode(out).includes(key)) ok++;
    onTrial?.(t + 1);
  }
  return ok / trials;
}
