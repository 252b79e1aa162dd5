// Plain-data types shared by the safetensors reader, writer and converters.
// Nothing here depends on a tensor engine: a tensor is a dtype, a shape and its raw bytes.

/** The safetensors dtypes this project reads and writes. */
export type SafeDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface SafeTensor {
  dtype: SafeDType;
  /** Row-major dimensions; [] is a scalar (one element). */
  shape: number[];
  /** Raw little-endian bytes, exactly the tensor's bytes (product(shape) * itemsize). */
  data: Uint8Array;
}

export interface SafeFile {
  /** Tensors by name, in the order the header lists them. */
  tensors: Map<string, SafeTensor>;
  /** The header's `__metadata__` (string → string); empty when absent. */
  metadata: Record<string, string>;
}

/** Bytes per element for each supported dtype. */
export const DTYPE_SIZE: Readonly<Record<SafeDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export function isSafeDType(value: unknown): value is SafeDType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, value);
}

export const SUPPORTED_DTYPES: readonly SafeDType[] = Object.keys(DTYPE_SIZE) as SafeDType[];

/** Every refusal of a file, tensor or argument by this module is one of these. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/**
 * Builds an error whose message says where (file, tensor) and what (expected vs found),
 * so that a user facing a broken checkpoint knows which file and entry to look at.
 */
export function safeError(source: string, tensor: string | undefined, what: string): SafetensorsError {
  // Names come from the file, so a hostile one could be megabytes long: shorten it.
  const name = tensor !== undefined && tensor.length > 200 ? `${tensor.slice(0, 197)}...` : tensor;
  const where = name === undefined ? source : `${source}: tensor ${JSON.stringify(name)}`;
  return new SafetensorsError(`${where}: ${what}`);
}

/**
 * Short, JSON-like rendering of a value found in a header, for error messages. Hand-written and
 * depth-limited (not JSON.stringify) because a hostile header can nest arrays a million deep,
 * which would overflow the stack of any recursive printer.
 */
export function describe(value: unknown): string {
  const text = render(value, 0);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function render(value: unknown, depth: number): string {
  if (value === undefined) return 'undefined';
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  // Typed arrays say what they are; their contents are noise here.
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of ${value.byteLength} bytes`;
  if (Array.isArray(value)) {
    if (depth >= 3) return '[...]';
    const items = value.slice(0, 8).map((v: unknown) => render(v, depth + 1));
    return `[${items.join(',')}${value.length > 8 ? ',...' : ''}]`;
  }
  if (typeof value === 'object') {
    if (depth >= 3) return '{...}';
    const keys = Object.keys(value);
    const items = keys.slice(0, 4).map((k) => `${JSON.stringify(k)}:${render((value as Record<string, unknown>)[k], depth + 1)}`);
    return `{${items.join(',')}${keys.length > 4 ? ',...' : ''}}`;
  }
  return typeof value;
}

/**
 * Number of elements of `shape`, or a description of what is wrong with it.
 * Dims must be non-negative safe integers and the product must stay exact (≤ 2^53),
 * otherwise a hostile header could make us compute a wrong byte length.
 */
export function checkedElementCount(shape: unknown): number | string {
  if (!Array.isArray(shape)) return `expected shape to be an array of integers, found ${describe(shape)}`;
  let count = 1;
  for (let i = 0; i < shape.length; i++) {
    const dim: unknown = shape[i];
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      return `expected shape[${i}] to be a non-negative integer, found ${describe(dim)} in shape ${describe(shape)}`;
    }
    count *= dim;
    if (!Number.isSafeInteger(count)) return `shape ${describe(shape)} has more than 2^53 elements`;
  }
  return count;
}
