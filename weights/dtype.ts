// Storage dtypes of checkpoint tensors and their conversions to f32 (the compute type).
import { bf16ToF32, f16ToF32, f32ToBF16, f32ToF16 } from '../lib/f16.js';

export type FloatDType = 'F32' | 'F16' | 'BF16';
/** Every safetensors dtype we recognise; only the float ones are loadable as weights. */
export const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export function isFloatDType(d: string): d is FloatDType {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Decode little-endian tensor bytes of a float dtype into f32. */
export function decodeFloats(bytes: Uint8Array, dtype: FloatDType): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // safetensors are little-endian: on a little-endian host, aligned values are read in place
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0)
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
    const out = new Float32Array(bytes.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
    return out;
  }
  const out = new Float32Array(bytes.byteLength / 2);
  const conv = dtype === 'F16' ? f16ToF32 : bf16ToF32;
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
    const h = new Uint16Array(bytes.buffer, bytes.byteOffset, out.length);
    for (let i = 0; i < out.length; i++) out[i] = conv(h[i]!);
  } else for (let i = 0; i < out.length; i++) out[i] = conv(dv.getUint16(i * 2, true));
  return out;
}

/** Encode f32 values as little-endian bytes of the given float dtype. */
export function encodeFloats(values: ArrayLike<number>, dtype: FloatDType): Uint8Array {
  const size = dtype === 'F32' ? 4 : 2;
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  if (dtype === 'F32') for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i]!, true);
  else {
    const conv = dtype === 'F16' ? f32ToF16 : f32ToBF16;
    for (let i = 0; i < values.length; i++) dv.setUint16(i * 2, conv(values[i]!), true);
  }
  return out;
}
