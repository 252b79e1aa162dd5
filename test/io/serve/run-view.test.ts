// The run page's data from metrics records: the step columns (tokens, FLOPs, lr per group),
// evaluations placed on every x axis, events, samples, thinning of long runs, the list row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRunView, listEntryOf, MAX_STEP_POINTS, strideFor } from '../../../src/io/serve/index.js';

const status = { state: 'running' as const, detail: '' };
const config = { text: 'llama d16', total_steps: 4 };
const counts = { records: 0, malformed: 0, pending_bytes: 0 };

test('step columns, evaluations on every axis, model and session events, samples', () => {
  const records = [
    { type: 'phase_start', step: 0, t: 0, phase: 'one', phase_index: 0 },
    { type: 'step', step: 0, t: 0, phase: 'one', loss: 3, lr: 0.01, lrs: { default: 0.01 }, tokens: 10, tokens_seen: 10, tokens_per_s: 100 },
    { type: 'step', step: 1, t: 0.25, phase: 'one', loss: 2.5, lr: 0.01, lrs: { default: 0.01 }, tokens: 10, tokens_seen: 20, tokens_per_s: 100 },
    { type: 'eval', step: 2, t: 0.5, phase: 'one', loss: 2.4 },
    { type: 'phase_end', step: 2, t: 0.5, phase: 'one', result: { tokens: 20, flops: 2000 } },
    { kind: 'grow', step: 2, t: 0.5, phase: 'two', stacks: [{ index: 0, state: 'trainable' }, { index: 1, state: 'trainable' }], description: 'append stack 1' },
    { kind: 'resources', step: 2, t: 0.5, phase: 'two', n_stacks: 2, flops_per_token: { train: 300 } },
    { type: 'phase_start', step: 2, t: 0.5, phase: 'two', phase_index: 1 },
    { type: 'step', step: 2, t: 0.5, phase: 'two', loss: 2.2, lr: 0.01, lrs: { default: 0.01, 'new-stack': 0.02 }, tokens: 10, tokens_seen: 30, tokens_per_s: NaN },
    { type: 'step', step: 3, t: 0.75, phase: 'two', loss: 2.0, lr: 0.01, lrs: { default: 0.01, 'new-stack': 0.02 }, tokens: 10, tokens_seen: 40, tokens_per_s: 90 },
    { type: 'sample', step: 4, t: 1, prompt: 'The', text: ' state of the Union' },
    { type: 'checkpoint', step: 4, reason: 'final' },
  ];
  const view = buildRunView({ name: 'r', records, status, config, mtimeMs: 0, counts });
  const c = view.steps;
  assert.deepEqual(c.step, [0, 1, 2, 3]);
  assert.deepEqual(c.tokens, [10, 20, 30, 40]);
  // Records without flops_seen: each phase's FLOPs per token (phase_end result, else resources) × tokens.
  assert.deepEqual(c.flops, [1000, 2000, 5000, 8000]);
  assert.deepEqual(c.lrs, { default: [0.01, 0.01, 0.01, 0.01], 'new-stack': [null, null, 0.02, 0.02] });
  assert.deepEqual(c.tokens_per_s, [100, 100, null, 90], 'NaN is sent as a gap');
  assert.deepEqual(view.evals, [{ step: 2, t: 0.5, tokens: 20, flops: 2000, val_loss: 2.4, val_ppl: null }], 'an eval after k steps sits at the tokens and FLOPs of k steps');
  assert.deepEqual(view.phases.map((p) => p.name), ['one', 'two']);
  assert.deepEqual(view.markers.map((m) => [m.kind, m.t]), [['grow', 0.5]]);
  assert.deepEqual(view.events.map((e) => e.kind), ['phase', 'grow', 'phase', 'checkpoint']);
  assert.equal(view.events.at(-1)!.t, 1, 'a checkpoint\'s t from its step and total_steps');
  assert.deepEqual(view.samples, [{ step: 4, t: 1, prompt: 'The', text: ' state of the Union' }]);
  assert.match(view.stack_svg, /^<svg/);
  assert.equal(view.resources.length, 1);
  const row = listEntryOf(view);
  assert.deepEqual([row.steps, row.total_steps, row.best_val_loss, row.config], [4, 4, 2.4, 'llama d16']);

  // flops_seen, when the steps carry it, is taken as written.
  const withFlops = buildRunView({ name: 'r', records: [{ type: 'step', step: 0, t: 0, loss: 1, tokens_seen: 5, flops_seen: 77 }], status, config, mtimeMs: 0, counts });
  assert.deepEqual(withFlops.steps.flops, [77]);
});

test('long runs are thinned by a power-of-two stride so that sent points stay valid', () => {
  assert.equal(strideFor(MAX_STEP_POINTS), 1);
  assert.equal(strideFor(MAX_STEP_POINTS + 1), 2);
  assert.equal(strideFor(10 * MAX_STEP_POINTS), 16);
  const n = 3 * MAX_STEP_POINTS;
  const records = Array.from({ length: n }, (_, i) => ({ type: 'step', step: i, t: i / n, loss: 1 }));
  const view = buildRunView({ name: 'r', records, status, config: { text: '', total_steps: n }, mtimeMs: 0, counts });
  assert.equal(view.steps.stride, 4);
  assert.equal(view.steps.step.length, n / 4);
  assert.deepEqual(view.steps.step.slice(0, 3), [0, 4, 8]);
  assert.equal(view.last_step, n - 1);
});
