import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { AdamW, SGD, assignParamGroups, paramRoles, stackIndexOf } from '../../src/optim/index.js';

function param(shape: number[], seed: number): Tensor {
  const t = E.keep(E.randn(shape, { seed, std: 0.1 }));
  t.requiresGrad = true;
  return t;
}

function setGrad(p: Tensor, seed: number): void {
  p.grad?.dispose();
  p.grad = E.keep(E.randn([...p.shape], { seed, std: 1 }));
}

test('roles come from names and ranks; groups follow rule precedence', () => {
  const w = param([4, 4], 1), b = param([4], 2), la = param([2, 4], 3);
  assert.deepEqual(paramRoles('rack.stacks.1.blocks.0.attn.q.weight', w, new Set([1])), ['new_stack']);
  assert.deepEqual(paramRoles('rack.stacks.0.blocks.0.attn_norm.weight', b), ['no_decay', 'trunk']);
  assert.deepEqual(paramRoles('rack.stacks.0.blocks.0.attn.q.lora_A', la), ['adapters', 'trunk']);
  assert.deepEqual(paramRoles('embedding.token.weight', w), ['embedding']);
  assert.deepEqual(paramRoles('time.proj.weight', w), ['embedding'], 'the time embedding feeds the embedding output');
  assert.deepEqual(paramRoles('head.bias', b), ['no_decay', 'head']);
  assert.equal(stackIndexOf('rack.stacks.12.blocks.3.ffn.up.weight'), 12);
  assert.equal(stackIndexOf('head.weight'), undefined);

  const named: [string, Tensor][] = [
    ['embedding.token.weight', param([8, 4], 4)],
    ['rack.stacks.0.blocks.0.attn.q.weight', param([4, 4], 5)],
    ['rack.stacks.0.blocks.0.attn_norm.weight', param([4], 6)],
    ['rack.stacks.1.blocks.0.attn.q.weight', param([4, 4], 7)],
    ['rack.stacks.1.blocks.0.attn.q.lora_A', param([2, 4], 8)],
    ['head.weight', param([8, 4], 9)],
  ];
  const groups = assignParamGroups(named, [{ name: 'adapters', lr_scale: 10 }, { name: 'no_decay' }, { name: 'new_stack', lr_scale: 2, weight_decay: 0.5 }, { name: 'trunk', lr_scale: 0.1 }], { weightDecay: 0.1, newStacks: new Set([1]) });
  const byName = Object.fromEntries(groups.map((g) => [g.name, g]));
  assert.deepEqual(groups.map((g) => g.name), ['adapters', 'no_decay', 'new_stack', 'trunk', 'default']);
  assert.deepEqual(byName['adapters']!.paramNames, ['rack.stacks.1.blocks.0.attn.q.lora_A']);
  assert.equal(byName['adapters']!.lrScale, 10);
  assert.equal(byName['no_decay']!.weightDecay, 0);
  assert.deepEqual(byName['new_stack']!.paramNames, ['rack.stacks.1.blocks.0.attn.q.weight']);
  assert.equal(byName['new_stack']!.weightDecay, 0.5);
  assert.deepEqual(byName['trunk']!.paramNames, ['rack.stacks.0.blocks.0.attn.q.weight']);
  assert.deepEqual(byName['default']!.paramNames, ['embedding.token.weight', 'head.weight']);
  assert.equal(byName['default']!.weightDecay, 0.1);
  assert.throws(() => assignParamGroups(named, [{ name: 'trunk' }, { name: 'trunk' }], { weightDecay: 0 }), /listed twice/);
  assert.throws(() => assignParamGroups(named, [{ name: 'bogus' as never }], { weightDecay: 0 }), /unknown role 'bogus'/);
});

test('setParamGroups: state of staying parameters is carried over, new ones start fresh, reset clears all', () => {
  const a = param([3, 3], 11), b = param([3], 12), c = param([2, 3], 13);
  const ref = param([3, 3], 11); // twin of a, trained without regrouping
  const opt = new AdamW([a, b], { lr: 0.01 });
  const twin = new AdamW([ref], { lr: 0.01 });
  for (let s = 0; s < 3; s++) {
    setGrad(a, 100 + s); setGrad(ref, 100 + s); setGrad(b, 200 + s);
    opt.step(); twin.step();
  }
  // a moves to another group, b leaves, c joins.
  opt.setParamGroups([{ name: 'x', params: [c] }, { name: 'y', params: [a], lr: 0.01 }]);
  const named = opt.namedState((p) => (p === a ? 'a' : p === c ? 'c' : 'b'));
  assert.deepEqual(Object.keys(named.scalars).sort(), ['a'], 'b lost its state; c has none yet');
  assert.equal(named.scalars['a']!['step'], 3);
  setGrad(a, 300); setGrad(ref, 300); setGrad(c, 301);
  opt.step(); twin.step();
  assert.deepEqual(a.toList(), ref.toList(), 'the moved parameter continued exactly like its twin');
  assert.equal(opt.namedState((p) => (p === c ? 'c' : 'a')).scalars['c']!['step'], 1, 'c starts its own bias correction');
  opt.setParamGroups(opt.groups.map((g) => ({ ...g })), { resetState: true });
  assert.equal(opt.namedState((p) => p.describe()).tensors.size, 0);
  assert.throws(() => opt.setParamGroups([{ name: 'x', params: [a] }, { name: 'x', params: [c] }]), /two parameter groups are named 'x'/);
  assert.throws(() => opt.setParamGroups([{ name: 'x', params: [a, a] }]), /more than one group/);
  opt.dispose(); twin.dispose();
});

test('namedState / loadNamedState round-trip by name, independent of order; mismatches are errors', () => {
  for (const make of [(ps: Tensor[]) => new AdamW(ps, { lr: 0.01 }), (ps: Tensor[]) => new SGD(ps, { lr: 0.01, momentum: 0.9 })]) {
    const a = param([4, 2], 21), b = param([2], 22);
    const opt = make([a, b]);
    setGrad(a, 1); setGrad(b, 2); opt.step();
    const names = new Map([[a, 'w'], [b, 'bias']]);
    const saved = opt.namedState((p) => names.get(p)!);
    // A fresh optimizer over copies, in the other order.
    const a2 = param([4, 2], 0), b2 = param([2], 0);
    a2.backend.upload(a2.storage, a.toArray()); b2.backend.upload(b2.storage, b.toArray());
    const opt2 = make([b2, a2]);
    const names2 = new Map([[a2, 'w'], [b2, 'bias']]);
    opt2.loadNamedState(saved, (p) => names2.get(p)!);
    assert.equal(opt2.stepCount, 1);
    setGrad(a, 3); setGrad(b, 4); setGrad(a2, 3); setGrad(b2, 4);
    opt.step(); opt2.step();
    assert.deepEqual(a2.toList(), a.toList());
    assert.deepEqual(b2.toList(), b.toList());
    const other = make([param([4, 2], 5)]);
    assert.throws(() => other.loadNamedState(saved, () => 'w'), /does not hold: bias/);
    const wrongShape = make([param([3, 3], 5), param([2], 6)]);
    let k = 0;
    assert.throws(() => wrongShape.loadNamedState(saved, () => (k++ % 2 === 0 ? 'w' : 'bias')), /expected shape \[3, 3\].*found \[4, 2\]/);
    assert.throws(() => make([a]).loadNamedState({ ...saved, kind: 'other' }, () => 'w'), /expected kind/);
    for (const o of [opt, opt2, other, wrongShape]) o.dispose();
  }
});
