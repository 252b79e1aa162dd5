// `stackwise export` of every kind of run: an NF4 trunk with progressive LoRA is dequantized
// (adapters as PEFT files or merged), the tokenizer goes with the weights, and a run Hugging
// Face cannot represent is refused with the exact condition named.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../src/engine/index.js';
import { loadHF, loadHFTokenizer } from '../../src/io/index.js';
import { QuantizedLinear } from '../../src/nn/index.js';
import { loadRun } from '../../src/training/run/index.js';
import { repoRoot, stackwise } from './support.js';

let dir = '';
let nf4Run = '';

function writeConfig(name: string, lines: string[]): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, lines.join('\n'));
  return path;
}

const TINY_DATA = 'data: { corpus: sentiment, tokenizer: { kind: bpe, vocab_size: 300 }, seq_len: 16, batch_size: 4, eval_batches: 1, objective: clm }';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sw-export-every-'));
  nf4Run = join(dir, 'nf4');
  const config = writeConfig('nf4', [
    'model:',
    '  preset: llama',
    '  d_model: 32',
    '  n_heads: 2',
    '  d_ff: 48',
    '  n_stacks: 2',
    '  blocks_per_stack: 1',
    '  progressive: { growth: copy_top, freeze: adapters_only_trunk, trunk_format: nf4, progressive_lora: { rank: 4, alpha: 8, targets: [q, v, up] } }',
    TINY_DATA,
    'optimizer: { lr: 0.01 }',
    'training: { total_steps: 8, eval_every: 4, checkpoint_every: 4 }',
    'schedule:',
    '  - { name: one, start_t: 0.0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }',
    '  - { name: two, start_t: 0.5, end_t: 1.0, overrides: { model: { n_stacks: 2 } } }',
  ]);
  const r = stackwise('train', config, '--run-dir', nf4Run, '--no-report');
  assert.equal(r.status, 0, r.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function logits(model: { forward(ids: E.Tensor): { logits: E.Tensor } }): Float32Array | Float64Array {
  const ids = E.tensor(new Int32Array([5, 17, 99, 3, 250, 7, 42, 11]), [1, 8], { dtype: 'int32' });
  return E.noGrad(() => model.forward(ids).logits.toArray()) as Float32Array;
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst <= tol, `${what}: max |Δ| ${worst} > ${tol}`);
}

test('an NF4 trunk with progressive LoRA exports dequantized: PEFT adapter files, or merged, same logits', () => {
  const trained = loadRun(nf4Run);
  assert.ok(trained.model.namedModules().some(([, m]) => m instanceof QuantizedLinear), 'the run has quantized layers');
  const want = logits(trained.model);
  for (const adapters of ['separate', 'merge'] as const) {
    const out = join(dir, `hf-${adapters}`);
    const e = stackwise('export', nf4Run, '--out', out, '--adapters', adapters, '--json');
    assert.equal(e.status, 0, e.stderr);
    const files = (JSON.parse(e.stdout) as { files: string[] }).files;
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) assert.ok(files.includes(f), f);
    assert.equal(files.includes('adapter_config.json'), adapters === 'separate');
    const loaded = loadHF(out);
    assert.equal(loaded.adapter !== undefined, adapters === 'separate');
    assertClose(logits(loaded.model), want, 1e-4, `--adapters ${adapters}`);
    loaded.model.dispose();
    // The tokenizer is the run's: same ids.
    const text = 'The movie was great, and the acting superb!';
    assert.deepEqual(Array.from(loadHFTokenizer(out)!.encode(text)), Array.from(trained.tokenizer!.encode(text)));
  }
  // --dtype float16: half weights, close logits.
  const half = join(dir, 'hf-f16');
  const e = stackwise('export', nf4Run, '--out', half, '--dtype', 'float16', '--adapters', 'merge');
  assert.equal(e.status, 0, e.stderr);
  assert.equal((JSON.parse(readFileSync(join(half, 'config.json'), 'utf8')) as { dtype: string }).dtype, 'float16');
  const loaded = loadHF(half);
  assertClose(logits(loaded.model), want, 5e-2, '--dtype float16');
  loaded.model.dispose();
  // The run's own model still has its quantized layers after the export (nothing was changed in place).
  assert.ok(trained.model.namedModules().some(([, m]) => m instanceof QuantizedLinear));
  assertClose(logits(trained.model), want, 0, 'the run after export');
  trained.model.dispose();
});

test('a diffusion run is refused naming the condition: bidirectional attention vs a causal LlamaForCausalLM', () => {
  const run = join(dir, 'diffusion');
  const config = writeConfig('diffusion', [
    'model: { preset: llama, d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 1, blocks_per_stack: 1 }',
    TINY_DATA.replace('objective: clm', 'objective: diffusion'),
    'optimizer: { lr: 0.01 }',
    'training: { total_steps: 2 }',
  ]);
  const r = stackwise('train', config, '--run-dir', run, '--no-report');
  assert.equal(r.status, 0, r.stderr);
  const out = join(dir, 'hf-diffusion');
  const e = stackwise('export', run, '--out', out);
  assert.equal(e.status, 1);
  assert.match(e.stderr, /attention is bidirectional \(objective diffusion\); Hugging Face LlamaForCausalLM is causal/);
  assert.ok(!existsSync(out), 'nothing half-written');
});

test('eval --text (text and JSONL files) and sample / eval / inspect of a Hugging Face folder give the run\'s numbers', () => {
  const hf = join(dir, 'hf-separate'); // written by the NF4 test above, with its tokenizer
  const text = join(dir, 'held-out.txt');
  const jsonl = join(dir, 'held-out.jsonl');
  writeFileSync(text, 'The movie was great. I loved the acting and the music.\nTerrible service, would not go back.\n');
  writeFileSync(jsonl, '{"text": "Good food and friendly staff."}\n{"text": "The plot made no sense at all, sadly."}\n');
  const fromRun = stackwise('eval', nf4Run, '--text', text, jsonl, '--seq-len', '8', '--json');
  assert.equal(fromRun.status, 0, fromRun.stderr);
  const a = JSON.parse(fromRun.stdout) as Record<string, number>;
  assert.equal(a['task'] as unknown, 'text');
  assert.equal(a['documents'], 3);
  assert.ok(a['bits_per_byte']! > 0 && Number.isFinite(a['bits_per_byte']));
  assert.ok(Math.abs(a['perplexity']! - Math.exp(a['loss']!)) < 1e-9);
  const fromHF = stackwise('eval', hf, '--text', text, jsonl, '--seq-len', '8', '--json');
  assert.equal(fromHF.status, 0, fromHF.stderr);
  const b = JSON.parse(fromHF.stdout) as Record<string, number>;
  for (const k of ['scored', 'bytes', 'text_tokens']) assert.equal(b[k], a[k], k);
  for (const k of ['loss', 'bits_per_byte']) assert.ok(Math.abs(b[k]! - a[k]!) < 1e-4, `${k}: ${b[k]} vs ${a[k]}`);
  // The run's own split reports bits per byte too.
  const split = stackwise('eval', nf4Run, '--json');
  assert.equal(split.status, 0, split.stderr);
  assert.ok((JSON.parse(split.stdout) as { bits_per_byte: number }).bits_per_byte > 0);
  // A Hugging Face folder has no splits: the message says what to do.
  const noSplit = stackwise('eval', hf);
  assert.equal(noSplit.status, 2);
  assert.match(noSplit.stderr, /is a Hugging Face folder: it has no corpus splits; evaluate it on files with --text/);
  // sample: the same greedy continuation from the run and from its export.
  const s1 = stackwise('sample', nf4Run, '--prompt', 'The movie', '--max-tokens', '6', '--temperature', '0', '--json');
  const s2 = stackwise('sample', hf, '--prompt', 'The movie', '--max-tokens', '6', '--temperature', '0', '--json');
  assert.equal(s1.status, 0, s1.stderr);
  assert.equal(s2.status, 0, s2.stderr);
  const samples = (r: { stdout: string }) => (JSON.parse(r.stdout) as { samples: unknown }).samples;
  assert.deepEqual(samples(s2), samples(s1));
  const ins = stackwise('inspect', hf);
  assert.equal(ins.status, 0, ins.stderr);
  assert.match(ins.stdout, /LMHead/);
});

test('data.tokenizer {kind: hf}: a run trains with a Hugging Face tokenizer.json, keeps a copy, and exports it back', () => {
  const fixture = join(repoRoot(), 'test', 'fixtures', 'hf-tokenizer', 'hf-trained.tokenizer.json');
  const run = join(dir, 'hf-tok');
  const config = writeConfig('hf-tok', [
    'model: { preset: llama, d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 1, blocks_per_stack: 1 }',
    `data: { corpus: sentiment, tokenizer: { kind: hf, path: ${JSON.stringify(fixture)} }, seq_len: 16, batch_size: 4, eval_batches: 1, objective: clm }`,
    'optimizer: { lr: 0.01 }',
    'training: { total_steps: 2 }',
  ]);
  const r = stackwise('train', config, '--run-dir', run, '--no-report');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(run, 'stackwise-tokenizer.json')));
  const trained = loadRun(run);
  const fromFile = loadHFTokenizer(join(repoRoot(), 'test', 'fixtures', 'hf-tokenizer'));
  assert.equal(fromFile, null, 'the fixture folder has no tokenizer.json of that name');
  assert.equal(trained.model.embedding.vocabSize, trained.tokenizer!.vocabSize);
  trained.model.dispose();
  const out = join(dir, 'hf-tok-export');
  const e = stackwise('export', run, '--out', out);
  assert.equal(e.status, 0, e.stderr);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(fixture, 'utf8')));
});
