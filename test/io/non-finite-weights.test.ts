// Weights holding NaN or Inf are refused on load, naming the tensor (inspect shows them as notes),
// instead of every forward / sample / eval printing NaN with exit 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsError, fromFloat32, nonFiniteCount, parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from '../../src/io/index.js';
import { inspectHF, loadHF, saveHF } from '../../src/io/hf/index.js';
import { llama } from '../../src/nn/index.js';
import { ModelAdapter } from '../../src/framework/index.js';
import { loadModelWeights, serializeTensors } from '../../src/training/checkpoint-io.js';

test('nonFiniteCount counts NaN and ±Inf in every float dtype, never a finite value', () => {
  const values = new Float32Array([0, -0, 1.5, NaN, Infinity, -Infinity, 60000, 1e-7]);
  for (const dtype of ['F32', 'F16', 'BF16'] as const) assert.equal(nonFiniteCount(fromFloat32(values, [8], dtype)), 3, dtype);
  const f64 = new Float64Array([1, NaN, -Infinity, 1e308]);
  assert.equal(nonFiniteCount({ dtype: 'F64', shape: [4], data: new Uint8Array(f64.buffer) }), 2);
  assert.equal(nonFiniteCount({ dtype: 'I32', shape: [1], data: new Uint8Array(new Int32Array([0x7fc00000]).buffer) }), 0);
});

test('a Hugging Face folder with a NaN weight is refused naming the tensor; inspect notes it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-nonfinite-'));
  try {
    const model = llama({ vocabSize: 32, dModel: 16, nHeads: 2, nKvHeads: 1, dFF: 32, nLayers: 1, maxPositions: 16, seed: 1 });
    saveHF(model, dir);
    model.dispose();
    const file = readSafetensors(join(dir, 'model.safetensors'));
    const name = [...file.tensors.keys()].find((k) => k.includes('input_layernorm'))!;
    const t = file.tensors.get(name)!;
    const values = new Float32Array(t.data.buffer.slice(0));
    values[1] = NaN;
    values[2] = Infinity;
    file.tensors.set(name, fromFloat32(values, t.shape));
    writeSafetensors(join(dir, 'model.safetensors'), file.tensors, file.metadata);
    assert.throws(() => loadHF(dir), (e: unknown) => e instanceof SafetensorsError &&
      e.message.includes(`tensor "${name}": 2 of ${values.length} values are NaN or Inf`) && /would only compute NaN/.test(e.message));
    const { loaded } = inspectHF(dir, { allowNonFinite: true });
    assert.ok(loaded.notes.some((n) => n.includes(name) && n.includes('2 of')), loaded.notes.join('\n'));
    loaded.model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run checkpoint whose weights hold Inf is refused on load, naming the tensor', () => {
  const model = new ModelAdapter(llama({ vocabSize: 32, dModel: 16, nHeads: 2, nKvHeads: 1, dFF: 32, nLayers: 1, maxPositions: 16, seed: 1 }));
  const bytes = serializeTensors(model.namedParameters());
  const file = parseSafetensors(bytes, 'mem').tensors;
  const [name, t] = [...file][0]!;
  const values = new Float32Array(t.data.buffer.slice(0));
  values[0] = -Infinity;
  file.set(name, fromFloat32(values, t.shape));
  assert.throws(() => loadModelWeights(model, serializeSafetensors(file), 'ck/model.safetensors'),
    (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`ck/model.safetensors: tensor "${name}": 1 of`));
  model.model.dispose();
});

