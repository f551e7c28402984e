// The fast CPU backend's ops: each op as phases the workers run in lockstep (kernels/wasm/team.ts): an optional
// serial part on the leader, then `units` independent pieces claimed by whichever worker is free. matmul and mamba2
// and attention run in WebAssembly SIMD (kernels/wasm/as/), attention one row per unit; the other ops, cheap next to
// these, run the reference code on the leader.
import type { Step } from '../backend.js';
import { attentionRow } from '../cpu/attention.js';
import { OPS as REFERENCE } from '../cpu/backend.js';
import { pageOf, type CpuBuffers, type CpuOp } from '../cpu/common.js';
import { rmsnorm, siluMul } from '../cpu/matmul.js';
import { phiDim, qkvOffsets, type Op } from '../ops.js';
import type { Kernels } from './protocol.js';

/** Rows per chunk of the chunked 2Mamba prefill (a multiple of 4). */
export const MAMBA2_CHUNK = 64;
/** Output columns per matmul unit. */
const COLUMNS = 32;
/** Bytes of a page table at the start of a worker's attention scratch (the logits follow, 64-byte aligned). */
const pagesBlock = (pages: number) => Math.ceil((pages * 4) / 64) * 64;

export interface Ctx {
  bufs: CpuBuffers;
  k: Kernels;
  /** Byte offset of a buffer in the shared memory. */
  ptr(name: string): number;
  /** An i32 view of the shared memory (scratch tables). */
  i32(offset: number, length: number): Int32Array;
  /** The shared prologue block and this worker's private scratch (byte offsets). */
  temp: number;
  scratch: number;
  step: Step;
  rows: number;
  /** First row of each sequence of the step. */
  rowStart: number[];
}

export interface Phases {
  serial?: () => void;
  units: number;
  unit: (i: number) => void;
}

type FastOp<K extends Op['op']> = (c: Ctx, op: Extract<Op, { op: K }>) => Phases;

const reference = (c: Ctx, op: Op): Phases => ({
  serial: () => (REFERENCE[op.op] as CpuOp<Op['op']>)(c.bufs, op, c.step, c.rows),
  units: 0,
  unit: () => {},
});

/** The prologue (rmsnorm or silu·mul rows into the shared block) on the leader, then column blocks of the product. */
const matmul: FastOp<'matmul'> = (c, op) => {
  const R = op.perSeq ? c.step.seqs.length : c.rows;
  const staged = !!op.norm || op.act === 'silu_mul';
  const x = staged ? c.temp : c.ptr(op.x),
    w = c.ptr(op.w),
    out = c.ptr(op.out);
  return {
    serial: staged
      ? () => {
          const t = c.bufs.temp(R * op.k);
          if (op.norm) rmsnorm(c.bufs.f32(op.x), c.bufs.f32(op.norm.weight), t, R, op.k, op.norm.eps);
          else siluMul(c.bufs.f32(op.x), t, R, op.k);
        }
      : undefined,
    units: Math.ceil(op.n / COLUMNS),
    unit: (i) => c.k.gemm(x, w, out, R, op.k, op.n, i * COLUMNS, Math.min(op.n, (i + 1) * COLUMNS), !!op.add),
  };
};

/** One unit per (sequence, head): the recurrent step for one row, the chunked form for several. */
const mamba2: FastOp<'mamba2'> = (c, op) => {
  const H = op.heads,
    d = op.headDim;
  if (d % 8 !== 0) return reference(c, op);
  const D = phiDim(d),
    E = H * d,
    width = 3 * E;
  const src = c.ptr(op.qkv),
    logA = c.ptr(op.logA),
    S = c.ptr(op.S),
    N = c.ptr(op.N),
    y = c.ptr(op.out);
  const S32 = c.bufs.f32(op.S),
    N32 = c.bufs.f32(op.N);
  return {
    units: c.step.seqs.length * H,
    unit: (i) => {
      const s = c.step.seqs[Math.floor(i / H)]!,
        h = i % H,
        r0 = c.rowStart[Math.floor(i / H)]!;
      const head = s.slot * H + h,
        Sh = S + head * D * d * 4,
        Nh = N + head * D * 4;
      if (s.pos === 0) {
        S32.fill(0, head * D * d, (head + 1) * D * d);
        N32.fill(0, head * D, (head + 1) * D);
      }
      if (s.rows === 1) {
        const o = src + r0 * width * 4;
        const a = Math.exp(c.bufs.f32(op.logA)[r0 * H + h]!);
        c.k.step(
          o + h * d * 4,
          o + (E + h * d) * 4,
          o + (2 * E + h * d) * 4,
          a,
          Sh,
          Nh,
          y + (r0 * E + h * d) * 4,
          d,
          c.scratch,
        );
      } else if (s.rows > 1) {
        c.k.chunked(
          src + r0 * width * 4,
          h * d,
          E + h * d,
          2 * E + h * d,
          width,
          logA + (r0 * H + h) * 4,
          H,
          s.rows,
          Sh,
          Nh,
          y + (r0 * E + h * d) * 4,
          E,
          d,
          MAMBA2_CHUNK,
          s.pos === 0,
          c.scratch,
        );
      }
    },
  };
};

/** One unit per row: every head of the row in WebAssembly SIMD (d % 4 = 0), over the sequence's page table copied
 *  into this worker's scratch; other head dims run the reference row function (f64). */
const attention: FastOp<'attention'> = (c, op) => {
  const { heads, kvHeads, headDim: d } = op.layout,
    off = qkvOffsets(op.layout),
    P = op.pageSize;
  const x = c.ptr(op.qkv),
    K = c.ptr(op.k),
    V = c.ptr(op.v),
    C = op.c ? c.ptr(op.c) : 0,
    out = c.ptr(op.out);
  return {
    units: c.rows,
    unit: (r) => {
      let i = c.rowStart.length - 1;
      while (c.rowStart[i]! > r) i--;
      const s = c.step.seqs[i]!,
        t = r - c.rowStart[i]!;
      if (d % 4 !== 0) return attentionRow(c.bufs, op, s, t, r);
      const n = s.pos + t + 1;
      pageOf(s.pages, n - 1, P); // throws when the row's position is beyond the sequence's pages
      const pages = c.scratch,
        logits = pages + pagesBlock(s.pages.length);
      c.i32(pages, s.pages.length).set(s.pages);
      for (let h = 0; h < heads; h++)
        c.k.attend(
          x + (r * off.width + off.q(h)) * 4,
          K,
          V,
          pages,
          P,
          kvHeads,
          Math.floor(h / off.group),
          heads,
          h,
          n,
          d,
          C,
          out + (r * heads * d + h * d) * 4,
          logits,
        );
    },
  };
};

const FAST: { [K in Op['op']]?: FastOp<K> } = { matmul, mamba2, attention };

export function phases(c: Ctx, op: Op): Phases {
  const fast = FAST[op.op] as FastOp<Op['op']> | undefined;
  return fast ? fast(c, op) : reference(c, op);
}

/** Scratch a plan needs: f32 elements of the shared prologue block for `rows`, bytes of each worker's block. */
export function scratchNeeds(
  ops: readonly Op[],
  step: Step,
  rows: number,
  k: Kernels,
): { temp: number; worker: number } {
  let temp = 0,
    worker = 0;
  for (const op of ops) {
    if (op.op === 'matmul' && (op.norm || op.act)) temp = Math.max(temp, (op.perSeq ? step.seqs.length : rows) * op.k);
    if (op.op === 'mamba2') worker = Math.max(worker, k.chunkScratch(op.headDim, MAMBA2_CHUNK), op.headDim * 4);
    if (op.op === 'attention')
      for (const s of step.seqs) worker = Math.max(worker, pagesBlock(s.pages.length) + (s.pos + s.rows) * 4);
  }
  return { temp, worker };
}
