import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { crossCheck, gradCheck, assertThrowsWith, hasNative, noNativeReason } from './harness.js';

const BACKENDS = hasNative ? ['reference', 'native'] : ['reference'];

test('sum and mean: native matches reference over many axis sets; gradients match finite differences', (t) => {
  const cases: [number[], number | number[] | undefined][] = [
    [[7], undefined], [[7], 0], [[3, 5], 0], [[3, 5], -1], [[3, 5], [0, 1]], [[2, 3, 4], [0, 2]], [[2, 3, 4], 1],
    [[2, 3, 4], [1, 2]], [[1, 5, 1], [0, 2]], [[2, 1, 3, 4], [1, 3]], [[2, 3, 4, 5], [0, 2]], [[4, 1], 1], [[3, 4], []],
  ];
  for (const [shape, axes] of cases) {
    for (const keepDims of [false, true]) {
      const name = `${shape} axes ${JSON.stringify(axes)} keep ${keepDims}`;
      crossCheck(t, `sum ${name}`, [{ shape }], (x) => E.sum(x, axes, keepDims));
      crossCheck(t, `mean ${name}`, [{ shape }], (x) => E.mean(x, axes, keepDims));
    }
    gradCheck(`sum ${shape} ${JSON.stringify(axes)}`, [{ shape }], (x) => E.sum(x, axes));
    gradCheck(`mean ${shape} ${JSON.stringify(axes)}`, [{ shape }], (x) => E.mean(x, axes, true));
  }
});

test('sum: large shapes take the parallel and chunked paths and stay accurate', (t) => {
  const big: [number[], number | number[] | undefined][] = [
    [[300, 257], 0], [[300, 257], 1], [[3, 40000], 1], [[70001], undefined], [[2, 100000, 3], 1], [[5, 70, 300], [0, 2]],
  ];
  for (const [shape, axes] of big) crossCheck(t, `sum large ${shape} ${JSON.stringify(axes)}`, [{ shape }], (x) => E.sum(x, axes), { rtol: 1e-5, atol: 1e-3 });
});

test('sum: output shapes, exact values and empty reductions', () => {
  for (const backend of BACKENDS) {
    const x = E.tensor([1, 2, 3, 4, 5, 6], [2, 3], { backend });
    assert.deepEqual(E.sum(x).shape, []);
    assert.deepEqual(E.sum(x).toList(), [21]);
    assert.deepEqual(E.sum(x, undefined, true).shape, [1, 1]);
    assert.deepEqual(E.sum(x, 0).toList(), [5, 7, 9]);
    assert.deepEqual(E.sum(x, -1, true).shape, [2, 1]);
    assert.deepEqual(E.sum(x, -1).toList(), [6, 15]);
    assert.deepEqual(E.mean(x, 0).toList(), [2.5, 3.5, 4.5]);
    assert.deepEqual(E.mean(x).toList(), [3.5]);
    const empty = E.zeros([3, 0], { backend });
    assert.deepEqual(E.sum(empty, 1).toList(), [0, 0, 0]);
    assert.deepEqual(E.sum(empty, 0).shape, [0]);
    assert.ok(Number.isNaN(E.mean(empty).item()));
    const s = E.tensor([5], [], { backend });
    assert.deepEqual(E.sum(s).toList(), [5]);
  }
});

test('sum: native result does not depend on the thread count', { skip: noNativeReason ?? false }, () => {
  const threads = E.engineInfo().threads ?? 1;
  const x = E.randn([4, 123457], { seed: 3, backend: 'native' });
  const y = E.randn([40000, 7], { seed: 4, backend: 'native' });
  const run = () => [E.sum(x).item(), ...E.sum(x, 1).toList(), ...E.sum(y, 0).toList()];
  E.setNumThreads(1);
  const one = run();
  E.setNumThreads(Math.max(2, threads));
  const many = run();
  E.setNumThreads(threads);
  assert.deepEqual(many, one);
});

test('max: values, first arg-max gradient, keepDims, NaN', (t) => {
  const cases: [number[], number][] = [[[7], 0], [[3, 5], 1], [[3, 5], 0], [[2, 3, 4], 1], [[2, 3, 4], -1], [[1, 1], 0], [[4, 1, 6], 1]];
  for (const [shape, axis] of cases) {
    for (const keepDims of [false, true]) crossCheck(t, `max ${shape} axis ${axis} keep ${keepDims}`, [{ shape }], (x) => E.max(x, axis, keepDims));
    gradCheck(`max ${shape} axis ${axis}`, [{ shape }], (x) => E.max(x, axis));
  }
  crossCheck(t, 'max large rows', [{ shape: [64, 2049] }], (x) => E.max(x, 1));
  crossCheck(t, 'max large columns', [{ shape: [9, 300, 70] }], (x) => E.max(x, 1));
  for (const backend of BACKENDS) {
    const x = E.tensor([1, 3, 3, 2, -1, -5, -2, -7], [2, 4], { backend, requiresGrad: true });
    const m = E.max(x, 1);
    assert.deepEqual(m.toList(), [3, -1]);
    assert.deepEqual(E.max(x, 1, true).shape, [2, 1]);
    E.sum(m).backward();
    assert.deepEqual(x.grad!.toList(), [0, 1, 0, 0, 1, 0, 0, 0], `${backend}: gradient goes to the first maximum`);
    const n = E.tensor([1, NaN, 3, -1, 0, 2], [2, 3], { backend });
    const v = E.max(n, 1).toList();
    assert.ok(Number.isNaN(v[0]) && v[1] === 2, `${backend}: NaN is the maximum (${v})`);
    assert.deepEqual(E.argmax(n, 1).toList(), [1, 2]);
    const cols = E.tensor([1, NaN, 5, 0, 7, 2], [3, 2], { backend });
    const cv = E.max(cols, 0).toList();
    assert.ok(cv[0] === 7 && Number.isNaN(cv[1]), `${backend}: column NaN (${cv})`);
  }
});

test('argmax: int32 indices of the first maximum, no gradient', (t) => {
  for (const backend of BACKENDS) {
    const x = E.tensor([0, 4, 4, 1, 9, 2, 9, 3, 5], [3, 3], { backend, requiresGrad: true });
    const a = E.argmax(x, 1);
    assert.equal(a.dtype, 'int32');
    assert.equal(a.requiresGrad, false);
    assert.deepEqual(a.toList(), [1, 1, 0]);
    assert.deepEqual(E.argmax(x, 0).toList(), [2, 1, 2]);
    assert.deepEqual(E.argmax(x, -1).shape, [3]);
  }
  if (hasNative) {
    for (const [shape, axis] of [[[64, 10007], 1], [[33, 257, 5], 1], [[1000, 3], 0]] as [number[], number][]) {
      const vals = E.randn(shape, { seed: 11, backend: 'reference' });
      const nat = E.toBackend(vals, 'native');
      assert.deepEqual(E.argmax(nat, axis).toList(), E.argmax(vals, axis).toList(), `argmax ${shape} axis ${axis}`);
    }
    // Many ties: the first maximum must win on both backends, in every lane arrangement.
    const rand = E.seededRandom(5);
    const ties = Array.from({ length: 7 * 1001 }, () => Math.floor(rand() * 3));
    for (const [shape, axis] of [[[7, 1001], 1], [[1001, 7], 0], [[7, 1001], 0]] as [number[], number][]) {
      const [r, n] = ['reference', 'native'].map((backend) => E.tensor(ties, shape, { backend }));
      assert.deepEqual(E.argmax(n, axis).toList(), E.argmax(r, axis).toList(), `argmax ties ${shape} axis ${axis}`);
      crossCheck(t, `max ties ${shape} axis ${axis}`, [{ shape, values: ties }], (x) => E.max(x, axis));
    }
  }
  for (const backend of BACKENDS) {
    const row = (fill: number, at: [number, number][]) => { const a = new Array<number>(40).fill(fill); for (const [i, v] of at) a[i] = v; return a; };
    const x = E.tensor([...row(-Infinity, []), ...row(0, [[1, Infinity], [33, Infinity]]), ...row(-1, [[35, -Infinity], [37, 2], [20, 2]])], [3, 40], { backend });
    assert.deepEqual(E.argmax(x, 1).toList(), [0, 1, 20], `${backend}: -inf rows, inf values, late ties`);
    assert.deepEqual(E.max(x, 1).toList(), [-Infinity, Infinity, 2]);
  }
});

test('reduce: bad input gives clear errors naming the op, axis and shape', () => {
  const x = E.zeros([2, 3]);
  assertThrowsWith(() => E.sum(x, 2), /op 'sum'/, /axis 2 is out of range/, /\[2, 3\]/, /-2\.\.1/);
  assertThrowsWith(() => E.mean(x, [-3]), /op 'mean'/, /axis -3 is out of range/);
  assertThrowsWith(() => E.sum(x, [0, -2]), /op 'sum'/, /repeated/);
  assertThrowsWith(() => E.sum(x, 0.5), /op 'sum'/, /axis 0.5/);
  const ids = E.tensor([1, 2], [2], { dtype: 'int32' });
  assertThrowsWith(() => E.sum(ids), /op 'sum'/, /expected a float tensor/, /int32/);
  assertThrowsWith(() => E.max(ids, 0), /op 'max'/, /float/);
  assertThrowsWith(() => E.argmax(ids, 0), /op 'argmax'/, /float/);
  assertThrowsWith(() => E.max(x, 5), /op 'max'/, /axis 5 is out of range/);
  assertThrowsWith(() => E.argmax(x, -3), /op 'argmax'/, /axis -3/);
  assertThrowsWith(() => E.max(E.zeros([2, 0]), 1), /op 'max'/, /empty/);
  assertThrowsWith(() => E.argmax(E.zeros([0, 2]), 0), /op 'argmax'/, /empty/);
  assertThrowsWith(() => E.max(E.zeros([]), 0), /op 'max'/, /rank 0/);
});

test('reduce: auxiliary arg-max of max is freed when no gradient is recorded', () => {
  const before = E.memoryInfo().buffers;
  const x = E.ones([4, 5]);
  const m = E.max(x, 1);
  assert.equal(E.memoryInfo().buffers, before + 2);
  m.dispose();
  x.dispose();
  assert.equal(E.memoryInfo().buffers, before);
});
