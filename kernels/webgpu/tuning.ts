// Tuning knobs of the WebGPU kernels, read once from the environment (defaults from the H100 sweeps of docs/perf.md).
// One place for every knob, so a tuning run on the GPU host changes environment variables, not code.
import { phiDim } from '../ops.js';

/** A matmul workgroup: R rows × (CG column groups × C columns), K split over TK lanes per column group. */
export interface MatmulShape {
  R: number;
  C: number;
  TK: number;
  CG: number;
}

function envInts(name: string, fallback: string, check: (v: number[]) => boolean, what: string): number[][] {
  const raw = process.env[name] ?? fallback;
  const groups = raw.split(';').map((t) => t.split(',').map(Number));
  if (
    !groups.every((g) => g.every(Number.isInteger)) ||
    !check(groups.flat()) ||
    !groups.every((g) => g.length === groups[0]!.length)
  ) {
    throw new Error(`${name} must be ${what}, got ${JSON.stringify(raw)}`);
  }
  return groups;
}

/**
 * Matmul workgroup shapes by the rows a step multiplies: one row (decode at batch 1, the LM head), a few, many
 * (batched decode, prefill): R rows share every weight load. FURY_MATMUL_SHAPES="one;few;many", each "R,C,TK,CG".
 * Defaults chosen from a sweep on the H100 (docs/perf.md "Tuning"): GPU ms per decode step of the small 2Mamba model.
 */
export const MATMUL_SHAPES: readonly MatmulShape[] = (() => {
  const g = envInts(
    'FURY_MATMUL_SHAPES',
    '1,2,64,2;4,4,64,1;8,4,16,4',
    (v) => v.every((n) => n >= 1),
    'three "R,C,TK,CG" groups separated by ";"',
  );
  if (g.length !== 3 || g[0]!.length !== 4)
    throw new Error(
      `FURY_MATMUL_SHAPES must be three "R,C,TK,CG" groups separated by ";", got ${JSON.stringify(process.env.FURY_MATMUL_SHAPES)}`,
    );
  return g.map(([R, C, TK, CG]) => ({ R: R!, C: C!, TK: TK!, CG: CG! }));
})();
export const matmulShape = (rows: number) => MATMUL_SHAPES[rows <= 1 ? 0 : rows <= 4 ? 1 : 2]!;

/** From this many rows a matmul runs as the tiled GEMM (prefill chunks, large batches); FURY_GEMM_MIN_ROWS. */
export const GEMM_MIN_ROWS = Number(process.env.FURY_GEMM_MIN_ROWS ?? 64);
if (!Number.isInteger(GEMM_MIN_ROWS) || GEMM_MIN_ROWS < 1) {
  throw new Error(
    `FURY_GEMM_MIN_ROWS must be a positive integer, got ${JSON.stringify(process.env.FURY_GEMM_MIN_ROWS)}`,
  );
}

/** gemm_mma's tile (matmul-tc.ts): TM rows × TN columns of out, SGM × SGN subgroups of 32 (each TM/SGM × TN/SGN);
 *  FURY_MMA_SHAPE="TM,TN,SGM,SGN". */
export interface MmaShape {
  TM: number;
  TN: number;
  SGM: number;
  SGN: number;
}
export const MMA_SHAPE: MmaShape = (() => {
  const what = '"TM,TN,SGM,SGN": each subgroup a multiple of 16 × 16, SGN even, 2 to 16 subgroups';
  const [[TM, TN, SGM, SGN]] = envInts('FURY_MMA_SHAPE', '128,128,4,2', (v) => v.length === 4, what) as [number[]];
  const ok =
    TM! % (16 * SGM!) === 0 && TN! % (16 * SGN!) === 0 && SGN! % 2 === 0 && SGM! * SGN! >= 2 && SGM! * SGN! <= 16;
  if (!ok) throw new Error(`FURY_MMA_SHAPE must be ${what}, got ${JSON.stringify(process.env.FURY_MMA_SHAPE)}`);
  return { TM: TM!, TN: TN!, SGM: SGM!, SGN: SGN! };
})();

/** From this many rows (below GEMM_MIN_ROWS; any number for a per-sequence matmul such as a batch's LM head) a matmul
 *  runs as the skinny tensor-core product `gemm_skinny` where tensor cores run (batched decode; docs/perf.md "Batched
 *  decode's projections on tensor cores"); FURY_SKINNY_MIN_ROWS, 0 for never. */
export const SKINNY_MIN_ROWS = Number(process.env.FURY_SKINNY_MIN_ROWS ?? 8);
if (!Number.isInteger(SKINNY_MIN_ROWS) || SKINNY_MIN_ROWS < 0)
  throw new Error(
    `FURY_SKINNY_MIN_ROWS must be a non-negative integer, got ${JSON.stringify(process.env.FURY_SKINNY_MIN_ROWS)}`,
  );

/** gemm_skinny's workgroup (FURY_SKINNY_SHAPE="SG,NT,U"): SG subgroups splitting each K step, NT column fragments of
 *  16, U K fragments of 16 per subgroup and step (halved where workgroup memory runs short). */
export const SKINNY_SHAPE = (() => {
  const [g] = envInts(
    'FURY_SKINNY_SHAPE',
    '4,1,2',
    (v) => v.length === 3 && [1, 2, 4, 8, 16].includes(v[0]!) && [1, 2, 4].includes(v[1]!) && [1, 2, 4].includes(v[2]!),
    '"SG,NT,U" with SG 1, 2, 4, 8 or 16 and NT, U 1, 2 or 4',
  );
  return { SG: g![0]!, NT: g![1]!, U: g![2]! };
})();

/** State rows per thread of the 2Mamba decode state kernel: few (a wide grid) when few (sequence, head) pairs run.
 *  FURY_M2_RPT="few,many". */
export const M2_RPT = envInts(
  'FURY_M2_RPT',
  '4,8',
  (v) => v.length === 2 && v.every((n) => n >= 1 && n <= 32),
  'two integers from 1 to 32 ("few,many")',
)[0]!;
export const m2Rpt = (pairs: number) => M2_RPT[pairs >= 128 ? 1 : 0]!;

/** Tensor cores (FURY_MATRICES): on (subgroup matrices), emulated (the same tile walks in plain WGSL), off; unset: on
 *  where the adapter has them (prefill's projections and tiled attention, docs/perf.md), else off. */
export const MATRICES = ((): 'on' | 'off' | 'emulated' | undefined => {
  const v = process.env.FURY_MATRICES;
  if (v !== undefined && v !== 'on' && v !== 'off' && v !== 'emulated')
    throw new Error(`FURY_MATRICES must be on, off or emulated, got ${JSON.stringify(v)}`);
  return v;
})();

/** Ranges of state rows the 2Mamba readout is split over (FURY_M2_READ_SPLITS): a tile of 64 rows of a (sequence,
 *  head) is splits workgroups, each walking DD / splits state rows; their partial sums are added per row. */
export const M2_READ_SPLITS = Number(process.env.FURY_M2_READ_SPLITS ?? 2);
if (!Number.isInteger(M2_READ_SPLITS) || M2_READ_SPLITS < 1 || M2_READ_SPLITS > 64)
  throw new Error(`FURY_M2_READ_SPLITS must be an integer from 1 to 64, got ${process.env.FURY_M2_READ_SPLITS}`);
/** The same on tensor cores (m2_read_mma), where fewer, longer workgroups pay: one range by default (a 4096-row step
 *  at 4k on an H100, run68: 0.406 ms a layer against 0.433–0.452 with 2 ranges, 0.485 with 3 or 4). */
export const M2_READ_SPLITS_TC = Number(process.env.FURY_M2_READ_SPLITS ?? 1);

/** Rows per chunk of the 2Mamba chunked prefill (FURY_M2_CHUNK: 64 or 128): the state is read and written once per
 *  chunk, and each chunk is a readout and an update dispatch (the tensor-core kernels take 64). Default 128: on the
 *  H200 the readout and update of a 256-row step took 5.1 ms in chunks of 128 against 6.3 ms in chunks of 64. */
export const M2_CHUNK = Number(process.env.FURY_M2_CHUNK ?? 128);
if (M2_CHUNK !== 64 && M2_CHUNK !== 128)
  throw new Error(`FURY_M2_CHUNK must be 64 or 128, got ${JSON.stringify(process.env.FURY_M2_CHUNK)}`);

/** Keys per workgroup of the tiled (prefill) attention (FURY_ATTN_TILE_RANGE: 256, 512, 1024, 2048 or 4096): each
 *  workgroup writes one partial (max, sum, Σ e·v) per row for attn_reduce; longer ranges, fewer partials and fewer
 *  workgroups to set up. Decode's split-K kernel keeps ranges of 256. */
export const ATTN_TILE_RANGE = Number(process.env.FURY_ATTN_TILE_RANGE ?? 1024);
if (![256, 512, 1024, 2048, 4096].includes(ATTN_TILE_RANGE))
  throw new Error(`FURY_ATTN_TILE_RANGE must be 256, 512, 1024, 2048 or 4096, got ${process.env.FURY_ATTN_TILE_RANGE}`);

/** Rows per segment of the 2Mamba prefill on tensor cores (FURY_M2_SEGMENT, a multiple of 256): within a segment the
 *  scores run in score space as an attention over the segment's rows (tensor cores) and the carried state is read out for
 *  all its rows at once; the state is updated once per segment. Longer segments: fewer passes over the state, more
 *  score work per row (segment / 2 keys on average). */
export const M2_SEGMENT = Number(process.env.FURY_M2_SEGMENT ?? 512);
if (!Number.isInteger(M2_SEGMENT) || M2_SEGMENT < 256 || M2_SEGMENT > 8192 || M2_SEGMENT % 256 !== 0)
  throw new Error(`FURY_M2_SEGMENT must be a multiple of 256 from 256 to 8192, got ${process.env.FURY_M2_SEGMENT}`);

/** Blocks of each (sequence, head)'s state over which the readout's scale of S, max |S|, is taken (m2_scale, m2_scan:
 *  a workgroup of 256 each; one workgroup per head left most of the GPU idle, 21 µs per launch on an H100). */
export const SCALE_BLOCKS = 16;
/** vec4 of S per thread of m2_scan (its loads of a segment in flight together), and its blocks per (sequence, head). */
export const SCAN_EPT = 4;
export const m2ScanBlocks = (d: number) => Math.ceil((phiDim(d) * d) / 4 / (256 * SCAN_EPT));

/** The most bytes 2Mamba's prefill on tensor cores may hold for the states at its segments' starts
 *  (FURY_M2_BOUNDARY_BYTES): where a step's every sequence × segment × head fits, its segments' updates run at once,
 *  a scan forms each segment's starting state, and their readouts run at once (3 dispatches); past it, or in a step of
 *  one segment, segment after segment (3 dispatches each, a quarter of the GPU's workgroups at 1024 rows). */
export const M2_BOUNDARY_BYTES = Number(process.env.FURY_M2_BOUNDARY_BYTES ?? 256 * 2 ** 20);
if (!Number.isInteger(M2_BOUNDARY_BYTES) || M2_BOUNDARY_BYTES < 0)
  throw new Error(`FURY_M2_BOUNDARY_BYTES must be a byte count, got ${process.env.FURY_M2_BOUNDARY_BYTES}`);

/** What a 2Mamba prefill step of `seqs` sequences, the longest `maxRows` rows, holds for its segments' starting states
 *  (S, n and their scales per sequence, segment and head) where its segments run at once, else 0. `bufferBytes`: the
 *  most one buffer may hold. */
export function m2BoundaryBytes(seqs: number, maxRows: number, heads: number, d: number, bufferBytes: number): number {
  const segs = Math.ceil(maxRows / M2_SEGMENT),
    S = seqs * segs * heads * phiDim(d) * d * 4;
  return segs > 1 && S <= Math.min(M2_BOUNDARY_BYTES, bufferBytes)
    ? S + seqs * segs * heads * (phiDim(d) + m2ScanBlocks(d)) * 4
    : 0;
}

/** Dawn's robustness (FURY_GPU_ROBUSTNESS=on): every buffer access clamped into bounds. Off by default, as native
 *  GPU servers run: our kernels index in bounds by construction (the kernel tests run with it off, on lavapipe and on
 *  the GPU host), and on an H100 it cost a third of a batch-1 decode step (docs/perf.md "Dawn's robustness"). */
export const GPU_ROBUSTNESS = process.env.FURY_GPU_ROBUSTNESS === 'on';
if (![undefined, 'on', 'off'].includes(process.env.FURY_GPU_ROBUSTNESS))
  throw new Error(`FURY_GPU_ROBUSTNESS must be on or off, got ${JSON.stringify(process.env.FURY_GPU_ROBUSTNESS)}`);

/** Readbacks larger than this many bytes are copied from the mapped staging buffer into host memory a piece per
 *  event-loop turn (backend.ts copyOut); FURY_READBACK_CHUNK_BYTES, 0 = in one copy. A 173 MB snapshot held the
 *  event loop 68–86 ms (once 320) in one copy, 1.6–13 ms in pieces of 1 MiB, in the same total time (lavapipe machine,
 *  docs/bench/readback-2026-11-27). */
export const READBACK_CHUNK_BYTES = Number(process.env.FURY_READBACK_CHUNK_BYTES ?? 2 ** 20);
if (!Number.isInteger(READBACK_CHUNK_BYTES) || READBACK_CHUNK_BYTES < 0 || READBACK_CHUNK_BYTES % 4 !== 0) {
  throw new Error(
    `FURY_READBACK_CHUNK_BYTES must be a non-negative multiple of 4 bytes, got ${JSON.stringify(process.env.FURY_READBACK_CHUNK_BYTES)}`,
  );
}

/** dawn.node ticks the device at most once per this many µs while a WebGPU promise is pending (`ticks.ts`);
 *  FURY_DAWN_TICK_US, 0 = as dawn.node does (every event-loop turn). 25 from the H100 sweep of 0 / 10 / 25 / 50
 *  (docs/perf.md, "Pacing dawn.node's ticks"). */
export const DAWN_TICK_US = Number(process.env.FURY_DAWN_TICK_US ?? 25);
if (!Number.isFinite(DAWN_TICK_US) || DAWN_TICK_US < 0 || DAWN_TICK_US > 10_000) {
  throw new Error(
    `FURY_DAWN_TICK_US must be a number of microseconds from 0 to 10000, got ${JSON.stringify(process.env.FURY_DAWN_TICK_US)}`,
  );
}

/** Dawn toggles for the instance: robustness off unless asked for, plus FURY_DAWN_TOGGLES (comma-separated), for
 *  measurements on the GPU host: e.g. `dump_shaders` (Tint's output on stderr). Toggles Dawn does not know are ignored
 *  with a warning. */
export const DAWN_TOGGLES: readonly string[] = [
  ...(GPU_ROBUSTNESS ? [] : ['disable_robustness']),
  ...(process.env.FURY_DAWN_TOGGLES ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => /^[a-z0-9_]+$/.test(t)),
];
