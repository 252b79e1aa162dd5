import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { AdamW } from '../../src/optim/index.js';
import { BenchLlama, randomBatch, type TrainStepShape } from '../../bench/train-step.js';

const SMALL: TrainStepShape = { vocab: 64, dModel: 16, layers: 2, heads: 2, kvHeads: 1, ffn: 24, seq: 8, batch: 2 };

test('200 training steps: native memory does not grow and the loss falls', () => {
  const model = new BenchLlama(SMALL, 3);
  const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
  const be = E.getDefaultBackend();
  let afterWarmup = { bytes: 0, buffers: 0 };
  const losses: number[] = [];
  // A fixed batch: the model must be able to fit it, so the loss has to fall.
  for (let i = 0; i < 200; i++) {
    const loss = E.tidy(() => {
      const { inputs, targets } = randomBatch(SMALL, 0);
      opt.zeroGrad();
      const l = model.loss(inputs, targets);
      l.backward();
      opt.step();
      return l.item();
    });
    losses.push(loss);
    if (i === 4) afterWarmup = be.memory();
  }
  const end = be.memory();
  // Gradients of the last step are still held (zeroGrad runs at the start of a step).
  assert.equal(end.buffers, afterWarmup.buffers, `live buffers grew from ${afterWarmup.buffers} to ${end.buffers}`);
  assert.equal(end.bytes, afterWarmup.bytes, `live bytes grew from ${afterWarmup.bytes} to ${end.bytes}`);
  assert.ok(losses[199] < losses[0] * 0.5, `loss did not fall: ${losses[0]} → ${losses[199]}`);
  opt.zeroGrad();
  opt.dispose();
  for (const p of model.parameters()) p.dispose();
});

test('same seed, same losses bit for bit', () => {
  const run = () => {
    const model = new BenchLlama(SMALL, 7);
    const opt = new AdamW(model.parameters(), { lr: 1e-3 });
    const out: number[] = [];
    for (let i = 0; i < 5; i++) {
      out.push(E.tidy(() => {
        const { inputs, targets } = randomBatch(SMALL, i);
        opt.zeroGrad();
        const l = model.loss(inputs, targets);
        l.backward();
        opt.step();
        return l.item();
      }));
    }
    opt.zeroGrad();
    opt.dispose();
    for (const p of model.parameters()) p.dispose();
    return out;
  };
  assert.deepEqual(run(), run());
});
