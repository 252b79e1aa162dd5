// The configs of the README's diffusion comparison (configs/diffusion/) parse, and each trains at
// tiny size on a synthetic corpus with the bound recorded at its evaluations.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TrainingMachine, loadConfig } from '../../../src/training/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const DIR = [resolve(here, '../../../configs/diffusion'), resolve(here, '../../../../configs/diffusion')].find((p) => existsSync(p))!;

test('configs/diffusion: each config parses, is masked diffusion at the default size, and trains at tiny size with the NELBO bound evaluated', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();
  assert.deepEqual(files, ['mdlm.yaml', 'right-to-left.yaml', 'time-as-depth.yaml']);
  const dir = mkdtempSync(join(tmpdir(), 'sw-diffusion-configs-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of files) {
    const full = loadConfig(join(DIR, f));
    assert.equal(full.config.model!.d_model, 192, f);
    assert.equal(full.config.training!.total_steps, 2000, f);
    const tiny = loadConfig(join(DIR, f), { set: [
      'model.d_model=16', 'model.n_heads=2', 'model.d_ff=24', 'data.corpus={"kind":"synthetic","vocab_size":40,"tokens":3000}', 'data.tokenizer={"kind":"none"}',
      'data.seq_len=8', 'data.batch_size=2', 'data.eval_batches=1', 'training.total_steps=8', 'training.eval_every=0', 'training.checkpoint_every=0', 'training.progress=off', 'training.tensorboard=false',
    ] });
    const m = new TrainingMachine(tiny, { runDir: join(dir, f), log: () => {} });
    const r = m.train();
    assert.equal(m.model.model.rack.numStacks, 4, f);
    assert.ok(r.final_eval?.perplexity_bound !== undefined && r.final_eval.perplexity_bound > 1, `${f}: the final evaluation has the bound`);
    m.dispose();
  }
});
