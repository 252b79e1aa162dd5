// Sharded Hugging Face export (shards + model.safetensors.index.json as transformers writes them),
// read back with our loader, and quantize-on-load against quantizing after a float32 load, on
// every committed fixture (test/fixtures/hf).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../../src/engine/index.js';
import { Linear, QuantizedLinear, quantizeTrunk, type Model } from '../../../src/nn/index.js';
import {
  hfTensorsOf, loadHF, parseShardSize, planShards, readHFWeights, saveHF, withDequantizedLayers, writeHFWeights,
} from '../../../src/io/hf/index.js';
import { readSafetensors, toFloat32 } from '../../../src/io/index.js';
import { FIXTURES_DIR, fixtureFolders } from '../support.js';

const folders = fixtureFolders();
const noFixtures = folders.length === 0 ? `no fixtures at ${FIXTURES_DIR}` : false;
const work = mkdtempSync(join(tmpdir(), 'sw-hf-shards-'));
after(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const fresh = () => { const d = join(work, `d${n++}`); mkdirSync(d); return d; };

function inputsFor(model: Model): E.Tensor {
  return E.randInt([2, 6], model.config.vocabSize, { seed: 11 });
}

/** ‖a − b‖ / ‖b‖. */
function relativeRms(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2; }
  return Math.sqrt(num / den);
}

/**
 * Logit tolerances per storage format, as relative RMS error against float32: about twice the
 * format's own relative error on Gaussian weights (NF4 in blocks of 64: ~0.1; int8 per row:
 * ~0.01; bf16's 8-bit mantissa: ~2e-3; fp16: ~3e-4).
 */
const LOGIT_TOLERANCE = { nf4: 0.2, int8: 0.02, bf16: 5e-3, fp16: 1e-3 } as const;

function logits(model: Model): Float32Array {
  return E.tidy(() => Float32Array.from(model.forward(inputsFor(model)).logits.toArray()));
}

test('shard sizes: transformers units, and a tensor bigger than a shard gets a shard of its own', () => {
  assert.equal(parseShardSize('2GB'), 2e9);
  assert.equal(parseShardSize('500MB'), 5e8);
  assert.equal(parseShardSize('1GiB'), 2 ** 30);
  assert.equal(parseShardSize('12345'), 12345);
  assert.throws(() => parseShardSize('two gigs'), /--max-shard-size: expected a size such as 2GB, 500MB or 10000000 \(bytes\), found 'two gigs'/);
  assert.throws(() => parseShardSize('0'), /expected a size/);
  const t = (name: string, n: number) => ({ name, dtype: 'F32' as const, shape: [n] });
  const plan = planShards([t('a', 10), t('b', 10), t('c', 100), t('d', 5)], 100);
  assert.deepEqual(plan.files.map((f) => f.names), [['a', 'b'], ['c'], ['d']]);
  assert.deepEqual(plan.files.map((f) => f.file), ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
  assert.equal(plan.totalSize, 500);
  assert.deepEqual(planShards([t('a', 10)], 100).files.map((f) => f.file), ['model.safetensors']);
});

test('a write that fails half way leaves the folder as it was: no partial shard, no index, the old weights intact', () => {
  const d = fresh();
  const t = (name: string, fail = false) => ({ name, dtype: 'F32' as const, shape: [4], data: () => { if (fail) throw new Error(`cannot make ${name}`); return new Uint8Array(16).fill(7); } });
  assert.deepEqual(writeHFWeights(d, [t('a'), t('b')]), ['model.safetensors']);
  const before = readFileSync(join(d, 'model.safetensors'));
  assert.throws(() => writeHFWeights(d, [t('a'), t('b'), t('c'), t('d', true)], { maxShardSize: 32 }), /cannot make d/);
  assert.deepEqual(readdirSync(d), ['model.safetensors']);
  assert.ok(readFileSync(join(d, 'model.safetensors')).equals(before));
});

test('sharded export: index (total_size, weight_map) and shards hold exactly the single file\'s tensors; loading them is bit for bit the same model', { skip: noFixtures }, () => {
  for (const f of folders) {
    const { model } = loadHF(join(FIXTURES_DIR, f), { adapter: false });
    const single = fresh();
    assert.deepEqual(saveHF(model, single), ['model.safetensors']);
    const sharded = fresh();
    const files = saveHF(model, sharded, { maxShardSize: 40_000 });
    assert.ok(files.length >= 3 && files.at(-1) === 'model.safetensors.index.json', `${f}: ${files.join(', ')}`);
    assert.ok(!existsSync(join(sharded, 'model.safetensors')));
    const index = JSON.parse(readFileSync(join(sharded, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    const whole = readSafetensors(join(single, 'model.safetensors')).tensors;
    assert.deepEqual(Object.keys(index.weight_map).sort(), [...whole.keys()].sort(), `${f}: weight_map names every tensor`);
    assert.equal(index.metadata.total_size, [...whole.values()].reduce((k, t) => k + t.data.length, 0));
    for (const shard of new Set(Object.values(index.weight_map))) {
      const held = readSafetensors(join(sharded, shard));
      assert.equal(held.metadata.format, 'pt');
      for (const [name, t] of held.tensors) {
        assert.equal(index.weight_map[name], shard, `${f}: ${name} is where the index says`);
        assert.ok(Buffer.from(t.data).equals(Buffer.from(whole.get(name)!.data)), `${f}: ${name} bytes`);
      }
    }
    const back = loadHF(sharded).model;
    assert.deepEqual(Array.from(logits(back)), Array.from(logits(model)), `${f}: logits of the sharded folder`);
    // Writing one file into the sharded folder replaces the shards (one set of weights).
    saveHF(model, sharded);
    assert.deepEqual(readdirSync(sharded).filter((x) => x.includes('safetensors')).sort(), ['model.safetensors']);
    model.dispose(); back.dispose();
  }
});

test('quantize-on-load equals quantizing after a float32 load, bit for bit; NF4 logits stay within the NF4 tolerance', { skip: noFixtures }, () => {
  for (const f of folders.filter((x) => !x.endsWith('-lora'))) {
    const src = join(FIXTURES_DIR, f);
    const fp32 = loadHF(src, { stacks: 2 }).model;
    const ref = logits(fp32);
    for (const format of ['nf4', 'int8', 'fp16', 'bf16'] as const) {
      const streamed = loadHF(src, { stacks: 2, loadFormat: format });
      const after = loadHF(src, { stacks: 2 }).model;
      for (const s of after.rack.stacks.toArray()) quantizeTrunk(s, format);
      const mine = logits(streamed.model);
      assert.deepEqual(Array.from(mine), Array.from(logits(after)), `${f} ${format}: same as quantizing after the load`);
      const rackLinears = streamed.model.namedModules().filter(([p, m]) => p.startsWith('rack.') && (m instanceof Linear || m instanceof QuantizedLinear));
      assert.ok(rackLinears.every(([, m]) => m instanceof QuantizedLinear && m.format === format), `${f} ${format}: every rack projection stored in ${format}`);
      assert.ok(streamed.model.namedModules().filter(([p]) => !p.startsWith('rack.')).every(([, m]) => !(m instanceof QuantizedLinear)), `${f}: nothing outside the rack quantized`);
      const err = relativeRms(mine, ref);
      assert.ok(err > 0 && err <= LOGIT_TOLERANCE[format], `${f} ${format}: logits' relative RMS error ${err} (tolerance ${LOGIT_TOLERANCE[format]})`);
      streamed.model.dispose(); after.dispose();
    }
    fp32.dispose();
  }
});

test('a PEFT adapter goes onto an NF4-loaded base (QLoRA); export dequantizes and merges one tensor at a time, as a whole-model dequantization would', { skip: noFixtures || !folders.includes('llama-gqa-lora') }, () => {
  const src = join(FIXTURES_DIR, 'llama-gqa-lora');
  const fp32 = loadHF(src);
  const q = loadHF(src, { loadFormat: 'nf4' });
  assert.ok(q.adapter && q.adapter.linears.length > 0);
  assert.ok(q.adapter.linears.every((p) => q.model.getModule(p) instanceof QuantizedLinear && (q.model.getModule(p) as QuantizedLinear).lora !== null));
  const err = relativeRms(logits(q.model), logits(fp32.model));
  assert.ok(err > 0 && err <= LOGIT_TOLERANCE.nf4, `NF4 base + adapter: logits' relative RMS error ${err}`);
  for (const adapters of ['merge', 'separate'] as const) {
    const d = fresh();
    saveHF(q.model, d, { adapters, maxShardSize: 50_000 });
    const written = readHFWeights(d);
    const expected = withDequantizedLayers(q.model, () => {
      const ls = q.model.namedModules().filter((e): e is [string, Linear] => e[1] instanceof Linear && e[1].lora !== null).map(([, l]) => l);
      if (adapters === 'merge') for (const l of ls) l.merge();
      try {
        return hfTensorsOf(q.model);
      } finally {
        for (const l of ls) l.unmerge();
      }
    });
    assert.deepEqual([...written.keys()].sort(), [...expected.keys()].sort());
    for (const [name, h] of expected) assert.deepEqual(Array.from(toFloat32(written.get(name)!)), Array.from(h.data), `${adapters}: ${name}`);
    assert.equal(existsSync(join(d, 'adapter_model.safetensors')), adapters === 'separate');
  }
  fp32.model.dispose(); q.model.dispose();
});
