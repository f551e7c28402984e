// The disk tier of the 2Mamba state cache (--state-cache-dir): snapshots written as files so they survive a restart,
// read back at startup into host RAM. Every file read back is checked against its own checksum, the model's identity
// (config, weight file headers and sizes, weight dtype), the state layout and its token key: a mismatch or a damaged
// file is skipped with one log line, never a wrong state.
import { createHash } from 'node:crypto';
import { open, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SlotSnapshot } from '../model/model.js';

const MAGIC = 'FURYSNAP1\n';

export interface DiskSnapshot {
  tokens: Int32Array;
  data: SlotSnapshot;
}

/** A checkpoint's identity for snapshots: its config, each weight file's size, header and 64 samples of 4 KiB spread
 *  over it (different weights differ there without reading gigabytes), and the weights' dtype and architecture. */
export async function modelIdentity(dir: string, variant: string): Promise<string> {
  const h = createHash('sha256');
  h.update(await readFile(join(dir, 'config.json')));
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.safetensors')).sort()) {
    const fh = await open(join(dir, f));
    try {
      const size = (await fh.stat()).size,
        chunk = Buffer.alloc(4096);
      h.update(f).update(String(size));
      for (let i = 0; i <= 64; i++) {
        const at = i === 0 ? 0 : Math.floor(((size - chunk.length) * i) / 64);
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, Math.max(0, at));
        h.update(chunk.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  }
  return h.update(variant).digest('hex');
}

const fileOf = (identity: string, tokens: Int32Array) =>
  createHash('sha256')
    .update(identity)
    .update(Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength))
    .digest('hex')
    .slice(0, 40) + '.snap';

export class StateDisk {
  constructor(
    readonly dir: string,
    private readonly identity: string,
    private readonly layout: readonly [string, number][],
    readonly capacityBytes: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Write a snapshot (atomically: a temporary file renamed), then drop the oldest files past the byte cap. */
  async save(s: DiskSnapshot): Promise<void> {
    const parts = [Buffer.from(s.tokens.buffer, s.tokens.byteOffset, s.tokens.byteLength)];
    for (const [name] of this.layout) {
      const v = s.data.get(name)!;
      parts.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    }
    const payload = Buffer.concat(parts);
    const header = Buffer.from(
      JSON.stringify({
        identity: this.identity,
        tokens: s.tokens.length,
        layout: this.layout,
        sha256: createHash('sha256').update(payload).digest('hex'),
      }),
    );
    const len = Buffer.alloc(4);
    len.writeUInt32LE(header.length);
    const file = join(this.dir, fileOf(this.identity, s.tokens)),
      tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, Buffer.concat([Buffer.from(MAGIC), len, header, payload]));
    await rename(tmp, file);
    await this.trim();
  }

  private async files(): Promise<{ path: string; size: number; mtime: number }[]> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.snap'));
    const out = [];
    for (const n of names) {
      const st = await stat(join(this.dir, n)).catch(() => null);
      if (st) out.push({ path: join(this.dir, n), size: st.size, mtime: st.mtimeMs });
    }
    return out.sort((a, b) => b.mtime - a.mtime); // newest first
  }

  /** Bytes of the snapshot files kept (as of the last write or start-up read). */
  bytes = 0;

  private async trim(): Promise<void> {
    let total = 0,
      kept = 0;
    for (const f of await this.files()) {
      total += f.size;
      if (total > this.capacityBytes) await unlink(f.path).catch(() => {});
      else kept = total;
    }
    this.bytes = kept;
  }

  /** The snapshots on disk, newest first, each validated; stops after `maxBytes` of state. */
  async *load(maxBytes: number): AsyncGenerator<DiskSnapshot> {
    let bytes = 0;
    const files = await this.files();
    this.bytes = files.reduce((s, f) => s + f.size, 0);
    for (const f of files) {
      const s = await readFile(f.path)
        .then((buf) => this.parse(buf, f.path))
        .catch((e: Error) => (this.log(`state cache: skipped ${f.path}: ${e.message}`), null));
      if (!s) continue;
      bytes += f.size;
      if (bytes > maxBytes) return;
      yield s;
    }
  }

  private parse(buf: Buffer, path: string): DiskSnapshot {
    if (buf.subarray(0, MAGIC.length).toString() !== MAGIC) throw new Error('not a fury state snapshot');
    const hl = buf.readUInt32LE(MAGIC.length),
      at = MAGIC.length + 4;
    const h = JSON.parse(buf.subarray(at, at + hl).toString()) as {
      identity: string;
      tokens: number;
      layout: [string, number][];
      sha256: string;
    };
    if (h.identity !== this.identity) throw new Error('written for another model or weight dtype');
    if (JSON.stringify(h.layout) !== JSON.stringify(this.layout)) throw new Error('its state layout differs');
    const payload = buf.subarray(at + hl);
    const want = 4 * h.tokens + 4 * this.layout.reduce((s, [, n]) => s + n, 0);
    if (payload.length !== want) throw new Error(`${payload.length} payload bytes, expected ${want}`);
    if (createHash('sha256').update(payload).digest('hex') !== h.sha256) throw new Error('checksum mismatch');
    const copy = new Uint8Array(payload).buffer; // aligned
    const tokens = new Int32Array(copy, 0, h.tokens);
    if (!path.endsWith(fileOf(this.identity, tokens))) throw new Error('its name does not match its tokens');
    const data: SlotSnapshot = new Map();
    let off = 4 * h.tokens;
    for (const [name, n] of this.layout) {
      data.set(name, new Float32Array(copy, off, n));
      off += 4 * n;
    }
    return { tokens, data };
  }
}
