// `stackwise sample` and `stackwise eval` as child processes, on tiny runs trained here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stackwise } from './support.js';

let dir = '';
let clmRun = '';
let mlmRun = '';

function config(name: string, objective: 'clm' | 'mlm'): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, [
    'model: { preset: llama, d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 1, blocks_per_stack: 1 }',
    `data: { corpus: sentiment, tokenizer: { kind: bpe, vocab_size: 300 }, seq_len: 16, batch_size: 8, eval_batches: 2, objective: ${objective} }`,
    'optimizer: { lr: 0.01 }',
    'training: { total_steps: 30 }',
  ].join('\n'));
  return path;
}

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sw-sample-'));
  clmRun = join(dir, 'clm');
  mlmRun = join(dir, 'mlm');
  for (const [run, obj] of [[clmRun, 'clm'], [mlmRun, 'mlm']] as const) {
    const r = stackwise('train', config(obj, obj), '--run-dir', run, '--no-report', '--json');
    assert.equal(r.status, 0, r.stderr);
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('sample (CLM): seeded, --json, from a run folder or a checkpoint folder', () => {
  const args = ['--prompt', 'This movie was', '--max-tokens', '12', '--temperature', '0.9', '--top-k', '20', '--top-p', '0.95', '--seed', '7', '--json'];
  const a = stackwise('sample', clmRun, ...args);
  assert.equal(a.status, 0, a.stderr);
  const ra = json(a.stdout) as { ok: boolean; mode: string; samples: { text: string; ids: number[] }[] };
  assert.equal(ra.ok, true);
  assert.equal(ra.mode, 'clm');
  assert.ok(ra.samples[0]!.text.startsWith('This movie was'));
  assert.ok(ra.samples[0]!.ids.length > 3);
  const ck = join(clmRun, 'checkpoints', readdirSync(join(clmRun, 'checkpoints')).filter((f) => f.startsWith('step-'))[0]!);
  const b = stackwise('sample', ck, ...args);
  assert.equal(b.status, 0, b.stderr);
  assert.deepEqual(json(b.stdout).samples, ra.samples, 'same checkpoint, same seed: same text');
  const text = stackwise('sample', clmRun, '--prompt', 'Great', '--max-tokens', '5', '--temperature', '0', '--count', '2');
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /--- sample 2\n/);
});

test('eval: perplexity on val and test, masked-token accuracy for MLM, sentiment probe', () => {
  const val = stackwise('eval', clmRun, '--json');
  assert.equal(val.status, 0, val.stderr);
  const rv = json(val.stdout) as { split: string; perplexity: number; loss: number };
  assert.equal(rv.split, 'val');
  assert.ok(rv.perplexity > 1 && rv.perplexity < 300, `perplexity ${rv.perplexity} below the vocabulary size`);
  const testSplit = stackwise('eval', clmRun, '--split', 'test');
  assert.equal(testSplit.status, 0, testSplit.stderr);
  assert.match(testSplit.stdout, /^test: loss \d+\.\d+, perplexity \d+\.\d+/);
  const mlm = stackwise('eval', mlmRun, '--json');
  assert.equal(mlm.status, 0, mlm.stderr);
  const rm = json(mlm.stdout) as { masked_accuracy: number; perplexity: null };
  assert.equal(rm.perplexity, null);
  assert.ok(rm.masked_accuracy >= 0 && rm.masked_accuracy <= 1);
  const s = stackwise('eval', clmRun, '--task', 'sentiment', '--max-examples', '300', '--json');
  assert.equal(s.status, 0, s.stderr);
  const rs = json(s.stdout) as { task: string; test_accuracy: number; train_examples: number; test_examples: number };
  assert.equal(rs.task, 'sentiment');
  assert.ok(rs.test_examples > 10 && rs.train_examples > rs.test_examples);
  assert.ok(rs.test_accuracy >= 0 && rs.test_accuracy <= 1);
});

test('sample --mode mlm fills [MASK]; --mode diffusion generates', () => {
  const m = stackwise('sample', mlmRun, '--mode', 'mlm', '--prompt', 'This movie was [MASK] and [MASK].', '--json');
  assert.equal(m.status, 0, m.stderr);
  const rm = json(m.stdout) as { mode: string; samples: { text: string }[] };
  assert.equal(rm.mode, 'mlm');
  assert.ok(!rm.samples[0]!.text.includes('[MASK]'));
  assert.ok(rm.samples[0]!.text.startsWith('This movie was '));
  const d = stackwise('sample', mlmRun, '--mode', 'diffusion', '--prompt', 'Great', '--max-tokens', '6', '--steps', '3', '--json');
  assert.equal(d.status, 0, d.stderr);
  const rd = json(d.stdout) as { samples: { ids: number[] }[] };
  assert.ok(rd.samples[0]!.ids.length >= 7);
  // No [MASK] to fill: a usage error.
  const none = stackwise('sample', mlmRun, '--mode', 'mlm', '--prompt', 'no masks here');
  assert.equal(none.status, 2);
  assert.match(none.stderr, /\[MASK\]/);
});

test('sample/eval bad input: missing run, no checkpoint, tokenizer not matching the model, bad options', () => {
  let r = stackwise('sample', join(dir, 'nope'), '--prompt', 'x');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /nope: no such run folder or checkpoint/);
  const empty = join(dir, 'empty'); mkdirSync(empty);
  r = stackwise('eval', empty);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not a StackWise run folder/);
  // A copy of the CLM run whose checkpoint keeps another vocabulary's tokenizer (its digest updated),
  // under the legacy name tokenizer.json: checkpoints from before the rename are still read.
  const other = join(dir, 'other');
  const tr = stackwise('train', config('small-vocab', 'clm'), '--run-dir', other, '--no-report', '--set', 'data.tokenizer.vocab_size=280', '--steps', '2');
  assert.equal(tr.status, 0, tr.stderr);
  const swapped = join(dir, 'swapped');
  mkdirSync(swapped);
  for (const f of readdirSync(clmRun)) copyTree(join(clmRun, f), join(swapped, f));
  const ck = join(swapped, 'checkpoints', readdirSync(join(swapped, 'checkpoints')).filter((n) => n.startsWith('step-')).sort().at(-1)!);
  const bytes = readFileSync(join(other, 'stackwise-tokenizer.json'));
  rmSync(join(ck, 'stackwise-tokenizer.json'));
  writeFileSync(join(ck, 'tokenizer.json'), bytes);
  const manifest = JSON.parse(readFileSync(join(ck, 'checkpoint.json'), 'utf8')) as { files: Record<string, { bytes: number; sha256: string }> };
  assert.ok(manifest.files['stackwise-tokenizer.json'], 'the checkpoint keeps the run tokenizer as stackwise-tokenizer.json');
  delete manifest.files['stackwise-tokenizer.json'];
  manifest.files['tokenizer.json'] = { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  writeFileSync(join(ck, 'checkpoint.json'), JSON.stringify(manifest));
  r = stackwise('sample', swapped, '--prompt', 'x');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /has a vocabulary of \d+ tokens, but the model's embedding has 300/);
  r = stackwise('sample', clmRun, '--temperature', '-1');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--temperature/);
  r = stackwise('eval', clmRun, '--split', 'train');
  assert.equal(r.status, 2);
  r = stackwise('sample', clmRun, '--bogus');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option/);
});

function copyTree(from: string, to: string): void {
  const entries = (() => { try { return readdirSync(from); } catch { return null; } })();
  if (entries === null) { copyFileSync(from, to); return; }
  mkdirSync(to, { recursive: true });
  for (const e of entries) copyTree(join(from, e), join(to, e));
}

test('sample/eval rebuild a progressive model with adapters (stack LoRA, progressive LoRA) from its checkpoint', () => {
  const path = join(dir, 'lora.yaml');
  writeFileSync(path, [
    'model:',
    '  preset: llama',
    '  d_model: 16',
    '  n_heads: 2',
    '  d_ff: 32',
    '  n_stacks: 2',
    '  blocks_per_stack: 1',
    '  progressive: { growth: fresh, freeze: adapters_only_trunk, stack_lora: { rank: 2, alpha: 4 }, progressive_lora: { rank: 2, alpha: 4 } }',
    'data: { corpus: sentiment, tokenizer: { kind: bpe, vocab_size: 300 }, seq_len: 16, batch_size: 4, eval_batches: 2 }',
    'optimizer: { lr: 0.01 }',
    'training: { total_steps: 8 }',
    'schedule:',
    '  - { name: one, start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }',
    '  - { name: two, start_t: 0.5, end_t: 1 }',
  ].join('\n'));
  const run = join(dir, 'lora');
  const t = stackwise('train', path, '--run-dir', run, '--no-report', '--json');
  assert.equal(t.status, 0, t.stderr);
  const trained = json(t.stdout) as { val_loss: number };
  const s = stackwise('sample', run, '--prompt', 'Good', '--max-tokens', '4', '--json');
  assert.equal(s.status, 0, s.stderr);
  const e = stackwise('eval', run, '--json', '--max-tokens', '64', '--batch-size', '2');
  assert.equal(e.status, 0, e.stderr);
  const r = json(e.stdout) as { loss: number };
  assert.ok(Math.abs(r.loss - trained.val_loss) < 0.5, `eval loss ${r.loss} close to the training validation loss ${trained.val_loss}`);
});

test('sample --mode depth: the time-as-depth unroll with the ladder a right→left run trained with', () => {
  const path = join(dir, 'depth.yaml');
  writeFileSync(path, [
    'model:',
    '  preset: llama',
    '  d_model: 16',
    '  n_heads: 2',
    '  d_ff: 32',
    '  n_stacks: 2',
    '  blocks_per_stack: 1',
    '  attention: bidirectional',
    '  progressive: { direction: prepend, freeze: frozen_suffix }',
    'data: { corpus: sentiment, tokenizer: { kind: bpe, vocab_size: 300 }, seq_len: 16, batch_size: 4, eval_batches: 1, objective: diffusion, mask: { kind: depth, levels: [1.0, 0.4] } }',
    'optimizer: { lr: 0.01 }',
    'training: { total_steps: 6 }',
    'schedule:',
    '  - { name: one, start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }',
    '  - { name: two, start_t: 0.5, end_t: 1 }',
  ].join('\n'));
  const run = join(dir, 'depth');
  const t = stackwise('train', path, '--run-dir', run, '--no-report', '--json');
  assert.equal(t.status, 0, t.stderr);
  const d = stackwise('sample', run, '--mode', 'depth', '--prompt', 'Good', '--max-tokens', '10', '--json');
  assert.equal(d.status, 0, d.stderr);
  const r = json(d.stdout) as { mode: string; samples: { text: string; ids: number[] }[] };
  assert.equal(r.mode, 'depth');
  assert.ok(!r.samples[0]!.text.includes('[MASK]'), 'one pass through the stacks unmasks everything');
  assert.ok(r.samples[0]!.ids.length >= 11);
  const bad = stackwise('sample', run, '--mode', 'depth', '--steps', '3');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--steps/);
});

test('sample, eval, inspect and export read a checkpoint folder alone (no run folder, no config.yaml)', () => {
  const ck = join(clmRun, 'checkpoints', readdirSync(join(clmRun, 'checkpoints')).filter((f) => f.startsWith('step-')).sort().at(-1)!);
  const alone = join(dir, 'alone', 'ck');
  copyTree(ck, alone);
  const args = ['--prompt', 'This movie was', '--max-tokens', '6', '--temperature', '0', '--json'];
  const a = stackwise('sample', clmRun, ...args);
  const b = stackwise('sample', alone, ...args);
  assert.equal(b.status, 0, b.stderr);
  assert.deepEqual(json(b.stdout).samples, json(a.stdout).samples);
  const ev = stackwise('eval', alone, '--max-tokens', '256', '--json');
  assert.equal(ev.status, 0, ev.stderr);
  assert.equal(json(ev.stdout).task, 'lm');
  const ins = stackwise('inspect', alone, '--json');
  assert.equal(ins.status, 0, ins.stderr);
  const report = json(ins.stdout) as { modelType: string; stacks: number[]; manifest: { rack: { stacks: unknown[] } } };
  assert.equal(report.modelType, 'stackwise');
  assert.deepEqual(report.stacks, [1]);
  assert.equal(report.manifest.rack.stacks.length, 1);
  const text = stackwise('inspect', alone);
  assert.match(text.stdout, /stack 0: id 0, 1 block, fp32/);
  const out = join(dir, 'alone-hf');
  const ex = stackwise('export', alone, '--out', out, '--json');
  assert.equal(ex.status, 0, ex.stderr);
  assert.ok(readdirSync(out).includes('config.json'));
});
