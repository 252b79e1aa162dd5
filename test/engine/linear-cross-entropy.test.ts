import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { assertClose, assertThrowsWith, crossCheck, gradCheck, hasNative, makeValues, type InputSpec } from './harness.js';

const BACKENDS = hasNative ? ['reference', 'native'] : ['reference'];

/** Targets in [0, V) with every `ignoreEvery`-th row set to -100 (none when 0). */
function targetValues(n: number, V: number, seed: number, ignoreEvery = 0): number[] {
  const v = Array.from(makeValues({ shape: [n], intHigh: V }, seed));
  return ignoreEvery ? v.map((x, i) => (i % ignoreEvery === ignoreEvery - 1 ? -100 : x)) : v;
}

interface Case {
  name: string;
  rows: number[];
  d: number;
  V: number;
  chunk?: number;
  bias?: boolean;
  weights?: boolean;
  reduction?: 'mean' | 'sum';
  ignoreEvery?: number;
}

const CASES: Case[] = [
  { name: '2-D, chunk divides N', rows: [12], d: 8, V: 19, chunk: 4 },
  { name: '2-D, chunk does not divide N, bias, ignored rows', rows: [13], d: 5, V: 23, chunk: 5, bias: true, ignoreEvery: 3 },
  { name: '3-D, weights, sum', rows: [2, 7], d: 6, V: 17, chunk: 3, weights: true, reduction: 'sum', ignoreEvery: 4 },
  { name: '3-D, weights, mean, bias, one chunk', rows: [3, 5], d: 7, V: 11, weights: true, bias: true, ignoreEvery: 2 },
  { name: 'chunk of 1 row', rows: [6], d: 4, V: 9, chunk: 1, bias: true },
  { name: 'larger, default chunk', rows: [4, 64], d: 32, V: 300, bias: true, ignoreEvery: 9 },
];

function specsOf(c: Case, seed: number): InputSpec[] {
  const n = c.rows.reduce((a, b) => a * b, 1);
  const specs: InputSpec[] = [
    { shape: [...c.rows, c.d] },
    { shape: [c.V, c.d], scale: 0.5 },
    { shape: [...c.rows], intHigh: c.V, values: targetValues(n, c.V, seed, c.ignoreEvery) },
  ];
  if (c.bias) specs.push({ shape: [c.V], scale: 0.3 });
  if (c.weights) specs.push({ shape: [...c.rows], shift: 1, scale: 0.3 });
  return specs;
}

/** (hidden, weight, targets, bias?, weights?) → the fused loss, with the case's options. */
function fused(c: Case) {
  return (h: Tensor, w: Tensor, t: Tensor, ...rest: Tensor[]) => {
    const bias = c.bias ? rest[0] : null;
    const weights = c.weights ? rest[c.bias ? 1 : 0] : null;
    return E.linearCrossEntropy(h, w, t, { bias, weights, reduction: c.reduction, chunkSize: c.chunk });
  };
}

/** The unfused reference: linear then crossEntropy. */
function unfused(c: Case) {
  return (h: Tensor, w: Tensor, t: Tensor, ...rest: Tensor[]) => {
    const bias = c.bias ? rest[0] : null;
    const weights = c.weights ? rest[c.bias ? 1 : 0] : null;
    return E.crossEntropy(E.linear(h, w, bias), t, { weights, reduction: c.reduction });
  };
}

test('linearCrossEntropy: native matches reference (loss and every gradient) over shapes, chunks, ignore, weights, bias, reductions', (t) => {
  CASES.forEach((c, k) => crossCheck(t, `lce ${c.name}`, specsOf(c, k), fused(c), { seed: k + 1 }));
});

test('linearCrossEntropy: gradients of hidden, weight, bias and weights match finite differences (float64)', () => {
  const small: Case[] = [
    { name: 'mean, bias, ignored row', rows: [5], d: 3, V: 4, chunk: 2, bias: true, ignoreEvery: 3 },
    { name: 'weighted mean, 3-D', rows: [2, 3], d: 3, V: 5, chunk: 4, weights: true, bias: true, ignoreEvery: 4 },
    { name: 'weighted sum', rows: [4], d: 2, V: 3, chunk: 3, weights: true, reduction: 'sum' },
  ];
  small.forEach((c, k) => gradCheck(`lce ${c.name}`, specsOf(c, 10 + k), fused(c), { seed: k + 3 }));
});

test('linearCrossEntropy: equals linear + crossEntropy, loss and gradients, on every backend', () => {
  for (const backend of BACKENDS) {
    CASES.forEach((c, k) => {
      const specs = specsOf(c, 20 + k);
      const values = specs.map((s, i) => makeValues(s, 100 * k + i));
      const run = (f: (...xs: Tensor[]) => Tensor) => E.tidy(() => {
        const xs = specs.map((s, i) => {
          const isInt = s.intHigh !== undefined;
          const t = E.tensor(isInt ? values[i] : Float32Array.from(values[i]), s.shape, { backend, dtype: isInt ? 'int32' : 'float32' });
          if (!isInt) t.requiresGrad = true;
          return t;
        });
        const loss = f(...xs);
        E.mulScalar(loss, 1.7).backward(); // dy ≠ 1: the saved gradients are scaled
        const out = { loss: loss.item(), grads: xs.map((x) => (x.grad ? x.grad.toArray() : null)) };
        for (const x of xs) { x.grad?.dispose(); x.grad = null; }
        return out;
      });
      const a = run(fused(c)), b = run(unfused(c));
      assertClose([a.loss], [b.loss], `${backend} ${c.name}: loss`, 1e-5, 1e-5);
      b.grads.forEach((g, i) => {
        if (g === null) return assert.equal(a.grads[i], null, `${backend} ${c.name}: input ${i} got a gradient only from the fused op`);
        assert.ok(a.grads[i], `${backend} ${c.name}: no gradient for input ${i}`);
        assertClose(a.grads[i]!, g, `${backend} ${c.name}: gradient of input ${i}`, 1e-5, 1e-4);
      });
    });
  }
});

test('linearCrossEntropy: only needed gradients are computed; no tape under noGrad; deterministic', () => {
  for (const backend of BACKENDS) {
    E.tidy(() => {
      const h = E.randn([9, 6], { seed: 1, backend, requiresGrad: true });
      const w = E.randn([13, 6], { seed: 2, backend });
      const b = E.randn([13], { seed: 3, backend, requiresGrad: true });
      const t = E.tensor(targetValues(9, 13, 4, 4), [9], { backend, dtype: 'int32' });
      const reference = E.noGrad(() => E.crossEntropy(E.linear(h, w, b), t).item());
      const before = E.memoryInfo(E.getBackend(backend)).buffers;
      const quiet = E.noGrad(() => E.linearCrossEntropy(h, w, t, { bias: b, chunkSize: 4 }));
      assert.equal(quiet.node, null, `${backend}: no tape node under noGrad`);
      assert.equal(quiet.requiresGrad, false);
      assert.equal(E.memoryInfo(E.getBackend(backend)).buffers, before + 1, `${backend}: only the loss is allocated under noGrad`);
      assertClose([quiet.item()], [reference], `${backend}: noGrad loss`, 1e-5, 1e-5);
      // Frozen weight: only the hidden and bias gradients are saved (loss + 2 outputs).
      const loss = E.linearCrossEntropy(h, w, t, { bias: b, chunkSize: 4 });
      assert.equal(loss.node!.outputs.length, 3, `${backend}: loss + dHidden + dBias`);
      loss.backward();
      assert.equal(w.grad, null, `${backend}: frozen weight gets no gradient`);
      assert.ok(h.grad && b.grad);
      const first = [loss.item(), ...h.grad!.toArray(), ...b.grad!.toArray()];
      h.grad = null; b.grad = null;
      const again = E.linearCrossEntropy(h, w, t, { bias: b, chunkSize: 4 });
      again.backward();
      assert.deepEqual([again.item(), ...h.grad!.toArray(), ...b.grad!.toArray()], first, `${backend}: same inputs, same bits`);
      h.grad = null; b.grad = null;
      // Nothing requires a gradient: no tape either.
      const plain = E.linearCrossEntropy(E.randn([4, 6], { seed: 5, backend }), w, E.tensor([1, 2, 3, 4], [4], { backend, dtype: 'int32' }));
      assert.equal(plain.node, null);
    });
  }
});

test('linearCrossEntropy: every row ignored gives loss 0 and zero gradients; no rows; zero weights', () => {
  for (const backend of BACKENDS) {
    E.tidy(() => {
      const h = E.randn([3, 4], { seed: 1, backend, requiresGrad: true });
      const w = E.randn([5, 4], { seed: 2, backend, requiresGrad: true });
      const t = E.tensor([-100, -100, -100], [3], { backend, dtype: 'int32' });
      const loss = E.linearCrossEntropy(h, w, t);
      assert.equal(loss.item(), 0);
      loss.backward();
      assert.ok(h.grad!.toList().every((v) => v === 0) && w.grad!.toList().every((v) => v === 0), `${backend}: zero gradients`);
      assert.equal(E.linearCrossEntropy(E.zeros([0, 4], { backend }), w, E.zeros([0], { backend, dtype: 'int32' })).item(), 0, `${backend}: no rows`);
      const zero = E.zeros([3], { backend });
      assert.equal(E.linearCrossEntropy(h, w, E.tensor([0, 1, 2], [3], { backend, dtype: 'int32' }), { weights: zero }).item(), 0);
    });
  }
});

test('linearCrossEntropy: chunk size changes only the rounding', () => {
  for (const backend of BACKENDS) {
    E.tidy(() => {
      const h = E.randn([37, 16], { seed: 7, backend, requiresGrad: true });
      const w = E.randn([50, 16], { seed: 8, backend, requiresGrad: true });
      const t = E.tensor(targetValues(37, 50, 9, 5), [37], { backend, dtype: 'int32' });
      let first: { loss: number; dh: ArrayLike<number>; dw: ArrayLike<number> } | null = null;
      for (const chunkSize of [1, 6, 37, 1000]) {
        const loss = E.linearCrossEntropy(h, w, t, { chunkSize });
        loss.backward();
        const r = { loss: loss.item(), dh: h.grad!.toArray(), dw: w.grad!.toArray() };
        h.grad = null; w.grad = null;
        if (!first) { first = r; continue; }
        assertClose([r.loss], [first.loss], `${backend} chunk ${chunkSize}: loss`, 1e-6, 1e-6);
        assertClose(r.dh, first.dh, `${backend} chunk ${chunkSize}: dHidden`, 1e-6, 1e-5);
        assertClose(r.dw, first.dw, `${backend} chunk ${chunkSize}: dWeight`, 1e-6, 1e-5);
      }
    });
  }
});

test('linearCrossEntropy: out-of-range targets throw on every backend, naming the row and value', () => {
  for (const backend of BACKENDS) {
    const h = E.zeros([3, 2], { backend }), w = E.zeros([4, 2], { backend });
    assertThrowsWith(() => E.linearCrossEntropy(h, w, E.tensor([0, 4, 1], [3], { backend, dtype: 'int32' })), /linearCrossEntropy/, /row 1/, /target 4/, /\[0, 4\)/);
    assertThrowsWith(() => E.linearCrossEntropy(h, w, E.tensor([0, 1, -1], [3], { backend, dtype: 'int32' })), /row 2/, /target -1/, /ignoreIndex -100/);
  }
});

test('linearCrossEntropy: bad input gives clear errors', () => {
  const h = E.zeros([3, 4]), w = E.zeros([5, 4]), t = E.zeros([3], { dtype: 'int32' });
  const op = /op 'linearCrossEntropy'/;
  assertThrowsWith(() => E.linearCrossEntropy(E.zeros([3, 4], { dtype: 'int32' }), w, t), op, /hidden must be a float tensor/);
  assertThrowsWith(() => E.linearCrossEntropy(E.zeros([4]), w, t), op, /hidden must be \[N, d\] or \[B, S, d\]/);
  assertThrowsWith(() => E.linearCrossEntropy(h, E.zeros([5, 3]), t), op, /weight must be \[V, 4\]/, /got \[5, 3\]/);
  assertThrowsWith(() => E.linearCrossEntropy(h, E.zeros([5, 4], { dtype: 'float64', backend: 'reference' }), t), op, /weight .* dtype float32/);
  assertThrowsWith(() => E.linearCrossEntropy(h, E.zeros([0, 4]), t), op, /no classes/);
  assertThrowsWith(() => E.linearCrossEntropy(h, w, t, { bias: E.zeros([4]) }), op, /bias must be \[5\]/, /got \[4\]/);
  assertThrowsWith(() => E.linearCrossEntropy(h, w, E.zeros([3])), op, /targets must be int32/);
  assertThrowsWith(() => E.linearCrossEntropy(h, w, E.zeros([4], { dtype: 'int32' })), op, /targets \[4\] must have shape \[3\]/);
  assertThrowsWith(() => E.linearCrossEntropy(E.zeros([2, 3, 4]), w, E.zeros([6], { dtype: 'int32' })), op, /must have shape \[2, 3\]/);
  assertThrowsWith(() => E.linearCrossEntropy(h, w, t, { weights: E.zeros([2]) }), op, /weights \[2\] must have shape \[3\]/);
  assertThrowsWith(() => E.linearCrossEntropy(h, w, t, { reduction: 'none' as 'sum' }), op, /'mean' or 'sum'/);
  assertThrowsWith(() => E.linearCrossEntropy(h, w, t, { ignoreIndex: 0.5 }), op, /ignoreIndex/);
  assertThrowsWith(() => E.linearCrossEntropy(h, w, t, { chunkSize: 0 }), op, /chunkSize must be a positive integer/, /got 0/);
});
