// The op registry is complete and unambiguous: every registered op has a reference kernel, a
// native kernel (or a declared reason to be reference-only) and a gradient (or a declared reason
// to have none); registering a kernel or a gradient twice is an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';

test('every registered op has a reference kernel, a native kernel or a reason, a gradient or a reason', () => {
  const ops = E.registeredOps();
  assert.ok(ops.length > 40, `expected the full op set, found ${ops.length} ops`);
  const problems: string[] = [];
  for (const op of ops) {
    const backends = E.kernelBackends(op);
    if (!backends.includes('reference')) problems.push(`${op}: no reference kernel`);
    const refOnly = E.referenceOnlyReason(op);
    if (!backends.includes('native') && refOnly === undefined) problems.push(`${op}: no native kernel and not declared reference-only`);
    if (backends.includes('native') && refOnly !== undefined) problems.push(`${op}: declared reference-only (${refOnly}) but has a native kernel`);
    const grad = E.getGradient(op) !== undefined;
    const nonDiff = E.nonDifferentiableReason(op);
    if (!grad && nonDiff === undefined) problems.push(`${op}: no gradient and not declared non-differentiable`);
    if (nonDiff !== undefined && nonDiff.trim().length < 10) problems.push(`${op}: non-differentiable without a reason`);
  }
  assert.deepEqual(problems, []);
});

test('registering a kernel or a gradient twice throws, naming the op', () => {
  E.registerKernel('registryTestOp', 'reference', () => []);
  assert.throws(() => E.registerKernel('registryTestOp', 'reference', () => []), /op 'registryTestOp' already has a kernel for backend 'reference'/);
  assert.throws(() => E.registerKernel('add', 'native', () => []), /op 'add' already has a kernel for backend 'native'/);
  assert.throws(() => E.registerGradient('add', () => []), /op 'add' already has a gradient/);
  assert.throws(() => E.declareNonDifferentiable('add', 'a test declaration'), /op 'add' already has a gradient/);
  assert.throws(() => E.registerGradient('softmaxGrad', () => []), /'softmaxGrad' is declared non-differentiable/);
});
