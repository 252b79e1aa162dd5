/**
 * Quantized storage of frozen Linear weights W [out, in] and the matmul that reads it.
 *
 * Formats (what `bytes()` counts, n = out·in):
 * - 'nf4': 4-bit NormalFloat (QLoRA, Dettmers et al. 2023). The weight is flattened row-major and
 *   cut into blocks of 64 elements; each block stores its absmax (fp32) and every element the
 *   index of the NF4 level nearest to x / absmax, two 4-bit codes per byte (element 2i in the
 *   high nibble, 2i+1 in the low one, as bitsandbytes packs them). n/2 + 4·n/64 bytes: 4.5 bits.
 *   With `doubleQuant` the absmax scales are themselves quantized as bitsandbytes does: their
 *   mean (fp32 `offset`) is subtracted, then blocks of 256 scales are stored as 8-bit indices into
 *   bitsandbytes' signed dynamic map (`dynamicQuantCode()`) with one fp32 absmax per block:
 *   n/2 + n/64 + 4·n/(64·256) + 4 bytes, about 4.127 bits. NF4 codes are chosen against the
 *   scale that dequantization will actually use (the double-quantized one when enabled).
 * - 'int8': per-row absmax, scale = absmax/127, q = round-half-away(x / scale) in [-127, 127]:
 *   n + 4·out bytes (8 + 32/in bits).
 * - 'fp16' / 'bf16': IEEE binary16 / bfloat16, round to nearest even: 2n bytes. fp16 refuses
 *   values that overflow its range (±65504) instead of storing infinities.
 *
 * The engine has no byte dtype, so packed bytes live in int32 tensors of ceil(bytes/4) elements
 * ("byte view": byte j of the payload is byte j of the tensor's little-endian storage); fp32
 * scales are float32 tensors. Quantization reads the float32 value of every element (float64
 * inputs on the reference backend are rounded to float32 first) and refuses NaN and infinities.
 * Both backends produce bit-identical packed data and dequantized values.
 *
 * `quantizedLinear(x, qw, bias)` computes x · dequant(W)ᵀ + b. The native kernel never
 * materialises the whole weight: it dequantizes a tile of rows (forward) or of columns (input
 * gradient) into per-thread scratch and runs sgemm on it. The weight is frozen: the op has a
 * gradient for x and the bias only.
 */
import type { Backend } from '../backend.js';
import type { DType } from '../dtype.js';
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { keep } from '../scope.js';
import { formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { reshape, sumToShape } from './shape-ops.js';
import { tensor, toBackend } from './creation.js';

declareNonDifferentiable(['quantize', 'dequantize'], 'quantized storage is frozen: packing and unpacking codes are never differentiated');
declareNonDifferentiable(['quantizedLinearGradInput'], "backward kernel of 'quantizedLinear' (no double backward)");

// ---- formats ------------------------------------------------------------------------------------

/** Every quantized storage format that is implemented. Anything else (fp4, fp8, nvfp4, …) is refused. */
export const QUANT_FORMATS = ['nf4', 'int8', 'fp16', 'bf16'] as const;
export type QuantFormat = (typeof QUANT_FORMATS)[number];
/** The same list under its older name. */
export const SUPPORTED_QUANT_FORMATS: readonly QuantFormat[] = QUANT_FORMATS;

/**
 * The storage formats of a model's weights: plain fp32, or one of the quantized formats. The names
 * are the config's (`trunk_format`, a stack's `weight_format`).
 */
export const STORAGE_FORMATS = ['fp32', ...QUANT_FORMATS] as const;
export type StorageFormat = (typeof STORAGE_FORMATS)[number];

/** Names that other tools use and that are deliberately not implemented here. */
const KNOWN_UNIMPLEMENTED = new Set(['fp4', 'fp8', 'nvfp4', 'mxfp4', 'mxfp8', 'int4', 'e4m3', 'e5m2', 'fp8_e4m3', 'fp8_e5m2', 'gptq', 'awq', 'int2', 'int3']);

/** Numbering shared with native/src/quant.cc. */
export const QUANT_FORMAT_CODES: Record<QuantFormat, number> = { nf4: 0, int8: 1, fp16: 2, bf16: 3 };

/**
 * Checks a quantization format name read from a config or a file; returns it typed. Throws an
 * Error naming `fieldPath`, the value found and the supported formats.
 */
export function validateQuantFormat(name: unknown, fieldPath = 'quantization.format'): QuantFormat {
  if (typeof name === 'string' && (SUPPORTED_QUANT_FORMATS as readonly string[]).includes(name)) return name as QuantFormat;
  const supported = `supported formats: ${SUPPORTED_QUANT_FORMATS.join(', ')} (double quantization is the nf4 option doubleQuant)`;
  if (typeof name !== 'string') {
    throw new Error(`${fieldPath}: expected a quantization format name, found ${name === null ? 'null' : typeof name}; ${supported}`);
  }
  const lower = name.toLowerCase();
  if ((SUPPORTED_QUANT_FORMATS as readonly string[]).includes(lower)) {
    throw new Error(`${fieldPath}: unknown quantization format '${name}' (formats are lower case: did you mean '${lower}'?); ${supported}`);
  }
  if (KNOWN_UNIMPLEMENTED.has(lower)) {
    throw new Error(`${fieldPath}: quantization format '${name}' is not implemented (it would be accepted and ignored nowhere in StackWise); ${supported}`);
  }
  throw new Error(`${fieldPath}: unknown quantization format '${name}'; ${supported}`);
}

export const NF4_BLOCK_SIZE = 64;
export const DQ_BLOCK_SIZE = 256;

/** The 16 NF4 levels of the QLoRA paper (bitsandbytes' table), as float32 values. */
export const NF4_LEVELS: readonly number[] = Object.freeze([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
].map(Math.fround));

/** Half the largest gap between adjacent NF4 levels (the worst rounding error per unit of absmax). */
export const NF4_HALF_MAX_GAP = Math.max(...NF4_LEVELS.slice(1).map((v, i) => v - NF4_LEVELS[i])) / 2;

let dynamicCode: Float32Array | null = null;

/**
 * bitsandbytes' signed 8-bit dynamic quantization map (`create_dynamic_map(signed=True)`):
 * 256 sorted values in [-0.993, 1], 127 per sign spread over 7 decades, plus 0 and 1. The
 * double-quantized NF4 scales index into it.
 */
export function dynamicQuantCode(): Float32Array {
  if (dynamicCode) return dynamicCode;
  const values: number[] = [];
  const maxExponentBits = 7, nonSignBits = 7;
  for (let i = 0; i < maxExponentBits; i++) {
    const items = 2 ** (i + nonSignBits - maxExponentBits) + 1;
    const bounds = Array.from({ length: items }, (_, j) => Math.fround(0.1 + (0.9 * j) / (items - 1)));
    const scale = 10 ** (-(maxExponentBits - 1) + i);
    for (let j = 0; j + 1 < items; j++) {
      const mean = Math.fround(Math.fround(bounds[j] + bounds[j + 1]) / 2);
      values.push(Math.fround(scale * mean), Math.fround(-scale * mean));
    }
  }
  values.push(0, 1);
  values.sort((a, b) => a - b);
  if (values.length !== 256) throw new Error(`dynamicQuantCode: built ${values.length} values, expected 256`);
  dynamicCode = Float32Array.from(values);
  return dynamicCode;
}

const codeTensors = new Map<Backend, Tensor>();

/** The dynamic map as a (kept, shared) float32 tensor on `backend`. */
export function dynamicQuantCodeTensor(backend: Backend): Tensor {
  let t = codeTensors.get(backend);
  if (!t || t.isDisposed) {
    t = keep(tensor(dynamicQuantCode(), [256], { backend, dtype: 'float32' }));
    t.name = 'nf4.dq_code';
    codeTensors.set(backend, t);
  }
  return t;
}

// ---- sizes --------------------------------------------------------------------------------------

export interface QuantLayout {
  format: QuantFormat;
  /** [out, in]. */
  shape: readonly [number, number];
  doubleQuant: boolean;
}

/** Byte sizes of every stored piece of a quantized weight (exact payload, no padding). */
export function quantPartSizes(l: QuantLayout): { packedBytes: number; nBlocks: number; nBlocks2: number; scaleBytes: number; total: number } {
  const [rows, cols] = l.shape;
  const n = rows * cols;
  switch (l.format) {
    case 'nf4': {
      const nBlocks = Math.ceil(n / NF4_BLOCK_SIZE);
      const nBlocks2 = l.doubleQuant ? Math.ceil(nBlocks / DQ_BLOCK_SIZE) : 0;
      const packedBytes = Math.ceil(n / 2);
      const scaleBytes = l.doubleQuant ? nBlocks + 4 * nBlocks2 + 4 : 4 * nBlocks;
      return { packedBytes, nBlocks, nBlocks2, scaleBytes, total: packedBytes + scaleBytes };
    }
    case 'int8':
      return { packedBytes: n, nBlocks: rows, nBlocks2: 0, scaleBytes: 4 * rows, total: n + 4 * rows };
    case 'fp16':
    case 'bf16':
      return { packedBytes: 2 * n, nBlocks: 0, nBlocks2: 0, scaleBytes: 0, total: 2 * n };
  }
}

/** int32 elements holding `bytes` bytes. */
export const wordsFor = (bytes: number): number => Math.ceil(bytes / 4);

// ---- the quantized weight -----------------------------------------------------------------------

/** The stored pieces of a quantized weight. */
export interface QuantParts {
  /** Packed codes: int32 [ceil(packedBytes/4)] used as a byte view. */
  data: Tensor;
  /** nf4 without double quantization: float32 [nBlocks] absmax; int8: float32 [out] scales. */
  scales?: Tensor;
  /** nf4 + double quantization: int32 [ceil(nBlocks/4)] byte view of the 8-bit scale codes. */
  qscales?: Tensor;
  /** nf4 + double quantization: float32 [nBlocks2] absmax of each block of 256 centred scales. */
  scales2?: Tensor;
  /** nf4 + double quantization: float32 [1], the mean subtracted from the scales. */
  offset?: Tensor;
}

/** Attributes shared by the quantized kernels. */
export interface QuantAttrs {
  format: QuantFormat;
  doubleQuant: boolean;
  /** out features (rows of W). */
  rows: number;
  /** in features (columns of W). */
  cols: number;
}

export interface DequantAttrs extends QuantAttrs { dtype: DType }
export interface QuantLinearAttrs extends QuantAttrs { hasBias: boolean }

/**
 * A frozen Linear weight [out, in] in a quantized storage format: the packed data and scales
 * (engine tensors on one backend), the format and the shape. It owns its tensors until
 * `dispose()` (they are kept out of memory scopes).
 */
export class QuantizedWeight implements QuantLayout {
  readonly format: QuantFormat;
  readonly shape: readonly [number, number];
  readonly doubleQuant: boolean;
  readonly parts: Readonly<QuantParts>;

  constructor(layout: QuantLayout, parts: QuantParts) {
    const format = validateQuantFormat(layout.format, 'QuantizedWeight.format');
    const [rows, cols] = layout.shape;
    if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 1 || cols < 1) {
      throw new Error(`QuantizedWeight: shape must be [out, in] with positive integers, got ${formatShape(layout.shape)}`);
    }
    if (layout.doubleQuant && format !== 'nf4') throw new Error(`QuantizedWeight: double quantization applies to nf4 only, not ${format}`);
    this.format = format;
    this.shape = Object.freeze([rows, cols]) as readonly [number, number];
    this.doubleQuant = !!layout.doubleQuant;
    this.parts = Object.freeze({ ...parts });
    checkParts(this, this.parts);
  }

  /** Parameters represented (out · in). */
  get numel(): number {
    return this.shape[0] * this.shape[1];
  }

  get backend(): Backend {
    return this.parts.data.backend;
  }

  get isDisposed(): boolean {
    return this.tensors().some((t) => t.isDisposed);
  }

  /** The stored tensors: data first, then the scales in kernel order. */
  tensors(): Tensor[] {
    return partList(this);
  }

  /** Exact bytes of the packed data and scales (the shared dynamic map is not counted). */
  bytes(): number {
    return quantPartSizes(this).total;
  }

  /** Bytes as allocated (the int32 byte views round each payload up to 4 bytes). */
  storageBytes(): number {
    return this.tensors().reduce((s, t) => s + t.bytes, 0);
  }

  bitsPerParameter(): number {
    return (8 * this.bytes()) / this.numel;
  }

  /** The dequantized weight [out, in] (float32; float64 on the reference backend on request). */
  dequantize(dtype: DType = 'float32'): Tensor {
    return dequantizeWeight(this, dtype);
  }

  /** A copy of this weight on another backend (bit-exact). */
  toBackend(backend: Backend | string): QuantizedWeight {
    const parts: QuantParts = {} as QuantParts;
    noGrad(() => {
      for (const [k, t] of Object.entries(this.parts) as [keyof QuantParts, Tensor][]) {
        // Scales stay float32 even on backends that hold float64.
        const moved = keep(toBackend(t, backend));
        parts[k] = moved;
      }
    });
    return new QuantizedWeight(this, parts);
  }

  dispose(): void {
    for (const t of this.tensors()) t.dispose();
  }

  toString(): string {
    return `QuantizedWeight(${this.format}${this.doubleQuant ? '+dq' : ''} [${this.shape.join(', ')}], ${this.bitsPerParameter().toFixed(3)} bits/param)`;
  }
}

function partList(q: QuantLayout & { parts: Readonly<QuantParts> }): Tensor[] {
  const p = q.parts;
  switch (q.format) {
    case 'nf4': return q.doubleQuant ? [p.data, p.qscales!, p.scales2!, p.offset!] : [p.data, p.scales!];
    case 'int8': return [p.data, p.scales!];
    default: return [p.data];
  }
}

/** Kernel inputs of a quantized weight: its tensors, plus the dynamic map for double quantization. */
function kernelInputs(q: QuantizedWeight): Tensor[] {
  const ts = q.tensors();
  if (q.doubleQuant) ts.push(dynamicQuantCodeTensor(q.backend));
  return ts;
}

function checkParts(l: QuantLayout, p: QuantParts): void {
  const sz = quantPartSizes(l);
  const where = `QuantizedWeight(${l.format}${l.doubleQuant ? '+dq' : ''} [${l.shape.join(', ')}])`;
  const expect = (t: Tensor | undefined, name: string, dtypes: DType[], size: number) => {
    if (!t) throw new Error(`${where}: missing part '${name}'`);
    if (!dtypes.includes(t.dtype) || t.size !== size) {
      throw new Error(`${where}: part '${name}' is ${t.describe()}, expected ${dtypes.join('|')}[${size}]`);
    }
  };
  const floatsOk: DType[] = ['float32', 'float64'];
  expect(p.data, 'data', ['int32'], wordsFor(sz.packedBytes));
  const allowed = new Set<string>(['data']);
  if (l.format === 'nf4' && l.doubleQuant) {
    expect(p.qscales, 'qscales', ['int32'], wordsFor(sz.nBlocks));
    expect(p.scales2, 'scales2', floatsOk, sz.nBlocks2);
    expect(p.offset, 'offset', floatsOk, 1);
    ['qscales', 'scales2', 'offset'].forEach((k) => allowed.add(k));
  } else if (l.format === 'nf4' || l.format === 'int8') {
    expect(p.scales, 'scales', floatsOk, sz.nBlocks);
    allowed.add('scales');
  }
  for (const [k, t] of Object.entries(p)) {
    if (t === undefined) continue;
    if (!allowed.has(k)) throw new Error(`${where}: unexpected part '${k}'`);
    if (t.backend !== p.data.backend) throw new Error(`${where}: part '${k}' lives on backend '${t.backend.name}', data on '${p.data.backend.name}'`);
  }
}

function attrsOf(q: QuantLayout): QuantAttrs {
  return { format: q.format, doubleQuant: q.doubleQuant, rows: q.shape[0], cols: q.shape[1] };
}

export interface QuantizeOptions {
  /** nf4 only: quantize the absmax scales too (bitsandbytes double quantization). Default false. */
  doubleQuant?: boolean;
}

/** Quantizes a 2-D float weight [out, in] (not differentiable: the result is frozen storage). */
export function quantizeWeight(w: Tensor, format: QuantFormat | string, opts: QuantizeOptions = {}): QuantizedWeight {
  const op = 'quantize';
  const fmt = validateQuantFormat(format, `op '${op}': format`);
  if (w.rank !== 2) throw new Error(`op '${op}': weight must be 2-D [out, in], got ${w.describe()}`);
  if (w.dtype === 'int32') throw new Error(`op '${op}': weight must be a float tensor, got ${w.describe()}`);
  if (w.size === 0) throw new Error(`op '${op}': weight ${w.describe()} is empty`);
  const doubleQuant = !!opts.doubleQuant;
  if (doubleQuant && fmt !== 'nf4') throw new Error(`op '${op}': doubleQuant applies to nf4 only, not ${fmt}`);
  const layout: QuantLayout = { format: fmt, shape: [w.shape[0], w.shape[1]], doubleQuant };
  const inputs = doubleQuant ? [w, dynamicQuantCodeTensor(w.backend)] : [w];
  const outs = noGrad(() => runOp<QuantAttrs>(op, inputs, attrsOf(layout)));
  for (const t of outs) keep(t);
  const names: (keyof QuantParts)[] = fmt === 'nf4' ? (doubleQuant ? ['data', 'qscales', 'scales2', 'offset'] : ['data', 'scales']) : fmt === 'int8' ? ['data', 'scales'] : ['data'];
  const parts = {} as QuantParts;
  names.forEach((k, i) => { parts[k] = outs[i]; });
  return new QuantizedWeight(layout, parts);
}

/** The dequantized weight [out, in]. */
export function dequantizeWeight(q: QuantizedWeight, dtype: DType = 'float32'): Tensor {
  if (q.isDisposed) throw new Error(`op 'dequantize': ${q} was used after it was disposed`);
  if (dtype === 'int32') throw new Error(`op 'dequantize': dtype must be a float type, got ${dtype}`);
  return runOp<DequantAttrs>('dequantize', kernelInputs(q), { ...attrsOf(q), dtype })[0];
}

/**
 * y = x · dequant(W)ᵀ + b with W [out, in] quantized, x [..., in], b [out]. Differentiable with
 * respect to x and b; the quantized weight gets no gradient.
 */
export function quantizedLinear(x: Tensor, qweight: QuantizedWeight, bias?: Tensor | null): Tensor {
  const op = 'quantizedLinear';
  if (!(qweight instanceof QuantizedWeight)) throw new Error(`op '${op}': expected a QuantizedWeight, got ${Object.prototype.toString.call(qweight)}`);
  if (qweight.isDisposed) throw new Error(`op '${op}': ${qweight} was used after it was disposed`);
  const [outF, inF] = qweight.shape;
  if (x.dtype === 'int32') throw new Error(`op '${op}': input must be a float tensor, got ${x.describe()}`);
  if (x.rank < 1 || x.shape[x.rank - 1] !== inF) {
    throw new Error(`op '${op}': input ${formatShape(x.shape)} does not end in ${inF} (quantized weight [${outF}, ${inF}])`);
  }
  if (x.backend !== qweight.backend) {
    throw new Error(`op '${op}': input lives on backend '${x.backend.name}', the quantized weight on '${qweight.backend.name}'`);
  }
  if (bias) {
    if (bias.rank !== 1 || bias.shape[0] !== outF) throw new Error(`op '${op}': bias ${formatShape(bias.shape)} must be [${outF}]`);
    if (bias.dtype !== x.dtype) throw new Error(`op '${op}': bias ${bias.describe()} and input ${x.describe()} must have one dtype`);
  }
  const inputs = [x, ...kernelInputs(qweight)];
  if (bias) inputs.push(bias);
  return runOp<QuantLinearAttrs>(op, inputs, { ...attrsOf(qweight), hasBias: !!bias })[0];
}

registerGradient<QuantLinearAttrs>('quantizedLinear', (dys, { inputs, attrs }) => {
  const dy = dys[0]!;
  const x = inputs[0];
  const bias = attrs.hasBias ? inputs[inputs.length - 1] : null;
  const qInputs = inputs.slice(1, attrs.hasBias ? inputs.length - 1 : inputs.length);
  const grads: (Tensor | null)[] = inputs.map(() => null);
  if (x.requiresGrad) {
    const dx2 = runOp<QuantAttrs>('quantizedLinearGradInput', [reshape(dy, [-1, attrs.rows]), ...qInputs], attrs)[0];
    grads[0] = reshape(dx2, x.shape);
  }
  if (bias && bias.requiresGrad) grads[inputs.length - 1] = sumToShape(reshape(dy, [-1, attrs.rows]), [attrs.rows]);
  return grads;
});
