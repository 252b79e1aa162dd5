// The planner (training/plan) against what the engine really builds and allocates: parameter
// counts of built models of every preset, per-phase trainable / frozen / adapter counts and bytes
// against the live progressive builder's report, saved activations against the engine's bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import { buildModel, type ModelPlaneConfig } from '../../../src/framework/index.js';
import { ProgressivePlane, TrainingMachine, parseConfig, planRun, blockActivations, modelShape, HEAD_ACT_PER_TOKEN, type ResourceReport } from '../../../src/training/index.js';
import { llamaConfig, Model } from '../../../src/nn/index.js';

type Obj = Record<string, unknown>;
const data = (seq = 8, batch = 4): Obj => ({ corpus: { kind: 'synthetic', vocab_size: 48, tokens: 3000 }, seq_len: seq, batch_size: batch, eval_batches: 1 });

test('parameter counts equal the models Model.fromConfig builds (llama GQA tied/untied, gpt2, bert)', () => {
  const models: Obj[] = [
    { preset: 'llama', d_model: 32, n_heads: 4, n_kv_heads: 2, d_ff: 40, n_stacks: 2, blocks_per_stack: 2, tie_embeddings: false },
    { preset: 'llama', d_model: 32, n_heads: 4, n_stacks: 3, blocks_per_stack: 1, tie_embeddings: true },
    { preset: 'gpt2', d_model: 24, n_heads: 3, n_stacks: 2, blocks_per_stack: 1 },
    { preset: 'bert', d_model: 24, n_heads: 3, n_stacks: 1, blocks_per_stack: 2 },
    { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1, time_embedding: { features: 8, hidden: 12 } },
  ];
  for (const model of models) {
    const objective = model['preset'] === 'bert' || model['time_embedding'] ? (model['time_embedding'] ? 'diffusion' : 'mlm') : 'clm';
    const parsed = parseConfig({ model, data: { ...data(), objective }, optimizer: { lr: 1e-3 }, training: { total_steps: 4 } });
    const plan = planRun(parsed);
    const built = buildModel(parsed.phases[0]!.model as ModelPlaneConfig, { vocabSize: 48, maxSeqLen: 8, objective: objective as 'clm' });
    assert.equal(plan.params, built.model.numParameters(), JSON.stringify(model));
    assert.equal(plan.phases[0]!.params.trainable, built.model.numParameters());
    assert.equal(plan.phases[0]!.bytes.weights, built.model.numBytes());
    built.model.dispose();
  }
});

/** Trains a tiny progressive run and returns the builder's report at every phase start. */
function liveReports(cfg: Obj): ResourceReport[] {
  const m = new TrainingMachine(cfg);
  const plane = ProgressivePlane.attach(m);
  const reports: ResourceReport[] = [];
  m.addCallback({ onPhaseStart: () => { reports.push(plane.builder.report({ seqLen: 8, optimizer: 'adamw' })); } });
  m.train();
  m.dispose();
  return reports;
}

const progressive = (prog: Obj, extra: Obj = {}): Obj => ({
  model: { preset: 'llama', d_model: 32, n_heads: 4, n_kv_heads: 2, d_ff: 48, n_stacks: 1, blocks_per_stack: 2, progressive: prog },
  data: data(),
  optimizer: { lr: 1e-3 },
  training: { total_steps: 6, progress: 'off', tensorboard: false, seed: 1 },
  schedule: [
    { name: 'one', start_t: 0, end_t: 0.34 },
    { name: 'two', start_t: 0.34, end_t: 0.67, overrides: { model: { n_stacks: 2 } } },
    { name: 'three', start_t: 0.67, end_t: 1, overrides: { model: { n_stacks: 4 } } },
  ],
  ...extra,
});

test('per phase, trainable / frozen / adapter counts, gradients, optimizer state and weight bytes match the live builder', () => {
  const cases: Obj[] = [
    progressive({ growth: 'copy_top', freeze: 'none' }),
    progressive({ freeze: 'frozen_trunk', trunk_format: 'nf4' }),
    progressive({ freeze: 'adapters_only_trunk', trunk_format: 'int8', progressive_lora: { rank: 2, alpha: 4 }, stack_lora: { rank: 3, alpha: 3, targets: ['q', 'v', 'down'] } }),
    progressive({ direction: 'prepend', freeze: 'frozen_suffix', trunk_format: 'bf16' }),
    progressive({ freeze: { new_stack: 'train', trunk: 'frozen', embedding: 'frozen', head: 'frozen' }, stack_lora: { strategy: 'growing', rank: 2, step: 2, alpha: 2 } }),
  ];
  for (const cfg of cases) {
    const plan = planRun(parseConfig(cfg));
    const live = liveReports(cfg);
    assert.equal(plan.phases.length, live.length);
    plan.phases.forEach((p, i) => {
      const r = live[i]!;
      const what = `${JSON.stringify((cfg['model'] as Obj)['progressive'])} phase ${p.name}`;
      assert.deepEqual(p.params, { total: r.params.total, trainable: r.params.trainable, frozen: r.params.frozen, adapters: r.params.adapters, adaptersTrainable: r.params.adaptersTrainable }, what);
      assert.equal(p.bytes.grads, r.bytes.grads, what);
      assert.equal(p.bytes.optimizerState, r.bytes.optimizerState, what);
      // Quantized payloads are stored in int32 words: at most 3 bytes of padding per stored piece.
      assert.ok(Math.abs(p.bytes.weights - r.bytes.weights) <= 16 * p.blocks * 7, `${what}: weights ${p.bytes.weights} vs ${r.bytes.weights}`);
      assert.equal(p.flopsPerToken.forward, r.flopsPerToken.forward, what);
      assert.equal(p.flopsPerToken.backward, r.flopsPerToken.backward, what);
    });
  }
});

test('activations saved for backward: the prediction is within 5 % of what the engine keeps', () => {
  for (const [d, H, kv, ff, B, S] of [[64, 4, 2, 176, 2, 32], [96, 6, 6, 256, 3, 16]] as const) {
    const config = llamaConfig({ vocabSize: 64, dModel: d, nLayers: 3, nHeads: H, nKvHeads: kv, dFF: ff, stacks: 3, maxPositions: S });
    const model = Model.fromConfig(config, { seed: 1 });
    const ids = E.randInt([B, S], 64, { seed: 2 });
    const before = E.memoryInfo().bytes;
    let saved = 0;
    E.tidy(() => { model.forwardLoss(ids, ids); saved = E.memoryInfo().bytes - before; });
    // The fused loss also allocates the head's weight gradient in its forward pass (counted as gradients).
    const headGrad = 64 * d * 4;
    const shape = modelShape(config);
    const predicted = 3 * blockActivations(shape.stacks[0]!.block, B * S, B, S) + HEAD_ACT_PER_TOKEN * B * S * d * 4;
    const measured = saved - headGrad;
    assert.ok(Math.abs(predicted - measured) / measured < 0.05, `d ${d}: predicted ${predicted} vs measured ${measured}`);
    ids.dispose();
    model.dispose();
  }
});

test('training.recompute: the plan keeps one input per block (the engine agrees within 5 %) plus one block recomputed, and adds a forward of the blocks to backward', () => {
  const [d, H, ff, B, S] = [64, 4, 176, 2, 32] as const;
  const keptAfterForward = (layers: number): number => {
    const config = llamaConfig({ vocabSize: 64, dModel: d, nLayers: layers, nHeads: H, dFF: ff, stacks: layers, maxPositions: S });
    const model = Model.fromConfig(config, { seed: 1 });
    model.rack.recompute = true;
    const ids = E.randInt([B, S], 64, { seed: 2 });
    const before = E.memoryInfo().bytes;
    let saved = 0;
    E.tidy(() => { model.forwardLoss(ids, ids); saved = E.memoryInfo().bytes - before; });
    ids.dispose();
    model.dispose();
    return saved;
  };
  // Two more blocks keep two more [B, S, d] tensors and nothing else.
  const perBlock = (keptAfterForward(3) - keptAfterForward(1)) / 2;
  assert.ok(Math.abs(perBlock - 4 * B * S * d) / (4 * B * S * d) < 0.05, `a recomputed block keeps ${perBlock} bytes, expected ${4 * B * S * d}`);
  const config = llamaConfig({ vocabSize: 64, dModel: d, nLayers: 3, nHeads: H, dFF: ff, stacks: 3, maxPositions: S });

  const cfg = (recompute: boolean) => parseConfig({
    model: { preset: 'llama', d_model: d, n_heads: H, d_ff: ff, n_stacks: 3, blocks_per_stack: 1, tie_embeddings: false },
    data: { corpus: { kind: 'synthetic', vocab_size: 64, tokens: 3000 }, seq_len: S, batch_size: B, eval_batches: 1 },
    optimizer: { lr: 1e-3 }, training: { total_steps: 4, recompute },
  });
  const on = planRun(cfg(true)).phases[0]!, off = planRun(cfg(false)).phases[0]!;
  const block = blockActivations(modelShape(config).stacks[0]!.block, B * S, B, S);
  assert.equal(on.bytes.activations, off.bytes.activations - 3 * block + 3 * 4 * B * S * d + block);
  assert.equal(on.flopsPerToken.forward, off.flopsPerToken.forward);
  const blocksFwd = off.flopsPerToken.forward - 2 * d * 64;
  assert.ok(Math.abs(on.flopsPerToken.backward - (off.flopsPerToken.backward + blocksFwd)) < 1e-6 * on.flopsPerToken.backward);
  assert.equal(on.recompute, true);
});

test('activation cache: rows kept from phase to phase while the trunk grows, up to the memory budget, the rest on disk', () => {
  const budgetMb = 0.01; // about 10 rows: phase three spills
  const plan = planRun(parseConfig(progressive({ freeze: 'frozen_trunk', activation_cache: { memory_budget_mb: budgetMb } })));
  const [one, two, three] = plan.phases;
  const rowBytes = 32 * 4 * (data() as { seq_len: number }).seq_len;
  assert.deepEqual([one!.cachedPrefixStacks, one!.cachedRows], [0, 0], 'nothing frozen in phase one');
  assert.ok(two!.cachedRows > 0);
  assert.equal(three!.cachedRows, two!.cachedRows + three!.steps * three!.microBatch * three!.accumulation, "phase three keeps phase two's rows");
  for (const p of [two!, three!]) {
    assert.equal(p.bytes.cacheMemory, Math.min(p.cachedRows * rowBytes, budgetMb * 2 ** 20), p.name);
    assert.equal(p.bytes.cacheMemory + p.bytes.cacheDisk, p.cachedRows * rowBytes, p.name);
  }
});
