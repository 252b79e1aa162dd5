import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { crossCheck, gradCheck, assertThrowsWith, assertClose, hasNative, makeValues, noNativeReason } from './harness.js';

test('rope: native matches reference (outputs and gradients)', (t) => {
  const cases: [number[], E.RopeOptions][] = [
    [[1, 1, 1, 2], {}],
    [[2, 5, 3, 8], {}],
    [[2, 7, 4, 16], { rotaryDim: 8 }],
    [[1, 9, 2, 10], { rotaryDim: 6, theta: 500000, positionOffset: 123 }],
    [[3, 3, 1, 4], { positionOffset: 4000 }],
    [[2, 64, 8, 64], {}],
    [[1, 33, 5, 128], { rotaryDim: 64, positionOffset: 7 }],
  ];
  for (const [shape, opts] of cases) crossCheck(t, `rope ${shape} ${JSON.stringify(opts)}`, [{ shape }], (x) => E.rope(x, opts), { atol: 1e-5, rtol: 1e-5 });
  // Explicit positions, shared [S] and per batch [B, S].
  crossCheck(t, 'rope positions [S]', [{ shape: [2, 6, 3, 8] }, { shape: [6], intHigh: 2048 }], (x, p) => E.rope(x, { positions: p }), { atol: 1e-5, rtol: 1e-5 });
  crossCheck(t, 'rope positions [B, S]', [{ shape: [2, 6, 3, 8] }, { shape: [2, 6], intHigh: 2048 }], (x, p) => E.rope(x, { positions: p, positionOffset: 3, rotaryDim: 4 }), { atol: 1e-5, rtol: 1e-5 });
  crossCheck(t, 'rope positions [B, S] large', [{ shape: [3, 40, 4, 64] }, { shape: [3, 40], intHigh: 4096 }], (x, p) => E.rope(x, { positions: p }), { atol: 1e-5, rtol: 1e-5 });
});

test('rope: gradients match finite differences (the inverse rotation)', () => {
  gradCheck('rope', [{ shape: [2, 3, 2, 6] }], (x) => E.rope(x));
  gradCheck('rope rotaryDim', [{ shape: [1, 4, 2, 6] }], (x) => E.rope(x, { rotaryDim: 4, positionOffset: 2, theta: 100 }));
  gradCheck('rope positions', [{ shape: [2, 3, 1, 4] }, { shape: [2, 3], intHigh: 50 }], (x, p) => E.rope(x, { positions: p }));
});

/** transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb in float32, written independently. */
function hfRope(x: Float32Array, [B, S, H, D]: number[], theta: number, positions: number[], rd = D): Float32Array {
  const f = Math.fround;
  const half = rd / 2;
  const invFreq: number[] = [];
  for (let k = 0; k < rd; k += 2) invFreq.push(f(1 / f(Math.pow(f(theta), f(k / rd)))));
  const out = new Float32Array(x.length);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) {
    const pos = f(positions[s]);
    // emb = cat(freqs, freqs); cos = emb.cos(); sin = emb.sin()
    const emb = [...invFreq, ...invFreq].map((v) => f(v * pos));
    const cos = emb.map((a) => f(Math.cos(a))), sin = emb.map((a) => f(Math.sin(a)));
    for (let h = 0; h < H; h++) {
      const o = ((b * S + s) * H + h) * D;
      const q = Array.from(x.subarray(o, o + rd));
      const rot = [...q.slice(half).map((v) => -v), ...q.slice(0, half)]; // rotate_half
      for (let i = 0; i < rd; i++) out[o + i] = f(f(q[i] * cos[i]) + f(rot[i] * sin[i]));
      for (let i = rd; i < D; i++) out[o + i] = x[o + i];
    }
  }
  return out;
}

test('rope: matches the Hugging Face float32 computation and the exact rotation', () => {
  const shape = [2, 12, 3, 16];
  const x = Float32Array.from(makeValues({ shape }, 11));
  for (const backend of E.availableBackends()) {
    for (const [theta, offset, rd] of [[10000, 0, 16], [500000, 1000, 16], [10000, 37, 8]]) {
      E.tidy(() => {
        const y = E.rope(E.tensor(x, shape, { backend }), { theta, positionOffset: offset, rotaryDim: rd }).toArray();
        const positions = Array.from({ length: shape[1] }, (_, s) => s + offset);
        assertClose(y, hfRope(x, shape, theta, positions, rd), `HF rope θ=${theta} offset=${offset} rd=${rd} (${backend})`, 1e-6, 1e-6);
        // The exact (float64) rotation agrees to float32 precision of the angle.
        const [, S, H, D] = shape;
        const exact = new Float64Array(x.length);
        for (let b = 0; b < shape[0]; b++) for (let s = 0; s < S; s++) for (let h = 0; h < H; h++) {
          const o = ((b * S + s) * H + h) * D;
          for (let i = 0; i < rd / 2; i++) {
            const ang = (s + offset) * Math.pow(theta, (-2 * i) / rd);
            const c = Math.cos(ang), sn = Math.sin(ang), a = x[o + i], q = x[o + i + rd / 2];
            exact[o + i] = a * c - q * sn;
            exact[o + i + rd / 2] = q * c + a * sn;
          }
          for (let i = rd; i < D; i++) exact[o + i] = x[o + i];
        }
        assertClose(y, exact, `exact rotation (${backend})`, 2e-3 * (1 + offset / 100), 0);
      });
    }
    // Position 0 is the identity; position 1 with D = 2 rotates by 1 radian.
    E.tidy(() => {
      const t = E.tensor([0.5, -2, 3, 4], [1, 2, 1, 2], { backend });
      const y = E.rope(t).toList();
      assert.deepEqual(y.slice(0, 2), [0.5, -2]);
      const c = Math.cos(1), s = Math.sin(1);
      assertClose(y.slice(2), [3 * c - 4 * s, 4 * c + 3 * s], `one radian (${backend})`, 1e-6, 1e-6);
    });
  }
});

test('rope: positionOffset equals rope on a longer sequence sliced; explicit positions equal defaults', () => {
  const [B, L, H, D] = [2, 11, 3, 8];
  const off = 4, S = L - off;
  const xl = Float32Array.from(makeValues({ shape: [B, L, H, D] }, 5));
  // x[:, off:] by hand.
  const xs = new Float32Array(B * S * H * D);
  for (let b = 0; b < B; b++) xs.set(xl.subarray((b * L + off) * H * D, (b + 1) * L * H * D), b * S * H * D);
  for (const backend of E.availableBackends()) {
    E.tidy(() => {
      const full = E.rope(E.tensor(xl, [B, L, H, D], { backend }), { rotaryDim: 6 }).toArray();
      const sliced = new Float32Array(B * S * H * D);
      for (let b = 0; b < B; b++) sliced.set(full.subarray((b * L + off) * H * D, (b + 1) * L * H * D), b * S * H * D);
      const withOffset = E.rope(E.tensor(xs, [B, S, H, D], { backend }), { rotaryDim: 6, positionOffset: off }).toArray();
      assert.deepEqual(withOffset, sliced, `offset vs slice (${backend})`);
      const pos = E.tensor(Int32Array.from({ length: S }, (_, s) => s + off), [S], { backend, dtype: 'int32' });
      assert.deepEqual(E.rope(E.tensor(xs, [B, S, H, D], { backend }), { rotaryDim: 6, positions: pos }).toArray(), sliced, `positions [S] (${backend})`);
      const pos2 = E.tensor(Int32Array.from({ length: B * S }, (_, i) => (i % S)), [B, S], { backend, dtype: 'int32' });
      assert.deepEqual(E.rope(E.tensor(xs, [B, S, H, D], { backend }), { rotaryDim: 6, positions: pos2, positionOffset: off }).toArray(), sliced, `positions [B, S] + offset (${backend})`);
    });
  }
});

test('rope: different head counts (GQA) share the same rotation per position', () => {
  for (const backend of E.availableBackends()) {
    E.tidy(() => {
      const q = E.tensor(Float32Array.from(makeValues({ shape: [1, 5, 4, 8] }, 2)), [1, 5, 4, 8], { backend });
      const yq = E.rope(q).toArray();
      // Head 2 of q alone, as a 1-head k.
      const k = new Float32Array(5 * 8);
      const qa = q.toArray();
      for (let s = 0; s < 5; s++) k.set(qa.subarray((s * 4 + 2) * 8, (s * 4 + 3) * 8), s * 8);
      const yk = E.rope(E.tensor(k, [1, 5, 1, 8], { backend })).toArray();
      for (let s = 0; s < 5; s++) assert.deepEqual(yk.subarray(s * 8, s * 8 + 8), yq.subarray((s * 4 + 2) * 8, (s * 4 + 3) * 8));
    });
  }
});

test('rope: native equals reference bit for bit (same float32 rounding, no FMA contraction)', { skip: noNativeReason ?? false }, () => {
  const shape = [2, 48, 3, 64];
  const x = Float32Array.from(makeValues({ shape }, 3));
  for (const opts of [{}, { positionOffset: 100000, rotaryDim: 32 }, { theta: 500000, positionOffset: 8191 }] as E.RopeOptions[]) {
    const [ref, nat] = ['reference', 'native'].map((backend) => E.tidy(() => E.rope(E.tensor(x, shape, { backend }), opts).toArray()));
    assert.deepEqual(nat, ref, JSON.stringify(opts));
  }
});

test('rope: empty sequences', () => {
  for (const backend of E.availableBackends()) assert.deepEqual(E.tidy(() => E.rope(E.zeros([2, 0, 3, 4], { backend })).shape), [2, 0, 3, 4]);
});

test('rope: bad input', () => {
  const x = E.zeros([1, 2, 3, 8]);
  assertThrowsWith(() => E.rope(E.zeros([2, 3, 8])), /rope/, /\[B, S, H, D\]/, /\[2, 3, 8\]/);
  assertThrowsWith(() => E.rope(x, { rotaryDim: 5 }), /rope/, /rotaryDim must be an even integer in \[2, D=8\]/, /got 5/);
  assertThrowsWith(() => E.rope(x, { rotaryDim: 10 }), /rope/, /got 10/);
  assertThrowsWith(() => E.rope(x, { rotaryDim: 0 }), /rope/, /rotaryDim/);
  assertThrowsWith(() => E.rope(E.zeros([1, 2, 3, 7])), /rope/, /rotaryDim/, /got 7/);
  assertThrowsWith(() => E.rope(x, { theta: 0 }), /rope/, /theta must be a finite number > 0, got 0/);
  assertThrowsWith(() => E.rope(x, { positionOffset: 1.5 }), /rope/, /positionOffset must be an integer, got 1.5/);
  assertThrowsWith(() => E.rope(x, { positions: E.zeros([2]) }), /rope/, /positions must be int32/);
  assertThrowsWith(() => E.rope(x, { positions: E.zeros([3], { dtype: 'int32' }) }), /rope/, /positions \[3\] must be \[S\] = \[2\] or \[B, S\] = \[1, 2\]/);
  assertThrowsWith(() => E.rope(x, { positions: E.zeros([2, 2], { dtype: 'int32' }) }), /rope/, /positions \[2, 2\]/);
  assertThrowsWith(() => E.rope(E.zeros([1, 2, 3, 8], { dtype: 'int32' })), /rope/, /expected a float tensor/);
});
