import type { DType, TypedArray } from './dtype.js';

/** Backend-owned memory for one tensor's elements. Tensors that are views (reshape) share a
 * storage; it is released when the last of them is disposed. */
export interface Storage {
  readonly bytes: number;
  refs: number;
  /**
   * Write version: changes (to a value never used before by any storage) every time the elements
   * are written in place, through `Backend.upload` or an op that declares the input as mutated
   * (see `registerInPlaceOp`). It lives on the storage, not the tensor, because views share
   * their elements. Equal versions of the same storage mean equal contents: what lets a cache of
   * values derived from weights (the activation cache) check staleness without reading them.
   */
  version: number;
}

/** The write clock: versions only grow, and no two writes anywhere get the same one. */
let writeClock = 0;

/** Records an in-place write into `storage`: gives it a new write version. */
export function markWritten(storage: Storage): void {
  storage.version = ++writeClock;
}

export interface MemoryInfo {
  /** Bytes currently allocated by this backend. */
  bytes: number;
  /** Live allocations. */
  buffers: number;
  /** Highest `bytes` seen so far. */
  peakBytes: number;
}

/** What the engine needs from a backend besides its kernels (which live in the registry). */
export interface Backend {
  readonly name: string;
  readonly dtypes: readonly DType[];
  /** Zero-filled storage of `size` elements; with `zero` false the contents are undefined (for
   * kernel outputs that the kernel writes in full, so no pass over memory is spent on zeros). */
  alloc(size: number, dtype: DType, zero?: boolean): Storage;
  free(storage: Storage): void;
  /**
   * Writes `data` into the storage from element `offset` (default 0; the whole storage when 0
   * and the lengths match). Implementations must call `markWritten(storage)`: this and the
   * in-place ops are the only ways elements change, so write versions stay exact.
   */
  upload(storage: Storage, data: TypedArray, offset?: number): void;
  download(storage: Storage, dtype: DType, size: number): TypedArray;
  memory(): MemoryInfo;
}
