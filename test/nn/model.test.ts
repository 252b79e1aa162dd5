import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import {
  applyLora, bert, bertConfig, formatModelTree, gpt2, inspectModel, isLoraParamName, llama, llamaConfig, loraParameters,
  mergeLora, Model, Rack, Stack, unmergeLora, stackSizes,
} from '../../src/nn/index.js';
import { validateRackSpec } from '../../src/framework/specs/rack.js';
import { validateEmbeddingSpec } from '../../src/framework/specs/embedding.js';
import { validateHeadSpec } from '../../src/framework/specs/head.js';
import { checkCompatibility } from '../../src/framework/specs/compatibility.js';
import { assertClose, assertEqualArrays, assertThrowsWith, ids, ints, maxAbsDiff, slicePositions } from './helpers.js';

test('presets build K stacks × M blocks with the expected parameter names', () => {
  const m = llama({ vocabSize: 50, dModel: 16, nLayers: 4, nHeads: 4, nKvHeads: 2, dFF: 24, stacks: 2, seed: 1 });
  assert.equal(m.rack.numStacks, 2);
  assert.equal(m.rack.numBlocks, 4);
  const names = m.namedParameters().map(([n]) => n);
  assert.ok(names.includes('rack.stacks.1.blocks.1.attn.k.weight'));
  assert.ok(names.includes('rack.stacks.0.blocks.0.ffn.gate.weight'));
  assert.ok(names.includes('head.weight') && names.includes('head.final_norm.weight'));
  assert.ok(!names.some((n) => n.endsWith('.bias')), 'llama has no biases');
  assert.deepEqual(m.getParameter('rack.stacks.0.blocks.0.attn.k.weight').shape, [8, 16]);
  // Parameter count by formula.
  const d = 16, V = 50, ff = 24, kv = 8;
  const perBlock = d * d * 2 + d * kv * 2 + 3 * d * ff + 2 * d;
  assert.equal(m.numParameters(), V * d * 2 + 4 * perBlock + d);
  const g = gpt2({ vocabSize: 50, dModel: 16, nLayers: 3, nHeads: 2, maxPositions: 32, stacks: [1, 2], seed: 1 });
  assert.deepEqual(g.rack.stacks.toArray().map((s) => s.length), [1, 2]);
  const b = bert({ vocabSize: 50, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, maxPositions: 32, seed: 1 });
  assert.ok(b.namedParameters().some(([n]) => n === 'embedding.token_type.weight'));
  assertThrowsWith(() => stackSizes(5, 2), /5 layers cannot be split into 2 equal stacks/);
  assertThrowsWith(() => stackSizes(5, [2, 2]), /sum to 4, expected 5/);
  assertThrowsWith(() => llama({ vocabSize: 0, dModel: 16, nLayers: 1, nHeads: 2 }), /vocabSize must be a positive integer, found 0/);
  for (const x of [m, g, b]) x.dispose();
});

test('forward: logits shape, hidden states per block, final norm on the last (HF convention)', () => {
  const m = gpt2({ vocabSize: 40, dModel: 16, nLayers: 3, nHeads: 2, maxPositions: 16, stacks: 3, seed: 2 });
  const x = ids(2, 5, 40, 1);
  const out = m.forward(x, { outputHiddenStates: true });
  assert.deepEqual(out.logits.shape, [2, 5, 40]);
  assert.equal(out.hiddenStates!.length, 4);
  // Last hidden state = ln_f(block output); logits = last hidden state · wteᵀ.
  const want = E.linear(out.hiddenStates![3], m.embedding.token.weight);
  assertClose(out.logits.toArray(), want.toArray(), 1e-5);
  assert.equal(m.forward(x).hiddenStates, undefined);
  assertThrowsWith(() => m.forward(ids(1, 17, 40, 1)), /positions 0\.\.16 exceed the learned position table \(max_positions 16\)/);
  assertThrowsWith(() => m.forward(E.zeros([2, 3])), /ids must be int32 \[B, S\]/);
  assertThrowsWith(() => m.forward(x, { attentionMask: ints([1, 1], [1, 2]) }), /attentionMask .* must be \[2, 5\]/);
  m.dispose();
});

test('causal presets: logits at t do not depend on tokens after t', () => {
  for (const m of [
    llama({ vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 1, dFF: 20, seed: 3 }),
    gpt2({ vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 2, maxPositions: 16, seed: 3 }),
  ]) {
    const a = ints([1, 2, 3, 4, 5, 6], [1, 6]);
    const b = ints([1, 2, 3, 9, 9, 9], [1, 6]);
    const la = m.forward(a).logits, lb = m.forward(b).logits;
    assertClose(slicePositions(la, 0, 0, 3), slicePositions(lb, 0, 0, 3), 1e-6, m.config.family);
    assert.ok(maxAbsDiff(slicePositions(la, 0, 3, 6), slicePositions(lb, 0, 3, 6)) > 0);
    m.dispose();
  }
});

test('bidirectional + padding mask: padded tokens do not affect real positions; mode switch', () => {
  const m = bert({ vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, maxPositions: 16, seed: 4 });
  const mask = ints([1, 1, 1, 1, 0, 0], [1, 6]);
  const la = m.forward(ints([5, 6, 7, 8, 0, 0], [1, 6]), { attentionMask: mask }).logits;
  const lb = m.forward(ints([5, 6, 7, 8, 3, 9], [1, 6]), { attentionMask: mask }).logits;
  assertClose(slicePositions(la, 0, 0, 4), slicePositions(lb, 0, 0, 4), 1e-5, 'real positions');
  // Without the mask the padding leaks in; bidirectional means earlier positions see later ones.
  const lc = m.forward(ints([5, 6, 7, 8, 3, 9], [1, 6])).logits;
  assert.ok(maxAbsDiff(slicePositions(lc, 0, 0, 4), slicePositions(lb, 0, 0, 4)) > 1e-6);
  m.setAttentionMode('causal');
  assert.equal(m.rack.toSpec().stacks[0].attention, 'causal');
  const ld = m.forward(ints([5, 6, 7, 8, 3, 9], [1, 6]), { attentionMask: mask }).logits;
  const le = m.forward(ints([5, 6, 7, 1, 3, 9], [1, 6]), { attentionMask: mask }).logits;
  assertClose(slicePositions(ld, 0, 0, 3), slicePositions(le, 0, 0, 3), 1e-5, 'causal + padding');
  // Token types change the result.
  m.setAttentionMode('bidirectional');
  const tt = m.forward(ints([5, 6, 7, 8, 0, 0], [1, 6]), { attentionMask: mask, tokenTypeIds: ints([0, 0, 1, 1, 1, 1], [1, 6]) }).logits;
  assert.ok(maxAbsDiff(tt.toArray(), la.toArray()) > 1e-6);
  const t0 = m.forward(ints([5, 6, 7, 8, 0, 0], [1, 6]), { attentionMask: mask, tokenTypeIds: ints([0, 0, 0, 0, 0, 0], [1, 6]) }).logits;
  assertEqualArrays(t0.toArray(), la.toArray(), 'absent token types = type 0');
  m.dispose();
});

test('loss: causal shift for LM heads, none for MLM; gradients reach every trainable parameter', () => {
  const m = llama({ vocabSize: 20, dModel: 8, nLayers: 1, nHeads: 2, dFF: 12, seed: 5 });
  const x = ids(2, 4, 20, 2);
  const { logits } = m.forward(x);
  const loss = m.loss(logits, x);
  // Manual shifted CE.
  const lp = E.logSoftmax(logits, -1).toArray(), xs = x.toArray();
  let s = 0;
  for (let b = 0; b < 2; b++) for (let t = 0; t < 3; t++) s -= lp[(b * 4 + t) * 20 + xs[b * 4 + t + 1]];
  assert.ok(Math.abs(loss.item() - s / 6) < 1e-5);
  loss.backward();
  for (const [n, t] of m.namedParameters()) assert.ok(t.grad !== null, `grad of ${n}`);
  m.zeroGrad();
  assert.ok(m.parameters().every((t) => t.grad === null));
  const unshifted = m.loss(logits, x, { shift: false }).item();
  assert.ok(Math.abs(unshifted - loss.item()) > 1e-6);
  m.dispose();
});

test('classification head: cls or masked-mean pooling, [B, nClasses] logits', () => {
  const m = bert({ vocabSize: 30, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, maxPositions: 16, head: 'classification', nClasses: 3, seed: 6 });
  assert.deepEqual(m.head.getSpec(), { kind: 'classification', d_model: 16, n_classes: 3, pooling: 'cls', bias: true });
  const x = ids(2, 5, 30, 3);
  const { logits } = m.forward(x);
  assert.deepEqual(logits.shape, [2, 3]);
  const loss = m.loss(logits, ints([0, 2], [2]));
  loss.backward();
  assert.ok(m.getParameter('head.pooler.weight').grad !== null);
  m.dispose();
  const cfg = bertConfig({ vocabSize: 30, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, maxPositions: 16, head: 'classification', nClasses: 2 });
  if (cfg.head.kind === 'classification') { cfg.head.pooling = 'mean'; cfg.head.pooler = false; }
  const mm = Model.fromConfig(cfg, { seed: 1 });
  const mask = ints([1, 1, 1, 0, 0, 1, 1, 1, 1, 1], [2, 5]);
  const l1 = mm.forward(ints([1, 2, 3, 4, 5, 1, 2, 3, 4, 5], [2, 5]), { attentionMask: mask }).logits;
  const l2 = mm.forward(ints([1, 2, 3, 9, 9, 1, 2, 3, 4, 5], [2, 5]), { attentionMask: mask }).logits;
  assertClose(l1.toArray(), l2.toArray(), 1e-5, 'mean pooling skips padding');
  mm.dispose();
});

test('specs: Rack.toSpec, embedding and head getSpec validate and are compatible', () => {
  const m = llama({ vocabSize: 64, dModel: 32, nLayers: 4, nHeads: 4, nKvHeads: 2, dFF: 48, stacks: 2, ropeTheta: 500000, seed: 7 });
  const rack = m.rack.toSpec();
  assert.deepEqual(validateRackSpec(rack), rack);
  assert.deepEqual(rack.stacks[0], {
    n_blocks: 2, n_heads: 4, n_kv_heads: 2, d_ff: 48, attention: 'causal', norm: 'rmsnorm', norm_position: 'pre',
    ffn: 'swiglu', positional: 'rope', rope_theta: 500000, weight_format: 'fp32', frozen: false,
  });
  const emb = m.embedding.getSpec();
  assert.deepEqual(validateEmbeddingSpec(emb), emb);
  assert.deepEqual(emb, { vocab_size: 64, d_model: 32, positional: 'rope', type_vocab_size: 0 });
  const head = m.head.getSpec();
  assert.deepEqual(validateHeadSpec(head), head);
  assert.deepEqual(head, { kind: 'lm', d_model: 32, vocab_size: 64, tied: false, bias: false });
  const batch = { batch_size: 2, seq_len: 16, vocab_size: 64, objective: 'clm' as const };
  assert.deepEqual(checkCompatibility({ batch, embedding: emb, rack, head }), []);
  m.rack.stacks.at(0).freeze();
  applyLora(m.rack.stacks.at(1), { rank: 4, alpha: 8, targets: ['q', 'v'], seed: 1, freezeOthers: false });
  assert.equal(m.rack.toSpec().stacks[1].frozen, false, 'only the adapted weights were frozen');
  applyLora(m.rack.stacks.at(1), { rank: 4, alpha: 8, targets: ['q', 'v'], seed: 1 });
  const r2 = m.rack.toSpec();
  assert.equal(r2.stacks[0].frozen, true);
  assert.equal(r2.stacks[1].frozen, true, 'a stack whose base is frozen is frozen, adapters train on top');
  assert.deepEqual(r2.stacks[1].lora, { rank: 4, alpha: 8, targets: ['q', 'v'] });
  validateRackSpec(r2);
  const g = gpt2({ vocabSize: 64, dModel: 32, nLayers: 1, nHeads: 4, maxPositions: 64, seed: 1 });
  assert.deepEqual(g.embedding.getSpec(), { vocab_size: 64, d_model: 32, positional: 'learned', max_positions: 64, type_vocab_size: 0 });
  assert.deepEqual(g.head.getSpec(), { kind: 'lm', d_model: 32, vocab_size: 64, tied: true, bias: false });
  const b = bert({ vocabSize: 64, dModel: 32, nLayers: 1, nHeads: 4, maxPositions: 64, seed: 1 });
  assert.deepEqual(b.head.getSpec(), { kind: 'mlm', d_model: 32, vocab_size: 64, tied: true, bias: true });
  assert.equal(b.rack.toSpec().stacks[0].norm_position, 'post');
  for (const x of [m, g, b]) x.dispose();
});

test('applyLora by targets on a subtree: only adapters train; merge/unmerge through the model', () => {
  const m = llama({ vocabSize: 30, dModel: 16, nLayers: 4, nHeads: 4, nKvHeads: 2, dFF: 20, stacks: 2, seed: 8 });
  const x = ids(1, 6, 30, 4);
  const before = m.forward(x).logits.toArray();
  const paths = applyLora(m.rack.stacks.at(1), { rank: 2, alpha: 4, targets: ['q', 'v', 'gate', 'down'], seed: 3 });
  assert.equal(paths.length, 8);
  assert.deepEqual(paths.slice(0, 4), ['blocks.0.attn.q', 'blocks.0.attn.v', 'blocks.0.ffn.gate', 'blocks.0.ffn.down']);
  assertEqualArrays(m.forward(x).logits.toArray(), before, 'no-op at init');
  // freezeOthers applies to the subtree passed in.
  assert.ok(m.rack.stacks.at(1).trainableParameters().every(([n]) => isLoraParamName(n)));
  assert.equal(loraParameters(m).length, 16);
  m.freeze();
  applyLora(m, { rank: 2, alpha: 4, targets: ['o'], seed: 4, init: 'random' });
  assert.ok(m.trainableParameters().every(([n]) => isLoraParamName(n)));
  assert.equal(m.trainableParameters().length, 16 + 8, 'every adapter trains, everything else is frozen (PEFT semantics)');
  const y = m.forward(x).logits.toArray();
  mergeLora(m);
  assertClose(m.forward(x).logits.toArray(), y, 1e-5, 'merged');
  unmergeLora(m);
  assertEqualArrays(m.forward(x).logits.toArray(), y, 'unmerged');
  assertThrowsWith(() => applyLora(gpt2({ vocabSize: 30, dModel: 16, nLayers: 1, nHeads: 2, maxPositions: 8 }), { rank: 2, alpha: 2, targets: ['gate'], seed: 1 }), /target\(s\) gate exist in no block/);
  assertThrowsWith(() => applyLora(m, { rank: 2, alpha: 2, targets: ['x' as 'q'], seed: 1 }), /unknown target 'x'/);
  m.dispose();
});

test('rack growth keeps weights: append and prepend stacks', () => {
  const cfg = llamaConfig({ vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 2, dFF: 20, stacks: 2 });
  const m = Model.fromConfig(cfg, { seed: 9 });
  const w = Array.from(m.getParameter('rack.stacks.1.blocks.0.attn.q.weight').toArray());
  const extra = Stack.create(16, cfg.stacks[0], { seed: 77 });
  m.rack.appendStack(extra);
  assert.equal(m.rack.numStacks, 3);
  m.rack.prependStack(Stack.create(16, cfg.stacks[0], { seed: 78 }));
  assertEqualArrays(m.getParameter('rack.stacks.2.blocks.0.attn.q.weight').toArray(), w, 'renumbered, same tensor');
  assert.equal(m.rack.toSpec().n_stacks, 4);
  assertThrowsWith(() => m.rack.appendStack(Stack.create(8, { ...cfg.stacks[0] }, { seed: 1 })), /d_model 8 differs from the rack's 16/);
  assert.ok(m.rack instanceof Rack);
  m.dispose();
});

test('MLA and linear-attention blocks work inside a preset', () => {
  for (const kind of ['mla', 'linear'] as const) {
    const m = llama({ vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 4, dFF: 20, seed: 10, attentionKind: kind, mla: kind === 'mla' ? { kvRank: 6, ropeDim: 2 } : undefined });
    const x = ids(2, 5, 30, 1);
    const { logits } = m.forward(x);
    const loss = m.loss(logits, x);
    assert.ok(Number.isFinite(loss.item()));
    loss.backward();
    assert.ok(m.parameters().every((t) => t.grad !== null));
    m.dispose();
  }
});

test('inspectModel: tree with counts, bytes, dtypes and aliases', () => {
  const m = gpt2({ vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 2, maxPositions: 8, stacks: 2, seed: 1 });
  m.rack.stacks.at(0).freeze();
  const info = inspectModel(m);
  assert.equal(info.numParameters, m.numParameters());
  assert.equal(info.bytes, m.numBytes());
  assert.deepEqual(info.dtypes, { float32: m.numParameters() });
  const rack = info.children.find((c) => c.path === 'rack')!;
  assert.deepEqual(rack.attributes, { stacks: 2, blocks: 2 });
  const s0 = rack.children[0].children[0];
  assert.equal(s0.path, 'rack.stacks.0');
  assert.equal(s0.frozen, true);
  assert.equal(s0.trainableParameters, 0);
  const head = info.children.find((c) => c.path === 'head')!;
  assert.equal(head.parameters.find((p) => p.name === 'head.weight')!.aliasOf, 'embedding.token.weight');
  const text = formatModelTree(info, { parameters: true });
  assert.match(text, /stacks Module|0 Stack/);
  assert.match(text, /frozen/);
  m.dispose();
});

test('dropout: seeded per forward call, off in eval mode', () => {
  const m = gpt2({ vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 2, maxPositions: 16, seed: 11, dropout: 0.3 });
  const x = ids(2, 6, 30, 1);
  const a = m.forward(x, { seed: 5 }).logits.toArray();
  assert.deepEqual(Array.from(m.forward(x, { seed: 5 }).logits.toArray()), Array.from(a), 'same call seed → same masks');
  assert.ok(maxAbsDiff(m.forward(x, { seed: 6 }).logits.toArray(), a) > 1e-6, 'other seed → other masks');
  assert.ok(maxAbsDiff(m.forward(x).logits.toArray(), m.forward(x).logits.toArray()) > 1e-6, 'no call seed → a fresh mask per call');
  m.eval();
  const e1 = m.forward(x, { seed: 5 }).logits.toArray();
  assert.deepEqual(Array.from(m.forward(x, { seed: 6 }).logits.toArray()), Array.from(e1), 'eval: no dropout');
  m.dispose();
});
