import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { crossCheck, gradCheck, assertThrowsWith, hasNative } from './harness.js';

const BACKENDS = hasNative ? ['reference', 'native'] : ['reference'];

function permutations(n: number): number[][] {
  if (n === 1) return [[0]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

test('transpose: every permutation of small shapes; gradients', (t) => {
  crossCheck(t, 'transpose 2-D default', [{ shape: [3, 5] }], (x) => E.transpose(x));
  crossCheck(t, 'transpose 3-D default', [{ shape: [2, 3, 5] }], (x) => E.transpose(x));
  for (const shape of [[2, 3, 4], [1, 3, 2], [4, 1, 1]]) {
    for (const perm of permutations(3)) crossCheck(t, `transpose ${shape} [${perm}]`, [{ shape }], (x) => E.transpose(x, perm));
  }
  for (const perm of permutations(4)) crossCheck(t, `transpose [2,3,4,5] [${perm}]`, [{ shape: [2, 3, 4, 5] }], (x) => E.transpose(x, perm));
  crossCheck(t, 'transpose with size-1 dims', [{ shape: [2, 1, 3, 1, 4] }], (x) => E.transpose(x, [4, 1, 0, 3, 2]));
  crossCheck(t, 'transpose negative axes', [{ shape: [2, 3, 4] }], (x) => E.transpose(x, [-1, 0, -2]));
  gradCheck('transpose', [{ shape: [2, 3, 4] }], (x) => E.transpose(x, [2, 0, 1]));
  gradCheck('transpose default', [{ shape: [3, 4] }], (x) => E.transpose(x));
});

test('transpose: large shapes (tiled and row-copy paths) and int32 data', (t) => {
  crossCheck(t, 'transpose large 2-D', [{ shape: [67, 1029] }], (x) => E.transpose(x));
  crossCheck(t, 'transpose heads', [{ shape: [2, 64, 8, 33] }], (x) => E.transpose(x, [0, 2, 1, 3]));
  crossCheck(t, 'transpose mixed', [{ shape: [3, 33, 65, 5] }], (x) => E.transpose(x, [2, 0, 3, 1]));
  crossCheck(t, 'transpose last to first', [{ shape: [40, 50, 37] }], (x) => E.transpose(x, [2, 0, 1]));
  for (const backend of BACKENDS) {
    const ids = E.tensor(Int32Array.from({ length: 24 }, (_, i) => i * 1000003), [2, 3, 4], { backend, dtype: 'int32' });
    const t = E.transpose(ids, [2, 0, 1]);
    assert.equal(t.dtype, 'int32');
    assert.deepEqual(t.shape, [4, 2, 3]);
    assert.equal(t.toList()[1], 4 * 1000003);
    assert.deepEqual(E.transpose(E.tensor([1, 2, 3, 4, 5, 6], [2, 3], { backend })).toList(), [1, 4, 2, 5, 3, 6]);
  }
});

test('concat, narrow and split: values and gradients', (t) => {
  crossCheck(t, 'concat axis 0', [{ shape: [2, 3] }, { shape: [4, 3] }], (a, b) => E.concat([a, b], 0));
  crossCheck(t, 'concat axis 1 three inputs', [{ shape: [2, 3, 2] }, { shape: [2, 1, 2] }, { shape: [2, 5, 2] }], (a, b, c) => E.concat([a, b, c], 1));
  crossCheck(t, 'concat last axis', [{ shape: [3, 2] }, { shape: [3, 7] }], (a, b) => E.concat([a, b], -1));
  crossCheck(t, 'concat single', [{ shape: [3, 2] }], (a) => E.concat([a], 0));
  crossCheck(t, 'concat with an empty piece', [{ shape: [2, 0] }, { shape: [2, 3] }], (a, b) => E.concat([a, b], 1));
  crossCheck(t, 'concat large', [{ shape: [200, 400] }, { shape: [300, 400] }], (a, b) => E.concat([a, b], 0));
  crossCheck(t, 'concat large rows', [{ shape: [500, 70] }, { shape: [500, 60] }], (a, b) => E.concat([a, b], 1));
  gradCheck('concat', [{ shape: [2, 3] }, { shape: [2, 2] }], (a, b) => E.concat([a, b], 1));
  gradCheck('concat shared input', [{ shape: [2, 3] }], (a) => E.concat([a, a], 0));

  crossCheck(t, 'narrow middle', [{ shape: [3, 7, 2] }], (x) => E.narrow(x, 1, 2, 4));
  crossCheck(t, 'narrow first', [{ shape: [6, 5] }], (x) => E.narrow(x, 0, 5, 1));
  crossCheck(t, 'narrow empty', [{ shape: [6, 5] }], (x) => E.narrow(x, -1, 3, 0));
  crossCheck(t, 'narrow large', [{ shape: [256, 1024] }], (x) => E.narrow(x, 1, 100, 700));
  gradCheck('narrow', [{ shape: [3, 7, 2] }], (x) => E.narrow(x, 1, 2, 4));

  crossCheck(t, 'split', [{ shape: [4, 9] }], (x) => E.split(x, 1, [2, 0, 3, 4]));
  gradCheck('split', [{ shape: [4, 6] }], (x) => E.split(x, -1, [1, 2, 3]));
  for (const backend of BACKENDS) {
    const x = E.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [3, 4], { backend });
    const [a, b] = E.split(x, 1, [1, 3]);
    assert.deepEqual(a.toList(), [0, 4, 8]);
    assert.deepEqual(b.shape, [3, 3]);
    assert.deepEqual(E.narrow(x, 0, 1, 2).toList(), [4, 5, 6, 7, 8, 9, 10, 11]);
    const c = E.concat([E.narrow(x, 1, 2, 2), E.narrow(x, 1, 0, 2)], 1);
    assert.deepEqual(c.toList(), [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9]);
    const ids = E.tensor([1, 2, 3, 4], [2, 2], { backend, dtype: 'int32' });
    assert.deepEqual(E.concat([ids, ids], 0).toList(), [1, 2, 3, 4, 1, 2, 3, 4]);
  }
});

test('indexSelect: gathers along any axis, repeated ids scatter-add in the gradient', (t) => {
  const ids = (values: number[]) => ({ shape: [values.length], intHigh: 1 << 30, values });
  crossCheck(t, 'indexSelect axis 0', [{ shape: [5, 4] }, ids([4, 0, 0, 2, 4, 4])], (x, i) => E.indexSelect(x, 0, i));
  crossCheck(t, 'indexSelect axis 1', [{ shape: [2, 5, 3] }, ids([1, 1, 3])], (x, i) => E.indexSelect(x, 1, i));
  crossCheck(t, 'indexSelect last axis', [{ shape: [3, 6] }, ids([5, 0, 5, 2])], (x, i) => E.indexSelect(x, -1, i));
  crossCheck(t, 'indexSelect no ids', [{ shape: [3, 6] }, ids([])], (x, i) => E.indexSelect(x, 0, i));
  crossCheck(t, 'indexSelect large', [{ shape: [5000, 64] }, { shape: [3000], intHigh: 5000 }], (x, i) => E.indexSelect(x, 0, i));
  crossCheck(t, 'indexSelect large middle', [{ shape: [4, 700, 30] }, { shape: [900], intHigh: 700 }], (x, i) => E.indexSelect(x, 1, i));
  gradCheck('indexSelect axis 0', [{ shape: [5, 3] }, ids([4, 0, 0, 2, 4])], (x, i) => E.indexSelect(x, 0, i));
  gradCheck('indexSelect axis 1', [{ shape: [2, 4, 3] }, ids([3, 3, 1])], (x, i) => E.indexSelect(x, 1, i));
  for (const backend of BACKENDS) {
    const x = E.tensor([1, 2, 3, 4, 5, 6], [3, 2], { backend, requiresGrad: true });
    const i = E.tensor([2, 0, 2], [3], { backend, dtype: 'int32' });
    const y = E.indexSelect(x, 0, i);
    assert.deepEqual(y.toList(), [5, 6, 1, 2, 5, 6]);
    E.sum(y).backward();
    assert.deepEqual(x.grad!.toList(), [1, 1, 0, 0, 2, 2]);
    const xi = E.tensor([7, 8, 9], [3], { backend, dtype: 'int32' });
    assert.deepEqual(E.indexSelect(xi, 0, i).toList(), [9, 7, 9]);
  }
});

test('indexSelect: ids out of range throw on every backend, naming the position and value', () => {
  for (const backend of BACKENDS) {
    const x = E.zeros([5, 4], { backend });
    const bad = E.tensor([0, 4, 5, 1], [4], { backend, dtype: 'int32' });
    assertThrowsWith(() => E.indexSelect(x, 0, bad), /indexSelect/, /ids\[2\] = 5/, /out of range \[0, 5\)/);
    const neg = E.tensor([-1], [1], { backend, dtype: 'int32' });
    assertThrowsWith(() => E.indexSelect(x, 1, neg), /indexSelect/, /ids\[0\] = -1/, /\[0, 4\)/);
  }
});

test('where: broadcasting select with int32 or float masks; gradients to both branches', (t) => {
  const mask = (shape: number[]) => ({ shape, intHigh: 2 });
  crossCheck(t, 'where same shape', [mask([3, 4]), { shape: [3, 4] }, { shape: [3, 4] }], (m, a, b) => E.where(m, a, b));
  crossCheck(t, 'where broadcast mask', [mask([5, 5]), { shape: [2, 5, 5] }, { shape: [1] }], (m, a, b) => E.where(m, a, b));
  crossCheck(t, 'where broadcast columns', [mask([3, 1]), { shape: [3, 4] }, { shape: [4] }], (m, a, b) => E.where(m, a, b));
  crossCheck(t, 'where float mask', [{ shape: [3, 4], grad: false, values: Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? 0 : i - 5)) }, { shape: [3, 4] }, { shape: [3, 4] }], (m, a, b) => E.where(m, a, b));
  crossCheck(t, 'where large', [mask([64, 1, 300]), { shape: [64, 3, 300] }, { shape: [64, 3, 300] }], (m, a, b) => E.where(m, a, b));
  gradCheck('where', [mask([3, 1]), { shape: [3, 4] }, { shape: [4] }], (m, a, b) => E.where(m, a, b));
  for (const backend of BACKENDS) {
    const m = E.tensor([1, 0, 0, 1], [4], { backend, dtype: 'int32' });
    const fm = E.tensor([0.5, 0, -0, NaN], [4], { backend });
    const a = E.tensor([1, 2, 3, 4], [4], { backend });
    const b = E.tensor([-1], [1], { backend });
    assert.deepEqual(E.where(m, a, b).toList(), [1, -1, -1, 4]);
    assert.deepEqual(E.where(fm, a, b).toList(), [1, -1, -1, 4]);
  }
});

test('layout: bad input gives clear errors', () => {
  const x = E.zeros([2, 3]);
  assertThrowsWith(() => E.transpose(E.zeros([3])), /op 'transpose'/, /at least 2 dimensions/);
  assertThrowsWith(() => E.transpose(x, [0]), /op 'transpose'/, /each of the 2 axes/);
  assertThrowsWith(() => E.transpose(x, [0, 0]), /op 'transpose'/, /repeats axis 0/);
  assertThrowsWith(() => E.transpose(x, [0, 2]), /op 'transpose'/, /entry 2 is out of range/);
  assertThrowsWith(() => E.concat([], 0), /op 'concat'/, /non-empty/);
  assertThrowsWith(() => E.concat([x, E.zeros([3, 3])], 1), /op 'concat'/, /tensor 1 has shape \[3, 3\]/, /\[2, 3\]/, /outside axis 1/);
  assertThrowsWith(() => E.concat([x, E.zeros([2])], 0), /op 'concat'/, /tensor 1/);
  assertThrowsWith(() => E.concat([x, E.zeros([2, 3], { dtype: 'int32' })], 0), /op 'concat'/, /dtype int32/);
  assertThrowsWith(() => E.concat([x], 2), /op 'concat'/, /axis 2 is out of range/);
  assertThrowsWith(() => E.narrow(x, 1, 2, 2), /op 'narrow'/, /\[2, 4\)/, /outside \[0, 3\]/, /axis 1/);
  assertThrowsWith(() => E.narrow(x, 0, -1, 1), /op 'narrow'/, /start -1/);
  assertThrowsWith(() => E.narrow(x, 3, 0, 1), /op 'narrow'/, /axis 3 is out of range/);
  assertThrowsWith(() => E.split(x, 1, [1, 1]), /op 'split'/, /add up to 2/, /has 3/);
  assertThrowsWith(() => E.split(x, 1, [4, -1]), /op 'split'/, /non-negative/);
  assertThrowsWith(() => E.indexSelect(x, 0, E.zeros([2])), /op 'indexSelect'/, /1-D int32/, /float32\[2\]/);
  assertThrowsWith(() => E.indexSelect(x, 0, E.zeros([1, 2], { dtype: 'int32' })), /op 'indexSelect'/, /1-D int32/);
  assertThrowsWith(() => E.indexSelect(x, 2, E.zeros([1], { dtype: 'int32' })), /op 'indexSelect'/, /axis 2 is out of range/);
  const m = E.zeros([2, 3], { dtype: 'int32' });
  assertThrowsWith(() => E.where(m, x, E.zeros([2, 3], { dtype: 'int32' })), /op 'where'/, /same dtype/);
  assertThrowsWith(() => E.where(m, x, E.zeros([4])), /op 'where'/, /cannot be broadcast/);
  assertThrowsWith(() => E.where(E.zeros([5], { dtype: 'int32' }), x, x), /op 'where' \(mask\)/, /cannot be broadcast/);
});
