// Every program in examples/ runs at tiny size (--tiny) from the compiled tree, on real data
// (the SOTU corpus from its npm package), and does what it says: each prints one JSON line last.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus, trainBpe } from '../../src/data/index.js';
import { Model, isLoraParamName, llamaConfig } from '../../src/nn/index.js';
import { loadHF, saveHF, saveHFTokenizer } from '../../src/io/index.js';

const distExamples = fileURLToPath(new URL('../../examples/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'sw-examples-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Runs examples/<name>.js --tiny and returns its last line, parsed. */
export function runExample(name: string, extra: string[] = []): Record<string, unknown> {
  const out = join(work, name);
  const r = spawnSync(process.execPath, [join(distExamples, `${name}.js`), '--tiny', '--out', out, ...extra], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${name} exited ${r.status}:\n${r.stderr}\n${r.stdout}`);
  const lines = r.stdout.trim().split('\n');
  const result = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
  assert.equal(result['example'], name);
  return result;
}

test('examples/training-machine: planes built in code, three phases, metrics read back', () => {
  const r = runExample('training-machine');
  assert.equal(r['steps'], 12);
  assert.ok(Number.isFinite(r['final_val_loss']));
  assert.ok((r['final_loss'] as number) < (r['first_loss'] as number), `loss falls: ${r['first_loss']} → ${r['final_loss']}`);
});

test('examples/progressive-system: 2 → 4 stacks with stack and progressive LoRA, then an NF4 trunk', () => {
  const r = runExample('progressive-system');
  assert.deepEqual(r['stacks'], [2, 3, 4]);
  assert.deepEqual(r['quantized'], [true, true, true, false]);
  const fp32 = r['val_loss_fp32'] as number;
  const nf4 = r['val_loss_nf4'] as number;
  assert.ok(Number.isFinite(fp32) && Number.isFinite(nf4));
  assert.notEqual(nf4, fp32, 'quantizing changed the trunk');
  assert.ok(Math.abs(nf4 - fp32) < 0.1, `NF4 keeps the loss close: ${fp32} → ${nf4}`);
});

test('examples/right-to-left: prepend curriculum with masked diffusion, then a depth-unroll sample', () => {
  const r = runExample('right-to-left');
  assert.equal(r['steps'], 24);
  assert.ok(Number.isFinite(r['final_loss']));
  assert.equal(r['sample_length'], 16);
  const used = r['stacks_used'] as number;
  assert.ok(used >= 1 && used <= 4);
});

test('examples/custom-objective: a label-smoothed loss through trainStep(lossFn)', () => {
  const r = runExample('custom-objective');
  assert.equal(r['steps'], 16);
  assert.ok((r['final_loss'] as number) < (r['first_loss'] as number));
  assert.ok(Number.isFinite(r['val_loss']));
});

test('examples/hf-finetune: a Hugging Face folder in, a LoRA fine-tune, a PEFT folder out', () => {
  // A small Hugging Face folder: a BPE trained on a few SOTU addresses, a tiny LLaMA, both exported.
  const folder = join(work, 'hf-base');
  const docs = loadCorpus({ kind: 'sotu' }).slice(0, 20).map((d) => d.text);
  const tokenizer = trainBpe(docs, { vocabSize: 300 });
  const model = Model.fromConfig(llamaConfig({ vocabSize: tokenizer.vocabSize, dModel: 32, nHeads: 2, nLayers: 2, maxPositions: 64 }), { seed: 0 });
  saveHF(model, folder);
  saveHFTokenizer(tokenizer, folder);
  const r = runExample('hf-finetune', [folder]);
  assert.equal(r['steps'], 12);
  assert.ok((r['val_loss_after'] as number) < (r['val_loss_before'] as number), `the fine-tune lowers the validation loss: ${r['val_loss_before']} → ${r['val_loss_after']}`);
  assert.equal(r['peft_modules'], 4, 'q and v of 2 layers');
  const peft = r['peft'] as string;
  assert.ok(existsSync(join(peft, 'adapter_config.json')) && existsSync(join(peft, 'adapter_model.safetensors')));
  // The base model with the adapter loads back through the PEFT reader.
  const back = loadHF(folder, { adapter: peft });
  assert.ok(back.model.namedParameters().some(([n]) => isLoraParamName(n)));
  back.model.dispose();
  model.dispose();
});

test('examples/hf-finetune without a folder prints its usage and exits 2', () => {
  const r = spawnSync(process.execPath, [join(distExamples, 'hf-finetune.js')], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: .*hf-finetune\.js <hf-folder>/);
});
