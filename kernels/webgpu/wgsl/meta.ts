// The step meta: one storage buffer (binding 1 of every kernel) that tells the kernels the step's layout, written
// once per step while the recorded dispatches are replayed. Layout (u32):
//   [0] sequences, [1] rows, [2] row table base, [3] page table base, [4] split-row list base, [5] tile list base,
//   [6] split rows, [7] tiles; [8 + 6s …] per sequence: slot, pos, rows, first row, page-table offset, pages;
//   [rowBase + 2r …] per row: its sequence, its index in the sequence; then the two attention work lists: rows of the
//   sequences under TILE_MIN_ROWS rows (split-K) and (sequence, first row) of every TILE_ROWS-row tile of the others.
import { type Step, totalRows } from '../../backend.js';

/** A sequence with at least this many rows in a step takes the tiled attention; fewer (decode) the split-K kernel. */
export const TILE_MIN_ROWS = 5;
/** Whether a sequence's rows of a step take the tiled attention (else the split-K kernel, row by row). */
export const takesTiles = (s: { rows: number }) => s.rows >= TILE_MIN_ROWS;
/** Query rows per workgroup of the tiled (prefill) attention. */
export const TILE_ROWS = 64;

export const STEP_META_WGSL = /* wgsl */ `@group(0) @binding(1) var<storage, read> stepMeta: array<u32>;
fn nSeqs() -> u32 { return stepMeta[0]; }
fn nRows() -> u32 { return stepMeta[1]; }
fn seqSlot(s: u32) -> u32 { return stepMeta[8u + s * 6u]; }
fn seqPos(s: u32) -> u32 { return stepMeta[8u + s * 6u + 1u]; }
fn seqRows(s: u32) -> u32 { return stepMeta[8u + s * 6u + 2u]; }
fn seqRow0(s: u32) -> u32 { return stepMeta[8u + s * 6u + 3u]; }
fn seqPage(s: u32, j: u32) -> u32 { return stepMeta[stepMeta[3] + stepMeta[8u + s * 6u + 4u] + j]; }
fn rowSeq(r: u32) -> u32 { return stepMeta[stepMeta[2] + 2u * r]; }
fn rowT(r: u32) -> u32 { return stepMeta[stepMeta[2] + 2u * r + 1u]; }
fn splitRow(i: u32) -> u32 { return stepMeta[stepMeta[4] + i]; }
fn tileSeq(i: u32) -> u32 { return stepMeta[stepMeta[5] + 2u * i]; }
fn tileRow(i: u32) -> u32 { return stepMeta[stepMeta[5] + 2u * i + 1u]; }
`;

/** The opening of a tiled-attention workgroup (`wg` its id; dispatched splits × (group's tiles × heads)): the params (H,
 *  Hkv, P, useC, splits), its range index sp, tile (sequence s, first row t0, rows n, position p0, lastRow), head h and
 *  key range [j0, j1) of `splitK` keys; a range past the tile's last position returns at once (uniform over the
 *  workgroup). */
export const tileRange = (
  splitK: number,
) => /* wgsl */ `  let H = prm.heads; let Hkv = prm.kvHeads; let P = prm.pageSize; let useC = prm.useC == 1u; let splits = prm.splits;
  let sp = wg.x; let ti = prm.tileBase + wg.y / H; let h = wg.y % H;
  let s = tileSeq(ti); let t0 = tileRow(ti); let n = seqRows(s); let p0 = seqPos(s);
  let lastRow = min(t0 + ${TILE_ROWS}u, n) - 1u;
  let j0 = sp * ${splitK}u; let j1 = min(p0 + lastRow + 1u, j0 + ${splitK}u);
  if (j0 >= j1) { return; }`;

/** The step's attention work in row order: each row of a short (decode) sequence for the split-K kernel, each tile of
 *  TILE_ROWS rows (the last one shorter) of the others for the tiled one; `row` the unit's first row in the step. */
function attentionUnits(step: Step): { seq: number; t: number; row: number; rows: number; tile: boolean }[] {
  const units: ReturnType<typeof attentionUnits> = [];
  let r = 0;
  step.seqs.forEach((s, seq) => {
    const tile = takesTiles(s),
      size = tile ? TILE_ROWS : 1;
    for (let t = 0; t < s.rows; t += size) units.push({ seq, t, row: r + t, rows: Math.min(size, s.rows - t), tile });
    r += s.rows;
  });
  return units;
}

/** The step's attention work: rows of short (decode) sequences for the split-K kernel, tiles of the others. */
export function attentionWork(step: Step): { splitRows: number[]; tiles: [number, number][] } {
  const units = attentionUnits(step);
  return {
    splitRows: units.filter((u) => !u.tile).map((u) => u.row),
    tiles: units.filter((u) => u.tile).map((u) => [u.seq, u.t]),
  };
}

/** The step's attention work in groups of consecutive rows, at most `maxRows` each (whole tiles; a group's partials
 *  must fit one scratch buffer): each group's first row and rows, its split-K rows (from index split0 of the step's
 *  split-row list) and its tiles (from index tile0 of the tile list). */
export function attentionGroups(
  step: Step,
  maxRows: number,
): { row0: number; rows: number; split0: number; splitRows: number; tile0: number; tiles: number }[] {
  const groups: ReturnType<typeof attentionGroups> = [];
  let g = { row0: 0, rows: 0, split0: 0, splitRows: 0, tile0: 0, tiles: 0 };
  for (const u of attentionUnits(step)) {
    if (u.rows > maxRows)
      throw new Error(
        `attention: the partials of ${u.rows} rows at this context need more than one scratch buffer holds on this ` +
          'adapter; use a shorter context',
      );
    if (g.rows + u.rows > maxRows) {
      groups.push(g);
      g = { row0: u.row, rows: 0, split0: g.split0 + g.splitRows, splitRows: 0, tile0: g.tile0 + g.tiles, tiles: 0 };
    }
    g.rows += u.rows;
    if (u.tile) g.tiles++;
    else g.splitRows++;
  }
  groups.push(g);
  return groups;
}

/** The meta words of a step. */
export function stepMeta(step: Step): Uint32Array {
  const rows = totalRows(step),
    n = step.seqs.length;
  const { splitRows, tiles } = attentionWork(step);
  const rowBase = 8 + 6 * n,
    splitBase = rowBase + 2 * rows,
    tileBase = splitBase + splitRows.length;
  const pageBase = tileBase + 2 * tiles.length;
  const pages = step.seqs.reduce((s, q) => s + q.pages.length, 0);
  const m = new Uint32Array(pageBase + Math.max(1, pages));
  m.set([n, rows, rowBase, pageBase, splitBase, tileBase, splitRows.length, tiles.length]);
  m.set(splitRows, splitBase);
  m.set(tiles.flat(), tileBase);
  let r = 0,
    pg = 0;
  step.seqs.forEach((s, i) => {
    m.set([s.slot, s.pos, s.rows, r, pg, s.pages.length], 8 + 6 * i);
    for (let t = 0; t < s.rows; t++, r++) {
      m[rowBase + 2 * r] = i;
      m[rowBase + 2 * r + 1] = t;
    }
    m.set(s.pages, pageBase + pg);
    pg += s.pages.length;
  });
  return m;
}
