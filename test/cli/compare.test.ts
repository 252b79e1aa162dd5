// `stackwise compare` as a child process at a tiny size: a synthetic corpus, 2 phases growing
// 1 → 2 stacks, 2 seeds — equal FLOPs, both curves per seed, the page with its SVG charts and
// verdict; and bad input refused before anything is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stackwise } from './support.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'sw-compare-'));
}

function writeConfig(dir: string, schedule: boolean): string {
  const path = join(dir, schedule ? 'grow.yaml' : 'flat.yaml');
  writeFileSync(path, [
    'model: { preset: llama, d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 2, blocks_per_stack: 1 }',
    'data: { corpus: { kind: synthetic, vocab_size: 32, tokens: 4000 }, seq_len: 16, batch_size: 4, eval_batches: 2 }',
    'optimizer: { lr: 0.01 }',
    'training: { total_steps: 32, checkpoint_every: 0, eval_every: 8, tensorboard: false }',
    ...(schedule ? [
      'schedule:',
      '  - { name: one, start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }',
      '  - { name: two, start_t: 0.5, end_t: 1 }',
    ] : []),
  ].join('\n'));
  return path;
}

interface Run { variant: string; seed: number; steps: number; flops: number; final_val_loss: number; curve: { step: number; flops: number; val_loss: number }[]; phases: unknown[] }

test('compare: 2 seeds of a 1→2-stack config against end to end at equal FLOPs; compare.json, compare.html', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'out');
    const r = stackwise('compare', writeConfig(dir, true), '--seeds', '2', '--out', out, '--json');
    assert.equal(r.status, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as { ok: boolean; html: string; json: string };
    assert.equal(printed.ok, true);
    const data = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8')) as {
      progressive_steps: number; end_to_end_steps: number; flops_ratios: number[]; runs: Run[];
      verdict: { seeds: number; differences: number[]; text: string; mean_difference: number; standard_error: number };
    };
    assert.equal(data.progressive_steps, 32);
    // Half the steps on 1 stack cost about half of a 2-stack step: fewer end-to-end steps.
    assert.ok(data.end_to_end_steps > 16 && data.end_to_end_steps < 32, `end to end steps ${data.end_to_end_steps}`);
    assert.equal(data.flops_ratios.length, 2);
    for (const ratio of data.flops_ratios) assert.ok(Math.abs(ratio - 1) < 0.04, `equal FLOPs within 4%: ratio ${ratio}`);
    assert.equal(data.runs.length, 4);
    for (const seed of [0, 1]) {
      const runs = data.runs.filter((x) => x.seed === seed);
      assert.deepEqual(runs.map((x) => x.variant).sort(), ['end_to_end', 'progressive']);
      for (const run of runs) {
        assert.ok(run.curve.length >= 3, `${run.variant} seed ${seed}: a validation curve (${run.curve.length} points)`);
        for (let i = 1; i < run.curve.length; i++) assert.ok(run.curve[i]!.flops > run.curve[i - 1]!.flops, 'FLOPs grow along the curve');
        assert.equal(run.curve.at(-1)!.flops, run.flops, 'the final evaluation is at the run\'s total FLOPs');
        assert.equal(run.curve.at(-1)!.val_loss, run.final_val_loss);
        assert.ok(Number.isFinite(run.final_val_loss) && run.final_val_loss < run.curve[0]!.val_loss, 'validation loss falls');
        assert.equal(run.phases.length, run.variant === 'progressive' ? 2 : 1);
      }
      const prog = runs.find((x) => x.variant === 'progressive')!;
      const e2e = runs.find((x) => x.variant === 'end_to_end')!;
      assert.equal(data.verdict.differences[seed], prog.final_val_loss - e2e.final_val_loss);
      // Each run is a run folder of its own.
      assert.ok(existsSync(join(out, `seed-${seed}`, 'progressive', 'metrics.jsonl')));
      assert.ok(existsSync(join(out, `seed-${seed}`, 'end-to-end', 'report.html')));
    }
    assert.notEqual(data.verdict.differences[0], data.verdict.differences[1], 'the seeds train differently');
    assert.equal(data.verdict.seeds, 2);
    assert.ok(Number.isFinite(data.verdict.standard_error) && data.verdict.standard_error > 0);
    assert.match(data.verdict.text, /^(progressive is better by|end to end is better by|no clear difference:) .*\(2 seeds; 95% interval/);
    const html = readFileSync(join(out, 'compare.html'), 'utf8');
    for (const seed of [0, 1]) assert.match(html, new RegExp(`<svg id="chart-seed-${seed}"[^>]*>[\\s\\S]*?training FLOPs \\(estimated\\)[\\s\\S]*?</svg>`));
    assert.ok(html.includes(data.verdict.text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')), 'the verdict is on the page');
    assert.match(html, /<th>mean ± sd<\/th>/);
    assert.equal(printed.html, join(out, 'compare.html'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('compare: one seed says it cannot tell (text output)', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'out');
    const r = stackwise('compare', writeConfig(dir, true), '--steps', '16', '--set', 'training.eval_every=4', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /one seed cannot tell/);
    assert.match(r.stdout, /equal FLOPs: progressive 16 steps, end to end \d+ steps/);
    assert.ok(existsSync(join(out, 'compare.html')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('compare: a config that does not grow, bad --seeds, a used --out are refused before anything is written', () => {
  const dir = tmp();
  try {
    const out = join(dir, 'out');
    const flat = stackwise('compare', writeConfig(dir, false), '--out', out);
    assert.equal(flat.status, 1);
    assert.match(flat.stderr, /flat\.yaml: stackwise compare needs a progressive config — a schedule of two or more phases whose model grows/);
    assert.ok(!existsSync(out), 'no output folder');
    const json = stackwise('compare', writeConfig(dir, false), '--out', out, '--json');
    assert.equal(json.status, 1);
    assert.match((JSON.parse(json.stdout) as { error: { message: string } }).error.message, /needs a progressive config/);
    const seeds = stackwise('compare', writeConfig(dir, true), '--seeds', '0', '--out', out);
    assert.equal(seeds.status, 2);
    assert.match(seeds.stderr, /--seeds.*expected a positive integer, found '0'/);
    mkdirSync(out);
    writeFileSync(join(out, 'something'), 'x');
    const used = stackwise('compare', writeConfig(dir, true), '--out', out);
    assert.equal(used.status, 2);
    assert.match(used.stderr, /output folder .* exists and is not empty/);
    const missing = stackwise('compare', join(dir, 'nope.yaml'), '--out', join(dir, 'o2'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope\.yaml does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
