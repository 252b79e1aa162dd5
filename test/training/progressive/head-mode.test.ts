// model.progressive.head: train | lora | frozen — each mode trains; a frozen head stays bit for
// bit, a LoRA head keeps its base and moves its adapters; plan counts match the live builder;
// checkpoints resume bit for bit; the manifest, inspect and the Hugging Face export carry the adapter.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../../src/engine/index.js';
import { inspectModel, TokenHead } from '../../../src/nn/index.js';
import { ProgressivePlane, TrainingMachine, loadModel, parseConfig, planRun, type ResourceReport } from '../../../src/training/index.js';
import { loadHF, saveHF } from '../../../src/io/index.js';
import { readSafetensors } from '../../../src/io/safetensors.js';

type Obj = Record<string, unknown>;
const dir = mkdtempSync(join(tmpdir(), 'sw-head-mode-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const cfg = (progressive: Obj, opts: { tied?: boolean; runDir?: string; steps?: number; d?: number } = {}): Obj => ({
  model: { preset: 'llama', d_model: opts.d ?? 32, n_heads: 4, d_ff: 48, n_stacks: 2, blocks_per_stack: 1, tie_embeddings: opts.tied ?? false, progressive: { growth: 'copy_top', freeze: 'none', ...progressive } },
  data: { corpus: { kind: 'synthetic', vocab_size: 40, tokens: 6000, branching: 2 }, seq_len: 12, batch_size: 4, eval_batches: 1 },
  optimizer: { lr: 3e-3 },
  training: { total_steps: opts.steps ?? 6, seed: 3, progress: 'off', tensorboard: false, ...(opts.runDir ? { run_dir: opts.runDir, checkpoint_every: 0 } : {}) },
  schedule: [{ name: 'one', start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }, { name: 'two', start_t: 0.5, end_t: 1 }],
});

const snapshot = (m: TrainingMachine): Map<string, Float32Array> =>
  new Map(m.model.model.namedParameters().map(([n, t]) => [n, Float32Array.from(t.toArray() as Float32Array)]));

function trainAll(c: Obj): { before: Map<string, Float32Array>; after: Map<string, Float32Array>; losses: number[]; reports: ResourceReport[]; machine: TrainingMachine } {
  const m = new TrainingMachine(c);
  const plane = ProgressivePlane.attach(m);
  const reports: ResourceReport[] = [];
  const stateFormat = ((c['optimizer'] as Obj)['state_format'] ?? 'fp32') as 'fp32' | 'int8';
  m.addCallback({ onPhaseStart: () => { reports.push(plane.builder.report({ seqLen: 12, optimizer: 'adamw', stateFormat })); } });
  m.prepare();
  const before = snapshot(m);
  const losses: number[] = [];
  while (!m.isComplete) losses.push(m.trainStep().loss);
  return { before, after: snapshot(m), losses, reports, machine: m };
}

const same = (a: Float32Array | undefined, b: Float32Array | undefined) => !!a && !!b && a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

test('head: train / frozen / lora — what moves and what stays, bit for bit', () => {
  const train = trainAll(cfg({ head: 'train' }));
  assert.ok(!same(train.before.get('head.weight'), train.after.get('head.weight')), 'a trained head moves');
  train.machine.dispose();

  const frozen = trainAll(cfg({ head: 'frozen' }));
  for (const n of ['head.weight', 'head.final_norm.weight']) assert.ok(same(frozen.before.get(n), frozen.after.get(n)), `${n} unchanged`);
  assert.ok(!same(frozen.before.get('rack.stacks.0.blocks.0.attn.q.weight'), frozen.after.get('rack.stacks.0.blocks.0.attn.q.weight')), 'the rack still trains');
  assert.ok(frozen.losses.every(Number.isFinite));
  frozen.machine.dispose();

  const lora = trainAll(cfg({ head: 'lora', head_lora: { rank: 2, alpha: 4 } }));
  const head = lora.machine.model.model.head as TokenHead;
  assert.deepEqual(head.lora && { rank: head.lora.rank, alpha: head.lora.alpha }, { rank: 2, alpha: 4 });
  assert.deepEqual(head.loraA!.shape, [2, 32]);
  assert.deepEqual(head.loraB!.shape, [40, 2]);
  for (const n of ['head.weight', 'head.final_norm.weight']) assert.ok(same(lora.before.get(n), lora.after.get(n)), `${n} unchanged under LoRA`);
  for (const n of ['head.lora_A', 'head.lora_B']) assert.ok(!same(lora.before.get(n), lora.after.get(n)), `${n} moves`);
  assert.ok(lora.before.get('head.lora_B')!.every((x) => x === 0), 'B starts at zero: the head starts as it was');
  // inspect shows the adapter on the head.
  const info = inspectModel(lora.machine.model.model).children.find((c) => c.path === 'head')!;
  assert.equal(info.attributes['lora'], 'decoder r=2 alpha=4');
  lora.machine.dispose();
});

test('head: the plan counts what the live builder reports (trainable, frozen, adapters, gradients, optimizer state, fp32 or 8-bit)', () => {
  for (const prog of [{ head: 'frozen' }, { head: 'lora', head_lora: { rank: 3, alpha: 3 } }, { head: 'lora', freeze: 'adapters_only_trunk', progressive_lora: { rank: 2, alpha: 2 } }, { head: 'train', freeze: 'frozen_trunk' }]) {
    for (const [tied, int8] of [[false, false], [true, false], [false, true]] as const) {
      // d 128: the projections (128 × 128, 48 × 128) and an untied head (40 × 128) have 8-bit moments; norms, the embedding and the head adapter do not.
      const c = cfg(prog, { tied, d: int8 ? 128 : 32 });
      if (int8) (c['optimizer'] as Obj)['state_format'] = 'int8';
      const plan = planRun(parseConfig(c));
      const run = trainAll(c);
      run.machine.dispose();
      plan.phases.forEach((p, i) => {
        const r = run.reports[i]!;
        const what = `${JSON.stringify(prog)} tied ${tied} int8 ${int8} phase ${p.name}`;
        assert.deepEqual(p.params, { total: r.params.total, trainable: r.params.trainable, frozen: r.params.frozen, adapters: r.params.adapters, adaptersTrainable: r.params.adaptersTrainable }, what);
        assert.equal(p.bytes.grads, r.bytes.grads, what);
        assert.equal(p.bytes.optimizerState, r.bytes.optimizerState, what);
      });
    }
  }
});

test('head: lora on a tied decoder freezes the shared table; the rank defaults to progressive_lora', () => {
  const run = trainAll(cfg({ head: 'lora', freeze: 'adapters_only_trunk', progressive_lora: { rank: 2, alpha: 6 } }, { tied: true }));
  const head = run.machine.model.model.head as TokenHead;
  assert.equal(head.isTied, true);
  assert.equal(head.lora!.rank, 2);
  assert.equal(head.lora!.alpha, 6);
  assert.ok(same(run.before.get('embedding.token.weight'), run.after.get('embedding.token.weight')), 'the tied table stays');
  assert.ok(!same(run.before.get('head.lora_B'), run.after.get('head.lora_B')));
  run.machine.dispose();
});

test('head: bad settings are refused with the key named', () => {
  assert.throws(() => new TrainingMachine(cfg({ head_lora: { rank: 2, alpha: 2 } })), /head_lora is set, but model\.progressive\.head is not set/);
  assert.throws(() => new TrainingMachine(cfg({ head: 'lora' })), /head: lora needs a rank and an alpha/);
  assert.throws(() => parseConfig(cfg({ head: 'adapters' })), /head/);
  assert.throws(() => planRun(parseConfig(cfg({ head: 'lora' }))), /head: lora needs a rank/);
});

test('head: lora resumes bit for bit from a checkpoint, loads back through the manifest and exports to Hugging Face', () => {
  const c = (runDir: string) => cfg({ head: 'lora', head_lora: { rank: 2, alpha: 4 } }, { runDir, steps: 8 });
  const straight = new TrainingMachine(c(join(dir, 'a')));
  const a: number[] = [];
  for (let i = 0; i < 8; i++) a.push(straight.trainStep().loss);
  const ckA = straight.saveCheckpoint();
  const headA = straight.model.model.head as TokenHead;
  const [wA, aA, bA] = [headA.weight, headA.loraA!, headA.loraB!].map((t) => Float32Array.from(t.toArray() as Float32Array));
  straight.dispose();
  const first = new TrainingMachine(c(join(dir, 'b')));
  const b: number[] = [];
  for (let i = 0; i < 4; i++) b.push(first.trainStep().loss);
  const ck = first.saveCheckpoint();
  first.dispose();
  const second = new TrainingMachine(c(join(dir, 'b')), { resume: ck.path });
  for (let i = 0; i < 4; i++) b.push(second.trainStep().loss);
  second.dispose();
  assert.deepEqual(b, a);

  // The checkpoint's manifest rebuilds the adapter.
  const loaded = loadModel(ckA.path);
  const head = loaded.model.head as TokenHead;
  assert.equal(head.lora!.rank, 2);
  assert.ok(same(Float32Array.from(head.loraB!.toArray() as Float32Array), bA!));

  // Export: separate → a PEFT adapter on lm_head; merge → lm_head.weight = W + (α/r)·B A.
  const sep = join(dir, 'hf-separate');
  saveHF(loaded.model, sep, { adapters: 'separate' });
  const peft = readSafetensors(join(sep, 'adapter_model.safetensors')).tensors;
  assert.deepEqual([...peft.keys()].filter((k) => k.includes('lm_head')).sort(), ['base_model.model.lm_head.lora_A.weight', 'base_model.model.lm_head.lora_B.weight']);
  // Read back (base + PEFT adapter on lm_head): the same logits.
  const back = loadHF(sep);
  const backHead = back.model.head as TokenHead;
  assert.equal(backHead.lora!.rank, 2);
  const x = E.tensor(new Int32Array([1, 5, 7, 2, 9, 3]), [1, 6], { dtype: 'int32' });
  const [l0, l1] = E.noGrad(() => [loaded.model.forward(x).logits.toArray(), back.model.forward(x).logits.toArray()]);
  l0.forEach((v, i) => assert.ok(Math.abs(v - l1[i]!) < 1e-5, `logit ${i}: ${v} vs ${l1[i]}`));
  x.dispose();
  back.model.dispose();
  const merged = join(dir, 'hf-merge');
  saveHF(loaded.model, merged, { adapters: 'merge' });
  assert.equal(existsSync(join(merged, 'adapter_model.safetensors')), false);
  const w = readSafetensors(join(merged, 'model.safetensors')).tensors.get('lm_head.weight')!;
  const got = new Float32Array(w.data.buffer.slice(w.data.byteOffset, w.data.byteOffset + w.data.byteLength));
  const expect = E.noGrad(() => E.tidy(() => E.add(E.tensor(wA!, [40, 32]), E.mulScalar(E.matmul(E.tensor(bA!, [40, 2]), E.tensor(aA!, [2, 32])), 2)).toArray()));
  got.forEach((x, i) => assert.ok(Math.abs(x - expect[i]!) < 1e-6, `lm_head.weight[${i}]`));
  loaded.model.dispose();
});

test('head: lora on a tied decoder refuses to be merged into the exported weights', () => {
  const m = new TrainingMachine(cfg({ head: 'lora', head_lora: { rank: 2, alpha: 2 } }, { tied: true }));
  m.trainStep();
  assert.throws(() => saveHF(m.model.model, join(dir, 'tied-merge'), { adapters: 'merge' }), /tied to the token embedding/);
  m.dispose();
});
