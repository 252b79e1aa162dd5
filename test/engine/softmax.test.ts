import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { crossCheck, gradCheck, assertThrowsWith, hasNative, makeValues } from './harness.js';

const BACKENDS = hasNative ? ['reference', 'native'] : ['reference'];

test('softmax and logSoftmax: any axis, native matches reference; gradients match finite differences', (t) => {
  const cases: [number[], number][] = [[[1, 1], -1], [[3, 7], -1], [[3, 7], 0], [[2, 3, 5], 1], [[2, 3, 5], 0], [[9], 0], [[4, 1, 3], 1]];
  for (const [shape, axis] of cases) {
    crossCheck(t, `softmax ${shape} axis ${axis}`, [{ shape, scale: 3 }], (x) => E.softmax(x, axis));
    crossCheck(t, `logSoftmax ${shape} axis ${axis}`, [{ shape, scale: 3 }], (x) => E.logSoftmax(x, axis));
    gradCheck(`softmax ${shape} axis ${axis}`, [{ shape }], (x) => E.softmax(x, axis));
    gradCheck(`logSoftmax ${shape} axis ${axis}`, [{ shape }], (x) => E.logSoftmax(x, axis));
  }
  crossCheck(t, 'softmax large rows', [{ shape: [64, 4099], scale: 4 }], (x) => E.softmax(x), { atol: 1e-6 });
  crossCheck(t, 'logSoftmax large rows', [{ shape: [64, 4099], scale: 4 }], (x) => E.logSoftmax(x), { atol: 1e-4 });
  crossCheck(t, 'softmax large middle axis', [{ shape: [8, 300, 40], scale: 4 }], (x) => E.softmax(x, 1), { atol: 1e-6 });
  crossCheck(t, 'logSoftmax large middle axis', [{ shape: [8, 300, 40], scale: 4 }], (x) => E.logSoftmax(x, 1));
});

test('softmax: rows sum to 1, stable for huge logits, -Infinity gets probability 0', () => {
  for (const backend of BACKENDS) {
    const x = E.tensor([1000, 1001, 1002, -1e30, 5, -Infinity, 5, 5], [2, 4], { backend });
    const p = E.softmax(x).toList();
    const e = [Math.exp(-2), Math.exp(-1), 1];
    const z = e[0] + e[1] + e[2];
    const expected = [e[0] / z, e[1] / z, e[2] / z, 0, 1 / 3, 0, 1 / 3, 1 / 3];
    p.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `${backend}: p[${i}] = ${v}, expected ${expected[i]}`));
    const lp = E.logSoftmax(x).toList();
    assert.ok(Math.abs(lp[2] - Math.log(1 / z)) < 1e-5, `${backend}: logSoftmax of huge logits ${lp[2]}`);
    assert.equal(lp[5], -Infinity);
    const rows = E.sum(E.softmax(E.randn([5, 333], { seed: 2, backend, std: 5 })), 1).toList();
    for (const r of rows) assert.ok(Math.abs(r - 1) < 1e-5, `${backend}: row sums to ${r}`);
  }
});

/** Cross-entropy computed from its definition in float64. */
function ceByHand(logits: ArrayLike<number>, targets: ArrayLike<number>, V: number, w: ArrayLike<number> | null, ignore: number, reduction: 'mean' | 'sum'): number {
  let s = 0, d = 0;
  for (let i = 0; i < targets.length; i++) {
    if (targets[i] === ignore) continue;
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, logits[i * V + j]);
    let z = 0;
    for (let j = 0; j < V; j++) z += Math.exp(logits[i * V + j] - m);
    const wi = w ? w[i] : 1;
    s += wi * (m + Math.log(z) - logits[i * V + targets[i]]);
    d += wi;
  }
  return reduction === 'sum' ? s : d === 0 ? 0 : s / d;
}

test('crossEntropy: matches the definition; ignoreIndex, weights, reductions, rank 3', () => {
  const V = 7, N = 6;
  const logits = makeValues({ shape: [N, V], scale: 2 }, 5) as Float64Array;
  const targets = [3, -100, 0, 6, 2, -100];
  const w = [0.5, 2, 1, 0, 3, 1];
  for (const backend of BACKENDS) {
    const L = E.tensor(Float32Array.from(logits), [N, V], { backend });
    const T = E.tensor(targets, [N], { backend, dtype: 'int32' });
    const W = E.tensor(w, [N], { backend });
    const f32 = Float32Array.from(logits);
    const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-5 * Math.max(1, Math.abs(b)), `${backend} ${what}: ${a} vs ${b}`);
    near(E.crossEntropy(L, T).item(), ceByHand(f32, targets, V, null, -100, 'mean'), 'mean');
    near(E.crossEntropy(L, T, { reduction: 'sum' }).item(), ceByHand(f32, targets, V, null, -100, 'sum'), 'sum');
    near(E.crossEntropy(L, T, { weights: W }).item(), ceByHand(f32, targets, V, w, -100, 'mean'), 'weighted mean');
    near(E.crossEntropy(L, T, { weights: W, reduction: 'sum' }).item(), ceByHand(f32, targets, V, w, -100, 'sum'), 'weighted sum');
    const T2 = E.tensor([3, 1, 0, 6, 2, 1], [N], { backend, dtype: 'int32' });
    near(E.crossEntropy(L, T2, { ignoreIndex: 1 }).item(), ceByHand(f32, [3, 1, 0, 6, 2, 1], V, null, 1, 'mean'), 'ignoreIndex 1');
    const L3 = E.reshape(L, [2, 3, V]), T3 = E.reshape(T, [2, 3]), W3 = E.reshape(W, [2, 3]);
    near(E.crossEntropy(L3, T3, { weights: W3 }).item(), ceByHand(f32, targets, V, w, -100, 'mean'), 'rank 3');
    assert.deepEqual(E.crossEntropy(L, T).shape, []);
  }
});

test('crossEntropy: every target ignored gives 0 and zero gradients', () => {
  for (const backend of BACKENDS) {
    const L = E.randn([3, 5], { seed: 1, backend, requiresGrad: true });
    const T = E.tensor([-100, -100, -100], [3], { backend, dtype: 'int32' });
    const loss = E.crossEntropy(L, T);
    assert.equal(loss.item(), 0);
    loss.backward();
    assert.ok(L.grad!.toList().every((v) => v === 0));
    assert.equal(E.crossEntropy(E.zeros([0, 5], { backend }), E.zeros([0], { backend, dtype: 'int32' })).item(), 0, 'no rows');
    const W = E.zeros([3], { backend });
    assert.equal(E.crossEntropy(L, E.tensor([0, 1, 2], [3], { backend, dtype: 'int32' }), { weights: W }).item(), 0);
  }
});

test('crossEntropy: native matches reference (loss, logits and weights gradients); finite differences', (t) => {
  const tg = (n: number, v: number, values?: number[]) => ({ shape: [n], intHigh: v, ...(values ? { values } : {}) });
  crossCheck(t, 'ce mean', [{ shape: [6, 9], scale: 2 }, tg(6, 9)], (l, t) => E.crossEntropy(l, t));
  crossCheck(t, 'ce sum ignore', [{ shape: [5, 4] }, tg(5, 4, [1, -100, 3, 0, -100])], (l, t) => E.crossEntropy(l, t, { reduction: 'sum' }));
  crossCheck(t, 'ce weighted', [{ shape: [5, 4] }, tg(5, 4, [1, -100, 3, 0, 2]), { shape: [5], shift: 1, scale: 0.3 }],
    (l, t, w) => E.crossEntropy(l, t, { weights: w }));
  crossCheck(t, 'ce weighted sum', [{ shape: [5, 4] }, tg(5, 4, [1, 7, 3, 0, 2]), { shape: [5], shift: 1, scale: 0.3 }],
    (l, t, w) => E.crossEntropy(l, t, { weights: w, reduction: 'sum', ignoreIndex: 7 }));
  crossCheck(t, 'ce rank 3', [{ shape: [2, 3, 11] }, { shape: [2, 3], intHigh: 11 }], (l, t) => E.crossEntropy(l, t));
  crossCheck(t, 'ce V=1', [{ shape: [3, 1] }, tg(3, 1)], (l, t) => E.crossEntropy(l, t));
  crossCheck(t, 'ce large vocab', [{ shape: [64, 50257], scale: 3 }, tg(64, 50257)], (l, t) => E.crossEntropy(l, t), { atol: 1e-5 });
  crossCheck(t, 'ce many rows', [{ shape: [1024, 512], scale: 3 }, tg(1024, 512), { shape: [1024], shift: 1, scale: 0.2 }],
    (l, t, w) => E.crossEntropy(l, t, { weights: w }), { atol: 1e-5 });
  gradCheck('ce mean', [{ shape: [4, 5] }, tg(4, 5, [1, -100, 4, 0])], (l, t) => E.crossEntropy(l, t));
  gradCheck('ce weighted mean', [{ shape: [4, 5] }, tg(4, 5, [1, -100, 4, 0]), { shape: [4], shift: 1, scale: 0.3 }],
    (l, t, w) => E.crossEntropy(l, t, { weights: w }));
  gradCheck('ce weighted sum', [{ shape: [4, 5] }, tg(4, 5, [1, 2, 4, 0]), { shape: [4], shift: 1, scale: 0.3 }],
    (l, t, w) => E.crossEntropy(l, t, { weights: w, reduction: 'sum' }));
  gradCheck('ce rank 3', [{ shape: [2, 2, 3] }, { shape: [2, 2], intHigh: 3 }], (l, t) => E.crossEntropy(l, t));
});

test('crossEntropy: gradient is (softmax − onehot)·w/Σw·dy', () => {
  for (const backend of BACKENDS) {
    const L = E.tensor([1, 2, 3, 0, 0, 0], [2, 3], { backend, requiresGrad: true });
    const T = E.tensor([2, 0], [2], { backend, dtype: 'int32' });
    const W = E.tensor([1, 3], [2], { backend });
    E.mulScalar(E.crossEntropy(L, T, { weights: W }), 2).backward();
    const e = [Math.exp(1), Math.exp(2), Math.exp(3)], z = e[0] + e[1] + e[2];
    const expected = [e[0] / z, e[1] / z, e[2] / z - 1, 1 / 3 - 1, 1 / 3, 1 / 3].map((v, i) => v * (i < 3 ? 1 : 3) / 4 * 2);
    L.grad!.toList().forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `${backend}: grad[${i}] = ${v}, expected ${expected[i]}`));
  }
});

test('crossEntropy: out-of-range targets throw on every backend, naming the row and value', () => {
  for (const backend of BACKENDS) {
    const L = E.zeros([3, 4], { backend });
    assertThrowsWith(() => E.crossEntropy(L, E.tensor([0, 4, 1], [3], { backend, dtype: 'int32' })), /crossEntropy/, /row 1/, /target 4/, /\[0, 4\)/);
    assertThrowsWith(() => E.crossEntropy(L, E.tensor([0, 1, -1], [3], { backend, dtype: 'int32' })), /crossEntropy/, /row 2/, /target -1/, /ignoreIndex -100/);
    assertThrowsWith(() => E.crossEntropy(L, E.tensor([0, 1, -100], [3], { backend, dtype: 'int32' }), { ignoreIndex: -1 }), /row 2/, /target -100/);
  }
});

test('softmax family: bad input gives clear errors', () => {
  const L = E.zeros([3, 4]);
  const T = E.zeros([3], { dtype: 'int32' });
  assertThrowsWith(() => E.softmax(T), /op 'softmax'/, /float/);
  assertThrowsWith(() => E.logSoftmax(L, 2), /op 'logSoftmax'/, /axis 2 is out of range/);
  assertThrowsWith(() => E.crossEntropy(E.zeros([4]), T), /op 'crossEntropy'/, /\[N, V\] or \[B, S, V\]/);
  assertThrowsWith(() => E.crossEntropy(L, E.zeros([3])), /op 'crossEntropy'/, /targets must be int32/);
  assertThrowsWith(() => E.crossEntropy(L, E.zeros([4], { dtype: 'int32' })), /op 'crossEntropy'/, /targets \[4\] must have shape \[3\]/);
  assertThrowsWith(() => E.crossEntropy(E.zeros([2, 3, 4]), E.zeros([6], { dtype: 'int32' })), /op 'crossEntropy'/, /must have shape \[2, 3\]/);
  assertThrowsWith(() => E.crossEntropy(L, T, { weights: E.zeros([2]) }), /op 'crossEntropy'/, /weights \[2\] must have shape \[3\]/);
  assertThrowsWith(() => E.crossEntropy(L, T, { weights: E.zeros([3], { dtype: 'int32' }) }), /op 'crossEntropy'/, /dtype/);
  assertThrowsWith(() => E.crossEntropy(L, T, { reduction: 'none' as 'sum' }), /op 'crossEntropy'/, /'mean' or 'sum'/);
  assertThrowsWith(() => E.crossEntropy(E.zeros([3, 0]), T), /op 'crossEntropy'/, /no classes/);
  assertThrowsWith(() => E.crossEntropy(L, T, { ignoreIndex: 0.5 }), /op 'crossEntropy'/, /ignoreIndex/);
});
