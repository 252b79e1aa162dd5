import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import { gpt2, llama, type Model } from '../../../src/nn/index.js';
import { AdamW } from '../../../src/optim/index.js';
import { rngFor } from '../../../src/data/rng.js';
import {
  depthUnrollSample, diffusionSample, fillMask, generate, sampleToken, tokenProbabilities,
} from '../../../src/training/sampling/index.js';
import { CausalLMObjective, MaskedDiffusionObjective, NoiseSchedule, preparedLoss, type BatchObjective } from '../../../src/training/objectives/index.js';

const V = 12;
const MASK = 0;
// Tiny models: one thread avoids OpenMP overhead on a shared machine.
if (E.availableBackends().includes('native')) E.setNumThreads(1);

function throwsWith(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof Error && re.test(e.message));
}

test('logits → token: greedy, temperature, top-k, top-p, exclusions, seeded', () => {
  const logits = [1, 3, 2, 0.5, 2.9];
  assert.equal(sampleToken(logits, { temperature: 0 }, rngFor(1)).token, 1);
  assert.equal(sampleToken(logits, { temperature: 0, excludeIds: [1] }, rngFor(1)).token, 4);
  const k2 = tokenProbabilities(logits, { topK: 2 });
  assert.deepEqual([...k2].map((p) => p > 0), [false, true, false, false, true]);
  assert.ok(Math.abs(k2.reduce((a, p) => a + p, 0) - 1) < 1e-12);
  // top-p: the smallest set of most likely tokens reaching p.
  const full = tokenProbabilities(logits);
  const p = full[1]! + full[4]! - 1e-6;
  assert.deepEqual([...tokenProbabilities(logits, { topP: p })].map((x) => x > 0), [false, true, false, false, true]);
  assert.deepEqual([...tokenProbabilities(logits, { topP: full[1]! + full[4]! + 1e-6 })].map((x) => x > 0), [false, true, true, false, true]);
  // Temperature flattens (high) or sharpens (low) the distribution.
  assert.ok(tokenProbabilities(logits, { temperature: 5 })[0]! > full[0]!);
  assert.ok(tokenProbabilities(logits, { temperature: 0.2 })[1]! > full[1]!);
  // Sampling frequencies follow the probabilities; a seed fixes the draws.
  const counts = new Array(5).fill(0);
  const rng = rngFor(9);
  for (let i = 0; i < 4000; i++) counts[sampleToken(logits, {}, rng).token]++;
  full.forEach((q, v) => assert.ok(Math.abs(counts[v] / 4000 - q) < 0.03, `token ${v}: ${counts[v] / 4000} vs ${q}`));
  const draw = (s: number) => Array.from({ length: 20 }, (_, i) => sampleToken(logits, { topK: 3 }, rngFor(s, i)).token);
  assert.deepEqual(draw(1), draw(1));
  assert.notDeepEqual(draw(1), draw(2));
  throwsWith(() => sampleToken(logits, { temperature: -1 }, rngFor(1)), /temperature must be a finite number ≥ 0/);
  throwsWith(() => tokenProbabilities([1, 2], { excludeIds: [0, 1] }), /every token is excluded/);
});

/**
 * 'counting': sequences counting up modulo (V - 1), skipping [MASK] = 0: 1, 2, …, 11, 1, 2, …
 * 'constant': one random token repeated (any visible token reveals every masked one).
 */
function patternBatch(kind: 'counting' | 'constant', B: number, S: number, seed: number): { ids: Int32Array; batch: number; seqLen: number; sampleIds: number[] } {
  const rng = rngFor(seed);
  const ids = new Int32Array(B * S);
  for (let b = 0; b < B; b++) {
    const start = rng.nextInt(V - 1);
    for (let i = 0; i < S; i++) ids[b * S + i] = 1 + ((start + (kind === 'counting' ? i : 0)) % (V - 1));
  }
  return { ids, batch: B, seqLen: S, sampleIds: Array.from({ length: B }, (_, b) => seed * B + b) };
}

function train(model: Model, obj: BatchObjective, steps: number, kind: 'counting' | 'constant'): number {
  const opt = new AdamW(model.parameters(), { lr: 2e-2, weightDecay: 0 });
  let last = 0;
  for (let step = 0; step < steps; step++) {
    const batch = patternBatch(kind, 16, 8, step);
    const p = obj.prepare(batch, { t: step / steps, step, seed: 3, maskTokenId: MASK, vocabSize: V });
    last = E.tidy(() => {
      opt.zeroGrad();
      const l = preparedLoss(model.forward(E.tensor(p.inputIds, [16, 8], { dtype: 'int32' })).logits, p);
      l.backward();
      opt.step();
      return l.item();
    });
  }
  opt.zeroGrad();
  opt.dispose();
  return last;
}

test('CLM generation continues a learned pattern; seeded sampling; eos; batch rows are independent', () => {
  const m = gpt2({ vocabSize: V, dModel: 32, nLayers: 1, nHeads: 2, maxPositions: 16, seed: 1 });
  const loss = train(m, new CausalLMObjective(), 60, 'counting');
  assert.ok(loss < 0.5, `CLM loss ${loss}`);
  const g = generate(m, [[3, 4, 5]], { maxNewTokens: 6, temperature: 0 });
  assert.deepEqual(g.generated[0], [6, 7, 8, 9, 10, 11]);
  assert.deepEqual(g.sequences[0]!.slice(0, 3), [3, 4, 5]);
  // Greedy = argmax of the model's own next-token logits.
  const manual = E.tidy(() => E.noGrad(() => {
    m.eval();
    const l = m.forward(E.tensor(Int32Array.from([3, 4, 5]), [1, 3], { dtype: 'int32' })).logits.toArray();
    m.train();
    const last = l.subarray(2 * V, 3 * V);
    return last.indexOf(Math.max(...last));
  }));
  assert.equal(g.generated[0]![0], manual);
  const hot = { maxNewTokens: 8, temperature: 50, topK: 5, seed: 7 };
  const a = generate(m, [[1, 2], [5, 6]], hot);
  assert.deepEqual(generate(m, [[1, 2], [5, 6]], hot), a, 'same seed, same samples');
  assert.notDeepEqual(generate(m, [[1, 2], [5, 6]], { ...hot, seed: 8 }).generated, a.generated);
  assert.deepEqual(generate(m, [[1, 2]], hot).generated[0], a.generated[0], 'row 0 does not depend on the other rows');
  // The context is cropped to the position table (16) for long generations.
  assert.equal(generate(m, [[1]], { maxNewTokens: 20, temperature: 0 }).generated[0]!.length, 20);
  const eos = generate(m, [[3, 4]], { maxNewTokens: 6, temperature: 0, eosTokenId: 6 });
  assert.deepEqual(eos.generated[0], [5, 6]);
  throwsWith(() => generate(m, [[1, 2], [3]], { maxNewTokens: 1 }), /prompt 1 has 1 tokens but prompt 0 has 2/);
  throwsWith(() => generate(m, [[1, 99]], { maxNewTokens: 1 }), /token id 99 at position 1 is outside the vocabulary \[0, 12\)/);
  m.dispose();
});

test('MLM fill-in, masked-diffusion sampling and the time-as-depth unroll on a denoiser', () => {
  const m = llama({ vocabSize: V, dModel: 32, nLayers: 2, nHeads: 2, dFF: 48, stacks: 2, seed: 2 });
  m.setAttentionMode('bidirectional');
  const loss = train(m, new MaskedDiffusionObjective({ noise: { kind: 'uniform', min: 0.1, max: 0.9 }, per: 'sequence' }), 40, 'constant');
  assert.ok(loss < 0.3, `diffusion loss ${loss}`);
  // Fill-in of a constant sequence.
  const filled = fillMask(m, [4, 4, MASK, 4, 4, 4, 4, 4], { maskTokenId: MASK });
  assert.deepEqual(filled.ids, [4, 4, 4, 4, 4, 4, 4, 4]);
  const iter = fillMask(m, [MASK, MASK, 9, MASK, 9, 9, 9, 9], { maskTokenId: MASK, mode: 'iterative' });
  assert.deepEqual(iter.ids, [9, 9, 9, 9, 9, 9, 9, 9]);
  assert.equal(iter.filled.length, 3);
  // Diffusion sampling from a one-token prompt: the masked count follows the linear schedule.
  const d = diffusionSample(m, { maskTokenId: MASK, prompt: [3], length: 8, steps: 7 });
  assert.deepEqual(d.ids, [3, 3, 3, 3, 3, 3, 3, 3]);
  assert.deepEqual(d.trace.map((s) => s.remaining), [6, 5, 4, 3, 2, 1, 0]);
  const cos = diffusionSample(m, { maskTokenId: MASK, prompt: [3], length: 8, steps: 3, schedule: 'cosine' });
  assert.deepEqual(cos.trace.map((s) => s.remaining), [Math.floor(7 * Math.cos(Math.PI / 6) + 1e-9), Math.floor(7 * Math.cos(Math.PI / 3) + 1e-9), 0]);
  // One step = one-shot greedy fill (the same logits decide every position).
  const template = [5, MASK, MASK, 8, MASK, 10, MASK, 1];
  assert.deepEqual(diffusionSample(m, { maskTokenId: MASK, template, steps: 1 }).ids, fillMask(m, template, { maskTokenId: MASK }).ids);
  const s1 = diffusionSample(m, { maskTokenId: MASK, length: 6, steps: 3, temperature: 1, seed: 4 });
  assert.deepEqual(diffusionSample(m, { maskTokenId: MASK, length: 6, steps: 3, temperature: 1, seed: 4 }), s1);
  assert.ok(s1.ids.every((t) => t !== MASK));
  // Time-as-depth unroll through both stacks: after stack 1 the masked share is r_2 = 0.5.
  const u = depthUnrollSample(m, { maskTokenId: MASK, prompt: [3], length: 8, schedule: [1, 0.5] });
  assert.deepEqual(u.trace.map((s) => [s.index, s.committed.length, s.remaining]), [[0, 4, 3], [1, 3, 0]]);
  assert.equal(u.stacksUsed, 2);
  assert.deepEqual(u.ids, [3, 3, 3, 3, 3, 3, 3, 3]);
  // Nothing masked → no stack runs (early exit).
  assert.equal(depthUnrollSample(m, { maskTokenId: MASK, template: [1, 2, 3], schedule: [1, 0.5] }).stacksUsed, 0);
  throwsWith(() => depthUnrollSample(m, { maskTokenId: MASK, length: 4, schedule: new NoiseSchedule([1, 0.5, 0.2]) }), /schedule has 3 levels but the rack has 2 stacks/);
  throwsWith(() => diffusionSample(m, { maskTokenId: MASK, template: [1], length: 3 }), /either a template or length\/prompt/);
  m.dispose();
  // A one-stack rack: the unroll reads out after the only stack = one-shot fill of the full model.
  const one = llama({ vocabSize: V, dModel: 16, nLayers: 1, nHeads: 2, dFF: 24, seed: 5 });
  one.setAttentionMode('bidirectional');
  const tpl = [MASK, 3, MASK, MASK, 7];
  assert.deepEqual(depthUnrollSample(one, { maskTokenId: MASK, template: tpl, schedule: [1] }).ids, fillMask(one, tpl, { maskTokenId: MASK }).ids);
  one.dispose();
});
