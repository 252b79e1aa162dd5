// training.mode: each mode expands into its phases and model.progressive settings, runs on the one
// TrainingMachine, and trains exactly the parameters the mode says, phase by phase.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { ConfigError, TrainingMachine, loadConfig, parseConfig, type ParsedConfig } from '../../src/training/index.js';

type Obj = Record<string, unknown>;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sw-modes-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A 4-block llama (2 stacks × 2 blocks unless `model` says otherwise), synthetic data. */
function config(mode: unknown, opts: { model?: Obj; training?: Obj; schedule?: Obj[] } = {}): Obj {
  return {
    model: { preset: 'llama', d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 2, blocks_per_stack: 2, ...opts.model },
    data: { corpus: { kind: 'synthetic', vocab_size: 48, tokens: 3000 }, seq_len: 8, batch_size: 4, eval_batches: 1 },
    optimizer: { lr: 0.01 },
    training: { total_steps: 8, progress: 'off', tensorboard: false, seed: 1, ...(mode === undefined ? {} : { mode }), ...opts.training },
    ...(opts.schedule ? { schedule: opts.schedule } : {}),
  };
}

/** Per phase: [name, start_t, end_t, n_stacks, blocks_per_stack, freeze, direction, growth kind]. */
function summary(parsed: ParsedConfig): unknown[][] {
  return parsed.phases.map((p) => {
    const prog = p.model!['progressive'] as { freeze?: string; direction?: string; growth?: { kind: string } } | undefined;
    return [p.name, p.start_t, p.end_t, p.model!.n_stacks, p.model!.blocks_per_stack, prog?.freeze, prog?.direction, prog?.growth?.kind];
  });
}

test('each mode expands into its phases: names, t boundaries, stacks, blocks per stack, freeze policy', () => {
  assert.deepEqual(summary(parseConfig(config('fused'))), [['fused', 0, 1, 2, 2, undefined, undefined, undefined]]);
  assert.deepEqual(summary(parseConfig(config('progressive'))), [
    ['stack-1', 0, 0.5, 1, 2, 'none', 'append', 'fresh'],
    ['stack-2', 0.5, 1, 2, 2, 'none', 'append', 'fresh'],
  ]);
  assert.deepEqual(summary(parseConfig(config('stack_wise'))), [
    ['stack-1', 0, 0.5, 1, 2, 'frozen_trunk', 'append', 'fresh'],
    ['stack-2', 0.5, 1, 2, 2, 'frozen_trunk', 'append', 'fresh'],
  ]);
  // layer_wise re-cuts 2 stacks × 2 blocks into 4 stacks of one block.
  assert.deepEqual(summary(parseConfig(config('layer_wise'))), [
    ['layer-1', 0, 0.25, 1, 1, 'frozen_trunk', 'append', 'fresh'],
    ['layer-2', 0.25, 0.5, 2, 1, 'frozen_trunk', 'append', 'fresh'],
    ['layer-3', 0.5, 0.75, 3, 1, 'frozen_trunk', 'append', 'fresh'],
    ['layer-4', 0.75, 1, 4, 1, 'frozen_trunk', 'append', 'fresh'],
  ]);
  // block_wise re-cuts 4 stacks × 1 block into 2 stacks of 2 blocks; knobs: direction, growth, boundaries.
  const bw = parseConfig(config({ kind: 'block-wise', block_size: 2, direction: 'prepend', growth: 'copy_top', boundaries: [0.25] }, { model: { n_stacks: 4, blocks_per_stack: 1 } }));
  assert.deepEqual(summary(bw), [
    ['block-1', 0, 0.25, 1, 2, 'frozen_suffix', 'prepend', 'copy_top'],
    ['block-2', 0.25, 1, 2, 2, 'frozen_suffix', 'prepend', 'copy_top'],
  ]);
  assert.deepEqual({ kind: bw.mode?.kind, units: bw.mode?.units, blocksPerUnit: bw.mode?.blocksPerUnit }, { kind: 'block_wise', units: 2, blocksPerUnit: 2 });
  assert.equal(parseConfig(config({ kind: 'block_wise', block_size: 1 })).phases.length, 4);
  // A config without a mode is unchanged: one phase over the whole run.
  assert.deepEqual(parseConfig(config(undefined)).phases.map((p) => p.name), ['single_phase']);
});

test('model.progressive keys a mode does not set pass through; fused keeps a schedule that does not grow', () => {
  const p = parseConfig(config('stack_wise', { model: { progressive: { trunk_format: 'int8', stack_lora: { rank: 2, alpha: 4 } } } }));
  const prog = p.phases[1]!.model!['progressive'] as Obj;
  assert.equal(prog['trunk_format'], 'int8');
  assert.deepEqual((prog['stack_lora'] as Obj)['rank'], 2);
  assert.equal(prog['freeze'], 'frozen_trunk');
  const fused = parseConfig(config('fused', { schedule: [{ name: 'short', start_t: 0, end_t: 0.5, overrides: { data: { seq_len: 4 } } }, { name: 'long', start_t: 0.5, end_t: 1 }] }));
  assert.deepEqual(fused.phases.map((x) => [x.name, x.data!.seq_len, x.model!.n_stacks]), [['short', 4, 2], ['long', 8, 2]]);
});

const blockOf = (name: string, blocksPerStack: number): string => {
  const m = /^rack\.stacks\.(\d+)\.blocks\.(\d+)\./.exec(name);
  if (m) return `block${Number(m[1]) * blocksPerStack + Number(m[2])}`;
  return name.startsWith('embedding.') ? 'embedding' : name.startsWith('head.') ? 'head' : name;
};

/** Runs the config; per phase, the parts (embedding, blockN, head) whose weights changed in it. */
function changedPerPhase(raw: Obj): { machine: TrainingMachine; phases: string[][]; firstStep: string[]; names: string[] } {
  const machine = new TrainingMachine(raw, { log: () => {} });
  const bps = machine.parsed.phases[0]!.model!.blocks_per_stack;
  const snap = () => new Map(machine.model.namedParameters().map(([n, t]) => [n, Float32Array.from(t.toArray())]));
  const diff = (before: Map<string, Float32Array>) => {
    const parts = new Set<string>();
    for (const [n, t] of machine.model.namedParameters()) {
      const old = before.get(n);
      if (old && t.toArray().some((v, i) => v !== old[i])) parts.add(blockOf(n, bps));
    }
    return [...parts].sort();
  };
  let start = new Map<string, Float32Array>();
  let firstStep: string[] = [];
  const phases: string[][] = [];
  machine.addCallback({
    onPhaseStart: () => { start = snap(); },
    onStep: () => { if (firstStep.length === 0) firstStep = diff(start); },
    onPhaseEnd: () => { phases.push(diff(start)); },
  });
  machine.train();
  const names = machine.model.namedParameters().map(([n]) => n);
  return { machine, phases, firstStep, names };
}

const ALL = ['block0', 'block1', 'block2', 'block3', 'embedding', 'head'];

test('fused: everything trains from the first step', () => {
  const r = changedPerPhase(config('fused'));
  assert.deepEqual(r.firstStep, ALL);
  assert.deepEqual(r.phases, [ALL]);
  assert.equal(r.machine.model.model.rack.numBlocks, 4);
  r.machine.dispose();
});

test('progressive: each phase adds a stack and earlier stacks keep training', () => {
  const r = changedPerPhase(config('progressive'));
  assert.deepEqual(r.phases, [['block0', 'block1', 'embedding', 'head'], ALL]);
  assert.equal(r.machine.model.model.rack.numBlocks, 4);
  r.machine.dispose();
});

test('stack_wise: only the newest stack and the head train (the embedding only with the first stack)', () => {
  const r = changedPerPhase(config('stack_wise'));
  assert.deepEqual(r.phases, [['block0', 'block1', 'embedding', 'head'], ['block2', 'block3', 'head']]);
  assert.equal(r.machine.model.model.rack.numStacks, 2);
  assert.equal(r.machine.model.model.rack.numBlocks, 4);
  r.machine.dispose();
});

test('block_wise: the rack is re-cut into units of block_size blocks, trained one per phase', () => {
  const r = changedPerPhase(config({ kind: 'block_wise', block_size: 2 }, { model: { n_stacks: 4, blocks_per_stack: 1 } }));
  assert.deepEqual(r.machine.schedule.phases.map((p) => p.name), ['block-1', 'block-2']);
  assert.deepEqual(r.phases, [['block0', 'block1', 'embedding', 'head'], ['block2', 'block3', 'head']]);
  assert.equal(r.machine.model.model.rack.numStacks, 2);
  assert.equal(r.machine.model.model.rack.numBlocks, 4);
  r.machine.dispose();
});

test('layer_wise: phase k trains block k and the head, never an earlier block', () => {
  const r = changedPerPhase(config('layer_wise'));
  assert.deepEqual(r.phases, [['block0', 'embedding', 'head'], ['block1', 'head'], ['block2', 'head'], ['block3', 'head']]);
  assert.equal(r.machine.model.model.rack.numStacks, 4);
  assert.equal(r.machine.model.model.rack.numBlocks, 4);
  r.machine.dispose();
});

test('stack_wise right→left: the first stack trains with the head; then the newest (leftmost) stack and the embedding train, suffix and head frozen (the anchor)', () => {
  const r = changedPerPhase(config({ kind: 'stack_wise', direction: 'prepend' }));
  // After the prepend the new stack is rack position 0 (blocks 0-1), the first one moved to blocks 2-3.
  assert.deepEqual(r.phases, [['block0', 'block1', 'embedding', 'head'], ['block0', 'block1', 'embedding']]);
  assert.equal(r.machine.parsed.phases[0]!.model!['progressive'] !== undefined, true);
  assert.equal((r.machine.parsed.phases[0]!.model!['progressive'] as { freeze: string }).freeze, 'frozen_suffix');
  assert.equal(r.machine.model.model.rack.numBlocks, 4);
  r.machine.dispose();
});

test('the run folder shows the expansion; config.yaml keeps the mode, re-expands identically and resumes', () => {
  const runDir = join(tempDir(), 'run');
  const machine = new TrainingMachine(config('layer_wise', { training: { run_dir: runDir } }), { log: () => {} });
  const straight = machine.train();
  machine.dispose();
  assert.deepEqual(readdirSync(join(runDir, 'phases')).sort(), ['00-layer-1.yaml', '01-layer-2.yaml', '02-layer-3.yaml', '03-layer-4.yaml']);
  const third = YAML.parse(readFileSync(join(runDir, 'phases', '02-layer-3.yaml'), 'utf8')) as { start_t: number; model: Obj };
  assert.equal(third.start_t, 0.5);
  assert.deepEqual([third.model['n_stacks'], third.model['blocks_per_stack'], (third.model['progressive'] as Obj)['freeze']], [3, 1, 'frozen_trunk']);
  const written = YAML.parse(readFileSync(join(runDir, 'config.yaml'), 'utf8')) as { training: Obj; schedule?: unknown };
  assert.equal(written.training['mode'] && (written.training['mode'] as Obj)['kind'], 'layer_wise');
  assert.equal(written.schedule, undefined);
  const reloaded = loadConfig(join(runDir, 'config.yaml'));
  assert.equal(reloaded.hash, machine.parsed.hash);
  assert.deepEqual(JSON.parse(JSON.stringify(reloaded.phases)), JSON.parse(JSON.stringify(machine.parsed.phases)));
  // Stop in phase layer-3 and continue from the folder alone: the same losses as straight through.
  const partDir = join(tempDir(), 'part');
  const first = new TrainingMachine(config('layer_wise', { training: { run_dir: partDir } }), { log: () => {} });
  for (let i = 0; i < 5; i++) first.trainStep();
  first.saveCheckpoint();
  first.dispose();
  const resumed = TrainingMachine.resumeRun(partDir, { log: () => {} });
  const rest = resumed.train();
  assert.equal(rest.resumed_from, 5);
  assert.deepEqual(rest.losses, straight.losses.slice(5));
  assert.equal(resumed.model.model.rack.numStacks, 4);
  resumed.dispose();
});

function throwsConfig(raw: Obj, ...patterns: RegExp[]): void {
  assert.throws(() => parseConfig(raw), (e: unknown) => {
    assert.ok(e instanceof ConfigError, `a ConfigError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('bad modes are refused with the field, the expected and the found value', () => {
  throwsConfig(config({ kind: 'block_wise', block_size: 3 }), /training\.mode\.block_size/, /divisor of the depth .*2 × 2 = 4 blocks \(1, 2, 4\)/, /found 3/);
  throwsConfig(config('block_wise'), /training\.mode\.block_size: expected a block_size/);
  throwsConfig(config({ kind: 'layer_wise', block_size: 2 }), /training\.mode\.block_size: expected no block_size/);
  throwsConfig(config('layer_wsie'), /training\.mode\.kind/, /found "layer_wsie"/, /did you mean 'layer_wise'/);
  throwsConfig(config({ kind: 'stack_wise', growth: 'copy_tpo' }), /training\.mode\.growth\.kind/, /did you mean 'copy_top'/);
  throwsConfig(config('stack_wise', { schedule: [{ name: 'all', start_t: 0, end_t: 1 }] }), /schedule: expected no schedule: training\.mode 'stack_wise' is the schedule/);
  throwsConfig(config('layer_wise', { model: { progressive: { freeze: 'none' } } }), /model\.progressive\.freeze: expected no model\.progressive\.freeze with training\.mode 'layer_wise'/);
  throwsConfig(config({ kind: 'stack_wise', boundaries: [0.3, 0.6] }), /training\.mode\.boundaries: expected 1 strictly increasing/, /found \[0\.3,0\.6\]/);
  throwsConfig(config('layer_wise', { training: { total_steps: 3 } }), /training\.total_steps: expected at least 4/, /found 3/);
  // fused refuses growth: model.progressive, or a phase changing n_stacks; and growing knobs.
  throwsConfig(config('fused', { model: { progressive: { growth: 'copy_top' } } }), /model\.progressive: expected no model\.progressive \(training\.mode 'fused'/);
  throwsConfig(config('fused', { schedule: [{ start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }, { start_t: 0.5, end_t: 1 }] }), /schedule\[0\]\.overrides\.model\.n_stacks: expected 2/, /found 1/);
  throwsConfig(config({ kind: 'fused', direction: 'prepend' }), /training\.mode\.direction: expected no direction/);
  // A growing mode needs the model section (a model built in code has no n_stacks to grow to).
  const { model: _m, ...noModel } = config('stack_wise');
  void _m;
  throwsConfig(noModel, /training\.mode: expected a 'model' section/);
});
