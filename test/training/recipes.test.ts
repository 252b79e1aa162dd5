// Runs every recipe in recipes/ at tiny size (--set-style overrides of the YAML file).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonl } from '../../src/io/index.js';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import type { Model } from '../../src/nn/index.js';
import { loadPretrained } from '../../src/io/hf/index.js';
import { exportModel } from '../../src/training/run/index.js';
import { ProgressivePlane, TrainingMachine, loadConfig, parameterEntries, type MachineView, type TrainResult } from '../../src/training/index.js';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled to dist/test/training: the recipes stay at the repository root.
const RECIPES = [resolve(here, '../../../recipes'), resolve(here, '../../recipes')].find((p) => existsSync(p))!;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sw-recipes-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const TINY_DATA = [
  'data.corpus={kind: synthetic, vocab_size: 48, tokens: 4000, branching: 1}',
  'data.tokenizer=none',
  'data.batch_size=4',
  'data.seq_len=16',
  'data.eval_batches=1',
];
const TINY_TRAINING = ['training.eval_every=0', 'training.checkpoint_every=0', 'training.progress=off', 'training.tensorboard=false', 'optimizer.lr=0.01'];

interface Run {
  machine: TrainingMachine;
  plane: ProgressivePlane | undefined;
  result: TrainResult;
  records: Record<string, unknown>[];
  snapshots: Map<string, Float32Array[]>;
}

const copy = (ts: Tensor[]) => ts.map((t) => Float32Array.from(t.toArray()));

/** Loads a recipe with the overrides, runs it; `watch` snapshots tensors at phase start/end. */
function runRecipe(file: string, set: string[], watch?: { phase: number; tensors: (m: MachineView) => Tensor[] }, setup?: (m: TrainingMachine) => void, opts: { text?: boolean } = {}): Run {
  const runDir = join(tempDir(), file);
  // The recipes that start from a pretrained model keep their text corpus (the model's tokenizer reads it).
  const parsed = loadConfig(join(RECIPES, file), { set: [...(opts.text ? [] : [...TINY_DATA, ...TINY_TRAINING]), `training.run_dir=${runDir}`, ...set] });
  const machine = new TrainingMachine(parsed);
  const usesPlane = parsed.phases.some((p) => (p.model as Record<string, unknown> | undefined)?.['progressive'] !== undefined);
  const plane = usesPlane ? ProgressivePlane.attach(machine) : undefined;
  const snapshots = new Map<string, Float32Array[]>();
  setup?.(machine);
  if (watch) {
    machine.addCallback({
      onPhaseStart: (_p, m, ctx) => { if (ctx.index === watch.phase) snapshots.set('start', copy(watch.tensors(m))); },
      onPhaseEnd: (_p, _r, m) => { if (m.phaseIndex === watch.phase) snapshots.set('end', copy(watch.tensors(m))); },
    });
  }
  const result = machine.train();
  if (watch) assert.ok(snapshots.get('start')?.length && snapshots.get('end')?.length, 'snapshots taken');
  const records = readJsonl(join(runDir, 'metrics.jsonl'));
  machine.dispose();
  return { machine, plane, result, records, snapshots };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
function assertLossFalls(losses: number[], what: string): void {
  const head = mean(losses.slice(0, 3));
  const tail = mean(losses.slice(-3));
  assert.ok(tail < head, `${what}: loss fell (${head.toFixed(4)} → ${tail.toFixed(4)})`);
}

const baseWeights = (m: MachineView, stack: number) =>
  parameterEntries(m.model.model.rack.stacks.at(stack)).filter(([n]) => !/lora_[AB]$/.test(n)).map(([, t]) => t);

/** Per phase, the stacks whose base weights (and, separately, adapters) changed during it. */
function changedStacks(m: TrainingMachine): { base: number[][]; adapters: number[][] } {
  const base: number[][] = [];
  const adapters: number[][] = [];
  let start = new Map<Tensor, Float32Array>();
  const all = () => m.model.model.rack.stacks.toArray().flatMap((s, i) => parameterEntries(s).map(([n, t]) => ({ i, lora: /lora_[AB]$/.test(n), t })));
  m.addCallback({
    onPhaseStart: () => { start = new Map(all().map(({ t }) => [t, Float32Array.from(t.toArray())])); },
    onPhaseEnd: () => {
      const b = new Set<number>(), a = new Set<number>();
      for (const { i, lora, t } of all()) {
        const old = start.get(t);
        if (old && t.toArray().some((v, k) => v !== old[k])) (lora ? a : b).add(i);
      }
      base.push([...b].sort()); adapters.push([...a].sort());
    },
  });
  return { base, adapters };
}

test('recipe (a) progressive system: 2 stacks then 4, stack LoRA + progressive LoRA', () => {
  let changed: ReturnType<typeof changedStacks> | undefined;
  const lrByGroup: Record<string, number>[] = [];
  const r = runRecipe('progressive-system.yaml', [
    'model.d_model=16', 'model.n_heads=2', 'model.d_ff=32', 'model.blocks_per_stack=1',
    'model.progressive.stack_lora.rank=2', 'model.progressive.stack_lora.alpha=4', 'model.progressive.stack_lora.max_rank=4',
    'model.progressive.progressive_lora.rank=2', 'model.progressive.progressive_lora.alpha=4',
    'training.total_steps=20',
  ], undefined, (m) => {
    changed = changedStacks(m);
    // The lr each group is updated with (after the plane's group_lr_scale).
    m.addHook({ name: 'lr-probe', beforeUpdate: (mm) => { lrByGroup.push(Object.fromEntries(mm.optimizer.optimizer.groups.map((g) => [g.name, g.lr]))); } });
  });
  const b = r.plane!.builder;
  assert.equal(b.numStacks, 4);
  assert.deepEqual(r.result.phase_transitions, [8]);
  assertLossFalls(r.result.losses, 'progressive system');
  // Phase 1: both stacks are new and train; phase 2: the two added stacks train, the first two are
  // the trunk (base frozen, trained through their progressive LoRA). No stack stays random and frozen.
  assert.deepEqual(changed!.base, [[0, 1], [2, 3]]);
  assert.deepEqual(changed!.adapters, [[0, 1], [0, 1, 2, 3]]);
  assert.deepEqual(b.newStackIndices, [2, 3]);
  const lrs = r.records.filter((x) => x['type'] === 'step').at(-1)!['lrs'] as Record<string, number>;
  assert.deepEqual(Object.keys(lrs), ['new_stack', 'trunk', 'stack_lora', 'progressive_lora', 'no_decay']);
  // group_lr_scale { progressive_lora: 0.5 }: the progressive LoRA group is updated at half the lr.
  const last = lrByGroup.at(-1)!;
  assert.ok(last['new_stack']! > 0);
  assert.equal(last['progressive_lora'], last['new_stack']! * 0.5);
  assert.equal(last['stack_lora'], last['new_stack']);
  assert.equal(r.records.filter((x) => x['kind'] === 'grow').length, 2);
  // Growing ranks by final stack index (2 + 2k, capped at max_rank 4): stacks 0-3 → 2, 4, 4, 4.
  assert.deepEqual(b.history.map((e) => e.stackLora?.rank), [4, 4], 'growing rank capped at max_rank');
  const rankOf = (i: number, p: 'q' | 'k') => (r.machine.model.model.rack.stacks.at(i).blocks.at(0).attn.getModule(p) as unknown as { lora: { rank: number } | null }).lora?.rank;
  assert.deepEqual([0, 1, 2, 3].map((i) => rankOf(i, 'k')), [2, 4, 4, 4], 'stack LoRA (k is not a progressive target, so it stays)');
  assert.deepEqual([0, 1, 2, 3].map((i) => rankOf(i, 'q')), [2, 2, 4, 4], 'q: progressive LoRA rank 2 on the trunk, stack LoRA on the new stacks');
});

test('recipe (b) warm-up / main curriculum', () => {
  const r = runRecipe('warmup-main.yaml', ['model.d_model=16', 'model.n_heads=2', 'model.blocks_per_stack=1', 'schedule[0].overrides.data.seq_len=8', 'training.total_steps=30']);
  assert.deepEqual(r.result.phases.map((p) => [p.name, p.steps]), [['warmup', 3], ['main', 27]]);
  const steps = r.records.filter((x) => x['type'] === 'step');
  assert.ok((steps[0]!['lr'] as number) < (steps[2]!['lr'] as number), 'lr warms up');
  assert.equal(steps[0]!['tokens'], 4 * 8);
  assert.equal(steps.at(-1)!['tokens'], 4 * 16);
  assertLossFalls(r.result.losses, 'warm-up/main');
});

test('recipe (c) right→left, rising mask noise, adapters-only NF4 trunk', () => {
  // The share of positions each step's batch masks (and scores), per phase.
  const shares: number[][] = [];
  const r = runRecipe('right-to-left-diffusion.yaml', [
    'model.d_model=64', 'model.n_heads=2', 'model.d_ff=64', 'model.blocks_per_stack=1',
    'model.progressive.progressive_lora.rank=2', 'model.progressive.progressive_lora.alpha=4',
    'training.total_steps=16',
  ], { phase: 1, tensors: (m) => m.model.model.head.parameters() }, (m) => {
    m.addHook({ name: 'mask-probe', onStepStart: (mm, ctx) => { const b = mm.data.trainBatch(ctx.step, 0, ctx.t); (shares[ctx.phaseIndex] ??= []).push(b.scored / b.tokens); } });
  });
  // Each phase trains the leftmost stack at its level of the ladder: 0.15, 0.40, 0.75, 1.0.
  const meanShares = shares.map(mean);
  [0.15, 0.4, 0.75, 1].forEach((want, k) => assert.ok(Math.abs(meanShares[k]! - want) < 0.1, `phase ${k}: masked share ${meanShares[k]!.toFixed(3)} ≈ ${want}`));
  const b = r.plane!.builder;
  assert.equal(b.numStacks, 4);
  assert.equal(b.newStackIndex, 0, 'the newest stack is leftmost');
  assert.deepEqual(r.machine.parsed.phases.map((p) => p.data?.mask), r.machine.parsed.phases.map(() => ({ kind: 'depth', levels: [1, 0.75, 0.4, 0.15], mode: 'levels' })), 'time-as-depth: one ladder, the level follows the stack being trained');
  assert.deepEqual(b.toSpec().stacks.map((s) => s.weight_format), ['fp32', 'nf4', 'nf4', 'nf4']);
  assert.deepEqual(r.snapshots.get('end'), r.snapshots.get('start'), 'the head (semantic anchor) stays frozen');
  assert.ok(r.result.losses.every(Number.isFinite));
  assert.ok(r.result.losses[3]! < r.result.losses[0]!, 'loss falls in the first phase');
  const kinds = new Set(r.records.map((x) => x['kind']).filter(Boolean));
  for (const k of ['grow', 'quantize', 'adapters', 'freeze']) assert.ok(kinds.has(k), `a '${k}' event`);
  const quant = r.records.filter((x) => x['kind'] === 'quantize').at(-1)!;
  assert.deepEqual((quant['stacks'] as { state: unknown }[]).map((s) => s.state), ['trainable', ['adapted', 'quantized'], ['adapted', 'quantized'], ['adapted', 'quantized']]);
});

test('recipe (d) progressive stacking 3 → 6 → 12 blocks, copy_top at t = 0.125 and 0.30', () => {
  // At each growth the new blocks are exact copies of the model before it, in order (block i + L = block i).
  const copies: boolean[] = [];
  const r = runRecipe('progressive-stacking.yaml', ['model.d_model=16', 'model.n_heads=2', 'model.d_ff=32', 'training.total_steps=40'], undefined, (m) => {
    m.addCallback({
      onPhaseStart: (_p, mm, ctx) => {
        if (ctx.index === 0) return;
        const blocks = mm.model.model.rack.allBlocks();
        const L = blocks.length / 2;
        const weights = (i: number) => blocks[i]!.parameters().map((t) => Array.from(t.toArray()));
        copies.push(Array.from({ length: L }, (_, i) => i).every((i) => JSON.stringify(weights(i + L)) === JSON.stringify(weights(i))));
      },
    });
  });
  assert.deepEqual(copies, [true, true], '3 → 6 and 6 → 12 blocks stack the model on itself');
  assert.equal(r.machine.model.model.rack.numBlocks, 12);
  const grows = r.records.filter((x) => x['kind'] === 'grow');
  assert.deepEqual(grows.map((g) => g['t']), [0.125, 0.3, 0.3]);
  assert.ok(grows.every((g) => /copy of the top blocks/.test(String(g['description']))));
  assertLossFalls(r.result.losses, 'progressive stacking');
});

test('recipe (e) layer-wise training mode: one one-block layer per phase, earlier layers frozen', () => {
  const r = runRecipe('layer-wise.yaml', ['model.d_model=16', 'model.n_heads=2', 'model.d_ff=32', 'training.total_steps=16'], {
    phase: 3,
    tensors: (m) => [0, 1, 2].flatMap((i) => baseWeights(m, i)),
  });
  assert.deepEqual(r.result.phases.map((p) => [p.name, p.steps]), [['layer-1', 4], ['layer-2', 4], ['layer-3', 4], ['layer-4', 4]]);
  assert.equal(r.machine.model.model.rack.numStacks, 4);
  assert.equal(r.machine.model.model.rack.numBlocks, 4);
  assert.deepEqual(r.snapshots.get('end'), r.snapshots.get('start'), 'layers 1-3 frozen while layer 4 trains');
  const grows = r.records.filter((x) => x['kind'] === 'grow');
  assert.equal(grows.length, 3);
  assert.ok(grows.every((g) => /copy of the top blocks/.test(String(g['description']))));
  assertLossFalls(r.result.losses, 'layer-wise');
});

test('recipe (f) stack-wise over a frozen, cached trunk: the prefix is served from the cache', () => {
  const r = runRecipe('stack-wise-cached.yaml', [
    'model.d_model=16', 'model.n_heads=2', 'model.d_ff=32', 'model.n_stacks=3', 'training.total_steps=24',
    'data.corpus={kind: synthetic, vocab_size: 48, tokens: 600, branching: 1}',
  ]);
  assert.equal(r.machine.model.model.rack.numStacks, 3);
  const cache = r.records.filter((x) => x['kind'] === 'activation_cache');
  assert.deepEqual(cache.map((x) => x['prefix_stacks']), [0, 1, 2], 'the frozen stacks before the new one are cached');
  assert.ok((cache.at(-1)!['hits'] as number) > 0, `cache hits: ${cache.at(-1)!['hits']}`);
  assert.ok(r.result.losses.every(Number.isFinite));
});


/**
 * The default run at tiny size, exported to Hugging Face: the starting point of the two recipes
 * that grow a pretrained model (their header comments give the same two commands).
 */
let pretrained: string | undefined;
const pretrainedRoot = mkdtempSync(join(tmpdir(), 'sw-recipes-pretrained-'));
after(() => rmSync(pretrainedRoot, { recursive: true, force: true }));
function tinyDefaultExport(): string {
  if (pretrained) return pretrained;
  const root = pretrainedRoot;
  const run = join(root, 'default');
  const config = loadConfig(join(RECIPES, '..', 'configs', 'default.yaml'), { set: [
    'model.d_model=16', 'model.n_heads=2', 'model.d_ff=32', 'data.tokenizer.vocab_size=300', 'data.seq_len=16', 'data.batch_size=4', 'data.eval_batches=1',
    'training.total_steps=16', 'training.eval_every=0', 'training.checkpoint_every=0', 'training.progress=off', 'training.tensorboard=false', `training.run_dir=${run}`,
  ] });
  const m = new TrainingMachine(config);
  m.train();
  m.dispose();
  pretrained = join(root, 'hf-default');
  exportModel(run, { out: pretrained });
  return pretrained;
}

/** A recipe that starts from the tiny default export, with the logits of a batch at the first phase start. */
function runFromPretrained(file: string, steps: number): Run & { atStart: Float32Array; want: Float32Array } {
  const hf = tinyDefaultExport();
  const ids = E.randInt([2, 12], 300, { seed: 7 });
  const forward = (model: Model) => {
    const mode = model.training;
    model.eval();
    const out = E.tidy(() => E.noGrad(() => Float32Array.from(model.forward(ids).logits.toArray())));
    model.train(mode);
    return out;
  };
  const pre = loadPretrained(hf).model;
  const want = forward(pre);
  pre.dispose();
  let atStart: Float32Array | undefined;
  const r = runRecipe(file, [`model.init.from=${hf}`, 'data.seq_len=16', 'data.batch_size=4', 'data.eval_batches=1', `training.total_steps=${steps}`, 'training.eval_every=0', 'training.checkpoint_every=0', 'training.progress=off', 'training.tensorboard=false', 'optimizer.lr=0.01'],
    undefined, (m) => m.addCallback({ onPhaseStart: (_p, mm) => { atStart = forward(mm.model.model); } }), { text: true });
  ids.dispose();
  return { ...r, atStart: atStart!, want };
}

test('recipe (g) expand-pretrained: the tiny default run exported, grown 4 → 6 blocks LLaMA-Pro style on Moby-Dick, old blocks frozen', () => {
  const r = runFromPretrained('expand-pretrained.yaml', 40);
  const plane = r.plane!;
  assert.equal(r.machine.model.model.rack.numStacks, 6);
  const grows = r.records.filter((x) => x['kind'] === 'grow');
  assert.deepEqual(grows.map((g) => [g['step'], /^insert stack (\d) at position \1 \(block expansion/.test(String(g['description']))]), [[0, true], [0, true]]);
  assert.deepEqual(plane.builder.newStackIndices, [2, 5]);
  assert.deepEqual(Array.from(r.atStart), Array.from(r.want), 'right after the expansion the model computes the pretrained logits bit for bit');
  assertLossFalls(r.result.losses, 'expand-pretrained');
  const frozen = r.records.filter((x) => x['kind'] === 'freeze').at(-1)!;
  assert.deepEqual((frozen['stacks'] as { state: unknown }[]).map((s) => s.state), ['frozen', 'frozen', 'trainable', 'frozen', 'frozen', 'trainable']);
});

test('recipe (h) upscale-pretrained: SOLAR depth up-scaling 4 → 6 (blocks 0 1 2 | 1 2 3), everything trains', () => {
  const r = runFromPretrained('upscale-pretrained.yaml', 40);
  assert.equal(r.machine.model.model.rack.numStacks, 6);
  const grows = r.records.filter((x) => x['kind'] === 'grow');
  assert.deepEqual(grows.map((g) => /^insert stack (3|4) at position (3|4) \(depth up-scaling/.test(String(g['description']))), [true, true]);
  assert.notDeepEqual(Array.from(r.atStart), Array.from(r.want), 'depth up-scaling changes the function (the paper continues pretraining)');
  assertLossFalls(r.result.losses, 'upscale-pretrained');
});
