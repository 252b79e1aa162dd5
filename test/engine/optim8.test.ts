// The 8-bit block-wise AdamW update: native kernel against the reference kernel, the moments
// against float32 AdamW's, and the unsigned dynamic map against bitsandbytes' definition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';

const opts = (step: number) => ({ lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step });

test('the unsigned dynamic map: 256 sorted values in [0, 1] with 0 and 1, as bitsandbytes builds it', () => {
  const c = E.unsignedDynamicQuantCode();
  assert.equal(c.length, 256);
  for (let i = 1; i < 256; i++) assert.ok(c[i]! >= c[i - 1]!);
  assert.equal(c[0], 0);
  assert.equal(c[255], 1);
  // Decade 10^-6 holds 2 values (means of linspace(0.1, 1, 3)), the top decade 128.
  assert.ok(Math.abs(c[1]! - 3.25e-7) < 1e-13);
  assert.equal(c.filter((v) => v >= 0.1 && v < 1).length, 128);
});

test('native and reference kernels agree (parameters to float32 rounding, codes and absmax exactly but for ties)', () => {
  for (const n of [1000, 256 * 5, 7]) {
    const run = (backend: string) => {
      const p = E.randn([n], { seed: 1, std: 0.5, backend });
      const state = E.int8AdamState(p);
      for (let step = 1; step <= 4; step++) {
        const g = E.randn([n], { seed: 10 + step, std: step === 2 ? 1e-3 : 1, backend });
        E.adamw8bitUpdate(p, g, state, opts(step));
        g.dispose();
      }
      return { p: Array.from(p.toArray()), m: Array.from(state.m.toArray()), ma: Array.from(state.mAbsmax.toArray()), v: Array.from(state.v.toArray()), va: Array.from(state.vAbsmax.toArray()) };
    };
    const nat = run('native'), ref = run('reference');
    for (let i = 0; i < n; i++) assert.ok(Math.abs(nat.p[i]! - ref.p[i]!) <= 1e-6 * Math.max(1, Math.abs(ref.p[i]!)), `p[${i}] ${nat.p[i]} vs ${ref.p[i]}`);
    for (let b = 0; b < nat.ma.length; b++) {
      assert.ok(Math.abs(nat.ma[b]! - ref.ma[b]!) <= 1e-6 * ref.ma[b]!, `m absmax ${b}`);
      assert.ok(Math.abs(nat.va[b]! - ref.va[b]!) <= 1e-6 * ref.va[b]!, `v absmax ${b}`);
    }
    const bytes = (w: number[]) => new Uint8Array(Int32Array.from(w).buffer, 0, n);
    const [nm, rm, nv, rv] = [bytes(nat.m), bytes(ref.m), bytes(nat.v), bytes(ref.v)];
    let differ = 0;
    for (let i = 0; i < n; i++) differ += (Math.abs(nm[i]! - rm[i]!) > 1 ? 100 : nm[i] !== rm[i] ? 1 : 0) + (Math.abs(nv[i]! - rv[i]!) > 1 ? 100 : nv[i] !== rv[i] ? 1 : 0);
    assert.ok(differ <= Math.ceil(n / 500), `codes differ at ${differ} places (neighbouring codes only on float ties)`);
  }
});

test('dequantized 8-bit moments track float32 AdamW: parameters within a small fraction of the update size', () => {
  const n = 4096;
  const p8 = E.randn([n], { seed: 1, std: 0.5 }), p32 = E.randn([n], { seed: 1, std: 0.5 });
  const start = Float32Array.from(p32.toArray());
  const state = E.int8AdamState(p8);
  const m = E.zeros([n]), v = E.zeros([n]);
  for (let step = 1; step <= 20; step++) {
    const g = E.randn([n], { seed: 100 + step });
    E.adamw8bitUpdate(p8, g, state, opts(step));
    E.adamwUpdate(p32, g, m, v, opts(step));
    g.dispose();
  }
  const a = p8.toArray(), b = p32.toArray();
  let moved = 0, gap = 0;
  for (let i = 0; i < n; i++) { moved += Math.abs(b[i]! - start[i]!); gap += Math.abs(a[i]! - b[i]!); }
  assert.ok(gap / moved < 0.05, `8-bit vs float32 parameter gap ${gap / moved} of the distance moved`);
  assert.equal(state.m.size + state.v.size, 2 * n / 4, '1 byte per element per moment');
  for (const t of [p8, p32, m, v, state.m, state.v, state.mAbsmax, state.vAbsmax]) t.dispose();
});
