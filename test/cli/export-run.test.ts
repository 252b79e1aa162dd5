// `stackwise export` of a training run: the exported Hugging Face folder computes what the run's
// model computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../src/engine/index.js';
import { loadHF } from '../../src/io/index.js';
import { loadRun } from '../../src/training/run/index.js';
import { stackwise } from './support.js';

test('export --format hf of a run folder gives the same logits as the trained model', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stackwise-export-run-'));
  try {
    const run = join(dir, 'run'), out = join(dir, 'hf');
    const t = stackwise('train', '--steps', '12', '--run-dir', run, '--no-report',
      '--set', 'model.d_model=32', '--set', 'model.n_heads=2', '--set', 'model.d_ff=48',
      '--set', 'data.tokenizer.vocab_size=300', '--set', 'data.seq_len=16', '--set', 'data.batch_size=2',
      '--set', 'training.eval_every=6', '--set', 'training.checkpoint_every=6', '--set', 'data.eval_batches=1');
    assert.equal(t.status, 0, t.stderr);
    const e = stackwise('export', run, '--format', 'hf', '--out', out);
    assert.equal(e.status, 0, e.stderr);
    assert.ok(existsSync(join(out, 'config.json')) && existsSync(join(out, 'model.safetensors')));
    const ids = E.tensor(new Int32Array([5, 17, 99, 3, 250, 7]), [1, 6], { dtype: 'int32' });
    const trained = loadRun(run);
    const exported = loadHF(out).model;
    const a = E.noGrad(() => trained.model.forward(ids).logits.toArray());
    const b = E.noGrad(() => exported.forward(ids).logits.toArray());
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5, `logit ${i}: ${a[i]} vs ${b[i]}`);
    trained.model.dispose();
    exported.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
