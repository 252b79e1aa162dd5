import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJsonl } from '../../src/io/index.js';
import { metricsToReportData } from '../../src/io/report/metrics.js';
import { syntheticTokenData } from '../../src/framework/index.js';
import { llama } from '../../src/nn/index.js';
import * as E from '../../src/engine/index.js';
import {
  ConfigError, ProgressiveConfigError, ProgressiveDataLoader, ProgressivePlane, ProgressiveRackBuilder, ProgressiveTrainer, RampedStack, TrainingMachine, parseConfig, rampGate,
} from '../../src/training/index.js';
import { weightsDigest } from './machine-helpers.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sw-plane-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

type Obj = Record<string, unknown>;

/** 1 stack, grown to 2 at t = 0.5 and to 3 at t = 0.75 (12 steps: at steps 6 and 9). */
function config(progressive: Obj, opts: { runDir?: string; model?: Obj; phases?: Obj[]; steps?: number } = {}): Obj {
  return {
    model: { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1, ...opts.model, progressive },
    data: { corpus: { kind: 'synthetic', vocab_size: 48, tokens: 3000 }, seq_len: 8, batch_size: 4, eval_batches: 1 },
    optimizer: { lr: 4e-3, clip_norm: 1, weight_decay: 0.01 },
    training: { total_steps: opts.steps ?? 12, progress: 'off', seed: 3, tensorboard: false, ...(opts.runDir ? { run_dir: opts.runDir } : {}) },
    schedule: opts.phases ?? [
      { name: 'one', start_t: 0, end_t: 0.5 },
      { name: 'two', start_t: 0.5, end_t: 0.75, overrides: { model: { n_stacks: 2 } } },
      { name: 'three', start_t: 0.75, end_t: 1, overrides: { model: { n_stacks: 3 } } },
    ],
  };
}

const DUAL = { growth: 'copy_top', freeze: 'adapters_only_trunk', stack_lora: { rank: 2, alpha: 4 }, progressive_lora: { rank: 2, alpha: 2, targets: ['q', 'v', 'o'] } };

test('config-driven growth: the rack follows n_stacks, builder groups, model events in the metrics JSONL', () => {
  const run = join(tempDir(), 'run');
  const m = new TrainingMachine(config(DUAL, { runDir: run }));
  const plane = ProgressivePlane.attach(m);
  const groupsByPhase: string[][] = [];
  m.addCallback({ onStep: (s) => { if (groupsByPhase.length <= s.phase_index) groupsByPhase.push(Object.keys(s.lrs)); } });
  const r = m.train();
  assert.equal(m.model.model.rack.numStacks, 3);
  assert.equal(plane.builder.history.length, 2);
  assert.deepEqual(r.phase_transitions, [6, 9]);
  assert.deepEqual(groupsByPhase[0], ['new_stack', 'trunk', 'stack_lora', 'no_decay']); // one stack: embedding and head train (in 'trunk')
  assert.deepEqual(groupsByPhase[2], ['new_stack', 'trunk', 'stack_lora', 'progressive_lora', 'no_decay']);
  const recs = readJsonl(join(run, 'metrics.jsonl'));
  const events = recs.filter((x) => ['grow', 'freeze', 'adapters', 'quantize'].includes(String(x['kind'])));
  const grows = events.filter((e) => e['kind'] === 'grow');
  assert.deepEqual(grows.map((e) => [e['step'], e['t']]), [[6, 0.5], [9, 0.75]]);
  assert.match(String(grows[0]!['description']), /copy of the top blocks/);
  assert.deepEqual(grows[1]!['stacks'], [{ index: 0, final_index: 0, state: 'adapted' }, { index: 1, final_index: 1, state: 'adapted' }, { index: 2, final_index: 2, state: ['trainable', 'adapted'] }]);
  assert.ok(events.some((e) => e['kind'] === 'adapters' && /progressive LoRA/.test(String(e['description']))));
  assert.ok(events.some((e) => e['kind'] === 'freeze'));
  // The run report reads them.
  const report = metricsToReportData(recs);
  assert.deepEqual(report.events.filter((e) => e.kind === 'grow').map((e) => e.t), [0.5, 0.75]);
  assert.ok(report.stack_timeline.length >= 2);
  m.dispose();
});

test('frozen trunk: trunk weights do not change after growth; loss falls', () => {
  const m = new TrainingMachine(config({ freeze: 'frozen_trunk' }, { steps: 16 }));
  const plane = ProgressivePlane.attach(m);
  let trunkBefore: Float32Array[] = [];
  const snap = () => m.model.model.rack.stacks.at(0).parameters().map((p) => Float32Array.from(p.toArray()));
  m.addCallback({ onPhaseStart: (_p, _m, ctx) => { if (ctx.index === 1) trunkBefore = snap(); } });
  const r = m.train();
  assert.equal(plane.builder.numStacks, 3);
  assert.deepEqual(snap(), trunkBefore, 'stack 0 unchanged after it joined the trunk');
  assert.ok(r.losses.at(-1)! < r.losses[0]!, `loss fell: ${r.losses[0]} → ${r.losses.at(-1)}`);
  m.dispose();
});

test('exact resume across growth: N steps straight == k steps + checkpoint + resume (bit-identical losses and weights)', () => {
  const dir = tempDir();
  const straight = new TrainingMachine(config(DUAL, { runDir: join(dir, 'straight') }));
  ProgressivePlane.attach(straight);
  const ref = straight.train();
  const refDigest = weightsDigest(straight);
  straight.dispose();
  for (const k of [4, 7]) {
    const run = join(dir, `k${k}`);
    const first = new TrainingMachine(config(DUAL, { runDir: run }));
    ProgressivePlane.attach(first);
    for (let i = 0; i < k; i++) first.trainStep();
    const ck = first.saveCheckpoint();
    first.dispose();
    // k = 7: from the run folder alone (its config.yaml installs the plane again).
    const second = k === 7 ? TrainingMachine.resumeRun(run) : new TrainingMachine(config(DUAL, { runDir: run }), { resume: ck.path });
    assert.ok(ck.path);
    const plane = ProgressivePlane.attach(second);
    const r = second.train();
    assert.equal(r.resumed_from, k);
    assert.deepEqual(r.losses, ref.losses.slice(k), `losses after resuming at step ${k}`);
    assert.equal(weightsDigest(second), refDigest, `weights after resuming at step ${k}`);
    assert.equal(plane.builder.history.length, 2);
    const grows = readJsonl(join(run, 'metrics.jsonl')).filter((x) => x['kind'] === 'grow');
    assert.equal(grows.length, 2, 'each growth logged once');
    second.dispose();
  }
});

test('ramp-in growth: the gate follows t; per-phase freeze override', () => {
  const m = new TrainingMachine(config({ growth: { kind: 'ramp', t0: 0.5, t1: 0.7 } }, {
    phases: [
      { name: 'one', start_t: 0, end_t: 0.5 },
      { name: 'two', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 2, progressive: { freeze: 'frozen_trunk' } } } },
    ],
  }));
  const plane = ProgressivePlane.attach(m);
  // The gate each step trains with (read after the plane's onStepStart).
  const gates: [number, number][] = [];
  m.addHook({ name: 'probe', onStepStart: (_m, ctx) => { const s = m.model.model.rack.stacks.toArray()[1]; if (s instanceof RampedStack) gates.push([ctx.t, s.gate]); } });
  m.train();
  assert.equal(plane.builder.freezePolicy, 'frozen_trunk');
  assert.deepEqual(gates.map(([t]) => t), [6, 7, 8, 9, 10, 11].map((k) => k / 12));
  for (const [t, g] of gates) assert.ok(Math.abs(g - rampGate(t, 0.5, 0.7)) < 1e-12, `t = ${t}: gate ${g}`);
  assert.equal(gates[0]![1], 0);
  assert.ok(gates.some(([, g]) => g > 0 && g < 1));
  m.dispose();
});

test('a ramp ending at t1 = 1 ends at gate 1; checkpoints keep the gate, a rebuilt model computes what was trained', () => {
  const dir = tempDir();
  const ramp = { growth: { kind: 'ramp', t0: 0.5, t1: 1 }, freeze: 'adapters_only_trunk', progressive_lora: { rank: 2, alpha: 2 } };
  const phases = [{ name: 'one', start_t: 0, end_t: 0.5 }, { name: 'two', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 2 } } }];
  const m = new TrainingMachine(config(ramp, { runDir: join(dir, 'run'), phases, steps: 10 }));
  const plane = ProgressivePlane.attach(m);
  const ramped = () => m.model.model.rack.stacks.toArray()[1] as RampedStack;
  const mid: { path: string; gate: number; logits: Float32Array }[] = [];
  const ids = E.randInt([2, 6], 48, { seed: 9 });
  const logits = (mm: TrainingMachine) => E.tidy(() => E.noGrad(() => Float32Array.from(mm.model.model.forward(ids).logits.toArray())));
  m.addCallback({ onStep: (s) => { if (s.step === 6) mid.push({ path: m.saveCheckpoint().path!, gate: ramped().gate, logits: logits(m) }); } });
  const result = m.train();
  // The last step runs at t = 0.9 (gate 0.8); after it t = 1 and the gate is 1, as the schedule says.
  assert.equal(ramped().gate, 1);
  const final = logits(m);
  assert.ok(Math.abs(mid[0]!.gate - rampGate(0.7, 0.5, 1)) < 1e-12, `gate after step 6: ${mid[0]!.gate}`);
  // Rebuilt from a checkpoint (phases replayed, weights and builder state loaded): the same gate and logits.
  for (const [step, want] of [[7, mid[0]!], [10, { path: result.last_checkpoint!, gate: 1, logits: final }]] as const) {
    const r = new TrainingMachine(config(ramp, { runDir: join(dir, 'run'), phases, steps: 10 }));
    const rp = ProgressivePlane.attach(r);
    r.resumeFrom(want.path);
    assert.equal((r.model.model.rack.stacks.toArray()[1] as RampedStack).gate, want.gate, `step ${step}: gate`);
    assert.equal(rp.builder.currentTime, step / 10);
    assert.deepEqual(logits(r), want.logits, `step ${step}: rebuilt logits`);
    r.dispose();
  }
  assert.equal(plane.builder.currentTime, 1);
  ids.dispose();
  m.dispose();
});

test('adapters-only NF4 trunk: trunk stacks quantized, a quantize event, training runs', () => {
  const run = join(tempDir(), 'q');
  const m = new TrainingMachine(config({ freeze: 'adapters_only_trunk', trunk_format: 'nf4', progressive_lora: { rank: 2, alpha: 4 } }, { runDir: run, steps: 8, model: { d_model: 64, n_heads: 2 } }));
  const plane = ProgressivePlane.attach(m);
  const r = m.train();
  assert.ok(r.losses.every(Number.isFinite));
  assert.deepEqual(plane.builder.toSpec().stacks.map((s) => s.weight_format), ['nf4', 'nf4', 'fp32']);
  const q = readJsonl(join(run, 'metrics.jsonl')).filter((x) => x['kind'] === 'quantize');
  assert.ok(q.length >= 1);
  assert.deepEqual((q.at(-1)!['stacks'] as { state: unknown }[]).map((s) => s.state), [['adapted', 'quantized'], ['adapted', 'quantized'], 'trainable']);
  m.dispose();
});

function planeError(cfg: Obj, ...res: RegExp[]): void {
  let steps = 0;
  assert.throws(() => {
    const m = new TrainingMachine(cfg);
    m.addCallback({ onStep: () => steps++ });
    ProgressivePlane.attach(m);
  }, (e: unknown) => {
    assert.ok(e instanceof ProgressiveConfigError || e instanceof ConfigError, `unexpected ${String(e)}`);
    for (const re of res) assert.match((e as Error).message, re);
    return true;
  });
  assert.equal(steps, 0);
}

test('bad plans are rejected before the first step with clear messages', () => {
  planeError(config({ target_stacks: 2 }), /phase #2 'three': grows the rack to 3 stacks, past the configured target_stacks 2/);
  planeError(config({ freeze: { new_stack: 'frozen', trunk: 'frozen', embedding: 'frozen', head: 'frozen' } }), /freezes everything/);
  // Messages name the config fields as written (model.progressive.stack_lora, not the builder's stackLora).
  planeError(config({ stack_lora: { rank: 2, alpha: 2, targets: ['gate'] } }, { model: { preset: 'gpt2' } }), /model\.progressive: stack_lora\.targets: LoRA target 'gate' does not exist/);
  planeError(config({ freeze: 'adapters_only_trunk', progressive_lora: { rank: 2, alpha: 2, targets: ['q', 'gate'] } }, { model: { preset: 'gpt2' } }), /model\.progressive: progressive_lora\.targets: LoRA target 'gate'/);
  planeError(config({ freeze: 'adapters_only_trunk', trunk_format: 'nf4' }), /quantized \(nf4\) trunk is asked to train without adapters/);
  planeError(config({ freeze: 'none', trunk_format: 'int8' }), /int8 trunk cannot be trained directly/);
  // fp16 / bf16 trunks are frozen storage too (their weights would silently never train).
  planeError(config({ freeze: 'none', trunk_format: 'fp16' }), /fp16 trunk cannot be trained directly/);
  planeError(config({ freeze: 'frozen_trunk', trunk_format: 'bf16', progressive_lora: { rank: 2, alpha: 2 } }), /adapters on a trunk that the freeze policy freezes/);
  planeError(config(DUAL, { phases: [{ name: 'one', start_t: 0, end_t: 0.5 }, { name: 'two', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 2, progressive: { direction: 'prepend' } } } }] }),
    /phase #1 'two': model\.progressive\.direction differs/);
  planeError(config({ growth: { kind: 'ramp', t0: 0.2, t1: 0.4 } }), /after the ramp starts/);
  // The plane sets the optimizer groups: role groups of optimizer.param_groups would be ignored, so they are refused.
  planeError({ ...config({ freeze: 'none' }), optimizer: { lr: 4e-3, param_groups: [{ name: 'no_decay' }, { name: 'new_stack', lr_scale: 2 }] } },
    /optimizer\.param_groups: expected none besides the default no_decay group while model\.progressive sets the optimizer groups/, /group_lr_scale/, /found \[\{"name":"new_stack","lr_scale":2\}\]/);
  // Schema errors come from the config parser, with the path.
  assert.throws(() => parseConfig(config({ trunk_format: 'fp8' })), (e: unknown) => e instanceof ConfigError && /model\.progressive\.trunk_format/.test(e.message) && /fp8/.test(e.message));
  assert.throws(() => parseConfig(config({ growth: 'copy_bottom' })), (e: unknown) => e instanceof ConfigError && /model\.progressive\.growth/.test(e.message));
  assert.throws(() => parseConfig(config({ freez: 'none' })), (e: unknown) => e instanceof ConfigError && /freez/.test(e.message));
  // stack_lora keys the chosen strategy would not read are refused, not ignored.
  const loraError = (stackLora: Obj, ...res: RegExp[]) => assert.throws(() => parseConfig(config({ stack_lora: stackLora })), (e: unknown) => e instanceof ConfigError && res.every((re) => re.test(e.message)));
  loraError({ rank: 2, alpha: 2, max_rank: 8 }, /model\.progressive\.stack_lora\.max_rank: expected no max_rank \(only strategy 'growing' caps the rank\)/, /found 8/);
  loraError({ strategy: 'per_stack', ranks: [2, 2, 2], rank: 2 }, /stack_lora\.rank: expected no rank/);
  loraError({ strategy: 'growing', rank: 2, factor: 3 }, /stack_lora\.factor: expected no factor \(factor is the geometric growth's ratio/);
  loraError({ strategy: 'growing', rank: 2, growth: 'geometric', step: 1 }, /stack_lora\.step/);
  loraError({ rank: 2, alpha: 2, ranks: [1, 2, 3] }, /stack_lora\.ranks: expected no ranks/);
  parseConfig(config({ stack_lora: { strategy: 'growing', rank: 2, growth: 'geometric', factor: 3, max_rank: 8 } }));
});

test('without attach, the plane validates when the machine is made (config alone, or a plane in options.hooks)', () => {
  assert.throws(() => new TrainingMachine(config({ target_stacks: 2 }), { hooks: [new ProgressivePlane()] }), /past the configured target_stacks 2/);
  assert.throws(() => new TrainingMachine(config({ target_stacks: 2 })), /past the configured target_stacks 2/);
});

test('ProgressiveTrainer.trainRack: equal append phases on one TrainingMachine; ProgressiveDataLoader.getBatchSpec', () => {
  const model = llama({ vocabSize: 48, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, dFF: 24, stacks: 1, seed: 2 });
  const builder = new ProgressiveRackBuilder(model, { targetStacks: 4, freeze: 'frozen_trunk', growth: { kind: 'copy_top' } });
  const tokens = syntheticTokenData({ vocab_size: 48, tokens: 3000, seed: 1 });
  const loader = new ProgressiveDataLoader(tokens, { seq_len: 8, batch_size: 4, objective: 'clm' }, { seed: 1 });
  const spec = loader.getBatchSpec();
  assert.equal(spec.seq_len, 8);
  assert.equal(spec.batch_size, 4);
  assert.equal(spec.objective, 'clm');
  const phases: string[] = [];
  const { result, stacks, machine } = new ProgressiveTrainer({ stepsPerPhase: 5, optimizer: { lr: 5e-3 }, callbacks: [{ onPhaseStart: (p) => phases.push(p.name) }] })
    .trainRack(builder, loader, { targetStacks: 3 });
  assert.deepEqual(stacks, [1, 2, 3]);
  assert.deepEqual(phases, ['stacks_1', 'stacks_2', 'stacks_3']);
  assert.equal(model.rack.numStacks, 3);
  assert.equal(result.losses.length, 15);
  assert.deepEqual(result.phase_transitions, [5, 10]);
  assert.ok(result.losses.at(-1)! < result.losses[0]!);
  assert.equal(ProgressiveDataLoader.fromMachine(machine).getBatchSpec().seq_len, 8);
  assert.throws(() => new ProgressiveTrainer().trainRack(builder, loader, { targetStacks: 5 }), /past the builder's targetStacks 4/);
});

test('ProgressiveTrainer.trainRack grows right to left too, and takes a built model or a config\'s model section', () => {
  const tokens = syntheticTokenData({ vocab_size: 48, tokens: 3000, seed: 1 });
  const loader = new ProgressiveDataLoader(tokens, { seq_len: 8, batch_size: 4, objective: 'clm' }, { seed: 1 });
  const trainer = new ProgressiveTrainer({ stepsPerPhase: 3, optimizer: { lr: 5e-3 } });
  // Prepend with a builder: the first stack stays rightmost, the suffix (and head) frozen.
  const model = llama({ vocabSize: 48, dModel: 16, nLayers: 1, nHeads: 2, dFF: 24, stacks: 1, seed: 2 });
  const first = model.rack.stacks.at(0);
  const builder = new ProgressiveRackBuilder(model, { direction: 'prepend', targetStacks: 3, growth: { kind: 'copy_top' } });
  const r = trainer.trainRack(builder, loader);
  assert.deepEqual(r.stacks, [1, 2, 3]);
  assert.equal(model.rack.numStacks, 3);
  assert.equal(model.rack.stacks.at(2), first);
  assert.deepEqual(r.plane.stackIds(), [0, 1, 2]);
  // A built model, grown by model.progressive settings.
  const built = llama({ vocabSize: 48, dModel: 16, nLayers: 1, nHeads: 2, dFF: 24, stacks: 1, seed: 3 });
  const b = trainer.trainRack(built, loader, { targetStacks: 2, progressive: { direction: 'prepend', growth: 'identity' } });
  assert.equal(built.rack.numStacks, 2);
  assert.equal(b.plane.builder.direction, 'prepend');
  // A config's model section: the config path (model.progressive installed by the machine).
  const c = trainer.trainRack({ preset: 'llama', d_model: 16, n_heads: 2, d_ff: 24, blocks_per_stack: 1, n_stacks: 1, progressive: { direction: 'prepend', growth: 'copy_top' } }, loader, { targetStacks: 2 });
  assert.equal(c.machine.model.model.rack.numStacks, 2);
  assert.equal(c.plane.builder.direction, 'prepend');
  assert.equal(c.result.losses.length, 6);
  assert.throws(() => trainer.trainRack(llama({ vocabSize: 48, dModel: 16, nLayers: 1, nHeads: 2, dFF: 24, stacks: 1, seed: 3 }), loader), /give targetStacks/);
  c.machine.model.model.dispose();
});

test('a config with model.progressive installs the plane itself (no hook passed)', () => {
  const m = new TrainingMachine(config({ freeze: 'frozen_trunk' }, { steps: 8 }));
  const r = m.train();
  assert.equal(m.model.model.rack.numStacks, 3);
  assert.equal(r.losses.length, 8);
  const plane = ProgressivePlane.attach(m);
  assert.equal(plane, m.getHook('progressive'));
  assert.throws(() => ProgressivePlane.attach(m, { builderGroups: false }), /already has a ProgressivePlane/);
  m.dispose();
});
