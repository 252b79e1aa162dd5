// safetensors reader and writer, written by hand (no dependency): see safetensors-header.ts for
// the format and its validation, safetensors-convert.ts for dtype conversions.

import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';

import { decodeHeader, encodeHeader, readHeaderLength, type HeaderLayout, type TensorEntry } from './safetensors-header.js';
import { safeError, type SafeFile, type SafeTensor } from './safetensors-types.js';
import { nonFiniteCount } from './safetensors-convert.js';

// The whole API is reachable from this module as well as from io/index.ts.
export type { SafeDType, SafeFile, SafeTensor } from './safetensors-types.js';
export { DTYPE_SIZE, SafetensorsError } from './safetensors-types.js';
export { MAX_HEADER_BYTES } from './safetensors-header.js';
export { fromFloat32, fromInt32, nonFiniteCount, toFloat32, toFloat64, toInt32 } from './safetensors-convert.js';
export {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32BitsToBFloat16Bits,
  float32BitsToFloat16Bits,
  float32ToBFloat16Bits,
  float32ToFloat16Bits,
} from './half.js';

/** Largest single read/write we ask the OS for (Node refuses > 2 GiB per call). */
const IO_CHUNK = 1 << 30;

/**
 * Parses a whole safetensors file held in memory. Each tensor gets its own copy of its bytes in a
 * fresh ArrayBuffer (offset 0), so `new Float32Array(t.data.buffer)` etc. are always aligned and
 * the caller may keep tensors without pinning the file's buffer.
 * @param source file name used in error messages
 */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafeFile {
  const headerLength = readHeaderLength(bytes.subarray(0, 8), bytes.length, source);
  const dataStart = 8 + headerLength;
  const layout = decodeHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, source);
  return assemble(layout, (e) => copyBytes(bytes.subarray(dataStart + e.begin, dataStart + e.end)));
}

/** A copy in a fresh buffer. (Not `.slice()`: on a Node Buffer that returns a view.) */
function copyBytes(view: Uint8Array): Uint8Array {
  const out = new Uint8Array(view.length);
  out.set(view);
  return out;
}

/**
 * Reads a safetensors file. Only the header is read before validation; then each tensor is read
 * straight into its own buffer, so the file is never held twice in memory.
 */
export function readSafetensors(path: string): SafeFile {
  const fd = openSync(path, 'r');
  try {
    const fileLength = fstatSync(fd).size;
    const prefix = readAt(fd, Math.min(8, fileLength), 0, path);
    const headerLength = readHeaderLength(prefix, fileLength, path);
    const dataStart = 8 + headerLength;
    const layout = decodeHeader(readAt(fd, headerLength, 8, path), fileLength - dataStart, path);
    return assemble(layout, (e) => readAt(fd, e.end - e.begin, dataStart + e.begin, path));
  } finally {
    closeSync(fd);
  }
}

function assemble(layout: HeaderLayout, bytesOf: (entry: TensorEntry) => Uint8Array): SafeFile {
  const tensors = new Map<string, SafeTensor>();
  for (const entry of layout.entries) {
    tensors.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data: bytesOf(entry) });
  }
  return { tensors, metadata: layout.metadata };
}

/** Reads exactly `length` bytes at `position` into a new buffer (the lazy reader shares it). */
export function readAt(fd: number, length: number, position: number, path: string): Uint8Array {
  const out = new Uint8Array(length);
  readInto(fd, out, position, path);
  return out;
}

/** Fills `out` with the bytes at `position` (the lazy reader's chunked reads reuse one buffer). */
export function readInto(fd: number, out: Uint8Array, position: number, path: string): void {
  const length = out.length;
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, Math.min(IO_CHUNK, length - done), position + done);
    // The size was checked against fstat; running out now means the file shrank under us.
    if (n === 0) throw safeError(path, undefined, `expected ${length} bytes at offset ${position}, found end of file after ${done}`);
    done += n;
  }
}

/**
 * Encodes tensors as a safetensors file: header keys sorted (`__metadata__` first, only when
 * non-empty), data laid out in name order, data start 8-byte aligned.
 */
export function serializeSafetensors(
  tensors: Map<string, SafeTensor> | Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const { prefix, ordered } = encodeHeader(tensors, metadata, 'serializeSafetensors');
  let total = prefix.length;
  for (const [, t] of ordered) total += t.data.length;
  const out = new Uint8Array(total);
  out.set(prefix, 0);
  let offset = prefix.length;
  for (const [, t] of ordered) {
    out.set(t.data, offset);
    offset += t.data.length;
  }
  return out;
}

/**
 * Writes a safetensors file atomically: everything is validated first, then written to a temp
 * file in the same folder (same file system, so rename is atomic), fsynced, and renamed over
 * `path`. On any failure the temp file is removed and an existing `path` is left untouched.
 */
export function writeSafetensors(
  path: string,
  tensors: Map<string, SafeTensor> | Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): void {
  const { prefix, ordered } = encodeHeader(tensors, metadata, path);
  const dir = dirname(resolve(path));
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined = openSync(temp, 'wx');
  let renamed = false;
  try {
    writeAll(fd, prefix);
    for (const [, t] of ordered) writeAll(fd, t.data);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
    renamed = true;
  } finally {
    if (!renamed) {
      if (fd !== undefined) ignoreErrors(() => closeSync(fd!));
      ignoreErrors(() => unlinkSync(temp));
    }
  }
  // Persist the rename itself; not every platform can fsync a directory, and the data is
  // already safe, so failing here is not an error.
  ignoreErrors(() => {
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  });
}

/** Writes all of `bytes` at the file's position, in chunks (the streaming HF writer shares it). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    done += writeSync(fd, bytes, done, Math.min(IO_CHUNK, bytes.length - done));
  }
}

function ignoreErrors(action: () => void): void {
  try {
    action();
  } catch {
    // best effort: see the caller
  }
}

/**
 * Weights must be finite: a tensor holding NaN or Inf (a diverged run saved anyway, a corrupted
 * or hand-edited file) would make every forward print NaN without a word. Returns, for each such
 * tensor, its name and how many of its values are NaN/Inf; `refuse` throws for the first instead.
 */
export function nonFiniteTensors(tensors: Iterable<[string, SafeTensor]>): { name: string; count: number; total: number }[] {
  const out: { name: string; count: number; total: number }[] = [];
  for (const [name, t] of tensors) {
    const count = nonFiniteCount(t);
    if (count > 0) out.push({ name, count, total: t.shape.reduce((a, b) => a * b, 1) });
  }
  return out;
}

/** Throws a SafetensorsError naming the first tensor that holds NaN or Inf (see nonFiniteTensors). */
export function assertFiniteTensors(tensors: Iterable<[string, SafeTensor]>, source: string): void {
  const bad = nonFiniteTensors(tensors);
  if (bad.length === 0) return;
  const first = bad[0]!;
  throw safeError(source, first.name, `${first.count} of ${first.total} values are NaN or Inf` +
    `${bad.length > 1 ? ` (and ${bad.length - 1} more tensor(s): ${bad.slice(1, 4).map((b) => b.name).join(', ')}${bad.length > 4 ? ', …' : ''})` : ''}; ` +
    'these weights are broken (a diverged run, or a corrupted file) and would only compute NaN');
}
