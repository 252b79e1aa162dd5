import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { crossCheck, gradCheck, assertThrowsWith, assertClose, hasNative, makeValues, noNativeReason } from './harness.js';

type Fn = (...xs: E.Tensor[]) => E.Tensor;

/** layerNorm variants: [name, number of params, fn]. */
const LN_VARIANTS: [string, (D: number) => { shape: number[] }[], Fn][] = [
  ['w+b', (D) => [{ shape: [D] }, { shape: [D] }], (x, w, b) => E.layerNorm(x, w, b)],
  ['w', (D) => [{ shape: [D] }], (x, w) => E.layerNorm(x, w, null)],
  ['b', (D) => [{ shape: [D] }], (x, b) => E.layerNorm(x, null, b)],
  ['none', () => [], (x) => E.layerNorm(x, null, null)],
];
const RMS_VARIANTS: [string, (D: number) => { shape: number[] }[], Fn][] = [
  ['w', (D) => [{ shape: [D] }], (x, w) => E.rmsNorm(x, w)],
  ['none', () => [], (x) => E.rmsNorm(x, null)],
];

// Small, odd, size-1, 1-D, parallel-path (many rows) and large-D shapes.
const SHAPES = [[7], [1, 1], [3, 1], [2, 3, 7], [1, 4096], [97, 513], [40, 4096]];

test('layerNorm / rmsNorm: native matches reference (outputs and gradients)', (t) => {
  for (const shape of SHAPES) {
    const D = shape[shape.length - 1];
    for (const [name, params, fn] of LN_VARIANTS) {
      crossCheck(t, `layerNorm ${name} ${shape}`, [{ shape }, ...params(D)], fn, { atol: 2e-4 });
    }
    for (const [name, params, fn] of RMS_VARIANTS) {
      crossCheck(t, `rmsNorm ${name} ${shape}`, [{ shape }, ...params(D)], fn, { atol: 2e-4 });
    }
  }
});

test('layerNorm / rmsNorm: gradients match finite differences', () => {
  for (const shape of [[2, 3, 5], [3, 1], [4]]) {
    const D = shape[shape.length - 1];
    for (const [name, params, fn] of LN_VARIANTS) gradCheck(`layerNorm ${name} ${shape}`, [{ shape }, ...params(D)], fn);
    for (const [name, params, fn] of RMS_VARIANTS) gradCheck(`rmsNorm ${name} ${shape}`, [{ shape }, ...params(D)], fn);
  }
  // Non-default eps.
  gradCheck('layerNorm eps', [{ shape: [2, 4], scale: 0.1 }, { shape: [4] }, { shape: [4] }], (x, w, b) => E.layerNorm(x, w, b, 0.01));
  gradCheck('rmsNorm eps', [{ shape: [2, 4], scale: 0.1 }, { shape: [4] }], (x, w) => E.rmsNorm(x, w, 0.01));
});

test('layerNorm / rmsNorm: PyTorch / Hugging Face values', () => {
  for (const backend of E.availableBackends()) {
    E.tidy(() => {
      const x = E.tensor([1, 2, 3, 4, -1, 0, 1, 10], [2, 4], { backend });
      const w = E.tensor([1, 2, 0.5, -1], [4], { backend });
      const b = E.tensor([0.1, 0.2, 0.3, 0.4], [4], { backend });
      // torch.nn.functional.layer_norm(x, [4], w, b, 1e-5), biased variance.
      const expected: number[] = [];
      const rms: number[] = [];
      const xs = x.toList();
      for (let r = 0; r < 2; r++) {
        const row = xs.slice(r * 4, r * 4 + 4);
        const m = row.reduce((s, v) => s + v, 0) / 4;
        const v = row.reduce((s, u) => s + (u - m) ** 2, 0) / 4;
        const ms = row.reduce((s, u) => s + u * u, 0) / 4;
        row.forEach((u, j) => {
          expected.push(((u - m) / Math.sqrt(v + 1e-5)) * w.toList()[j] + b.toList()[j]);
          rms.push(w.toList()[j] * (u / Math.sqrt(ms + 1e-6)));
        });
      }
      assertClose(E.layerNorm(x, w, b).toArray(), expected, `layerNorm values (${backend})`, 1e-6, 1e-6);
      assertClose(E.rmsNorm(x, w).toArray(), rms, `rmsNorm values (${backend})`, 1e-6, 1e-6);
      // Row 0 of layerNorm without affine: (x - 2.5) / sqrt(1.25 + eps).
      const plain = E.layerNorm(x, null, null).toArray();
      assertClose(plain.slice(0, 4), [-1.5, -0.5, 0.5, 1.5].map((u) => u / Math.sqrt(1.25 + 1e-5)), 'plain', 1e-6, 1e-6);
    });
  }
});

test('layerNorm / rmsNorm: rows of length 1 and large D', () => {
  for (const backend of E.availableBackends()) {
    E.tidy(() => {
      // D = 1: layerNorm gives the bias exactly (x − mean = 0), its input gradient is 0.
      const x = E.tensor([3, -2, 0.5], [3, 1], { backend, requiresGrad: true });
      const w = E.tensor([2], [1], { backend, requiresGrad: true });
      const b = E.tensor([0.25], [1], { backend, requiresGrad: true });
      const y = E.layerNorm(x, w, b);
      assert.deepEqual(y.toList(), [0.25, 0.25, 0.25]);
      E.sumToShape(y, []).backward();
      assert.deepEqual(x.grad!.toList(), [0, 0, 0]);
      assert.deepEqual(w.grad!.toList(), [0]);
      assert.deepEqual(b.grad!.toList(), [3]);
      // rmsNorm with D = 1: x / sqrt(x² + eps) · w.
      const r = E.rmsNorm(x, w).toList();
      assertClose(r, [3, -2, 0.5].map((v) => 2 * v / Math.sqrt(v * v + 1e-6)), `rmsNorm D=1 (${backend})`, 1e-6, 1e-6);
      // D = 4096 with a large offset: the statistics stay accurate (double accumulation).
      const D = 4096;
      const vals = makeValues({ shape: [2, D], shift: 1000 }, 7);
      const big = E.tensor(Float32Array.from(vals), [2, D], { backend });
      const out = E.layerNorm(big, null, null).toArray();
      for (let row = 0; row < 2; row++) {
        let m = 0, v = 0;
        for (let j = 0; j < D; j++) m += out[row * D + j];
        m /= D;
        for (let j = 0; j < D; j++) v += (out[row * D + j] - m) ** 2;
        v /= D;
        assert.ok(Math.abs(m) < 1e-3, `layerNorm D=4096 row mean ${m} (${backend})`);
        assert.ok(Math.abs(v - 1) < 1e-3, `layerNorm D=4096 row variance ${v} (${backend})`);
      }
      const ro = E.rmsNorm(big, null).toArray();
      let ms = 0;
      for (let j = 0; j < D; j++) ms += ro[j] * ro[j];
      assert.ok(Math.abs(ms / D - 1) < 1e-4, `rmsNorm D=4096 mean square ${ms / D} (${backend})`);
    });
  }
});

test('layerNorm / rmsNorm: an empty batch gives empty outputs and zero weight gradients', () => {
  for (const backend of E.availableBackends()) {
    E.tidy(() => {
      const x = E.zeros([0, 5], { backend, requiresGrad: true });
      const w = E.ones([5], { backend, requiresGrad: true }), b = E.ones([5], { backend, requiresGrad: true });
      const y = E.add(E.layerNorm(x, w, b), E.rmsNorm(x, w));
      assert.deepEqual(y.shape, [0, 5]);
      E.sumToShape(y, []).backward();
      assert.deepEqual(w.grad!.toList(), [0, 0, 0, 0, 0]);
      assert.deepEqual(b.grad!.toList(), [0, 0, 0, 0, 0]);
    });
  }
});

test('layerNorm / rmsNorm backward: weight/bias gradients are deterministic across thread counts', { skip: noNativeReason ?? false }, () => {
  const before = E.engineInfo().threads ?? 1;
  const run = (threads: number) => E.tidy(() => {
    E.setNumThreads(threads);
    const x = E.tensor(Float32Array.from(makeValues({ shape: [301, 257] }, 3)), [301, 257], { backend: 'native', requiresGrad: true });
    const w = E.tensor(Float32Array.from(makeValues({ shape: [257] }, 4)), [257], { backend: 'native', requiresGrad: true });
    const b = E.tensor(Float32Array.from(makeValues({ shape: [257] }, 5)), [257], { backend: 'native', requiresGrad: true });
    const up = E.tensor(Float32Array.from(makeValues({ shape: [301, 257] }, 6)), [301, 257], { backend: 'native' });
    E.sumToShape(E.mul(E.layerNorm(x, w, b), up), []).backward();
    const w2 = E.tensor(Float32Array.from(makeValues({ shape: [257] }, 8)), [257], { backend: 'native', requiresGrad: true });
    E.sumToShape(E.mul(E.rmsNorm(x, w2), up), []).backward();
    return [x.grad!.toArray(), w.grad!.toArray(), b.grad!.toArray(), w2.grad!.toArray()];
  });
  try {
    const one = run(1), two = run(2), again = run(2);
    for (let k = 0; k < one.length; k++) {
      assert.deepEqual(two[k], one[k], `gradient ${k}: 1 vs 2 threads`);
      assert.deepEqual(again[k], two[k], `gradient ${k}: repeat`);
    }
  } finally {
    E.setNumThreads(before);
  }
});

test('layerNorm / rmsNorm: statistics are freed when no gradient is recorded', () => {
  for (const backend of E.availableBackends()) {
    const x = E.ones([4, 8], { backend });
    const before = E.memoryInfo(E.getBackend(backend)).buffers;
    const y = E.noGrad(() => E.layerNorm(x, null, null));
    const z = E.rmsNorm(x, null);
    assert.equal(E.memoryInfo(E.getBackend(backend)).buffers, before + 2, `only the outputs stay allocated (${backend})`);
    y.dispose(); z.dispose(); x.dispose();
  }
});

test('layerNorm / rmsNorm: bad input', () => {
  const x = E.zeros([2, 3]);
  assertThrowsWith(() => E.layerNorm(x, E.zeros([4]), null), /layerNorm/, /weight \[4\] must be \[3\]/, /\[2, 3\]/);
  assertThrowsWith(() => E.layerNorm(x, null, E.zeros([3, 1])), /layerNorm/, /bias \[3, 1\] must be \[3\]/);
  assertThrowsWith(() => E.rmsNorm(x, E.zeros([2])), /rmsNorm/, /weight \[2\] must be \[3\]/);
  assertThrowsWith(() => E.layerNorm(E.zeros([2, 3], { dtype: 'int32' }), null, null), /layerNorm/, /expected a float tensor/);
  assertThrowsWith(() => E.rmsNorm(E.zeros([]), null), /rmsNorm/, /at least 1 dimension/);
  assertThrowsWith(() => E.layerNorm(E.zeros([2, 0]), null, null), /layerNorm/, /empty/);
  assertThrowsWith(() => E.layerNorm(x, null, null, -1), /layerNorm/, /eps must be a finite number >= 0, got -1/);
  assertThrowsWith(() => E.rmsNorm(x, null, NaN), /rmsNorm/, /eps/);
  const x64 = E.zeros([2, 3], { dtype: 'float64', backend: 'reference' });
  assertThrowsWith(() => E.layerNorm(x64, E.zeros([3], { backend: 'reference' }), null), /layerNorm/, /weight dtype float32 differs from input dtype float64/);
  if (hasNative) {
    assertThrowsWith(() => E.layerNorm(E.zeros([2, 3], { backend: 'native' }), E.zeros([3], { backend: 'reference' }), null), /layerNorm/, /different backends/);
  }
});

// The fused residual add + RMSNorm: both outputs (the sum feeds the next residual add, the
// normed value the sub-layer), each alone or both reaching the loss.
const ADD_RMS: [string, Fn][] = [
  ['both outputs', (x, r, w) => { const [s, y] = E.addRmsNorm(x, r, w); return E.add(E.mul(s, s), y); }],
  ['normed only', (x, r, w) => E.addRmsNorm(x, r, w)[1]],
  ['sum only', (x, r, w) => E.addRmsNorm(x, r, w)[0]],
  ['no weight', (x, r) => { const [s, y] = E.addRmsNorm(x, r, null); return E.add(s, E.mul(y, y)); }],
];

test('addRmsNorm: native matches reference, gradients match finite differences, equals add + rmsNorm', (t) => {
  for (const shape of [[7], [3, 1], [2, 3, 7], [97, 513], [40, 256]]) {
    const D = shape[shape.length - 1];
    for (const [name, fn] of ADD_RMS) {
      crossCheck(t, `addRmsNorm ${name} ${shape}`, [{ shape }, { shape }, ...(name === 'no weight' ? [] : [{ shape: [D] }])], fn, { atol: 2e-4 });
    }
  }
  for (const shape of [[2, 3, 5], [3, 1], [4]]) {
    const D = shape[shape.length - 1];
    // (with the sum alone the weight gets no gradient, which gradCheck would call missing)
    for (const [name, fn] of ADD_RMS.filter(([n]) => n !== 'sum only')) gradCheck(`addRmsNorm ${name} ${shape}`, [{ shape }, { shape }, ...(name === 'no weight' ? [] : [{ shape: [D] }])], fn);
  }
  for (const backend of hasNative ? ['native', 'reference'] : ['reference']) {
    E.tidy(() => {
      const x = E.randn([5, 33], { seed: 1, backend }), r = E.randn([5, 33], { seed: 2, backend }), w = E.randn([33], { seed: 3, backend });
      const [s, y] = E.addRmsNorm(x, r, w, 1e-5);
      const s2 = E.add(x, r);
      assertClose(s.toArray(), s2.toArray(), `addRmsNorm sum (${backend})`, 0, 0);
      assertClose(y.toArray(), E.rmsNorm(s2, w, 1e-5).toArray(), `addRmsNorm normed (${backend})`, 1e-6, 1e-6);
    });
  }
  assertThrowsWith(() => E.addRmsNorm(E.zeros([2, 4]), E.zeros([2, 5]), null), /addRmsNorm/, /residual/, /\[2, 5\]/);
});
