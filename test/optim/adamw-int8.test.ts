// optimizer.state_format: int8 — AdamW with 8-bit block-wise moments through the config, the
// training machine, checkpoints and resume; it learns like float32 AdamW on a small run.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdamW, int8StateEligible } from '../../src/optim/index.js';
import { TrainingMachine, parseConfig, planRun } from '../../src/training/index.js';

type Obj = Record<string, unknown>;
const dir = mkdtempSync(join(tmpdir(), 'sw-adam8-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const cfg = (optimizer: Obj, runDir?: string, steps = 40): Obj => ({
  model: { preset: 'llama', d_model: 64, n_heads: 4, d_ff: 128, n_stacks: 2, blocks_per_stack: 1 },
  data: { corpus: { kind: 'synthetic', vocab_size: 64, tokens: 20000, branching: 2 }, seq_len: 16, batch_size: 8, eval_batches: 2 },
  optimizer: { lr: 3e-3, weight_decay: 0.01, ...optimizer },
  training: { total_steps: steps, seed: 2, progress: 'off', tensorboard: false, ...(runDir ? { run_dir: runDir, checkpoint_every: 0 } : {}) },
});

test('state_format int8: 8-bit moments (about 2 bytes per parameter), a loss curve like float32 AdamW', () => {
  const losses = (opt: Obj) => {
    const m = new TrainingMachine(cfg(opt));
    const out: number[] = [];
    for (let i = 0; i < 40; i++) out.push(m.trainStep().loss);
    const o = m.optimizer.optimizer as AdamW;
    const state = o.namedState((p) => String(o.params().indexOf(p)));
    const bytes = [...state.tensors.values()].reduce((a, t) => a + t.bytes, 0);
    const params = o.params().reduce((a, p) => a + p.size, 0);
    // 8-bit: codes + a float32 absmax per 256 for each moment; float32 moments for small tensors and the embedding.
    const expected = o.params().reduce((a, p) => a + (int8StateEligible(p.size, p.name) ? 2 * (4 * Math.ceil(p.size / 4) + 4 * Math.ceil(p.size / 256)) : 8 * p.size), 0);
    const small = o.params().filter((p) => !int8StateEligible(p.size, p.name)).map((p) => p.name!);
    m.dispose();
    return { out, bytes, expected, small, bytesPerParam: bytes / params, format: o.stateFormat };
  };
  const f32 = losses({}), i8 = losses({ state_format: 'int8' });
  assert.equal(i8.format, 'int8');
  assert.ok(Math.abs(f32.bytesPerParam - 8) < 0.01);
  assert.equal(i8.bytes, i8.expected);
  // The embedding table and the norm gains keep float32 moments; every projection goes 8-bit.
  assert.ok(i8.small.includes('embedding.token.weight'), i8.small.join(', '));
  assert.ok(i8.small.every((n) => n.startsWith('embedding.') || /norm/.test(n)), i8.small.join(', '));
  assert.ok(i8.bytesPerParam < 4, `int8 state ${i8.bytesPerParam} bytes per parameter`);
  const tail = (a: number[]) => a.slice(-10).reduce((x, y) => x + y, 0) / 10;
  assert.ok(tail(i8.out) < i8.out[0]! - 0.5, `int8 run learns: ${i8.out[0]} → ${tail(i8.out)}`);
  assert.ok(Math.abs(tail(i8.out) - tail(f32.out)) < 0.05 * tail(f32.out), `last-10 mean loss int8 ${tail(i8.out)} vs fp32 ${tail(f32.out)}`);
  // The planner prices the 8-bit state.
  const plan = planRun(parseConfig(cfg({ state_format: 'int8' })));
  assert.ok(Math.abs(plan.phases[0]!.bytes.optimizerState - i8.expected) <= 0.001 * i8.expected, `plan ${plan.phases[0]!.bytes.optimizerState} vs built ${i8.expected}`);
});

test('state_format int8 checkpoints and resumes bit for bit; SGD refuses it', () => {
  const straight = new TrainingMachine(cfg({ state_format: 'int8' }, join(dir, 'a'), 8));
  const a: number[] = [];
  for (let i = 0; i < 8; i++) a.push(straight.trainStep().loss);
  straight.dispose();
  const first = new TrainingMachine(cfg({ state_format: 'int8' }, join(dir, 'b'), 8));
  const b: number[] = [];
  for (let i = 0; i < 4; i++) b.push(first.trainStep().loss);
  const ck = first.saveCheckpoint();
  first.dispose();
  const second = new TrainingMachine(cfg({ state_format: 'int8' }, join(dir, 'b'), 8), { resume: ck.path });
  for (let i = 0; i < 4; i++) b.push(second.trainStep().loss);
  second.dispose();
  assert.deepEqual(b, a);
  assert.throws(() => parseConfig(cfg({ type: 'sgd', state_format: 'int8' })).phases && new TrainingMachine(cfg({ type: 'sgd', state_format: 'int8' })), /state_format/);
});
