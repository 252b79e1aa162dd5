// The safetensors header: decoding + validating it (reader side) and encoding it (writer side).
//
// File layout: u64 little-endian N | N bytes of UTF-8 JSON | data buffer.
// JSON: { "__metadata__"?: {string: string}, <name>: {dtype, shape, data_offsets: [begin, end]} },
// offsets relative to the start of the data buffer.
//
// Every check here runs on the header alone, before any tensor byte is touched or allocated, so
// a hostile file costs at most its (bounded) header to refuse.

import {
  DTYPE_SIZE,
  SUPPORTED_DTYPES,
  SafetensorsError,
  checkedElementCount,
  describe,
  isSafeDType,
  safeError,
  type SafeDType,
  type SafeTensor,
} from './safetensors-types.js';

/** Same limit as the reference implementation: larger headers are refused unread. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

/** One tensor's place in the data buffer, as validated from the header. */
export interface TensorEntry {
  name: string;
  dtype: SafeDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface HeaderLayout {
  /** In header order. */
  entries: TensorEntry[];
  metadata: Record<string, string>;
}

/**
 * Reads and sanity-checks the 8-byte header length from the first bytes of a file of
 * `fileLength` bytes. Refuses absurd lengths before the caller allocates anything for them.
 */
export function readHeaderLength(prefix: Uint8Array, fileLength: number, source: string): number {
  if (fileLength < 8 || prefix.length < 8) {
    throw safeError(source, undefined, `expected at least 8 bytes (the header length), found a file of ${fileLength} bytes`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const length = view.getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw safeError(source, undefined,
      `header length ${length} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt file, or not safetensors)`);
  }
  const available = fileLength - 8;
  if (length > BigInt(available)) {
    throw safeError(source, undefined,
      `header length is ${length} bytes but only ${available} bytes follow the length prefix (truncated file?)`);
  }
  return Number(length);
}

/** Decodes the JSON header and validates every entry against a data buffer of `dataLength` bytes. */
export function decodeHeader(headerBytes: Uint8Array, dataLength: number, source: string): HeaderLayout {
  const header = parseJsonObject(headerBytes, source);
  const entries: TensorEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) metadata = checkMetadata(value, source);
    else entries.push(checkEntry(name, value, dataLength, source));
  }
  checkLayout(entries, dataLength, source);
  return { entries, metadata };
}

function parseJsonObject(headerBytes: Uint8Array, source: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw safeError(source, undefined, `expected the ${headerBytes.length}-byte header to be UTF-8 text, found invalid UTF-8`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw safeError(source, undefined, `expected the header to be JSON, found invalid JSON (${reason}): ${describe(text)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    const found = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : `a ${typeof parsed}`;
    throw safeError(source, undefined, `expected the header to be a JSON object, found ${found}`);
  }
  // JSON.parse keeps the last of two equal keys without a word; a header naming a tensor (or a
  // field) twice is ambiguous, so it is refused.
  const duplicate = firstDuplicateKey(text);
  if (duplicate) {
    throw duplicate.within === undefined
      ? safeError(source, duplicate.key, 'the name appears more than once in the header (expected unique tensor names)')
      : safeError(source, duplicate.within, `field ${JSON.stringify(duplicate.key)} appears more than once in its entry`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * The first key that occurs twice in one object of `text` (valid JSON), with the top-level key
 * it lies under (undefined for a top-level duplicate). Iterative: any nesting depth is fine.
 */
export function firstDuplicateKey(text: string): { key: string; within: string | undefined } | undefined {
  const objects: Array<Set<string> | null> = []; // null: an array
  let topKey: string | undefined;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const keys = objects[objects.length - 1]!;
        if (keys.has(key)) return { key, within: objects.length === 1 ? undefined : topKey };
        keys.add(key);
        if (objects.length === 1) topKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      objects.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      objects.push(null);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      objects.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = objects[objects.length - 1] !== null;
    }
  }
  return undefined;
}

function checkMetadata(value: unknown, source: string): Record<string, string> {
  if (value === null) return {}; // the reference writes/accepts an absent (null) metadata
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw safeError(source, undefined, `expected ${METADATA_KEY} to be an object of strings, found ${describe(value)}`);
  }
  const pairs = Object.entries(value as Record<string, unknown>);
  for (const [key, v] of pairs) {
    if (typeof v !== 'string') {
      throw safeError(source, undefined,
        `expected ${METADATA_KEY}[${JSON.stringify(key)}] to be a string, found ${describe(v)}`);
    }
  }
  // fromEntries defines own properties, so a "__proto__" key stays data, never a prototype.
  return Object.fromEntries(pairs) as Record<string, string>;
}

function checkEntry(name: string, value: unknown, dataLength: number, source: string): TensorEntry {
  const fail = (what: string): SafetensorsError => safeError(source, name, what);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail(`expected an object {dtype, shape, data_offsets}, found ${describe(value)}`);
  }
  const info = value as Record<string, unknown>;
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    if (!Object.hasOwn(info, field)) throw fail(`missing "${field}" (entry is ${describe(info)})`);
  }

  const dtype = info['dtype'];
  if (typeof dtype !== 'string') throw fail(`expected dtype to be a string, found ${describe(dtype)}`);
  if (!isSafeDType(dtype)) {
    throw fail(`unsupported dtype ${describe(dtype)} (expected one of ${SUPPORTED_DTYPES.join(', ')})`);
  }

  const count = checkedElementCount(info['shape']);
  if (typeof count === 'string') throw fail(count);
  const shape = (info['shape'] as number[]).slice();

  const offsets = info['data_offsets'];
  if (!Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)) {
    throw fail(`expected data_offsets to be [begin, end] of non-negative integers, found ${describe(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw fail(`expected data_offsets begin <= end, found [${begin}, ${end}]`);
  if (end > dataLength) {
    throw fail(`data_offsets [${begin}, ${end}] extend past the end of the ${dataLength}-byte data buffer ` +
      '(truncated file or corrupt offsets)');
  }
  const expected = count * DTYPE_SIZE[dtype];
  if (end - begin !== expected) {
    throw fail(`expected ${expected} bytes (shape ${describe(shape)} of ${dtype}, ${DTYPE_SIZE[dtype]} bytes each), ` +
      `found data_offsets [${begin}, ${end}] spanning ${end - begin} bytes`);
  }
  return { name, dtype, shape, begin, end };
}

/**
 * The tensors must tile the data buffer exactly, as the reference implementation requires: in
 * offset order each tensor begins where the previous one ended (an empty tensor included), the
 * first at 0, and the last ends at the end of the buffer. Anything else is refused: an overlap
 * (a write to one tensor would change another), a gap, or bytes past the last tensor — which is
 * what a header length that is off by one looks like (a cut in the header's padding shifts every
 * tensor by a byte; loading it would give garbage weights).
 */
function checkLayout(entries: TensorEntry[], dataLength: number, source: string): void {
  const placed = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: TensorEntry | undefined;
  for (const entry of placed) {
    if (entry.begin < covered) {
      throw safeError(source, entry.name, `expected data_offsets [${entry.begin}, ${entry.end}] not to overlap other ` +
        `tensors, found overlap with ${JSON.stringify(previous!.name)} at [${previous!.begin}, ${previous!.end}]`);
    }
    if (entry.begin > covered) {
      throw safeError(source, entry.name, `expected data_offsets to begin at ${covered} (${previous ? `where ${JSON.stringify(previous.name)} ends` : 'the start of the data buffer'}; ` +
        `tensors must tile the data buffer), found [${entry.begin}, ${entry.end}] leaving bytes [${covered}, ${entry.begin}) unused`);
    }
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataLength) {
    throw safeError(source, undefined, `expected the tensors to cover the ${dataLength}-byte data buffer exactly, found ` +
      `${dataLength - covered} byte(s) after the last tensor (the header length ${previous ? 'is wrong, or the file has trailing bytes' : 'is wrong'}; ` +
      'a header length cut short by one byte looks like this)');
  }
}

// ---------------------------------------------------------------------------------------------
// Writer side

/**
 * A tensor known by dtype and shape only (a streaming writer encodes the header before any tensor
 * data exists); `byteLength` must be what dtype and shape give.
 */
export interface HeaderOnlyTensor {
  dtype: SafeTensor['dtype'];
  shape: number[];
  byteLength: number;
}

export interface EncodedHeader {
  /** Length prefix + JSON + space padding; the data buffer starts right after it, 8-byte aligned. */
  prefix: Uint8Array;
  /** Tensors in data-buffer order. */
  ordered: Array<[string, SafeTensor]>;
}

/**
 * Validates tensors + metadata and encodes the header. Tensors are ordered by name (UTF-8 byte
 * order, like Rust's String ordering) and laid out back to back in that order; `__metadata__`
 * comes first and only when non-empty, as the reference writer does.
 */
export function encodeHeader(
  tensors: Map<string, SafeTensor | HeaderOnlyTensor> | Record<string, SafeTensor | HeaderOnlyTensor>,
  metadata: Record<string, string> | undefined,
  source: string,
): EncodedHeader {
  const pairs: Array<[string, SafeTensor]> = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)) as Array<[string, SafeTensor]>;
  const ordered = sortByUtf8(pairs);
  const parts: string[] = [];

  const metaPairs = sortByUtf8(checkMetadataArgument(metadata, source));
  if (metaPairs.length > 0) {
    const body = metaPairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',');
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${body}}`);
  }

  let offset = 0;
  for (const [name, tensor] of ordered) {
    const byteLength = checkTensorArgument(name, tensor, source);
    // Built by hand rather than JSON.stringify(object): an object would move integer-like
    // tensor names ("0", "1") ahead of the others and break the sorted order.
    parts.push(`${JSON.stringify(name)}:{"dtype":"${tensor.dtype}","shape":[${tensor.shape.join(',')}],` +
      `"data_offsets":[${offset},${offset + byteLength}]}`);
    offset += byteLength;
  }

  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  // Pad with spaces (valid JSON whitespace) so that 8 + N is a multiple of 8: the data buffer,
  // and hence every 8-byte-aligned tensor in it, is aligned when the file is mapped.
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) {
    throw safeError(source, undefined, `header would be ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte limit readers accept`);
  }
  const prefix = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded), true);
  prefix.set(json, 8);
  return { prefix, ordered };
}

function sortByUtf8<T>(pairs: Array<[string, T]>): Array<[string, T]> {
  const keyed = pairs.map((p) => ({ key: Buffer.from(p[0], 'utf8'), pair: p }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return keyed.map((k) => k.pair);
}

function checkMetadataArgument(metadata: unknown, source: string): Array<[string, string]> {
  if (metadata === undefined || metadata === null) return [];
  if (typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw safeError(source, undefined, `expected metadata to be an object of strings, found ${describe(metadata)}`);
  }
  const pairs = Object.entries(metadata as Record<string, unknown>);
  for (const [key, value] of pairs) {
    if (typeof value !== 'string') {
      throw safeError(source, undefined, `expected metadata[${JSON.stringify(key)}] to be a string, found ${describe(value)}`);
    }
  }
  return pairs as Array<[string, string]>;
}

/** Checks one tensor handed to the writer (callers may be untyped JS); returns its byte length. */
function checkTensorArgument(name: string, tensor: unknown, source: string): number {
  const fail = (what: string): SafetensorsError => safeError(source, name, what);
  if (name === METADATA_KEY) throw fail(`the name ${METADATA_KEY} is reserved for metadata`);
  if (typeof tensor !== 'object' || tensor === null) throw fail(`expected a {dtype, shape, data} object, found ${describe(tensor)}`);
  const { dtype, shape, data, byteLength } = tensor as Record<string, unknown>;
  if (!isSafeDType(dtype)) throw fail(`unsupported dtype ${describe(dtype)} (expected one of ${SUPPORTED_DTYPES.join(', ')})`);
  const count = checkedElementCount(shape);
  if (typeof count === 'string') throw fail(count);
  const headerOnly = data === undefined && typeof byteLength === 'number';
  if (!headerOnly && !(data instanceof Uint8Array)) throw fail(`expected data to be a Uint8Array, found ${describe(data)}`);
  const expected = count * DTYPE_SIZE[dtype];
  const found = headerOnly ? byteLength : (data as Uint8Array).length;
  if (found !== expected) {
    throw fail(`expected ${expected} bytes of data (shape ${describe(shape)} of ${dtype}), found ${found}`);
  }
  return expected;
}
