// recipes/grow-to-1b.yaml at tiny size: stack-wise growth with an NF4 trunk quantized in place as
// each stack freezes, the activation cache and 8-bit AdamW state; and the full recipe's plan.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonl } from '../../src/io/index.js';
import { Linear, QuantizedLinear } from '../../src/nn/index.js';
import type { AdamW } from '../../src/optim/index.js';
import { TrainingMachine, loadConfig, planRun } from '../../src/training/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const RECIPE = [resolve(here, '../../../recipes/grow-to-1b.yaml'), resolve(here, '../../recipes/grow-to-1b.yaml')].find((p) => existsSync(p))!;
const dir = mkdtempSync(join(tmpdir(), 'sw-grow1b-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the full recipe plans a 1.1 B model in about 2.6 GiB at its peak, one new layer per phase over an NF4 trunk', () => {
  const plan = planRun(loadConfig(RECIPE));
  assert.equal(plan.phases.length, 22);
  assert.ok(Math.abs(plan.params - 1.1e9) / 1.1e9 < 0.01, `params ${plan.params}`);
  const last = plan.phases.at(-1)!;
  assert.equal(last.trunkFormat, 'nf4');
  assert.equal(last.stateFormat, 'int8');
  assert.ok(last.bytes.peak < 3 * 2 ** 30, `peak ${last.bytes.peak}`);
  assert.equal(last.cachedPrefixStacks, 21);
});

test('at tiny size: every phase trains one new stack; frozen stacks become NF4 in place (no float32 Linear left in them)', () => {
  const run = join(dir, 'run');
  const parsed = loadConfig(RECIPE, { set: [
    'model.d_model=32', 'model.n_heads=4', 'model.n_kv_heads=2', 'model.d_ff=48', 'model.n_stacks=3',
    'data.corpus={kind: synthetic, vocab_size: 48, tokens: 1200, branching: 1}', 'data.tokenizer=none', 'data.seq_len=16', 'data.eval_batches=1',
    'training.total_steps=18', 'training.progress=off', 'training.tensorboard=false', `training.run_dir=${run}`, 'training.checkpoint_at_phase_end=false',
  ] });
  const m = new TrainingMachine(parsed);
  const result = m.train();
  const model = m.model.model;
  assert.equal(model.rack.numStacks, 3);
  for (let i = 0; i < 3; i++) {
    const mods = model.rack.stacks.at(i).namedModules().map(([, x]) => x);
    if (i < 2) {
      assert.ok(mods.some((x) => x instanceof QuantizedLinear) && !mods.some((x) => x instanceof Linear && !(x instanceof QuantizedLinear)), `stack ${i} is NF4`);
      assert.ok(model.rack.stacks.at(i).parameters().every((t) => !t.requiresGrad), `stack ${i} frozen`);
    } else assert.ok(model.rack.stacks.at(i).parameters().some((t) => t.requiresGrad), 'the last stack trains');
  }
  assert.equal((m.optimizer.optimizer as AdamW).stateFormat, 'int8');
  const records = readJsonl(join(run, 'metrics.jsonl'));
  const cache = records.filter((x) => x['kind'] === 'activation_cache');
  assert.ok(cache.some((x) => (x['hits'] as number) > 0), 'the frozen prefix is served from the cache');
  assert.ok(result.losses.every(Number.isFinite));
  m.dispose();
});
