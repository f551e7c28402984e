// safetensors reader and writer (https://github.com/huggingface/safetensors, format: u64 LE header length,
// JSON header, then the data section). The reader parses and validates the header only; tensor bytes are read
// on demand, one tensor at a time, so multi-GB files (and the never-read `attn_mask` buffers) cost nothing.
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { DTYPE_BYTES, decodeFloats, isFloatDType } from './dtype.js';

/** A header larger than this is treated as corrupt (real headers are a few hundred KB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;
/** fs reads are limited to 2 GiB − 1 per call. */
const READ_CHUNK = 1 << 30;

export class SafetensorsError extends Error {
  constructor(file: string, problem: string, tensor?: string) {
    super(`${basename(file)}: ${tensor !== undefined ? `tensor "${tensor}": ` : ''}${problem}`);
    this.name = 'SafetensorsError';
  }
}

export interface TensorInfo {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte offsets in the file: [begin, end). */
  readonly begin: number;
  readonly end: number;
  readonly file: string;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private fh: FileHandle | null,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
  ) {}

  /** Open a file and validate its header; no tensor bytes are read. */
  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new SafetensorsError(path, `cannot open: ${(e as Error).message}`);
    }
    try {
      const { metadata, tensors } = await parseHeader(path, fh);
      return new SafetensorsFile(path, fh, metadata, tensors);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(this.path, 'missing tensor', name);
    return t;
  }

  /** Raw little-endian bytes of one tensor. */
  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    if (!this.fh) throw new SafetensorsError(this.path, 'file is closed', name);
    const n = t.end - t.begin;
    const out = new Uint8Array(n);
    for (let done = 0; done < n;) {
      const len = Math.min(READ_CHUNK, n - done);
      const { bytesRead } = await this.fh.read(out, done, len, t.begin + done);
      if (bytesRead === 0)
        throw new SafetensorsError(this.path, `file ends inside the tensor's data (byte ${t.begin + done})`, name);
      done += bytesRead;
    }
    return out;
  }

  /** A float tensor (F32, F16 or BF16) converted to f32. */
  async readF32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    if (!isFloatDType(t.dtype))
      throw new SafetensorsError(this.path, `dtype ${t.dtype} is not a float dtype (F32, F16, BF16)`, name);
    return decodeFloats(await this.readBytes(name), t.dtype);
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}

async function parseHeader(path: string, fh: FileHandle) {
  const size = (await fh.stat()).size;
  if (size < 8) throw new SafetensorsError(path, `truncated: ${size} bytes, shorter than the 8-byte header length`);
  const lenBuf = Buffer.alloc(8);
  await fh.read(lenBuf, 0, 8, 0);
  const headerLen = lenBuf.readBigUInt64LE(0);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      path,
      `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte cap (corrupt file?)`,
    );
  }
  const hlen = Number(headerLen);
  if (8 + hlen > size)
    throw new SafetensorsError(path, `truncated: header of ${hlen} bytes but the file has ${size} bytes`);
  const hbuf = Buffer.alloc(hlen);
  await fh.read(hbuf, 0, hlen, 8);
  let header: unknown;
  try {
    header = JSON.parse(hbuf.toString('utf8'));
  } catch (e) {
    throw new SafetensorsError(path, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError(path, 'header is not a JSON object');
  }
  const dataStart = 8 + hlen;
  const dataLen = size - dataStart;
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (
        typeof entry !== 'object' ||
        entry === null ||
        Array.isArray(entry) ||
        !Object.values(entry).every((v) => typeof v === 'string')
      ) {
        throw new SafetensorsError(path, '__metadata__ must be an object of string values');
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    tensors.set(name, parseEntry(path, name, entry, dataStart, dataLen));
  }
  // No two tensors may share bytes.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!,
      cur = sorted[i]!;
    if (cur.begin < prev.end) {
      throw new SafetensorsError(
        path,
        `data_offsets overlap with tensor "${prev.name}" ` +
          `([${prev.begin - dataStart}, ${prev.end - dataStart}) and [${cur.begin - dataStart}, ${cur.end - dataStart}))`,
        cur.name,
      );
    }
  }
  return { metadata, tensors };
}

function parseEntry(path: string, name: string, entry: unknown, dataStart: number, dataLen: number): TensorInfo {
  const fail = (problem: string) => new SafetensorsError(path, problem, name);
  if (typeof entry !== 'object' || entry === null) throw fail('header entry is not an object');
  const { dtype, shape, data_offsets: offs } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string') throw fail('missing dtype');
  const elemBytes = DTYPE_BYTES[dtype];
  if (elemBytes === undefined) throw fail(`unknown dtype "${dtype}"`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw fail(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw fail(`data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offs)}`);
  }
  const [b, e] = offs as [number, number];
  if (b > e) throw fail(`data_offsets [${b}, ${e}] end before they begin`);
  if (e > dataLen)
    throw fail(`data_offsets [${b}, ${e}] run past the end of the data section (${dataLen} bytes; file truncated?)`);
  const expected = numel(shape) * elemBytes;
  if (e - b !== expected) {
    throw fail(
      `shape [${shape.join(', ')}] × ${dtype} (${elemBytes} B) needs ${expected} bytes but data_offsets span ${e - b}`,
    );
  }
  return { name, dtype, shape, begin: dataStart + b, end: dataStart + e, file: path };
}

export interface TensorToWrite {
  name: string;
  dtype: string;
  shape: readonly number[];
  /** Called once, when the writer reaches this tensor, so large files are written without holding every tensor. */
  data: Uint8Array | (() => Uint8Array);
}

/** Write a safetensors file. Tensors are laid out in the given order; the header is padded to 8 bytes. */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string> = {},
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const bytes = numel(t.shape) * (DTYPE_BYTES[t.dtype] ?? NaN);
    if (!Number.isFinite(bytes)) throw new SafetensorsError(path, `unknown dtype "${t.dtype}"`, t.name);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hbuf = Buffer.from(json, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(hbuf.length));
  const fh = await open(path, 'w');
  try {
    await fh.write(lenBuf);
    await fh.write(hbuf);
    for (const t of tensors) {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      const want = numel(t.shape) * DTYPE_BYTES[t.dtype]!;
      if (data.byteLength !== want)
        throw new SafetensorsError(path, `has ${data.byteLength} bytes, shape needs ${want}`, t.name);
      await fh.write(data);
    }
  } finally {
    await fh.close();
  }
}
