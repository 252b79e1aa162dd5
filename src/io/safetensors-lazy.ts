/**
 * A safetensors file opened for reading tensor by tensor: the header is read and validated at
 * open; each `read(name)` reads that tensor's byte range only. A loader can then convert or
 * quantize one tensor and drop it before reading the next, so loading a big model never holds
 * more than one tensor of the file in memory (readSafetensors reads every tensor at once).
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { decodeHeader, readHeaderLength, type TensorEntry } from './safetensors-header.js';
import { safeError, type SafeTensor } from './safetensors-types.js';
import { readAt as readExactly, readInto } from './safetensors.js';


export interface SafetensorsReader {
  readonly path: string;
  /** Tensor names in file order (by data offset). */
  readonly names: readonly string[];
  readonly metadata: Record<string, string>;
  /** dtype, shape and byte length of a tensor, without reading it. */
  info(name: string): { dtype: SafeTensor['dtype']; shape: readonly number[]; bytes: number };
  /** Reads one tensor's bytes (a fresh, aligned buffer). Unknown names are errors naming the file. */
  read(name: string): SafeTensor;
  /**
   * Reads one tensor in pieces of at most `chunkBytes` (a multiple of 8) into one reused buffer:
   * `onChunk(bytes, offset)` gets each piece and its byte offset in the tensor, and must copy what
   * it keeps before returning. A tensor of any size then costs one chunk of memory to read.
   */
  readChunked(name: string, chunkBytes: number, onChunk: (bytes: Uint8Array, offset: number) => void): void;
  close(): void;
}

export function openSafetensors(path: string): SafetensorsReader {
  const fd = openSync(path, 'r');
  let open = true;
  try {
    const fileLength = fstatSync(fd).size;
    const readAt = (length: number, position: number): Uint8Array => {
      if (!open) throw safeError(path, undefined, 'the file was closed');
      return readExactly(fd, length, position, path);
    };
    const headerLength = readHeaderLength(readAt(Math.min(8, fileLength), 0), fileLength, path);
    const dataStart = 8 + headerLength;
    const layout = decodeHeader(readAt(headerLength, 8), fileLength - dataStart, path);
    const byName = new Map<string, TensorEntry>(layout.entries.map((e) => [e.name, e]));
    const entry = (name: string): TensorEntry => {
      const e = byName.get(name);
      if (!e) throw safeError(path, name, `no tensor named '${name}' in this file (it has ${byName.size}: ${[...byName.keys()].slice(0, 5).join(', ')}${byName.size > 5 ? ', …' : ''})`);
      return e;
    };
    return {
      path,
      names: [...layout.entries].sort((a, b) => a.begin - b.begin).map((e) => e.name),
      metadata: layout.metadata,
      info: (name) => { const e = entry(name); return { dtype: e.dtype, shape: e.shape, bytes: e.end - e.begin }; },
      read: (name) => { const e = entry(name); return { dtype: e.dtype, shape: e.shape, data: readAt(e.end - e.begin, dataStart + e.begin) }; },
      readChunked: (name, chunkBytes, onChunk) => {
        const e = entry(name);
        if (!(Number.isInteger(chunkBytes) && chunkBytes > 0 && chunkBytes % 8 === 0)) throw new Error(`readChunked: chunk size must be a positive multiple of 8 bytes, found ${chunkBytes}`);
        const total = e.end - e.begin;
        const buffer = new Uint8Array(Math.min(chunkBytes, total));
        for (let done = 0; done < total;) {
          if (!open) throw safeError(path, name, 'the file was closed');
          const n = Math.min(buffer.length, total - done);
          const piece = buffer.subarray(0, n);
          readInto(fd, piece, dataStart + e.begin + done, path);
          onChunk(piece, done);
          done += n;
        }
      },
      close: () => { if (open) { open = false; closeSync(fd); } },
    };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}
