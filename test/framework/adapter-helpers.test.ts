import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataAdapter, ModelAdapter, OptimizerAdapter, createDataAdapter, createModelAdapter, createOptimizerAdapter, syntheticTokenData, validateOptimizerSpec } from '../../src/framework/index.js';
import { Model, llamaConfig } from '../../src/nn/index.js';

test('createDataAdapter / createModelAdapter / createOptimizerAdapter wrap what was built in code', () => {
  const tokens = syntheticTokenData({ vocab_size: 32, tokens: 400, seed: 1, branching: 2, val: 0.1, test: 0 });
  const data = createDataAdapter(tokens, { seq_len: 8, batch_size: 2, objective: 'clm' });
  assert.ok(data instanceof DataAdapter);
  assert.deepEqual([data.getBatchSpec().batch_size, data.getBatchSpec().seq_len, data.getBatchSpec().vocab_size], [2, 8, 32]);
  // Seed 0 by default: the same batches as an explicit seed 0.
  assert.deepEqual(data.trainBatch(3, 0, 0).inputIds, createDataAdapter(tokens, { seq_len: 8, batch_size: 2, objective: 'clm' }, { seed: 0 }).trainBatch(3, 0, 0).inputIds);

  const built = Model.fromConfig(llamaConfig({ vocabSize: 32, dModel: 16, nHeads: 2, nLayers: 2, stacks: 2, maxPositions: 8 }), { seed: 0 });
  const model = createModelAdapter(built);
  assert.ok(model instanceof ModelAdapter);
  assert.equal(model.model, built);

  const optimizer = createOptimizerAdapter(validateOptimizerSpec({ type: 'adamw', lr_schedule: { kind: 'constant', lr: 1e-3 }, param_groups: [{ name: 'no_decay' }] }), model);
  assert.ok(optimizer instanceof OptimizerAdapter);
  assert.equal(optimizer.getSpec().type, 'adamw');
  assert.equal(optimizer.lrAt(0.5, 0.5), 1e-3);
  assert.equal(optimizer.optimizer.params().length, model.trainableParameters().length);
});
