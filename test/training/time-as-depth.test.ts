// Time-as-depth from config: `data.mask: { kind: depth, levels }` ties each batch's noise to the
// stack being trained (its index in the final rack), for both curricula; bad configs fail early.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, DataAdapter, SpecValidationError, depthRatioRange, maskRatioAt, validateBatchSpec } from '../../src/framework/index.js';
import { ProgressiveConfigError, TrainingMachine } from '../../src/training/index.js';
import type { TrainingHooks } from '../../src/training/index.js';

type Obj = Record<string, unknown>;

function config(direction: 'append' | 'prepend', mask: Obj, progressive = true): Obj {
  return {
    model: {
      preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1, attention: 'bidirectional',
      ...(progressive ? { progressive: { direction, target_stacks: 3, freeze: direction === 'prepend' ? 'frozen_suffix' : 'frozen_trunk' } } : {}),
    },
    data: { corpus: { kind: 'synthetic', vocab_size: 40, tokens: 3000 }, seq_len: 10, batch_size: 4, eval_batches: 1, objective: 'diffusion', mask },
    optimizer: { lr: 3e-3 },
    training: { total_steps: 9, progress: 'off', seed: 5, tensorboard: false },
    schedule: [
      { name: 'one', start_t: 0, end_t: 1 / 3 },
      { name: 'two', start_t: 1 / 3, end_t: 2 / 3, overrides: { model: { n_stacks: 2 } } },
      { name: 'three', start_t: 2 / 3, end_t: 1, overrides: { model: { n_stacks: 3 } } },
    ],
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Mean share of positions masked (and scored) per phase, against the expected ratio of each phase. */
function assertShares(shares: number[][], expected: number[], tol = 0.1): void {
  assert.equal(shares.length, expected.length);
  shares.forEach((s, k) => assert.ok(Math.abs(mean(s) - expected[k]!) < tol, `phase ${k}: masked share ${mean(s).toFixed(3)} ≈ ${expected[k]} (±${tol})`));
}

/** The share of positions each step's first micro-batch scores, per phase. */
function maskedShareByPhase(m: TrainingMachine): number[][] {
  const shares: number[][] = [];
  const probe: TrainingHooks = {
    name: 'probe',
    onStepStart: (machine, ctx) => {
      const b = (machine.data as DataAdapter).trainBatch(ctx.step, 0, ctx.t);
      (shares[ctx.phaseIndex] ??= []).push(b.scored / b.tokens);
    },
  };
  m.addHook(probe);
  m.train();
  return shares;
}

test('depth mask spec: parsed and validated (levels in (0, 1], never increasing, a known mode)', () => {
  const ok = validateBatchSpec({ batch_size: 2, seq_len: 4, vocab_size: 9, objective: 'diffusion', mask: { kind: 'depth', levels: [1, 0.5, 0.15] } });
  assert.deepEqual(ok.mask, { kind: 'depth', levels: [1, 0.5, 0.15], mode: 'levels' });
  const bad = (mask: unknown) => assert.throws(() => validateBatchSpec({ batch_size: 2, seq_len: 4, vocab_size: 9, objective: 'diffusion', mask }), SpecValidationError);
  bad({ kind: 'depth', levels: [0.5, 0.75] });
  bad({ kind: 'depth', levels: [1, 0] });
  bad({ kind: 'depth', levels: [] });
  bad({ kind: 'depth' });
  bad({ kind: 'depth', levels: [1], mode: 'band' });
  assert.throws(() => validateBatchSpec({ batch_size: 2, seq_len: 4, vocab_size: 9, objective: 'diffusion', mask: { kind: 'depth', levels: [0.5, 0.75] } }), /levels\[1\].*at most levels\[0\] = 0\.5.*found 0\.75/s);
  assert.throws(() => validateBatchSpec({ batch_size: 2, seq_len: 4, vocab_size: 9, objective: 'diffusion', mask: { kind: 'depth', levels: [1], mode: 'band' } }), /did you mean 'bands'/);
});

test('depth ranges: one level per stack, or bands that cover the whole noise range; a stack index is required', () => {
  const levels = [1, 0.75, 0.55, 0.4, 0.25, 0.15];
  assert.deepEqual(depthRatioRange(levels, 'levels', 2), { min: 0.55, max: 0.55 });
  assert.deepEqual(depthRatioRange(levels, 'bands', 0), { min: 0.75, max: 1 });
  assert.deepEqual(depthRatioRange(levels, 'bands', 5), { min: 1e-3, max: 0.15 });
  assert.throws(() => depthRatioRange(levels, 'levels', 6), /stack index 6 is outside \[0, 6\)/);
  assert.deepEqual(maskRatioAt({ kind: 'depth', levels, mode: 'levels' }, 0.3, 1), { min: 0.75, max: 0.75 });
  assert.throws(() => maskRatioAt({ kind: 'depth', levels, mode: 'levels' }, 0.3), /needs a model that grows/);
});

test('right→left: the newest (leftmost) stack trains at its level — the noise rises as stacks are prepended', () => {
  const m = new TrainingMachine(config('prepend', { kind: 'depth', levels: [0.9, 0.5, 0.2] }));
  const shares = maskedShareByPhase(m);
  // Prepending: phase 1 trains final stack 2 (r = 0.2), then stack 1 (0.5), then stack 0 (0.9)
  // (diffusion masks each position with probability r, so the shares scatter around r).
  assertShares(shares, [0.2, 0.5, 0.9]);
  assert.equal(m.model.model.rack.numStacks, 3);
  m.dispose();
});

test('left→right: the appended stack trains at its level; bands draw inside (levels[k+1], levels[k]]', () => {
  const m = new TrainingMachine(config('append', { kind: 'depth', levels: [0.9, 0.5, 0.2] }));
  assertShares(maskedShareByPhase(m), [0.9, 0.5, 0.2]);
  m.dispose();
  const b = new TrainingMachine(config('append', { kind: 'depth', levels: [0.9, 0.5, 0.2], mode: 'bands' }));
  const shares = maskedShareByPhase(b);
  // Band k's middle: (0.5 + 0.9) / 2, (0.2 + 0.5) / 2, (0.001 + 0.2) / 2.
  assertShares(shares, [0.7, 0.35, 0.1], 0.2);
  b.dispose();
});

test('bad time-as-depth configs fail before training with the field named', () => {
  // Without model.progressive, phases raising n_stacks still grow the rack (the one way to grow): time-as-depth runs.
  const grown = new TrainingMachine(config('append', { kind: 'depth', levels: [0.9, 0.5, 0.2] }, false));
  assertShares(maskedShareByPhase(grown), [0.9, 0.5, 0.2]);
  grown.dispose();
  // A rack that never grows has no stack being trained: refused.
  const still = config('append', { kind: 'depth', levels: [0.9, 0.5, 0.2] }, false) as { schedule: Obj[] };
  still.schedule = still.schedule.map((p) => ({ ...p, overrides: {} }));
  assert.throws(() => new TrainingMachine(still), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match((e as Error).message, /data\.mask\.kind: expected a mask kind other than 'depth' for a rack that does not grow/);
    return true;
  });
  assert.throws(() => new TrainingMachine(config('prepend', { kind: 'depth', levels: [0.9, 0.2] })), (e: unknown) => {
    assert.ok(e instanceof ProgressiveConfigError);
    assert.match((e as Error).message, /2 noise levels, but the rack grows to target_stacks = 3/);
    return true;
  });
});
