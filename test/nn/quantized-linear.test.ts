import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import type { QuantFormat } from '../../src/engine/index.js';
import { applyLora, formatModelTree, gpt2, inspectModel, isLoraParamName, Linear, llama, ModuleList } from '../../src/nn/index.js';
import {
  applyQLora, isQuantParamName, QuantizedLinear, representedParameters, quantizationSummary, quantizeModule, quantizeTrunk, replaceModule,
  SUPPORTED_QUANT_FORMATS, validateQuantFormat, weightFormatOf,
} from '../../src/nn/quantized-linear.js';
import { AdamW } from '../../src/optim/adamw.js';
import { assertClose, assertEqualArrays, assertThrowsWith, hasNative, ids, maxAbsDiff, noNativeReason } from './helpers.js';

const BACKENDS = E.availableBackends();
const CASES: [QuantFormat, boolean][] = [['nf4', false], ['nf4', true], ['int8', false], ['fp16', false], ['bf16', false]];

test('QuantizedLinear: y = dequant(W) x + b for every format; packed parameters are frozen for good', () => {
  for (const backend of BACKENDS) {
    for (const [f, dq] of CASES) {
      E.tidy(() => {
        const lin = new Linear(70, 33, { seed: 1, backend, biasInit: { kind: 'normal', std: 1 } });
        lin.freeze();
        const q = QuantizedLinear.fromLinear(lin, f, { doubleQuant: dq });
        assert.equal(q.format, f);
        assert.equal(q.doubleQuant, dq);
        assert.equal(q.bias, lin.bias, 'the bias moves over');
        const x = E.randn([2, 4, 70], { seed: 2, backend });
        const expected = E.linear(x, q.dequantizedWeight(), q.bias);
        assertClose(q.forward(x).toArray(), expected.toArray(), 2e-5, `${backend} ${f}`);
        const names = q.namedParameters().map(([n]) => n);
        assert.ok(names.includes('weight_packed') && names.includes('bias'));
        assert.ok(names.every((n) => n === 'bias' || isQuantParamName(n)));
        assert.equal(q.numParameters(), 33 * 70 + 33, 'counts represented weights');
        assert.equal(q.numParameters({ trainableOnly: true }), 0);
        q.unfreeze();
        for (const [n, t] of q.namedParameters()) assert.equal(t.requiresGrad, n === 'bias', `${n} after unfreeze`);
        q.freeze();
        assert.ok(q.isFrozen);
        lin.weight.dispose();
        q.dispose();
      });
    }
  }
});

test('QLoRA on one layer: y = dequant(W)x + b + (α/r)·B A x; only A and B get gradients', () => {
  for (const backend of BACKENDS) {
    E.tidy(() => {
      const lin = new Linear(64, 48, { seed: 3, backend });
      const q = QuantizedLinear.fromLinear(lin, 'nf4', { doubleQuant: true });
      lin.weight.dispose();
      q.addLora({ rank: 4, alpha: 8, seed: 5, init: 'random' });
      assert.equal(q.lora!.scale, 2);
      assert.deepEqual(q.trainableParameters().map(([n]) => n), ['lora_A', 'lora_B']);
      const x = E.randn([5, 64], { seed: 6, backend });
      const y = q.forward(x);
      const manual = E.add(E.linear(x, q.dequantizedWeight(), q.bias), E.mulScalar(E.linear(E.linear(x, q.loraA!), q.loraB!), 2));
      assertClose(y.toArray(), manual.toArray(), 1e-5, `${backend} qlora forward`);
      E.sumToShape(E.square(y), []).backward();
      for (const [n, t] of q.namedParameters()) {
        if (isLoraParamName(n)) assert.ok(t.grad && maxAbsDiff(t.grad.toArray(), new Float32Array(t.size)) > 0, `${n} has a gradient`);
        else assert.equal(t.grad, null, `${n} gets no gradient`);
      }
      assertThrowsWith(() => q.merge(), /cannot be merged into quantized storage/);
      q.removeLora();
      assert.equal(q.loraA, null);
      assertThrowsWith(() => q.addLora({ rank: 0, alpha: 1, seed: 1 }), /rank must be a positive integer/);
      q.zeroGrad();
      q.dispose();
    });
  }
});

function trunkModel(backend?: string) {
  // 4 stacks of 1 block; d = 64 so that blocks of 64 and of 256 scales are realistic.
  return llama({ vocabSize: 48, dModel: 64, nLayers: 4, nHeads: 4, nKvHeads: 2, dFF: 128, stacks: 4, seed: 7, backend });
}

test('quantizeModule: an NF4+DQ trunk under a trainable last stack trains end to end; ~4.127 bits per weight', () => {
  const m = trunkModel();
  const x = ids(2, 6, 48, 1);
  const labels = ids(2, 6, 48, 2);
  const ref = E.tidy(() => m.forward(x).logits.toArray());
  const fp32Bytes = m.numBytes();
  const fp32Count = m.numParameters();
  m.freeze();
  m.rack.stacks.at(3).unfreeze();
  const res = quantizeModule(m, 'nf4', { doubleQuant: true });
  assert.equal(res.quantized.length, 3 * 7, 'q, k, v, o, gate, up, down of the 3 frozen stacks');
  assert.ok(res.quantized.every((p) => /^rack\.stacks\.[012]\./.test(p)));
  assert.ok(res.skipped.every((s) => s.path.startsWith('rack.stacks.3.') && /trainable/.test(s.reason)));
  assert.ok(m.getModule('rack.stacks.0.blocks.0.attn.q') instanceof QuantizedLinear);
  assert.ok(m.rack.stacks.at(0).blocks.at(0).attn instanceof Object);
  assert.ok(m.getModule('rack.stacks.3.blocks.0.ffn.up') instanceof Linear);
  // The parent's fields were rebound too: forward goes through the quantized layers.
  const ffn = m.rack.stacks.at(1).blocks.at(0).ffn as unknown as { up: unknown; gate: unknown };
  assert.ok(ffn.up instanceof QuantizedLinear && ffn.gate instanceof QuantizedLinear);
  const sum = quantizationSummary(m);
  assert.deepEqual(sum.layers, { 'nf4+dq': 21 });
  assert.ok(Math.abs(sum.bitsPerParameter - 4.127) / 4.127 < 0.01, `bits/param over the quantized trunk ${sum.bitsPerParameter}`);
  assert.ok(m.numBytes() < fp32Bytes, 'the model holds fewer bytes');
  assert.equal(m.parameters().reduce((n, t) => n + representedParameters(t), 0), fp32Count, 'represented weights add up to the fp32 count');
  assert.equal(res.bytesBefore, sum.quantizedParameters * 4);
  assert.equal(res.bytesAfter, sum.quantizedBytes);
  // Logits stay close to fp32 (NF4 round-trip noise only).
  const logits = E.tidy(() => m.forward(x).logits.toArray());
  // NF4 costs ~9 % relative RMS error per weight; 21 quantized layers give ~17 % on these logits.
  let se = 0, sr = 0;
  for (let i = 0; i < ref.length; i++) { se += (logits[i] - ref[i]) ** 2; sr += ref[i] ** 2; }
  const relRms = Math.sqrt(se / sr);
  assert.ok(relRms > 0 && relRms < 0.25, `logit relative RMS gap ${relRms}`);
  // One training step: gradients reach the last stack only, AdamW updates it.
  const opt = new AdamW(m.trainableParameters().map(([, t]) => t), { lr: 1e-2 });
  const before = new Map(m.namedParameters().map(([n, t]) => [n, t.toArray()]));
  E.tidy(() => {
    const loss = m.loss(m.forward(x).logits, labels);
    loss.backward();
  });
  for (const [n, t] of m.namedParameters()) {
    if (n.startsWith('rack.stacks.3.')) assert.ok(t.grad, `${n} has a gradient`);
    else assert.equal(t.grad, null, `${n} has no gradient`);
  }
  opt.step();
  for (const [n, t] of m.namedParameters()) {
    const changed = maxAbsDiff(t.toArray(), before.get(n)!) > 0;
    assert.equal(changed, n.startsWith('rack.stacks.3.'), `${n} ${changed ? 'changed' : 'unchanged'}`);
  }
  m.zeroGrad();
  // inspect shows the packed tensors with their real bytes.
  const info = inspectModel(m);
  assert.ok(formatModelTree(info).includes('QuantizedLinear'));
  const find = (node: typeof info, path: string): typeof info | undefined => node.path === path ? node : node.children.map((c) => find(c, path)).find((c) => c);
  const qInfo = find(info, 'rack.stacks.0.blocks.0.attn.q')!;
  const qLayer = m.getModule('rack.stacks.0.blocks.0.attn.q') as QuantizedLinear;
  assert.equal(qInfo.type, 'QuantizedLinear');
  assert.equal(qInfo.bytes, qLayer.qweight.storageBytes());
  assert.ok(qInfo.frozen);
  m.dispose();
});

test('quantizeModule: LoRA adapters attached before quantizing carry over (QLoRA)', () => {
  const m = trunkModel();
  const x = ids(1, 5, 48, 3);
  applyLora(m, { rank: 2, alpha: 4, targets: ['q', 'v', 'down'], seed: 9, init: 'random' });
  const adapters = new Map(m.namedParameters().filter(([n]) => isLoraParamName(n)));
  const res = quantizeModule(m, 'int8');
  assert.equal(res.quantized.length, 4 * 7, 'every base is frozen by applyLora: all of them quantize');
  const q = m.getModule('rack.stacks.2.blocks.0.attn.q') as QuantizedLinear;
  assert.equal(q.loraA, adapters.get('rack.stacks.2.blocks.0.attn.q.lora_A'), 'same adapter tensors');
  assert.equal(m.trainableParameters().length, adapters.size);
  assert.ok(m.trainableParameters().every(([n]) => isLoraParamName(n)));
  E.tidy(() => {
    const loss = E.sumToShape(E.square(m.forward(x).logits), []);
    loss.backward();
  });
  for (const [n, t] of m.namedParameters()) assert.equal(t.grad !== null, isLoraParamName(n), n);
  m.zeroGrad();
  m.dispose();
});

test('applyQLora: adapters on quantized layers by target; only they train', () => {
  const m = trunkModel();
  m.freeze();
  quantizeModule(m, 'nf4', { filter: (p) => p.startsWith('rack.stacks.0.') || p.startsWith('rack.stacks.1.') });
  const paths = applyQLora(m, { rank: 2, alpha: 2, targets: ['q', 'v', 'up'], seed: 1 });
  assert.deepEqual(paths, ['rack.stacks.0.blocks.0.attn.q', 'rack.stacks.0.blocks.0.attn.v', 'rack.stacks.0.blocks.0.ffn.up',
    'rack.stacks.1.blocks.0.attn.q', 'rack.stacks.1.blocks.0.attn.v', 'rack.stacks.1.blocks.0.ffn.up']);
  assert.equal(m.trainableParameters().length, 12);
  const x = ids(1, 4, 48, 2);
  E.tidy(() => E.sumToShape(E.square(m.forward(x).logits), []).backward());
  // B starts at zero: A gets no signal yet but B does.
  assert.ok(m.trainableParameters().filter(([n]) => n.endsWith('lora_B')).every(([, t]) => t.grad !== null));
  m.zeroGrad();
  assertThrowsWith(() => applyQLora(m, { rank: 2, alpha: 2, targets: ['nope'], seed: 1 }), /no QuantizedLinear layer named nope/);
  m.dispose();
});

test('quantizeModule: skips tied and trainable weights, honours the filter, refuses bad formats and merged adapters', () => {
  const g = gpt2({ vocabSize: 30, dModel: 64, nLayers: 1, nHeads: 2, maxPositions: 8, seed: 1 });
  g.freeze();
  assertThrowsWith(() => quantizeModule(g, 'fp4'), /quantizeModule: format/, /'fp4' is not implemented/, /supported formats: nf4, int8, fp16, bf16/);
  assertThrowsWith(() => quantizeModule(g, 'int8', { doubleQuant: true }), /doubleQuant applies to nf4 only/);
  assert.ok(g.getModule('rack.stacks.0.blocks.0.attn.q') instanceof Linear, 'nothing changed');
  const res = quantizeModule(g, 'fp16', { filter: (p) => !p.endsWith('.o') });
  assert.deepEqual(res.skipped.map((s) => s.path), ['rack.stacks.0.blocks.0.attn.o']);
  assert.equal(res.quantized.length, 5);
  g.dispose();
  const m = trunkModel();
  assert.equal(quantizeModule(m, 'bf16').quantized.length, 0, 'trainable layers are left alone by default');
  assert.equal(quantizeModule(m, 'bf16', { includeTrainable: true, filter: (p) => p.startsWith('rack.stacks.0.') }).quantized.length, 7);
  applyLora(m.rack.stacks.at(1), { rank: 2, alpha: 2, targets: ['q'], seed: 1 });
  (m.getModule('rack.stacks.1.blocks.0.attn.q') as Linear).merge();
  assertThrowsWith(() => quantizeModule(m, 'nf4'), /'rack\.stacks\.1\.blocks\.0\.attn\.q' has a merged LoRA adapter/);
  // Shared weights (tied) are skipped.
  const lin = new Linear(4, 4, { seed: 1 }).freeze();
  const holder = new (class extends ModuleList<Linear> {})([lin, lin]);
  const r = quantizeModule(holder, 'int8');
  assert.equal(r.quantized.length, 0);
  assert.ok(r.skipped.every((s) => /shared/.test(s.reason)));
  m.dispose();
  assert.deepEqual([...SUPPORTED_QUANT_FORMATS], ['nf4', 'int8', 'fp16', 'bf16']);
  assertThrowsWith(() => validateQuantFormat('nvfp4', 'model.trunk.quant'), /model\.trunk\.quant: quantization format 'nvfp4' is not implemented/);
});

test('replaceModule: ModuleList items and fields are rebound; errors name the path', () => {
  const list = new ModuleList([new Linear(2, 2, { seed: 1 }), new Linear(2, 2, { seed: 2 })]);
  const fresh = new Linear(2, 2, { seed: 3 });
  const old = replaceModule(list, '1', fresh);
  assert.equal(list.at(1), fresh);
  assert.deepEqual(list.namedChildren().map(([n]) => n), ['0', '1']);
  assert.equal(list.getModule('1'), fresh);
  assertThrowsWith(() => replaceModule(list, '5', fresh), /not found|no child/);
  assertThrowsWith(() => replaceModule(list, '', fresh), /cannot replace the root/);
  old.dispose();
  list.dispose();
});

test('Module.to moves quantized layers bit-exactly and keeps them frozen', { skip: noNativeReason ?? false }, () => {
  const m = trunkModel('reference');
  m.freeze();
  quantizeModule(m, 'nf4', { doubleQuant: true });
  const x = ids(1, 4, 48, 5, 'reference');
  const before = E.tidy(() => m.forward(x).logits.toArray());
  const packed = new Map(m.namedParameters().filter(([n]) => isQuantParamName(n)).map(([n, t]) => [n, Array.from(t.toArray())]));
  m.to('native');
  for (const [n, t] of m.namedParameters()) {
    assert.equal(t.backend.name, 'native');
    if (packed.has(n)) assertEqualArrays(Array.from(t.toArray()), packed.get(n)!, n);
  }
  m.unfreeze();
  assert.ok(m.namedParameters().filter(([n]) => isQuantParamName(n)).every(([, t]) => !t.requiresGrad));
  const after = E.tidy(() => m.forward(E.toBackend(x, 'native')).logits.toArray());
  assertClose(after, before, 1e-4, 'same logits on native');
  m.dispose();
});

test('quantizeTrunk (the progressive builder hook) and weightFormatOf', () => {
  const m = trunkModel();
  applyLora(m.rack.stacks.at(0), { rank: 2, alpha: 2, targets: ['q'], seed: 1, freezeOthers: false });
  assert.equal(weightFormatOf(m.rack.stacks.at(0)), 'fp32');
  const res = quantizeTrunk(m.rack.stacks.at(0), 'nf4');
  assert.equal(res.quantized.length, 7, 'trainable weights are quantized too');
  assert.equal(weightFormatOf(m.rack.stacks.at(0)), 'nf4');
  assert.equal(weightFormatOf(m), 'mixed');
  assert.ok((m.getModule('rack.stacks.0.blocks.0.ffn.up') as QuantizedLinear).doubleQuant);
  // Only Linear weights change hands: adapters and norms keep their trainability (the builder freezes).
  assert.deepEqual(m.rack.stacks.at(0).trainableParameters().map(([n]) => n),
    ['blocks.0.attn_norm.weight', 'blocks.0.attn.q.lora_A', 'blocks.0.attn.q.lora_B', 'blocks.0.ffn_norm.weight']);
  quantizeTrunk(m.rack.stacks.at(1), 'int8');
  assert.equal(weightFormatOf(m.rack.stacks.at(1)), 'int8');
  assertThrowsWith(() => quantizeTrunk(m.rack.stacks.at(2), 'fp8'), /quantizeTrunk: format/, /'fp8' is not implemented/);
  m.dispose();
});
