import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { crossCheck, gradCheck, assertThrowsWith, hasNative } from './harness.js';

const BINARY = [E.add, E.sub, E.mul, E.div, E.maximum, E.minimum] as const;
const SHAPES: [number[], number[]][] = [
  [[3, 5], [3, 5]], [[4, 1, 3], [1, 5, 3]], [[7], [2, 3, 7]], [[1], [6, 1]], [[2, 1, 1, 3], [5, 1]], [[], [4]],
];

test('binary ops: native matches reference with broadcasting; gradients match finite differences', (t) => {
  for (const op of BINARY) {
    for (const [sa, sb] of SHAPES) {
      const specB = op === E.div ? { shape: sb, shift: 3 } : { shape: sb };
      crossCheck(t, `${op.name} ${sa}x${sb}`, [{ shape: sa }, specB], op);
      gradCheck(`${op.name} ${sa}x${sb}`, [{ shape: sa }, specB], op);
    }
  }
});

test('unary ops: native matches reference; gradients match finite differences', (t) => {
  const cases: [string, (x: E.Tensor) => E.Tensor, { shift?: number; scale?: number }][] = [
    ['neg', E.neg, {}], ['exp', E.exp, {}], ['log', E.log, { shift: 3, scale: 0.5 }], ['sqrt', E.sqrt, { shift: 3, scale: 0.5 }],
    ['rsqrt', E.rsqrt, { shift: 3, scale: 0.5 }], ['tanh', E.tanh, {}], ['sigmoid', E.sigmoid, {}], ['relu', E.relu, {}],
    ['abs', E.abs, {}], ['square', E.square, {}], ['geluTanh', (x) => E.gelu(x, 'tanh'), {}], ['geluErf', (x) => E.gelu(x), {}],
    ['silu', E.silu, {}], ['affine', (x) => E.affine(x, -1.5, 0.25), {}], ['pow', (x) => E.pow(x, 3), {}],
    ['reciprocal', E.reciprocal, { shift: 3, scale: 0.5 }],
  ];
  for (const [name, fn, r] of cases) {
    for (const shape of [[1], [3, 7], [2, 3, 4097]]) crossCheck(t, `${name} ${shape}`, [{ shape, ...r }], fn);
    gradCheck(name, [{ shape: [2, 5], ...r }], fn);
  }
});

test('swiglu: fused kernel matches reference and finite differences', (t) => {
  crossCheck(t, 'swiglu', [{ shape: [3, 1000] }, { shape: [3, 1000] }], E.swiglu);
  gradCheck('swiglu', [{ shape: [2, 3] }, { shape: [2, 3] }], E.swiglu);
});

test('matmul: transposes, batches, shared operand', (t) => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[3, 4], [4, 5], false, false], [[4, 3], [4, 5], true, false], [[3, 4], [5, 4], false, true], [[4, 3], [5, 4], true, true],
    [[2, 3, 4], [2, 4, 5], false, false], [[2, 3, 4], [4, 5], false, false], [[2, 4, 3], [2, 5, 4], true, true],
    [[1, 1], [1, 1], false, false], [[17, 33], [33, 9], false, false], [[2, 5, 3], [3, 6], false, false], [[2, 3, 5], [6, 5], false, true],
  ];
  for (const [sa, sb, transA, transB] of cases) {
    const fn = (a: E.Tensor, b: E.Tensor) => E.matmul(a, b, { transA, transB });
    crossCheck(t, `matmul ${sa}${transA ? 'T' : ''} x ${sb}${transB ? 'T' : ''}`, [{ shape: sa }, { shape: sb }], fn);
    gradCheck(`matmul ${sa} x ${sb}`, [{ shape: sa }, { shape: sb }], fn);
  }
  crossCheck(t, 'matmul large', [{ shape: [130, 257] }, { shape: [257, 65] }], (a, b) => E.matmul(a, b), { atol: 1e-3 });
});

test('linear: with and without bias, batched input', (t) => {
  crossCheck(t, 'linear bias', [{ shape: [2, 3, 4] }, { shape: [5, 4] }, { shape: [5] }], E.linear);
  crossCheck(t, 'linear nobias', [{ shape: [7, 4] }, { shape: [5, 4] }], (x, w) => E.linear(x, w));
  gradCheck('linear', [{ shape: [2, 3, 4] }, { shape: [5, 4] }, { shape: [5] }], E.linear);
});

test('reshape, sumToShape, broadcastTo', (t) => {
  crossCheck(t, 'sumToShape', [{ shape: [3, 4, 5] }], (x) => E.sumToShape(x, [4, 1]));
  crossCheck(t, 'sumToShape lead', [{ shape: [30, 300] }], (x) => E.sumToShape(x, [300]));
  crossCheck(t, 'broadcastTo', [{ shape: [4, 1] }], (x) => E.broadcastTo(x, [3, 4, 5]));
  gradCheck('reshape', [{ shape: [2, 6] }], (x) => E.mul(E.reshape(x, [3, -1]), E.reshape(x, [3, 4])));
  gradCheck('broadcastTo', [{ shape: [4, 1] }], (x) => E.broadcastTo(x, [3, 4, 5]));
});

test('bad input: clear errors naming the op and shapes', () => {
  const a = E.zeros([2, 3]), b = E.zeros([4, 3]);
  assertThrowsWith(() => E.add(a, b), /add/, /\[2, 3\]/, /\[4, 3\]/);
  assertThrowsWith(() => E.matmul(a, b), /matmul/, /inner dimensions differ: 3 vs 4/);
  assertThrowsWith(() => E.linear(a, E.zeros([5, 4])), /linear/, /does not end in 4/);
  assertThrowsWith(() => E.reshape(a, [4, 2]), /reshape/, /6 elements/);
  assertThrowsWith(() => E.tensor([1, 2, 3], [2, 2]), /3 values do not fill shape \[2, 2\]/);
  const ids = E.tensor([1, 2], [2], { dtype: 'int32' });
  assertThrowsWith(() => E.exp(ids), /exp/, /expected a float tensor/);
  assertThrowsWith(() => E.add(a, E.zeros([2, 3], { dtype: 'float64', backend: 'reference' })), /add/);
  const c = E.ones([2, 3]);
  c.dispose();
  assertThrowsWith(() => E.add(a, c), /add/, /disposed/);
  assertThrowsWith(() => c.toArray(), /disposed/);
  const x = E.ones([2], { requiresGrad: false });
  assertThrowsWith(() => E.sumToShape(x, []).backward(), /does not require a gradient/);
  const p = E.ones([2], { requiresGrad: true });
  assertThrowsWith(() => E.mul(p, p).backward(), /2 elements/);
  if (hasNative) assertThrowsWith(() => E.zeros([2], { dtype: 'float64', backend: 'native' }), /native/, /float64/);
});

test('autograd: gradients accumulate, noGrad records nothing, shared inputs handled', () => {
  const x = E.tensor([1, 2, 3], [3], { requiresGrad: true });
  E.sumToShape(E.mul(x, x), []).backward();
  E.sumToShape(E.add(x, x), []).backward();
  assert.deepEqual(x.grad!.toList(), [4, 6, 8]);
  const y = E.noGrad(() => E.mul(x, x));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
});

test('memory scopes: tidy frees intermediates and keeps results', () => {
  const before = E.memoryInfo().buffers;
  const r = E.tidy(() => {
    const a = E.ones([100]);
    const b = E.add(a, a);
    return { out: E.mul(b, b) };
  });
  assert.equal(E.memoryInfo().buffers, before + 1);
  assert.deepEqual(r.out.toList().slice(0, 2), [4, 4]);
  r.out.dispose();
  assert.equal(E.memoryInfo().buffers, before);
  assert.throws(() => E.tidy(() => { E.ones([3]); throw new Error('boom'); }), /boom/);
  assert.equal(E.memoryInfo().buffers, before);
});
