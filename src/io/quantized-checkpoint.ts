/**
 * Saving and loading a (partly) quantized module tree exactly, as safetensors.
 *
 * Every distinct parameter is stored under its dotted name (as in `Module.stateDict()`); the
 * pieces of each QuantizedLinear are stored as their exact bytes:
 *   <path>.weight_packed   U8  [packed bytes]     NF4 codes two per byte / int8 / fp16 / bf16 bits
 *   <path>.weight_scales   F32 [blocks | out]     nf4 absmax per 64 elements, or int8 row scales
 *   <path>.weight_qscales  U8  [blocks]           nf4 + double quantization: 8-bit scale codes
 *   <path>.weight_scales2  F32 [ceil(blocks/256)] nf4 + double quantization: absmax per 256 scales
 *   <path>.weight_offset   F32 [1]                nf4 + double quantization: mean of the scales
 * Other tensors keep their dtype (F32, F64, I32). Metadata:
 *   "stackwise.quantized": JSON {version, layers: {<path>: {format, shape, double_quant,
 *       block_size, dq_block_size?, dq_code?, bias}}}
 *   "stackwise.sha256":    JSON {<tensor name>: hex sha256 of its bytes}
 * Loading validates everything (metadata, formats, block sizes, names, dtypes, shapes, checksums,
 * scale values, code ranges) before touching the module, replaces Linear layers named in the
 * metadata by QuantizedLinear layers (adapters and bias carried over), and copies every value in
 * bit for bit. A file that fails any check is refused with an error naming the file, the tensor
 * and what was expected; the module is then left unchanged.
 */
import { createHash } from 'node:crypto';
import * as E from '../engine/index.js';
import type { Backend, QuantFormat, QuantParts, Tensor } from '../engine/index.js';
import { DQ_BLOCK_SIZE, NF4_BLOCK_SIZE, QuantizedWeight, quantPartSizes, validateQuantFormat, wordsFor } from '../engine/index.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { QUANT_PARAM_NAMES, QuantizedLinear, replaceModule } from '../nn/quantized-linear.js';
import { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from './safetensors.js';
import type { SafeDType, SafeFile, SafeTensor } from './safetensors-types.js';

export const QUANT_META_KEY = 'stackwise.quantized';
export const CHECKSUM_META_KEY = 'stackwise.sha256';
export const QUANT_CHECKPOINT_VERSION = 1;
/** Name of the 8-bit map the double-quantized scales index (see dynamicQuantCode()). */
export const DQ_CODE_NAME = 'bnb-dynamic-signed-8bit';

export class QuantizedCheckpointError extends Error {
  override name = 'QuantizedCheckpointError';
}

export interface QuantizedLayerMeta {
  format: QuantFormat;
  /** [out, in]. */
  shape: [number, number];
  double_quant: boolean;
  /** nf4: 64 elements per absmax; int8: one row (in); fp16/bf16: 1. */
  block_size: number;
  dq_block_size?: number;
  dq_code?: string;
  bias: boolean;
}

export interface QuantizedCheckpointMeta {
  version: number;
  layers: Record<string, QuantizedLayerMeta>;
}

const PART_DTYPE: Record<keyof QuantParts, SafeDType> = { data: 'U8', scales: 'F32', qscales: 'U8', scales2: 'F32', offset: 'F32' };

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function bytesOfArray(a: Int32Array | Float32Array | Float64Array, length = a.byteLength): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, length).slice();
}

function layerMeta(q: QuantizedLinear): QuantizedLayerMeta {
  const m: QuantizedLayerMeta = {
    format: q.format,
    shape: [q.outFeatures, q.inFeatures],
    double_quant: q.doubleQuant,
    block_size: q.format === 'nf4' ? NF4_BLOCK_SIZE : q.format === 'int8' ? q.inFeatures : 1,
    bias: q.bias !== null,
  };
  if (q.doubleQuant) { m.dq_block_size = DQ_BLOCK_SIZE; m.dq_code = DQ_CODE_NAME; }
  return m;
}

/** The tensors and metadata of a quantized checkpoint of `module` (nothing written). */
export function quantizedCheckpointTensors(module: Module, extraMetadata: Record<string, string> = {}): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const layers: Record<string, QuantizedLayerMeta> = {};
  const partNames = new Map<Tensor, [string, keyof QuantParts, QuantizedLinear]>();
  for (const [path, m] of module.namedModules()) {
    if (!(m instanceof QuantizedLinear)) continue;
    if (path === '') throw new QuantizedCheckpointError('quantized checkpoint: the root module itself is a QuantizedLinear; wrap it in a module');
    layers[path] = layerMeta(m);
    for (const [k, t] of Object.entries(m.qweight.parts) as [keyof QuantParts, Tensor][]) partNames.set(t, [path, k, m]);
  }
  const tensors = new Map<string, SafeTensor>();
  for (const [name, t] of module.namedParameters()) {
    const part = partNames.get(t);
    if (part) {
      const [, k, q] = part;
      const sz = quantPartSizes(q.qweight);
      const values = t.toArray();
      let data: Uint8Array;
      let shape: number[];
      if (k === 'data') { data = bytesOfArray(values, sz.packedBytes); shape = [sz.packedBytes]; }
      else if (k === 'qscales') { data = bytesOfArray(values, sz.nBlocks); shape = [sz.nBlocks]; }
      else { data = bytesOfArray(t.dtype === 'float32' ? values : Float32Array.from(values)); shape = [t.size]; }
      tensors.set(name, { dtype: PART_DTYPE[k], shape, data });
    } else {
      const dtype: SafeDType = t.dtype === 'float32' ? 'F32' : t.dtype === 'float64' ? 'F64' : 'I32';
      tensors.set(name, { dtype, shape: [...t.shape], data: bytesOfArray(t.toArray()) });
    }
  }
  // Sorted keys: the same module state always gives the same bytes, whatever the registration order.
  const sums: Record<string, string> = {};
  for (const name of [...tensors.keys()].sort()) sums[name] = sha256(tensors.get(name)!.data);
  for (const k of Object.keys(extraMetadata)) {
    if (k === QUANT_META_KEY || k === CHECKSUM_META_KEY) throw new QuantizedCheckpointError(`quantized checkpoint: metadata key '${k}' is reserved`);
  }
  const sorted: Record<string, QuantizedLayerMeta> = {};
  for (const path of Object.keys(layers).sort()) sorted[path] = layers[path];
  const meta: QuantizedCheckpointMeta = { version: QUANT_CHECKPOINT_VERSION, layers: sorted };
  return { tensors, metadata: { ...extraMetadata, [QUANT_META_KEY]: JSON.stringify(meta), [CHECKSUM_META_KEY]: JSON.stringify(sums) } };
}

/** The checkpoint as safetensors bytes. */
export function serializeQuantizedCheckpoint(module: Module, extraMetadata?: Record<string, string>): Uint8Array {
  const { tensors, metadata } = quantizedCheckpointTensors(module, extraMetadata);
  return serializeSafetensors(tensors, metadata);
}

/** Writes the checkpoint atomically (see writeSafetensors). */
export function saveQuantizedCheckpoint(path: string, module: Module, extraMetadata?: Record<string, string>): void {
  const { tensors, metadata } = quantizedCheckpointTensors(module, extraMetadata);
  writeSafetensors(path, tensors, metadata);
}

// ---- loading ------------------------------------------------------------------------------------

export interface LoadQuantizedOptions {
  /** Name used in error messages when loading from bytes. */
  source?: string;
}

export interface LoadQuantizedResult {
  /** Layers now quantized as the file says. */
  quantized: string[];
  /** Tensors copied in (quantized pieces included). */
  tensors: number;
  /** The file's metadata (including the keys of this format). */
  metadata: Record<string, string>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and validates the quantization metadata of a file. */
export function readQuantizedMeta(file: SafeFile, source = '<buffer>'): QuantizedCheckpointMeta {
  const fail = (what: string) => new QuantizedCheckpointError(`${source}: ${what}`);
  const raw = file.metadata[QUANT_META_KEY];
  if (raw === undefined) throw fail(`no '${QUANT_META_KEY}' metadata: not a StackWise quantized checkpoint`);
  let parsed: unknown;
  try { parsed = JSON.parse(raw); } catch (e) { throw fail(`metadata '${QUANT_META_KEY}' is not valid JSON (${(e as Error).message})`); }
  if (!isObject(parsed)) throw fail(`metadata '${QUANT_META_KEY}' must be a JSON object`);
  if (parsed.version !== QUANT_CHECKPOINT_VERSION) throw fail(`unsupported quantized checkpoint version ${JSON.stringify(parsed.version)} (this build reads version ${QUANT_CHECKPOINT_VERSION})`);
  if (!isObject(parsed.layers)) throw fail(`metadata '${QUANT_META_KEY}'.layers must be an object`);
  const layers: Record<string, QuantizedLayerMeta> = {};
  for (const [path, v] of Object.entries(parsed.layers)) {
    const at = `${QUANT_META_KEY}.layers['${path}']`;
    if (!isObject(v)) throw fail(`${at} must be an object`);
    if (path === '' || path.split('.').some((p) => p === '')) throw fail(`${at}: bad module path`);
    let format: QuantFormat;
    try { format = validateQuantFormat(v.format, `${at}.format`); } catch (e) { throw fail((e as Error).message); }
    const shape = v.shape;
    if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 1)) {
      throw fail(`${at}.shape must be [out, in] with positive integers, found ${JSON.stringify(shape)}`);
    }
    const [rows, cols] = shape as [number, number];
    if (!Number.isSafeInteger(rows * cols)) throw fail(`${at}.shape ${JSON.stringify(shape)} is too large`);
    if (typeof v.double_quant !== 'boolean') throw fail(`${at}.double_quant must be a boolean`);
    if (v.double_quant && format !== 'nf4') throw fail(`${at}: double quantization applies to nf4 only, not ${format}`);
    if (typeof v.bias !== 'boolean') throw fail(`${at}.bias must be a boolean`);
    const block = format === 'nf4' ? NF4_BLOCK_SIZE : format === 'int8' ? cols : 1;
    if (v.block_size !== block) throw fail(`${at}.block_size is ${JSON.stringify(v.block_size)}; ${format} is stored with block size ${block} (other block sizes are not supported)`);
    const m: QuantizedLayerMeta = { format, shape: [rows, cols], double_quant: v.double_quant, block_size: block, bias: v.bias };
    if (v.double_quant) {
      if (v.dq_block_size !== DQ_BLOCK_SIZE) throw fail(`${at}.dq_block_size is ${JSON.stringify(v.dq_block_size)}, expected ${DQ_BLOCK_SIZE}`);
      if (v.dq_code !== DQ_CODE_NAME) throw fail(`${at}.dq_code is ${JSON.stringify(v.dq_code)}, expected '${DQ_CODE_NAME}'`);
      m.dq_block_size = DQ_BLOCK_SIZE;
      m.dq_code = DQ_CODE_NAME;
    }
    layers[path] = m;
  }
  return { version: QUANT_CHECKPOINT_VERSION, layers };
}

function partKeys(m: QuantizedLayerMeta): (keyof QuantParts)[] {
  if (m.format === 'nf4') return m.double_quant ? ['data', 'qscales', 'scales2', 'offset'] : ['data', 'scales'];
  return m.format === 'int8' ? ['data', 'scales'] : ['data'];
}

function f32View(t: SafeTensor): Float32Array {
  // parse/readSafetensors give every tensor its own buffer at offset 0 (aligned).
  const b = t.data.byteOffset % 4 === 0 ? t.data : t.data.slice();
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** Value checks of the stored pieces of one layer (the structure is already checked). */
function checkPartValues(m: QuantizedLayerMeta, parts: Map<keyof QuantParts, SafeTensor>, name: (k: keyof QuantParts) => string, fail: (tensor: string, what: string) => Error): void {
  const n = m.shape[0] * m.shape[1];
  const data = parts.get('data')!.data;
  const nonNegFinite = (k: keyof QuantParts, what: string) => {
    const v = f32View(parts.get(k)!);
    for (let i = 0; i < v.length; i++) {
      if (!(Number.isFinite(v[i]) && v[i] >= 0)) throw fail(name(k), `${what} ${i} is ${v[i]}, expected a finite value >= 0`);
    }
  };
  switch (m.format) {
    case 'nf4':
      if (n % 2 === 1 && (data[data.length - 1] & 15) !== 0) throw fail(name('data'), 'the unused low nibble of the last byte is not 0');
      if (m.double_quant) {
        nonNegFinite('scales2', 'second-level absmax');
        const off = f32View(parts.get('offset')!)[0];
        if (!Number.isFinite(off)) throw fail(name('offset'), `offset is ${off}, expected a finite value`);
      } else {
        nonNegFinite('scales', 'absmax');
      }
      break;
    case 'int8':
      nonNegFinite('scales', 'row scale');
      for (let i = 0; i < n; i++) if (data[i] === 0x80) throw fail(name('data'), `code ${i} is -128; int8 codes are in [-127, 127]`);
      break;
    case 'fp16':
      for (let i = 0; i < n; i++) if ((data[2 * i + 1] & 0x7c) === 0x7c) throw fail(name('data'), `element ${i} is an fp16 infinity or NaN`);
      break;
    case 'bf16':
      for (let i = 0; i < n; i++) if ((data[2 * i + 1] & 0x7f) === 0x7f && (data[2 * i] & 0x80) === 0x80) throw fail(name('data'), `element ${i} is a bf16 infinity or NaN`);
      break;
  }
}

function partsFromFile(m: QuantizedLayerMeta, parts: Map<keyof QuantParts, SafeTensor>, backend: Backend): QuantizedWeight {
  const out = {} as QuantParts;
  for (const [k, st] of parts) {
    let t: Tensor;
    if (PART_DTYPE[k] === 'U8') {
      const words = new Int32Array(wordsFor(st.data.length));
      new Uint8Array(words.buffer).set(st.data);
      t = E.tensor(words, [words.length], { backend, dtype: 'int32' });
    } else {
      t = E.tensor(f32View(st).slice(), [st.shape[0]], { backend, dtype: 'float32' });
    }
    out[k] = E.keep(t);
  }
  return new QuantizedWeight({ format: m.format, shape: m.shape, doubleQuant: m.double_quant }, out);
}

const DTYPE_OF: Record<string, SafeDType> = { float32: 'F32', float64: 'F64', int32: 'I32' };

/**
 * Loads a quantized checkpoint into `module` (built with the same architecture; it may be fp32 or
 * already quantized). Linear layers the file quantizes become QuantizedLinear layers; every value
 * is copied bit for bit. Throws QuantizedCheckpointError (or SafetensorsError for a broken file)
 * without changing the module when anything does not match.
 */
export function loadQuantizedCheckpoint(from: string | Uint8Array | SafeFile, module: Module, opts: LoadQuantizedOptions = {}): LoadQuantizedResult {
  const source = typeof from === 'string' ? from : opts.source ?? '<buffer>';
  const file: SafeFile = typeof from === 'string' ? readSafetensors(from) : from instanceof Uint8Array ? parseSafetensors(from, source) : from;
  const fail = (tensor: string | undefined, what: string) => new QuantizedCheckpointError(tensor === undefined ? `${source}: ${what}` : `${source}: tensor '${tensor}': ${what}`);
  const meta = readQuantizedMeta(file, source);

  // Checksums: one per tensor, each matching.
  let sums: Record<string, unknown>;
  try { sums = JSON.parse(file.metadata[CHECKSUM_META_KEY] ?? 'null') as Record<string, unknown>; } catch { throw fail(undefined, `metadata '${CHECKSUM_META_KEY}' is not valid JSON`); }
  if (!isObject(sums)) throw fail(undefined, `metadata '${CHECKSUM_META_KEY}' is missing or not an object`);
  for (const [name, t] of file.tensors) {
    const want = sums[name];
    if (typeof want !== 'string') throw fail(name, `no checksum in '${CHECKSUM_META_KEY}'`);
    const got = sha256(t.data);
    if (got !== want) throw fail(name, `sha256 ${got.slice(0, 16)}… does not match the recorded ${want.slice(0, 16)}… (the data is corrupt)`);
  }
  for (const name of Object.keys(sums)) if (!file.tensors.has(name)) throw fail(name, `listed in '${CHECKSUM_META_KEY}' but absent from the file`);

  // Quantized layers: targets, stored pieces.
  const layerParts = new Map<string, Map<keyof QuantParts, SafeTensor>>();
  const claimed = new Set<string>();
  for (const [path, m] of Object.entries(meta.layers)) {
    let target: Module;
    try { target = module.getModule(path); } catch { throw fail(undefined, `layer '${path}' of the checkpoint does not exist in this ${module.typeName}`); }
    if (!(target instanceof Linear) && !(target instanceof QuantizedLinear)) throw fail(undefined, `layer '${path}' is a ${target.typeName} here, expected a Linear or QuantizedLinear`);
    if (target.outFeatures !== m.shape[0] || target.inFeatures !== m.shape[1]) {
      throw fail(undefined, `layer '${path}' is [${target.outFeatures}, ${target.inFeatures}] here but [${m.shape.join(', ')}] in the checkpoint`);
    }
    if ((target.bias !== null) !== m.bias) throw fail(undefined, `layer '${path}' ${m.bias ? 'has' : 'has no'} bias in the checkpoint but ${target.bias ? 'has one' : 'none'} here`);
    if (target instanceof Linear && target.isMerged) throw fail(undefined, `layer '${path}' has a merged LoRA adapter here; unmerge it first`);
    const sz = quantPartSizes({ format: m.format, shape: m.shape, doubleQuant: m.double_quant });
    const expected: Record<keyof QuantParts, number> = { data: sz.packedBytes, scales: sz.nBlocks, qscales: sz.nBlocks, scales2: sz.nBlocks2, offset: 1 };
    const parts = new Map<keyof QuantParts, SafeTensor>();
    for (const k of partKeys(m)) {
      const name = `${path}.${QUANT_PARAM_NAMES[k]}`;
      const t = file.tensors.get(name);
      if (!t) throw fail(name, `missing (layer '${path}' is ${m.format}${m.double_quant ? ' with double quantization' : ''})`);
      if (t.dtype !== PART_DTYPE[k] || t.shape.length !== 1 || t.shape[0] !== expected[k]) {
        throw fail(name, `expected ${PART_DTYPE[k]}[${expected[k]}] for ${m.format} [${m.shape.join(', ')}], found ${t.dtype}[${t.shape.join(', ')}]`);
      }
      parts.set(k, t);
      claimed.add(name);
    }
    checkPartValues(m, parts, (k) => `${path}.${QUANT_PARAM_NAMES[k]}`, fail);
    layerParts.set(path, parts);
  }

  // Every other parameter of the module, as it will be named once the layers are replaced.
  const quantPaths = new Set(Object.keys(meta.layers));
  const ownerPath = (name: string) => name.slice(0, name.lastIndexOf('.'));
  const isQuantPiece = (name: string) => {
    const leaf = name.slice(name.lastIndexOf('.') + 1);
    return quantPaths.has(ownerPath(name)) && (leaf === 'weight' || Object.values(QUANT_PARAM_NAMES).includes(leaf));
  };
  const plain: [string, Tensor][] = module.namedParameters().filter(([name]) => !isQuantPiece(name));
  const problems: string[] = [];
  for (const [name, t] of plain) {
    const st = file.tensors.get(name);
    if (!st) { problems.push(`'${name}': missing from the checkpoint (expected ${DTYPE_OF[t.dtype]}[${t.shape.join(', ')}])`); continue; }
    claimed.add(name);
    if (st.dtype !== DTYPE_OF[t.dtype] || st.shape.length !== t.shape.length || st.shape.some((d, i) => d !== t.shape[i])) {
      problems.push(`'${name}': expected ${DTYPE_OF[t.dtype]}[${t.shape.join(', ')}], found ${st.dtype}[${st.shape.join(', ')}]`);
    }
  }
  for (const name of file.tensors.keys()) if (!claimed.has(name)) problems.push(`'${name}': unexpected (no such parameter in this ${module.typeName})`);
  if (problems.length) {
    throw fail(undefined, problems.length === 1 ? problems[0] : `${problems.length} problems:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }

  // Everything checked: build the quantized weights, then change the module.
  const backend = module.backend;
  const built = new Map<string, QuantizedWeight>();
  try {
    for (const [path, parts] of layerParts) built.set(path, partsFromFile(meta.layers[path], parts, backend));
  } catch (e) {
    for (const q of built.values()) q.dispose();
    throw e;
  }
  for (const [path, qw] of built) {
    const target = module.getModule(path);
    if (target instanceof QuantizedLinear) {
      target.setQuantizedWeight(qw);
    } else {
      const lin = target as Linear;
      replaceModule(module, path, QuantizedLinear.adopt(lin, qw));
      const w = lin.weight;
      if (w.grad) { w.grad.dispose(); w.grad = null; }
      w.dispose();
    }
  }
  for (const [name, t] of plain) {
    const st = file.tensors.get(name)!;
    const b = st.data.byteOffset % 8 === 0 ? st.data : st.data.slice();
    const values = t.dtype === 'float32' ? new Float32Array(b.buffer, b.byteOffset, t.size)
      : t.dtype === 'float64' ? new Float64Array(b.buffer, b.byteOffset, t.size) : new Int32Array(b.buffer, b.byteOffset, t.size);
    t.write(values);
  }
  module.namedParameters();
  return { quantized: [...built.keys()], tensors: file.tensors.size, metadata: file.metadata };
}
