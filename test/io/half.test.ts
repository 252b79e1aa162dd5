// F16 and BF16 bit conversions: known bit patterns, exhaustive decode/encode round trips, and
// round-to-nearest-even at every midpoint between neighbouring representable values.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32BitsToBFloat16Bits,
  float32BitsToFloat16Bits,
  float32ToBFloat16Bits,
  float32ToFloat16Bits,
  fromFloat32,
  toFloat32,
} from '../../src/io/index.js';

const bitsOf = (v: number): number => new Uint32Array(new Float32Array([v]).buffer)[0]!;
const fromBits = (b: number): number => new Float32Array(new Uint32Array([b >>> 0]).buffer)[0]!;
const hex = (v: number): string => `0x${v.toString(16).padStart(4, '0')}`;

test('F16 encoding of known values', () => {
  const cases: Array<[number, number, string]> = [
    [0, 0x0000, 'zero'],
    [-0, 0x8000, 'negative zero'],
    [1, 0x3c00, 'one'],
    [-2, 0xc000, 'minus two'],
    [0.1, 0x2e66, '0.1 rounded'],
    [1 / 3, 0x3555, '1/3 rounded'],
    [65504, 0x7bff, 'largest finite'],
    [65519, 0x7bff, 'just below the overflow midpoint'],
    [65520, 0x7c00, 'overflow midpoint ties to even = Inf'],
    [1e10, 0x7c00, 'overflow'],
    [-1e10, 0xfc00, 'negative overflow'],
    [Infinity, 0x7c00, 'Inf'],
    [-Infinity, 0xfc00, '-Inf'],
    [2 ** -14, 0x0400, 'smallest normal'],
    [2 ** -24, 0x0001, 'smallest subnormal'],
    [1023 * 2 ** -24, 0x03ff, 'largest subnormal'],
    [2 ** -25, 0x0000, 'half the smallest subnormal ties to even = 0'],
    [1.5 * 2 ** -25, 0x0001, 'above the tie rounds up'],
    [3 * 2 ** -25, 0x0002, '1.5 ulp ties to even (2)'],
    [5 * 2 ** -25, 0x0002, '2.5 ulp ties to even (2)'],
    [-(2 ** -26), 0x8000, 'underflow keeps the sign'],
    [1 + 2 ** -11, 0x3c00, 'tie between 1 and next ties to even (down)'],
    [1 + 3 * 2 ** -11, 0x3c02, 'tie ties to even (up)'],
    [1 + 2 ** -11 + 2 ** -20, 0x3c01, 'just above a tie rounds up'],
    [2047 * 2 ** -25, 0x0400, 'largest-subnormal rounding carries into the smallest normal'],
    [1e-40, 0x0000, 'float32 subnormal underflows'],
  ];
  for (const [value, expected, why] of cases) {
    assert.equal(hex(float32ToFloat16Bits(value)), hex(expected), `${value} (${why})`);
  }
  const nan = float32ToFloat16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00, 'NaN exponent');
  assert.notEqual(nan & 0x3ff, 0, 'NaN mantissa');
  // A NaN whose payload sits only in bits F16 drops must stay NaN, not become Inf. (Given as bits:
  // a JS number cannot carry that float32 NaN unchanged.)
  for (const bits of [0x7f800001, 0xff800001, 0x7fc00000, 0x7f801fff]) {
    const h = float32BitsToFloat16Bits(bits);
    assert.ok(Number.isNaN(float16BitsToFloat32(h)), `${bits.toString(16)} -> ${hex(h)}`);
    assert.equal(h & 0x8000, (bits >>> 16) & 0x8000, 'NaN keeps its sign');
  }
});

test('F16 decoding of known bit patterns', () => {
  const cases: Array<[number, number]> = [
    [0x0000, 0], [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0xfbff, -65504],
    [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14], [0x3555, 0.333251953125],
    [0x7c00, Infinity], [0xfc00, -Infinity],
  ];
  for (const [bits, value] of cases) assert.equal(float16BitsToFloat32(bits), value, hex(bits));
  assert.ok(Object.is(float16BitsToFloat32(0x8000), -0));
  assert.ok(Number.isNaN(float16BitsToFloat32(0x7e00)));
  assert.ok(Number.isNaN(float16BitsToFloat32(0xfc01)));
});

test('BF16 encoding and decoding of known values', () => {
  const cases: Array<[number, number, string]> = [
    [1, 0x3f80, 'one'],
    [-2, 0xc000, 'minus two'],
    [Math.PI, 0x4049, 'pi rounds down'],
    [1 + 2 ** -8, 0x3f80, 'tie ties to even (down)'],
    [1 + 3 * 2 ** -8, 0x3f82, 'tie ties to even (up)'],
    [1 + 2 ** -8 + 2 ** -20, 0x3f81, 'above a tie rounds up'],
    [fromBits(0x7f7fffff), 0x7f80, 'largest float32 rounds to Inf'],
    [Infinity, 0x7f80, 'Inf'],
    [-Infinity, 0xff80, '-Inf'],
    [fromBits(0x00010000), 0x0001, 'smallest BF16 subnormal'],
    [fromBits(0x00008000), 0x0000, 'half of it ties to even = 0'],
    [-0, 0x8000, 'negative zero'],
  ];
  for (const [value, expected, why] of cases) {
    assert.equal(hex(float32ToBFloat16Bits(value)), hex(expected), `${value} (${why})`);
  }
  assert.equal(bfloat16BitsToFloat32(0x4049), 3.140625);
  assert.equal(bfloat16BitsToFloat32(0x0001), 2 ** -133);
  assert.equal(bfloat16BitsToFloat32(0xff80), -Infinity);
  assert.ok(Object.is(bfloat16BitsToFloat32(0x8000), -0));
  assert.ok(Number.isNaN(bfloat16BitsToFloat32(float32ToBFloat16Bits(NaN))));
  // A NaN whose payload is only in the low 16 bits must stay NaN, not become Inf.
  for (const bits of [0x7f800001, 0xff800001, 0x7f80ffff, 0x7fffffff]) {
    const h = float32BitsToBFloat16Bits(bits);
    assert.ok(Number.isNaN(bfloat16BitsToFloat32(h)), `${bits.toString(16)} -> ${hex(h)}`);
    assert.equal(h & 0x8000, (bits >>> 16) & 0x8000, 'NaN keeps its sign');
  }
});

test('every F16 and BF16 bit pattern decodes and re-encodes to itself', () => {
  for (let h = 0; h < 0x10000; h++) {
    const f16 = float16BitsToFloat32(h);
    if (Number.isNaN(f16)) assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(f16))), hex(h));
    else assert.equal(float32ToFloat16Bits(f16), h, hex(h));
    const bf16 = bfloat16BitsToFloat32(h);
    if (Number.isNaN(bf16)) assert.ok(Number.isNaN(bfloat16BitsToFloat32(float32ToBFloat16Bits(bf16))), hex(h));
    else assert.equal(float32ToBFloat16Bits(bf16), h, hex(h));
  }
});

/**
 * For each pair of neighbours (lo, lo+1) below `top`: their midpoint (exact in float32) ties to
 * the even one, and the float32 just below / above it goes to lo / lo+1. Checked for both signs.
 */
function checkMidpoints(top: number, decode: (b: number) => number, encode: (v: number) => number, sign: number): void {
  for (let lo = 0; lo < top; lo++) {
    const a = decode(lo);
    const b = lo + 1 === top ? 2 * a - decode(lo - 1) : decode(lo + 1); // top: the first value past the largest finite
    const mid = (a + b) / 2;
    assert.equal(Math.fround(mid), mid, 'midpoint must be exact in float32');
    const even = lo % 2 === 0 ? lo : lo + 1;
    const m = bitsOf(mid);
    assert.equal(encode(mid), even, `tie above ${hex(lo)}`);
    assert.equal(encode(-mid), even | sign, `negative tie above ${hex(lo)}`);
    assert.equal(encode(fromBits(m - 1)), lo, `just below the tie above ${hex(lo)}`);
    assert.equal(encode(fromBits(m + 1)), lo + 1, `just above the tie above ${hex(lo)}`);
  }
}

test('F16 rounds to nearest even at every midpoint, subnormals and overflow included', () => {
  checkMidpoints(0x7c00, float16BitsToFloat32, float32ToFloat16Bits, 0x8000);
});

test('BF16 rounds to nearest even at every midpoint, subnormals and overflow included', () => {
  checkMidpoints(0x7f80, bfloat16BitsToFloat32, float32ToBFloat16Bits, 0x8000);
});

test('fromFloat32 / toFloat32 store F16 and BF16 little-endian and decode exactly', () => {
  const values = new Float32Array([1, -2, 65520, 2 ** -24, NaN, -Infinity]);
  const f16 = fromFloat32(values, [2, 3], 'F16');
  assert.deepEqual(f16.shape, [2, 3]);
  assert.deepEqual([...f16.data.subarray(0, 8)], [0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 0x01, 0x00]);
  const back16 = toFloat32(f16);
  assert.deepEqual([...back16.subarray(0, 4)], [1, -2, Infinity, 2 ** -24]);
  assert.ok(Number.isNaN(back16[4]));
  assert.equal(back16[5], -Infinity);

  const bf16 = fromFloat32(values, [6], 'BF16');
  assert.deepEqual([...bf16.data.subarray(0, 4)], [0x80, 0x3f, 0x00, 0xc0]);
  const back = toFloat32(bf16);
  assert.deepEqual([...back.subarray(0, 4)], [1, -2, 65536, 2 ** -24]);
  assert.ok(Number.isNaN(back[4]));
  assert.equal(back[5], -Infinity);
});
