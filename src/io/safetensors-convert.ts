// Conversions between SafeTensor bytes and JS typed arrays. All reads/writes are little-endian
// (the safetensors byte order) whatever the host; the common F32 case on little-endian hosts is a
// plain byte copy.

import {
  float16DecodeTable,
  float32BitsToBFloat16Bits,
  float32BitsToFloat16Bits,
} from './half.js';
import {
  DTYPE_SIZE,
  SafetensorsError,
  checkedElementCount,
  describe,
  type SafeDType,
  type SafeTensor,
} from './safetensors-types.js';

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Element count of `t`, after checking its bytes match its shape (tensors may be hand-built). */
function elementCount(t: SafeTensor, fn: string): number {
  const count = checkedElementCount(t.shape);
  if (typeof count === 'string') throw new SafetensorsError(`${fn}: ${count}`);
  const size = DTYPE_SIZE[t.dtype];
  if (size === undefined) throw new SafetensorsError(`${fn}: unsupported dtype ${describe(t.dtype)}`);
  if (t.data.length !== count * size) {
    throw new SafetensorsError(`${fn}: expected ${count * size} bytes for shape ${describe(t.shape)} of ${t.dtype}, ` +
      `found ${t.data.length}`);
  }
  return count;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reader of element i as a JS number, for every dtype (exact except I64 beyond 2^53). */
function elementReader(t: SafeTensor): (i: number) => number {
  const v = viewOf(t.data);
  switch (t.dtype) {
    case 'F64': return (i) => v.getFloat64(i * 8, true);
    case 'F32': return (i) => v.getFloat32(i * 4, true);
    case 'F16': {
      const table = float16DecodeTable();
      return (i) => table[v.getUint16(i * 2, true)]!;
    }
    case 'BF16': {
      const scratch = new Uint32Array(1);
      const asFloat = new Float32Array(scratch.buffer);
      return (i) => {
        scratch[0] = v.getUint16(i * 2, true) << 16;
        return asFloat[0]!;
      };
    }
    // hi * 2^32 is exact and the one addition rounds once, so this is correctly rounded.
    case 'I64': return (i) => v.getInt32(i * 8 + 4, true) * 4294967296 + v.getUint32(i * 8, true);
    case 'I32': return (i) => v.getInt32(i * 4, true);
    case 'I16': return (i) => v.getInt16(i * 2, true);
    case 'I8': return (i) => v.getInt8(i);
    case 'U8': return (i) => v.getUint8(i);
    case 'BOOL': return (i) => (v.getUint8(i) !== 0 ? 1 : 0);
  }
}

/** Float32 copy of any tensor; F16 and BF16 are decoded exactly. */
export function toFloat32(t: SafeTensor): Float32Array {
  const count = elementCount(t, 'toFloat32');
  const out = new Float32Array(count);
  if (t.dtype === 'F32' && LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(t.data); // same bytes: a copy is the conversion
    return out;
  }
  const read = elementReader(t);
  for (let i = 0; i < count; i++) out[i] = read(i);
  return out;
}

/** Float64 copy of any tensor (I64 beyond ±2^53 rounds to the nearest double). */
export function toFloat64(t: SafeTensor): Float64Array {
  const count = elementCount(t, 'toFloat64');
  const out = new Float64Array(count);
  const read = elementReader(t);
  for (let i = 0; i < count; i++) out[i] = read(i);
  return out;
}

const INT_DTYPES: readonly SafeDType[] = ['I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];

/** Int32 copy of an integer or BOOL tensor; refuses floats and I64 values outside int32. */
export function toInt32(t: SafeTensor): Int32Array {
  const count = elementCount(t, 'toInt32');
  if (!INT_DTYPES.includes(t.dtype)) {
    throw new SafetensorsError(`toInt32: expected an integer dtype (${INT_DTYPES.join(', ')}), found ${t.dtype}`);
  }
  const out = new Int32Array(count);
  if (t.dtype === 'I64') {
    const v = viewOf(t.data);
    for (let i = 0; i < count; i++) {
      const lo = v.getInt32(i * 8, true);
      const hi = v.getInt32(i * 8 + 4, true);
      // Fits in int32 exactly when the high word is the sign extension of the low word.
      if (hi !== lo >> 31) {
        throw new SafetensorsError(`toInt32: expected I64 values within int32 range [-2147483648, 2147483647], ` +
          `found ${v.getBigInt64(i * 8, true)} at flat index ${i} of shape ${describe(t.shape)}`);
      }
      out[i] = lo;
    }
    return out;
  }
  const read = elementReader(t);
  for (let i = 0; i < count; i++) out[i] = read(i);
  return out;
}

function checkShape(length: number, shape: number[], fn: string): void {
  const count = checkedElementCount(shape);
  if (typeof count === 'string') throw new SafetensorsError(`${fn}: ${count}`);
  if (count !== length) {
    throw new SafetensorsError(`${fn}: shape ${describe(shape)} has ${count} elements, but data has ${length}`);
  }
}

/** SafeTensor from float32 values; F16/BF16 are rounded to nearest even (NaN stays NaN, overflow → ±Inf). */
export function fromFloat32(data: Float32Array, shape: number[], dtype: 'F32' | 'F16' | 'BF16' = 'F32'): SafeTensor {
  checkShape(data.length, shape, 'fromFloat32');
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
    throw new SafetensorsError(`fromFloat32: expected dtype F32, F16 or BF16, found ${describe(dtype)}`);
  }
  if (dtype === 'F32' && LITTLE_ENDIAN_HOST) {
    return { dtype, shape: shape.slice(), data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() };
  }
  const out = new Uint8Array(data.length * DTYPE_SIZE[dtype]);
  const v = viewOf(out);
  if (dtype === 'F32') {
    for (let i = 0; i < data.length; i++) v.setFloat32(i * 4, data[i]!, true);
  } else {
    // A Float32Array is always 4-byte aligned, so its bits can be read in place.
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    const encode = dtype === 'F16' ? float32BitsToFloat16Bits : float32BitsToBFloat16Bits;
    for (let i = 0; i < data.length; i++) v.setUint16(i * 2, encode(bits[i]!), true);
  }
  return { dtype, shape: shape.slice(), data: out };
}

/** SafeTensor from int32 values, stored as I32 or sign-extended to I64. */
export function fromInt32(data: Int32Array, shape: number[], dtype: 'I32' | 'I64' = 'I32'): SafeTensor {
  checkShape(data.length, shape, 'fromInt32');
  if (dtype !== 'I32' && dtype !== 'I64') {
    throw new SafetensorsError(`fromInt32: expected dtype I32 or I64, found ${describe(dtype)}`);
  }
  const size = DTYPE_SIZE[dtype];
  const out = new Uint8Array(data.length * size);
  const v = viewOf(out);
  for (let i = 0; i < data.length; i++) {
    v.setInt32(i * size, data[i]!, true);
    if (dtype === 'I64') v.setInt32(i * 8 + 4, data[i]! >> 31, true);
  }
  return { dtype, shape: shape.slice(), data: out };
}

/**
 * How many values of a float tensor are NaN or ±Inf (0 for integer dtypes). Reads the bit
 * patterns in place — exponent bits all ones — without converting the tensor.
 */
export function nonFiniteCount(t: SafeTensor): number {
  const bytes = t.data;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let bad = 0;
  switch (t.dtype) {
    case 'F32':
      for (let i = 0; i + 4 <= bytes.length; i += 4) if ((view.getUint32(i, true) & 0x7f800000) === 0x7f800000) bad++;
      return bad;
    case 'F64':
      for (let i = 0; i + 8 <= bytes.length; i += 8) if ((view.getUint32(i + 4, true) & 0x7ff00000) === 0x7ff00000) bad++;
      return bad;
    case 'F16':
      for (let i = 0; i + 2 <= bytes.length; i += 2) if ((view.getUint16(i, true) & 0x7c00) === 0x7c00) bad++;
      return bad;
    case 'BF16':
      for (let i = 0; i + 2 <= bytes.length; i += 2) if ((view.getUint16(i, true) & 0x7f80) === 0x7f80) bad++;
      return bad;
    default:
      return 0;
  }
}
