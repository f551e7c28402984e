// The op contract: what each op of a Plan computes (every backend implements the same ops), and the constants the
// CPU oracle and the WGSL kernels share (WGSL gets them interpolated from here).

/** Layout of the fused attention projection [Q | K | V]: Q has `heads`, K and V `kvHeads` heads of `headDim`. */
export interface QkvLayout {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/** Column offsets of the Q, K and V heads in a fused [Q | K | V] row. */
export function qkvOffsets(l: QkvLayout) {
  const { heads, kvHeads, headDim: d } = l;
  return {
    q: (h: number) => h * d,
    k: (g: number) => heads * d + g * d,
    v: (g: number) => (heads + kvHeads) * d + g * d,
    width: (heads + 2 * kvHeads) * d,
    group: heads / kvHeads,
  };
}

/** Ops run over every row of the step, or with `perSeq` over one row per sequence (after gather_last). */
export type Op =
  /** out[r] = table[ids[r]] */
  | { op: 'embed'; table: string; ids: string; out: string; dim: number }
  /** out[r, :n] (+)= x'[r, :k] · wᵀ with w row-major [n, k]; `add` accumulates into out (residual). The input x' is
   *  x itself, or with `norm` rmsnorm(x) with that weight (fused prologue), or with `act: 'silu_mul'`
   *  silu(x[r, :k]) ⊙ x[r, k:2k] (x is the [gate | up] output, 2k wide). */
  | {
      op: 'matmul';
      x: string;
      w: string;
      out: string;
      k: number;
      n: number;
      add?: boolean;
      perSeq?: boolean;
      norm?: { weight: string; eps: number };
      act?: 'silu_mul';
    }
  /** Depthwise causal conv, window 2 (spec §4.2): out = b + w0 ⊙ r_prev + w1 ⊙ r. state[slot] keeps the last RAW row;
   *  a sequence at pos 0 starts from r_prev = 0. weight is [ch, 2]: [..,0] previous token, [..,1] current.
   *  x rows are `xStride` wide (default ch); with `decay`, columns ch … ch+heads−1 of x hold the decay logits z and
   *  out [R, heads] gets the log-decay A = −softplus(z) (spec §4.3). */
  | {
      op: 'conv2';
      x: string;
      state: string;
      weight: string;
      bias: string;
      out: string;
      ch: number;
      xStride?: number;
      decay?: { out: string; heads: number };
    }
  /** 2Mamba attention (spec §5): reads q,k,v from qkv [R, 3·H·d] and A from logA [R, H]; updates S [slot, H, D, d]
   *  and N [slot, H, D] and writes y [R, H·d]. A sequence at pos 0 starts from a zero state. */
  | { op: 'mamba2'; qkv: string; logA: string; S: string; N: string; out: string; heads: number; headDim: number }
  /** RoPE in place on the Q and K heads of qkv, at each row's position (spec §7). freqs: [d/2] θ_m. */
  | { op: 'rope'; qkv: string; freqs: string; layout: QkvLayout; convention: 'interleaved' | 'half' }
  /** Write each row's K and V (and for 2Mamba-E its cumulative log-decay C = C_prev + A) into the paged cache
   *  [page, pageSize, kvHeads, d] (C: [page, pageSize, heads]). */
  | {
      op: 'kv_append';
      qkv: string;
      k: string;
      v: string;
      layout: QkvLayout;
      pageSize: number;
      logA?: string;
      c?: string;
    }
  /** Causal attention of each row over cached positions 0 … its own position. softmax: ℓ = s·q·k;
   *  exp (2Mamba-E, spec §6): ℓ = s·q·k + C_i − C_j. out: [R, H·d]. */
  | { op: 'attention'; qkv: string; k: string; v: string; c?: string; out: string; layout: QkvLayout; pageSize: number }
  /** out[s] = x[last row of sequence s] */
  | { op: 'gather_last'; x: string; out: string; dim: number }
  /** The next token of each sequence from its logits row ([seqs, vocab]), written to the i32 buffer out[s].
   *  params [seqs, SAMPLE_PARAMS] (i32): temperature (f32 bits; 0 = argmax), seed low and high 32 bits, draw index,
   *  masked. T > 0 draws from softmax(logits / T) by the Gumbel-max trick, the noise a hash of (seed, draw, token)
   *  (sampleNoise). A masked row draws only among the ids whose bit is set in its row of `mask` ([seqs,
   *  maskWords(vocab)] i32: bit i & 31 of word i >> 5); none set: out[s] = -1. */
  | { op: 'sample'; logits: string; params: string; mask: string; out: string; vocab: number };

/** The 2Mamba readout divides by max(den, DEN_FLOOR) in every path: a degenerate 0/0 row gives y = 0 (spec §5.5). */
export const DEN_FLOOR = 1e-30;

/** φ's dimension for head dimension d: the upper triangle of u uᵀ (spec/2mamba.md §5.2). */
export const phiDim = (d: number) => (d * (d + 1)) / 2;

/** φ(u)_p(i,j) = c_ij u_i u_j: c = 1 on the diagonal, √2 off it, so φ(u)·φ(w) = (u·w)² (spec §5.2). */
export const PHI_OFF_DIAGONAL = Math.SQRT2;

/** lowbias32 (Chris Wellons): a 32-bit integer hash, the counter-based RNG of device sampling. */
export function hash32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The key of one draw: (seed low, seed high, draw index) hashed together. */
export const drawKey = (seedLo: number, seedHi: number, draw: number) =>
  hash32(seedLo ^ hash32(seedHi ^ hash32(draw ^ 0x9e3779b9)));

/** Gumbel noise −log(−log u) for token i of a draw, u = (top 24 bits of hash(key ^ hash(i)) + ½) / 2²⁴ ∈ (0, 1). */
export const sampleNoise = (key: number, i: number) =>
  -Math.log(-Math.log(((hash32(key ^ hash32(i)) >>> 8) + 0.5) / 16777216));

/** The sample op's params: one row of SAMPLE_PARAMS i32 per sequence — temperature (f32 bits; 0 = argmax), seed low
 *  and high 32 bits, draw index, masked (1: only the ids of the row's mask may be drawn). */
export const SAMPLE_PARAMS = 5;

/** i32 words of one row of an allowed-token bitmask over a vocabulary of `vocab` ids (XGrammar's layout). */
export const maskWords = (vocab: number) => Math.ceil(vocab / 32);

/** Whether a bitmask allows id i. */
export const allows = (mask: ArrayLike<number>, i: number) => (((mask[i >> 5] ?? 0) >>> (i & 31)) & 1) === 1;

/** One draw the device makes: argmax at temperature 0, else Gumbel-max over logits / T keyed by (seed, draw). */
export interface DeviceSample {
  temperature: number;
  seed: number;
  /** The draw's index within the request (tokens sampled before it). */
  draw: number;
  /** The ids it may draw (a grammar's next-token bitmask, banned ids cleared), maskWords(vocab) words; none: any. */
  mask?: Int32Array;
}

/** Pack the sample op's params rows; null → argmax. */
export function packSampleParams(sampling: readonly (DeviceSample | null)[]): Int32Array {
  const prm = new Int32Array(SAMPLE_PARAMS * sampling.length),
    f = new Float32Array(prm.buffer);
  sampling.forEach((d, i) => {
    if (!d) return;
    const o = SAMPLE_PARAMS * i;
    f[o] = d.temperature;
    prm[o + 1] = (d.seed % 2 ** 32) | 0;
    prm[o + 2] = Math.floor(d.seed / 2 ** 32) | 0;
    prm[o + 3] = d.draw | 0;
    prm[o + 4] = d.mask ? 1 : 0;
  });
  return prm;
}

/** Row s of the sample op's params: the temperature (an f32), the draw key and whether the row is masked. */
export function readSampleParams(
  prm: ArrayLike<number>,
  s: number,
): { temperature: number; key: number; masked: boolean } {
  const o = SAMPLE_PARAMS * s,
    bits = new Int32Array([prm[o]!]);
  return {
    temperature: new Float32Array(bits.buffer)[0]!,
    key: drawKey(prm[o + 1]!, prm[o + 2]!, prm[o + 3]!),
    masked: prm[o + 4] === 1,
  };
}
