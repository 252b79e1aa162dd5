/**
 * Reference kernels of the quantized-storage family: quantize, dequantize, the quantized linear
 * and its input gradient. Plain TypeScript; every float32 operation is written as one rounded
 * IEEE operation (Math.fround of an exact double result), so packed data and dequantized values
 * are bit-identical to the native kernels'. Packed bytes live in int32 tensors used as byte views.
 */
import { registerKernel } from '../../../registry.js';
import { allocTensor, type Tensor } from '../../../tensor.js';
import {
  DQ_BLOCK_SIZE, NF4_BLOCK_SIZE, NF4_LEVELS, quantPartSizes, wordsFor,
  type DequantAttrs, type QuantAttrs, type QuantLinearAttrs,
} from '../../../ops/quant.js';
import { floats, ints } from '../backend.js';

const B = 'reference';
const f = Math.fround;

/** The payload bytes of an int32 byte-view tensor (little-endian storage). */
function bytesOf(t: Tensor, op: string): Uint8Array {
  const d = ints(t, op);
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Decision thresholds between adjacent levels: the float32 midpoint (a + b) · 0.5. */
function midpoints(levels: ArrayLike<number>): Float32Array {
  const m = new Float32Array(levels.length - 1);
  for (let k = 0; k + 1 < levels.length; k++) m[k] = f(f(levels[k] + levels[k + 1]) * 0.5);
  return m;
}

const NF4 = Float32Array.from(NF4_LEVELS);
const NF4_MIDS = midpoints(NF4);

/** NF4 code of a normalised value: the number of thresholds strictly below it. */
function nf4Code(v: number): number {
  let q = 0;
  for (let k = 0; k < 15; k++) if (v > NF4_MIDS[k]) q++;
  return q;
}

/** Index of the nearest dynamic-map value (ties to the lower one): first threshold ≥ v. */
function codeIndex(mids: Float32Array, v: number): number {
  let lo = 0, hi = mids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (mids[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function position(i: number, cols: number): string {
  return `element ${i} (row ${Math.floor(i / cols)}, column ${i % cols})`;
}

function finite(op: string, x: number, i: number, cols: number): number {
  if (!Number.isFinite(x)) throw new Error(`op '${op}': weight ${position(i, cols)} is ${x}; quantization needs finite values`);
  return x;
}

// ---- fp16 / bf16 bit conversions (round to nearest even, as src/io/half.ts) -----------------------

const cvF32 = new Float32Array(1);
const cvU32 = new Uint32Array(cvF32.buffer);

function f32Bits(x: number): number {
  cvF32[0] = x;
  return cvU32[0];
}

function f32FromBits(bits: number): number {
  cvU32[0] = bits >>> 0;
  return cvF32[0];
}

function shiftRoundEven(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 2 ** (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

export function toHalfBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp32 = (bits >>> 23) & 0xff;
  const mant32 = bits & 0x7fffff;
  if (exp32 === 0xff) return mant32 === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant32 >>> 13);
  const exp16 = exp32 - 127 + 15;
  if (exp16 >= 0x1f) return sign | 0x7c00;
  if (exp16 <= 0) {
    if (exp16 < -10) return sign;
    return sign | shiftRoundEven(mant32 | 0x800000, 14 - exp16);
  }
  return sign | shiftRoundEven((exp16 << 23) | mant32, 13);
}

export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

export function toBf16Bits(bits: number): number {
  bits >>>= 0;
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x0040;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

// ---- quantize -----------------------------------------------------------------------------------

function nf4Absmax(op: string, W: ArrayLike<number>, n: number, cols: number): Float32Array {
  const nb = Math.ceil(n / NF4_BLOCK_SIZE);
  const absmax = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    let m = 0;
    const end = Math.min(n, (b + 1) * NF4_BLOCK_SIZE);
    for (let i = b * NF4_BLOCK_SIZE; i < end; i++) {
      const a = Math.abs(f(finite(op, W[i], i, cols)));
      if (a > m) m = a;
    }
    absmax[b] = m;
  }
  return absmax;
}

/**
 * Double quantization of the NF4 scales: returns the 8-bit codes, the per-256 absmax, the offset
 * and the scales as dequantization will see them.
 */
function doubleQuantize(absmax: Float32Array, code: ArrayLike<number>): { q: Uint8Array; absmax2: Float32Array; offset: number; used: Float32Array } {
  const nb = absmax.length;
  let sum = 0;
  for (let b = 0; b < nb; b++) sum += absmax[b];
  const offset = f(sum / nb);
  const mids = midpoints(code);
  const nb2 = Math.ceil(nb / DQ_BLOCK_SIZE);
  const q = new Uint8Array(nb), absmax2 = new Float32Array(nb2), used = new Float32Array(nb);
  for (let j = 0; j < nb2; j++) {
    const end = Math.min(nb, (j + 1) * DQ_BLOCK_SIZE);
    let m = 0;
    for (let b = j * DQ_BLOCK_SIZE; b < end; b++) m = Math.max(m, Math.abs(f(absmax[b] - offset)));
    absmax2[j] = m;
    for (let b = j * DQ_BLOCK_SIZE; b < end; b++) {
      const v = m === 0 ? 0 : f(f(absmax[b] - offset) / m);
      const c = codeIndex(mids, v);
      q[b] = c;
      used[b] = f(f(code[c] * m) + offset);
    }
  }
  return { q, absmax2, offset, used };
}

function nf4Encode(W: ArrayLike<number>, n: number, scales: Float32Array, out: Uint8Array): void {
  for (let i = 0; i < n; i++) {
    const s = scales[Math.floor(i / NF4_BLOCK_SIZE)];
    const c = nf4Code(s === 0 ? 0 : f(f(W[i]) / s));
    out[i >> 1] |= i & 1 ? c : c << 4;
  }
}

registerKernel<QuantAttrs>('quantize', B, ([w, codeT], { format, doubleQuant, rows, cols }, be) => {
  const op = 'quantize';
  const W = floats(w, op);
  const n = rows * cols;
  const sz = quantPartSizes({ format, shape: [rows, cols], doubleQuant });
  const data = allocTensor(be, [wordsFor(sz.packedBytes)], 'int32');
  const out = bytesOf(data, op);
  switch (format) {
    case 'nf4': {
      const absmax = nf4Absmax(op, W, n, cols);
      if (!doubleQuant) {
        nf4Encode(W, n, absmax, out);
        const scales = allocTensor(be, [absmax.length], 'float32');
        floats(scales, op).set(absmax);
        return [data, scales];
      }
      const dq = doubleQuantize(absmax, floats(codeT, op));
      nf4Encode(W, n, dq.used, out);
      const qscales = allocTensor(be, [wordsFor(absmax.length)], 'int32');
      bytesOf(qscales, op).set(dq.q);
      const scales2 = allocTensor(be, [dq.absmax2.length], 'float32');
      floats(scales2, op).set(dq.absmax2);
      const offset = allocTensor(be, [1], 'float32');
      floats(offset, op)[0] = dq.offset;
      return [data, qscales, scales2, offset];
    }
    case 'int8': {
      const scales = allocTensor(be, [rows], 'float32');
      const S = floats(scales, op);
      for (let r = 0; r < rows; r++) {
        let m = 0;
        for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(f(finite(op, W[r * cols + c], r * cols + c, cols))));
        const s = f(m / 127);
        S[r] = s;
        for (let c = 0; c < cols; c++) {
          let q = 0;
          if (s !== 0) {
            const v = f(f(W[r * cols + c]) / s);
            q = Math.min(127, Math.max(-127, Math.sign(v) * Math.round(Math.abs(v))));
          }
          out[r * cols + c] = q & 0xff;
        }
      }
      return [data, scales];
    }
    case 'fp16':
    case 'bf16': {
      const half = format === 'fp16';
      for (let i = 0; i < n; i++) {
        const x = finite(op, W[i], i, cols);
        const bits = half ? toHalfBits(f32Bits(x)) : toBf16Bits(f32Bits(x));
        if (half && (bits & 0x7c00) === 0x7c00) {
          throw new Error(`op '${op}': weight ${position(i, cols)} = ${f(x)} overflows fp16 (largest finite value 65504); use bf16 for this weight`);
        }
        out[2 * i] = bits & 0xff;
        out[2 * i + 1] = bits >>> 8;
      }
      return [data];
    }
  }
});

// ---- dequantize ---------------------------------------------------------------------------------

/** The dequantized weight as a Float32Array (row-major [rows, cols]). */
function dequantAll(inputs: Tensor[], { format, doubleQuant, rows, cols }: QuantAttrs, op: string): Float32Array {
  const n = rows * cols;
  const bytes = bytesOf(inputs[0], op);
  const W = new Float32Array(n);
  switch (format) {
    case 'nf4': {
      let scales: ArrayLike<number>;
      if (doubleQuant) {
        const q = bytesOf(inputs[1], op), a2 = floats(inputs[2], op), off = floats(inputs[3], op)[0], code = floats(inputs[4], op);
        const nb = Math.ceil(n / NF4_BLOCK_SIZE);
        const s = new Float32Array(nb);
        for (let b = 0; b < nb; b++) s[b] = f(f(code[q[b]] * a2[Math.floor(b / DQ_BLOCK_SIZE)]) + off);
        scales = s;
      } else {
        scales = floats(inputs[1], op);
      }
      for (let i = 0; i < n; i++) {
        const byte = bytes[i >> 1];
        const c = i & 1 ? byte & 15 : byte >> 4;
        W[i] = f(NF4[c] * scales[Math.floor(i / NF4_BLOCK_SIZE)]);
      }
      return W;
    }
    case 'int8': {
      const S = floats(inputs[1], op);
      const q = new Int8Array(bytes.buffer, bytes.byteOffset, n);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) W[r * cols + c] = f(q[r * cols + c] * S[r]);
      return W;
    }
    case 'fp16':
      for (let i = 0; i < n; i++) W[i] = fromHalfBits(bytes[2 * i] | (bytes[2 * i + 1] << 8));
      return W;
    case 'bf16':
      for (let i = 0; i < n; i++) W[i] = f32FromBits((bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16);
      return W;
  }
}

registerKernel<DequantAttrs>('dequantize', B, (inputs, attrs, be) => {
  const t = allocTensor(be, [attrs.rows, attrs.cols], attrs.dtype);
  floats(t, 'dequantize').set(dequantAll(inputs, attrs, 'dequantize'));
  return [t];
});

// ---- quantized linear ---------------------------------------------------------------------------

registerKernel<QuantLinearAttrs>('quantizedLinear', B, (inputs, attrs, be) => {
  const op = 'quantizedLinear';
  const x = inputs[0];
  const bias = attrs.hasBias ? inputs[inputs.length - 1] : null;
  const qIn = inputs.slice(1, attrs.hasBias ? inputs.length - 1 : inputs.length);
  const W = dequantAll(qIn, attrs, op);
  const N = attrs.rows, K = attrs.cols, M = x.size / K;
  const X = floats(x, op);
  const y = allocTensor(be, [...x.shape.slice(0, -1), N], x.dtype);
  const Y = floats(y, op);
  const Bv = bias ? floats(bias, op) : null;
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += X[m * K + k] * W[j * K + k];
      Y[m * N + j] = Bv ? s + Bv[j] : s;
    }
  }
  return [y];
});

registerKernel<QuantAttrs>('quantizedLinearGradInput', B, ([dy, ...qIn], attrs, be) => {
  const op = 'quantizedLinearGradInput';
  const W = dequantAll(qIn, attrs, op);
  const N = attrs.rows, K = attrs.cols, M = dy.size / N;
  const G = floats(dy, op);
  const dx = allocTensor(be, [M, K], dy.dtype);
  const DX = floats(dx, op);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let j = 0; j < N; j++) s += G[m * N + j] * W[j * K + k];
      DX[m * K + k] = s;
    }
  }
  return [dx];
});
