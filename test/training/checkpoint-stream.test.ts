// Checkpoint files are written tensor by tensor (streamTensors); the bytes must be exactly the
// safetensors file serializeTensors builds in memory, for every dtype.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { serializeTensors, streamTensors } from '../../src/training/checkpoint-io.js';

test('streamTensors writes the same bytes as serializeTensors (float32, float64, int32; names out of order)', () => {
  const tensors: [string, E.Tensor][] = [
    ['z.weight', E.keep(E.randn([3, 5], { seed: 1 }))],
    ['a.bias', E.keep(E.tensor(Float64Array.from([1.5, -2.25, 3]), [3], { dtype: 'float64', backend: 'reference' }))],
    ['m.codes', E.keep(E.tensor(Int32Array.from([7, -1, 0, 2 ** 30]), [2, 2], { dtype: 'int32' }))],
    ['10', E.keep(E.zeros([0]))],
  ];
  const whole = serializeTensors(tensors, { format: 'stackwise' });
  const chunks: Uint8Array[] = [];
  streamTensors(tensors, { format: 'stackwise' }).stream((c) => chunks.push(Uint8Array.from(c)));
  assert.ok(chunks.length > 1, 'written in pieces');
  assert.deepEqual(Buffer.concat(chunks), Buffer.from(whole));
  for (const [, t] of tensors) t.dispose();
});
