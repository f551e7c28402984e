// The disk tier of the 2Mamba state cache (--state-cache-dir): snapshots written as files so they survive a restart,
// read back at startup into host RAM. Every file read back is checked against its own checksum, the model's identity
// (config, weight file headers and sizes, weight dtype), the state layout and its token key: a mismatch or a damaged
// file is skipped with one log line, never a wrong state.
import { createHash } from 'node:crypto';
import { open, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeSnapshot, encodeSnapshot, snapshotName, type Snapshot, type StateLayout } from './snapshot-codec.js';

export type DiskSnapshot = Snapshot;

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

const fileOf = (identity: string, tokens: Int32Array) => snapshotName(identity, tokens) + '.snap';

export class StateDisk {
  constructor(
    readonly dir: string,
    private readonly identity: string,
    private readonly layout: StateLayout,
    readonly capacityBytes: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Write a snapshot (atomically: a temporary file renamed), then drop the oldest files past the byte cap. */
  async save(s: DiskSnapshot): Promise<void> {
    const file = join(this.dir, fileOf(this.identity, s.tokens)),
      tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, await encodeSnapshot(this.identity, this.layout, s));
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

  private async parse(buf: Buffer, path: string): Promise<DiskSnapshot> {
    const s = await decodeSnapshot(buf, this.identity, this.layout);
    if (!path.endsWith(fileOf(this.identity, s.tokens))) throw new Error('its name does not match its tokens');
    return s;
  }
}
