// model.progressive.activation_cache in a training run: the frozen prefix is served from the
// cache (hits once samples recur), and the losses match a run without the cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/framework/index.js';
import { readJsonl } from '../../src/io/index.js';
import { ProgressivePlane, TrainingMachine } from '../../src/training/index.js';

type Obj = Record<string, unknown>;

function config(cache: Obj | null, windows = 'aligned'): Obj {
  return {
    model: {
      preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1,
      progressive: { freeze: 'frozen_trunk', target_stacks: 3, ...(cache ? { activation_cache: cache } : {}) },
    },
    // 400 tokens / 8 = 50 aligned samples: batches of 4 revisit them within a few steps.
    data: { corpus: { kind: 'synthetic', vocab_size: 40, tokens: 480 }, seq_len: 8, batch_size: 4, eval_batches: 2, windows },
    optimizer: { lr: 5e-3 },
    training: { total_steps: 24, progress: 'off', seed: 2, tensorboard: false, eval_every: 8 },
    schedule: [
      { name: 'one', start_t: 0, end_t: 0.25 },
      { name: 'two', start_t: 0.25, end_t: 0.5, overrides: { model: { n_stacks: 2 } } },
      { name: 'three', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 3 } } },
    ],
  };
}

test('activation cache from config: same losses as without it; the frozen prefix is served from the cache', () => {
  const plain = new TrainingMachine(config(null));
  const a = plain.train();
  plain.dispose();
  const run = mkdtempSync(join(tmpdir(), 'sw-cached-'));
  const m = new TrainingMachine(config({ memory_budget_mb: 0.004 }), { runDir: run });
  const plane = ProgressivePlane.attach(m);
  const prefixByPhase: number[] = [];
  m.addCallback({ onStep: (s) => { prefixByPhase[s.phase_index] = plane.activationCache()!.prefixStacks; } });
  const b = m.train();
  const info = plane.activationCache()!;
  assert.deepEqual(prefixByPhase, [0, 1, 2], 'nothing frozen in phase one; then the trunk stacks before the new one');
  assert.ok(info.hits > 10, `cache hits: ${info.hits}`);
  assert.ok(info.spills > 0, 'the 4 KB budget spilled rows to disk');
  assert.equal(a.losses.length, b.losses.length);
  a.losses.forEach((l, i) => assert.ok(Math.abs(l - b.losses[i]!) <= 1e-5 * Math.max(1, Math.abs(l)), `step ${i}: ${l} vs ${b.losses[i]}`));
  assert.ok(Math.abs(a.final_eval!.loss - b.final_eval!.loss) < 1e-5, `validation loss ${a.final_eval!.loss} vs ${b.final_eval!.loss}`);
  // One record per phase of what the cache did (counters are cumulative).
  const recs = readJsonl(join(run, 'metrics.jsonl')).filter((r) => r['kind'] === 'activation_cache');
  assert.deepEqual(recs.map((r) => [r['phase'], r['prefix_stacks']]), [['one', 0], ['two', 1], ['three', 2]]);
  assert.equal(recs.at(-1)!['hits'], info.hits);
  assert.ok((recs.at(-1)!['disk_bytes'] as number) > 0);
  m.dispose();
  assert.equal(plane.activationCache(), undefined, 'dispose releases the cache');
  rmSync(run, { recursive: true, force: true });
});

test('aligned windows start at multiples of seq_len; bad activation_cache settings are config errors', () => {
  const m = new TrainingMachine(config(null));
  for (let step = 0; step < 5; step++) {
    const batch = m.data.trainBatch(step, 0, 0);
    for (const id of batch.sampleIds) assert.equal(id % 8, 0, `sample id ${id} is a multiple of seq_len`);
  }
  m.dispose();
  assert.throws(() => new TrainingMachine(config({ memory_budget_mb: -1 })), (e: unknown) => e instanceof ConfigError && /model\.progressive\.activation_cache\.memory_budget_mb/.test((e as Error).message));
  assert.throws(() => new TrainingMachine(config({ budget: 1 })), (e: unknown) => e instanceof ConfigError && /activation_cache\.budget/.test((e as Error).message));
  assert.throws(() => new TrainingMachine(config(null, 'strided')), (e: unknown) => e instanceof ConfigError && /data\.windows/.test((e as Error).message));
  // The cached prefix runs without dropout: a model with dropout would train differently with the cache.
  const withDropout = config({ memory_budget_mb: 1 });
  (withDropout['model'] as Obj)['dropout'] = 0.1;
  assert.throws(() => new TrainingMachine(withDropout), /model\.progressive: activation_cache: the cached prefix runs without dropout, but the model has dropout 0\.1/);
});
