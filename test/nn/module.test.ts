import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { deriveSeed, Linear, LayerNorm, Module, ModuleList, StateDictError, gpt2, llama, withoutRandomInit } from '../../src/nn/index.js';
import { assertEqualArrays, assertThrowsWith, hasNative, noNativeReason } from './helpers.js';

class Pair extends Module {
  readonly a: Linear;
  readonly b: Linear;
  readonly norm: LayerNorm;
  constructor(seed: number) {
    super();
    this.a = this.registerModule('a', new Linear(4, 3, { seed: deriveSeed(seed, 'a') }));
    this.b = this.registerModule('b', new Linear(3, 2, { bias: false, seed: deriveSeed(seed, 'b') }));
    this.norm = this.registerModule('norm', new LayerNorm(2));
  }
}

test('dotted names, modules, parameters and tensor names', () => {
  const m = new Pair(1);
  const names = m.namedParameters().map(([n]) => n);
  assert.deepEqual(names, ['a.weight', 'a.bias', 'b.weight', 'norm.weight', 'norm.bias']);
  assert.deepEqual(m.namedModules().map(([n]) => n), ['', 'a', 'b', 'norm']);
  assert.equal(m.getParameter('a.weight').name, 'a.weight');
  assert.equal(m.getModule('b'), m.b);
  assert.equal(m.parameters().length, 5);
  assert.ok(m.parameters().every((t) => t.requiresGrad));
  assertThrowsWith(() => m.getModule('c'), /no module at 'c'/, /'c' not found among a, b, norm/);
  assertThrowsWith(() => m.getParameter('a.nope'), /no parameter 'a\.nope'/);
  const list = new ModuleList([new Linear(2, 2, { seed: 1 }), new Linear(2, 2, { seed: 2 })]);
  list.insert(0, new Linear(2, 2, { seed: 3 }));
  assert.deepEqual(list.namedParameters().map(([n]) => n), ['0.weight', '0.bias', '1.weight', '1.bias', '2.weight', '2.bias']);
  list.remove(1);
  assert.equal(list.length, 2);
  m.dispose();
  list.dispose();
});

test('parameters survive memory scopes', () => {
  const m = E.tidy(() => new Pair(2));
  assert.ok(m.parameters().every((t) => !t.isDisposed));
  m.dispose();
});

test('seeded initialisation: same seed → same weights, other seed → other weights', () => {
  const a = new Pair(7), b = new Pair(7), c = new Pair(8);
  assertEqualArrays(a.a.weight.toArray(), b.a.weight.toArray());
  assertEqualArrays(a.b.weight.toArray(), b.b.weight.toArray());
  assert.notDeepEqual(Array.from(a.a.weight.toArray()), Array.from(c.a.weight.toArray()));
  // Children with different names get unrelated streams.
  assert.notDeepEqual(Array.from(a.a.weight.toArray()).slice(0, 6), Array.from(a.b.weight.toArray()).slice(0, 6));
  const m1 = gpt2({ vocabSize: 32, dModel: 16, nLayers: 2, nHeads: 2, maxPositions: 8, seed: 5 });
  const m2 = gpt2({ vocabSize: 32, dModel: 16, nLayers: 2, nHeads: 2, maxPositions: 8, seed: 5, stacks: 2 });
  // The same layer gets the same weights only if its path is the same; within one config it is deterministic.
  const m3 = gpt2({ vocabSize: 32, dModel: 16, nLayers: 2, nHeads: 2, maxPositions: 8, seed: 5 });
  for (const [n, t] of m1.namedParameters()) assertEqualArrays(t.toArray(), m3.getParameter(n).toArray(), n);
  assert.equal(m2.numParameters(), m1.numParameters());
  const z = withoutRandomInit(() => new Linear(3, 3, { seed: 1 }));
  assert.ok(Array.from(z.weight.toArray()).every((v) => v === 0));
  for (const x of [a, b, c, m1, m2, m3, z]) x.dispose();
});

test('freeze / unfreeze per subtree and trainable counts', () => {
  const m = new Pair(3);
  assert.equal(m.numParameters(), 12 + 3 + 6 + 2 + 2);
  assert.equal(m.numBytes(), m.numParameters() * 4);
  m.a.freeze();
  assert.ok(m.a.isFrozen);
  assert.ok(!m.isFrozen);
  assert.equal(m.numParameters({ trainableOnly: true }), 6 + 2 + 2);
  assert.equal(m.numBytes({ trainableOnly: true }), 40);
  assert.deepEqual(m.trainableParameters().map(([n]) => n), ['b.weight', 'norm.weight', 'norm.bias']);
  m.freeze();
  assert.ok(m.isFrozen);
  m.unfreeze();
  assert.equal(m.numParameters({ trainableOnly: true }), m.numParameters());
  m.dispose();
});

test('train / eval mode propagates', () => {
  const m = new Pair(4);
  m.eval();
  assert.ok(m.namedModules().every(([, x]) => !x.training));
  m.train();
  assert.ok(m.namedModules().every(([, x]) => x.training));
  m.dispose();
});

test('state dict round trip keeps identity and copies values', () => {
  const a = new Pair(5), b = new Pair(6);
  const before = b.a.weight;
  const res = b.loadStateDict(a.stateDict());
  assert.deepEqual(res, { missing: [], unexpected: [] });
  assert.equal(b.a.weight, before, 'parameters are updated in place');
  for (const [n, t] of a.namedParameters()) assertEqualArrays(b.getParameter(n).toArray(), t.toArray(), n);
  // Record form works too.
  b.loadStateDict(Object.fromEntries(a.stateDict()));
  a.dispose();
  b.dispose();
});

test('loadStateDict errors name the key, expected and found', () => {
  const m = new Pair(1);
  const sd = new Map(m.stateDict());
  sd.set('a.weight', E.zeros([3, 5]));
  assertThrowsWith(() => m.loadStateDict(sd), /'a\.weight': shape mismatch, expected \[3, 4\], found \[3, 5\]/);
  sd.set('a.weight', E.zeros([3, 4], { dtype: 'int32' }));
  assertThrowsWith(() => m.loadStateDict(sd), /'a\.weight': dtype mismatch, expected float32, found int32/);
  const sd2 = new Map(m.stateDict());
  sd2.delete('norm.bias');
  sd2.set('extra.weight', E.zeros([1]));
  assert.throws(() => m.loadStateDict(sd2), (e: unknown) => {
    assert.ok(e instanceof StateDictError);
    assert.match(e.message, /2 problems/);
    assert.match(e.message, /'norm\.bias': missing from the state dict \(expected float32\[2\]\)/);
    assert.match(e.message, /'extra\.weight': unexpected key/);
    return true;
  });
  // Nothing was written by the failed loads.
  const w = Array.from(m.a.weight.toArray());
  assert.ok(w.some((v) => v !== 0));
  const res = m.loadStateDict(sd2, { strict: false });
  assert.deepEqual(res, { missing: ['norm.bias'], unexpected: ['extra.weight'] });
  m.dispose();
});

test('tied weights are listed once and stay shared through to() and loadStateDict', () => {
  const m = gpt2({ vocabSize: 20, dModel: 8, nLayers: 1, nHeads: 2, maxPositions: 8, seed: 1 });
  const names = m.namedParameters().map(([n]) => n);
  assert.ok(names.includes('embedding.token.weight'));
  assert.ok(!names.includes('head.weight'), 'the tied head weight is an alias');
  assert.equal(m.getParameter('head.weight'), m.getParameter('embedding.token.weight'));
  const other = hasNative ? 'reference' : 'reference';
  m.to(other, { dtype: 'float64' });
  assert.equal(m.getParameter('head.weight'), m.getParameter('embedding.token.weight'));
  assert.equal(m.getParameter('head.weight').dtype, 'float64');
  assert.equal(m.getParameter('head.weight').backend.name, 'reference');
  assert.equal(m.numBytes(), m.numParameters() * 8);
  m.dispose();
});

test('to(backend) moves values exactly and keeps requiresGrad', { skip: noNativeReason ?? false }, () => {
  const m = llama({ vocabSize: 16, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, dFF: 12, seed: 2, backend: 'reference' });
  const before = new Map(m.namedParameters().map(([n, t]) => [n, Array.from(t.toArray())]));
  m.rack.freeze();
  m.to('native');
  for (const [n, t] of m.namedParameters()) {
    assert.equal(t.backend.name, 'native');
    assert.deepEqual(Array.from(t.toArray()), before.get(n));
    assert.equal(t.requiresGrad, !n.startsWith('rack.'), n);
  }
  m.dispose();
});
