// Config problems that only show across phases are refused at start-up, before anything trains:
// a schedule that shrinks n_stacks, a phase whose sequences do not fit max_positions (RoPE models
// too), a base n_stacks no phase uses (the right-to-left recipe with n_stacks: 1000000).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ConfigError, TrainingMachine, loadConfig, parseConfig } from '../../src/training/index.js';
import { repoRoot } from '../io/support.js';

const BASE = {
  model: { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 2, blocks_per_stack: 1 },
  data: { corpus: { kind: 'synthetic', vocab_size: 64, tokens: 2000 }, seq_len: 16, batch_size: 4 },
  training: { total_steps: 10 },
};

function refusedWith(raw: unknown, pattern: RegExp): void {
  assert.throws(() => parseConfig(raw), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
}

test('a schedule that shrinks n_stacks is refused before training, naming the phase', () => {
  refusedWith({
    ...BASE,
    schedule: [
      { name: 'one', start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 2 } } },
      { name: 'two', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 1 } } },
    ],
  }, /schedule\[1\]\.overrides\.model\.n_stacks: expected at least 2 \(phase 'one' has 2 stacks; the live model only ever gains stacks\), found 1 in phase 'two'/);
});

test('max_positions below a phase\'s seq_len is refused for RoPE (llama) as for learned positions', () => {
  refusedWith({ ...BASE, model: { ...BASE.model, max_positions: 8 } }, /model\.max_positions: expected at least data\.seq_len = 16 of phase 'single_phase'/);
  refusedWith({ ...BASE, model: { ...BASE.model, preset: 'gpt2', max_positions: 8 } }, /model\.max_positions: expected at least data\.seq_len = 16/);
  refusedWith({
    ...BASE,
    model: { ...BASE.model, max_positions: 16 },
    schedule: [{ name: 'short', start_t: 0, end_t: 0.5 }, { name: 'long', start_t: 0.5, end_t: 1, overrides: { data: { seq_len: 32 } } }],
  }, /data\.seq_len = 32 of phase 'long'/);
  assert.equal(parseConfig({ ...BASE, model: { ...BASE.model, max_positions: 16 } }).phases.length, 1);
});

test('the right-to-left recipe with model.n_stacks: 1000000 is refused, not silently trained with 4 stacks', () => {
  const recipe = join(repoRoot(), 'recipes', 'right-to-left-diffusion.yaml');
  assert.throws(() => loadConfig(recipe, { set: ['model.n_stacks=1000000'] }),
    /model\.n_stacks: expected at most 4, the most stacks any phase has .*found 1000000 .*set by --set model\.n_stacks=1000000/);
  assert.equal(loadConfig(recipe).phases.at(-1)!.model!.n_stacks, 4);
});

test('a corpus too small for a later phase\'s batch is refused when the machine is built, before any step', () => {
  const raw = {
    ...BASE,
    data: { ...BASE.data, corpus: { kind: 'synthetic', vocab_size: 64, tokens: 600 }, seq_len: 8 },
    model: { ...BASE.model, max_positions: 256 },
    schedule: [{ name: 'short', start_t: 0, end_t: 0.5 }, { name: 'long', start_t: 0.5, end_t: 1, overrides: { data: { seq_len: 256 } } }],
  };
  assert.throws(() => new TrainingMachine(raw), /the training split has \d+ tokens, fewer than one batch needs: batch_size 4 × seq_len 256 \+ 1 \(the next-token targets\) = 1025/);
});
