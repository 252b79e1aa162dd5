import type { DType, TypedArray } from './dtype.js';

/** Backend-owned memory for one tensor's elements. Tensors that are views (reshape) share a
 * storage; it is released when the last of them is disposed. */
export interface Storage {
  readonly bytes: number;
  refs: number;
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
  alloc(size: number, dtype: DType): Storage;
  free(storage: Storage): void;
  upload(storage: Storage, data: TypedArray): void;
  download(storage: Storage, dtype: DType, size: number): TypedArray;
  memory(): MemoryInfo;
}
