// Tensors ↔ safetensors for training checkpoints: model weights by parameter name, optimizer
// state by `${parameter}.${slot}`. Values round-trip bit for bit (float32 stays F32, float64 F64).

import * as E from '../engine/index.js';
import type { Backend, Tensor } from '../engine/index.js';
import { assertFiniteTensors, parseSafetensors, serializeSafetensors, toFloat32, toFloat64, toInt32, type SafeTensor } from '../io/safetensors.js';
import { CheckpointError, type StreamedFile } from '../io/checkpoint.js';
import { encodeHeader, type HeaderOnlyTensor } from '../io/safetensors-header.js';
import type { ModelAdapter, OptimizerAdapter } from '../framework/index.js';
import type { NamedOptimizerState } from '../optim/index.js';
import { StateDictError, type StateSource } from '../nn/index.js';

/** The safetensors dtype an engine dtype is written as. */
const SAFE_DTYPE = { float32: 'F32', float64: 'F64', int32: 'I32' } as const;

export function tensorToSafe(t: Tensor): SafeTensor {
  const values = t.toArray();
  const shape = [...t.shape];
  const bytes = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  return { dtype: SAFE_DTYPE[t.dtype], shape, data: bytes };
}

/** A new tensor (outside any scope) from a safetensors entry. */
export function safeToTensor(s: SafeTensor, backend?: Backend): Tensor {
  const src = safeSource(s);
  return E.keep(E.tensor(src.toArray(), s.shape, { ...(backend ? { backend } : {}), dtype: src.dtype }));
}

/**
 * A safetensors entry as a loadStateDict source: its shape and engine dtype (as safeToTensor
 * gives them), its values decoded from the file's bytes only when they are copied. Loading
 * weights this way keeps one tensor's values alive at a time, not a second copy of the model.
 */
export function safeSource(s: SafeTensor): StateSource {
  const dtype = s.dtype === 'F64' ? 'float64' : s.dtype === 'I32' || s.dtype === 'I64' ? 'int32' : 'float32';
  return {
    shape: s.shape,
    dtype,
    toArray: () => (dtype === 'float64' ? toFloat64(s) : dtype === 'int32' ? toInt32(s) : toFloat32(s)),
  };
}

export function serializeTensors(tensors: Iterable<[string, Tensor]>, metadata?: Record<string, string>): Uint8Array {
  const map = new Map<string, SafeTensor>();
  for (const [name, t] of tensors) map.set(name, tensorToSafe(t));
  return serializeSafetensors(map, metadata);
}

/**
 * The same safetensors file as serializeTensors, written tensor by tensor: the header from
 * dtypes and shapes, then each tensor's values read from the engine as it is written. A
 * checkpoint of a large model never holds a second copy of its weights (a 1.1B model's 558 MB
 * file had pushed the peak of every phase-end checkpoint up by that much).
 */
export function streamTensors(tensors: Iterable<[string, Tensor]>, metadata?: Record<string, string>): StreamedFile {
  const byName = new Map(tensors);
  const specs = new Map<string, HeaderOnlyTensor>();
  for (const [name, t] of byName) specs.set(name, { dtype: SAFE_DTYPE[t.dtype], shape: [...t.shape], byteLength: t.size * E.BYTES_PER_ELEMENT[t.dtype] });
  return {
    stream(write) {
      const { prefix, ordered } = encodeHeader(specs, metadata, 'checkpoint');
      write(prefix);
      for (const [name] of ordered) {
        const values = byName.get(name)!.toArray();
        write(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      }
    },
  };
}

function disposeAll(tensors: Map<string, Tensor>): void {
  for (const t of tensors.values()) t.dispose();
}

/** Copies saved weights into the live model (strict: every parameter, nothing else). */
export function loadModelWeights(model: ModelAdapter, bytes: Uint8Array, source: string): void {
  const file = parseSafetensors(bytes, source);
  // A checkpoint is never written with NaN/Inf weights (saveCheckpoint refuses): such a file is damaged.
  assertFiniteTensors(file.tensors, source);
  const sources = new Map<string, StateSource>();
  for (const [name, s] of file.tensors) sources.set(name, safeSource(s));
  try {
    model.model.loadStateDict(sources);
  } catch (error) {
    if (error instanceof StateDictError) {
      throw new CheckpointError('incompatible', source, `checkpoint weights do not fit the model as rebuilt from the config and hooks: ${error.message}`);
    }
    throw error;
  }
}

/** Optimizer state tensors as a safetensors file (streamed when written), plus the per-parameter numbers (for JSON). */
export function serializeOptimizer(optimizer: OptimizerAdapter, nameOf: (p: Tensor) => string): { file: StreamedFile; kind: string; step: number; scalars: NamedOptimizerState['scalars'] } {
  const state = optimizer.optimizer.namedState(nameOf);
  return { file: streamTensors(state.tensors), kind: state.kind, step: state.step, scalars: state.scalars };
}

export function loadOptimizerState(
  optimizer: OptimizerAdapter,
  bytes: Uint8Array,
  saved: { kind: string; step: number; scalars: NamedOptimizerState['scalars'] },
  nameOf: (p: Tensor) => string,
  source: string,
): void {
  const file = parseSafetensors(bytes, source);
  const backend = optimizer.optimizer.params()[0]?.backend;
  const tensors = new Map<string, Tensor>();
  try {
    for (const [name, s] of file.tensors) tensors.set(name, safeToTensor(s, backend));
    optimizer.optimizer.loadNamedState({ kind: saved.kind, step: saved.step, tensors, scalars: saved.scalars }, nameOf);
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError('incompatible', source, `checkpoint optimizer state does not fit the optimizer: ${(error as Error).message}`);
  } finally {
    disposeAll(tensors);
  }
}
