import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import { Linear } from '../../../src/nn/index.js';
import { AdamW } from '../../../src/optim/index.js';
import {
  copyBlock, growRack, loraRankFor, ProgressiveConfigError, ProgressiveRackBuilder, RampedStack, rampGate,
} from '../../../src/training/progressive/index.js';
import { idsOf, logitsOf, maxAbsDiff, perturbAdapters, throwsWith, tinyBert, tinyGpt2, tinyLlama } from './helpers.js';

const TOL = 1e-5;

test('append grows 1 → 3 stacks left→right; frozen trunk freezes the prefix, the head trains', () => {
  const m = tinyGpt2(1);
  const b = new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'frozen_trunk', seed: 5 });
  assert.equal(b.numStacks, 1);
  assert.equal(b.newStackIndex, 0);
  assert.ok(m.parameters().every((t) => t.requiresGrad), 'no trunk yet: the first stack trains with the embedding and head');
  const first = m.rack.stacks.at(0);
  const e1 = b.grow({ t: 0.3 });
  assert.deepEqual([e1.stacks, e1.position, e1.finalIndex, e1.operator], [2, 1, 1, 'fresh']);
  b.grow({ t: 0.6 });
  assert.equal(m.rack.numStacks, 3);
  assert.equal(m.rack.stacks.at(0), first, 'the trained stack is kept, not rebuilt');
  assert.equal(b.newStackIndex, 2);
  assert.deepEqual(b.trunkIndices, [0, 1]);
  assert.ok(m.rack.stacks.at(0).isFrozen && m.rack.stacks.at(1).isFrozen);
  assert.ok(!m.rack.stacks.at(2).isFrozen);
  assert.ok(m.embedding.isFrozen, 'left→right: the embedding is part of the frozen prefix');
  // GPT-2's head is tied to the embedding: the decoder stays frozen, the final norm trains.
  assert.equal(m.head.parameters().find((t) => t.shape.length === 2)!.requiresGrad, false);
  assert.ok(m.head.parameters().some((t) => t.requiresGrad));
  const spec = b.toSpec();
  assert.equal(spec.n_stacks, 3);
  assert.deepEqual(spec.stacks.map((s) => s.frozen), [true, true, false]);
  assert.deepEqual(b.history.map((h) => h.t), [0.3, 0.6]);
  throwsWith(() => b.grow(), /cannot grow past target_stacks 3: the rack already has 3 stacks/);
  // Parameter names are dotted paths of the grown model.
  assert.ok(m.namedParameters().some(([n]) => n === 'rack.stacks.2.blocks.0.attn.q.weight'));
  m.dispose();
});

test('prepend grows right→left: the new stack is leftmost, the suffix and head are frozen', () => {
  const m = tinyLlama(1);
  const b = new ProgressiveRackBuilder(m, { direction: 'prepend', targetStacks: 4, seed: 2 });
  const old = m.rack.stacks.at(0);
  assert.ok(!m.head.isFrozen, 'the head trains with the first (rightmost) stack');
  assert.equal(b.finalIndex(), 3, 'the first stack of a right→left build is the rightmost of the final rack');
  const e = b.grow();
  assert.equal(e.position, 0);
  assert.equal(e.finalIndex, 2);
  assert.equal(m.rack.stacks.at(1), old);
  assert.equal(b.newStack, m.rack.stacks.at(0));
  assert.ok(old.isFrozen && m.head.isFrozen, 'suffix and head frozen (semantic anchor)');
  assert.ok(!m.rack.stacks.at(0).isFrozen && !m.embedding.isFrozen);
  b.growTo(4);
  assert.equal(b.finalIndex(0), 0);
  assert.deepEqual(b.history.map((h) => h.finalIndex), [2, 1, 0]);
  m.dispose();
});

test('function-preserving operators: identity insertion and ramp-in keep the logits (append and prepend)', () => {
  const x = idsOf(2, 7, 3);
  for (const make of [tinyLlama, tinyGpt2]) {
    for (const direction of ['append', 'prepend'] as const) {
      const m = make(1, 4);
      const b = new ProgressiveRackBuilder(m, { direction, targetStacks: 4, growth: { kind: 'identity' }, freeze: 'none' });
      const before = logitsOf(m, x);
      assert.equal(b.grow().preservesFunction, true);
      assert.ok(maxAbsDiff(logitsOf(m, x), before) <= TOL, `${m.family} ${direction}: identity insertion changed the logits`);
      // identity on top of a copy of the top stack
      b.grow({ growth: { kind: 'identity', init: 'copy_top' } });
      assert.ok(maxAbsDiff(logitsOf(m, x), before) <= TOL, `${m.family} ${direction}: identity(copy_top) changed the logits`);
      // ramp-in over [0.4, 0.6], added at t = 0.2: no change until t0, then a real stack.
      b.grow({ t: 0.2, growth: { kind: 'ramp', t0: 0.4, t1: 0.6 } });
      const ramp = m.rack.stacks.toArray().find((s) => s instanceof RampedStack) as RampedStack;
      assert.equal(ramp.gate, 0);
      assert.ok(maxAbsDiff(logitsOf(m, x), before) <= TOL, `${m.family} ${direction}: ramp-in changed the logits at g = 0`);
      b.setTime(0.5);
      assert.equal(ramp.gate, 0.5);
      assert.ok(maxAbsDiff(logitsOf(m, x), before) > 1e-4, 'at g = 0.5 the new stack contributes');
      m.dispose();
    }
  }
  assert.deepEqual([rampGate(0.1, 0.2, 0.4), rampGate(0.25, 0, 0.5), rampGate(0.5, 0.2, 0.4), rampGate(0.2, 0.2, 0.2)], [0, 0.5, 1, 1]);
});

test('stack LoRA and progressive LoRA start as no-ops (function preserved), folding included', () => {
  const x = idsOf(2, 6, 9);
  const m = tinyLlama(1, 6);
  const b = new ProgressiveRackBuilder(m, {
    targetStacks: 3,
    growth: { kind: 'identity' },
    freeze: 'adapters_only_trunk',
    stackLora: { strategy: { kind: 'constant', rank: 2, alpha: 4 }, targets: ['q', 'v', 'down'] },
    progressiveLora: { rank: 3, alpha: 3, targets: ['q', 'o'] },
  });
  perturbAdapters(m, 100); // pretend the first stack's adapters were trained
  const before = logitsOf(m, x);
  b.grow();
  // Stack 0 now carries a progressive adapter on q and o (its trained q adapter was folded into
  // the weight), and keeps its stack adapters on v and down.
  const s0 = m.rack.stacks.at(0).blocks.at(0);
  assert.equal((s0.attn.getModule('q') as Linear).lora!.rank, 3);
  assert.equal((s0.attn.getModule('v') as Linear).lora!.rank, 2);
  assert.equal((s0.attn.getModule('o') as Linear).lora!.rank, 3);
  assert.equal(s0.ffn.down.lora!.rank, 2);
  assert.ok(maxAbsDiff(logitsOf(m, x), before) <= TOL, 'growth with dual LoRA changed the logits');
  // adapters-only trunk: base frozen, every trunk adapter trains; the new stack trains fully.
  for (const [n, t] of m.rack.stacks.at(0).namedParameters()) assert.equal(t.requiresGrad, /lora_[AB]$/.test(n), n);
  assert.ok(m.rack.stacks.at(1).parameters().every((t) => t.requiresGrad));
  assert.ok(m.embedding.isFrozen);
  // Groups: every trainable parameter exactly once, in the expected group.
  const groups = b.parameterGroups({ lr: { 'progressive_lora': 1e-3 } });
  assert.deepEqual(groups.map((g) => g.name), ['new_stack', 'trunk', 'stack_lora', 'progressive_lora', 'no_decay']);
  const all = groups.flatMap((g) => g.params);
  assert.equal(new Set(all).size, all.length);
  assert.deepEqual(new Set(all), new Set(m.parameters().filter((t) => t.requiresGrad)));
  const named = new Map(m.namedParameters().map(([n, t]) => [t, n]));
  const names = (g: string) => groups.find((x) => x.name === g)!.params.map((t) => named.get(t)!);
  assert.ok(names('progressive_lora').every((n) => /^rack\.stacks\.0\..*\.(q|o)\.lora_[AB]$/.test(n)));
  assert.ok(names('stack_lora').every((n) => /\.(q|v|down)\.lora_[AB]$/.test(n)));
  assert.ok(names('stack_lora').some((n) => n.startsWith('rack.stacks.1.')) && names('stack_lora').some((n) => n.startsWith('rack.stacks.0.')));
  assert.ok(names('new_stack').every((n) => n.startsWith('rack.stacks.1.')));
  assert.ok(names('trunk').every((n) => n.startsWith('head.')), 'the trunk group holds the trainable head');
  assert.ok(names('no_decay').length > 0 && groups.find((g) => g.name === 'no_decay')!.weightDecay === 0);
  assert.equal(groups.find((g) => g.name === 'progressive_lora')!.lr, 1e-3);
  // The groups feed an optimizer directly.
  const opt = new AdamW(groups, { lr: 1e-2 });
  E.tidy(() => {
    const l = m.loss(m.forward(x).logits, x);
    l.backward();
    opt.step();
  });
  opt.zeroGrad();
  opt.dispose();
  m.dispose();
});

test('stack LoRA ranks: one for all, growing with depth, or per stack', () => {
  assert.deepEqual([0, 1, 2].map((k) => loraRankFor({ kind: 'constant', rank: 4, alpha: 8 }, k)), [{ rank: 4, alpha: 8 }, { rank: 4, alpha: 8 }, { rank: 4, alpha: 8 }]);
  assert.deepEqual([0, 1, 2].map((k) => loraRankFor({ kind: 'growing', rank: 4, alpha: 8 }, k).rank), [4, 8, 12]);
  assert.deepEqual([0, 1, 2].map((k) => loraRankFor({ kind: 'growing', rank: 4, alpha: 8 }, k).alpha), [8, 16, 24]);
  assert.deepEqual([0, 1, 2, 3].map((k) => loraRankFor({ kind: 'growing', rank: 2, growth: 'geometric', maxRank: 8 }, k).rank), [2, 4, 8, 8]);
  assert.deepEqual(loraRankFor({ kind: 'per_stack', ranks: [1, 5, 3], alphas: [2, 2, 2] }, 1), { rank: 5, alpha: 2 });
  const m = tinyLlama(1);
  const b = new ProgressiveRackBuilder(m, { targetStacks: 3, stackLora: { strategy: { kind: 'growing', rank: 2, step: 1 }, targets: ['up'] } });
  b.growTo(3);
  assert.deepEqual(m.rack.stacks.toArray().map((s) => s.blocks.at(0).ffn.up.lora!.rank), [2, 3, 4]);
  assert.deepEqual(b.history.map((h) => h.stackLora!.rank), [3, 4]);
  assert.deepEqual(b.toSpec().stacks.map((s) => s.lora?.rank), [2, 3, 4]);
  m.dispose();
});

test('copy_top / copy_middle copy effective weights; fresh and copies are seeded', () => {
  const m = tinyLlama(3, 7);
  const top = m.rack.stacks.at(2).blocks.at(0);
  top.attn.getModule('q') instanceof Linear && (top.attn.getModule('q') as Linear).addLora({ rank: 2, alpha: 2, seed: 1, init: 'random' });
  const c = copyBlock(top, 9);
  const q = top.attn.getModule('q') as Linear;
  const eff = E.add(q.weight, E.mulScalar(E.matmul(q.loraB!, q.loraA!), q.lora!.scale)).toArray();
  assert.ok(maxAbsDiff((c.attn.getModule('q') as Linear).weight.toArray(), eff) < 1e-7, 'copy folds the adapter into the weight');
  assert.equal((c.attn.getModule('q') as Linear).lora, null);
  assert.ok(maxAbsDiff(c.ffn.up.weight.toArray(), top.ffn.up.weight.toArray()) === 0);
  c.dispose();
  const cfg = { nBlocks: 1, block: top.config };
  growRack(m.rack, { kind: 'copy_middle' }, { position: 'append', config: cfg, seed: 1 });
  assert.equal(maxAbsDiff(m.rack.stacks.at(3).blocks.at(0).ffn.down.weight.toArray(), m.rack.stacks.at(1).blocks.at(0).ffn.down.weight.toArray()), 0);
  // Classic progressive stacking: a 4-block stack copying the top 4 blocks.
  growRack(m.rack, { kind: 'copy_top' }, { position: 'append', config: { nBlocks: 4, block: top.config }, seed: 1 });
  const blocks = m.rack.allBlocks();
  for (let j = 0; j < 4; j++) assert.equal(maxAbsDiff(blocks[4 + j]!.ffn.gate!.weight.toArray(), blocks[j]!.ffn.gate!.weight.toArray()), 0);
  assert.equal(m.rack.numBlocks, 8);
  // Fresh growth is deterministic from the builder seed.
  const w = () => {
    const mm = tinyLlama(1, 1);
    new ProgressiveRackBuilder(mm, { targetStacks: 2, seed: 42 }).grow();
    const out = mm.rack.stacks.at(1).blocks.at(0).attn.getModule('k') as Linear;
    const a = out.weight.toArray();
    mm.dispose();
    return a;
  };
  assert.deepEqual(w(), w());
  m.dispose();
});

test('bad input is rejected before training with clear messages', () => {
  const m = tinyGpt2(1);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: { new_stack: 'frozen', trunk: 'frozen', embedding: 'frozen', head: 'frozen' } }),
    /freezes everything .*nothing would train/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, stackLora: { strategy: { kind: 'constant', rank: 2, alpha: 2 }, targets: ['q', 'gate'] } }),
    /LoRA target 'gate' does not exist in the blocks \('gate' exists only in SwiGLU FFNs; this block's FFN is 'gelu'\)/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, progressiveLora: { rank: 2, alpha: 2, targets: ['qkv' as never] } }), /unknown LoRA target 'qkv'/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'adapters_only_trunk', trunkWeightFormat: 'nf4' }),
    /a frozen quantized \(nf4\) trunk is asked to train without adapters/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'none', trunkWeightFormat: 'int8' }), /a int8 trunk cannot be trained directly/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'frozen_trunk', trunkWeightFormat: 'nf4' }),
    /trunk weight format 'nf4' is not implemented by the model library/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'frozen_suffix' }), /'frozen_suffix' is the right→left \(prepend\) policy/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'frozen_trunk', progressiveLora: { rank: 2, alpha: 2, targets: ['q'] } }),
    /adapters on a trunk that the freeze policy freezes, so they would never train/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, stackLora: { strategy: { kind: 'per_stack', ranks: [2, 2] }, targets: ['q'] } }),
    /ranks lists 2 ranks, but the rack grows to 3 stacks/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 0 }), /target_stacks must be a positive integer, found 0/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, growth: { kind: 'grow-magic' } as never }), /unknown growth operator 'grow-magic'/);
  // Identity insertion cannot preserve a post-norm (BERT) stack.
  const bb = tinyBert(1);
  const builder = new ProgressiveRackBuilder(bb, { targetStacks: 2, growth: { kind: 'identity' } });
  throwsWith(() => builder.grow(), /identity insertion needs pre-norm blocks .* Use the 'ramp' operator instead/);
  throwsWith(() => new ProgressiveRackBuilder(tinyLlama(1), { targetStacks: 2, growth: { kind: 'ramp', t0: 0.2, t1: 0.4 } }).grow({ t: 0.3 }),
    /the stack is added at t = 0\.3, after the ramp starts/);
  // A whole schedule at once: every problem listed.
  const ok = new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'frozen_trunk' });
  assert.throws(() => ok.validatePlan([
    { name: 'warmup', stacks: 1 },
    { name: 'grow', stacks: 4 },
    { name: 'shrink', stacks: 2, freeze: { new_stack: 'frozen', trunk: 'frozen', embedding: 'frozen', head: 'frozen' } },
  ]), (e: unknown) => {
    assert.ok(e instanceof ProgressiveConfigError);
    assert.equal(e.problems.length, 3, e.message);
    assert.match(e.message, /phase #1 'grow': grows the rack to 4 stacks, past the configured target_stacks 3/);
    assert.match(e.message, /phase #2 'shrink': has 2 stacks, fewer than the 4 before it/);
    assert.match(e.message, /phase #2 'shrink': the freeze policy .* freezes everything/);
    return true;
  });
  ok.validatePlan([{ stacks: 1 }, { stacks: 2 }, { stacks: 3, freeze: 'none' }]);
  m.dispose();
  bb.dispose();
});

test('memory and compute report per phase', () => {
  const m = tinyLlama(1, 3);
  const b = new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'frozen_trunk', stackLora: { strategy: { kind: 'constant', rank: 2, alpha: 2 }, targets: ['q'] } });
  b.grow();
  b.grow();
  const r = b.report({ seqLen: 8, optimizer: 'adamw', cachedPrefixStacks: 2 });
  const trainable = m.parameters().filter((t) => t.requiresGrad).reduce((a, t) => a + t.size, 0);
  assert.equal(r.params.total, m.numParameters());
  assert.equal(r.params.trainable, trainable);
  assert.equal(r.params.frozen, r.params.total - trainable);
  assert.equal(r.params.adapters, 3 * (2 * 16 + 16 * 2));
  assert.equal(r.params.adaptersTrainable, 2 * 16 + 16 * 2);
  assert.equal(r.bytes.weights, m.numBytes());
  assert.equal(r.bytes.grads, trainable * 4);
  assert.equal(r.bytes.optimizerState, 2 * trainable * 4);
  assert.deepEqual(r.perStack.map((s) => [s.role, s.frozen]), [['trunk', true], ['trunk', true], ['new', false]]);
  // Forward FLOPs by formula: per block 2·(matrix params) + 4·S_eff·d (causal, S = 8 → 4.5);
  // head 2·V·d.
  const d = 16, ff = 24, kv = 8, lora = 2 * 16 + 16 * 2;
  const block = 2 * (d * d * 2 + d * kv * 2 + 3 * d * ff + lora) + 4 * 4.5 * d;
  assert.equal(r.flopsPerToken.forward, 3 * block + 2 * 40 * d);
  assert.ok(r.flopsPerToken.forwardCached < r.flopsPerToken.forward);
  assert.equal(r.flopsPerToken.forward - r.flopsPerToken.forwardCached, 2 * block);
  // Frozen trunk: backward reaches only the new stack and the head.
  b.setFreezePolicy('none');
  const full = b.report({ seqLen: 8 });
  assert.ok(full.flopsPerToken.backward > r.flopsPerToken.backward * 2, `${full.flopsPerToken.backward} vs ${r.flopsPerToken.backward}`);
  assert.equal(full.bytes.optimizerState, 2 * full.bytes.grads);
  m.dispose();
});

test('getState + replay rebuild the same structure; with the state dict the same function', () => {
  const x = idsOf(1, 5, 2);
  const opts = { targetStacks: 3, freeze: 'frozen_trunk' as const, seed: 3 };
  const m = tinyLlama(1, 1);
  const b = new ProgressiveRackBuilder(m, opts);
  b.grow({ t: 0.2 });
  b.grow({ t: 0.5, growth: { kind: 'copy_top' } });
  const sd = new Map([...m.stateDict()].map(([k, t]) => [k, E.clone(t)]));
  const m2 = tinyLlama(1, 1);
  const b2 = new ProgressiveRackBuilder(m2, opts);
  b2.replay(b.getState());
  m2.loadStateDict(sd);
  b2.applyFreeze();
  assert.equal(maxAbsDiff(logitsOf(m2, x), logitsOf(m, x)), 0);
  assert.deepEqual(b2.toSpec(), b.toSpec());
  m.dispose();
  m2.dispose();
});

test('adapters-only quantized trunk (nf4) through the quantizeTrunk hook', async (t) => {
  const path = '../../../src/nn/quantized-linear.js';
  const q = await import(path).catch(() => null) as { quantizeTrunk?: (s: unknown, f: string) => unknown } | null;
  if (!q?.quantizeTrunk) { t.skip('the model library has no quantizeTrunk yet'); return; }
  const m = tinyLlama(1, 12);
  const fp32Bytes = (() => { const x = tinyLlama(3, 12); const n = x.numBytes(); x.dispose(); return n; })();
  const b = new ProgressiveRackBuilder(m, {
    targetStacks: 3, freeze: 'adapters_only_trunk', trunkWeightFormat: 'nf4', quantizeTrunk: (s, f) => { q.quantizeTrunk!(s, f); },
    progressiveLora: { rank: 2, alpha: 2, targets: ['q', 'v', 'down'] },
  });
  b.grow();
  b.grow();
  assert.deepEqual(b.toSpec().stacks.map((s) => s.weight_format), ['nf4', 'nf4', 'fp32']);
  for (const [n, p] of m.namedParameters()) {
    if (n.startsWith('rack.stacks.0.') || n.startsWith('rack.stacks.1.')) assert.equal(p.requiresGrad, /lora_[AB]$/.test(n), n);
  }
  const groups = b.parameterGroups();
  assert.ok(groups.some((g) => g.name === 'progressive_lora' && g.params.length === 12));
  const r = b.report({ seqLen: 8 });
  assert.ok(r.bytes.weights < fp32Bytes, `quantized trunk ${r.bytes.weights} B vs fp32 ${fp32Bytes} B`);
  const opt = new AdamW(groups, { lr: 1e-2 });
  const x = idsOf(2, 8, 4);
  const loss = E.tidy(() => { const l = m.loss(m.forward(x).logits, x); l.backward(); opt.step(); return l.item(); });
  assert.ok(Number.isFinite(loss));
  opt.zeroGrad();
  opt.dispose();
  m.dispose();
});

test('one growth step adding several stacks makes them all new; before any growth every stack is new', () => {
  const x = idsOf(2, 5, 4);
  const opts = {
    targetStacks: 4, freeze: 'adapters_only_trunk' as const, seed: 7,
    stackLora: { strategy: { kind: 'growing' as const, rank: 2, step: 1 }, targets: ['k' as const] },
    progressiveLora: { rank: 3, alpha: 3, targets: ['q' as const] },
  };
  const m = tinyLlama(2, 3);
  const b = new ProgressiveRackBuilder(m, opts);
  const rankOf = (i: number, p: 'q' | 'k') => (m.rack.stacks.at(i).blocks.at(0).attn.getModule(p) as Linear).lora?.rank;
  // Phase 1: no trunk yet — both stacks train (embedding and head too), each with its stack LoRA.
  assert.deepEqual([b.newStackIndices, b.trunkIndices, b.hasTrunk], [[0, 1], [], false]);
  assert.ok(m.parameters().every((t) => t.requiresGrad));
  assert.deepEqual([rankOf(0, 'k'), rankOf(1, 'k'), rankOf(0, 'q'), rankOf(1, 'q')], [2, 3, undefined, undefined]);
  // Phase 2: two stacks in one step. Both are new (they train fully); the first two are the trunk.
  const events = b.growTo(4, { t: 0.5 });
  assert.deepEqual(events.map((e) => [e.stacks, e.finalIndex, e.stackLora!.rank, e.batch]), [[3, 2, 4, 0], [4, 3, 5, 0]]);
  assert.deepEqual([b.newStackIndices, b.trunkIndices, b.newStackIndex], [[2, 3], [0, 1], 3]);
  for (const i of [0, 1]) for (const [n, t] of m.rack.stacks.at(i).namedParameters()) assert.equal(t.requiresGrad, /lora_[AB]$/.test(n), `stack ${i} ${n}`);
  for (const i of [2, 3]) assert.ok(m.rack.stacks.at(i).parameters().every((t) => t.requiresGrad), `stack ${i} trains`);
  assert.deepEqual([0, 1, 2, 3].map((i) => rankOf(i, 'q')), [3, 3, undefined, undefined], 'progressive LoRA on the trunk only');
  assert.deepEqual(b.report({ seqLen: 4 }).perStack.map((s) => s.role), ['trunk', 'trunk', 'new', 'new']);
  const groups = b.parameterGroups();
  const named = new Map(m.namedParameters().map(([n, t]) => [t, n]));
  const stacksIn = (g: string) => [...new Set(groups.find((x) => x.name === g)!.params.map((t) => /^rack\.stacks\.(\d+)\./.exec(named.get(t)!)?.[1]))].sort();
  assert.deepEqual(stacksIn('new_stack'), ['2', '3']);
  assert.deepEqual(stacksIn('progressive_lora'), ['0', '1']);
  // Replay rebuilds the same step (the same stacks new together), and with the weights the same function.
  const sd = new Map([...m.stateDict()].map(([k, t]) => [k, E.clone(t)]));
  const m2 = tinyLlama(2, 3);
  const b2 = new ProgressiveRackBuilder(m2, opts);
  b2.replay(b.getState());
  m2.loadStateDict(sd);
  assert.deepEqual([b2.newStackIndices, b2.toSpec()], [[2, 3], b.toSpec()]);
  assert.equal(maxAbsDiff(logitsOf(m2, x), logitsOf(m, x)), 0);
  m.dispose();
  m2.dispose();
});

test('copy_top over a step of several stacks stacks the model on itself (append and prepend)', () => {
  for (const direction of ['append', 'prepend'] as const) {
    const m = tinyLlama(2, 5);
    const before = m.rack.allBlocks().map((blk) => blk.parameters().map((t) => Array.from(t.toArray())));
    new ProgressiveRackBuilder(m, { direction, targetStacks: 4, growth: { kind: 'copy_top' }, freeze: 'none' }).growTo(4);
    const after = m.rack.allBlocks().map((blk) => blk.parameters().map((t) => Array.from(t.toArray())));
    // append: [b0, b1, b0, b1]; prepend: [b0, b1, b0, b1] too (the copies go in front, in order).
    assert.deepEqual(after, [...before, ...before], direction);
    m.dispose();
  }
  // copy_middle of a step: the middle k·n blocks of the rack as it was, in order.
  const m = tinyLlama(4, 6);
  const before = m.rack.allBlocks().map((blk) => blk.ffn.up.weight.toArray());
  new ProgressiveRackBuilder(m, { targetStacks: 6, growth: { kind: 'copy_middle' }, freeze: 'none' }).growTo(6);
  const after = m.rack.allBlocks().map((blk) => blk.ffn.up.weight.toArray());
  assert.deepEqual(after.slice(4), [before[1], before[2]]);
  m.dispose();
});

test('a non-fp32 trunk format is frozen storage: fp16/bf16 trunks cannot train directly; plans know when a trunk exists', () => {
  const m = tinyLlama(2);
  const hook = () => {};
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'none', trunkWeightFormat: 'fp16', quantizeTrunk: hook }), /a fp16 trunk cannot be trained directly/);
  throwsWith(() => new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'adapters_only_trunk', trunkWeightFormat: 'bf16', quantizeTrunk: hook }), /a frozen \(bf16\) trunk is asked to train without adapters/);
  // A 2-stack model before growth has no trunk: a policy that trains only the trunk trains nothing.
  const b = new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'frozen_trunk' });
  const onlyTrunk = { new_stack: 'frozen' as const, trunk: 'train' as const, embedding: 'frozen' as const, head: 'frozen' as const };
  throwsWith(() => b.validatePlan([{ name: 'first', stacks: 2, freeze: onlyTrunk }]), /phase #0 'first': the freeze policy .* freezes everything/);
  b.validatePlan([{ stacks: 2 }, { stacks: 3, freeze: onlyTrunk }]);
  m.dispose();
});
