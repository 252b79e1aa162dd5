import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { crossCheck, gradCheck, assertThrowsWith, assertClose, hasNative } from './harness.js';

test('linearGroup: native matches reference; gradients match finite differences', (t) => {
  // q/k/v-like (three weights, one narrower), with and without biases, batched input.
  const qkv = (x: Tensor, wq: Tensor, wk: Tensor, wv: Tensor) => E.linearGroup(x, [wq, wk, wv]);
  crossCheck(t, 'linearGroup qkv', [{ shape: [2, 5, 8] }, { shape: [8, 8] }, { shape: [4, 8] }, { shape: [4, 8] }], qkv);
  gradCheck('linearGroup qkv', [{ shape: [2, 3, 4] }, { shape: [4, 4] }, { shape: [2, 4] }, { shape: [3, 4] }], qkv);
  const mixed = (x: Tensor, w0: Tensor, b0: Tensor, w1: Tensor) => E.linearGroup(x, [w0, w1], [b0, null]);
  crossCheck(t, 'linearGroup bias', [{ shape: [7, 6] }, { shape: [5, 6] }, { shape: [5] }, { shape: [9, 6] }], mixed);
  gradCheck('linearGroup bias', [{ shape: [3, 4] }, { shape: [5, 4] }, { shape: [5] }, { shape: [2, 4] }], mixed);
  // Large enough for threaded BLAS and the accumulating GEMMs' blocking.
  crossCheck(t, 'linearGroup large', [{ shape: [130, 96] }, { shape: [96, 96] }, { shape: [200, 96] }], (x, a, b) => E.linearGroup(x, [a, b]), { atol: 1e-3 });
});

test('linearGroup equals separate linears: outputs bit for bit, gradients within rounding', () => {
  for (const backend of hasNative ? ['native', 'reference'] : ['reference']) {
    E.tidy(() => {
      const mk = (shape: number[], seed: number) => { const x = E.randn(shape, { seed, backend }); x.requiresGrad = true; return x; };
      const x = mk([3, 4, 16], 1), w = [mk([16, 16], 2), mk([8, 16], 3), mk([8, 16], 4)], b = mk([8], 5);
      const coef = [E.randn([3, 4, 16], { seed: 6, backend }), E.randn([3, 4, 8], { seed: 7, backend }), E.randn([3, 4, 8], { seed: 8, backend })];
      const loss = (ys: Tensor[]) => ys.map((y, i) => E.sumToShape(E.mul(y, coef[i]), [])).reduce((s, v) => E.add(s, v));
      const grads = (ys: Tensor[]) => {
        loss(ys).backward();
        const g = [x, ...w, b].map((p) => p.grad!.toArray());
        for (const p of [x, ...w, b]) { p.grad!.dispose(); p.grad = null; }
        return g;
      };
      const fused = E.linearGroup(x, w, [null, b, null]);
      const apart = [E.linear(x, w[0]), E.linear(x, w[1], b), E.linear(x, w[2])];
      fused.forEach((y, i) => assert.deepEqual(y.toArray(), apart[i].toArray(), `${backend}: output ${i}`));
      const gf = grads(fused), ga = grads(apart);
      gf.forEach((g, i) => assertClose(g, ga[i], `${backend}: gradient ${i}`, 1e-5, 1e-5));
    });
  }
});

test('linearGroup: frozen weights and unused outputs get no gradient; the input still does', () => {
  E.tidy(() => {
    const x = E.randn([4, 6], { seed: 1 });
    x.requiresGrad = true;
    const w0 = E.randn([3, 6], { seed: 2 }), w1 = E.randn([5, 6], { seed: 3 });
    w1.requiresGrad = true; // w0 frozen (a LoRA base)
    const [y0] = E.linearGroup(x, [w0, w1]); // y1 unused: no gradient reaches it
    E.sumToShape(y0, []).backward();
    assert.equal(w0.grad, null);
    assert.equal(w1.grad, null);
    const expected = E.sumToShape(w0, [6]).toArray();
    for (let r = 0; r < 4; r++) assertClose(x.grad!.toArray().slice(r * 6, r * 6 + 6), expected, `dx row ${r}`, 1e-6, 1e-6);
  });
});

test('linearGroup: bad input names the op, the layer and the shapes', () => {
  const x = E.zeros([2, 4]);
  assertThrowsWith(() => E.linearGroup(x, []), /linearGroup/, /at least one weight/);
  assertThrowsWith(() => E.linearGroup(x, [E.zeros([3, 4]), E.zeros([3, 5])]), /linearGroup/, /weight 1/, /\[out, 4\]/);
  assertThrowsWith(() => E.linearGroup(x, [E.zeros([3, 4])], [E.zeros([4])]), /linearGroup/, /bias 0/, /\[3\]/);
  assertThrowsWith(() => E.linearGroup(x, [E.zeros([3, 4])], [null, null]), /linearGroup/, /1 weights but 2 biases/);
});
