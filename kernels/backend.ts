// The Backend seam: named device buffers and a Plan (a flat list of kernel invocations over those names),
// run once per step with a Step describing which rows belong to which sequence. A backend knows no model.

/** f32 values; i32 ids; `cumsum`: cumulative log-decays C_j (held at whatever precision the backend guarantees). */
export type BufferKind = 'f32' | 'i32' | 'cumsum';

/** How a weight buffer is stored: values are given as f32 (already representable in this dtype); a backend may
 *  keep 16-bit weights packed (two per u32 word, element 2i in the low half). Only matmul and embed tables use it. */
export type WeightDType = 'f32' | 'f16' | 'bf16';

/** One sequence's rows in a step: `rows` new tokens at positions pos … pos+rows−1. */
export interface SeqStep {
  /** State slot: 2Mamba S/n and every architecture's conv state. */
  slot: number;
  /** Tokens this sequence has already processed (position of its first new row). */
  pos: number;
  rows: number;
  /** KV block table (softmax, 2Mamba-E): page ids covering positions 0 … pos+rows−1. */
  pages: readonly number[];
}

export interface Step {
  seqs: readonly SeqStep[];
}

export const totalRows = (step: Step) => step.seqs.reduce((s, q) => s + q.rows, 0);

/** Layout of the fused attention projection [Q | K | V]: Q has `heads`, K and V `kvHeads` heads of `headDim`. */
export interface QkvLayout {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/** Ops run over every row of the step, or with `perSeq` over one row per sequence (after gather_last). */
export type Op =
  /** out[r] = table[ids[r]] */
  | { op: 'embed'; table: string; ids: string; out: string; dim: number }
  /** out[r, :n] (+)= x'[r, :k] · wᵀ with w row-major [n, k]; `add` accumulates into out (residual). The input x' is
   *  x itself, or with `norm` rmsnorm(x) with that weight (fused prologue), or with `act: 'silu_mul'`
   *  silu(x[r, :k]) ⊙ x[r, k:2k] (x is the [gate | up] output, 2k wide). */
  | { op: 'matmul'; x: string; w: string; out: string; k: number; n: number; add?: boolean; perSeq?: boolean;
      norm?: { weight: string; eps: number }; act?: 'silu_mul' }
  /** Depthwise causal conv, window 2 (spec §4.2): out = b + w0 ⊙ r_prev + w1 ⊙ r. state[slot] keeps the last RAW row;
   *  a sequence at pos 0 starts from r_prev = 0. weight is [ch, 2]: [..,0] previous token, [..,1] current.
   *  x rows are `xStride` wide (default ch); with `decay`, columns ch … ch+heads−1 of x hold the decay logits z and
   *  out [R, heads] gets the log-decay A = −softplus(z) (spec §4.3). */
  | { op: 'conv2'; x: string; state: string; weight: string; bias: string; out: string; ch: number; xStride?: number;
      decay?: { out: string; heads: number } }
  /** 2Mamba attention (spec §5): reads q,k,v from qkv [R, 3·H·d] and A from logA [R, H]; updates S [slot, H, D, d]
   *  and N [slot, H, D] and writes y [R, H·d]. A sequence at pos 0 starts from a zero state. */
  | { op: 'mamba2'; qkv: string; logA: string; S: string; N: string; out: string; heads: number; headDim: number }
  /** RoPE in place on the Q and K heads of qkv, at each row's position (spec §7). freqs: [d/2] θ_m. */
  | { op: 'rope'; qkv: string; freqs: string; layout: QkvLayout; convention: 'interleaved' | 'half' }
  /** Write each row's K and V (and for 2Mamba-E its cumulative log-decay C = C_prev + A) into the paged cache
   *  [page, pageSize, kvHeads, d] (C: [page, pageSize, heads]). */
  | { op: 'kv_append'; qkv: string; k: string; v: string; layout: QkvLayout; pageSize: number; logA?: string; c?: string }
  /** Causal attention of each row over cached positions 0 … its own position. softmax: ℓ = s·q·k;
   *  exp (2Mamba-E, spec §6): ℓ = s·q·k + C_i − C_j. out: [R, H·d]. */
  | { op: 'attention'; qkv: string; k: string; v: string; c?: string; out: string; layout: QkvLayout; pageSize: number }
  /** out[s] = x[last row of sequence s] */
  | { op: 'gather_last'; x: string; out: string; dim: number }
  /** The next token of each sequence from its logits row ([seqs, vocab]), written to the i32 buffer out[s].
   *  params [seqs, 4] (i32): temperature (f32 bits; 0 = argmax), seed low and high 32 bits, draw index. T > 0 draws
   *  from softmax(logits / T) by the Gumbel-max trick, the noise a hash of (seed, draw, token) (sampleNoise). */
  | { op: 'sample'; logits: string; params: string; out: string; vocab: number };

export interface Plan {
  readonly ops: readonly Op[];
}

export interface Backend {
  readonly name: string;
  /** Create (or replace) a buffer of `elements` values, optionally initialised (weights). New buffers hold zeros. */
  create(name: string, elements: number, kind?: BufferKind, init?: ArrayLike<number>, storage?: WeightDType): void;
  has(name: string): boolean;
  /** Element count of a buffer. */
  size(name: string): number;
  write(name: string, data: ArrayLike<number>, offset?: number): void;
  /** Values of a buffer (i32 ids as numbers). The copy is ordered after every run() / write() called before it and
   *  before every one called after it, even though the promise resolves later. */
  read(name: string, offset?: number, count?: number): Promise<Float32Array>;
  /** Copy `count` elements within one buffer (state slots: forks, snapshots). */
  copyWithin(name: string, srcOffset: number, dstOffset: number, count: number): void;
  /** Bytes held by all buffers whose name matches. */
  bytes(filter?: (name: string) => boolean): number;
  /** Run a Plan. Its work is ordered after every earlier run / write / read and before every later one. */
  run(plan: Plan, step: Step): Promise<void>;
  destroy(): Promise<void>;
}

/** The 2Mamba readout divides by max(den, DEN_FLOOR) in every path: a degenerate 0/0 row gives y = 0 (spec §5.5). */
export const DEN_FLOOR = 1e-30;

/** lowbias32 (Chris Wellons): a 32-bit integer hash, the counter-based RNG of device sampling. */
export function hash32(x: number): number {
  x ^= x >>> 16; x = Math.imul(x, 0x7feb352d); x ^= x >>> 15; x = Math.imul(x, 0x846ca68b); x ^= x >>> 16;
  return x >>> 0;
}

/** The key of one draw: (seed low, seed high, draw index) hashed together. */
export const drawKey = (seedLo: number, seedHi: number, draw: number) => hash32(seedLo ^ hash32(seedHi ^ hash32(draw ^ 0x9e3779b9)));

/** Gumbel noise −log(−log u) for token i of a draw, u = (top 24 bits of hash(key ^ hash(i)) + ½) / 2²⁴ ∈ (0, 1). */
export const sampleNoise = (key: number, i: number) => -Math.log(-Math.log(((hash32(key ^ hash32(i)) >>> 8) + 0.5) / 16777216));

