import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import {
  ClmObjective,
  DataAdapter,
  IncompatibleSpecsError,
  ModelAdapter,
  OptimizerAdapter,
  assertTrainingState,
  buildDataLoader,
  buildModel,
  buildOptimizer,
  createObjective,
  registerObjective,
  syntheticTokenData,
  validateTrainingState,
  type TrainingObjective,
} from '../../src/framework/index.js';
import { parseConfig } from '../../src/training/config/index.js';
import { AdamW, SGD } from '../../src/optim/index.js';
import { llama } from '../../src/nn/index.js';

const PLANE = { seq_len: 8, batch_size: 3, objective: 'clm' as const, eval_batches: 2 };

test('synthetic data: deterministic, ids below vocab − 1, separate validation walk', () => {
  const a = syntheticTokenData({ vocab_size: 32, tokens: 500, seed: 3 });
  const b = syntheticTokenData({ vocab_size: 32, tokens: 500, seed: 3 });
  assert.deepEqual(a.train.window(0, 500), b.train.window(0, 500));
  assert.equal(a.maskTokenId, 31);
  assert.ok(a.train.window(0, 500).every((id) => id >= 0 && id < 31));
  assert.ok(a.validation && a.validation.length === 25);
  assert.notDeepEqual(syntheticTokenData({ vocab_size: 32, tokens: 500, seed: 4 }).train.window(0, 50), a.train.window(0, 50));
  assert.throws(() => syntheticTokenData({ vocab_size: 2, tokens: 10 }), /vocab_size must be an integer ≥ 3/);
});

test('DataAdapter: batches depend only on (seed, step, micro); CLM targets are the next tokens', () => {
  const data = syntheticTokenData({ vocab_size: 40, tokens: 400 });
  const d1 = new DataAdapter(data, PLANE, { seed: 7 });
  const d2 = new DataAdapter(data, PLANE, { seed: 7 });
  const x = d1.trainBatch(5, 1, 0.5);
  d2.trainBatch(0, 0, 0);
  assert.deepEqual(d2.trainBatch(5, 1, 0.5), x, 'no hidden cursor');
  assert.notDeepEqual(d1.trainBatch(5, 0, 0.5).sampleIds, x.sampleIds);
  assert.equal(x.inputIds.length, 24);
  assert.equal(x.tokens, 24);
  assert.equal(x.scored, 3 * 7);
  for (let b = 0; b < 3; b++) {
    const start = x.sampleIds[b]!;
    assert.deepEqual([...x.inputIds.subarray(b * 8, b * 8 + 8)], [...data.train.window(start, 8)]);
    assert.deepEqual([...x.targets.subarray(b * 8, b * 8 + 7)], [...data.train.window(start + 1, 7)]);
    assert.equal(x.targets[b * 8 + 7], -100);
  }
  const evals = d1.evalBatches(0, 0);
  assert.equal(evals.length, 1, '20 validation tokens hold two 8-token windows: one batch');
  assert.deepEqual(evals[0]!.sampleIds, [0, 8]);
  assert.deepEqual(d1.getBatchSpec(), { batch_size: 3, seq_len: 8, vocab_size: 40, objective: 'clm', mask_token_id: 39 });
  assert.deepEqual(d1.getDataSpec(), { corpus: 'synthetic(v=40,n=400,seed=0,b=2)', tokenizer: 'none', split: 'train', objective: 'clm' });
  assert.throws(() => new DataAdapter(data, { ...PLANE, seq_len: 1000 }, { seed: 0 }), /has 400 tokens, fewer than one batch needs: batch_size 3 × seq_len 1000 \+ 1 \(the next-token targets\) = 3001/);
  // Longer than one window but not one batch: refused too (rows would repeat the same few tokens).
  assert.throws(() => new DataAdapter(data, { ...PLANE, seq_len: 200 }, { seed: 0 }), /has 400 tokens, fewer than one batch needs: .* = 601/);
  assert.throws(() => new DataAdapter(data, { ...PLANE, mask_token_id: 40 }, { seed: 0 }), /mask_token_id.*below the vocabulary size 40/);
});

test('objectives: CLM built in; others come from factories; a bad objective output is caught', () => {
  const clm = new ClmObjective();
  const p = clm.prepare({ ids: Int32Array.of(1, 2, 3, 4, 5, 6), batch: 2, seqLen: 3, sampleIds: [0, 3] });
  assert.deepEqual([...p.targets], [2, 3, -100, 5, 6, -100]);
  const broken: TrainingObjective = { name: 'diffusion', prepare: (b) => ({ inputIds: b.ids, targets: new Int32Array(1) }) };
  const data = syntheticTokenData({ vocab_size: 16, tokens: 200 });
  const d = new DataAdapter(data, { ...PLANE, objective: 'diffusion' }, { seed: 0, objectives: { diffusion: () => broken } });
  assert.throws(() => d.trainBatch(0, 0, 0), /objective 'diffusion': targets must be an Int32Array of 24 ids/);
  registerObjective('mlm', () => ({ name: 'mlm', prepare: (b) => ({ inputIds: b.ids.slice(), targets: b.ids.slice() }) }));
  assert.equal(createObjective('mlm', { vocabSize: 4 }).name, 'mlm');
  assert.throws(() => createObjective('mlm', { vocabSize: 4 }, { mlm: () => clm as never }), /returned an objective named 'clm'/);
});

test('buildModel from config for each preset; specs and FLOPs from the live model', () => {
  const p = parseConfig({
    model: { preset: 'llama', d_model: 16, n_heads: 2, n_kv_heads: 1, n_stacks: 2, blocks_per_stack: 2, d_ff: 24 },
    training: { total_steps: 1 },
  });
  const m = buildModel(p.config.model!, { vocabSize: 50, maxSeqLen: 8, objective: 'clm', seed: 1 });
  assert.equal(m.model.rack.numStacks, 2);
  assert.equal(m.model.rack.numBlocks, 4);
  assert.deepEqual(m.getEmbeddingSpec(), { vocab_size: 50, d_model: 16, positional: 'rope', type_vocab_size: 0, max_positions: 8 });
  assert.equal(m.getRackSpec().stacks[0]!.n_kv_heads, 1);
  assert.equal(m.getRackSpec().stacks[0]!.attention, 'causal');
  assert.deepEqual([...m.newStacks()], [0, 1], 'before any growth every stack is new');
  const flops = m.flopsPerToken(8);
  const matmul = m.namedParameters().filter(([n, t]) => t.rank === 2 && !n.startsWith('embedding.')).reduce((s, [, t]) => s + t.size, 0);
  assert.equal(flops.forward, 2 * matmul + 4 * 8 * 16 * 4);
  assert.equal(flops.train, 2 * flops.forward + 2 * matmul);
  assert.equal(flops.trainAll, flops.train, 'every weight trains');
  // A frozen stack skips its weight gradients; trainAll still counts them (training end to end).
  const stack0 = m.namedParameters().filter(([n, t]) => t.rank === 2 && n.includes('stacks.0.'));
  assert.ok(stack0.length > 0);
  for (const [, t] of stack0) t.requiresGrad = false;
  const frozen = m.flopsPerToken(8);
  assert.equal(frozen.train, flops.train - 2 * stack0.reduce((s, [, t]) => s + t.size, 0));
  assert.equal(frozen.trainAll, flops.train);
  for (const [, t] of stack0) t.requiresGrad = true;
  const g = buildModel({ ...p.config.model!, preset: 'gpt2', n_kv_heads: undefined, d_ff: undefined }, { vocabSize: 50, maxSeqLen: 12 });
  assert.equal(g.getEmbeddingSpec().max_positions, 12);
  assert.equal(g.getHeadSpec().kind, 'lm');
  const b = buildModel({ ...p.config.model!, preset: 'bert', n_kv_heads: undefined, attention: 'auto' }, { vocabSize: 50, maxSeqLen: 12, objective: 'mlm' });
  assert.equal(b.getHeadSpec().kind, 'mlm');
  assert.equal(b.getRackSpec().stacks[0]!.attention, 'bidirectional');
  assert.throws(() => buildModel({ ...p.config.model!, preset: 'gpt2' }, { vocabSize: 50 }), /model\.n_kv_heads: the 'gpt2' preset has no grouped-query attention/);
  assert.throws(() => buildModel({ ...p.config.model!, vocab_size: 40 }, { vocabSize: 50 }), /model\.vocab_size: expected 50 \(the data's vocabulary\), found 40/);
  assert.throws(() => buildModel(p.config.model!), /expected a vocabulary size/);
  const built = llama({ vocabSize: 50, dModel: 16, nLayers: 2, nHeads: 2, stacks: 2 });
  assert.equal(buildModel(built).model, built, 'a built model is wrapped, not rebuilt');
  assert.equal(buildModel(m), m);
});

test('buildOptimizer from config, spec or object; lr(t) per group; clipping; spec changes keep or reset state', () => {
  const p = parseConfig({
    model: { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 2, blocks_per_stack: 1 },
    optimizer: { lr_schedule: { kind: 'linear', lr: 0.1, final_fraction: 0 }, param_groups: [{ name: 'no_decay' }, { name: 'embedding', lr_scale: 0.5 }], weight_decay: 0.1, clip_norm: 0.5 },
    training: { total_steps: 1 },
  });
  const m = buildModel(p.config.model!, { vocabSize: 30 });
  const opt = buildOptimizer(p.config.optimizer, m);
  assert.ok(opt.optimizer instanceof AdamW);
  assert.deepEqual(opt.groups.map((g) => g.name), ['no_decay', 'embedding', 'default']);
  assert.deepEqual(opt.setLr(0.5, 0), { no_decay: 0.05, embedding: 0.025, default: 0.05 });
  assert.equal(opt.groups[0]!.weightDecay, 0);
  assert.equal(opt.optimizer.groups[2]!.weightDecay, 0.1);
  // Clipping: gradients scaled to the clip norm; the norm before clipping is returned.
  for (const [, t] of m.trainableParameters()) t.grad = E.keep(E.full([...t.shape], 1));
  const total = m.trainableParameters().reduce((s, [, t]) => s + t.size, 0);
  assert.ok(Math.abs(opt.clipGradients() - Math.sqrt(total)) < 1e-3);
  assert.ok(Math.abs(E.globalGradNorm(m.trainableParameters().map(([, t]) => t.grad!)) - 0.5) < 1e-4);
  opt.step();
  opt.zeroGrad();
  const nameOf = m.nameOf();
  const name = (t: E.Tensor) => nameOf.get(t)!;
  const before = opt.optimizer.namedState(name).tensors.size;
  assert.ok(before > 0);
  assert.equal(opt.applySpec({ ...opt.getSpec(), lr_schedule: { kind: 'constant', lr: 1 } }, name), 'kept');
  assert.equal(opt.applySpec({ ...opt.getSpec(), betas: [0.8, 0.9] }, name), 'rebuilt');
  assert.equal(opt.optimizer.namedState(name).tensors.size, before, 'state carried into the rebuilt optimizer');
  assert.equal(opt.applySpec({ ...opt.getSpec(), type: 'sgd', momentum: 0.9 }, name), 'replaced');
  const replaced: unknown = opt.optimizer;
  assert.ok(replaced instanceof SGD);
  assert.equal(replaced.namedState(name).tensors.size, 0);
  // SGD momentum 0.9 → 0 (state dropped: plain SGD holds none) → 0.9 (fresh buffers at the next step).
  for (const [, t] of m.trainableParameters()) t.grad = E.keep(E.full([...t.shape], 1));
  opt.step();
  assert.ok(opt.optimizer.namedState(name).tensors.size > 0, 'momentum buffers after a step');
  assert.equal(opt.applySpec({ ...opt.getSpec(), momentum: 0 }, name), 'rebuilt');
  assert.equal(opt.optimizer.namedState(name).tensors.size, 0);
  opt.step();
  assert.equal(opt.applySpec({ ...opt.getSpec(), momentum: 0.9 }, name), 'rebuilt');
  opt.step();
  assert.ok(opt.optimizer.namedState(name).tensors.size > 0, 'momentum is back');
  opt.zeroGrad();
  const sgd = buildOptimizer(new SGD(m.trainableParameters().map(([, t]) => t), { lr: 0.2, momentum: 0.5 }), m);
  assert.deepEqual(sgd.getSpec().lr_schedule, { kind: 'constant', lr: 0.2 });
  assert.ok(buildOptimizer(sgd, m) === sgd);
  assert.ok(buildOptimizer({ ...opt.getSpec() }, m) instanceof OptimizerAdapter);
});

test('validateTrainingState names both sides; factories accept objects', () => {
  const data = syntheticTokenData({ vocab_size: 64, tokens: 300 });
  const loader = buildDataLoader(data, { plane: PLANE });
  assert.ok(loader instanceof DataAdapter);
  assert.equal(buildDataLoader(loader), loader);
  assert.throws(() => buildDataLoader(data), /needs a data plane/);
  const fromConfig = buildDataLoader(parseConfig({ data: { corpus: { kind: 'synthetic', vocab_size: 64, tokens: 300 }, seq_len: 8, batch_size: 2 }, training: { total_steps: 1 } }).config.data!);
  assert.equal(fromConfig.getBatchSpec().vocab_size, 64);
  const model = new ModelAdapter(llama({ vocabSize: 60, dModel: 16, nLayers: 2, nHeads: 2, stacks: 2 }));
  const problems = validateTrainingState(loader, model);
  assert.deepEqual(problems.map((p) => p.field), ['vocab_size', 'mask_token_id']);
  assert.match(problems[0]!.message, /batch\.vocab_size: expected the same value as embedding\.vocab_size, found 64 \(embedding\.vocab_size = 60/);
  const mlm = buildDataLoader(data, { plane: { ...PLANE, objective: 'mlm' }, objectives: { mlm: () => ({ name: 'mlm', prepare: (b) => ({ inputIds: b.ids, targets: b.ids }) }) } });
  const ok = new ModelAdapter(llama({ vocabSize: 64, dModel: 16, nLayers: 2, nHeads: 2, stacks: 2 }));
  assert.throws(() => assertTrainingState(mlm, ok), (e: unknown) => e instanceof IncompatibleSpecsError && /rack\.stacks\[0\]\.attention: expected 'bidirectional' for objective 'mlm'/.test(e.message));
  ok.setAttentionMode('bidirectional');
  assert.deepEqual(validateTrainingState(mlm, ok), []);
});
