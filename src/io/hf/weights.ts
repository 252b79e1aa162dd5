/** HF weight tensors ↔ host floats, config.json reading, atomic text files (shards.ts reads and writes the weight files). */
import { existsSync, readFileSync, renameSync, writeFileSync, unlinkSync } from 'node:fs';
import { join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { fromFloat32, toFloat32, toFloat64, type SafeTensor } from '../safetensors.js';
import type { HostTensor } from './mapping.js';

export class HFFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HFFormatError';
  }
}

export function readJson(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new HFFormatError(`${path}: file not found`);
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new HFFormatError(`${path}: invalid JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new HFFormatError(`${path}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/** Writes text atomically (temp file in the same folder, then rename). */
export function writeTextAtomic(path: string, text: string): void {
  const temp = join(path, '..', `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, text, { flag: 'wx' });
    renameSync(temp, path);
  } catch (e) {
    try { unlinkSync(temp); } catch { /* already gone */ }
    throw e;
  }
}

/** A safetensors tensor as host floats (F16/BF16/F64/F32 all accepted). */
export function hostOf(t: SafeTensor, name: string, dtype: 'float32' | 'float64' = 'float32'): HostTensor {
  if (!['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) throw new HFFormatError(`'${name}': expected a floating tensor, found ${t.dtype}`);
  return { shape: [...t.shape], data: dtype === 'float64' ? toFloat64(t) : toFloat32(t) };
}

export function hostOfTensor(t: Tensor): HostTensor {
  const a = t.toArray();
  return { shape: [...t.shape], data: a instanceof Float64Array ? a : a instanceof Float32Array ? a : Float32Array.from(a) };
}

export function tensorOfHost(h: HostTensor, opts: { backend?: E.Backend | string; dtype?: 'float32' | 'float64' } = {}): Tensor {
  const dtype = opts.dtype ?? 'float32';
  const data = dtype === 'float64' ? (h.data instanceof Float64Array ? h.data : Float64Array.from(h.data)) : (h.data instanceof Float32Array ? h.data : Float32Array.from(h.data));
  return E.tensor(data, h.shape, { backend: opts.backend, dtype });
}

/** Host floats as a safetensors tensor in F32 (default), F16 or BF16. */
export function safeOfHost(h: HostTensor, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): SafeTensor {
  return fromFloat32(h.data instanceof Float32Array ? h.data : Float32Array.from(h.data), h.shape, dtype);
}
