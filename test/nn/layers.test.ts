import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { Attention, Embedding, FFN, LatentAttention, LayerNorm, Linear, LinearAttention, RMSNorm, eluPlusOne, forwardSharedInput } from '../../src/nn/index.js';
import { QuantizedLinear } from '../../src/nn/quantized-linear.js';
import { assertClose, assertEqualArrays, assertThrowsWith, ints, maxAbsDiff, slicePositions } from './helpers.js';

function randn(shape: number[], seed: number, scale = 1): Tensor {
  return E.randn(shape, { seed, std: scale });
}

function setValues(t: Tensor, values: ArrayLike<number>): void {
  t.backend.upload(t.storage, Float32Array.from(values));
}

test('Linear: y = x Wᵀ + b, bias optional', () => {
  const l = new Linear(3, 2, { seed: 1 });
  setValues(l.weight, [1, 2, 3, 4, 5, 6]);
  setValues(l.bias!, [0.5, -1]);
  const y = l.forward(E.tensor([1, 0, -1, 2, 1, 0], [2, 3]));
  assertClose(y.toArray(), [1 - 3 + 0.5, 4 - 6 - 1, 2 + 2 + 0.5, 8 + 5 - 1], 1e-6);
  const nb = new Linear(3, 2, { bias: false, seed: 1 });
  assert.equal(nb.bias, null);
  assert.deepEqual(nb.namedParameters().map(([n]) => n), ['weight']);
  l.dispose(); nb.dispose();
});

test('LoRA: starts as a no-op, base frozen, adapter gets the gradient', () => {
  const l = new Linear(6, 5, { seed: 2 });
  const x = randn([3, 6], 3);
  const y0 = l.forward(x).toArray();
  l.addLora({ rank: 2, alpha: 4, seed: 9 });
  assert.equal(l.lora!.scale, 2);
  assert.deepEqual(l.loraA!.shape, [2, 6]);
  assert.deepEqual(l.loraB!.shape, [5, 2]);
  assert.ok(Array.from(l.loraB!.toArray()).every((v) => v === 0), 'B starts at zero');
  const bound = 1 / Math.sqrt(6);
  assert.ok(Array.from(l.loraA!.toArray()).every((v) => Math.abs(v) <= bound), 'A is kaiming-uniform');
  assertEqualArrays(l.forward(x).toArray(), y0, 'no-op at init');
  assert.equal(l.weight.requiresGrad, false);
  assert.equal(l.bias!.requiresGrad, false);
  assert.deepEqual(l.trainableParameters().map(([n]) => n), ['lora_A', 'lora_B']);
  E.sum(l.forward(x)).backward();
  assert.equal(l.weight.grad, null);
  assert.ok(l.loraB!.grad !== null);
  l.dispose();
});

test('LoRA: y = W x + (α/r)·B A x; merge and unmerge are exact', () => {
  const l = new Linear(4, 3, { seed: 4 });
  l.addLora({ rank: 2, alpha: 3, seed: 5, init: 'random' });
  const x = randn([2, 4], 6);
  const w = Array.from(l.weight.toArray());
  const y = l.forward(x).toArray();
  // Manual: (W + s·B A) x + b.
  const A = l.loraA!.toArray(), B = l.loraB!.toArray(), b = l.bias!.toArray(), xs = x.toArray();
  const s = 1.5;
  for (let n = 0; n < 2; n++) for (let o = 0; o < 3; o++) {
    let acc = b[o];
    for (let i = 0; i < 4; i++) {
      let d = 0;
      for (let r = 0; r < 2; r++) d += B[o * 2 + r] * A[r * 4 + i];
      acc += (w[o * 4 + i] + s * d) * xs[n * 4 + i];
    }
    assert.ok(Math.abs(acc - y[n * 3 + o]) < 1e-5, `y[${n},${o}]`);
  }
  l.merge();
  assert.ok(l.isMerged);
  assertClose(l.forward(x).toArray(), y, 1e-5, 'merged forward');
  l.unmerge();
  assertEqualArrays(l.weight.toArray(), w, 'unmerge restores W bit for bit');
  assertEqualArrays(l.forward(x).toArray(), y, 'unmerged forward');
  l.removeLora();
  assert.equal(l.lora, null);
  assert.deepEqual(l.namedParameters().map(([n]) => n), ['weight', 'bias']);
  l.dispose();
});

test('LoRA: dropout on the adapter input is seeded and off in eval mode', () => {
  const mk = () => {
    const l = new Linear(8, 4, { seed: 1 });
    l.addLora({ rank: 2, alpha: 2, seed: 3, dropout: 0.5, init: 'random' });
    return l;
  };
  const a = mk(), b = mk();
  const x = randn([5, 8], 2);
  assertEqualArrays(a.forward(x, 11).toArray(), b.forward(x, 11).toArray(), 'same call seed → same mask');
  assert.notDeepEqual(Array.from(a.forward(x, 11).toArray()), Array.from(a.forward(x, 12).toArray()));
  a.eval();
  const l2 = mk(); l2.lora!.dropout = 0;
  assertClose(a.forward(x, 11).toArray(), l2.forward(x).toArray(), 1e-6, 'eval = no dropout');
  assertThrowsWith(() => a.addLora({ rank: 0, alpha: 1, seed: 1 }), /rank must be a positive integer, got 0/);
  assertThrowsWith(() => a.addLora({ rank: 1, alpha: 1, seed: 1, dropout: 1 }), /dropout must be in \[0, 1\), got 1/);
  a.dispose(); b.dispose(); l2.dispose();
});

test('Embedding, LayerNorm and RMSNorm compute what they say', () => {
  const e = new Embedding(5, 3, { seed: 1 });
  const out = e.forward(ints([4, 0], [2]));
  const w = e.weight.toArray();
  assertEqualArrays(out.toArray(), [...w.subarray(12, 15), ...w.subarray(0, 3)]);
  const x = E.tensor([1, 2, 3, 4, -1, 0, 1, 6], [2, 4]);
  const ln = new LayerNorm(4, { eps: 1e-5 });
  const rms = new RMSNorm(4, { eps: 1e-6 });
  const xs = x.toArray();
  const lnOut = ln.forward(x).toArray(), rmsOut = rms.forward(x).toArray();
  for (let r = 0; r < 2; r++) {
    const row = Array.from(xs.subarray(r * 4, r * 4 + 4));
    const mean = row.reduce((a, b) => a + b) / 4;
    const v = row.reduce((a, b) => a + (b - mean) ** 2, 0) / 4;
    const ms = row.reduce((a, b) => a + b * b, 0) / 4;
    row.forEach((val, i) => {
      assert.ok(Math.abs(lnOut[r * 4 + i] - (val - mean) / Math.sqrt(v + 1e-5)) < 1e-5);
      assert.ok(Math.abs(rmsOut[r * 4 + i] - val / Math.sqrt(ms + 1e-6)) < 1e-5);
    });
  }
  assert.deepEqual(rms.namedParameters().map(([n]) => n), ['weight']);
  assert.deepEqual(new LayerNorm(4, { bias: false }).namedParameters().map(([n]) => n), ['weight']);
  e.dispose(); ln.dispose(); rms.dispose();
});

test('FFN: SwiGLU = down(silu(gate x) ⊙ up x); GELU = down(gelu(up x))', () => {
  const f = new FFN({ dModel: 4, dFF: 6, kind: 'swiglu', bias: false, seed: 1 });
  assert.deepEqual(f.namedParameters().map(([n]) => n), ['gate.weight', 'up.weight', 'down.weight']);
  const x = randn([2, 3, 4], 2);
  const want = E.linear(E.mul(E.silu(E.linear(x, f.gate!.weight)), E.linear(x, f.up.weight)), f.down.weight);
  assertClose(f.forward(x).toArray(), want.toArray(), 1e-5);
  const g = new FFN({ dModel: 4, dFF: 6, kind: 'gelu', activation: 'gelu_tanh', bias: true, seed: 1 });
  assert.equal(g.gate, null);
  const want2 = E.linear(E.gelu(E.linear(x, g.up.weight, g.up.bias), 'tanh'), g.down.weight, g.down.bias);
  assertClose(g.forward(x).toArray(), want2.toArray(), 1e-5);
  f.dispose(); g.dispose();
});

/** Plain softmax attention from engine primitives (no fused kernel), for comparison. */
function naiveAttention(q: Tensor, k: Tensor, v: Tensor, causal: boolean, keyMask: number[] | null): Tensor {
  const [B, S, H, D] = q.shape;
  const Hkv = k.shape[2];
  const g = H / Hkv;
  const rep = (t: Tensor) => E.reshape(E.broadcastTo(E.reshape(t, [B, S, Hkv, 1, D]), [B, S, Hkv, g, D]), [B, S, H, D]);
  const qt = E.transpose(q, [0, 2, 1, 3]), kt = E.transpose(rep(k), [0, 2, 1, 3]), vt = E.transpose(rep(v), [0, 2, 1, 3]);
  const bias = new Float32Array(B * S * S);
  for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) {
    if ((causal && j > i) || (keyMask && keyMask[b * S + j] === 0)) bias[(b * S + i) * S + j] = -1e9;
  }
  const scores = E.add(E.mulScalar(E.matmul(qt, kt, { transB: true }), 1 / Math.sqrt(D)), E.tensor(bias, [B, 1, S, S]));
  return E.transpose(E.matmul(E.softmax(scores, -1), vt), [0, 2, 1, 3]);
}

test('Attention: MHA / GQA / MQA match plain softmax attention, causal and with padding', () => {
  for (const [H, Hkv] of [[4, 4], [4, 2], [4, 1]]) {
    for (const causal of [true, false]) {
      const a = new Attention({ dModel: 16, nHeads: H, nKvHeads: Hkv, causal, seed: 3, qkvBias: true, outBias: true });
      assert.deepEqual(a.k.weight.shape, [Hkv * 4, 16]);
      const x = randn([2, 5, 16], 4);
      const mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
      const out = a.forward(x, { keyMask: ints(mask, [2, 5]) });
      const q = E.reshape(a.q.forward(x), [2, 5, H, 4]), k = E.reshape(a.k.forward(x), [2, 5, Hkv, 4]), v = E.reshape(a.v.forward(x), [2, 5, Hkv, 4]);
      const want = a.o.forward(E.reshape(naiveAttention(q, k, v, causal, mask), [2, 5, 16]));
      assertClose(out.toArray(), want.toArray(), 1e-5, `H=${H} Hkv=${Hkv} causal=${causal}`);
      a.dispose();
    }
  }
  assertThrowsWith(() => new Attention({ dModel: 16, nHeads: 4, nKvHeads: 3, causal: true, seed: 1 }), /n_kv_heads 3 must be a positive divisor of n_heads 4/);
  assertThrowsWith(() => new Attention({ dModel: 15, nHeads: 4, causal: true, seed: 1 }), /d_model 15 is not divisible by n_heads 4/);
});

test('Attention: GQA equals MHA with each kv head repeated for its group', () => {
  const gqa = new Attention({ dModel: 8, nHeads: 4, nKvHeads: 2, causal: true, seed: 5, ropeTheta: 10000 });
  const mha = new Attention({ dModel: 8, nHeads: 4, nKvHeads: 4, causal: true, seed: 6, ropeTheta: 10000 });
  mha.q.loadStateDict(gqa.q.stateDict());
  mha.o.loadStateDict(gqa.o.stateDict());
  for (const n of ['k', 'v'] as const) {
    const w = gqa[n].weight.toArray(); // [2 heads × 2 dims, 8]
    const rep = new Float32Array(4 * 2 * 8);
    for (let h = 0; h < 4; h++) rep.set(w.subarray(Math.floor(h / 2) * 16, Math.floor(h / 2) * 16 + 16), h * 16);
    setValues(mha[n].weight, rep);
  }
  const x = randn([2, 6, 8], 7);
  assertClose(gqa.forward(x).toArray(), mha.forward(x).toArray(), 1e-5);
  gqa.dispose(); mha.dispose();
});

test('Attention: causal outputs ignore later tokens; RoPE makes attention position-aware', () => {
  const a = new Attention({ dModel: 8, nHeads: 2, causal: true, seed: 8, ropeTheta: 10000, init: { kind: 'normal', std: 0.5 } });
  const x1 = randn([1, 6, 8], 1);
  const tail = randn([1, 2, 8], 2);
  const x2 = E.concat([E.narrow(x1, 1, 0, 4), tail], 1);
  const y1 = a.forward(x1), y2 = a.forward(x2);
  assertClose(slicePositions(y1, 0, 0, 4), slicePositions(y2, 0, 0, 4), 1e-6, 'prefix unchanged');
  // RoPE depends on relative positions only: a uniform offset changes nothing, a gap does.
  const y3 = a.forward(x1, { positionOffset: 3 });
  assertClose(y3.toArray(), y1.toArray(), 1e-5, 'shift invariance');
  const y5 = a.forward(x1, { positions: ints([0, 1, 2, 3, 4, 9], [6]) });
  assertClose(slicePositions(y5, 0, 0, 5), slicePositions(y1, 0, 0, 5), 1e-6, 'same positions, same outputs');
  assert.ok(maxAbsDiff(slicePositions(y5, 0, 5, 6), slicePositions(y1, 0, 5, 6)) > 1e-4, 'moved position changes its output');
  a.causal = false;
  const y4 = a.forward(x2);
  assert.ok(maxAbsDiff(slicePositions(y4, 0, 0, 1), slicePositions(y2, 0, 0, 1)) > 1e-4, 'bidirectional sees the tail');
  a.dispose();
});

test('LatentAttention (MLA): shapes, causality, padding mask and gradients reach every parameter', () => {
  for (const [qRank, ropeDim] of [[0, 0], [6, 2]]) {
    const m = new LatentAttention({ dModel: 16, nHeads: 4, headDim: 6, causal: true, seed: 1, ropeTheta: 10000, mla: { kvRank: 5, qRank, ropeDim } });
    const names = m.namedParameters().map(([n]) => n);
    assert.ok(names.includes('kv_a.weight') && names.includes('kv_b.weight') && names.includes('o.weight'));
    assert.deepEqual(m.getParameter('kv_a.weight').shape, [5 + ropeDim, 16]);
    assert.deepEqual(m.getParameter('kv_b.weight').shape, [4 * (6 - ropeDim + 6), 5]);
    const x = randn([2, 5, 16], 2);
    x.requiresGrad = true;
    const y = m.forward(x);
    assert.deepEqual(y.shape, [2, 5, 16]);
    const tail = E.concat([E.narrow(x, 1, 0, 3), randn([2, 2, 16], 3)], 1);
    assertClose(slicePositions(m.forward(tail), 0, 0, 3), slicePositions(y, 0, 0, 3), 1e-6, 'causal');
    E.sum(E.square(y)).backward();
    for (const [n, t] of m.namedParameters()) assert.ok(t.grad !== null && Array.from(t.grad.toArray()).some((v) => v !== 0), `grad of ${n}`);
    m.causal = false;
    const mask = ints([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [2, 5]);
    const xa = randn([2, 5, 16], 4);
    const xb = E.concat([E.narrow(xa, 1, 0, 3), randn([2, 2, 16], 5)], 1);
    assertClose(slicePositions(m.forward(xa, { keyMask: mask }), 1, 0, 3), slicePositions(m.forward(xb, { keyMask: mask }), 1, 0, 3), 1e-6, 'padded keys ignored');
    m.dispose();
  }
  assertThrowsWith(() => new LatentAttention({ dModel: 16, nHeads: 4, causal: true, seed: 1 }), /mla option/);
});

/** Linear attention on host, straight from the definition (quadratic). */
function linearAttentionHost(q: Tensor, k: Tensor, v: Tensor, causal: boolean, mask: number[] | null): Float32Array {
  const [B, S, H, D] = q.shape;
  const fq = eluPlusOne(q).toArray(), fk = eluPlusOne(k).toArray(), vv = v.toArray();
  const out = new Float32Array(B * S * H * D);
  const at = (b: number, s: number, h: number, d: number) => ((b * S + s) * H + h) * D + d;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < S; i++) {
    let den = 0;
    const num = new Float64Array(D);
    for (let j = 0; j < S; j++) {
      if ((causal && j > i) || (mask && mask[b * S + j] === 0)) continue;
      let w = 0;
      for (let d = 0; d < D; d++) w += fq[at(b, i, h, d)] * fk[at(b, j, h, d)];
      den += w;
      for (let d = 0; d < D; d++) num[d] += w * vv[at(b, j, h, d)];
    }
    for (let d = 0; d < D; d++) out[at(b, i, h, d)] = num[d] / (den + 1e-6);
  }
  return out;
}

test('LinearAttention: matches the definition, chunking does not change the result', () => {
  for (const causal of [true, false]) {
    const outs: Float32Array[] = [];
    for (const chunkSize of [1, 3, 7, 64]) {
      const a = new LinearAttention({ dModel: 8, nHeads: 2, causal, seed: 2, chunkSize });
      const x = randn([2, 7, 8], 3);
      const mask = causal ? null : [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0];
      const y = a.forward(x, { keyMask: mask ? ints(mask, [2, 7]) : null });
      const q = E.reshape(a.q.forward(x), [2, 7, 2, 4]), k = E.reshape(a.k.forward(x), [2, 7, 2, 4]), v = E.reshape(a.v.forward(x), [2, 7, 2, 4]);
      const ref = a.o.forward(E.reshape(E.tensor(linearAttentionHost(q, k, v, causal, mask), [2, 7, 2, 4]), [2, 7, 8]));
      assertClose(y.toArray(), ref.toArray(), 1e-4, `causal=${causal} chunk=${chunkSize}`);
      outs.push(y.toArray() as Float32Array);
      a.dispose();
    }
    for (const o of outs.slice(1)) assertClose(o, outs[0], 1e-5, 'chunk independence');
  }
});

test('LinearAttention: GQA heads and gradients', () => {
  const a = new LinearAttention({ dModel: 8, nHeads: 4, nKvHeads: 2, causal: true, seed: 4, chunkSize: 2 });
  const x = randn([1, 5, 8], 5);
  E.sum(a.forward(x)).backward();
  for (const [n, t] of a.namedParameters()) assert.ok(t.grad !== null, n);
  a.dispose();
});

test('forwardSharedInput: the same outputs and gradients as each layer on its own (LoRA with dropout, merged, quantized)', () => {
  const run = (fused: boolean) => E.tidy(() => {
    const q = new Linear(8, 8, { seed: 1 }), k = new Linear(8, 4, { seed: 2, bias: false }), v = new Linear(8, 4, { seed: 3 });
    k.addLora({ rank: 2, alpha: 4, seed: 7, dropout: 0.25, init: 'random' });
    v.addLora({ rank: 2, alpha: 2, seed: 8, init: 'random' }).merge();
    const w = new Linear(8, 6, { seed: 4 });
    w.freeze();
    const quant = QuantizedLinear.fromLinear(w, 'nf4', { doubleQuant: false });
    const layers = [q, k, v, quant];
    const x = randn([2, 3, 8], 5);
    x.requiresGrad = true;
    const ys = fused ? forwardSharedInput(x, layers, 11) : layers.map((l) => l.forward(x, 11));
    ys.reduce((s: Tensor | null, y, i) => { const t = E.sum(E.mulScalar(y, i + 1)); return s ? E.add(s, t) : t; }, null)!.backward();
    const params = [x, q.weight, q.bias!, k.loraA!, k.loraB!, v.loraA!, v.loraB!];
    const out = { ys: ys.map((y) => y.toArray()), grads: params.map((p) => (p.grad ? p.grad.toArray() : null)) };
    for (const l of [q, k, v, quant]) l.dispose();
    return out;
  });
  E.startProfiling();
  const a = run(true);
  assert.ok(E.stopProfiling().has('linearGroup'), 'the plain Linear layers ran as one linearGroup op');
  const b = run(false);
  a.ys.forEach((y, i) => assertEqualArrays(y, b.ys[i], `output ${i}`));
  a.grads.forEach((g, i) => {
    assert.equal(g === null, b.grads[i] === null, `gradient ${i} present in both or neither`);
    if (g) assertClose(g, b.grads[i]!, 1e-5, `gradient ${i}`);
  });
});
