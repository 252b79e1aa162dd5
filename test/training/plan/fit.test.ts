// The memory-fit check at training start-up (issue: "no size sanity check"): configs that cannot
// fit are refused before anything is allocated, with the figure and the largest contributor;
// training.memory_check: false lets them through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFitError, TrainingMachine, checkMemoryFit, parseConfig, planRun } from '../../../src/training/index.js';
import { stackwise } from '../../cli/support.js';

type Obj = Record<string, unknown>;
const base = (model: Obj = {}, data: Obj = {}, training: Obj = {}, optimizer: Obj = {}): Obj => ({
  model: { preset: 'llama', d_model: 32, n_heads: 2, n_stacks: 2, blocks_per_stack: 1, ...model },
  data: { corpus: { kind: 'synthetic', vocab_size: 64, tokens: 2000 }, seq_len: 16, batch_size: 4, ...data },
  optimizer: { lr: 1e-3, ...optimizer },
  training: { total_steps: 2, progress: 'off', tensorboard: false, ...training },
});

test('oversized configs are refused before anything is allocated, naming the figure and the largest part', () => {
  const cases: [Obj, RegExp][] = [
    [base({ blocks_per_stack: 100000, d_model: 1024, n_heads: 8 }), /weights|optimizer state|gradients/],
    [base({}, { batch_size: 1e8 }), /activations saved for backward/],
    [base({ d_model: 1e9 }), /optimizer state/],
  ];
  for (const [cfg, largest] of cases) {
    assert.throws(() => new TrainingMachine(cfg), (e: unknown) => {
      assert.ok(e instanceof MemoryFitError, String(e));
      assert.match(e.message, /needs about [\d.]+ [KMGT]iB of memory at its peak/);
      assert.match(e.message, largest);
      assert.match(e.message, /memory_check: false|--no-memory-check/);
      return true;
    });
  }
});

test('the check compares the plan with the limit; memory_check: false skips it; a fitting run trains', () => {
  const parsed = parseConfig(base());
  const plan = planRun(parsed);
  assert.equal(checkMemoryFit(parsed, plan.peak.bytes)?.peak.bytes, plan.peak.bytes);
  assert.throws(() => checkMemoryFit(parsed, plan.peak.bytes - 1), MemoryFitError);
  // Turned off: the machine gets past the check (and then builds the small model).
  const m = new TrainingMachine(base({}, {}, { memory_check: false }));
  m.train();
  m.dispose();
});

test('stackwise plan prints the per-phase table and JSON; train refuses what does not fit', () => {
  const r = stackwise('plan', 'configs/scale/llama-7b.yaml', '--no-measure', '--json');
  assert.equal(r.status, 0, r.stderr);
  const plan = JSON.parse(r.stdout) as { params: number; phases: { bytes: { weights: number; optimizerState: number; peak: number } }[]; fits: boolean };
  assert.ok(Math.abs(plan.params - 6.74e9) / 6.74e9 < 0.01, `7B params ${plan.params}`);
  assert.equal(plan.phases[0]!.bytes.weights, plan.params * 4);
  assert.equal(plan.phases[0]!.bytes.optimizerState, plan.params * 8);
  const t = stackwise('plan', 'configs/scale/llama-1b.yaml', '--gemm-gflops', '40', '--set', 'training.mode=stack_wise', '--set', 'model.progressive.trunk_format=nf4');
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /stack-22\s+22 \(nf4 trunk\)/);
  assert.match(t.stdout, /peak [\d.]+ GiB in phase/);
  const bad = stackwise('train', '--set', 'model.d_model=1200000000', '--steps', '20'); // divisible by the 6 heads
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /needs about .* of memory at its peak .* largest part is optimizer state/);
  // The refusal names what was asked for: the file with the overrides that made the run this big.
  assert.match(bad.stderr, /default\.yaml with --set model\.d_model=1200000000 --steps 20: this run needs about/);
});
