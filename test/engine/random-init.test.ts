// The random initialisers fill big tensors chunk by chunk (no full-size float64 copy in
// JavaScript): the values are exactly those of one pass over the seeded stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';

test('randn and randUniform over several chunks equal one pass of the seeded stream (odd length too)', () => {
  const n = (1 << 18) * 2 + 5;
  const t = E.randn([n], { seed: 7, std: 0.02, mean: 0.1 });
  const rand = E.seededRandom(7);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = Math.max(rand(), 1e-12), u2 = rand();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = 0.1 + 0.02 * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = 0.1 + 0.02 * r * Math.sin(2 * Math.PI * u2);
  }
  assert.deepEqual(t.toArray(), Float32Array.from(out));
  const u = E.randUniform([n], { seed: 3, low: -1, high: 2 });
  const r2 = E.seededRandom(3);
  assert.deepEqual(u.toArray(), Float32Array.from({ length: n }, () => -1 + 3 * r2()));
  // Small tensors and float64 on the reference backend take the same stream.
  const small = E.randn([5], { seed: 7, std: 0.02, mean: 0.1 });
  assert.deepEqual(Array.from(small.toArray()), Array.from(t.toArray().subarray(0, 5)).map((v, i) => (i < 4 ? v : Math.fround(out[4]!))));
  const ref = E.randn([(1 << 18) + 3], { seed: 7, std: 0.02, mean: 0.1, backend: 'reference', dtype: 'float64' });
  assert.deepEqual(Array.from(ref.toArray().subarray(0, 1000)), Array.from(out.subarray(0, 1000)));
  for (const x of [t, u, small, ref]) x.dispose();
});
