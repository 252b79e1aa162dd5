// The masked-diffusion NELBO estimators against exact enumerations over mask patterns on tiny
// models: the Monte Carlo estimate agrees within its standard error, the error shrinks as draws
// grow, and the same seed gives the same figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import { Model, llamaConfig } from '../../../src/nn/index.js';
import { rngFor } from '../../../src/data/rng.js';
import {
  bitsPerByte, collapsedStrataVariance, depthLadder, depthUnrollNelbo, depthUnrollRowLosses, maskedDiffusionNelbo, NelboError,
} from '../../../src/training/evaluation/index.js';

if (E.availableBackends().includes('native')) E.setNumThreads(1);

const V = 10;
const MASK = 0;

function tinyModel(opts: { stacks?: number; time?: boolean; seed?: number } = {}): Model {
  const cfg = llamaConfig({ vocabSize: V, dModel: 16, nLayers: opts.stacks ?? 2, nHeads: 2, dFF: 24, stacks: opts.stacks ?? 2 });
  const m = Model.fromConfig(opts.time ? { ...cfg, timeEmbedding: { features: 8, hidden: 16 } } : cfg, { seed: opts.seed ?? 3 });
  m.setAttentionMode('bidirectional');
  // Sharper predictions than the initialisation's near-uniform ones, so masks matter.
  for (const p of m.parameters()) p.write((p.toArray() as Float32Array).map((v) => 3 * v));
  return m;
}

function windows(W: number, S: number, seed: number): Int32Array {
  const rng = rngFor(seed);
  return Int32Array.from({ length: W * S }, () => 1 + rng.nextInt(V - 1));
}

/** Σ over masked positions of −log p(x_i | x with `masked` set to [MASK]), by the plain model. */
function maskedCe(model: Model, x: Int32Array, masked: number[]): number {
  const S = x.length;
  const input = x.slice();
  const target = new Int32Array(S).fill(-100);
  for (const i of masked) { input[i] = MASK; target[i] = x[i]!; }
  return E.noGrad(() => E.tidy(() => E.crossEntropy(
    model.forward(E.tensor(input, [1, S], { dtype: 'int32', backend: model.backend })).logits,
    E.tensor(target, [1, S], { dtype: 'int32', backend: model.backend }),
    { reduction: 'sum' },
  ).item()));
}

const factorial = (n: number): number => (n <= 1 ? 1 : n * factorial(n - 1));

/**
 * The continuous-time NELBO exactly: ∫₀¹ (1/r) Σ_m r^|m| (1−r)^(S−|m|) CE(m) dr
 * = Σ_{m ≠ ∅} B(|m|, S − |m| + 1) · CE(m), B the Beta function.
 */
function exactContinuous(model: Model, x: Int32Array): number {
  const S = x.length;
  let total = 0;
  for (let bits = 1; bits < 1 << S; bits++) {
    const masked = Array.from({ length: S }, (_, i) => i).filter((i) => bits & (1 << i));
    const k = masked.length;
    total += (factorial(k - 1) * factorial(S - k)) / factorial(S) * maskedCe(model, x, masked);
  }
  return total;
}

test('continuous NELBO: the stratified Monte Carlo estimate agrees with the exact enumeration over mask patterns', () => {
  const model = tinyModel();
  const S = 5;
  const W = 2;
  const ids = windows(W, S, 1);
  let exact = 0;
  for (let w = 0; w < W; w++) exact += exactContinuous(model, ids.subarray(w * S, (w + 1) * S));
  const est = maskedDiffusionNelbo(model, ids, S, { maskTokenId: MASK, samples: 400, seed: 7 });
  assert.equal(est.bound, 'continuous');
  assert.equal(est.tokens, W * S);
  assert.equal(est.samples, 400);
  assert.ok(est.total_nats_se > 0);
  const z = Math.abs(est.total_nats - exact) / est.total_nats_se;
  assert.ok(z < 4, `estimate ${est.total_nats.toFixed(4)} ± ${est.total_nats_se.toFixed(4)} vs exact ${exact.toFixed(4)} (z = ${z.toFixed(2)})`);
  // The bound sits above the entropy of nothing: per token, at least the all-visible case's 0.
  assert.ok(Math.abs(est.nelbo - est.total_nats / (W * S)) < 1e-12);
  assert.ok(Math.abs(est.perplexity_bound - Math.exp(est.nelbo)) < 1e-9);
  model.dispose();
});

test('continuous NELBO: the standard error shrinks as draws grow; the same seed gives the same estimate', () => {
  const model = tinyModel({ time: true, seed: 4 });
  const S = 6;
  const ids = windows(3, S, 2);
  const few = maskedDiffusionNelbo(model, ids, S, { maskTokenId: MASK, samples: 8, seed: 1 });
  const many = maskedDiffusionNelbo(model, ids, S, { maskTokenId: MASK, samples: 128, seed: 1 });
  assert.ok(many.nelbo_se < few.nelbo_se / 2, `se ${many.nelbo_se} with 128 draws vs ${few.nelbo_se} with 8`);
  assert.ok(Math.abs(many.nelbo - few.nelbo) < 4 * Math.hypot(few.nelbo_se, many.nelbo_se));
  const again = maskedDiffusionNelbo(model, ids, S, { maskTokenId: MASK, samples: 8, seed: 1, batchSize: 5 });
  assert.equal(again.total_nats.toFixed(5), few.total_nats.toFixed(5));
  const other = maskedDiffusionNelbo(model, ids, S, { maskTokenId: MASK, samples: 8, seed: 2 });
  assert.notEqual(other.total_nats, few.total_nats);
  const same = maskedDiffusionNelbo(model, ids, S, { maskTokenId: MASK, samples: 8, seed: 1 });
  assert.equal(same.total_nats, few.total_nats);
  assert.equal(same.nelbo_se, few.nelbo_se);
  model.dispose();
});

test('depth-unroll NELBO: agrees with the exact enumeration over unmasking steps (time embedding given the masked share)', () => {
  const model = tinyModel({ stacks: 3, time: true, seed: 6 });
  const S = 4;
  const schedule = [1, 0.6, 0.25];
  const ladder = depthLadder(schedule);
  assert.deepEqual(ladder, [1, 0.6, 0.25, 0]);
  const ids = windows(1, S, 3);
  // Position i is revealed after step k with probability s_k − s_{k+1}: enumerate the 3^S assignments.
  const rows: { window: number; u: Float64Array }[] = [];
  const probs: number[] = [];
  for (let code = 0; code < 3 ** S; code++) {
    const u = new Float64Array(S);
    let p = 1;
    for (let i = 0, c = code; i < S; i++, c = Math.floor(c / 3)) {
      const k = c % 3;
      u[i] = (ladder[k]! + ladder[k + 1]!) / 2;
      p *= ladder[k]! - ladder[k + 1]!;
    }
    rows.push({ window: 0, u });
    probs.push(p);
  }
  const losses = depthUnrollRowLosses(model, ids, S, rows, ladder, MASK);
  const exact = losses.reduce((a, l, k) => a + l * probs[k]!, 0);
  assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  const est = depthUnrollNelbo(model, ids, S, schedule, { maskTokenId: MASK, samples: 600, seed: 3 });
  assert.equal(est.bound, 'depth_unroll');
  const z = Math.abs(est.total_nats - exact) / est.total_nats_se;
  assert.ok(z < 4, `estimate ${est.total_nats.toFixed(4)} ± ${est.total_nats_se.toFixed(4)} vs exact ${exact.toFixed(4)} (z = ${z.toFixed(2)})`);
  const few = depthUnrollNelbo(model, ids, S, schedule, { maskTokenId: MASK, samples: 20, seed: 3 });
  assert.ok(est.nelbo_se < few.nelbo_se / 2);
  model.dispose();
});

test('depth-unroll NELBO of one stack: the plain model on the all-masked window, exactly', () => {
  const model = tinyModel({ stacks: 1, seed: 8 });
  const S = 5;
  const ids = windows(2, S, 4);
  const est = depthUnrollNelbo(model, ids, S, [1], { maskTokenId: MASK, samples: 3 });
  const all = [0, 1, 2, 3, 4];
  const exact = maskedCe(model, ids.subarray(0, S), all) + maskedCe(model, ids.subarray(S), all);
  assert.ok(Math.abs(est.total_nats - exact) < 1e-4 * exact, `${est.total_nats} vs ${exact}`);
  assert.ok(est.total_nats_se < 1e-4);
  model.dispose();
});

test('NELBO inputs are checked; bits per byte; the collapsed-strata variance', () => {
  const model = tinyModel({ stacks: 1 });
  const ids = windows(1, 4, 5);
  assert.throws(() => maskedDiffusionNelbo(model, ids, 4, { maskTokenId: MASK, samples: 1 }), (e: unknown) => e instanceof NelboError && /must be an integer ≥ 2/.test(e.message));
  assert.throws(() => maskedDiffusionNelbo(model, ids, 3, { maskTokenId: MASK, samples: 4 }), /whole windows of 3 tokens, found 4 ids/);
  assert.throws(() => maskedDiffusionNelbo(model, Int32Array.from([1, MASK, 2, 3]), 4, { maskTokenId: MASK, samples: 4 }), /holds the \[MASK\] id 0 at position 1/);
  assert.throws(() => maskedDiffusionNelbo(model, Int32Array.from([1, 99, 2, 3]), 4, { maskTokenId: MASK, samples: 4 }), /token id 99 .* outside the vocabulary \[0, 10\)/);
  assert.throws(() => depthUnrollNelbo(model, ids, 4, [1, 0.5], { maskTokenId: MASK, samples: 4 }), /ladder has 2 steps but the rack has 1 stacks/);
  assert.equal(bitsPerByte(Math.LN2 * 8, 4), 2);
  assert.equal(bitsPerByte(3, 0), null);
  // Pairs: (y1 − y2)² / N² per pair.
  assert.ok(Math.abs(collapsedStrataVariance([1, 3, 2, 2]) - (4 + 0) / 16) < 1e-12);
  assert.throws(() => collapsedStrataVariance([1]), /at least 2 draws/);
  model.dispose();
});
