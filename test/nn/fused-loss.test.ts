import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { bert, gpt2, llama, LMHead, Model, type ForwardLossOptions } from '../../src/nn/index.js';
import { assertClose, hasNative, ids, ints } from './helpers.js';

type Place = { backend: string; dtype: 'float32' | 'float64' };
const PLACES: Place[] = [{ backend: 'reference', dtype: 'float64' }, ...(hasNative ? [{ backend: 'native', dtype: 'float32' } as Place] : [])];
const tolOf = (p: Place) => (p.dtype === 'float64' ? 1e-10 : 2e-5);

/** Loss and every parameter gradient of one loss function (gradients cleared after). */
function lossAndGrads(m: Model, f: () => Tensor): { loss: number; op: string | undefined; grads: Map<string, Float32Array | Float64Array | Int32Array> } {
  return E.tidy(() => {
    const loss = f();
    E.mulScalar(loss, 0.7).backward();
    const grads = new Map(m.namedParameters().filter(([, t]) => t.grad).map(([n, t]) => [n, t.grad!.toArray()] as const));
    const out = { loss: loss.item(), op: loss.node?.op, grads };
    m.zeroGrad();
    return out;
  });
}

/** forwardLoss against loss(forward(...).logits): same value, same gradients for every parameter. */
function checkSame(m: Model, x: Tensor, labels: Tensor, opts: ForwardLossOptions, tol: number, expectOp: string, what: string): void {
  const fused = lossAndGrads(m, () => m.forwardLoss(x, labels, opts));
  const plain = lossAndGrads(m, () => m.loss(m.forward(x, opts).logits, labels, opts));
  assert.equal(fused.op, expectOp, `${what}: loss op`);
  assertClose([fused.loss], [plain.loss], tol, `${what}: loss`);
  assert.deepEqual([...fused.grads.keys()].sort(), [...plain.grads.keys()].sort(), `${what}: parameters with gradients`);
  assert.ok(plain.grads.size > 0, `${what}: some gradient`);
  for (const [name, g] of plain.grads) assertClose(fused.grads.get(name)!, g, tol, `${what}: gradient of ${name}`);
}

/** Non-zero values for a zero-initialised bias, so that it matters. */
function randomize(t: Tensor, seed: number): void {
  const v = E.randn(t.shape, { seed, std: 0.5, dtype: t.dtype, backend: t.backend.name });
  t.backend.upload(t.storage, v.toArray());
  v.dispose();
}

test('forwardLoss: llama (untied head, final norm) matches loss(forward) with shift, weights, sum, chunks', () => {
  for (const place of PLACES) {
    const m = llama({ vocabSize: 37, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 24, seed: 1, ...place });
    const x = ids(3, 6, 37, 1, place.backend);
    const tol = tolOf(place);
    checkSame(m, x, x, { seed: 4 }, tol, 'linearCrossEntropy', `llama ${place.backend}`);
    checkSame(m, x, x, { chunkSize: 5 }, tol, 'linearCrossEntropy', `llama ${place.backend} chunk 5`);
    const w = E.randn([3, 6], { seed: 2, mean: 1, std: 0.2, dtype: place.dtype, backend: place.backend });
    checkSame(m, x, x, { weights: w, reduction: 'sum', shift: false }, tol, 'linearCrossEntropy', `llama ${place.backend} weighted sum`);
    m.dispose();
  }
});

test('forwardLoss: gpt2 (tied embeddings: one gradient for table and decoder) matches loss(forward)', () => {
  for (const place of PLACES) {
    const m = gpt2({ vocabSize: 29, dModel: 16, nLayers: 2, nHeads: 2, maxPositions: 16, dropout: 0.1, seed: 2, ...place });
    m.train();
    const x = ids(2, 7, 29, 3, place.backend);
    checkSame(m, x, x, { seed: 11, chunkSize: 4 }, tolOf(place), 'linearCrossEntropy', `gpt2 ${place.backend}`);
    m.dispose();
  }
});

test('forwardLoss: bert MLM head (dense, activation, norm, decoder + bias) with padding and ignored targets', () => {
  for (const place of PLACES) {
    const m = bert({ vocabSize: 31, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, maxPositions: 16, seed: 3, ...place });
    randomize(m.getParameter('head.bias'), 5);
    const x = ids(2, 6, 31, 4, place.backend);
    const labels = ints([3, -100, 7, -100, -100, 1, -100, 30, -100, 0, 2, -100], [2, 6], place.backend);
    const mask = ints([1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1], [2, 6], place.backend);
    checkSame(m, x, labels, { attentionMask: mask, chunkSize: 2 }, tolOf(place), 'linearCrossEntropy', `bert ${place.backend}`);
    // LoRA on the head's dense layer: the transform runs as a module, the decoder is still fused.
    m.head.freeze();
    (m.head as unknown as { dense: { addLora(o: object): void } }).dense.addLora({ rank: 2, alpha: 4, seed: 1, init: 'random' });
    checkSame(m, x, labels, { attentionMask: mask }, tolOf(place), 'linearCrossEntropy', `bert ${place.backend} LoRA dense`);
    m.dispose();
  }
});

/** An LM head with its own projection (logits halved): only `project` knows its logits. */
class HalvedLMHead extends LMHead {
  override project(h: Tensor): Tensor {
    return E.mulScalar(super.project(h), 0.5);
  }
}

test('forwardLoss: heads that cannot be fused fall back to the logits (classification, a custom project)', () => {
  for (const place of PLACES) {
    const cls = bert({ vocabSize: 30, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, maxPositions: 16, head: 'classification', nClasses: 3, seed: 6, ...place });
    const x = ids(2, 5, 30, 3, place.backend);
    assert.equal(cls.head.decoderInput(E.zeros([2, 5, 16], place)), null);
    checkSame(cls, x, ints([0, 2], [2], place.backend), {}, tolOf(place), 'crossEntropy', `classification ${place.backend}`);
    cls.dispose();

    const base = llama({ vocabSize: 23, dModel: 16, nLayers: 1, nHeads: 2, dFF: 20, seed: 7, ...place });
    const head = new HalvedLMHead(16, 23, { finalNorm: { kind: 'rmsnorm', eps: 1e-6 }, seed: 7, ...place });
    const m = new Model({ family: 'llama' }, base.embedding, base.rack, head);
    assert.equal(head.decoderInput(E.zeros([1, 2, 16], place)), null);
    const y = ids(2, 5, 23, 8, place.backend);
    checkSame(m, y, y, {}, tolOf(place), 'crossEntropy', `custom project ${place.backend}`);
    m.dispose();
  }
});

test('forwardLoss: bad labels are reported as forwardLoss errors', () => {
  const m = llama({ vocabSize: 20, dModel: 8, nLayers: 1, nHeads: 2, dFF: 12, seed: 5 });
  const x = ids(2, 4, 20, 2);
  assert.throws(() => m.forwardLoss(x, E.zeros([2, 4])), /Model\.forwardLoss: labels must be int32/);
  assert.throws(() => m.forwardLoss(x, ints([1, 2], [2])), /Model\.forwardLoss: shifted labels must be \[B, S\]/);
  m.dispose();
});
