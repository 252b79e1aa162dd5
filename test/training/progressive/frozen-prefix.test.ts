// The frozen prefix runs without a tape and frees its activations at once (Rack.forward), and the
// cache's content fingerprint reads weights without full-size copies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import type { Tensor } from '../../../src/engine/index.js';
import { hashTensorContent, hashWords } from '../../../src/training/progressive/index.js';
import { idsOf, maxAbsDiff, tinyLlama } from './helpers.js';

test('hashTensorContent equals hashWords of the downloaded array (chunk boundaries, odd sizes)', () => {
  for (const n of [1, 3, 65535, 65536, 65537, 200003]) {
    E.tidy(() => {
      const t = E.randn([n], { seed: n });
      assert.equal(hashTensorContent(t), hashWords(t.toArray()), `size ${n}`);
      const i = E.randInt([n], 1000, { seed: n });
      assert.equal(hashTensorContent(i), hashWords(i.toArray()), `int32 size ${n}`);
    });
  }
  // Every word, every position and the length count.
  const base = Uint32Array.from({ length: 37 }, (_, i) => i * 2654435761);
  const seen = new Set([hashWords(base)]);
  for (let i = 0; i < base.length; i++) {
    const c = base.slice();
    c[i]! ^= 1 << (i % 32);
    seen.add(hashWords(c));
  }
  const swapped = base.slice();
  [swapped[3], swapped[4]] = [swapped[4]!, swapped[3]!];
  seen.add(hashWords(swapped));
  seen.add(hashWords(base.subarray(0, 36)));
  seen.add(hashWords(new Uint8Array(base.buffer, 0, 147)));
  assert.equal(seen.size, base.length + 4, 'every change gives a new hash');
  const a = E.randn([70000], { seed: 1 }), b = E.randn([70000], { seed: 2 });
  assert.notEqual(hashTensorContent(a), hashTensorContent(b));
  a.dispose();
  b.dispose();
});

/** Loss, trainable grads of the last stack + head, live buffers after the forward, hidden states. */
function lastStackStep(frozenPrefix: boolean) {
  const stacks = 4;
  const m = tinyLlama(stacks, 7);
  if (frozenPrefix) {
    m.freeze();
    m.rack.stacks.at(stacks - 1).unfreeze();
    m.head.unfreeze();
  }
  const ids = idsOf(3, 12, 5);
  const live0 = E.memoryInfo().buffers;
  const out = E.tidy(() => {
    const r = m.forward(ids, { outputHiddenStates: true });
    const liveAfterForward = E.memoryInfo().buffers - live0;
    const loss = m.loss(r.logits, ids);
    loss.backward();
    return { loss: loss.item(), liveAfterForward, hidden: r.hiddenStates!.map((h) => h.toArray()) };
  });
  const watched = [...m.rack.stacks.at(stacks - 1).parameters(), ...m.head.parameters()];
  const grads = watched.map((p) => { assert.ok(p.grad, `${p.name} has a gradient`); return p.grad!.toArray(); });
  const frozenGrads = m.parameters().filter((p) => !watched.includes(p)).map((p: Tensor) => p.grad);
  const liveAfter = E.memoryInfo().buffers;
  m.dispose();
  ids.dispose();
  return { ...out, grads, frozenGrads, liveAfter, live0 };
}

test('a frozen prefix gives the same loss, hidden states and last-stack gradients, with fewer live activations', () => {
  const plain = lastStackStep(false);
  const frozen = lastStackStep(true);
  assert.equal(frozen.loss, plain.loss);
  assert.equal(frozen.hidden.length, plain.hidden.length);
  frozen.hidden.forEach((h, i) => assert.equal(maxAbsDiff(h, plain.hidden[i]!), 0, `hidden state ${i}`));
  frozen.grads.forEach((g, i) => assert.ok(maxAbsDiff(g, plain.grads[i]!) <= 1e-6, `gradient ${i}`));
  assert.ok(frozen.frozenGrads.every((g) => g === null), 'frozen parameters get no gradient');
  // Trainable prefix: every stack's intermediates are alive for backward. Frozen prefix: only
  // the stack outputs (kept as hidden states) survive the first three stacks.
  assert.ok(frozen.liveAfterForward < plain.liveAfterForward * 0.6, `${frozen.liveAfterForward} vs ${plain.liveAfterForward} live buffers after the forward`);
});

test('a frozen prefix under an outer tidy leaks nothing', () => {
  const m = tinyLlama(3, 2);
  m.freeze();
  m.rack.stacks.at(2).unfreeze();
  const ids = idsOf(2, 8, 1);
  const live0 = E.memoryInfo().buffers;
  E.tidy(() => { const l = m.loss(m.forward(ids).logits, ids); l.backward(); });
  m.zeroGrad();
  assert.equal(E.memoryInfo().buffers, live0);
  // Under noGrad nothing is recorded and nothing leaks either.
  const y = E.tidy(() => E.noGrad(() => m.forward(ids).logits));
  assert.equal(y.requiresGrad, false);
  y.dispose();
  assert.equal(E.memoryInfo().buffers, live0);
  m.dispose();
  ids.dispose();
});
