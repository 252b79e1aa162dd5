// Random access to a long sequence of token ids, in memory or read from a file on demand.
import { closeSync, openSync, readSync } from 'node:fs';

export interface TokenStream {
  /** Number of tokens. */
  readonly length: number;
  /** Every id is in [0, vocabSize). */
  readonly vocabSize: number;
  /** A fresh copy of tokens [start, start + length). */
  window(start: number, length: number): Int32Array;
  /** Releases any file handle (no-op for in-memory streams). */
  close(): void;
}

export type TokenDtype = 'uint16' | 'int32';

export function bytesPerToken(dtype: TokenDtype): number {
  return dtype === 'uint16' ? 2 : 4;
}

function checkWindow(stream: TokenStream, start: number, length: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > stream.length) {
    throw new RangeError(`TokenStream.window(${start}, ${length}) is outside the stream of ${stream.length} tokens`);
  }
}

/** A stream over ids already in memory. */
export class ArrayTokenStream implements TokenStream {
  readonly length: number;

  constructor(
    private readonly ids: Int32Array | Uint16Array,
    readonly vocabSize: number,
  ) {
    this.length = ids.length;
  }

  window(start: number, length: number): Int32Array {
    checkWindow(this, start, length);
    const part = this.ids.subarray(start, start + length);
    return part instanceof Int32Array ? part.slice() : Int32Array.from(part);
  }

  close(): void {}
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian id bytes -> Int32Array (a typed-array view copy on little-endian hosts). */
export function decodeIds(bytes: Uint8Array, dtype: TokenDtype): Int32Array {
  const count = bytes.length / bytesPerToken(dtype);
  if (littleEndianHost) {
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    if (dtype === 'int32') return new Int32Array(aligned.buffer, aligned.byteOffset, count).slice();
    return Int32Array.from(new Uint16Array(aligned.buffer, aligned.byteOffset, count));
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = dtype === 'int32' ? view.getInt32(4 * i, true) : view.getUint16(2 * i, true);
  return out;
}

/** Ids -> little-endian bytes. */
export function encodeIds(ids: Int32Array, dtype: TokenDtype): Uint8Array {
  if (littleEndianHost) {
    const typed = dtype === 'int32' ? ids : Uint16Array.from(ids);
    return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  }
  const out = new Uint8Array(ids.length * bytesPerToken(dtype));
  const view = new DataView(out.buffer);
  for (let i = 0; i < ids.length; i++) {
    if (dtype === 'int32') view.setInt32(4 * i, ids[i]!, true);
    else view.setUint16(2 * i, ids[i]!, true);
  }
  return out;
}

/** A stream that reads each window from the file with a positional read (for corpora too big for memory). */
export class FileTokenStream implements TokenStream {
  private fd: number | undefined;

  constructor(
    readonly path: string,
    private readonly dataOffset: number,
    readonly length: number,
    readonly vocabSize: number,
    private readonly dtype: TokenDtype,
  ) {
    this.fd = openSync(path, 'r');
  }

  window(start: number, length: number): Int32Array {
    checkWindow(this, start, length);
    if (this.fd === undefined) throw new Error(`FileTokenStream for ${this.path} is closed`);
    const width = bytesPerToken(this.dtype);
    const bytes = new Uint8Array(length * width);
    let done = 0;
    while (done < bytes.length) {
      const read = readSync(this.fd, bytes, done, bytes.length - done, this.dataOffset + start * width + done);
      if (read === 0) throw new Error(`token cache ${this.path} ended early (was it truncated while open?)`);
      done += read;
    }
    return decodeIds(bytes, this.dtype);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
