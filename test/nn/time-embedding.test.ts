// The time embedding (time-as-input) as part of the Model: tree, state dict, config, forward paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { llama, llamaConfig, Model, TimeEmbedding, type ModelConfig } from '../../src/nn/index.js';
import { assertClose, assertEqualArrays, assertThrowsWith, ids } from './helpers.js';

const TIME_PARAMS = ['time.out.bias', 'time.out.weight', 'time.proj.bias', 'time.proj.weight'];

function timedConfig(): ModelConfig {
  return { ...llamaConfig({ vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 2, dFF: 24, stacks: 2 }), timeEmbedding: { features: 8, hidden: 12 } };
}

/** Non-zero values in a (zero-initialised) parameter, so that the time embedding matters. */
function randomize(t: E.Tensor, seed: number): void {
  const v = E.randn(t.shape, { seed, std: 0.5, dtype: t.dtype, backend: t.backend.name });
  t.backend.upload(t.storage, v.toArray());
  v.dispose();
}

test('time embedding: a child of the Model, in its parameters, state dict and config; rebuilt the same from its config', () => {
  const m = Model.fromConfig(timedConfig(), { seed: 3, dtype: 'float64', backend: 'reference' });
  assert.ok(m.timeEmbedding instanceof TimeEmbedding);
  const names = m.namedParameters().map(([n]) => n);
  assert.deepEqual(names.filter((n) => n.startsWith('time.')).sort(), TIME_PARAMS);
  assert.deepEqual([...m.stateDict().keys()].filter((n) => n.startsWith('time.')).sort(), TIME_PARAMS);
  assert.deepEqual(m.getParameter('time.proj.weight').shape, [12, 8]);
  assert.deepEqual(m.getParameter('time.out.weight').shape, [16, 12]);
  assert.deepEqual(m.config.timeEmbedding, { features: 8, hidden: 12 });
  // Same config + seed → same weights (the time embedding included); a plain model has no 'time'.
  const again = Model.fromConfig(m.config, { seed: 3, dtype: 'float64', backend: 'reference' });
  assert.deepEqual(again.namedParameters().map(([n]) => n), names);
  assertEqualArrays(again.getParameter('time.proj.weight').toArray(), m.getParameter('time.proj.weight').toArray(), 'time.proj.weight');
  const plain = llama({ vocabSize: 30, dModel: 16, nLayers: 1, nHeads: 2, dFF: 24 });
  assert.equal(plain.timeEmbedding, null);
  assert.equal('timeEmbedding' in plain.config, false, 'no timeEmbedding key in a plain model config');
  assert.ok(!plain.namedParameters().some(([n]) => n.startsWith('time.')));
  for (const x of [m, again, plain]) x.dispose();
});

test('time embedding: forward needs timeRatios (one r in [0, 1] per row); a model without one refuses them', () => {
  const m = Model.fromConfig(timedConfig(), { seed: 1 });
  const x = ids(2, 5, 30, 1);
  assertThrowsWith(() => m.forward(x), /has a time embedding .* needs timeRatios: one noise ratio r ∈ \[0, 1\] per row/);
  assertThrowsWith(() => m.forwardHidden(x), /needs timeRatios/);
  assertThrowsWith(() => m.forwardLoss(x, x), /needs timeRatios/);
  assertThrowsWith(() => m.forward(x, { timeRatios: [0.5] }), /timeRatios holds 1 ratio\(s\) for 2 row\(s\)/);
  assertThrowsWith(() => m.forward(x, { timeRatios: [0.5, 1.5] }), /timeRatios\[1\] must be a noise ratio in \[0, 1\], found 1\.5/);
  assertThrowsWith(() => m.forward(x, { timeRatios: [NaN, 0.5] }), /timeRatios\[0\] must be a noise ratio in \[0, 1\], found NaN/);
  assert.deepEqual(m.forward(x, { timeRatios: [0, 1] }).logits.shape, [2, 5, 30]);
  const plain = llama({ vocabSize: 30, dModel: 16, nLayers: 1, nHeads: 2, dFF: 24 });
  assertThrowsWith(() => plain.forward(x, { timeRatios: [0.5, 0.5] }), /timeRatios were given, but the model has no time embedding \(model\.time_embedding\)/);
  assertThrowsWith(() => plain.forwardLoss(x, x, { timeRatios: [0.5, 0.5] }), /no time embedding/);
  assertThrowsWith(() => new TimeEmbedding({ dModel: 16, features: 5 }), /features must be an even integer ≥ 2, found 5/);
  assertThrowsWith(() => Model.fromConfig({ ...timedConfig(), timeEmbedding: { features: 8, hidden: 0 } }), /hidden must be a positive integer, found 0/);
  assertThrowsWith(() => m.attachTimeEmbedding(), /already has a time embedding/);
  for (const t of [m, plain, x]) t.dispose();
});

test('time embedding: freshly attached it is a no-op (zero-initialised output); trained, r changes the output', () => {
  const m = llama({ vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 2, dFF: 24, seed: 1, dtype: 'float64', backend: 'reference' });
  const x = ids(2, 5, 30, 4, 'reference');
  const labels = ids(2, 5, 30, 5, 'reference');
  const plain = m.forward(x, { outputHiddenStates: true });
  const plainLoss = m.forwardLoss(x, labels).item();
  const time = m.attachTimeEmbedding({ features: 8 }, { seed: 2 });
  assert.equal(m.timeEmbedding, time);
  assert.ok(m.namedParameters().some(([n]) => n === 'time.out.weight'), 'attached as a registered child');
  assert.deepEqual(time.config, { features: 8, hidden: 16 });
  const timed = m.forward(x, { timeRatios: [0.2, 0.9], outputHiddenStates: true });
  assertEqualArrays(timed.logits.toArray(), plain.logits.toArray(), 'logits');
  assertEqualArrays(timed.hiddenStates![0]!.toArray(), plain.hiddenStates![0]!.toArray(), 'embedding output');
  assert.equal(m.forwardLoss(x, labels, { timeRatios: [0.2, 0.9] }).item(), plainLoss, 'fused loss');

  // The gradient of the fused loss reaches the time embedding's output projection.
  const loss = m.forwardLoss(x, labels, { timeRatios: [0.3, 0.7] });
  loss.backward();
  assert.ok(time.out.weight.grad!.toArray().some((g) => g !== 0), 'time.out.weight receives a gradient');
  m.zeroGrad();

  randomize(time.out.weight, 9);
  const a = m.forward(x, { timeRatios: [0.2, 0.2], outputHiddenStates: true });
  const b = m.forward(x, { timeRatios: [0.9, 0.9] }).logits.toArray();
  assert.ok(a.logits.toArray().some((v, i) => Math.abs(v - b[i]!) > 1e-6), 'r now matters');
  // hiddenStates[0] is the embedding output with the time embedding added: what the rack reads.
  const te = time.forward([0.2, 0.2]).toArray();
  const h0 = a.hiddenStates![0]!.toArray();
  const e0 = m.embedding.forward(x).toArray();
  for (let p = 0; p < 10; p++) for (let d = 0; d < 16; d++) assertClose([h0[p * 16 + d]!], [e0[p * 16 + d]! + te[Math.floor(p / 5) * 16 + d]!], 1e-12, 'h0');
  // Fused and plain losses agree with ratios (value and every gradient, the time embedding's included).
  const grads = (f: () => E.Tensor) => E.tidy(() => {
    const l = f();
    l.backward();
    const out = { loss: l.item(), g: new Map(m.namedParameters().filter(([, t]) => t.grad).map(([n, t]) => [n, t.grad!.toArray()] as const)) };
    m.zeroGrad();
    return out;
  });
  const opts = { timeRatios: [0.4, 0.6] };
  const fused = grads(() => m.forwardLoss(x, labels, opts));
  const unfused = grads(() => m.loss(m.forward(x, opts).logits, labels));
  assertClose([fused.loss], [unfused.loss], 1e-10, 'loss');
  for (const n of TIME_PARAMS) assertClose(fused.g.get(n)!, unfused.g.get(n)!, 1e-10, `gradient of ${n}`);
  assert.ok(fused.g.get('time.proj.weight')!.some((g) => g !== 0), 'time.proj.weight receives a gradient once the output projection is non-zero');
  m.dispose();
});
