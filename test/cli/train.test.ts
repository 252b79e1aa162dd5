// `stackwise train` as a child process: the default config at a tiny scale, --json, resume after
// Ctrl-C, and bad input (nothing half-written).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, stackwise } from './support.js';

/** The default config shrunk: same corpus, tokenizer kind, model family and 1→2→4 growth. */
const SMALL = [
  '--set', 'model.d_model=32', '--set', 'model.n_heads=2', '--set', 'model.d_ff=64',
  '--set', 'data.tokenizer.vocab_size=300', '--set', 'data.seq_len=32', '--set', 'data.batch_size=8',
  '--set', 'data.eval_batches=2', '--set', 'training.eval_every=0', '--set', 'training.checkpoint_every=0',
  '--set', 'optimizer.lr=0.01',
];

function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function syntheticConfig(dir: string, steps: number, extra = ''): string {
  const path = join(dir, 'synthetic.yaml');
  writeFileSync(path, [
    'model: { preset: llama, d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 2, blocks_per_stack: 1 }',
    'data: { corpus: { kind: synthetic, vocab_size: 32, tokens: 4000 }, seq_len: 16, batch_size: 4, eval_batches: 2 }',
    'optimizer: { lr: 0.01 }',
    `training: { total_steps: ${steps}, checkpoint_every: 0 }`,
    'schedule:',
    '  - { name: one, start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }',
    '  - { name: two, start_t: 0.5, end_t: 1 }',
    extra,
  ].join('\n'));
  return path;
}

test('the default config at a small scale: grows 1→2→4 stacks on SOTU, loss falls, report written', () => {
  const dir = tmp('sw-train-');
  try {
    const run = join(dir, 'run');
    const r = stackwise('train', '--run-dir', run, '--steps', '36', ...SMALL, '--json');
    assert.equal(r.status, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    assert.equal(lines[0]!.type, 'start');
    const phases = lines.filter((l) => l.type === 'phase_start');
    assert.deepEqual(phases.map((p) => p.stacks), [1, 2, 4]);
    // The progressive plane's memory and compute report of every phase, after its phase_start line.
    const resources = lines.filter((l) => l.type === 'resources') as { n_stacks: number; params: { trainable: number } }[];
    assert.deepEqual(resources.map((r) => r.n_stacks), [1, 2, 4]);
    assert.deepEqual(resources.map((r) => r.params.trainable), phases.map((p) => p.trainable_params));
    const result = lines.at(-1)!;
    assert.equal(result.type, 'result');
    assert.equal(result.ok, true);
    assert.equal(result.stacks, 4);
    assert.equal(result.steps, 36);
    assert.ok(typeof result.val_perplexity === 'number' && Number.isFinite(result.val_perplexity), 'validation perplexity reported');
    for (const f of ['report.html', 'report-loss.svg', 'config.yaml', 'metrics.jsonl', 'stackwise-tokenizer.json']) assert.ok(existsSync(join(run, f)), f);
    const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"step"')).map((l) => JSON.parse(l) as { loss: number });
    assert.equal(steps.length, 36);
    const first = steps.slice(0, 3).reduce((a, s) => a + s.loss, 0) / 3;
    const last = steps.slice(-6).reduce((a, s) => a + s.loss, 0) / 6;
    assert.ok(last < first - 0.5, `loss falls: first steps ${first.toFixed(3)}, last steps ${last.toFixed(3)}`);
    const evals = readFileSync(join(run, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"eval"')).map((l) => JSON.parse(l) as { nll: number });
    assert.ok(evals.length >= 3 && evals.at(-1)!.nll < evals[0]!.nll, 'validation loss falls across the phases');
    const report = JSON.parse(readFileSync(join(run, 'report-data.json'), 'utf8')) as { events: { kind: string }[]; stack_timeline: { stacks: unknown[] }[] };
    assert.equal(report.events.filter((e) => e.kind === 'grow').length, 3, 'three growth events (1→2, 2→3, 3→4 stacks)');
    assert.equal(report.stack_timeline.at(-1)!.stacks.length, 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Ctrl-C writes a checkpoint and exits 130; --resume finishes the run', async () => {
  const dir = tmp('sw-train-');
  try {
    const cfg = syntheticConfig(dir, 3000);
    const run = join(dir, 'run');
    const child = spawn(process.execPath, [BIN, 'train', cfg, '--run-dir', run, '--json'], { cwd: ROOT });
    let out = '';
    let err = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (!sent && out.includes('"type":"step"')) { sent = true; child.kill('SIGINT'); }
      });
      child.on('close', (c) => resolve(c));
    });
    assert.equal(code, 130, err);
    assert.match(err, /interrupted at step \d+\/3000/);
    assert.match(err, /--resume/);
    const interrupted = jsonLines(out).find((l) => l.type === 'interrupted')!;
    assert.ok(interrupted && existsSync(interrupted.checkpoint as string));
    // A second fresh start into the same folder is refused (usage), the run is untouched.
    const again = stackwise('train', cfg, '--run-dir', run);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already holds checkpoints.*--resume/);
    const r = stackwise('train', '--resume', run, '--steps', '3000', '--json');
    assert.equal(r.status, 0, r.stderr);
    const result = jsonLines(r.stdout).at(-1)!;
    assert.equal(result.type, 'result');
    assert.equal(result.resumed_from, interrupted.step);
    assert.equal(result.steps, 3000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input: clear message, non-zero exit, no run folder left behind', () => {
  const dir = tmp('sw-train-');
  try {
    const run = join(dir, 'run');
    const files = (paths: string) => ['--set', `data.corpus={kind: files, paths: ${paths}}`];
    const cases: { args: string[]; status: number; message: RegExp }[] = [
      { args: files(`[${join(dir, 'missing.txt')}]`), status: 1, message: /missing\.txt does not exist/ },
      { args: files(`[${join(dir, 'empty.txt')}]`), status: 1, message: /empty\.txt is empty/ },
      { args: files(`[${join(dir, 'latin1.txt')}]`), status: 1, message: /latin1\.txt is not valid UTF-8/ },
      { args: ['--set', `data.tokenizer.path=${join(dir, 'tok.json')}`, '--set', 'model.vocab_size=1000'], status: 1, message: /tok\.json has a vocabulary of \d+ tokens, but model\.vocab_size is 1000/ },
      { args: ['--set', 'model.d_modl=3'], status: 1, message: /d_modl/ },
      { args: ['--bogus-flag'], status: 2, message: /unknown option '--bogus-flag'/ },
      { args: ['--steps', 'zero'], status: 2, message: /--steps/ },
      { args: [join(dir, 'nope.yaml')], status: 1, message: /nope\.yaml does not exist/ },
    ];
    writeFileSync(join(dir, 'empty.txt'), '');
    writeFileSync(join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    // A tokenizer saved by an earlier run (vocab 300) used with a model of another vocabulary.
    writeFileSync(join(dir, 'corpus.txt'), 'the quick brown fox jumps over the lazy dog\n'.repeat(200));
    const small = ['--steps', '4', ...SMALL];
    const mk = stackwise('train', '--run-dir', join(dir, 'tokrun'), ...small, ...files(`[${join(dir, 'corpus.txt')}]`), '--set', `data.tokenizer.path=${join(dir, 'tok.json')}`, '--set', 'data.split.val=0', '--set', 'data.split.test=0', '--no-report');
    assert.equal(mk.status, 0, mk.stderr);
    assert.match(mk.stderr, /phase '[^']+' from step 0 .*\n  memory and compute: params [\d.]+K? trainable .* adamw state [\d.]+ MB.*; train [\d.]+[KMG]? FLOP\/token/);
    assert.ok(existsSync(join(dir, 'tok.json')));
    for (const c of cases) {
      const r = stackwise('train', ...c.args.filter((a) => a.endsWith('.yaml')), '--run-dir', run, ...small, ...c.args.filter((a) => !a.endsWith('.yaml')));
      assert.equal(r.status, c.status, `${c.args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, c.message);
      assert.ok(!existsSync(run), `${c.args.join(' ')}: no run folder left behind`);
    }
    const unknown = stackwise('trian');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command 'trian'/);
    for (const cmd of ['train', 'sample', 'eval']) {
      const h = stackwise(cmd, '--help');
      assert.equal(h.status, 0);
      assert.match(h.stdout, /Usage: stackwise/);
      assert.match(h.stdout, /Exit codes/);
    }
    assert.deepEqual(readdirSync(dir).sort(), ['corpus.txt', 'empty.txt', 'latin1.txt', 'tok.json', 'tokrun']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
