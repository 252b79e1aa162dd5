// `stackwise eval` on masked-diffusion runs: the NELBO perplexity bound (plain and, for a
// time-as-depth run, its depth unroll) with standard errors and bits per byte; `--task samples`
// judged by a causal run, for diffusion and causal runs alike.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stackwise } from './support.js';

let dir = '';
let clmRun = '';
let depthRun = '';
let mdlmRun = '';

const MODEL = 'preset: llama, d_model: 16, n_heads: 2, d_ff: 32, blocks_per_stack: 1';
const DATA = 'corpus: sentiment, tokenizer: { kind: bpe, vocab_size: 300 }, seq_len: 16, batch_size: 8, eval_batches: 2';

function write(name: string, lines: string[]): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, lines.join('\n'));
  return path;
}

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sw-eval-diff-'));
  clmRun = join(dir, 'clm');
  depthRun = join(dir, 'depth');
  mdlmRun = join(dir, 'mdlm');
  const configs: [string, string][] = [
    [clmRun, write('clm', [`model: { ${MODEL}, n_stacks: 1 }`, `data: { ${DATA}, objective: clm }`, 'optimizer: { lr: 0.01 }', 'training: { total_steps: 30 }'])],
    [mdlmRun, write('mdlm', [`model: { ${MODEL}, n_stacks: 1, time_embedding: { features: 8, hidden: 16 } }`, `data: { ${DATA}, objective: diffusion }`, 'optimizer: { lr: 0.01 }', 'training: { total_steps: 20 }'])],
    [depthRun, write('depth', [
      `model: { ${MODEL}, n_stacks: 2, attention: bidirectional, progressive: { direction: prepend, freeze: none } }`,
      `data: { ${DATA}, objective: diffusion, mask: { kind: depth, levels: [1.0, 0.4] } }`,
      'optimizer: { lr: 0.01 }',
      'training: { total_steps: 20, eval_every: 10, eval_elbo_samples: 2 }',
      'schedule:',
      '  - { name: a, start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }',
      '  - { name: b, start_t: 0.5, end_t: 1 }',
    ])],
  ];
  for (const [run, cfg] of configs) {
    const r = stackwise('train', cfg, '--run-dir', run, '--no-report', '--json');
    assert.equal(r.status, 0, r.stderr);
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface Bound { bound: string; label: string; nelbo: number; nelbo_se: number; perplexity_bound: number; perplexity_bound_se: number; bits_per_byte: number; bits_per_byte_se: number; samples: number; windows: number }

test('eval --json on a time-as-depth diffusion run: the plain and the depth-unroll NELBO bounds, each with its standard error and bits per byte; seeded', () => {
  const a = stackwise('eval', depthRun, '--max-tokens', '800', '--elbo-samples', '4', '--json');
  assert.equal(a.status, 0, a.stderr);
  const r = json(a.stdout) as { objective: string; bytes: number; bits_per_byte: number; nelbo: { samples: number; continuous: Bound; depth_unroll: Bound } };
  assert.equal(r.objective, 'diffusion');
  assert.equal(r.nelbo.samples, 4);
  for (const b of [r.nelbo.continuous, r.nelbo.depth_unroll]) {
    assert.ok(b.nelbo > 0 && b.nelbo < Math.log(300) * 2, `${b.bound}: ${b.nelbo} nats/token`);
    assert.ok(b.nelbo_se > 0 && b.nelbo_se < b.nelbo);
    assert.ok(Math.abs(b.perplexity_bound - Math.exp(b.nelbo)) < 1e-9 * b.perplexity_bound);
    assert.ok(b.bits_per_byte > 0 && b.bits_per_byte_se > 0);
    assert.equal(b.samples, 4);
    assert.equal(b.windows, 50);
  }
  assert.equal(r.nelbo.continuous.bound, 'continuous');
  assert.equal(r.nelbo.depth_unroll.bound, 'depth_unroll');
  assert.match(r.nelbo.depth_unroll.label, /as it samples/);
  assert.equal(r.bits_per_byte, r.nelbo.continuous.bits_per_byte);
  assert.ok(r.bytes > 800, 'BPE tokens stand for more than one byte each');
  const again = stackwise('eval', depthRun, '--max-tokens', '800', '--elbo-samples', '4', '--json');
  assert.deepEqual((json(again.stdout) as typeof r).nelbo, r.nelbo, 'same seed, same figures');
  const other = stackwise('eval', depthRun, '--max-tokens', '800', '--elbo-samples', '4', '--seed', '5', '--json');
  assert.notEqual((json(other.stdout) as typeof r).nelbo.continuous.nelbo, r.nelbo.continuous.nelbo);
  const text = stackwise('eval', depthRun, '--max-tokens', '800', '--elbo-samples', '2');
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /NELBO, plain model \(continuous-time bound\): \d+\.\d+ ± \d+\.\d+ nats\/token, perplexity ≤ \d+\.\d+ ± \d+\.\d+, \d+\.\d+ ± \d+\.\d+ bits per byte \(2 draws × 50 windows of 16\)/);
  assert.match(text.stdout, /NELBO, as it samples \(depth unroll through the stacks\)/);
  // Periodic evaluation wrote the (plain) bound into metrics.jsonl.
  const evals = readFileSync(join(depthRun, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"eval"')).map((l) => JSON.parse(l) as { nelbo: number; nelbo_se: number; perplexity_bound: number; elbo_samples: number });
  assert.ok(evals.length >= 2);
  for (const e of evals) {
    assert.equal(e.elbo_samples, 2);
    assert.ok(e.nelbo > 0 && e.nelbo_se > 0 && Math.abs(e.perplexity_bound - Math.exp(e.nelbo)) < 1e-6 * e.perplexity_bound);
  }
});

test('eval on a time-as-input MDLM run: the plain bound only; causal runs get bits per byte and refuse --elbo-samples', () => {
  const m = stackwise('eval', mdlmRun, '--max-tokens', '400', '--json');
  assert.equal(m.status, 0, m.stderr);
  const rm = json(m.stdout) as { nelbo: { samples: number; continuous: Bound; depth_unroll: null } };
  assert.equal(rm.nelbo.samples, 8, 'default draws per window');
  assert.equal(rm.nelbo.depth_unroll, null);
  assert.ok(rm.nelbo.continuous.nelbo > 0);
  const c = stackwise('eval', clmRun, '--max-tokens', '400', '--json');
  assert.equal(c.status, 0, c.stderr);
  const rc = json(c.stdout) as { perplexity: number; loss: number; scored: number; bytes: number; bits_per_byte: number; nelbo: null };
  assert.equal(rc.nelbo, null);
  // Bits per byte of a causal run: the text tokens' NLL in bits over their UTF-8 bytes (special
  // tokens such as EOS count in neither; training/evaluation/text-eval.ts, checked there).
  assert.ok(rc.bytes > 0 && rc.bits_per_byte > 0 && Number.isFinite(rc.bits_per_byte));
  assert.ok(rc.bits_per_byte < (rc.loss * rc.scored) / (Math.LN2 * rc.bytes) * 1.5, 'close to the plain ratio');
  const bad = stackwise('eval', clmRun, '--elbo-samples', '4');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /NELBO bound is for masked-diffusion runs; this run's objective is clm/);
  const one = stackwise('eval', mdlmRun, '--elbo-samples', '1');
  assert.equal(one.status, 2);
  assert.match(one.stderr, /--elbo-samples: expected an integer ≥ 2/);
});

test('eval --task samples: generative perplexity under a causal judge and unigram entropy, for diffusion and causal runs', () => {
  for (const [run, sampler] of [[depthRun, 'depth'], [mdlmRun, 'diffusion'], [clmRun, 'clm']] as const) {
    const s = stackwise('eval', run, '--task', 'samples', '--judge', clmRun, '--samples', '3', '--json');
    assert.equal(s.status, 0, s.stderr);
    const r = json(s.stdout) as { sampler: string; samples: number; length: number; generative_perplexity: number; entropy: number; entropy_se: number; judge_tokens: number; reference: { generative_perplexity: number; entropy: number; samples: number } };
    assert.equal(r.sampler, sampler);
    assert.equal(r.samples, 3);
    assert.equal(r.length, 16, "the run's seq_len");
    assert.ok(r.generative_perplexity > 1 && Number.isFinite(r.generative_perplexity));
    assert.ok(r.entropy > 0 && r.entropy <= Math.log(16) + 1e-9, `entropy ${r.entropy} ≤ ln 16`);
    assert.ok(r.judge_tokens > 0);
    assert.equal(r.reference.samples, 3);
    assert.ok(r.reference.generative_perplexity > 1 && r.reference.entropy > 0);
  }
  const text = stackwise('eval', mdlmRun, '--task', 'samples', '--judge', clmRun, '--samples', '2', '--steps', '4');
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /2 samples of 16 tokens \(diffusion sampler, temperature 1\): generative perplexity \d+\.\d+, entropy/);
  const noJudge = stackwise('eval', mdlmRun, '--task', 'samples');
  assert.equal(noJudge.status, 2);
  assert.match(noJudge.stderr, /--task samples needs --judge/);
  const badJudge = stackwise('eval', clmRun, '--task', 'samples', '--judge', mdlmRun, '--samples', '1');
  assert.equal(badJudge.status, 1);
  assert.match(badJudge.stderr, /the judge must be a causal LM run \(its objective is diffusion\)/);
  const stray = stackwise('eval', clmRun, '--judge', clmRun);
  assert.equal(stray.status, 2);
  assert.match(stray.stderr, /apply to --task samples/);
});
