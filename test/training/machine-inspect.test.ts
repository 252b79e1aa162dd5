// TrainingMachine.getCurrentState / assemblePlanes / trainStep(lossFn): the per-step surface.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { TrainingMachine, type LossFn } from '../../src/training/index.js';
import { tinyConfig, weightsDigest } from './machine-helpers.js';

test('getCurrentState: step, t, phase and the specs of the live planes, before and during a run', () => {
  const m = new TrainingMachine(tinyConfig());
  const s0 = m.getCurrentState();
  assert.equal(s0.step, 0);
  assert.equal(s0.t, 0);
  assert.equal(s0.totalSteps, 12);
  assert.equal(s0.phase, 'base');
  assert.equal(s0.phaseEntered, false);
  assert.equal(s0.complete, false);
  assert.equal(s0.data.seq_len, 8);
  assert.equal(s0.model.rack.stacks.length, 2);
  assert.equal(s0.optimizer.type, 'adamw');
  for (let i = 0; i < 7; i++) m.trainStep();
  const s7 = m.getCurrentState();
  assert.equal(s7.step, 7);
  assert.equal(s7.phase, 'grow');
  assert.equal(s7.phaseIndex, 1);
  assert.equal(s7.phaseEntered, true);
  assert.equal(s7.model.rack.stacks.length, 3, 'the grow phase raised n_stacks to 3');
  m.dispose();
});

test('assemblePlanes changes nothing: an inspected run trains bit for bit as one that is not', () => {
  const plain = new TrainingMachine(tinyConfig());
  const plainLosses = plain.train().losses;
  const plainDigest = weightsDigest(plain);
  plain.dispose();

  const inspected = new TrainingMachine(tinyConfig());
  const losses: number[] = [];
  while (!inspected.isComplete) {
    // Every step's planes, future phases included, and their batches, before each step.
    for (let s = 0; s < 12; s++) {
      const p = inspected.assemblePlanes(s);
      p.data.batch(0);
      void p.optimizer.lr;
    }
    inspected.getCurrentState();
    losses.push(inspected.trainStep().loss);
  }
  assert.deepEqual(losses, plainLosses);
  assert.equal(weightsDigest(inspected), plainDigest);
  inspected.dispose();
});

test('assemblePlanes(step) gives the batch, lr and phase that step then trains with', () => {
  const m = new TrainingMachine(tinyConfig());
  const planned = Array.from({ length: 12 }, (_, s) => m.assemblePlanes(s));
  assert.deepEqual(planned.map((p) => p.phase.name), [...Array(6).fill('base'), ...Array(6).fill('grow')]);
  assert.equal(planned[0]!.current, true);
  assert.equal(planned[6]!.current, false, 'the grow phase is not entered yet');
  assert.equal(planned[6]!.resolved.model?.n_stacks, 3);
  const seen: Int32Array[] = [];
  const recording: LossFn = ({ model, batch, inputIds, seed, step }) => {
    seen.push(batch.inputIds.slice());
    const logits = model.forward(inputIds, { seed, step });
    return E.crossEntropy(logits, E.tensor(batch.targets, [batch.batch, batch.seqLen], { dtype: 'int32', backend: inputIds.backend }));
  };
  for (let s = 0; s < 12; s++) {
    const metrics = m.trainStep(recording);
    assert.equal(metrics.phase, planned[s]!.phase.name);
    assert.equal(metrics.lr, planned[s]!.optimizer.lr, `lr of step ${s}`);
    assert.deepEqual(seen[s], planned[s]!.data.batch(0).inputIds, `batch of step ${s}`);
  }
  // Once entered, the planes are the live objects the step uses.
  const now = m.assemblePlanes(11);
  assert.equal(now.current, true);
  assert.equal(now.model, m.model);
  assert.equal(now.optimizer.adapter, m.optimizer);
  assert.throws(() => m.assemblePlanes(12), /step must be an integer in \[0, 11\].*found 12/);
  assert.throws(() => m.assemblePlanes(-1), /found -1/);
  m.dispose();
});

test('trainStep(lossFn): the user loss is what is minimised and reported; a non-scalar is refused by name', () => {
  const m = new TrainingMachine(tinyConfig());
  let calls = 0;
  let last = NaN;
  // (mean logit − 3)²: a loss the built-in objective never computes.
  const meanSquare: LossFn = ({ model, inputIds, seed, step }) => {
    calls++;
    const v = E.square(E.addScalar(E.mean(model.forward(inputIds, { seed, step })), -3));
    last = v.item();
    return v;
  };
  const first = m.trainStep(meanSquare);
  assert.equal(calls, 1);
  assert.equal(first.loss, last);
  let prev = first.loss;
  for (let i = 0; i < 6; i++) prev = m.trainStep(meanSquare).loss;
  assert.ok(prev < first.loss, `the user loss falls (${first.loss} → ${prev})`);
  assert.throws(() => m.trainStep(({ model, inputIds, seed, step }) => model.forward(inputIds, { seed, step })), /must return a scalar tensor \(one element\), found a tensor of shape \[4, 8, 64\]/);
  m.dispose();
});
