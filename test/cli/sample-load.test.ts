// loadRun (the loader of `stackwise sample` / `eval`) on a run whose checkpoint needs the training
// structure rebuilt (LoRA adapters on the trunk): --backend is honoured on that path too.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../src/engine/index.js';
import { TrainingMachine } from '../../src/training/index.js';
import { loadRun } from '../../src/training/run/index.js';
import { generate } from '../../src/training/sampling/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sw-sample-load-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('loadRun --backend moves a model rebuilt with its adapters to that backend', () => {
  const run = join(dir, 'lora');
  const m = new TrainingMachine({
    model: {
      preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1,
      progressive: { growth: 'copy_top', freeze: 'adapters_only_trunk', progressive_lora: { rank: 2, alpha: 4, targets: ['q', 'v'] } },
    },
    data: { corpus: { kind: 'synthetic', vocab_size: 32, tokens: 2000 }, seq_len: 8, batch_size: 4, eval_batches: 1 },
    optimizer: { lr: 0.01 },
    training: { total_steps: 4, progress: 'off', tensorboard: false, run_dir: run },
    schedule: [
      { name: 'one', start_t: 0, end_t: 0.5 },
      { name: 'two', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 2 } } },
    ],
  });
  m.train();
  m.dispose();
  const others = E.availableBackends().filter((b) => b !== E.getDefaultBackend().name);
  const outputs: number[][] = [];
  for (const backend of [E.getDefaultBackend().name, ...others]) {
    const r = loadRun(run, { backend });
    try {
      assert.ok(r.model.namedParameters().some(([n]) => n.includes('lora_')), 'the adapters were rebuilt');
      const off = r.model.parameters().filter((t) => t.backend.name !== backend);
      assert.equal(off.length, 0, `every parameter on '${backend}'`);
      outputs.push(generate(r.model, [[1, 2, 3]], { maxNewTokens: 4, temperature: 0 }).generated[0]!);
    } finally {
      r.model.dispose();
    }
  }
  // The same model on every backend: the same greedy continuation.
  for (const o of outputs.slice(1)) assert.deepEqual(o, outputs[0]);
});

test('loadRun rebuilds a rack grown by a ramp-in (no adapters): a mid-ramp checkpoint keeps its gate and logits', () => {
  const run = join(dir, 'ramp');
  const m = new TrainingMachine({
    model: { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1, progressive: { growth: { kind: 'ramp', t0: 0.5, t1: 1 } } },
    data: { corpus: { kind: 'synthetic', vocab_size: 32, tokens: 2000 }, seq_len: 8, batch_size: 4, eval_batches: 1 },
    optimizer: { lr: 0.01 },
    training: { total_steps: 10, progress: 'off', tensorboard: false, run_dir: run },
    schedule: [
      { name: 'one', start_t: 0, end_t: 0.5 },
      { name: 'two', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 2 } } },
    ],
  });
  const ids = E.randInt([2, 6], 32, { seed: 4 });
  const logitsOf = (model: typeof m.model.model) => E.tidy(() => E.noGrad(() => { model.eval(); return Float32Array.from(model.forward(ids).logits.toArray()); }));
  let mid: { path: string; gate: number; logits: Float32Array } | undefined;
  m.addCallback({ onStep: (s) => {
    if (s.step !== 6) return;
    const gate = (m.model.model.rack.stacks.toArray()[1] as unknown as { gate: number }).gate;
    const logits = logitsOf(m.model.model);
    m.model.model.train();
    mid = { path: m.saveCheckpoint().path!, gate, logits };
  } });
  m.train();
  m.dispose();
  assert.ok(mid && mid.gate > 0 && mid.gate < 1, `mid-ramp gate ${mid?.gate}`);
  const r = loadRun(mid.path);
  try {
    assert.equal((r.model.rack.stacks.toArray()[1] as unknown as { gate: number }).gate, mid.gate);
    assert.deepEqual(logitsOf(r.model), mid.logits, 'the loaded model computes what was trained');
  } finally {
    r.model.dispose();
    ids.dispose();
  }
});
