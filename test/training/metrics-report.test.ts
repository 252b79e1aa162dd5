// What the trainer writes reaches TensorBoard (same steps as metrics.jsonl; per-group lr,
// resources, model events) and the report (every record kind read; stacks by identity right→left).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { readEventFile, readJsonl } from '../../src/io/index.js';
import { metricsToReportData, renderReportHtml, FINAL_LOSS_LABEL, finalTrainLoss } from '../../src/io/report/index.js';
import { TrainingMachine } from '../../src/training/index.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sw-metrics-report-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function progressiveConfig(runDir: string, direction: 'append' | 'prepend'): Record<string, unknown> {
  return {
    model: {
      preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 3, blocks_per_stack: 1,
      progressive: { direction, growth: direction === 'append' ? 'copy_top' : { kind: 'identity' }, freeze: direction === 'append' ? 'frozen_trunk' : 'frozen_suffix', target_stacks: 3 },
    },
    data: { corpus: { kind: 'synthetic', vocab_size: 64, tokens: 3000 }, seq_len: 8, batch_size: 4, eval_batches: 1 },
    optimizer: { lr: 3e-3 },
    training: { total_steps: 9, progress: 'off', seed: 1, run_dir: runDir, eval_every: 3, checkpoint_every: 3, tensorboard: true },
    schedule: [
      { name: 'one', start_t: 0, end_t: 1 / 3, overrides: { model: { n_stacks: 1 } } },
      { name: 'two', start_t: 1 / 3, end_t: 2 / 3, overrides: { model: { n_stacks: 2 } } },
      { name: 'three', start_t: 2 / 3, end_t: 1, overrides: { model: { n_stacks: 3 } } },
    ],
  };
}

function train(direction: 'append' | 'prepend'): { run: string; records: Record<string, unknown>[] } {
  const run = join(tempDir(), direction);
  const m = new TrainingMachine(progressiveConfig(run, direction));
  m.train();
  m.dispose();
  return { run, records: readJsonl(join(run, 'metrics.jsonl')) as Record<string, unknown>[] };
}

test('TensorBoard: train scalars at the metrics.jsonl step, per-group lr, resources and growth events', () => {
  const { run, records } = train('append');
  const tb = join(run, 'tb');
  const events = readdirSync(tb).flatMap((f) => readEventFile(join(tb, f)));
  const at = (tag: string) => events.flatMap((e) => (e.scalars ?? []).filter((s) => s.tag === tag).map((s) => [e.step, s.value] as [number, number]));
  const steps = records.filter((r) => r['type'] === 'step');
  assert.deepEqual(at('train/loss').map(([s]) => s), steps.map((r) => r['step']));
  const lrs = steps[0]!['lrs'] as Record<string, number>;
  assert.ok(Object.keys(lrs).length >= 2, 'several groups');
  for (const [group, lr] of Object.entries(lrs)) assert.deepEqual(at(`train/lr/${group}`)[0], [steps[0]!['step'], Math.fround(lr)]);
  const grows = records.filter((r) => r['kind'] === 'grow');
  assert.equal(grows.length, 2);
  assert.deepEqual(at('events/grow'), grows.map((r, i) => [r['step'], i + 1]));
  // model/stacks: the stacks after each event (a growth and the freeze that follows it share a step).
  assert.deepEqual([...new Map(at('model/stacks')).entries()], grows.map((r, i) => [r['step'], i + 2]));
  const resources = records.filter((r) => r['kind'] === 'resources');
  assert.equal(resources.length, 3);
  assert.deepEqual(at('resources/params/trainable'), resources.map((r) => [r['step'], Math.fround((r['params'] as Record<string, number>)['trainable']!)]));
  assert.deepEqual(at('resources/bytes/total').map(([s]) => s), resources.map((r) => r['step']));
});

test('the report reads every record kind the trainer writes, and one final train loss figure', () => {
  const { records } = train('append');
  const kinds = new Set(records.map((r) => String(r['type'] ?? r['kind'])));
  for (const k of ['step', 'eval', 'phase_start', 'phase_end', 'checkpoint', 'grow', 'resources']) assert.ok(kinds.has(k), `the run wrote ${k}`);
  const data = metricsToReportData(records as never);
  assert.ok(!(data.notes ?? []).some((n) => /unknown kind/.test(n)), JSON.stringify(data.notes));
  assert.equal(data.summary['checkpoints'], 3);
  assert.deepEqual(data.phases.map((p) => [p.name, p.start_t, p.end_t]), [['one', 0, 1 / 3], ['two', 1 / 3, 2 / 3], ['three', 2 / 3, 1]]);
  const html = renderReportHtml(data);
  const final = finalTrainLoss(data.steps.map((s) => s.loss))!;
  // Summary, chart subtitle and the last phase row all show the same figure under the same name.
  assert.ok(html.includes(FINAL_LOSS_LABEL));
  assert.ok(!html.includes('last train loss'));
  assert.ok(!/final train \d/.test(html));
  // The resources table: one column per phase (fits the page), quantities as rows.
  const resources = html.slice(html.indexOf('<table class="resources">'));
  const headerCells = resources.slice(0, resources.indexOf('</tr>')).match(/<th[ >]/g)!.length;
  assert.equal(headerCells, 1 + 3);
  assert.ok(Number.isFinite(final));
});

test('a right→left run: the stack timeline keeps one row per stack identity as stacks are prepended', () => {
  const { records } = train('prepend');
  const data = metricsToReportData(records as never);
  const snaps = data.stack_timeline;
  assert.equal(snaps.length >= 3, true);
  // The first stack built is the last of the final rack: its row (index 2) exists from the start.
  assert.deepEqual(snaps[0]!.stacks.map((s) => s.index), [2]);
  assert.deepEqual(snaps.at(-1)!.stacks.map((s) => s.index).sort(), [0, 1, 2]);
  const second = snaps.find((s) => s.stacks.length === 2)!;
  assert.deepEqual(second.stacks.map((s) => s.index).sort(), [1, 2]);
});
