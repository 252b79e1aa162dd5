// Activation recomputation (training.recompute, E.checkpoint): the same loss and gradients bit for
// bit, fewer activations alive after the forward, and the training machine's losses unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { gpt2, llama, type Model } from '../../src/nn/index.js';
import { TrainingMachine } from '../../src/training/index.js';
import { hasNative, ids } from './helpers.js';

const BACKENDS = ['reference', ...(hasNative ? ['native'] : [])];

/** Loss, every gradient (as arrays) and the live bytes right after the forward. */
function step(m: Model, x: Tensor, recompute: boolean): { loss: number; grads: Map<string, number[]>; liveAfterForward: number } {
  m.rack.recompute = recompute;
  const be = x.backend;
  return E.tidy(() => {
    const start = be.memory().bytes;
    const loss = m.forwardLoss(x, x, { seed: 5 });
    const liveAfterForward = be.memory().bytes - start;
    const value = loss.item();
    E.mulScalar(loss, 0.5).backward(undefined, { freeSaved: true });
    const grads = new Map(m.namedParameters().filter(([, t]) => t.grad).map(([n, t]) => [n, Array.from(t.grad!.toArray())] as const));
    const out = { loss: value, grads, liveAfterForward };
    m.zeroGrad();
    return out;
  });
}

test('recompute: the same loss and gradients bit for bit (llama, gpt2 with dropout), fewer bytes alive after the forward', () => {
  for (const backend of BACKENDS) {
    for (const make of [
      () => llama({ vocabSize: 37, dModel: 16, nLayers: 4, nHeads: 2, nKvHeads: 1, dFF: 24, stacks: [1, 3], seed: 1, backend }),
      () => gpt2({ vocabSize: 29, dModel: 16, nLayers: 3, nHeads: 2, maxPositions: 16, dropout: 0.1, stacks: 1, seed: 2, backend }),
    ]) {
      const m = make();
      m.train();
      const x = ids(2, 9, m.config.vocabSize, 3, backend);
      const plain = step(m, x, false), again = step(m, x, true);
      assert.equal(again.loss, plain.loss, `${m.config.family} ${backend}: loss`);
      assert.deepEqual([...again.grads.keys()], [...plain.grads.keys()]);
      for (const [name, g] of plain.grads) assert.deepEqual(again.grads.get(name), g, `${m.config.family} ${backend}: gradient of ${name}`);
      assert.ok(again.liveAfterForward < plain.liveAfterForward, `${backend}: ${again.liveAfterForward} bytes alive after the forward with recompute, ${plain.liveAfterForward} without`);
      m.dispose();
    }
  }
});

test('recompute: a frozen trunk under a trained stack, and a stack added later inherits the setting', () => {
  const m = llama({ vocabSize: 37, dModel: 16, nLayers: 3, nHeads: 2, dFF: 24, stacks: [2, 1], seed: 4 });
  m.embedding.freeze();
  m.rack.stacks.at(0).freeze();
  m.rack.recompute = true;
  assert.equal(m.rack.stacks.at(1).recompute, true);
  const x = ids(2, 6, 37, 2);
  const a = step(m, x, true), b = step(m, x, false);
  for (const [name, g] of b.grads) assert.deepEqual(a.grads.get(name), g, name);
  assert.ok(![...a.grads.keys()].some((n) => n.startsWith('rack.stacks.0.')));
  m.dispose();
});

test('training.recompute: the training machine gives the same losses bit for bit (progressive growth, accumulation)', () => {
  const cfg = (recompute: boolean) => ({
    model: { preset: 'llama', d_model: 32, n_heads: 2, d_ff: 48, n_stacks: 2, blocks_per_stack: 1, progressive: { direction: 'append', growth: 'copy_top', freeze: 'none' } },
    data: { corpus: { kind: 'synthetic', vocab_size: 40, tokens: 6000, branching: 2 }, seq_len: 12, batch_size: 4, eval_batches: 1 },
    optimizer: { lr: 3e-3, accumulation_steps: 2 },
    training: { total_steps: 8, seed: 3, progress: 'off', tensorboard: false, recompute },
    schedule: [{ name: 'one', start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }, { name: 'two', start_t: 0.5, end_t: 1 }],
  });
  const run = (recompute: boolean) => {
    const m = new TrainingMachine(cfg(recompute));
    const losses: number[] = [];
    for (let i = 0; i < 8; i++) losses.push(m.trainStep().loss);
    assert.equal(m.model.model.rack.recompute, recompute);
    m.dispose();
    return losses;
  };
  assert.deepEqual(run(true), run(false));
});
