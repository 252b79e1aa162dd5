import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import * as E from '../../src/engine/index.js';
import { IncompatibleSpecsError, buildDataLoader, syntheticTokenData } from '../../src/framework/index.js';
import { CheckpointError, listCheckpoints, readEventFile, readJsonl } from '../../src/io/index.js';
import { llama } from '../../src/nn/index.js';
import { SGD } from '../../src/optim/index.js';
import { ConfigError, TrainingDivergedError, TrainingMachine, progressBar, type EvalMetrics, type StepMetrics } from '../../src/training/index.js';
import { growHook, tinyConfig } from './machine-helpers.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sw-machine-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('train(): phases, growth through a hook, per-phase and final metrics, files in the run folder', () => {
  const run = join(tempDir(), 'run');
  const hook = growHook();
  const steps: StepMetrics[] = [];
  const events: string[] = [];
  const m = new TrainingMachine(tinyConfig(run, { training: { eval_every: 4 } }), {
    hooks: [hook],
    callbacks: [{
      onStep: (s) => steps.push(s),
      onPhaseStart: (p) => events.push(`start ${p.name}`),
      onPhaseEnd: (p, r) => events.push(`end ${p.name} ${r.steps}`),
      onEval: (e: EvalMetrics) => events.push(`eval ${e.step} ${e.reason}`),
      onCheckpoint: (c) => events.push(`ckpt ${c.step} ${c.reason}`),
    }],
  });
  const trunkParam = m.model.model.rack.stacks.at(0).parameters()[0]!;
  const result = m.train();
  assert.deepEqual(events, ['start base', 'eval 4 periodic', 'eval 6 phase_end', 'end base 6', 'start grow', 'eval 8 periodic', 'eval 12 phase_end', 'end grow 6', 'ckpt 12 final']);
  assert.deepEqual(hook.calls, ['base', 'grow']);
  assert.equal(result.steps_run, 12);
  assert.equal(result.losses.length, 12);
  assert.deepEqual(result.phase_transitions, [6]);
  assert.equal(result.tokens_seen, 12 * 4 * 8);
  assert.ok(result.flops > 0 && result.wall_time_s > 0);
  assert.deepEqual(result.phases.map((p) => [p.name, p.first_step, p.end_step, p.steps]), [['base', 0, 6, 6], ['grow', 6, 12, 6]]);
  assert.ok(result.phases.every((p) => p.eval && Number.isFinite(p.eval.perplexity) && Math.abs(p.eval.perplexity - Math.exp(p.eval.nll)) < 1e-9));
  assert.equal(result.final_eval, result.phases[1]!.eval);
  assert.ok(result.phases[1]!.flops > result.phases[0]!.flops * 0.9, 'a third stack costs FLOPs');
  assert.ok(Math.abs(result.phases[0]!.mean_loss - result.losses.slice(0, 6).reduce((a, b) => a + b) / 6) < 1e-12);
  // Metrics per step.
  assert.deepEqual(steps.map((s) => s.step), [...Array(12).keys()]);
  assert.deepEqual(steps.map((s) => s.t), [...Array(12).keys()].map((k) => k / 12));
  assert.ok(steps.every((s) => Number.isFinite(s.loss) && s.grad_norm > 0 && s.tokens_per_s > 0));
  assert.equal(steps[0]!.lr, 3e-3 * (0 + 0)); // warm-up from 0 at t = 0
  assert.equal(steps[6]!.lr, 0, "phase 'grow' re-warms from 0 (lr_time: phase)");
  assert.ok(steps[7]!.lrs['new_stack']! > 0 && Math.abs(steps[7]!.lrs['new_stack']! - 2 * steps[7]!.lr) < 1e-15);
  // Growth: a new stack trains in 'new_stack'; stack 0 is frozen and left the optimizer; stack 1 is trunk.
  assert.equal(m.model.model.rack.numStacks, 3);
  assert.deepEqual([...m.model.newStacks()], [2]);
  const groups = Object.fromEntries(m.optimizer.groups.map((g) => [g.name, g.paramNames]));
  assert.ok(groups['new_stack']!.every((n) => n.startsWith('rack.stacks.2.')));
  assert.ok(groups['trunk']!.every((n) => n.startsWith('rack.stacks.1.')));
  assert.ok(!m.optimizer.optimizer.params().includes(trunkParam));
  // One stack frozen, one of the same size added: as many trainable parameters as before, fewer than in all.
  assert.equal(steps[6]!.trainable_params, m.model.numParameters(true));
  assert.equal(steps[6]!.trainable_params, steps[5]!.trainable_params);
  assert.ok(m.model.numParameters(true) < m.model.numParameters());
  // Optimizer state of the embedding was carried over the phase change: 12 updates.
  const nameOf = m.model.nameOf();
  const state = m.optimizer.optimizer.namedState((p) => nameOf.get(p)!);
  assert.equal(state.scalars['embedding.token.weight']!['step'], 12);
  assert.equal(state.scalars['rack.stacks.2.blocks.0.attn.q.weight']!['step'], 6);
  // Files: marker, resolved configs, JSONL with every step, TensorBoard events, final checkpoint.
  assert.ok(existsSync(join(run, '.stackwise-run')));
  assert.deepEqual(readdirSync(join(run, 'phases')).sort(), ['00-base.yaml', '01-grow.yaml']);
  const records = readJsonl(join(run, 'metrics.jsonl'));
  const stepRecords = records.filter((r) => r['type'] === 'step');
  assert.equal(stepRecords.length, 12);
  for (const key of ['loss', 'lr', 't', 'phase', 'tokens_per_s', 'grad_norm', 'trainable_params']) assert.ok(key in stepRecords[0]!, key);
  assert.equal(records.filter((r) => r['type'] === 'eval').length, 4);
  const tbDir = join(run, 'tb');
  const events2 = readEventFile(join(tbDir, readdirSync(tbDir)[0]!));
  const losses = events2.flatMap((e) => (e.scalars ?? []).filter((s) => s.tag === 'train/loss').map((s) => [e.step, s.value]));
  assert.equal(losses.length, 12);
  // TensorBoard's step s is metrics.jsonl's step s.
  assert.deepEqual(losses.map(([step]) => step), stepRecords.map((r) => r['step']));
  assert.deepEqual(losses[3], [stepRecords[3]!['step'], Math.fround(result.losses[3]!)]);
  assert.deepEqual(listCheckpoints(run).map((c) => c.step), [12]);
  m.dispose();
});

test('learning happens: validation perplexity falls on the synthetic chain', () => {
  const cfg = tinyConfig(undefined, { training: { total_steps: 40 } }) as Record<string, any>;
  delete cfg.schedule;
  cfg.optimizer = { lr: 1e-2, clip_norm: 1 };
  const m = new TrainingMachine(cfg);
  const before = m.evaluate()!;
  const r = m.train();
  assert.ok(r.final_eval!.loss < before.loss - 0.3, `validation loss ${before.loss} → ${r.final_eval!.loss}`);
  assert.equal(r.phases.length, 1);
  assert.equal(r.phases[0]!.name, 'single_phase');
});

test('a phase can reset optimizer state; accumulation multiplies tokens; SGD works', () => {
  const cfg = tinyConfig(undefined, { optimizer: { accumulation_steps: 2 } }) as Record<string, any>;
  cfg.schedule[1].overrides.optimizer.reset_state = true;
  const m = new TrainingMachine(cfg, { hooks: [growHook()] });
  const r = m.train();
  assert.equal(r.tokens_seen, 12 * 2 * 4 * 8);
  const nameOf = m.model.nameOf();
  assert.equal(m.optimizer.optimizer.namedState((p) => nameOf.get(p)!).scalars['embedding.token.weight']!['step'], 6, 'state restarted at the phase change');
  const sgd = tinyConfig(undefined, { optimizer: { type: 'sgd', momentum: 0.9, nesterov: true } });
  const r2 = new TrainingMachine(sgd, { hooks: [growHook()] }).train();
  assert.ok(r2.losses.every(Number.isFinite));
});

test('a NaN loss stops training with a clear error; the last good checkpoint is kept', () => {
  const run = join(tempDir(), 'run');
  const m = new TrainingMachine(tinyConfig(run, { training: { checkpoint_every: 2 } }), {
    hooks: [growHook()],
    callbacks: [{ onStep: (s, machine) => { if (s.step === 2) { const w = machine.model.model.embedding.token.weight; E.noGrad(() => w.backend.upload(w.storage, new Float32Array(w.size).fill(NaN))); } } }],
  });
  assert.throws(() => m.train(), (e: unknown) => {
    assert.ok(e instanceof TrainingDivergedError, String(e));
    assert.match(e.message, /training diverged at step 3 \(t = 0\.25, phase 'base'\): the loss is NaN \(micro-batch 0\); the update was not applied/);
    assert.match(e.message, /last good checkpoint is .*step-00000002/);
    assert.equal(e.step, 3);
    return true;
  });
  assert.deepEqual(listCheckpoints(run).map((c) => c.step), [2]);
  assert.throws(() => m.trainStep(), TrainingDivergedError);
  assert.throws(() => m.saveCheckpoint(), /refusing to checkpoint at step 3: parameter 'embedding\.token\.weight' holds NaN or Inf/);
  assert.deepEqual(listCheckpoints(run).map((c) => c.step), [2]);
  assert.equal(readJsonl(join(run, 'metrics.jsonl')).at(-1)!['type'], 'diverged');
});

test('a config whose phases raise n_stacks grows under the machine as under `stackwise train` (copy_top); clear errors: nothing trainable, incompatible specs, bad run folders', () => {
  const grown = new TrainingMachine(tinyConfig());
  let top: Float32Array | undefined;
  grown.addCallback({ onPhaseStart: (p, m) => {
    if (p.name !== 'grow') return;
    const blocks = m.model.model.rack.allBlocks();
    assert.equal(blocks.length, 3);
    // copy_top: the new block starts as a copy of the block below it.
    assert.deepEqual(blocks[2]!.ffn.down.weight.toArray(), blocks[1]!.ffn.down.weight.toArray());
    top = Float32Array.from(blocks[2]!.ffn.down.weight.toArray());
  } });
  grown.train();
  assert.ok(top, 'the phase grew');
  assert.equal(grown.model.model.rack.numStacks, 3);
  assert.equal(grown.modelPlane?.name, 'progressive');
  grown.dispose();
  const frozen = new TrainingMachine(tinyConfig(), { hooks: [{ onPhaseStart: (_p, machine) => { machine.model.model.freeze(); } }] });
  assert.throws(() => frozen.trainStep(), /phase 'base': the model has no trainable parameter/);
  const causalMlm = tinyConfig() as Record<string, any>;
  causalMlm.model.attention = 'causal';
  causalMlm.schedule[1].task = 'mlm';
  const mlm = new TrainingMachine(causalMlm, { hooks: [growHook()], objectives: { mlm: () => ({ name: 'mlm', prepare: (b) => ({ inputIds: b.ids, targets: b.ids }) }) } });
  for (let i = 0; i < 6; i++) mlm.trainStep();
  assert.throws(() => mlm.trainStep(), (e: unknown) => e instanceof IncompatibleSpecsError && /phase 'grow' \(starting at step 6, t = 0\.5\).*rack\.stacks\[0\]\.attention: expected 'bidirectional' for objective 'mlm'/s.test(e.message));

  const dir = tempDir();
  const foreign = join(dir, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'notes.txt'), 'keep me');
  assert.throws(() => new TrainingMachine(tinyConfig(foreign)), (e: unknown) => e instanceof CheckpointError && e.problem === 'not-ours');
  assert.deepEqual(readdirSync(foreign), ['notes.txt']);
  const run = join(dir, 'run');
  new TrainingMachine(tinyConfig(run, { training: { total_steps: 4 } }), { hooks: [growHook()] }).train();
  assert.throws(() => new TrainingMachine(tinyConfig(run, { training: { total_steps: 4 } }), { hooks: [growHook()] }).train(), /already holds checkpoints; resume it/);
  assert.throws(() => new TrainingMachine({ ...tinyConfig(), trainin: {} }), (e: unknown) => e instanceof ConfigError && /did you mean 'training'/.test(e.message));
});

test('code first: a built model, token data and an optimizer object, no model/data sections', () => {
  const model = llama({ vocabSize: 32, dModel: 16, nLayers: 2, nHeads: 2, stacks: 2, seed: 3 });
  const data = syntheticTokenData({ vocab_size: 32, tokens: 1000, seed: 1 });
  const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const m = new TrainingMachine({ training: { progress: 'off' } }, 5, { model, data, optimizer, dataPlane: { seq_len: 8, batch_size: 2, objective: 'clm' } });
  const r = m.train();
  assert.equal(r.steps_run, 5);
  assert.equal(m.model.model, model, 'the given model is trained in place');
  assert.equal(m.optimizer.optimizer, optimizer);
  assert.throws(() => new TrainingMachine({ training: { progress: 'off' } }, 5, { model, data }), /token data needs a data plane/);
  assert.throws(() => new TrainingMachine({ training: {} }, 5, { data, dataPlane: { seq_len: 8, batch_size: 2, objective: 'clm' } }), /no 'model' section/);
});

test('memory: a step frees all its intermediates (engine buffers stay flat)', () => {
  const cfg = tinyConfig() as Record<string, any>;
  delete cfg.schedule;
  cfg.training.total_steps = 12;
  const m = new TrainingMachine(cfg);
  for (let i = 0; i < 3; i++) m.trainStep();
  const before = E.memoryInfo().buffers;
  for (let i = 0; i < 6; i++) m.trainStep();
  m.evaluate();
  assert.equal(E.memoryInfo().buffers, before);
});

test('progress bar draws to a terminal-like stream', () => {
  const out: string[] = [];
  const stream = { write: (s: string) => { out.push(s); return true; }, columns: 200 } as unknown as NodeJS.WriteStream;
  const m = new TrainingMachine(tinyConfig(), { hooks: [growHook()], callbacks: [progressBar(12, stream)] });
  m.train();
  const last = out.filter((s) => s.startsWith('\r')).at(-1)!;
  assert.match(last, /\[#{24}\] 12\/12 t=0\.917 grow loss \d\.\d{4} val \d\.\d{4} .* tok\/s ETA 0:00/);
  assert.equal(out.at(-1), '\n');
});

test('a text corpus with a BPE tokenizer trained and cached in the run folder', () => {
  const dir = tempDir();
  const text = join(dir, 'corpus.txt');
  writeFileSync(text, Array.from({ length: 200 }, (_, i) => `the cat ${i % 7} sat on the mat and the dog ran ${i % 5} times.`).join('\n'));
  const cfg = {
    model: { preset: 'gpt2', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1 },
    data: { corpus: { kind: 'files', paths: [text] }, tokenizer: { kind: 'bpe', vocab_size: 300 }, seq_len: 8, batch_size: 2, split: { val: 0, test: 0 } },
    training: { total_steps: 2, progress: 'off', run_dir: join(dir, 'run') },
  };
  const m = new TrainingMachine(cfg);
  const spec = m.data.getBatchSpec();
  assert.ok(spec.vocab_size <= 300 && spec.vocab_size > 262);
  assert.equal(spec.pad_token_id, 256);
  assert.equal(spec.mask_token_id, 257);
  const r = m.train();
  assert.equal(r.final_eval, undefined, 'no validation documents: no evaluation');
  assert.ok(existsSync(join(dir, 'run', 'stackwise-tokenizer.json')));
  assert.equal(readdirSync(join(dir, 'run', 'tokens')).length, 1);
  assert.throws(() => new TrainingMachine({ ...cfg, data: { ...cfg.data, tokenizer: 'none' } }), /tokenizer 'none' only works with a synthetic corpus/);
});

test('the masking objectives registered from training/objectives run through the machine (BERT, MLM)', () => {
  const cfg = {
    model: { preset: 'bert', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1 },
    data: { corpus: { kind: 'synthetic', vocab_size: 64, tokens: 2000 }, seq_len: 8, batch_size: 4, objective: 'mlm' },
    training: { total_steps: 3, progress: 'off' },
  };
  const m = new TrainingMachine(cfg);
  assert.equal(m.data.getBatchSpec().objective, 'mlm');
  assert.equal(m.model.getRackSpec().stacks[0]!.attention, 'bidirectional');
  const batch = m.data.trainBatch(0, 0, 0);
  assert.ok(batch.inputIds.some((id) => id === 63), 'inputs are corrupted with [MASK]');
  assert.ok(batch.scored > 0 && batch.scored < batch.tokens);
  const r = m.train();
  assert.ok(r.losses.every(Number.isFinite));
});

test('a built optimizer keeps its settings across phases when the config has no optimizer section', () => {
  const cfg = tinyConfig() as Record<string, any>;
  delete cfg.optimizer;
  cfg.schedule[1].overrides = { model: { n_stacks: 3 } };
  const model = llama({ vocabSize: 64, dModel: 16, nLayers: 2, nHeads: 2, stacks: 2, seed: 1 });
  delete cfg.model;
  cfg.schedule[1].overrides = {};
  const optimizer = new SGD(model.parameters(), { lr: 0.05 });
  const lrs: number[] = [];
  new TrainingMachine(cfg, { model, optimizer, callbacks: [{ onStep: (s) => lrs.push(s.lr) }] }).train();
  assert.ok(lrs.every((lr) => lr === 0.05));
});

test('onStepStart hooks may freeze parameters within a phase: they leave the optimizer at once', () => {
  const cfg = tinyConfig() as Record<string, any>;
  delete cfg.schedule;
  cfg.training.total_steps = 6;
  let frozenAt: number[] | undefined;
  const m = new TrainingMachine(cfg, {
    hooks: [{ onStepStart: (machine, ctx) => { if (ctx.step === 3) machine.model.model.head.freeze(); } }],
    callbacks: [{ onStep: (s, machine) => { if (s.step === 3) frozenAt = [...machine.model.model.head.parameters()[0]!.toArray()]; } }],
  });
  const head = m.model.model.head.parameters()[0]!;
  m.train();
  assert.deepEqual([...head.toArray()], frozenAt);
  assert.ok(!m.optimizer.optimizer.params().includes(head));
});

test('a custom batch source (with a cursor) drives the machine and its state is checkpointed', () => {
  const run = join(tempDir(), 'run');
  const data = syntheticTokenData({ vocab_size: 64, tokens: 2000 });
  const makeSource = () => {
    const inner = buildDataLoader(data, { plane: { seq_len: 8, batch_size: 2, objective: 'clm' } });
    let drawn = 0;
    return {
      getBatchSpec: () => inner.getBatchSpec(),
      trainBatch: (step: number, micro: number, t: number) => { drawn++; return inner.trainBatch(step, micro, t); },
      saveState: () => ({ drawn }),
      loadState: (s: unknown) => { drawn = (s as { drawn: number }).drawn; },
      get drawn() { return drawn; },
    };
  };
  const cfg = tinyConfig(run, { training: { total_steps: 4 } }) as Record<string, any>;
  delete cfg.schedule;
  delete cfg.data;
  const src = makeSource();
  const m = new TrainingMachine(cfg, { data: src });
  m.trainStep(); m.trainStep();
  m.saveCheckpoint();
  const src2 = makeSource();
  const r = new TrainingMachine(cfg, { data: src2, resume: true }).train();
  assert.equal(r.steps_run, 2);
  assert.equal(src2.drawn, 4, 'the cursor was restored, then two more batches drawn');
  assert.equal(r.final_eval, undefined, 'no evalBatches: no evaluation');
  const bad = { ...makeSource(), trainBatch: () => ({ ...data.train, batch: 2, seqLen: 5, inputIds: new Int32Array(10), targets: new Int32Array(10), sampleIds: [0, 1], tokens: 10, scored: 10 }) };
  assert.throws(() => new TrainingMachine(tinyConfig(undefined, {}) as never, { data: bad, hooks: [growHook()] }).trainStep(), /the data source gave a batch of 2 × 5 \(10 ids\), but its BatchSpec says 2 × 8/);
});
