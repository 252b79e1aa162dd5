// Time-as-input end to end: model.time_embedding in the config, the batch ratios carried from the
// diffusion objective to the model, training, checkpoints and resume, the activation cache, the
// samplers and the Hugging Face export refusal.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../src/engine/index.js';
import {
  ConfigError, IncompatibleSpecsError, ModelAdapter, checkCompatibility, checkPreparedBatch, modelConfigFromPlane, planeSchemas,
  validateEmbeddingSpec, type BatchSource, type ModelPlaneConfig,
} from '../../src/framework/index.js';
import { llama, llamaConfig, Model } from '../../src/nn/index.js';
import { saveHF, HFConfigError } from '../../src/io/hf/index.js';
import {
  ActivationCache, CachedPrefixForward, CachedTraining, ProgressivePlane, TrainingMachine, depthUnrollSample, diffusionSample, fillMask, generate, preparedTargets,
} from '../../src/training/index.js';
import { weightsDigest } from './machine-helpers.js';

type Obj = Record<string, unknown>;

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sw-time-'));
  dirs.push(d);
  return d;
}
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A tiny diffusion run with a time embedding (mask ratios drawn per batch in [0.2, 0.9]). */
function timeConfig(extra: { model?: Obj; data?: Obj; training?: Obj; schedule?: Obj[] } = {}): Obj {
  return {
    model: { preset: 'llama', d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 1, blocks_per_stack: 1, time_embedding: { features: 8 }, ...extra.model },
    data: { corpus: { kind: 'synthetic', vocab_size: 32, tokens: 3000 }, seq_len: 8, batch_size: 8, eval_batches: 2, objective: 'diffusion', mask: { kind: 'uniform', min: 0.2, max: 0.9 }, ...extra.data },
    optimizer: { lr: 1e-2 },
    training: { total_steps: 30, progress: 'off', seed: 3, tensorboard: false, ...extra.training },
    ...(extra.schedule ? { schedule: extra.schedule } : {}),
  };
}

function timeParams(m: TrainingMachine): Map<string, number[]> {
  return new Map(m.model.namedParameters().filter(([n]) => n.startsWith('time.')).map(([n, t]) => [n, Array.from(t.toArray())]));
}

/** The training loss of one fixed batch (the fused head + loss, with the batch's ratios). */
function batchLoss(m: TrainingMachine, batch: ReturnType<BatchSource['trainBatch']>): number {
  return E.noGrad(() => E.tidy(() => {
    const backend = m.model.model.backend;
    const ids = E.tensor(batch.inputIds, [batch.batch, batch.seqLen], { dtype: 'int32', backend });
    return m.model.loss(ids, { seed: 0, step: 0, timeRatios: batch.ratios }, preparedTargets(batch, batch.batch, batch.seqLen, m.model.model.dtype, backend)).item();
  }));
}

function configError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('config: model.time_embedding (true or {features, hidden}) becomes the ModelConfig timeEmbedding; needs diffusion in every phase', () => {
  const schema = planeSchemas().model;
  const base = { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1 };
  const short = schema.parse({ ...base, time_embedding: true }) as ModelPlaneConfig;
  assert.deepEqual(modelConfigFromPlane(short, { vocabSize: 32 }).timeEmbedding, { features: 64, hidden: 16 });
  const full = schema.parse({ ...base, time_embedding: { features: 8, hidden: 24 } }) as ModelPlaneConfig;
  assert.deepEqual(modelConfigFromPlane(full, { vocabSize: 32 }).timeEmbedding, { features: 8, hidden: 24 });
  assert.equal(modelConfigFromPlane(schema.parse(base) as ModelPlaneConfig, { vocabSize: 32 }).timeEmbedding, undefined);

  configError(() => new TrainingMachine(timeConfig({ model: { time_embedding: { features: 7 } } })), /model\.time_embedding\.features/, /even/);
  configError(() => new TrainingMachine(timeConfig({ model: { time_embedding: { size: 8 } } })), /model\.time_embedding\.size/);
  configError(() => new TrainingMachine(timeConfig({ data: { objective: 'mlm', mask: undefined } })),
    /model\.time_embedding: expected objective 'diffusion' in every phase/, /found objective 'mlm' in phase 'single_phase'/);
  configError(() => new TrainingMachine(timeConfig({ data: { objective: 'clm', mask: undefined } })), /found objective 'clm'/);
  // A phase's task counts; a phase may not add or change the time embedding.
  configError(() => new TrainingMachine(timeConfig({ schedule: [{ name: 'a', start_t: 0, end_t: 0.5 }, { name: 'b', start_t: 0.5, end_t: 1, task: 'mlm' }] })),
    /found objective 'mlm' in phase 'b'/);
  configError(() => new TrainingMachine(timeConfig({ schedule: [{ name: 'a', start_t: 0, end_t: 0.5 }, { name: 'b', start_t: 0.5, end_t: 1, overrides: { model: { time_embedding: { features: 16 } } } }] })),
    /a phase cannot change model\.time_embedding/);
});

test('specs: the embedding spec says time_embedding; any objective but diffusion is incompatible (data given as objects)', () => {
  const spec = validateEmbeddingSpec({ vocab_size: 32, d_model: 16, positional: 'rope', time_embedding: true });
  assert.equal(spec.time_embedding, true);
  const model = new ModelAdapter(Model.fromConfig({ ...llamaConfig({ vocabSize: 32, dModel: 16, nLayers: 1, nHeads: 2 }), timeEmbedding: { features: 8, hidden: 16 } }));
  assert.equal(model.getEmbeddingSpec().time_embedding, true);
  assert.equal(new ModelAdapter(llama({ vocabSize: 32, dModel: 16, nLayers: 1, nHeads: 2 })).getEmbeddingSpec().time_embedding, undefined);
  const problems = checkCompatibility({
    batch: { batch_size: 2, seq_len: 8, vocab_size: 32, objective: 'mlm', mask_token_id: 31 },
    embedding: model.getEmbeddingSpec(), rack: { ...model.getRackSpec(), stacks: model.getRackSpec().stacks.map((s) => ({ ...s, attention: 'bidirectional' })) }, head: model.getHeadSpec(),
  });
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.match(problems[0]!.message, /batch\.objective: expected 'diffusion' \(model\.time_embedding needs a noise ratio per row\), found "mlm" \(embedding\.time_embedding = true; objective 'mlm' gives no noise ratio r to embed\)/);
  // The machine checks it at the phase start when the data come as objects (no data section to validate).
  const mlm = new TrainingMachine(timeConfig({ model: { time_embedding: undefined }, data: { objective: 'mlm', mask: undefined } }));
  const cfg = timeConfig();
  delete cfg['data'];
  const machine = new TrainingMachine(cfg, { data: mlm.data });
  assert.throws(() => machine.trainStep(), (e: unknown) => e instanceof IncompatibleSpecsError && /batch\.objective: expected 'diffusion'.*embedding\.time_embedding = true/.test((e as Error).message));
  machine.dispose();
  mlm.dispose();
  model.model.dispose();
});

test('data → model: diffusion batches carry their ratios; the adapter passes them to a time embedding only', () => {
  const m = new TrainingMachine(timeConfig());
  const batch = m.data.trainBatch(0, 0, 0);
  assert.equal(batch.ratios!.length, batch.batch);
  assert.ok(Array.from(batch.ratios!).every((r) => r >= 0.2 && r <= 0.9), `ratios ${Array.from(batch.ratios!)}`);
  assert.equal(m.data.evalBatches!(0, 0)[0]!.ratios!.length, m.data.evalBatches!(0, 0)[0]!.batch);
  const objBatch = { ids: new Int32Array(8), batch: 2, seqLen: 4, sampleIds: [0, 1] };
  assert.throws(() => checkPreparedBatch({ inputIds: new Int32Array(8), targets: new Int32Array(8), ratios: [0.5] }, objBatch, 'x'), /ratios must hold one noise ratio per row \(2\), found 1/);
  assert.throws(() => checkPreparedBatch({ inputIds: new Int32Array(8), targets: new Int32Array(8), ratios: [0.5, 2] }, objBatch, 'x'), /ratios\[1\] must be a noise ratio in \[0, 1\], found 2/);
  const ids = E.tensor(batch.inputIds, [batch.batch, batch.seqLen], { dtype: 'int32' });
  assert.throws(() => m.model.forward(ids, { seed: 0, step: 0 }), /needs timeRatios/);
  const logits = m.model.forward(ids, { seed: 0, step: 0, timeRatios: batch.ratios });
  assert.deepEqual(logits.shape, [batch.batch, batch.seqLen, 32]);
  // A model without a time embedding: the batch's ratios are not its input, the adapter leaves them out.
  const plain = new ModelAdapter(llama({ vocabSize: 32, dModel: 16, nLayers: 1, nHeads: 2 }));
  assert.deepEqual(plain.forward(ids, { seed: 0, step: 0, timeRatios: batch.ratios }).toArray(), plain.forward(ids, { seed: 0, step: 0 }).toArray());
  m.dispose();
});

test('training: the time embedding is trained (its parameters change, the loss falls); checkpoint + resume is bit for bit', () => {
  const m = new TrainingMachine(timeConfig());
  const fixed = m.data.trainBatch(1000, 0, 0);
  const before = timeParams(m);
  const lossBefore = batchLoss(m, fixed);
  assert.deepEqual([...before.keys()].sort(), ['time.out.bias', 'time.out.weight', 'time.proj.bias', 'time.proj.weight']);
  assert.ok(m.optimizer.optimizer.params().includes(m.model.model.getParameter('time.proj.weight')), 'the optimizer holds the time embedding');
  m.train();
  const afterTrain = timeParams(m);
  for (const [n, v] of before) assert.ok(v.some((x, i) => x !== afterTrain.get(n)![i]), `${n} changed`);
  const lossAfter = batchLoss(m, fixed);
  assert.ok(lossAfter < lossBefore, `loss of a fixed batch fell: ${lossBefore} → ${lossAfter}`);
  m.dispose();

  const extra = { training: { total_steps: 10, checkpoint_every: 4, eval_every: 3 } };
  const straightRun = join(tempDir(), 'straight');
  const straight = new TrainingMachine(timeConfig(extra), { runDir: straightRun });
  const ref = straight.train();
  const digest = weightsDigest(straight);
  straight.dispose();
  const run = join(tempDir(), 'k');
  const first = new TrainingMachine(timeConfig(extra), { runDir: run });
  const firstLosses = Array.from({ length: 5 }, () => first.trainStep().loss);
  const ck = first.saveCheckpoint();
  first.dispose();
  assert.deepEqual(firstLosses, ref.losses.slice(0, 5));
  const second = new TrainingMachine(timeConfig(extra), { runDir: run, resume: ck.path });
  const r = second.train();
  assert.deepEqual(r.losses, ref.losses.slice(5), 'losses after resuming');
  assert.equal(weightsDigest(second), digest, 'weights (time embedding included) after resuming');
  assert.equal(r.final_eval!.loss, ref.final_eval!.loss);
  second.dispose();
});

test('activation cache: a model with a time embedding is never served from the cache (prefix 0)', () => {
  const model = Model.fromConfig({ ...llamaConfig({ vocabSize: 32, dModel: 16, nLayers: 2, nHeads: 2, stacks: 2 }), timeEmbedding: { features: 8, hidden: 16 } }, { seed: 1 });
  model.timeEmbedding!.out.weight.backend.upload(model.timeEmbedding!.out.weight.storage, Float32Array.from({ length: 16 * 16 }, (_, i) => Math.sin(i)));
  model.freeze();
  model.rack.stacks.at(1).unfreeze();
  const cache = new ActivationCache({ memoryBudgetBytes: 1 << 20 });
  const cached = new CachedPrefixForward(model, { cache });
  assert.equal(cached.prefixStacks(), 0, 'embedding and stack 0 frozen, yet nothing is cached');
  const ids = E.randInt([2, 8], 32, { seed: 2 });
  const ratios = [0.3, 0.8];
  const out = cached.forwardHidden(ids, [0, 8], { timeRatios: ratios });
  assert.deepEqual([out.prefixStacks, out.computedRows, out.reusedRows], [0, 2, 0]);
  assert.deepEqual(out.hidden.toArray(), model.forwardHidden(ids, { timeRatios: ratios }).toArray());
  assert.equal(cache.stats.entries, 0);
  assert.throws(() => cached.forwardHidden(ids, [0, 8]), /needs timeRatios/);
  assert.throws(() => new CachedPrefixForward(model, { cache, prefixStacks: 1 }).prefixStacks(), /cannot be cached for a model with a time embedding/);
  // Installed on an adapter: the loss goes through the override with the ratios.
  const adapter = new ModelAdapter(model);
  const training = new CachedTraining(model, { memory_budget_mb: 1, check_content: false });
  training.install(adapter);
  const targets = { targets: ids, weights: null, reduction: 'mean' as const, ignoreIndex: -100 };
  const viaCache = adapter.loss(ids, { seed: 0, step: 0, sampleIds: [0, 8], timeRatios: ratios }, targets).item();
  assert.equal(viaCache, model.forwardLoss(ids, ids, { shift: false, timeRatios: ratios }).item());
  assert.equal(training.info().prefixStacks, 0);
  training.dispose();
  cache.dispose();
  model.dispose();
});

test('progressive run with a time embedding: it freezes with the embedding (frozen_trunk), nothing is cached', () => {
  const cfg = timeConfig({
    model: { progressive: { freeze: 'frozen_trunk', target_stacks: 2, activation_cache: { memory_budget_mb: 1 } } },
    data: { windows: 'aligned' },
    training: { total_steps: 8 },
    schedule: [{ name: 'one', start_t: 0, end_t: 0.5 }, { name: 'two', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 2 } } }],
  });
  const m = new TrainingMachine(cfg);
  const plane = ProgressivePlane.attach(m);
  let atGrowth: Map<string, number[]> | undefined;
  const prefix: number[] = [];
  m.addCallback({ onPhaseStart: (phase) => { if (phase.name === 'two') atGrowth = timeParams(m); }, onStep: (s) => { prefix[s.phase_index] = plane.activationCache()!.prefixStacks; } });
  m.train();
  assert.deepEqual(prefix, [0, 0], 'no prefix served from the cache');
  assert.ok(atGrowth!.get('time.out.weight')!.some((v) => v !== 0), 'the time embedding trained in phase one');
  assert.deepEqual(timeParams(m), atGrowth, 'frozen with the embedding in phase two');
  m.dispose();
});

test('sampling: the masked share is the noise ratio (diffusion, MLM fill, depth unroll); CLM generation and HF export refuse', () => {
  const model = Model.fromConfig({ ...llamaConfig({ vocabSize: 20, dModel: 16, nLayers: 2, nHeads: 2, stacks: 2 }), timeEmbedding: { features: 8, hidden: 16 } }, { seed: 4 });
  model.setAttentionMode('bidirectional');
  const time = model.timeEmbedding!;
  const seen: number[][] = [];
  const forward = time.forward.bind(time);
  time.forward = (ratios) => { seen.push(Array.from(ratios)); return forward(ratios); };
  const mask = 19;
  const r = diffusionSample(model, { maskTokenId: mask, prompt: [1, 2], length: 10, steps: 4 });
  assert.ok(!r.ids.includes(mask));
  assert.deepEqual(seen, [[0.8], [0.6], [0.4], [0.2]], 'masked share before each of the 4 steps (8 of 10 masked at first)');
  seen.length = 0;
  fillMask(model, [1, mask, 3, mask], { maskTokenId: mask, mode: 'iterative' });
  assert.deepEqual(seen, [[0.5], [0.25]]);
  seen.length = 0;
  const d = depthUnrollSample(model, { maskTokenId: mask, length: 10, schedule: [1, 0.5] });
  assert.ok(!d.ids.includes(mask));
  // Embedded once at the start (all masked), then moved to the share left after stack 1 (h += T(0.5) − T(1)).
  assert.deepEqual(seen, [[1], [0.5], [1]]);
  assert.throws(() => generate(model, [[1, 2]], { maxNewTokens: 2 }), /time embedding .*causal generation has no noise ratio/);
  assert.throws(() => saveHF(model, join(tempDir(), 'hf')), (e: unknown) => e instanceof HFConfigError && /time embedding \(time-as-input, model\.time_embedding\) has no Hugging Face llama equivalent/.test((e as Error).message));
  model.dispose();
});
