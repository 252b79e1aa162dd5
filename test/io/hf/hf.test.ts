import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../../src/engine/index.js';
import { bert, gpt2, llama, applyLora, isLoraParamName, Stack, type Model } from '../../../src/nn/index.js';
import {
  loadHF, saveHF, savePeftAdapter, writeForwardCase, modelConfigFromHF, hfConfigFromModel, readHFModelConfig,
} from '../../../src/io/hf/index.js';
import { readSafetensors, writeSafetensors, fromFloat32, type SafeTensor } from '../../../src/io/index.js';
import { FIXTURES_DIR } from '../support.js';

const folders = existsSync(FIXTURES_DIR) ? readdirSync(FIXTURES_DIR).filter((f) => existsSync(join(FIXTURES_DIR, f, 'config.json'))).sort() : [];
const noFixtures = folders.length === 0 ? `no fixtures at ${FIXTURES_DIR}` : false;
const work = mkdtempSync(join(tmpdir(), 'stackwise-hf-'));
after(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const fresh = () => { const d = join(work, `d${n++}`); mkdirSync(d); return d; };

function sameTensors(a: Map<string, SafeTensor>, b: Map<string, SafeTensor>, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: same tensor names`);
  for (const [k, t] of a) {
    const u = b.get(k)!;
    assert.equal(u.dtype, t.dtype, `${what}: ${k} dtype`);
    assert.deepEqual(u.shape, t.shape, `${what}: ${k} shape`);
    assert.ok(Buffer.from(u.data).equals(Buffer.from(t.data)), `${what}: ${k} bytes differ`);
  }
}

function ids(B: number, S: number, V: number, seed: number): E.Tensor {
  return E.randInt([B, S], V, { seed });
}

test('import → export round-trips every tensor of every fixture exactly', { skip: noFixtures }, () => {
  for (const f of folders) {
    const src = join(FIXTURES_DIR, f);
    for (const stacks of [1, 2]) {
      const { model, adapter } = loadHF(src, { stacks });
      assert.equal(model.rack.numStacks, stacks);
      const out = fresh();
      saveHF(model, out);
      sameTensors(readSafetensors(join(src, 'model.safetensors')).tensors, readSafetensors(join(out, 'model.safetensors')).tensors, `${f} (K=${stacks})`);
      assert.deepEqual(readSafetensors(join(out, 'model.safetensors')).metadata, { format: 'pt' });
      // The config keeps every original field and value.
      const orig = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
      const written = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      for (const [k, v] of Object.entries(orig)) {
        if (k === 'rope_theta' || k === 'rope_parameters') continue;
        assert.deepEqual(written[k], v, `${f}: config.${k}`);
      }
      assert.deepEqual(modelConfigFromHF(written), model.config, 'the written config describes the model, stacks included');
      assert.deepEqual(modelConfigFromHF(written, { stacks: 1 }), modelConfigFromHF(orig));
      if (adapter) {
        sameTensors(readSafetensors(join(src, 'adapter_model.safetensors')).tensors, readSafetensors(join(out, 'adapter_model.safetensors')).tensors, `${f} adapter`);
        const ac = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
        const oc = JSON.parse(readFileSync(join(src, 'adapter_config.json'), 'utf8'));
        assert.equal(ac.r, oc.r);
        assert.equal(ac.lora_alpha, oc.lora_alpha);
        assert.deepEqual([...ac.target_modules].sort(), [...oc.target_modules].sort());
      }
      model.dispose();
    }
  }
});

test('grouping into K stacks does not change the function', { skip: noFixtures }, () => {
  const f = folders.find((x) => x.startsWith('llama')) ?? folders[0];
  const a = loadHF(join(FIXTURES_DIR, f), { adapter: false }).model;
  const b = loadHF(join(FIXTURES_DIR, f), { adapter: false, stacks: [1, a.rack.numBlocks - 1] }).model;
  const x = ids(2, 7, a.config.vocabSize, 1);
  assert.deepEqual(Array.from(b.forward(x).logits.toArray()), Array.from(a.forward(x).logits.toArray()));
  a.dispose(); b.dispose();
});

test('models built from presets export to HF and load back identically', () => {
  const models: Model[] = [
    llama({ vocabSize: 40, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 24, stacks: 2, seed: 1, tieEmbeddings: true, maxPositions: 64 }),
    llama({ vocabSize: 40, dModel: 16, nLayers: 2, nHeads: 2, headDim: 6, dFF: 24, seed: 2, ropeTheta: 500000, maxPositions: 64 }),
    gpt2({ vocabSize: 40, dModel: 16, nLayers: 2, nHeads: 2, maxPositions: 32, seed: 3 }),
    bert({ vocabSize: 40, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, maxPositions: 32, seed: 4 }),
    bert({ vocabSize: 40, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, maxPositions: 32, seed: 5, head: 'classification', nClasses: 3 }),
  ];
  for (const m of models) {
    const out = fresh();
    saveHF(m, out);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    const back = loadHF(out).model;
    assert.deepEqual(back.namedParameters().map(([k]) => k), m.namedParameters().map(([k]) => k));
    for (const [k, t] of m.namedParameters()) assert.deepEqual(Array.from(back.getParameter(k).toArray()), Array.from(t.toArray()), `${cfg.model_type}: ${k}`);
    const x = ids(2, 5, 40, 7);
    assert.deepEqual(Array.from(back.forward(x).logits.toArray()), Array.from(m.forward(x).logits.toArray()), cfg.model_type);
    assert.deepEqual(readHFModelConfig(out), m.config);
    m.dispose(); back.dispose();
  }
});

test('export refuses what Hugging Face cannot represent', () => {
  const m = llama({ vocabSize: 20, dModel: 8, nLayers: 1, nHeads: 2, dFF: 8, seed: 1, attentionKind: 'linear' });
  assert.throws(() => saveHF(m, fresh()), /attention kind 'linear' \(feature map 'elu1'\) \(model.attention_kind\) has no Hugging Face llama equivalent/);
  const g = gpt2({ vocabSize: 20, dModel: 8, nLayers: 1, nHeads: 2, maxPositions: 8, seed: 1 });
  const cfg = g.config;
  cfg.stacks[0].block.normPosition = 'post';
  assert.throws(() => hfConfigFromModel(cfg), /export: normalization is post-sublayer; Hugging Face GPT2LMHeadModel normalizes pre-sublayer$/);
  g.setAttentionMode('bidirectional');
  assert.throws(() => saveHF(g, fresh()), /export: attention is bidirectional; Hugging Face GPT2LMHeadModel is causal/);
  assert.throws(() => saveHF(g, fresh(), { objective: 'mlm' }), /attention is bidirectional \(objective mlm\); Hugging Face GPT2LMHeadModel is causal/);
  g.setAttentionMode('causal');
  g.rack.appendStack(Stack.create(8, g.config.stacks[0], { seed: 3 }));
  const out = fresh();
  saveHF(g, out);
  assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).n_layer, 2, 'the live rack (grown) is exported');
  g.rack.allBlocks()[1].setAttentionMode('bidirectional');
  assert.throws(() => saveHF(g, fresh()), /block 1 differs from block 0 in attention \("bidirectional" vs "causal"\)/);
  m.dispose(); g.dispose();
});

test('import errors name the tensor or field and what was expected', { skip: noFixtures }, () => {
  const f = folders.find((x) => x === 'gpt2') ?? folders[0];
  const src = join(FIXTURES_DIR, f);
  const copyWith = (mutate: (t: Map<string, SafeTensor>) => void, cfg?: (c: Record<string, unknown>) => void) => {
    const d = fresh();
    const t = new Map(readSafetensors(join(src, 'model.safetensors')).tensors);
    mutate(t);
    writeSafetensors(join(d, 'model.safetensors'), t, { format: 'pt' });
    const c = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
    cfg?.(c);
    writeFileSync(join(d, 'config.json'), JSON.stringify(c));
    return d;
  };
  const first = [...readSafetensors(join(src, 'model.safetensors')).tensors.keys()].find((k) => k.endsWith('.weight') && !k.includes('c_attn'))!;
  assert.throws(() => loadHF(copyWith((t) => t.delete(first))), new RegExp(`'${first.replace(/\./g, '\\.')}': missing from the checkpoint`));
  assert.throws(() => loadHF(copyWith((t) => t.set(first, fromFloat32(new Float32Array(6), [2, 3])))), /shape mismatch, expected \[.*\], found \[/);
  const extra = copyWith((t) => t.set('something.else', fromFloat32(new Float32Array(1), [1])));
  assert.throws(() => loadHF(extra), /'something\.else': unexpected tensor/);
  const loaded = loadHF(extra, { strict: false });
  assert.ok(loaded.skipped.includes('something.else'));
  loaded.model.dispose();
  assert.throws(() => loadHF(copyWith(() => {}, (c) => { c.model_type = 'mistral'; c.architectures = ['MistralForCausalLM']; })), /model_type "mistral" is not supported/);
  const d = fresh();
  writeFileSync(join(d, 'config.json'), readFileSync(join(src, 'config.json')));
  writeFileSync(join(d, 'pytorch_model.bin'), 'x');
  assert.throws(() => loadHF(d), /only safetensors weights are supported/);
  assert.throws(() => modelConfigFromHF({ model_type: 'llama', hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 8, vocab_size: 9, rope_scaling: { rope_type: 'yarn' } }), /'rope_scaling\.rope_type' = "yarn" is not supported/);
  assert.throws(() => modelConfigFromHF({ model_type: 'gpt2', n_embd: 8, n_head: 2, n_layer: 1, vocab_size: 9, scale_attn_by_inverse_layer_idx: true }), /scale_attn_by_inverse_layer_idx/);
  assert.throws(() => modelConfigFromHF({ model_type: 'bert', hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 3, intermediate_size: 8, vocab_size: 9 }, { stacks: 2 }), /3 layers cannot be split into 2 equal stacks/);
  assert.throws(() => modelConfigFromHF({ model_type: 'llama' }), /'hidden_size' is required/);
});

test('sharded checkpoints and F16 export load', { skip: noFixtures }, () => {
  const f = folders.find((x) => x.startsWith('llama')) ?? folders[0];
  const src = join(FIXTURES_DIR, f);
  const { model } = loadHF(src, { adapter: false });
  const tensors = readSafetensors(join(src, 'model.safetensors')).tensors;
  const d = fresh();
  const keys = [...tensors.keys()];
  const half = Math.ceil(keys.length / 2);
  const shards = [keys.slice(0, half), keys.slice(half)];
  const weightMap: Record<string, string> = {};
  shards.forEach((ks, i) => {
    const name = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(join(d, name), new Map(ks.map((k) => [k, tensors.get(k)!])), { format: 'pt' });
    for (const k of ks) weightMap[k] = name;
  });
  writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  copyFileSync(join(src, 'config.json'), join(d, 'config.json'));
  const sharded = loadHF(d).model;
  const x = ids(1, 6, model.config.vocabSize, 3);
  assert.deepEqual(Array.from(sharded.forward(x).logits.toArray()), Array.from(model.forward(x).logits.toArray()));
  const h = fresh();
  saveHF(model, h, { dtype: 'BF16' });
  assert.equal(JSON.parse(readFileSync(join(h, 'config.json'), 'utf8')).dtype, 'bfloat16');
  const bf = loadHF(h).model;
  const w = model.getParameter('embedding.token.weight').toArray();
  const mine = bf.getParameter('embedding.token.weight').toArray();
  for (let i = 0; i < 50; i++) assert.ok(Math.abs(mine[i] - w[i]) <= Math.abs(w[i]) / 128 + 1e-30);
  model.dispose(); sharded.dispose(); bf.dispose();
});

test('PEFT: a LoRA on GPT-2 fused c_attn shares A across q, k, v and round-trips', { skip: noFixtures || !folders.includes('gpt2') }, () => {
  const src = join(FIXTURES_DIR, 'gpt2');
  const base = loadHF(src).model;
  const d = fresh();
  copyFileSync(join(src, 'config.json'), join(d, 'config.json'));
  copyFileSync(join(src, 'model.safetensors'), join(d, 'model.safetensors'));
  const D = base.config.dModel, r = 2;
  const rnd = (len: number, seed: number) => Float32Array.from(E.randn([len], { seed, std: 0.1 }).toArray());
  const adapter = new Map<string, SafeTensor>();
  const nLayers = base.rack.numBlocks;
  for (let i = 0; i < nLayers; i++) {
    adapter.set(`base_model.model.transformer.h.${i}.attn.c_attn.lora_A.weight`, fromFloat32(rnd(r * D, 10 + i), [r, D]));
    adapter.set(`base_model.model.transformer.h.${i}.attn.c_attn.lora_B.weight`, fromFloat32(rnd(3 * D * r, 20 + i), [3 * D, r]));
  }
  const dff = base.config.stacks[0].block.dFF;
  adapter.set('base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight', fromFloat32(rnd(4 * D, 30), [4, D]));
  adapter.set('base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight', fromFloat32(rnd(dff * 4, 31), [dff, 4]));
  writeSafetensors(join(d, 'adapter_model.safetensors'), adapter, { format: 'pt' });
  writeFileSync(join(d, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', r, lora_alpha: 4, target_modules: ['c_attn', 'c_fc'], fan_in_fan_out: true, bias: 'none',
    rank_pattern: { c_fc: 4 }, alpha_pattern: { c_fc: 2 },
  }));
  const { model, adapter: info } = loadHF(d);
  assert.ok(info);
  const b0 = model.rack.allBlocks()[0];
  assert.equal(b0.attn.getModule('q') !== b0.attn.getModule('k'), true);
  const q = b0.attn.getModule('q') as unknown as { loraA: E.Tensor; lora: { scale: number } };
  const k = b0.attn.getModule('k') as unknown as { loraA: E.Tensor };
  assert.equal(q.loraA, k.loraA, 'one A tensor for the fused projection');
  assert.equal(q.lora.scale, 2);
  assert.equal((b0.ffn.up as unknown as { lora: { scale: number; rank: number } }).lora.scale, 0.5);
  // The adapter computes W x + s·B A x with B split q | k | v: compare with explicit merging.
  const x = ids(2, 6, model.config.vocabSize, 5);
  const y = model.forward(x).logits.toArray();
  for (const [, l] of model.namedModules()) if ('merge' in l && (l as unknown as { lora: unknown }).lora) (l as unknown as { merge(): void }).merge();
  const ym = model.forward(x).logits.toArray();
  let maxd = 0;
  for (let i = 0; i < y.length; i++) maxd = Math.max(maxd, Math.abs(y[i] - ym[i]));
  assert.ok(maxd < 1e-4, `merged vs adapter ${maxd}`);
  for (const [, l] of model.namedModules()) if ('unmerge' in l) (l as unknown as { unmerge(): void }).unmerge();
  // Gradients: only adapter tensors; the shared A accumulates q, k and v contributions.
  const loss = model.loss(model.forward(x).logits, x);
  loss.backward();
  assert.ok(model.trainableParameters().every(([nm]) => isLoraParamName(nm)));
  assert.ok(q.loraA.grad !== null);
  const out = fresh();
  savePeftAdapter(model, out);
  sameTensors(adapter, readSafetensors(join(out, 'adapter_model.safetensors')).tensors, 'gpt2 adapter');
  const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  // c_fc is adapted in layer 0 only, so short names would over-select: a full-name regex is written.
  const re = new RegExp(cfg.target_modules);
  assert.ok(re.test('transformer.h.0.mlp.c_fc') && re.test('transformer.h.1.attn.c_attn'));
  assert.ok(!re.test('transformer.h.1.mlp.c_fc'));
  assert.equal(cfg.r, 2);
  assert.equal(cfg.lora_alpha, 4);
  assert.equal(cfg.fan_in_fan_out, true);
  assert.deepEqual(cfg.rank_pattern, { 'transformer\\.h\\.0\\.mlp\\.c_fc': 4 });
  base.dispose(); model.dispose();
});

test('PEFT: adapters attached with applyLora save and load exactly; bad adapters are refused', { skip: noFixtures }, () => {
  const f = folders.find((x) => x === 'llama-gqa') ?? folders.find((x) => x.startsWith('llama'));
  if (!f) return;
  const src = join(FIXTURES_DIR, f);
  const { model } = loadHF(src, { adapter: false, stacks: 2 });
  applyLora(model.rack.stacks.at(1), { rank: 3, alpha: 6, targets: ['k', 'o', 'up'], seed: 4, init: 'random' });
  const d = fresh();
  saveHF(model, d);
  const cfg = JSON.parse(readFileSync(join(d, 'adapter_config.json'), 'utf8'));
  assert.equal(typeof cfg.target_modules, 'string', 'a subset of layers is selected by a full-name regex');
  const re = new RegExp(cfg.target_modules);
  assert.ok(re.test(`model.layers.${model.rack.numBlocks - 1}.self_attn.k_proj`));
  assert.ok(!re.test('model.layers.0.self_attn.k_proj'));
  const back = loadHF(d, { stacks: 2 });
  assert.ok(back.adapter);
  const x = ids(2, 5, model.config.vocabSize, 2);
  assert.deepEqual(Array.from(back.model.forward(x).logits.toArray()), Array.from(model.forward(x).logits.toArray()));
  // Merge on export folds the adapter in.
  const m = fresh();
  saveHF(model, m, { adapters: 'merge' });
  assert.ok(!existsSync(join(m, 'adapter_config.json')));
  const merged = loadHF(m).model;
  const a = merged.forward(x).logits.toArray(), b = model.forward(x).logits.toArray();
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-4);
  // A module that does not exist is refused with its name.
  const bad = fresh();
  copyFileSync(join(d, 'config.json'), join(bad, 'config.json'));
  copyFileSync(join(d, 'model.safetensors'), join(bad, 'model.safetensors'));
  writeFileSync(join(bad, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 1, lora_alpha: 1, target_modules: ['nope'] }));
  writeSafetensors(join(bad, 'adapter_model.safetensors'), new Map([
    ['base_model.model.model.layers.0.self_attn.nope.lora_A.weight', fromFloat32(new Float32Array(64), [1, 64])],
    ['base_model.model.model.layers.0.self_attn.nope.lora_B.weight', fromFloat32(new Float32Array(64), [64, 1])],
  ]));
  assert.throws(() => loadHF(bad), /module 'model\.layers\.0\.self_attn\.nope': no Linear layer/);
  writeFileSync(join(bad, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 1, lora_alpha: 1, use_dora: true }));
  assert.throws(() => loadHF(bad), /'use_dora' = true is not supported/);
  model.dispose(); back.model.dispose(); merged.dispose();
});

test('writeForwardCase writes the fixture-named results', { skip: noFixtures }, () => {
  const f = folders[0];
  const out = join(fresh(), 'result.safetensors');
  const { tensors, loaded } = writeForwardCase(join(FIXTURES_DIR, f), join(FIXTURES_DIR, f, 'case.safetensors'), out);
  const file = readSafetensors(out).tensors;
  assert.deepEqual([...file.keys()].sort(), [...tensors.keys()].sort());
  assert.ok(file.has('logits') && file.has('hidden_states.0'));
  loaded.model.dispose();
});

test('applyLora with sharedQKV on GPT-2 exports as a c_attn adapter and loads back', { skip: noFixtures || !folders.includes('gpt2') }, () => {
  const src = join(FIXTURES_DIR, 'gpt2');
  const { model } = loadHF(src);
  assert.throws(() => applyLora(model, { rank: 2, alpha: 4, targets: ['q', 'v'], seed: 1, sharedQKV: true }), /sharedQKV needs 'q', 'k' and 'v'/);
  applyLora(model, { rank: 2, alpha: 4, targets: ['v', 'q', 'k'], seed: 1, init: 'random', sharedQKV: true });
  const d = fresh();
  saveHF(model, d);
  assert.deepEqual(JSON.parse(readFileSync(join(d, 'adapter_config.json'), 'utf8')).target_modules, ['c_attn']);
  const back = loadHF(d).model;
  const x = ids(2, 5, model.config.vocabSize, 9);
  assert.deepEqual(Array.from(back.forward(x).logits.toArray()), Array.from(model.forward(x).logits.toArray()));
  // Without sharing, the fused HF module cannot hold the adapters.
  const plain = loadHF(src).model;
  applyLora(plain, { rank: 2, alpha: 4, targets: ['q', 'k', 'v'], seed: 1 });
  assert.throws(() => saveHF(plain, fresh()), /HF module 'transformer\.h\.0\.attn\.c_attn' fuses .*one shared A/);
  model.dispose(); back.dispose(); plain.dispose();
});

test('float64 import on the reference backend agrees with float32', { skip: noFixtures }, () => {
  const f = folders.find((x) => x.startsWith('bert')) ?? folders[0];
  const a = loadHF(join(FIXTURES_DIR, f), { backend: 'reference', dtype: 'float64', adapter: false }).model;
  const b = loadHF(join(FIXTURES_DIR, f), { adapter: false }).model;
  assert.equal(a.dtype, 'float64');
  const x = ids(1, 6, a.config.vocabSize, 4);
  const la = a.forward(E.toBackend(x, 'reference')).logits.toArray(), lb = b.forward(x).logits.toArray();
  for (let i = 0; i < la.length; i++) assert.ok(Math.abs(la[i] - lb[i]) < 1e-4);
  a.dispose(); b.dispose();
});
