/** The reference backend: plain TypeScript over typed arrays, simple and exact. Every native
 * kernel is cross-checked against it, and it runs float64 for gradient checks. */
import { markWritten, type Backend, type MemoryInfo, type Storage } from '../../backend.js';
import { typedArrayFor, type DType, type TypedArray } from '../../dtype.js';
import type { Tensor } from '../../tensor.js';

export class ReferenceStorage implements Storage {
  refs = 0;
  version = 0;
  constructor(public data: TypedArray | null) {}
  get bytes(): number {
    return this.data ? this.data.byteLength : 0;
  }
}

class ReferenceBackend implements Backend {
  readonly name = 'reference';
  readonly dtypes: readonly DType[] = ['float32', 'float64', 'int32'];
  private live = 0;
  private count = 0;
  private peak = 0;

  alloc(size: number, dtype: DType): Storage {
    const data = typedArrayFor(dtype, size);
    this.live += data.byteLength;
    this.count += 1;
    this.peak = Math.max(this.peak, this.live);
    return new ReferenceStorage(data);
  }

  free(storage: Storage): void {
    const s = storage as ReferenceStorage;
    if (!s.data) return;
    this.live -= s.data.byteLength;
    this.count -= 1;
    s.data = null;
  }

  upload(storage: Storage, data: TypedArray, offset?: number): void {
    const s = storage as ReferenceStorage;
    const have = s.data?.length ?? 0;
    if (offset === undefined) {
      if (!s.data || have !== data.length) throw new Error(`reference upload: expected ${have} elements, got ${data.length}`);
    } else if (!s.data || !Number.isInteger(offset) || offset < 0 || offset + data.length > have) {
      throw new Error(`reference upload: ${data.length} elements at offset ${offset} do not fit in ${have}`);
    }
    s.data.set(data, offset ?? 0);
    markWritten(s);
  }

  download(storage: Storage, dtype: DType, size: number): TypedArray {
    const s = storage as ReferenceStorage;
    if (!s.data) throw new Error('reference download: storage was freed');
    const out = typedArrayFor(dtype, size);
    out.set(s.data.subarray(0, size));
    return out;
  }

  memory(): MemoryInfo {
    return { bytes: this.live, buffers: this.count, peakBytes: this.peak };
  }
}

export const referenceBackend = new ReferenceBackend();

/** The elements of a reference tensor (no copy). */
export function data(t: Tensor): TypedArray {
  const d = (t.storage as ReferenceStorage).data;
  if (!d) throw new Error(`tensor ${t.describe()} has freed storage`);
  return d;
}

/** Float elements of a reference tensor; throws for int32 where a float is required. */
export function floats(t: Tensor, op: string): Float32Array | Float64Array {
  const d = data(t);
  if (d instanceof Int32Array) throw new Error(`op '${op}': expected a float tensor, got ${t.describe()}`);
  return d;
}

export function ints(t: Tensor, op: string): Int32Array {
  const d = data(t);
  if (!(d instanceof Int32Array)) throw new Error(`op '${op}': expected an int32 tensor, got ${t.describe()}`);
  return d;
}
