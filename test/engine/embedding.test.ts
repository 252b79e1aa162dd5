import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { crossCheck, gradCheck, assertThrowsWith, hasNative, makeValues } from './harness.js';

test('embedding: native matches reference (gather and scatter-add gradient)', (t) => {
  const cases: [number[], number[]][] = [
    [[10, 7], [3, 4]],
    [[1, 1], [1]],
    [[4, 3], []],
    [[6, 5], [2, 1, 3]],
    [[50, 700], [4, 75]], // column-block tiling, many repeated ids
    [[1000, 16], [8, 128]], // vocabulary-range tiling
    [[3, 130], [300]], // every row hit ~100 times
  ];
  for (const [ws, is] of cases) crossCheck(t, `embedding ${ws} ids ${is}`, [{ shape: ws }, { shape: is, intHigh: ws[0] }], E.embedding);
});

test('embedding: gradient matches finite differences', () => {
  gradCheck('embedding', [{ shape: [5, 3] }, { shape: [2, 4], intHigh: 5 }], E.embedding);
  gradCheck('embedding scalar id', [{ shape: [3, 2] }, { shape: [], intHigh: 3 }], E.embedding);
});

test('embedding: values, output shape and exact scatter-add on both backends', () => {
  const V = 37, D = 300;
  const w = Float32Array.from(makeValues({ shape: [V, D] }, 1));
  const idsArr = Int32Array.from({ length: 6 * 50 }, (_, i) => (i * 7 + (i % 3)) % V);
  const up = Float32Array.from(makeValues({ shape: [6, 50, D] }, 2));
  // Expected gradient: rows summed in position order in float32.
  const expected = new Float32Array(V * D);
  for (let n = 0; n < idsArr.length; n++) for (let j = 0; j < D; j++) expected[idsArr[n] * D + j] += up[n * D + j];
  const results: Float32Array[] = [];
  for (const backend of E.availableBackends()) {
    E.tidy(() => {
      const weight = E.tensor(w, [V, D], { backend, requiresGrad: true });
      const ids = E.tensor(idsArr, [6, 50], { backend, dtype: 'int32' });
      const y = E.embedding(weight, ids);
      assert.deepEqual(y.shape, [6, 50, D]);
      const yv = y.toArray();
      for (const n of [0, 17, 299]) assert.deepEqual(yv.subarray(n * D, n * D + D), w.subarray(idsArr[n] * D, idsArr[n] * D + D));
      y.backward(E.tensor(up, [6, 50, D], { backend }));
      assert.deepEqual(weight.grad!.toArray(), expected, `scatter-add (${backend})`);
      results.push(weight.grad!.toArray() as Float32Array);
      weight.grad!.dispose();
    });
  }
  if (hasNative) {
    // Same result whatever the thread count.
    const before = E.engineInfo().threads ?? 1;
    try {
      for (const threads of [1, 2]) {
        E.setNumThreads(threads);
        E.tidy(() => {
          const weight = E.tensor(w, [V, D], { backend: 'native', requiresGrad: true });
          E.embedding(weight, E.tensor(idsArr, [6, 50], { backend: 'native', dtype: 'int32' })).backward(E.tensor(up, [6, 50, D], { backend: 'native' }));
          assert.deepEqual(weight.grad!.toArray(), expected, `${threads} threads`);
          weight.grad!.dispose();
        });
      }
    } finally {
      E.setNumThreads(before);
    }
  }
});

test('embedding: ids out of range are rejected with the op, the position and the value', () => {
  for (const backend of E.availableBackends()) {
    E.tidy(() => {
      const w = E.zeros([10, 4], { backend });
      const tooBig = E.tensor([1, 2, 3, 4, 5, 10], [2, 3], { backend, dtype: 'int32' });
      assertThrowsWith(() => E.embedding(w, tooBig), /embedding/, /id 10 at position 5/, /index \[1, 2\]/, /\[0, 10\)/);
      const negative = E.tensor([0, -3], [2], { backend, dtype: 'int32' });
      assertThrowsWith(() => E.embedding(w, negative), /embedding/, /id -3 at position 1/);
      const big = E.tensor([2147483647], [1], { backend, dtype: 'int32' });
      assertThrowsWith(() => E.embedding(w, big), /embedding/, /id 2147483647 at position 0/);
    });
  }
  if (hasNative) {
    // The check lives in the native kernel itself.
    const before = E.memoryInfo(E.getBackend('native')).buffers;
    const w = E.zeros([3, 2], { backend: 'native' });
    const ids = E.tensor([0, 3], [2], { backend: 'native', dtype: 'int32' });
    assertThrowsWith(() => E.embedding(w, ids), /native kernel 'embedding'/, /id 3 at position 1/);
    w.dispose(); ids.dispose();
    assert.equal(E.memoryInfo(E.getBackend('native')).buffers, before, 'no buffer leaked by the failed call');
  }
});

test('embedding: bad input', () => {
  const ids = E.tensor([0, 1], [2], { dtype: 'int32' });
  assertThrowsWith(() => E.embedding(E.zeros([4]), ids), /embedding/, /weight must be 2-D \[V, D\], got \[4\]/);
  assertThrowsWith(() => E.embedding(E.zeros([4, 2], { dtype: 'int32' }), ids), /embedding/, /weight must be a float tensor/);
  assertThrowsWith(() => E.embedding(E.zeros([4, 2]), E.zeros([2])), /embedding/, /ids must be int32, got .*float32\[2\]/);
  if (hasNative) assertThrowsWith(() => E.embedding(E.zeros([4, 2], { backend: 'native' }), E.tensor([0], [1], { dtype: 'int32', backend: 'reference' })), /embedding/, /different backends/);
});
