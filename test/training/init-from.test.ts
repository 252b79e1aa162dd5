// model.init.from / `train --from`: a run that starts from a pretrained model (a Hugging Face
// folder or a StackWise run), its architecture and tokenizer taken from the folder, with growth
// (LLaMA Pro block expansion, SOLAR depth up-scaling), LoRA-only fine-tuning and an NF4 trunk on top.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../src/engine/index.js';
import { QuantizedLinear, type Model } from '../../src/nn/index.js';
import { loadModel } from '../../src/training/model-manifest/index.js';
import { loadInitModel } from '../../src/training/init-from.js';
import { loadPretrained } from '../../src/io/hf/index.js';
import { ConfigError } from '../../src/framework/config/errors.js';
import { ProgressivePlane, TrainingMachine, defineConfig, parameterEntries } from '../../src/training/index.js';
import { exportModel, prepareTrainingRun } from '../../src/training/run/index.js';
import { planRun } from '../../src/training/plan/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sw-init-from-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const PRETRAIN = join(dir, 'pretrain');
const HF = join(dir, 'hf');
const DATA = { corpus: 'sotu', tokenizer: { kind: 'bpe', vocab_size: 300 }, seq_len: 16, batch_size: 4, objective: 'clm', eval_batches: 1 };
const TRAINING = { eval_every: 0, checkpoint_every: 0, progress: 'off', tensorboard: false, seed: 3 };

before(() => {
  // A tiny 4-block model (one block per stack) pretrained on SOTU, exported to Hugging Face.
  const m = new TrainingMachine({
    model: { preset: 'llama', d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 4, blocks_per_stack: 1, tie_embeddings: true },
    data: DATA, optimizer: { lr: 3e-3 }, training: { ...TRAINING, total_steps: 12 },
  }, { runDir: PRETRAIN });
  m.train();
  m.dispose();
  exportModel(PRETRAIN, { out: HF });
});

/** The new corpus: Moby-Dick, with the folder's tokenizer (filled in from model.init.from). */
function config(from: string, model: Record<string, unknown>, steps = 16): Record<string, unknown> {
  return {
    model: { init: { from }, ...model },
    data: { corpus: 'moby-dick', seq_len: 16, batch_size: 4, objective: 'clm', eval_batches: 1 },
    optimizer: { lr: 1e-2 }, training: { ...TRAINING, total_steps: steps },
  };
}

function logits(model: Model, ids: E.Tensor): Float32Array {
  return E.tidy(() => E.noGrad(() => model.forward(ids).logits.toArray())) as Float32Array;
}

const snapshot = (m: Model) => new Map(parameterEntries(m).map(([n, t]) => [n, Float32Array.from(t.toArray())]));
const changed = (a: Float32Array, b: Float32Array | undefined) => !b || a.some((v, i) => v !== b[i]);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('the folder gives the architecture and the tokenizer; a config that restates a size must agree', () => {
  const parsed = defineConfig(config(HF, {}));
  const model = parsed.phases[0]!.model!;
  assert.equal(model.preset, 'llama');
  assert.equal(model.d_model, 16);
  assert.equal(model.n_heads, 2);
  assert.equal(model.d_ff, 32);
  assert.equal(model.n_stacks, 4);
  assert.equal(model.blocks_per_stack, 1);
  assert.equal(model.tie_embeddings, true);
  assert.deepEqual(parsed.phases[0]!.data!.tokenizer, { kind: 'hf', path: HF });
  // The same value is fine; another one names both.
  assert.equal(defineConfig(config(HF, { d_model: 16 })).phases[0]!.model!.d_model, 16);
  const conflict = (model: Record<string, unknown>, ...res: RegExp[]) => assert.throws(() => defineConfig(config(HF, model)), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    for (const re of res) assert.match(e.message, re);
    return true;
  });
  conflict({ d_model: 32 }, /model\.d_model: expected 16, the value of .*hf \(.*config\.json\).* found 32/);
  conflict({ n_heads: 4, preset: 'gpt2' }, /model\.n_heads: expected 2/, /model\.preset: expected 'llama'.* found 'gpt2'/);
  conflict({ n_stacks: 2 }, /model\.n_stacks: expected at least 4, the stacks of .*hf \(4 blocks in stacks of 1\)/);
  conflict({ blocks_per_stack: 3 }, /model\.blocks_per_stack: expected a divisor of the 4 blocks of .*hf, cut into equal stacks/);
  assert.equal(defineConfig(config(HF, { blocks_per_stack: 2 })).phases[0]!.model!.n_stacks, 2, 'a Hugging Face folder is cut into stacks of blocks_per_stack');
  assert.throws(() => defineConfig({ ...config(HF, {}), data: { ...(config(HF, {})['data'] as object), tokenizer: 'gpt2' } }), /data\.tokenizer: expected \{"kind":"hf".* found "gpt2"/);
  assert.throws(() => defineConfig(config(join(dir, 'nowhere'), {})), /model\.init\.from: .*nowhere: no such folder/);
  // A run folder gives its manifest's architecture and its own tokenizer file.
  const fromRun = defineConfig(config(PRETRAIN, {})).phases[0]!;
  assert.equal(fromRun.model!.n_stacks, 4);
  assert.equal((fromRun.data!.tokenizer as { kind: string }).kind, 'bpe');
  assert.match(String((fromRun.data!.tokenizer as { path?: string }).path), /stackwise-tokenizer\.json$/);
});

test('LLaMA Pro from a Hugging Face folder: logits identical right after expansion, only the new blocks train, loss falls', () => {
  const ids = E.randInt([2, 12], 300, { seed: 4 });
  const pre = loadPretrained(HF).model;
  pre.eval();
  const want = logits(pre, ids);
  pre.dispose();
  const m = new TrainingMachine(config(HF, { n_stacks: 6, progressive: { growth: 'block_expansion', freeze: { new_stack: 'train', trunk: 'frozen', embedding: 'frozen', head: 'frozen' } } }, 40));
  let atStart: Float32Array | undefined;
  let start = new Map<string, Float32Array>();
  m.addCallback({
    onPhaseStart: (_p, mm) => {
      mm.model.model.eval();
      atStart = logits(mm.model.model, ids);
      mm.model.model.train();
      start = snapshot(mm.model.model);
    },
  });
  const r = m.train();
  assert.equal(m.model.model.rack.numStacks, 6);
  // `stackwise plan` knows the run starts with the folder's 4 stacks and inserts 2 (positions 2 and 5).
  const plan = planRun(m.parsed).phases[0]!;
  assert.deepEqual(plan.newStacks, [2, 5]);
  assert.equal(plan.params.trainable, m.model.model.numParameters({ trainableOnly: true }));
  assert.deepEqual(Array.from(atStart!), Array.from(want), 'the expanded model computes the pretrained logits bit for bit');
  const moved = [...snapshot(m.model.model)].filter(([n, v]) => changed(v, start.get(n))).map(([n]) => n);
  assert.ok(moved.length > 0);
  assert.ok(moved.every((n) => /^rack\.stacks\.[25]\./.test(n)), `only the new stacks 2 and 5 train: ${moved.filter((n) => !/^rack\.stacks\.[25]\./.test(n)).join(', ')}`);
  assert.ok(mean(r.losses.slice(-8)) < mean(r.losses.slice(0, 8)), `loss falls (${mean(r.losses.slice(0, 8))} → ${mean(r.losses.slice(-8))})`);
  m.dispose();
});

test('SOLAR from a run folder: 4 → 6 stacks as A[0,3) ++ B[1,4), then everything trains', () => {
  const m = new TrainingMachine(config(PRETRAIN, { n_stacks: 6, progressive: { growth: 'depth_upscaling', freeze: 'none' } }));
  let blocks: string[] = [];
  m.addCallback({
    onPhaseStart: (_p, mm) => {
      blocks = mm.model.model.rack.stacks.toArray().map((s) => JSON.stringify(Array.from(s.blocks.at(0).attn.getModule('q').parameters()[0]!.toArray().slice(0, 8))));
    },
  });
  const r = m.train();
  const pre = loadPretrained(HF).model;
  const orig = pre.rack.stacks.toArray().map((s) => JSON.stringify(Array.from(s.blocks.at(0).attn.getModule('q').parameters()[0]!.toArray().slice(0, 8))));
  pre.dispose();
  assert.deepEqual(blocks, [orig[0], orig[1], orig[2], orig[1], orig[2], orig[3]]);
  assert.ok(r.losses.every(Number.isFinite));
  m.dispose();
});

test('LoRA-only fine-tuning of a pretrained model, and an NF4 trunk under block expansion', () => {
  // Stack LoRA on the pretrained stacks, their base weights, the embedding and the head frozen.
  const lora = new TrainingMachine(config(HF, { progressive: { stack_lora: { rank: 2, alpha: 4, train_base: false }, freeze: { new_stack: 'adapters', embedding: 'frozen', head: 'frozen' } } }, 8));
  const before = snapshot(lora.model.model);
  lora.train();
  const moved = [...snapshot(lora.model.model)].filter(([n, v]) => changed(v, before.get(n))).map(([n]) => n);
  assert.ok(moved.length > 0 && moved.every((n) => /lora_[AB]$/.test(n)), `only adapters train: ${moved.join(', ')}`);
  lora.dispose();
  // Block expansion with the old blocks stored as NF4 (frozen), adapters on them, the new blocks in fp32.
  const nf4 = new TrainingMachine(config(HF, { n_stacks: 6, progressive: { growth: 'block_expansion', freeze: 'adapters_only_trunk', trunk_format: 'nf4', progressive_lora: { rank: 2, alpha: 4 } } }, 8));
  const plane = ProgressivePlane.attach(nf4);
  const r = nf4.train();
  assert.deepEqual(plane.builder.toSpec().stacks.map((s) => s.weight_format ?? 'fp32'), ['nf4', 'nf4', 'fp32', 'nf4', 'nf4', 'fp32']);
  assert.ok(r.losses.every(Number.isFinite));
  nf4.dispose();
});

test('a run started from a pretrained model resumes bit for bit; train --from sets model.init.from', () => {
  const cfg = config(HF, { n_stacks: 6, progressive: { growth: 'block_expansion', freeze: 'frozen_trunk' } }, 12);
  (cfg['training'] as Record<string, unknown>)['checkpoint_every'] = 6;
  const run = join(dir, 'straight');
  const straight = new TrainingMachine(cfg, { runDir: run });
  const a = straight.train().losses;
  straight.dispose();
  const resumed = new TrainingMachine(cfg, { runDir: run, resume: join(run, 'checkpoints', 'step-00000006') });
  const r = resumed.train();
  resumed.dispose();
  assert.equal(r.resumed_from, 6);
  assert.deepEqual(r.losses, a.slice(6), 'the resumed losses equal the straight run');
  // The CLI's --from: the shipped recipe with the folder, its sizes from the folder.
  const { machine } = prepareTrainingRun(undefined, { from: HF, runDir: join(dir, 'cli-from'), set: ['training.total_steps=2', 'data.seq_len=16', 'training.tensorboard=false', 'model.dropout=0.1'] });
  assert.equal(machine.config.model!.init!.from, HF);
  assert.ok(machine.model.model.rack.allBlocks().every((b) => b.config.dropout === 0.1), "the run's model.dropout applies to the pretrained blocks");
  assert.equal(machine.config.model!.d_model, 16);
  assert.equal(machine.model.model.rack.numStacks, 4);
  machine.dispose();
  // A problem with the folder names the flag that gave it.
  assert.throws(() => prepareTrainingRun(undefined, { from: join(dir, 'nowhere'), runDir: join(dir, 'cli-bad') }), /model\.init\.from: .*nowhere: no such folder .*\(set by --from .*nowhere\)/);
});

test('a source with LoRA adapters and an NF4 trunk starts plain: adapters folded, layers dequantized, the same logits', () => {
  const run = join(dir, 'adapted');
  const m = new TrainingMachine({
    model: { preset: 'llama', d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 2, blocks_per_stack: 1, progressive: { growth: 'copy_top', stack_lora: { rank: 2, alpha: 4 }, progressive_lora: { rank: 2, alpha: 4 }, freeze: 'adapters_only_trunk', trunk_format: 'nf4' } },
    data: DATA, optimizer: { lr: 1e-2 }, training: { ...TRAINING, total_steps: 8 },
    schedule: [{ name: 'one', start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }, { name: 'two', start_t: 0.5, end_t: 1 }],
  }, { runDir: run });
  m.train();
  m.dispose();
  const hf = join(dir, 'adapted-hf');
  exportModel(run, { out: hf }); // base weights + a PEFT adapter
  const ids = E.randInt([2, 10], 300, { seed: 2 });
  const source = loadModel(run).model;
  const want = logits(source, ids);
  source.dispose();
  for (const from of [run, hf]) {
    const plane = defineConfig(config(from, {})).phases[0]!.model!;
    const model = loadInitModel(plane);
    assert.ok(model.namedModules().every(([, mod]) => !(mod instanceof QuantizedLinear)), `${from}: no quantized layer left`);
    assert.ok(model.namedParameters().every(([n, t]) => !/lora_[AB]$/.test(n) && t.requiresGrad), `${from}: no adapter, everything trainable`);
    model.eval();
    const got = logits(model, ids);
    assert.ok(got.every((v, i) => Math.abs(v - want[i]!) <= 1e-5), `${from}: the folded model computes the source's logits`);
    model.dispose();
  }
  ids.dispose();
});
