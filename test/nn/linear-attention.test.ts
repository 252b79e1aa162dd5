// Linear attention feature maps, FAVOR+ above all: the random projection, the estimate of softmax
// attention it promises, chunking, padding, gradients (finite differences, float64) and native vs
// reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { LinearAttention, orthogonalRandomFeatures } from '../../src/nn/index.js';
import { crossCheck, gradCheck } from '../engine/harness.js';
import { maxAbsDiff } from './helpers.js';

const opts = (extra: Partial<ConstructorParameters<typeof LinearAttention>[0]> = {}) => ({
  dModel: 16, nHeads: 2, headDim: 8, causal: false, seed: 7, backend: 'reference', dtype: 'float64' as const, ...extra,
});

test('orthogonalRandomFeatures: blocks of orthogonal rows, Gaussian-length rows, deterministic', () => {
  const d = 8, m = 20;
  const w = orthogonalRandomFeatures(m, d, 3);
  assert.deepEqual([...w], [...orthogonalRandomFeatures(m, d, 3)], 'same seed, same features');
  assert.notDeepEqual([...w], [...orthogonalRandomFeatures(m, d, 4)]);
  const row = (i: number) => w.subarray(i * d, (i + 1) * d);
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);
  for (let b0 = 0; b0 < m; b0 += d) {
    for (let i = b0; i < Math.min(m, b0 + d); i++) {
      for (let j = b0; j < i; j++) {
        const cos = dot(row(i), row(j)) / Math.sqrt(dot(row(i), row(i)) * dot(row(j), row(j)));
        assert.ok(Math.abs(cos) < 1e-10, `rows ${i} and ${j} of one block are orthogonal (cos ${cos})`);
      }
    }
  }
  // Row lengths are chi(d)-distributed: mean length near sqrt(d) over many rows.
  const big = orthogonalRandomFeatures(4000, d, 11);
  let mean = 0;
  for (let i = 0; i < 4000; i++) mean += Math.sqrt(dot(big.subarray(i * d, (i + 1) * d), big.subarray(i * d, (i + 1) * d))) / 4000;
  assert.ok(Math.abs(mean - Math.sqrt(d - 0.5)) < 0.05, `mean row length ${mean} ≈ sqrt(d - 1/2)`);
});

test('FAVOR+: the estimate converges to softmax attention as the features grow', () => {
  // Same q/k/v projections for every feature count (the seed fixes the weights), exact softmax
  // attention computed from them with the engine's attention op.
  const x = E.randn([2, 6, 16], { seed: 1, backend: 'reference', dtype: 'float64' });
  const errors: number[] = [];
  for (const causal of [false, true]) {
    let exact: Float64Array | null = null;
    const errs: number[] = [];
    for (const m of [16, 256, 4096]) {
      const a = new LinearAttention({ ...opts({ causal }), linear: { featureMap: 'favor', features: m, seed: 5 } });
      a.eval();
      E.noGrad(() => E.tidy(() => {
        if (!exact) {
          const [B, S] = x.shape;
          const q = E.reshape(a.q.forward(E.mulScalar(x, 0.5)), [B, S, 2, 8]);
          const k = E.reshape(a.k.forward(E.mulScalar(x, 0.5)), [B, S, 2, 8]);
          const v = E.reshape(a.v.forward(E.mulScalar(x, 0.5)), [B, S, 2, 8]);
          const att = E.reshape(E.attention(q, k, v, { causal, scale: 1 / Math.sqrt(8) }), [B, S, 16]);
          exact = a.o.forward(att).toArray() as Float64Array;
        }
        errs.push(maxAbsDiff(a.forward(E.mulScalar(x, 0.5)).toArray(), exact));
      }));
      a.dispose();
    }
    assert.ok(errs[2]! < errs[0]! / 4, `${causal ? 'causal' : 'bidirectional'}: error falls with m (${errs.map((e) => e.toExponential(2)).join(' → ')})`);
    assert.ok(errs[2]! < 2e-3, `${causal ? 'causal' : 'bidirectional'}: 4096 features approximate softmax attention (max |err| ${errs[2]})`);
    errors.push(...errs);
  }
  x.dispose();
});

test('linear attention: the causal pass does not depend on the chunk size; padding keys add nothing', () => {
  for (const featureMap of ['elu1', 'favor'] as const) {
    const x = E.randn([2, 7, 16], { seed: 2, backend: 'reference', dtype: 'float64' });
    const outs = [1, 3, 64].map((chunkSize) => {
      const a = new LinearAttention({ ...opts({ causal: true }), linear: { featureMap, chunkSize, seed: 9 } });
      const y = E.noGrad(() => a.forward(x).toArray());
      a.dispose();
      return y;
    });
    assert.ok(maxAbsDiff(outs[0]!, outs[1]!) < 1e-12 && maxAbsDiff(outs[0]!, outs[2]!) < 1e-12, `${featureMap}: chunk sizes agree`);
    // Bidirectional with the last 2 keys of row 1 padded = the same rows cut to their real length.
    const a = new LinearAttention({ ...opts(), linear: { featureMap, seed: 9 } });
    const mask = E.tensor(Int32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]), [2, 7], { dtype: 'int32', backend: 'reference' });
    const padded = E.noGrad(() => a.forward(x, { keyMask: mask }).toArray());
    const row1 = E.narrow(E.narrow(x, 0, 1, 1), 1, 0, 5);
    const cut = E.noGrad(() => a.forward(row1).toArray());
    assert.ok(maxAbsDiff(padded.subarray(7 * 16, 7 * 16 + 5 * 16), cut) < 1e-12, `${featureMap}: padded keys are ignored`);
    a.dispose();
    x.dispose();
  }
});

test('FAVOR+ gradients match finite differences (float64), causal and bidirectional', () => {
  for (const causal of [false, true]) {
    const a = new LinearAttention({ ...opts({ causal }), linear: { featureMap: 'favor', features: 12, seed: 4, chunkSize: 2 } });
    gradCheck(`favor ${causal ? 'causal' : 'bidirectional'}`, [{ shape: [2, 5, 16], scale: 0.5 }], (x) => a.forward(x), { atol: 1e-6, rtol: 1e-5 });
    a.dispose();
  }
});

test('FAVOR+ native matches reference (float32), forward and input gradient', (t) => {
  for (const causal of [false, true]) {
    const models = new Map(['native', 'reference'].filter((b) => E.availableBackends().includes(b)).map((backend) => [backend,
      new LinearAttention({ ...opts({ causal, backend, dtype: 'float32' }), linear: { featureMap: 'favor', features: 24, seed: 4, chunkSize: 3 } })]));
    crossCheck(t, `favor ${causal ? 'causal' : 'bidirectional'}`, [{ shape: [2, 9, 16], scale: 0.5 }], (x) => models.get(x.backend.name)!.forward(x), { atol: 1e-4, rtol: 1e-4 });
    for (const m of models.values()) m.dispose();
  }
});
