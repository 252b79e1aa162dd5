// Every checkpoint holds a model manifest, and loadModel builds the model from it alone: for every
// recipe at tiny size, the model loaded in a fresh process from a copy of the checkpoint folder
// (no run folder, config or corpus reachable) computes the training model's logits bit for bit.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as E from '../../../src/engine/index.js';
import { CheckpointError, latestCheckpoint } from '../../../src/io/index.js';
import { MODEL_MANIFEST_FILE, TrainingMachine, describeModel, loadConfig, loadModel, type ModelManifest } from '../../../src/training/index.js';
import { MIXED, RECIPES, RECIPE_SETS, TINY } from '../recipe-sets.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, 'load-child.js');
const dir = mkdtempSync(join(tmpdir(), 'sw-manifest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Trains a recipe; returns its final checkpoint, copied alone into a fresh folder, and the trained model's logits. */
function trainAndCopy(file: string, set: string[] | Record<string, unknown>, stopAt?: number): { checkpoint: string; logits: Float32Array; ids: string; manifest: ModelManifest } {
  const runDir = join(dir, `run-${file}`);
  const config = Array.isArray(set) ? loadConfig(join(RECIPES, file), { set: [...TINY, `training.run_dir=${runDir}`, ...set] }) : { ...set, training: { ...(set['training'] as object), run_dir: runDir } };
  const m = new TrainingMachine(config);
  // Stop mid-run (a ramp half open) when asked, else train to the end.
  if (stopAt === undefined) m.train();
  else {
    while (m.step < stopAt) m.trainStep();
    m.saveCheckpoint();
  }
  const model = m.model.model;
  model.eval();
  const rows = [[1, 2, 3, 4, 5, 6, 7, 8], [9, 8, 7, 6, 5, 4, 3, 2]];
  const ratios = model.timeEmbedding ? [0.25, 0.75] : null;
  const logits = E.tidy(() => E.noGrad(() => Float32Array.from(model.forward(E.tensor(Int32Array.from(rows.flat()), [2, 8], { dtype: 'int32', backend: model.backend }), ratios ? { timeRatios: ratios } : {}).logits.toArray())));
  const manifest = describeModel(model, { stackIds: m.modelPlane?.stackIds() });
  m.dispose();
  model.dispose();
  const alone = join(dir, `alone-${file}`);
  cpSync(latestCheckpoint(runDir)!.path, alone, { recursive: true });
  rmSync(runDir, { recursive: true, force: true });
  const ids = join(dir, `ids-${file}.json`);
  writeFileSync(ids, JSON.stringify({ rows, ratios }));
  return { checkpoint: alone, logits, ids, manifest };
}

test('prepend + stack and progressive LoRA + NF4 trunk + a half-open ramp + time embedding + tied head: loaded alone, bit for bit', () => {
  const run = trainAndCopy('mixed', MIXED, 9);
  const out = join(dir, 'logits-mixed.bin');
  const child = spawnSync(process.execPath, [CHILD, run.checkpoint, run.ids, out], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  assert.ok(Buffer.from(readFileSync(out)).equals(Buffer.from(run.logits.buffer)), 'bit-identical logits');
  const stacks = run.manifest.rack.stacks;
  assert.deepEqual(stacks.map((s) => s.id), [0, 1]);
  assert.ok(stacks[0]!.ramp && stacks[0]!.ramp.gate > 0 && stacks[0]!.ramp.gate < 1, `half-open gate ${JSON.stringify(stacks[0]!.ramp)}`);
  assert.equal(stacks[1]!.storage.format, 'nf4');
  assert.deepEqual(stacks[0]!.adapters.map((a) => a.target).sort(), ['q', 'v'], 'the new stack: its stack LoRA');
  assert.deepEqual(stacks[1]!.adapters.map((a) => a.target).sort(), ['down', 'o', 'q', 'v'], 'the NF4 trunk: its stack LoRA kept, progressive LoRA added');
  assert.ok(run.manifest.architecture.tied && run.manifest.architecture.time_embedding !== null);
});

for (const [file, set] of Object.entries(RECIPE_SETS)) {
  test(`recipe ${file}: the checkpoint's model, loaded alone in a fresh process, computes the trained logits bit for bit`, () => {
    const run = trainAndCopy(file, set);
    const out = join(dir, `logits-${file}.bin`);
    const child = spawnSync(process.execPath, [CHILD, run.checkpoint, run.ids, out], { encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    const loaded = new Float32Array(new Uint8Array(readFileSync(out)).buffer);
    assert.equal(loaded.length, run.logits.length);
    assert.ok(Buffer.from(loaded.buffer).equals(Buffer.from(run.logits.buffer)), 'bit-identical logits');
    const saved = JSON.parse(readFileSync(join(run.checkpoint, MODEL_MANIFEST_FILE), 'utf8')) as ModelManifest;
    assert.deepEqual(saved, JSON.parse(JSON.stringify(run.manifest)));
    if (file === 'right-to-left-diffusion.yaml') {
      const stacks = saved.rack.stacks;
      assert.deepEqual(stacks.map((s) => s.id), [0, 1, 2, 3], 'prepended stacks: ids are final-rack indices');
      assert.deepEqual(stacks.map((s) => s.storage.format), ['fp32', 'nf4', 'nf4', 'nf4'], 'the trunk is stored as nf4');
      assert.ok(stacks.slice(1).every((s) => s.storage.format === 'nf4' && s.storage.block_size === 64 && s.adapters.length === 7), 'NF4 trunk with its progressive LoRA on every projection');
      assert.equal(saved.architecture.tied, false);
    }
  });
}

test('a prepended stack keeps its id; loadModel in this process; a checkpoint without a manifest is refused with a clear message', () => {
  const runDir = join(dir, 'prepend');
  const m = new TrainingMachine(loadConfig(join(RECIPES, 'right-to-left-diffusion.yaml'), { set: [...TINY, `training.run_dir=${runDir}`, ...RECIPE_SETS['right-to-left-diffusion.yaml']!, 'training.total_steps=4'] }));
  const ids: number[][] = [];
  m.addCallback({ onPhaseStart: (_p, mm) => { ids.push(mm.modelPlane!.stackIds()!); } });
  m.train();
  m.dispose();
  m.model.model.dispose();
  assert.deepEqual(ids, [[3], [2, 3], [1, 2, 3], [0, 1, 2, 3]]);
  const loaded = loadModel(runDir);
  assert.equal(loaded.step, 4);
  assert.equal(loaded.model.rack.numStacks, 4);
  assert.ok(loaded.model.namedParameters().some(([n, p]) => /lora_A$/.test(n) && p.requiresGrad), 'what was training is trainable');
  loaded.model.dispose();
  rmSync(join(loaded.checkpoint, MODEL_MANIFEST_FILE));
  const ck = JSON.parse(readFileSync(join(loaded.checkpoint, 'checkpoint.json'), 'utf8')) as { files: Record<string, unknown> };
  delete ck.files[MODEL_MANIFEST_FILE];
  writeFileSync(join(loaded.checkpoint, 'checkpoint.json'), JSON.stringify(ck));
  assert.throws(() => loadModel(runDir), (e: unknown) => e instanceof CheckpointError && /has no model manifest \(model\.json\): it was written by an earlier StackWise/.test(e.message));
});
