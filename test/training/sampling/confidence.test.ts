// The masked samplers commit the most confident positions first: confidence is the model's
// probability of the proposed token, also under greedy decoding (where the sampling distribution
// is one-hot and would rank nothing), and top-p after top-k applies to the renormalised top-k.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import { llama, type Model } from '../../../src/nn/index.js';
import { rngFor } from '../../../src/data/rng.js';
import { depthUnrollSample, diffusionSample, fillMask, sampleToken, tokenProbabilities } from '../../../src/training/sampling/index.js';

const V = 10;
const MASK = 0;

/**
 * Logits of a stand-in model: position i proposes token 1 + (i mod (V - 1)) with a margin that
 * grows with `margin(i)`, so the most confident position is known in advance.
 */
function craftedLogits(S: number, margin: (i: number) => number): Float32Array {
  const l = new Float32Array(S * V);
  for (let i = 0; i < S; i++) l[i * V + 1 + (i % (V - 1))] = margin(i);
  return l;
}

/** A real tiny model whose forward (and head, for the depth unroll) return crafted logits. */
function standIn(margin: (i: number) => number): Model {
  const m = llama({ vocabSize: V, dModel: 8, nLayers: 2, nHeads: 2, dFF: 8, stacks: 2, seed: 1 });
  m.setAttentionMode('bidirectional');
  const logitsOf = (B: number, S: number) => {
    const one = craftedLogits(S, margin);
    const all = new Float32Array(B * S * V);
    for (let b = 0; b < B; b++) all.set(one, b * S * V);
    return E.tensor(all, [B, S, V]);
  };
  m.forward = (ids) => ({ logits: logitsOf(ids.shape[0]!, ids.shape[1]!) });
  m.head.forward = (h) => logitsOf(h.shape[0]!, h.shape[1]!);
  return m;
}

test('sampleToken reports the model probability of the token, also when greedy', () => {
  const logits = [0.5, 2, 1, -1];
  const model = tokenProbabilities(logits);
  assert.equal(sampleToken(logits, { temperature: 0 }, rngFor(1)).token, 1);
  for (const o of [{ temperature: 0 }, { temperature: 0.3 }, { temperature: 1, topK: 1 }, { temperature: 2, topP: 0.1 }]) {
    const s = sampleToken(logits, o, rngFor(1));
    assert.ok(Math.abs(s.prob - model[s.token]!) < 1e-12, `${JSON.stringify(o)}: prob ${s.prob} vs ${model[s.token]}`);
  }
  // With an exclusion the probability is over the tokens that may be produced.
  const ex = sampleToken(logits, { temperature: 0, excludeIds: [1] }, rngFor(1));
  assert.equal(ex.token, 2);
  const e = [0.5, 1, -1].map(Math.exp);
  assert.ok(Math.abs(ex.prob - e[1]! / (e[0]! + e[1]! + e[2]!)) < 1e-12);
});

test('top-p after top-k keeps the smallest set reaching p of the renormalised top-k distribution', () => {
  // probabilities ≈ [0.5, 0.3, 0.2] (exactly, from their logs)
  const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.2)];
  const kept = (o: { topK?: number; topP?: number }) => [...tokenProbabilities(logits, o)].map((p) => p > 0);
  // top-2 renormalised: [0.625, 0.375] → p = 0.6 keeps one token.
  assert.deepEqual(kept({ topK: 2, topP: 0.6 }), [true, false, false]);
  assert.deepEqual(kept({ topK: 2, topP: 0.7 }), [true, true, false]);
  // top-p alone over the full distribution: 0.5 < 0.6 ≤ 0.8.
  assert.deepEqual(kept({ topP: 0.6 }), [true, true, false]);
  assert.deepEqual(kept({ topP: 0.5 }), [true, false, false]);
  const p = tokenProbabilities(logits, { topK: 2, topP: 0.7 });
  assert.ok(Math.abs(p[0]! - 0.625) < 1e-12 && Math.abs(p[1]! - 0.375) < 1e-12);
});

test('diffusion sampling and iterative fill-in commit the most confident positions first (greedy)', () => {
  // Confidence grows to the right: right-to-left commits, not left-to-right.
  const m = standIn((i) => i);
  const d = diffusionSample(m, { maskTokenId: MASK, length: 6 });
  assert.deepEqual(d.trace.map((s) => s.committed), [[5], [4], [3], [2], [1], [0]]);
  assert.deepEqual(d.ids, [1, 2, 3, 4, 5, 6]);
  assert.ok(d.ids.every((t) => t !== MASK));
  const two = diffusionSample(m, { maskTokenId: MASK, length: 6, steps: 3 });
  assert.deepEqual(two.trace.map((s) => s.committed), [[4, 5], [2, 3], [0, 1]]);
  const f = fillMask(m, [MASK, 7, MASK, MASK, 3, MASK], { maskTokenId: MASK, mode: 'iterative' });
  assert.deepEqual(f.filled.map((x) => x.position), [5, 3, 2, 0]);
  for (const x of f.filled) assert.ok(x.prob > 0 && x.prob < 1, `model probability, not the one-hot 1: ${x.prob}`);
  m.dispose();
  // Confidence peaking in the middle: the middle goes first (distinct margins: no ties).
  const mid = standIn((i) => [1, 3, 5, 6, 4, 2, 0][i]!);
  assert.deepEqual(diffusionSample(mid, { maskTokenId: MASK, length: 7 }).trace.map((s) => s.committed[0]), [3, 2, 4, 1, 5, 0, 6]);
  mid.dispose();
});

test('the depth unroll commits the most confident positions after each stack', () => {
  const m = standIn((i) => i);
  const u = depthUnrollSample(m, { maskTokenId: MASK, length: 8, schedule: [1, 0.5] });
  // After stack 0: 8 → 4 masked (the 4 most confident: positions 4..7); after stack 1: none.
  assert.deepEqual(u.trace.map((s) => [s.index, s.committed]), [[0, [4, 5, 6, 7]], [1, [0, 1, 2, 3]]]);
  assert.equal(u.stacksUsed, 2);
  m.dispose();
});
