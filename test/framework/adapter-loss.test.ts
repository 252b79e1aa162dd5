import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { llama, type Model } from '../../src/nn/index.js';
import { ModelAdapter, type ForwardContext } from '../../src/framework/index.js';
import { preparedLoss, preparedTargets } from '../../src/training/objectives/loss.js';
import { ActivationCache, CachedPrefixForward } from '../../src/training/progressive/activation-cache.js';

const V = 41, B = 3, S = 8;

/** A prepared CLM batch: targets are the next ids, the last position unscored; optional weights. */
function batchOf(seed: number, weighted: boolean): { ids: Int32Array; targets: Int32Array; weights?: Float32Array } {
  const ids = E.randInt([B, S], V, { seed }).toArray() as Int32Array;
  const targets = new Int32Array(B * S).fill(-100);
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < S; t++) targets[b * S + t] = ids[b * S + t + 1];
  return weighted ? { ids, targets, weights: Float32Array.from(targets, (x, i) => (x === -100 ? 0 : 0.05 + (i % 3) * 0.02)) } : { ids, targets };
}

function lossAndGrads(m: Model, f: () => Tensor): { loss: number; op: string | undefined; grads: Map<string, ArrayLike<number>> } {
  return E.tidy(() => {
    const loss = f();
    loss.backward();
    const out = { loss: loss.item(), op: loss.node?.op, grads: new Map(m.trainableParameters().filter(([, t]) => t.grad).map(([n, t]) => [n, t.grad!.toArray()] as const)) };
    m.zeroGrad();
    return out;
  });
}

function assertSame(a: ReturnType<typeof lossAndGrads>, b: ReturnType<typeof lossAndGrads>, tol: number, what: string): void {
  assert.ok(Math.abs(a.loss - b.loss) <= tol, `${what}: loss ${a.loss} vs ${b.loss}`);
  assert.deepEqual([...a.grads.keys()].sort(), [...b.grads.keys()].sort(), `${what}: parameters with gradients`);
  for (const [n, g] of b.grads) {
    const h = a.grads.get(n)!;
    for (let i = 0; i < g.length; i++) assert.ok(Math.abs(h[i] - g[i]) <= tol, `${what}: gradient of ${n}[${i}] ${h[i]} vs ${g[i]}`);
  }
}

test('ModelAdapter.loss: the fused loss equals preparedLoss of the logits (mean, weighted sum), also through overrides', () => {
  const model = llama({ vocabSize: V, dModel: 16, nLayers: 3, nHeads: 2, dFF: 24, stacks: 3, seed: 9 });
  const adapter = new ModelAdapter(model);
  const ctx: ForwardContext = { seed: 5, step: 0, sampleIds: [10, 11, 12] };
  for (const weighted of [false, true]) {
    const batch = batchOf(weighted ? 2 : 1, weighted);
    const what = weighted ? 'weighted' : 'mean';
    const ids = () => E.tensor(batch.ids, [B, S], { dtype: 'int32' });
    const scored = () => preparedTargets(batch, B, S, model.dtype, model.backend);
    const plain = lossAndGrads(model, () => preparedLoss(adapter.forward(ids(), ctx), batch));
    const fused = lossAndGrads(model, () => adapter.loss(ids(), ctx, scored()));
    assert.equal(plain.op, 'crossEntropy');
    assert.equal(fused.op, 'linearCrossEntropy', `${what}: the adapter's loss is fused`);
    assertSame(fused, plain, 1e-5, what);

    // A forwardOverride gives logits: the loss goes through them (and wins over hiddenOverride).
    adapter.forwardOverride = (a, x, c) => a.model.forward(x, { seed: c.seed }).logits;
    adapter.hiddenOverride = () => { throw new Error('hiddenOverride must not run under a forwardOverride'); };
    const overridden = lossAndGrads(model, () => adapter.loss(ids(), ctx, scored()));
    assert.equal(overridden.op, 'crossEntropy');
    assertSame(overridden, plain, 1e-6, `${what} forwardOverride`);
    adapter.forwardOverride = undefined;
    adapter.hiddenOverride = undefined;
  }

  // Frozen trunk served by the activation cache through hiddenOverride: same loss and gradients.
  model.freeze();
  model.rack.stacks.at(2).unfreeze();
  model.head.unfreeze();
  const cache = new ActivationCache({ memoryBudgetBytes: 1 << 20 });
  const cached = new CachedPrefixForward(model, { cache });
  const batch = batchOf(3, false);
  const ids = () => E.tensor(batch.ids, [B, S], { dtype: 'int32' });
  const scored = () => preparedTargets(batch, B, S, model.dtype, model.backend);
  const direct = lossAndGrads(model, () => adapter.loss(ids(), ctx, scored()));
  adapter.hiddenOverride = (_a, x, c) => cached.forwardHidden(x, c.sampleIds!, { seed: c.seed }).hidden;
  for (let pass = 0; pass < 2; pass++) {
    const viaCache = lossAndGrads(model, () => adapter.loss(ids(), ctx, scored()));
    assert.equal(viaCache.op, 'linearCrossEntropy');
    assertSame(viaCache, direct, 1e-5, `cached pass ${pass}`);
    assert.deepEqual(adapter.forward(ids(), ctx).shape, [B, S, V], 'forward gives logits through the hidden override');
  }
  assert.ok(cache.stats.hits >= B, 'the second pass is served from the cache');
  cache.dispose();
  model.dispose();
});
