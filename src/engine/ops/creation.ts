/** Creating tensors: from data, constants, seeded random values, copies and casts. */
import type { Backend } from '../backend.js';
import { getBackend, getDefaultBackend } from '../backend-registry.js';
import { typedArrayFor, type DType, type TypedArray } from '../dtype.js';
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { checkShape, formatShape, sizeOf, type Shape } from '../shape.js';
import { allocTensor, type Tensor } from '../tensor.js';

declareNonDifferentiable(['fill'], 'creates a constant; has no inputs');

export interface CreateOptions {
  dtype?: DType;
  backend?: Backend | string;
  requiresGrad?: boolean;
}

function resolveBackend(b: Backend | string | undefined): Backend {
  if (b === undefined) return getDefaultBackend();
  return typeof b === 'string' ? getBackend(b) : b;
}

/** A tensor holding `values` (copied) with the given shape. */
export function tensor(values: ArrayLike<number>, shape: Shape, opts: CreateOptions = {}): Tensor {
  checkShape(shape, 'tensor');
  const dtype = opts.dtype ?? (values instanceof Int32Array ? 'int32' : values instanceof Float64Array ? 'float64' : 'float32');
  if (values.length !== sizeOf(shape)) throw new Error(`tensor: ${values.length} values do not fill shape ${formatShape(shape)} (${sizeOf(shape)} elements)`);
  const backend = resolveBackend(opts.backend);
  const t = allocTensor(backend, shape, dtype);
  let arr: TypedArray;
  if ((dtype === 'float32' && values instanceof Float32Array) || (dtype === 'float64' && values instanceof Float64Array) || (dtype === 'int32' && values instanceof Int32Array)) arr = values;
  else {
    arr = typedArrayFor(dtype, values.length);
    for (let i = 0; i < values.length; i++) arr[i] = values[i];
  }
  backend.upload(t.storage, arr);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

export interface FillAttrs { shape: Shape; dtype: DType; value: number; backend?: Backend }

export function full(shape: Shape, value: number, opts: CreateOptions = {}): Tensor {
  checkShape(shape, 'full');
  const backend = resolveBackend(opts.backend);
  const t = runOp<FillAttrs>('fill', [], { shape, dtype: opts.dtype ?? 'float32', value, backend }, backend)[0];
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

export function zeros(shape: Shape, opts: CreateOptions = {}): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: Shape, opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export function zerosLike(t: Tensor): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, backend: t.backend });
}

export function onesLike(t: Tensor): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, backend: t.backend });
}

/** A copy of `t` with its own storage (differentiable). */
export function clone(t: Tensor): Tensor {
  return runOp('copy', [t], {})[0];
}
registerGradient('copy', (dys) => [dys[0]]);

export interface CastAttrs { dtype: DType }

/** Converts to another dtype (float → int truncates toward zero). */
export function cast(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return clone(t);
  return runOp<CastAttrs>('cast', [t], { dtype })[0];
}
registerGradient<CastAttrs>('cast', (dys, { inputs }) => [inputs[0].dtype === 'int32' ? null : cast(dys[0]!, inputs[0].dtype)]);

/** Moves (copies) a tensor to another backend; float64 becomes float32 on backends without it. */
export function toBackend(t: Tensor, backend: Backend | string): Tensor {
  const be = resolveBackend(backend);
  let dtype = t.dtype;
  if (!be.dtypes.includes(dtype)) dtype = 'float32';
  const values = t.toArray();
  return tensor(dtype === t.dtype ? values : Float32Array.from(values), t.shape, { dtype, backend: be });
}

/** Deterministic PRNG (mulberry32 stream seeded by splitmix) for initialisation. */
export function seededRandom(seed: number): () => number {
  let s = (seed >>> 0) ^ 0x9e3779b9;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RandomOptions extends CreateOptions {
  seed: number;
}

/** Elements generated per chunk by the random initialisers (even, so Box–Muller pairs never straddle two chunks). */
const RANDOM_CHUNK = 1 << 18;

/**
 * A tensor filled by `gen(out, start)` chunk by chunk (values written in order, so the stream is
 * the same as one pass): a big tensor never has a full-size float64 copy in JavaScript memory.
 */
function generated(shape: Shape, opts: CreateOptions, gen: (out: Float64Array, start: number) => void): Tensor {
  const n = sizeOf(shape);
  const dtype = opts.dtype ?? 'float32';
  if (n <= RANDOM_CHUNK) {
    const out = new Float64Array(n);
    gen(out, 0);
    return tensor(out, shape, { ...opts, dtype });
  }
  const t = zeros(shape, { ...opts, dtype });
  const buf = new Float64Array(RANDOM_CHUNK);
  const typed = dtype === 'float64' ? buf : new Float32Array(RANDOM_CHUNK);
  for (let off = 0; off < n; off += RANDOM_CHUNK) {
    const len = Math.min(RANDOM_CHUNK, n - off);
    const out = buf.subarray(0, len);
    gen(out, off);
    if (typed !== buf) (typed as Float32Array).set(out);
    t.write(typed.subarray(0, len), off);
  }
  return t;
}

/** Standard normal values (Box–Muller) times `std` plus `mean`, from an explicit seed. */
export function randn(shape: Shape, opts: RandomOptions & { mean?: number; std?: number }): Tensor {
  const rand = seededRandom(opts.seed);
  const std = opts.std ?? 1, mean = opts.mean ?? 0;
  return generated(shape, opts, (out) => {
    for (let i = 0; i < out.length; i += 2) {
      const u1 = Math.max(rand(), 1e-12), u2 = rand();
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < out.length) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
    }
  });
}

/** Uniform values in [low, high) from an explicit seed. */
export function randUniform(shape: Shape, opts: RandomOptions & { low?: number; high?: number }): Tensor {
  const rand = seededRandom(opts.seed);
  const lo = opts.low ?? 0, hi = opts.high ?? 1;
  return generated(shape, opts, (out) => {
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * rand();
  });
}

/** Uniform integers in [0, high) from an explicit seed. */
export function randInt(shape: Shape, high: number, opts: RandomOptions): Tensor {
  const n = sizeOf(shape);
  const rand = seededRandom(opts.seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * high);
  return tensor(out, shape, { ...opts, dtype: 'int32' });
}
