import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, writeFile, truncate, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors, MAX_HEADER_BYTES } from '../../weights/safetensors.js';
import { encodeFloats } from '../../weights/dtype.js';
import { f16ToF32, f32ToF16, bf16ToF32, f32ToBF16 } from '../../lib/f16.js';
import { freshRng, tempDir } from '../helpers.js';

/** A safetensors file from a raw header object and data bytes. */
async function rawFile(dir: string, name: string, header: unknown, data: Uint8Array | number = 0): Promise<string> {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const path = join(dir, name);
  await writeFile(path, Buffer.concat([len, json, typeof data === 'number' ? Buffer.alloc(data) : data]));
  return path;
}

test('round trip of F32, F16 and BF16 tensors with metadata', async () => {
  const { rng, seed } = freshRng();
  const dir = await tempDir();
  const a = rng.normals(12),
    b = rng.normals(6, 3),
    c = rng.normals(5);
  const path = join(dir, 'm.safetensors');
  await writeSafetensors(
    path,
    [
      { name: 'a', dtype: 'F32', shape: [3, 4], data: encodeFloats(a, 'F32') },
      { name: 'b', dtype: 'F16', shape: [6], data: () => encodeFloats(b, 'F16') },
      { name: 'c', dtype: 'BF16', shape: [5, 1], data: encodeFloats(c, 'BF16') },
      { name: 'ids', dtype: 'I64', shape: [2], data: new Uint8Array(16) },
      { name: 'mask', dtype: 'BOOL', shape: [2, 2], data: new Uint8Array(4) },
    ],
    { format: 'pt' },
  );
  const f = await SafetensorsFile.open(path);
  try {
    assert.deepEqual(f.metadata, { format: 'pt' });
    assert.deepEqual([...f.tensors.keys()], ['a', 'b', 'c', 'ids', 'mask']);
    assert.deepEqual(await f.readF32('a'), a, `seed ${seed}`);
    const rb = await f.readF32('b');
    b.forEach((x, i) =>
      assert.ok(Math.abs(rb[i]! - x) <= Math.abs(x) * 2 ** -11 + 6e-8, `f16 ${x} → ${rb[i]} (seed ${seed})`),
    );
    const rc = await f.readF32('c');
    c.forEach((x, i) =>
      assert.ok(Math.abs(rc[i]! - x) <= Math.abs(x) * 2 ** -8, `bf16 ${x} → ${rc[i]} (seed ${seed})`),
    );
    assert.equal(f.info('ids').dtype, 'I64');
    await assert.rejects(f.readF32('mask'), /mask.*BOOL is not a float dtype/);
    assert.equal((await f.readBytes('ids')).length, 16);
  } finally {
    await f.close();
  }
});

test('f16 and bf16 conversions round to nearest even and keep specials', () => {
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00); // rounds to +Inf
  assert.equal(f32ToF16(-0), 0x8000);
  assert.equal(f16ToF32(0x0001), 2 ** -24); // smallest subnormal
  assert.equal(f32ToF16(2 ** -24), 0x0001);
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02);
  assert.ok(Number.isNaN(f16ToF32(f32ToF16(NaN))));
  assert.equal(bf16ToF32(f32ToBF16(1.00390625)), 1); // tie → even
  assert.equal(bf16ToF32(f32ToBF16(3.140625)), 3.140625);
  assert.ok(Number.isNaN(bf16ToF32(f32ToBF16(NaN))));
  // every half survives the trip through f32 (the table f16ToF32 reads), NaNs as NaNs
  for (let h = 0; h < 65536; h++) {
    const x = f16ToF32(h);
    if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) assert.ok(Number.isNaN(x), `${h}`);
    else assert.equal(f32ToF16(x), h, `half ${h.toString(16)}`);
  }
});

test('every malformed file fails with a message naming the file, the tensor and the problem', async () => {
  const dir = await tempDir();
  const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const cases: [string, () => Promise<string>, RegExp][] = [
    [
      'short',
      async () => {
        const p = join(dir, 'short.safetensors');
        await writeFile(p, Buffer.alloc(5));
        return p;
      },
      /short\.safetensors: truncated: 5 bytes/,
    ],
    [
      'header past end',
      async () => {
        const p = await rawFile(dir, 'hdr.safetensors', ok, 8);
        await truncate(p, 20);
        return p;
      },
      /hdr\.safetensors: truncated: header of \d+ bytes/,
    ],
    [
      'huge header length',
      async () => {
        const p = join(dir, 'huge.safetensors'),
          b = Buffer.alloc(16);
        b.writeBigUInt64LE(BigInt(MAX_HEADER_BYTES) + 1n);
        await writeFile(p, b);
        return p;
      },
      /huge\.safetensors: header length \d+ exceeds/,
    ],
    [
      'bad JSON',
      () => rawFile(dir, 'json.safetensors', '{"t": {"dtype": "F32",', 8),
      /json\.safetensors: header is not valid JSON/,
    ],
    [
      'not an object',
      () => rawFile(dir, 'arr.safetensors', '[1,2]', 0),
      /arr\.safetensors: header is not a JSON object/,
    ],
    [
      'data truncated',
      () => rawFile(dir, 'trunc.safetensors', ok, 4),
      /trunc\.safetensors: tensor "t": data_offsets \[0, 8\] run past the end/,
    ],
    [
      'out of range',
      () => rawFile(dir, 'range.safetensors', { t: { dtype: 'F32', shape: [2], data_offsets: [16, 24] } }, 8),
      /range\.safetensors: tensor "t": data_offsets \[16, 24\] run past/,
    ],
    [
      'reversed offsets',
      () => rawFile(dir, 'rev.safetensors', { t: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8),
      /rev\.safetensors: tensor "t": data_offsets \[8, 0\] end before/,
    ],
    [
      'overlap',
      () =>
        rawFile(
          dir,
          'ovl.safetensors',
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          },
          12,
        ),
      /ovl\.safetensors: tensor "b": data_offsets overlap with tensor "a"/,
    ],
    [
      'wrong shape',
      () => rawFile(dir, 'shape.safetensors', { t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
      /shape\.safetensors: tensor "t": shape \[3\] × F32 \(4 B\) needs 12 bytes but data_offsets span 8/,
    ],
    [
      'negative dim',
      () => rawFile(dir, 'neg.safetensors', { t: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8),
      /neg\.safetensors: tensor "t": shape must be an array of non-negative integers/,
    ],
    [
      'unknown dtype',
      () => rawFile(dir, 'dt.safetensors', { t: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, 8),
      /dt\.safetensors: tensor "t": unknown dtype "Q4"/,
    ],
    [
      'bad metadata',
      () => rawFile(dir, 'meta.safetensors', { __metadata__: { a: 1 } }, 0),
      /meta\.safetensors: __metadata__ must be an object of string values/,
    ],
  ];
  for (const [what, make, msg] of cases) {
    const p = await make();
    await assert.rejects(SafetensorsFile.open(p), (e: Error) => {
      assert.match(e.message, msg, what);
      return true;
    });
  }
  const f = await SafetensorsFile.open(await rawFile(dir, 'fine.safetensors', ok, 8));
  await assert.rejects(f.readF32('nope'), /fine\.safetensors: tensor "nope": missing tensor/);
  await f.close();
});

test('tensors are read on demand: a 5 GiB sparse attn_mask entry costs nothing to open', async () => {
  const dir = await tempDir();
  const big = 5 * 2 ** 30;
  const path = await rawFile(
    dir,
    'sparse.safetensors',
    {
      w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      'model.layers.0.self_attn.attn_mask': { dtype: 'BOOL', shape: [1, 1, 81920, 65536], data_offsets: [8, 8 + big] },
    },
    encodeFloats([1.5, -2], 'F32'),
  );
  const fh = await open(path, 'r+');
  await fh.truncate((await stat(path)).size + big); // sparse: no disk blocks, no bytes to read
  await fh.close();
  const before = process.memoryUsage().rss;
  const f = await SafetensorsFile.open(path);
  assert.deepEqual([...(await f.readF32('w'))], [1.5, -2]);
  assert.ok(process.memoryUsage().rss - before < 256 * 2 ** 20, 'opening must not read the mask');
  await f.close();
});
