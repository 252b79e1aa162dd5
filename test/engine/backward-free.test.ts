import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';

// A test op: identity forward; its gradient notes the live bytes when the walk reaches it.
let liveAtProbe = -1;
for (const be of E.availableBackends()) {
  E.registerKernel('testProbe', be, ([x]) => [E.noGrad(() => E.runOp('copy', [x!], {})[0]!)]);
}
E.registerGradient('testProbe', ([dy]) => { liveAtProbe = E.getDefaultBackend().memory().bytes; return [dy!]; });

/** Gradients of every parameter after one backward of a deep tanh stack whose first op is the
 * probe (its gradient runs last), and the live bytes before backward and at the probe. */
function run(freeSaved: boolean): { grads: Float32Array[]; liveAtEnd: number; liveBefore: number } {
  const be = E.getDefaultBackend();
  const params = Array.from({ length: 8 }, (_, i) => { const w = E.keep(E.randn([32, 32], { seed: 10 + i, std: 0.3 })); w.requiresGrad = true; return w; });
  const x0 = E.keep(E.randn([64, 32], { seed: 3 }));
  x0.requiresGrad = true;
  let liveBefore = -1;
  E.tidy(() => {
    let h = E.runOp('testProbe', [x0], {})[0]!;
    for (const w of params) h = E.tanh(E.matmul(h, w));
    const loss = E.sum(E.mul(h, h));
    liveBefore = be.memory().bytes;
    loss.backward(undefined, { freeSaved });
    assert.equal(loss.isDisposed, false, 'the root survives backward');
    assert.ok(Number.isFinite(loss.item()));
  });
  const all = [x0, ...params];
  const grads = all.map((p) => Float32Array.from(p.grad!.toArray() as Float32Array));
  for (const p of all) { p.grad?.dispose(); p.dispose(); }
  return { grads, liveAtEnd: liveAtProbe, liveBefore };
}

test('backward with freeSaved: the same gradients bit for bit, and the activations are gone by the end of the walk', () => {
  const keep = run(false), free = run(true);
  keep.grads.forEach((g, i) => assert.deepEqual(free.grads[i], g, `parameter ${i}: gradients differ`));
  // Without freeing, the activations (and more: the gradients) are all still alive at the last node.
  assert.ok(keep.liveAtEnd > keep.liveBefore, `expected growth without freeing: ${keep.liveBefore} → ${keep.liveAtEnd}`);
  assert.ok(free.liveAtEnd < free.liveBefore, `freeing: the live bytes at the end of the walk (${free.liveAtEnd}) should be below those before backward (${free.liveBefore})`);
  assert.ok(free.liveAtEnd < keep.liveAtEnd);
});

test('freeSaved disposes intermediates, never the root, a kept tensor or a leaf', () => {
  E.tidy(() => {
    const w = E.keep(E.tensor([1, 2, 3], [3]));
    w.requiresGrad = true;
    const x = E.tensor([0.5, -1, 2], [3]);
    const h = E.mul(w, x);
    const kept = E.keep(E.exp(h));
    const s = E.sum(E.mul(kept, h));
    s.backward(undefined, { freeSaved: true });
    assert.equal(h.isDisposed, true);
    assert.equal(kept.isDisposed, false);
    assert.equal(s.isDisposed, false);
    assert.equal(x.isDisposed, false);
    assert.equal(w.isDisposed, false);
    // d/dw sum(exp(w x) · w x) = x · exp(wx) · (1 + wx)
    const expect = [1, 2, 3].map((wi, i) => { const xi = [0.5, -1, 2][i]!; return xi * Math.exp(wi * xi) * (1 + wi * xi); });
    w.grad!.toList().forEach((g, i) => assert.ok(Math.abs(g - expect[i]!) < 1e-3 * Math.abs(expect[i]!) + 1e-5, `grad ${i}: ${g} vs ${expect[i]}`));
    // A second walk over the freed graph fails loudly instead of reading freed memory.
    assert.throws(() => s.backward(), /disposed/);
    kept.dispose(); w.grad!.dispose(); w.dispose();
  });
});
