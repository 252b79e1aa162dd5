// The library side of `stackwise compare`: the verdict's statistics, the end-to-end twin of a
// progressive config (written schedule and training.mode), and refusing a config that does not grow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/training/config/index.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkProgressive, compareVerdict, endToEndConfig, runComparison } from '../../../src/training/run/index.js';

type Obj = Record<string, unknown>;

function grown(): Obj {
  return {
    model: { preset: 'llama', d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 1, blocks_per_stack: 1, progressive: { growth: 'copy_top' } },
    data: { corpus: { kind: 'synthetic', vocab_size: 32, tokens: 2000 }, seq_len: 8, batch_size: 2 },
    training: { total_steps: 12, seed: 0 },
    schedule: [
      { name: 'one', start_t: 0, end_t: 0.5 },
      { name: 'two', start_t: 0.5, end_t: 0.75, overrides: { model: { n_stacks: 2 } } },
      { name: 'three', start_t: 0.75, end_t: 1, overrides: { model: { n_stacks: 3, progressive: { growth: 'copy_top', freeze: 'frozen_trunk' } } } },
    ],
  };
}

test('verdict: one seed cannot tell', () => {
  const v = compareVerdict([1.0], [1.2]);
  assert.equal(v.seeds, 1);
  assert.equal(v.better, null);
  assert.equal(v.standard_error, null);
  assert.ok(Math.abs(v.mean_difference! + 0.2) < 1e-12);
  assert.match(v.text, /one seed cannot tell/);
  assert.match(v.text, /progressive ends 0\.200 nats lower/);
});

test('verdict: a consistent difference over 3 seeds is called, with mean ± standard error and the t interval', () => {
  const prog = [1.0, 1.1, 1.05];
  const e2e = [1.2, 1.32, 1.24];
  const v = compareVerdict(prog, e2e);
  const d = [-0.2, -0.22, -0.19];
  const mean = (d[0]! + d[1]! + d[2]!) / 3;
  const sd = Math.sqrt(d.reduce((a, x) => a + (x - mean) ** 2, 0) / 2);
  const se = sd / Math.sqrt(3);
  assert.ok(Math.abs(v.mean_difference! - mean) < 1e-12);
  assert.ok(Math.abs(v.standard_error! - se) < 1e-12);
  assert.equal(v.df, 2);
  assert.ok(Math.abs(v.interval95![0] - (mean - 4.303 * se)) < 1e-9 && Math.abs(v.interval95![1] - (mean + 4.303 * se)) < 1e-9);
  assert.equal(v.better, 'progressive');
  assert.match(v.text, /^progressive is better by 0\.203 ± 0\.0088 nats \(3 seeds; 95% interval .* excludes 0/);
  // The other way round: end to end is better.
  assert.equal(compareVerdict(e2e, prog).better, 'end_to_end');
  assert.match(compareVerdict(e2e, prog).text, /^end to end is better by/);
});

test('verdict: a difference smaller than its spread is no clear difference; a missing loss gives no verdict', () => {
  const v = compareVerdict([1.0, 1.3, 1.1], [1.1, 1.1, 1.15]);
  assert.equal(v.better, null);
  assert.ok(v.interval95![0] < 0 && v.interval95![1] > 0);
  assert.match(v.text, /^no clear difference: progressive − end to end = .* includes 0/);
  const none = compareVerdict([1.0, null], [1.1, 1.2]);
  assert.equal(none.mean_difference, null);
  assert.match(none.text, /no verdict/);
});

test('the end-to-end twin: the final phase\'s model from step 0, one phase, no growth, the given steps', () => {
  const raw = grown();
  const parsed = parseConfig(raw);
  checkProgressive(parsed, 'grown.yaml');
  const twin = endToEndConfig(raw, parsed, 9);
  assert.equal(twin['schedule'], undefined);
  const model = twin['model'] as Obj;
  assert.equal(model['progressive'], undefined, 'no growth settings (neither the base\'s nor the last phase\'s)');
  assert.equal(model['n_stacks'], 3);
  const p = parseConfig(twin);
  assert.equal(p.phases.length, 1);
  assert.equal(p.phases[0]!.model!.n_stacks, 3);
  assert.equal(p.controller.totalSteps, 9);
  assert.equal((raw['model'] as Obj)['n_stacks'], 1, 'the progressive config is left as it was');
});

test('the end-to-end twin of a training.mode config: the mode\'s final model, no mode', () => {
  const raw: Obj = { ...grown(), model: { preset: 'llama', d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 2, blocks_per_stack: 2 }, training: { total_steps: 8, mode: { kind: 'block_wise', block_size: 1 } } };
  delete raw['schedule'];
  const parsed = parseConfig(raw);
  assert.ok(parsed.phases.length > 1);
  checkProgressive(parsed, 'mode.yaml');
  const last = parsed.phases.at(-1)!.model!;
  const p = parseConfig(endToEndConfig(raw, parsed, 5));
  assert.equal(p.phases.length, 1);
  assert.equal(p.mode, undefined);
  assert.equal(p.phases[0]!.model!.n_stacks * p.phases[0]!.model!.blocks_per_stack, last.n_stacks * last.blocks_per_stack);
});

test('a config that does not grow is refused, saying what compare needs', () => {
  const flat = grown();
  delete flat['schedule'];
  delete (flat['model'] as Obj)['progressive'];
  assert.throws(() => checkProgressive(parseConfig(flat), 'flat.yaml'), /flat\.yaml: stackwise compare needs a progressive config .* this config trains 1 stack\(s\) of 1 block\(s\) in 1 phase\(s\)/);
  const same = grown();
  (same['schedule'] as Obj[]).forEach((p) => { delete p['overrides']; });
  assert.throws(() => checkProgressive(parseConfig(same), 'same.yaml'), /needs a progressive config .* in 3 phase\(s\) and ends with 1 stack\(s\)/);
});

test('equal FLOPs when the last phase freezes the trunk: the end-to-end steps pay for the weight gradients it skips', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-compare-lib-'));
  try {
    const path = join(dir, 'frozen.yaml');
    writeFileSync(path, [
      'model: { preset: llama, d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 1, blocks_per_stack: 1, progressive: { growth: copy_top, freeze: frozen_trunk } }',
      'data: { corpus: { kind: synthetic, vocab_size: 32, tokens: 3000 }, seq_len: 8, batch_size: 4, eval_batches: 1 }',
      'training: { total_steps: 16, checkpoint_every: 0, eval_every: 4, tensorboard: false }',
      'schedule:',
      '  - { name: one, start_t: 0, end_t: 0.5 }',
      '  - { name: two, start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 2 } } }',
    ].join('\n'));
    const r = runComparison(path, { out: join(dir, 'out') });
    assert.ok(r.cost_ratio > 1.05, `end to end trains the trunk the last phase froze: cost ratio ${r.cost_ratio}`);
    assert.ok(Math.abs(r.flops_ratios[0]! - 1) < 0.05, `equal FLOPs within 5%: ratio ${r.flops_ratios[0]}`);
    assert.equal(r.runs.length, 2);
    assert.match(r.verdict.text, /one seed cannot tell/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
