// `stackwise sample`, `eval` and `export` on a tiny diffusion run trained with a time embedding.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stackwise } from './support.js';

let dir = '';
let run = '';

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sw-sample-time-'));
  run = join(dir, 'time');
  const config = join(dir, 'time.yaml');
  writeFileSync(config, [
    'model: { preset: llama, d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 2, blocks_per_stack: 1, time_embedding: { features: 8 } }',
    'data: { corpus: { kind: synthetic, vocab_size: 32, tokens: 2000 }, seq_len: 8, batch_size: 8, eval_batches: 2, objective: diffusion }',
    'optimizer: { lr: 0.01 }',
    'training: { total_steps: 12 }',
  ].join('\n'));
  const r = stackwise('train', config, '--run-dir', run, '--no-report', '--json');
  assert.equal(r.status, 0, r.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('time embedding run: sample (diffusion, mlm, depth) and eval work; clm sampling and HF export are refused', () => {
  const d = stackwise('sample', run, '--prompt', '3 4', '--max-tokens', '6', '--steps', '3', '--json');
  assert.equal(d.status, 0, d.stderr);
  const rd = json(d.stdout) as { mode: string; samples: { ids: number[] }[] };
  assert.equal(rd.mode, 'diffusion', 'the objective the run trained with');
  assert.equal(rd.samples[0]!.ids.length, 8);
  assert.ok(!rd.samples[0]!.ids.includes(31), 'every [MASK] (id 31) filled');
  const again = stackwise('sample', run, '--prompt', '3 4', '--max-tokens', '6', '--steps', '3', '--json');
  assert.deepEqual(json(again.stdout).samples, rd.samples, 'deterministic');
  for (const args of [['--mode', 'mlm', '--prompt', '3 [MASK] 5 [MASK]'], ['--mode', 'depth', '--prompt', '3', '--max-tokens', '5']]) {
    const r = stackwise('sample', run, ...args, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!(json(r.stdout) as { samples: { ids: number[] }[] }).samples[0]!.ids.includes(31), `${args[1]}: every [MASK] filled`);
  }
  // `generated` lists the tokens written at the [MASK] positions, wherever they are.
  for (const mode of ['diffusion', 'depth']) {
    const mid = stackwise('sample', run, '--mode', mode, '--prompt', '3 [MASK] [MASK] 6 [MASK]', '--json');
    assert.equal(mid.status, 0, mid.stderr);
    const s = (json(mid.stdout) as { samples: { ids: number[]; generated: string }[] }).samples[0]!;
    assert.deepEqual([s.ids[0], s.ids[3]], [3, 6], `${mode}: the prompt's tokens stay`);
    assert.equal(s.generated, [s.ids[1], s.ids[2], s.ids[4]].join(' '), `${mode}: generated = the filled positions`);
  }
  const e = stackwise('eval', run, '--json');
  assert.equal(e.status, 0, e.stderr);
  const re = json(e.stdout) as { objective: string; masked_accuracy: number; loss: number };
  assert.equal(re.objective, 'diffusion');
  assert.ok(re.masked_accuracy >= 0 && re.masked_accuracy <= 1 && Number.isFinite(re.loss));
  const clm = stackwise('sample', run, '--mode', 'clm', '--prompt', '3 4');
  assert.equal(clm.status, 2);
  assert.match(clm.stderr, /--mode clm: this model has a time embedding/);
  const ex = stackwise('export', run, '--format', 'hf', '--out', join(dir, 'hf'));
  assert.notEqual(ex.status, 0);
  assert.match(ex.stderr, /time embedding \(time-as-input, model\.time_embedding\) has no Hugging Face llama equivalent/);
});
