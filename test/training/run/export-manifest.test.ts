// An exported Hugging Face folder carries the model manifest (model.json): a run stopped mid-way
// through a prepend schedule (its one stack has id 1 of the final rack, stored NF4 with LoRA)
// exports with the stack plan, ids, trained storage and adapters; loading the folder uses the
// manifest's stacks and ids, and a manifest that does not describe the folder is refused.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../../src/engine/index.js';
import { QuantizedLinear } from '../../../src/nn/index.js';
import { MODEL_MANIFEST_FILE, TrainingMachine, type ExportedManifest } from '../../../src/training/index.js';
import { exportModel, inspectFolder, loadRun } from '../../../src/training/run/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sw-export-manifest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const runDir = join(dir, 'run');
const CONFIG = {
  model: {
    preset: 'llama', d_model: 32, n_heads: 2, d_ff: 32, n_stacks: 1, blocks_per_stack: 2,
    progressive: { direction: 'prepend', growth: 'copy_top', freeze: 'adapters_only_trunk', trunk_format: 'nf4', progressive_lora: { rank: 2, alpha: 4, targets: ['q', 'v'] } },
  },
  data: { corpus: { kind: 'synthetic', vocab_size: 48, tokens: 3000 }, tokenizer: 'none', seq_len: 8, batch_size: 4, eval_batches: 1, objective: 'clm' },
  optimizer: { lr: 0.01 },
  training: { total_steps: 9, progress: 'off', tensorboard: false, eval_every: 0, checkpoint_every: 0, run_dir: runDir },
  schedule: [
    { name: 'one', start_t: 0, end_t: 1 / 3 },
    { name: 'two', start_t: 1 / 3, end_t: 2 / 3, overrides: { model: { n_stacks: 2 } } },
    { name: 'three', start_t: 2 / 3, end_t: 1, overrides: { model: { n_stacks: 3 } } },
  ],
};

function logits(model: { forward(ids: E.Tensor): { logits: E.Tensor } }): Float32Array {
  const ids = E.tensor(new Int32Array([1, 2, 3, 4, 5, 6, 7, 8]), [1, 8], { dtype: 'int32' });
  return E.tidy(() => E.noGrad(() => Float32Array.from(model.forward(ids).logits.toArray())));
}

test('export writes model.json; the exported folder loads into the manifest\'s stacks with their ids; a wrong manifest is refused', () => {
  const m = new TrainingMachine(CONFIG);
  // Stopped in phase two: the rack holds the stacks that end up at positions 1 and 2.
  while (m.step < 5) m.trainStep();
  m.saveCheckpoint();
  m.dispose();
  m.model.model.dispose();
  const run = loadRun(runDir);
  assert.deepEqual(run.manifest!.rack.stacks.map((s) => s.id), [1, 2], 'two stacks after one prepend, named by their final positions');
  const trained = logits(run.model);
  run.model.dispose();

  for (const adapters of ['separate', 'merge'] as const) {
    const out = join(dir, `hf-${adapters}`);
    const r = exportModel(runDir, { out, adapters, maxShardSize: '20KB' });
    assert.ok(r.files.includes(MODEL_MANIFEST_FILE) && r.files.includes('model.safetensors.index.json'), r.files.join(', '));
    const written = JSON.parse(readFileSync(join(out, MODEL_MANIFEST_FILE), 'utf8')) as ExportedManifest;
    assert.deepEqual(written.rack.stacks.map((s) => s.blocks.length), [2, 2]);
    assert.deepEqual(written.rack.stacks.map((s) => s.id), [1, 2]);
    assert.ok(written.rack.stacks.every((s) => s.storage.format === 'fp32'), 'the folder holds float weights');
    assert.deepEqual(written.export.source_storage.map((s) => s.format), ['fp32', 'nf4'], 'the trunk was NF4 in the run');
    assert.equal(written.export.adapters, adapters);
    const trunkAdapters = written.rack.stacks[1]!.adapters.map((a) => a.target).sort();
    if (adapters === 'separate') {
      assert.deepEqual(trunkAdapters, ['q', 'q', 'v', 'v'], 'the trunk\'s progressive LoRA travels as PEFT files');
      assert.ok(existsSync(join(out, 'adapter_model.safetensors')));
    } else {
      assert.deepEqual(trunkAdapters, []);
      assert.ok(written.export.merged_adapters.length === 4 && written.export.merged_adapters.every((p) => p.startsWith('rack.stacks.1.')), written.export.merged_adapters.join(', '));
    }
    const back = loadRun(out);
    assert.equal(back.source, 'hf');
    assert.deepEqual(back.model.rack.stacks.toArray().map((s) => s.length), [2, 2], 'grouped as the manifest says');
    assert.deepEqual(back.manifest!.rack.stacks.map((s) => s.id), [1, 2], 'the ids come from model.json');
    const mine = logits(back.model);
    assert.ok(mine.every((v, i) => Math.abs(v - trained[i]!) <= 1e-5), `${adapters}: the exported folder computes the run's logits`);
    back.model.dispose();
    // --load-format: the manifest then describes the model as loaded.
    const nf4 = loadRun(out, { loadFormat: 'nf4' });
    assert.ok(nf4.manifest!.rack.stacks.every((s) => s.storage.format === 'nf4'));
    assert.ok(nf4.model.rack.allBlocks().every((b) => b.attn.getModule('q') instanceof QuantizedLinear));
    nf4.model.dispose();
    const report = inspectFolder(out);
    assert.deepEqual(report.stacks, [2, 2]);
    assert.ok(report.manifest && report.notes.some((s) => /model\.json: an exported StackWise model, stacks id 1 \(2 blocks\), id 2 \(2 blocks\)/.test(s)), report.notes.join('\n'));
  }

  const out = join(dir, 'hf-separate');
  const file = join(out, MODEL_MANIFEST_FILE);
  const good = readFileSync(file, 'utf8');
  const bad = JSON.parse(good) as ExportedManifest;
  bad.rack.stacks[0]!.blocks[0]!.dFF = 64;
  writeFileSync(file, JSON.stringify(bad));
  assert.throws(() => loadRun(out), (e: Error) => e.message.includes(`${file}: block 0 dFF is 64 but ${join(out, 'config.json')} gives 32`));
  bad.rack.stacks[0]!.blocks[0]!.dFF = 32;
  bad.rack.stacks.pop();
  writeFileSync(file, JSON.stringify(bad));
  assert.throws(() => loadRun(out), /the number of blocks \(over rack\.stacks\) is 2 but .* gives 4/);
  writeFileSync(file, good);
  // A checkpoint's float stacks are quantized by --load-format; its NF4 trunk keeps its codes.
  const q = loadRun(runDir, { loadFormat: 'int8' });
  assert.deepEqual(q.model.rack.stacks.toArray().map((s) => [...new Set(s.namedModules().filter(([, x]) => x instanceof QuantizedLinear).map(([, x]) => (x as QuantizedLinear).format))]), [['int8'], ['nf4']]);
  q.model.dispose();
});
