// Exact conversions between float32 and the two 16-bit float formats (IEEE binary16 "F16" and
// bfloat16 "BF16"). Encoding rounds to nearest, ties to even (what PyTorch and numpy do), so a
// tensor written here reads back in Python with the same bits. Decoding is exact: every F16 and
// BF16 value is representable in float32.

// Scratch views used to reinterpret a float32 as its bit pattern without allocating.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Bit pattern (uint32) of `value` rounded to float32. */
export function float32Bits(value: number): number {
  scratchF32[0] = value;
  return scratchU32[0]!;
}

/** The float32 whose bit pattern is `bits` (uint32). */
export function float32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0]!;
}

/** Round-to-nearest-even right shift of a non-negative integer `value` by `shift` bits (1..31). */
function shiftRoundEven(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 2 ** (shift - 1);
  if (rest > half || (rest === half && (kept & 1) === 1)) return kept + 1;
  return kept;
}

/** F16 bit pattern (0..0xffff) nearest to the float32 with bit pattern `bits`. */
export function float32BitsToFloat16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp32 = (bits >>> 23) & 0xff;
  const mant32 = bits & 0x7fffff;
  if (exp32 === 0xff) {
    if (mant32 === 0) return sign | 0x7c00; // ±Inf
    // NaN: keep the top payload bits and force the quiet bit so the mantissa cannot become 0 (= Inf).
    return sign | 0x7c00 | 0x0200 | (mant32 >>> 13);
  }
  const exp16 = exp32 - 127 + 15;
  if (exp16 >= 0x1f) return sign | 0x7c00; // too large even before rounding: Inf
  if (exp16 <= 0) {
    // Result is an F16 subnormal (or zero). Value = full * 2^(exp32-150); subnormal unit = 2^-24,
    // so the F16 mantissa is full >> (14 - exp16), rounded. Below 2^-25 everything rounds to 0.
    if (exp16 < -10) return sign;
    const full = mant32 | 0x800000;
    return sign | shiftRoundEven(full, 14 - exp16); // may round up to 0x400, the smallest normal
  }
  // Normal: drop 13 mantissa bits. A carry out of the mantissa correctly bumps the exponent,
  // and from the largest exponent it lands exactly on Inf (0x7c00).
  return sign | shiftRoundEven((exp16 << 23) | mant32, 13);
}

/** F16 bit pattern of `value` (first rounded to float32, then to F16, both ties-to-even). */
export function float32ToFloat16Bits(value: number): number {
  return float32BitsToFloat16Bits(float32Bits(value));
}

/** Exact value of the F16 with bit pattern `bits`. */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero or subnormal
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** BF16 bit pattern nearest to the float32 with bit pattern `bits`. */
export function float32BitsToBFloat16Bits(bits: number): number {
  bits >>>= 0;
  if ((bits & 0x7fffffff) > 0x7f800000) {
    // NaN: truncation could clear every payload bit left in BF16 (turning it into Inf); force quiet.
    return (bits >>> 16) | 0x0040;
  }
  // BF16 is the top half of a float32: round the low 16 bits away, ties to even. The sum stays
  // below 2^32 for every non-NaN input, and overflow of the largest finite values yields Inf.
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** BF16 bit pattern of `value` (first rounded to float32, then to BF16, both ties-to-even). */
export function float32ToBFloat16Bits(value: number): number {
  return float32BitsToBFloat16Bits(float32Bits(value));
}

/** Exact value of the BF16 with bit pattern `bits`. */
export function bfloat16BitsToFloat32(bits: number): number {
  return float32FromBits((bits & 0xffff) << 16);
}

let f16Table: Float32Array | undefined;

/** All 65536 F16 values, decoded once; bulk decoding is then a table lookup. */
export function float16DecodeTable(): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = float16BitsToFloat32(h);
  }
  return f16Table;
}
