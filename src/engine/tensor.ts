import { markWritten, type Backend, type Storage } from './backend.js';
import { BYTES_PER_ELEMENT, type DType, type TypedArray } from './dtype.js';
import { formatShape, sizeOf, type Shape } from './shape.js';
import { setTensorCheck, track, type Scoped } from './scope.js';

/** What an op run with gradients records on its outputs (autograd.ts walks these backwards). */
export interface TapeNode {
  op: string;
  inputs: Tensor[];
  outputs: Tensor[];
  attrs: unknown;
}

type BackwardFn = (root: Tensor, gradient?: Tensor, opts?: { freeSaved?: boolean }) => void;
let backwardImpl: BackwardFn | null = null;
/** Set by autograd.ts when it loads (tensor.ts cannot import the autograd that imports it). */
export function setBackward(fn: BackwardFn): void {
  backwardImpl = fn;
}

let nextId = 1;

/** A contiguous, row-major n-d array living in a backend's memory. */
export class Tensor {
  readonly id = nextId++;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly backend: Backend;
  readonly size: number;
  /** Whether gradients flow to/through this tensor. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf tensor after `backward()`. */
  grad: Tensor | null = null;
  /** The tape entry that produced this tensor (null for leaves). */
  node: TapeNode | null = null;
  /** Optional label used in error messages (parameters carry their dotted name). */
  name: string | undefined;
  /** @internal the scope set that owns this tensor. */
  scope: Set<Scoped> | null = null;
  private store: Storage | null;

  constructor(backend: Backend, storage: Storage, shape: Shape, dtype: DType) {
    this.backend = backend;
    this.store = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    track(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.store === null;
  }

  /** The backend storage; throws if the tensor was disposed. */
  get storage(): Storage {
    if (this.store === null) throw new Error(`tensor ${this.describe()} was used after it was disposed`);
    return this.store;
  }

  get bytes(): number {
    return this.size * BYTES_PER_ELEMENT[this.dtype];
  }

  /**
   * The write version of the elements (shared with views): it changes on every in-place write
   * (`write`, `Backend.upload`, in-place ops such as the optimizer updates) and never on a read
   * or a forward. Two reads of the same tensor with equal versions saw equal contents.
   */
  get writeVersion(): number {
    return this.storage.version;
  }

  /**
   * Overwrites elements in place (identity, views and requiresGrad stay): all of them from
   * `data` when `offset` is omitted (the lengths must match), else `data.length` elements from
   * element `offset`. `data` must be of the tensor's dtype. The write version changes.
   */
  write(data: TypedArray, offset?: number): void {
    const kind = data instanceof Float32Array ? 'float32' : data instanceof Float64Array ? 'float64' : 'int32';
    if (kind !== this.dtype) throw new Error(`write: tensor ${this.describe()} takes ${this.dtype} data, found a ${data.constructor.name}`);
    if (offset === undefined ? data.length !== this.size : !(Number.isInteger(offset) && offset >= 0 && offset + data.length <= this.size)) {
      throw new Error(`write: ${data.length} elements${offset === undefined ? '' : ` at offset ${offset}`} do not fit tensor ${this.describe()} (${this.size} elements)`);
    }
    this.backend.upload(this.storage, data, offset);  // bumps the write version
  }

  /**
   * @internal Records that the elements were changed in place by a path that is neither
   * `write`/`upload` nor an op declared in place (a backend-level write); changes the version.
   */
  markWritten(): void {
    markWritten(this.storage);
  }

  describe(): string {
    return `${this.name ? `'${this.name}' ` : ''}#${this.id} ${this.dtype}${formatShape(this.shape)}`;
  }

  /** Frees the tensor's memory now (shared view storage is freed with its last user). */
  dispose(): void {
    if (this.store === null) return;
    const s = this.store;
    this.store = null;
    if (this.scope) { this.scope.delete(this); this.scope = null; }
    s.refs -= 1;
    if (s.refs === 0) this.backend.free(s);
  }

  /** A copy of the elements in a typed array of the tensor's dtype. */
  toArray(): TypedArray {
    return this.backend.download(this.storage, this.dtype, this.size);
  }

  /** Plain nested number arrays, for printing and tests. */
  toList(): number[] {
    return Array.from(this.toArray());
  }

  item(): number {
    if (this.size !== 1) throw new Error(`item(): tensor ${this.describe()} has ${this.size} elements, expected 1`);
    return this.toArray()[0];
  }

  /** Back-propagates from this (scalar) tensor; see autograd.backward (and its freeSaved option). */
  backward(gradient?: Tensor, opts?: { freeSaved?: boolean }): void {
    if (!backwardImpl) throw new Error('Tensor.backward: autograd is not loaded (import the engine through its index)');
    backwardImpl(this, gradient, opts);
  }

  toString(): string {
    return `Tensor(${this.describe()})`;
  }

  /** @internal a new tensor object over this one's storage (reshape). */
  viewAs(shape: Shape): Tensor {
    const s = this.storage;
    s.refs += 1;
    return new Tensor(this.backend, s, shape, this.dtype);
  }
}

export function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}
setTensorCheck(isTensor);

/** Allocates a zero-filled tensor on a backend. */
export function allocTensor(backend: Backend, shape: Shape, dtype: DType): Tensor {
  return alloc(backend, shape, dtype, true);
}

/**
 * Allocates a tensor whose contents are undefined, for a kernel output that the kernel writes in
 * full (every element, on every path that returns): filling it with zeros first would be one more
 * pass over memory per op. Anything that may leave an element unwritten uses allocTensor.
 */
export function allocOutput(backend: Backend, shape: Shape, dtype: DType): Tensor {
  return alloc(backend, shape, dtype, false);
}

function alloc(backend: Backend, shape: Shape, dtype: DType, zero: boolean): Tensor {
  if (!backend.dtypes.includes(dtype)) {
    throw new Error(`backend '${backend.name}' does not support dtype ${dtype} (supported: ${backend.dtypes.join(', ')})`);
  }
  const storage = backend.alloc(sizeOf(shape), dtype, zero);
  storage.refs = 1;
  return new Tensor(backend, storage, shape, dtype);
}
