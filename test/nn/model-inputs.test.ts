// Model.forward refuses inputs that would run but mean nothing: an empty batch or sequence, and
// position ids outside [0, max_positions) (a RoPE model rotated by them without a word).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { gpt2, llama } from '../../src/nn/index.js';

const ids = (B: number, S: number) => E.tensor(new Int32Array(B * S).fill(1), [B, S], { dtype: 'int32' });
const pos = (values: number[], shape = [values.length]) => E.tensor(Int32Array.from(values), shape, { dtype: 'int32' });

test('an empty batch [0, S] and an empty sequence [B, 0] are refused', () => {
  const m = llama({ vocabSize: 32, dModel: 16, nHeads: 2, nKvHeads: 1, dFF: 32, nLayers: 1, maxPositions: 8, seed: 1 });
  E.tidy(() => {
    assert.throws(() => m.forward(ids(0, 3)), /Model\.forward: ids \[0, 3\] is an empty batch/);
    assert.throws(() => m.forward(ids(2, 0)), /Model\.forward: ids \[2, 0\] are empty sequences/);
    assert.throws(() => m.forwardLoss(ids(0, 3), ids(0, 3)), /empty batch/);
  });
  m.dispose();
});

test('position ids < 0 or ≥ max_positions are refused, for RoPE and learned positions alike', () => {
  const models = [
    llama({ vocabSize: 32, dModel: 16, nHeads: 2, nKvHeads: 1, dFF: 32, nLayers: 1, maxPositions: 8, seed: 1 }),
    gpt2({ vocabSize: 32, dModel: 16, nHeads: 2, dFF: 32, nLayers: 1, maxPositions: 8, seed: 1 }),
  ];
  for (const m of models) {
    E.tidy(() => {
      assert.throws(() => m.forward(ids(1, 3), { positions: pos([-1, 0, 1]) }), /Model\.forward: position id -1 .*outside \[0, 8\) \(max_positions 8\)/);
      assert.throws(() => m.forward(ids(1, 3), { positions: pos([0, 1, 8]) }), /position id 8 .*outside \[0, 8\)/);
      assert.throws(() => m.forward(ids(2, 3), { positions: pos([0, 1, 2, 0, 1, 9], [2, 3]) }), /position id 9 \(at flat index 5/);
      assert.throws(() => m.forward(ids(1, 3), { positions: pos([0, 1]) }), /positions must be int32 \[3\] or \[1, 3\]/);
      assert.throws(() => m.forward(ids(1, 3), { positionOffset: -2 }), /positionOffset must be a non-negative integer, found -2/);
      // In range: runs, and equals the default positions.
      const a = m.forward(ids(1, 3), { positions: pos([0, 1, 2]) }).logits.toArray();
      const b = m.forward(ids(1, 3)).logits.toArray();
      assert.deepEqual(a, b);
    });
    m.dispose();
  }
});
