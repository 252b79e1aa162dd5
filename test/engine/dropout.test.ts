import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { crossCheck, gradCheck, assertThrowsWith, hasNative, makeValues, noNativeReason } from './harness.js';

const N = 100_000;

/** The keep mask (1/0) of dropout on a tensor of ones. */
function maskOf(p: number, seed: number, backend: string, n = N): Uint8Array {
  return E.tidy(() => {
    const y = E.dropout(E.ones([n], { backend }), { p, seed }).toArray();
    return Uint8Array.from(y, (v) => (v !== 0 ? 1 : 0));
  });
}

function fraction(m: Uint8Array): number {
  let k = 0;
  for (const v of m) k += v;
  return k / m.length;
}

test('dropout: same seed gives the same mask, different seeds differ, kept fraction ≈ 1 − p', () => {
  for (const backend of E.availableBackends()) {
    for (const p of [0.1, 0.5, 0.9]) {
      const a = maskOf(p, 1234, backend), b = maskOf(p, 1234, backend), c = maskOf(p, 1235, backend);
      assert.deepEqual(a, b, `same seed (${backend}, p=${p})`);
      assert.notDeepEqual(a, c, `different seeds (${backend}, p=${p})`);
      // Binomial standard deviation is at most 0.0016 here.
      assert.ok(Math.abs(fraction(a) - (1 - p)) < 0.01, `kept fraction ${fraction(a)} for p=${p} (${backend})`);
      // Masks of neighbouring seeds are independent: they agree on p² + (1−p)² of the elements.
      let agree = 0;
      for (let i = 0; i < N; i++) agree += a[i] === c[i] ? 1 : 0;
      assert.ok(Math.abs(agree / N - (p * p + (1 - p) * (1 - p))) < 0.01, `seed independence ${agree / N} (${backend}, p=${p})`);
    }
    // Large seeds use their high word too.
    assert.notDeepEqual(maskOf(0.5, 2 ** 40, backend, 1000), maskOf(0.5, 0, backend, 1000), `high word of the seed (${backend})`);
    assert.notDeepEqual(maskOf(0.5, -1, backend, 1000), maskOf(0.5, 2 ** 32 - 1, backend, 1000), `negative seed (${backend})`);
  }
});

test('dropout: native equals reference bit for bit, whatever the thread count', { skip: noNativeReason ?? false }, () => {
  const x = Float32Array.from(makeValues({ shape: [N + 3] }, 9));
  const run = (backend: string, p: number, seed: number) => E.tidy(() => E.dropout(E.tensor(x, [N + 3], { backend }), { p, seed }).toArray());
  const before = E.engineInfo().threads ?? 1;
  try {
    for (const [p, seed] of [[0.1, 0], [0.37, 99], [0.5, 2 ** 33 + 5], [0.999, -7]] as const) {
      const ref = run('reference', p, seed);
      for (const threads of [1, 2]) {
        E.setNumThreads(threads);
        assert.deepEqual(run('native', p, seed), ref, `p=${p} seed=${seed} threads=${threads}`);
      }
      // Kept values are exactly x · float32(1 / (1 − p)); dropped ones are 0.
      const s = Math.fround(1 / (1 - p));
      for (let i = 0; i < 2000; i++) assert.ok(ref[i] === 0 || ref[i] === Math.fround(x[i] * s), `scaling at ${i}`);
    }
  } finally {
    E.setNumThreads(before);
  }
});

test('dropout: backward regenerates the mask (native vs reference, finite differences)', (t) => {
  crossCheck(t, 'dropout', [{ shape: [3, 1001] }], (x) => E.dropout(x, { p: 0.3, seed: 42 }), { atol: 0, rtol: 0 });
  crossCheck(t, 'dropout small', [{ shape: [1] }], (x) => E.dropout(x, { p: 0.5, seed: 1 }), { atol: 0, rtol: 0 });
  crossCheck(t, 'dropout large', [{ shape: [2, 70000] }], (x) => E.dropout(x, { p: 0.2, seed: 7 }), { atol: 0, rtol: 0 });
  gradCheck('dropout', [{ shape: [4, 5] }], (x) => E.dropout(x, { p: 0.4, seed: 3 }));
  // The gradient is dy · mask / (1 − p): the same mask as the forward.
  for (const backend of E.availableBackends()) {
    E.tidy(() => {
      const x = E.tensor(Float32Array.from(makeValues({ shape: [500] }, 4)), [500], { backend, requiresGrad: true });
      const y = E.dropout(x, { p: 0.25, seed: 8 });
      E.sumToShape(y, []).backward();
      const yv = y.toArray(), g = x.grad!.toArray(), s = Math.fround(1 / 0.75);
      for (let i = 0; i < 500; i++) assert.equal(g[i], yv[i] === 0 ? 0 : s, `gradient at ${i} (${backend})`);
    });
  }
});

test('dropout: the hash is pinned (masks stay reproducible across versions)', () => {
  const [k1, k2] = E.dropoutKeys(12345);
  assert.deepEqual([k1, k2], [1868776673, 1558295650]);
  assert.deepEqual([0, 1, 2, 3, 2 ** 32 + 1].map((i) => E.dropoutBits(k1, k2, i)), [3488657067, 1221007541, 82768798, 357935933, 213392463]);
  assert.equal(E.dropoutMix32(0), 0);
});

test('dropout: identity when p = 0 or not training', () => {
  const x = E.ones([3, 4]);
  assert.equal(E.dropout(x, { p: 0, seed: 1 }), x);
  assert.equal(E.dropout(x, { p: 0.5, seed: 1, training: false }), x);
});

test('dropout: bad input', () => {
  const x = E.ones([3, 4]);
  assertThrowsWith(() => E.dropout(x, { p: 1, seed: 1 }), /dropout/, /p must be a number in \[0, 1\), got 1/);
  assertThrowsWith(() => E.dropout(x, { p: -0.1, seed: 1 }), /dropout/, /got -0.1/);
  assertThrowsWith(() => E.dropout(x, { p: NaN, seed: 1 }), /dropout/, /got NaN/);
  assertThrowsWith(() => E.dropout(x, { p: 1.5, seed: 1, training: false }), /dropout/, /p must be/);
  assertThrowsWith(() => E.dropout(x, { p: '0.5' as unknown as number, seed: 1 }), /dropout/, /p must be/);
  assertThrowsWith(() => E.dropout(x, { p: 0.5, seed: 1.5 }), /dropout/, /seed must be an integer, got 1.5/);
  assertThrowsWith(() => E.dropout(E.ones([2], { dtype: 'int32' }), { p: 0.5, seed: 1 }), /dropout/, /expected a float tensor/);
});
