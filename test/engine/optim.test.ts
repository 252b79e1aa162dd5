import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { assertClose, assertThrowsWith, hasNative, makeValues, noNativeReason } from './harness.js';

const BACKENDS = hasNative ? ['reference', 'native'] : ['reference'];

const ADAM = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

/** One PyTorch AdamW step in float64, written out from torch.optim.AdamW's single-tensor code. */
function adamwByHand(p: number[], g: number[], m: number[], v: number[], o: typeof ADAM & { step: number }): void {
  const bc1 = 1 - o.beta1 ** o.step, bc2 = 1 - o.beta2 ** o.step;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - o.lr * o.weightDecay;
    m[i] = m[i] + (g[i] - m[i]) * (1 - o.beta1);
    v[i] = v[i] * o.beta2 + (1 - o.beta2) * g[i] * g[i];
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + o.eps;
    p[i] += (-o.lr / bc1) * (m[i] / denom);
  }
}

test('adamwUpdate: reference float64 equals the PyTorch formula over several steps', () => {
  const n = 13;
  const p = Array.from(makeValues({ shape: [n] }, 1)), m = new Array<number>(n).fill(0), v = new Array<number>(n).fill(0);
  const P = E.tensor(p, [n], { backend: 'reference', dtype: 'float64' });
  const M = E.zeros([n], { backend: 'reference', dtype: 'float64' }), V = E.zeros([n], { backend: 'reference', dtype: 'float64' });
  for (let step = 1; step <= 4; step++) {
    const g = Array.from(makeValues({ shape: [n] }, 10 + step));
    E.adamwUpdate(P, E.tensor(g, [n], { backend: 'reference', dtype: 'float64' }), M, V, { ...ADAM, step });
    adamwByHand(p, g, m, v, { ...ADAM, step });
    assertClose(P.toArray(), p, `param after step ${step}`, 1e-14, 1e-12);
    assertClose(M.toArray(), m, `m after step ${step}`, 1e-14, 1e-12);
    assertClose(V.toArray(), v, `v after step ${step}`, 1e-14, 1e-12);
  }
  // The first step moves every parameter by about lr (Adam's normalised step), plus decay.
  const q = E.tensor([1, -2], [2], { backend: 'reference', dtype: 'float64' });
  E.adamwUpdate(q, E.tensor([3, -0.5], [2], { backend: 'reference', dtype: 'float64' }), E.zeros([2], { backend: 'reference', dtype: 'float64' }),
    E.zeros([2], { backend: 'reference', dtype: 'float64' }), { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 0, weightDecay: 0, step: 1 });
  assertClose(q.toArray(), [0.9, -1.9], 'first step is ±lr', 1e-12, 0);
});

test('adamwUpdate: native matches reference over several steps (parallel sizes, odd sizes)', { skip: noNativeReason ?? false }, () => {
  for (const n of [1, 7, 4099, 100003]) {
    const state = BACKENDS.map((backend) => ({
      p: E.tensor(Float32Array.from(makeValues({ shape: [n] }, 2)), [n], { backend }),
      m: E.zeros([n], { backend }),
      v: E.zeros([n], { backend }),
    }));
    for (let step = 1; step <= 5; step++) {
      const g = Float32Array.from(makeValues({ shape: [n], scale: 0.1 }, 20 + step));
      state.forEach((s, k) => E.adamwUpdate(s.p, E.tensor(g, [n], { backend: BACKENDS[k] }), s.m, s.v, { ...ADAM, step }));
      const [ref, nat] = state;
      assertClose(nat.p.toArray(), ref.p.toArray(), `n=${n} param step ${step}`, 1e-6, 1e-5);
      assertClose(nat.m.toArray(), ref.m.toArray(), `n=${n} m step ${step}`, 1e-7, 1e-5);
      assertClose(nat.v.toArray(), ref.v.toArray(), `n=${n} v step ${step}`, 1e-9, 1e-5);
    }
  }
});

test('adamwUpdateGroup: equals adamwUpdate per parameter (bit for bit on each backend), per-parameter steps, write versions', () => {
  for (const backend of BACKENDS) {
    const sizes = [1, 7, 4099, 100003];
    const make = () => sizes.map((n, i) => ({
      p: E.tensor(Float32Array.from(makeValues({ shape: [n] }, 2 + i)), [n], { backend }),
      m: E.zeros([n], { backend }), v: E.zeros([n], { backend }),
    }));
    const one = make(), group = make();
    for (let step = 1; step <= 3; step++) {
      const grads = sizes.map((n, i) => E.tensor(Float32Array.from(makeValues({ shape: [n], scale: 0.1 }, 20 + step + 7 * i)), [n], { backend }));
      // Parameter 0 joined one step later: its own bias correction.
      const stepOf = (i: number) => (i === 0 ? Math.max(1, step - 1) : step);
      one.forEach((s, i) => E.adamwUpdate(s.p, grads[i], s.m, s.v, { ...ADAM, step: stepOf(i) }));
      const versions = group.map((s) => s.p.writeVersion);
      E.adamwUpdateGroup(group.map((s, i) => ({ param: s.p, grad: grads[i], m: s.m, v: s.v, step: stepOf(i) })), ADAM);
      group.forEach((s, i) => {
        assert.deepEqual(Array.from(s.p.toArray()), Array.from(one[i].p.toArray()), `${backend} param ${i} step ${step}`);
        assert.deepEqual(Array.from(s.v.toArray()), Array.from(one[i].v.toArray()), `${backend} v ${i} step ${step}`);
        assert.ok(s.p.writeVersion > versions[i], 'the update bumps the write version');
      });
    }
  }
  assertThrowsWith(() => E.adamwUpdateGroup([{ param: E.zeros([3]), grad: E.zeros([4]), m: E.zeros([3]), v: E.zeros([3]), step: 1 }], ADAM), /adamwUpdateGroup/, /grad/);
  assertThrowsWith(() => E.adamwUpdateGroup([{ param: E.zeros([3]), grad: E.zeros([3]), m: E.zeros([3]), v: E.zeros([3]), step: 0 }], ADAM), /adamwUpdateGroup/, /step/);
});

/** torch.optim.SGD's single-tensor step in float64. */
function sgdByHand(p: number[], g: number[], buf: number[], o: { lr: number; momentum: number; dampening: number; nesterov: boolean; weightDecay: number }, first: boolean): void {
  for (let i = 0; i < p.length; i++) {
    let d = g[i] + o.weightDecay * p[i];
    if (o.momentum !== 0) {
      buf[i] = first ? d : buf[i] * o.momentum + (1 - o.dampening) * d;
      d = o.nesterov ? d + o.momentum * buf[i] : buf[i];
    }
    p[i] -= o.lr * d;
  }
}

test('sgdUpdate: PyTorch semantics (first-step buffer, dampening, Nesterov, weight decay); native matches reference', () => {
  const variants = [
    { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 },
    { lr: 0.05, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0.01 },
    { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 },
    { lr: 0.1, momentum: 0.9, dampening: 0.3, nesterov: false, weightDecay: 0.02 },
    { lr: 0.1, momentum: 0.8, dampening: 0, nesterov: true, weightDecay: 0.01 },
  ];
  for (const o of variants) {
    for (const n of [5, 50001]) {
      const p0 = Array.from(makeValues({ shape: [n] }, 3));
      const p = [...p0], buf = new Array<number>(n).fill(0);
      const runs = [...BACKENDS, 'reference64'].map((b) => {
        const backend = b === 'reference64' ? 'reference' : b, dtype = b === 'reference64' ? 'float64' as const : 'float32' as const;
        return { backend, dtype, p: E.tensor(p0, [n], { backend, dtype }), buf: o.momentum > 0 ? E.zeros([n], { backend, dtype }) : null };
      });
      for (let step = 1; step <= 3; step++) {
        const g = Array.from(makeValues({ shape: [n] }, 30 + step));
        sgdByHand(p, g, buf, o, step === 1);
        for (const r of runs) {
          const G = E.tensor(g, [n], { backend: r.backend, dtype: r.dtype });
          if (step === 2) E.sgdUpdate(r.p, G, r.buf, o, false); // firstStep as the last argument
          else E.sgdUpdate(r.p, G, r.buf, { ...o, firstStep: step === 1 });
          assert.deepEqual(G.toList(), r.dtype === 'float32' ? Array.from(Float32Array.from(g)) : g, 'the gradient is not modified');
        }
        const what = `sgd ${JSON.stringify(o)} n=${n} step ${step}`;
        assertClose(runs[runs.length - 1].p.toArray(), p, `${what} (float64 vs formula)`, 1e-13, 1e-12);
        for (const r of runs.slice(0, -1)) assertClose(r.p.toArray(), p, `${what} (${r.backend})`, 1e-5, 1e-5);
        if (hasNative) assertClose(runs[1].p.toArray(), runs[0].p.toArray(), `${what} native vs reference`, 1e-6, 1e-6);
      }
    }
  }
});

test('sumOfSquares, globalGradNorm, scaleInPlace', () => {
  for (const backend of BACKENDS) {
    const a = E.tensor([1, 2, 3], [3], { backend });
    const b = E.tensor([4, 0, 0, 0], [2, 2], { backend });
    assert.equal(E.sumOfSquares(a), 14);
    assert.equal(E.globalGradNorm([a, b]), Math.sqrt(30));
    assert.equal(E.globalGradNorm([]), 0);
    assert.equal(E.sumOfSquares(E.zeros([0], { backend })), 0);
    const c = E.tensor([4, 2, -6, 1], [2, 2], { backend });
    E.scaleInPlace(c, -0.5);
    assert.deepEqual(c.toList(), [-2, -1, 3, -0.5]);
    const view = E.reshape(c, [4]);
    E.scaleInPlace(view, 2);
    assert.deepEqual(c.toList(), [-4, -2, 6, -1], 'views share the updated storage');
  }
  if (hasNative) {
    const n = 300007;
    const vals = Float32Array.from(makeValues({ shape: [n] }, 9));
    const ref = E.sumOfSquares(E.tensor(vals, [n], { backend: 'reference' }));
    const nat = E.tensor(vals, [n], { backend: 'native' });
    const threads = E.engineInfo().threads ?? 1;
    E.setNumThreads(1);
    const one = E.sumOfSquares(nat);
    E.setNumThreads(Math.max(2, threads));
    const many = E.sumOfSquares(nat);
    E.setNumThreads(threads);
    assert.equal(one, many, 'the native sum of squares does not depend on the thread count');
    assert.ok(Math.abs(one - ref) < 1e-9 * ref, `native ${one} vs reference ${ref}`);
    E.scaleInPlace(nat, 3);
    assertClose(nat.toArray(), vals.map((x) => Math.fround(x * 3)), 'native scaleInPlace', 0, 0);
  }
});

test('optim: updates run without recording gradients, even on tensors that require them', () => {
  for (const backend of BACKENDS) {
    const p = E.tensor([1, 2], [2], { backend, requiresGrad: true });
    const g = E.tensor([0.5, 0.5], [2], { backend });
    E.adamwUpdate(p, g, E.zeros([2], { backend }), E.zeros([2], { backend }), { ...ADAM, step: 1 });
    E.sgdUpdate(p, g, null, { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 });
    assert.equal(p.node, null);
    assert.equal(p.requiresGrad, true);
  }
});

test('optim: bad input gives clear errors', () => {
  const p = E.zeros([2, 3]), g = E.zeros([2, 3]), m = E.zeros([2, 3]), v = E.zeros([2, 3]);
  const opts = { ...ADAM, step: 1 };
  assertThrowsWith(() => E.adamwUpdate(p, E.zeros([3, 2]), m, v, opts), /op 'adamwUpdate'/, /grad .*float32\[3, 2\]/, /param .*float32\[2, 3\]/);
  assertThrowsWith(() => E.adamwUpdate(p, g, E.zeros([6]), v, opts), /op 'adamwUpdate'/, /m \(first moment\) .*float32\[6\]/);
  assertThrowsWith(() => E.adamwUpdate(p, g, m, E.zeros([2, 3, 1]), opts), /op 'adamwUpdate'/, /v \(second moment\)/, /\[2, 3, 1\]/);
  assertThrowsWith(() => E.adamwUpdate(p, E.zeros([2, 3], { dtype: 'float64', backend: 'reference' }), m, v, opts), /op 'adamwUpdate'/, /grad .*float64/);
  assertThrowsWith(() => E.adamwUpdate(E.zeros([2], { dtype: 'int32' }), g, m, v, opts), /op 'adamwUpdate'/, /param must be a float tensor/);
  assertThrowsWith(() => E.adamwUpdate(p, g, m, v, { ...opts, step: 0 }), /op 'adamwUpdate'/, /step must be an integer >= 1/);
  assertThrowsWith(() => E.adamwUpdate(p, g, m, v, { ...opts, beta1: 1 }), /op 'adamwUpdate'/, /beta1 must be in \[0, 1\)/);
  assertThrowsWith(() => E.adamwUpdate(p, g, m, v, { ...opts, lr: NaN }), /op 'adamwUpdate'/, /lr/);
  assertThrowsWith(() => E.adamwUpdate(p, g, m, v, { ...opts, eps: -1 }), /op 'adamwUpdate'/, /eps/);
  if (hasNative) {
    const other = BACKENDS.find((b) => b !== E.getDefaultBackend().name)!;
    assertThrowsWith(() => E.adamwUpdate(p, g, m, E.zeros([2, 3], { backend: other }), opts), /op 'adamwUpdate'/, /backend/);
  }
  const sgd = { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 };
  assertThrowsWith(() => E.sgdUpdate(p, E.zeros([3]), E.zeros([2, 3]), sgd), /op 'sgdUpdate'/, /grad .*float32\[3\]/);
  assertThrowsWith(() => E.sgdUpdate(p, g, null, sgd), /op 'sgdUpdate'/, /momentum buffer/, /null/);
  assertThrowsWith(() => E.sgdUpdate(p, g, E.zeros([3, 2]), sgd), /op 'sgdUpdate'/, /momentumBuf .*float32\[3, 2\]/);
  assertThrowsWith(() => E.sgdUpdate(p, g, m, { ...sgd, nesterov: true, dampening: 0.1 }), /op 'sgdUpdate'/, /Nesterov/);
  assertThrowsWith(() => E.sgdUpdate(p, g, null, { ...sgd, momentum: 0, nesterov: true }), /op 'sgdUpdate'/, /Nesterov/);
  assertThrowsWith(() => E.sgdUpdate(p, g, m, { ...sgd, momentum: -1 }), /op 'sgdUpdate'/, /momentum must be/);
  assertThrowsWith(() => E.sumOfSquares(E.zeros([2], { dtype: 'int32' })), /op 'sumOfSquares'/, /float/);
  assertThrowsWith(() => E.scaleInPlace(p, Infinity), /op 'scaleInPlace'/, /finite/);
  const d = E.zeros([2]);
  d.dispose();
  assertThrowsWith(() => E.globalGradNorm([d]), /sumOfSquares/, /disposed/);
});
