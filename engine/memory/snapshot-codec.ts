// The one byte format of a 2Mamba state snapshot outside the device, shared by the disk tier (state-disk.ts) and the
// Redis tier (state-redis.ts): a magic line, a JSON header (the model's identity, the token count, the state layout,
// a sha256 of the payload) and the payload (the token ids, then each state buffer in layout order, f32). Decoding
// checks every one of them, so a snapshot written for another model, another layout or damaged on the way is an
// error (the caller's miss), never a wrong state.
import { createHash } from 'node:crypto';
import type { SlotSnapshot } from '../model/model.js';

const MAGIC = 'FURYSNAP1\n';

export interface Snapshot {
  tokens: Int32Array;
  data: SlotSnapshot;
}

/** A model's state buffers: [name, f32 count] in a fixed order (Model.slotBuffers()). */
export type StateLayout = readonly [string, number][];

/** sha256 of `data`, hashed 1 MiB at a time with the event loop let in between: a snapshot of hundreds of MB is
 *  checked without holding up the step loop or HTTP. */
async function sha256(data: Buffer): Promise<string> {
  const h = createHash('sha256'),
    step = 1 << 20;
  for (let at = 0; at < data.length; at += step) {
    h.update(data.subarray(at, at + step));
    if (at + step < data.length) await new Promise((r) => setImmediate(r));
  }
  return h.digest('hex');
}

export async function encodeSnapshot(identity: string, layout: StateLayout, s: Snapshot): Promise<Buffer> {
  const parts = [Buffer.from(s.tokens.buffer, s.tokens.byteOffset, s.tokens.byteLength)];
  for (const [name] of layout) {
    const v = s.data.get(name)!;
    parts.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  }
  const payload = Buffer.concat(parts);
  const header = Buffer.from(
    JSON.stringify({
      identity,
      tokens: s.tokens.length,
      layout,
      sha256: await sha256(payload),
    }),
  );
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  return Buffer.concat([Buffer.from(MAGIC), len, header, payload]);
}

/** The snapshot in `buf`, checked against the model's identity and layout and its own checksum; throws saying why. */
export async function decodeSnapshot(buf: Buffer, identity: string, layout: StateLayout): Promise<Snapshot> {
  if (buf.length < MAGIC.length + 4 || buf.subarray(0, MAGIC.length).toString() !== MAGIC)
    throw new Error('not a fury state snapshot');
  const hl = buf.readUInt32LE(MAGIC.length),
    at = MAGIC.length + 4;
  let h: { identity: string; tokens: number; layout: [string, number][]; sha256: string };
  try {
    h = JSON.parse(buf.subarray(at, at + hl).toString()) as typeof h;
  } catch {
    throw new Error('its header is damaged');
  }
  if (h.identity !== identity) throw new Error('written for another model or weight dtype');
  if (JSON.stringify(h.layout) !== JSON.stringify(layout)) throw new Error('its state layout differs');
  const payload = buf.subarray(at + hl);
  const want = 4 * h.tokens + 4 * layout.reduce((s, [, n]) => s + n, 0);
  if (payload.length !== want) throw new Error(`${payload.length} payload bytes, expected ${want}`);
  if ((await sha256(payload)) !== h.sha256) throw new Error('checksum mismatch');
  const copy = new Uint8Array(payload).buffer; // aligned
  const tokens = new Int32Array(copy, 0, h.tokens);
  const data: SlotSnapshot = new Map();
  let off = 4 * h.tokens;
  for (const [name, n] of layout) {
    data.set(name, new Float32Array(copy, off, n));
    off += 4 * n;
  }
  return { tokens, data };
}

/** A name for the snapshot of `tokens` under a model identity (a file name, a Redis key): sha256, 40 hex digits. */
export function snapshotName(identity: string, tokens: ArrayLike<number>): string {
  const ids = tokens instanceof Int32Array ? tokens : Int32Array.from(tokens as ArrayLike<number>);
  return createHash('sha256')
    .update(identity)
    .update(Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength))
    .digest('hex')
    .slice(0, 40);
}
