// Growth of a (pretrained) model from the inside: LLaMA Pro's block expansion and SOLAR's depth
// up-scaling, as growth operators of the one growth path (ProgressiveRackBuilder).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Linear, type Model, type Stack } from '../../../src/nn/index.js';
import { ProgressiveRackBuilder, ProgressiveConfigError, GROWTH_OPERATORS, type GrowthSpec } from '../../../src/training/progressive/index.js';
import { idsOf, logitsOf, maxAbsDiff, throwsWith, tinyLlama, tinyGpt2 } from './helpers.js';

/** Every parameter of a stack, by name, as plain arrays. */
function weightsOf(s: Stack): Map<string, number[]> {
  return new Map(s.namedParameters().map(([n, t]) => [n, Array.from(t.toArray() as Float32Array)]));
}

function sameWeights(a: Stack, b: Stack): boolean {
  const wa = weightsOf(a);
  const wb = weightsOf(b);
  if (wa.size !== wb.size) return false;
  for (const [n, v] of wa) if (JSON.stringify(v) !== JSON.stringify(wb.get(n))) return false;
  return true;
}

function isZero(lin: unknown): boolean {
  assert.ok(lin instanceof Linear);
  return Array.from(lin.weight.toArray() as Float32Array).every((v) => v === 0);
}

test('the vocabulary names the two operators', () => {
  assert.ok(GROWTH_OPERATORS.includes('block_expansion'));
  assert.ok(GROWTH_OPERATORS.includes('depth_upscaling'));
});

test('block_expansion (LLaMA Pro): a zero-output copy after every (N/P)-th stack, logits unchanged bit for bit', () => {
  const x = idsOf(2, 9, 5);
  for (const make of [tinyLlama, tinyGpt2]) {
    const m: Model = make(4, 11);
    const old = m.rack.stacks.toArray();
    const copies = old.map((s) => weightsOf(s));
    const before = logitsOf(m, x);
    const b = new ProgressiveRackBuilder(m, { targetStacks: 6, growth: { kind: 'block_expansion' }, freeze: { new_stack: 'train', trunk: 'frozen', embedding: 'frozen', head: 'frozen' } });
    const events = b.growTo(6);
    assert.deepEqual(events.map((e) => [e.position, e.operator, e.preservesFunction]), [[2, 'block_expansion', true], [5, 'block_expansion', true]]);
    const now = m.rack.stacks.toArray();
    // Old stacks keep their order and their objects: s0 s1 N0 s2 s3 N1.
    assert.deepEqual([0, 1, 3, 4].map((i) => now[i]), old);
    for (const [k, i] of [[2, 1], [5, 3]] as const) {
      const fresh = now[k]!;
      for (const blk of fresh.blocks) {
        assert.ok(isZero(blk.attn.getModule('o')), `${m.family}: new stack ${k}: o projection is zero`);
        assert.ok(isZero(blk.ffn.down), `${m.family}: new stack ${k}: down projection is zero`);
      }
      // Everything else copies the stack before it (LLaMA Pro's initialisation).
      const src = copies[i]!;
      for (const [n, v] of weightsOf(fresh)) {
        if (/attn\.o\.|ffn\.down\./.test(n)) continue;
        assert.deepEqual(v, src.get(n), `${m.family}: new stack ${k} '${n}' copies stack ${i}`);
      }
    }
    const after = logitsOf(m, x);
    assert.equal(maxAbsDiff(after, before), 0, `${m.family}: logits changed by the expansion`);
    // Old blocks, embedding and head frozen; the new blocks train.
    for (const [i, s] of now.entries()) {
      const trains = s.parameters().every((t) => t.requiresGrad);
      const frozen = s.parameters().every((t) => !t.requiresGrad);
      assert.ok(i === 2 || i === 5 ? trains : frozen, `stack ${i}`);
    }
    assert.ok(m.embedding.isFrozen && m.head.parameters().every((t) => !t.requiresGrad));
    // The old stacks' weights are untouched.
    old.forEach((s, i) => assert.deepEqual(weightsOf(s), copies[i]));
    m.dispose();
  }
});

test('block_expansion with several blocks per stack, 2 → 4 stacks (a new stack after every stack)', () => {
  const x = idsOf(1, 6, 2);
  const m = tinyLlama(2, 3, 2);
  const before = logitsOf(m, x);
  new ProgressiveRackBuilder(m, { targetStacks: 4, growth: { kind: 'block_expansion' } }).growTo(4);
  assert.deepEqual(m.rack.stacks.toArray().map((s) => s.length), [2, 2, 2, 2]);
  assert.equal(maxAbsDiff(logitsOf(m, x), before), 0);
  m.dispose();
});

test('depth_upscaling (SOLAR): A[0, N−m) ++ B[m, N), with m from the growth', () => {
  const x = idsOf(2, 7, 8);
  // N = 4 → 6: m = 1, the rack becomes s0 s1 s2 | s1' s2' s3.
  const m = tinyLlama(4, 21);
  const old = m.rack.stacks.toArray();
  const b = new ProgressiveRackBuilder(m, { targetStacks: 6, growth: { kind: 'depth_upscaling' }, freeze: 'none' });
  const before = logitsOf(m, x);
  const events = b.growTo(6);
  assert.deepEqual(events.map((e) => e.position), [3, 4]);
  const now = m.rack.stacks.toArray();
  assert.deepEqual([now[0], now[1], now[2], now[5]], old);
  assert.ok(sameWeights(now[3]!, old[1]!) && now[3] !== old[1], "stack 3 is a copy of stack 1 (the second copy's first kept stack)");
  assert.ok(sameWeights(now[4]!, old[2]!) && now[4] !== old[2]);
  assert.ok(maxAbsDiff(logitsOf(m, x), before) > 1e-4, 'SOLAR does not keep the function (the paper continues pretraining)');
  m.dispose();
  // N = 3 → 6: m = 0, the model joined with a whole copy of itself.
  const m2 = tinyLlama(3, 22);
  const old2 = m2.rack.stacks.toArray();
  new ProgressiveRackBuilder(m2, { targetStacks: 6, growth: { kind: 'depth_upscaling' } }).growTo(6);
  const now2 = m2.rack.stacks.toArray();
  assert.deepEqual(now2.slice(0, 3), old2);
  for (let i = 0; i < 3; i++) assert.ok(sameWeights(now2[3 + i]!, old2[i]!));
  m2.dispose();
});

test('growths the two operators cannot do are refused, naming the numbers', () => {
  const m = tinyLlama(4, 1);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 7, growth: { kind: 'block_expansion' } }).growTo(7),
    /block_expansion .* growing 4 → 7 adds 3, which does not divide 4 \(with 4 stacks, add one of 1, 2, 4\)/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 9, growth: { kind: 'depth_upscaling' } }).growTo(9),
    /depth_upscaling .* 4 → 9 needs m = \(4 − 5\) \/ 2/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 7, growth: { kind: 'depth_upscaling' } }).growTo(7),
    /4 → 7 needs m = \(4 − 3\) \/ 2, not a whole number/);
  assert.throws(() => new ProgressiveRackBuilder(m, { direction: 'prepend', targetStacks: 6, growth: { kind: 'block_expansion' } }).growTo(6),
    (e: unknown) => e instanceof ProgressiveConfigError && /needs direction 'append', found 'prepend'/.test(e.message));
  assert.equal(m.rack.numStacks, 4, 'a refused growth changes nothing');
  m.dispose();
});

test('a builder replays block expansion and depth up-scaling from its saved state', () => {
  for (const kind of ['block_expansion', 'depth_upscaling'] as const) {
    const a = tinyLlama(2, 5);
    const ba = new ProgressiveRackBuilder(a, { targetStacks: 4, growth: { kind } as GrowthSpec });
    ba.growTo(4, { t: 0.5 });
    const b = tinyLlama(2, 5);
    const bb = new ProgressiveRackBuilder(b, { targetStacks: 4, growth: { kind: 'fresh' } });
    bb.replay(ba.getState());
    assert.deepEqual(bb.history.map((e) => [e.operator, e.position]), ba.history.map((e) => [e.operator, e.position]));
    const x = idsOf(1, 5, 1);
    assert.equal(maxAbsDiff(logitsOf(a, x), logitsOf(b, x)), 0, kind);
    a.dispose();
    b.dispose();
  }
});
