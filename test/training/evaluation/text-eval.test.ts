// Perplexity and bits per byte, checked against a direct computation from the model's logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import { trainBpe } from '../../../src/data/index.js';
import { Model, llamaConfig } from '../../../src/nn/index.js';
import { documentTokens, evaluateText, evaluateTokens, tokenByteLengths } from '../../../src/training/index.js';

const texts = ['The cat sat on the mat.', 'Café au lait — 3 cups, naïvely!', 'the mat sat on the cat'];
const tokenizer = trainBpe(texts, { vocabSize: 280 });

function model(): Model {
  return Model.fromConfig(llamaConfig({ vocabSize: tokenizer.vocabSize, dModel: 16, nLayers: 1, nHeads: 2, dFF: 24 }), { seed: 3 });
}

test('bits per byte = NLL of the text tokens in bits / their UTF-8 bytes; perplexity over every scored token', () => {
  const m = model();
  const ids = documentTokens(tokenizer, texts.map((text) => ({ text })));
  const lengths = tokenByteLengths(tokenizer);
  assert.equal(lengths[tokenizer.special.EOS], 0);
  const S = 5;
  const r = evaluateTokens(m, ids, lengths, { seqLen: S, batchSize: 2 });
  // Direct: log-softmax of every window's logits.
  const windows = Math.floor((ids.length - 1) / S);
  let all = 0, text = 0, bytes = 0, n = 0;
  for (let w = 0; w < windows; w++) {
    const x = E.tensor(ids.slice(w * S, (w + 1) * S), [1, S], { dtype: 'int32' });
    const logp = E.noGrad(() => E.logSoftmax(m.forward(x).logits, -1).toArray());
    const V = tokenizer.vocabSize;
    for (let i = 0; i < S; i++) {
      const t = ids[w * S + i + 1]!;
      const nll = -logp[i * V + t]!;
      all += nll;
      n++;
      if (lengths[t]! > 0) { text += nll; bytes += lengths[t]!; }
    }
  }
  assert.equal(r.scored, n);
  assert.equal(r.bytes, bytes);
  assert.ok(Math.abs(r.loss - all / n) < 1e-5, `${r.loss} vs ${all / n}`);
  assert.ok(Math.abs(r.perplexity - Math.exp(all / n)) < 1e-3);
  assert.ok(Math.abs(r.bits_per_byte - text / Math.LN2 / bytes) < 1e-5, `${r.bits_per_byte} vs ${text / Math.LN2 / bytes}`);
  // Token bytes add up to the text's bytes: every byte of every document is in exactly one token.
  const total = Array.from(ids).reduce((s, id) => s + lengths[id]!, 0);
  assert.equal(total, texts.reduce((s, t) => s + Buffer.byteLength(t, 'utf8'), 0));
  m.dispose();
});

test('evaluateText refuses a tokenizer larger than the model and too short a text', () => {
  const small = Model.fromConfig(llamaConfig({ vocabSize: 100, dModel: 8, nLayers: 1, nHeads: 2, dFF: 8 }), { seed: 1 });
  assert.throws(() => evaluateText(small, tokenizer, [{ text: 'x' }], { seqLen: 4, batchSize: 1 }), /the tokenizer has \d+ tokens but the model's embedding only 100/);
  small.dispose();
  const m = model();
  assert.throws(() => evaluateText(m, tokenizer, [{ text: 'a' }], { seqLen: 64, batchSize: 1 }), /fewer than one window of 65/);
  m.dispose();
});
