// Resume across every recipe at tiny size, and a prepend run with stack and progressive LoRA on an
// NF4 trunk and a half-open ramp: k steps, a checkpoint mid-phase, then the run resumed in a fresh
// process ends with the straight run's losses and weights bit for bit. The
// resumed model is built from the checkpoint's manifest and the growth plane restored from its
// saved state (no phase is replayed).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { latestCheckpoint, readJsonl } from '../../src/io/index.js';
import { ProgressiveDataLoader, ProgressiveRackBuilder, ProgressiveTrainer, TrainingMachine, type ProgressiveTrainerOptions } from '../../src/training/index.js';
import { llama, quantizeTrunk } from '../../src/nn/index.js';
import { syntheticTokenData } from '../../src/framework/index.js';
import { weightsDigest } from './machine-helpers.js';
import { RECIPE_SETS, recipeConfig } from './recipe-sets.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'resume-recipe-child.js');
const dir = mkdtempSync(join(tmpdir(), 'sw-resume-recipes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Straight vs checkpoint at a step inside a phase (after the first growth) + resume in a fresh process. */
function resumesBitForBit(name: string): { k: number; run: string } {
  const straight = new TrainingMachine(recipeConfig(name, join(dir, `${name}-straight`)));
  const ref = straight.train();
  const digest = weightsDigest(straight);
  straight.dispose();

  const run = join(dir, `${name}-part`);
  const m = new TrainingMachine(recipeConfig(name, run));
  const total = m.controller.totalSteps;
  const boundaries = m.controller.boundarySteps(m.schedule);
  // Mid-phase: the first step past half the run that starts no phase (nor ends the run).
  const k = Array.from({ length: total }, (_, s) => s).find((s) => s > total / 2 && !boundaries.includes(s))!;
  for (let s = 0; s < k; s++) m.trainStep();
  m.saveCheckpoint();
  m.dispose();
  m.model.model.dispose();

  const out = join(dir, `${name}.json`);
  const child = spawnSync(process.execPath, [CHILD, name, run, out], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  const r = JSON.parse(readFileSync(out, 'utf8')) as { losses: number[]; resumed_from: number; digest: string };
  assert.equal(r.resumed_from, k);
  assert.deepEqual(r.losses, ref.losses.slice(k), `${name}: losses after resuming at step ${k}`);
  assert.equal(r.digest, digest, `${name}: final weights`);
  const steps = readJsonl(join(run, 'metrics.jsonl')).filter((x) => x['type'] === 'step');
  assert.deepEqual(steps.map((x) => x['step']), [...Array(total).keys()], `${name}: each step logged once`);
  return { k, run };
}

/** Drops what builder states hold since resume stopped replaying (a checkpoint written before). */
function asOldBuilderState(checkpoint: string): void {
  const path = join(checkpoint, 'checkpoint.json');
  const ck = JSON.parse(readFileSync(path, 'utf8')) as { state: { hooks: Record<string, Record<string, unknown>> } };
  const plane = ck.state.hooks['progressive']!;
  for (const k of ['freeze', 'trunkFormat', 'quantized', 'progressiveAdapters']) delete plane[k];
  writeFileSync(path, JSON.stringify(ck));
}

for (const name of Object.keys(RECIPE_SETS)) {
  test(`recipe ${name}: checkpoint mid-phase, resumed in a fresh process: bit for bit`, () => {
    const { run } = resumesBitForBit(name);
    if (name !== 'progressive-system.yaml') return;
    // A builder state written before states recorded which adapters are progressive: refused, saying why.
    asOldBuilderState(latestCheckpoint(run)!.path);
    assert.throws(() => new TrainingMachine(recipeConfig(name, run), { resume: true, log: () => {} }).prepare(), /does not say which adapters are progressive .* resume it with the StackWise version that wrote it/);
  });
}

test('a builder state without the fields added since (no progressive adapters): still resumes bit for bit', () => {
  const name = 'progressive-stacking.yaml';
  const straight = new TrainingMachine(recipeConfig(name, join(dir, 'old-straight')));
  const ref = straight.train();
  straight.dispose();
  const run = join(dir, 'old-part');
  const m = new TrainingMachine(recipeConfig(name, run));
  for (let s = 0; s < 7; s++) m.trainStep();
  const ck = m.saveCheckpoint();
  m.dispose();
  asOldBuilderState(ck.path);
  const r = new TrainingMachine(recipeConfig(name, run), { resume: true, log: () => {} }).train();
  assert.deepEqual(r.losses, ref.losses.slice(7));
});

test('prepend + stack and progressive LoRA + NF4 trunk + half-open ramp, resumed mid-phase: bit for bit, no growth replayed', () => {
  const { k, run } = resumesBitForBit('mixed');
  assert.equal(k, 7);
  // The growth (phase 'two', step 6) was logged once, by the run that did it; the resumed run
  // restored the builder over the checkpoint's model and logged no model event for it.
  const grows = readJsonl(join(run, 'metrics.jsonl')).filter((x) => x['kind'] === 'grow');
  assert.equal(grows.length, 1);
  assert.equal(grows[0]!['step'], 6);
  const manifest = JSON.parse(readFileSync(join(run, 'checkpoints', 'step-00000007', 'model.json'), 'utf8')) as { rack: { stacks: { id: number; storage: { format: string }; ramp: { gate: number } | null; adapters: unknown[] }[] } };
  const stacks = manifest.rack.stacks;
  assert.deepEqual(stacks.map((s) => [s.id, s.storage.format]), [[0, 'fp32'], [1, 'nf4']]);
  assert.ok(stacks[0]!.ramp && stacks[0]!.ramp.gate > 0 && stacks[0]!.ramp.gate < 1, 'the ramp was half open at the checkpoint');
  assert.ok(stacks.every((s) => s.adapters.length > 0), 'adapters on both stacks');
});

test('ProgressiveTrainer with a builder made in code (prepend, copy_top, progressive LoRA, NF4 trunk): interrupted, resumed bit for bit', () => {
  const tokens = syntheticTokenData({ vocab_size: 48, tokens: 3000, seed: 1 });
  const loader = () => new ProgressiveDataLoader(tokens, { seq_len: 8, batch_size: 4, objective: 'clm' }, { seed: 1 });
  const builder = () => new ProgressiveRackBuilder(llama({ vocabSize: 48, dModel: 16, nLayers: 1, nHeads: 2, dFF: 64, stacks: 1, seed: 2 }), {
    direction: 'prepend', targetStacks: 3, growth: { kind: 'copy_top' }, freeze: 'adapters_only_trunk', trunkWeightFormat: 'nf4',
    quantizeTrunk: (s, f) => { quantizeTrunk(s, f); }, progressiveLora: { rank: 2, alpha: 2, targets: ['q', 'v'] },
  });
  const opts = (run: string, extra: ProgressiveTrainerOptions = {}): ProgressiveTrainerOptions => ({ stepsPerPhase: 4, optimizer: { lr: 5e-3 }, training: { run_dir: run, checkpoint_every: 3 }, ...extra });
  const straight = new ProgressiveTrainer(opts(join(dir, 'code-straight'))).trainRack(builder(), loader());
  const run = join(dir, 'code-part');
  // Stopped during step 7 (the last checkpoint is at step 6, mid-phase, after one growth).
  assert.throws(() => new ProgressiveTrainer(opts(run, { callbacks: [{ onStep: (s) => { if (s.step === 7) throw new Error('stop'); } }] })).trainRack(builder(), loader()), /stop/);
  const resumed = new ProgressiveTrainer(opts(run, { resume: true })).trainRack(builder(), loader());
  assert.equal(resumed.result.resumed_from, 6);
  assert.deepEqual(resumed.result.losses, straight.result.losses.slice(6));
  assert.equal(resumed.plane.builder.history.length, 2);
  assert.deepEqual(resumed.plane.builder.trunkIndices.map((i) => resumed.plane.builder.isQuantized(i)), [true, true]);
});
