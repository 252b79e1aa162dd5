/** The native backend: memory and kernels in the C++ addon (OpenBLAS GEMM, fused OpenMP
 * kernels). float32 compute and int32 ids. */
import { markWritten, type Backend, type MemoryInfo, type Storage } from '../../backend.js';
import { BYTES_PER_ELEMENT, typedArrayFor, type DType, type TypedArray } from '../../dtype.js';
import type { Tensor } from '../../tensor.js';
import type { NativeAddon } from './addon.js';

export class NativeStorage implements Storage {
  refs = 0;
  version = 0;
  /** What every kernel takes (a napi external naming the buffer's slot and generation). */
  readonly handle: object;
  /** What alloc returned and free takes (see native/src/storage.cc). */
  constructor(readonly owner: { h: object }, public readonly bytes: number) {
    this.handle = owner.h;
  }
}

export class NativeBackend implements Backend {
  readonly name = 'native';
  readonly dtypes: readonly DType[] = ['float32', 'int32'];
  constructor(readonly addon: NativeAddon) {}

  alloc(size: number, dtype: DType, zero = true): Storage {
    const bytes = size * BYTES_PER_ELEMENT[dtype];
    return new NativeStorage(this.addon.alloc(bytes, zero), bytes);
  }

  /** Releases the buffer now, with nothing left for a finaliser (see native/src/storage.cc). */
  free(storage: Storage): void {
    this.addon.free((storage as NativeStorage).owner);
  }

  upload(storage: Storage, data: TypedArray, offset?: number): void {
    if (offset === undefined) {
      if (data.byteLength !== storage.bytes) throw new Error(`native upload: expected ${storage.bytes} bytes, got ${data.byteLength}`);
    } else if (!Number.isInteger(offset) || offset < 0) {
      throw new Error(`native upload: offset must be a non-negative integer, found ${offset}`);
    }
    // The addon checks the byte range (an out-of-range write throws before copying anything).
    this.addon.write((storage as NativeStorage).handle, data, (offset ?? 0) * data.BYTES_PER_ELEMENT);
    markWritten(storage);
  }

  download(storage: Storage, dtype: DType, size: number): TypedArray {
    const out = typedArrayFor(dtype, size);
    this.addon.read((storage as NativeStorage).handle, out, 0);
    return out;
  }

  memory(): MemoryInfo {
    const [bytes, buffers, peakBytes] = this.addon.memory();
    return { bytes, buffers, peakBytes };
  }
}

/** The native handle of a tensor's storage (throws if the tensor was disposed). */
export function h(t: Tensor): object {
  return (t.storage as NativeStorage).handle;
}

/** The handle of an optional tensor, or null. */
export function hOrNull(t: Tensor | null | undefined): object | null {
  return t ? h(t) : null;
}
