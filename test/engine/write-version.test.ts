// Write versions (Tensor.writeVersion): every in-place write changes them, no read does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { data } from '../../src/engine/backends/reference/index.js';
import { assertThrowsWith, hasNative } from './harness.js';

const BACKENDS = hasNative ? ['reference', 'native'] : ['reference'];

/** Runs `write` and asserts that it moved each tensor's version forward (and `kept` did not move). */
function assertBumps(what: string, changed: Tensor[], write: () => void, kept: Tensor[] = []): void {
  const before = changed.map((t) => t.writeVersion), keptBefore = kept.map((t) => t.writeVersion);
  write();
  changed.forEach((t, i) => assert.ok(t.writeVersion > before[i]!, `${what}: version of ${t.describe()} ${before[i]} → ${t.writeVersion}`));
  kept.forEach((t, i) => assert.equal(t.writeVersion, keptBefore[i], `${what}: ${t.describe()} was only read`));
}

for (const backend of BACKENDS) {
  test(`write versions (${backend}): reads, ops and views leave them; write and upload change them`, () => {
    E.tidy(() => {
      const t = E.tensor([1, 2, 3, 4, 5, 6], [2, 3], { backend });
      const other = E.tensor([6, 5, 4, 3, 2, 1], [2, 3], { backend });
      const v0 = t.writeVersion;
      t.toArray(); t.toList(); E.reshape(t, [3, 2]).toArray();
      E.add(t, other); E.matmul(t, E.transpose(other, [1, 0])); E.sum(t); E.sumOfSquares(t);
      assert.equal(t.writeVersion, v0, 'reads and out-of-place ops do not change the version');
      const view = E.reshape(t, [6]);
      assert.equal(view.writeVersion, t.writeVersion, 'a view shares the storage and its version');
      assertBumps('write', [t, view], () => t.write(Float32Array.from([0, 1, 2, 3, 4, 5])));
      assert.deepEqual(view.toList(), [0, 1, 2, 3, 4, 5]);
      assertBumps('write through a view', [t], () => view.write(Float32Array.from([9, 9]), 4));
      assert.deepEqual(t.toList(), [0, 1, 2, 3, 9, 9], 'a write at an offset changes only its range');
      assertBumps('Backend.upload', [t], () => t.backend.upload(t.storage, Float32Array.from([1, 1, 1, 1, 1, 1])), [other]);
      // Versions come from one clock: a later write anywhere gets a larger version.
      const a = t.writeVersion;
      other.write(Float32Array.from([0, 0, 0, 0, 0, 0]));
      assert.ok(other.writeVersion > a);
    });
  });

  test(`write versions (${backend}): in-place optimizer ops change what they write, not the gradient`, () => {
    E.tidy(() => {
      const like = (vals: number[]) => E.tensor(vals, [3], { backend });
      const p = like([1, 2, 3]), g = like([0.5, -0.5, 1]), m = E.zeros([3], { backend }), v = E.zeros([3], { backend });
      assertBumps('adamwUpdate', [p, m, v], () => E.adamwUpdate(p, g, m, v, { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, step: 1 }), [g]);
      const buf = E.zeros([3], { backend });
      const sgd = { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 };
      assertBumps('sgdUpdate with momentum', [p, buf], () => E.sgdUpdate(p, g, buf, { ...sgd, firstStep: true }), [g]);
      assertBumps('sgdUpdate without momentum', [p], () => E.sgdUpdate(p, g, null, { ...sgd, momentum: 0 }), [g]);
      assertBumps('scaleInPlace (gradient clipping)', [g], () => E.scaleInPlace(g, 0.5), [p]);
    });
  });
}

test('Tensor.write: dtype, length and offset are checked before anything is written', () => {
  E.tidy(() => {
    const t = E.tensor([1, 2, 3], [3], { backend: 'reference' });
    const v = t.writeVersion;
    assertThrowsWith(() => t.write(Float64Array.from([1, 2, 3])), /write: tensor .* takes float32 data, found a Float64Array/);
    assertThrowsWith(() => t.write(Float32Array.from([1, 2])), /write: 2 elements do not fit tensor .* \(3 elements\)/);
    assertThrowsWith(() => t.write(Float32Array.from([1, 2]), 2), /write: 2 elements at offset 2 do not fit/);
    assertThrowsWith(() => t.write(Float32Array.from([1]), -1), /at offset -1 do not fit/);
    assert.equal(t.writeVersion, v);
    assert.deepEqual(t.toList(), [1, 2, 3]);
    const d = E.tensor([1], [1], { backend: 'reference' });
    d.dispose();
    assertThrowsWith(() => d.writeVersion, /used after it was disposed/);
  });
});

// A toy op whose kernel writes into its input's memory directly (as in-place kernels do):
// declared, runOp bumps the version; undeclared, the write check catches it.
const SNEAKY = 'test.sneakyIncrement', DECLARED = 'test.declaredIncrement';
const increment: E.Kernel = ([x]) => {
  const d = data(x!);
  for (let i = 0; i < d.length; i++) d[i]! += 1;
  return [];
};
E.registerKernel(SNEAKY, 'reference', increment);
E.registerKernel(DECLARED, 'reference', increment);
E.registerInPlaceOp(DECLARED, [0]);

test('runOp bumps the inputs an op declares in place; the write check finds undeclared writes', () => {
  E.tidy(() => {
    const x = E.tensor([1, 2], [2], { backend: 'reference' });
    assertBumps('declared in-place op', [x], () => E.runOp(DECLARED, [x], {}));
    assert.deepEqual(x.toList(), [2, 3]);
    assert.deepEqual(E.mutatedInputs(DECLARED), [0]);
    assert.equal(E.mutatedInputs('add'), undefined, 'ordinary ops only read their inputs');
    const v = x.writeVersion;
    E.runOp(SNEAKY, [x], {});
    assert.equal(x.writeVersion, v, 'an undeclared write goes unseen without the check');
    const was = E.setWriteCheck(true);
    try {
      assertThrowsWith(() => E.runOp(SNEAKY, [x], {}), /op 'test.sneakyIncrement': the 'reference' kernel wrote into input 0 .* does not declare it with registerInPlaceOp/);
      E.runOp(DECLARED, [x], {});
      // The real in-place ops are declared: the check passes on them.
      const p = E.tensor([1, 2], [2], { backend: 'reference' }), g = E.tensor([1, 1], [2], { backend: 'reference' });
      E.adamwUpdate(p, g, E.zeros([2], { backend: 'reference' }), E.zeros([2], { backend: 'reference' }), { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, step: 1 });
      E.sgdUpdate(p, g, E.zeros([2], { backend: 'reference' }), { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 });
      E.scaleInPlace(g, 2);
    } finally {
      E.setWriteCheck(was);
    }
    assertThrowsWith(() => E.registerInPlaceOp('test.bad', [-1]), /registerInPlaceOp\('test.bad'\): input indices must be non-negative integers, found \[-1\]/);
  });
});
