// Sample-quality metrics: unigram entropy, the judge's ids of a sample, the judge's perplexity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import { llama } from '../../../src/nn/index.js';
import { judgePerplexity, sampleQuality, toJudgeIds, unigramEntropy, generateSamples } from '../../../src/training/evaluation/index.js';

if (E.availableBackends().includes('native')) E.setNumThreads(1);

test('unigram entropy: 0 for one repeated token, ln n for n distinct tokens', () => {
  assert.equal(unigramEntropy([4, 4, 4, 4]), 0);
  assert.ok(Math.abs(unigramEntropy([1, 2, 3, 4]) - Math.log(4)) < 1e-12);
  assert.ok(Math.abs(unigramEntropy([1, 1, 2, 2]) - Math.log(2)) < 1e-12);
});

test('judge perplexity: windows of at most seqLen predictions after the start token, each scored by the causal model', () => {
  const model = llama({ vocabSize: 12, dModel: 16, nLayers: 1, nHeads: 2, dFF: 24, seed: 1 });
  const text = [3, 5, 7, 2, 9, 4, 4];
  const judge = { model, tokenizer: undefined, seqLen: 4, startTokenId: 1 };
  const got = judgePerplexity(judge, [text]);
  // By hand: [1,3,5,7] → [3,5,7,2], then [2,9,4] → [9,4,4].
  const ce = (input: number[], target: number[]) => E.noGrad(() => E.tidy(() => E.crossEntropy(
    model.forward(E.tensor(Int32Array.from(input), [1, input.length], { dtype: 'int32' })).logits,
    E.tensor(Int32Array.from(target), [1, target.length], { dtype: 'int32' }), { reduction: 'sum' }).item()));
  const nll = (ce([1, 3, 5, 7], [3, 5, 7, 2]) + ce([2, 9, 4], [9, 4, 4])) / 7;
  assert.equal(got.tokens, 7);
  assert.ok(Math.abs(got.nll - nll) < 1e-5, `${got.nll} vs ${nll}`);
  assert.ok(Math.abs(got.perplexity - Math.exp(nll)) < 1e-4 * got.perplexity);
  // Without tokenizers the judge reads the sample's ids, which must fit its vocabulary.
  assert.throws(() => toJudgeIds([[3, 40]], judge, { tokenizer: undefined }), /sample token 40 is outside the judge's vocabulary \[0, 12\)/);
  const q = sampleQuality([[3, 3, 3, 3], [1, 2, 3, 4]], judge, { tokenizer: undefined });
  assert.equal(q.samples, 2);
  assert.ok(Math.abs(q.entropy - Math.log(4) / 2) < 1e-12);
  assert.ok(q.entropy_se > 0);
  // Causal samples continue the start token; seeded.
  const a = generateSamples(model, { sampler: 'clm', count: 2, length: 5, startTokenId: 1, seed: 3 });
  assert.equal(a.length, 2);
  assert.ok(a.every((s) => s.length === 5));
  assert.deepEqual(generateSamples(model, { sampler: 'clm', count: 2, length: 5, startTokenId: 1, seed: 3 }), a);
  assert.throws(() => generateSamples(model, { sampler: 'diffusion', count: 1, length: 5 }), /needs maskTokenId/);
  model.dispose();
});
