// buildModelWithFrozenStacks: frozen stacks are created directly in their storage format one at
// a time (the build's peak is the stored model plus one float32 stack), with the weights
// Model.fromConfig draws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { buildModelWithFrozenStacks, llamaConfig, Model, QuantizedLinear, quantizeTrunk } from '../../src/nn/index.js';

const config = () => llamaConfig({ vocabSize: 96, dModel: 128, nLayers: 6, nHeads: 4, nKvHeads: 2, dFF: 352, stacks: 6, maxPositions: 16 });

test('peak engine memory of the build: the stored model plus one float32 stack, not the float32 model', () => {
  const before = E.memoryInfo();
  const built: number[] = [];
  const model = buildModelWithFrozenStacks(config(), { seed: 3, frozenStacks: 5, format: 'nf4', onStack: (i) => built.push(i) });
  assert.deepEqual(built, [0, 1, 2, 3, 4, 5]);
  const after = E.memoryInfo();
  const stackBytes = model.rack.stacks.at(5).numBytes();
  const stored = after.bytes - before.bytes;
  const growth = after.peakBytes - Math.max(before.peakBytes, before.bytes);
  // The engine's peak may predate this test; what the build added on top is bounded.
  assert.ok(after.peakBytes - before.bytes <= stored + 1.25 * stackBytes, `peak ${after.peakBytes - before.bytes} vs stored ${stored} + one stack ${stackBytes}`);
  assert.ok(growth >= 0);
  const fp32Model = Model.fromConfig(config(), { seed: 3 });
  assert.ok(stored < 0.5 * fp32Model.numBytes(), `stored ${stored} vs fp32 ${fp32Model.numBytes()}`);
  fp32Model.dispose();
  model.dispose();
});

test('same weights as Model.fromConfig (quantized where frozen); freezing as asked; the model trains its last stack', () => {
  const ref = Model.fromConfig(config(), { seed: 3 });
  for (let i = 0; i < 5; i++) quantizeTrunk(ref.rack.stacks.at(i), 'nf4');
  const model = buildModelWithFrozenStacks(config(), { seed: 3, frozenStacks: 5, format: 'nf4' });
  const refParams = new Map(ref.namedParameters());
  for (const [name, t] of model.namedParameters()) {
    const r = refParams.get(name);
    assert.ok(r, `${name} exists in the reference`);
    assert.deepEqual(Array.from(t.toArray()), Array.from(r!.toArray()), name);
  }
  const quantized = model.namedModules().filter(([, m]) => m instanceof QuantizedLinear).map(([p]) => p);
  assert.equal(quantized.length, 5 * 7);
  assert.ok(quantized.every((p) => /^rack\.stacks\.[0-4]\./.test(p)));
  const trainable = model.trainableParameters().map(([n]) => n);
  assert.ok(trainable.every((n) => n.startsWith('rack.stacks.5.') || n.startsWith('head.')), trainable.join(','));
  assert.ok(trainable.some((n) => n.startsWith('head.')));
  // Frozen fp32 variant: nothing quantized, stacks 0-4 frozen.
  const f32 = buildModelWithFrozenStacks(config(), { seed: 3, frozenStacks: (i) => i !== 2, format: 'fp32', freezeHead: true });
  assert.deepEqual([...new Set(f32.trainableParameters().map(([n]) => n.split('.').slice(0, 3).join('.')))], ['rack.stacks.2']);
  const ids = E.randInt([2, 16], 96, { seed: 1 });
  const loss = E.tidy(() => { const l = model.forwardLoss(ids, ids); l.backward(); return l.item(); });
  assert.ok(Number.isFinite(loss));
  assert.ok(model.rack.stacks.at(5).parameters().every((t) => t.grad !== null));
  ids.dispose();
  for (const m of [ref, model, f32]) m.dispose();
});
